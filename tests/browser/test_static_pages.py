"""The pages a user opens from disk, offline in Chromium: the dashboards, the data
catalog, the quality summary and the Great Expectations Data Docs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest

from lakehouse.bi.dashboards import DASHBOARDS, build_dashboards
from lakehouse.bi.gold import discover_gold_tables
from lakehouse.governance.catalog import build_catalog, load_catalog_config, publish
from lakehouse.lake import Lake
from lakehouse.medallion import medallion_graph
from lakehouse.quality import offline_docs
from lakehouse.quality.run import run_quality
from lakehouse.quality.settings import QualitySettings
from tests.quality.dataset import RUN_DATE, dirty_rows, write_tables

from .conftest import PROJECT_ROOT, OfflineBrowser

pytestmark = pytest.mark.xdist_group("browser_static_pages")  # the browser tests are also `slow`
GENERATED = dt.datetime(2026, 11, 26, 7, 15, tzinfo=dt.UTC)
SUITES = 9  # lakehouse.quality.suites: 2 silver + 7 gold tables


# --- dashboards and catalog (gold written with delta-rs, no engine) --------------------------


@pytest.mark.slow
def test_dashboards_render_offline_with_their_figures(
    browser: OfflineBrowser, gold_lake, tmp_path: Path
) -> None:
    report = build_dashboards(
        discover_gold_tables(gold_lake), tmp_path / "dashboards", generated_at=GENERATED
    )
    index = browser.visit("dashboards_index", report.index.as_uri())
    text = index.check("main")
    built = {d.slug: d for d in DASHBOARDS if d.slug in report.pages}
    assert index.page.locator("main a[href$='.html']").count() == len(built) >= 4
    assert all(d.title in text for d in built.values()) and all(s in text for s in report.skipped)
    # headline figures of the small gold lake (computed by hand in tests/bi/test_dashboards.py)
    expected = {
        "pharma_stockout_rate": ["10.0%", "16.7%"],
        "pharma_delivery_performance": ["81.5%"],
        "energy_realtime_consumption": ["165 kW", "825 kWh"],
        "energy_machine_anomalies": ["2 of 2"],
    }
    assert set(expected) <= set(built)
    for slug, path in report.pages.items():  # every page, the ones added later too
        visit = browser.visit(f"dashboard_{slug}", path.as_uri())
        charts = visit.page.locator(".chart").count()
        if charts:
            visit.page.locator(".plotly .main-svg").nth(charts - 1).wait_for()
        main = visit.check("main")
        assert built[slug].title in visit.page.locator("h1").inner_text()
        assert all(figure in main for figure in expected.get(slug, [])), (slug, main)
        if slug in expected:
            assert visit.page.locator(".js-plotly-plot").count() == charts == 2
        elif not charts:  # e.g. the forecast page before any scoring: it says so
            assert "No rows in the gold tables yet." in main, (slug, main)
        visit.page.close()
    index.page.close()


@pytest.mark.slow
def test_catalog_page_renders_offline_with_owners_and_filter(
    browser: OfflineBrowser, gold_lake, tmp_path: Path
) -> None:
    config = load_catalog_config(PROJECT_ROOT / "conf" / "base" / "catalog.yaml")
    entries = build_catalog(gold_lake, medallion_graph(), config)
    published = publish(entries, gold_lake, tmp_path / "catalog", generated_at=GENERATED)
    visit = browser.visit("catalog", published.html_path.as_uri())
    text = visit.check("main")
    assert f"{len(entries)} tables" in text and "generated 2026-11-26" in text
    fact = visit.page.locator("section#fact_ventes")
    owner = medallion_graph().datasets["fact_ventes"].contract.owner  # declared on the definition
    assert owner and "fact_ventes" in fact.inner_text() and owner in fact.inner_text()
    visit.page.fill("#filter", "kpi_rupture_stock")
    shown = visit.page.locator("main section:visible").evaluate_all("els => els.map(e => e.id)")
    assert shown == ["kpi_rupture_stock"]
    visit.page.close()


# --- quality: summary page and Data Docs of one run on the small dirty lake ------------------


@pytest.fixture(scope="module")
def quality_run(spark, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("quality_pages")
    lake = Lake(str(root / "lake"))
    write_tables(spark, lake, dirty_rows())
    run = run_quality(
        spark, lake, RUN_DATE, run_id="browser-1", settings=QualitySettings(), runs_dir=root / "runs",
        validated_at=dt.datetime(2026, 11, 26, 6, 30, tzinfo=dt.UTC),
    )  # fmt: skip
    return run, root / "runs" / "quality"


@pytest.mark.slow
def test_quality_summary_renders_offline_with_the_failures(browser: OfflineBrowser, quality_run) -> None:
    run, folder = quality_run
    failed = [r for suite in run.suites for r in suite.results if not r.success]
    visit = browser.visit("quality_summary", (folder / "summary.html").as_uri())
    text = visit.check("body", min_chars=200)
    assert f"Latest failures ({len(failed)})" in text
    assert "product_sk_in_dim_produit" in text and "gold.fact_consommation_energie" in text
    chart = visit.page.locator("img[alt='pass rate per table']")
    assert chart.evaluate("img => img.complete && img.naturalWidth") > 100
    # the link to the Data Docs of the run leads to an existing page
    href = visit.page.locator("a[href$='index.html']").get_attribute("href")
    assert (folder / href).resolve() == run.docs_index.resolve() and run.docs_index.is_file()
    visit.page.close()


@pytest.mark.slow
def test_data_docs_render_styled_offline(browser: OfflineBrowser, quality_run) -> None:
    run, _ = quality_run
    site = run.docs_index.parent
    pages = sorted(site.glob("validations/**/*.html"))
    suites = sorted(site.glob("expectations/**/*.html"))
    assert len(pages) == len(suites) == SUITES
    assert not [
        p
        for p in site.rglob("*.html")
        if "static" not in p.parts and re.search(r'(src|href)="https?://[^"]*\.(js|css)', p.read_text())
    ]

    index = browser.visit("data_docs_index", run.docs_index.as_uri())
    index.page.locator(".bootstrap-table").first.wait_for()  # bootstrap-table built the lists
    index.check(".ge-index-page-table-container, .container-fluid", min_chars=100)
    style = index.page.evaluate(
        """async () => { await document.fonts.ready; return {
             navbar: getComputedStyle(document.querySelector('.navbar')).display,
             icons: document.fonts.check('900 16px "Font Awesome 6 Free"'),
             jquery: typeof window.jQuery, table: typeof window.jQuery.fn.bootstrapTable,
             logo: document.querySelector('nav img').naturalWidth }; }"""
    )
    assert style == {
        "navbar": "flex",
        "icons": True,
        "jquery": "function",
        "table": "function",
        "logo": style["logo"],
    }
    assert style["logo"] > 0, "the GX logo did not load"
    rows = index.page.locator("table[id$='-body-table'] tbody tr").count()
    assert rows == 2 * SUITES, f"suites + validation results listed: {rows}"
    index.page.close()

    failed = {suite.suite for suite in run.suites if not all(r.success for r in suite.results)}
    assert failed == {"gold.fact_ventes", "gold.fact_consommation_energie"}
    for page in [*pages, *suites]:
        suite = next(s for s in run.suites if page.stem.endswith(s.suite.split(".")[-1]))
        visit = browser.visit(f"data_docs_{page.relative_to(site).parts[0]}_{suite.suite}", page.as_uri())
        text = visit.check("main, .container-fluid", min_chars=100)
        if "validations" in page.parts:
            unsuccessful = sum(not r.success for r in suite.results)
            assert re.search(rf"Evaluated Expectations\s+{len(suite.results)}\b", text), (
                page.name,
                text[:600],
            )
            assert re.search(rf"Unsuccessful Expectations\s+{unsuccessful}\b", text), (page.name, text[:600])
            assert (unsuccessful > 0) == (suite.suite in failed)
        assert visit.page.evaluate("getComputedStyle(document.querySelector('.navbar')).display") == "flex"
        visit.page.close()


# --- the offline assets themselves (no browser) ---------------------------------------------


def test_every_cdn_url_of_the_installed_ge_templates_has_a_local_copy() -> None:
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    loaded = set()
    for template in templates.glob("*.j2"):
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", template.read_text(encoding="utf-8")):
            loaded.update(re.findall(r'(?:src|href)="(https?://[^"{]+)"', tag))
    assert loaded and loaded <= set(offline_docs.CDN_ASSETS), sorted(loaded - set(offline_docs.CDN_ASSETS))
    navbar = (templates / "top_navbar.j2").read_text(encoding="utf-8")
    assert offline_docs.GE_IMAGES_URL in navbar
    for name in offline_docs.CDN_ASSETS.values():
        assert (offline_docs.ASSETS / name).stat().st_size > 100, name


def test_local_scripts_are_the_files_ge_declares_by_integrity_hash() -> None:
    import great_expectations

    imports = (
        Path(great_expectations.__file__).parent / "render" / "view" / "templates" / "js_script_imports.j2"
    )
    declared = re.findall(r'src="([^"]+)" integrity="sha384-([^"]+)"', imports.read_text(encoding="utf-8"))
    assert len(declared) == 2  # Popper and Bootstrap's script
    for url, digest in declared:
        data = (offline_docs.ASSETS / offline_docs.CDN_ASSETS[url]).read_bytes()
        assert base64.b64encode(hashlib.sha384(data).digest()).decode() == digest, url
