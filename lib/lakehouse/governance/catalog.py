"""The data catalog (a Glue Data Catalog equivalent), generated, never hand-written.

Sources, merged per table:

- the pipeline graph (``lakehouse.medallion.medallion_graph``): name, kind, path, description
  (the definition's docstring), expectations, upstream and downstream lineage, and the
  dataset's contract: keys, grain, foreign keys, owner and PII tags;
- the Delta tables of the lake (delta-rs): schema, row count, version, last update;
- ``conf/base/catalog.yaml`` (validated here): the owners' contacts, column
  descriptions, erasure keys, and the owner and PII tags of tables without a contract
  (bronze, system tables).

Published as the Delta table ``_system/catalog`` (one row per table), a JSON document
and a static HTML page (``publish``). ``check`` lists governance problems: a gold
table without contract or description, personal data in gold, catalog.yaml drifting
from the tables or restating what a contract declares.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args

import pyarrow as pa
import yaml
from deltalake import write_deltalake
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lakehouse import maintenance
from lakehouse.catalog import find_tables, table_name
from lakehouse.lake import GoldModel, Lake, delta_exists
from lakehouse.pipelines.contracts import Contract, contracts_markdown
from lakehouse.pipelines.graph import PipelineGraph

CATALOG_TABLE = "catalog"
PiiTag = Literal["none", "personal", "pseudonymised"]
SENSITIVE: tuple[str, ...] = ("personal", "pseudonymised")


class CatalogError(RuntimeError):
    """catalog.yaml is missing or invalid."""


# --- catalog.yaml ----------------------------------------------------------------------------


class ColumnDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    pii: PiiTag = "none"


class TableDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str | None = None
    description: str | None = None  # overrides the definition's docstring
    erasure_key: str | None = None  # the column naming a data subject
    columns: dict[str, ColumnDoc] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _erasure_key_is_documented(self) -> TableDoc:
        if self.erasure_key and self.columns and self.erasure_key not in self.columns:
            raise ValueError(
                f"erasure_key {self.erasure_key!r} is not one of its columns {sorted(self.columns)}"
            )
        return self


class CatalogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owners: dict[str, str] = Field(default_factory=dict)  # team -> contact address
    tables: dict[str, TableDoc] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _owners_are_declared(self) -> CatalogConfig:
        unknown = {name: t.owner for name, t in self.tables.items() if t.owner and t.owner not in self.owners}
        if unknown:
            raise ValueError(f"tables name owners missing from `owners:`: {unknown}")
        return self

    def sensitive_columns(self) -> dict[str, str]:
        """Column name -> the first ``table.column`` (file order) tagging it personal or pseudonymised."""
        found: dict[str, str] = {}
        for table, doc in self.tables.items():
            for column, column_doc in doc.columns.items():
                if column_doc.pii in SENSITIVE:
                    found.setdefault(column, f"{table}.{column}")
        return found


def load_catalog_config(path: str | Path) -> CatalogConfig:
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"catalog file {path} not found (governance.catalog_file in lakehouse.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return CatalogConfig.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise CatalogError(f"invalid catalog file {path}: {exc}") from exc


# --- entries ---------------------------------------------------------------------------------


@dataclass
class CatalogColumn:
    name: str
    type: str | None  # None: documented in catalog.yaml, table not built yet
    nullable: bool | None
    description: str
    pii: str


@dataclass
class CatalogEntry:
    name: str
    layer: str
    domain: str
    kind: str
    path: str
    owner: str | None
    owner_contact: str | None
    description: str
    columns: list[CatalogColumn]
    row_count: int | None
    version: int | None
    last_update: dt.datetime | None
    last_operation: str | None
    upstream: list[str]
    downstream: list[str]
    expectations: list[dict[str, str]]
    erasure_key: str | None = None
    has_personal_data: bool = False
    exists: bool = False
    tags: list[str] = field(default_factory=list)
    # From the dataset's contract (None / empty without one).
    grain: str | None = None
    keys: list[str] = field(default_factory=list)
    natural_key: list[str] = field(default_factory=list)
    foreign_keys: dict[str, str] = field(default_factory=dict)

    @property
    def has_contract(self) -> bool:
        return self.grain is not None  # every contract states its grain


def build_catalog(lake: Lake | str, graph: PipelineGraph, config: CatalogConfig) -> list[CatalogEntry]:
    """One entry per dataset of ``graph`` and per other Delta table of the lake
    (quarantine and ``_system`` tables), sorted by layer then name."""
    lake = lake if isinstance(lake, Lake) else Lake(str(lake))
    downstream = _downstream(graph)
    entries = [_dataset_entry(lake, graph, name, config, downstream.get(name, [])) for name in graph.datasets]
    known = {entry.path for entry in entries}
    owners = {entry.path: entry for entry in entries}
    for path in find_tables(lake.root):
        if path not in known:
            entries.append(_lake_only_entry(lake, path, config, owners))
    order = {"bronze": 0, "silver": 1, "gold": 2, "_system": 3}
    return sorted(entries, key=lambda e: (order.get(e.layer, 9), e.domain, e.name))


def _dataset_entry(
    lake: Lake, graph: PipelineGraph, name: str, config: CatalogConfig, downstream: list[str]
) -> CatalogEntry:
    dataset = graph.datasets[name]
    if dataset.private:  # kept with the pipeline's state, like the runner does
        relative = f"_system/private/{graph.name}/{name}"
    else:
        relative = dataset.path or f"pipelines/{graph.name}/{name}"
    path = relative if "://" in relative or relative.startswith("/") else f"{lake.root}/{relative}"
    doc = config.tables.get(name, TableDoc())
    contract = dataset.contract
    owner = contract.owner if contract else doc.owner
    entry = CatalogEntry(
        name=name,
        layer=relative.split("/", 1)[0],
        domain=_domain(relative),
        kind=dataset.kind.value,
        path=path,
        owner=owner,
        owner_contact=config.owners.get(owner or ""),
        description=(doc.description or _one_paragraph(dataset.comment)),
        columns=[],
        row_count=None,
        version=None,
        last_update=None,
        last_operation=None,
        upstream=sorted(graph.upstream(name)),
        downstream=downstream,
        expectations=[
            {"name": e.name, "predicate": e.predicate, "action": e.action.value} for e in dataset.expectations
        ],
        erasure_key=doc.erasure_key,
    )
    if contract is not None:
        entry.grain = contract.grain
        entry.keys = list(contract.keys)
        entry.natural_key = list(contract.natural_key)
        entry.foreign_keys = dict(contract.foreign_keys)
    return _with_table_facts(entry, doc, _pii(contract))


def _lake_only_entry(
    lake: Lake, path: str, config: CatalogConfig, by_path: dict[str, CatalogEntry]
) -> CatalogEntry:
    name = table_name(lake.root, path)
    relative = path[len(lake.root) :].strip("/")
    parent = by_path.get(path.removesuffix("_quarantine")) if path.endswith("_quarantine") else None
    doc = config.tables.get(name, TableDoc())
    if parent is not None:
        description = f"Rows of {parent.name} rejected by its expectations, with _rejection_reasons."
        owner = doc.owner or parent.owner
    else:
        description = doc.description or "System table of the lake (not a pipeline dataset)."
        owner = doc.owner
    entry = CatalogEntry(
        name=name,
        layer=relative.split("/", 1)[0],
        domain=_domain(relative),
        kind="quarantine" if parent is not None else "system_table",
        path=path,
        owner=owner,
        owner_contact=config.owners.get(owner or ""),
        description=description,
        columns=[],
        row_count=None,
        version=None,
        last_update=None,
        last_operation=None,
        upstream=[parent.name] if parent is not None else [],
        downstream=[],
        expectations=[],
        erasure_key=doc.erasure_key or (parent.erasure_key if parent is not None else None),
    )
    parent_doc = config.tables.get(parent.name, TableDoc()) if parent is not None else TableDoc()
    parent_pii = {c.name: c.pii for c in parent.columns if c.pii in SENSITIVE} if parent is not None else {}
    return _with_table_facts(entry, doc if doc.columns else parent_doc, parent_pii)


def _pii(contract: Contract | None) -> dict[str, str]:
    return dict(contract.pii) if contract is not None else {}


def _with_table_facts(entry: CatalogEntry, doc: TableDoc, pii: dict[str, str]) -> CatalogEntry:
    """Fill schema, row count, version and last update from the Delta table if it exists;
    ``pii`` (the contract's tags) adds to the tags of catalog.yaml."""
    if delta_exists(entry.path):
        table = maintenance.open_table(entry.path)
        schema = pa.schema(table.schema().to_arrow())
        entry.columns = [_column(f.name, str(f.type), f.nullable, doc, pii) for f in schema]
        entry.row_count = table.to_pyarrow_dataset().count_rows()
        entry.version = table.version()
        (last,) = table.history(1) or [{}]
        entry.last_update = (
            dt.datetime.fromtimestamp(last["timestamp"] / 1000, dt.UTC) if last.get("timestamp") else None
        )
        entry.last_operation = last.get("operation")
        entry.exists = True
    else:
        documented = [*doc.columns, *(name for name in pii if name not in doc.columns)]
        entry.columns = [_column(name, None, None, doc, pii) for name in documented]
    entry.has_personal_data = any(c.pii in SENSITIVE for c in entry.columns)
    entry.tags = [tag for tag in ("pii",) if entry.has_personal_data] + (
        ["erasable"] if entry.erasure_key else []
    )
    return entry


def _column(
    name: str, type_: str | None, nullable: bool | None, doc: TableDoc, pii: dict[str, str]
) -> CatalogColumn:
    column_doc = doc.columns.get(name, ColumnDoc())
    return CatalogColumn(name, type_, nullable, column_doc.description, pii.get(name, column_doc.pii))


def _domain(relative: str) -> str:
    """'silver/domain=pharma/table=x' -> 'pharma'; 'bronze/source=erp/...' -> 'erp'."""
    match = re.search(r"(?:domain|source)=([^/]+)", relative)
    return match.group(1) if match else "system"


def _one_paragraph(comment: str | None) -> str:
    return " ".join((comment or "").split())


def _downstream(graph: PipelineGraph) -> dict[str, list[str]]:
    readers: dict[str, list[str]] = {}
    for name in graph.datasets:
        for upstream in graph.upstream(name):
            readers.setdefault(upstream, []).append(name)
    return {name: sorted(names) for name, names in readers.items()}


# --- checks ----------------------------------------------------------------------------------


def check(entries: Iterable[CatalogEntry], config: CatalogConfig) -> list[str]:
    """Governance problems, each naming the table (empty list: all good)."""
    entries = list(entries)
    by_name = {entry.name: entry for entry in entries}
    sensitive = config.sensitive_columns()  # catalog.yaml first (file order), then contracts
    for entry in entries:
        for column in entry.columns:
            if column.pii in SENSITIVE:
                sensitive.setdefault(column.name, f"{entry.name}.{column.name}")
    # Dataset names must exist; lake table names ("_system.job_runs") only once built.
    problems = [
        f"catalog.yaml documents {name!r}, which is not a dataset of the pipeline"
        for name in config.tables
        if name not in by_name and "." not in name
    ]
    for entry in entries:
        problems.extend(_entry_problems(entry, config, sensitive, by_name))
    return problems


def _entry_problems(
    entry: CatalogEntry, config: CatalogConfig, sensitive: dict[str, str], by_name: dict[str, CatalogEntry]
) -> list[str]:
    doc = config.tables.get(entry.name, TableDoc())
    problems = _contract_problems(entry, doc, config) if entry.has_contract else []
    if entry.exists:
        present = {c.name for c in entry.columns}
        problems += [
            f"{entry.name}: catalog.yaml documents column {column!r}, which the table does not have ({entry.path})"
            for column in doc.columns
            if column not in present
        ]
    if entry.layer != "gold":
        return problems
    if not entry.has_contract and entry.name in by_name and entry.kind not in _LAKE_ONLY_KINDS:
        problems.append(
            f"gold table {entry.name}: no contract (declare contract=dp.Contract(keys=..., grain=..., "
            "owner=...) on its definition)"
        )
    elif not entry.owner:
        problems.append(
            f"gold table {entry.name}: no owner (add `owner:` under tables.{entry.name} in catalog.yaml)"
        )
    if not entry.description:
        problems.append(
            f"gold table {entry.name}: no description (a docstring on its definition or `description:`)"
        )
    for column in entry.columns:
        if column.pii in SENSITIVE or column.name in sensitive:
            where = sensitive.get(column.name, f"{entry.name}.{column.name}")
            problems.append(
                f"gold table {entry.name}: column {column.name!r} is personal data (tagged in {where}); "
                "gold and exports must carry none"
            )
    for source in _reads_personal_data(entry.name, by_name):
        problems.append(
            f"gold table {entry.name}: reads {source}, which holds personal (not pseudonymised) data"
        )
    return problems


_LAKE_ONLY_KINDS = ("quarantine", "system_table")


def _contract_problems(entry: CatalogEntry, doc: TableDoc, config: CatalogConfig) -> list[str]:
    """catalog.yaml restating what the contract declares, or an owner it does not know."""
    problems = []
    if entry.owner not in config.owners:
        problems.append(
            f"{entry.name}: the owner {entry.owner!r} of its contract is not a team of `owners:` in catalog.yaml"
        )
    if doc.owner is not None:
        problems.append(
            f"{entry.name}: catalog.yaml gives it an owner ({doc.owner!r}); its contract declares it: "
            f"remove `owner:` under tables.{entry.name}"
        )
    problems += [
        f"{entry.name}: catalog.yaml tags column {column!r} as {column_doc.pii}; its contract declares "
        "its PII: move the tag to the contract's pii="
        for column, column_doc in doc.columns.items()
        if column_doc.pii != "none"
    ]
    return problems


def _reads_personal_data(name: str, by_name: dict[str, CatalogEntry]) -> list[str]:
    """Direct or indirect upstreams with columns tagged ``personal``."""
    seen: set[str] = set()
    stack = list(by_name[name].upstream)
    found = []
    while stack:
        current = stack.pop()
        if current in seen or current not in by_name:
            continue
        seen.add(current)
        if any(c.pii == "personal" for c in by_name[current].columns):
            found.append(current)
        stack.extend(by_name[current].upstream)
    return sorted(found)


# --- publishing ----------------------------------------------------------------------------

_COLUMN = pa.struct(
    [
        ("name", pa.string()),
        ("type", pa.string()),
        ("nullable", pa.bool_()),
        ("description", pa.string()),
        ("pii", pa.string()),
    ]
)
_EXPECTATION = pa.struct([("name", pa.string()), ("predicate", pa.string()), ("action", pa.string())])
TABLE_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("layer", pa.string()),
        ("domain", pa.string()),
        ("kind", pa.string()),
        ("path", pa.string()),
        ("owner", pa.string()),
        ("owner_contact", pa.string()),
        ("description", pa.string()),
        ("columns", pa.list_(_COLUMN)),
        ("row_count", pa.int64()),
        ("version", pa.int64()),
        ("last_update", pa.timestamp("us", tz="UTC")),
        ("last_operation", pa.string()),
        ("upstream", pa.list_(pa.string())),
        ("downstream", pa.list_(pa.string())),
        ("expectations", pa.list_(_EXPECTATION)),
        ("erasure_key", pa.string()),
        ("has_personal_data", pa.bool_()),
        ("exists", pa.bool_()),
        ("tags", pa.list_(pa.string())),
        ("grain", pa.string()),
        ("keys", pa.list_(pa.string())),
        ("natural_key", pa.list_(pa.string())),
        ("foreign_keys", pa.map_(pa.string(), pa.string())),
        ("generated_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class Published:
    table_path: str
    json_path: Path
    html_path: Path
    tables: int


def publish(
    entries: list[CatalogEntry], lake: Lake | str, out_dir: str | Path, *, generated_at: dt.datetime
) -> Published:
    """Write ``_system/catalog`` (replaced in one commit), ``catalog.json`` and ``catalog.html``."""
    from lakehouse.governance.catalog_html import render_html

    lake = lake if isinstance(lake, Lake) else Lake(str(lake))
    path = lake.system(CATALOG_TABLE)
    rows = [{**asdict(entry), "generated_at": generated_at} for entry in entries]
    write_deltalake(
        path,
        pa.Table.from_pylist(rows, schema=TABLE_SCHEMA),
        mode="overwrite",
        schema_mode="overwrite",
        storage_options=maintenance.storage_options(path),
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "generated_at": generated_at.isoformat(),
        "lake_root": lake.root,
        "tables": [asdict(e) for e in entries],
    }
    json_path = out / "catalog.json"
    json_path.write_text(json.dumps(document, indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    html_path = out / "catalog.html"
    html_path.write_text(
        render_html(entries, lake_root=lake.root, generated_at=generated_at), encoding="utf-8"
    )
    return Published(path, json_path, html_path, len(entries))


def catalog_for(settings) -> tuple[list[CatalogEntry], CatalogConfig]:
    """The catalog entries of the configured lake and pipeline, and catalog.yaml
    (``governance.catalog_file``); :class:`CatalogError` names a bad catalog file."""
    from lakehouse.medallion import medallion_graph

    path = settings.governance.catalog_file
    config = load_catalog_config(path if path.is_absolute() else settings.project_root / path)
    return build_catalog(settings.lake_root, medallion_graph(), config), config


def publish_catalog(
    settings, out_dir: str | Path | None = None, *, details: dict | None = None
) -> tuple[list[CatalogEntry], CatalogConfig, Published]:
    """Build and publish the catalog (default folder ``<var_dir>/catalog``) and record
    the publication in the audit trail."""
    from lakehouse.governance import audit

    entries, config = catalog_for(settings)
    published = publish(
        entries, settings.lake_root, Path(out_dir) if out_dir else settings.var_dir / "catalog",
        generated_at=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    audit.record_event(
        settings.lake_root, actor=audit.current_actor(), action="catalog.publish", target=published.table_path,
        details={"tables": published.tables, **(details or {})},
    )  # fmt: skip
    return entries, config, published


# --- docs ------------------------------------------------------------------------------------

CONTRACTS_BEGIN = "<!-- contracts: generated from the gold definitions (governance.catalog.contracts_doc) -->"
CONTRACTS_END = "<!-- end of contracts -->"


def gold_in_doc_order(graph: PipelineGraph) -> list[str]:
    """Gold datasets by domain (in definition order), model (star, kpi, prediction), name."""
    gold = [d for d in graph.datasets.values() if (d.path or "").startswith("gold/")]
    domains = list(dict.fromkeys(_domain(d.path or "") for d in gold))
    models = list(get_args(GoldModel))

    def position(path: str) -> tuple[int, int, str]:
        model = re.search(r"model=([^/]+)", path)
        rank = models.index(model.group(1)) if model and model.group(1) in models else len(models)
        return domains.index(_domain(path)), rank, path.rsplit("table=", 1)[-1]

    return [d.name for d in sorted(gold, key=lambda d: position(d.path or ""))]


def contracts_doc(text: str, graph: PipelineGraph) -> str:
    """``text`` (a Markdown page) with the block between :data:`CONTRACTS_BEGIN` and
    :data:`CONTRACTS_END` replaced by the gold contracts' table (``docs/star_schema.md``)."""
    before, begin, rest = text.partition(CONTRACTS_BEGIN)
    _, end, after = rest.partition(CONTRACTS_END)
    if not begin or not end:
        raise ValueError(f"the page has no {CONTRACTS_BEGIN!r} ... {CONTRACTS_END!r} block")
    table = contracts_markdown(graph, gold_in_doc_order(graph))
    return f"{before}{CONTRACTS_BEGIN}\n{table}\n{CONTRACTS_END}{after}"
