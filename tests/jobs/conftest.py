"""Fixtures for the jobs tests: a throw-away project with the fixture notebooks."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).parent / "notebooks"
CONFIG = """\
profile: test
runs_dir: ./runs
postgres:
  mode: external
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with ``conf/``, the fixture notebooks under ``notebooks/`` and
    ``LAKEHOUSE_HOME`` pointing at it."""
    root = tmp_path / "project"
    (root / "conf" / "base").mkdir(parents=True)
    (root / "conf" / "base" / "lakehouse.yaml").write_text(CONFIG)
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    monkeypatch.setenv("LAKEHOUSE_HOME", str(root))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def write_jobs(project: Path) -> Callable[[str], Path]:
    """Write ``jobs.yaml`` (dedented) in the project; return its path."""

    def write(text: str) -> Path:
        path = project / "jobs.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write
