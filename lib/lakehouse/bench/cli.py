"""``lakehouse bench``: measured speed and scale against reference engines."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markdown import Markdown

console = Console(width=None if sys.stdout.isatty() else 160)
DEFAULT_SCALES = "0.1,1,5,20,50"


def _scales(value: str) -> list[float]:
    try:
        scales = [float(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: expected numbers separated by commas, e.g. 0.1,1,5") from exc
    if not scales or any(s <= 0 for s in scales):
        raise click.BadParameter(f"{value!r}: give at least one scale factor, each > 0")
    return scales


@click.group("bench")
def bench_cli() -> None:
    """Benchmarks: stage timings, incremental cost, engines side by side.

    \b
    Examples:
      lakehouse bench run --scales 0.1,1,5
      lakehouse bench run --scales 0.1 --no-classic
      lakehouse bench run --scales 1 --spark-remote local    # after `lakehouse spark serve`
      lakehouse bench chart bench/results/bench-20261126T143246Z.json
    """


@bench_cli.command("run")
@click.option(
    "--scales",
    default=DEFAULT_SCALES,
    show_default=True,
    help="Scale factors, comma-separated (1 = the default dataset).",
)
@click.option("--days", type=int, default=30, show_default=True, help="Days of history before the new day.")
@click.option("--run-date", default="2026-11-26", show_default=True, help="The new day (YYYY-MM-DD).")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Lakes and inputs; default var/bench.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Reports; default bench/results.",
)
@click.option(
    "--classic/--no-classic",
    default=True,
    show_default=True,
    help="Also run classic local JVM Spark (about 20 s to start).",
)
@click.option(
    "--classic-max-scale",
    type=float,
    default=5.0,
    show_default=True,
    help="Classic Spark only up to this scale (it needs minutes per run beyond it; DuckDB runs at every scale).",
)
@click.option(
    "--ml-max-scale",
    type=float,
    default=20.0,
    show_default=True,
    help="Model training and scoring only up to this scale (training is not a daily step: 6 minutes at scale 20).",
)
@click.option(
    "--keep-lakes/--no-keep-lakes",
    default=False,
    show_default=True,
    help="Keep each scale's lake and inputs under --workdir (scale 50: about 20 GB) instead of deleting them once measured.",
)
@click.option(
    "--spark-remote",
    default=None,
    metavar="URL|local",
    help="Also run the gold subset and the whole pipeline (history, new day, nothing new) on this Apache Spark "
    "Connect server (local: the one of `lakehouse spark serve`); it must reach --workdir.",
)
@click.option(
    "--daily-job/--no-daily-job",
    default=True,
    show_default=True,
    help="With --spark-remote: also time `lakehouse jobs run daily` for the new day on both engines.",
)
def bench_run(
    scales: str,
    days: int,
    run_date: str,
    workdir: Path | None,
    out: Path | None,
    classic: bool,
    classic_max_scale: float,
    ml_max_scale: float,
    keep_lakes: bool,
    spark_remote: str | None,
    daily_job: bool,
) -> None:
    """Generate each scale, time generate/bronze/silver/gold, the daily increment
    against a full rebuild, ML training and scoring and the BI exports, and the gold
    subset on the embedded engine, classic Spark and DuckDB (results checked
    identical). With --spark-remote, the stages and the daily job on Apache Spark
    too, side by side. Writes JSON and Markdown reports."""
    from lakehouse.bench.measure import PeakMemory
    from lakehouse.bench.report import machine, report_paths, write_reports
    from lakehouse.bench.runner import run_scale
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark, stop_embedded_engine

    factors = _scales(scales)
    try:
        day = dt.date.fromisoformat(run_date)
    except ValueError as exc:
        raise click.BadParameter(f"--run-date {run_date!r}: expected YYYY-MM-DD") from exc
    settings = load_settings()
    workdir = (workdir or settings.var_dir / "bench").resolve()
    out = (out or settings.project_root / "bench" / "results").resolve()
    os.environ.setdefault("RUST_LOG", "warn")
    json_path, md_path = report_paths(out)
    record: dict[str, object] = {
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "scales": [],
    }
    spark_connect = None
    if spark_remote:
        if spark_remote == "local":
            from lakehouse.spark_server import read_state

            state = read_state(settings)
            if state is None or not state.alive:
                raise click.ClickException(
                    "no local Spark Connect server: start one with `lakehouse spark serve`"
                )
            spark_remote = state.url
        spark_connect = get_spark(
            load_settings(spark={"engine": "remote", "remote": spark_remote}), app_name="bench"
        )
        record["spark_remote"] = spark_remote
    spark = get_spark(load_settings(spark={"engine": "sail"}), app_name="bench")
    try:
        with PeakMemory() as memory:
            for factor in factors:
                scale_dir = workdir / f"scale={factor:g}"
                result = run_scale(
                    spark,
                    scale_dir,
                    scale=factor,
                    days=days,
                    run_date=day,
                    memory=memory,
                    classic=classic and factor <= classic_max_scale,
                    ml=factor <= ml_max_scale,
                    spark_connect=spark_connect,
                    daily_job_remote=spark_remote if daily_job else None,
                    progress=lambda message: console.print(message, highlight=False),
                )
                record["scales"].append(result.to_json())  # type: ignore[union-attr]
                record["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
                write_reports(record, json_path, md_path)  # after each scale: a later failure keeps it
                if not keep_lakes:
                    shutil.rmtree(scale_dir, ignore_errors=True)
    finally:
        stop_embedded_engine()
    console.print(Markdown(md_path.read_text(encoding="utf-8")))
    console.print(f"JSON: {json_path}\nMarkdown: {md_path}")


@bench_cli.command("json-parse")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def bench_json_parse(files: tuple[Path, ...]) -> None:
    """Time the bronze JSON-lines parser on FILES, line by line (Python) against the
    vectorised path (Arrow), with the IoT readings schema; no engine involved.

    \b
    Example:
      lakehouse bench json-parse lake/landing/source=iot/readings/2026-11-2*/*.jsonl
    """
    import time

    from lakehouse.bronze.sources import IOT_READING_SCHEMA
    from lakehouse.pipelines.autoloader import TextFormat, parse_file

    schema = [tuple(part.strip().split(" ", 1)) for part in IOT_READING_SCHEMA.split(",")]
    columns, types = [name for name, _ in schema], dict(schema)
    fmt = TextFormat("json", encoding="utf-8-sig")
    contents = [(str(path), path.read_bytes()) for path in files]
    for label, options in (("line by line (Python json)", {}), ("vectorised (Arrow)", {"types": types})):
        started = time.perf_counter()
        rows = sum(len(parse_file(content, name, fmt, columns, **options)) for name, content in contents)
        seconds = time.perf_counter() - started
        console.print(f"{label:28} {rows:>10,} rows  {seconds:7.2f} s  {rows / seconds:>10,.0f} rows/s")


from lakehouse.bench.chart import bench_chart  # noqa: E402  (its module imports matplotlib lazily)

bench_cli.add_command(bench_chart)
