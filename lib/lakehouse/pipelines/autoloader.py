"""Incremental file ingestion, exactly once: the Auto Loader (``cloudFiles``) equivalent.

``read_new_files`` lists a landing folder, keeps the files no earlier batch has read,
records them as batch *N* in a checkpoint and returns their rows as a lazy DataFrame;
the caller writes the rows (stamped ``_batch_id = N``) and then calls ``commit_batch``.

Exactly once, across runs and crashes
    The checkpoint is a folder of small JSON files, each written once and atomically
    (local: temp file then rename; S3: a single PUT)::

        <checkpoint>/metadata.json        the source (path, format) it belongs to
        <checkpoint>/offsets/<N>.json     batch N: files (path, size, mtime), schema, ingested_at
        <checkpoint>/commits/<N>.json     batch N is in the target

    ``offsets/N`` is written *before* the caller writes the data, ``commits/N`` after.
    A batch with offsets but no commit is *pending* (the run crashed in between): the
    next call asks ``target_has_batch(N)`` whether the target holds rows with
    ``_batch_id = N``. If it does, N is marked committed and not read again; if not,
    the same files are read again under the same batch id, schema and ``_ingested_at``
    (a file changed or deleted since is left out of the replay; a changed file is then
    read by the next batch). One writer per checkpoint at a time. Every offsets file
    is read on each call (fine for thousands of batches; there is no compaction).

File identity
    As in Databricks Auto Loader, a file is identified by its path: a file dropped
    again under the same name (a re-export, a re-run of the drop) is not read again.
    With the option ``allowOverwrites=true`` a file whose size or modification time
    changed is read again, in full, by the next batch and listed in
    ``IncrementalBatch.rewritten_files``; its earlier rows stay in the target
    (de-duplicate downstream, e.g. with a CDC flow, if rewrites are corrections).
    Files and folders whose name starts with ``_`` or ``.`` are ignored, as in Spark.

Parsing (CSV, JSON, text)
    Files are read as bytes (``binaryFile``) and parsed in ``mapInPandas``, so any
    encoding works and one bad line never fails the batch (Sail's CSV/JSON readers have
    no PERMISSIVE mode):

    - a CSV row whose field count differs from the header, a JSON line that is not a
      JSON object, or a line that cannot be decoded in the declared encoding, becomes a
      row with its raw text in ``_corrupt_record`` and the data columns NULL;
    - a value that does not fit its column's type (``'abc'`` for a ``bigint``) is NULL
      in the column and kept in ``_rescued_data`` as ``{"column": "abc"}``;
    - a column the schema does not know (explicit ``schema`` only) goes to
      ``_rescued_data`` too. Nothing is silently dropped.

    JSON lines with an explicit schema are parsed vectorised by Arrow (``_json_lines_frame``);
    only the lines Arrow refuses go through the line-by-line parser, with the same rows.

    Parquet files are read natively, one read per file (so each row knows its file:
    engines lack ``_metadata``; bound the plan size with ``max_files``), and cast to
    the schema the same way (mismatches and unknown columns rescued).

Schema
    An explicit ``schema`` (DDL) is used as given. Otherwise the first batch infers it:
    CSV columns come from the header and are strings; JSON keys get ``bigint``,
    ``double``, ``boolean`` or ``string`` (nested values and mixed types: ``string``,
    holding the JSON text; integers mixed with decimals: ``double``); Parquet keeps the
    file types. ``schema_hints`` (DDL) force the type of the columns they name (a hinted
    column absent from the files is still added). The schema is stored in each batch's
    offsets file. A column first seen in a later batch is *added* at the end (earlier
    rows: NULL) and reported in ``IncrementalBatch.schema_changes``; a column's type
    never changes once recorded (values that no longer fit are rescued).

Columns of ``IncrementalBatch.df``: the schema's columns, then ``_rescued_data``,
``_corrupt_record`` (names configurable), ``_source_file`` (the path as listed:
absolute, or an ``s3://`` URI), ``_line_number`` (1-based line where the record starts,
header included; NULL for Parquet), ``_ingested_at`` and ``_batch_id``.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.json as pajson
from pyspark.sql import functions as F

from lakehouse.lake import delta_exists, filesystem, read_delta, scheme, write_json

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

Format = Literal["csv", "json", "parquet", "text"]
Schema = list[tuple[str, str]]  # (column name, Spark type as DDL, e.g. "bigint", "decimal(10,2)")

SOURCE_FILE = "_source_file"
LINE_NUMBER = "_line_number"
INGESTED_AT = "_ingested_at"
BATCH_ID = "_batch_id"
# Names the parser uses; renamed to FileSource.rescued_data_column / corrupt_record_column.
_RESCUED = "_rescued_data"
_CORRUPT = "_corrupt_record"
_PARSED_METADATA = (_RESCUED, _CORRUPT, SOURCE_FILE, LINE_NUMBER)
TEXT_SCHEMA: Schema = [("value", "string")]

_COMMON_OPTIONS = frozenset({"pathglobfilter", "allowoverwrites"})
_OPTIONS: dict[str, frozenset[str]] = {
    "csv": frozenset({"delimiter", "sep", "encoding", "charset", "header", "quote", "escape"}) | _COMMON_OPTIONS,
    "json": frozenset({"multiline", "encoding", "charset"}) | _COMMON_OPTIONS,
    "text": frozenset({"encoding", "charset"}) | _COMMON_OPTIONS,
    "parquet": _COMMON_OPTIONS,
}
_COMPLEX_TYPE = re.compile(r"^(array|map|struct)\s*<", re.IGNORECASE)
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes the codec could not decode (surrogateescape)


class CheckpointError(RuntimeError):
    """The checkpoint is inconsistent, belongs to another source, or needs a decision."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class FileSource:
    """Where the files land and how to read them (Auto Loader's ``cloudFiles`` options).

    ``options`` (keys case-insensitive): csv ``delimiter``/``sep`` (default ``,``),
    ``encoding``/``charset`` (default ``utf-8``), ``header`` (default ``true``; without
    a header, fields map to the schema's columns by position, inferred as ``_c0``,
    ``_c1``... from the first row, and a row of another width is corrupt), ``quote`` (``"``), ``escape`` (none:
    quotes are doubled); json ``multiline`` (``false``: one object per line; ``true``:
    one document per file, an object or an array of objects), ``encoding``; text
    ``encoding``; all formats ``pathGlobFilter`` (a glob on file names, e.g. ``*.csv``).
    """

    path: str
    format: Format
    options: Mapping[str, str] = field(default_factory=dict)
    schema: str | None = None
    schema_hints: str | None = None
    rescued_data_column: str = _RESCUED
    corrupt_record_column: str = _CORRUPT

    def __post_init__(self) -> None:
        if self.format not in _OPTIONS:
            raise ValueError(
                f"FileSource {self.path!r}: format {self.format!r} is not supported; "
                f"use one of {sorted(_OPTIONS)}"
            )
        unknown = sorted({k.lower() for k in self.options} - _OPTIONS[self.format])
        if unknown:
            raise ValueError(
                f"FileSource {self.path!r}: option(s) {unknown} are not supported for format "
                f"{self.format!r}; supported (case-insensitive): {sorted(_OPTIONS[self.format])}"
            )
        if self.schema is not None and self.schema_hints is not None:
            raise ValueError(
                f"FileSource {self.path!r}: give either schema (the full DDL) or schema_hints "
                "(types of some inferred columns), not both"
            )
        if self.format == "text" and (self.schema or self.schema_hints):
            raise ValueError(
                f"FileSource {self.path!r}: format 'text' has the fixed column 'value string'; "
                "remove schema/schema_hints"
            )
        if self.rescued_data_column == self.corrupt_record_column:
            raise ValueError(
                f"FileSource {self.path!r}: rescued_data_column and corrupt_record_column are both "
                f"{self.rescued_data_column!r}; give them different names"
            )

    def option(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.options.items():
            if key.lower() == name.lower():
                return value
        return default


@dataclass(frozen=True)
class TextFormat:
    """How to turn one file's bytes into records (picklable: shipped to the workers)."""

    format: Format
    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    header: bool = True
    multiline: bool = False


def text_format(source: FileSource) -> TextFormat:
    """The parsing settings of ``source`` from its options (validated)."""

    def flag(name: str, default: str) -> bool:
        value = (source.option(name, default) or default).strip().lower()
        if value not in ("true", "false"):
            raise ValueError(
                f"FileSource {source.path!r}: option {name}={value!r}; expected 'true' or 'false'"
            )
        return value == "true"

    encoding = source.option("encoding") or source.option("charset") or "utf-8"
    try:
        "".encode(encoding)
    except LookupError as exc:
        raise ValueError(
            f"FileSource {source.path!r}: encoding {encoding!r} is unknown; use a Python codec "
            "name such as 'utf-8', 'latin-1', 'cp1252'"
        ) from exc
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # a byte order mark is not part of the first column's name
    delimiter = source.option("delimiter") or source.option("sep") or ","
    if source.format == "csv" and len(delimiter) != 1:
        raise ValueError(f"FileSource {source.path!r}: delimiter {delimiter!r} must be one character")
    return TextFormat(
        format=source.format,
        encoding=encoding,
        delimiter=delimiter,
        quote=source.option("quote", '"') or '"',
        escape=source.option("escape"),
        header=flag("header", "true") if source.format == "csv" else True,
        multiline=flag("multiline", "false") if source.format == "json" else False,
    )


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class SourceFile:
    """A listed file; ``(path, size, mtime_ns)`` is its identity."""

    path: str
    size: int
    mtime_ns: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "mtime_ns": self.mtime_ns}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceFile:
        return cls(str(data["path"]), int(data["size"]), int(data["mtime_ns"]))


