"""How values are spelled in the landing files, and how files are written.

French ERP conventions: ``;`` separator, latin-1, decimal comma, ``dd/mm/yyyy``
dates, a field quoted only when it holds ``;`` or ``"``, ``\\n`` line ends.
JSON files are UTF-8 with ISO 8601 dates and UTC timestamps ending in ``Z``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from lakehouse.generate.defects import DefectRecord

CSV_SEPARATOR = ";"
CSV_ENCODING = "latin-1"


@dataclass
class CsvFile:
    """One rendered CSV file: header fields and data lines (without line ends)."""

    relative_path: str
    drop_date: dt.date
    header: tuple[str, ...]
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join([csv_line(self.header), *self.lines]) + "\n"


@dataclass
class CsvExport:
    """Files of one entity, the defects injected into them and the record count."""

    files: list[CsvFile]
    defects: list[DefectRecord]

    @property
    def records(self) -> int:
        return sum(len(f.lines) for f in self.files)


def ean13_check_digit(first12: str) -> int:
    """EAN-13 check digit of 12 digits (weights 1, 3, 1, 3, ... from the left)."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"expected 12 digits, found {first12!r}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def is_valid_ean13(code: str) -> bool:
    """True for 13 digits whose last digit is the EAN-13 check digit of the others."""
    return len(code) == 13 and code.isdigit() and ean13_check_digit(code[:12]) == int(code[12])


def cip13_from_body(body: int) -> str:
    """CIP13 code '34009' + 7-digit ``body`` + EAN-13 check digit."""
    first12 = f"34009{body:07d}"
    return first12 + str(ean13_check_digit(first12))


def fr_date(values: pd.Series) -> pd.Series:
    """Dates as 'dd/mm/yyyy' strings."""
    return pd.to_datetime(values).dt.strftime("%d/%m/%Y")


def fr_decimal(values: Sequence[float] | np.ndarray | pd.Series, decimals: int) -> np.ndarray:
    """Numbers with ``decimals`` digits and a decimal comma: 3.5 -> '3,50'."""
    array = np.round(np.asarray(values, dtype=float), decimals)
    return np.array([f"{v:.{decimals}f}".replace(".", ",") for v in array], dtype=object)


def csv_field(value: str) -> str:
    """Quote a field only when the separator or a quote would break it."""
    if CSV_SEPARATOR in value or '"' in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(fields: Iterable[str]) -> str:
    return CSV_SEPARATOR.join(csv_field(f) for f in fields)


def iso_ts(minute_index: np.ndarray | int, start: dt.date) -> np.ndarray:
    """Minute offsets from ``start`` 00:00 UTC as 'YYYY-MM-DDTHH:MM:00Z' strings."""
    base = np.datetime64(start.isoformat(), "m")
    stamps = base + np.asarray(minute_index, dtype="int64").astype("timedelta64[m]")
    return np.char.add(np.datetime_as_string(stamps, unit="s"), "Z").astype(object)


def json_line(record: dict[str, Any]) -> str:
    """One compact JSON object, UTF-8 characters kept readable."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def write_text_atomic(path: Path, text: str, encoding: str) -> int:
    """Write ``text`` to ``path`` through a temporary sibling, then rename, so a reader
    never sees half a file. Returns the byte size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode(encoding)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return len(data)


def clear_folder(folder: Path) -> None:
    """Remove ``folder`` and all it holds, if it exists."""
    if folder.is_dir():
        shutil.rmtree(folder)
    elif folder.exists():
        folder.unlink()
