"""A pipeline project of its own, outside this repository: `lakehouse pipeline init`,
then run, dry-run and re-run through the command line, with the event log,
expectations and skipping of the built-in pipeline."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from deltalake import DeltaTable

from lakehouse.cli import main
from lakehouse.pipelines.project import SpecError, find_spec_file, init_project, load_project

from .conftest import REPOSITORY

RERUNS = 20

SECOND_DATASET = '''
from pyspark.sql import functions as F

from lakehouse import pipelines as dp


@dp.materialized_view
@dp.expect("known_product", "product IS NOT NULL")
def product_totals(example_orders):
    """Quantity ordered per product."""
    return example_orders.groupBy("product").agg(F.sum("quantity").cast("long").alias("quantity"))
'''



def _lakehouse(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command line in a process of its own, started in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", *args],
        cwd=cwd,
        env=dict(os.environ),  # the fixture removed LAKEHOUSE_HOME and the other LAKEHOUSE_*
        capture_output=True,
        text=True,
        timeout=120,
    )


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _events(storage: Path):
    log = DeltaTable(str(storage / "_system" / "event_log")).to_pandas()
    return log.sort_values("started_at").reset_index(drop=True)


def test_a_project_made_by_init_runs_from_its_own_folder_and_skips_when_unchanged(
    spark, outside, monkeypatch
):
    # init and the first run, each a process of its own, in a folder outside the repository
    init = _lakehouse("pipeline", "init", "shop", cwd=outside)
    assert init.returncode == 0, init.stdout + init.stderr
    project = outside / "shop"
    assert (project / "spark-pipeline.yml").is_file()
    assert (project / "transformations" / "example_orders.py").is_file()
    (project / "transformations" / "product_totals.py").write_text(SECOND_DATASET)
    first = _lakehouse("pipeline", "run", cwd=project / "transformations")  # the spec is found above
    assert first.returncode == 0, first.stdout + first.stderr
    assert "example_orders COMPLETED" in " ".join(first.stdout.split())

    storage = project / "storage"
    orders = DeltaTable(str(storage / "pipelines" / "shop" / "example_orders")).to_pandas()
    assert sorted(orders["order_id"]) == [1, 3]  # the quantity-0 order is dropped
    assert set(orders["source_system"]) == {"example"}  # from the spec's configuration
    totals = DeltaTable(str(storage / "pipelines" / "shop" / "product_totals")).to_pandas()
    assert dict(zip(totals["product"], totals["quantity"], strict=True)) == {"aspirin": 3, "paracetamol": 5}

    # dry run, lineage, then re-runs, in this process (the spec found from the cwd)
    monkeypatch.chdir(project)
    dry = _cli("pipeline", "dry-run")
    assert "ok example_orders" in dry and "ok product_totals" in dry
    assert "example_orders --> product_totals" in _cli("pipeline", "lineage")
    for _ in range(RERUNS):
        _cli("pipeline", "run")
    shown = _cli("pipeline", "events")
    assert "SKIPPED" in shown and "inputs and definition unchanged" in shown

    log = _events(storage)
    runs = list(dict.fromkeys(log["run_id"]))
    assert len(runs) == 1 + RERUNS and set(log["pipeline"]) == {"shop"}
    assert len(log) == len(runs) * 2  # one row per run x flow
    flows = {run: sorted(datasets) for run, datasets in log.groupby("run_id")["dataset"]}
    assert all(datasets == ["example_orders", "product_totals"] for datasets in flows.values())
    first_run = log[log["run_id"] == runs[0]].set_index("dataset")
    assert set(first_run["status"]) == {"COMPLETED"}
    assert first_run.loc["example_orders", "rows_dropped"] == 1
    assert first_run.loc["example_orders", "rows_written"] == 2
    dropped = {e["name"]: e["failed"] for e in first_run.loc["example_orders", "expectations"]}
    assert dropped == {"positive_quantity": 1}
    later = log[log["run_id"] != runs[0]]
    assert set(later["status"]) == {"SKIPPED"}
    assert set(later["details"]) == {"inputs and definition unchanged since the last refresh"}
    # the tables kept their first version
    assert DeltaTable(str(storage / "pipelines" / "shop" / "example_orders")).version() == 0

    # a new configuration value reaches the definition: the view is recomputed, and its
    # reader computes the same totals, so it writes nothing
    spec = project / "spark-pipeline.yml"
    spec.write_text(spec.read_text().replace("source_system: example", "source_system: erp"))
    _cli("pipeline", "run")
    last = _events(storage).groupby("dataset").last()
    assert last.loc["example_orders", "status"] == "COMPLETED"
    assert last.loc["product_totals", "status"] == "SKIPPED"
    assert last.loc["product_totals", "details"].startswith("result unchanged")
    orders = DeltaTable(str(storage / "pipelines" / "shop" / "example_orders")).to_pandas()
    assert set(orders["source_system"]) == {"erp"}


def test_without_a_spec_the_commands_run_the_built_in_pipeline(monkeypatch):
    monkeypatch.chdir(REPOSITORY)  # no spark-pipeline.yml here or above
    assert find_spec_file() is None
    assert "silver_order_lines --> fact_ventes" in _cli("pipeline", "lineage")


def test_the_spec_names_the_file_the_key_and_what_is_expected(outside):
    spec = outside / "spark-pipeline.yml"
    spec.write_text("name: 1st\nlibraries: {glob: x}\nconfiguraton: {a: b}\n")
    with pytest.raises(SpecError) as error:
        load_project(outside)
    message = str(error.value)
    assert str(spec) in message
    for expected in (
        "name: Value error, must start with a letter",
        "storage: Field required (expected the lake root",
        "libraries: Input should be a valid list (expected a list of entries like  - glob:",
        "configuraton: unknown key (expected name, storage, libraries, configuration)",
    ):
        assert expected in message

    result = CliRunner().invoke(main, ["pipeline", "run"])  # found from the cwd
    assert result.exit_code != 0 and "configuraton: unknown key" in result.output


def test_files_other_than_python_and_sql_are_refused_by_name(outside):
    project = init_project(outside / "p").parent
    notes = project / "transformations" / "notes.txt"
    notes.write_text("not a definition")
    result = CliRunner().invoke(main, ["pipeline", "dry-run", "--spec", str(project)])
    assert result.exit_code != 0
    assert f"{notes}: matched by libraries[0].glob.include" in result.output
    assert "only Python (.py) and SQL (.sql) files can define datasets" in result.output


def test_configuration_values_are_strings_and_storage_resolves_against_the_spec(outside):
    project = init_project(outside / "q").parent
    (project / "spark-pipeline.yml").write_text(
        "name: q\nstorage: file:///data/lake\nlibraries:\n  - glob:\n      include: transformations/**\n"
        "configuration:\n  batch_size: 500\n  strict: true\n  run_date: 2026-11-26\n"
    )
    loaded = load_project(project / "spark-pipeline.yml")
    assert loaded.storage == "/data/lake"
    assert loaded.parameters() == {
        "batch_size": "500",
        "strict": "true",
        "run_date": dt.date(2026, 11, 26),
    }
    assert loaded.parameters("2026-12-01")["run_date"].isoformat() == "2026-12-01"
    assert [p.name for p in loaded.library_files()] == ["example_orders.py"]
    assert loaded.settings().lake_root == "/data/lake"  # no conf/ anywhere: the defaults
    assert loaded.settings().project_root == project
    with pytest.raises(SpecError, match="not empty"):
        init_project(project)