def list_source_files(source: FileSource) -> list[SourceFile]:
    """Files anywhere below ``source.path`` (or the file itself), sorted by path.

    Skips names starting with ``_`` or ``.`` (at any level below the root) and names
    not matching the ``pathGlobFilter`` option. A missing folder lists nothing.
    """
    fs, base = filesystem(source.path)
    prefix = scheme(source.path)
    root = fs.get_file_info(base)
    if root.type == pafs.FileType.NotFound:
        return []
    if root.type == pafs.FileType.File:
        infos = [root]
        base = base.rsplit("/", 1)[0]
    else:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    glob = source.option("pathGlobFilter")
    files = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[len(base.rstrip("/")) :].strip("/")
        if any(part.startswith(("_", ".")) for part in relative.split("/")):
            continue
        if glob and not fnmatch.fnmatchcase(info.base_name, glob):
            continue
        mtime_ns = info.mtime_ns if info.mtime_ns is not None else 0
        files.append(SourceFile(f"{prefix}{info.path}", int(info.size or 0), int(mtime_ns)))
    return sorted(files, key=lambda f: f.path)


# --------------------------------------------------------------------------- parsing


def parse_file(
    content: bytes,
    source_file: str,
    fmt: TextFormat,
    columns: Sequence[str],
    *,
    types: Mapping[str, str] | None = None,
) -> pd.DataFrame:
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
    out_columns = [*columns, *_PARSED_METADATA]
    rows = [
        [*(values.get(c) for c in columns), rescued, corrupt, source_file, line]
        for line, values, rescued, corrupt in records
    ]
    frame = pd.DataFrame(rows, columns=out_columns, dtype=object)
    frame[LINE_NUMBER] = frame[LINE_NUMBER].astype("int32")
    return frame


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
) -> pd.DataFrame:
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


