"""The benchmark's curves: wall time and peak memory against scale, as one SVG chart.

From one report of ``lakehouse bench run`` (the JSON record of
``lakehouse.bench.report``, one entry per scale in ``scales``), three log-log panels:

1. wall seconds per stage: generate, bronze, silver and gold of the history run, the
   daily update (its bronze, silver and gold summed) and the full rebuild (summed);
2. peak RSS (MiB) of the same stages; a summed run's peak is the highest of its
   stages' peaks;
3. the gold subset of ``lakehouse.bench.compare`` on each engine (best run), and, when
   the report has them (``--spark-remote``), the whole pipeline's stages on Apache
   Spark over Spark Connect (dashed).

A value the report does not have at a scale (classic Spark not run, no full rebuild
with ``extras=False``, no Spark Connect run) is an absent point, never a zero; so is a
value <= 0, which a log axis cannot place. The same report always gives the same
bytes: fixed SVG ids (``svg.hashsalt``), glyphs as paths, no date or creator in the
metadata.

``curves`` is the pure part (report -> points), ``render_svg`` draws them and
``write_chart`` writes the file; ``bench_chart`` is ``lakehouse bench chart``.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import click

__all__ = ["bench_chart", "curves", "render_svg", "series_id", "write_chart"]

Points = list[tuple[float, float]]

WALL, MEMORY, ENGINES = "wall", "memory", "engines"
PANELS: dict[str, tuple[str, str]] = {  # panel -> (title, y label)
    WALL: ("Wall time per stage", "wall s"),
    MEMORY: ("Peak memory per stage (process tree)", "peak RSS MiB"),
    ENGINES: ("Gold subset per engine; the pipeline on Spark Connect (dashed)", "wall s"),
}
HISTORY_STAGES = ("generate", "bronze", "silver", "gold")
DAILY, REBUILD = "daily update", "full rebuild"
SPARK_PIPELINE = "Spark Connect pipeline"  # label prefix of the whole pipeline's stages on Spark
STAGE_COLOURS = {
    "generate": "#e377c2",
    "bronze": "#a0522d",
    "silver": "#4682b4",
    "gold": "#d4a017",
    DAILY: "#2ca02c",
    REBUILD: "#d62728",
}
ENGINE_COLOURS = {
    "embedded (Sail)": "#1f77b4",
    "DuckDB": "#ff7f0e",
    "classic Spark local[2]": "#8c564b",
    "Apache Spark over Spark Connect": "#9467bd",
}
OTHER_COLOURS = ("#17becf", "#bcbd22", "#7f7f7f", "#393b79")  # engines added later
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
SVG_SALT = "lakehouse.bench.chart"


def series_name(panel: str, label: str) -> str:
    """``"wall: bronze"``: the panel, then the series' legend label."""
    return f"{panel}: {label}"


def series_id(name: str) -> str:
    """The SVG id of a series' line group (``"wall: daily update"`` -> ``"wall-daily-update"``),
    so a reader of the SVG finds each series by name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def curves(report: dict) -> dict[str, Points]:
    """Every series of the chart: ``"<panel>: <label>"`` -> ``[(scale, value), ...]``
    sorted by scale, one point per scale where the report has a value (> 0). Series
    come in drawing order: panel by panel, stages in pipeline order, engines as the
    report lists them."""
    scales = report.get("scales") if isinstance(report, dict) else None
    if not isinstance(scales, list) or not scales:
        found = sorted(report) if isinstance(report, dict) else type(report).__name__
        raise ValueError(
            "benchmark report: expected a non-empty 'scales' list (the JSON written by "
            f"`lakehouse bench run`), found {found}"
        )
    points: dict[str, Points] = {}

    def add(panel: str, label: str, scale: float, value: float | None) -> None:
        series = points.setdefault(series_name(panel, label), [])
        if value is not None and value > 0:
            series.append((scale, value))

    for entry in scales:
        scale = float(entry["scale"])
        incremental = entry.get("incremental", {})
        history = {s["stage"]: s for s in entry.get("stages", [])}
        for label in HISTORY_STAGES:
            stage = history.get(label)
            add(WALL, label, scale, stage and stage["seconds"])
            add(MEMORY, label, scale, stage and stage["peak_rss_mib"])
        for label, key in ((DAILY, "daily_update"), (REBUILD, "full_rebuild")):
            run = incremental.get(key) or []
            add(WALL, label, scale, _summed_seconds(run))
            add(MEMORY, label, scale, max((s["peak_rss_mib"] for s in run), default=None))
        for engine, seconds in (entry.get("comparison") or {}).get("seconds", {}).items():
            add(ENGINES, engine, scale, seconds)
        spark = entry.get("spark_connect_pipeline")
        if spark:
            spark_history = {s["stage"].split()[-1]: s for s in spark.get("history", [])}
            for layer in HISTORY_STAGES[1:]:
                stage = spark_history.get(layer)
                add(ENGINES, f"{SPARK_PIPELINE}, {layer}", scale, stage and stage["seconds"])
            add(
                ENGINES, f"{SPARK_PIPELINE}, {DAILY}", scale, _summed_seconds(spark.get("daily_update") or [])
            )
    ordered = sorted(points.items(), key=lambda item: list(PANELS).index(item[0].partition(": ")[0]))
    return {name: sorted(series) for name, series in ordered if series}


def _summed_seconds(stages: list[dict]) -> float | None:
    """Wall seconds of a run of stages one after the other; None without stages."""
    return round(sum(s["seconds"] for s in stages), 3) if stages else None


def _title(report: dict) -> str:
    host = report.get("machine", {})
    parts = [f"Benchmark {report.get('started_at', '')}".strip()]
    if host.get("logical_cpus"):
        parts.append(f"{host['logical_cpus']} logical CPUs")
    if host.get("load_average_1_5_15"):
        parts.append(f"load average at start {host['load_average_1_5_15'][0]}")
    return ", ".join(parts) + " (log-log; a missing point: not measured at that scale)"


def _style(panel: str, label: str, index: int) -> dict[str, object]:
    """Line style of a series: a stage keeps its colour in every panel; the pipeline on
    Spark Connect is dashed in its stage's colour."""
    if label.startswith(SPARK_PIPELINE):
        stage = label.rsplit(", ", 1)[-1]
        return {"color": STAGE_COLOURS[stage], "linestyle": "--", "marker": "x"}
    if panel == ENGINES:
        colour = ENGINE_COLOURS.get(label, OTHER_COLOURS[index % len(OTHER_COLOURS)])
        return {"color": colour, "linestyle": "-", "marker": MARKERS[index % len(MARKERS)]}
    return {"color": STAGE_COLOURS[label], "linestyle": "-", "marker": MARKERS[index % len(MARKERS)]}


