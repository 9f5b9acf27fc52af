
from lakehouse import maintenance
from lakehouse.catalog import describe_tables, table_name
from lakehouse.lake import Lake, write_delta


def test_paths_follow_the_lake_layout():
    lake = Lake("s3://bucket/lake")
    assert lake.bronze("erp", "order_lines") == "s3://bucket/lake/bronze/source=erp/table=order_lines"
    assert lake.gold("energy", "prediction", "anomalies") == (
        "s3://bucket/lake/gold/domain=energy/model=prediction/table=anomalies"
    )
    assert lake.relative("bucket/lake/landing/source=erp/x/2026-01-01/f.csv") == (
        "landing/source=erp/x/2026-01-01/f.csv"
    )
    assert table_name("/l", "/l/gold/domain=pharma/model=star/table=fact_ventes") == (
        "gold.pharma.star.fact_ventes"
    )


def test_catalog_history_and_vacuum_through_delta_rs(spark, lake):
    path = lake.silver("pharma", "t")
    write_delta(spark.createDataFrame([(1,), (2,)], "id int"), path)
    write_delta(spark.createDataFrame([(3,)], "id int"), path)  # overwrite: version 1
    [info] = describe_tables(lake.root)
    assert (info.name, info.layer, info.rows, info.version) == ("silver.pharma.t", "silver", 1, 1)
    assert [h["version"] for h in maintenance.history(path)] == [1, 0]
    removable = maintenance.vacuum(path, retention_hours=0, dry_run=True)
    assert len(removable) >= 1  # the overwritten file, not deleted by a dry run
    assert maintenance.vacuum(path, retention_hours=0, dry_run=False) == removable
    assert spark.read.format("delta").load(path).count() == 1  # still readable by the engine


def test_the_version_is_the_latest_commit_file_after_checkpoints_and_log_cleanup(tmp_path):
    """``maintenance.version`` lists ``_delta_log`` instead of opening the table: the
    same number as delta-rs gives, with checkpoints, expired commit files removed and
    the crc files beside them."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    path = str(tmp_path / "t")
    for n in range(12):
        write_deltalake(path, pa.table({"id": [n]}), mode="append")
    table = DeltaTable(path)
    table.create_checkpoint()
    table.cleanup_metadata()
    assert maintenance.version(path) == DeltaTable(path).version() == 11
    write_deltalake(path, pa.table({"id": [12]}), mode="overwrite")
    assert maintenance.version(path) == 12