def _with_source_file(table: pa.Table, columns: Sequence[str], source_file: str) -> pd.DataFrame:
    table = table.append_column(SOURCE_FILE, pa.array([source_file] * table.num_rows, pa.string()))
    return table.select([*columns, *_PARSED_METADATA]).to_pandas()


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
    raw[_RESCUED] = pa.nulls(len(line_numbers), pa.string())
    raw[_CORRUPT] = pa.nulls(len(line_numbers), pa.string())
    raw[LINE_NUMBER] = line_numbers
    return pa.table(raw)


def _raw_arrow_schema(columns: Sequence[str]) -> pa.Schema:
    return pa.schema(
        [*((c, pa.string()) for c in columns), (_RESCUED, pa.string()), (_CORRUPT, pa.string()), (LINE_NUMBER, pa.int32())]
    )


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
    data[_RESCUED] = [rescued for _, _, rescued, _ in records]
    data[_CORRUPT] = [corrupt for _, _, _, corrupt in records]
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


def merge_schema(
    current: Schema, discovered: Sequence[tuple[str, str]], hints: Schema
) -> tuple[Schema, list[str]]:
    """``current`` plus the discovered columns it lacks (hint types win; only-NULL
    columns become strings), plus hinted columns still missing. Returns the schema and
    the names added."""
    hint_types = dict(hints)
    merged: dict[str, str] = {}
    for name, kind in discovered:
        merged[name] = merge_types(merged.get(name, "null"), kind)
    known = {name for name, _ in current}
    schema = list(current)
    added = []
    for name, kind in [*merged.items(), *((n, t) for n, t in hints if n not in merged)]:
        if name in known:
            continue
        kind = hint_types.get(name, kind)
        schema.append((name, "string" if kind == "null" else kind))
        known.add(name)
        added.append(name)
    return schema, added


