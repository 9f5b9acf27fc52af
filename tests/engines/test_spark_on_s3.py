"""The lake on ``s3://`` from Apache Spark: S3A against the local S3 server of
tests/conftest.py (moto, which implements KMS too), with SSE-KMS under a key made for
the test.

One Spark Connect server for the module, started with the S3 endpoint (S3A reads it
when the server starts) and ``s3: {sse: aws:kms, kms_key_id: <key ARN>}``: what the
pipeline writes through S3A must be stored encrypted with that key, and bronze, silver
and gold on the ``s3://`` lake must hold what the same sources give on a local lake.

Needs Java 17 and the server's jars: skipped unless LAKEHOUSE_TEST_SPARK=1 (``make test-spark``).
"""

from __future__ import annotations

import datetime as dt
import os
import types
from pathlib import Path

import pytest

from tests.conftest import DUMMY_CREDENTIALS, REGION
from tests.engines.conftest import close_connect_sessions
from tests.engines.lakes import KEY, RUN_DATE, assert_same_tables, tables

if os.environ.get("LAKEHOUSE_TEST_SPARK") != "1":
    pytest.skip(
        "Apache Spark engine tests: set LAKEHOUSE_TEST_SPARK=1 (make test-spark)", allow_module_level=True
    )

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark_engine")]

HEADER = "order_id;line_number;order_date;customer_id;product_id;product_label;site_id;quantity;unit_price;discount_pct"


