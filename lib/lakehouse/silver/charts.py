"""Small headline charts of the silver and gold tables, for the layer notebooks.

A headline is one aggregate per group (a day, a site, a class), computed by the
engine, then drawn with matplotlib. A missing or empty table draws a "no rows yet"
panel instead of failing, so the daily notebooks run on a fresh lake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from lakehouse.lake import delta_exists, read_delta

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from lakehouse.context import RunContext


@dataclass(frozen=True)
class Headline:
    """``value`` (SQL aggregate) per ``by`` (SQL expression), rows filtered by ``where``."""

    by: str
    value: str
    title: str
    kind: str = "line"  # "line" over time, "bar" over categories
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


def headline_frame(context: RunContext, dataset: str, headline: Headline):
    """The headline as a pandas frame (``by``, ``value``), empty when the table is
    missing or has no rows."""
    import pandas as pd

    from lakehouse.medallion import runner

    path = runner(context).path(dataset)
    if not delta_exists(path):
        return pd.DataFrame({"by": [], "value": []})
    table = read_delta(context.spark, path)
    if headline.where:
        table = table.where(headline.where)
    grouped = table.groupBy(F.expr(headline.by).alias("by")).agg(
        F.expr(headline.value).cast("double").alias("value")
    )
    return grouped.orderBy("by").toPandas()


def plot_headline(context: RunContext, dataset: str, headlines: dict[str, Headline] | None = None) -> Axes:
    """Draw ``dataset``'s headline chart (``SILVER_HEADLINES`` unless given)."""
    import matplotlib.pyplot as plt

    headline = (headlines or SILVER_HEADLINES)[dataset]
    frame = headline_frame(context, dataset, headline)
    _, axes = plt.subplots(figsize=(7, 2.6))
    axes.set_title(f"{dataset}: {headline.title}", fontsize=10)
    if frame.empty:
        axes.text(0.5, 0.5, "no rows yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return axes
    frame = frame.dropna(subset=["by"])
    if headline.kind == "bar":
        axes.bar(frame["by"].astype(str), frame["value"])
        axes.tick_params(axis="x", labelrotation=45, labelsize=7)
    else:
        axes.plot(frame["by"], frame["value"], marker=".")
        axes.tick_params(axis="x", labelrotation=30, labelsize=7)
    return axes
