"""Sales orders as the ERP knows them (clean, before any export defect), and the
deliveries that fulfil them.

- order lines: one row per order line, key ``(order_id, line_number)``;
- deliveries: one row per order, key ``delivery_id``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from lakehouse.generate.params import GenerationParams
from lakehouse.generate.referential import Referential, price_matrix
from lakehouse.generate.vocabulary import CARRIERS

# Orders per weekday (Monday first) relative to the mean: busy weekdays, quiet
# Saturdays, few orders on Sundays (on-call pharmacies and hospitals only).
WEEKDAY_FACTOR = (1.15, 1.15, 1.12, 1.12, 1.10, 0.55, 0.2)
LINES_PER_ORDER = np.arange(1, 7)
LINES_PER_ORDER_P = np.array([0.25, 0.22, 0.18, 0.15, 0.11, 0.09])
ORDER_LINE_COLUMNS = (
    "order_id", "line_number", "order_date", "customer_id", "product_id", "product_label",
    "site_id", "quantity", "unit_price", "discount_pct", "sales_channel",
)  # fmt: skip
DELIVERY_COLUMNS = (
    "delivery_id", "order_id", "site_id", "customer_id", "promised_date", "actual_date",
    "quantity_ordered", "quantity_delivered", "carrier",
)  # fmt: skip


def weighted_sample_without_replacement(
    rng: np.random.Generator, weights: np.ndarray, counts: np.ndarray, chunk: int = 2_000_000
) -> list[np.ndarray]:
    """For each row ``i``, ``counts[i]`` distinct indices drawn with probability
    proportional to ``weights`` (Gumbel top-k, vectorised over rows)."""
    log_w = np.log(np.where(weights > 0, weights, np.finfo(float).tiny))
    log_w[weights <= 0] = -np.inf
    k_max = int(counts.max()) if len(counts) else 0
    rows_per_chunk = max(1, chunk // len(weights))
    picks: list[np.ndarray] = []
    for lo in range(0, len(counts), rows_per_chunk):
        hi = min(len(counts), lo + rows_per_chunk)
        keys = rng.gumbel(size=(hi - lo, len(weights)))
        keys += log_w  # in place: this matrix is the biggest array of the generator
        top = np.argpartition(keys, len(weights) - k_max, axis=1)[:, len(weights) - k_max :]
        order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        picks.extend(top[i, : counts[lo + i]] for i in range(hi - lo))
    return picks


def _quantities(rng: np.random.Generator, customer_types: np.ndarray) -> np.ndarray:
    """Packs per line: pharmacies order a few, hospitals tens, wholesalers hundreds."""
    n = len(customer_types)
    pharmacy = np.ceil(rng.lognormal(1.6, 0.8, n))
    hospital = np.ceil(rng.lognormal(3.4, 0.6, n))
    wholesaler = np.ceil(rng.lognormal(5.3, 0.6, n) / 10) * 10
    qty = np.select(
        [customer_types == "pharmacy", customer_types == "hospital"], [pharmacy, hospital], wholesaler
    )
    return np.clip(qty, 1, 5000).astype(np.int64)


def _discounts(rng: np.random.Generator, customer_types: np.ndarray) -> np.ndarray:
    """Discount in % (0-30, steps of 0.5): often none for pharmacies, tender prices
    for hospitals, volume discounts for wholesalers."""
    n = len(customer_types)
    pharmacy = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(1, 10, n))
    hospital = rng.uniform(5, 30, n)
    wholesaler = rng.uniform(10, 30, n)
    raw = np.select(
        [customer_types == "pharmacy", customer_types == "hospital"], [pharmacy, hospital], wholesaler
    )
    return np.round(raw * 2) / 2


def _sales_channels(rng: np.random.Generator, customer_types: np.ndarray) -> np.ndarray:
    """Channel of each order: wholesalers buy as wholesalers, hospitals mostly by
    tender, pharmacies mostly direct."""
    u = rng.random(len(customer_types))
    return np.select(
        [
            customer_types == "wholesaler",
            (customer_types == "hospital") & (u < 0.8),
            (customer_types == "pharmacy") & (u < 0.15),
        ],
        ["wholesaler", "tender", "wholesaler"],
        "direct",
    ).astype(object)


def build_orders_for_day(
    params: GenerationParams, ref: Referential, day: dt.date, day_prices: np.ndarray
) -> pd.DataFrame:
    """Order lines placed on ``day`` (grain: order line; key ``(order_id, line_number)``)."""
    rng = params.rng("orders", day)
    n_orders = max(1, int(rng.poisson(params.sizes.orders_per_day * WEEKDAY_FACTOR[day.weekday()])))
    customers = ref.customers
    cust = rng.choice(len(customers), size=n_orders, p=ref.customer_activity)
    # Distribution centres ship most orders; plants ship some directly.
    sites = ref.sites
    site_w = np.where(sites["site_type"] == "distribution_center", 4.0, 1.0)
    site = rng.choice(len(sites), size=n_orders, p=site_w / site_w.sum())
    n_active = int((ref.product_popularity > 0).sum())
    n_lines = np.minimum(rng.choice(LINES_PER_ORDER, size=n_orders, p=LINES_PER_ORDER_P), n_active)
    products = weighted_sample_without_replacement(rng, ref.product_popularity, n_lines)
    ctype_order = customers["customer_type"].to_numpy()[cust]
    channel = _sales_channels(rng, ctype_order)

    order_idx = np.repeat(np.arange(n_orders), n_lines)
    product_idx = np.concatenate(products)
    line_number = np.concatenate([np.arange(1, k + 1) for k in n_lines])
    ctype_line = ctype_order[order_idx]
    order_ids = np.array([f"O{day:%Y%m%d}{i + 1:05d}" for i in range(n_orders)], dtype=object)
    prods = ref.products
    return pd.DataFrame(
        {
            "order_id": order_ids[order_idx],
            "line_number": line_number,
            "order_date": day,
            "customer_id": customers["customer_id"].to_numpy()[cust][order_idx],
            "product_id": prods["product_id"].to_numpy()[product_idx],
            "product_label": prods["name"].to_numpy()[product_idx],
            "site_id": sites["site_id"].to_numpy()[site][order_idx],
            "quantity": _quantities(rng, ctype_line),
            "unit_price": day_prices[product_idx],
            "discount_pct": _discounts(rng, ctype_order)[order_idx],
            "sales_channel": channel[order_idx],
        }
    )


def build_order_lines(params: GenerationParams, ref: Referential) -> pd.DataFrame:
    """All order lines of the period, sorted by ``(order_id, line_number)``; the unit
    price is the list price valid on the order date."""
    prices = price_matrix(ref.products, ref.product_prices, params.dates)
    days = [build_orders_for_day(params, ref, day, prices[:, i]) for i, day in enumerate(params.dates)]
    return pd.concat(days, ignore_index=True)


def orders_of(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per order: its site, customer, date and packs ordered. The lines are
    sorted by ``(order_id, line_number)`` (as built), so an order's lines are
    contiguous and the first line carries the order's fields."""
    order_id = lines["order_id"].to_numpy(dtype=object)
    if not lines["order_id"].is_monotonic_increasing:
        raise ValueError("order lines must be sorted by order_id")
    first = np.flatnonzero(np.r_[True, order_id[1:] != order_id[:-1]]) if len(lines) else np.array([], int)
    return pd.DataFrame(
        {
            "order_id": order_id[first],
            "site_id": lines["site_id"].to_numpy(dtype=object)[first],
            "customer_id": lines["customer_id"].to_numpy(dtype=object)[first],
            "order_date": lines["order_date"].to_numpy(dtype=object)[first],
            "quantity_ordered": np.add.reduceat(lines["quantity"].to_numpy(), first),
        }
    )


