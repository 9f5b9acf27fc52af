"""Daily stock snapshots per site and product, exported as French CSV.

Grain: one row per (snapshot_date, site_id, product_id), the key. Quantities wander
around a multiple of the safety stock (AR(1) in log space), with stock-out episodes
of 1-4 days (~3 % of rows at zero) and ~0.5 % negative quantities (an export defect).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np

from lakehouse.generate.defects import STOCK_DEFECT_RATES, DefectRecord, defect_count
from lakehouse.generate.formats import CsvFile, csv_lines
from lakehouse.generate.params import GenerationParams
from lakehouse.generate.referential import Referential

STOCK_COLUMNS = ("snapshot_date", "site_id", "product_id", "quantity_on_hand", "safety_stock")
STOCKOUT_SHARE = 0.03


def stock_path(day: dt.date) -> str:
    return f"landing/source=erp/stock_snapshots/{day.isoformat()}/stock_{day:%Y%m%d}.csv"


def simulate_stock(params: GenerationParams, ref: Referential) -> tuple[np.ndarray, np.ndarray]:
    """Quantity on hand, array (days, sites, products), and safety stock (sites, products)."""
    rng = params.rng("stock")
    n_sites, n_products, n_days = len(ref.sites), len(ref.products), params.days
    popularity = ref.product_popularity + 0.2 / n_products  # inactive products keep a little
    site_factor = np.where(ref.sites["site_type"] == "distribution_center", 3.0, 1.0)
    # Safety stock follows popularity: ~60 packs for an average product at a plant,
    # three times that at distribution centres (they hold the buffer).
    spread = rng.lognormal(0, 0.3, (n_sites, n_products))
    demand = site_factor[:, None] * popularity[None, :] * n_products
    safety = np.maximum(5, np.round(demand * 60 * spread)).astype(np.int64)
    level = np.empty((n_days, n_sites, n_products))
    state = rng.normal(0, 0.3, (n_sites, n_products))
    for day in range(n_days):  # AR(1): today's level remembers yesterday's
        state = 0.7 * state + rng.normal(0, 0.25, (n_sites, n_products))
        level[day] = safety * np.exp(np.log(2.2) + state)
    qty = np.round(level).astype(np.int64)

    # Stock-outs: episodes of 1-4 days at zero, ~3 % of all rows in total.
    cells = n_days * n_sites * n_products
    episodes = max(1, round(STOCKOUT_SHARE * cells / 2.5))
    starts = rng.integers(0, n_days, episodes)
    lengths = rng.integers(1, 5, episodes)
    site_idx = rng.integers(0, n_sites, episodes)
    product_idx = rng.integers(0, n_products, episodes)
    for s, length, si, pi in zip(starts, lengths, site_idx, product_idx):
        qty[s : s + length, si, pi] = 0
    return qty, safety


def stock_files(params: GenerationParams, ref: Referential) -> Iterator[tuple[CsvFile, list[DefectRecord]]]:
    """One file per day, one at a time; ~0.5 % of rows (positive ones) made negative."""
    qty, safety = simulate_stock(params, ref)
    n_days, n_sites, n_products = qty.shape
    flat = qty.reshape(-1).copy()
    rng = params.rng("stock", "defects")
    positive = np.flatnonzero(flat > 0)
    hit = rng.choice(
        positive,
        size=min(len(positive), defect_count(STOCK_DEFECT_RATES["negative_quantity"], flat.size)),
        replace=False,
    )
    flat[hit] = -flat[hit]
    negative = np.zeros(flat.size, dtype=bool)
    negative[hit] = True
    qty = flat.reshape(qty.shape)
    negative = negative.reshape(qty.shape)

    site_col = np.repeat(ref.sites["site_id"].to_numpy(dtype=object), n_products)
    product_col = np.tile(ref.products["product_id"].to_numpy(dtype=object), n_sites)
    safety_col = safety.reshape(-1).astype(str)
    for d, day in enumerate(params.dates):
        path = stock_path(day)
        date_col = np.full(len(site_col), day.strftime("%d/%m/%Y"), dtype=object)
        quantity_col = qty[d].reshape(-1).astype(str)
        lines = csv_lines([date_col, site_col, product_col, quantity_col, safety_col])
        defects = [
            DefectRecord(path, int(i) + 2, "negative_quantity")
            for i in np.flatnonzero(negative[d].reshape(-1))
        ]
        yield CsvFile(path, day, STOCK_COLUMNS, lines), defects
