"""The `lakehouse` command line, including the README's run command (quickstart)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.cli import _runs_a_job, main

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("quickstart", "generate", "jobs", "tables", "postgres"):
        assert command in result.output


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["lakehouse", "jobs", "run", "daily", "-p", "run_date=2026-11-26"], True),
        (["lakehouse", "jobs", "repair", "R1"], True),
        (["lakehouse", "jobs", "backfill", "daily", "--from", "2026-11-20"], True),
        (["lakehouse", "jobs", "run", "--help"], False),
        (["lakehouse", "jobs", "status"], False),
        (["lakehouse", "jobs"], False),
        (["/opt/jobs/bin/lakehouse", "generate"], False),
    ],
)
def test_the_fork_server_starts_first_only_for_commands_that_run_tasks(argv: list[str], starts: bool) -> None:
    assert _runs_a_job(argv) is starts


def test_tables_lists_delta_tables_with_row_counts(spark, lake):
    from lakehouse.lake import write_delta

    write_delta(spark.createDataFrame([(1,), (2,), (3,)], "id int"), lake.gold("pharma", "star", "dim_x"))
    result = CliRunner().invoke(main, ["tables", "--lake-root", lake.root])
    assert result.exit_code == 0, result.output
    assert "gold.pharma.star.dim_x" in result.output and "│    3 │" in result.output


def test_pipeline_events_show_each_flow_and_why_it_was_skipped(spark, lake, monkeypatch):
    from lakehouse import pipelines as dp

    with dp.graph("cli_events") as g:

        @dp.materialized_view
        def numbers():
            return dp.current().spark.createDataFrame([(1,), (2,)], "n int")

    runner = dp.PipelineRunner(spark, g, lake)
    runner.run(run_id="first")
    runner.run(run_id="second")
    monkeypatch.setenv("LAKEHOUSE_LAKE_ROOT", lake.root)

    first = CliRunner().invoke(main, ["pipeline", "events", "--run-id", "first"])
    second = CliRunner().invoke(main, ["pipeline", "events"])  # the latest run

    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "run first" in first.output and "COMPLETED" in first.output
    assert "run second" in second.output
    assert "SKIPPED" in second.output and "inputs and definition unchanged" in second.output


def test_quickstart_rejects_an_impossible_scale_before_doing_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("LAKEHOUSE_LAKE_ROOT", str(tmp_path / "lake"))
    result = CliRunner().invoke(main, ["quickstart", "--scale", "-1"])
    assert result.exit_code != 0
    assert "generator.scale" in result.output
    assert not (tmp_path / "lake").exists()


@pytest.mark.slow
def test_quickstart_generates_runs_and_prints_where_things_are(tmp_path, monkeypatch):
    """The README's `make run`, on a tiny scale, in temporary folders: 11 days, enough
    to bootstrap the energy models with a 3-day hold-out."""
    for name, folder in (("LAKE_ROOT", "lake"), ("VAR_DIR", "var"), ("RUNS_DIR", "runs")):
        monkeypatch.setenv(f"LAKEHOUSE_{name}", str(tmp_path / folder))
    monkeypatch.setenv("LAKEHOUSE_ML__HOLDOUT_DAYS", "3")
    result = CliRunner().invoke(
        main, ["quickstart", "--scale", "0.05", "--days", "11", "--run-date", "2026-11-26"]
    )
    assert result.exit_code == 0, result.output
    assert "gold.pharma.star.fact_ventes" in result.output
    assert "Executed notebooks:" in result.output and "run.json" in result.output
    executed = sorted(p.name for p in (tmp_path / "runs").rglob("*.ipynb"))
    assert executed == [
        "bootstrap_models.ipynb",
        "bronze_erp.ipynb",
        "bronze_iot.ipynb",
        "bronze_referential.ipynb",
        "bronze_regulatory.ipynb",
        "build_dashboards.ipynb",
        "catalog.ipynb",
        "export_tableau.ipynb",
        "gold_energy.ipynb",
        "gold_pharma.ipynb",
        "load_postgres_bi.ipynb",
        "quality_alert.ipynb",
        "quality_gate.ipynb",
        "run_quality.ipynb",
        "score_energy.ipynb",
        "silver_energy.ipynb",
        "silver_pharma.ipynb",
    ]
    # make run alone delivers the models: trained, registered, scoring into gold
    from deltalake import DeltaTable

    gold = tmp_path / "lake" / "gold" / "domain=energy" / "model=prediction"
    for table in ("consumption_forecast", "anomaly_scores"):
        rows = DeltaTable(str(gold / f"table={table}")).to_pandas()
        assert len(rows) > 0, table
        assert rows[["model_name", "model_version", "model_run_id"]].notna().all().all(), table
    assert "energy_consumption_forecast v1: skill_mae" in result.output
    assert "energy_anomaly_detector v1 (energy_anomaly): f1_overall" in result.output
    dashboards = tmp_path / "var" / "bi" / "dashboards"
    assert "Hours raised by the anomaly model" in (dashboards / "energy_machine_anomalies.html").read_text()
    assert (
        "Forecast error (MAE) where the actual is known"
        in (dashboards / "energy_forecast_vs_actual.html").read_text()
    )


def test_pipeline_lineage_as_svg_names_every_dataset(tmp_path):
    out = tmp_path / "lineage.svg"
    result = CliRunner().invoke(main, ["pipeline", "lineage", "--format", "svg", "--out", str(out)])
    assert result.exit_code == 0, result.output
    svg = out.read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    for dataset in (
        "bronze_order_lines",
        "silver_order_lines",
        "dim_produit",
        "fact_ventes",
        "kpi_marge_journaliere",
    ):
        assert f">{dataset}</text>" in svg
    mermaid = CliRunner().invoke(main, ["pipeline", "lineage"]).output
    assert "silver_order_lines --> fact_ventes" in mermaid
