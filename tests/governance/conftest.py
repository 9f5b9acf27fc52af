"""A small lake holding customers in bronze (change log and CDC target) and silver,
built by the real pipeline definitions on the embedded engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lakehouse.config import load_settings

TEST_KEY = "test-pseudonymisation-key-0123456789"
T1 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
CHANGES_SCHEMA = (
    "customer_id string, customer_type string, name string, contact_name string, email string, "
    "phone string, address string, postcode string, city string, updated_at timestamp"
)
FIRST_LOAD = [
    ("C00001", "pharmacy", "Pharmacie du Port - Nantes", "Lucie Martin", "lucie.martin@orange.fr", "02 11 22 33 44", "12 rue des Lilas", "44000", "Nantes", T1),
    ("C00002", "hospital", "CHU de Lyon", "Marc Dubois", "marc.dubois@chu-lyon.fr", "04 55 66 77 88", "3 quai Perrache", "69002", "Lyon", T1),
    ("C00003", "wholesaler", "Grossiste Ouest", "Zoé Lefèvre", "zoe.lefevre@gross.fr", "02 99 88 77 66", "8 avenue Foch", "35000", "Rennes", T1),
]
# Marc Dubois changed e-mail: his old address stays in the change log and older versions.
SECOND_LOAD = [
    ("C00002", "hospital", "CHU de Lyon", "Marc Dubois", "m.dubois@chu-lyon.fr", "04 55 66 77 88", "3 quai Perrache", "69002", "Lyon", T2),
]
SUBJECT = "C00002"
SUBJECT_VALUES = {
    "C00002", "Marc Dubois", "marc.dubois@chu-lyon.fr", "m.dubois@chu-lyon.fr", "04 55 66 77 88", "3 quai Perrache",
}  # fmt: skip


def governance_settings(tmp_path: Path, **overrides):
    return load_settings(
        lake_root=str(tmp_path / "lake"),
        var_dir=str(tmp_path / "var"),
        runs_dir=str(tmp_path / "runs"),
        governance={"pseudonymisation_key": TEST_KEY},
        **overrides,
    )


def run_customer_tables(spark, lake, settings) -> None:
    from lakehouse import pipelines as dp
    from lakehouse.medallion import medallion_graph

    runner = dp.PipelineRunner(spark, medallion_graph(), lake, parameters={"run_date": dt.date(2026, 11, 26), "settings": settings})
    runner.run(refresh=["bronze_customers", "silver_customers"], include_upstreams=False)


@pytest.fixture
def customers_lake(spark, lake, tmp_path):
    """Two loads of the change log, each followed by a pipeline run: bronze_customers_changes,
    bronze_customers and silver_customers with several versions each."""
    from lakehouse.lake import write_delta

    settings = governance_settings(tmp_path)
    changes = f"{lake.root}/bronze/source=referential/table=customers_changes"
    for rows in (FIRST_LOAD, SECOND_LOAD):
        write_delta(spark.createDataFrame(rows, CHANGES_SCHEMA), changes, mode="append")
        run_customer_tables(spark, lake, settings)
    return lake, settings