# --------------------------------------------------------------------------- checkpoint


@dataclass(frozen=True)
class BatchOffsets:
    """What ``offsets/<N>.json`` records about batch N."""

    batch_id: int
    files: list[SourceFile]
    schema: Schema
    schema_changes: list[str]
    ingested_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "ingested_at": self.ingested_at.isoformat(),
            "schema": [list(column) for column in self.schema],
            "schema_changes": self.schema_changes,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchOffsets:
        return cls(
            batch_id=int(data["batch_id"]),
            files=[SourceFile.from_json(f) for f in data["files"]],
            schema=[(str(n), str(t)) for n, t in data["schema"]],
            schema_changes=list(data.get("schema_changes", [])),
            ingested_at=dt.datetime.fromisoformat(data["ingested_at"]),
        )


@dataclass(frozen=True)
class CheckpointState:
    offsets: dict[int, BatchOffsets]
    committed: set[int]

    @property
    def pending(self) -> BatchOffsets | None:
        uncommitted = sorted(set(self.offsets) - self.committed)
        return self.offsets[uncommitted[-1]] if uncommitted else None

    @property
    def next_batch_id(self) -> int:
        return max(self.offsets, default=-1) + 1

    @property
    def schema(self) -> Schema:
        return self.offsets[max(self.offsets)].schema if self.offsets else []

    def seen(self) -> dict[str, tuple[int, int]]:
        """Path -> (size, mtime_ns) as last read."""
        seen: dict[str, tuple[int, int]] = {}
        for batch_id in sorted(self.offsets):
            for f in self.offsets[batch_id].files:
                seen[f.path] = (f.size, f.mtime_ns)
        return seen


def _read_json(fs: pafs.FileSystem, path: str) -> dict[str, Any]:
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read())


def _json_files(fs: pafs.FileSystem, folder: str) -> dict[int, str]:
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return {}
    found = {}
    for info in fs.get_file_info(pafs.FileSelector(folder)):
        stem = info.base_name.removesuffix(".json")
        if info.type == pafs.FileType.File and info.base_name.endswith(".json") and stem.isdigit():
            found[int(stem)] = info.path
    return found


def load_checkpoint(checkpoint: str, source: FileSource | None = None) -> CheckpointState:
    """Read the checkpoint; with ``source``, check it belongs to that source."""
    fs, base = filesystem(checkpoint)
    metadata_path = f"{base}/metadata.json"
    if source is not None and fs.get_file_info(metadata_path).type == pafs.FileType.File:
        metadata = _read_json(fs, metadata_path)
        if (metadata.get("path"), metadata.get("format")) != (source.path, source.format):
            raise CheckpointError(
                f"checkpoint {checkpoint} belongs to source {metadata.get('path')!r} "
                f"(format {metadata.get('format')!r}), not {source.path!r} ({source.format!r}); "
                "give each source its own checkpoint, or delete the checkpoint (and the target) "
                "to re-ingest everything"
            )
    offsets = {
        batch_id: BatchOffsets.from_json(_read_json(fs, path))
        for batch_id, path in _json_files(fs, f"{base}/offsets").items()
    }
    committed = set(_json_files(fs, f"{base}/commits"))
    if committed - set(offsets):
        raise CheckpointError(
            f"checkpoint {checkpoint} has commits for batches {sorted(committed - set(offsets))} "
            "without offsets; it was edited by hand or copied partially. Restore it or start a "
            "new checkpoint (and rebuild the target)"
        )
    state = CheckpointState(offsets, committed)
    uncommitted = sorted(set(offsets) - committed)
    if len(uncommitted) > 1 or (uncommitted and uncommitted[0] != max(offsets)):
        raise CheckpointError(
            f"checkpoint {checkpoint} has uncommitted batches {uncommitted}; only the last batch "
            "can be pending. Was it shared by two concurrent runs? Restore it or start a new one"
        )
    return state


