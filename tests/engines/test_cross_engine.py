"""Same numbers on both engines: the embedded Sail server and Apache Spark 4 with Delta
Lake over Spark Connect (``lakehouse spark serve``).

The same generated sources (scale 0.05, 4 days, one seed) go through the ingestion and
transformation jobs of jobs.yaml once per engine, each into its own lake and PostgreSQL;
every gold table must hold the same rows (money to the cent, kWh within 1e-6) and every
silver quarantine the same number of rows. Delta-Spark's tables (checkpoints included)
must stay readable and restorable by the delta-rs code paths.

Needs Java 17 and Maven Central (the server's jars, cached in var/ivy): skipped unless
LAKEHOUSE_TEST_SPARK=1 (``make test-spark``).
"""

from __future__ import annotations

import decimal
import os

import pytest

from tests.engines.lakes import assert_same_tables, tables

if os.environ.get("LAKEHOUSE_TEST_SPARK") != "1":
    pytest.skip("Apache Spark engine tests: set LAKEHOUSE_TEST_SPARK=1 (make test-spark)", allow_module_level=True)

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark_engine")]


def test_every_gold_table_holds_the_same_rows_on_both_engines(lakes):
    sail, spark = tables(lakes["sail"], "gold"), tables(lakes["spark"], "gold")
    assert sail, "no gold table was built"
    assert_same_tables(sail, spark)


def test_every_quarantine_holds_as_many_rows_on_both_engines(lakes):
    from lakehouse import maintenance

    sail, spark = tables(lakes["sail"], "silver"), tables(lakes["spark"], "silver")
    quarantines = sorted(name for name in sail if name.endswith("_quarantine"))
    assert quarantines, "no quarantine table"
    counts = {
        name: (maintenance.row_count(sail[name]), maintenance.row_count(spark[name])) for name in quarantines
    }
    assert all(s == p for s, p in counts.values()), counts
    assert {name: maintenance.row_count(spark[name]) for name in spark} == {
        name: maintenance.row_count(sail[name]) for name in sail
    }


def test_delta_rs_reads_and_restores_a_table_delta_spark_checkpointed(spark_url, tmp_path):
    """Delta-Spark writes a checkpoint every 10 commits and its own protocol: the
    delta-rs paths (version, history, appended files, restore) must still work."""
    from lakehouse import maintenance
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark
    from lakehouse.pipelines.delta_source import read_appended

    session = get_spark(load_settings(spark={"engine": "remote", "remote": spark_url}))
    path = str(tmp_path / "t")
    for batch in range(12):
        session.createDataFrame([(batch, f"d{batch % 2}", decimal.Decimal("1.05"))], "k int, p string, amount decimal(12,2)").write.format(
            "delta"
        ).mode("append").partitionBy("p").save(path)
    assert (tmp_path / "t" / "_delta_log" / "00000000000000000010.checkpoint.parquet").exists()
    assert maintenance.version(path) == 11
    assert maintenance.row_count(path) == 12
    assert len(maintenance.history(path)) == 12
    appended, version = read_appended(session, path, since_version=9)
    assert version == 11 and sorted(r.k for r in appended.collect()) == [10, 11]
    maintenance.open_table(path).restore(5)
    assert sorted(r.k for r in session.read.format("delta").load(path).collect()) == list(range(6))
    session.createDataFrame([(99, "d1", decimal.Decimal("2.00"))], "k int, p string, amount decimal(12,2)").write.format(
        "delta"
    ).mode("append").partitionBy("p").save(path)  # Spark writes on after delta-rs's restore
    assert maintenance.row_count(path) == 7


def test_python_udf_output_written_on_spark_stays_readable_by_delta_rs(spark_url, tmp_path):
    """Spark Connect 4.2 types a DDL schema's strings with an explicit collation, which
    Delta-Spark writes as ``string collate UTF8_BINARY`` (unreadable by delta-rs):
    ``lake.write_delta`` writes plain ``string`` (as the ML scoring's mapInPandas does)."""
    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark
    from lakehouse.lake import write_delta

    session = get_spark(load_settings(spark={"engine": "remote", "remote": spark_url}))

    def score(batches):
        for batch in batches:
            yield batch[["machine_id"]].assign(kwh=1.5)

    scored = (
        session.range(3)
        .selectExpr("concat('M', cast(id AS STRING)) AS machine_id")
        .mapInPandas(score, "machine_id string, kwh double")
        .withColumn("detail", F.struct(F.col("machine_id").alias("m"), F.array(F.col("machine_id")).alias("ids")))
    )
    path = str(tmp_path / "scores")
    write_delta(scored, path)
    write_delta(scored.where("machine_id = 'M1'"), path, replace_where="machine_id = 'M1'")
    table = DeltaTable(path)
    assert str(table.schema().fields[0].type) == 'PrimitiveType("string")'
    assert sorted(table.to_pandas()["machine_id"]) == ["M0", "M1", "M2"]
