"""Find the Delta tables of a lake and describe them (layer, name, rows, version).

A first, file-based view of the lake; the governed catalog (owners, descriptions,
lineage) builds on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow.fs as pafs

from lakehouse import maintenance
from lakehouse.lake import filesystem, scheme

_LAYERS = ("bronze", "silver", "gold", "_system")


@dataclass(frozen=True)
class TableInfo:
    layer: str
    name: str  # e.g. silver.pharma.order_lines, gold.pharma.star.fact_ventes
    path: str
    rows: int
    version: int


def find_tables(root: str) -> list[str]:
    """Paths of Delta tables under the lake's layer folders (those with a _delta_log)."""
    fs, base = filesystem(root)
    prefix = scheme(root)
    tables = []
    for layer in _LAYERS:
        layer_path = f"{base}/{layer}"
        if fs.get_file_info(layer_path).type != pafs.FileType.Directory:
            continue
        for info in fs.get_file_info(pafs.FileSelector(layer_path, recursive=True)):
            if info.type == pafs.FileType.Directory and info.base_name == "_delta_log":
                tables.append(prefix + info.path.rsplit("/", 1)[0])
    return sorted(tables)


def table_name(root: str, path: str) -> str:
    """'<root>/silver/domain=pharma/table=order_lines' -> 'silver.pharma.order_lines'."""
    relative = path[len(root) :].strip("/")
    parts = [re.sub(r"^[a-z_]+=", "", part) for part in relative.split("/")]
    return ".".join(parts)


def describe_tables(root: str) -> list[TableInfo]:
    infos = []
    for path in find_tables(root):
        name = table_name(root, path)
        infos.append(
            TableInfo(
                layer=name.split(".", 1)[0],
                name=name,
                path=path,
                rows=maintenance.row_count(path),
                version=maintenance.version(path),
            )
        )
    return infos
