"""The MQTT -> landing bridge: readings become JSON-lines files bronze ingests.

Subscribes (QoS 1, persistent session ``clean_session=False``) to the readings topic
and buffers the payloads; a micro-batch is closed when it holds ``max_messages``
readings or is ``max_seconds`` old, and written to
``landing/source=iot/readings/<YYYY-MM-DD>/readings_mqtt_<utc time>_<seq>.jsonl``
atomically (a hidden ``.``-prefixed temp file in the same folder, then a rename: the
incremental ingestion ignores hidden files). Messages are acknowledged to the broker
only once their file is written, so a bridge that dies with a batch in memory gets
those messages again from the broker.

Duplicates: a reading whose ``machine_id`` + ``ts`` the bridge has already landed (a
QoS 1 re-delivery, a simulator replay after a broker restart, a sensor re-sending) is
dropped; the bridge remembers the last ``dedupe_window`` keys. Beyond that window
(e.g. across bridge restarts) a duplicate can reach bronze, which is append only;
silver keeps one reading per machine and minute (the latest ingested copy).

Late readings: the date folder is the reading's own UTC date (``ts``), not the arrival
date, so a reading that arrives hours or days late lands in a new file of its own
day and bronze files it under that day's partition; nothing is refused for being late.
A payload that is not a JSON object is landed as it is (bronze keeps it in
``_corrupt_record``) under the arrival date.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from lakehouse.iot.broker import connect_client

log = logging.getLogger(__name__)


@dataclass
class BridgeStats:
    received: int = 0
    duplicates: int = 0
    landed: int = 0
    files: list[str] = field(default_factory=list)


class LandingBridge:
    """Subscribes to the readings topic and lands micro-batches as files."""

    def __init__(
        self,
        landing_folder: str | os.PathLike[str],
        *,
        host: str,
        port: int,
        topic: str = "plants/+/machines/+/readings",
        qos: int = 1,
        max_messages: int = 1000,
        max_seconds: float = 5.0,
        client_id: str = "lakehouse-iot-bridge",
        dedupe_window: int = 500_000,
    ) -> None:
        if max_messages < 1 or max_seconds <= 0:
            raise ValueError("max_messages must be >= 1 and max_seconds > 0")
        self.landing_folder = Path(landing_folder)
        self.host, self.port, self.topic, self.qos = host, port, topic, qos
        self.max_messages, self.max_seconds = max_messages, max_seconds
        self.dedupe_window = dedupe_window
        self.stats = BridgeStats()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._pending: set[tuple[str, str]] = set()
        self._buffer: list[tuple[str, str, int]] = []  # (date folder, line, mid)
        self._opened_at: float | None = None
        self._sequence = 0
        self._lock = threading.RLock()
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=True
        )
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self._subscribed.clear()
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message

    # -- MQTT callbacks (paho's network thread) ------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001 (paho's)
        if not reason_code.is_failure:
            client.subscribe(self.topic, qos=self.qos)  # again after every reconnect

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:  # noqa: ANN001 (paho's)
        line = message.payload.decode("utf-8", errors="replace").strip()
        key, day = _key_and_day(line)
        with self._lock:
            self.stats.received += 1
            if key is not None and (key in self._seen or key in self._pending):
                self.stats.duplicates += 1
                self._ack(message.mid)
                return
            if key is not None:
                self._pending.add(key)
            if not self._buffer:
                self._opened_at = time.monotonic()
            self._buffer.append((day, line, message.mid))
            if len(self._buffer) >= self.max_messages:
                self.flush()

    def _ack(self, mid: int) -> None:
        if self.qos > 0:
            self.client.ack(mid, self.qos)

    # -- batches -------------------------------------------------------------------
    def flush(self) -> list[Path]:
        """Write the buffered readings (one file per date), then acknowledge them."""
        with self._lock:
            batch, self._buffer, self._opened_at = self._buffer, [], None
            if not batch:
                return []
            by_day: dict[str, list[str]] = {}
            for day, line, _ in batch:
                by_day.setdefault(day, []).append(line)
            written = [self._write(day, lines) for day, lines in sorted(by_day.items())]
            for _, line, mid in batch:
                key, _day = _key_and_day(line)
                if key is not None:
                    self._pending.discard(key)
                    self._seen[key] = None
                self._ack(mid)
            while len(self._seen) > self.dedupe_window:
                self._seen.popitem(last=False)
            self.stats.landed += len(batch)
            self.stats.files.extend(str(p) for p in written)
            return written

    def _write(self, day: str, lines: list[str]) -> Path:
        self._sequence += 1
        now = dt.datetime.now(dt.UTC)
        folder = self.landing_folder / day
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"readings_mqtt_{now:%Y%m%dT%H%M%S%f}_{self._sequence:06d}.jsonl"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                out.write("\n".join(lines) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def _tick(self) -> None:
        """Close a batch once it is ``max_seconds`` old (a quiet feed still lands)."""
        while not self._stop.wait(min(0.05, self.max_seconds / 4)):
            with self._lock:
                if self._opened_at is not None and time.monotonic() - self._opened_at >= self.max_seconds:
                    try:
                        self.flush()
                    except OSError as exc:  # keep the messages unacknowledged, retry next tick
                        log.error("could not land an IoT batch in %s: %s", self.landing_folder, exc)

    # -- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> LandingBridge:
        connect_client(self.client, self.host, self.port, who="bridge")
        self._timer = threading.Thread(target=self._tick, name="iot-bridge-timer", daemon=True)
        self._timer.start()
        if not self.wait_subscribed(timeout):
            self.stop()
            raise TimeoutError(f"bridge could not subscribe to {self.topic!r} on {self.host}:{self.port}")
        return self

    def wait_subscribed(self, timeout: float = 15.0) -> bool:
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        """Land what is buffered, then disconnect."""
        self._stop.set()
        if self._timer is not None:
            self._timer.join(5)
        self.flush()
        time.sleep(0.05)  # let the network thread send the last acknowledgements
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> LandingBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _key_and_day(line: str) -> tuple[tuple[str, str] | None, str]:
    """``(machine_id, ts)`` and the reading's UTC date; no key (and today) if unreadable."""
    try:
        reading = json.loads(line)
        machine_id, ts = reading["machine_id"], reading["ts"]
        if isinstance(machine_id, str) and isinstance(ts, str) and len(ts) >= 10:
            dt.date.fromisoformat(ts[:10])
            return (machine_id, ts), ts[:10]
    except (ValueError, KeyError, TypeError):
        pass
    return None, dt.datetime.now(dt.UTC).date().isoformat()
