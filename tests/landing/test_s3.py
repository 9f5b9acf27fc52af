"""The S3 landing zone against a real S3 protocol server (moto) on loopback."""

import datetime as dt

import pytest

from lakehouse.landing import LandingError, S3Landing

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _file(tmp_path, name: str, text: str = "a;b\r\n1;2\r\n"):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    return path


def test_upload_list_archive_round_trip(tmp_path, s3_client, bucket):
    landing = S3Landing(bucket, "lake", client=s3_client)
    first = landing.upload_drop(_file(tmp_path, "order_lines_20261101.csv"), "erp", "order_lines", DAY1)
    second = landing.upload_drop(
        _file(tmp_path, "order_lines_20261102.csv"), "erp", "order_lines", "2026-11-02"
    )
    assert first == "lake/landing/source=erp/order_lines/2026-11-01/order_lines_20261101.csv"
    assert second == "lake/landing/source=erp/order_lines/2026-11-02/order_lines_20261102.csv"
    landing.upload_drop(_file(tmp_path, "stock.csv"), "erp", "stock_snapshots", DAY1)  # another entity

    assert landing.list_new("erp", "order_lines", since_keys=[]) == [first, second]
    assert landing.list_new("erp", "order_lines", since_keys=[first]) == [second]

    moved = landing.archive([first])
    assert moved == ["lake/_archive/landing/source=erp/order_lines/2026-11-01/order_lines_20261101.csv"]
    assert landing.list_new("erp", "order_lines", since_keys=[]) == [second]  # archive is out of landing/
    body = s3_client.get_object(Bucket=bucket, Key=moved[0])["Body"].read()
    assert body == b"a;b\r\n1;2\r\n"
    with pytest.raises(s3_client.exceptions.ClientError):
        s3_client.head_object(Bucket=bucket, Key=first)


def test_list_skips_non_date_folders_and_hidden_names(tmp_path, s3_client, bucket):
    landing = S3Landing(bucket, client=s3_client)
    key = landing.upload_drop(_file(tmp_path, "a.csv"), "erp", "order_lines", DAY1)
    for stray in (
        "landing/source=erp/order_lines/notadate/x.csv",
        "landing/source=erp/order_lines/2026-11-01/_SUCCESS",
    ):
        s3_client.put_object(Bucket=bucket, Key=stray, Body=b"")
    assert key == "landing/source=erp/order_lines/2026-11-01/a.csv"  # no prefix: at the bucket root
    assert landing.list_new("erp", "order_lines") == [key]


def test_upload_generated_mirrors_the_local_landing_layout(tmp_path, s3_client, bucket):
    root = tmp_path / "lake" / "landing"
    for relative in (
        "source=erp/order_lines/2026-11-01/o.csv",
        "source=iot/energy/2026-11-02/e.json",
        ".hidden",
    ):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("x")
    keys = S3Landing(bucket, "lake", client=s3_client).upload_generated(root)
    assert keys == [
        "lake/landing/source=erp/order_lines/2026-11-01/o.csv",
        "lake/landing/source=iot/energy/2026-11-02/e.json",
    ]


def test_sse_s3_on_every_written_object(tmp_path, s3_client, bucket):
    landing = S3Landing(bucket, "lake", client=s3_client, sse="AES256")
    key = landing.upload_drop(_file(tmp_path, "a.csv"), "erp", "order_lines", DAY1)
    generated = tmp_path / "gen" / "source=erp" / "order_lines" / "2026-11-02"
    generated.mkdir(parents=True)
    (generated / "b.csv").write_text("x")
    [other] = landing.upload_generated(tmp_path / "gen")
    [archived] = landing.archive([key])
    for written in (other, archived):
        assert s3_client.head_object(Bucket=bucket, Key=written)["ServerSideEncryption"] == "AES256"


def test_sse_kms_with_the_configured_key_on_every_written_object(tmp_path, s3_client, kms_client, bucket):
    key_id = kms_client.create_key(Description="landing")["KeyMetadata"]["KeyId"]
    landing = S3Landing(bucket, "lake", client=s3_client, sse="aws:kms", kms_key_id=key_id)
    key = landing.upload_drop(_file(tmp_path, "a.csv"), "erp", "order_lines", DAY1)
    head = s3_client.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]
    [archived] = landing.archive([key])
    head = s3_client.head_object(Bucket=bucket, Key=archived)
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]


def test_without_sse_nothing_is_requested(tmp_path, s3_client, bucket):
    key = S3Landing(bucket, client=s3_client).upload_drop(
        _file(tmp_path, "a.csv"), "erp", "order_lines", DAY1
    )
    assert s3_client.head_object(Bucket=bucket, Key=key).get("ServerSideEncryption") in (None, "AES256")


def test_missing_bucket_errors_name_bucket_and_key(tmp_path, s3_client):
    landing = S3Landing("no-such-bucket-here", "lake", client=s3_client)
    with pytest.raises(
        LandingError,
        match=r"s3://no-such-bucket-here/lake/landing/source=erp/order_lines/2026-11-01/a\.csv.*does not exist",
    ):
        landing.upload_drop(_file(tmp_path, "a.csv"), "erp", "order_lines", DAY1)
    with pytest.raises(
        LandingError, match=r"s3://no-such-bucket-here/lake/landing/source=erp/order_lines/.*does not exist"
    ):
        landing.list_new("erp", "order_lines")
    with pytest.raises(LandingError, match=r"s3://no-such-bucket-here/lake/landing/x\.csv"):
        landing.archive(["lake/landing/x.csv"])


def test_invalid_settings_are_refused(s3_client):
    with pytest.raises(ValueError, match="sse='AES128'"):
        S3Landing("b", client=s3_client, sse="AES128")
    with pytest.raises(ValueError, match="kms_key_id is only used with sse='aws:kms'"):
        S3Landing("b", client=s3_client, sse="AES256", kms_key_id="k")
    with pytest.raises(ValueError):
        S3Landing("b", client=s3_client).upload_drop(__file__, "erp", "order_lines", "2026-13-01")


def test_from_settings(aws_env, bucket, tmp_path):
    from lakehouse.config import S3Settings

    settings = S3Settings(
        endpoint_url=aws_env, region="us-east-1", sse="AES256", landing_bucket=bucket, landing_prefix="lake/"
    )
    landing = S3Landing.from_settings(settings)
    key = landing.upload_drop(_file(tmp_path, "a.csv"), "erp", "order_lines", DAY1)
    assert key.startswith("lake/landing/") and landing.list_new("erp", "order_lines") == [key]
    with pytest.raises(ValueError, match="landing_bucket"):
        S3Landing.from_settings(S3Settings())
