"""Headline charts of the gold tables (computed and drawn by ``lakehouse.silver.charts``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lakehouse.silver import charts as silver_charts
from lakehouse.silver.charts import Chart, Headline

if TYPE_CHECKING:
    from lakehouse.context import RunContext

GOLD_HEADLINES = {
    "dim_temps": Headline(
        "month", "sum(CAST(is_holiday AS INT))", "Public holidays per month", "bar", "date_key <> -1"
    ),
    "dim_produit": Headline("atc_class", "count(1)", "Current products per ATC class", "bar", "is_current"),
    "dim_site": Headline("site_type", "count(1)", "Sites per type (incl. unknown)", "bar"),
    "fact_ventes": Headline("order_date", "sum(net_amount)", "Net sales per day (EUR)"),
    "kpi_marge_journaliere": Headline("date", "sum(margin)", "Margin per day, all sites (EUR)"),
    "kpi_rupture_stock": Headline("date", "avg(stockout_rate)", "Mean stock-out rate per day"),
    "kpi_performance_livraison": Headline("date", "avg(otif_rate)", "Mean OTIF rate per promised day"),
    "kpi_marge_produit_site_mois": Headline(
        "site_id", "sum(margin)", "Margin per site, all months (EUR)", "bar"
    ),
    "kpi_duree_rupture": Headline(
        "days_out_of_stock", "count(1)", "Stock-out episodes by length (days)", "bar"
    ),
    "kpi_rappels_en_stock": Headline(
        "product_id", "sum(quantity_on_hand)", "Recalled units still on hand", "bar"
    ),
    "dim_machine": Headline("site_id", "count(1)", "Machine versions per site", "bar", "machine_sk <> -1"),
    "dim_temps_horaire": Headline(
        "day_name", "sum(CAST(is_working_hours AS INT))", "Working hours per weekday", "bar", "hour_key <> -1"
    ),
    "fact_consommation_energie": Headline("to_date(hour_ts)", "sum(kwh)", "Consumption per day (kWh)"),
    "fact_production": Headline(
        "to_date(start_ts)", "sum(attributed_kwh)", "kWh attributed to batches per day"
    ),
    "kpi_energie_machine": Headline(
        "machine_id", "sum(rolling_24h_kwh)", "Last 24 h consumption per machine (kWh)", "bar", "is_latest"
    ),
    "kpi_energie_site": Headline(
        "hour_ts", "sum(rolling_24h_kwh)", "Rolling 24 h consumption, all sites (kWh)"
    ),
    "kpi_anomalies_machine": Headline(
        "anomaly_class", "sum(duration_hours)", "Anomalous hours per class", "bar"
    ),
}


def headline_charts(context: RunContext, datasets: Sequence[str]) -> dict[str, Chart]:
    """The gold tables' headline charts, in one query ("no rows yet" when empty)."""
    return silver_charts.headline_charts(context, datasets, GOLD_HEADLINES)
