"""What a materialized view's result depends on, so a refresh that would change
nothing can be skipped.

A materialized view's result is a function of its query plan and of the data the
plan reads. The plan is the Spark Connect message the definition built (literals
such as the run date included; plan ids and call sites, which differ from one
process to the next, normalised away), and the data is the version of every Delta
table it reads. When both are what they were at the last refresh, recomputing
would write the same rows again.

Plans whose result can change with the same inputs are not ``reproducible`` and are
always recomputed: non-deterministic functions (``current_timestamp``, ``rand``...),
non-deterministic user functions, and reads of anything but a Delta table by path
(files, JDBC, SQL text, catalog tables), whose version we cannot know.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from pyspark.sql import DataFrame

from lakehouse.engine.compat import connect_plan

NON_DETERMINISTIC_FUNCTIONS = frozenset(
    {
        "current_date",
        "current_timestamp",
        "curdate",
        "localtimestamp",
        "now",
        "rand",
        "randn",
        "random",
        "randstr",
        "uniform",
        "uuid",
        "shuffle",
        "monotonically_increasing_id",
        "spark_partition_id",
        "input_file_name",
        "input_file_block_start",
        "input_file_block_length",
    }
)
# Relations that read data we cannot version.
_OPAQUE_RELATIONS = frozenset({"named_table", "sql", "with_relations", "catalog"})


@dataclass(frozen=True)
class PlanFingerprint:
    digest: str  # sha256 of the normalised plan
    tables: dict[str, int | None]  # Delta table path -> version read (None: no table there)
    reproducible: bool  # the same plan over the same versions gives the same rows

    def to_json(self) -> dict[str, object]:
        return {"digest": self.digest, "tables": self.tables}


class _Opaque(Exception):
    """The plan's result may change while its inputs do not."""


def fingerprint(frame: DataFrame, version_of: Callable[[str], int | None]) -> PlanFingerprint | None:
    """The plan of ``frame`` and the versions of the Delta tables it reads
    (``version_of(path)``, None for a path holding no table); not ``reproducible`` if
    its result can change with the same inputs. None for a DataFrame of another kind
    than Spark Connect's (nothing to inspect)."""
    plan = connect_plan(frame)
    if plan is None:
        return None
    paths: set[str] = set()
    flags = {"reproducible": True}
    _normalise(plan, {}, paths, flags)
    tables = {path: version_of(path) for path in sorted(paths)}
    digest = hashlib.sha256(plan.SerializeToString(deterministic=True)).hexdigest()
    reproducible = flags["reproducible"] and None not in tables.values()
    return PlanFingerprint(digest, tables, reproducible)


def _normalise(message: Message, plan_ids: dict[int, int], paths: set[str], flags: dict[str, bool]) -> None:
    """Number plan ids in order of appearance, drop call sites (and what is left
    empty by that), collect the Delta
    paths read; ``flags['reproducible']`` becomes False on what makes the result
    unknowable from the plan."""
    name = message.DESCRIPTOR.name
    if name == "DataSource":
        if getattr(message, "format", "") == "delta":
            paths.update(message.paths)
        else:
            flags["reproducible"] = False
    elif name == "UnresolvedFunction" and message.function_name.lower() in NON_DETERMINISTIC_FUNCTIONS:
        flags["reproducible"] = False
    elif name == "CommonInlineUserDefinedFunction" and not message.deterministic:
        flags["reproducible"] = False
    for field, value in message.ListFields():
        if field.name == "origin":
            message.ClearField("origin")
        elif field.name == "plan_id" and field.type != FieldDescriptor.TYPE_MESSAGE:
            message.plan_id = plan_ids.setdefault(value, len(plan_ids))
        elif field.name in _OPAQUE_RELATIONS and name in ("Relation", "Read"):
            flags["reproducible"] = False
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                if field.message_type.GetOptions().map_entry:
                    continue  # string maps (options): hashed as they are
                for item in value:
                    _normalise(item, plan_ids, paths, flags)
            else:
                _normalise(value, plan_ids, paths, flags)
                if field.name == "common" and not value.ListFields():
                    message.ClearField("common")  # held only a call site (captured on some threads only)
