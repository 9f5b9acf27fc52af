"""The kernels of notebook tasks end without finalising their interpreter, after the
exit handlers of the notebook's libraries (lakehouse.jobs.kernel_exit)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from lakehouse.jobs import JobState, run_job
from lakehouse.jobs._worker import kernel_arguments
from lakehouse.jobs.kernel_exit import KERNEL_ARGUMENT
from lakehouse.jobs.kernel_seed import SEEDED_KERNEL_ARGUMENT

WriteJobs = Callable[[str], Path]

EXIT_HANDLER_NOTEBOOK = """\
import atexit, json, sys
from pathlib import Path

Path("kernel.json").write_text(json.dumps({"argv": sys.argv, "names": sorted(globals())}))
atexit.register(Path("exit_handler.txt").write_text, "ran")
"""


def _notebook(path: Path, source: str, kernel: str = "python3") -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow
def test_task_kernel_exits_at_once_and_still_runs_exit_handlers(write_jobs: WriteJobs, project: Path) -> None:
    _notebook(project / "notebooks" / "exit_handler.ipynb", EXIT_HANDLER_NOTEBOOK)
    path = write_jobs("""
        jobs:
          job:
            tasks:
              - task_key: t
                notebook: notebooks/exit_handler.ipynb
        """)
    run = run_job(path, "job", quiet=True)
    assert run.state == JobState.SUCCESS, run.error
    notebooks = project / "notebooks"
    kernel = json.loads((notebooks / "kernel.json").read_text())
    # Forked from the fork server's seed: the start-up line that also runs the exit
    # handlers of the libraries imported before the fork.
    assert SEEDED_KERNEL_ARGUMENT in kernel["argv"] and KERNEL_ARGUMENT not in kernel["argv"]
    assert "os" not in kernel["names"], "the start-up line leaves no name behind"
    assert (notebooks / "exit_handler.txt").read_text() == "ran"


def test_a_seeded_kernel_runs_the_exit_handlers_registered_before_the_fork() -> None:
    """In the order Python would (the notebook's first, then those of the libraries
    imported before), then ends before finalising the interpreter."""
    script = """
import atexit
from lakehouse.jobs.kernel_seed import SEEDED_KERNEL_LINE, recording_exit_handlers

with recording_exit_handlers():  # what the fork server does while it imports
    atexit.register(print, "handler of a preloaded library")
exec(SEEDED_KERNEL_LINE, {})  # the kernel starts
atexit.register(print, "handler of the notebook")


class Finalised:
    def __del__(self):
        print("interpreter finalised")


kept = Finalised()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "handler of the notebook\nhandler of a preloaded library\n")


def test_only_ipython_kernels_get_the_extension(tmp_path: Path) -> None:
    python = _notebook(tmp_path / "python.ipynb", "1")
    other = _notebook(tmp_path / "r.ipynb", "1", kernel="ir")
    assert kernel_arguments({"input": str(python)}) == [KERNEL_ARGUMENT]
    assert kernel_arguments({"input": str(other)}) == []
    assert kernel_arguments({"input": str(other), "kernel": "python3"}) == [KERNEL_ARGUMENT]
    assert kernel_arguments({"input": str(python), "kernel": "ir"}) == []
