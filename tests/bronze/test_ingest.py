"""The bronze ERP datasets as defined for the medallion pipeline, on hand-made drops."""

import datetime as dt
import json
from pathlib import Path

import pytest

from lakehouse import maintenance
from lakehouse import pipelines as dp
from lakehouse.lake import read_delta

HEADER = "order_id;line_number;order_date;customer_id;product_id;product_label;site_id;quantity;unit_price;discount_pct"
RUN_AT = dt.datetime(2026, 11, 3, 6, 0)


def _drop(lake, day: str, name: str, lines: list[str]) -> None:
    folder = Path(lake.landing("erp", "order_lines")) / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))


@pytest.fixture
def bronze(spark, lake):
    graph = dp.load_graph("pharma", ["lakehouse.bronze.tables"])
    runner = dp.PipelineRunner(spark, graph, lake, parameters={})

    def run(run_id: str) -> dp.PipelineRun:
        return runner.run(refresh=["bronze_order_lines"], include_upstreams=False, run_id=run_id, ingested_at=RUN_AT)

    return runner, run


def test_new_files_only_exactly_once_with_partitions_and_lineage(spark, lake, bronze):
    runner, run = bronze
    _drop(lake, "2026-11-01", "order_lines_20261101.csv", [
        HEADER, "O1;1;01/11/2026;C1;P1;Paracétamol;S01;2;1,50;0", "O2;1;01/11/2026;C1;P1;ragged",
    ])  # fmt: skip
    _drop(lake, "2026-11-02", "order_lines_20261102.csv", [
        HEADER + ";sales_channel;promo", "O3;1;02/11/2026;C1;P1;X;S01;1;2,00;0;direct;BF",
    ])  # fmt: skip
    first = run("r1").event("bronze_order_lines")
    assert (first.rows_read, first.rows_written, first.status) == (3, 3, "COMPLETED")

    table = read_delta(spark, runner.path("bronze_order_lines"))
    rows = {r.order_id or r._corrupt_record: r for r in table.collect()}
    assert rows["O1"].product_label == "Paracétamol"  # latin-1 decoded
    assert (rows["O1"].year, rows["O1"].month, rows["O1"].day) == ("2026", "11", "01")
    assert rows["O1"]._source_file.endswith("landing/source=erp/order_lines/2026-11-01/order_lines_20261101.csv")
    assert rows["O1"]._line_number == 2 and rows["O1"]._ingested_at == RUN_AT
    assert rows["O3"].sales_channel == "direct" and json.loads(rows["O3"]._rescued_data) == {"promo": "BF"}
    assert rows["O2;1;01/11/2026;C1;P1;ragged"]._line_number == 3

    again = run("r2").event("bronze_order_lines")
    assert (again.status, again.rows_written) == ("SKIPPED", 0)
    assert table.count() == 3  # re-run changes nothing

    _drop(lake, "2026-11-03", "order_lines_20261103.csv", [HEADER, "O4;1;03/11/2026;C1;P1;X;S01;1;2,00;0"])
    assert run("r3").event("bronze_order_lines").rows_written == 1
    assert maintenance.row_count(runner.path("bronze_order_lines")) == 4


def test_each_file_is_ingested_once_whatever_the_engine_splits(spark, lake, bronze):
    """Regression: the embedded engine's binaryFile reader returned one of several
    uneven files twice (at a partition boundary); bronze must hold each line once."""
    runner, run = bronze
    sizes = [1259, 1240, 1253, 716, 233, 1247, 1413, 1278, 1380, 1318]  # uneven, ~0.1 MB each
    for index, size in enumerate(sizes, start=1):
        day = f"2026-11-{index:02d}"
        body = [f"O{index}-{n:05d};1;{day[8:]}/11/2026;C1;P1;{'x' * 50};S01;1;2,00;0" for n in range(size)]
        _drop(lake, day, f"order_lines_202611{index:02d}.csv", [HEADER, *body])
    assert run("r1").event("bronze_order_lines").rows_written == sum(sizes)
    per_file = read_delta(spark, runner.path("bronze_order_lines")).groupBy("_source_file").count().collect()
    assert sorted(r["count"] for r in per_file) == sorted(sizes)
