"""Gold datasets of the pharma domain in the medallion pipeline: the star schema and the KPIs."""

from __future__ import annotations

import datetime as dt

from lakehouse import pipelines as dp
from lakehouse.gold.dimensions import (
    build_dim_produit,
    build_dim_site,
    build_dim_temps,
    resolve_key,
    with_unknown_date,
    with_unknown_product,
    with_unknown_site,
)
from lakehouse.gold.pharma_kpis import (
    build_kpi_duree_rupture,
    build_kpi_marge_journaliere,
    build_kpi_marge_produit_site_mois,
    build_kpi_performance_livraison,
    build_kpi_rappels_en_stock,
    build_kpi_rupture_stock,
)
from lakehouse.gold.pharma_star import build_fact_ventes, with_site_sk

CALENDAR_YEARS_AROUND = 1  # dim_temps: the run date's year and one year on each side


@dp.materialized_view(
    path="gold/domain=pharma/model=star/table=dim_temps",
    contract=dp.Contract(keys=("date_key",), grain="one row per day", owner="data-platform"),
)
@dp.expect_or_fail("date_key_matches_date", "date_key = CAST(date_format(date, 'yyyyMMdd') AS INT)")
def dim_temps():
    """Calendar, one row per day (key date_key yyyymmdd), ISO weeks, French holidays;
    date_key -1 is the unknown date."""
    context = dp.current()
    year = context.parameters["run_date"].year
    start = dt.date(year - CALENDAR_YEARS_AROUND, 1, 1)
    end = dt.date(year + CALENDAR_YEARS_AROUND, 12, 31)
    return build_dim_temps(context.spark, start, end).transform(with_unknown_date)


@dp.materialized_view(
    path="gold/domain=pharma/model=star/table=dim_produit",
    contract=dp.Contract(
        keys=("product_sk",),
        grain="one row per product version (price and cost period)",
        owner="sales-analytics",
    ),
)
@dp.expect_or_fail("product_sk_present", "product_sk IS NOT NULL")
def dim_produit(silver_products, silver_product_prices):
    """Products, SCD type 2 over price and cost periods (key product_sk; -1 unknown)."""
    return build_dim_produit(silver_products, silver_product_prices).transform(with_unknown_product)


@dp.materialized_view(
    path="gold/domain=pharma/model=star/table=dim_site",
    contract=dp.Contract(
        keys=("site_sk",), natural_key=("site_id",), grain="one row per site", owner="supply-chain"
    ),
)
@dp.expect_or_fail("site_sk_present", "site_sk IS NOT NULL")
def dim_site(silver_sites):
    """Plants and distribution centres, one row per site (key site_sk = xxhash64(site_id);
    -1 unknown)."""
    return build_dim_site(silver_sites).transform(with_unknown_site)


@dp.materialized_view(
    path="gold/domain=pharma/model=star/table=fact_ventes",
    incremental=dp.by_day(source="silver_order_lines", source_day="order_date", target_day="order_date"),
    contract=dp.Contract(
        keys=("order_id", "line_number"),
        grain="one row per order line",
        owner="sales-analytics",
        foreign_keys={"product_sk": "dim_produit", "site_sk": "dim_site", "date_key": "dim_temps"},
    ),
)
@dp.expect("product_resolved", "product_sk <> -1")
@dp.expect("site_resolved", "site_sk <> -1")
@dp.expect("date_resolved", "date_key <> -1")
@dp.expect_or_fail("keys_present", "product_sk IS NOT NULL AND site_sk IS NOT NULL AND date_key IS NOT NULL")
@dp.expect_or_fail("net_not_above_gross", "net_amount <= gross_amount")
def fact_ventes(silver_order_lines, dim_produit, dim_site, dim_temps):
    """One row per order line (key order_id, line_number), at the cost valid on the order
    date; keys without a dimension row point to the unknown member (-1), counted by the
    *_resolved expectations."""
    fact = build_fact_ventes(silver_order_lines, dim_produit).transform(with_site_sk, dim_site)
    return resolve_key(fact, dim_temps, "date_key")


@dp.materialized_view(
    path="gold/domain=pharma/model=kpi/table=kpi_marge_journaliere",
    incremental=dp.by_day(source="fact_ventes", source_day="order_date", target_day="date"),
    contract=dp.Contract(
        keys=("date_key", "site_id"), grain="one row per day and site", owner="sales-analytics"
    ),
)
def kpi_marge_journaliere(fact_ventes):
    """Net revenue, cost and margin per day and site (key date_key, site_id); refreshed
    by order day: a day's rows are the fact's lines of that day."""
    return build_kpi_marge_journaliere(fact_ventes)


