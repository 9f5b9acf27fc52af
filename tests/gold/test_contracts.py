"""Dataset contracts: declared once on each definition, and every consumer agrees.

The keys, grain, foreign keys and owner of each gold table are read from its definition
(the pipeline graph) and compared with what the quality suites check, what the Tableau
and PostgreSQL exports declare, what the catalog publishes, what the definition's
docstring says and the keys table of docs/star_schema.md. An altered contract must be
reported by each of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from lakehouse import pipelines as dp
from lakehouse.bi.gold import GoldTable, dimension_of_column
from lakehouse.governance.catalog import build_catalog, check, contracts_doc, load_catalog_config
from lakehouse.lake import Lake
from lakehouse.medallion import medallion_graph
from lakehouse.pipelines.contracts import Contract, ddl_column_names
from lakehouse.quality.suites import SUITES, SuiteInputs

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "conf" / "base" / "catalog.yaml"
STAR_SCHEMA_DOC = ROOT / "docs" / "star_schema.md"
GOLD_TABLES = {
    "pharma": ("dim_temps", "dim_produit", "dim_site", "fact_ventes", "kpi_marge_journaliere", "kpi_rupture_stock",
               "kpi_performance_livraison", "kpi_marge_produit_site_mois", "kpi_duree_rupture", "kpi_rappels_en_stock"),
    "energy": ("dim_machine", "dim_temps_horaire", "fact_consommation_energie", "fact_production",
               "kpi_energie_machine", "kpi_energie_site", "kpi_anomalies_machine"),
}  # fmt: skip


@pytest.fixture(scope="module")
def graph() -> dp.PipelineGraph:
    return medallion_graph()


def gold_names(graph: dp.PipelineGraph) -> list[str]:
    return [name for name, d in graph.datasets.items() if (d.path or "").startswith("gold/")]


# --- what each consumer holds --------------------------------------------------------------


def suite_keys(suite_name: str) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
    """(key, natural key, foreign keys) a quality suite checks, read from its expectations."""
    (suite,) = [s for s in SUITES if s.name == suite_name]
    inputs = SuiteInputs(spark=None, lake=Lake("/lake"), run_date=dt.date(2026, 11, 26))  # type: ignore[arg-type]
    unique: dict[str, tuple[str, ...]] = {}
    foreign: dict[str, str] = {}
    for suite_check in suite.checks(inputs):
        expectation = suite_check.expectation
        columns = getattr(expectation, "column_list", None) or (getattr(expectation, "column", None),)
        if suite_check.name.endswith("_unique"):
            unique[suite_check.name.split("_", 1)[0]] = tuple(columns)
        orphan = re.fullmatch(r"_orphan_(\w+)", str(getattr(expectation, "column", "")))
        if orphan:
            foreign[orphan.group(1)] = suite_check.name.removeprefix(f"{orphan.group(1)}_in_")
    return unique.get("key", ()), unique.get("natural", ()), foreign


def docstring_keys(graph: dp.PipelineGraph, name: str) -> tuple[str, ...] | None:
    """The key a definition's docstring states ("(key order_id, line_number)"), if any."""
    text = " ".join((graph.datasets[name].comment or "").split())
    found = re.search(r"\bkey (\w+(?:, \w+)*)", text)
    return tuple(found.group(1).split(", ")) if found else None


