"""How a task's processes start: notebook workers forked from the fork server (the task's
environment, working directory and session; killed with their kernel), the start-up
fallback when the server cannot be used, and a run_job_task's child job run in the
runner's process yet stopped by its deadline, a cancel and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from lakehouse.jobs import JobRun, JobState, TaskState, forkserver, load_run, run_job
from lakehouse.jobs.executor import kill_process_tree

WriteJobs = Callable[[str], Path]


def _wait_for(path: Path, timeout: float = 60.0) -> dict[str, object]:
    """The JSON the whoami notebook writes, once its kernel has written it."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not written within {timeout}s"
        time.sleep(0.05)
    return json.loads(path.read_text())


def _run_whoami(write_jobs: WriteJobs, project: Path, **options: object) -> tuple[JobRun, dict[str, object]]:
    """Run a one-task job of the ``whoami`` notebook; its run and what the notebook saw."""
    out = project / "who.json"
    path = write_jobs(f"""
        jobs:
          daily:
            tasks:
              - {{task_key: who, notebook: notebooks/whoami.ipynb, parameters: {{out_path: "{out}"}}}}
        """)
    run = run_job(path, "daily", quiet=True, **options)
    assert run.state == JobState.SUCCESS, run.error
    return run, _wait_for(out)


def _forked_by(server: forkserver.ForkServer, who: dict[str, object]) -> bool:
    """Whether the notebook's worker was forked by ``server`` or by its successor (the
    server's child that has the quality and ML libraries imported too)."""
    assert server.process is not None
    return server.process.pid in (who["worker_parent_pid"], who["worker_grandparent_pid"])


def _gone(pid: int) -> bool:
    """Dead, or a zombie its parent has not reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def own_fork_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., forkserver.ForkServer]]:
    """Replace this process's fork server for one test (closed afterwards)."""
    servers: list[forkserver.ForkServer] = []

    def install(server: forkserver.ForkServer | None = None) -> forkserver.ForkServer:
        server = server or forkserver.ForkServer()
        servers.append(server)
        monkeypatch.setattr(forkserver, "_shared", server)
        return server

    yield install
    for server in servers:
        server.close()


def test_forked_worker_gets_its_request_and_reports_its_exit_code(
    tmp_path: Path, own_fork_server: Callable[..., forkserver.ForkServer]
) -> None:
    server = own_fork_server()
    log = tmp_path / "task.log"
    log.write_text("=== header from the runner\n")
    # An empty worker spec: the worker fails before papermill, with a traceback in the
    # task's log and the "error" exit code, like `python -m lakehouse.jobs._worker {}`.
    worker = server.spawn({"log": str(log), "cwd": str(tmp_path), "env": {"LAKEHOUSE_X": "1"}, "spec": {}})
    assert worker.wait(timeout=60) == 3
    assert worker.poll() == 3
    text = log.read_text()
    assert text.startswith("=== header from the runner\n")
    assert "KeyError: 'input'" in text
    assert server.process is not None
    tasks = Path(f"/proc/{server.process.pid}/task")
    threads = sorted((task / "comm").read_text().strip() for task in tasks.iterdir())
    # One thread that runs Python; the others are the fork-aware native threads of the
    # preloaded libraries (numpy's OpenBLAS pool, named as the process; jemalloc's).
    assert set(threads) <= {"python", *forkserver.FORK_AWARE_THREADS}, threads
    # A working directory that is gone: the worker says so in the log and exits 3.
    missing = server.spawn({"log": str(log), "cwd": str(tmp_path / "gone"), "env": {}, "spec": {}})
    assert missing.wait(timeout=60) == 3
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '{tmp_path / 'gone'}'" in log.read_text()


