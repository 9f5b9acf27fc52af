"""Every page a user is told about, opened in a real headless Chromium (Debian's
/usr/bin/chromium, never ``playwright install``) with the network cut to anything but
this machine: a request to any other host is aborted and recorded, and a visit fails on
such a request, on a console error, or on a page whose main content is empty. Each page
is saved as a screenshot under ``var/screenshots/`` (git-ignored).

Pages and servers are built from small data the tests make (the fixtures of tests/bi,
tests/api, tests/quality and tests/ml), and each server is a real one on 127.0.0.1,
stopped by its fixture.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.bi.conftest import gold_lake  # noqa: F401  (the small gold lake of the dashboard tests)
from tests.ml.conftest import tiny_lake  # noqa: F401  (the small energy lake of the model tests)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"file", "data", "blob", "about", "chrome", "chrome-extension", "devtools"}

requires_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install -y chromium"
)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOOPBACK


@dataclass
class Visit:
    """One page opened offline: what it logged and what it tried to fetch elsewhere."""

    name: str
    page: object  # playwright.sync_api.Page
    screenshot: Path
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    external: list[str] = field(default_factory=list)  # requests to other hosts (aborted)
    http_errors: list[str] = field(default_factory=list)  # "404 http://127.0.0.1:.../x", to explain errors

    def go(self, name: str, url: str) -> Visit:
        """Open ``url`` in the same tab (a single-page app moves to another route without
        loading its scripts again); what the tab logged so far still counts."""
        self.name, self.screenshot = name, self.screenshot.with_name(f"{name}.png")
        self.page.goto(url)
        return self

    def check(self, main: str, *, min_chars: int = 20, allow_http: tuple[str, ...] = ()) -> str:
        """Fails on an external request, a console error, a local response >= 400 (unless
        its URL contains one of ``allow_http``: then the browser's "Failed to load
        resource" line for it is not an error either), or ``main`` (a CSS selector) with
        fewer than ``min_chars`` characters of text. Saves the screenshot; returns the text."""
        page = self.page
        page.locator(main).first.wait_for(state="visible")
        text = page.locator(main).first.inner_text()
        page.screenshot(path=str(self.screenshot), full_page=True)
        print(f"screenshot of {self.name}: {self.screenshot}")
        assert self.external == [], f"{self.name} tried to reach other hosts: {self.external}"
        errors, http_errors = list(self.errors), []
        for failure in self.http_errors:
            status, url = failure.split(" ", 1)
            if not any(a in url for a in allow_http):
                http_errors.append(failure)
                continue
            line = f"console: Failed to load resource: the server responded with a status of {status}"
            errors.remove(next(e for e in errors if e.startswith(line)))
        assert errors == [], f"{self.name} logged errors: {errors} (HTTP errors: {self.http_errors})"
        assert http_errors == [], f"{self.name} got HTTP errors: {http_errors}"
        assert len(text.strip()) >= min_chars, f"{self.name}: {main} is empty ({text!r})"
        return text


class OfflineBrowser:
    """``browser.visit(name, url)`` opens ``url`` in a new tab whose requests to anything
    but loopback and local files are aborted (and recorded)."""

    def __init__(self, context, screenshots: Path) -> None:
        self.context = context
        self.screenshots = screenshots

    def visit(self, name: str, url: str, *, wait_until: str = "load") -> Visit:
        page = self.context.new_page()
        page.set_default_timeout(30_000)
        visit = Visit(name, page, self.screenshots / f"{name}.png")

        def route(route) -> None:
            if is_local(route.request.url):
                route.fallback()
            else:
                visit.external.append(route.request.url)
                route.abort("blockedbyclient")

        page.route("**/*", route)
        page.on("console", lambda m: visit.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: visit.errors.append(f"exception: {e}"))
        page.on(
            "response", lambda r: visit.http_errors.append(f"{r.status} {r.url}") if r.status >= 400 else None
        )
        page.on("websocket", lambda ws: None if is_local(ws.url) else visit.external.append(ws.url))
        page.goto(url, wait_until=wait_until)
        return visit


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[OfflineBrowser]:
    """One headless Chromium per test module; screenshots in var/screenshots/<module>/."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    screenshots = SCREENSHOTS / request.module.__name__.rsplit(".", 1)[-1]
    shutil.rmtree(screenshots, ignore_errors=True)
    screenshots.mkdir(parents=True)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 900}, service_workers="block",
            )  # fmt: skip
            try:
                yield OfflineBrowser(context, screenshots)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
