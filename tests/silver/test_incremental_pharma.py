"""Incremental refresh of the silver pharma tables (order lines, stock, deliveries): a
new drop recomputes only the days it touches (the day in the order or delivery id,
the snapshot date), a re-sent version of an older key still supersedes the older
one, bad rows stay in the quarantine, and the tables always equal a full rebuild."""

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse import pipelines as dp
from lakehouse.bronze.sources import (
    DELIVERY_SCHEMA,
    ORDER_LINE_COLUMNS,
    STOCK_SNAPSHOT_COLUMNS,
    dropped_on,
    partition_date,
)
from lakehouse.lake import read_delta, write_delta
from lakehouse.pipelines import incremental
from lakehouse.pipelines.graph import GraphError
from lakehouse.silver.pharma import (
    SILVER_DELIVERY_COLUMNS,
    SILVER_ORDER_LINE_COLUMNS,
    SILVER_STOCK_SNAPSHOT_COLUMNS,
    clean_deliveries,
    clean_order_lines,
    clean_stock_snapshots,
)
from lakehouse.silver.pharma_tables import day_in_id

LINEAGE = (
    "_source_file string, _line_number int, _ingested_at timestamp, year string, month string, day string"
)
BRONZE_SCHEMAS = {
    "bronze_order_lines": ", ".join(f"`{c}` string" for c in ORDER_LINE_COLUMNS) + ", _corrupt_record string",
    "bronze_stock_snapshots": ", ".join(f"`{c}` string" for c in STOCK_SNAPSHOT_COLUMNS)
    + ", _corrupt_record string",
    "bronze_deliveries": DELIVERY_SCHEMA + ", _corrupt_record string, _rescued_data string",
}
TABLES = ("silver_order_lines", "silver_stock_snapshots", "silver_deliveries")
COLUMNS = {
    "silver_order_lines": SILVER_ORDER_LINE_COLUMNS,
    "silver_stock_snapshots": SILVER_STOCK_SNAPSHOT_COLUMNS,
    "silver_deliveries": SILVER_DELIVERY_COLUMNS,
}


def _day(n: int) -> dt.date:
    return dt.date(2026, 11, n)


def _fr(n: int) -> str:
    return f"{n:02d}/11/2026"


def _line(order: str, line: int, day: int, product: str = "P1", quantity: str = "2") -> tuple:
    return (order, str(line), _fr(day), "C1", product, "label", "S1", quantity, "10,50", "0", "web", None)


def _stock(day: int, product: str, quantity: str) -> tuple:
    return (_fr(day), "S1", product, quantity, "5", None)


def _delivery(
    delivery: str | None, promised: int, actual: int | None = None, corrupt: str | None = None
) -> tuple:
    delivered = None if actual is None else 10
    actual_date = None if actual is None else _day(actual)
    order = None if delivery is None else "O" + delivery[2:]
    return (delivery, order, "S1", "C1", _day(promised), actual_date, 10, delivered, "DHL", corrupt, None)


def _drop(spark, runner, dataset: str, drop_day: int, rows: list[tuple]) -> None:
    """One bronze commit: the rows of one file dropped on 2026-11-<drop_day>."""
    file = f"landing/{dataset}/2026-11-{drop_day:02d}/export"
    at = dt.datetime(2026, 11, drop_day, 23, 0)
    lineage = [(*row, file, n, at, "2026", "11", f"{drop_day:02d}") for n, row in enumerate(rows, start=2)]
    frame = spark.createDataFrame(lineage, f"{BRONZE_SCHEMAS[dataset]}, {LINEAGE}")
    write_delta(frame, runner.path(dataset), mode="append", partition_by=("year", "month", "day"))


def _runner(spark, lake, run_date: dt.date):
    graph = dp.load_graph("pharma_test", ["lakehouse.bronze.tables", "lakehouse.silver.pharma_tables"])
    return dp.PipelineRunner(spark, graph, lake, parameters={"run_date": run_date})


def _refresh(spark, lake, run_date: dt.date, **options):
    run = _runner(spark, lake, run_date).run(refresh=list(TABLES), include_upstreams=False, **options)
    assert run.status == "COMPLETED", run.error
    return run


def _days(run, table: str) -> dict:
    return json.loads(run.event(table).details)


def _reasons():
    return F.array_join("_rejection_reasons", ",").alias("reasons")


