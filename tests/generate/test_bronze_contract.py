"""The order-line files parse with the bronze parser as the contract says: ragged rows
become corrupt records at the ground-truth lines, the new column is a known column."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from lakehouse.bronze.sources import ORDER_LINE_COLUMNS
from lakehouse.bronze.tables import bronze_order_lines
from lakehouse.pipelines.autoloader import parse_file, text_format

from .conftest import Run
from .helpers import drop_date, entity_files, relative


def test_bronze_parser_reads_order_lines_as_the_ground_truth_says(small_run: Run):
    truth = json.loads((small_run.truth / "defects.json").read_text())
    change = dt.date.fromisoformat(truth["schema_change_date"])
    listed = pd.read_csv(small_run.truth / "order_lines_defects.csv")
    ragged_rows = listed[listed["defect"] == "ragged_row"][["file", "line_number"]]
    ragged = set(ragged_rows.itertuples(index=False, name=None))
    corrupt, rows, labels = set(), 0, set()
    fmt = text_format(bronze_order_lines().source)  # the bronze dataset's own reader settings
    for path in entity_files(small_run.lake, "source=erp/order_lines", "*.csv"):
        name = relative(small_run.lake, path)
        frame = parse_file(path.read_bytes(), name, fmt, ORDER_LINE_COLUMNS).to_pandas()
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
