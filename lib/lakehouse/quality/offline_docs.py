"""Great Expectations Data Docs that render styled without internet.

GE 1.24's page templates (``great_expectations/render/view/templates/page.j2``,
``index_page.j2``, ``js_script_imports.j2``, ``top_navbar.j2``) load Bootstrap 4.3.1,
bootstrap-table 1.19.1 and its filter-control extension, bootstrap-datepicker 1.9.0,
the bootstrap-dark theme, Font Awesome 6.6.0 (CSS and web fonts), jQuery 3.7.1,
Popper 1.12.9 and Vega / Vega-Lite / Vega-Embed from CDNs, and the GX logo from an S3
bucket. Offline the pages come out unstyled, and their inline scripts (jQuery and
bootstrap-table calls) fail.

:func:`make_offline` runs after each ``build_data_docs``: it copies local copies of
those files into ``<site>/static/offline/`` and rewrites every page of the site to load
them (relative URLs, so the site still works when the folder is moved or served over
HTTP); the logo points at the copy GE already writes to ``<site>/static/images/``.

Where the local copies come from, and why: no PyPI package ships this set. Some pieces
exist there (Font Awesome 6.6.0, jQuery 3.7.1, a Bootstrap 5), but not bootstrap-table,
the datepicker 1.9.0, Popper 1.x or Vega, and Bootstrap 5 does not style GE's Bootstrap 4
markup the same way; GE's own ``render/view/static/`` folder only has its fonts, images
and two small stylesheets, and a hand-written stylesheet would leave the inline scripts
failing. So the exact files the templates name, taken from the npm registry's packages
of those versions (byte for byte: Bootstrap's and Popper's scripts match the
``integrity`` hashes of GE's templates), are shipped in this package as package data,
``lakehouse/quality/data_docs_assets/`` (2 MB; its README lists origins and licences).
The pages then look exactly as they do online. A GE upgrade that names other URLs
leaves them as they are: :func:`make_offline` returns them (``remaining``) and logs a
warning, and the browser tests fail on any request leaving the machine.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "data_docs_assets"
OFFLINE_DIR = "static/offline"  # inside the Data Docs site

_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_UNPKG_TABLE = "https://unpkg.com/bootstrap-table"
_FILTER_CONTROL = "dist/extensions/filter-control/bootstrap-table-filter-control"
#: every CDN URL of GE 1.24's Data Docs templates -> its copy under ``data_docs_assets/``
CDN_ASSETS: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/4.3.1/js/bootstrap.min.js",
    f"{_UNPKG_TABLE}@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/1.19.1/bootstrap-table.min.css",
    f"{_UNPKG_TABLE}@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/1.19.1/bootstrap-table.min.js",
    # the templates mix 1.19.0 and 1.19.1 for the extension's stylesheet: same two rules
    f"{_UNPKG_TABLE}@1.19.0/{_FILTER_CONTROL}.css": "bootstrap-table/1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css",
    f"{_UNPKG_TABLE}@1.19.0/{_FILTER_CONTROL}.min.css": "bootstrap-table/1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css",
    f"{_UNPKG_TABLE}@1.19.1/{_FILTER_CONTROL}.min.js": "bootstrap-table/1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    f"{_CDNJS}/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": "bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
    f"{_CDNJS}/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": "bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": "bootstrap-dark/1.1.0/css/bootstrap-prefers-dark.min.css",
    f"{_CDNJS}/font-awesome/6.6.0/css/all.min.css": "font-awesome/6.6.0/css/all.min.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/3.7.1/jquery.min.js",
    f"{_CDNJS}/popper.js/1.12.9/umd/popper.min.js": "popper.js/1.12.9/umd/popper.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/6.29.0/vega-embed.min.js",
}  # fmt: skip
#: GE's navbar logo (``top_navbar.j2``), also in the ``static/images/`` GE writes to the site
GE_IMAGES_URL = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

# a tag that loads something: <script src>, <link href> (stylesheets, icons), <img src>...
_TAG = re.compile(r"<(?:script|link|img|iframe|source|embed)\b[^>]*>", re.IGNORECASE)
_URL_ATTRIBUTE = re.compile(r'\b(src|href)\s*=\s*"([^"]*)"', re.IGNORECASE)
# subresource integrity and CORS mode make a browser refuse a file:// script
_SRI_ATTRIBUTES = re.compile(r'\s+(?:integrity|crossorigin)\s*=\s*"[^"]*"', re.IGNORECASE)
_REMOTE = re.compile(r"^(?:https?:)?//", re.IGNORECASE)


@dataclass
class OfflineDocs:
    """What :func:`make_offline` did to one Data Docs site."""

    site: Path
    pages: int = 0
    rewritten: int = 0  # URLs pointed at local copies
    remaining: dict[str, list[str]] = field(default_factory=dict)  # page -> remote URLs still loaded


def make_offline(site: Path) -> OfflineDocs:
    """Copy the assets of the Data Docs into ``<site>/static/offline/`` and point every
    page of ``site`` at them. Idempotent: a page already rewritten is left unchanged."""
    site = Path(site)
    shutil.copytree(
        ASSETS, site / OFFLINE_DIR, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    report = OfflineDocs(site)
    for page in sorted(site.rglob("*.html")):
        if (site / OFFLINE_DIR) in page.parents:
            continue
        text = page.read_text(encoding="utf-8")
        rewritten, count, remaining = _rewrite(text, page.parent, site)
        report.pages += 1
        report.rewritten += count
        if remaining:
            report.remaining[page.relative_to(site).as_posix()] = remaining
        if rewritten != text:
            page.write_text(rewritten, encoding="utf-8")
    if report.remaining:
        log.warning(
            "Data Docs pages still load %d remote URL(s) offline_docs has no copy of, e.g. %s",
            sum(len(urls) for urls in report.remaining.values()),
            next(iter(report.remaining.values()))[0],
        )
    return report


def local_url(url: str, page_dir: Path, site: Path) -> str | None:
    """The relative URL, from a page in ``page_dir``, of the local copy of ``url``; None
    when there is none."""
    target: Path | None = None
    if url in CDN_ASSETS:
        target = site / OFFLINE_DIR / CDN_ASSETS[url]
    elif url.startswith(GE_IMAGES_URL):
        name = url[len(GE_IMAGES_URL) :].split("?", 1)[0]
        if name and "/" not in name and (site / "static" / "images" / name).is_file():
            target = site / "static" / "images" / name
    if target is None:
        return None
    return Path(os.path.relpath(target, page_dir)).as_posix()


def _repair_static(url: str, page_dir: Path, site: Path) -> str | None:
    """GE 1.24 links the favicon of validation pages one folder too high
    (``../../../../static/images/favicon.ico`` from five folders down): point such a
    ``static/`` URL that leads nowhere at the file of the site's ``static/`` folder."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    if "static/" not in path or path.startswith(("data:", "/")) or (page_dir / path).exists():
        return None
    target = site / "static" / path.split("static/", 1)[1]
    return Path(os.path.relpath(target, page_dir)).as_posix() if target.is_file() else None


def _rewrite(html: str, page_dir: Path, site: Path) -> tuple[str, int, list[str]]:
    count = 0
    remaining: list[str] = []

    def tag(match: re.Match[str]) -> str:
        nonlocal count
        text = match.group(0)
        found = _URL_ATTRIBUTE.search(text)
        if not found:
            return text
        if not _REMOTE.match(found.group(2)):
            repaired = _repair_static(found.group(2), page_dir, site)
            return text if repaired is None else text[: found.start(2)] + repaired + text[found.end(2) :]
        if text[1:2].lower() == "l" and not re.search(
            r'rel\s*=\s*"[^"]*(stylesheet|icon|preload)', text, re.I
        ):
            return text  # <link rel="canonical"> and the like load nothing
        local = local_url(found.group(2), page_dir, site)
        if local is None:
            remaining.append(found.group(2))
            return text
        count += 1
        text = text[: found.start(2)] + local + text[found.end(2) :]
        return _SRI_ATTRIBUTES.sub("", text)

    return _TAG.sub(tag, html), count, remaining
