"""Which gold tables the exports see, their subject areas, keys and the personal-data guard."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse.bi.gold import (
    BiExportError,
    check_no_personal_data,
    check_primary_key,
    discover_gold_tables,
    foreign_keys,
    subject_areas,
)
from lakehouse.lake import Lake

from .conftest import dim_site, write_gold


def test_discovery_lists_delta_tables_only_and_subject_areas_share_the_sites(gold_lake):
    tables = discover_gold_tables(gold_lake)
    assert [(t.domain, t.model, t.name) for t in tables] == [
        ("energy", "kpi", "kpi_test_extra"),
        ("energy", "star", "dim_machine"),
        ("energy", "star", "dim_temps_horaire"),
        ("energy", "star", "fact_consommation_energie"),
        ("energy", "star", "fact_production"),
        ("pharma", "kpi", "kpi_performance_livraison"),  # table=half_written has no _delta_log
        ("pharma", "kpi", "kpi_rupture_stock"),
        ("pharma", "star", "dim_produit"),
        ("pharma", "star", "dim_site"),
        ("pharma", "star", "dim_temps"),
        ("pharma", "star", "fact_ventes"),
    ]
    areas = {a.name: a for a in subject_areas(tables)}
    assert [t.name for t in areas["energy"].tables][-1] == "dim_site"
    assert [t.name for t in areas["energy"].facts] == ["fact_consommation_energie", "fact_production"]
    assert [t.name for t in areas["pharma"].facts] == ["fact_ventes"]
    assert "dim_machine" not in {t.name for t in areas["pharma"].tables}


def test_an_empty_or_missing_gold_layer_has_no_tables(tmp_path):
    assert discover_gold_tables(Lake(str(tmp_path / "nowhere"))) == []


def test_foreign_keys_follow_column_names_to_dimensions_of_the_same_extract(gold_lake):
    fact = next(t for t in discover_gold_tables(gold_lake) if t.name == "fact_production")
    columns = ["batch_id", "machine_sk", "date_key", "site_id"]
    assert foreign_keys(fact, columns, ["dim_machine", "dim_site"]) == [
        ("machine_sk", "dim_machine"),
        ("site_id", "dim_site"),
    ]  # no dim_temps in the energy extract: date_key relates to nothing
    assert foreign_keys(fact, columns, ["dim_machine", "dim_site", "dim_temps"])[1] == (
        "date_key",
        "dim_temps",
    )


def test_keys_come_from_the_contracts_of_the_gold_definitions(gold_lake):
    tables = {t.name: t for t in discover_gold_tables(gold_lake)}
    site = tables["dim_site"]
    assert (site.primary_key, site.natural_key, site.reference_key) == (
        ("site_sk",),
        ("site_id",),
        ("site_id",),
    )
    assert (
        tables["fact_ventes"].primary_key
        == tables["fact_ventes"].reference_key
        == ("order_id", "line_number")
    )
    assert tables["fact_consommation_energie"].primary_key == ("machine_id", "hour_key")
    assert tables["kpi_rupture_stock"].primary_key == ("date_key", "site_id")
    extra = tables["kpi_test_extra"]  # not a dataset of the pipeline: no contract, no key
    assert (extra.contract, extra.primary_key, extra.reference_key) == (None, (), ())


def test_primary_key_checks_name_the_table_and_the_problem():
    data = pa.table({"k": [1, 2, None], "v": ["a", "b", "c"]})
    with pytest.raises(BiExportError, match=r"'t': key column 'k' has 1 NULL value"):
        check_primary_key("t", data, ("k",))
    with pytest.raises(
        BiExportError, match=r"'t': key \('k',\) is not unique, e.g. \{'k': 1, 'count_all': 2\}"
    ):
        check_primary_key("t", pa.table({"k": [1, 1, 2]}), ("k",))
    with pytest.raises(BiExportError, match=r"'t' lacks key column\(s\) \['id'\]"):
        check_primary_key("t", data, ("id",))
    check_primary_key("t", pa.table({"k": pa.array([], pa.int64())}), ("k",))  # empty: fine


def test_personal_data_columns_are_refused(gold_lake):
    check_no_personal_data("fact_ventes", ["customer_id", "site_name", "name"])  # ids and labels are fine
    with pytest.raises(BiExportError, match=r"'dim_client'.*customer_email, phone_number"):
        check_no_personal_data("dim_client", ["customer_id", "customer_email", "phone_number"])
    # tagged pseudonymised by silver_customers' contract, whatever the name looks like
    with pytest.raises(BiExportError, match=r"'fact_ventes'.*\(contact_name_pseudonym\)"):
        check_no_personal_data("fact_ventes", ["order_id", "contact_name_pseudonym"])
    write_gold(
        gold_lake,
        "pharma",
        "star",
        "dim_site",
        dim_site().append_column("manager_email", pa.array(["x"] * 3)),
    )
    site = next(t for t in discover_gold_tables(gold_lake) if t.name == "dim_site")
    with pytest.raises(BiExportError, match="manager_email"):
        site.read()
