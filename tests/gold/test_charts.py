"""Headline charts of every silver and gold table, on a small hand-made lake."""

from __future__ import annotations

import matplotlib
import pytest

from lakehouse.gold.charts import GOLD_HEADLINES
from lakehouse.gold.charts import plot_headline as plot_gold
from lakehouse.medallion import layer_datasets, runner
from lakehouse.silver.charts import SILVER_HEADLINES
from lakehouse.silver.charts import plot_headline as plot_silver

from .test_incremental import _context, _write_silver, refresh_gold, silver_days_1_to_4

matplotlib.use("Agg")


def test_every_silver_and_gold_table_has_a_headline(spark, tmp_path):
    graph = runner(_context(spark, tmp_path)).graph
    silver = {
        n for n in layer_datasets(graph, "silver") if n != "silver_customers"
    }  # personal data: no chart
    assert silver == set(SILVER_HEADLINES)
    assert set(layer_datasets(graph, "gold")) == set(GOLD_HEADLINES)


@pytest.mark.slow
def test_headline_charts_draw_values_and_survive_empty_tables(spark, tmp_path):
    import matplotlib.pyplot as plt

    ctx = _context(spark, tmp_path)
    _write_silver(spark, runner(ctx), silver_days_1_to_4())
    for domain in ("pharma", "energy"):
        refresh_gold(ctx, domain, full_refresh=True)
    for name in GOLD_HEADLINES:
        plot_gold(ctx, name)
        plt.close("all")
    for name in SILVER_HEADLINES:
        plot_silver(ctx, name)
        plt.close("all")
    sales = plot_gold(ctx, "fact_ventes")
    # day 1: O1 20.00 + O4 10.00; day 2: O2 50.00; day 3: O3 10.00; day 4: O5 70.00
    assert list(sales.lines[0].get_ydata()) == [30.0, 50.0, 10.0, 70.0]
    missing = plot_silver(ctx, "silver_machines")  # never written in this lake
    assert [t.get_text() for t in missing.texts] == ["no rows yet"]
    plt.close("all")
