"""The MQTT broker of the IoT feed, started by the project in its own process.

``mosquitto`` when it is on PATH (the faster real broker), else the embedded Python
broker ``amqtt`` (``python -m lakehouse.iot.broker``, nothing to install). Both listen
on loopback only. ``BrokerProcess.restart()`` stops and starts it on the same port
(used to check that no reading is lost across a broker restart).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

BrokerKind = Literal["auto", "amqtt", "mosquitto"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (bind to port 0, read it back)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"MQTT broker did not listen on {host}:{port} within {timeout:.0f} s"
                ) from exc
            time.sleep(0.05)


def resolve_kind(kind: BrokerKind) -> Literal["amqtt", "mosquitto"]:
    if kind == "auto":
        return "mosquitto" if shutil.which("mosquitto") else "amqtt"
    if kind == "mosquitto" and not shutil.which("mosquitto"):
        raise FileNotFoundError(
            "broker 'mosquitto' asked for, but no mosquitto on PATH (apt-get install mosquitto)"
        )
    return kind


@dataclass
class BrokerProcess:
    """A broker in a child process; ``port`` 0 picks a free one."""

    kind: BrokerKind = "auto"
    host: str = "127.0.0.1"
    port: int = 0
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _workdir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def start(self) -> BrokerProcess:
        if self.port == 0:
            self.port = free_port(self.host)
        kind = resolve_kind(self.kind)
        self._process = subprocess.Popen(
            self._command(kind), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError as exc:
            self.stop()
            raise TimeoutError(f"{exc} ({kind} broker)") from None
        return self

    def _command(self, kind: str) -> list[str]:
        if kind == "mosquitto":
            if self._workdir is None:
                self._workdir = tempfile.TemporaryDirectory(prefix="mosquitto-")
            conf = Path(self._workdir.name) / "mosquitto.conf"
            conf.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n")
            return ["mosquitto", "-c", str(conf)]
        return [sys.executable, "-m", "lakehouse.iot.broker", "--host", self.host, "--port", str(self.port)]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def amqtt_config(host: str, port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def serve_amqtt(host: str, port: int) -> None:
    """Run an amqtt broker until the process is stopped."""
    from amqtt.broker import Broker

    broker = Broker(amqtt_config(host, port))
    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def main(argv: list[str] | None = None) -> None:
    import argparse
    import logging

    parser = argparse.ArgumentParser(description="embedded MQTT broker (amqtt) of the IoT feed")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(serve_amqtt(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()


def connect_client(client, host: str, port: int, *, who: str) -> None:
    """Connect a paho client and start its network loop; an unreachable broker is a
    ``ConnectionError`` that says how to start one."""
    try:
        client.connect(host, port, keepalive=10)
    except OSError as exc:
        raise ConnectionError(
            f"{who} cannot reach the MQTT broker at {host}:{port} ({exc}); "
            "start one with `lakehouse iot broker` or set ingestion.iot.host/port"
        ) from exc
    client.loop_start()