@pytest.fixture(scope="module")
def s3_spark(s3_endpoint, tmp_path_factory):
    """A Spark Connect server whose S3A reaches the local S3 server and encrypts with
    SSE-KMS under a new key; its URL and the key."""
    import boto3

    from lakehouse import spark_server
    from lakehouse.config import load_settings

    kms = boto3.client(
        "kms",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    key = kms.create_key(Description="lake on s3 from Spark")["KeyMetadata"]
    project = load_settings()  # the project's ivy cache holds the jars
    settings = load_settings(
        var_dir=str(tmp_path_factory.mktemp("s3-spark") / "var"),
        s3={"sse": "aws:kms", "kms_key_id": key["Arn"]},
    )
    with pytest.MonkeyPatch.context() as env:  # what the server process inherits
        for name, value in {
            **DUMMY_CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": s3_endpoint,
        }.items():
            env.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
            env.delenv(name, raising=False)
        state = spark_server.start(
            settings,
            port=0,
            cores="2",
            driver_memory="2g",
            extra_conf={"spark.jars.ivy": str(project.var_dir / "ivy")},
        )
    try:
        yield types.SimpleNamespace(url=state.url, key_id=key["KeyId"], key_arn=key["Arn"])
    finally:
        close_connect_sessions()
        spark_server.stop(settings)


@pytest.fixture
def s3_lake(monkeypatch, aws_env, s3_client, bucket):
    """``s3://<fresh bucket>/lake``; this process (pyarrow.fs, delta-rs) reaches the same server."""
    for key, value in {
        "AWS_ENDPOINT": aws_env,
        "AWS_ENDPOINT_URL": aws_env,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(key, value)
    return f"s3://{bucket}/lake"


def _session(url: str):
    from lakehouse.config import load_settings
    from lakehouse.engine import get_spark

    return get_spark(load_settings(spark={"engine": "remote", "remote": url}))


def _encryption(client, bucket: str, prefix: str) -> dict[str, tuple[str | None, str | None]]:
    """Object key -> (ServerSideEncryption, SSEKMSKeyId) as the server reports them."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            head = client.head_object(Bucket=bucket, Key=item["Key"])
            found[item["Key"]] = (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"))
    return found


def _upload_order_lines(s3_client, bucket: str, folder: Path) -> None:
    from lakehouse.landing import S3Landing

    drop = folder / "order_lines_20261101.csv"
    lines = [HEADER, "O1;1;01/11/2026;C1;P1;Paracétamol;S01;2;1,50;0", "O2;1;01/11/2026;C1;P1;ragged"]
    drop.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    S3Landing(bucket, "lake", client=s3_client).upload_drop(drop, "erp", "order_lines", dt.date(2026, 11, 1))


def _run_bronze_order_lines(session, lake_root: str):
    from lakehouse import pipelines as dp
    from lakehouse.lake import Lake

    graph = dp.load_graph("pharma", ["lakehouse.bronze.tables"])
    runner = dp.PipelineRunner(session, graph, Lake(lake_root), parameters={})
    event = runner.run(refresh=["bronze_order_lines"], include_upstreams=False, run_id="s3").event(
        "bronze_order_lines"
    )
    return event, runner.path("bronze_order_lines")


def test_bronze_on_an_s3_lake_runs_on_spark_with_the_same_s3_uris(
    tmp_path, s3_spark, s3_lake, s3_client, bucket
):
    """The lake root stays ``s3://bucket/lake`` on Spark (S3A serves the ``s3`` scheme):
    bronze reads the landing drop and writes Delta on the local S3 server, delta-rs
    reads it back from the same URI."""
    from lakehouse import maintenance

    _upload_order_lines(s3_client, bucket, tmp_path)
    session = _session(s3_spark.url)
    event, path = _run_bronze_order_lines(session, s3_lake)
    assert (event.status, event.rows_read, event.rows_written) == ("COMPLETED", 2, 2), event
    assert path == f"{s3_lake}/bronze/source=erp/table=order_lines"
    assert maintenance.row_count(path) == 2  # delta-rs reads what Delta-Spark wrote on S3
    rows = {
        r["order_id"] or r["_corrupt_record"]: r
        for r in maintenance.open_table(path).to_pyarrow_table().to_pylist()
    }
    assert rows["O1"]["product_label"] == "Paracétamol"
    assert session.read.format("delta").load(path).count() == 2


def test_a_table_the_pipeline_writes_through_s3a_is_encrypted_with_the_kms_key(
    tmp_path, s3_spark, s3_lake, s3_client, bucket
):
    _upload_order_lines(s3_client, bucket, tmp_path)
    event, _path = _run_bronze_order_lines(_session(s3_spark.url), s3_lake)
    assert event.status == "COMPLETED", event

    table = _encryption(s3_client, bucket, "lake/bronze/source=erp/table=order_lines/")
    assert any(key.endswith(".parquet") for key in table), table
    assert any("/_delta_log/" in key and key.endswith(".json") for key in table), table
    assert {sse for sse, _ in table.values()} == {"aws:kms"}, table
    assert {key_id for _, key_id in table.values()} == {s3_spark.key_arn}, table
    # Not vacuous: the landing drop, uploaded without SSE, is reported unencrypted.
    landing = _encryption(s3_client, bucket, "lake/landing/")
    assert landing and {sse for sse, _ in landing.values()} == {None}, landing


def _upload_folder(client, bucket: str, folder: Path, prefix: str) -> int:
    files = [f for f in sorted(folder.rglob("*")) if f.is_file()]
    for file in files:
        client.upload_file(str(file), bucket, f"{prefix}/{file.relative_to(folder).as_posix()}")
    return len(files)


def _without_lake_root(value):
    """A landing file's path, as bronze records it, relative to the landing folder."""
    if isinstance(value, str) and "/landing/" in value:
        return value.split("/landing/", 1)[1]
    return value


def test_bronze_silver_and_gold_on_an_s3_lake_hold_what_a_local_lake_holds(
    lakes, s3_spark, s3_lake, s3_client, bucket, monkeypatch
):
    """The landing files of the local Spark lake of the cross-engine test, uploaded to
    S3, go through bronze, silver and gold on Spark against the same PostgreSQL: every
    table holds the same rows (the source file paths taken relative to the landing),
    and every object of every table is encrypted with the KMS key."""
    from lakehouse.config import load_settings
    from lakehouse.context import RunContext
    from lakehouse.lake import Lake
    from lakehouse.medallion import run_layer
    from lakehouse.postgres import ensure_server

    local = lakes["spark"]
    assert _upload_folder(s3_client, bucket, local / "landing", "lake/landing") > 0
    monkeypatch.setenv("LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY", KEY)
    settings = load_settings(
        lake_root=s3_lake,
        var_dir=str(local.parent / "var"),
        runs_dir=str(local.parent / "s3-runs"),
        run_date=RUN_DATE,
    )
    ensure_server(settings)  # the local lake's referential
    run_date = dt.date.fromisoformat(RUN_DATE)
    context = RunContext(
        settings=settings,
        spark=_session(s3_spark.url),
        lake=Lake(s3_lake),
        run_date=run_date,
        batch_id="s3-lake",
        started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
    )
    for layer in ("bronze", "silver", "gold"):
        run = run_layer(context, layer)
        failed = [
            (e.dataset, e.status, e.error) for e in run.events if e.status not in ("COMPLETED", "SKIPPED")
        ]
        assert not failed, f"{layer} on the s3:// lake: {failed}"

    for layer in ("bronze", "silver", "gold"):
        expected = tables(local, layer)
        assert expected, f"no {layer} table in the local lake"
        assert_same_tables(expected, tables(s3_lake, layer), normalise=_without_lake_root)

    encryption = {
        key: value
        for layer in ("bronze", "silver", "gold")
        for key, value in _encryption(s3_client, bucket, f"lake/{layer}/").items()
    }
    assert len(encryption) > 50
    assert {sse for sse, _ in encryption.values()} == {"aws:kms"}
    assert {key_id for _, key_id in encryption.values()} == {s3_spark.key_arn}
