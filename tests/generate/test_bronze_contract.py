"""The order-line files parse with the bronze parser as the contract says: ragged rows
become corrupt records at the ground-truth lines, the new column is a known column."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from .conftest import Run
from .helpers import drop_date, entity_files, relative

bronze = pytest.importorskip("lakehouse.bronze.ingest", reason="bronze ingestion not importable")
from lakehouse.bronze.delimited import parse_delimited  # noqa: E402


def test_bronze_parser_reads_order_lines_as_the_ground_truth_says(small_run: Run):
    truth = json.loads((small_run.truth / "defects.json").read_text())
    change = dt.date.fromisoformat(truth["schema_change_date"])
    listed = pd.read_csv(small_run.truth / "order_lines_defects.csv")
    ragged_rows = listed[listed["defect"] == "ragged_row"][["file", "line_number"]]
    ragged = set(ragged_rows.itertuples(index=False, name=None))
    corrupt, rows, labels = set(), 0, set()
    for path in entity_files(small_run.lake, "source=erp/order_lines", "*.csv"):
        name = relative(small_run.lake, path)
        frame = parse_delimited(path.read_bytes(), name, bronze.ORDER_LINES)
        rows += len(frame)
        assert frame["_rescued_data"].isna().all()
        good = frame[frame["_corrupt_record"].isna()]
        corrupt |= {(name, int(n)) for n in frame.loc[frame["_corrupt_record"].notna(), "_line_number"]}
        if drop_date(path) >= change:
            assert good["sales_channel"].notna().all()
        else:
            assert good["sales_channel"].isna().all()
        labels |= set(good["product_label"])
    assert any("é" in label for label in labels), "latin-1 accents decode back to 'é'"
    assert rows == truth["order_lines"]["records"]
    assert corrupt == ragged
