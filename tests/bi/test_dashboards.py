"""Static dashboards: their content, and each page rendered in a real headless Chromium."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.bi.dashboards import DASHBOARDS, build_dashboards
from lakehouse.bi.gold import discover_gold_tables

from .conftest import write_gold

GENERATED = dt.datetime(2026, 11, 26, 7, 15, tzinfo=dt.UTC)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SLUGS = [d.slug for d in DASHBOARDS]


def consumption_forecast() -> pa.Table:
    """Hours 3-5 of the 26th, whose actual is known (M001 forecast 2 kWh over, M002 4
    under), and hours 6-8 ahead (M001 10 kWh, M002 20 kWh each)."""
    actual = {"M001": [40.0, 50.0, 60.0], "M002": [103.0, 104.0, 105.0]}
    rows = [
        {"machine_id": m, "hour_ts": dt.datetime(2026, 11, 26, 3 + i, tzinfo=dt.UTC),
         "predicted_kwh": kwh + (2.0 if m == "M001" else -4.0)}
        for m, values in actual.items() for i, kwh in enumerate(values)
    ] + [
        {"machine_id": m, "hour_ts": dt.datetime(2026, 11, 26, h, tzinfo=dt.UTC), "predicted_kwh": v}
        for m, v in (("M001", 10.0), ("M002", 20.0)) for h in (6, 7, 8)
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows)
    return table.append_column("model_version", pa.array(["3"] * len(rows)))


def _build(gold_lake, out: Path, **drop):
    write_gold(gold_lake, "energy", "prediction", "consumption_forecast", consumption_forecast())
    tables = [t for t in discover_gold_tables(gold_lake) if t.name not in drop.get("without", ())]
    return build_dashboards(tables, out, generated_at=GENERATED)


def test_pages_show_their_data_date_headlines_and_embed_plotly(gold_lake, tmp_path: Path):
    report = _build(gold_lake, tmp_path)
    assert sorted(report.pages) == sorted(SLUGS) and report.skipped == {}
    html = {slug: path.read_text(encoding="utf-8") for slug, path in report.pages.items()}
    for slug, text in html.items():
        assert "generated 2026-11-26 07:15 UTC" in text
        # plotly.js from the folder itself, once for all pages: works offline, nothing fetched
        assert re.findall(r"<script[^>]+src=\"([^\"]+)\"", text) == ["plotly.min.js"], slug
        assert "Plotly.newPlot" in text and len(text) < 500_000
    shared = report.index.parent / "plotly.min.js"
    assert shared.stat().st_size > 3_000_000 and b"plotly.js" in shared.read_bytes()[:2000]
    data_date = {slug: re.search(r'class="data-date">([^<]+)<', text).group(1) for slug, text in html.items()}
    # deliveries: the 26th has pending deliveries only, so the data reaches the 25th
    assert data_date == {
        "pharma_stockout_rate": "2026-11-26",
        "pharma_delivery_performance": "2026-11-25",
        "energy_realtime_consumption": "2026-11-26",
        "energy_machine_anomalies": "2026-11-26",
        "energy_forecast_vs_actual": "2026-11-26",
    }
    # MAE (3 x 2 + 3 x 4) / 6 = 3.00 kWh/h on the 6 hours with an actual; 3 x (10 + 20) ahead
    forecast = html["energy_forecast_vs_actual"]
    assert ">3.00 kWh/h<" in forecast and ">6<" in forecast and ">90 kWh<" in forecast and ">3<" in forecast
    # last day: (0 + 3) / (20 + 10) = 10.0 % out of stock, (1 + 4) / 30 = 16.7 % below safety stock
    assert ">10.0%<" in html["pharma_stockout_rate"] and ">16.7%<" in html["pharma_stockout_rate"]
    # OTIF (8 + 8 + 4 + 2) / (10 + 8 + 5 + 4) = 22 / 27 = 81.5 %; late 1 + 1 + 2 = 4; pending 4 + 1 + 2 = 7
    delivery = html["pharma_delivery_performance"]
    assert ">81.5%<" in delivery and ">4<" in delivery and ">7<" in delivery
    # 05:00 UTC: M001 60 kW + M002 105 kW = 165 kW; the day: 210 + 615 = 825 kWh
    assert (
        ">165 kW<" in html["energy_realtime_consumption"]
        and ">825 kWh<" in html["energy_realtime_consumption"]
    )
    assert ">1<" in html["energy_machine_anomalies"] and ">2 of 2<" in html["energy_machine_anomalies"]
    index = report.index.read_text(encoding="utf-8")
    assert all(f'href="{slug}.html"' in index for slug in SLUGS)


def test_a_dashboard_whose_tables_are_missing_is_skipped_and_listed(gold_lake, tmp_path: Path):
    report = _build(gold_lake, tmp_path, without=("kpi_performance_livraison",))
    assert "pharma_delivery_performance" not in report.pages
    assert report.skipped == {
        "pharma_delivery_performance": "gold table(s) kpi_performance_livraison not built yet"
    }
    assert "not built: gold table(s) kpi_performance_livraison" in report.index.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.glob("*.html")) == sorted(
        ["index.html", *(f"{s}.html" for s in SLUGS if s != "pharma_delivery_performance")]
    )


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install -y chromium")
def test_each_dashboard_renders_in_headless_chromium_without_errors(gold_lake, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    report = _build(gold_lake, tmp_path / "site")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 900},
            )  # fmt: skip
            try:
                for slug in [*SLUGS, "index"]:
                    path = report.pages.get(slug, report.index)
                    page = browser.new_page()
                    errors: list[str] = []
                    page.on(
                        "console",
                        lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None,
                    )
                    page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                    page.goto(path.as_uri(), wait_until="load")
                    screenshot = tmp_path / f"{slug}.png"
                    page.screenshot(path=str(screenshot), full_page=True)
                    print(f"screenshot of {slug}: {screenshot}")
                    assert errors == [], f"{slug}: {errors}"
                    traces = page.evaluate(
                        "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(e => (e.data || []).length)"
                    )
                    if slug == "index":
                        assert traces == [] and page.locator("a[href$='.html']").count() == len(SLUGS)
                    else:
                        assert len(traces) == 2 and min(traces) > 0, f"{slug}: traces per chart {traces}"
                        assert page.locator(".plotly .main-svg").count() >= 2
                        assert page.locator(".data-date").inner_text() in {"2026-11-25", "2026-11-26"}
                    page.close()
            finally:
                browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_model_outputs_on_the_energy_pages(gold_lake, tmp_path: Path):
    """The anomaly page shows the model's scores when the fact carries them; the
    forecast page says when no forecast was scored yet."""
    from deltalake import DeltaTable

    from lakehouse.bi.dashboards import anomalies_page, forecast_page

    frames = {n: DeltaTable(gold_lake.gold("energy", "star", n)).to_pandas()
              for n in ("fact_consommation_energie", "dim_machine")}  # fmt: skip
    frames["dim_site"] = DeltaTable(gold_lake.gold("pharma", "star", "dim_site")).to_pandas()
    fact = frames["fact_consommation_energie"]
    fact["rule_anomaly_class"] = fact["anomaly_class"]
    fact["model_anomaly_score"] = [0.9, 0.1, None, None, None, None] + [0.2] * 6
    fact.loc[0, "anomaly_class"] = "warning"  # M001 hour 0, flagged by the model
    page = anomalies_page(frames)
    cards = {c.label: c.value for c in page.cards}
    assert cards["Hours raised by the anomaly model"] == "1 of 8 scored"
    assert len(page.figures) == 3 and page.figures[2].data[0].type == "heatmap"
    assert page.figures[2].data[0].z.shape == (2, 6)

    empty = forecast_page(frames)
    assert [(c.label, c.value) for c in empty.cards] == [
        ("Forecast", "not scored yet (the ml_scoring_daily job writes it)")
    ]
    frames["consumption_forecast"] = consumption_forecast().to_pandas()
    page = forecast_page(frames)
    menu = page.figures[1].layout.updatemenus[0]
    assert [b.label for b in menu.buttons] == ["M001", "M002"]
    assert menu.buttons[1].args[0]["visible"] == [False, False, True, True]
