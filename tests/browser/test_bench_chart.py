"""The benchmark page's chart (docs/img/bench_curves.svg) in Chromium, offline: shown
by an <img> as docs/benchmark.md shows it, each series' colour on screen, and, opened as
a document, one line per series of the report it is drawn from, one marker per scale."""

from __future__ import annotations

import html
import io
from pathlib import Path

import pytest

from lakehouse.bench.chart import ENGINE_COLOURS, STAGE_COLOURS, curves, load_report, series_id
from tests.bench.test_chart import charted_report

from .conftest import PROJECT_ROOT, OfflineBrowser

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser_bench_chart")]
CHART = PROJECT_ROOT / "docs" / "img" / "bench_curves.svg"
PIXELS_PER_POINT = 20  # a marker alone is about 30 pixels of its colour; a line adds more


def _colour(name: str) -> tuple[int, int, int]:
    panel, _, label = name.partition(": ")
    hex_colour = (ENGINE_COLOURS if panel == "engines" else STAGE_COLOURS)[label]
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def _pixels_near(png: bytes, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(
        count
        for count, pixel in image.getcolors(maxcolors=2**24)
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))
    )


def test_the_chart_shows_every_series_of_its_report_in_chromium(
    browser: OfflineBrowser, tmp_path: Path
) -> None:
    series = curves(load_report(charted_report()))
    page = tmp_path / "benchmark.html"
    page.write_text(
        "<!doctype html><html><body><main><h1>Benchmark curves</h1>"
        f"<img id='curves' alt='benchmark curves' src='{html.escape(CHART.as_uri())}'></main></body></html>",
        encoding="utf-8",
    )
    visit = browser.visit("bench_curves", page.as_uri())
    visit.check("main", min_chars=10)
    size = visit.page.locator("#curves").evaluate(
        "img => [img.complete, img.naturalWidth, img.naturalHeight]"
    )
    assert size == [True, 1536, 538]  # 16 x 5.6 inches at 96 CSS pixels per inch

    png = visit.screenshot.read_bytes()
    drawn = {name: _pixels_near(png, _colour(name)) for name in series}
    assert all(pixels >= PIXELS_PER_POINT * len(series[name]) for name, pixels in drawn.items()), drawn
    assert _pixels_near(png, (255, 0, 255)) == 0  # a colour the chart does not use
    visit.page.close()

    svg = browser.visit("bench_curves_svg", CHART.as_uri())
    found = svg.page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('g[id]')].map(
             g => [g.id, g.querySelectorAll('use').length]))"""
    )
    assert {series_id(name): found.get(series_id(name)) for name in series} == {
        series_id(name): len(points) for name, points in series.items()
    }
    assert found["engines-classic-spark-local-2"] == 3  # scales 0.1, 1 and 5
    assert svg.errors == [] and svg.external == [], (svg.errors, svg.external)
    svg.page.close()
