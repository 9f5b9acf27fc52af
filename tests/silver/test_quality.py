import pytest
from chispa import assert_df_equality

from lakehouse.silver.quality import split_by_rules, split_duplicates


def test_rules_name_every_failure_and_null_predicates_pass(spark):
    df = spark.createDataFrame([(1, 5), (2, -1), (3, None), (None, -2)], "id int, qty int")
    passed, rejected = split_by_rules(df, {"positive_qty": "qty > 0", "id_present": "id IS NOT NULL"})
    # qty NULL -> 'qty > 0' is NULL -> row kept (Databricks semantics)
    assert_df_equality(
        passed,
        spark.createDataFrame([(1, 5), (3, None)], "id int, qty int"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert {(r.id, tuple(r._rejection_reasons)) for r in rejected.collect()} == {
        (2, ("positive_qty",)),
        (None, ("positive_qty", "id_present")),
    }


def test_rules_must_not_be_empty(spark):
    with pytest.raises(ValueError, match="at least one rule"):
        split_by_rules(spark.createDataFrame([(1,)], "id int"), {})


def test_latest_version_wins_and_older_ones_are_reported(spark):
    df = spark.createDataFrame(
        [("A", 1, "v1"), ("A", 3, "v3"), ("A", 2, "v2"), ("B", None, "b"), ("B", 1, "b1")],
        "key string, version int, value string",
    )
    kept, duplicates = split_duplicates(df, keys=["key"], latest_first=["version"])
    assert_df_equality(
        kept,
        spark.createDataFrame([("A", 3, "v3"), ("B", 1, "b1")], "key string, version int, value string"),
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert sorted(r.value for r in duplicates.collect()) == ["b", "v1", "v2"]
    assert {tuple(r._rejection_reasons) for r in duplicates.collect()} == {("duplicate",)}
