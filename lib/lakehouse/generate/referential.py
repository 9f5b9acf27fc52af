"""The referential (master data) loaded into PostgreSQL: products and their price
history, sites, machines and their history (relocations, re-ratings), customers.
Each builder is pure: params in, DataFrame out.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lakehouse.generate.formats import cip13_from_body
from lakehouse.generate.params import GenerationParams
from lakehouse.generate.vocabulary import (
    ATC_CLASSES,
    CITIES,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    HOSPITAL_PATTERNS,
    LABS,
    LAST_NAMES,
    MOLECULES,
    PHARMACY_NAMES,
    RATED_POWER_KW,
    SITES,
    STREET_NAMES,
    STREET_TYPES,
    WHOLESALER_PATTERNS,
    check_latin1_safe,
)

CUSTOMER_TYPES = ("pharmacy", "hospital", "wholesaler")
# Production machines first so that even a plant with one machine produces something.
PLANT_MACHINE_SEQUENCE = (
    "tablet_press", "hvac", "blister_line", "granulator", "coater", "tablet_press", "blister_line",
)  # fmt: skip


@dataclass(frozen=True)
class Referential:
    """All referential tables plus the weights that drive the daily activity."""

    products: pd.DataFrame
    product_prices: pd.DataFrame
    sites: pd.DataFrame
    machines: pd.DataFrame  # the current version of each machine
    customers: pd.DataFrame
    machine_history: pd.DataFrame  # every version; loaded as the ``machines`` table
    product_popularity: np.ndarray  # order weight per products row; 0 when inactive
    customer_activity: np.ndarray  # order weight per customers row

    def tables(self) -> dict[str, pd.DataFrame]:
        """Tables in load order (parents before children)."""
        return {
            "sites": self.sites,
            "products": self.products,
            "product_prices": self.product_prices,
            "machines": self.machine_history,
            "customers": self.customers,
        }


def _utc(day: dt.date, seconds: int = 0) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC") + pd.Timedelta(seconds=int(seconds))


def product_label_tiers() -> list[list[tuple[str, str, str, float]]]:
    """Every (label, ATC code, dosage form, cost level) the catalogue can offer, in
    tiers used in order: plain labels ('Paracétamol 500 mg comprimé'), then generic-lab
    variants ('Paracétamol Biogaran 500 mg comprimé'), then large packs of both."""
    plain, labelled = [], []
    for molecule, atc, strengths, forms, cost in MOLECULES:
        for strength in strengths:
            for form in forms:
                plain.append((f"{molecule} {strength} {form}", atc, form, cost))
                for lab in LABS:
                    labelled.append((f"{molecule} {lab} {strength} {form}", atc, form, cost))
    packs = [(f"{label}, boîte de 90", atc, form, cost * 2.5) for label, atc, form, cost in plain + labelled]
    return [plain, labelled, packs]


def build_products(params: GenerationParams) -> tuple[pd.DataFrame, np.ndarray]:
    """``products``: one row per product, key ``product_id``. Also returns the
    popularity weight of each row (Zipf-like, 0 for inactive products)."""
    n = params.sizes.products
    rng = params.rng("products")
    tiers = product_label_tiers()
    capacity = sum(len(t) for t in tiers)
    if n > capacity:
        raise ValueError(f"products: {n} requested, the label catalogue holds {capacity}")
    # Shuffle within each tier; a later tier is used only once the earlier ones run out.
    picked = [row for tier in tiers for row in (tier[i] for i in rng.permutation(len(tier)))][:n]
    for label, *_ in picked:  # labels go into the latin-1 ERP export
        check_latin1_safe(label)
    bodies = rng.choice(10_000_000, size=n, replace=False)
    cost = np.array([c for *_, c in picked]) * rng.lognormal(0.0, 0.35, n)
    unit_cost = np.round(np.maximum(cost, 0.15), 4)
    list_price = np.round(unit_cost * rng.uniform(1.3, 2.2, n), 2)
    list_price = np.maximum(list_price, np.round(unit_cost * 1.3 + 0.01, 2))
    is_active = rng.random(n) >= 0.05
    is_active[0] = True  # at least one product can be ordered at any scale
    ranks = rng.permutation(n) + 1
    popularity = np.where(is_active, 1.0 / ranks**0.8, 0.0)
    products = pd.DataFrame(
        {
            "product_id": [f"P{i + 1:04d}" for i in range(n)],
            "cip13": [cip13_from_body(int(b)) for b in bodies],
            "name": [label for label, *_ in picked],
            "atc_code": [atc for _, atc, *_ in picked],
            "atc_class": [ATC_CLASSES[atc[0]] for _, atc, *_ in picked],
            "dosage_form": [form for _, _, form, _ in picked],
            "unit_cost": unit_cost,
            "list_price": list_price,
            "is_active": is_active,
        }
    )
    return products, popularity / popularity.sum()


def build_product_prices(params: GenerationParams, products: pd.DataFrame) -> pd.DataFrame:
    """``product_prices``: one row per product and validity period, key
    ``(product_id, valid_from)``; ``valid_to`` exclusive, NULL on the current row.

    Every product has a period starting before the first generated day; ~20 % get one
    or two changes inside the generated period. Built backwards from the current
    prices, so the current row equals ``products``.
    """
    rng = params.rng("product_prices")
    start = params.start_date
    # Changes fall on days 2..N of the period so they are visible in the data; with a
    # single day, the only possible change day is that day.
    change_offsets = np.arange(1, params.days) if params.days > 1 else np.array([0])
    rows = []
    for product_id, cost, price in zip(products["product_id"], products["unit_cost"], products["list_price"]):
        first_from = start - dt.timedelta(days=int(rng.integers(30, 730)))
        n_changes = 0
        if rng.random() < 0.20:
            n_changes = min(1 if rng.random() < 0.7 else 2, len(change_offsets))
        offsets = np.sort(rng.choice(change_offsets, size=n_changes, replace=False))
        starts = [first_from] + [start + dt.timedelta(days=int(o)) for o in offsets]
        periods = [(float(cost), float(price))]
        for _ in range(n_changes):  # walk back from the current prices
            cur_cost, cur_price = periods[0]
            rise = rng.uniform(0.02, 0.10) if rng.random() < 0.8 else -rng.uniform(0.02, 0.08)
            prev_cost = round(cur_cost / (1 + rng.uniform(-0.03, 0.06)), 4)
            prev_price = round(cur_price / (1 + rise), 2)
            prev_price = max(prev_price, round(prev_cost * 1.3 + 0.01, 2))
            periods.insert(0, (prev_cost, prev_price))
        ends: list[dt.date | None] = [*starts[1:], None]
        for valid_from, valid_to, (period_cost, period_price) in zip(starts, ends, periods):
            rows.append((product_id, valid_from, valid_to, period_cost, period_price))
    return pd.DataFrame(rows, columns=["product_id", "valid_from", "valid_to", "unit_cost", "list_price"])


def with_product_updated_at(
    params: GenerationParams, products: pd.DataFrame, prices: pd.DataFrame
) -> pd.DataFrame:
    """``products.updated_at``: the night the current price became valid."""
    rng = params.rng("products", "updated_at")
    current_from = prices.groupby("product_id", sort=False)["valid_from"].max()
    seconds = rng.integers(3600, 5 * 3600, len(products))
    updated = [_utc(current_from[pid], s) for pid, s in zip(products["product_id"], seconds)]
    return products.assign(updated_at=updated)


def build_sites(params: GenerationParams) -> pd.DataFrame:
    """``sites``: one row per site, key ``site_id``; 5 sites (3 plants) or, below
    scale 0.2, 2 (one plant, one distribution centre)."""
    rng = params.rng("sites")
    templates = SITES if params.sizes.sites == 5 else (SITES[0], SITES[3])
    since = rng.integers(60, 400, len(templates))
    return pd.DataFrame(
        {
            "site_id": [f"S{i + 1:02d}" for i in range(len(templates))],
            "name": [t[0] for t in templates],
            "city": [t[1] for t in templates],
            "region": [t[2] for t in templates],
            "country": "FR",
            "site_type": [t[3] for t in templates],
            "updated_at": [_utc(params.start_date - dt.timedelta(days=int(d)), 8 * 3600) for d in since],
        }
    )


def build_machines(params: GenerationParams, sites: pd.DataFrame) -> pd.DataFrame:
    """``machines``: one row per machine, key ``machine_id``; only at plants, spread
    round-robin over them, each plant's first machine a production one."""
    rng = params.rng("machines")
    plants = sites.loc[sites["site_type"] == "plant", "site_id"].tolist()
    n = params.sizes.machines
    site_ids = [plants[i % len(plants)] for i in range(n)]
    position = [i // len(plants) for i in range(n)]  # rank of the machine in its plant
    types = [PLANT_MACHINE_SEQUENCE[p % len(PLANT_MACHINE_SEQUENCE)] for p in position]
    power = [float(rng.choice(RATED_POWER_KW[t])) for t in types]
    first = dt.date(2008, 1, 1).toordinal()
    last = (params.start_date - dt.timedelta(days=90)).toordinal()
    commissioned = [dt.date.fromordinal(int(o)) for o in rng.integers(first, last, n)]
    updated = [
        _utc(max(c, params.start_date - dt.timedelta(days=int(d))), 9 * 3600)
        for c, d in zip(commissioned, rng.integers(20, 500, n))
    ]
    return pd.DataFrame(
        {
            "machine_id": [f"M{i + 1:03d}" for i in range(n)],
            "site_id": site_ids,
            "machine_type": types,
            "rated_power_kw": power,
            "commissioned_on": commissioned,
            "updated_at": updated,
        }
    )


# Every 10th machine from the 4th is re-rated, from the 8th relocated to the next plant,
# halfway through the generated period (M004/M014 and M008/M018 at scale 1).
RERATED_EVERY, RERATED_FROM, RELOCATED_FROM = 10, 3, 7
RERATED_POWER_FACTOR = 0.8  # the power before the re-rating: 80 % of today's


def machine_change_day(params: GenerationParams) -> dt.date:
    """The day the changed machines start their current version."""
    return params.start_date + dt.timedelta(days=max(1, params.days // 2))


def build_machine_history(
    params: GenerationParams, machines: pd.DataFrame, sites: pd.DataFrame
) -> pd.DataFrame:
    """``machines`` as versions, key ``(machine_id, valid_from)``, ``valid_to`` exclusive
    (NULL while current): one version from the commissioning date, and for the
    re-rated and relocated machines an earlier version (lower power, or the next plant)
    until ``machine_change_day``. The current version matches ``machines``."""
    plants = sites.loc[sites["site_type"] == "plant", "site_id"].tolist()
    change = machine_change_day(params)
    rows = []
    for index, machine in enumerate(machines.to_dict("records")):
        current = {**machine, "valid_from": machine["commissioned_on"], "valid_to": None}
        slot = index % RERATED_EVERY
        earlier = None
        if slot == RERATED_FROM:
            earlier = {"rated_power_kw": round(machine["rated_power_kw"] * RERATED_POWER_FACTOR, 1)}
        elif slot == RELOCATED_FROM and len(plants) > 1:
            earlier = {"site_id": plants[(plants.index(machine["site_id"]) + 1) % len(plants)]}
        if earlier is not None and machine["commissioned_on"] < change:
            rows.append(
                {
                    **current,
                    **earlier,
                    "valid_to": change,
                    "updated_at": _utc(machine["commissioned_on"], 9 * 3600),
                }
            )
            current = {**current, "valid_from": change, "updated_at": _utc(change, 9 * 3600)}
        rows.append(current)
    history = pd.DataFrame(rows, columns=[*machines.columns, "valid_from", "valid_to"])
    return history.sort_values(["machine_id", "valid_from"], ignore_index=True)


def ascii_slug(text: str) -> str:
    """'Gaëtan Lefèvre' -> 'gaetan-lefevre' (e-mail local parts are ASCII)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c if c.isalnum() else "-" for c in folded.lower()).strip("-")


def build_customers(params: GenerationParams) -> tuple[pd.DataFrame, np.ndarray]:
    """``customers``: one row per customer, key ``customer_id`` (contact fields are
    personal data). Also returns each customer's order weight."""
    n = params.sizes.customers
    rng = params.rng("customers")
    types = rng.choice(CUSTOMER_TYPES, size=n, p=[0.80, 0.12, 0.08])
    cities = rng.integers(0, len(CITIES), n)
    first = rng.choice(FIRST_NAMES, n)
    last = rng.choice(LAST_NAMES, n)
    rows = []
    for i in range(n):
        city, dept, region, area = CITIES[cities[i]]
        ctype = types[i]
        if ctype == "pharmacy":
            name = str(rng.choice(PHARMACY_NAMES)) + f" - {city}"
        elif ctype == "hospital":
            name = str(rng.choice(HOSPITAL_PATTERNS)).format(city=city)
        else:
            name = str(rng.choice(WHOLESALER_PATTERNS)).format(city=city, region=region)
        contact = f"{first[i]} {last[i]}"
        department = "20" if dept in {"2A", "2B"} else dept  # Corsica: 20xxx
        postcode = department + f"{rng.integers(0, 10)}{rng.integers(0, 10)}0"
        digits = rng.integers(0, 100, 4)
        rows.append(
            (
                f"C{i + 1:05d}",
                ctype,
                name,
                contact,
                f"{ascii_slug(first[i])}.{ascii_slug(last[i])}@{rng.choice(EMAIL_DOMAINS)}",
                f"0{area} " + " ".join(f"{d:02d}" for d in digits),
                f"{rng.integers(1, 180)} {rng.choice(STREET_TYPES)} {rng.choice(STREET_NAMES)}",
                postcode,
                city,
                _utc(
                    params.run_date - dt.timedelta(days=int(rng.integers(1, 700))),
                    int(rng.integers(6 * 3600, 20 * 3600)),
                ),
            )
        )
    customers = pd.DataFrame(
        rows,
        columns=[
            "customer_id", "customer_type", "name", "contact_name", "email", "phone",
            "address", "postcode", "city", "updated_at",
        ],
    )  # fmt: skip
    base = {"pharmacy": 1.0, "hospital": 2.5, "wholesaler": 5.0}
    activity = np.array([base[t] for t in types]) * rng.lognormal(0.0, 0.5, n)
    return customers, activity / activity.sum()


def build_referential(params: GenerationParams) -> Referential:
    """Every referential table for ``params``."""
    products, popularity = build_products(params)
    prices = build_product_prices(params, products)
    products = with_product_updated_at(params, products, prices)
    sites = build_sites(params)
    customers, activity = build_customers(params)
    machines = build_machines(params, sites)
    return Referential(
        products=products,
        product_prices=prices,
        sites=sites,
        machines=machines,
        customers=customers,
        machine_history=build_machine_history(params, machines, sites),
        product_popularity=popularity,
        customer_activity=activity,
    )


def price_matrix(
    products: pd.DataFrame, prices: pd.DataFrame, dates: list[dt.date], column: str = "list_price"
) -> np.ndarray:
    """``column`` valid on each day: array (products rows, days)."""
    index = {pid: i for i, pid in enumerate(products["product_id"])}
    day0 = dates[0]
    out = np.full((len(products), len(dates)), np.nan)
    for pid, valid_from, valid_to, value in zip(
        prices["product_id"], prices["valid_from"], prices["valid_to"], prices[column]
    ):
        lo = max(0, (valid_from - day0).days)
        hi = len(dates) if valid_to is None or pd.isna(valid_to) else (valid_to - day0).days
        if hi > lo:
            out[index[pid], lo:hi] = value
    if np.isnan(out).any():
        raise ValueError(f"product_prices: some products have no {column} on some days")
    return out
