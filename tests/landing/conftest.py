"""A real S3 protocol server (moto's server mode) on 127.0.0.1, for the landing tests.

The server runs in its own process: in this one, a client call that holds the GIL
while waiting on the server (delta-rs ``DeltaTable.history``) would deadlock a
server thread.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid

import pytest

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def s3_endpoint():
    """``http://127.0.0.1:<port>`` of a moto server started for this test process."""
    with socket.socket() as probe:  # a free port (moto's CLI does not report port 0's)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on 127.0.0.1:{port}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def aws_env(monkeypatch, s3_endpoint):
    """Dummy credentials and the region, so no real AWS account is ever reached."""
    for key, value in {**DUMMY_CREDENTIALS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    return s3_endpoint


@pytest.fixture
def s3_client(aws_env):
    import boto3

    return boto3.client("s3", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture
def kms_client(aws_env):
    import boto3

    return boto3.client("kms", endpoint_url=aws_env, region_name=REGION)


@pytest.fixture
def bucket(s3_client):
    """A fresh bucket per test (the server's state lives as long as the process)."""
    name = f"landing-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name
