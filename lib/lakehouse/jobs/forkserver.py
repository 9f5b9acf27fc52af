"""A pre-warmed process that forks the papermill worker of each notebook attempt.

Why a fork server: started as ``python -m lakehouse.jobs._worker``, each attempt spent
0.4 to 2 s (more on a loaded machine) starting Python and importing papermill,
nbclient, jupyter_client and IPython before papermill even started the kernel. The fork
server pays for those imports once per runner process, then forks one child per
attempt, which has them already. The child is still a process of its own, in its own
session, with the task's log as stdout and stderr, the task's working directory and
environment, and the same report and exit codes (:mod:`lakehouse.jobs._worker`), so a
timeout or a cancel kills it and its kernel as before
(:func:`lakehouse.jobs.executor.kill_process_tree` on its pid).

Why not the runner forking itself: the runner has threads (one per running task, the
child jobs of ``run_job_task``), and a process forked from a threaded one may inherit
locks held by threads that do not exist in the child. The server is single-threaded:
it only imports modules and forks. Why not :mod:`multiprocessing`'s forkserver: it
re-runs the parent's ``__main__`` in every child (the ``lakehouse`` script, pytest) and
pickles the work; this server hands the child a JSON request and nothing else.

What is preloaded (:data:`PRELOAD`): papermill and its kin for the worker, then what
the notebooks' kernels import (:data:`KERNEL_PRELOAD`: pandas, the Spark Connect
client, the ``lakehouse`` set-up and pipelines, ipykernel), for the kernel each worker
forks from itself (:mod:`lakehouse.jobs.kernel_seed`). It reads at import only what the
runner's environment and a task's share (``USER``, ``JUPYTER_*``): a task's own
variables (``LAKEHOUSE_JOB``, ``LAKEHOUSE_RUN_ID``, ``LAKEHOUSE_TASK_KEY``,
``LAKEHOUSE_RUN_DIR``, ``LAKEHOUSE_HOME``) are set in the child, which the kernel
inherits, and the ``lakehouse`` modules read the environment only when called. No
Python thread may run when the server forks, and no native thread but those known to
be reset across a fork (:data:`FORK_AWARE_THREADS`, OpenBLAS's): the server checks
before serving and stops if not (the runner then starts workers as new processes).

A successor, forked by the server once :data:`PRELOAD` is imported, imports
:data:`LATER_PRELOAD` (Great Expectations, MLflow, scikit-learn: 3 s more) while the
server forks the first tasks' workers, then says it is ready and forks every later
one (the server hands it the requests). When a source file of the ``lakehouse``
package changes, the runner starts a new server for the next attempt (a scheduler runs
for days); the old one forks nothing more and exits once its workers have ended.

Protocol: the runner and the server share a ``SOCK_SEQPACKET`` socket pair. For each
attempt the runner creates a stream socket pair and sends one end to the server (one
byte and the descriptor); the server forks, writes ``<pid>\\n`` on it, and when the
child ends ``<returncode>\\n`` (negative: killed by that signal, as
``subprocess.Popen.returncode``). The child reads its JSON request (log file, working
directory, environment, worker spec) from the same socket, which the runner
half-closes once written. When the runner's end of the shared socket closes (the runner
exited or renewed the server), the server forks nothing more, reports the return codes
of the workers still running, and exits; its successor likewise.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger(__name__)

KERNEL_PRELOAD = (
    "pyarrow",
    "boto3",
    "pandas",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",  # debugpy: half of a kernel's start once the rest is imported
    "sqlite3",  # IPython's history
    "pyspark.sql.connect.session",
    "lakehouse.context",
    "lakehouse.medallion",
)
"""What every notebook of the jobs imports in its first cell (pandas, the Spark Connect
client, the ``lakehouse`` set-up and pipelines) and the kernel itself (what
``IPKernelApp.initialize`` imports: 0.17 s, 0.05 s once imported): imported once by
the server, found imported by each task's kernel (:mod:`lakehouse.jobs.kernel_seed`).
None of them reads a task's environment at import."""