def dates_of(ordinals: np.ndarray) -> np.ndarray:
    """Date objects of day ordinals (one ``fromordinal`` per distinct day)."""
    unique, index = np.unique(ordinals, return_inverse=True)
    return np.array([dt.date.fromordinal(int(o)) for o in unique], dtype=object)[index]


def iso_dates(ordinals: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD' strings of day ordinals, as ``date.isoformat`` spells them."""
    unique, index = np.unique(ordinals, return_inverse=True)
    return np.array([dt.date.fromordinal(int(o)).isoformat() for o in unique], dtype=object)[index]


def build_deliveries(params: GenerationParams, ref: Referential, lines: pd.DataFrame) -> pd.DataFrame:
    """One delivery per order (key ``delivery_id``), with the drop date it is exported on.

    An order ships the next day and is promised 1 day later for hospitals, 1-2 for
    pharmacies, 2-3 for wholesalers. ~85 % arrive on or before the promised date, the
    rest 1-4 days late; ~6 % are partial. A delivery is exported on the day it is
    delivered; one still in transit on the run date is exported that day with
    ``actual_date`` and ``quantity_delivered`` null; orders of the run date have not
    shipped and have no delivery yet.
    """
    rng = params.rng("deliveries")
    orders = orders_of(lines)
    n = len(orders)
    type_of = ref.customers.set_index("customer_id")["customer_type"]
    ctype = orders["customer_id"].map(type_of).to_numpy()
    lead = np.select(
        [ctype == "hospital", ctype == "pharmacy"],
        [np.ones(n), rng.integers(1, 3, n)],
        rng.integers(2, 4, n),
    ).astype(int)
    late = rng.random(n) >= 0.85
    early = (~late) & (rng.random(n) < 0.10) & (lead > 1)
    delay = np.where(late, rng.integers(1, 5, n), np.where(early, -1, 0))
    order_ord = np.array([d.toordinal() for d in orders["order_date"]], dtype=np.int64)
    promised = order_ord + lead
    actual = promised + delay
    shipped = order_ord + 1
    partial = (rng.random(n) < 0.06) & (orders["quantity_ordered"].to_numpy() > 1)
    ordered = orders["quantity_ordered"].to_numpy()
    delivered = np.where(partial, np.floor(ordered * rng.uniform(0.5, 0.95, n)), ordered).astype(int)
    carrier = rng.choice(CARRIERS, n)

    run_ord = params.run_date.toordinal()
    exported = shipped <= run_ord
    in_transit = actual > run_ord
    drop = np.where(in_transit, run_ord, actual)
    frame = pd.DataFrame(
        {
            "delivery_id": "DL" + orders["order_id"].str[1:],
            "order_id": orders["order_id"],
            "site_id": orders["site_id"],
            "customer_id": orders["customer_id"],
            "promised_date": iso_dates(promised),
            # object columns: JSON needs null and plain ints, not NaN and floats
            "actual_date": np.where(in_transit, None, iso_dates(actual)),
            "quantity_ordered": ordered.astype(int),
            "quantity_delivered": np.where(in_transit, None, delivered.astype(object)),
            "carrier": carrier,
            "drop_date": dates_of(drop),
        }
    )
    return frame[exported].sort_values(["drop_date", "delivery_id"]).reset_index(drop=True)
