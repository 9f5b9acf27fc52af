"""Referential tables (built in memory at scale 1; no files needed)."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from lakehouse.generate import GenerationParams
from lakehouse.generate.formats import is_valid_ean13
from lakehouse.generate.referential import build_referential, price_matrix
from lakehouse.generate.vocabulary import ATC_CLASSES, check_latin1_safe

PARAMS = GenerationParams(seed=42, scale=1.0, days=30, run_date=dt.date(2026, 11, 26))


@pytest.fixture(scope="module")
def ref():
    return build_referential(PARAMS)


def test_sizes_and_keys_at_scale_1(ref):
    assert len(ref.products) == 200 and ref.products["product_id"].is_unique
    assert ref.products["product_id"].iloc[0] == "P0001"
    assert len(ref.sites) == 5 and list(ref.sites["site_id"]) == ["S01", "S02", "S03", "S04", "S05"]
    assert len(ref.machines) == 20 and ref.machines["machine_id"].iloc[-1] == "M020"
    assert len(ref.customers) == 500 and ref.customers["customer_id"].iloc[0] == "C00001"


def test_cip13_codes_are_valid_unique_and_french(ref):
    cips = ref.products["cip13"]
    assert cips.is_unique
    assert cips.str.fullmatch(r"34009\d{8}").all()
    assert all(is_valid_ean13(c) for c in cips)


def test_product_labels_atc_and_prices_look_real(ref):
    products = ref.products
    assert products["atc_code"].str.fullmatch(r"[A-Z]\d{2}[A-Z]{2}\d{2}").all()
    assert (products["atc_class"] == products["atc_code"].str[0].map(ATC_CLASSES)).all()
    assert products["name"].str.contains("é").any()
    for name in products["name"]:
        check_latin1_safe(name)
    assert (products["list_price"] > products["unit_cost"]).all()
    assert products["is_active"].mean() > 0.9
    assert products["updated_at"].max() <= pd.Timestamp(PARAMS.run_date, tz="UTC") + pd.Timedelta(days=1)


def test_price_history_is_contiguous_and_current_row_equals_products(ref):
    prices = ref.product_prices
    assert not prices.duplicated(["product_id", "valid_from"]).any()
    changed = 0
    for product_id, rows in prices.groupby("product_id"):
        rows = rows.sort_values("valid_from")
        assert rows["valid_from"].iloc[0] < PARAMS.start_date, product_id
        assert list(rows["valid_to"].iloc[:-1]) == list(rows["valid_from"].iloc[1:]), product_id
        assert rows["valid_to"].iloc[-1] is None, product_id
        assert (rows["list_price"] > rows["unit_cost"]).all(), product_id
        current = ref.products.set_index("product_id").loc[product_id]
        assert rows["unit_cost"].iloc[-1] == current["unit_cost"]
        assert rows["list_price"].iloc[-1] == current["list_price"]
        if len(rows) > 1:
            changed += 1
            assert (rows["valid_from"].iloc[1:] > PARAMS.start_date).all()
            assert (rows["valid_from"].iloc[1:] <= PARAMS.run_date).all()
    assert 0.10 <= changed / len(ref.products) <= 0.30  # ~20 % change inside the period


def test_price_matrix_reads_the_period_valid_each_day(ref):
    prices = ref.product_prices
    changed = prices[prices["valid_from"] > PARAMS.start_date].iloc[0]
    matrix = price_matrix(ref.products, prices, PARAMS.dates)
    row = ref.products.index[ref.products["product_id"] == changed["product_id"]][0]
    day = (changed["valid_from"] - PARAMS.start_date).days
    before = prices[
        (prices["product_id"] == changed["product_id"]) & (prices["valid_to"] == changed["valid_from"])
    ]
    assert matrix[row, day] == changed["list_price"]
    assert matrix[row, day - 1] == before["list_price"].iloc[0]


def test_sites_machines_and_customers(ref):
    sites = ref.sites
    assert (sites["site_type"] == "plant").sum() >= 3 and (sites["country"] == "FR").all()
    plants = set(sites.loc[sites["site_type"] == "plant", "site_id"])
    machines = ref.machines
    assert set(machines["site_id"]) <= plants
    assert set(machines["machine_type"]) == {"tablet_press", "blister_line", "granulator", "coater", "hvac"}
    hvac = machines[machines["machine_type"] == "hvac"]["rated_power_kw"]
    presses = machines[machines["machine_type"] == "tablet_press"]["rated_power_kw"]
    assert hvac.min() >= 90 and presses.max() <= 75
    customers = ref.customers
    assert set(customers["customer_type"]) == {"pharmacy", "hospital", "wholesaler"}
    assert customers["phone"].str.fullmatch(r"0[1-9]( \d{2}){4}").all()
    assert customers["email"].str.fullmatch(r"[a-z-]+\.[a-z-]+@[a-z.]+").all()
    assert customers["postcode"].str.fullmatch(r"\d{5}").all()
    assert all(re.match(r"\d+ ", a) for a in customers["address"])


def test_small_scales_still_have_a_plant_a_distribution_centre_and_a_production_machine():
    small = build_referential(GenerationParams(seed=1, scale=0.05, days=2, run_date=PARAMS.run_date))
    assert list(small.sites["site_type"]) == ["plant", "distribution_center"]
    assert "hvac" in set(small.machines["machine_type"])
    assert (small.machines["machine_type"] != "hvac").any()
    assert len(small.products) == 10 and small.product_popularity.sum() == pytest.approx(1.0)


def test_machine_history_relocates_and_rerates_halfway(ref):
    history = ref.machine_history
    change = dt.date(2026, 11, 12)  # start 2026-10-28 + 30 // 2 = 15 days
    assert history[["machine_id", "valid_from"]].drop_duplicates().shape[0] == len(history) == 24
    changed = history[history["machine_id"].isin(["M004", "M008", "M014", "M018"])]
    current = ref.machines.set_index("machine_id")
    for machine_id, versions in changed.groupby("machine_id"):
        before, after = versions.sort_values("valid_from").to_dict("records")
        assert before["valid_to"] == after["valid_from"] == change and after["valid_to"] is None
        assert after["site_id"] == current.loc[machine_id, "site_id"]
        assert after["rated_power_kw"] == current.loc[machine_id, "rated_power_kw"]
        if machine_id in ("M004", "M014"):  # re-rated: 80 % of today's power before
            assert before["rated_power_kw"] == round(after["rated_power_kw"] * 0.8, 1)
            assert before["site_id"] == after["site_id"]
        else:  # relocated from the next plant
            assert before["site_id"] != after["site_id"]
            assert before["rated_power_kw"] == after["rated_power_kw"]
    unchanged = history[~history["machine_id"].isin(changed["machine_id"])]
    assert (
        unchanged["valid_to"].isna().all() and (unchanged["valid_from"] == unchanged["commissioned_on"]).all()
    )
