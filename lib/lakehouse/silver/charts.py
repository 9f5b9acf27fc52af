"""Small headline charts of the silver and gold tables, for the layer notebooks.

A headline is one aggregate per group (a day, a site, a class), computed by the
engine. A notebook asks for the headlines of all its tables at once
(:func:`headline_charts`): one query and one round trip to the engine, whatever the
number of tables. A missing or empty table gives a "no rows yet" panel instead of
failing, so the daily notebooks run on a fresh lake.

Charts are drawn as inline SVG by :class:`Chart` itself, not by a plotting library:
importing matplotlib and rendering its figures cost a notebook task about 1.5 s,
several times the queries behind the charts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Literal

from lakehouse.lake import delta_exists, read_delta

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.context import RunContext

ChartKind = Literal["line", "bar"]


@dataclass(frozen=True)
class Headline:
    """``value`` (SQL aggregate) per ``by`` (SQL expression), rows filtered by ``where``."""

    by: str
    value: str
    title: str
    kind: ChartKind = "line"  # "line" over time, "bar" over categories
    where: str | None = None


SILVER_HEADLINES = {
    "silver_order_lines": Headline("order_date", "count(1)", "Order lines per order day"),
    "silver_products": Headline("atc_class", "count(1)", "Products per ATC class", "bar"),
    "silver_product_prices": Headline(
        "year(valid_from)", "count(1)", "Price periods starting per year", "bar"
    ),
    "silver_sites": Headline("site_type", "count(1)", "Sites per type", "bar"),
    "silver_stock_snapshots": Headline("snapshot_date", "sum(quantity_on_hand)", "Units on hand per day"),
    "silver_deliveries": Headline("promised_date", "count(1)", "Deliveries per promised day"),
    "silver_recalls": Headline(
        "published_date", "count(1)", "Recall notices per day (ours)", "bar", "is_our_product"
    ),
    "silver_machines": Headline("site_id", "count(1)", "Machines per site (current)", "bar"),
    "silver_machine_history": Headline(
        "machine_id", "count(1)", "Versions per machine (relocations, re-ratings)", "bar"
    ),
    "silver_production_runs": Headline("to_date(start_ts)", "sum(units_produced)", "Units produced per day"),
    "silver_iot_readings_hourly": Headline("to_date(hour_ts)", "sum(kwh)", "Consumption per day (kWh)"),
}

# Geometry of a chart, in SVG pixels (the size of the former 7 x 2.6 inch figures).
_WIDTH, _HEIGHT = 700, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 14, 28, 62
_MAX_LABELS = {"bar": 40, "line": 12}  # x labels drawn at most; the others are skipped
_MAX_MARKERS = 100  # a longer line is drawn without a dot per point


@dataclass(frozen=True, repr=False)
class Chart:
    """One series to draw: ``values[i]`` at ``labels[i]``, in that order; NaN is a gap.

    Displays itself in a notebook (``_repr_svg_``); ``to_svg()`` gives the markup."""

    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    kind: ChartKind = "line"

    def __post_init__(self) -> None:
        if self.kind not in _MAX_LABELS:
            raise ValueError(f"chart {self.title!r}: kind {self.kind!r} is not one of {sorted(_MAX_LABELS)}")
        if len(self.labels) != len(self.values):
            raise ValueError(
                f"chart {self.title!r}: {len(self.labels)} labels for {len(self.values)} values; "
                "give one label per value"
            )

    @property
    def empty(self) -> bool:
        """No value to draw (the "no rows yet" panel)."""
        return not any(math.isfinite(v) for v in self.values)

    def __repr__(self) -> str:
        return f"Chart({self.title!r}, {self.kind}, {len(self.values)} points)"

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def to_svg(self) -> str:
        svg = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
            f'viewBox="0 0 {_WIDTH} {_HEIGHT}" font-family="sans-serif" font-size="9">',
            f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
            f'<text x="{_WIDTH / 2:.0f}" y="16" text-anchor="middle" font-size="12">{escape(self.title)}</text>',
        ]
        if self.empty:
            svg.append(
                f'<text x="{_WIDTH / 2:.0f}" y="{_HEIGHT / 2:.0f}" text-anchor="middle" '
                'font-size="12" fill="#555">no rows yet</text>'
            )
            return "".join(svg) + "</svg>"
        x0, x1, y0, y1 = _LEFT, _WIDTH - _RIGHT, _TOP, _HEIGHT - _BOTTOM
        finite = [v for v in self.values if math.isfinite(v)]
        low, high = min(finite), max(finite)
        if self.kind == "bar":  # bars start at zero
            low, high = min(low, 0.0), max(high, 0.0)
        ticks = nice_ticks(low, high)
        bottom, top = ticks[0], ticks[-1]

        def y(value: float) -> float:
            return y1 - (value - bottom) / (top - bottom) * (y1 - y0)

        for tick in ticks:
            svg.append(
                f'<line x1="{x0}" x2="{x1}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>'
                f'<text x="{x0 - 4}" y="{y(tick) + 3:.1f}" text-anchor="end">{format_number(tick)}</text>'
            )
        step = (x1 - x0) / len(self.values)
        centres = [x0 + step * (i + 0.5) for i in range(len(self.values))]
        if self.kind == "bar":
            width = min(max(step * 0.8, 0.5), 60.0)
            for x, value in zip(centres, self.values, strict=True):
                if math.isfinite(value):
                    top_y, base_y = sorted((y(value), y(0.0)))
                    svg.append(
                        f'<rect x="{x - width / 2:.1f}" y="{top_y:.1f}" width="{width:.1f}" '
                        f'height="{max(base_y - top_y, 0.5):.1f}" fill="#4c72b0"/>'
                    )
        else:
            for run in _finite_runs(centres, self.values):
                points = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in run)
                svg.append(f'<polyline points="{points}" fill="none" stroke="#4c72b0" stroke-width="1.5"/>')
                if len(self.values) <= _MAX_MARKERS:
                    svg.extend(f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="2" fill="#4c72b0"/>' for x, v in run)
        every = math.ceil(len(self.labels) / _MAX_LABELS[self.kind])
        for index in range(0, len(self.labels), every):
            x = centres[index]
            svg.append(
                f'<text x="{x:.1f}" y="{y1 + 10}" text-anchor="end" '
                f'transform="rotate(-40 {x:.1f} {y1 + 10})">{escape(self.labels[index])}</text>'
            )
        svg.append(f'<path d="M{x0} {y0}V{y1}H{x1}" fill="none" stroke="#333"/>')
        return "".join(svg) + "</svg>"


def nice_ticks(low: float, high: float, *, count: int = 4) -> list[float]:
    """Round axis ticks covering ``[low, high]``: about ``count`` steps of 1, 2, 2.5 or 5
    times a power of ten (``nice_ticks(0, 70)`` is ``[0, 20, 40, 60, 80]``)."""
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"ticks need finite low <= high; got low={low}, high={high}")
    if low == high:  # one value: a band around it
        margin = abs(low) * 0.1 or 1.0
        low, high = low - margin, high + margin
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(low / step + 1e-9) * step
    ticks = [first]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(first + step * len(ticks))
    return [round(t, 12) for t in ticks]


def format_number(value: float) -> str:
    """A tick label: 1.5M, 12k, 0.25, 40."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.4g}M"
    if size >= 1e4:
        return f"{value / 1e3:.4g}k"
    return f"{value:.4g}"


