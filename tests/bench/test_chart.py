"""The benchmark's curves without an engine: the points of a made-up two-scale report
(figures computed by hand, an engine missing at one scale, a stage rounded to zero),
the SVG's series and its bytes, the command, and the chart of the benchmark page."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.bench import spark_pipeline as on_spark
from lakehouse.bench.chart import bench_chart, curves, load_report, render_svg, series_id, write_chart
from lakehouse.bench.measure import StageResult
from lakehouse.bench.runner import ScaleResult

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
MIB = 2**20


def _stages(prefix: str, figures: list[tuple[str, float, float]]) -> list[StageResult]:
    """(stage, seconds, peak MiB) -> measured stages named ``<prefix><stage>``."""
    return [
        StageResult(f"{prefix}{name}", seconds=s, rows_out=10, peak_rss_bytes=int(m * MIB))
        for name, s, m in figures
    ]


def _layers(
    prefix: str, seconds: tuple[float, float, float], mib: tuple[float, float, float]
) -> list[StageResult]:
    return _stages(prefix, list(zip(on_spark.LAYERS, seconds, mib, strict=True)))


def _report() -> dict:
    """Scale 2 listed first; scale 0.5 has classic Spark and a full rebuild, scale 2 has
    neither (--no-classic, extras left out) but a Spark Connect run, and a gold stage
    that rounds to 0.0 s."""
    small = ScaleResult(0.5, 30, dt.date(2026, 11, 26))
    small.stages = _stages(
        "", [("generate", 1.0, 100), ("bronze", 2.0, 300), ("silver", 1.0, 350), ("gold", 0.5, 360)]
    )
    small.daily = _layers("daily ", (0.25, 0.5, 0.25), (310, 320, 330))
    small.full_rebuild = _layers("rebuild ", (1.5, 1.0, 0.5), (400, 450, 420))
    small.nothing_new = _layers("again ", (0.1, 0.1, 0.1), (300, 300, 300))
    small.comparison = {"seconds": {"embedded (Sail)": 0.2, "DuckDB": 0.1, "classic Spark local[2]": 10.0}}

    large = ScaleResult(2.0, 30, dt.date(2026, 11, 26))
    large.stages = _stages(
        "", [("generate", 4.0, 1000), ("bronze", 8.0, 1500), ("silver", 3.0, 1400), ("gold", 0.0001, 1300)]
    )
    large.daily = _layers("daily ", (0.5, 1.25, 0.75), (900, 1000, 950))
    large.nothing_new = _layers("again ", (0.2, 0.2, 0.2), (800, 800, 800))
    large.comparison = {
        "seconds": {"embedded (Sail)": 0.5, "DuckDB": 0.75, "Apache Spark over Spark Connect": 12.0},
        "classic_over_embedded": None,
    }
    large.spark_connect = on_spark.EngineStages(
        history=_layers("spark ", (30.0, 20.0, 10.0), (1700, 1700, 1700)),
        daily=_layers("spark daily ", (5.0, 8.0, 7.0), (1700, 1700, 1700)),
        nothing_new=_layers("spark again ", (2.0, 2.0, 2.0), (1700, 1700, 1700)),
    )
    return {
        "started_at": "2026-11-26T14:32:46Z",
        "machine": {"logical_cpus": 2, "load_average_1_5_15": [3.43, 2.0, 1.5]},
        "scales": [large.to_json(), small.to_json()],  # JSON as the runner writes it
    }


def test_curves_give_each_stage_and_engine_its_points_by_scale_and_leave_out_what_was_not_measured():
    expected = {
        "wall: generate": [(0.5, 1.0), (2.0, 4.0)],
        "wall: bronze": [(0.5, 2.0), (2.0, 8.0)],
        "wall: silver": [(0.5, 1.0), (2.0, 3.0)],
        "wall: gold": [(0.5, 0.5)],  # 0.0001 s is written as 0.0: no point on a log axis
        "wall: daily update": [(0.5, 1.0), (2.0, 2.5)],  # 0.25 + 0.5 + 0.25; 0.5 + 1.25 + 0.75
        "wall: full rebuild": [(0.5, 3.0)],  # 1.5 + 1.0 + 0.5; not run at scale 2
        "memory: generate": [(0.5, 100.0), (2.0, 1000.0)],
        "memory: bronze": [(0.5, 300.0), (2.0, 1500.0)],
        "memory: silver": [(0.5, 350.0), (2.0, 1400.0)],
        "memory: gold": [(0.5, 360.0), (2.0, 1300.0)],  # its memory was measured
        "memory: daily update": [(0.5, 330.0), (2.0, 1000.0)],  # the highest of the three
        "memory: full rebuild": [(0.5, 450.0)],
        "engines: embedded (Sail)": [(0.5, 0.2), (2.0, 0.5)],
        "engines: DuckDB": [(0.5, 0.1), (2.0, 0.75)],
        "engines: Apache Spark over Spark Connect": [(2.0, 12.0)],
        "engines: Spark Connect pipeline, bronze": [(2.0, 30.0)],
        "engines: Spark Connect pipeline, silver": [(2.0, 20.0)],
        "engines: Spark Connect pipeline, gold": [(2.0, 10.0)],
        "engines: Spark Connect pipeline, daily update": [(2.0, 20.0)],  # 5 + 8 + 7
        "engines: classic Spark local[2]": [(0.5, 10.0)],  # --no-classic at scale 2: absent, not 0
    }

    result = curves(_report())

    assert result == expected
    panels = [name.partition(": ")[0] for name in result]
    assert panels == sorted(panels, key=["wall", "memory", "engines"].index)  # drawn panel by panel


def test_curves_of_the_reports_in_the_repository_follow_their_tables():
    report = load_report(PROJECT_ROOT / "bench" / "results" / "bench-20261126T143246Z.json")
    result = curves(report)
    assert result["wall: full rebuild"] == [(0.1, 4.381), (1.0, 10.358), (5.0, 31.775)]  # the page's run B
    assert result["engines: classic Spark local[2]"] == [(0.1, 15.027), (1.0, 18.615), (5.0, 43.833)]
    assert not any("Spark Connect" in name for name in result)

    spark = curves(load_report(PROJECT_ROOT / "bench" / "results" / "bench-20261206T194857Z.json"))
    assert spark["engines: Spark Connect pipeline, daily update"] == [(1.0, 127.408)]  # the page's 127.4
    assert spark["engines: Apache Spark over Spark Connect"] == [(1.0, 13.894)]


@pytest.mark.parametrize("report", [{}, {"scales": []}, {"started_at": "x", "scales": None}])
def test_curves_of_a_record_without_scales_say_what_was_expected(report):
    with pytest.raises(
        ValueError, match=r"expected a non-empty 'scales' list \(the JSON written by `lakehouse bench run`\)"
    ):
        curves(report)


def _series_groups(svg: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("id"): g for g in root.iter(f"{SVG}g") if g.get("id")}


def test_the_svg_has_one_line_per_series_with_one_marker_per_point():
    report = _report()
    svg = render_svg(report)

    groups = _series_groups(svg)
    for name, points in curves(report).items():
        group = groups[series_id(name)]
        assert len(list(group.iter(f"{SVG}use"))) == len(points), name
        line = group.find(f"{SVG}path").get("d")
        assert line.count("L") == len(points) - 1, name  # one segment between neighbouring scales
    assert "engines-classic-spark-local-2" in groups and "wall-full-rebuild" in groups
    assert b"<dc:date>" not in svg and b"Matplotlib v" not in svg


def test_write_chart_writes_the_same_bytes_twice(tmp_path: Path):
    report = _report()
    first = write_chart(report, tmp_path / "a" / "curves.svg")
    second = write_chart(json.loads(json.dumps(report)), tmp_path / "b.svg")  # read back from JSON

    assert first == tmp_path / "a" / "curves.svg"
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().startswith(b"<?xml")


def test_series_ids_are_the_names_spelled_for_svg():
    assert series_id("wall: daily update") == "wall-daily-update"
    assert series_id("engines: classic Spark local[2]") == "engines-classic-spark-local-2"


def test_chart_command_writes_the_svg_beside_the_report_or_where_asked(tmp_path: Path):
    report_path = tmp_path / "bench-x.json"
    report_path.write_text(json.dumps(_report()), encoding="utf-8")

    beside = CliRunner().invoke(bench_chart, [str(report_path)])
    asked = CliRunner().invoke(bench_chart, [str(report_path), "--out", str(tmp_path / "img" / "c.svg")])

    assert beside.exit_code == 0, beside.output
    assert beside.output == f"{tmp_path / 'bench-x.svg'}: 20 series over scales 0.5, 2\n"
    assert asked.exit_code == 0, asked.output
    assert (tmp_path / "img" / "c.svg").read_bytes() == (tmp_path / "bench-x.svg").read_bytes()


def test_chart_command_on_a_file_that_is_not_a_report_names_it(tmp_path: Path):
    not_json, no_scales = tmp_path / "notes.json", tmp_path / "other.json"
    not_json.write_text("scale 1: fast\n", encoding="utf-8")
    no_scales.write_text(json.dumps({"started_at": "2026-11-26"}), encoding="utf-8")

    broken = CliRunner().invoke(bench_chart, [str(not_json)])
    empty = CliRunner().invoke(bench_chart, [str(no_scales)])

    assert broken.exit_code == 1 and f"{not_json}: not a readable benchmark report" in broken.output
    assert empty.exit_code == 1
    assert f"{no_scales}: benchmark report: expected a non-empty 'scales' list" in empty.output
    assert "found ['started_at']" in empty.output
    assert not (tmp_path / "notes.svg").exists() and not (tmp_path / "other.svg").exists()


def charted_report() -> Path:
    """The report docs/benchmark.md says docs/img/bench_curves.svg is drawn from."""
    page = (PROJECT_ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")
    command = re.search(r"lakehouse bench chart (\S+\.json) --out docs/img/bench_curves\.svg", page)
    assert command, "docs/benchmark.md: the command that draws docs/img/bench_curves.svg is not on the page"
    return PROJECT_ROOT / command.group(1)


def test_the_benchmark_page_shows_the_chart_of_the_report_it_names():
    page = (PROJECT_ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")
    assert "](img/bench_curves.svg)" in page
    report = charted_report()

    expected = render_svg(load_report(report))

    assert (PROJECT_ROOT / "docs" / "img" / "bench_curves.svg").read_bytes() == expected, (
        f"docs/img/bench_curves.svg is not the chart of {report.name}: run the command on the page again"
    )
