"""Independent readers of the landing files: what a consumer would find in them."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path


def lake_files(lake: Path) -> dict[str, bytes]:
    """Every file under ``lake``: lake-relative path -> bytes."""
    return {str(p.relative_to(lake)): p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file()}


def drop_date(path: Path) -> dt.date:
    return dt.date.fromisoformat(path.parent.name)


def entity_files(lake: Path, folder: str, pattern: str) -> list[Path]:
    """Files of one landing entity folder, in drop-date order."""
    return sorted((lake / "landing" / folder).glob(f"*/{pattern}"), key=lambda p: (drop_date(p), p.name))


def csv_rows(path: Path) -> tuple[list[str], list[tuple[int, str, list[str]]]]:
    """Header fields and ``(line_number, raw line, fields)`` of a French ERP CSV."""
    text = path.read_bytes().decode("latin-1")
    lines = text.split("\n")
    assert lines[-1] == "", f"{path} should end with a newline"
    header = next(csv.reader([lines[0]], delimiter=";"))
    rows = [
        (number, line, next(csv.reader([line], delimiter=";")))
        for number, line in enumerate(lines[1:-1], start=2)
    ]
    return header, rows


def parse_fr_date(text: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(text, "%d/%m/%Y").date()
    except ValueError:
        return None


def jsonl_lines(path: Path) -> list[tuple[int, str, dict | None]]:
    """``(line_number, raw line, object or None when it does not parse)``."""
    out = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        try:
            out.append((number, line, json.loads(line)))
        except json.JSONDecodeError:
            out.append((number, line, None))
    return out


def relative(lake: Path, path: Path) -> str:
    return str(path.relative_to(lake))
