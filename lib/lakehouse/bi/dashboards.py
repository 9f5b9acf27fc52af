"""Static HTML dashboards anyone can open without a BI tool, even offline.

Four pages (pharma stock-out rate, pharma delivery performance, energy real-time
consumption, energy machine anomalies) and an index. Each page is one self-contained
file: plotly.js is embedded inline, so no network is needed to view it. Every page
shows the date of its most recent data and when it was generated.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape

from lakehouse.bi.gold import GoldTable

Frames = dict[str, pd.DataFrame]
ANOMALY_COLOURS = {"warning": "#f0a202", "critical": "#d1495b"}
RECENT_DAYS = 7  # the real-time page charts the last week hour by hour


@dataclass(frozen=True)
class Card:
    label: str
    value: str


@dataclass(frozen=True)
class Page:
    """What a dashboard shows: headline figures and charts, and its data date."""

    data_date: dt.date | None
    cards: list[Card] = field(default_factory=list)
    figures: list[go.Figure] = field(default_factory=list)


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    description: str
    needs: tuple[str, ...]
    build: Callable[[Frames], Page]
    optional: tuple[str, ...] = ()  # read when they exist (model outputs, say)


@dataclass(frozen=True)
class DashboardsReport:
    index: Path
    pages: dict[str, Path]
    skipped: dict[str, str]  # slug -> why
    seconds: float


def build_dashboards(
    tables: Sequence[GoldTable], out_dir: str | Path, *, generated_at: dt.datetime | None = None
) -> DashboardsReport:
    """Write every dashboard whose gold tables exist, and the index page, to ``out_dir``."""
    started = time.monotonic()
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_name = {t.name: t for t in tables}
    env = _templates()
    # One copy of plotly.js beside the pages (offline, 4.7 MB once rather than per page).
    _write_atomically(out / PLOTLY_JS, _plotly_js())
    pages, skipped, entries = {}, {}, []
    for dashboard in DASHBOARDS:
        missing = [n for n in dashboard.needs if n not in by_name]
        if missing:
            skipped[dashboard.slug] = f"gold table(s) {', '.join(missing)} not built yet"
            continue
        names = [*dashboard.needs, *(n for n in dashboard.optional if n in by_name)]
        page = dashboard.build({n: by_name[n].read().to_pandas() for n in names})
        html = env.get_template("dashboard.html.j2").render(
            dashboard=dashboard,
            page=page,
            charts=[_chart_html(f, f"{dashboard.slug}-{i}") for i, f in enumerate(page.figures)],
            plotly_js=PLOTLY_JS,
            generated_at=generated_at,
            dashboards=DASHBOARDS,
        )
        pages[dashboard.slug] = _write_atomically(out / f"{dashboard.slug}.html", html)
        entries.append((dashboard, page.data_date))
    index_html = env.get_template("index.html.j2").render(
        entries=entries, skipped=skipped, generated_at=generated_at, dashboards=DASHBOARDS
    )
    index = _write_atomically(out / "index.html", index_html)
    return DashboardsReport(index, pages, skipped, time.monotonic() - started)


PLOTLY_JS = "plotly.min.js"


def _templates() -> Environment:
    return Environment(loader=PackageLoader("lakehouse.bi", "templates"), autoescape=select_autoescape())


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _chart_html(figure: go.Figure, div_id: str) -> str:
    figure.update_layout(template="plotly_white", margin={"l": 50, "r": 20, "t": 50, "b": 40})
    if figure.layout.height is None:
        figure.update_layout(height=380)
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )


def _write_atomically(target: Path, text: str) -> Path:
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


# --- the four dashboards --------------------------------------------------------------


def _with_site_names(frame: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    names = sites[["site_id", "site_name"]].drop_duplicates("site_id")
    merged = frame.merge(names, on="site_id", how="left")
    merged["site"] = merged["site_name"].fillna(merged["site_id"])
    return merged


def _daily_axis(figure: go.Figure, days: int) -> go.Figure:
    """Dates as days (not hours) on the x axis, one tick a day when there are few."""
    figure.update_xaxes(tickformat="%d %b %Y", **({"dtick": 86_400_000} if days <= 14 else {}))
    return figure


def _percent(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def stockout_page(frames: Frames) -> Page:
    """Share of products out of stock / below safety stock, per day and site."""
    kpi = _with_site_names(frames["kpi_rupture_stock"], frames["dim_site"])
    if kpi.empty:
        return Page(None)
    for column in ("stockout_rate", "below_safety_stock_rate"):
        kpi[column] = kpi[column].astype(float)
    kpi = kpi.sort_values(["date", "site"])
    last_date = kpi["date"].max()
    last = kpi[kpi["date"] == last_date]
    cards = [
        Card(
            "Stock-out rate, last day", _percent(last["products_out_of_stock"].sum() / last["products"].sum())
        ),
        Card(
            "Below safety stock, last day",
            _percent(last["products_below_safety_stock"].sum() / last["products"].sum()),
        ),
        Card("Sites", str(kpi["site_id"].nunique())),
    ]
    trend = go.Figure(
        [
            go.Scatter(x=g["date"], y=g["stockout_rate"], mode="lines+markers", name=site)
            for site, g in kpi.groupby("site")
        ]
    )
    trend.update_layout(title="Stock-out rate per day and site", yaxis_tickformat=".0%", showlegend=True)
    _daily_axis(trend, kpi["date"].nunique())
    latest = go.Figure(
        [
            go.Bar(x=last["site"], y=last["stockout_rate"], name="out of stock", marker_color="#d1495b"),
            go.Bar(
                x=last["site"],
                y=last["below_safety_stock_rate"],
                name="below safety stock",
                marker_color="#f0a202",
            ),
        ]
    )
    latest.update_layout(title=f"Rates per site on {last_date}", barmode="group", yaxis_tickformat=".0%")
    return Page(last_date, cards, [trend, latest])


def delivery_page(frames: Frames) -> Page:
    """OTIF, late and pending deliveries per promised day and site."""
    kpi = _with_site_names(frames["kpi_performance_livraison"], frames["dim_site"])
    if kpi.empty:
        return Page(None)
    kpi["otif_rate"] = kpi["otif_rate"].astype(float)
    kpi = kpi.sort_values(["date", "site"])
    # Days promised in the future hold pending deliveries only: the data reaches the
    # last day with a delivery, and the OTIF trend stops there.
    delivered_days = kpi.loc[kpi["deliveries_delivered"] > 0, "date"]
    data_date = delivered_days.max() if not delivered_days.empty else None
    observed = kpi[kpi["date"] <= data_date] if data_date is not None else kpi.iloc[0:0]
    totals = kpi.groupby("site")[
        ["deliveries_due", "deliveries_delivered", "deliveries_otif", "deliveries_late", "deliveries_pending"]
    ].sum()
    not_in_full = totals["deliveries_delivered"] - totals["deliveries_otif"] - totals["deliveries_late"]
    delivered = kpi["deliveries_delivered"].sum()
    cards = [
        Card(
            "OTIF rate, whole period",
            _percent(kpi["deliveries_otif"].sum() / delivered if delivered else float("nan")),
        ),
        Card("Late deliveries", f"{int(kpi['deliveries_late'].sum()):,}"),
        Card("Pending deliveries", f"{int(kpi['deliveries_pending'].sum()):,}"),
    ]
    trend = go.Figure(
        [
            go.Scatter(x=g["date"], y=g["otif_rate"], mode="lines+markers", name=site)
            for site, g in observed.groupby("site")
        ]
    )
    trend.update_layout(
        title="On time in full (OTIF) rate per promised day and site", yaxis_tickformat=".0%", showlegend=True
    )
    _daily_axis(trend, observed["date"].nunique())
    split = go.Figure(
        [
            go.Bar(
                x=totals.index, y=totals["deliveries_otif"], name="on time in full", marker_color="#2a9d8f"
            ),
            go.Bar(x=totals.index, y=not_in_full, name="on time, not in full", marker_color="#e9c46a"),
            go.Bar(x=totals.index, y=totals["deliveries_late"], name="late", marker_color="#d1495b"),
            go.Bar(x=totals.index, y=totals["deliveries_pending"], name="pending", marker_color="#adb5bd"),
        ]
    )
    split.update_layout(title="Deliveries due per site, whole period", barmode="stack", showlegend=True)
    return Page(data_date, cards, [trend, split])


def _energy(frames: Frames) -> pd.DataFrame:
    fact = _with_site_names(frames["fact_consommation_energie"], frames["dim_site"])
    machines = frames["dim_machine"][["machine_sk", "machine_type"]].drop_duplicates("machine_sk")
    fact = fact.merge(machines, on="machine_sk", how="left")
    fact["hour_ts"] = pd.to_datetime(fact["hour_ts"], utc=True).dt.tz_localize(None)
    return fact.sort_values(["hour_ts", "machine_id"])


def consumption_page(frames: Frames) -> Page:
    """Hourly consumption of the last week per site, and per machine on the last day."""
    fact = _energy(frames)
    if fact.empty:
        return Page(None)
    last_hour = fact["hour_ts"].max()
    recent = fact[fact["hour_ts"] > last_hour - pd.Timedelta(days=RECENT_DAYS)]
    hourly = recent.groupby(["hour_ts", "site"], as_index=False)["kwh"].sum()
    last_day = fact[fact["hour_ts"].dt.date == last_hour.date()]
    per_machine = last_day.groupby(["machine_id", "machine_type"], as_index=False)["kwh"].sum()
    cards = [
        Card(
            f"Power at {last_hour:%Y-%m-%d %H:00} UTC",
            f"{fact.loc[fact['hour_ts'] == last_hour, 'mean_kw'].sum():,.0f} kW",
        ),
        Card(f"Energy on {last_hour:%Y-%m-%d}", f"{last_day['kwh'].sum():,.0f} kWh"),
        Card("Machines reporting", str(fact["machine_id"].nunique())),
    ]
    area = go.Figure(
        [
            go.Scatter(x=g["hour_ts"], y=g["kwh"], name=site, stackgroup="sites", mode="lines")
            for site, g in hourly.groupby("site")
        ]
    )
    area.update_layout(
        title=f"Consumption per hour and site, last {RECENT_DAYS} days (kWh, UTC)", showlegend=True
    )
    bars = go.Figure(
        [
            go.Bar(x=g["machine_id"], y=g["kwh"], name=kind)
            for kind, g in per_machine.groupby("machine_type", dropna=False)
        ]
    )
    bars.update_layout(
        title=f"Consumption per machine on {last_hour:%Y-%m-%d} (kWh)", xaxis_tickangle=-45, showlegend=True
    )
    return Page(last_hour.date(), cards, [area, bars])


def anomalies_page(frames: Frames) -> Page:
    """Machine-hours classed warning or critical, over time and per machine."""
    fact = _energy(frames)
    if fact.empty:
        return Page(None)
    anomalies = fact[fact["anomaly_class"] != "normal"]
    cards = [
        Card("Critical machine-hours", f"{int((anomalies['anomaly_class'] == 'critical').sum()):,}"),
        Card("Warning machine-hours", f"{int((anomalies['anomaly_class'] == 'warning').sum()):,}"),
        Card(
            "Machines with an anomaly",
            f"{anomalies['machine_id'].nunique()} of {fact['machine_id'].nunique()}",
        ),
    ]
    timeline = go.Figure(
        [
            go.Scattergl(
                x=g["hour_ts"],
                y=g["machine_id"],
                mode="markers",
                name=kind,
                marker={"color": ANOMALY_COLOURS.get(kind), "size": 6 if kind == "warning" else 11},
                customdata=g[["vibration_mm_s", "load_factor"]],
                hovertemplate="%{y} %{x}<br>vibration %{customdata[0]:.1f} mm/s, load %{customdata[1]:.0%}",
            )
            for kind, g in sorted(anomalies.groupby("anomaly_class"), key=lambda item: item[0] == "critical")
        ]  # critical drawn last, on top of the many warnings
    )
    machines = fact["machine_id"].nunique()
    timeline.update_layout(
        title="Anomalous hours per machine (UTC)",
        height=max(380, 22 * machines + 120),
        yaxis={"type": "category", "categoryorder": "category descending", "dtick": 1},
    )
    counts = anomalies.groupby(["machine_id", "anomaly_class"]).size().unstack(fill_value=0)
    per_machine = go.Figure(
        [
            go.Bar(x=counts.index, y=counts[kind], name=kind, marker_color=ANOMALY_COLOURS.get(kind))
            for kind in counts.columns
        ]
    )
    per_machine.update_layout(
        title="Anomalous hours per machine, whole period",
        barmode="stack",
        xaxis_tickangle=-45,
        showlegend=True,
    )
    figures = [timeline, per_machine]
    scored = fact[fact["model_anomaly_score"].notna()] if "model_anomaly_score" in fact else fact.iloc[0:0]
    if not scored.empty:
        raised = scored["anomaly_class"].ne(scored["rule_anomaly_class"].fillna("normal"))
        cards.append(
            Card("Hours raised by the anomaly model", f"{int(raised.sum()):,} of {len(scored):,} scored")
        )
        figures.append(_model_scores(scored))
    return Page(fact["hour_ts"].max().date(), cards, figures)


def _model_scores(scored: pd.DataFrame) -> go.Figure:
    """The anomaly model's score of every scored machine-hour (0-1; flagged from 0.5)."""
    grid = scored.pivot_table(
        index="machine_id", columns="hour_ts", values="model_anomaly_score", aggfunc="max"
    )
    figure = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=grid.columns,
            y=grid.index,
            zmin=0,
            zmax=1,
            colorscale=[[0, "#f1faee"], [0.5, "#f0a202"], [1, "#d1495b"]],
            colorbar={"title": "score"},
            hovertemplate="%{y} %{x}<br>anomaly score %{z:.2f}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Anomaly model score per machine and hour (UTC; flagged from 0.5)",
        height=max(380, 22 * len(grid) + 120),
        yaxis={"type": "category", "categoryorder": "category descending", "dtick": 1},
    )
    return figure


