"""One file's bytes to rows (CSV, JSON, text), on the workers; and the columns and
types one file holds (schema inference). Bad lines become corrupt records and values
of unknown columns rescued data: one bad line never fails a batch."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from lakehouse.pipelines.autoloader.options import (
    CORRUPT,
    LINE_NUMBER,
    PARSED_METADATA,
    RESCUED,
    SOURCE_FILE,
    TextFormat,
)

_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes the codec could not decode (surrogateescape)


def parse_file(
    content: bytes,
    source_file: str,
    fmt: TextFormat,
    columns: Sequence[str],
    *,
    types: Mapping[str, str] | None = None,
) -> pa.Table:
    """Rows of one CSV/JSON/text file: ``columns`` as raw strings (typing happens in
    Spark), then ``_rescued_data``, ``_corrupt_record``, ``_source_file``, ``_line_number``.

    ``types`` (column -> Spark type) lets JSON lines be parsed vectorised by Arrow (see
    ``_json_lines_frame``); the rows are the same as without it."""
    text = _decode(content, fmt.encoding)
    if fmt.format == "json" and not fmt.multiline and types is not None:
        return _json_lines_frame(text, fmt, columns, types, source_file)
    if fmt.format == "csv":
        records = _csv_records(text, fmt, columns)
    elif fmt.format == "json":
        records = _json_records(text, fmt, columns)
    elif fmt.format == "text":
        records = _text_records(text, fmt.encoding)
    else:  # pragma: no cover - parquet is read natively
        raise ValueError(f"parse_file does not parse {fmt.format!r}")
    arrays = [pa.array([values.get(c) for _, values, _, _ in records], pa.string()) for c in columns]
    arrays += [
        pa.array([rescued for _, _, rescued, _ in records], pa.string()),
        pa.array([corrupt for _, _, _, corrupt in records], pa.string()),
        pa.array([source_file] * len(records), pa.string()),
        pa.array([line for line, _, _, _ in records], pa.int32()),
    ]
    return pa.Table.from_arrays(arrays, schema=parsed_schema(columns))


# One parsed record: (line number, column -> raw string, rescued JSON or None, corrupt raw text or None)
_Record = tuple[int, dict[str, str | None], str | None, str | None]


def _decode(content: bytes, encoding: str) -> str:
    """Decode, keeping undecodable bytes as lone surrogates (their records become corrupt)."""
    return content.decode(encoding, errors="surrogateescape")


def _printable(text: str, encoding: str) -> str:
    """``text`` with undecodable bytes shown as ``\\xNN`` (Arrow cannot hold surrogates)."""
    if not _UNDECODED.search(text):
        return text
    raw = text.encode(encoding.replace("-sig", ""), errors="surrogateescape")
    return raw.decode(encoding, errors="backslashreplace")


def _physical_lines(text: str) -> list[str]:
    """Lines split on ``\\n`` only, each keeping its line ending (CSV fields may hold
    other line separators such as U+2028)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def _csv_header(fields: list[str], width: int, header: bool) -> list[str]:
    if not header:
        return [f"_c{i}" for i in range(width)]
    names: list[str] = []
    for index, name in enumerate(fields):
        name = name.strip() or f"_c{index}"
        names.append(f"{name}{index}" if name in names else name)
    return names


def _csv_reader(lines: list[str], fmt: TextFormat):
    return csv.reader(
        iter(lines),
        delimiter=fmt.delimiter,
        quotechar=fmt.quote,
        escapechar=fmt.escape,
        doublequote=fmt.escape is None,
        strict=False,
    )


def _csv_records(text: str, fmt: TextFormat, columns: Sequence[str]) -> list[_Record]:
    lines = _physical_lines(text)
    reader = _csv_reader(lines, fmt)
    known = set(columns)
    header: list[str] | None = None
    records: list[_Record] = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:  # e.g. a NUL byte: keep the line raw, go on with the next
            raw = "".join(lines[start - 1 : reader.line_num]).rstrip("\r\n")
            records.append((start, {}, None, _printable(raw, fmt.encoding)))
            continue
        if not fields:
            continue  # blank line
        if header is None:
            if fmt.header:
                header = _csv_header([_printable(f, fmt.encoding) for f in fields], len(fields), True)
                continue
            # No header: fields map to the schema's columns by position.
            header = list(columns) or _csv_header(fields, len(fields), False)
        raw = "".join(lines[start - 1 : reader.line_num]).rstrip("\r\n")
        if len(fields) != len(header) or _UNDECODED.search(raw):
            records.append((start, {}, None, _printable(raw, fmt.encoding)))
            continue
        values = dict(zip(header, fields))
        extra = {name: value for name, value in values.items() if name not in known}
        rescued = json.dumps(extra, ensure_ascii=False, separators=(",", ":")) if extra else None
        records.append((start, values, rescued, None))
    return records