def _plain(value: float, _position: object = None) -> str:
    """A tick as a plain number (0.1, 5, 2000), not a power of ten."""
    return f"{value:g}"


def _two_and_five(value: float, _position: object = None) -> str:
    """Minor ticks of a log axis: only 2x and 5x a power of ten are labelled."""
    if value <= 0:
        return ""
    return _plain(value) if round(value / 10 ** math.floor(math.log10(value) + 1e-9)) in (2, 5) else ""


def render_svg(report: dict) -> bytes:
    """The three panels of ``curves(report)`` as SVG bytes (matplotlib, Agg canvas)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    series = curves(report)
    scales = sorted({scale for points in series.values() for scale, _ in points})
    rc = {"svg.hashsalt": SVG_SALT, "svg.fonttype": "path", "font.family": "DejaVu Sans", "font.size": 9}
    with rc_context(rc):
        figure = Figure(figsize=(16, 5.6), layout="constrained")
        FigureCanvasAgg(figure)
        figure.suptitle(_title(report), fontsize=10)
        axes = figure.subplots(1, len(PANELS))
        for ax, (panel, (title, ylabel)) in zip(axes, PANELS.items(), strict=True):
            drawn = [(name, pts) for name, pts in series.items() if name.startswith(f"{panel}: ")]
            for index, (name, pts) in enumerate(drawn):
                label = name.partition(": ")[2]
                xs, ys = zip(*pts, strict=True)
                style = _style(panel, label, index)
                ax.plot(xs, ys, label=label, gid=series_id(name), linewidth=1.6, markersize=5, **style)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(FixedLocator(scales))
            ax.xaxis.set_major_formatter(_plain)
            ax.xaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_formatter(_plain)
            ax.yaxis.set_minor_formatter(_two_and_five)
            ax.set_title(title, fontsize=9.5)
            ax.set_xlabel("scale factor (1 = the default dataset)")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", linewidth=0.4, alpha=0.5)
            if drawn:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
            else:
                ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center")
        buffer = io.BytesIO()
        figure.savefig(
            buffer, format="svg", metadata={"Date": None, "Creator": None, "Title": "Benchmark curves"}
        )
    return buffer.getvalue()


def write_chart(report: dict, path: Path) -> Path:
    """Write the chart of ``report`` (a benchmark record) to ``path`` (an .svg, its
    folder created); returns ``path``."""
    path = Path(path)
    svg = render_svg(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(svg)
    return path


def load_report(path: Path) -> dict:
    """A benchmark report's JSON; the error names the file and what was expected."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path}: not a readable benchmark report (JSON of `lakehouse bench run`): {exc}"
        ) from exc
    if not isinstance(report, dict):
        raise ValueError(f"{path}: expected a JSON object with 'scales', found a {type(report).__name__}")
    return report


@click.command("chart")
@click.argument("report", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SVG file to write; default: REPORT with the .svg suffix, beside it.",
)
def bench_chart(report: Path, out: Path | None) -> None:
    """Draw wall time and peak memory against scale (log-log), per stage and per engine,
    from one benchmark REPORT (the JSON of `lakehouse bench run`), as an SVG.

    \b
    Example:
      lakehouse bench chart bench/results/bench-20261126T143246Z.json --out docs/img/bench_curves.svg
    """
    try:
        record = load_report(report)
        series = curves(record)
        path = write_chart(record, out or report.with_suffix(".svg"))
    except ValueError as exc:
        raise click.ClickException(f"{report}: {exc}" if str(report) not in str(exc) else str(exc)) from exc
    scales = sorted({scale for points in series.values() for scale, _ in points})
    click.echo(f"{path}: {len(series)} series over scales {', '.join(f'{s:g}' for s in scales)}")