@dp.materialized_view(
    path="gold/domain=pharma/model=kpi/table=kpi_rupture_stock",
    incremental=dp.by_day(source="silver_stock_snapshots", source_day="snapshot_date", target_day="date"),
    contract=dp.Contract(
        keys=("date_key", "site_id"), grain="one row per snapshot day and site", owner="supply-chain"
    ),
)
@dp.expect_or_fail(
    "rates_between_0_and_1",
    "stockout_rate BETWEEN 0 AND 1 AND below_safety_stock_rate BETWEEN 0 AND 1",
)
def kpi_rupture_stock(silver_stock_snapshots):
    """Share of products out of stock and below safety stock per day and site (key
    date_key, site_id); refreshed by snapshot day: a day's rows are that day's snapshot."""
    return build_kpi_rupture_stock(silver_stock_snapshots)


@dp.materialized_view(
    path="gold/domain=pharma/model=kpi/table=kpi_performance_livraison",
    incremental=dp.by_day(source="silver_deliveries", source_day="promised_date", target_day="date"),
    contract=dp.Contract(
        keys=("date_key", "site_id"), grain="one row per promised day and site", owner="supply-chain"
    ),
)
@dp.expect_or_fail(
    "counts_add_up",
    "deliveries_delivered + deliveries_pending = deliveries_due AND deliveries_otif + deliveries_late <= deliveries_delivered",
)
def kpi_performance_livraison(silver_deliveries):
    """OTIF, late and pending deliveries per promised day and site (key date_key,
    site_id); refreshed by promised day: a delivery delivered or corrected later changes
    its promised day's rows, which are recomputed."""
    return build_kpi_performance_livraison(silver_deliveries)


@dp.materialized_view(
    path="gold/domain=pharma/model=kpi/table=kpi_marge_produit_site_mois",
    incremental=dp.by_month(source="fact_ventes", source_day="order_date", target_day="month"),
    contract=dp.Contract(
        keys=("month", "product_id", "site_id"),
        grain="one row per month, product and site",
        owner="sales-analytics",
    ),
)
@dp.expect("cost_known", "lines_without_cost = 0")
def kpi_marge_produit_site_mois(fact_ventes):
    """Net revenue, cost and margin per month, product and site (key month, product_id,
    site_id); lines without a known cost counted in lines_without_cost. Refreshed by
    month: a changed order day recomputes its whole month."""
    return build_kpi_marge_produit_site_mois(fact_ventes)


@dp.materialized_view(
    path="gold/domain=pharma/model=kpi/table=kpi_duree_rupture",
    contract=dp.Contract(
        keys=("site_id", "product_id", "start_date"),
        grain="one row per stock-out episode (site, product and first day)",
        owner="supply-chain",
    ),
)
@dp.expect_or_fail("positive_duration", "days_out_of_stock >= 1 AND end_date >= start_date")
def kpi_duree_rupture(silver_stock_snapshots):
    """Stock-out episodes per site and product (key site_id, product_id, start_date):
    consecutive days with nothing on hand, ongoing or not.

    Recomputed whole: an episode spans an open-ended run of days (a changed day can
    merge or split episodes that began any number of days before it, and is_ongoing
    moves with each site's latest snapshot), so no bounded set of days gives its rows."""
    return build_kpi_duree_rupture(silver_stock_snapshots)


@dp.materialized_view(
    path="gold/domain=pharma/model=kpi/table=kpi_rappels_en_stock",
    incremental=dp.by_day(
        source="silver_stock_snapshots",
        source_day="snapshot_date",
        target_day="snapshot_date",
        latest_per=["site_id"],  # rows come from each site's latest snapshot
    ),
    contract=dp.Contract(
        keys=("notice_id", "site_id"), grain="one row per recall notice and site", owner="quality-assurance"
    ),
)
def kpi_rappels_en_stock(silver_recalls, silver_stock_snapshots):
    """Recalled products of ours still on hand at a site's latest snapshot (key
    notice_id, site_id). Refreshed by snapshot day: a new or changed snapshot
    recomputes the days holding each site's latest snapshot, before and now; a new
    recall (silver_recalls) rebuilds it whole."""
    return build_kpi_rappels_en_stock(silver_recalls, silver_stock_snapshots)
