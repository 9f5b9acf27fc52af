"""The catalog: built from the real pipeline graph, catalog.yaml and Delta tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakehouse.governance.catalog import CatalogError, build_catalog, check, load_catalog_config, publish
from lakehouse.medallion import medallion_graph

CATALOG = Path(__file__).resolve().parents[2] / "conf" / "base" / "catalog.yaml"
GENERATED_AT = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def graph():
    return medallion_graph()


def test_every_gold_table_has_an_owner_and_a_description(lake, graph):
    entries = build_catalog(lake, graph, load_catalog_config(CATALOG))
    gold = [e for e in entries if e.layer == "gold"]
    assert {"fact_ventes", "dim_produit", "kpi_marge_journaliere", "fact_consommation_energie"} <= {
        e.name for e in gold
    }
    missing = [e.name for e in gold if not e.owner or not e.owner_contact or not e.description]
    assert missing == []


def test_the_committed_catalog_has_no_governance_problem(lake, graph):
    config = load_catalog_config(CATALOG)
    assert check(build_catalog(lake, graph, config), config) == []


def test_no_gold_table_reads_personal_data(lake, graph):
    entries = {e.name: e for e in build_catalog(lake, graph, load_catalog_config(CATALOG))}
    # The personal data sits in bronze (tagged), and gold reads none of it, even indirectly.
    assert [c.name for c in entries["bronze_customers"].columns if c.pii == "personal"] == [
        "contact_name", "email", "phone", "address",
    ]  # fmt: skip
    assert entries["silver_customers"].upstream == ["bronze_customers"]
    assert all("silver_customers" not in e.upstream for e in entries.values() if e.layer == "gold")


def test_a_personal_column_in_gold_is_a_problem(lake, graph):
    # A gold table built with the contact e-mail (tagged personal in bronze_customers).
    write_deltalake(
        f"{lake.root}/gold/domain=pharma/model=star/table=fact_ventes",
        pa.table({"order_id": ["O1"], "email": ["x@y.fr"], "email_pseudonym": ["ab12"]}),
    )
    config = load_catalog_config(CATALOG)
    problems = check(build_catalog(lake, graph, config), config)
    assert (
        "gold table fact_ventes: column 'email' is personal data (tagged in bronze_customers_changes.email); "
        "gold and exports must carry none"
    ) in problems
    assert any("column 'email_pseudonym' is personal data (tagged in silver_customers" in p for p in problems)


def _without_contract(graph, name):
    """``graph`` with ``name`` defined without contract=."""
    dataset = dataclasses.replace(graph.datasets[name], contract=None)
    return dataclasses.replace(graph, datasets={**graph.datasets, name: dataset})


def test_a_gold_table_without_contract_or_description_is_a_problem(lake, graph, tmp_path):
    text = CATALOG.read_text(encoding="utf-8").replace(
        "  fact_production:\n", "  kpi_rupture_stock: {description: ''}\n  fact_production:\n"
    )
    changed = tmp_path / "catalog.yaml"
    changed.write_text(text, encoding="utf-8")
    config = load_catalog_config(changed)
    problems = check(build_catalog(lake, _without_contract(graph, "kpi_rupture_stock"), config), config)
    assert problems == [
        "gold table kpi_rupture_stock: no contract (declare contract=dp.Contract(keys=..., grain=..., "
        "owner=...) on its definition)"
    ]  # the docstring still describes it: an empty override does not erase it


def test_keys_grain_owner_and_pii_come_from_the_contracts(lake, graph):
    entries = {e.name: e for e in build_catalog(lake, graph, load_catalog_config(CATALOG))}
    fact = entries["fact_ventes"]
    assert (fact.owner, fact.owner_contact, fact.grain) == (
        "sales-analytics", "sales-analytics@example.com", "one row per order line",
    )  # fmt: skip
    assert fact.keys == ["order_id", "line_number"] and fact.natural_key == []
    assert fact.foreign_keys == {"product_sk": "dim_produit", "site_sk": "dim_site", "date_key": "dim_temps"}
    site = entries["dim_site"]
    assert (site.keys, site.natural_key, site.owner) == (["site_sk"], ["site_id"], "supply-chain")
    # not built: the contract's PII tags still list the columns
    customers = {c.name: c.pii for c in entries["silver_customers"].columns}
    assert {name for name, pii in customers.items() if pii == "pseudonymised"} == {
        "contact_name_pseudonym", "email_pseudonym", "phone_pseudonym", "address_pseudonym",
    }  # fmt: skip
    # bronze has no contract: its owner and tags are catalog.yaml's
    assert entries["bronze_customers"].owner == "data-platform" and entries["bronze_customers"].grain is None


def test_catalog_yaml_restating_a_contract_is_a_problem(lake, graph, tmp_path):
    text = CATALOG.read_text(encoding="utf-8").replace(
        "  fact_production:\n    columns:\n",
        "  fact_production:\n    owner: energy-operations\n    columns:\n      batch_id: {pii: personal}\n",
    )
    changed = tmp_path / "catalog.yaml"
    changed.write_text(text, encoding="utf-8")
    config = load_catalog_config(changed)
    problems = check(build_catalog(lake, graph, config), config)
    assert problems == [
        "fact_production: catalog.yaml gives it an owner ('energy-operations'); its contract declares it: "
        "remove `owner:` under tables.fact_production",
        "fact_production: catalog.yaml tags column 'batch_id' as personal; its contract declares its PII: "
        "move the tag to the contract's pii=",
        "gold table fact_production: column 'batch_id' is personal data (tagged in fact_production.batch_id); "
        "gold and exports must carry none",
    ]


def test_a_contract_owner_missing_from_owners_is_a_problem(lake, graph):
    dataset = graph.datasets["kpi_energie_site"]
    contract = dataclasses.replace(dataset.contract, owner="facilities")
    changed = dataclasses.replace(
        graph, datasets={**graph.datasets, dataset.name: dataclasses.replace(dataset, contract=contract)}
    )
    config = load_catalog_config(CATALOG)
    assert check(build_catalog(lake, changed, config), config) == [
        "kpi_energie_site: the owner 'facilities' of its contract is not a team of `owners:` in catalog.yaml"
    ]


def test_gold_reading_personal_data_is_a_problem(lake, graph, tmp_path):
    # Tag a column of silver_order_lines (an upstream of fact_ventes) as personal.
    text = CATALOG.read_text(encoding="utf-8").replace(
        'customer_id: {description: "Customer key (an organisation; its contact person is only in the customers tables)."}',
        "customer_id: {description: x, pii: personal}",
    )
    changed = tmp_path / "catalog.yaml"
    changed.write_text(text, encoding="utf-8")
    config = load_catalog_config(changed)
    problems = check(build_catalog(lake, graph, config), config)
    assert (
        "gold table fact_ventes: reads silver_order_lines, which holds personal (not pseudonymised) data"
        in problems
    )
    # Not built, but catalog.yaml documents fact_ventes.customer_id: same name, so flagged too.
    assert (
        "gold table fact_ventes: column 'customer_id' is personal data (tagged in silver_order_lines.customer_id); gold and exports must carry none"
        in problems
    )


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        (
            "tables:\n  fact_ventes: {owner: nobody}\n",
            "owners missing from `owners:`: {'fact_ventes': 'nobody'}",
        ),
        ("tables:\n  fact_ventes: {ownr: x}\n", "ownr"),
        ("tables:\n  fact_ventes:\n    columns:\n      a: {pii: secret}\n", "pii"),
        ("tables: [oops\n", "invalid catalog file"),
    ],
)
def test_invalid_catalog_files_are_refused_with_the_file_named(tmp_path, yaml_text, message):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(CatalogError, match="catalog.yaml") as caught:
        load_catalog_config(path)
    assert message in str(caught.value)


def test_catalog_documents_built_tables_and_is_published(customers_lake, graph, spark, tmp_path):
    lake, _settings = customers_lake
    config = load_catalog_config(CATALOG)
    entries = build_catalog(lake, graph, config)
    by_name = {e.name: e for e in entries}

    silver = by_name["silver_customers"]
    assert (silver.layer, silver.domain, silver.owner, silver.owner_contact) == (
        "silver", "pharma", "data-platform", "data-platform@example.com",
    )  # fmt: skip
    assert silver.path == f"{lake.root}/silver/domain=pharma/table=customers"
    assert silver.row_count == 3 and silver.version == 1  # 3 customers, written by 2 runs (v0, v1)
    assert silver.last_update is not None and silver.last_operation
    assert silver.expectations == [
        {
            "name": "customer_id_present",
            "predicate": "customer_id IS NOT NULL AND customer_id <> ''",
            "action": "fail",
        }
    ]
    assert silver.description.startswith("One row per customer (key customer_id)")
    columns = {c.name: (c.type, c.pii) for c in silver.columns}
    assert columns["email_pseudonym"] == ("string", "pseudonymised")
    assert columns["updated_at"][0].startswith("timestamp")
    assert silver.has_personal_data and silver.tags == ["pii", "erasable"]
    assert by_name["bronze_customers"].downstream == ["silver_customers"]
    assert by_name["bronze_customers_changes"].downstream == ["bronze_customers"]
    assert by_name["fact_ventes"].row_count is None and not by_name["fact_ventes"].exists  # not built here
    assert by_name["_system.event_log"].kind == "system_table"

    published = publish(entries, lake, tmp_path / "site", generated_at=GENERATED_AT)

    table = spark.read.format("delta").load(published.table_path)
    assert table.count() == len(entries)
    row = table.where("name = 'silver_customers'").select("owner", "row_count", "upstream").first()
    assert (row.owner, row.row_count, list(row.upstream)) == ("data-platform", 3, ["bronze_customers"])
    document = json.loads(published.json_path.read_text(encoding="utf-8"))
    assert document["generated_at"] == "2026-11-26T12:00:00+00:00"
    assert {t["name"] for t in document["tables"]} == set(by_name)
    html = published.html_path.read_text(encoding="utf-8")
    assert 'id="silver_customers"' in html and "pseudonymised" in html
    assert "<script src=" not in html and "http" not in html.split("<main>")[0]  # self-contained, offline


def test_a_private_dataset_is_listed_where_the_runner_keeps_it(lake, graph):
    entries = {e.name: e for e in build_catalog(lake, graph, load_catalog_config(CATALOG))}
    private = entries["silver_iot_readings_resampled"]
    assert private.path == f"{lake.root}/_system/private/medallion/silver_iot_readings_resampled"
    assert private.layer == "_system"
