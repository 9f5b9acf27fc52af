"""SSE-KMS on an s3:// lake: the governance tables (written by delta-rs) are encrypted
with the configured KMS key when AWS_SERVER_SIDE_ENCRYPTION / AWS_SSE_KMS_KEY_ID are
set, checked object by object on the real S3 protocol server of tests/conftest.py."""

from __future__ import annotations

import pytest

from lakehouse.governance import audit


@pytest.fixture
def s3(monkeypatch, aws_env, s3_client, kms_client, bucket):
    """The S3 server of tests/conftest.py as the lake's endpoint (delta-rs and the engine
    read AWS_ENDPOINT_URL), with a fresh bucket."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    return s3_client, kms_client, bucket


def _encryption(client, bucket: str) -> dict[str, tuple[str | None, str | None]]:
    objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    heads = {o["Key"]: client.head_object(Bucket=bucket, Key=o["Key"]) for o in objects}
    return {key: (h.get("ServerSideEncryption"), h.get("SSEKMSKeyId")) for key, h in heads.items()}


@pytest.mark.slow
def test_audit_log_on_s3_is_encrypted_with_the_configured_kms_key(s3, monkeypatch):
    client, kms, bucket = s3
    key_id = kms.create_key(Description="lake")["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("AWS_SERVER_SIDE_ENCRYPTION", "aws:kms")
    monkeypatch.setenv("AWS_SSE_KMS_KEY_ID", key_id)
    lake_root = f"s3://{bucket}/lake"

    audit.record_event(lake_root, actor="alice", action="api.read", target="gold.fact_ventes")
    audit.record_event(lake_root, actor="bob", action="api.read", target="gold.dim_site")

    assert [r["seq"] for r in audit.read_log(lake_root).to_pylist()] == [1, 2]
    assert audit.verify(lake_root).ok
    encryption = _encryption(client, bucket)
    assert any(k.endswith(".parquet") for k in encryption) and any("_delta_log/" in k for k in encryption)
    assert {value[0] for value in encryption.values()} == {"aws:kms"}
    assert all(value[1] and value[1].endswith(key_id) for value in encryption.values())


@pytest.mark.slow
def test_without_the_setting_objects_are_not_kms_encrypted(s3):
    # The check above is not vacuous: moto reports no SSE unless a writer asks for it.
    client, _kms, bucket = s3
    audit.record_event(f"s3://{bucket}/lake", actor="alice", action="api.read", target="t")
    assert {value[0] for value in _encryption(client, bucket).values()} == {None}
