"""The referential in a real (embedded) PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.generate import generate_all
from lakehouse.postgres import connect, ensure_server

from .conftest import make_settings

pytestmark = pytest.mark.slow  # starts an embedded PostgreSQL

PRIMARY_KEYS_SQL = """
SELECT tc.table_name, string_agg(kcu.column_name, ',' ORDER BY kcu.ordinal_position)
FROM information_schema.table_constraints tc
JOIN information_schema.key_column_usage kcu
  ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name
WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = %s
GROUP BY tc.table_name
"""


def _counts(endpoint) -> dict[str, int]:
    with connect(endpoint) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {endpoint.schema}.{table}").fetchone()[0]
            for table in ("sites", "products", "product_prices", "machines", "customers")
        }


def test_referential_tables_keys_and_values_in_postgres(tmp_path: Path):
    settings = make_settings(tmp_path)
    endpoint = ensure_server(settings)
    report = generate_all(settings, endpoint=endpoint)
    assert endpoint.schema == "referential" and report.postgres and "referential" in report.postgres

    counts = _counts(endpoint)
    assert counts == {name: report.row_counts[name] for name in counts}
    assert counts["sites"] == 2 and counts["products"] == 10 and counts["customers"] == 25
    with connect(endpoint) as conn:
        keys = dict(conn.execute(PRIMARY_KEYS_SQL, ["referential"]).fetchall())
        assert keys == {
            "sites": "site_id",
            "products": "product_id",
            "product_prices": "product_id,valid_from",
            "machines": "machine_id,valid_from",
            "customers": "customer_id",
        }
        types = dict(
            conn.execute(
                "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns c "
                "JOIN pg_attribute a ON a.attname = c.column_name "
                "AND a.attrelid = 'referential.products'::regclass "
                "WHERE c.table_schema = 'referential' AND c.table_name = 'products'"
            ).fetchall()
        )
        assert types["unit_cost"] == "numeric(12,4)" and types["list_price"] == "numeric(12,4)"
        assert types["is_active"] == "boolean" and types["updated_at"] == "timestamp with time zone"
        mismatched = conn.execute(
            "SELECT count(*) FROM referential.products p JOIN referential.product_prices pp "
            "ON pp.product_id = p.product_id AND pp.valid_to IS NULL "
            "WHERE pp.unit_cost <> p.unit_cost OR pp.list_price <> p.list_price"
        ).fetchone()[0]
        assert mismatched == 0
        current_rows = conn.execute(
            "SELECT count(*) FROM referential.product_prices WHERE valid_to IS NULL"
        ).fetchone()[0]
        assert current_rows == counts["products"]
        accented = conn.execute(
            "SELECT count(*) FROM referential.products WHERE name ~ '[éèàïôµ]'"
        ).fetchone()[0]
        assert accented >= 1
        comment = conn.execute(
            "SELECT col_description('referential.customers'::regclass, 5)"  # email
        ).fetchone()[0]
        assert comment == "personal data"
        conn.execute("INSERT INTO referential.sites VALUES ('S99','x','x','x','FR','plant',now())")

    generate_all(settings, endpoint=endpoint)  # recreates the schema: the extra row goes
    assert _counts(endpoint) == counts