def forecast_page(frames: Frames) -> Page:
    """Forecast against metered kWh: the fleet per hour, and each machine (menu)."""
    fact = _energy(frames)
    forecast = frames.get("consumption_forecast")
    if fact.empty:
        return Page(None)
    actual = fact[["machine_id", "hour_ts", "kwh"]]
    if forecast is None or forecast.empty:
        cards = [Card("Forecast", "not scored yet (the ml_scoring_daily job writes it)")]
        return Page(fact["hour_ts"].max().date(), cards, [])
    forecast = forecast.assign(hour_ts=pd.to_datetime(forecast["hour_ts"], utc=True).dt.tz_localize(None))
    first = forecast["hour_ts"].min()
    both = forecast[["machine_id", "hour_ts", "predicted_kwh", "model_version"]].merge(
        actual[actual["hour_ts"] >= first], on=["machine_id", "hour_ts"], how="outer"
    )
    known = both.dropna(subset=["kwh", "predicted_kwh"])
    ahead = both[both["kwh"].isna()]
    mae = (known["kwh"] - known["predicted_kwh"]).abs().mean()
    cards = [
        Card("Forecast error (MAE) where the actual is known", "n/a" if known.empty else f"{mae:,.2f} kWh/h"),
        Card("Hours compared", f"{len(known):,}"),
        Card("Forecast of the hours ahead (fleet)", f"{ahead['predicted_kwh'].sum():,.0f} kWh"),
        Card("Model version", ", ".join(sorted(forecast["model_version"].dropna().astype(str).unique()))),
    ]
    fleet = both.groupby("hour_ts", as_index=False)[["kwh", "predicted_kwh"]].sum(min_count=1)
    total = go.Figure(
        [
            go.Scatter(x=fleet["hour_ts"], y=fleet["kwh"], name="actual", mode="lines"),
            go.Scatter(
                x=fleet["hour_ts"],
                y=fleet["predicted_kwh"],
                name="forecast",
                mode="lines",
                line={"dash": "dot"},
            ),
        ]  # fmt: skip
    )
    total.update_layout(title="Fleet consumption per hour: actual and day-ahead forecast (kWh, UTC)")
    return Page(fact["hour_ts"].max().date(), cards, [total, _per_machine_forecast(both)])


