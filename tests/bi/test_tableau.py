"""Tableau extracts read back with the Hyper API and compared to the gold Delta tables."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

import lakehouse.bi.tableau as tableau
from lakehouse.bi.gold import BiExportError, discover_gold_tables
from lakehouse.bi.tableau import export_tableau, hyper_process

from .conftest import fact_ventes, write_gold

# The type every Delta (Arrow) type must have in the extract: written out, not derived
# from the code under test.
EXPECTED_TYPE = {
    "int32": "INT",
    "int64": "BIG_INT",
    "double": "DOUBLE",
    "string": "TEXT",
    "bool": "BOOL",
    "date32[day]": "DATE",
    "timestamp[us, tz=UTC]": "TIMESTAMP",
    "decimal128(18, 2)": "NUMERIC(18, 2)",
    "decimal128(12, 4)": "NUMERIC(12, 4)",
    "decimal128(9, 4)": "NUMERIC(9, 4)",
    "decimal128(5, 2)": "NUMERIC(5, 2)",
}
PRIMARY_KEYS = {
    "pharma": {
        ("dim_site", ("site_id",)),
        ("dim_temps", ("date_key",)),
        ("dim_produit", ("product_sk",)),
        ("fact_ventes", ("order_id", "line_number")),
        ("kpi_rupture_stock", ("date_key", "site_id")),
        ("kpi_performance_livraison", ("date_key", "site_id")),
    },
    "energy": {
        ("dim_site", ("site_id",)),
        ("dim_machine", ("machine_sk",)),
        ("dim_temps_horaire", ("hour_key",)),
        ("fact_consommation_energie", ("machine_id", "hour_key")),
        ("fact_production", ("batch_id",)),
    },
}
FOREIGN_KEYS = {
    "pharma": {
        ("fact_ventes", "date_key", "dim_temps"),
        ("fact_ventes", "product_sk", "dim_produit"),
        ("fact_ventes", "site_id", "dim_site"),
        ("kpi_rupture_stock", "date_key", "dim_temps"),
        ("kpi_rupture_stock", "site_id", "dim_site"),
        ("kpi_performance_livraison", "date_key", "dim_temps"),
        ("kpi_performance_livraison", "site_id", "dim_site"),
    },
    "energy": {  # no dim_temps in the energy extract: date_key columns stay unrelated
        ("dim_machine", "site_id", "dim_site"),
        ("fact_consommation_energie", "machine_sk", "dim_machine"),
        ("fact_consommation_energie", "hour_key", "dim_temps_horaire"),
        ("fact_consommation_energie", "site_id", "dim_site"),
        ("fact_production", "machine_sk", "dim_machine"),
        ("fact_production", "site_id", "dim_site"),
        ("kpi_test_extra", "site_id", "dim_site"),
    },
}

CONSTRAINTS_SQL = """
SELECT r.relname, c.contype, c.conkey::text, f.relname, c.confkey::text, c.conrelid, c.confrelid
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class r ON r.oid = c.conrelid
LEFT JOIN pg_catalog.pg_class f ON f.oid = c.confrelid
"""


def read_extract(path: Path) -> dict:
    """Tables (rows, column types, nullability), primary and foreign keys of a .hyper file."""
    from tableauhyperapi import Connection, TableName

    with hyper_process() as hyper, Connection(hyper.endpoint, str(path)) as conn:
        tables = {}
        for name in conn.catalog.get_table_names("Extract"):
            definition = conn.catalog.get_table_definition(name)
            tables[name.name.unescaped] = {
                "rows": conn.execute_scalar_query(f"SELECT COUNT(*) FROM {name}"),
                "columns": {c.name.unescaped: (str(c.type), c.nullability.name) for c in definition.columns},
            }
        attributes = {
            (rel, num): col
            for rel, col, num in conn.execute_list_query(
                "SELECT attrelid, attname, attnum FROM pg_catalog.pg_attribute WHERE attnum > 0"
            )
        }

        def names(rel: int, numbers: str) -> tuple[str, ...]:
            return tuple(attributes[(rel, int(n))] for n in numbers.strip("[]").split(","))

        primary, foreign = set(), set()
        for table, kind, key, ref, ref_key, rel, ref_rel in conn.execute_list_query(CONSTRAINTS_SQL):
            if kind == "p":
                primary.add((table, names(rel, key)))
            elif kind == "f":
                (column,) = names(rel, key)
                assert names(ref_rel, ref_key) == (column,)  # same column name on both sides
                foreign.add((table, column, ref))
        total = (
            conn.execute_scalar_query(f"SELECT SUM(net_amount) FROM {TableName('Extract', 'fact_ventes')}")
            if ("fact_ventes" in tables)
            else None
        )
    return {"tables": tables, "primary": primary, "foreign": foreign, "net_total": total}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_star_extracts_match_gold_rows_types_and_keys(gold_lake, tmp_path: Path):
    gold = discover_gold_tables(gold_lake)
    reports = export_tableau(gold, tmp_path / "out")
    assert {r.name: r.path.name for r in reports} == {"energy": "energy.hyper", "pharma": "pharma.hyper"}
    by_name = {t.name: t for t in gold}
    for report in reports:
        extract = read_extract(report.path)
        expected_tables = {t.name for t in gold if t.domain == report.name} | {"dim_site"}
        assert set(extract["tables"]) == expected_tables
        for name, table in extract["tables"].items():
            delta = DeltaTable(by_name[name].path).to_pyarrow_table()
            assert table["rows"] == delta.num_rows == report.rows[name], name
            key = dict(PRIMARY_KEYS[report.name]).get(name, ())
            assert table["columns"] == {
                f.name: (EXPECTED_TYPE[str(f.type)], "NOT_NULLABLE" if f.name in key else "NULLABLE")
                for f in delta.schema
            }, name
        assert extract["primary"] == PRIMARY_KEYS[report.name]
        assert extract["foreign"] == FOREIGN_KEYS[report.name]
        assert report.size_bytes > 0 and report.seconds > 0
    pharma = read_extract(tmp_path / "out" / "pharma.hyper")
    # 25.00 + 18.00 + 52.00 + 4.00 + 5.97 = 104.97, exact (NUMERIC, not floating point)
    assert pharma["net_total"] == Decimal("104.97")


def test_values_round_trip_with_nulls_empty_strings_and_utc_times(gold_lake, tmp_path: Path):
    from tableauhyperapi import Connection

    export_tableau(discover_gold_tables(gold_lake), tmp_path)
    with hyper_process() as hyper:
        with Connection(hyper.endpoint, str(tmp_path / "pharma.hyper")) as conn:
            holidays = conn.execute_list_query(
                'SELECT date_key, holiday_name FROM "Extract"."dim_temps" ORDER BY date_key'
            )
            discount = conn.execute_scalar_query(
                """SELECT discount_pct FROM "Extract"."fact_ventes" WHERE order_id = 'O2'"""
            )
        with Connection(hyper.endpoint, str(tmp_path / "energy.hyper")) as conn:
            first = conn.execute_list_query(
                """SELECT CAST(hour_ts AS TEXT), kwh FROM "Extract"."fact_consommation_energie"
                   WHERE machine_id = 'M001' ORDER BY hour_ts LIMIT 2"""
            )
    assert holidays == [[-1, None], [20261124, None], [20261125, ""], [20261126, None]]
    assert discount is None
    assert first == [["2026-11-26 00:00:00", 10.0], ["2026-11-26 01:00:00", 20.0]]  # UTC wall clock


def test_single_table_extract_joins_each_fact_to_its_dimensions(gold_lake, tmp_path: Path):
    from tableauhyperapi import Connection

    reports = export_tableau(discover_gold_tables(gold_lake), tmp_path, single_table=True)
    assert sorted(r.path.name for r in reports) == [
        "fact_consommation_energie.hyper",
        "fact_production.hyper",
        "fact_ventes.hyper",
    ]
    extract = read_extract(tmp_path / "fact_ventes.hyper")
    assert set(extract["tables"]) == {"Extract"}
    table = extract["tables"]["Extract"]
    assert table["rows"] == 5  # a left join keeps every order line, the unknown product too
    columns = table["columns"]
    assert columns["site_name"] == ("TEXT", "NULLABLE") and columns["day_name"] == ("TEXT", "NULLABLE")
    # unit_cost is in the fact (cost at the order date) and in dim_produit: both kept
    assert columns["unit_cost"] == columns["dim_produit_unit_cost"] == ("NUMERIC(12, 4)", "NULLABLE")
    assert columns["order_id"] == ("TEXT", "NOT_NULLABLE")
    with hyper_process() as hyper, Connection(hyper.endpoint, str(tmp_path / "fact_ventes.hyper")) as conn:
        rows = conn.execute_list_query(
            'SELECT order_id, line_number, name, site_name, day_name FROM "Extract"."Extract" ORDER BY 1, 2'
        )
    assert rows == [
        ["O1", 1, "Paracétamol 500 mg", "Usine de Compiègne", "mardi"],
        ["O1", 2, "Ibuprofène 200 mg", "Usine de Compiègne", "mardi"],
        ["O2", 1, "Paracétamol 500 mg", "Plateforme de Saran", "mercredi"],
        ["O3", 1, "Ibuprofène 200 mg", "Plateforme de Saran", "jeudi"],
        ["O4", 1, "Inconnu", "Usine de Compiègne", "jeudi"],
    ]


def test_an_export_interrupted_mid_write_leaves_the_previous_file_intact(
    gold_lake, tmp_path: Path, monkeypatch
):
    out = tmp_path / "out"
    export_tableau(discover_gold_tables(gold_lake), out)
    before = {p.name: _sha(p) for p in out.iterdir()}
    real_insert, calls = tableau.insert_table, []

    def crash_on_third_table(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash while writing")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(tableau, "insert_table", crash_on_third_table)
    with pytest.raises(KeyboardInterrupt):
        export_tableau(discover_gold_tables(gold_lake), out)
    assert len(calls) == 3  # two tables were already in the new file
    assert {p.name: _sha(p) for p in out.iterdir()} == before  # same files, same bytes, no temporary left
    assert read_extract(out / "energy.hyper")["tables"]["fact_consommation_energie"]["rows"] == 12


def test_a_key_violation_fails_the_export_naming_the_table_and_keeps_the_old_file(gold_lake, tmp_path: Path):
    export_tableau(discover_gold_tables(gold_lake), tmp_path)
    before = _sha(tmp_path / "pharma.hyper")
    duplicated = pa.concat_tables([fact_ventes(), fact_ventes().slice(0, 1)])
    write_gold(gold_lake, "pharma", "star", "fact_ventes", duplicated)
    with pytest.raises(
        BiExportError, match=r"'fact_ventes': key \('order_id', 'line_number'\) is not unique.*O1"
    ):
        export_tableau(discover_gold_tables(gold_lake), tmp_path)
    assert _sha(tmp_path / "pharma.hyper") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["energy.hyper", "lake", "pharma.hyper"]


def test_an_empty_gold_layer_is_a_clear_error(tmp_path: Path):
    with pytest.raises(BiExportError, match="no gold table to export"):
        export_tableau([], tmp_path)
