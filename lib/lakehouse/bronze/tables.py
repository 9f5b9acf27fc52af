"""Bronze datasets of the pharma pipeline (declarative definitions).

- ``bronze_order_lines``, ``bronze_stock_snapshots``: streaming tables fed by new ERP
  export files only (exactly once), one row per exported line, partitioned by the
  drop date; ragged rows in ``_corrupt_record``, unknown columns in ``_rescued_data``.
- ``bronze_deliveries``, ``bronze_production_batches`` (ERP), ``bronze_iot_readings``
  (minute readings of the plants' machines), ``bronze_recalls`` (one row per recall
  notice): streaming tables fed by new JSON files, typed by an explicit schema;
  malformed lines in ``_corrupt_record``, values of the wrong type and unknown keys in
  ``_rescued_data``; partitioned by the drop date.
- ``bronze_<referential table>``: materialized views, the referential as read over
  JDBC at this run.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from lakehouse import pipelines as dp
from lakehouse.bronze.sources import (
    DELIVERY_SCHEMA,
    FRENCH_CSV,
    IOT_READING_SCHEMA,
    ORDER_LINE_COLUMNS,
    PARTITION_COLUMNS,
    PRODUCTION_BATCH_SCHEMA,
    RECALL_DOCUMENT_SCHEMA,
    STOCK_SNAPSHOT_COLUMNS,
    explode_notices,
    read_referential_table,
    string_schema,
    with_partition_from_drop_date,
)
from lakehouse.postgres import ensure_server


@dp.table(path="bronze/source=erp/table=order_lines", partition_cols=PARTITION_COLUMNS)
def bronze_order_lines():
    """One row per line of the ERP order-line exports, as text."""
    return dp.read_files(
        "landing/source=erp/order_lines", format="csv", schema=string_schema(ORDER_LINE_COLUMNS), **FRENCH_CSV
    ).transform(with_partition_from_drop_date)


@dp.table(path="bronze/source=erp/table=stock_snapshots", partition_cols=PARTITION_COLUMNS)
def bronze_stock_snapshots():
    """One row per site x product x day of the ERP stock exports, as text."""
    return dp.read_files(
        "landing/source=erp/stock_snapshots",
        format="csv",
        schema=string_schema(STOCK_SNAPSHOT_COLUMNS),
        **FRENCH_CSV,
    ).transform(with_partition_from_drop_date)


WELL_FORMED_LINE = "_corrupt_record IS NULL"


@dp.table(path="bronze/source=erp/table=deliveries", partition_cols=PARTITION_COLUMNS)
@dp.expect("well_formed_line", WELL_FORMED_LINE)
def bronze_deliveries():
    """One row per line of the ERP delivery exports (JSON lines), typed."""
    return dp.read_files("landing/source=erp/deliveries", format="json", schema=DELIVERY_SCHEMA).transform(
        with_partition_from_drop_date
    )


@dp.table(path="bronze/source=erp/table=production_batches", partition_cols=PARTITION_COLUMNS)
@dp.expect("well_formed_line", WELL_FORMED_LINE)
def bronze_production_batches():
    """One row per line of the ERP production-batch exports (JSON lines), typed."""
    return dp.read_files(
        "landing/source=erp/production_batches", format="json", schema=PRODUCTION_BATCH_SCHEMA
    ).transform(with_partition_from_drop_date)


@dp.table(path="bronze/source=iot/table=readings", partition_cols=PARTITION_COLUMNS)
@dp.expect("known_machine_id_format", "machine_id RLIKE '^M[0-9]{3}$'")
@dp.expect("reading_time_present", "_corrupt_record IS NOT NULL OR ts IS NOT NULL")
def bronze_iot_readings():
    """One row per machine x minute of the plants' meter files (JSON lines), typed;
    ``ts`` is the reading's UTC time."""
    return dp.read_files("landing/source=iot/readings", format="json", schema=IOT_READING_SCHEMA).transform(
        with_partition_from_drop_date
    )


@dp.table(path="bronze/source=regulatory/table=recalls", partition_cols=PARTITION_COLUMNS)
@dp.expect("notice_id_present", "_corrupt_record IS NOT NULL OR notice_id IS NOT NULL")
def bronze_recalls():
    """One row per notice of the daily recall documents (one JSON document per file,
    its ``notices`` array exploded), with the document's ``source`` and ``retrieved_at``."""
    return (
        dp.read_files(
            "landing/source=regulatory/recalls",
            format="json",
            schema=RECALL_DOCUMENT_SCHEMA,
            multiline="true",
        )
        .transform(explode_notices)
        .transform(with_partition_from_drop_date)
    )


def _referential(table: str) -> DataFrame:
    context = dp.current()
    endpoint = ensure_server(context.parameters["settings"])
    return read_referential_table(context.spark, endpoint, table)


@dp.materialized_view(path="bronze/source=referential/table=products")
def bronze_products():
    """Referential products (CIP13, ATC class, current cost and price)."""
    return _referential("products")


@dp.materialized_view(path="bronze/source=referential/table=product_prices")
def bronze_product_prices():
    """Cost and list price per product and validity period."""
    return _referential("product_prices")


@dp.materialized_view(path="bronze/source=referential/table=sites")
def bronze_sites():
    """Plants and distribution centres."""
    return _referential("sites")


@dp.materialized_view(path="bronze/source=referential/table=machines")
def bronze_machines():
    """Machines with their site and rated power."""
    return _referential("machines")


@dp.materialized_view(path="bronze/source=referential/table=customers")
def bronze_customers():
    """Customers, with personal contact fields (kept out of gold)."""
    return _referential("customers")
