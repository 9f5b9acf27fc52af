"""Shared by the pipeline-project tests: a folder outside the repository, and a
project of transformation files written into it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
SPEC = """\
name: {name}
storage: storage-root
libraries:
  - glob:
      include: transformations/**
"""


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """A folder outside the repository, as the cwd, with no LAKEHOUSE_* variable set."""
    assert not tmp_path.resolve().is_relative_to(REPOSITORY)
    for key in [k for k in os.environ if k.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_project(folder: Path, files: dict[str, str], name: str = "p") -> Path:
    """``folder/spark-pipeline.yml`` (pipeline ``name``, storage ``storage-root``) and
    ``files`` (dedented) under ``folder/transformations/``; returns the spec file."""
    (folder / "transformations").mkdir(parents=True)
    spec = folder / "spark-pipeline.yml"
    spec.write_text(SPEC.format(name=name))
    for relative, text in files.items():
        (folder / "transformations" / relative).write_text(textwrap.dedent(text))
    return spec