def _assert_equals_full_rebuild(spark, lake, run_date: dt.date) -> None:
    """Each table and quarantine equal the non-incremental computation."""
    runner = _runner(spark, lake, run_date)

    def bronze(name):
        return read_delta(spark, runner.path(name)).where(partition_date() <= F.lit(run_date))

    products, sites = (read_delta(spark, runner.path(n)) for n in ("silver_products", "silver_sites"))
    expected = {
        "silver_order_lines": clean_order_lines(bronze("bronze_order_lines"), products),
        "silver_stock_snapshots": clean_stock_snapshots(bronze("bronze_stock_snapshots"), products, sites),
        "silver_deliveries": clean_deliveries(bronze("bronze_deliveries"), sites),
    }
    for table, (kept, dropped) in expected.items():
        columns = COLUMNS[table]
        target = read_delta(spark, runner.path(table))
        quarantine = read_delta(spark, runner.quarantine_path(table)).select(*columns, _reasons())
        assert_df_equality(target, kept, ignore_row_order=True, ignore_nullable=True)
        assert_df_equality(
            quarantine, dropped.select(*columns, _reasons()), ignore_row_order=True, ignore_nullable=True
        )
        assert target.count() + quarantine.count() == bronze(f"bronze_{table[7:]}").count(), table


def _history(spark, lake) -> None:
    """Referential, then drops of days 1-3; each day has its orders, stock, deliveries."""
    runner = _runner(spark, lake, _day(3))
    write_delta(
        spark.createDataFrame([("P1",), ("P2",)], "product_id string"), runner.path("silver_products")
    )
    write_delta(spark.createDataFrame([("S1",)], "site_id string"), runner.path("silver_sites"))
    for d in (1, 2, 3):
        order = f"O202611{d:02d}00001"
        lines = [_line(order, 1, d), _line(order, 2, d, "P2")]
        if d == 2:
            lines.append(_line("O2026110200002", 1, 2, quantity="-1"))  # quarantined
            lines.append(_line("", 1, 2))  # no order id: the day no key gives
        _drop(spark, runner, "bronze_order_lines", d, lines)
        _drop(
            spark,
            runner,
            "bronze_stock_snapshots",
            d,
            [_stock(d, "P1", "7"), _stock(d, "P2", "-1" if d == 2 else "3")],
        )
        deliveries = [_delivery(f"DL202611{d:02d}00001", d + 2)]
        if d == 2:
            deliveries.append(_delivery(None, 2, corrupt='{"delivery_id": '))  # malformed line
        _drop(spark, runner, "bronze_deliveries", d, deliveries)


def test_a_new_day_recomputes_only_the_days_it_touches_and_equals_a_full_rebuild(spark, lake):
    _history(spark, lake)
    first = _refresh(spark, lake, _day(3))
    assert {t: _days(first, t)["mode"] for t in TABLES} == dict.fromkeys(TABLES, "full")
    _assert_equals_full_rebuild(spark, lake, _day(3))
    assert _runner(spark, lake, _day(3)).incremental_plan("silver_order_lines").partitions == []

    runner = _runner(spark, lake, _day(4))
    _drop(
        spark,
        runner,
        "bronze_order_lines",
        4,
        [
            _line("O2026110400001", 1, 4),
            _line("O2026110200001", 1, 2, quantity="9"),  # day 2's line re-sent, corrected: it wins
            _line("O2026110400002", 1, 4, product="P404"),  # unknown product: quarantined
        ],
    )
    _drop(spark, runner, "bronze_stock_snapshots", 4, [_stock(4, "P1", "6"), _stock(2, "P2", "4")])
    _drop(
        spark,
        runner,
        "bronze_deliveries",
        4,
        [
            _delivery("DL2026110400001", 6),
            _delivery("DL2026110100001", 3, actual=4),
            _delivery(None, 4, corrupt="{"),
        ],
    )
    _drop(spark, runner, "bronze_order_lines", 5, [_line("O2026110300001", 3, 3)])  # after the run date

    run = _refresh(spark, lake, _day(4))
    assert _days(run, "silver_order_lines") == {
        "mode": "days",
        "days": ["2026-11-02", "2026-11-04"],
        "reason": "source days changed",
    }
    assert _days(run, "silver_stock_snapshots")["days"] == ["2026-11-02", "2026-11-04"]
    assert _days(run, "silver_deliveries")["days"] == ["1970-01-01", "2026-11-01", "2026-11-04"]
    assert run.event("silver_order_lines").rows_read == 6  # day 2 (4 lines) and day 4 (2 lines), not 1 or 3
    _assert_equals_full_rebuild(spark, lake, _day(4))

    lines = read_delta(spark, runner.path("silver_order_lines"))
    corrected = lines.where("order_id = 'O2026110200001' AND line_number = 1").collect()
    assert [(r.quantity, r._source_file.split("/")[-2]) for r in corrected] == [(9, "2026-11-04")]
    quarantine = read_delta(spark, runner.quarantine_path("silver_order_lines"))
    superseded = quarantine.where("order_id = 'O2026110200001'").select(_reasons(), "quantity").collect()
    assert [(r.reasons, r.quantity) for r in superseded] == [("latest_version_of_line", 2)]
    delivered = read_delta(spark, runner.path("silver_deliveries")).where("delivery_id = 'DL2026110100001'")
    assert [(r.is_delivered, r.is_on_time) for r in delivered.collect()] == [(True, False)]

    # the run date moves on: the line dropped on day 5 (for day 3's order) enters the window
    assert _runner(spark, lake, _day(5)).incremental_plan("silver_order_lines").partitions == ["2026-11-03"]
    later = _refresh(spark, lake, _day(5))
    assert _days(later, "silver_order_lines")["days"] == ["2026-11-03"]
    assert _days(later, "silver_stock_snapshots")["mode"] == "unchanged"
    _assert_equals_full_rebuild(spark, lake, _day(5))

    full = _refresh(spark, lake, _day(5), full_refresh=list(TABLES))
    assert {t: _days(full, t)["mode"] for t in TABLES} == dict.fromkeys(TABLES, "full")
    _assert_equals_full_rebuild(spark, lake, _day(5))


