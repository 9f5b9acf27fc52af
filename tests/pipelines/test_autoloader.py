"""Conformance of the Auto Loader equivalent: hand-written files, expected rows."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from chispa import assert_df_equality

from lakehouse import maintenance
from lakehouse.lake import read_delta
from lakehouse.pipelines.autoloader import (
    CheckpointError,
    FileSource,
    TextFormat,
    commit_batch,
    delta_has_batch,
    discover_columns,
    load_checkpoint,
    merge_schema,
    parse_file,
    read_new_files,
    recover,
)

AT = dt.datetime(2026, 11, 3, 6, 0)
META = "_rescued_data string, _corrupt_record string, _source_file string, _line_number int"


def _write(folder: Path, name: str, content: str | bytes, *, mtime: int | None = None) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))
    return str(path)


def _append(batch, target: str) -> None:
    batch.df.write.format("delta").mode("append").option("mergeSchema", "true").save(target)


def _rows(df, *columns: str) -> list[tuple]:
    return sorted(tuple(row[c] for c in columns) for row in df.collect())


# --------------------------------------------------------------------------- parsing (pure)


def test_csv_parser_keeps_ragged_rows_raw_and_rescues_unknown_columns():
    fmt = TextFormat("csv", encoding="latin-1", delimiter=";")
    content = 'id;label;extra\r\n1;Paracétamol;x\r\n2;"two\nlines";y\r\n\r\n3;ragged\r\n4;é;z;too many\r\n'
    frame = parse_file(content.encode("latin-1"), "f.csv", fmt, ["id", "label"]).to_pandas()
    assert frame[["id", "label", "_rescued_data", "_corrupt_record", "_line_number"]].values.tolist() == [
        ["1", "Paracétamol", '{"extra":"x"}', None, 2],
        ["2", "two\nlines", '{"extra":"y"}', None, 3],  # a quoted field spans two lines
        [None, None, None, "3;ragged", 6],
        [None, None, None, "4;é;z;too many", 7],
    ]
    assert frame["_source_file"].unique().tolist() == ["f.csv"]


def test_csv_undecodable_bytes_make_the_record_corrupt_not_the_file():
    frame = parse_file(b"id,name\n1,ok\n2,caf\xe9\n", "f.csv", TextFormat("csv"), ["id", "name"]).to_pandas()
    assert frame[["id", "name", "_corrupt_record"]].values.tolist() == [
        ["1", "ok", None],
        [None, None, "2,caf\\xe9"],
    ]


def test_json_lines_parser_keeps_bad_lines_raw_and_nested_values_as_json_text():
    content = b'{"id": 1, "tags": ["a"], "ok": true}\n{truncated\n\n[1, 2]\n{"id": 2, "new": {"x": 1}}\n'
    frame = parse_file(content, "f.json", TextFormat("json"), ["id", "tags", "ok"]).to_pandas()
    assert frame[
        ["id", "tags", "ok", "_rescued_data", "_corrupt_record", "_line_number"]
    ].values.tolist() == [
        ["1", '["a"]', "true", None, None, 1],
        [None, None, None, None, "{truncated", 2],
        [None, None, None, None, "[1, 2]", 4],  # valid JSON, but not an object
        ["2", None, None, '{"new":{"x":1}}', None, 5],
    ]


def test_multiline_json_array_and_single_document():
    fmt = TextFormat("json", multiline=True)
    array = b'[\n  {"id": 1},\n  {"id": 2,\n   "v": "x"}\n]\n'
    assert parse_file(array, "a.json", fmt, ["id", "v"]).to_pandas()[
        ["id", "v", "_line_number"]
    ].values.tolist() == [
        ["1", None, 2],
        ["2", "x", 3],
    ]
    broken = parse_file(b'{"id": 1,\n "v": ', "b.json", fmt, ["id"]).to_pandas()
    assert broken[["id", "_corrupt_record", "_line_number"]].values.tolist() == [
        [None, '{"id": 1,\n "v":', 1]
    ]


def test_schema_inference_rules_and_hints():
    content = b'{"a": 1, "b": 1, "c": true, "d": "x", "e": null, "f": {"n": 1}}\n{"a": 2, "b": 2.5, "c": 1}\n'
    found = discover_columns(content, TextFormat("json"))
    assert found == [
        ("a", "bigint"),
        ("b", "double"),
        ("c", "string"),
        ("d", "string"),
        ("e", "null"),
        ("f", "string"),
    ]
    schema, added = merge_schema([("a", "bigint")], found, [("d", "date"), ("h", "int")])
    assert schema == [
        ("a", "bigint"),
        ("b", "double"),
        ("c", "string"),
        ("d", "date"),  # the hint wins
        ("e", "string"),  # only NULLs seen
        ("f", "string"),
        ("h", "int"),  # hinted, absent from the files: still a column
    ]
    assert added == ["b", "c", "d", "e", "f", "h"]
    assert discover_columns(b"x;y\n1;2\n", TextFormat("csv", delimiter=";")) == [
        ("x", "string"),
        ("y", "string"),
    ]


def test_invalid_options_are_rejected_naming_the_option():
    with pytest.raises(ValueError, match=r"inferschema.*not supported for format 'csv'"):
        FileSource(path="/x", format="csv", options={"inferSchema": "true"})
    with pytest.raises(ValueError, match="either schema"):
        FileSource(path="/x", format="json", schema="a int", schema_hints="a int")


# --------------------------------------------------------------------------- batches (Spark)


def test_csv_batch_rows_types_rescued_and_metadata(spark, tmp_path):
    landing = tmp_path / "landing"
    first = _write(
        landing,
        "2026-11-01/orders.csv",
        "id;label;qty\n1;Paracétamol;5\n2;short\n3;Ibuprofène;abc\n".encode("latin-1"),
    )
    _write(landing, "2026-11-01/notes.txt", "not a csv")
    _write(landing, "_archive/old.csv", "id;label;qty\n9;old;1\n")
    source = FileSource(
        path=str(landing),
        format="csv",
        options={"sep": ";", "encoding": "latin-1", "pathGlobFilter": "*.csv"},
        schema_hints="qty int",
    )
    batch = read_new_files(spark, source, checkpoint=str(tmp_path / "cp"), ingested_at=AT)

    assert (batch.batch_id, batch.files, batch.schema_changes) == (0, [first], [])
    expected = spark.createDataFrame(
        [
            ("1", "Paracétamol", 5, None, None, first, 2, AT, 0),
            (None, None, None, None, "2;short", first, 3, AT, 0),
            ("3", "Ibuprofène", None, '{"qty":"abc"}', None, first, 4, AT, 0),
        ],
        f"id string, label string, qty int, {META}, _ingested_at timestamp, _batch_id bigint",
    )
    assert_df_equality(batch.df, expected, ignore_row_order=True, ignore_nullable=True)


def test_only_new_files_are_read_and_a_rewritten_file_is_read_again(spark, tmp_path):
    landing, checkpoint = tmp_path / "landing", str(tmp_path / "cp")
    source = FileSource(path=str(landing), format="csv")
    a = _write(landing, "a.csv", "id\n1\n", mtime=1_000_000_000)
    first = read_new_files(spark, source, checkpoint=checkpoint, ingested_at=AT)
    assert (first.batch_id, first.files, _rows(first.df, "id")) == (0, [a], [("1",)])
    commit_batch(checkpoint, first)

    b = _write(landing, "day2/b.csv", "id\n2\n", mtime=2_000_000_000)
    second = read_new_files(spark, source, checkpoint=checkpoint, ingested_at=AT)
    assert (second.batch_id, second.files, _rows(second.df, "id")) == (1, [b], [("2",)])
    commit_batch(checkpoint, second)

    nothing = read_new_files(spark, source, checkpoint=checkpoint)
    assert nothing.is_empty and nothing.df.count() == 0 and "id" in nothing.df.columns
    commit_batch(checkpoint, nothing)  # a no-op

    _write(landing, "a.csv", "id\n1\n10\n", mtime=3_000_000_000)  # rewritten in place
    # Default (as Auto Loader): a path already read is not read again, even if changed.
    assert read_new_files(spark, source, checkpoint=checkpoint).is_empty
    overwrites = FileSource(path=str(landing), format="csv", options={"allowOverwrites": "true"})
    third = read_new_files(spark, overwrites, checkpoint=checkpoint)
    assert (third.batch_id, third.files, third.rewritten_files) == (2, [a], [a])
    assert _rows(third.df, "id") == [("1",), ("10",)]


def test_max_files_takes_the_oldest_files_first(spark, tmp_path):
    landing, checkpoint = tmp_path / "landing", str(tmp_path / "cp")
    source = FileSource(path=str(landing), format="text")
    late = _write(landing, "a.txt", "late\n", mtime=3_000_000_000)
    early = _write(landing, "b.txt", "early\n", mtime=1_000_000_000)
    first = read_new_files(spark, source, checkpoint=checkpoint, max_files=1)
    assert first.files == [early] and _rows(first.df, "value", "_line_number") == [("early", 1)]
    commit_batch(checkpoint, first)
    assert read_new_files(spark, source, checkpoint=checkpoint, max_files=1).files == [late]


def test_new_column_is_added_to_the_schema_and_never_lost(spark, tmp_path):
    landing, checkpoint, target = tmp_path / "landing", str(tmp_path / "cp"), str(tmp_path / "bronze")
    source = FileSource(path=str(landing), format="json")
    _write(landing, "1.json", '{"id": 1, "qty": 2}\n')
    first = read_new_files(spark, source, checkpoint=checkpoint, ingested_at=AT)
    assert first.schema == [("id", "bigint"), ("qty", "bigint")]
    _append(first, target)
    commit_batch(checkpoint, first)

    _write(landing, "2.json", '{"id": 2, "qty": "many", "channel": "web"}\n')
    second = read_new_files(spark, source, checkpoint=checkpoint, ingested_at=AT)
    assert second.schema_changes == ["channel"]
    assert second.schema == [("id", "bigint"), ("qty", "bigint"), ("channel", "string")]
    _append(second, target)
    commit_batch(checkpoint, second)

    rows = _rows(read_delta(spark, target), "id", "qty", "channel", "_rescued_data", "_batch_id")
    assert rows == [(1, 2, None, None, 0), (2, None, "web", '{"qty":"many"}', 1)]
    assert load_checkpoint(checkpoint).schema == second.schema  # persisted


def test_explicit_schema_rescues_unknown_and_mistyped_values(spark, tmp_path):
    landing = tmp_path / "landing"
    path = _write(
        landing, "events.json", '{"id": 1, "at": "2026-11-01 10:00:00", "x": 1}\n{"id": "abc"}\n{oops\n'
    )
    source = FileSource(
        path=str(landing),
        format="json",
        schema="id bigint, at timestamp",
        rescued_data_column="_rescued",
        corrupt_record_column="_bad",
    )
    batch = read_new_files(spark, source, checkpoint=str(tmp_path / "cp"))
    rows = [
        tuple(r)
        for r in batch.df.select("id", "at", "_rescued", "_bad", "_line_number", "_source_file").collect()
    ]
    assert len(rows) == 3 and {r[5] for r in rows} == {path}
    by_line = {r[4]: r for r in rows}
    assert by_line[1][:4] == (1, dt.datetime(2026, 11, 1, 10), '{"x":1}', None)
    assert by_line[2][:4] == (None, None, '{"id":"abc"}', None)
    assert by_line[3][:4] == (None, None, None, "{oops")


def test_multiline_json_files_and_parquet_files(spark, tmp_path):
    landing = tmp_path / "landing"
    doc = _write(landing, "json/doc.json", '{\n "id": 1,\n "v": 1.5\n}\n')
    array = _write(landing, "json/array.json", '[{"id": 2}, {"id": 3, "v": 2}]')
    source = FileSource(path=str(landing / "json"), format="json", options={"multiline": "true"})
    batch = read_new_files(spark, source, checkpoint=str(tmp_path / "cp_json"))
    assert batch.schema == [("id", "bigint"), ("v", "double")]
    assert _rows(batch.df, "id", "v", "_source_file") == [(1, 1.5, doc), (2, None, array), (3, 2.0, array)]

    spark.createDataFrame([(1, "a")], "id int, name string").write.parquet(str(landing / "pq/one"))
    spark.createDataFrame([(2, "b", 7.5)], "id int, name string, score double").write.parquet(
        str(landing / "pq/two")
    )
    source = FileSource(path=str(landing / "pq"), format="parquet")
    batch = read_new_files(spark, source, checkpoint=str(tmp_path / "cp_pq"))
    assert batch.schema == [("id", "int"), ("name", "string"), ("score", "double")]
    rows = _rows(batch.df, "id", "name", "score", "_line_number")
    assert rows == [(1, "a", None, None), (2, "b", 7.5, None)]
    assert {r["_source_file"].rsplit("/", 2)[-2] for r in batch.df.collect()} == {"one", "two"}


# --------------------------------------------------------------------------- exactly once


def _landing_with_two_days(tmp_path: Path) -> tuple[FileSource, str, str]:
    landing = tmp_path / "landing"
    _write(landing, "d1.csv", "id,v\n1,a\n2,b\n", mtime=1_000_000_000)
    return FileSource(path=str(landing), format="csv"), str(tmp_path / "cp"), str(tmp_path / "bronze")


def test_crash_after_writing_before_commit_neither_duplicates_nor_loses(spark, tmp_path):
    source, checkpoint, target = _landing_with_two_days(tmp_path)
    first = read_new_files(spark, source, checkpoint=checkpoint, ingested_at=AT)
    _append(first, target)  # ... and the run dies before commit_batch

    _write(tmp_path / "landing", "d2.csv", "id,v\n3,c\n", mtime=2_000_000_000)
    with pytest.raises(CheckpointError, match="batch 0 .* never committed"):
        read_new_files(spark, source, checkpoint=checkpoint)
    second = read_new_files(
        spark, source, checkpoint=checkpoint, target_has_batch=delta_has_batch(spark, target)
    )
    assert (second.batch_id, second.replayed, [Path(f).name for f in second.files]) == (1, False, ["d2.csv"])
    _append(second, target)
    commit_batch(checkpoint, second)

    assert _rows(read_delta(spark, target), "id", "_batch_id") == [("1", 0), ("2", 0), ("3", 1)]
    assert sorted(load_checkpoint(checkpoint).committed) == [0, 1]


def test_crash_before_writing_replays_the_same_batch(spark, tmp_path):
    source, checkpoint, target = _landing_with_two_days(tmp_path)
    first = read_new_files(spark, source, checkpoint=checkpoint, ingested_at=AT)  # dies before writing
    _write(tmp_path / "landing", "d2.csv", "id,v\n3,c\n", mtime=2_000_000_000)

    assert recover(checkpoint, target_has_batch=delta_has_batch(spark, target)) is not None
    replay = read_new_files(spark, source, checkpoint=checkpoint, ingested_at=dt.datetime(2030, 1, 1))
    assert (replay.batch_id, replay.replayed, replay.files) == (0, True, first.files)
    assert {r["_ingested_at"] for r in replay.df.collect()} == {AT}  # the batch as first recorded
    _append(replay, target)
    commit_batch(checkpoint, replay)

    following = read_new_files(
        spark, source, checkpoint=checkpoint, target_has_batch=delta_has_batch(spark, target)
    )
    _append(following, target)
    commit_batch(checkpoint, following)
    assert _rows(read_delta(spark, target), "id", "_batch_id") == [("1", 0), ("2", 0), ("3", 1)]
    assert maintenance.version(target) == 1  # two appends, nothing else


def test_checkpoint_files_are_plain_json_and_bound_to_their_source(spark, tmp_path):
    source, checkpoint, _ = _landing_with_two_days(tmp_path)
    batch = read_new_files(spark, source, checkpoint=checkpoint, ingested_at=AT)
    commit_batch(checkpoint, batch)
    offsets = json.loads((tmp_path / "cp" / "offsets" / "0.json").read_text())
    assert [f["path"] for f in offsets["files"]] == batch.files and offsets["schema"] == [
        ["id", "string"],
        ["v", "string"],
    ]
    assert (tmp_path / "cp" / "commits" / "0.json").exists()
    assert not [p for p in (tmp_path / "cp").rglob("*.tmp")]
    other = FileSource(path=str(tmp_path / "elsewhere"), format="csv")
    with pytest.raises(CheckpointError, match="belongs to source"):
        read_new_files(spark, other, checkpoint=checkpoint)


def test_headerless_csv_maps_fields_by_position():
    fmt = TextFormat("csv", header=False)
    frame = parse_file(b"1,a\n2\n", "f.csv", fmt, ["id", "name"]).to_pandas()
    assert frame[["id", "name", "_corrupt_record"]].values.tolist() == [["1", "a", None], [None, None, "2"]]
    assert discover_columns(b"1,a,x\n", fmt) == [("_c0", "string"), ("_c1", "string"), ("_c2", "string")]
