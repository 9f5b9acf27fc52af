"""Gaps and islands: consecutive days or hours grouped into one episode (a stock-out,
an anomaly), for the KPIs of both domains."""

from __future__ import annotations

from pyspark.sql import Column, Window
from pyspark.sql import functions as F


def episode_id(order_index: Column, partition: list[str]) -> Column:
    """Gaps and islands: ``order_index - row_number`` is constant along a run of
    consecutive indexes (days or hours) within ``partition``."""
    rank = F.row_number().over(Window.partitionBy(*partition).orderBy(order_index))
    return order_index - rank