def _mark_committed(checkpoint: str, batch_id: int) -> None:
    fs, base = filesystem(checkpoint)
    path = f"{base}/commits/{batch_id}.json"
    if fs.get_file_info(path).type == pafs.FileType.File:
        return  # idempotent
    write_json(
        f"{checkpoint}/commits/{batch_id}.json",
        {"batch_id": batch_id, "committed_at": dt.datetime.now(dt.UTC).isoformat()},
    )


# (checkpoint, batch id) of pending batches ``recover`` found absent from the target in
# this process: the next ``read_new_files`` may replay each once without a callback.
_CHECKED_ABSENT: set[tuple[str, int]] = set()


def recover(checkpoint: str, *, target_has_batch: Callable[[int], bool]) -> BatchOffsets | None:
    """Resolve a pending batch left by a crash.

    If the target already holds it (``target_has_batch(N)``) it is marked committed and
    ``None`` is returned. Otherwise its offsets are returned, and the next
    ``read_new_files`` call on this checkpoint (in this process) reads it again, even
    without a ``target_has_batch`` argument.
    """
    pending = load_checkpoint(checkpoint).pending
    if pending is None:
        return None
    if target_has_batch(pending.batch_id):
        _mark_committed(checkpoint, pending.batch_id)
        return None
    _CHECKED_ABSENT.add((checkpoint, pending.batch_id))
    return pending


def delta_has_batch(spark: SparkSession, target_path: str) -> Callable[[int], bool]:
    """A ``target_has_batch`` callback for a Delta target carrying ``_batch_id``."""

    def has_batch(batch_id: int) -> bool:
        if not delta_exists(target_path):
            return False
        rows = read_delta(spark, target_path).where(F.col(BATCH_ID) == batch_id).limit(1)
        return rows.count() > 0

    return has_batch


# --------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class IncrementalBatch:
    """One batch of new files. Write ``df``, then ``commit_batch(checkpoint, batch)``."""

    batch_id: int
    files: list[str]  # read by this batch, sorted
    df: DataFrame
    schema_changes: list[str] = field(default_factory=list)  # columns added to the schema
    rewritten_files: list[str] = field(default_factory=list)  # seen before with another size/mtime
    replayed: bool = False  # a pending batch of a crashed run, read again
    schema: Schema = field(default_factory=list)  # data columns (without metadata)

    @property
    def is_empty(self) -> bool:
        return not self.files


