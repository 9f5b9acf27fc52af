"""lakehouse.access: access.yaml validation and apply_policy on arrow, pandas and Spark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from lakehouse.access import (
    AccessConfigError,
    AccessDenied,
    AccessPolicy,
    GoldTable,
    apply_policy,
    load_access_policy,
)
from tests.api.conftest import fact_ventes

FACT = "gold.pharma.star.fact_ventes"


def test_site_manager_on_arrow_keeps_site_rows_and_drops_hidden_columns(policy: AccessPolicy) -> None:
    table = fact_ventes()
    seen = apply_policy("site_manager_s01", FACT, table, policy=policy)
    # S01 lines: O1/1, O1/2, O3/1; no customer_id (personal), cost_amount or margin_amount.
    assert seen.column_names == ["order_id", "line_number", "date_key", "order_date", "site_id", "product_id", "quantity", "net_amount"]
    assert seen.select(["order_id", "line_number"]).to_pylist() == [
        {"order_id": "O1", "line_number": 1},
        {"order_id": "O1", "line_number": 2},
        {"order_id": "O3", "line_number": 1},
    ]


def test_pandas_input_gives_pandas_output_with_the_same_rules(policy: AccessPolicy) -> None:
    frame = fact_ventes().to_pandas()
    frame.loc[len(frame)] = [None] * len(frame.columns)  # a row without a site: S01 only, so dropped
    seen = apply_policy("site_manager_s01", FACT, frame, policy=policy)
    assert isinstance(seen, pd.DataFrame)
    assert list(seen["order_id"]) == ["O1", "O1", "O3"]
    assert "margin_amount" not in seen.columns and "customer_id" not in seen.columns
    admin = apply_policy("admin", FACT, frame, policy=policy)
    assert len(admin) == 6 and "margin_amount" in admin.columns and "customer_id" not in admin.columns


def test_spark_dataframe_is_filtered_lazily_by_the_same_policy(spark, policy: AccessPolicy) -> None:
    frame = spark.createDataFrame(fact_ventes().select(["order_id", "site_id", "customer_id", "margin_amount"]).to_pandas())
    seen = apply_policy("site_manager_s01", GoldTable("pharma", "star", "fact_ventes"), frame, policy=policy)
    assert seen.columns == ["order_id", "site_id"]
    assert sorted(tuple(r) for r in seen.collect()) == [("O1", "S01"), ("O1", "S01"), ("O3", "S01")]


def test_forbidden_table_raises_with_a_stable_code(policy: AccessPolicy) -> None:
    with pytest.raises(AccessDenied, match="energy_analyst.*fact_ventes") as caught:
        apply_policy("energy_analyst", FACT, fact_ventes(), policy=policy)
    assert caught.value.code == "table_forbidden"


def test_bad_table_name_unknown_role_and_wrong_input_type_are_clear_errors(policy: AccessPolicy) -> None:
    with pytest.raises(ValueError, match="gold.<pharma|energy>.<model>.<table>"):
        apply_policy("admin", "fact_ventes", fact_ventes(), policy=policy)
    with pytest.raises(AccessConfigError, match="unknown role 'intern'"):
        apply_policy("intern", FACT, fact_ventes(), policy=policy)
    with pytest.raises(TypeError, match="got list"):
        apply_policy("admin", FACT, [1, 2], policy=policy)


def test_column_patterns_match_name_or_table_dot_column() -> None:
    policy = AccessPolicy.model_validate(
        {"roles": {"r": {"domains": ["pharma"], "deny_columns": ["fact_ventes.quantity", "*_amount"]}}}
    )
    table = pa.table({"quantity": [1], "net_amount": [2], "site_id": ["S01"]})
    assert apply_policy("r", FACT, table, policy=policy).column_names == ["site_id"]
    # The table-qualified pattern does not hide another table's column of the same name.
    assert apply_policy("r", "gold.pharma.kpi.other", table, policy=policy).column_names == ["quantity", "site_id"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("roles: {}\n", "define at least one role"),
        ("roles: {a: {domains: [finance]}}\n", "domains"),
        ("roles: {a: {domain: [pharma]}}\n", "domain"),  # a typo is an error, not a silent default
        ("pii_columns: [x]\n", "roles"),
    ],
)
def test_invalid_access_file_names_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(text)
    with pytest.raises(AccessConfigError, match=message) as caught:
        load_access_policy(path)
    assert str(path) in str(caught.value)


def test_missing_access_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AccessConfigError, match="no access policy file"):
        load_access_policy(tmp_path / "absent.yaml")
