"""One benchmark run per scale factor.

For a scale: generate ``days + 1`` days of sources ending on the run date, hold the
newest day's drops back, run bronze, silver and gold on the ``days`` of history
(the stage timings), put the newest day back and run the daily update (the
incremental cost), the same update again with nothing new (its fixed floor), and
what follows it (model training and scoring, BI exports),
then rebuild everything from all files (``full_refresh``, the cost the daily run
avoids). Finally the gold subset of ``lakehouse.bench.compare``
runs on the embedded engine, on classic local Spark and on DuckDB over the same
Parquet inputs, and the three results are checked against each other.

With a Spark Connect session (``--spark-remote``), the same three runs go through
bronze, silver and gold on Apache Spark too, on a copy of the landing files, and
optionally the ``daily`` job runs for the new day on both engines
(``lakehouse.bench.spark_pipeline``).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse.bench import compare
from lakehouse.bench import spark_pipeline as on_spark
from lakehouse.bench.measure import PeakMemory, StageResult, folder_bytes, stage
from lakehouse.config import Settings, load_settings
from lakehouse.context import RunContext
from lakehouse.lake import Lake

LAYERS = ("bronze", "silver", "gold")
Progress = Callable[[str], None]
SLOWEST_FLOWS = 3  # per stage, from the event log: where the time goes


@dataclass
class ScaleResult:
    scale: float
    days: int
    run_date: dt.date
    stages: list[StageResult] = field(default_factory=list)
    daily: list[StageResult] = field(default_factory=list)
    full_rebuild: list[StageResult] = field(default_factory=list)
    nothing_new: list[StageResult] = field(default_factory=list)  # the daily run again: the fixed floor
    downstream: list[StageResult] = field(default_factory=list)
    tables: list[dict[str, object]] = field(default_factory=list)
    comparison: dict[str, object] = field(default_factory=dict)
    spark_connect: on_spark.EngineStages | None = None  # the same runs on Apache Spark
    daily_job: dict[str, object] | None = None  # `lakehouse jobs run daily` on both engines

    @property
    def incremental_ratio(self) -> float | None:
        daily = sum(s.seconds for s in self.daily)
        full = sum(s.seconds for s in self.full_rebuild)
        return round(full / daily, 2) if daily > 0 and full > 0 else None

    def to_json(self) -> dict[str, object]:
        return {
            "scale": self.scale,
            "days_of_history": self.days,
            "run_date": self.run_date.isoformat(),
            "stages": [s.to_json() for s in self.stages],
            "downstream": [s.to_json() for s in self.downstream],
            "incremental": {
                "daily_update": [s.to_json() for s in self.daily],
                "full_rebuild": [s.to_json() for s in self.full_rebuild],
                "nothing_new": [s.to_json() for s in self.nothing_new],
                "full_rebuild_over_daily": self.incremental_ratio,
            },
            "tables": self.tables,
            "comparison": self.comparison,
            **({"spark_connect_pipeline": self.spark_connect_json()} if self.spark_connect else {}),
            **({"daily_job": self.daily_job} if self.daily_job else {}),
        }

    def spark_connect_json(self) -> dict[str, object]:
        """The Spark runs and, side by side with the embedded engine's, their ratios."""
        sail = on_spark.EngineStages(self.stages, self.daily, self.nothing_new)
        spark = self.spark_connect
        rows = on_spark.side_by_side(sail, spark)
        daily_total = next(r for r in rows if r["run"] == "daily update" and r["stage"] == "total")
        return {
            "history": [s.to_json() for s in spark.history],
            "daily_update": [s.to_json() for s in spark.daily],
            "nothing_new": [s.to_json() for s in spark.nothing_new],
            "side_by_side": rows,
            "daily_update_spark_over_sail": daily_total["spark_over_sail"],
            "same_rows_written": all(r["same_rows_written"] for r in rows),
        }


def bench_settings(workdir: Path, scale: float, days: int, run_date: dt.date) -> Settings:
    """Settings of one scale's private lake and PostgreSQL (nothing of ./lake or ./var)."""
    return load_settings(
        lake_root=str(workdir / "lake"),
        var_dir=str(workdir / "var"),
        runs_dir=str(workdir / "runs"),
        run_date=run_date,
        generator={"scale": scale, "days": days + 1},
    )