def _per_machine_forecast(both: pd.DataFrame) -> go.Figure:
    """Actual and forecast of one machine at a time, chosen from a menu."""
    machines = sorted(both["machine_id"].unique())
    figure = go.Figure()
    for i, machine in enumerate(machines):
        mine = both[both["machine_id"] == machine].sort_values("hour_ts")
        figure.add_scatter(x=mine["hour_ts"], y=mine["kwh"], name=f"{machine} actual", visible=i == 0)
        figure.add_scatter(x=mine["hour_ts"], y=mine["predicted_kwh"], name=f"{machine} forecast",
                           line={"dash": "dot"}, visible=i == 0)  # fmt: skip
    buttons = [
        {
            "label": machine,
            "method": "update",
            "args": [{"visible": [j // 2 == i for j in range(2 * len(machines))]}, {"title.text": f"{machine}: actual and forecast (kWh per hour, UTC)"}],
        }
        for i, machine in enumerate(machines)
    ]  # fmt: skip
    figure.update_layout(
        title=f"{machines[0]}: actual and forecast (kWh per hour, UTC)" if machines else "No machine",
        updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.15, "yanchor": "top"}],
        showlegend=True,
    )
    return figure


DASHBOARDS = (
    Dashboard("pharma_stockout_rate", "Pharma: stock-out rate",
              "Share of products out of stock, and below safety stock, per day and site.",
              ("kpi_rupture_stock", "dim_site"), stockout_page),
    Dashboard("pharma_delivery_performance", "Pharma: logistics and delivery performance",
              "Deliveries on time in full (OTIF), late and pending, per promised day and site.",
              ("kpi_performance_livraison", "dim_site"), delivery_page),
    Dashboard("energy_realtime_consumption", "Energy: real-time consumption",
              "Hourly machine consumption of the last week, per site and per machine.",
              ("fact_consommation_energie", "dim_machine", "dim_site"), consumption_page),
    Dashboard("energy_machine_anomalies", "Energy: machine anomalies",
              "Machine-hours classed warning or critical (vibration, load, the anomaly model), when and where.",
              ("fact_consommation_energie", "dim_machine", "dim_site"), anomalies_page),
    Dashboard("energy_forecast_vs_actual", "Energy: forecast against actual",
              "The consumption model's day-ahead forecast beside the metered kWh, for the fleet and per machine.",
              ("fact_consommation_energie", "dim_machine", "dim_site"), forecast_page,
              optional=("consumption_forecast",)),
)  # fmt: skip
