"""SSE-KMS on an s3:// lake: the governance tables (written by delta-rs) are encrypted
with the configured KMS key when AWS_SERVER_SIDE_ENCRYPTION / AWS_SSE_KMS_KEY_ID are
set, checked object by object on a real S3 protocol server (moto, own process)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from lakehouse.governance import audit

REGION = "us-east-1"
BUCKET = "governance-lake"


@pytest.fixture
def s3(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {endpoint}") from None
                time.sleep(0.1)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        import boto3

        yield boto3.client("s3", endpoint_url=endpoint, region_name=REGION), boto3.client(
            "kms", endpoint_url=endpoint, region_name=REGION
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


def _encryption(client) -> dict[str, tuple[str | None, str | None]]:
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    heads = {o["Key"]: client.head_object(Bucket=BUCKET, Key=o["Key"]) for o in objects}
    return {key: (h.get("ServerSideEncryption"), h.get("SSEKMSKeyId")) for key, h in heads.items()}


@pytest.mark.slow
def test_audit_log_on_s3_is_encrypted_with_the_configured_kms_key(s3, monkeypatch):
    client, kms = s3
    client.create_bucket(Bucket=BUCKET)
    key_id = kms.create_key(Description="lake")["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("AWS_SERVER_SIDE_ENCRYPTION", "aws:kms")
    monkeypatch.setenv("AWS_SSE_KMS_KEY_ID", key_id)
    lake_root = f"s3://{BUCKET}/lake"

    audit.record_event(lake_root, actor="alice", action="api.read", target="gold.fact_ventes")
    audit.record_event(lake_root, actor="bob", action="api.read", target="gold.dim_site")

    assert [r["seq"] for r in audit.read_log(lake_root).to_pylist()] == [1, 2]
    assert audit.verify(lake_root).ok
    encryption = _encryption(client)
    assert any(k.endswith(".parquet") for k in encryption) and any("_delta_log/" in k for k in encryption)
    assert {value[0] for value in encryption.values()} == {"aws:kms"}
    assert all(value[1] and value[1].endswith(key_id) for value in encryption.values())


@pytest.mark.slow
def test_without_the_setting_objects_are_not_kms_encrypted(s3):
    # The check above is not vacuous: moto reports no SSE unless a writer asks for it.
    client, _kms = s3
    client.create_bucket(Bucket=BUCKET)
    audit.record_event(f"s3://{BUCKET}/lake", actor="alice", action="api.read", target="t")
    assert {value[0] for value in _encryption(client).values()} == {None}
