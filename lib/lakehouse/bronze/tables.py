"""Bronze datasets of the pharma pipeline (declarative definitions).

- ``bronze_order_lines``, ``bronze_stock_snapshots``: streaming tables fed by new ERP
  export files only (exactly once), one row per exported line, partitioned by the
  drop date; ragged rows in ``_corrupt_record``, unknown columns in ``_rescued_data``.
- ``bronze_<referential table>``: materialized views, the referential as read over
  JDBC at this run.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from lakehouse import pipelines as dp
from lakehouse.bronze.sources import (
    FRENCH_CSV,
    ORDER_LINE_COLUMNS,
    PARTITION_COLUMNS,
    STOCK_SNAPSHOT_COLUMNS,
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
        "landing/source=erp/stock_snapshots", format="csv", schema=string_schema(STOCK_SNAPSHOT_COLUMNS), **FRENCH_CSV
    ).transform(with_partition_from_drop_date)


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
