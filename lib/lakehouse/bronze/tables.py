"""Bronze datasets of the medallion pipeline (declarative definitions).

- ``bronze_order_lines``, ``bronze_stock_snapshots``: streaming tables fed by new ERP
  export files only (exactly once), one row per exported line, partitioned by the
  drop date; ragged rows in ``_corrupt_record``, unknown columns in ``_rescued_data``.
- ``bronze_deliveries``, ``bronze_production_batches`` (ERP), ``bronze_iot_readings``
  (minute readings of the plants' machines), ``bronze_recalls`` (one row per recall
  notice): streaming tables fed by new JSON files, typed by an explicit schema;
  malformed lines in ``_corrupt_record``, values of the wrong type and unknown keys in
  ``_rescued_data``; partitioned by the drop date.
- ``bronze_{products,sites,machines,customers}``: the current row per key, upserted
  (CDC, SCD type 1 by ``updated_at``) from ``bronze_<t>_changes``, the rows changed in
  PostgreSQL since the last load (``updated_at`` watermark; lakehouse.bronze.referential).
- ``bronze_product_prices``: a materialized view, read whole over JDBC at each run.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from lakehouse import pipelines as dp
from lakehouse.bronze.referential import INCREMENTAL_KEYS, WATERMARK_COLUMN, load_changes
from lakehouse.bronze.sources import (
    API_RECALL_SCHEMA,
    DELIVERY_SCHEMA,
    FRENCH_CSV,
    IOT_READING_SCHEMA,
    ORDER_LINE_COLUMNS,
    PARTITION_COLUMNS,
    PRODUCTION_BATCH_SCHEMA,
    RECALL_DOCUMENT_SCHEMA,
    STOCK_SNAPSHOT_COLUMNS,
    explode_notices,
    notices_from_api_records,
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


dp.create_streaming_table(
    "bronze_recalls",
    comment="One row per recall notice: the generator's daily documents and the recall API's records.",
    path="bronze/source=regulatory/table=recalls",
    partition_cols=PARTITION_COLUMNS,
    expect_all={"notice_id_present": "_corrupt_record IS NOT NULL OR notice_id IS NOT NULL"},
)


@dp.append_flow(target="bronze_recalls", name="bronze_recalls")
def bronze_recalls_documents():
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


@dp.append_flow(target="bronze_recalls", name="bronze_recalls_api")
def bronze_recalls_api():
    """One row per record fetched from the recall API (lakehouse.sources.regulatory_feed),
    mapped onto the notice columns; its other fields are kept in ``_rescued_data``. A
    window fetched again after an empty answer replaces its (empty) file, hence
    ``allowOverwrites``."""
    return (
        dp.read_files(
            "landing/source=regulatory/recalls_api",
            format="json",
            schema=API_RECALL_SCHEMA,
            allowOverwrites="true",
        )
        .transform(notices_from_api_records)
        .transform(with_partition_from_drop_date)
    )


def _referential(table: str) -> DataFrame:
    context = dp.current()
    endpoint = ensure_server(context.parameters["settings"])
    return read_referential_table(context.spark, endpoint, table)


def _referential_changes(table: str) -> DataFrame | None:
    """Rows of ``table`` changed since the last load, None if none (lakehouse.bronze.referential)."""
    context = dp.current()
    settings = context.parameters["settings"]
    return load_changes(
        context.spark,
        ensure_server(settings),
        table,
        changes_path=f"{context.lake.root}/{REFERENTIAL_CHANGES_PATH.format(table=table)}",
        checkpoint=context.checkpoint(f"bronze_{table}_changes"),
        settings=settings.ingestion.referential,
    )


REFERENTIAL_PATH = "bronze/source=referential/table={table}"
REFERENTIAL_CHANGES_PATH = "bronze/source=referential/table={table}_changes"


@dp.table(path=REFERENTIAL_CHANGES_PATH.format(table="products"))
def bronze_products_changes():
    """Every version of a product row read from PostgreSQL (append only; grain: product_id x updated_at)."""
    return _referential_changes("products")


@dp.table(path=REFERENTIAL_CHANGES_PATH.format(table="sites"))
def bronze_sites_changes():
    """Every version of a site row read from PostgreSQL (append only; grain: site_id x updated_at)."""
    return _referential_changes("sites")


@dp.table(path=REFERENTIAL_CHANGES_PATH.format(table="machines"))
def bronze_machines_changes():
    """Every version of a machine row read from PostgreSQL (append only; grain: machine_id x updated_at)."""
    return _referential_changes("machines")


@dp.table(path=REFERENTIAL_CHANGES_PATH.format(table="customers"))
def bronze_customers_changes():
    """Every version of a customer row read from PostgreSQL (append only; grain: customer_id x updated_at)."""
    return _referential_changes("customers")


_CURRENT_ROW_COMMENTS = {
    "products": "Referential products (CIP13, ATC class, current cost and price); one row per product_id.",
    "sites": "Plants and distribution centres; one row per site_id.",
    "machines": "Machines with their site and rated power; one row per machine_id.",
    "customers": "Customers, with personal contact fields (kept out of gold); one row per customer_id.",
}
for _table, _keys in INCREMENTAL_KEYS.items():
    dp.create_streaming_table(
        f"bronze_{_table}", comment=_CURRENT_ROW_COMMENTS[_table], path=REFERENTIAL_PATH.format(table=_table)
    )
    dp.create_auto_cdc_flow(
        target=f"bronze_{_table}",
        source=f"bronze_{_table}_changes",
        keys=list(_keys),
        sequence_by=WATERMARK_COLUMN,
        stored_as_scd_type=1,
    )


@dp.materialized_view(path="bronze/source=referential/table=product_prices")
def bronze_product_prices():
    """Cost and list price per product and validity period (no updated_at: read whole on every run)."""
    return _referential("product_prices")
