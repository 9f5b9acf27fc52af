import json

from lakehouse.bronze.delimited import DelimitedFormat, parse_delimited

FMT = DelimitedFormat(columns=("order_id", "label", "amount"))


def _export(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def test_parses_latin1_semicolon_rows_keeping_values_as_strings():
    content = _export("order_id;label;amount", "O1;Paracétamol 500 mg;12,50", "O2;Ibuprofène;3")
    frame = parse_delimited(content, "landing/x.csv", FMT)
    assert frame[["order_id", "label", "amount"]].values.tolist() == [
        ["O1", "Paracétamol 500 mg", "12,50"],
        ["O2", "Ibuprofène", "3"],
    ]
    assert frame["_line_number"].tolist() == [2, 3]
    assert frame["_source_file"].unique().tolist() == ["landing/x.csv"]
    assert frame["_corrupt_record"].isna().all() and frame["_rescued_data"].isna().all()


def test_ragged_row_is_kept_raw_in_corrupt_record():
    content = _export("order_id;label;amount", "O1;A;1", "O2;B", "O3;C;3;extra")
    frame = parse_delimited(content, "f.csv", FMT)
    assert len(frame) == 3  # nothing lost
    corrupt = frame[frame["_corrupt_record"].notna()]
    assert corrupt["_corrupt_record"].tolist() == ["O2;B", "O3;C;3;extra"]
    assert corrupt["_line_number"].tolist() == [3, 4]
    assert corrupt["order_id"].isna().all()


def test_unknown_header_column_goes_to_rescued_data():
    content = _export("order_id;label;amount;channel", "O1;A;1;direct")
    frame = parse_delimited(content, "f.csv", FMT)
    assert json.loads(frame.loc[0, "_rescued_data"]) == {"channel": "direct"}
    assert frame.loc[0, "amount"] == "1"


def test_missing_expected_column_is_null_and_blank_lines_are_ignored():
    content = _export("order_id;label", "O1;A", "")
    frame = parse_delimited(content, "f.csv", FMT)
    assert len(frame) == 1
    assert frame.loc[0, "amount"] is None


def test_empty_file_gives_no_rows_with_all_columns():
    frame = parse_delimited(b"", "f.csv", FMT)
    assert frame.empty
    assert list(frame.columns)[:3] == ["order_id", "label", "amount"]