@pytest.mark.slow
def test_notebook_worker_is_forked_in_its_own_session_with_the_task_env_and_cwd(
    write_jobs: WriteJobs, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = forkserver.shared()
    server.start()
    # Set after the server started: the worker takes the task's environment, not the server's.
    monkeypatch.setenv("LAKEHOUSE_TEST_MARKER", "set after the fork server started")
    run, who = _run_whoami(write_jobs, project, run_id="R-who")
    assert _forked_by(server, who)
    assert who["worker_session"] == who["worker_pid"], "the worker leads its own session"
    # The kernel: forked from the worker with the notebook libraries imported, yet what
    # papermill would have started (a session of its own, ending with the worker).
    assert "pandas" in who["preloaded"]  # type: ignore[operator]
    assert who["kernel_session"] == who["kernel_pid"]
    assert who["kernel_parent_env"] == str(who["worker_pid"])
    assert who["root_log_handlers"] == 0, "the worker's logging is not the notebook's"
    # on Unix sockets of its own (no TCP port two kernels could both be handed), removed after
    assert who["connection"]["transport"] == "ipc"  # type: ignore[index]
    sockets = Path(who["connection"]["ip"]).parent  # type: ignore[index]
    assert sockets.name.startswith("lakehouse-kernel-") and not sockets.exists()
    assert who["cwd"] == str(project / "notebooks")
    assert who["env"] == who["env"] | {
        "LAKEHOUSE_JOB": "daily",
        "LAKEHOUSE_RUN_ID": "R-who",
        "LAKEHOUSE_TASK_KEY": "who",
        "LAKEHOUSE_RUN_DIR": run.run_dir,
        "LAKEHOUSE_HOME": str(project),
        "LAKEHOUSE_TEST_MARKER": "set after the fork server started",
    }
    log = (Path(run.run_dir) / "who.log").read_text()
    assert log.startswith("=== who attempt 1 ") and "papermill INFO Input Notebook" in log
    assert "fork server unavailable" not in log


def _whoami_request(project: Path, out: Path, seconds: int = 0) -> dict[str, object]:
    """A fork server request for the whoami notebook (what the executor sends)."""
    return {
        "log": str(project / f"{out.stem}.log"),
        "cwd": str(project / "notebooks"),
        "env": dict(os.environ),
        "spec": {
            "input": str(project / "notebooks" / "whoami.ipynb"),
            "output": str(project / f"{out.stem}.ipynb"),
            "parameters": {"out_path": str(out), "seconds": seconds},
            "kernel": None,
            "cwd": str(project / "notebooks"),
            "result": str(project / f".{out.stem}.json"),
        },
    }


@pytest.mark.slow
def test_the_successor_forks_kernels_with_the_quality_and_ml_libraries(
    project: Path, own_fork_server: Callable[..., forkserver.ForkServer], capfd: pytest.CaptureFixture[str]
) -> None:
    server = own_fork_server()
    for attempt in range(40):  # until the successor has imported them and took over
        out = project / f"who{attempt}.json"
        worker = server.spawn(_whoami_request(project, out))
        assert worker.wait(timeout=60) == 0
        who = json.loads(out.read_text())
        if who["worker_grandparent_pid"] == server.process.pid:  # type: ignore[union-attr]
            break
        assert who["worker_parent_pid"] == server.process.pid  # type: ignore[union-attr]
        assert who["preloaded"] == ["pandas"], "the server itself has the notebook basics only"
        time.sleep(0.25)
    else:
        pytest.fail("the successor never took over")
    assert who["preloaded"] == ["pandas", "great_expectations", "mlflow"]
    assert capfd.readouterr().err == "", "the servers' imports print nothing on the runner's terminal"


@pytest.mark.slow
def test_a_successor_that_cannot_import_leaves_the_forking_to_the_server(
    project: Path, own_fork_server: Callable[..., forkserver.ForkServer]
) -> None:
    server = own_fork_server(forkserver.ForkServer(later=("lakehouse.no_such_module",)))
    for attempt in range(3):
        out = project / f"who{attempt}.json"
        assert server.spawn(_whoami_request(project, out)).wait(timeout=60) == 0
        assert json.loads(out.read_text())["worker_parent_pid"] == server.process.pid  # type: ignore[union-attr]
        time.sleep(1)


@pytest.mark.slow
def test_a_changed_library_renews_the_server_and_the_old_one_reports_its_workers(
    project: Path, tmp_path: Path, own_fork_server: Callable[..., forkserver.ForkServer]
) -> None:
    """What a scheduler that runs for days sees when the code is updated: the next
    task gets a server (and kernel) with the new code; a task already running is
    reported by the old server, which then exits."""
    library = tmp_path / "library"
    library.mkdir()
    (library / "module.py").write_text("VERSION = 1\n")
    ahead = library / "dated_ahead.py"  # a clock set wrong somewhere: it must not renew each task
    ahead.write_text("")
    os.utime(ahead, (time.time() + 86_400, time.time() + 86_400))
    server = own_fork_server(forkserver.ForkServer(later=(), watch=(library,)))
    running = server.spawn(_whoami_request(project, project / "running.json", seconds=3))
    old = server.process
    assert old is not None
    who = _wait_for(project / "running.json")
    assert who["worker_parent_pid"] == old.pid

    (library / "module.py").write_text("VERSION = 2\n")
    worker = server.spawn(_whoami_request(project, project / "after.json"))
    assert worker.wait(timeout=60) == 0
    assert server.process is not None and server.process.pid != old.pid
    assert json.loads((project / "after.json").read_text())["worker_parent_pid"] == server.process.pid
    assert running.wait(timeout=60) == 0, "the old server reports its worker's exit code"
    assert old.wait(timeout=10) == 0, "then exits"

    unchanged = server.process
    assert server.spawn(_whoami_request(project, project / "again.json")).wait(timeout=60) == 0
    assert server.process is unchanged


@pytest.mark.slow
def test_killing_the_forked_worker_kills_its_kernel(project: Path) -> None:
    """What a timeout or a cancel does (executor._wait): the tree of the forked pid."""
    out = project / "sleepy.json"
    request = _whoami_request(project, out, seconds=120)
    worker = forkserver.shared().spawn(request)
    who = _wait_for(out)
    assert who["worker_pid"] == worker.pid
    kill_process_tree(worker.pid)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    assert _gone(worker.pid) and _gone(int(who["kernel_pid"]))  # type: ignore[arg-type]
    assert not (project / ".sleepy.json").exists()  # no report from a killed worker


@pytest.mark.slow
def test_without_a_fork_server_the_worker_starts_as_a_new_process(
    write_jobs: WriteJobs, project: Path, own_fork_server: Callable[..., forkserver.ForkServer]
) -> None:
    class Broken(forkserver.ForkServer):
        def command(self) -> list[str]:
            return [sys.executable, "-c", "raise SystemExit(7)"]

    own_fork_server(Broken())
    run, who = _run_whoami(write_jobs, project)
    assert who["worker_parent_pid"] == os.getpid()
    assert who["env"]["LAKEHOUSE_TASK_KEY"] == "who"  # type: ignore[index]
    assert who["preloaded"] == [], "a kernel papermill started itself"
    assert who["connection"]["transport"] == "tcp"  # type: ignore[index]
    assert who["kernel_session"] == who["kernel_pid"] and who["kernel_parent_env"] == str(who["worker_pid"])
    log = (Path(run.run_dir) / "who.log").read_text()
    assert "fork server unavailable (fork server exited (code 7)" in log
    assert "the worker starts as a new process" in log


def test_a_platform_without_seqpacket_sockets_gets_no_fork_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS has no SOCK_SEQPACKET socket pairs: the server is not started and says why,
    so the workers start as new processes (the fallback above)."""

    def no_seqpacket(*args: object) -> None:
        raise OSError(43, "Protocol not supported")

    monkeypatch.setattr(forkserver.socket, "socketpair", no_seqpacket)
    server = forkserver.ForkServer()
    server.start()
    assert server.process is None
    assert server.problem == "cannot start the fork server: [Errno 43] Protocol not supported"
    with pytest.raises(forkserver.ForkServerError):
        server.spawn({})


CHILD_SLEEPS = """
    jobs:
      child:
        parameters: [{{name: out, default: ""}}]
        tasks:
          - task_key: sleepy
            notebook: notebooks/whoami.ipynb
            parameters: {{out_path: "{{{{job.parameters.out}}}}/who.json", seconds: 120}}
          - {{task_key: after, notebook: notebooks/write_params.ipynb, depends_on: [{{task_key: sleepy}}]}}
      parent:
        parameters: [{{name: out, default: ""}}]
        tasks:
          - task_key: stage
            run_job_task: {{job_name: child, job_parameters: {{out: "{{{{job.parameters.out}}}}"}}}}
            timeout_seconds: {timeout}
"""


def _assert_child_stopped(project: Path, run_id: str, who: dict[str, object]) -> None:
    """The child run was recorded CANCELED with its kernel and worker killed."""
    child = load_run(project / "runs" / "child" / f"{run_id}-stage")
    assert child.state == JobState.CANCELED and child.pid == os.getpid()
    assert {key: task.state for key, task in child.tasks.items()} == {
        "sleepy": TaskState.CANCELED,
        "after": TaskState.CANCELED,
    }
    assert child.error == f"job 'child' run {run_id}-stage was canceled"
    assert _forked_by(forkserver.shared(), who)
    assert _gone(int(who["kernel_pid"])) and _gone(int(who["worker_pid"]))  # type: ignore[arg-type]


@pytest.mark.slow
def test_timed_out_child_job_kills_its_notebook_and_is_recorded(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(CHILD_SLEEPS.format(timeout=10))  # time for a kernel to start on a loaded machine
    began = time.monotonic()
    run = run_job(path, "parent", params={"out": str(project)}, quiet=True, run_id="R-late")
    elapsed = time.monotonic() - began
    assert 10 <= elapsed < 25, elapsed
    stage = run.tasks["stage"]
    assert run.state == JobState.FAILED and stage.state == TaskState.TIMED_OUT
    assert "task 'stage' timed out after 10s running job:child" in (stage.error or "")
    assert stage.output_notebook == str(project / "runs" / "child" / "R-late-stage")
    _assert_child_stopped(project, "R-late", _wait_for(project / "who.json", 0))


@pytest.mark.slow
def test_canceling_the_parent_cancels_its_child_job(write_jobs: WriteJobs, project: Path) -> None:
    path = write_jobs(CHILD_SLEEPS.format(timeout=0))
    cancel = threading.Event()
    who: dict[str, object] = {}

    def cancel_once_the_kernel_runs() -> None:
        who.update(_wait_for(project / "who.json"))
        cancel.set()

    watcher = threading.Thread(target=cancel_once_the_kernel_runs, daemon=True)
    watcher.start()
    run = run_job(path, "parent", params={"out": str(project)}, quiet=True, run_id="R-stop", cancel=cancel)
    watcher.join(5)
    assert run.state == JobState.CANCELED and run.tasks["stage"].state == TaskState.CANCELED
    assert load_run(run.run_dir).state == JobState.CANCELED
    _assert_child_stopped(project, "R-stop", who)


@pytest.mark.slow
def test_ctrl_c_on_the_command_cancels_the_child_job_and_its_kernel(
    write_jobs: WriteJobs, project: Path
) -> None:
    path = write_jobs(CHILD_SLEEPS.format(timeout=0))
    command = [sys.executable, "-m", "lakehouse.cli", "jobs", "run", "parent", "--file", str(path)]
    command += ["--run-id", "R-ctrl-c", "-q", "-p", f"out={project}"]
    with subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as cli:
        try:
            who = _wait_for(project / "who.json")
            cli.send_signal(signal.SIGINT)
            output, _ = cli.communicate(timeout=60)
        finally:
            kill_process_tree(cli.pid)
    assert cli.returncode == 130, output.decode()
    assert "canceled: running kernels were killed" in output.decode()
    parent = load_run(project / "runs" / "parent" / "R-ctrl-c")
    assert parent.state == JobState.CANCELED and parent.tasks["stage"].state == TaskState.CANCELED
    child = load_run(project / "runs" / "child" / "R-ctrl-c-stage")
    assert child.state == JobState.CANCELED and child.pid == cli.pid
    assert child.tasks["sleepy"].state == TaskState.CANCELED
    assert _gone(int(who["kernel_pid"])) and _gone(int(who["worker_pid"]))  # type: ignore[arg-type]
    server = int(who["worker_parent_pid"])  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while not _gone(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(server), "the fork server ends with its runner"