def _finite_runs(xs: Sequence[float], values: Sequence[float]) -> list[list[tuple[float, float]]]:
    """Consecutive points with a finite value (a NaN breaks the line)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, value in zip(xs, values, strict=True):
        if math.isfinite(value):
            runs[-1].append((x, value))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def headline_rows(
    spark: SparkSession, tables: dict[str, tuple[str, Headline]]
) -> dict[str, list[tuple[str, float]]]:
    """For each ``name: (path, headline)``, the headline's ``(by as text, value)`` rows
    in the order of ``by`` (NULL groups left out), all tables in one query."""
    if not tables:
        return {}
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    parts: list[DataFrame] = []
    for name, (path, headline) in tables.items():
        table = read_delta(spark, path)
        if headline.where:
            table = table.where(headline.where)
        grouped = (
            table.groupBy(F.expr(headline.by).alias("by"))
            .agg(F.expr(headline.value).cast("double").alias("value"))
            .where(F.col("by").isNotNull())
        )
        parts.append(
            grouped.select(
                F.lit(name).alias("dataset"),
                F.row_number().over(Window.partitionBy(F.lit(name)).orderBy("by")).alias("position"),
                F.col("by").cast("string").alias("by"),
                "value",
            )
        )
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    rows: dict[str, list[tuple[int, str, float]]] = {name: [] for name in tables}
    for row in union.collect():
        value = math.nan if row["value"] is None else float(row["value"])
        rows[row["dataset"]].append((row["position"], row["by"], value))
    return {name: [(by, value) for _, by, value in sorted(found)] for name, found in rows.items()}


def headline_charts(
    context: RunContext, datasets: Sequence[str], headlines: dict[str, Headline] | None = None
) -> dict[str, Chart]:
    """The headline chart of each of ``datasets`` (``SILVER_HEADLINES`` unless given),
    computed in one query; a table not written yet gives an empty chart."""
    from lakehouse.medallion import runner

    headlines = SILVER_HEADLINES if headlines is None else headlines
    unknown = [name for name in datasets if name not in headlines]
    if unknown:
        raise KeyError(f"no headline for {unknown}; datasets with one: {sorted(headlines)}")
    pipeline = runner(context)
    paths = {name: pipeline.path(name) for name in datasets}
    stored = {name: (paths[name], headlines[name]) for name in datasets if delta_exists(paths[name])}
    rows = headline_rows(context.spark, stored)
    charts = {}
    for name in datasets:
        headline, found = headlines[name], rows.get(name, [])
        charts[name] = Chart(
            f"{name}: {headline.title}",
            tuple(by for by, _ in found),
            tuple(value for _, value in found),
            headline.kind,
        )
    return charts