def read_new_files(
    spark: SparkSession,
    source: FileSource,
    *,
    checkpoint: str,
    target_has_batch: Callable[[int], bool] | None = None,
    max_files: int | None = None,
    ingested_at: dt.datetime | None = None,
) -> IncrementalBatch:
    """The next batch of files under ``source.path`` not read by a committed batch.

    A pending batch (a crash between ``read_new_files`` and ``commit_batch``) is resolved
    first with ``target_has_batch`` (see ``delta_has_batch``; not needed right after
    ``recover``, which asked already): committed if the target has it, else returned
    again (``replayed=True``); with neither, a pending batch raises ``CheckpointError``. ``max_files`` caps the
    files of one batch (oldest modification time first). ``ingested_at`` (default: now,
    UTC) stamps ``_ingested_at``. With no new file the batch is empty (``is_empty``),
    nothing is recorded and ``commit_batch`` is a no-op.
    """
    if max_files is not None and max_files < 1:
        raise ValueError(f"read_new_files {source.path!r}: max_files={max_files}; expected >= 1 or None")
    fmt = text_format(source)
    state = load_checkpoint(checkpoint, source)
    pending = state.pending
    if pending is not None and target_has_batch is None and (checkpoint, pending.batch_id) in _CHECKED_ABSENT:
        _CHECKED_ABSENT.discard((checkpoint, pending.batch_id))
        target_has_batch = _absent
    if pending is not None:
        if target_has_batch is None:
            raise CheckpointError(
                f"checkpoint {checkpoint}: batch {pending.batch_id} of {source.path} was recorded but "
                "never committed (a run stopped between reading and commit_batch). Pass "
                "target_has_batch= (e.g. delta_has_batch(spark, target)), or call recover() "
                "first, so it is resolved without duplicates or loss"
            )
        if target_has_batch(pending.batch_id):
            _mark_committed(checkpoint, pending.batch_id)
        else:
            current = {f.path: f for f in list_source_files(source)}
            unchanged = [f for f in pending.files if current.get(f.path) == f]
            if unchanged:
                return IncrementalBatch(
                    batch_id=pending.batch_id,
                    files=sorted(f.path for f in unchanged),
                    df=_batch_frame(
                        spark, source, fmt, unchanged, pending.schema, pending.batch_id, pending.ingested_at
                    ),
                    schema_changes=pending.schema_changes,
                    replayed=True,
                    schema=pending.schema,
                )
            _mark_committed(checkpoint, pending.batch_id)  # nothing left to replay
        state = load_checkpoint(checkpoint, source)

    seen = state.seen()
    allow_overwrites = (source.option("allowOverwrites", "false") or "").lower() == "true"
    new = [
        f
        for f in list_source_files(source)
        if f.path not in seen or (allow_overwrites and seen[f.path] != (f.size, f.mtime_ns))
    ]
    new.sort(key=lambda f: (f.mtime_ns, f.path))
    new = sorted(new[:max_files] if max_files else new, key=lambda f: f.path)
    batch_id = state.next_batch_id
    stamp = _utc(ingested_at or dt.datetime.now(dt.UTC))
    if not new:
        schema = state.schema or _explicit_schema(spark, source)
        return IncrementalBatch(batch_id, [], _empty_frame(spark, source, schema), schema=schema)

    schema, changes = _batch_schema(spark, source, fmt, state.schema, new)
    offsets = BatchOffsets(batch_id, new, schema, changes, stamp)
    if not state.offsets:
        write_json(f"{checkpoint}/metadata.json", {"path": source.path, "format": source.format})
    write_json(f"{checkpoint}/offsets/{batch_id}.json", offsets.to_json())
    return IncrementalBatch(
        batch_id=batch_id,
        files=[f.path for f in new],
        df=_batch_frame(spark, source, fmt, new, schema, batch_id, stamp),
        schema_changes=changes,
        rewritten_files=[f.path for f in new if f.path in seen],
        schema=schema,
    )


def _absent(batch_id: int) -> bool:
    return False


def commit_batch(checkpoint: str, batch: IncrementalBatch) -> None:
    """Record that ``batch`` is in the target. Idempotent; a no-op for an empty batch."""
    if batch.is_empty:
        return
    state = load_checkpoint(checkpoint)
    if batch.batch_id not in state.offsets:
        raise CheckpointError(
            f"checkpoint {checkpoint} has no offsets for batch {batch.batch_id}; commit a batch "
            "returned by read_new_files with this same checkpoint"
        )
    _mark_committed(checkpoint, batch.batch_id)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


# --------------------------------------------------------------------------- schema


def parse_ddl(spark: SparkSession, ddl: str, *, what: str) -> Schema:
    """``[(name, type)]`` of a DDL string such as ``"id bigint, amount decimal(10,2)"``."""
    try:
        fields = spark.createDataFrame([], ddl).schema.fields
    except Exception as exc:
        raise ValueError(
            f"{what} is not valid DDL ({ddl!r}): {str(exc).splitlines()[0]}; "
            "expected e.g. 'id bigint, amount decimal(10,2), day date'"
        ) from exc
    return [(f.name, f.dataType.simpleString()) for f in fields]


def _explicit_schema(spark: SparkSession, source: FileSource) -> Schema:
    if source.format == "text":
        return list(TEXT_SCHEMA)
    if source.schema:
        return parse_ddl(spark, source.schema, what=f"FileSource {source.path!r} schema")
    return []


def _batch_schema(
    spark: SparkSession, source: FileSource, fmt: TextFormat, current: Schema, files: list[SourceFile]
) -> tuple[Schema, list[str]]:
    """The schema batch ``files`` are read with, and the columns it adds to ``current``."""
    explicit = _explicit_schema(spark, source)
    if explicit:
        known = {name for name, _ in current}
        return explicit, ([n for n, _ in explicit if n not in known] if current else [])
    hints = (
        parse_ddl(spark, source.schema_hints, what=f"FileSource {source.path!r} schema_hints")
        if source.schema_hints
        else []
    )
    if source.format == "parquet":
        discovered = [
            (f.name, f.dataType.simpleString())
            for p in files
            for f in spark.read.parquet(p.path).schema.fields
        ]
    else:
        discovered = _discover(spark, fmt, files)
    schema, added = merge_schema(current, discovered, hints)
    return schema, (added if current else [])


