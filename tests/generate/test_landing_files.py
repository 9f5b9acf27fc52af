"""Landing files and ground truth of a small run, read back the way a consumer would."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from lakehouse.generate import GenerationParams, generate_all
from lakehouse.generate.formats import is_valid_ean13
from lakehouse.generate.referential import build_referential, price_matrix

from .conftest import RUN_DATE, SMALL, Run, make_settings
from .helpers import csv_rows, drop_date, entity_files, jsonl_lines, lake_files, parse_fr_date, relative

BASE_HEADER = [
    "order_id", "line_number", "order_date", "customer_id", "product_id", "product_label",
    "site_id", "quantity", "unit_price", "discount_pct",
]  # fmt: skip
DATES = [RUN_DATE - dt.timedelta(days=i) for i in range(SMALL["days"] - 1, -1, -1)]


@pytest.fixture(scope="module")
def truth(small_run: Run) -> dict:
    return json.loads((small_run.truth / "defects.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def ref():
    return build_referential(GenerationParams(run_date=RUN_DATE, **SMALL))


def test_one_file_per_day_and_source_in_the_documented_layout(small_run: Run):
    names = set(lake_files(small_run.lake))
    for day in DATES:
        ymd, iso = f"{day:%Y%m%d}", day.isoformat()
        for expected in (
            f"landing/source=erp/order_lines/{iso}/order_lines_{ymd}.csv",
            f"landing/source=erp/stock_snapshots/{iso}/stock_{ymd}.csv",
            f"landing/source=erp/deliveries/{iso}/deliveries_{ymd}.jsonl",
            f"landing/source=erp/production_batches/{iso}/production_{ymd}.jsonl",
            f"landing/source=iot/readings/{iso}/readings_S01_{ymd}.jsonl",
            f"landing/source=regulatory/recalls/{iso}/recalls_{ymd}.json",
        ):
            assert expected in names
    assert len(names) == 6 * len(DATES), sorted(names)
    assert not any(n.endswith(".tmp") for n in names)
    assert not (small_run.lake / "ground_truth").exists()


def test_same_inputs_give_identical_bytes_and_another_seed_differs(small_run: Run, tmp_path: Path):
    again = make_settings(tmp_path / "again")
    generate_all(again)
    first, second = lake_files(small_run.lake), lake_files(Path(again.lake_root))
    assert first == second
    assert lake_files(small_run.truth) == lake_files(again.ground_truth_dir)

    other = make_settings(tmp_path / "other", seed=SMALL["seed"] + 1)
    generate_all(other)
    third = lake_files(Path(other.lake_root))
    assert first.keys() == third.keys()
    differing = [name for name in first if first[name] != third[name]]
    assert len(differing) >= len(first) - len(DATES)  # all but maybe some empty files


def test_order_lines_are_a_french_latin1_export(small_run: Run, ref):
    files = entity_files(small_run.lake, "source=erp/order_lines", "*.csv")
    raw = b"".join(p.read_bytes() for p in files)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # accents are single latin-1 bytes, not UTF-8
    accented = [n for n in ref.products["name"] if any(ord(c) > 127 for c in n)]
    assert accented, "the small referential should have accented labels"
    found = [n for n in accented if n.encode("latin-1") in raw]
    assert found, "an accented label should appear, encoded in latin-1"
    assert "é".encode("latin-1") == b"\xe9" and b"\xc3\xa9" not in raw

    checked = 0
    for path in files:
        header, rows = csv_rows(path)
        assert header[: len(BASE_HEADER)] == BASE_HEADER
        for _, line, fields in rows:
            if len(fields) != len(header) or parse_fr_date(fields[2]) is None:
                continue
            assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", fields[2])
            assert re.fullmatch(r"\d+,\d{2}", fields[8]), line  # unit_price
            assert re.fullmatch(r"\d+,\d{2}", fields[9]), line  # discount_pct
            assert 0 <= float(fields[9].replace(",", ".")) <= 30
            assert '"' not in line  # no field holds ';', so nothing is quoted
            checked += 1
    assert checked > 200


def test_header_gains_sales_channel_on_the_schema_change_day(small_run: Run, truth):
    change = dt.date.fromisoformat(truth["schema_change_date"])
    assert change == DATES[SMALL["days"] * 2 // 3]
    seen = set()
    for path in entity_files(small_run.lake, "source=erp/order_lines", "*.csv"):
        header, rows = csv_rows(path)
        if drop_date(path) >= change:
            assert header == [*BASE_HEADER, "sales_channel"], path
            channels = {f[10] for _, _, f in rows if len(f) == len(header)}
            assert channels <= {"direct", "wholesaler", "tender"} and channels
        else:
            assert header == BASE_HEADER, path
        seen.add(len(header))
    assert seen == {10, 11}


def _parse_order_line_defects(lake: Path, product_ids: set[str]) -> tuple[Counter, set, int]:
    """Defects a parser finds, independently of the generator's bookkeeping."""
    counts: Counter = Counter()
    located = set()
    seen_lines: set[str] = set()
    records = 0
    for path in entity_files(lake, "source=erp/order_lines", "*.csv"):
        header, rows = csv_rows(path)
        file = relative(lake, path)
        for number, line, fields in rows:
            records += 1
            if line in seen_lines:
                kind = "duplicate"
            elif len(fields) != len(header):
                kind = "ragged_row"
            elif parse_fr_date(fields[2]) is None:
                kind = "impossible_date"
            elif parse_fr_date(fields[2]) < drop_date(path):
                kind = "late_record"
            elif fields[4] not in product_ids:
                kind = "unknown_product"
            elif int(fields[7]) < 0:
                kind = "negative_quantity"
            else:
                kind = None
            seen_lines.add(line)
            if kind:
                counts[kind] += 1
                located.add((file, number, kind))
    return counts, located, records


