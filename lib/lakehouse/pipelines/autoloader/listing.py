"""The files of a source, as listed: their identity and how an engine's spelling of
a path maps back to the listed one."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pyarrow.fs as pafs

from lakehouse.lake import filesystem, scheme
from lakehouse.pipelines.autoloader.options import FileSource


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


def match_listed(listed: Sequence[str], engine_path: str) -> str:
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