def run_scale(
    spark,
    workdir: Path,
    *,
    scale: float,
    days: int,
    run_date: dt.date,
    memory: PeakMemory,
    classic: bool = True,
    spark_connect=None,
    daily_job_remote: str | None = None,
    extras: bool = True,
    ml: bool = True,
    progress: Progress = print,
) -> ScaleResult:
    """Measure one scale factor in ``workdir`` (emptied first). ``spark_connect``: a
    session on an Apache Spark Connect server that reaches ``workdir``; the whole
    pipeline runs on it too. ``daily_job_remote`` (with ``spark_connect``): that
    server's URL, to time ``lakehouse jobs run daily`` for the new day on both engines.
    ``extras=False`` leaves out what follows the three runs on the embedded engine (ML,
    exports, the full rebuild, table sizes, the gold subset): a quick check. ``ml=False``
    leaves out model training and scoring only."""
    from lakehouse.generate import generate_all
    from lakehouse.postgres import ensure_server

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    settings = bench_settings(workdir, scale, days, run_date)
    result = ScaleResult(scale, days, run_date)
    daily_job = daily_job_remote is not None and spark_connect is not None
    if daily_job:
        on_spark.linked_lake(Path(settings.lake_root))

    progress(f"scale {scale}: generate {days + 1} days")
    with stage("generate", memory) as measured:
        report = generate_all(settings, endpoint=ensure_server(settings))
        measured.rows_out = sum(report.row_counts.values())
        measured.details = {"bytes_written": report.bytes_written}
    result.stages.append(measured)

    spark_settings = None
    if spark_connect is not None:  # the same landing files, the same PostgreSQL
        spark_settings = settings.model_copy(update={"lake_root": str(workdir / "spark" / "lake")})
        copy_landing(Path(settings.lake_root), Path(spark_settings.lake_root), linked=daily_job)
    held = hold_back_day(Path(settings.lake_root) / "landing", workdir / "held", run_date)
    history_date = run_date - dt.timedelta(days=1)
    result.stages += run_layers(spark, settings, history_date, memory, progress, label="")
    job_lake = on_spark.snapshot_lake(Path(settings.lake_root)) if daily_job else None
    restore_day(held)
    result.daily = run_layers(spark, settings, run_date, memory, progress, label="daily ")
    result.nothing_new = run_layers(spark, settings, run_date, memory, progress, label="again ")
    if extras:
        result.downstream = run_downstream(
            spark, settings, memory, progress, ml=ml
        )  # settings.run_date: the new day
        result.full_rebuild = run_layers(
            spark, settings, run_date, memory, progress, label="rebuild ", full=True
        )
        result.tables = table_sizes(settings.lake_root)
        progress(f"scale {scale}: engines side by side")
        result.comparison = compare_engines(
            spark, Lake(settings.lake_root), workdir / "compare", classic=classic, spark_connect=spark_connect
        )
    if spark_settings is not None:
        progress(f"scale {scale}: the whole pipeline on {on_spark.SPARK_CONNECT}")
        result.spark_connect, spark_job_lake = run_spark_pipeline(
            spark_connect, spark_settings, workdir / "spark", run_date, memory, progress, snapshot=daily_job
        )
        if daily_job:
            job_lakes = {"sail": job_lake, "spark": spark_job_lake}
            result.daily_job = time_daily_jobs(
                settings, spark_settings, job_lakes, daily_job_remote, progress
            )
    return result


def copy_landing(lake: Path, spark_lake: Path, *, linked: bool) -> None:
    """The Spark lake starts with a copy of the generated landing files."""
    spark_lake.parent.mkdir(parents=True, exist_ok=True)
    if linked:
        on_spark.linked_lake(spark_lake)
    shutil.copytree(lake / "landing", spark_lake / "landing", dirs_exist_ok=True)


def run_spark_pipeline(
    spark_connect,
    settings: Settings,
    folder: Path,
    run_date: dt.date,
    memory: PeakMemory,
    progress: Progress,
    *,
    snapshot: bool,
) -> tuple[on_spark.EngineStages, Path | None]:
    """History, the new day and the new day again on the Spark Connect engine; with
    ``snapshot``, a copy of the lake after its history run (for the daily job)."""
    held = hold_back_day(Path(settings.lake_root) / "landing", folder / "held", run_date)
    history_date = run_date - dt.timedelta(days=1)
    stages = on_spark.EngineStages()
    stages.history = run_layers(spark_connect, settings, history_date, memory, progress, label="spark ")
    job_lake = on_spark.snapshot_lake(Path(settings.lake_root)) if snapshot else None
    restore_day(held)
    stages.daily = run_layers(spark_connect, settings, run_date, memory, progress, label="spark daily ")
    stages.nothing_new = run_layers(spark_connect, settings, run_date, memory, progress, label="spark again ")
    return stages, job_lake