def test_order_line_defects_match_the_ground_truth(small_run: Run, truth, ref):
    counts, located, records = _parse_order_line_defects(small_run.lake, set(ref.products["product_id"]))
    expected = truth["order_lines"]
    assert records == expected["records"]
    assert dict(counts) == {k: v for k, v in expected["defects"].items() if v}
    assert set(expected["defects"]) == {
        "duplicate", "late_record", "unknown_product", "negative_quantity", "ragged_row", "impossible_date",
    }  # fmt: skip
    assert all(v >= 1 for v in expected["defects"].values()), "every defect type is exercised"
    listed = pd.read_csv(small_run.truth / "order_lines_defects.csv")
    assert list(listed.columns) == ["file", "line_number", "defect"]
    assert set(listed.itertuples(index=False, name=None)) == located


def test_duplicates_are_exact_copies_some_resent_the_next_day(tmp_path: Path):
    # A bigger run, so both kinds of duplicates occur.
    settings = make_settings(tmp_path, scale=0.5, days=4)
    generate_all(settings)
    lake = Path(settings.lake_root)
    by_file = {p: csv_rows(p)[1] for p in entity_files(lake, "source=erp/order_lines", "*.csv")}
    all_lines = [line for rows in by_file.values() for _, line, _ in rows]
    truth = json.loads((settings.ground_truth_dir / "defects.json").read_text())
    assert len(all_lines) - len(set(all_lines)) == truth["order_lines"]["defects"]["duplicate"]
    within = sum(len(rows) - len({line for _, line, _ in rows}) for rows in by_file.values())
    assert 0 < within < truth["order_lines"]["defects"]["duplicate"]
    lines = truth["order_lines"]
    distinct = lines["records"] - lines["defects"]["duplicate"]  # the base of order-line rates
    assert lines["defects"]["late_record"] == round(0.02 * distinct)
    assert lines["defects"]["duplicate"] == round(0.01 * distinct)


def test_unit_price_is_the_list_price_valid_on_the_order_date(small_run: Run, ref):
    params = GenerationParams(run_date=RUN_DATE, **SMALL)
    matrix = price_matrix(ref.products, ref.product_prices, params.dates)
    row_of = {pid: i for i, pid in enumerate(ref.products["product_id"])}
    checked = 0
    for path in entity_files(small_run.lake, "source=erp/order_lines", "*.csv"):
        header, rows = csv_rows(path)
        for _, _, fields in rows:
            day = parse_fr_date(fields[2]) if len(fields) == len(header) else None
            if day is None or fields[4] not in row_of:
                continue
            expected = matrix[row_of[fields[4]], (day - params.start_date).days]
            assert fields[8] == f"{expected:.2f}".replace(".", ",")
            checked += 1
    assert checked > 200


