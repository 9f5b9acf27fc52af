"""Real servers for the browser tests, as subprocesses bound to 127.0.0.1 on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def subprocess_server(
    command: Sequence[str],
    ready_url: str,
    *,
    log: Path,
    env: dict[str, str] | None = None,
    timeout: float = 90,
) -> Iterator[subprocess.Popen]:
    """Start ``command`` in its own process group, wait until ``ready_url`` answers 200,
    and stop the whole group (the server and its workers) on exit. The output goes to
    ``log``, shown when the server does not start."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(ready_url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{command[0]} did not answer {ready_url}:\n{log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.25)
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
