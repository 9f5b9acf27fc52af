"""Inputs of one generation run, their validation, table sizes and random streams.

Everything the generator writes is a function of :class:`GenerationParams` only
(seed, scale, days, run_date): no wall clock, no global random state. Each entity
draws from its own stream (:meth:`GenerationParams.rng`), keyed by names rather than
by call order, so adding an entity or a day never shifts the numbers of another.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lakehouse.config import Settings

# Limits keep identifiers inside their fixed widths ('P0001', 'M001', 'C00001', five
# digits of order number a day), the unknown-product defect ids ('P9xxx') clear of real
# product ids, and products within the label catalogue (2,880 labels). Above scale 10
# the catalogue stays at 2,000 products and the fleet stops at 999 machines (bronze
# checks 'M' and three digits): orders, customers and readings keep growing, so
# scale 50 has 999 machines, about 43 M readings in 30 days.
MAX_SCALE = 50.0
MAX_PRODUCTS = 2000
MAX_MACHINES = 999
MAX_DAYS = 731
MINUTES_PER_DAY = 1440


class GenerationError(ValueError):
    """The generator was asked for something it cannot produce."""


@dataclass(frozen=True)
class Sizes:
    """Row counts of the referential and the mean daily order count for one scale."""

    products: int
    sites: int
    machines: int
    customers: int
    orders_per_day: float


def scaled(count_at_scale_1: int, scale: float, minimum: int) -> int:
    """``count_at_scale_1 * scale`` rounded, never below ``minimum``."""
    return max(minimum, round(count_at_scale_1 * scale))


def sizes_for(scale: float) -> Sizes:
    """Sizes at ``scale``: 200 products, 5 sites, 20 machines, 500 customers and
    ~400 orders a day at scale 1. Sites stay at 5 from scale 0.2 up (3 plants, 2
    distribution centres) and drop to 2 (1 plant, 1 distribution centre) below;
    products stop at :data:`MAX_PRODUCTS` and machines at :data:`MAX_MACHINES`."""
    return Sizes(
        products=min(MAX_PRODUCTS, scaled(200, scale, 2)),
        sites=5 if scale >= 0.2 else 2,
        machines=min(MAX_MACHINES, scaled(20, scale, 2)),
        customers=scaled(500, scale, 2),
        orders_per_day=max(2.0, 400.0 * scale),
    )


def _stream_key(part: str | int | dt.date) -> int:
    """Stable non-negative integer for one part of a stream name (not Python's
    salted ``hash``, which changes between processes)."""
    if isinstance(part, dt.date):
        return part.toordinal()
    if isinstance(part, int):
        return part
    return zlib.crc32(part.encode("utf-8"))


@dataclass(frozen=True)
class GenerationParams:
    """Validated inputs; generated days are ``start_date`` .. ``run_date`` inclusive."""

    seed: int
    scale: float
    days: int
    run_date: dt.date

    def __post_init__(self) -> None:
        validate(self.seed, self.scale, self.days, self.run_date)

    @classmethod
    def from_settings(cls, settings: Settings) -> GenerationParams:
        gen = settings.generator
        return cls(seed=gen.seed, scale=gen.scale, days=gen.days, run_date=settings.run_date)

    @property
    def start_date(self) -> dt.date:
        return self.run_date - dt.timedelta(days=self.days - 1)

    @property
    def dates(self) -> list[dt.date]:
        return [self.start_date + dt.timedelta(days=i) for i in range(self.days)]

    @property
    def schema_change_date(self) -> dt.date:
        """First day whose order-line export carries the new ``sales_channel`` column:
        the day at two thirds of the period (index ``days * 2 // 3``)."""
        return self.start_date + dt.timedelta(days=self.days * 2 // 3)

    @property
    def minutes(self) -> int:
        """Length of the minute-level IoT timeline over the whole period."""
        return self.days * MINUTES_PER_DAY

    @property
    def sizes(self) -> Sizes:
        return sizes_for(self.scale)

    def rng(self, *stream: str | int | dt.date) -> np.random.Generator:
        """Independent generator for one named stream, e.g. ``rng("orders", day)``."""
        seq = np.random.SeedSequence(self.seed, spawn_key=tuple(_stream_key(p) for p in stream))
        return np.random.default_rng(seq)

    def as_dict(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "scale": self.scale,
            "days": self.days,
            "run_date": self.run_date.isoformat(),
            "start_date": self.start_date.isoformat(),
        }


def validate(seed: object, scale: object, days: object, run_date: object) -> None:
    """Raise :class:`GenerationError` naming the parameter, what was expected and found."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GenerationError(f"seed must be an integer >= 0, found {seed!r}")
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float, np.floating))
        or not np.isfinite(scale)
        or not 0 < scale <= MAX_SCALE
    ):
        raise GenerationError(f"scale must be a number > 0 and <= {MAX_SCALE:g}, found {scale!r}")
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or not 1 <= days <= MAX_DAYS:
        raise GenerationError(f"days must be an integer between 1 and {MAX_DAYS}, found {days!r}")
    if not isinstance(run_date, dt.date) or isinstance(run_date, dt.datetime):
        raise GenerationError(f"run_date must be a date (YYYY-MM-DD), found {run_date!r}")