def test_stock_snapshots_one_row_per_site_and_product_with_known_negatives(small_run: Run, truth, ref):
    negatives = set()
    zeros = total = 0
    for path in entity_files(small_run.lake, "source=erp/stock_snapshots", "*.csv"):
        header, rows = csv_rows(path)
        assert header == ["snapshot_date", "site_id", "product_id", "quantity_on_hand", "safety_stock"]
        assert len(rows) == len(ref.sites) * len(ref.products)
        assert {(f[1], f[2]) for _, _, f in rows} == {
            (s, p) for s in ref.sites["site_id"] for p in ref.products["product_id"]
        }
        for number, _, fields in rows:
            assert parse_fr_date(fields[0]) == drop_date(path)
            quantity = int(fields[3])
            total += 1
            zeros += quantity == 0
            if quantity < 0:
                negatives.add(
                    ("stock_snapshots", relative(small_run.lake, path), number, "negative_quantity")
                )
    assert total == truth["stock_snapshots"]["records"]
    assert len(negatives) == truth["stock_snapshots"]["defects"]["negative_quantity"] >= 1
    listed = pd.read_csv(small_run.truth / "landing_defects.csv")
    assert set(listed[listed["entity"] == "stock_snapshots"].itertuples(index=False, name=None)) == negatives


@pytest.mark.parametrize(
    ("entity", "folder"),
    [("deliveries", "source=erp/deliveries"), ("production_batches", "source=erp/production_batches")],
)
def test_malformed_json_lines_match_the_ground_truth(small_run: Run, truth, entity, folder):
    broken, records = set(), 0
    for path in entity_files(small_run.lake, folder, "*.jsonl"):
        for number, _, obj in jsonl_lines(path):
            records += 1
            if obj is None:
                broken.add((entity, relative(small_run.lake, path), number, "malformed_json"))
    assert records == truth[entity]["records"]
    assert len(broken) == truth[entity]["defects"]["malformed_json"] >= 1
    listed = pd.read_csv(small_run.truth / "landing_defects.csv")
    assert set(listed[listed["entity"] == entity].itertuples(index=False, name=None)) == broken


def test_deliveries_follow_their_orders(small_run: Run):
    orders = {}
    for path in entity_files(small_run.lake, "source=erp/order_lines", "*.csv"):
        header, rows = csv_rows(path)
        for _, _, f in rows:
            if len(f) == len(header) and parse_fr_date(f[2]):
                orders[f[0]] = parse_fr_date(f[2])
    deliveries = [
        (drop_date(path), obj)
        for path in entity_files(small_run.lake, "source=erp/deliveries", "*.jsonl")
        for _, _, obj in jsonl_lines(path)
        if obj is not None
    ]
    assert deliveries
    keys = ["delivery_id", "order_id", "site_id", "customer_id", "promised_date", "actual_date",
            "quantity_ordered", "quantity_delivered", "carrier"]  # fmt: skip
    ids = [d["delivery_id"] for _, d in deliveries]
    assert len(ids) == len(set(ids)), "one delivery per order"
    for dropped, d in deliveries:
        assert list(d) == keys
        assert orders[d["order_id"]] < dropped, "only orders of earlier days are delivered"
        assert dt.date.fromisoformat(d["promised_date"]) > orders[d["order_id"]]
        if d["actual_date"] is None:
            assert dropped == RUN_DATE and d["quantity_delivered"] is None
        else:
            assert dt.date.fromisoformat(d["actual_date"]) == dropped
            assert 0 <= d["quantity_delivered"] <= d["quantity_ordered"]
            assert isinstance(d["quantity_delivered"], int)


