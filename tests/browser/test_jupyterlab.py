"""JupyterLab (`make lab`) as a real ``jupyter lab`` process on 127.0.0.1, with one layer
notebook of notebooks/ opened offline in Chromium: the cells render and its kernel starts."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import PROJECT_ROOT, OfflineBrowser
from .servers import free_port, subprocess_server

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser_jupyterlab")]
NOTEBOOK = "bronze/ingest_erp.ipynb"


@dataclass(frozen=True)
class Lab:
    url: str
    token: str
    root: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` on a copy of notebooks/ (opening a notebook may save it), with its
    settings, workspaces and runtime files in a tmp folder and no news or update checks."""
    folder = tmp_path_factory.mktemp("jupyterlab")
    root = folder / "notebooks"
    shutil.copytree(PROJECT_ROOT / "notebooks", root)
    token, port = secrets.token_hex(16), free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly", "--allow-root",  # CI runs as root
    ]  # fmt: skip
    env = {
        "JUPYTER_CONFIG_DIR": str(folder / "config"),
        "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    with subprocess_server(command, f"{url}/api/status?token={token}", log=folder / "lab.log", env=env):
        yield Lab(url, token, root)


def _check_server(lab: Lab) -> None:
    """The server lists the notebooks, refuses a request without the token, has the kernel."""
    assert httpx.get(f"{lab.url}/api/contents/bronze", timeout=30).status_code == 403
    listing = httpx.get(f"{lab.url}/api/contents/bronze", params={"token": lab.token}, timeout=30).json()
    expected = sorted(p.name for p in (PROJECT_ROOT / "notebooks" / "bronze").glob("*.ipynb"))
    assert sorted(item["name"] for item in listing["content"]) == expected
    kernels = httpx.get(f"{lab.url}/api/kernelspecs", params={"token": lab.token}, timeout=30).json()
    assert "python3" in kernels["kernelspecs"]


def test_a_layer_notebook_opens_offline_with_its_cells_and_a_running_kernel(
    browser: OfflineBrowser, lab: Lab
) -> None:
    _check_server(lab)  # one test per server: pytest 9.2 ignores xdist's groups, two would start it twice
    cells = json.loads((PROJECT_ROOT / "notebooks" / NOTEBOOK).read_text(encoding="utf-8"))["cells"]
    visit = browser.visit("jupyterlab_notebook", f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    page = visit.page
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    notebook.locator(".jp-Cell").first.wait_for(timeout=90_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)  # the status bar
    selector = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"
    page.wait_for_function(f"n => document.querySelectorAll({selector!r}).length >= n", arg=len(cells))
    assert notebook.locator(".jp-Cell").count() == len(cells)
    assert notebook.locator(".jp-CodeCell").count() == sum(c["cell_type"] == "code" for c in cells)
    title = "".join(cells[0]["source"]).splitlines()[0].lstrip("# ").strip()
    assert notebook.locator(".jp-MarkdownCell h1").first.inner_text().strip().rstrip("¶").strip() == title
    # the kernel runs the parameters cell (assignments only): "[1]:" and no error output
    parameters = notebook.locator(".jp-CodeCell").first
    parameters.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    parameters.locator(".jp-InputArea-prompt", has_text="[1]:").wait_for(timeout=60_000)
    assert notebook.locator(".jp-OutputArea-output[data-mime-type*='error']").count() == 0
    text = visit.check(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook", min_chars=200)
    assert "".join(cells[1]["source"]).splitlines()[0].strip() in text
    sessions = httpx.get(f"{lab.url}/api/sessions", params={"token": lab.token}, timeout=30).json()
    assert [(s["path"], s["kernel"]["name"]) for s in sessions] == [(NOTEBOOK, "python3")]
    page.close()
