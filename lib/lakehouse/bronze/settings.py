"""``ingestion:`` of lakehouse.yaml: how the sources reach bronze.

Every default works on a laptop with no cloud account and no internet.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ReferentialLoadSettings(BaseModel):
    """Incremental loads of the PostgreSQL referential (``updated_at`` watermark)."""

    rows_per_partition: int = Field(100_000, ge=1)  # more changed rows than this: parallel range reads
    max_partitions: int = Field(8, ge=1)  # upper bound of parallel JDBC reads per table


class RegulatorySettings(BaseModel):
    """The recall API (openFDA drug-enforcement shape).

    ``base_url`` None (the default, offline): nothing is fetched and bronze ingests the
    recall documents already in ``landing/source=regulatory/recalls`` (the generator's).
    Set it (e.g. ``https://api.fda.gov``) to fetch new notices by report date first.
    """

    base_url: str | None = None
    lookback_days: int = Field(30, ge=1)  # first fetch: this many days before the run date
    page_size: int = Field(100, ge=1, le=1000)
    timeout_seconds: float = Field(10.0, gt=0)
    max_retries: int = Field(5, ge=0)


class IotSettings(BaseModel):
    """The MQTT feed of the machines' meters (``lakehouse iot ...``)."""

    broker: Literal["auto", "amqtt", "mosquitto", "external"] = "auto"  # auto: mosquitto if on PATH
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=0)  # 0: any free port (embedded broker)
    topic: str = "plants/+/machines/+/readings"
    qos: int = Field(1, ge=0, le=2)
    batch_max_messages: int = Field(1000, ge=1)  # a landing file holds at most this many readings
    batch_max_seconds: float = Field(5.0, gt=0)  # ...and is closed after this long
    trigger_seconds: float = Field(10.0, gt=0)  # bronze ingestion interval of `lakehouse iot stream`


class IngestionSettings(BaseModel):
    referential: ReferentialLoadSettings = ReferentialLoadSettings()
    regulatory: RegulatorySettings = RegulatorySettings()
    iot: IotSettings = IotSettings()
