"""Gold steps: read silver, build the pharma star schema and KPIs, write gold."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse.gold.dimensions import build_dim_produit, build_dim_temps
from lakehouse.gold.pharma import build_fact_ventes, build_kpi_marge_journaliere
from lakehouse.lake import Lake, TableResult, overwrite_table, read_delta

CALENDAR_YEARS_AROUND = 1  # dim_temps covers the data's years plus one on each side


def run_gold_pharma(spark: SparkSession, lake: Lake, *, run_date: dt.date) -> list[TableResult]:
    """Build ``dim_temps``, ``dim_produit``, ``fact_ventes`` and ``kpi_marge_journaliere``."""
    order_lines = read_delta(spark, lake.silver("pharma", "order_lines"))
    first = order_lines.agg(F.min("order_date")).first()[0] or run_date
    start = dt.date(first.year - CALENDAR_YEARS_AROUND, 1, 1)
    end = dt.date(run_date.year + CALENDAR_YEARS_AROUND, 12, 31)

    star = lambda name: lake.gold("pharma", "star", name)  # noqa: E731
    results = [
        overwrite_table(spark, build_dim_temps(spark, start, end), "gold.dim_temps", star("dim_temps")),
        overwrite_table(
            spark,
            build_dim_produit(
                read_delta(spark, lake.silver("pharma", "products")),
                read_delta(spark, lake.silver("pharma", "product_prices")),
            ),
            "gold.dim_produit",
            star("dim_produit"),
        ),
    ]
    fact = build_fact_ventes(order_lines, read_delta(spark, star("dim_produit")))
    results.append(overwrite_table(spark, fact, "gold.fact_ventes", star("fact_ventes")))
    kpi = build_kpi_marge_journaliere(read_delta(spark, star("fact_ventes")))
    results.append(
        overwrite_table(
            spark,
            kpi,
            "gold.kpi_marge_journaliere",
            lake.gold("pharma", "kpi", "kpi_marge_journaliere"),
        )
    )
    return results
