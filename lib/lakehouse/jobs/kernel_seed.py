"""A notebook task's kernel forked from its worker, with the notebook libraries imported.

Why: started by papermill as ``python -m ipykernel_launcher``, a kernel spent 0.5 to 0.6 s
starting Python and ipykernel, and its first cell 0.5 to 1 s importing pandas, pyspark
and the ``lakehouse`` modules, Great Expectations 3 s more (measured per task of the
``daily`` job at scale 1; on the critical path, about 1.5 s for each of its six stages).
The fork server (:mod:`lakehouse.jobs.forkserver`) imports those libraries once per
runner (:data:`lakehouse.jobs.forkserver.KERNEL_PRELOAD`), so a worker it forks has
them; the worker forks this *seed* at once, before papermill starts an event loop or a
ZeroMQ context, and the seed waits. When papermill starts the kernel,
:class:`SeededKernelManager` hands the seed the kernel's command line, environment and
working directory instead of starting a new process, and the seed becomes the kernel:
the first cell finds its imports done.

The kernel stays what :func:`jupyter_client.launcher.launch_kernel` makes: a child of
the worker, in a session of its own (papermill interrupts its process group), with the
worker's log as stdout and stderr, ``JPY_PARENT_PID`` set to the worker. A timeout or a
cancel still kills the worker's process tree, the kernel with it. A kernel that is not
this interpreter's IPython kernel (another language, another Python) is started as
before, and the seed, told nothing, exits (as it does when the worker dies).

Fork safety: the seed is forked from a process with no Python thread; the native
threads the libraries start at import (numpy's OpenBLAS pool, the jemalloc background
threads of pyarrow and the engine) register ``pthread_atfork`` handlers that stop or
reset them around a fork (checked by :func:`lakehouse.jobs.forkserver.serve`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty
from typing import Any, NoReturn

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from traitlets import CaselessStrEnum, DottedObjectName, Type

from lakehouse.jobs.kernel_exit import EXIT_AT_ONCE, KERNEL_ARGUMENT

_LAUNCHER = ["-m", "ipykernel_launcher"]

_inherited_exit_handlers: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
"""The exit handlers the preloaded modules registered at import (see
:func:`recording_exit_handlers`)."""

SEEDED_KERNEL_LINE = f"{EXIT_AT_ONCE}; from lakehouse.jobs.kernel_seed import register_inherited_exit_handlers as r; r(); del r"
"""The start-up line of a seeded kernel: :data:`lakehouse.jobs.kernel_exit.EXIT_AT_ONCE`,
then the exit handlers of the modules imported before the fork registered again, so
that they run before the process ends, as they would have had the notebook imported
those modules (MLflow ends an open run, temporary folders are removed)."""

SEEDED_KERNEL_ARGUMENT = f"--IPKernelApp.exec_lines={json.dumps([SEEDED_KERNEL_LINE])}"
"""What replaces :data:`lakehouse.jobs.kernel_exit.KERNEL_ARGUMENT` for a seeded kernel."""


@contextlib.contextmanager
def recording_exit_handlers() -> Iterator[None]:
    """Keep the exit handlers registered while imports run in the fork server."""

    def register(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        _inherited_exit_handlers.append((function, args, kwargs))
        return original(function, *args, **kwargs)

    original = atexit.register
    atexit.register = register  # type: ignore[assignment]
    try:
        yield
    finally:
        atexit.register = original  # type: ignore[assignment]


def register_inherited_exit_handlers() -> None:
    """Register the recorded handlers again, in their order (see :data:`SEEDED_KERNEL_LINE`)."""
    for function, args, kwargs in _inherited_exit_handlers:
        atexit.register(function, *args, **kwargs)


class Seed:
    """The seed process, seen from the worker: its pid and the pipe it waits on."""

    def __init__(self, pid: int, pipe: int) -> None:
        self.pid = pid
        self.pipe: int | None = pipe

    def release(self, request: dict[str, Any]) -> None:
        """Tell the seed to become the kernel ``request`` describes."""
        assert self.pipe is not None, "a seed becomes one kernel only"
        with os.fdopen(self.pipe, "wb") as pipe:
            self.pipe = None
            pipe.write(json.dumps(request).encode())

    def discard(self) -> None:
        """Let the seed exit unused (it reads the end of its pipe) and reap it."""
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass


_seed: Seed | None = None


def plant() -> Seed | None:
    """Fork the seed of this worker's kernel (see the module docstring); ``None`` where
    this process cannot fork."""
    global _seed
    if not hasattr(os, "fork"):
        return None
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no process left to fork (a limit): papermill starts the kernel
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        os.close(write_end)
        _grow(read_end)
    os.close(read_end)
    _seed = Seed(pid, write_end)
    return _seed


def take() -> Seed | None:
    """The seed, if this process planted one that is still unused (then it is yours)."""
    global _seed
    seed, _seed = _seed, None
    return seed


def planted() -> bool:
    """Whether this process has an unused seed (papermill should then use it)."""
    return _seed is not None


def discard() -> None:
    """Let an unused seed go (the worker is done)."""
    seed = take()
    if seed is not None:
        seed.discard()


class SeededProcess:
    """What :class:`~jupyter_client.provisioning.LocalProvisioner` needs of the kernel's
    ``subprocess.Popen``, for the seed (a child of this process)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = 0  # reaped elsewhere: its code is lost
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                self.returncode = 0
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class SeededProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Launches this interpreter's IPython kernel in the seed; anything else as before."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        seed = take() if cmd[1:3] == _LAUNCHER and _same_python(cmd[0]) else None
        if seed is None:
            discard()
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        env["JPY_PARENT_PID"] = str(os.getpid())  # as launch_kernel: the kernel ends with us
        cwd = str(kwargs.get("cwd") or Path.cwd())
        seed.release({"argv": [os.path.expanduser(arg) for arg in cmd[3:]], "env": env, "cwd": cwd})
        self.process = SeededProcess(seed.pid)
        self.pid = self.pgid = seed.pid  # the seed made a session of its own
        self.cwd = cwd
        return self.connection_info