def disagreements(reference: dp.PipelineGraph) -> list[str]:
    """Where a consumer's keys, grain or owner differ from the contracts of ``reference``."""
    config = load_catalog_config(CATALOG)
    catalog = {e.name: e for e in build_catalog(Lake("/no/lake"), medallion_graph(), config)}
    suites = {s.name: s for s in SUITES}
    problems = []
    for name in gold_names(reference):
        contract = reference.datasets[name].contract
        assert contract is not None, f"{name} declares no contract"
        exported = GoldTable(name, "", "", "")
        suite = f"gold.{name}"
        if suite in suites and suite_keys(suite) != (
            contract.keys,
            contract.natural_key,
            dict(contract.foreign_keys),
        ):
            problems.append(f"{name}: quality suite checks {suite_keys(suite)}")
        if (exported.primary_key, exported.natural_key) != (contract.keys, contract.natural_key):
            problems.append(f"{name}: PostgreSQL keys {exported.primary_key}, {exported.natural_key}")
        if exported.reference_key != (contract.natural_key or contract.keys):
            problems.append(f"{name}: Tableau key {exported.reference_key}")
        entry = catalog[name]
        if (tuple(entry.keys), entry.grain, entry.owner) != (contract.keys, contract.grain, contract.owner):
            problems.append(f"{name}: catalog has {entry.keys}, {entry.grain!r}, {entry.owner}")
        documented = docstring_keys(reference, name)
        if documented is not None and documented != contract.keys:
            problems.append(f"{name}: docstring says key {documented}")
    doc = STAR_SCHEMA_DOC.read_text(encoding="utf-8")
    if contracts_doc(doc, reference) != doc:
        problems.append(
            "docs/star_schema.md: its keys table is not the contracts' (rewrite it with contracts_doc)"
        )
    return problems


def with_contract(graph: dp.PipelineGraph, name: str, **changes) -> dp.PipelineGraph:
    dataset = graph.datasets[name]
    contract = dataclasses.replace(dataset.contract, **changes)
    return dataclasses.replace(
        graph, datasets={**graph.datasets, name: dataclasses.replace(dataset, contract=contract)}
    )


# --- the tests ----------------------------------------------------------------------------


def test_every_gold_table_declares_a_contract(graph):
    assert sorted(gold_names(graph)) == sorted(GOLD_TABLES["pharma"] + GOLD_TABLES["energy"])
    assert [n for n in gold_names(graph) if graph.datasets[n].contract is None] == []
    assert graph.validate() == []


def test_the_star_contracts(graph):
    fact = graph.datasets["fact_ventes"].contract
    assert fact == Contract(
        keys=("order_id", "line_number"),
        grain="one row per order line",
        owner="sales-analytics",
        foreign_keys={"product_sk": "dim_produit", "site_sk": "dim_site", "date_key": "dim_temps"},
    )
    site = graph.datasets["dim_site"].contract
    assert (site.keys, site.natural_key, site.reference_key) == (("site_sk",), ("site_id",), ("site_id",))
    energy = graph.datasets["fact_consommation_energie"].contract
    assert (energy.keys, dict(energy.foreign_keys)) == (
        ("machine_id", "hour_key"),
        {"machine_sk": "dim_machine", "hour_key": "dim_temps_horaire"},
    )
    # a column names the dimension whose reference key it is (Tableau's relations)
    assert dimension_of_column() == {
        "date_key": "dim_temps", "hour_key": "dim_temps_horaire", "site_id": "dim_site",
        "product_sk": "dim_produit", "machine_sk": "dim_machine",
    }  # fmt: skip


def test_every_consumer_agrees_with_the_contracts(graph):
    assert disagreements(graph) == []
    config = load_catalog_config(CATALOG)
    assert check(build_catalog(Lake("/no/lake"), graph, config), config) == []


def test_an_altered_contract_is_reported_by_every_consumer(graph):
    altered = with_contract(graph, "fact_ventes", keys=("order_id",))
    altered = with_contract(altered, "dim_site", keys=("site_id",), natural_key=())
    assert disagreements(altered) == [
        "dim_site: quality suite checks (('site_sk',), ('site_id',), {})",
        "dim_site: PostgreSQL keys ('site_sk',), ('site_id',)",
        "dim_site: catalog has ['site_sk'], 'one row per site', supply-chain",
        "dim_site: docstring says key ('site_sk',)",
        "fact_ventes: quality suite checks (('order_id', 'line_number'), (), "
        "{'product_sk': 'dim_produit', 'site_sk': 'dim_site', 'date_key': 'dim_temps'})",
        "fact_ventes: PostgreSQL keys ('order_id', 'line_number'), ()",
        "fact_ventes: Tableau key ('order_id', 'line_number')",
        "fact_ventes: catalog has ['order_id', 'line_number'], 'one row per order line', sales-analytics",
        "fact_ventes: docstring says key ('order_id', 'line_number')",
        "docs/star_schema.md: its keys table is not the contracts' (rewrite it with contracts_doc)",
    ]
    # dim_site's Tableau key is site_id either way (its natural key, then its key)
    owner_changed = with_contract(graph, "kpi_rupture_stock", owner="quality-assurance")
    assert disagreements(owner_changed) == [
        "kpi_rupture_stock: catalog has ['date_key', 'site_id'], 'one row per snapshot day and site', supply-chain",
        "docs/star_schema.md: its keys table is not the contracts' (rewrite it with contracts_doc)",
    ]


