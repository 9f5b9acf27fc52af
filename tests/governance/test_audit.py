"""The audit trail: hash chain, redaction, concurrency and tamper detection on real
Delta tables (delta-rs)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lakehouse.governance import audit

T0 = dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.UTC)


def _events(n: int) -> list[dict]:
    return [
        {"actor": "alice", "action": "api.read", "target": f"gold.t{i}", "at": T0 + dt.timedelta(seconds=i)}
        for i in range(1, n + 1)
    ]


def test_first_entry_hash_is_sha256_of_its_canonical_json(lake):
    audit.record_event(lake, actor="alice", action="job.run", target="job:daily", details={"b": 2, "a": 1}, at=T0)

    (row,) = audit.read_log(lake).to_pylist()
    # Written out by hand: sorted keys, no spaces, event_time in ISO form, genesis prev_hash.
    expected_json = (
        '{"action":"job.run","actor":"alice","details":"{\\"a\\":1,\\"b\\":2}",'
        '"event_time":"2026-11-26T08:30:00+00:00","prev_hash":"' + "0" * 64 + '",'
        '"seq":1,"target":"job:daily"}'
    )
    assert row["seq"] == 1
    assert row["details"] == '{"a":1,"b":2}'
    assert row["prev_hash"] == "0" * 64
    assert row["hash"] == hashlib.sha256(expected_json.encode()).hexdigest()


def test_entries_are_chained_in_order_across_calls(lake):
    audit.record_events(lake, _events(2))
    audit.record_event(lake, actor="bob", action="gdpr.erase", target="customer:C0001")

    rows = audit.read_log(lake).to_pylist()
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert [r["actor"] for r in rows] == ["alice", "alice", "bob"]
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert rows[2]["prev_hash"] == rows[1]["hash"]
    report = audit.verify(lake)
    assert report.ok and report.entries == 3 and report.first_bad_seq is None


def test_secret_values_are_redacted_before_hashing(lake):
    audit.record_event(
        lake,
        actor="ops",
        action="config.change",
        target="postgres",
        details={"host": "db", "password": "hunter2", "nested": {"api_token": "tok-123"}, "items": [{"secret": "s"}]},
    )
    details = json.loads(audit.read_log(lake)["details"][0].as_py())
    assert details == {"host": "db", "password": "***", "nested": {"api_token": "***"}, "items": [{"secret": "***"}]}


@pytest.mark.parametrize(
    "event, message",
    [
        ({"actor": "", "action": "a", "target": "t"}, "'actor' must be a non-empty string"),
        ({"actor": "a", "action": "a"}, "needs actor, action and target"),
        ({"actor": "a", "action": "a", "target": "t", "who": "x"}, "unknown fields ['who']"),
        ({"actor": "a", "action": "a", "target": "t", "details": ["x"]}, "details must be a dict"),
    ],
)
def test_bad_events_are_rejected_and_nothing_is_written(lake, event, message):
    with pytest.raises(audit.AuditError, match=message.replace("[", r"\[").replace("]", r"\]")):
        audit.record_events(lake, [event])
    assert audit.read_log(lake).num_rows == 0


def test_concurrent_writers_get_a_gap_free_chain(lake):
    # 4 threads x 5 events: the lock must give seq 1..20 with an intact chain.
    def write(worker: int) -> None:
        for i in range(5):
            audit.record_event(lake, actor=f"w{worker}", action="api.read", target=f"t{i}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    rows = audit.read_log(lake).to_pylist()
    assert [r["seq"] for r in rows] == list(range(1, 21))
    assert audit.verify(lake).ok


def _rewrite(lake, rows: list[dict]) -> None:
    """Tamper as an attacker with write access would: overwrite the table's files."""
    write_deltalake(audit.audit_path(lake), pa.Table.from_pylist(rows, schema=audit.SCHEMA), mode="overwrite")


def test_verify_names_a_changed_row(lake):
    audit.record_events(lake, _events(4))
    rows = audit.read_log(lake).to_pylist()
    rows[2]["target"] = "gold.innocent"  # seq 3 changed, its hash left as it was
    _rewrite(lake, rows)

    report = audit.verify(lake)
    assert report.first_bad_seq == 3
    assert "seq 3: hash does not match" in report.problems[0]
    assert any("OVERWRITE" in p.upper() for p in report.problems[1:])  # history shows the rewrite


def test_verify_names_a_deleted_row(lake):
    audit.record_events(lake, _events(4))
    rows = audit.read_log(lake).to_pylist()
    del rows[1]  # seq 2 removed: seq 3 now sits where seq 2 should be
    _rewrite(lake, rows)

    report = audit.verify(lake)
    assert report.first_bad_seq == 3
    assert "seq 2 is missing" in report.problems[0]


def test_verify_names_reordered_rows_even_with_renumbered_seqs(lake):
    audit.record_events(lake, _events(4))
    rows = audit.read_log(lake).to_pylist()
    rows[1], rows[2] = rows[2], rows[1]
    rows[1]["seq"], rows[2]["seq"] = 2, 3  # renumbered to hide the swap
    _rewrite(lake, rows)

    report = audit.verify(lake)
    assert report.first_bad_seq == 2
    assert "prev_hash does not match" in report.problems[0]


def test_verify_flags_a_delete_of_the_last_rows_from_history(lake):
    audit.record_events(lake, _events(3))
    DeltaTable(audit.audit_path(lake)).delete("seq = 3")  # the chain of 1..2 is still intact

    report = audit.verify(lake)
    assert report.entries == 2
    assert report.first_bad_seq is None
    assert not report.ok
    assert "DELETE" in report.problems[0]


def test_verify_of_a_missing_log_is_empty_and_ok(lake):
    report = audit.verify(lake)
    assert report.ok and report.entries == 0


def test_a_writer_with_a_stale_tail_cache_reads_the_table_again(lake):
    # Process A caches its tail; process B (own cache) appends; A must not reuse seq 2.
    audit.record_event(lake, actor="A", action="api.read", target="t1")
    path = audit.audit_path(lake)
    stale = audit._tails[path]
    audit._tails.pop(path)
    audit.record_event(lake, actor="B", action="api.read", target="t2")
    audit._tails[path] = stale

    audit.record_event(lake, actor="A", action="api.read", target="t3")

    assert [r["seq"] for r in audit.read_log(lake).to_pylist()] == [1, 2, 3]
    assert audit.verify(lake).ok


def test_compaction_keeps_the_chain_and_is_not_tampering(lake):
    for event in _events(5):
        audit.record_events(lake, [event])  # 5 commits, 5 small files
    path = audit.audit_path(lake)

    metrics = audit.compact(lake)
    audit.record_event(lake, actor="carol", action="api.read", target="after")

    assert (metrics["numFilesRemoved"], metrics["numFilesAdded"]) == (5, 1)
    assert len(DeltaTable(path).file_uris()) == 2  # the compacted file + the new append
    report = audit.verify(lake)
    assert report.ok and report.entries == 6
