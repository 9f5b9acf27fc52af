"""The lake itself on ``s3://``: bronze ingestion end to end against the moto server.

Sail reads the S3 endpoint from the environment when its server starts, so the
pipeline runs in a subprocess started with that environment. ``AWS_ENDPOINT_URL`` is
the variable pyarrow.fs (listing, checkpoints) reads; Sail and delta-rs read it too
(Sail also reads ``AWS_ENDPOINT``).
"""

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap

import pytest

from lakehouse import maintenance
from lakehouse.landing import S3Landing

HEADER = "order_id;line_number;order_date;customer_id;product_id;product_label;site_id;quantity;unit_price;discount_pct"

RUN_BRONZE = textwrap.dedent(
    """
    import json, sys
    from lakehouse import pipelines as dp
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark, stop_embedded_engine
    from lakehouse.lake import Lake

    spark = get_spark(load_settings(spark={"engine": "sail"}), app_name="s3-test")
    runner = dp.PipelineRunner(spark, dp.load_graph("pharma", ["lakehouse.bronze.tables"]), Lake(sys.argv[1]), parameters={})
    events = []
    for run_id in sys.argv[2:]:
        event = runner.run(refresh=["bronze_order_lines"], include_upstreams=False, run_id=run_id).event("bronze_order_lines")
        events.append([event.status, event.rows_read, event.rows_written])
    print("RESULT " + json.dumps({"events": events, "path": runner.path("bronze_order_lines")}))
    stop_embedded_engine()
    """
)


def _run_bronze(env: dict[str, str], lake_root: str, *run_ids: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", RUN_BRONZE, lake_root, *run_ids],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (
        f"bronze run on {lake_root} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.mark.slow
@pytest.mark.xdist_group("s3")
def test_bronze_ingests_s3_landing_into_a_lake_on_s3(tmp_path, monkeypatch, aws_env, s3_client, bucket):
    for key, value in {
        "AWS_ENDPOINT": aws_env,
        "AWS_ENDPOINT_URL": aws_env,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(key, value)  # delta-rs (maintenance) reads these in this process
    env = {**os.environ, "RUST_LOG": "warn"}
    lake_root = f"s3://{bucket}/lake"

    landing = S3Landing(bucket, "lake", client=s3_client, sse="AES256")
    drops = {
        dt.date(2026, 11, 1): [
            HEADER,
            "O1;1;01/11/2026;C1;P1;Paracétamol;S01;2;1,50;0",
            "O2;1;01/11/2026;C1;P1;ragged",
        ],
        dt.date(2026, 11, 2): [HEADER, "O3;1;02/11/2026;C1;P1;X;S01;1;2,00;0"],
    }
    for day, lines in drops.items():
        local = tmp_path / f"order_lines_{day:%Y%m%d}.csv"
        local.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
        landing.upload_drop(local, "erp", "order_lines", day)

    result = _run_bronze(env, lake_root, "r1", "r2")
    assert result["events"] == [["COMPLETED", 3, 3], ["SKIPPED", 0, 0]]  # the second run reads nothing new
    path = result["path"]
    assert path == f"{lake_root}/bronze/source=erp/table=order_lines"

    assert maintenance.row_count(path) == 3  # delta-rs reads the table Sail wrote on S3
    rows = {
        r["order_id"] or r["_corrupt_record"]: r
        for r in maintenance.open_table(path).to_pyarrow_table().to_pylist()
    }
    assert rows["O1"]["product_label"] == "Paracétamol"  # latin-1 decoded
    assert (rows["O1"]["year"], rows["O1"]["month"], rows["O1"]["day"]) == ("2026", "11", "01")
    assert (
        rows["O1"]["_source_file"]
        == f"{lake_root}/landing/source=erp/order_lines/2026-11-01/order_lines_20261101.csv"
    )
    assert rows["O3"]["day"] == "02" and rows["O2;1;01/11/2026;C1;P1;ragged"]["_line_number"] == 3

    # A later drop is read by the next run (new process: the checkpoint lives on S3).
    local = tmp_path / "order_lines_20261103.csv"
    local.write_bytes(
        ("\r\n".join([HEADER, "O4;1;03/11/2026;C1;P1;X;S01;1;2,00;0"]) + "\r\n").encode("latin-1")
    )
    landing.upload_drop(local, "erp", "order_lines", dt.date(2026, 11, 3))
    assert _run_bronze(env, lake_root, "r3")["events"] == [["COMPLETED", 1, 1]]
    assert maintenance.row_count(path) == 4
    assert maintenance.version(path) == 1

    # Maintenance through delta-rs on S3: history and a real vacuum (it commits to the log).
    assert [h["operation"] for h in maintenance.history(path)] == ["WRITE", "CREATE TABLE"]
    assert maintenance.vacuum(path, retention_hours=0, dry_run=False) == []
    assert maintenance.row_count(path) == 4

    # Archived drops leave landing/; the next run reads nothing and bronze keeps its rows.
    archived = landing.archive(landing.list_new("erp", "order_lines"))
    assert len(archived) == 3 and landing.list_new("erp", "order_lines") == []
    assert _run_bronze(env, lake_root, "r4")["events"] == [["SKIPPED", 0, 0]]
    assert maintenance.row_count(path) == 4


def test_delta_rs_commits_and_vacuums_on_s3_with_the_lake_storage_options(monkeypatch, aws_env, bucket):
    """delta-rs writes to the log (vacuum commits) on S3 with the options maintenance
    derives from the environment: no locking provider or unsafe-rename flag needed."""
    import pyarrow as pa
    from deltalake import write_deltalake

    for key, value in {"AWS_ENDPOINT_URL": aws_env, "AWS_ALLOW_HTTP": "true"}.items():
        monkeypatch.setenv(key, value)
    path = f"s3://{bucket}/lake/silver/domain=pharma/table=probe"
    options = maintenance.storage_options(path)
    for rows in ([1, 2], [3]):
        write_deltalake(path, pa.table({"id": rows}), mode="overwrite", storage_options=options)
    assert maintenance.row_count(path) == 1 and maintenance.version(path) == 1
    removed = maintenance.vacuum(path, retention_hours=0, dry_run=False)
    assert len(removed) == 1 and maintenance.row_count(path) == 1
    assert [h["operation"] for h in maintenance.history(path)][:2] == ["VACUUM END", "VACUUM START"]
