"""End to end: the real `daily` job of jobs.yaml, run by papermill on a tiny scale.

Sources are generated into a temporary lake and a temporary embedded PostgreSQL;
the kernels find them through LAKEHOUSE_* variables, exactly as a user's would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("daily_job")]

RUN_DATE = "2026-11-26"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
GOLD_TABLES = {
    "dim_temps": "gold/domain=pharma/model=star/table=dim_temps",
    "dim_produit": "gold/domain=pharma/model=star/table=dim_produit",
    "fact_ventes": "gold/domain=pharma/model=star/table=fact_ventes",
    "kpi_marge_journaliere": "gold/domain=pharma/model=kpi/table=kpi_marge_journaliere",
    "dim_site": "gold/domain=pharma/model=star/table=dim_site",
    "kpi_rupture_stock": "gold/domain=pharma/model=kpi/table=kpi_rupture_stock",
    "kpi_performance_livraison": "gold/domain=pharma/model=kpi/table=kpi_performance_livraison",
}


def _rows(lake: Path, relative: str) -> int:
    return DeltaTable(str(lake / relative)).to_pyarrow_table().num_rows


def _run_daily(lake: Path, runs: Path, job: str = "daily"):
    from lakehouse.jobs import load_jobs, run_job

    jobs = load_jobs(PROJECT_ROOT / "jobs.yaml", project_root=PROJECT_ROOT)
    return run_job(
        jobs,
        job,
        params={"run_date": RUN_DATE, "lake_root": str(lake)},
        project_root=PROJECT_ROOT,
        runs_dir=runs,
        max_parallel=2,
        quiet=True,
    )


@pytest.fixture(scope="session")  # not module: other modules' tests interleave on a worker
def daily(tmp_path_factory):
    """Generate 4 days at scale 0.05, run `daily` twice for the same date."""
    from lakehouse.config import load_settings
    from lakehouse.generate import generate_all
    from lakehouse.postgres import ensure_server

    base = tmp_path_factory.mktemp("e2e")
    lake, runs = base / "lake", base / "runs"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_HOME", str(PROJECT_ROOT))
        env.setenv("LAKEHOUSE_LAKE_ROOT", str(lake))
        env.setenv("LAKEHOUSE_VAR_DIR", str(base / "var"))
        env.setenv("LAKEHOUSE_RUNS_DIR", str(runs))
        settings = load_settings(run_date=RUN_DATE, generator={"scale": 0.05, "days": 4, "seed": 7})
        ensure_server(settings)  # kept up by this process for the kernels
        generate_all(settings, endpoint=ensure_server(settings))
        first = _run_daily(lake, runs)
        counts_after_first = {name: _rows(lake, rel) for name, rel in GOLD_TABLES.items()} if first.ok else {}
        # Again for the same date: ingestion and transformation (where a re-run could add
        # rows); quality, scoring and exports only read gold.
        second = None
        if first.ok:
            second = _run_daily(lake, runs, "pipeline_ingestion")
            if second.ok:
                second = _run_daily(lake, runs, "pipeline_transformation")
    # The variables are undone before the tests: other tests of this worker (an
    # xdist group runs with them) must not see this lake, var dir and runs folder.
    yield {
        "lake": lake,
        "settings": settings,
        "first": first,
        "second": second,
        "counts_after_first": counts_after_first,
    }


def test_daily_job_succeeds_and_keeps_executed_notebooks(daily):
    from lakehouse.jobs import executed_notebooks, load_run

    run = daily["first"]
    assert run.ok, run.error
    assert set(run.tasks) == {"ingestion", "transformation", "quality", "ml_scoring", "load_bi", "catalog"}
    assert all(task.state == "SUCCESS" for task in run.tasks.values())
    for key in ("ingestion", "transformation", "quality", "ml_scoring", "load_bi"):
        child = load_run(run.tasks[key].output_notebook)  # each stage is a job run of its own
        assert child.state == "SUCCESS" and child.params["run_date"] == RUN_DATE
    notebooks = {path.stem for path in executed_notebooks(run)}
    assert notebooks >= {
        "bronze_referential",
        "bronze_erp",
        "bronze_iot",
        "bronze_regulatory",
        "silver_pharma",
        "gold_pharma",
        "silver_energy",
        "gold_energy",
        "run_quality",
        "quality_gate",
        "score_energy",
        "export_tableau",
        "load_postgres_bi",
        "build_dashboards",
        "catalog",
    }
    record = json.loads((Path(run.run_dir) / "run.json").read_text())
    assert record["state"] == "SUCCESS" and record["params"]["run_date"] == RUN_DATE


def test_gold_tables_are_readable_by_delta_rs_with_rows(daily):
    counts = daily["counts_after_first"]
    assert all(rows > 0 for rows in counts.values()), counts
    # dim_temps: one row per day of 2025, 2026 and 2027, and the "unknown" member
    assert counts["dim_temps"] == 365 + 365 + 365 + 1


def test_every_bronze_order_line_is_in_silver_or_quarantine(daily):
    lake = daily["lake"]
    bronze = _rows(lake, "bronze/source=erp/table=order_lines")
    silver = _rows(lake, "silver/domain=pharma/table=order_lines")
    quarantine = _rows(lake, "silver/domain=pharma/table=order_lines_quarantine")
    assert bronze == silver + quarantine
    assert quarantine > 0  # the generator injects defects at known rates
    # one fact row per clean order line
    assert _rows(lake, GOLD_TABLES["fact_ventes"]) == silver


def test_bronze_lines_match_what_the_generator_wrote(daily):
    truth = json.loads((daily["settings"].ground_truth_dir / "defects.json").read_text())
    written = truth["order_lines"]["records"]
    assert _rows(daily["lake"], "bronze/source=erp/table=order_lines") == written


JSON_BRONZE_TABLES = {
    "deliveries": "bronze/source=erp/table=deliveries",
    "production_batches": "bronze/source=erp/table=production_batches",
    "iot_readings": "bronze/source=iot/table=readings",
}


def test_bronze_json_sources_match_what_the_generator_wrote(daily):
    """Every JSON line is one bronze row; the truncated lines are exactly the corrupt ones."""
    truth = json.loads((daily["settings"].ground_truth_dir / "defects.json").read_text())
    for entity, relative in JSON_BRONZE_TABLES.items():
        table = DeltaTable(str(daily["lake"] / relative)).to_pyarrow_table(columns=["_corrupt_record"])
        corrupt = table.num_rows - table.column("_corrupt_record").null_count
        assert table.num_rows == truth[entity]["records"], entity
        assert corrupt == truth[entity]["defects"].get("malformed_json", 0), entity
    recalls = _rows(daily["lake"], "bronze/source=regulatory/table=recalls")
    assert recalls == truth["recalls"]["records"]  # one row per notice


def test_stock_rows_are_all_accounted_for_and_kpis_cover_every_day_and_site(daily):
    """Bronze stock = silver + quarantine; the negative quantities quarantined are exactly
    the injected ones; both KPIs have a row for every day x site of their silver input."""
    lake = daily["lake"]
    truth = json.loads((daily["settings"].ground_truth_dir / "defects.json").read_text())["stock_snapshots"]
    bronze = _rows(lake, "bronze/source=erp/table=stock_snapshots")
    silver = DeltaTable(str(lake / "silver/domain=pharma/table=stock_snapshots")).to_pandas()
    quarantine = DeltaTable(str(lake / "silver/domain=pharma/table=stock_snapshots_quarantine")).to_pandas()
    assert bronze == truth["records"] == len(silver) + len(quarantine)
    negative = quarantine["_rejection_reasons"].map(lambda reasons: "non_negative_quantity" in reasons).sum()
    assert negative == truth["defects"]["negative_quantity"] > 0

    sites = set(DeltaTable(str(lake / GOLD_TABLES["dim_site"])).to_pandas()["site_id"]) - {"UNKNOWN"}
    days = set(silver["snapshot_date"])
    stock_kpi = DeltaTable(str(lake / GOLD_TABLES["kpi_rupture_stock"])).to_pandas()
    assert len(stock_kpi) == len(days) * len(sites) > 0
    assert set(zip(stock_kpi["date"], stock_kpi["site_id"])) == {(d, s) for d in days for s in sites}
    assert stock_kpi["stockout_rate"].astype(float).between(0, 1).all()

    deliveries = DeltaTable(str(lake / "silver/domain=pharma/table=deliveries")).to_pandas()
    delivery_kpi = DeltaTable(str(lake / GOLD_TABLES["kpi_performance_livraison"])).to_pandas()
    assert set(zip(delivery_kpi["date"], delivery_kpi["site_id"])) == set(
        zip(deliveries["promised_date"], deliveries["site_id"])
    )
    assert delivery_kpi["deliveries_due"].sum() == len(deliveries) > 0
    # fact_ventes got its site key from dim_site
    fact = DeltaTable(str(lake / GOLD_TABLES["fact_ventes"])).to_pyarrow_table(columns=["site_sk"])
    assert fact.column("site_sk").null_count == 0


def test_second_run_for_the_same_date_gives_the_same_tables(daily):
    assert daily["second"] is not None and daily["second"].ok, daily["second"] and daily["second"].error
    lake = daily["lake"]
    again = {name: _rows(lake, rel) for name, rel in GOLD_TABLES.items()}
    assert again == daily["counts_after_first"]


def test_energy_fact_has_one_row_per_machine_hour_and_all_the_bronze_kwh(daily):
    """fact_consommation_energie: one row per (machine, hour) read, and every clean kWh."""
    readings = DeltaTable(str(daily["lake"] / JSON_BRONZE_TABLES["iot_readings"])).to_pandas(
        columns=["machine_id", "ts", "kwh", "_corrupt_record"]
    )
    readings = readings[readings["_corrupt_record"].isna()].drop_duplicates(["machine_id", "ts"])
    hours = readings.assign(hour=readings["ts"].dt.floor("h"))
    machine_hours = hours[["machine_id", "hour"]].drop_duplicates()
    fact = DeltaTable(
        str(daily["lake"] / "gold/domain=energy/model=star/table=fact_consommation_energie")
    ).to_pandas(columns=["machine_sk", "hour_key", "kwh"])
    assert len(fact) == len(machine_hours) > 0
    assert not fact.duplicated(["machine_sk", "hour_key"]).any() and fact["machine_sk"].notna().all()
    assert fact["kwh"].sum() == pytest.approx(readings["kwh"].sum(), rel=1e-6)


def test_a_failing_notebook_fails_the_job_naming_task_cell_and_error(tmp_path, monkeypatch):
    """An empty referential database: bronze_referential cannot read its tables."""
    monkeypatch.setenv("LAKEHOUSE_HOME", str(PROJECT_ROOT))
    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(tmp_path / "var"))
    from lakehouse.config import load_settings
    from lakehouse.postgres import ensure_server

    ensure_server(load_settings())
    run = _run_daily(tmp_path / "lake", tmp_path / "runs", "dag_ingest_ref_data")
    assert not run.ok
    failed = run.tasks["bronze_referential"]
    assert failed.state == "FAILED"
    assert "bronze_referential" in run.error and "ingest_referential.ipynb" in run.error
    assert 'relation "referential.' in failed.error  # the missing table is named
    assert "dataset 'bronze_" in failed.error  # and the pipeline dataset that needed it
    assert Path(failed.output_notebook).is_file()  # the error cell is kept for reading


def test_quarantine_reasons_match_the_injected_defects_exactly(daily):
    truth = json.loads((daily["settings"].ground_truth_dir / "defects.json").read_text())
    injected = truth["order_lines"]["defects"]
    quarantine = DeltaTable(
        str(daily["lake"] / "silver/domain=pharma/table=order_lines_quarantine")
    ).to_pandas()
    first_reason = quarantine["_rejection_reasons"].map(lambda reasons: reasons[0]).value_counts().to_dict()
    assert first_reason == {
        "latest_version_of_line": injected["duplicate"],
        "known_product": injected["unknown_product"],
        "positive_quantity": injected["negative_quantity"],
        "well_formed_row": injected["ragged_row"],
        "valid_order_date": injected["impossible_date"],
    }


def test_event_log_shows_the_expectation_counts_of_the_run(daily):
    """The pipeline's event log holds one row per flow, with its expectation counts."""
    log = DeltaTable(str(daily["lake"] / "_system/event_log")).to_pandas()
    silver = log[(log["dataset"] == "silver_order_lines") & (log["status"] == "COMPLETED")].iloc[0]
    failed = {e["name"]: e["failed"] for e in silver["expectations"]}
    truth = json.loads((daily["settings"].ground_truth_dir / "defects.json").read_text())["order_lines"]
    assert failed["positive_quantity"] >= truth["defects"]["negative_quantity"]
    assert failed["known_product"] >= truth["defects"]["unknown_product"]
    assert failed["latest_version_of_line"] == truth["defects"]["duplicate"]
    assert silver["rows_dropped"] == silver["rows_read"] - silver["rows_written"]
    assert set(log["dataset"]) >= {
        "bronze_order_lines",
        "bronze_products",
        "silver_order_lines",
        "fact_ventes",
    }


