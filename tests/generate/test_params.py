"""Parameters: validation errors, sizes per scale, the schema-change day, streams."""

from __future__ import annotations

import datetime as dt

import pytest

from lakehouse.generate import GenerationError, GenerationParams, generate_all
from lakehouse.generate.params import sizes_for

from .conftest import RUN_DATE, make_settings


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 0.0}, "scale must be a number > 0 and <= 50, found 0.0"),
        ({"scale": 51.0}, "scale must be a number > 0 and <= 50, found 51.0"),
        ({"days": 0}, "days must be an integer between 1 and 731, found 0"),
        ({"days": 2.5}, "days must be an integer between 1 and 731, found 2.5"),
        ({"seed": -1}, "seed must be an integer >= 0, found -1"),
        ({"run_date": "2026-11-26"}, "run_date must be a date (YYYY-MM-DD), found '2026-11-26'"),
    ],
)
def test_invalid_parameters_name_what_was_expected_and_found(kwargs, message):
    values = {"seed": 1, "scale": 1.0, "days": 3, "run_date": RUN_DATE, **kwargs}
    with pytest.raises(GenerationError) as info:
        GenerationParams(**values)
    assert str(info.value) == message


def test_generate_all_rejects_a_scale_the_config_allows_but_the_generator_cannot(tmp_path):
    settings = make_settings(tmp_path, scale=51.0)  # pydantic only checks scale > 0
    with pytest.raises(GenerationError, match=r"scale must be a number > 0 and <= 50, found 51.0"):
        generate_all(settings)
    assert not (tmp_path / "lake").exists(), "nothing is written when parameters are invalid"


def test_generate_all_refuses_a_remote_lake(tmp_path):
    settings = make_settings(tmp_path).model_copy(update={"lake_root": "s3://bucket/lake"})
    with pytest.raises(GenerationError, match="lake_root must be a local folder"):
        generate_all(settings)


def test_sizes_follow_the_scale_with_minimums():
    one = sizes_for(1.0)
    assert (one.products, one.sites, one.machines, one.customers) == (200, 5, 20, 500)
    assert one.orders_per_day == 400
    tiny = sizes_for(0.01)
    assert (tiny.products, tiny.sites, tiny.machines, tiny.customers) == (2, 2, 2, 5)
    assert sizes_for(0.2).sites == 5 and sizes_for(0.19).sites == 2
    ten = sizes_for(10.0)
    assert (ten.products, ten.machines, ten.customers) == (2000, 200, 5000)
    # Above 10: the catalogue and the three-digit machine ids stop growing, orders do not.
    fifty = sizes_for(50.0)
    assert (fifty.products, fifty.sites, fifty.machines, fifty.customers) == (2000, 5, 999, 25000)
    assert fifty.orders_per_day == 20_000


def test_period_and_schema_change_day():
    params = GenerationParams(seed=1, scale=1.0, days=30, run_date=dt.date(2026, 11, 26))
    assert params.start_date == dt.date(2026, 10, 28)
    assert params.dates[0] == params.start_date and params.dates[-1] == params.run_date
    assert len(params.dates) == 30
    assert params.schema_change_date == dt.date(2026, 11, 17)  # index 20 of 0..29


def test_streams_are_independent_of_each_other_and_stable():
    params = GenerationParams(seed=1, scale=1.0, days=3, run_date=RUN_DATE)
    a = params.rng("orders", RUN_DATE).random(3)
    assert (params.rng("orders", RUN_DATE).random(3) == a).all()
    assert not (params.rng("orders", RUN_DATE - dt.timedelta(days=1)).random(3) == a).any()
    other_seed = GenerationParams(seed=2, scale=1.0, days=3, run_date=RUN_DATE)
    assert not (other_seed.rng("orders", RUN_DATE).random(3) == a).any()
