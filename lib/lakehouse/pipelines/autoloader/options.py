"""What a file source is and how its files are read: ``FileSource`` (Auto Loader's
``cloudFiles`` options), ``TextFormat`` (parsing settings shipped to the workers) and
the names of the metadata columns every batch carries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Format = Literal["csv", "json", "parquet", "text"]
Schema = list[tuple[str, str]]  # (column name, Spark type as DDL, e.g. "bigint", "decimal(10,2)")

SOURCE_FILE = "_source_file"
LINE_NUMBER = "_line_number"
INGESTED_AT = "_ingested_at"
BATCH_ID = "_batch_id"
# Names the parser uses; renamed to FileSource.rescued_data_column / corrupt_record_column.
RESCUED = "_rescued_data"
CORRUPT = "_corrupt_record"
PARSED_METADATA = (RESCUED, CORRUPT, SOURCE_FILE, LINE_NUMBER)
TEXT_SCHEMA: Schema = [("value", "string")]

_COMMON_OPTIONS = frozenset({"pathglobfilter", "allowoverwrites"})
_OPTIONS: dict[str, frozenset[str]] = {
    "csv": frozenset({"delimiter", "sep", "encoding", "charset", "header", "quote", "escape"})
    | _COMMON_OPTIONS,
    "json": frozenset({"multiline", "encoding", "charset"}) | _COMMON_OPTIONS,
    "text": frozenset({"encoding", "charset"}) | _COMMON_OPTIONS,
    "parquet": _COMMON_OPTIONS,
}


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
    rescued_data_column: str = RESCUED
    corrupt_record_column: str = CORRUPT

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
