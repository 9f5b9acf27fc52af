"""A sensor simulator: machines publish minute readings to the MQTT broker.

Payload: one JSON object, the same shape as a line of the generator's
``landing/source=iot/readings`` files::

    {"machine_id": "M001", "ts": "2026-11-26T08:00:00Z", "kwh": 0.7, "kw": 42.0,
     "temperature_c": 21.5, "vibration_mm_s": 1.2}

on topic ``plants/<site_id>/machines/<machine_id>/readings``, QoS 1.

Delivery is at least once, end to end: QoS 1 covers each hop while the broker is up;
a broker restart loses what it held (the embedded broker keeps nothing on disk), so
after every reconnect the simulator publishes again its last ``replay_size`` readings
once ``replay_delay`` has passed (time for subscribers to subscribe again). The bridge
drops the duplicates this creates (same ``machine_id`` + ``ts``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from lakehouse.iot.broker import connect_client

TOPIC_TEMPLATE = "plants/{site_id}/machines/{machine_id}/readings"


@dataclass(frozen=True)
class Machine:
    machine_id: str
    site_id: str
    rated_kw: float = 40.0


def default_machines(count: int) -> list[Machine]:
    """``M001``..: spread over three plants, as the generator numbers them."""
    return [Machine(f"M{i:03d}", f"S{(i - 1) % 3 + 1:02d}", 20.0 + 5 * (i % 7)) for i in range(1, count + 1)]


def iso_utc(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def simulated_readings(
    machines: Sequence[Machine], start: dt.datetime, minutes: int, *, seed: int = 42
) -> Iterator[tuple[Machine, dict]]:
    """Minute readings of every machine from ``start`` (UTC), in time order."""
    rng = random.Random(seed)
    for minute in range(minutes):
        ts = start + dt.timedelta(minutes=minute)
        for machine in machines:
            kw = round(machine.rated_kw * rng.uniform(0.3, 0.9), 3)
            yield (
                machine,
                {
                    "machine_id": machine.machine_id,
                    "ts": iso_utc(ts),
                    "kwh": round(kw / 60, 5),
                    "kw": kw,
                    "temperature_c": round(rng.uniform(18, 30), 2),
                    "vibration_mm_s": round(rng.uniform(0.5, 3.0), 3),
                },
            )


def topic_for(machine: Machine) -> str:
    return TOPIC_TEMPLATE.format(site_id=machine.site_id, machine_id=machine.machine_id)


class Publisher:
    """Publishes readings with QoS 1 and replays the latest after a reconnect."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "lakehouse-iot-simulator",
        qos: int = 1,
        replay_size: int = 10_000,
        replay_delay: float = 1.0,
    ) -> None:
        self.host, self.port, self.qos = host, port, qos
        self.replay_delay = replay_delay
        self._recent: deque[tuple[str, bytes]] = deque(maxlen=replay_size)
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.connects = 0
        self.published = 0
        self.replayed = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)  # unbounded: nothing is refused while disconnected
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self._connected.clear()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001 (paho's)
        if reason_code.is_failure:
            return
        self.connects += 1
        self._connected.set()
        if self.connects > 1:  # a reconnect: the broker may have lost what it held
            threading.Timer(self.replay_delay, self._replay).start()

    def _replay(self) -> None:
        with self._lock:
            recent = list(self._recent)
        for topic, payload in recent:
            self.client.publish(topic, payload, qos=self.qos)
        self.replayed += len(recent)

    def connect(self, timeout: float = 10.0) -> Publisher:
        connect_client(self.client, self.host, self.port, who="simulator")
        if not self._connected.wait(timeout):
            raise TimeoutError(f"simulator could not connect to MQTT broker {self.host}:{self.port}")
        return self

    def publish(self, machine: Machine, reading: dict) -> None:
        topic, payload = topic_for(machine), json.dumps(reading, separators=(",", ":")).encode()
        with self._lock:
            self._recent.append((topic, payload))
        self.client.publish(topic, payload, qos=self.qos)
        self.published += 1

    def wait_connected(self, timeout: float = 15.0) -> bool:
        return self._connected.wait(timeout)

    def close(self) -> None:
        time.sleep(0.05)  # let the network thread send what is queued
        self.client.disconnect()
        self.client.loop_stop()