def _json_text(value: Any) -> str | None:
    """A JSON value as the raw string the typed projection casts (strings unquoted)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_record(line: int, value: Any, raw: str, known: set[str], encoding: str) -> _Record:
    if not isinstance(value, dict) or _UNDECODED.search(raw):
        return (line, {}, None, _printable(raw, encoding))
    extra = {k: v for k, v in value.items() if k not in known}
    rescued = json.dumps(extra, ensure_ascii=False, separators=(",", ":")) if extra else None
    return (line, {k: _json_text(v) for k, v in value.items() if k in known}, rescued, None)


def _json_records(text: str, fmt: TextFormat, columns: Sequence[str]) -> list[_Record]:
    known = set(columns)
    if fmt.multiline:
        return [
            _json_record(line, value, raw, known, fmt.encoding) if ok else (line, {}, None, raw)
            for line, value, raw, ok in _json_documents(text, fmt.encoding)
        ]
    records: list[_Record] = []
    for number, line in enumerate(text.split("\n"), start=1):
        raw = line.rstrip("\r")
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            records.append((number, {}, None, _printable(raw, fmt.encoding)))
            continue
        records.append(_json_record(number, value, raw, known, fmt.encoding))
    return records


# JSON lines, vectorised. Profiling the IoT ingestion (one JSON object per line, ~1 M
# lines a day) showed ~70 % of its time in ``json.loads`` and in ``json.dumps`` of every
# number back to text. Arrow's JSON reader parses a whole chunk of lines in C++ with
# the declared types; a chunk Arrow refuses (a malformed line, a value of another type,
# an unknown key, a duplicate key) is halved until the refusing lines are found, and
# those small pieces go through the Python parser above, so corrupt and rescued
# records are exactly what they were. Arrow's text of a number can differ from
# Python's (``100`` for ``100.0``, ``0.00001`` for ``1e-05``) but casts to the same value.
_ARROW_JSON_TYPES = {
    "bigint": pa.int64(),
    "int": pa.int64(),
    "smallint": pa.int64(),
    "tinyint": pa.int64(),
    "double": pa.float64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
}
_PYTHON_CHUNK_LINES = 32  # below this many lines, a refused chunk is parsed by Python
_NumberedLines = list[tuple[int, str]]


def _json_lines_frame(
    text: str, fmt: TextFormat, columns: Sequence[str], types: Mapping[str, str], source_file: str
) -> pa.Table:
    """``parse_file`` of JSON lines: Arrow for well-formed chunks, Python for the rest."""
    check_undecoded = not text.isascii() and _UNDECODED.search(text) is not None  # isascii: fast common case
    schema = pa.schema([(c, _ARROW_JSON_TYPES.get(types.get(c, "string"), pa.string())) for c in columns])
    candidates: _NumberedLines = []
    others: _NumberedLines = []  # lines Arrow must not see: not an object, undecodable bytes
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped[0] != "{" or stripped[-1] != "}" or (check_undecoded and _UNDECODED.search(line)):
            others.append((number, line))
        else:
            candidates.append((number, line))
    pieces = _arrow_json_chunks(candidates, schema, fmt, columns) if candidates else []
    if others:
        pieces.append(_python_json_piece(others, fmt, columns))
    out_schema = _raw_arrow_schema(columns)
    table = pa.concat_tables([p.cast(out_schema) for p in pieces]) if pieces else out_schema.empty_table()
    return _with_source_file(table.sort_by(LINE_NUMBER), columns, source_file)


def _with_source_file(table: pa.Table, columns: Sequence[str], source_file: str) -> pa.Table:
    table = table.append_column(SOURCE_FILE, pa.array([source_file] * table.num_rows, pa.string()))
    return table.select([*columns, *PARSED_METADATA])


def _arrow_raw_table(
    payload: bytes, line_numbers: pa.Array, schema: pa.Schema, columns: Sequence[str]
) -> pa.Table | None:
    """Raw-string table of ``payload`` (one JSON object per line), or None if Arrow
    refuses it or would not give the line-by-line parser's rows."""
    try:
        parsed = pajson.read_json(
            io.BytesIO(payload),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(payload) + 1),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="error", newlines_in_values=False
            ),
        )
    except pa.ArrowInvalid:
        return None
    if not _same_as_python(parsed, len(line_numbers)):
        return None
    raw = {c: pc.cast(parsed.column(c), pa.string()) for c in columns}
    raw[RESCUED] = pa.nulls(len(line_numbers), pa.string())
    raw[CORRUPT] = pa.nulls(len(line_numbers), pa.string())
    raw[LINE_NUMBER] = line_numbers
    return pa.table(raw)


def parsed_schema(columns: Sequence[str]) -> pa.Schema:
    """The columns of what ``parse_file`` returns."""
    return _raw_arrow_schema(columns, with_source_file=True)


def _raw_arrow_schema(columns: Sequence[str], *, with_source_file: bool = False) -> pa.Schema:
    """``parse_file``'s columns (with ``_source_file``), or those of a piece before it."""
    strings = [*columns, RESCUED, CORRUPT, *([SOURCE_FILE] if with_source_file else [])]
    return pa.schema([*((c, pa.string()) for c in strings), (LINE_NUMBER, pa.int32())])