def test_pipeline_dry_run_of_the_real_pipeline_has_no_problem(daily, monkeypatch):
    """Every dataset of the medallion pipeline analyses cleanly against the built lake."""
    from click.testing import CliRunner

    from lakehouse.cli import main
    from lakehouse.medallion import medallion_graph

    monkeypatch.setenv("LAKEHOUSE_LAKE_ROOT", str(daily["lake"]))
    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(daily["settings"].var_dir))
    result = CliRunner().invoke(main, ["pipeline", "dry-run", "--run-date", RUN_DATE])
    assert result.exit_code == 0, result.output
    assert "problem" not in result.output and result.output.count("ok ") == len(medallion_graph().datasets)


def test_every_production_batch_line_is_in_silver_or_its_quarantine(daily):
    lake = daily["lake"]
    truth = json.loads((daily["settings"].ground_truth_dir / "defects.json").read_text())["production_batches"]
    bronze = _rows(lake, "bronze/source=erp/table=production_batches")
    silver = _rows(lake, "silver/domain=energy/table=production_runs")
    quarantine = DeltaTable(str(lake / "silver/domain=energy/table=production_runs_quarantine")).to_pandas()
    assert bronze == truth["records"] == silver + len(quarantine)
    malformed = quarantine["_rejection_reasons"].map(lambda reasons: "well_formed_line" in reasons).sum()
    assert malformed == truth["defects"]["malformed_json"]
