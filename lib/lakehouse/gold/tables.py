"""Gold datasets of the pharma pipeline: the star schema and the KPIs."""

from __future__ import annotations

import datetime as dt

from lakehouse import pipelines as dp
from lakehouse.gold.dimensions import build_dim_produit, build_dim_site, build_dim_temps
from lakehouse.gold.pharma import (
    build_fact_ventes,
    build_kpi_marge_journaliere,
    build_kpi_performance_livraison,
    build_kpi_rupture_stock,
    with_site_sk,
)

CALENDAR_YEARS_AROUND = 1  # dim_temps: the run date's year and one year on each side


@dp.materialized_view(path="gold/domain=pharma/model=star/table=dim_temps")
@dp.expect_or_fail("date_key_matches_date", "date_key = CAST(date_format(date, 'yyyyMMdd') AS INT)")
def dim_temps():
    """Calendar, one row per day (key date_key yyyymmdd), ISO weeks, French holidays."""
    context = dp.current()
    year = context.parameters["run_date"].year
    start = dt.date(year - CALENDAR_YEARS_AROUND, 1, 1)
    end = dt.date(year + CALENDAR_YEARS_AROUND, 12, 31)
    return build_dim_temps(context.spark, start, end)


@dp.materialized_view(path="gold/domain=pharma/model=star/table=dim_produit")
@dp.expect_or_fail("product_sk_present", "product_sk IS NOT NULL")
def dim_produit(silver_products, silver_product_prices):
    """Products, SCD type 2 over price and cost periods (key product_sk)."""
    return build_dim_produit(silver_products, silver_product_prices)


@dp.materialized_view(path="gold/domain=pharma/model=star/table=dim_site")
@dp.expect_or_fail("site_sk_present", "site_sk IS NOT NULL")
def dim_site(silver_sites):
    """Plants and distribution centres, one row per site (key site_sk = xxhash64(site_id))."""
    return build_dim_site(silver_sites)


@dp.materialized_view(path="gold/domain=pharma/model=star/table=fact_ventes")
@dp.expect("cost_known_at_order_date", "product_sk IS NOT NULL")
@dp.expect_or_fail("net_not_above_gross", "net_amount <= gross_amount")
def fact_ventes(silver_order_lines, dim_produit, dim_site):
    """One row per order line (key order_id, line_number), at the cost valid on the order date."""
    return build_fact_ventes(silver_order_lines, dim_produit).transform(with_site_sk, dim_site)


@dp.materialized_view(path="gold/domain=pharma/model=kpi/table=kpi_marge_journaliere")
def kpi_marge_journaliere(fact_ventes):
    """Net revenue, cost and margin per day and site (key date_key, site_id)."""
    return build_kpi_marge_journaliere(fact_ventes)


@dp.materialized_view(path="gold/domain=pharma/model=kpi/table=kpi_rupture_stock")
@dp.expect_or_fail(
    "rates_between_0_and_1",
    "stockout_rate BETWEEN 0 AND 1 AND below_safety_stock_rate BETWEEN 0 AND 1",
)
def kpi_rupture_stock(silver_stock_snapshots):
    """Share of products out of stock and below safety stock per day and site (key date_key, site_id)."""
    return build_kpi_rupture_stock(silver_stock_snapshots)


@dp.materialized_view(path="gold/domain=pharma/model=kpi/table=kpi_performance_livraison")
@dp.expect_or_fail(
    "counts_add_up",
    "deliveries_delivered + deliveries_pending = deliveries_due AND deliveries_otif + deliveries_late <= deliveries_delivered",
)
def kpi_performance_livraison(silver_deliveries):
    """OTIF, late and pending deliveries per promised day and site (key date_key, site_id)."""
    return build_kpi_performance_livraison(silver_deliveries)
