"""The vectorised JSON-lines parser (the bronze IoT speed-up) gives the rows of the
line-by-line parser: corrupt lines, rescued values and unknown keys included."""

from __future__ import annotations

import pandas as pd

from lakehouse.pipelines.autoloader import TextFormat, parse_file

COLUMNS = ["id", "n", "ok", "name"]
TYPES = {"id": "bigint", "n": "double", "ok": "boolean", "name": "string"}
FMT = TextFormat("json")

MESSY = (
    b'{"id":1,"n":1.5,"ok":true,"name":"caf\\u00e9"}\n'
    b"\n"  # blank: no row
    b'{"id":"x","n":2}\n'  # wrong type: kept as text for the typed cast to rescue
    b'{"id":3,"extra":{"k":1}}\r\n'  # unknown key: rescued
    b"null\n"  # not an object: corrupt
    b'{"id":4}{"id":5}\n'  # two objects on one line: corrupt
    b'{"id":6,"name":"\xe9"}\n'  # not UTF-8: corrupt, shown escaped
    b'{"id":7,"n":100}\n'
    b'{"id":'  # truncated last line
)


def _rows(frame: pd.DataFrame) -> list[tuple]:
    columns = ["_line_number", *COLUMNS, "_rescued_data", "_corrupt_record"]
    return [tuple(row) for row in frame[columns].astype(object).where(frame[columns].notna(), None).values]


def test_messy_lines_give_the_rows_of_the_line_by_line_parser():
    fast = parse_file(MESSY, "f.jsonl", FMT, COLUMNS, types=TYPES).to_pandas()

    assert _rows(fast) == [
        (1, "1", "1.5", "true", "café", None, None),
        (3, "x", "2", None, None, None, None),
        (4, "3", None, None, None, '{"extra":{"k":1}}', None),
        (5, None, None, None, None, None, "null"),
        (6, None, None, None, None, None, '{"id":4}{"id":5}'),
        (7, None, None, None, None, None, '{"id":6,"name":"\\xe9"}'),
        (8, "7", "100", None, None, None, None),  # Python would spell it "100.0": the same double
        (9, None, None, None, None, None, '{"id":'),
    ]
    assert set(fast["_source_file"]) == {"f.jsonl"}
    slow = parse_file(MESSY, "f.jsonl", FMT, COLUMNS).to_pandas()
    assert _rows(slow)[:6] == _rows(fast)[:6] and _rows(slow)[7] == _rows(fast)[7]


def test_one_bad_line_in_a_large_file_costs_only_that_line():
    lines = [f'{{"id":{i},"n":{i}.25,"ok":false,"name":"m{i}"}}' for i in range(1, 1001)]
    lines[499] = '{"id":500,"n":"not a number"'  # line 500 truncated
    content = ("\n".join(lines) + "\n").encode()

    fast = parse_file(content, "big.jsonl", FMT, COLUMNS, types=TYPES).to_pandas()

    assert len(fast) == 1000
    assert fast["_line_number"].tolist() == list(range(1, 1001))
    assert fast["_corrupt_record"].notna().sum() == 1
    assert fast.loc[499, "_corrupt_record"] == '{"id":500,"n":"not a number"'
    assert fast.loc[500, ["id", "n", "name"]].tolist() == ["501", "501.25", "m501"]


def test_empty_file_gives_no_rows_with_the_columns():
    fast = parse_file(b"", "empty.jsonl", FMT, COLUMNS, types=TYPES).to_pandas()

    assert fast.empty
    assert list(fast.columns) == [*COLUMNS, "_rescued_data", "_corrupt_record", "_source_file", "_line_number"]
