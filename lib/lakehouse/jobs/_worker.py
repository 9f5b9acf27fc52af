"""Child process that executes one notebook with papermill.

The runner forks this process from its fork server (:mod:`lakehouse.jobs.forkserver`),
or starts ``python -m lakehouse.jobs._worker SPEC_JSON``, in its own session with
stdout/stderr going to the task's log, so it can kill this process and its kernel when a
task times out. The outcome is written as JSON to ``spec["result"]``:

* ``{"status": "ok"}``
* ``{"status": "cell_error", "cell_index", "exec_count", "source", "ename", "evalue"}``
* ``{"status": "kernel_died", "message"}``
* ``{"status": "error", "type", "message"}`` (kernel did not start, bad notebook...)

For a ``run_job_task`` (``spec["job"]`` set) it runs that whole job instead, from the jobs
file ``spec["input"]``, and reports ``{"status": "ok"}`` or
``{"status": "job_failed", "state", "message", "run_dir"}``; the runner calls
:func:`execute_job` in a thread of its own process for that, unless told to use a child
process (``PapermillExecutor(child_jobs_in_process=False)``).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

    from lakehouse.config import Settings
    from lakehouse.jobs.executor import Executor

EXIT_OK, EXIT_CELL_ERROR, EXIT_KERNEL_DIED, EXIT_ERROR = 0, 1, 2, 3


# Optional dependencies papermill imports for notebooks on HDFS (pyarrow) and S3 (boto3):
# job notebooks are local files, and the two imports cost about 0.4 s per task.
_UNUSED_BY_PAPERMILL = ("pyarrow", "boto3")


def _fast_imports() -> None:
    """Keep papermill's remote-storage handlers out of this process (see above); the
    ``lakehouse`` package already skips jsonschema's unused ``iri`` checker."""
    for name in _UNUSED_BY_PAPERMILL:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def execute(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the notebook described by ``spec``; return the outcome (never raises)."""
    _fast_imports()
    import nbclient.exceptions
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from lakehouse.jobs import kernel_seed

    seeded = {"kernel_manager_class": kernel_seed.SeededKernelManager} if kernel_seed.planted() else {}
    try:
        papermill.execute_notebook(
            spec["input"],
            spec["output"],
            parameters=spec["parameters"],
            kernel_name=spec.get("kernel"),
            cwd=spec["cwd"],
            progress_bar=False,
            log_output=True,
            request_save_on_cell_execute=True,
            extra_arguments=kernel_arguments(spec),
            **seeded,
        )
    except PapermillExecutionError as exc:
        return {
            "status": "cell_error",
            "cell_index": exc.cell_index,
            "exec_count": exc.exec_count,
            "source": exc.source,
            "ename": exc.ename,
            "evalue": exc.evalue,
        }
    except nbclient.exceptions.DeadKernelError as exc:
        return {"status": "kernel_died", "message": str(exc)}
    except Exception as exc:  # reported to the runner, which names the task
        traceback.print_exc()
        return {"status": "error", "type": type(exc).__name__, "message": str(exc)}
    finally:
        kernel_seed.discard()  # unused: papermill failed first, or started another kernel
    return {"status": "ok"}


def kernel_arguments(spec: dict[str, Any]) -> list[str]:
    """An IPython kernel (the names jupyter_client treats as one) runs the start-up line
    of :mod:`lakehouse.jobs.kernel_exit`; another language's kernel gets no argument."""
    from lakehouse.jobs.kernel_exit import KERNEL_ARGUMENT

    name = spec.get("kernel") or _notebook_kernel(spec["input"])
    return [KERNEL_ARGUMENT] if name in {"python", "python2", "python3"} else []


def _notebook_kernel(path: str) -> str | None:
    """The kernel name in the notebook's metadata (what papermill starts by default)."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # papermill reports the unreadable notebook
    return notebook.get("metadata", {}).get("kernelspec", {}).get("name")


def execute_job(
    spec: dict[str, Any],
    *,
    cancel: threading.Event | None = None,
    console: Console | None = None,
    settings: Settings | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Run the child job of a ``run_job_task`` (its own run folder and record). In the
    runner's process, ``cancel`` stops it (running kernels killed, run CANCELED),
    ``console`` gets its progress (the task's log), ``settings`` and ``executor`` are
    the parent run's."""
    from lakehouse.jobs.runner import run_job

    try:
        run = run_job(
            spec["input"],
            spec["job"],
            params={key: str(value) for key, value in spec["parameters"].items() if value is not None},
            runs_dir=spec["runs_dir"],
            run_id=spec["run_id"],
            max_parallel=spec.get("max_parallel", 1),
            trigger="run_job_task",
            console=console,
            settings=settings,
            executor=executor,
            cancel=cancel,
        )
    except Exception as exc:  # reported to the runner, which names the task
        traceback.print_exc(file=console.file if console else None)
        return {"status": "error", "type": type(exc).__name__, "message": str(exc)}
    if run.state.value == "SUCCESS":
        return {"status": "ok", "run_dir": run.run_dir}
    return {"status": "job_failed", "state": run.state.value, "message": run.error, "run_dir": run.run_dir}


def run(spec: dict[str, Any]) -> int:
    """Execute ``spec`` in this process (a worker), write the report to
    ``spec["result"]`` and return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    outcome = execute_job(spec) if spec.get("job") else execute(spec)
    result = Path(spec["result"])
    temporary = result.with_name(result.name + ".tmp")
    temporary.write_text(json.dumps(outcome), encoding="utf-8")
    os.replace(temporary, result)
    codes = {
        "ok": EXIT_OK,
        "cell_error": EXIT_CELL_ERROR,
        "kernel_died": EXIT_KERNEL_DIED,
        "job_failed": EXIT_CELL_ERROR,
    }
    return codes.get(outcome["status"], EXIT_ERROR)


def main(argv: list[str]) -> int:
    """Entry point: ``argv[0]`` is the JSON spec."""
    return run(json.loads(argv[0]))


def exit_now(code: int) -> NoReturn:
    """Run the exit handlers (a kernel left behind is shut down, logs are flushed), then
    end the process without finalising the modules it loaded: papermill and its
    dependencies, or pandas and delta-rs for a child job, take up to a second or two to
    tear down on a busy machine, and the report is already written."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