LATER_PRELOAD = (
    "lakehouse.quality.run",  # Great Expectations, through lakehouse.quality.gx
    "lakehouse.quality.report",
    "sklearn",
    "mlflow",
    "lakehouse.ml.models",
    "lakehouse.ml.scoring",
    "skops.io",  # the models' file format (1.3 s: it lists scikit-learn's types)
)
"""What the quality and ML notebooks import (3 s more, Great Expectations half of it):
imported by a successor of the server while the first tasks run (:func:`serve`)."""

PRELOAD = (
    "lakehouse.jobs._worker",
    "lakehouse.jobs.kernel_exit",
    "lakehouse.jobs.kernel_seed",
    "papermill",
    "papermill.exceptions",
    "nbclient.exceptions",
    "jupyter_client.manager",
    "ipykernel.kernelspec",
    "IPython.core.interactiveshell",
    "psutil",
    *KERNEL_PRELOAD,
)
"""Imported by the server before it forks: what a worker imports while papermill runs
(measured: the modules a worker had loaded after running a notebook), then what the
kernel seeded from it imports (:data:`KERNEL_PRELOAD`)."""

START_TIMEOUT_SECONDS = 120.0
"""How long the first attempt waits for the server to import :data:`PRELOAD`; past it,
the server is given up and workers start as new processes."""


class ForkServerError(RuntimeError):
    """The fork server could not start a worker (it failed to start, or died)."""


