import datetime as dt
from pathlib import Path

from lakehouse import maintenance
from lakehouse.bronze.ingest import ORDER_LINES, ingest_delimited_files
from lakehouse.lake import read_delta

HEADER = "order_id;line_number;order_date;customer_id;product_id;product_label;site_id;quantity;unit_price;discount_pct"
RUN_AT = dt.datetime(2026, 11, 3, 6, 0)


def _drop(lake, day: str, name: str, lines: list[str]) -> None:
    folder = Path(lake.landing("erp", "order_lines")) / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))


def _ingest(spark, lake, run_date, batch):
    return ingest_delimited_files(
        spark,
        lake,
        source="erp",
        entity="order_lines",
        fmt=ORDER_LINES,
        run_date=run_date,
        batch_id=batch,
        ingested_at=RUN_AT,
    )


def test_new_files_only_exactly_once_with_partitions_and_lineage(spark, lake):
    _drop(
        lake,
        "2026-11-01",
        "order_lines_20261101.csv",
        [
            HEADER,
            "O1;1;01/11/2026;C1;P1;Paracétamol;S01;2;1,50;0",
            "O2;1;01/11/2026;C1;P1;ragged",
        ],
    )
    _drop(
        lake,
        "2026-11-02",
        "order_lines_20261102.csv",
        [
            HEADER + ";sales_channel;promo",
            "O3;1;02/11/2026;C1;P1;X;S01;1;2,00;0;direct;BF",
        ],
    )
    _drop(lake, "2026-11-03", "order_lines_20261103.csv", [HEADER, "O4;1;03/11/2026;C1;P1;X;S01;1;2,00;0"])

    first = _ingest(spark, lake, dt.date(2026, 11, 2), "b1")
    assert (first.rows, first.corrupt_rows, first.rescued_rows, len(first.new_files)) == (3, 1, 1, 2)

    table = read_delta(spark, first.path)
    rows = {r.order_id or r._corrupt_record: r for r in table.collect()}
    assert rows["O1"].product_label == "Paracétamol"  # latin-1 decoded
    assert (rows["O1"].year, rows["O1"].month, rows["O1"].day) == ("2026", "11", "01")
    assert rows["O1"]._source_file == "landing/source=erp/order_lines/2026-11-01/order_lines_20261101.csv"
    assert rows["O1"]._line_number == 2 and rows["O1"]._batch_id == "b1"
    assert rows["O3"].sales_channel == "direct" and rows["O3"]._rescued_data == '{"promo": "BF"}'
    assert rows["O2;1;01/11/2026;C1;P1;ragged"]._line_number == 3

    again = _ingest(spark, lake, dt.date(2026, 11, 2), "b2")
    assert (again.rows, again.skipped_files, again.new_files) == (0, 2, [])
    assert table.count() == 3  # re-run changes nothing

    third = _ingest(spark, lake, dt.date(2026, 11, 3), "b3")
    assert (third.rows, third.new_files[0][-12:]) == (1, "20261103.csv")
    assert read_delta(spark, first.path).count() == 4
    assert maintenance.version(first.path) == 1  # two appends: versions 0 and 1
    assert maintenance.row_count(first.path) == 4


def test_nothing_in_landing_is_not_an_error(spark, lake):
    result = _ingest(spark, lake, dt.date(2026, 11, 2), "b1")
    assert (result.rows, result.new_files, result.skipped_files) == (0, [], 0)


def test_each_file_is_ingested_once_whatever_the_engine_splits(spark, lake):
    """Regression: the embedded engine's binaryFile reader returned one of several
    files twice (at a partition boundary); bronze must still hold each line once."""
    sizes = [1259, 1240, 1253, 716, 233, 1247, 1413, 1278, 1380, 1318]  # uneven, ~0.1 MB each
    for index, size in enumerate(sizes, start=1):
        day = f"2026-11-{index:02d}"
        body = [f"O{index}-{n:05d};1;{day[8:]}/11/2026;C1;P1;{'x' * 50};S01;1;2,00;0" for n in range(size)]
        _drop(lake, day, f"order_lines_202611{index:02d}.csv", [HEADER, *body])
    result = _ingest(spark, lake, dt.date(2026, 11, 30), "b1")
    assert result.rows == sum(sizes)
    per_file = read_delta(spark, result.path).groupBy("_source_file").count().collect()
    assert sorted(r["count"] for r in per_file) == sorted(sizes)