@pytest.mark.parametrize(
    ("order_id", "day"),
    [
        ("O2026110200001", dt.date(2026, 11, 2)),
        ("  DL2026113000017 ", dt.date(2026, 11, 30)),
        ("O2026023100001", dt.date(1970, 1, 1)),  # no such date
        ("", dt.date(1970, 1, 1)),
        (None, dt.date(1970, 1, 1)),
        ("ORDER-7", dt.date(1970, 1, 1)),
    ],
)
def test_the_day_in_an_id_is_the_date_it_starts_with_or_one_day_for_the_others(spark, order_id, day):
    frame = spark.createDataFrame([(order_id,)], "order_id string")
    assert frame.select(F.expr(day_in_id("order_id")).alias("day")).first()["day"] == day


def test_day_fingerprints_follow_the_files_appended_to_bronze(spark, lake, monkeypatch):
    """The bronze sources are only appended to and say when a row arrived (its drop
    day): a run fingerprints the rows of the files appended since the last refresh,
    none when nothing is new; a later run date only counts more arrival days; a
    rewritten bronze table is fingerprinted whole again."""
    _history(spark, lake)
    _refresh(spark, lake, _day(3))
    reads = []
    real = incremental._by_arrival

    def counted(spec, rows):
        reads.append((spec.source, rows.count()))
        return real(spec, rows)

    monkeypatch.setattr(incremental, "_by_arrival", counted)
    again = _refresh(spark, lake, _day(3))
    assert {t: _days(again, t)["mode"] for t in TABLES} == dict.fromkeys(TABLES, "unchanged")
    assert reads == []

    runner = _runner(spark, lake, _day(3))
    _drop(spark, runner, "bronze_deliveries", 3, [_delivery("DL2026110300002", 5)])
    _drop(
        spark, runner, "bronze_order_lines", 5, [_line("O2026110100001", 1, 1, quantity="9")]
    )  # dropped later
    after_commit = _refresh(spark, lake, _day(3))
    assert sorted(reads) == [("bronze_deliveries", 1), ("bronze_order_lines", 1)]  # the new rows only
    assert _days(after_commit, "silver_deliveries")["days"] == ["2026-11-03"]
    assert _days(after_commit, "silver_order_lines")["mode"] == "unchanged"  # its drop day is after 3
    _assert_equals_full_rebuild(spark, lake, _day(3))

    reads.clear()
    day5 = _refresh(spark, lake, _day(5))  # the line dropped on day 5 now counts: read before
    assert reads == []
    assert _days(day5, "silver_order_lines")["days"] == ["2026-11-01"]
    assert _days(day5, "silver_deliveries")["mode"] == "unchanged"
    _assert_equals_full_rebuild(spark, lake, _day(5))

    bronze = _runner(spark, lake, _day(5)).path("bronze_deliveries")
    kept = read_delta(spark, bronze).where(~F.col("delivery_id").eqNullSafe("DL2026110300002"))
    write_delta(kept, bronze, mode="overwrite")
    rewritten = _refresh(spark, lake, _day(5))
    assert reads == [("bronze_deliveries", 4)]  # whole: the files read before are gone
    assert _days(rewritten, "silver_deliveries")["days"] == ["2026-11-03"]
    _assert_equals_full_rebuild(spark, lake, _day(5))

    reads.clear()  # dropped and created again: its version is below the one recorded
    table = read_delta(spark, bronze)
    rows, schema = table.where(~F.col("delivery_id").eqNullSafe("DL2026110100001")).collect(), table.schema
    shutil.rmtree(bronze)
    write_delta(spark.createDataFrame(rows, schema), bronze, partition_by=("year", "month", "day"))
    recreated = _refresh(spark, lake, _day(5))
    assert reads == [("bronze_deliveries", 3)]
    assert _days(recreated, "silver_deliveries")["days"] == ["2026-11-01"]
    _assert_equals_full_rebuild(spark, lake, _day(5))