def time_daily_jobs(
    settings: Settings,
    spark_settings: Settings,
    job_lakes: dict[str, Path],
    spark_remote: str,
    progress: Progress,
) -> dict[str, object]:
    """``lakehouse jobs run daily`` for the new day on each engine's copy of its lake
    as it was after the history run (the new day's drops added), one engine after the
    other. The lake links point at the copies from here on."""
    run_date = settings.run_date
    measured = {}
    for label, stage_settings in (("sail", settings), ("spark", spark_settings)):
        root = Path(stage_settings.lake_root)
        on_spark.copy_day(root / "landing", job_lakes[label] / "landing", run_date)
        on_spark.point_lake_at(root, job_lakes[label])
        progress(f"  daily job on {label} ({run_date})")
        measured[label] = on_spark.run_daily_job(
            settings, root, run_date, spark_remote=spark_remote if label == "spark" else None, label=label
        )
        if measured[label]["exit_code"]:
            progress(f"  daily job on {label} failed: {measured[label].get('error', '')[-300:]}")
    return on_spark.daily_job_record(measured["sail"], measured["spark"], run_date)


def hold_back_day(landing: Path, held: Path, day: dt.date) -> list[tuple[Path, Path]]:
    """Move every ``landing/source=*/<entity>/<day>/`` drop folder aside; returns the moves."""
    moves = []
    for folder in sorted(landing.glob(f"source=*/*/{day.isoformat()}")):
        target = held / folder.relative_to(landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        moves.append((target, folder))
    if not moves:
        raise FileNotFoundError(f"no drop folder for {day} under {landing}: did the generator run?")
    return moves


def restore_day(moves: list[tuple[Path, Path]]) -> None:
    for held, original in moves:
        held.rename(original)


def run_layers(
    spark,
    settings: Settings,
    run_date: dt.date,
    memory: PeakMemory,
    progress: Progress,
    *,
    label: str,
    full: bool = False,
) -> list[StageResult]:
    """Bronze, silver then gold for ``run_date``; one timed stage each."""
    from lakehouse.medallion import run_layer

    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    context = RunContext(
        settings=settings.model_copy(update={"run_date": run_date}),
        spark=spark,
        lake=Lake(settings.lake_root),
        run_date=run_date,
        batch_id=f"bench-{run_date:%Y%m%d}-{label.strip() or 'history'}-{time.time_ns()}",
        started_at=started_at,
    )
    results = []
    for layer in LAYERS:
        progress(f"  {label}{layer} ({run_date})")
        with stage(f"{label}{layer}", memory) as measured:
            run = run_layer(context, layer, full_refresh=full)
        done = [e for e in run.events if e.status != "SKIPPED"]
        measured.rows_in = sum(e.rows_read or 0 for e in done)
        measured.rows_out = sum(e.rows_written or 0 for e in done)
        slowest = sorted(done, key=lambda e: -(e.duration_seconds or 0))[:SLOWEST_FLOWS]
        measured.details = {
            "flows": len(run.events),
            "skipped": len(run.events) - len(done),
            "slowest_flows": {e.dataset: e.duration_seconds or 0.0 for e in slowest},
        }
        results.append(measured)
    return results


def run_downstream(
    spark, settings: Settings, memory: PeakMemory, progress: Progress, *, ml: bool = True
) -> list[StageResult]:
    """After the daily run: model training (once, to have champions; not a daily
    step) and ML scoring unless ``ml`` is False, then the BI exports. A failing step
    is recorded with its error and the benchmark goes on."""
    steps: list[tuple[str, Callable[[], tuple[int, dict[str, object]]]]] = []
    if ml:
        steps += [
            ("ml training (not daily)", lambda: _ml_training(spark, settings)),
            ("ml scoring", lambda: _ml_scoring(spark, settings)),
        ]
    steps += [
        ("export tableau", lambda: _export_tableau(settings)),
        ("export postgres", lambda: _export_postgres(settings)),
        ("export dashboards", lambda: _export_dashboards(settings)),
    ]
    results = []
    for name, step in steps:
        progress(f"  {name} ({settings.run_date})")
        with stage(name, memory) as measured:
            try:
                measured.rows_out, measured.details = step()
            except Exception as exc:  # others' steps must not lose the measured stages
                measured.details = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
                progress(f"  {name} failed: {measured.details['error']}")
        results.append(measured)
    return results


def _ml_training(spark, settings: Settings) -> tuple[int, dict[str, object]]:
    from lakehouse.ml.training import train_all

    trained = train_all(spark, settings)
    return len(trained), {r.model_name: round(r.seconds, 2) for r in trained}


def _ml_scoring(spark, settings: Settings) -> tuple[int, dict[str, object]]:
    from lakehouse.ml.scoring import configure_and_score

    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    result = configure_and_score(settings, spark, scored_at)
    return result.anomaly_rows + result.forecast_rows, {
        "anomaly_rows": result.anomaly_rows,
        "forecast_rows": result.forecast_rows,
    }


def _export_tableau(settings: Settings) -> tuple[int, dict[str, object]]:
    from lakehouse.bi.restitution import export_extracts

    reports = export_extracts(settings)
    return sum(sum(r.rows.values()) for r in reports), {
        "extracts": len(reports),
        "bytes": sum(r.path.stat().st_size for r in reports if r.path.exists()),
    }


def _export_postgres(settings: Settings) -> tuple[int, dict[str, object]]:
    from lakehouse.bi.restitution import load_postgres

    report = load_postgres(settings)
    return sum(report.rows.values()), {"tables": len(report.rows), "views": len(report.views)}


def _export_dashboards(settings: Settings) -> tuple[int, dict[str, object]]:
    from lakehouse.bi.restitution import build_pages

    report = build_pages(settings)
    return 0, {"pages": len(report.pages), "skipped": len(report.skipped)}


def table_sizes(lake_root: str) -> list[dict[str, object]]:
    from lakehouse.catalog import describe_tables

    return [
        {"table": t.name, "rows": t.rows, "bytes": folder_bytes(t.path), "version": t.version}
        for t in describe_tables(lake_root)
    ]


SPARK_CONNECT = "Apache Spark over Spark Connect"


def compare_engines(
    spark, lake: Lake, workdir: Path, *, classic: bool = True, spark_connect=None, repeat: int = 3
) -> dict[str, object]:
    """Run the gold subset on each engine over the same Parquet inputs and check them.
    The embedded engine and DuckDB run ``repeat`` times and keep their best time (other
    work on a shared machine inflates single runs); classic Spark, slow, runs once.
    ``spark_connect``: a session on an Apache Spark Connect server (``lakehouse spark
    serve``; it must reach ``workdir``), run ``repeat`` times as well."""
    inputs, outputs = workdir / "inputs", workdir / "outputs"
    input_rows = compare.export_inputs(spark, lake, inputs)
    runs = {
        "embedded (Sail)": [compare.run_spark_subset(spark, inputs, outputs / "sail") for _ in range(repeat)],
        "DuckDB": [compare.run_duckdb_subset(inputs, outputs / "duckdb") for _ in range(repeat)],
    }
    if spark_connect is not None:
        runs[SPARK_CONNECT] = [
            compare.run_spark_subset(spark_connect, inputs, outputs / "spark_connect") for _ in range(repeat)
        ]
    seconds = {engine: min(times) for engine, times in runs.items()}
    engines = {"embedded (Sail)": outputs / "sail"}
    if spark_connect is not None:
        engines[SPARK_CONNECT] = outputs / "spark_connect"
    classic_start = None
    if classic:
        from lakehouse.bench.classic import run_classic_subset

        timing = run_classic_subset(inputs, outputs / "classic")
        seconds["classic Spark local[2]"] = timing["transform_seconds"]
        classic_start = timing["start_seconds"]
        engines["classic Spark local[2]"] = outputs / "classic"
    differences = {
        engine: compare.compare_outputs(outputs / "duckdb", folder) for engine, folder in engines.items()
    }
    sail = seconds["embedded (Sail)"]
    return {
        "input_rows": input_rows,
        "output_rows": compare.output_rows(outputs / "duckdb"),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "all_runs_seconds": {k: [round(v, 3) for v in times] for k, times in runs.items()},
        "classic_start_seconds": classic_start,
        "classic_over_embedded": round(seconds["classic Spark local[2]"] / sail, 2) if classic else None,
        "embedded_over_duckdb": round(sail / seconds["DuckDB"], 2),
        "spark_connect_over_embedded": round(seconds[SPARK_CONNECT] / sail, 2)
        if spark_connect is not None
        else None,
        "identical": all(
            not problems for per_output in differences.values() for problems in per_output.values()
        ),
        "differences_against_duckdb": differences,
    }