def _arrow_json_chunks(
    lines: _NumberedLines, schema: pa.Schema, fmt: TextFormat, columns: Sequence[str]
) -> list[pa.Table]:
    """Raw-string tables of ``lines``: Arrow where it accepts them, else halves, then Python."""
    payload = "\n".join(line for _, line in lines).encode("utf-8")
    numbers = pa.array([number for number, _ in lines], pa.int32())
    table = _arrow_raw_table(payload, numbers, schema, columns)
    if table is not None:
        return [table]
    if len(lines) <= _PYTHON_CHUNK_LINES:
        return [_python_json_piece(lines, fmt, columns)]
    middle = len(lines) // 2
    return _arrow_json_chunks(lines[:middle], schema, fmt, columns) + _arrow_json_chunks(
        lines[middle:], schema, fmt, columns
    )


def _same_as_python(parsed: pa.Table, line_count: int) -> bool:
    """Arrow read one object per line and no NaN/Infinity (whose text Python spells
    differently)."""
    if parsed.num_rows != line_count:  # two objects on one line: Python calls it corrupt
        return False
    for column in parsed.columns:
        if pa.types.is_floating(column.type) and not pc.all(pc.is_finite(column), skip_nulls=True).as_py():
            return False
    return True


def _python_json_piece(lines: _NumberedLines, fmt: TextFormat, columns: Sequence[str]) -> pa.Table:
    """``lines`` parsed one by one by ``_json_records`` (the reference behaviour)."""
    known = set(columns)
    records: list[_Record] = []
    for number, line in lines:
        raw = line.rstrip("\r")
        try:
            value = json.loads(raw)
        except ValueError:
            records.append((number, {}, None, _printable(raw, fmt.encoding)))
            continue
        records.append(_json_record(number, value, raw, known, fmt.encoding))
    data: dict[str, list[Any]] = {c: [values.get(c) for _, values, _, _ in records] for c in columns}
    data[RESCUED] = [rescued for _, _, rescued, _ in records]
    data[CORRUPT] = [corrupt for _, _, _, corrupt in records]
    data[LINE_NUMBER] = [number for number, _, _, _ in records]
    return pa.table(data, schema=_raw_arrow_schema(columns))


def _json_documents(text: str, encoding: str) -> Iterator[tuple[int, Any, str, bool]]:
    """(line, value, raw text, parsed) of each document of a multiline JSON file: the
    elements of a top-level array, else each top-level value. Unparsable text from the
    point of failure to the end of the file is one unparsed document."""
    decoder = json.JSONDecoder()
    whitespace = re.compile(r"[\s,]*")

    counted = [0, 1]  # (index, line at index): count newlines incrementally, not from 0

    def line_of(index: int) -> int:
        counted[1] += text.count("\n", counted[0], index)
        counted[0] = index
        return counted[1]

    def skip(index: int) -> int:
        return whitespace.match(text, index).end()  # type: ignore[union-attr]

    index = skip(0)
    in_array = text.startswith("[", index)
    if in_array:
        index = skip(index + 1)
    while index < len(text):
        if in_array and text.startswith("]", index):
            index = skip(index + 1)
            in_array = False
            continue
        try:
            value, end = decoder.raw_decode(text, index)
        except ValueError:
            raw = text[index:].rstrip()
            yield line_of(index), None, _printable(raw, encoding), False
            return
        yield line_of(index), value, text[index:end], True
        index = skip(end)


def _text_records(text: str, encoding: str) -> list[_Record]:
    records: list[_Record] = []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the empty remainder after a final newline
    for number, line in enumerate(lines, start=1):
        value = line.rstrip("\r")
        if _UNDECODED.search(value):
            records.append((number, {}, None, _printable(value, encoding)))
        else:
            records.append((number, {"value": value}, None, None))
    return records


# --------------------------------------------------------------------------- inference


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double"
    return "string"


def merge_types(left: str, right: str) -> str:
    """The type holding values of both inferred types (``null``: only NULLs seen)."""
    if left == right or right == "null":
        return left
    if left == "null":
        return right
    if {left, right} == {"bigint", "double"}:
        return "double"
    return "string"


def discover_columns(content: bytes, fmt: TextFormat) -> list[tuple[str, str]]:
    """Columns of one CSV/JSON file in order of appearance with their inferred type
    (``string`` for CSV; JSON: ``bigint``/``double``/``boolean``/``string``/``null``)."""
    text = _decode(content, fmt.encoding)
    if fmt.format == "csv":
        for start_fields in _csv_reader(_physical_lines(text), fmt):
            if start_fields:
                fields = [_printable(f, fmt.encoding) for f in start_fields]
                return [(name, "string") for name in _csv_header(fields, len(fields), fmt.header)]
        return []
    types: dict[str, str] = {}
    if fmt.multiline:
        values = [value for _, value, _, ok in _json_documents(text, fmt.encoding) if ok]
    else:
        values = []
        for line in text.split("\n"):
            try:
                values.append(json.loads(line))
            except ValueError:
                continue
    for value in values:
        if isinstance(value, dict):
            for key, item in value.items():
                types[key] = merge_types(types.get(key, "null"), _json_kind(item))
    return list(types.items())