def test_production_batches_two_to_four_per_machine_and_day(small_run: Run, ref):
    producing = set(ref.machines.loc[ref.machines["machine_type"] != "hvac", "machine_id"])
    per_machine_day = Counter()
    for path in entity_files(small_run.lake, "source=erp/production_batches", "*.jsonl"):
        for _, _, batch in jsonl_lines(path):
            if batch is None:
                continue  # one malformed line is expected
            start = dt.datetime.fromisoformat(batch["start_ts"].replace("Z", "+00:00"))
            end = dt.datetime.fromisoformat(batch["end_ts"].replace("Z", "+00:00"))
            assert batch["start_ts"].endswith("Z") and start < end and start.date() == drop_date(path)
            assert batch["machine_id"] in producing
            assert 0 <= batch["units_rejected"] < batch["units_produced"]
            per_machine_day[(batch["machine_id"], start.date())] += 1
    assert set(per_machine_day.values()) <= {1, 2, 3, 4}  # 1 only where a line was truncated
    assert len(per_machine_day) == len(producing) * len(DATES)


def test_readings_one_line_per_machine_minute(small_run: Run, ref, truth):
    machines = sorted(ref.machines["machine_id"])
    for path in entity_files(small_run.lake, "source=iot/readings", "*.jsonl"):
        frame = pd.read_json(path, lines=True, convert_dates=False)
        assert list(frame.columns) == ["machine_id", "ts", "kwh", "kw", "temperature_c", "vibration_mm_s"]
        assert len(frame) == len(machines) * 1440
        assert sorted(frame["machine_id"].unique()) == machines
        assert not frame.duplicated(["machine_id", "ts"]).any()
        assert frame["ts"].str.fullmatch(rf"{drop_date(path).isoformat()}T\d{{2}}:\d{{2}}:00Z").all()
        assert (frame["kwh"] - frame["kw"] / 60).abs().max() < 1e-4
    assert truth["iot_readings"]["records"] == len(machines) * 1440 * len(DATES)


def test_recall_documents(small_run: Run, ref, truth):
    notices = 0
    ours = set(ref.products["cip13"])
    for path in entity_files(small_run.lake, "source=regulatory/recalls", "*.json"):
        document = json.loads(path.read_text("utf-8"))
        assert set(document) == {"source", "retrieved_at", "notices"}
        assert document["retrieved_at"].startswith(drop_date(path).isoformat())
        assert len(document["notices"]) <= 2
        for notice in document["notices"]:
            assert set(notice) == {"notice_id", "published_date", "cip13", "lot_number", "severity", "reason"}
            assert notice["severity"] in {"I", "II", "III"} and is_valid_ean13(notice["cip13"])
            notices += 1
    assert notices == truth["recalls"]["records"]
    assert ours, "cip13 of our products exist"


def test_report_counts_match_the_ground_truth(small_run: Run, truth):
    report = small_run.report
    entities = ["order_lines", "stock_snapshots", "deliveries", "production_batches",
                "iot_readings", "recalls"]  # fmt: skip
    assert set(entities) <= set(truth)
    for entity in entities:
        assert report.row_counts[entity] == truth[entity]["records"], entity
        assert report.file_counts[entity] == truth[entity]["files"], entity
    assert truth["iot_readings"]["anomalies"] == report.entities["iot_readings"].anomalies
    assert report.row_counts["products"] == 10 and report.postgres is None
    text = str(report)
    assert "order_lines" in text and str(small_run.lake / "landing") in text
    assert report.elapsed_seconds > 0


def test_rerun_replaces_files_and_leaves_nothing_stale(tmp_path: Path):
    settings = make_settings(tmp_path)
    generate_all(settings)
    lake = Path(settings.lake_root)
    before = lake_files(lake)
    day_folder = lake / "landing" / "source=erp" / "order_lines" / RUN_DATE.isoformat()
    (day_folder / "order_lines_old.csv").write_text("stale")
    (lake / "landing/source=iot/readings" / DATES[0].isoformat() / "readings_S09_old.jsonl").write_text("{}")
    (day_folder / f"order_lines_{RUN_DATE:%Y%m%d}.csv").write_text("tampered")
    outside = lake / "landing" / "source=erp" / "order_lines" / "_archive" / "keep.csv"
    outside.parent.mkdir()
    outside.write_text("not the generator's")
    (settings.ground_truth_dir / "energy_anomalies.csv").write_text("tampered")

    generate_all(settings)
    after = lake_files(lake)
    assert {k: v for k, v in after.items() if "_archive" not in k} == before
    assert outside.read_text() == "not the generator's"
    assert (settings.ground_truth_dir / "energy_anomalies.csv").read_text().startswith("machine_id,")
