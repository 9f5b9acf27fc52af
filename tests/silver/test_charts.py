"""The SVG charts of the layer notebooks: scales, labels and shapes, without an engine."""

from __future__ import annotations

import math
import re

import pytest

from lakehouse.silver.charts import Chart, format_number, nice_ticks


def test_nice_ticks_cover_the_range_with_round_steps():
    assert nice_ticks(0, 70) == [0, 20, 40, 60, 80]
    assert nice_ticks(0, 1) == [0, 0.25, 0.5, 0.75, 1]
    assert nice_ticks(-30, 45) == [-40, -20, 0, 20, 40, 60]
    assert nice_ticks(130_000, 1_030_000) == [0, 250_000, 500_000, 750_000, 1_000_000, 1_250_000]


def test_nice_ticks_of_one_value_make_a_band_around_it():
    assert nice_ticks(5, 5) == [4.5, 4.75, 5, 5.25, 5.5]
    assert nice_ticks(0, 0) == [-1, -0.5, 0, 0.5, 1]


def test_nice_ticks_refuse_a_reversed_or_infinite_range():
    with pytest.raises(ValueError, match="finite low <= high; got low=2, high=1"):
        nice_ticks(2, 1)
    with pytest.raises(ValueError, match="got low=nan"):
        nice_ticks(math.nan, 1)


def test_numbers_are_shortened_for_tick_labels():
    assert [format_number(v) for v in (0, 0.25, 40, 9999, 12_000, 1_250_000, -2_500_000)] == [
        "0", "0.25", "40", "9999", "12k", "1.25M", "-2.5M",
    ]  # fmt: skip


def _bars(svg: str) -> list[tuple[float, float]]:
    """(y, height) of each data bar (the background rect has no x attribute)."""
    return [
        (float(y), float(h))
        for y, h in re.findall(r'<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)"', svg)
    ]


def test_a_bar_chart_draws_one_bar_per_value_from_zero_with_its_labels():
    chart = Chart("sites: per type", ("plant", "dc", "none"), (4.0, 2.0, math.nan), "bar")
    svg = chart.to_svg()
    bars = _bars(svg)
    assert len(bars) == 2  # NaN draws no bar
    # axis 0..4 over the plot height (260 - 28 - 62 = 170 px): 4 -> 170 px, 2 -> 85 px
    assert [h for _, h in bars] == [170.0, 85.0]
    assert ">plant</text>" in svg and ">dc</text>" in svg and ">none</text>" in svg
    assert ">sites: per type</text>" in svg


def test_a_negative_bar_hangs_below_zero():
    svg = Chart("margin", ("S01", "S02"), (-10.0, 30.0), "bar").to_svg()
    (y_neg, h_neg), (y_pos, h_pos) = _bars(svg)
    # the negative bar starts where the positive one ends: at y(0)
    assert y_neg == pytest.approx(y_pos + h_pos)
    assert h_pos == pytest.approx(3 * h_neg)


def test_a_line_chart_breaks_at_missing_values_and_thins_its_labels():
    labels = tuple(f"2026-11-{d:02d}" for d in range(1, 31))
    values = tuple(math.nan if d == 15 else float(d) for d in range(1, 31))
    svg = Chart("per day", labels, values).to_svg()
    assert svg.count("<polyline") == 2  # days 1-14 and 16-30
    assert svg.count("<circle") == 29
    drawn = re.findall(r">(2026-11-\d\d)</text>", svg)
    assert drawn == [f"2026-11-{d:02d}" for d in range(1, 31, 3)]  # at most 12 labels: every 3rd


def test_a_long_line_has_no_dot_per_point():
    hours = tuple(f"h{i}" for i in range(744))
    svg = Chart("per hour", hours, tuple(float(i % 24) for i in range(744))).to_svg()
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 0
    assert len(re.findall(r">h\d+</text>", svg)) == 12


def test_titles_and_labels_are_escaped():
    svg = Chart("a <b> & c", ("x<y",), (1.0,), "bar").to_svg()
    assert ">a &lt;b&gt; &amp; c</text>" in svg and ">x&lt;y</text>" in svg


def test_an_empty_chart_says_no_rows_yet():
    chart = Chart("t: nothing", (), ())
    assert chart.empty and "no rows yet" in chart._repr_svg_() and "<polyline" not in chart.to_svg()
    assert repr(chart) == "Chart('t: nothing', line, 0 points)"


def test_a_chart_refuses_mismatched_labels_and_unknown_kinds():
    with pytest.raises(ValueError, match="2 labels for 1 values"):
        Chart("t", ("a", "b"), (1.0,))
    with pytest.raises(ValueError, match="kind 'pie' is not one of \\['bar', 'line'\\]"):
        Chart("t", ("a",), (1.0,), "pie")  # type: ignore[arg-type]
