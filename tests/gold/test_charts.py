"""Headline charts of every silver and gold table, on a small hand-made lake."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.gold.charts import GOLD_HEADLINES
from lakehouse.gold.charts import headline_charts as gold_charts
from lakehouse.medallion import layer_datasets, runner
from lakehouse.silver.charts import SILVER_HEADLINES
from lakehouse.silver.charts import headline_charts as silver_charts

from .test_incremental import D1, D2, D3, D4, _context, _write_silver, refresh_gold, silver_days_1_to_4


def test_every_silver_and_gold_table_has_a_headline(spark, tmp_path):
    graph = runner(_context(spark, tmp_path)).graph
    silver = {
        n for n in layer_datasets(graph, "silver") if n != "silver_customers"
    }  # personal data: no chart
    assert silver == set(SILVER_HEADLINES)
    assert set(layer_datasets(graph, "gold")) == set(GOLD_HEADLINES)


def test_a_dataset_without_headline_is_refused_naming_those_with_one(spark, tmp_path):
    with pytest.raises(KeyError, match=r"no headline for \['silver_customers'\].*silver_order_lines"):
        silver_charts(_context(spark, tmp_path), ["silver_customers"])


@pytest.mark.slow
def test_headline_charts_carry_the_tables_values_and_survive_missing_tables(spark, tmp_path):
    ctx = _context(spark, tmp_path)
    _write_silver(spark, runner(ctx), silver_days_1_to_4())
    for domain in ("pharma", "energy"):
        refresh_gold(ctx, domain, full_refresh=True)
    gold = gold_charts(ctx, list(GOLD_HEADLINES))
    silver = silver_charts(ctx, list(SILVER_HEADLINES))
    assert list(gold) == list(GOLD_HEADLINES) and list(silver) == list(SILVER_HEADLINES)
    sales = gold["fact_ventes"]
    # day 1: O1 20.00 + O4 10.00; day 2: O2 50.00; day 3: O3 10.00; day 4: O5 70.00
    assert sales.values == (30.0, 50.0, 10.0, 70.0)
    assert sales.labels == tuple(f"{day}" for day in (D1, D2, D3, D4))
    assert sales.kind == "line" and sales.title == "fact_ventes: Net sales per day (EUR)"
    sites = silver["silver_sites"]  # a bar per category, in the order of the category
    assert (sites.kind, sites.labels, sites.values) == ("bar", ("distribution_center", "plant"), (1.0, 1.0))
    missing = silver["silver_machines"]  # never written in this lake
    assert missing.empty and missing.values == () and "no rows yet" in missing.to_svg()
    for chart in [*gold.values(), *silver.values()]:
        svg = chart._repr_svg_()
        assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert dt.date(2026, 11, 1).isoformat() in sales.to_svg()  # the first day's label is drawn
