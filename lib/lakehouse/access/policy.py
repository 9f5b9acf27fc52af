"""Roles and policies of conf/base/access.yaml, and their enforcement on data.

Three levels, checked in this order:

- table: a role reads the gold tables of its ``domains`` plus the ones named in
  ``tables``, minus ``deny_tables``;
- row: ``rows: {column: [values]}`` keeps only matching rows of tables that have the
  column (a site manager's ``site_id``); tables without it are not site-specific;
- column: ``pii_columns`` are removed for everyone, ``deny_columns`` for the role.

``apply_policy`` enforces all three on a pyarrow Table, a pandas DataFrame or a Spark
DataFrame, so exports apply the very rules the API does.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

Domain = Literal["pharma", "energy"]
_DOMAINS = ("pharma", "energy")
Data = TypeVar("Data")


class AccessConfigError(ValueError):
    """access.yaml is missing or invalid."""


class AccessDenied(PermissionError):
    """The role may not read this table or column. ``code`` is stable for API clients."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or {}


class RoleSpec(BaseModel, extra="forbid"):
    description: str = ""
    domains: list[Domain] = []
    tables: list[str] = []  # more tables, outside the role's domains
    deny_tables: list[str] = []
    deny_columns: list[str] = []  # fnmatch patterns on "column" or "table.column"
    rows: dict[str, list[str | int]] = {}  # column -> allowed values


class TablesSpec(BaseModel, extra="forbid"):
    exclude: list[str] = []
    date_column: str = "date_key"
    filters: dict[str, str] = Field(default_factory=lambda: {"site": "site_id", "product": "product_id"})


class AccessPolicy(BaseModel, extra="forbid"):
    """The whole of access.yaml."""

    pii_columns: list[str] = []
    tables: TablesSpec = TablesSpec()
    roles: dict[str, RoleSpec]

    @field_validator("roles")
    @classmethod
    def _at_least_one_role(cls, roles: dict[str, RoleSpec]) -> dict[str, RoleSpec]:
        if not roles:
            raise ValueError("define at least one role")
        return roles

    def role(self, name: str) -> RoleSpec:
        try:
            return self.roles[name]
        except KeyError:
            raise AccessConfigError(f"unknown role {name!r}; roles of access.yaml: {sorted(self.roles)}") from None


@dataclass(frozen=True)
class GoldTable:
    """A gold Delta table: ``gold/domain=<domain>/model=<model>/table=<name>``."""

    domain: str
    model: str
    name: str
    path: str = ""

    @classmethod
    def parse(cls, qualified: str) -> GoldTable:
        """From a catalog name ``gold.<domain>.<model>.<name>`` (lakehouse.catalog)."""
        parts = qualified.split(".")
        if len(parts) != 4 or parts[0] != "gold" or parts[1] not in _DOMAINS:
            raise ValueError(
                f"table {qualified!r}: expected a gold catalog name gold.<pharma|energy>.<model>.<table>, "
                "e.g. gold.pharma.star.fact_ventes"
            )
        return cls(domain=parts[1], model=parts[2], name=parts[3])

    @property
    def qualified(self) -> str:
        return f"gold.{self.domain}.{self.model}.{self.name}"


def load_access_policy(path: str | Path) -> AccessPolicy:
    """Read and validate access.yaml; errors name the file and the bad field."""
    path = Path(path)
    if not path.is_file():
        raise AccessConfigError(f"no access policy file at {path}")
    try:
        return AccessPolicy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except ValidationError as exc:
        raise AccessConfigError(f"invalid access policy {path}: {exc}") from exc


# --- decisions -----------------------------------------------------------------------------


def can_read_table(policy: AccessPolicy, role: str, table: GoldTable) -> bool:
    spec = policy.role(role)
    if table.name in policy.tables.exclude or table.name in spec.deny_tables:
        return False
    return table.domain in spec.domains or table.name in spec.tables


def check_table(policy: AccessPolicy, role: str, table: GoldTable) -> None:
    if not can_read_table(policy, role, table):
        raise AccessDenied(
            "table_forbidden",
            f"role {role!r} may not read table {table.name!r} (domain {table.domain})",
            {"role": role, "table": table.name, "domain": table.domain},
        )


