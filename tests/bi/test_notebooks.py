"""The three notebooks of pipeline_load_bi, executed by papermill on a small gold lake."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

from lakehouse.jobs import load_jobs

pytestmark = pytest.mark.slow  # three kernels and an embedded PostgreSQL
PROJECT = Path(__file__).resolve().parents[2]


def _outputs(notebook: Path) -> str:
    executed = nbformat.read(notebook, as_version=4)
    return "\n".join(
        output.get("text", "") or str(output.get("data", {}).get("text/plain", ""))
        for cell in executed.cells
        for output in cell.get("outputs", [])
    )


def test_pipeline_load_bi_starts_with_the_quality_gate_then_runs_the_exports():
    job = load_jobs(PROJECT / "jobs.yaml", project_root=PROJECT).jobs["pipeline_load_bi"]
    tasks = {t.task_key: t for t in job.tasks}
    assert job.tasks[0].task_key == "quality_gate"
    assert tasks["quality_gate"].notebook == "notebooks/quality/quality_gate.ipynb"
    for key in ("export_tableau", "load_postgres_bi", "build_dashboards"):
        assert [d.task_key for d in tasks[key].depends_on] == ["quality_gate"]
        assert tasks[key].notebook == f"notebooks/bi/{key}.ipynb"


def test_the_bi_notebooks_write_extracts_schema_and_dashboards(gold_lake, tmp_path: Path, monkeypatch):
    import papermill

    # var/ (PostgreSQL data, outputs) outside pytest's temporary root: see test_postgres_bi
    var = Path(tempfile.mkdtemp(prefix="lakehouse-bi-nb-"))
    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(var))
    try:
        for name in ("export_tableau", "load_postgres_bi", "build_dashboards"):
            papermill.execute_notebook(
                str(PROJECT / "notebooks" / "bi" / f"{name}.ipynb"),
                str(tmp_path / f"{name}.ipynb"),
                parameters={"lake_root": gold_lake.root, "run_date": "2026-11-26"},
                cwd=str(PROJECT / "notebooks" / "bi"),
                kernel_name="python3",
                progress_bar=False,
            )
        assert sorted(p.name for p in (var / "bi" / "tableau").iterdir()) == ["energy.hyper", "pharma.hyper"]
        loaded = _outputs(tmp_path / "load_postgres_bi.ipynb")
        # 11 gold tables: sites 3 + days 4 + products 4 + sales 5 + stock-out 6 + deliveries 6
        # + machines 3 + hours 25 + consumption 12 + production 3 + extra KPI 2 = 73 rows
        assert "replace: 73 rows in 11 tables" in loaded
        assert "'v_pharma_stockout_rate': 6" in loaded and "'v_energy_machine_anomalies': 3" in loaded
        pages = sorted(p.name for p in (var / "bi" / "dashboards").glob("*.html"))
        assert pages == [
            "energy_forecast_vs_actual.html",  # no forecast in this lake: says it is not scored yet
            "energy_machine_anomalies.html",
            "energy_realtime_consumption.html",
            "index.html",
            "pharma_delivery_performance.html",
            "pharma_stockout_rate.html",
        ]
    finally:
        shutil.rmtree(var, ignore_errors=True)
