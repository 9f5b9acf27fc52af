"""Load the referential into PostgreSQL: drop and recreate the schema, then COPY.

The schema name comes from the endpoint (``referential`` by default). Keys and
checks are declared so the database itself rejects a generator bug.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pandas as pd

from lakehouse.generate.referential import Referential
from lakehouse.postgres import PostgresEndpoint, connect

# Table -> (column DDL, constraints). Column order = COPY order = DataFrame columns.
TABLES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "sites": (
        (
            ("site_id", "text NOT NULL"),
            ("name", "text NOT NULL"),
            ("city", "text NOT NULL"),
            ("region", "text NOT NULL"),
            ("country", "text NOT NULL"),
            ("site_type", "text NOT NULL CHECK (site_type IN ('plant', 'distribution_center'))"),
            ("updated_at", "timestamptz NOT NULL"),
        ),
        ("PRIMARY KEY (site_id)",),
    ),
    "products": (
        (
            ("product_id", "text NOT NULL"),
            ("cip13", "text NOT NULL UNIQUE CHECK (cip13 ~ '^34009[0-9]{8}$')"),
            ("name", "text NOT NULL"),
            ("atc_code", "text NOT NULL CHECK (length(atc_code) = 7)"),
            ("atc_class", "text NOT NULL"),
            ("dosage_form", "text NOT NULL"),
            ("unit_cost", "numeric(12,4) NOT NULL"),
            ("list_price", "numeric(12,4) NOT NULL"),
            ("is_active", "boolean NOT NULL"),
            ("updated_at", "timestamptz NOT NULL"),
        ),
        ("PRIMARY KEY (product_id)", "CHECK (list_price > unit_cost)"),
    ),
    "product_prices": (
        (
            ("product_id", "text NOT NULL REFERENCES {schema}.products (product_id)"),
            # a row inserted without valid_from is valid since always (one version)
            ("valid_from", "date NOT NULL DEFAULT DATE '1900-01-01'"),
            ("valid_to", "date"),
            ("unit_cost", "numeric(12,4) NOT NULL"),
            ("list_price", "numeric(12,4) NOT NULL"),
        ),
        (
            "PRIMARY KEY (product_id, valid_from)",
            "CHECK (valid_to IS NULL OR valid_to > valid_from)",
            "CHECK (list_price > unit_cost)",
        ),
    ),
    "machines": (
        (
            ("machine_id", "text NOT NULL"),
            ("site_id", "text NOT NULL REFERENCES {schema}.sites (site_id)"),
            (
                "machine_type",
                "text NOT NULL CHECK (machine_type IN "
                "('tablet_press', 'blister_line', 'granulator', 'coater', 'hvac'))",
            ),
            ("rated_power_kw", "numeric(8,2) NOT NULL CHECK (rated_power_kw > 0)"),
            ("commissioned_on", "date NOT NULL"),
            ("updated_at", "timestamptz NOT NULL"),
            # a row inserted without valid_from is valid since always (one version)
            ("valid_from", "date NOT NULL DEFAULT DATE '1900-01-01'"),
            ("valid_to", "date"),
        ),
        ("PRIMARY KEY (machine_id, valid_from)", "CHECK (valid_to IS NULL OR valid_to > valid_from)"),
    ),
    "customers": (
        (
            ("customer_id", "text NOT NULL"),
            (
                "customer_type",
                "text NOT NULL CHECK (customer_type IN ('pharmacy', 'hospital', 'wholesaler'))",
            ),
            ("name", "text NOT NULL"),
            ("contact_name", "text NOT NULL"),
            ("email", "text NOT NULL"),
            ("phone", "text NOT NULL"),
            ("address", "text NOT NULL"),
            ("postcode", "text NOT NULL"),
            ("city", "text NOT NULL"),
            ("updated_at", "timestamptz NOT NULL"),
        ),
        ("PRIMARY KEY (customer_id)",),
    ),
}
TABLE_COMMENTS = {
    "sites": "One row per site (plant or distribution centre); key site_id.",
    "products": "One row per product, current cost and list price; key product_id.",
    "product_prices": "One row per product and validity period; key (product_id, valid_from); "
    "valid_to exclusive, NULL for the current period.",
    "machines": "One row per machine version (plants only; relocation or re-rating); key machine_id, valid_from.",
    "customers": "One row per customer; key customer_id. Contact fields are personal data.",
}
PERSONAL_DATA_COLUMNS = ("contact_name", "email", "phone", "address")
NUMERIC_SCALE = {"unit_cost": 4, "list_price": 4, "rated_power_kw": 2}


def _converter(column: str) -> Callable[[Any], Any]:
    """Python value COPY can send for one cell of ``column``."""
    scale = NUMERIC_SCALE.get(column)

    def convert(value: Any) -> Any:
        if value is None or (not isinstance(value, (str, dt.date)) and pd.isna(value)):
            return None
        if scale is not None:
            return Decimal(f"{float(value):.{scale}f}")
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
        if hasattr(value, "item"):  # numpy scalar -> Python
            return value.item()
        return value

    return convert


def create_statements(schema: str) -> list[str]:
    """DDL recreating ``schema`` and its tables (identifiers are ours, not user input)."""
    quoted = f'"{schema}"'
    statements = [f"DROP SCHEMA IF EXISTS {quoted} CASCADE", f"CREATE SCHEMA {quoted}"]
    for table, (columns, constraints) in TABLES.items():
        body = ",\n  ".join(
            [f"{name} {ddl.replace('{schema}', quoted)}" for name, ddl in columns] + list(constraints)
        )
        statements.append(f"CREATE TABLE {quoted}.{table} (\n  {body}\n)")
        statements.append(f"COMMENT ON TABLE {quoted}.{table} IS '{TABLE_COMMENTS[table]}'")
    for column in PERSONAL_DATA_COLUMNS:
        statements.append(f"COMMENT ON COLUMN {quoted}.customers.{column} IS 'personal data'")
    return statements


def load_referential(endpoint: PostgresEndpoint, ref: Referential) -> dict[str, int]:
    """Recreate the referential schema and bulk-load every table in one transaction;
    returns the row count of each table as read back from the database."""
    schema = endpoint.schema
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"schema name must be letters, digits or '_', found {schema!r}")
    counts: dict[str, int] = {}
    with connect(endpoint) as conn:
        with conn.cursor() as cur:
            for statement in create_statements(schema):
                cur.execute(statement)
            for table, frame in ref.tables().items():
                columns = [name for name, _ in TABLES[table][0]]
                missing = set(columns) - set(frame.columns)
                if missing:
                    raise ValueError(
                        f"{table}: columns {sorted(missing)} expected, found {list(frame.columns)}"
                    )
                converters = [_converter(c) for c in columns]
                with cur.copy(f'COPY "{schema}".{table} ({", ".join(columns)}) FROM STDIN') as copy:
                    for row in frame[columns].itertuples(index=False, name=None):
                        copy.write_row([convert(v) for convert, v in zip(converters, row)])
            for table in TABLES:
                cur.execute(f'SELECT count(*) FROM "{schema}".{table}')
                counts[table] = cur.fetchone()[0]
    return counts
