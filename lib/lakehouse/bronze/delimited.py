"""Parse delimited text exports (ERP CSV) into bronze rows that lose nothing.

Spark's CSV reader (on Sail) fails the whole read on one ragged row and only reads
UTF-8, so files are read as bytes (``binaryFile``) and parsed here, inside
``mapInPandas``, which also runs on a cluster. Every data line becomes one row:

- known header columns become string columns (typing happens in silver);
- header columns the schema does not know go to ``_rescued_data`` (a JSON object),
  so a new column in the export is kept, not dropped;
- a line whose field count differs from the header keeps its raw text in
  ``_corrupt_record`` with the known columns NULL.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

METADATA_COLUMNS = ("_rescued_data", "_corrupt_record", "_source_file", "_line_number")


@dataclass(frozen=True)
class DelimitedFormat:
    """How a source exports its files; French ERP exports are ``;`` and latin-1."""

    columns: Sequence[str]  # expected columns, in the bronze table's order
    delimiter: str = ";"
    encoding: str = "latin-1"

    def spark_schema(self) -> str:
        """DDL of the parsed rows: every column a string, plus lineage metadata."""
        fields = [f"`{c}` string" for c in self.columns]
        fields += [
            "_rescued_data string",
            "_corrupt_record string",
            "_source_file string",
            "_line_number int",
        ]
        return ", ".join(fields)


def parse_delimited(content: bytes, source_file: str, fmt: DelimitedFormat) -> pd.DataFrame:
    """One row per data line of one file (line numbers count the header as line 1)."""
    text = content.decode(fmt.encoding)
    lines = text.splitlines()
    out_columns = [*fmt.columns, *METADATA_COLUMNS]
    if not lines:
        return pd.DataFrame(columns=out_columns, dtype=object)
    header = next(csv.reader([lines[0]], delimiter=fmt.delimiter))
    header = [name.strip() for name in header]
    known = set(fmt.columns)
    records = []
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # trailing blank lines are not records
        fields = next(csv.reader([line], delimiter=fmt.delimiter))
        record: dict[str, object] = dict.fromkeys(fmt.columns)
        if len(fields) != len(header):
            record["_corrupt_record"] = line
            record["_rescued_data"] = None
        else:
            values = dict(zip(header, fields))
            record.update({name: values[name] for name in header if name in known})
            extra = {name: values[name] for name in header if name not in known}
            record["_rescued_data"] = json.dumps(extra, ensure_ascii=False) if extra else None
            record["_corrupt_record"] = None
        record["_source_file"] = source_file
        record["_line_number"] = line_number
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=out_columns)
    frame["_line_number"] = frame["_line_number"].astype("int32")
    return frame


def make_parser(fmt: DelimitedFormat, relative_paths: Sequence[str]):
    """A ``mapInPandas`` function over ``binaryFile`` rows.

    Rows record the lake-relative path from ``relative_paths``: the engine's own
    ``path`` column is not spelled the same on every engine (scheme, leading slash).
    """
    paths = tuple(relative_paths)

    def parse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for path, content in zip(batch["path"], batch["content"]):
                yield parse_delimited(bytes(content), _lookup(paths, path), fmt)

    return parse


def _lookup(relative_paths: Sequence[str], engine_path: str) -> str:
    for relative in relative_paths:
        if engine_path.endswith(relative):
            return relative
    raise KeyError(f"file {engine_path!r} was read but not listed for ingestion")