class ForkedWorker:
    """A worker forked by the server: what :mod:`lakehouse.jobs.executor` needs of a
    ``subprocess.Popen`` (``pid``, ``returncode``, ``wait``, ``poll``)."""

    def __init__(self, connection: socket.socket, pid: int, received: bytearray) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._connection = connection
        self._received = received

    def poll(self) -> int | None:
        """The return code if the worker has ended, else ``None``."""
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the worker to end; raise ``subprocess.TimeoutExpired`` after
        ``timeout`` seconds."""
        if self.returncode is not None:
            return self.returncode
        try:
            line = _read_line(self._connection, self._received, timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(f"forked worker {self.pid}", timeout or 0) from None
        if line is None:  # the server died: wait for the orphan (init reaps it)
            self.returncode = _wait_orphan(self.pid, timeout)
        else:
            self.returncode = int(line)
        self._connection.close()
        return self.returncode


class ForkServer:
    """The server process, started on first use; shared by every run of this process
    (see :func:`shared`)."""

    def __init__(
        self,
        preload: tuple[str, ...] = PRELOAD,
        later: tuple[str, ...] = LATER_PRELOAD,
        watch: tuple[Path, ...] | None = None,
    ) -> None:
        self.preload = preload
        self.later = later
        self.watch = watch if watch is not None else (Path(__file__).resolve().parents[1],)
        """Source folders whose change renews the server (its kernels would run the old
        code): the ``lakehouse`` package."""
        self.process: subprocess.Popen[bytes] | None = None
        self.problem: str | None = None
        """Why the server cannot be used (then it is not used again)."""
        self._control: socket.socket | None = None
        self._sources: frozenset[tuple[str, int]] | None = None
        self._forked = False
        self._lock = threading.Lock()
        self._renew_lock = threading.Lock()

    def command(self) -> list[str]:
        """How the server starts (``-P``: no working directory on ``sys.path``)."""
        return [sys.executable, "-P", "-m", "lakehouse.jobs.forkserver"]

    def start(self) -> None:
        """Start the server (it imports :data:`PRELOAD` in the background); a no-op
        once started. A failure is kept in ``problem``."""
        with self._lock:
            if self.process is not None or self.problem is not None:
                return
            try:  # macOS has no SOCK_SEQPACKET pairs: workers then start as new processes
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            except (OSError, AttributeError) as exc:
                self.problem = f"cannot start the fork server: {exc}"
                return
            try:
                self.process = subprocess.Popen(
                    [*self.command(), str(theirs.fileno()), ",".join(self.preload), ",".join(self.later)],
                    pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL,
                    # debugpy (imported for the kernels) warns at import about frozen
                    # modules, on the runner's terminal; the job kernels are not debugged
                    env=os.environ | {"PYTHONUNBUFFERED": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
                    start_new_session=True,  # Ctrl-C on the terminal is the runner's to handle
                )
            except OSError as exc:
                ours.close()
                self.problem = f"cannot start the fork server: {exc}"
                return
            finally:
                theirs.close()
            self._control = ours
            self._sources = _sources_stamp(self.watch)
            atexit.register(self.close)

    def spawn(self, request: dict[str, Any]) -> ForkedWorker:
        """Fork a worker for ``request`` (``log``, ``cwd``, ``env``, ``spec``); raise
        :class:`ForkServerError` if the server cannot (it is then not used again)."""
        self._renew_if_changed()
        self.start()
        if self.problem is not None:
            raise ForkServerError(self.problem)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                if self.problem is not None or self._control is None:
                    raise ForkServerError(self.problem or "fork server closed")
                socket.send_fds(self._control, [b"F"], [theirs.fileno()])
                self._forked = True
        except OSError as exc:
            ours.close()
            raise self._give_up(f"{type(exc).__name__}: {exc}") from None
        except ForkServerError:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            ours.sendall(json.dumps(request).encode())
            ours.shutdown(socket.SHUT_WR)
            received = bytearray()
            line = _read_line(ours, received, START_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as exc:
            error = self._give_up(f"{type(exc).__name__}: {exc}")
            _kill_late_worker(ours)
            raise error from None
        if line is None:
            ours.close()
            raise self._give_up("no answer")
        return ForkedWorker(ours, int(line), received)

    def _renew_if_changed(self) -> None:
        """Start a new server if a watched source file changed since this one imported
        its modules (a scheduler runs for days; its kernels must run the code of the
        day). The old server forks nothing more and exits once its workers have ended."""
        with self._renew_lock:
            with self._lock:
                control, stamp = self._control, self._sources
            if control is None or _sources_stamp(self.watch) == stamp:
                return
            log.info("the lakehouse library changed: the fork server is started anew")
            with self._lock:
                self._control, self.process, self._forked = None, None, False
            control.close()
            self.start()

    def _give_up(self, problem: str) -> ForkServerError:
        """Stop using the server; the error says whether it exited (its traceback is
        on the runner's stderr) or did not answer."""
        process = self.process
        try:
            code = process.wait(timeout=1) if process else None
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            problem = f"fork server exited (code {code}); its error is on the runner's stderr"
        else:
            problem = f"fork server did not answer ({problem})"
        with self._lock:
            self.problem = self.problem or problem
        if process is not None and process.poll() is None:
            process.kill()  # hung: it must not fork this request once the runner starts it anew
        self.close()
        return ForkServerError(self.problem)

    def close(self) -> None:
        """Close the server's socket (the server then exits once its workers have;
        they carry on) and wait for it briefly. A server that forked nothing is
        stopped at once (a command that failed before its first task need not wait
        for the imports)."""
        with self._lock:
            control, self._control = self._control, None
            process, forked = self.process, self._forked
        if control is not None:
            control.close()
        if process is not None and process.poll() is None:
            if not forked:
                process.kill()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_shared: ForkServer | None = None
_shared_lock = threading.Lock()


def shared() -> ForkServer:
    """This process's fork server (not started until used)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ForkServer()
        return _shared


def _sources_stamp(folders: tuple[Path, ...]) -> frozenset[tuple[str, int]]:
    """Each ``.py`` file under ``folders`` with its modification time: another stamp,
    another code (about 200 files: a millisecond or two). Compared with itself, not
    with the clock, so a file dated in the future does not renew the server at every
    task."""
    stamp = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            try:
                stamp.add((str(path), path.stat().st_mtime_ns))
            except OSError:  # removed while listed: missing from the stamp, a change
                continue
    return frozenset(stamp)


def _read_line(connection: socket.socket, received: bytearray, timeout: float | None) -> str | None:
    """The next line from the server (``received`` keeps what came after it); ``None``
    at end of stream; raise ``TimeoutError`` after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while b"\n" not in received:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([connection], [], [], remaining)
        if not ready:
            raise TimeoutError(f"no answer within {timeout}s")
        chunk = connection.recv(4096)
        if not chunk:
            return None
        received += chunk
    line, _, rest = bytes(received).partition(b"\n")
    received[:] = rest
    return line.decode()


def _kill_late_worker(connection: socket.socket) -> None:
    """Kill the worker a hung server forked after the runner gave up on it, if any."""
    try:
        line = _read_line(connection, bytearray(), 0)
    except (OSError, TimeoutError):
        line = None
    connection.close()
    if line and line.isdigit():
        from lakehouse.jobs.executor import kill_process_tree

        kill_process_tree(int(line))


def _wait_orphan(pid: int, timeout: float | None) -> int:
    """Wait for a worker whose server died (its exit code is lost: 255)."""
    import psutil

    try:
        psutil.Process(pid).wait(timeout)
    except psutil.TimeoutExpired:
        raise subprocess.TimeoutExpired(f"forked worker {pid}", timeout or 0) from None
    except psutil.NoSuchProcess:
        pass
    return 255


# --- the server -------------------------------------------------------------------------


def serve(control_fd: int, preload: list[str], later: list[str]) -> None:
    """Import ``preload``, then fork a worker per request until the runner goes; from
    the moment a successor has imported ``later`` too, it forks them instead."""
    control = socket.socket(fileno=control_fd)
    problem = _import(preload)
    if problem:
        print(f"fork server: {problem} after the imports; not forking", file=sys.stderr)
        return
    _serve(control, _start_successor(control, later) if later else None)


def _import(names: list[str]) -> str | None:
    """Import ``names``; why this process can no longer fork safely, if so."""
    from lakehouse.jobs import kernel_seed

    with kernel_seed.recording_exit_handlers():
        for name in names:
            importlib.import_module(name)
    return _fork_hazard()


def _start_successor(control: socket.socket, later: list[str]) -> socket.socket:
    """Fork the successor that imports ``later`` while this server serves, and say
    ``R`` when it can fork in its stead (nothing if it cannot: this one goes on)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            ours.close()
            control.close()  # the runner's socket is its predecessor's to read
            problem = _import(later)
            if problem:
                print(f"fork server successor: {problem} after the imports; not forking", file=sys.stderr)
            else:
                theirs.send(b"R")
                _serve(theirs, None)  # until the predecessor exits
        except BrokenPipeError:
            pass  # the predecessor exited (its runner is done) before this one was ready
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    theirs.close()
    return ours


def _serve(control: socket.socket, successor: socket.socket | None) -> None:
    """Fork a worker per request on ``control`` (or hand it to ``successor`` once it
    said it is ready) until the other end closes, then wait for the running workers to
    end (their return codes are reported)."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.set_wakeup_fd(wake_write)
    replies: dict[int, socket.socket] = {}
    handing_over = False
    while control is not None or replies:
        watched = [wake_read] + ([control] if control is not None else [])
        if successor is not None and not handing_over:
            watched.append(successor)
        ready, _, _ = select.select(watched, [], [])
        if wake_read in ready:
            while True:
                try:
                    if not os.read(wake_read, 512):
                        break
                except BlockingIOError:
                    break
        _reap(replies)
        if successor is not None and successor in ready:
            handing_over = successor.recv(1) == b"R"
            if not handing_over:  # it could not import, or died: fork here
                successor.close()
                successor = None
        if control is not None and control in ready:
            try:
                _, fds, _, _ = socket.recv_fds(control, 16, 4)
            except OSError:
                fds = []
            if not fds:  # the runner closed its end (or renewed the server): no more requests
                control.close()
                control = None
                if successor is not None:
                    successor.close()  # the successor too ends once its workers have
                    successor = None
                continue
            for fd in fds:
                if handing_over and successor is not None:
                    if _hand_over(successor, fd):
                        continue
                    successor.close()  # it died: fork here from now on
                    successor, handing_over = None, False
                reply = socket.socket(fileno=fd)
                pid = os.fork()
                if pid == 0:
                    _child(
                        reply,
                        [
                            control,
                            wake_read,
                            wake_write,
                            *replies.values(),
                            *([successor] if successor else []),
                        ],
                    )
                replies[pid] = reply
                _send(reply, f"{pid}\n")
            _reap(replies)


def _hand_over(successor: socket.socket, fd: int) -> bool:
    """Pass a request's socket to the successor; ``False`` if it is gone."""
    try:
        socket.send_fds(successor, [b"F"], [fd])
    except OSError:
        return False
    os.close(fd)
    return True


FORK_AWARE_THREADS = frozenset({"jemalloc_bg_thd"})
"""Native threads the preloaded libraries start that are safe across a fork: jemalloc's
background threads (pyarrow's, the engine client's) are reset in the child by the
``pthread_atfork`` handlers jemalloc registers. numpy's OpenBLAS pool (named like the
process) is shut down by its own handler before a fork and started again on use."""


def _fork_hazard() -> str | None:
    """Why forking this process would be unsafe, if it would: a Python thread besides
    this one (its locks would be held forever in the child), or a native thread that
    is neither OpenBLAS's nor in :data:`FORK_AWARE_THREADS`."""
    if threading.active_count() != 1:
        return f"{threading.active_count()} Python threads"
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return None
    names = [(task / "comm").read_text().strip() for task in tasks.iterdir() if task.name != str(os.getpid())]
    unknown = [name for name in names if name not in FORK_AWARE_THREADS and not _is_openblas(name)]
    return f"native threads {sorted(unknown)}" if unknown else None


def _is_openblas(name: str) -> bool:
    """OpenBLAS's threads carry the process's name (its pool of ``cores - 1`` threads)."""
    return "numpy" in sys.modules and name == Path("/proc/self/comm").read_text().strip()


def _reap(replies: dict[int, socket.socket]) -> None:
    """Report each ended child's return code and forget it."""
    while replies:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reply = replies.pop(pid, None)
        if reply is not None:
            _send(reply, f"{os.waitstatus_to_exitcode(status)}\n")
            reply.close()


def _send(reply: socket.socket, text: str) -> None:
    try:
        reply.sendall(text.encode())
    except OSError:  # the runner stopped waiting (it exited): nothing to tell
        pass


def _child(connection: socket.socket, inherited: list[int | socket.socket]) -> NoReturn:
    """In the forked worker: become the task's process, run the worker, exit."""
    from lakehouse.jobs import _worker

    code = _worker.EXIT_ERROR
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for item in inherited:  # the server's descriptors, none of the worker's business
            os.close(item.detach() if isinstance(item, socket.socket) else item)
        os.setsid()
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
        connection.close()
        request = json.loads(b"".join(chunks))
        _enter_task(request)
        if not request["spec"].get("job") and "ipykernel.kernelapp" in sys.modules:
            from lakehouse.jobs import kernel_seed

            kernel_seed.plant()
        code = _worker.run(request["spec"])
    except BaseException:  # reported in the task's log (or the server's stderr before it)
        traceback.print_exc()
    try:
        _worker.exit_now(code)
    finally:
        os._exit(code)


def _enter_task(request: dict[str, Any]) -> None:
    """What ``subprocess.Popen`` gave the worker: the task's log as stdout and stderr,
    no stdin, the task's working directory and environment (which the kernel inherits)."""
    log_fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.close(null_fd)
    os.chdir(Path(request["cwd"]))
    os.environ.clear()
    os.environ.update(request["env"])


if __name__ == "__main__":
    serve(int(sys.argv[1]), *([name for name in arg.split(",") if name] for arg in sys.argv[2:4]))