def _move_drops(table: str, days: tuple[int, ...], to: Path) -> None:
    """Move the files of some drop days of a bronze table out of it (the Delta log still
    lists them: a query that opens one fails)."""
    for day in days:
        shutil.move(Path(table) / "year=2026" / "month=11" / f"day={day:02d}", to / f"day={day:02d}")


def test_a_late_line_is_read_from_the_drops_holding_its_day_only(spark, lake, tmp_path):
    """A re-sent line of day 2 recomputes day 2 from the drops holding rows of day 2
    (the recorded arrival fingerprints): the files of the other drops are not opened
    (moved away, the refresh still runs) and the result equals a full rebuild."""
    _history(spark, lake)
    _refresh(spark, lake, _day(3))
    runner = _runner(spark, lake, _day(4))
    _drop(spark, runner, "bronze_order_lines", 4, [_line("O2026110200001", 1, 2, quantity="9")])
    bronze, away = runner.path("bronze_order_lines"), tmp_path / "away"
    away.mkdir()
    _move_drops(bronze, (1, 3), away)

    run = _refresh(spark, lake, _day(4))
    assert _days(run, "silver_order_lines")["days"] == ["2026-11-02"]
    assert run.event("silver_order_lines").rows_read == 4  # day 2's three lines and the re-sent one
    for moved in away.iterdir():
        shutil.move(moved, Path(bronze) / "year=2026" / "month=11" / moved.name)
    _assert_equals_full_rebuild(spark, lake, _day(4))


def test_rows_dropped_on_some_days_are_selected_by_partition_columns(spark, lake, tmp_path):
    rows = [
        ("a", "2026", "10", "31"),
        ("b", "2026", "11", "01"),
        ("c", "2026", "11", "02"),
        ("d", "2026", "12", "01"),
    ]
    path = f"{lake.root}/drops"
    write_delta(
        spark.createDataFrame(rows, "id string, year string, month string, day string"),
        path,
        partition_by=("year", "month", "day"),
    )
    assert dropped_on(["2026-11-02", "2026-10-31", "2026-11-02"]) == (
        "(`year` = '2026' AND `month` = '10' AND `day` IN ('31')) "
        "OR (`year` = '2026' AND `month` = '11' AND `day` IN ('02'))"
    )
    shutil.move(Path(path) / "year=2026" / "month=11" / "day=01", tmp_path / "day=01")  # never opened
    selected = read_delta(spark, path).where(F.expr(dropped_on(["2026-10-31", "2026-11-02", "2026-12-01"])))
    assert sorted(r["id"] for r in selected.collect()) == ["a", "c", "d"]


def test_arrival_day_needs_a_stored_source(spark, lake):
    with dp.graph("arrivals") as graph:

        @dp.temporary_view
        def drops():
            return spark.createDataFrame([(dt.date(2026, 11, 1),)], "day date")

        @dp.materialized_view(incremental=dp.by_day(source="drops", source_day="day", arrival_day="day"))
        def per_day(drops):
            return drops

    with pytest.raises(GraphError) as raised:
        dp.PipelineRunner(spark, graph, lake, parameters={"run_date": _day(1)})
    assert "'per_day': incremental= arrival_day needs a stored source table" in str(raised.value)
    assert "'drops' is a temporary view" in str(raised.value)