def test_the_silver_suites_check_their_contracts_keys(graph):
    for dataset, suite in (
        ("silver_order_lines", "silver.order_lines"),
        ("silver_iot_readings_hourly", "silver.iot_readings_hourly"),
    ):
        assert suite_keys(suite) == (graph.datasets[dataset].contract.keys, (), {})
    assert suite_keys("silver.order_lines")[0] == ("order_id", "line_number")


# --- declaring and validating contracts ------------------------------------------------------


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"keys": (), "grain": "g", "owner": "o"}, "at least one key column"),
        ({"keys": "sale_id", "grain": "g", "owner": "o"}, "a tuple of column names"),
        ({"keys": ("id",), "grain": " ", "owner": "o"}, "grain and its owner"),
        ({"keys": ("id",), "grain": "g", "owner": "o", "pii": {"email": "secret"}}, "pii kinds"),
        (
            {"keys": ("id",), "grain": "g", "owner": "o", "foreign_keys": {"bad column": "d"}},
            "not column names",
        ),
    ],
)
def test_a_malformed_contract_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        Contract(**arguments)


def test_a_contract_cannot_change_once_declared():
    contract = Contract(keys=["id"], grain="one row per thing", owner="team", foreign_keys={"d_id": "dim"})
    assert contract.keys == ("id",)
    with pytest.raises(TypeError):
        contract.foreign_keys["other"] = "dim"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        contract.keys = ("other",)  # type: ignore[misc]


def _star(fact_contract: Contract, *, fact_schema: str | None = None) -> dp.PipelineGraph:
    with dp.graph("contracts") as graph:

        @dp.materialized_view(
            contract=dp.Contract(keys=("d_sk",), natural_key=("d_id",), grain="one row per d", owner="team")
        )
        def dim_d():
            return None

        @dp.materialized_view(schema=fact_schema, contract=fact_contract)
        def fact_f(dim_d):
            return None

    return graph


def test_the_graph_validates_its_contracts():
    fact = Contract(keys=("f_id",), grain="one row per f", owner="team", foreign_keys={"d_sk": "dim_d"})
    assert _star(fact, fact_schema="f_id STRING, d_sk BIGINT, amount DECIMAL(18,2)").validate() == []
    by_natural_key = dataclasses.replace(fact, foreign_keys={"d_id": "dim_d"})
    assert _star(by_natural_key).validate() == []
    assert _star(fact, fact_schema="id STRING, amount DECIMAL(18,2)").validate() == [
        "dataset 'fact_f': its contract names column(s) ['d_sk', 'f_id'], which its schema does not "
        "declare (columns: ['amount', 'id'])"
    ]
    unknown = dataclasses.replace(fact, foreign_keys={"d_sk": "dim_x"})
    assert _star(unknown).validate() == [
        "dataset 'fact_f': foreign key d_sk -> dim_x: 'dim_x' is not a dataset of pipeline 'contracts'"
    ]
    not_a_key = dataclasses.replace(fact, foreign_keys={"d_name": "dim_d"})
    assert _star(not_a_key).validate() == [
        "dataset 'fact_f': foreign key d_name -> dim_d: 'dim_d' is keyed on ('d_sk',) (natural key "
        "('d_id',)), not on 'd_name'; a foreign key references its target's key column of the same name"
    ]


def test_contract_takes_a_contract():
    with pytest.raises(dp.GraphError, match="contract= takes dp.Contract"), dp.graph("x"):

        @dp.materialized_view(contract={"keys": ("id",)})
        def t():
            return None


def test_ddl_column_names_skip_nested_fields():
    assert ddl_column_names("a INT, `b` STRUCT<x: INT, y: ARRAY<STRING>>, c DECIMAL(18, 2)") == [
        "a",
        "b",
        "c",
    ]
