"""Right to erasure on real Delta tables written by the embedded engine and the pipeline:
after erasure, no readable version and no file on disk holds the subject."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse.catalog import find_tables
from lakehouse.governance import audit
from lakehouse.governance.catalog import build_catalog, load_catalog_config
from lakehouse.governance.erasure import ErasureError, erase_subject, residual_files
from lakehouse.governance.pseudonymise import pseudonym
from lakehouse.medallion import medallion_graph

from .conftest import SUBJECT, SUBJECT_VALUES, TEST_KEY

CATALOG = Path(__file__).resolve().parents[2] / "conf" / "base" / "catalog.yaml"


def _catalog(lake):
    config = load_catalog_config(CATALOG)
    return build_catalog(lake, medallion_graph(), config), config


def _subject_values_with_pseudonyms() -> set[str]:
    key = TEST_KEY.encode()
    return SUBJECT_VALUES | {pseudonym(v, key) for v in SUBJECT_VALUES - {SUBJECT}}


def _versions_holding(path: str, subject: str) -> list[int]:
    """Time travel to every version in the history; those still readable and holding the subject."""
    holding = []
    for commit in DeltaTable(path).history():
        try:
            table = DeltaTable(path, version=commit["version"]).to_pyarrow_table()
        except Exception:  # noqa: BLE001 - a version whose files or log are gone is not readable
            continue
        if pc.any(pc.equal(table["customer_id"], subject)).as_py():
            holding.append(commit["version"])
    return holding


def _parquet_files_holding(root: str, values: set[str]) -> list[str]:
    """Decode every Parquet file under the lake (not via Delta: orphans count too)."""
    holding = []
    for file in Path(root).rglob("*.parquet"):
        for column in pq.read_table(file).columns:
            if any(str(v) in values for v in column.to_pylist()):
                holding.append(str(file))
                break
    return holding


@pytest.mark.slow
def test_erasure_leaves_no_readable_version_and_no_file_with_the_subject(customers_lake):
    lake, _settings = customers_lake
    values = _subject_values_with_pseudonyms()
    contact_export = Path(lake.root, "landing/source=crm/contacts/2026-11-25/contacts.csv")
    contact_export.parent.mkdir(parents=True)
    contact_export.write_text(
        "customer_id;email\nC00001;lucie.martin@orange.fr\nC00002;marc.dubois@chu-lyon.fr\n", encoding="utf-8"
    )
    tables = [p for p in find_tables(lake.root) if "customers" in p]
    # Before: the subject is in every customers table, in the history and in files.
    assert all(_versions_holding(p, SUBJECT) for p in tables)
    assert _parquet_files_holding(lake.root, values)

    entries, config = _catalog(lake)
    label = pseudonym(SUBJECT, TEST_KEY.encode())
    report = erase_subject(lake, entries, config, subject=SUBJECT, subject_label=label, actor="dpo@example.com")

    # Change log: 2 versions of Marc Dubois (first load + new e-mail); current tables: 1 row each.
    assert {t.table: t.rows_deleted for t in report.tables} == {
        "bronze_customers_changes": 2,
        "bronze_customers": 1,
        "silver_customers": 1,
    }
    assert report.rows_deleted == 4
    assert report.landing_files == {str(contact_export): 1}
    assert report.full_refresh_needed == ["bronze_customers"]  # CDC reader of the change log
    assert report.residual_system_files == []  # the event log holds counts, not rows
    for path in tables:
        assert _versions_holding(path, SUBJECT) == [], path
    assert _parquet_files_holding(lake.root, values) == []
    assert residual_files(lake.root, values) == []  # raw bytes too: logs, checkpoints, landing
    assert contact_export.read_text(encoding="utf-8") == "customer_id;email\nC00001;lucie.martin@orange.fr\n"
    # The other customers are untouched.
    current = DeltaTable(f"{lake.root}/silver/domain=pharma/table=customers").to_pyarrow_table()
    assert sorted(current["customer_id"].to_pylist()) == ["C00001", "C00003"]

    (entry,) = audit.read_log(lake).to_pylist()
    assert (entry["actor"], entry["action"], entry["target"]) == ("dpo@example.com", "gdpr.erase", f"subject:{label}")
    assert json.loads(entry["details"])["tables"] == {
        "bronze_customers_changes": 2,
        "bronze_customers": 1,
        "silver_customers": 1,
    }


@pytest.mark.slow
def test_pipeline_runs_again_after_erasure_with_a_full_refresh_of_the_reader(customers_lake, spark):
    lake, settings = customers_lake
    entries, config = _catalog(lake)
    erase_subject(lake, entries, config, subject=SUBJECT, actor="dpo")

    from lakehouse import pipelines as dp

    runner = dp.PipelineRunner(spark, medallion_graph(), lake, parameters={"run_date": None, "settings": settings})
    runner.run(refresh=["bronze_customers", "silver_customers"], include_upstreams=False, full_refresh=["bronze_customers"])
    current = DeltaTable(f"{lake.root}/bronze/source=referential/table=customers").to_pyarrow_table()
    assert sorted(current["customer_id"].to_pylist()) == ["C00001", "C00003"]


def test_dry_run_changes_nothing_and_records_nothing(customers_lake):
    lake, _settings = customers_lake
    versions = {p: DeltaTable(p).version() for p in find_tables(lake.root)}
    entries, config = _catalog(lake)

    report = erase_subject(lake, entries, config, subject=SUBJECT, actor="dpo", dry_run=True)

    assert report.rows_deleted == 4
    assert {p: DeltaTable(p).version() for p in find_tables(lake.root)} == versions
    assert audit.read_log(lake).num_rows == 0


def test_unknown_subject_deletes_nothing_but_is_recorded(customers_lake):
    lake, _settings = customers_lake
    entries, config = _catalog(lake)

    report = erase_subject(lake, entries, config, subject="C99999", actor="dpo")

    assert report.tables == [] and report.rows_deleted == 0
    assert audit.read_log(lake)["action"].to_pylist() == ["gdpr.erase"]


@pytest.mark.parametrize("subject", ["C1' OR '1'='1", "", "a b"])
def test_subject_ids_that_are_not_plain_identifiers_are_refused(lake, subject):
    with pytest.raises(ErasureError, match="not a plain identifier"):
        erase_subject(lake, [], load_catalog_config(CATALOG), subject=subject, actor="dpo")


def test_a_lake_without_customer_tables_is_an_error(lake):
    entries, config = _catalog(lake)
    with pytest.raises(ErasureError, match="declares an erasure_key"):
        erase_subject(lake, entries, config, subject=SUBJECT, actor="dpo")


def test_subject_values_left_in_system_tables_are_reported(customers_lake):
    lake, _settings = customers_lake
    # e.g. an expect_or_fail message with sample rows kept in a system table
    write_deltalake(f"{lake.root}/_system/notes", pa.table({"text": ["row: marc.dubois@chu-lyon.fr"]}))
    entries, config = _catalog(lake)

    report = erase_subject(lake, entries, config, subject=SUBJECT, actor="dpo")

    # The data file, and the commit whose min/max statistics quote the e-mail.
    notes = f"{lake.root}/_system/notes/"
    assert [f.removeprefix(notes).split("-")[0] for f in report.residual_system_files] == [
        "_delta_log/00000000000000000000.json",
        "part",
    ]
