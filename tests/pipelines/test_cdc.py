"""Conformance of create_auto_cdc_flow semantics: hand-written events, expected targets."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from lakehouse import maintenance
from lakehouse.lake import read_delta
from lakehouse.pipelines.cdc import CdcSpec, apply_changes, build_scd1, build_scd2

EVENTS = "id long, name string, city string, op string, ts long"
SCD1 = CdcSpec(keys=["id"], sequence_by="ts", apply_as_deletes="op = 'DELETE'", except_column_list=["op"])
SCD2 = CdcSpec(
    keys=["id"],
    sequence_by="ts",
    apply_as_deletes="op = 'DELETE'",
    except_column_list=["op"],
    stored_as_scd_type=2,
    track_history_except_column_list=["city"],  # a city change alone updates in place
)
TARGET1 = "id long, name string, city string, ts long"
TARGET2 = f"{TARGET1}, __START_AT long, __END_AT long"


def _events(spark, rows):
    return spark.createDataFrame(rows, EVENTS)


def _equal(spark, actual, rows, ddl):
    assert_df_equality(actual, spark.createDataFrame(rows, ddl), ignore_row_order=True, ignore_nullable=True)


def _upsert(id_, name, city, ts):
    return (id_, name, city, "UPSERT", ts)


def _delete(id_, ts):
    return (id_, None, None, "DELETE", ts)


# --------------------------------------------------------------------------- SCD 1


def test_scd1_latest_sequence_wins_duplicates_once_and_deletes(spark):
    changes = _events(
        spark,
        [
            _upsert(1, "a", "Paris", 1),
            _upsert(1, "b", "Paris", 3),
            _upsert(1, "older", "Paris", 2),  # out of order within the batch
            _upsert(2, "x", "Lyon", 1),
            _delete(2, 5),
            _upsert(3, "c", "Nice", 2),
            _upsert(3, "c", "Nice", 2),  # duplicate
            _upsert(4, "d", "Metz", 3),
            _delete(4, 1),  # older than the state: ignored
        ],
    )
    expected = [(1, "b", "Paris", 3), (3, "c", "Nice", 2), (4, "d", "Metz", 3)]
    _equal(spark, build_scd1(None, changes, SCD1), expected, TARGET1)


def test_scd1_incremental_late_events_tombstones_and_idempotence(spark, lake):
    target = f"{lake.root}/silver/customers"
    first = apply_changes(
        spark,
        target_path=target,
        changes=_events(
            spark,
            [
                _upsert(1, "b", "Paris", 3),
                _upsert(2, "x", "Lyon", 1),
                _delete(2, 5),
                _upsert(3, "c", "Nice", 2),
            ],
        ),
        spec=SCD1,
    )
    assert (first.rows_inserted, first.rows_updated, first.rows_deleted, first.target_version) == (2, 0, 0, 0)

    second_batch = [
        _upsert(1, "late", "Paris", 2),  # older than the applied state: ignored
        _upsert(2, "zombie", "Lyon", 4),  # older than the delete: the tombstone keeps 2 deleted
        _upsert(3, "c", "Toulon", 4),
        _upsert(5, "e", "Caen", 1),
        _delete(1, 9),
    ]
    second = apply_changes(spark, target_path=target, changes=_events(spark, second_batch), spec=SCD1)
    assert (second.rows_upserted, second.rows_inserted, second.rows_updated, second.rows_deleted) == (
        2,
        1,
        1,
        1,
    )
    assert second.target_version == 1 and maintenance.history(target, limit=1)[0]["operation"] == "MERGE"
    _equal(spark, read_delta(spark, target), [(3, "c", "Toulon", 4), (5, "e", "Caen", 1)], TARGET1)

    again = apply_changes(spark, target_path=target, changes=_events(spark, second_batch), spec=SCD1)
    assert (again.rows_upserted, again.rows_deleted, again.target_version) == (0, 0, 1)  # no new commit

    newer = apply_changes(
        spark, target_path=target, changes=_events(spark, [_upsert(2, "back", "Lyon", 6)]), spec=SCD1
    )
    assert newer.rows_inserted == 1  # an upsert newer than the delete does bring the key back
    _equal(
        spark,
        read_delta(spark, target),
        [(2, "back", "Lyon", 6), (3, "c", "Toulon", 4), (5, "e", "Caen", 1)],
        TARGET1,
    )


def test_scd1_sequence_not_written_and_truncate(spark, lake):
    spec = CdcSpec(
        keys=["id"],
        sequence_by="ts",
        apply_as_deletes="op = 'DELETE'",
        apply_as_truncates="op = 'TRUNCATE'",
        except_column_list=["op", "ts", "city"],
    )
    target = f"{lake.root}/silver/t"
    apply_changes(
        spark,
        target_path=target,
        changes=_events(spark, [_upsert(1, "a", "P", 1), _upsert(2, "b", "P", 2)]),
        spec=spec,
    )
    _equal(
        spark, read_delta(spark, target), [(1, "a", 1), (2, "b", 2)], "id long, name string, __sequence long"
    )

    result = apply_changes(
        spark,
        target_path=target,
        changes=_events(
            spark,
            [
                (None, None, None, "TRUNCATE", 5),
                _upsert(3, "c", "P", 6),
                _upsert(1, "before truncate", "P", 4),
            ],
        ),
        spec=spec,
    )
    assert (result.rows_inserted, result.rows_deleted) == (1, 2)
    _equal(spark, read_delta(spark, target), [(3, "c", 6)], "id long, name string, __sequence long")


# --------------------------------------------------------------------------- SCD 2


def test_scd2_versions_identical_values_untracked_in_place_and_delete(spark):
    changes = _events(
        spark,
        [
            _upsert(1, "a", "Paris", 1),
            _upsert(1, "a", "Paris", 2),  # identical tracked values: no new version
            _upsert(1, "a", "Lyon", 3),  # untracked column only: updated in place
            _upsert(1, "b", "Lyon", 4),
            _delete(1, 6),
            _upsert(2, "x", "Nice", 1),
        ],
    )
    expected = [(1, "a", "Lyon", 3, 1, 4), (1, "b", "Lyon", 4, 4, 6), (2, "x", "Nice", 1, 1, None)]
    _equal(spark, build_scd2(None, changes, SCD2), expected, TARGET2)

    only_name = CdcSpec(
        keys=["id"], sequence_by="ts", stored_as_scd_type=2, track_history_column_list=["name"]
    )
    tracked = build_scd2(None, changes.where("op = 'UPSERT'").drop("op"), only_name)
    expected = [(1, "a", "Lyon", 3, 1, 4), (1, "b", "Lyon", 4, 4, None), (2, "x", "Nice", 1, 1, None)]
    _equal(spark, tracked, expected, TARGET2)


def test_scd2_late_deletes_land_in_history(spark):
    current = spark.createDataFrame([(1, "a", "P", 1, 1, 5), (1, "b", "P", 5, 5, None)], TARGET2)
    late = _events(spark, [_delete(1, 3), _delete(1, 0)])  # inside the first version; before all
    expected = [(1, "a", "P", 1, 1, 3), (1, "b", "P", 5, 5, None)]
    _equal(spark, build_scd2(current, late, SCD2), expected, TARGET2)


def test_scd2_incremental_out_of_order_keeps_batch_one_history(spark, lake):
    target = f"{lake.root}/silver/customers_history"
    first = apply_changes(
        spark,
        target_path=target,
        changes=_events(
            spark,
            [
                _upsert(1, "a", "Paris", 1),
                _upsert(1, "b", "Paris", 3),
                _upsert(2, "x", "Lyon", 1),
                _delete(2, 5),
                _upsert(3, "c", "Nice", 2),
            ],
        ),
        spec=SCD2,
    )
    assert (first.versions_opened, first.versions_closed) == (4, 0)
    _equal(
        spark,
        read_delta(spark, target),
        [
            (1, "a", "Paris", 1, 1, 3),
            (1, "b", "Paris", 3, 3, None),
            (2, "x", "Lyon", 1, 1, 5),
            (3, "c", "Nice", 2, 2, None),
        ],
        TARGET2,
    )

    second = apply_changes(
        spark,
        target_path=target,
        changes=_events(
            spark,
            [
                _upsert(1, "z", "Paris", 2),  # late: between a@1 and b@3
                _upsert(1, "a", "Paris", 7),  # opens a new version, closes b
                _upsert(2, "y", "Lyon", 4),  # late: before the delete at 5
                _upsert(3, "c", "Toulon", 4),  # untracked column: in place
            ],
        ),
        spec=SCD2,
    )
    assert (second.versions_opened, second.versions_closed, second.rows_updated, second.rows_deleted) == (
        3,
        1,
        4,
        0,
    )
    assert second.target_version == 1
    _equal(
        spark,
        read_delta(spark, target),
        [
            (1, "a", "Paris", 1, 1, 2),
            (1, "z", "Paris", 2, 2, 3),
            (1, "b", "Paris", 3, 3, 7),
            (1, "a", "Paris", 7, 7, None),
            (2, "x", "Lyon", 1, 1, 4),
            (2, "y", "Lyon", 4, 4, 5),
            (3, "c", "Toulon", 4, 2, None),
        ],
        TARGET2,
    )


# --------------------------------------------------------------------------- atomicity, schema, errors


def test_failed_apply_leaves_the_previous_version(spark, lake):
    target = f"{lake.root}/silver/t"
    apply_changes(spark, target_path=target, changes=_events(spark, [_upsert(1, "a", "P", 1)]), spec=SCD1)
    before = maintenance.version(target)
    batch = _events(spark, [_upsert(1, "b", "P", 2), _upsert(3, "c", "P", 2)])

    bad_predicate = CdcSpec(keys=["id"], sequence_by="ts", apply_as_deletes="no_such_column = 'D'")
    with pytest.raises(ValueError, match="apply_as_deletes=.*no_such_column"):
        apply_changes(spark, target_path=target, changes=batch, spec=bad_predicate)
    failing_row = CdcSpec(
        keys=["id"],
        sequence_by="ts",
        apply_as_deletes="CASE WHEN id = 3 THEN raise_error('boom') ELSE false END",
    )
    with pytest.raises(ValueError, match="boom"):
        apply_changes(spark, target_path=target, changes=batch, spec=failing_row)
    with pytest.raises(ValueError, match="NULL key"):
        apply_changes(
            spark, target_path=target, changes=_events(spark, [_upsert(None, "n", "P", 3)]), spec=SCD1
        )
    with pytest.raises(ValueError, match=r"keys names column\(s\) \['customer_id'\]"):
        apply_changes(
            spark, target_path=target, changes=batch, spec=CdcSpec(keys=["customer_id"], sequence_by="ts")
        )

    assert maintenance.version(target) == before
    _equal(spark, read_delta(spark, target), [(1, "a", "P", 1)], TARGET1)


def test_new_source_column_is_added_in_one_commit(spark, lake):
    target = f"{lake.root}/silver/t"
    apply_changes(
        spark,
        target_path=target,
        changes=_events(spark, [_upsert(1, "a", "P", 1), _upsert(2, "b", "P", 1)]),
        spec=SCD1,
    )
    wider = spark.createDataFrame([(2, "b", "P", "UPSERT", 2, "b@x.fr")], f"{EVENTS}, email string")
    result = apply_changes(spark, target_path=target, changes=wider, spec=SCD1)
    assert (result.rows_updated, result.target_version) == (1, 1)
    _equal(
        spark,
        read_delta(spark, target),
        [(1, "a", "P", 1, None), (2, "b", "P", 2, "b@x.fr")],
        f"{TARGET1}, email string",
    )
