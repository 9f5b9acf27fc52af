"""``read_files`` of the definition API: an incremental file source declared by a
table's function, with Auto Loader's (``cloudFiles.*``) option names mapped to this
reader's or refused with what to do instead."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lakehouse.pipelines.autoloader.options import FileSource
from lakehouse.pipelines.graph import GraphError


@dataclass(frozen=True)
class IncrementalFiles:
    """What ``read_files`` returns: a file source plus transformations applied to each
    batch of new files (``.transform(fn)``, like chaining on ``readStream``)."""

    source: FileSource
    transforms: tuple[Callable[[Any], Any], ...] = ()

    def transform(self, function: Callable[[Any], Any]) -> IncrementalFiles:
        return IncrementalFiles(self.source, (*self.transforms, function))

    @property
    def schema(self) -> str | None:
        return self.source.schema

    def apply(self, frame: Any) -> Any:
        for function in self.transforms:
            frame = function(frame)
        return frame


# Auto Loader (``cloudFiles.*``) and ``read_files`` option names, lower-cased, mapped to ours.
_ALIASES = {
    "cloudfiles.format": "format",
    "cloudfiles.schemahints": "schema_hints",
    "schemahints": "schema_hints",
    "rescueddatacolumn": "rescued_data_column",
    "cloudfiles.rescueddatacolumn": "rescued_data_column",
    "columnnameofcorruptrecord": "corrupt_record_column",
    "cloudfiles.allowoverwrites": "allowOverwrites",
}
# Options whose only effect here is the one they have anyway: accepted and ignored.
_NO_EFFECT = {
    "cloudfiles.schemalocation": "the schema is kept in the flow's checkpoint",
    "cloudfiles.maxfilespertrigger": "a run reads every new file (Trigger.AvailableNow)",
    "cloudfiles.maxbytespertrigger": "a run reads every new file (Trigger.AvailableNow)",
}
# Options accepted with the value that describes what is done here, refused otherwise.
_FIXED = {
    "cloudfiles.includeexistingfiles": ("true", "the first run reads every file already in the folder"),
    "cloudfiles.usenotifications": ("false", "new files are found by listing the folder"),
    "cloudfiles.validateoptions": ("true", "options are always validated"),
}


def _auto_loader_options(
    path: str, format: str | None, schema: str | None, schema_hints: str | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """``read_files`` arguments with Auto Loader's option names mapped to ours; an option
    with no equivalent is refused, naming it and what to do instead."""
    where = f"read_files({path!r})"
    fields: dict[str, Any] = {"format": format, "schema": schema, "schema_hints": schema_hints}
    reader: dict[str, str] = {}
    for key, value in options.items():
        lower = key.lower()
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if lower in _ALIASES:
            field_name = _ALIASES[lower]
            if field_name == "allowOverwrites":
                reader["allowOverwrites"] = text
                continue
            if fields.get(field_name) not in (None, text):
                raise GraphError(f"{where}: {key}={text!r} contradicts {field_name}={fields[field_name]!r}")
            fields[field_name] = text
        elif lower in _NO_EFFECT:
            continue
        elif lower in _FIXED:
            expected, meaning = _FIXED[lower]
            if text.lower() != expected:
                raise GraphError(f"{where}: {key}={text!r} is not supported: {meaning}; remove the option")
        elif lower == "cloudfiles.schemaevolutionmode":
            done = "rescue" if fields.get("schema") or schema else "addNewColumns"
            if text != done:
                raise GraphError(
                    f"{where}: {key}={text!r} is not supported here. Without a schema, new columns are "
                    "added (addNewColumns); with schema=..., unknown columns go to the rescued data "
                    "column (rescue). Remove the option, or give or drop schema= to get the other mode"
                )
        elif lower == "cloudfiles.infercolumntypes":
            fmt = (fields.get("format") or options.get("cloudFiles.format") or "").lower()
            inferred = "true" if fmt in ("json", "parquet") else "false"
            if text.lower() != inferred:
                raise GraphError(
                    f"{where}: {key}={text!r} is not supported for format {fmt!r}: JSON values are "
                    "typed (bigint, double, boolean, string), CSV columns are strings; set the types "
                    "you need with cloudFiles.schemaHints or schema="
                )
        elif lower.startswith("cloudfiles."):
            raise GraphError(
                f"{where}: the Auto Loader option {key!r} is not supported. Supported: cloudFiles.format, "
                "cloudFiles.schemaHints, cloudFiles.allowOverwrites, cloudFiles.schemaEvolutionMode and "
                "cloudFiles.inferColumnTypes (the values this reader follows), "
                "cloudFiles.includeExistingFiles=true, cloudFiles.useNotifications=false; "
                "cloudFiles.schemaLocation and cloudFiles.max*PerTrigger are accepted and have no effect"
            )
        else:
            reader[key] = text
    if not fields.get("format"):
        raise GraphError(f"{where}: give the file format, format='json' (or 'cloudFiles.format')")
    fields["options"] = reader
    return fields


def read_files(
    path: str,
    *,
    format: str | None = None,
    schema: str | None = None,
    schema_hints: str | None = None,
    **options: Any,
) -> IncrementalFiles:
    """Incremental file source (the Auto Loader equivalent): each run of the table
    reads only files it has not seen. ``path`` is relative to the lake root or absolute.
    ``options`` are the reader's (``sep``, ``encoding``, ``header``, ``multiline``...);
    Auto Loader's names are accepted (``**{"cloudFiles.format": "csv",
    "cloudFiles.schemaHints": "id int", "rescuedDataColumn": "_rescued"}``) and
    options with no equivalent here are refused with what to do instead."""
    fields = _auto_loader_options(path, format, schema, schema_hints, options)
    extra = {k: fields[k] for k in ("rescued_data_column", "corrupt_record_column") if fields.get(k)}
    try:
        source = FileSource(
            path=path,
            format=fields["format"],
            options=fields["options"],
            schema=fields["schema"],
            schema_hints=fields["schema_hints"],
            **extra,
        )
    except ValueError as exc:
        raise GraphError(f"read_files({path!r}): {exc}") from None
    return IncrementalFiles(source)