def is_pii(policy: AccessPolicy, table: GoldTable, column: str) -> bool:
    return _matches(policy.pii_columns, table, column)


def visible_columns(policy: AccessPolicy, role: str, table: GoldTable, columns: Iterable[str]) -> list[str]:
    """The columns the role may see, in the table's order (new columns show up unless denied)."""
    denied = policy.role(role).deny_columns
    return [c for c in columns if not is_pii(policy, table, c) and not _matches(denied, table, c)]


def check_columns(
    policy: AccessPolicy, role: str, table: GoldTable, requested: Sequence[str], available: Sequence[str]
) -> None:
    """Raise AccessDenied if a requested column exists but is hidden from the role."""
    allowed = set(visible_columns(policy, role, table, available))
    hidden = list(dict.fromkeys(c for c in requested if c in available and c not in allowed))
    if hidden:
        raise AccessDenied(
            "column_forbidden",
            f"role {role!r} may not read column(s) {', '.join(hidden)} of table {table.name!r}",
            {"role": role, "table": table.name, "columns": hidden},
        )


def row_conditions(policy: AccessPolicy, role: str, columns: Iterable[str]) -> dict[str, list[Any]]:
    """The role's row filters that apply to a table with these columns."""
    present = set(columns)
    return {column: values for column, values in policy.role(role).rows.items() if column in present}


def row_filter_expression(policy: AccessPolicy, role: str, schema: pa.Schema) -> ds.Expression | None:
    """The role's row filter as a pyarrow expression (pushed down to Parquet), or None."""
    expression = None
    for column, values in row_conditions(policy, role, schema.names).items():
        typed = pa.array(values).cast(schema.field(column).type)
        term = pc.field(column).isin(typed)
        expression = term if expression is None else expression & term
    return expression


# --- enforcement on data -------------------------------------------------------------------


def apply_policy(role: str, table: GoldTable | str, data: Data, *, policy: AccessPolicy | None = None) -> Data:
    """Return ``data`` (pyarrow Table, pandas or Spark DataFrame) as ``role`` may see it:
    rows filtered, hidden and personal columns dropped; raise AccessDenied if the role
    may not read the table. ``table`` is a GoldTable or ``gold.<domain>.<model>.<name>``;
    ``policy`` defaults to the project's access.yaml."""
    policy = policy or default_policy()
    table = table if isinstance(table, GoldTable) else GoldTable.parse(table)
    check_table(policy, role, table)
    columns = _column_names(data)
    conditions = row_conditions(policy, role, columns)
    keep = visible_columns(policy, role, table, columns)
    if isinstance(data, pa.Table):
        for column, values in conditions.items():
            data = data.filter(pc.is_in(data[column], pa.array(values).cast(data.schema.field(column).type)))
        return data.select(keep)
    if _is_spark(data):
        from pyspark.sql import functions as F

        for column, values in conditions.items():
            data = data.filter(F.col(column).isin(list(values)))
        return data.select(*keep)
    for column, values in conditions.items():  # pandas
        data = data[data[column].isin(list(values))]
    return data.loc[:, keep].reset_index(drop=True)


def default_policy() -> AccessPolicy:
    from lakehouse.config import load_settings

    settings = load_settings()
    return load_access_policy(settings.project_root / settings.api.access_file)


def _matches(patterns: Iterable[str], table: GoldTable, column: str) -> bool:
    qualified = f"{table.name}.{column}"
    return any(fnmatch.fnmatchcase(column, p) or fnmatch.fnmatchcase(qualified, p) for p in patterns)


def _column_names(data: Any) -> list[str]:
    if isinstance(data, pa.Table):
        return list(data.column_names)
    if _is_spark(data) or _is_pandas(data):
        return [str(c) for c in data.columns]
    raise TypeError(f"apply_policy: expected a pyarrow Table, pandas or Spark DataFrame, got {type(data).__name__}")


def _is_spark(data: Any) -> bool:
    return type(data).__module__.startswith("pyspark.sql")


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas")
