"""Dataset contracts: what a table promises its readers, declared on its definition.

    @dp.materialized_view(
        path="gold/domain=pharma/model=star/table=fact_ventes",
        contract=dp.Contract(
            keys=("order_id", "line_number"),
            grain="one row per order line",
            owner="sales-analytics",
            foreign_keys={"product_sk": "dim_produit", "site_sk": "dim_site", "date_key": "dim_temps"},
        ),
    )
    def fact_ventes(...): ...

The same facts Databricks keeps as a table's PRIMARY KEY / FOREIGN KEY constraints and
tags, and dbt as a model's ``constraints``, ``unique_key`` and ``meta.owner``. They are
written once, here, and everything else reads them from the graph: the quality suites'
key and foreign-key checks, the BI exports' keys, the catalog's owner, grain and PII
tags, and the keys table of ``docs/star_schema.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from lakehouse.pipelines.graph import Dataset, PipelineGraph

PiiKind = Literal["personal", "pseudonymised"]


@dataclass(frozen=True)
class Contract:
    """The keys and ownership of one dataset.

    - ``keys``: the primary key, never NULL, one row per value (the grain as columns);
    - ``grain``: the same in one sentence ("one row per order line");
    - ``owner``: the team answering for the table (a team of ``owners:`` in catalog.yaml);
    - ``foreign_keys``: column -> the dataset whose key column of the same name it
      references (a star's facts and their dimensions);
    - ``natural_key``: another unique key, the one tables without the surrogate key
      carry (``dim_site``: ``site_id``, which every KPI holds; ``site_sk`` is its hash);
    - ``pii``: column -> ``personal`` (identifies a person) or ``pseudonymised`` (a keyed
      hash of personal data, still personal data under the GDPR).
    """

    keys: tuple[str, ...]
    grain: str
    owner: str
    foreign_keys: Mapping[str, str] = field(default_factory=dict)
    natural_key: tuple[str, ...] = ()
    pii: Mapping[str, PiiKind] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Tuples and read-only mappings, so a contract cannot change once declared.
        object.__setattr__(self, "keys", _names(self.keys, "keys"))
        object.__setattr__(self, "natural_key", _names(self.natural_key, "natural_key"))
        object.__setattr__(self, "foreign_keys", MappingProxyType(dict(self.foreign_keys)))
        object.__setattr__(self, "pii", MappingProxyType(dict(self.pii)))
        if not self.keys:
            raise ValueError("a contract names at least one key column")
        if not self.grain.strip() or not self.owner.strip():
            raise ValueError("a contract states its grain and its owner")
        _names(tuple(self.foreign_keys), "foreign_keys")
        _names(tuple(self.pii), "pii")
        wrong = {column: kind for column, kind in self.pii.items() if kind not in get_args(PiiKind)}
        if wrong:
            raise ValueError(f"pii kinds are {get_args(PiiKind)}, got {wrong}")

    @property
    def reference_key(self) -> tuple[str, ...]:
        """The key other tables refer to the dataset by: the natural key when there is
        one (carried by every table, with or without the surrogate key), else the key."""
        return self.natural_key or self.keys

    def columns(self) -> set[str]:
        """Every column the contract names."""
        return {*self.keys, *self.natural_key, *self.foreign_keys, *self.pii}


def _names(columns: tuple[str, ...] | list[str], option: str) -> tuple[str, ...]:
    if isinstance(columns, str):
        raise ValueError(f"{option} is a tuple of column names, got the string {columns!r}")
    bad = [c for c in columns if not isinstance(c, str) or not c.isidentifier()]
    if bad:
        raise ValueError(f"{option}: {bad} are not column names")
    return tuple(columns)


def contracts(graph: PipelineGraph) -> dict[str, Contract]:
    """The contract of each dataset of ``graph`` that declares one."""
    return {name: d.contract for name, d in graph.datasets.items() if d.contract is not None}


def contract_problems(graph: PipelineGraph) -> list[str]:
    """What is wrong with the graph's contracts (empty when nothing): a column missing
    from a declared schema, a foreign key to an unknown dataset or to a column that is
    not the target's key."""
    problems = []
    for name, dataset in graph.datasets.items():
        if dataset.contract is None:
            continue
        problems += _schema_problems(name, dataset)
        for column, target in dataset.contract.foreign_keys.items():
            problems += _foreign_key_problems(graph, name, column, target)
    return problems


def _schema_problems(name: str, dataset: Dataset) -> list[str]:
    if not dataset.schema or dataset.contract is None:
        return []
    declared = set(ddl_column_names(dataset.schema))
    missing = sorted(dataset.contract.columns() - declared)
    if not missing:
        return []
    return [
        f"dataset {name!r}: its contract names column(s) {missing}, which its schema does not "
        f"declare (columns: {sorted(declared)})"
    ]


def _foreign_key_problems(graph: PipelineGraph, name: str, column: str, target: str) -> list[str]:
    where = f"dataset {name!r}: foreign key {column} -> {target}"
    if target not in graph.datasets:
        return [f"{where}: {target!r} is not a dataset of pipeline {graph.name!r}"]
    referenced = graph.datasets[target].contract
    if referenced is None:
        return [f"{where}: {target!r} declares no contract, so its key is unknown; declare one"]
    if (column,) not in (referenced.keys, referenced.natural_key):
        return [
            f"{where}: {target!r} is keyed on {referenced.keys}"
            + (f" (natural key {referenced.natural_key})" if referenced.natural_key else "")
            + f", not on {column!r}; a foreign key references its target's key column of the same name"
        ]
    return []


def ddl_column_names(ddl: str) -> list[str]:
    """Top-level column names of a DDL schema string (``"a INT, b STRUCT<x: INT>"``)."""
    names, depth, start = [], 0, 0
    for index, char in enumerate(ddl + ","):
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == "," and depth == 0:
            column = ddl[start:index].strip()
            if column:
                names.append(column.split()[0].strip("`"))
            start = index + 1
    return names


def contracts_markdown(graph: PipelineGraph, names: Sequence[str]) -> str:
    """The contracts of the datasets ``names`` (in that order) as a Markdown table:
    table, grain, key, foreign keys, owner."""
    rows = ["| table | grain | key | foreign keys | owner |", "|---|---|---|---|---|"]
    for name in names:
        contract = graph.datasets[name].contract
        if contract is None:
            raise ValueError(f"dataset {name!r} declares no contract")
        key = ", ".join(f"`{c}`" for c in contract.keys)
        if contract.natural_key:
            key += " (natural key " + ", ".join(f"`{c}`" for c in contract.natural_key) + ")"
        references = ", ".join(f"`{c}` → `{t}`" for c, t in contract.foreign_keys.items())
        rows.append(f"| `{name}` | {contract.grain} | {key} | {references} | {contract.owner} |")
    return "\n".join(rows)