def _discover(spark: SparkSession, fmt: TextFormat, files: list[SourceFile]) -> list[tuple[str, str]]:
    """Columns of ``files`` in order of appearance, inferred on the workers."""
    paths = [f.path for f in files]

    def discover(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for path, content in zip(batch["path"], batch["content"]):
                columns = discover_columns(bytes(content), fmt)
                yield pd.DataFrame(
                    {
                        "file_index": pd.Series(
                            [paths.index(_match_listed(paths, path))] * len(columns), dtype="int32"
                        ),
                        "position": pd.Series(range(len(columns)), dtype="int32"),
                        "name": pd.Series([n for n, _ in columns], dtype=object),
                        "type": pd.Series([t for _, t in columns], dtype=object),
                    }
                )

    rows = (
        read_files_once(spark, paths)
        .select("path", "content")
        .mapInPandas(discover, "file_index int, position int, name string, type string")
        .collect()
    )
    return [(r["name"], r["type"]) for r in sorted(rows, key=lambda r: (r["file_index"], r["position"]))]


# --------------------------------------------------------------------------- frames


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _col(name: str) -> Column:
    return F.col(_q(name))


def _ddl(schema: Schema) -> str:
    return ", ".join(f"{_q(name)} {kind}" for name, kind in schema)


def _match_listed(listed: Sequence[str], engine_path: str) -> str:
    """The listed path an engine's ``binaryFile`` path refers to. Engines spell paths
    differently (``file:/x``, ``/x``, ``x``, URL-encoded), so compare without scheme,
    leading slashes and encoding."""

    def bare(path: str) -> str:
        return re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", "", path).lstrip("/")

    engine = bare(engine_path)
    for candidate in (engine, unquote(engine)):
        for path in listed:
            if bare(path) == candidate:
                return path
    suffixes = [p for p in listed if bare(p).endswith(engine) or engine.endswith(bare(p))]
    if len(suffixes) == 1:
        return suffixes[0]
    raise KeyError(f"file {engine_path!r} was read but is not (uniquely) among the listed files {listed}")


def _nullable(value: Column, anchor: Column) -> Column:
    """``value`` as a nullable column. A literal is NOT NULL, and Sail 0.7 silently drops
    the new columns of a ``mergeSchema`` append to a Delta table with a NOT NULL column.
    Sail folds ``when(true, lit)`` and ``nullif`` back to NOT NULL, so the condition
    tests a real column (``anchor``), which the optimizer cannot fold."""
    return F.when(anchor.isNull() | anchor.isNotNull(), value)


def _with_metadata(df: DataFrame, source: FileSource, batch_id: int, ingested_at: dt.datetime) -> DataFrame:
    anchor = F.col(SOURCE_FILE)
    return df.withColumns(
        {
            INGESTED_AT: _nullable(F.lit(ingested_at).cast("timestamp"), anchor),
            BATCH_ID: _nullable(F.lit(batch_id).cast("bigint"), anchor),
        }
    ).withColumnsRenamed({_RESCUED: source.rescued_data_column, _CORRUPT: source.corrupt_record_column})


def _empty_frame(spark: SparkSession, source: FileSource, schema: Schema) -> DataFrame:
    metadata: Schema = [
        (_RESCUED, "string"),
        (_CORRUPT, "string"),
        (SOURCE_FILE, "string"),
        (LINE_NUMBER, "int"),
        (INGESTED_AT, "timestamp"),
        (BATCH_ID, "bigint"),
    ]
    df = spark.createDataFrame([], _ddl([*schema, *metadata]))
    return df.withColumnsRenamed(
        {_RESCUED: source.rescued_data_column, _CORRUPT: source.corrupt_record_column}
    )


def _batch_frame(
    spark: SparkSession,
    source: FileSource,
    fmt: TextFormat,
    files: list[SourceFile],
    schema: Schema,
    batch_id: int,
    ingested_at: dt.datetime,
) -> DataFrame:
    if source.format == "parquet":
        typed = _parquet_frame(spark, files, schema)
    else:
        typed = _typed(_parsed_frame(spark, fmt, files, schema), schema)
    return _with_metadata(typed, source, batch_id, ingested_at)


def _parsed_frame(spark: SparkSession, fmt: TextFormat, files: list[SourceFile], schema: Schema) -> DataFrame:
    """Raw string columns of ``schema`` plus parse metadata, parsed on the workers."""
    paths = [f.path for f in files]
    columns = [name for name, _ in schema]
    types = dict(schema)

    def parse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for path, content in zip(batch["path"], batch["content"]):
                yield parse_file(bytes(content), _match_listed(paths, path), fmt, columns, types=types)

    raw_schema = [(name, "string") for name in columns]
    raw_schema += [(_RESCUED, "string"), (_CORRUPT, "string"), (SOURCE_FILE, "string"), (LINE_NUMBER, "int")]
    return read_files_once(spark, paths).select("path", "content").mapInPandas(parse, _ddl(raw_schema))


def _cast(column: Column, kind: str) -> Column:
    """``column`` as ``kind``, NULL where the value does not fit."""
    if _COMPLEX_TYPE.match(kind):
        return F.from_json(column, kind)
    return column.try_cast(kind)


def _rescue(base: Column, failures: dict[str, Column]) -> Column:
    """Merge ``{"col": raw}`` for each failed value into the JSON object ``base``."""
    if not failures:
        return base
    extra = F.to_json(F.struct(*[value.alias(name) for name, value in failures.items()]))
    merged = F.concat(
        base.substr(F.lit(1), F.length(base) - 1), F.lit(","), extra.substr(F.lit(2), F.length(extra))
    )
    return F.when(extra == "{}", base).when(base.isNull(), extra).otherwise(merged)


def _typed(raw: DataFrame, schema: Schema) -> DataFrame:
    """Cast raw string columns to ``schema``; values that do not fit go to ``_rescued_data``."""
    columns, failures = [], {}
    for name, kind in schema:
        value = _col(name)
        if kind == "string":
            columns.append(value.alias(name))
            continue
        typed = _cast(value, kind)
        columns.append(typed.alias(name))
        failures[name] = F.when(value.isNotNull() & typed.isNull(), value)
    rescued = _rescue(F.col(_RESCUED), failures).alias(_RESCUED)
    return raw.select(*columns, rescued, *[F.col(c) for c in _PARSED_METADATA[1:]])


def _parquet_frame(spark: SparkSession, files: list[SourceFile], schema: Schema) -> DataFrame:
    """Each file read natively and conformed to ``schema``: type mismatches and columns
    the schema lacks go to ``_rescued_data``."""
    frames = []
    for f in files:
        df = spark.read.parquet(f.path)
        present = {field.name: field.dataType.simpleString() for field in df.schema.fields}
        columns, failures = [], {}
        for name, kind in schema:
            if name not in present:
                columns.append(F.lit(None).cast(kind).alias(name))
            elif present[name] == kind:
                columns.append(_col(name).alias(name))
            else:
                typed = _col(name).try_cast(kind)
                columns.append(typed.alias(name))
                failures[name] = F.when(_col(name).isNotNull() & typed.isNull(), _col(name).cast("string"))
        known = {name for name, _ in schema}
        extra = [n for n in present if n not in known]
        base = F.to_json(F.struct(*[_col(n) for n in extra])) if extra else F.lit(None).cast("string")
        base = F.when(base != "{}", base)
        frames.append(
            df.select(
                *columns,
                _rescue(base, failures).alias(_RESCUED),
                F.lit(None).cast("string").alias(_CORRUPT),
                _nullable(F.lit(f.path), _col(df.columns[0])).alias(SOURCE_FILE),
                F.lit(None).cast("int").alias(LINE_NUMBER),
            )
        )
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def read_files_once(spark: Any, paths: list[str]) -> Any:
    """``binaryFile`` rows (path, content), one per file.

    Sail 0.7 returns a file twice when its byte range straddles a split boundary
    (seen with ten uneven ~0.1 MB files), so rows are deduplicated by path.
    """
    return spark.read.format("binaryFile").load(paths).dropDuplicates(["path"])
