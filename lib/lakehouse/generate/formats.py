"""How values are spelled in the landing files, and how files are written.

French ERP conventions: ``;`` separator, latin-1, decimal comma, ``dd/mm/yyyy``
dates, a field quoted only when it holds ``;`` or ``"``, ``\\n`` line ends.
JSON files are UTF-8 with ISO 8601 dates and UTC timestamps ending in ``Z``.

Large files are rendered column by column with Arrow (``csv_lines``, ``json_lines``),
which spell every value exactly as ``csv_line`` and compact ``json.dumps`` (UTF-8
characters kept) do for one row.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


def fr_decimal(values: Sequence[float] | np.ndarray | pd.Series, decimals: int) -> np.ndarray:
    """Numbers with ``decimals`` digits and a decimal comma: 3.5 -> '3,50' (as
    ``f"{round(v, decimals):.{decimals}f}"``, vectorised)."""
    rounded = np.round(np.asarray(values, dtype=float), decimals)
    # np.round is rint(v * 10**d) / 10**d: the same integer comes back exactly.
    units = np.rint(np.abs(rounded) * 10.0**decimals).astype(np.int64)
    whole, fraction = np.divmod(units, 10**decimals)
    text = pc.cast(pa.array(whole), pa.string())
    if decimals > 0:
        digits = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), decimals, "0")
        text = pc.binary_join_element_wise(text, digits, ",")
    sign = pa.array(np.where(np.signbit(rounded), "-", ""))
    return pc.binary_join_element_wise(sign, text, "").to_numpy(zero_copy_only=False)


def csv_field(value: str) -> str:
    """Quote a field only when the separator or a quote would break it."""
    if CSV_SEPARATOR in value or '"' in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(fields: Iterable[str]) -> str:
    return CSV_SEPARATOR.join(csv_field(f) for f in fields)


def csv_lines(columns: Sequence[np.ndarray | pa.Array]) -> list[str]:
    """Rows of string columns as CSV lines, each field quoted as :func:`csv_field` does."""
    fields = []
    for column in columns:
        text = pa.array(column, pa.string())
        needs_quotes = pc.match_substring_regex(text, r'[;"\n]')
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        fields.append(pc.if_else(needs_quotes, quoted, text))
    return pc.binary_join_element_wise(*fields, CSV_SEPARATOR).to_pylist()


def json_strings(values: Sequence[object] | np.ndarray | pd.Series) -> pa.Array:
    """Strings (None -> null) as JSON text, as ``json.dumps(ensure_ascii=False)`` spells them."""
    text = pa.array(values, pa.string(), from_pandas=True)
    plain = pc.binary_join_element_wise('"', text, '"', "")
    escaped = pc.fill_null(pc.match_substring_regex(text, r'[\x00-\x1f"\\]'), False)
    if pc.any(escaped).as_py():  # rare: let json spell those few
        rows = np.flatnonzero(escaped.to_numpy(zero_copy_only=False))
        spelled = plain.to_pylist()
        for row in rows:
            spelled[row] = json.dumps(text[row].as_py(), ensure_ascii=False)
        plain = pa.array(spelled, pa.string())
    return pc.fill_null(plain, "null")


def json_numbers(values: Sequence[object] | np.ndarray | pd.Series) -> pa.Array:
    """Integers or floats (None -> null) as JSON text; a whole float keeps its '.0'
    (``1.0``), as json and pandas write it. Floats must be free of exponents: rounded
    values between 1e-5 and 1e15, as the generator writes."""
    array = pa.array(values, from_pandas=True)
    text = pc.cast(array, pa.string())
    if pa.types.is_floating(array.type):
        whole = pc.invert(pc.match_substring(text, "."))
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    return pc.fill_null(text, "null")


@functools.cache
def _fraction_texts(decimals: int, then: str) -> pa.Array:
    """'.<digits>' + ``then`` for every fraction 0 .. 10**decimals - 1: trailing zeros
    dropped, one digit kept ('.5', '.0')."""
    return pa.array(["." + (f"{f:0{decimals}d}".rstrip("0") or "0") + then for f in range(10**decimals)])


def json_fixed_point_parts(units: np.ndarray, decimals: int, then: str = "") -> list[pa.Array]:
    """Non-negative numbers given as integers of their last digit (``units /
    10**decimals``) as two texts to join: the whole part, and the fraction followed by
    ``then``. Joined, they are the float as json and pandas spell it (``12.5``,
    ``3.0``); a lookup and an integer cast, much faster than formatting floats."""
    units = np.asarray(units, dtype=np.int64)
    if len(units) and units.min() < 0:
        raise ValueError("json_fixed_point_parts spells non-negative numbers only")
    whole, fraction = np.divmod(units, 10**decimals)
    return [pc.cast(pa.array(whole), pa.string()), _fraction_texts(decimals, then).take(pa.array(fraction))]


def json_fixed_point(units: np.ndarray, decimals: int) -> pa.Array:
    """:func:`json_fixed_point_parts` joined: one JSON number per value."""
    return pc.binary_join_element_wise(*json_fixed_point_parts(units, decimals), "")


def json_values(values: Sequence[object] | np.ndarray | pd.Series) -> pa.Array:
    """A column of strings or numbers (None -> null) as JSON text."""
    array = pa.array(values, from_pandas=True)
    if pa.types.is_string(array.type) or pa.types.is_null(array.type):
        return json_strings(array)
    return json_numbers(array)


def json_lines(fields: dict[str, pa.Array]) -> pa.Array:
    """One compact JSON object per row from columns already spelled as JSON text
    (:func:`json_values`), keys in the order given."""
    parts: list[pa.Array | str] = []
    for i, (name, text) in enumerate(fields.items()):
        parts += [("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":", text]
    return pc.binary_join_element_wise(*parts, "}", "")


def text_bytes(lines: pa.Array, encoding: str = "utf-8") -> bytes:
    """Lines joined, each ended by a newline, encoded (joined in one Arrow call)."""
    if len(lines) == 0:
        return b""
    whole = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
    joined = pc.binary_join(whole, "\n")[0]
    if encoding == "utf-8":  # Arrow's strings are UTF-8 already
        return joined.as_buffer().to_pybytes() + b"\n"
    return (joined.as_py() + "\n").encode(encoding)


def iso_ts(minute_index: np.ndarray | int, start: dt.date) -> np.ndarray:
    """Minute offsets from ``start`` 00:00 UTC as 'YYYY-MM-DDTHH:MM:00Z' strings."""
    base = np.datetime64(start.isoformat(), "m")
    stamps = base + np.asarray(minute_index, dtype="int64").astype("timedelta64[m]")
    return np.char.add(np.datetime_as_string(stamps, unit="s"), "Z").astype(object)


def write_text_atomic(path: Path, text: str | bytes, encoding: str) -> int:
    """Write ``text`` (or bytes already encoded) to ``path`` through a temporary
    sibling, then rename, so a reader never sees half a file. Returns the byte size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text if isinstance(text, bytes) else text.encode(encoding)
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