class ReadyClient(AsyncKernelClient):  # type: ignore[misc]
    """The kernel client papermill waits on: ready as soon as it is.

    jupyter_client's ``wait_for_ready`` ends by listening to IOPub until 0.2 s pass
    without a message: 0.35 s of a seeded kernel's 0.4 s start. This one is ready when
    the kernel has answered ``kernel_info`` and IOPub has carried the "idle" status of
    that request (so IOPub is connected, which is what the wait is for); the messages
    it leaves on IOPub answer no request of papermill's, which reads only the replies
    to its own."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                if await self._idle_reported(reply["parent_header"].get("msg_id")):
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    async def _idle_reported(self, request_id: str | None, within: float = 1.0) -> bool:
        """Whether IOPub carries the kernel's "idle" after ``request_id`` in time."""
        end = time.monotonic() + within
        while (left := end - time.monotonic()) > 0:
            try:
                message = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (
                message["msg_type"] == "status"
                and message["content"].get("execution_state") == "idle"
                and message["parent_header"].get("msg_id") == request_id
            ):
                return True
        return False


class SeededKernelManager(AsyncKernelManager):  # type: ignore[misc]
    """papermill's kernel manager (``kernel_manager_class``) in a worker with a seed.

    Its kernel listens on Unix sockets in a folder of its own, not on TCP ports: a port
    is chosen free by the worker and bound later by the kernel, and two kernels starting
    at once can be handed the same one ("Address already in use": once in three runs
    of the daily job once kernels started in 0.2 s). The folder goes with the kernel;
    a killed worker leaves it, as it leaves its connection file."""

    client_class = DottedObjectName("lakehouse.jobs.kernel_seed.ReadyClient")
    client_factory = Type(ReadyClient, klass=AsyncKernelClient)
    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
    _socket_folder: str | None = None

    def cleanup_ipc_files(self) -> None:
        super().cleanup_ipc_files()
        if self._socket_folder is not None:
            shutil.rmtree(self._socket_folder, ignore_errors=True)
            self._socket_folder = None

    async def _async_finish_shutdown(
        self, waittime: float | None = None, pollinterval: float = 0.1, restart: bool = False
    ) -> None:
        """Watch the kernel end every 10 ms, not 100 (it ends in 20 to 50 ms)."""
        await super()._async_finish_shutdown(waittime, min(pollinterval, 0.01), restart)

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.transport == "ipc" and self._socket_folder is None:
            self._socket_folder = tempfile.mkdtemp(prefix="lakehouse-kernel-")
            self.ip = os.path.join(self._socket_folder, "kernel")  # sockets kernel-1 .. kernel-5
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or _new_id()
            self.provisioner = SeededProvisioner(
                kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
            )
        return await super()._async_pre_start_kernel(**kw)


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())


def _same_python(executable: str) -> bool:
    """Whether the kernel spec's interpreter is this one (the seed can only be this)."""
    if executable in {"python", "python3", sys.executable}:
        return True
    try:
        return Path(executable).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


# --- in the seed ------------------------------------------------------------------------


def _grow(pipe: int) -> NoReturn:
    """In the seed: wait for the kernel's request and become that kernel, or exit when
    the worker closes the pipe without one."""
    code = 0
    try:
        os.setsid()  # launch_kernel's start_new_session: interrupts reach the kernel's group
        chunks = []
        while chunk := os.read(pipe, 65536):
            chunks.append(chunk)
        os.close(pipe)
        if not chunks:
            os._exit(0)
        _become_kernel(json.loads(b"".join(chunks)))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    _exit(code)


def _exit(code: int) -> NoReturn:
    """End the process once the kernel has stopped: its exit handlers run (the last of
    them, registered by :data:`SEEDED_KERNEL_LINE`, ends it at once)."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _become_kernel(request: dict[str, Any]) -> None:
    """What ``python -m ipykernel_launcher ARGV`` would do, in this process (forked
    before the worker set up its logging or marked modules as not installed)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:] = [entry for entry in sys.path if entry not in {"", os.getcwd()}]
    argv = [SEEDED_KERNEL_ARGUMENT if arg == KERNEL_ARGUMENT else arg for arg in request["argv"]]
    sys.argv = [_LAUNCHER[1], *argv]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
