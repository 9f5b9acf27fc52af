"""Child process that executes one notebook with papermill.

The runner starts ``python -m lakehouse.jobs._worker SPEC_JSON`` in its own session with
stdout/stderr going to the task's log, so it can kill this process and its kernel when a
task times out. The outcome is written as JSON to ``spec["result"]``:

* ``{"status": "ok"}``
* ``{"status": "cell_error", "cell_index", "exec_count", "source", "ename", "evalue"}``
* ``{"status": "kernel_died", "message"}``
* ``{"status": "error", "type", "message"}`` (kernel did not start, bad notebook...)

For a ``run_job_task`` (``spec["job"]`` set) it runs that whole job instead, from the jobs
file ``spec["input"]``, and reports ``{"status": "ok"}`` or
``{"status": "job_failed", "state", "message", "run_dir"}``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_CELL_ERROR, EXIT_KERNEL_DIED, EXIT_ERROR = 0, 1, 2, 3


def _fast_imports() -> None:
    """Skip an optional jsonschema format checker (``iri``) that nbformat never uses but
    whose import costs about a second per task."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def execute(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the notebook described by ``spec``; return the outcome (never raises)."""
    _fast_imports()
    import nbclient.exceptions
    import papermill
    from papermill.exceptions import PapermillExecutionError

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
    return {"status": "ok"}


def execute_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the child job of a ``run_job_task`` (its own run folder and record)."""
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
        )
    except Exception as exc:  # reported to the runner, which names the task
        traceback.print_exc()
        return {"status": "error", "type": type(exc).__name__, "message": str(exc)}
    if run.state.value == "SUCCESS":
        return {"status": "ok", "run_dir": run.run_dir}
    return {"status": "job_failed", "state": run.state.value, "message": run.error, "run_dir": run.run_dir}


def main(argv: list[str]) -> int:
    """Entry point: ``argv[0]`` is the JSON spec."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    spec = json.loads(argv[0])
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
