"""`lakehouse spark serve`: the command line of the local Apache Spark Connect server
(no JVM started here; tests/engines/ runs the server itself)."""

import pytest
from click.testing import CliRunner

from lakehouse import spark_server
from lakehouse.cli import main
from lakehouse.config import load_settings


def _conf(args: list[str]) -> dict[str, str]:
    return dict(args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--conf")


def test_server_command_has_delta_jdbc_s3_and_the_ivy_cache_under_var(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    settings = load_settings(var_dir=str(tmp_path / "var"))
    args = spark_server.command(settings, port=15010, cores="2", driver_memory="3g")
    packages = args[args.index("--packages") + 1].split(",")
    assert any(p.startswith("io.delta:delta-spark_4.2_2.13:") for p in packages)
    assert any(p.startswith("org.postgresql:postgresql:") for p in packages)
    assert any(p.startswith("org.apache.hadoop:hadoop-aws:3.5") for p in packages)
    assert args[args.index("--master") + 1] == "local[2]"
    assert args[args.index("--driver-memory") + 1] == "3g"
    assert args[args.index("--class") + 1] == spark_server.CONNECT_SERVER_CLASS
    conf = _conf(args)
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert conf["spark.jars.ivy"] == str(tmp_path / "var" / "ivy")
    assert conf["spark.connect.grpc.binding.address"] == "127.0.0.1"
    assert conf["spark.connect.grpc.binding.port"] == "15010"
    assert conf["spark.sql.shuffle.partitions"] == "4"
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-3"


def test_s3_settings_without_an_endpoint_anywhere(tmp_path, monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    conf = spark_server.s3_conf(load_settings(var_dir=str(tmp_path / "var")))
    assert conf == {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}


def test_without_s3_no_hadoop_aws_and_extra_conf_wins(tmp_path):
    settings = load_settings(var_dir=str(tmp_path / "var"))
    args = spark_server.command(
        settings,
        port=15010,
        s3=False,
        extra_conf={"spark.sql.shuffle.partitions": "1", "spark.jars.ivy": "/x"},
    )
    assert "hadoop-aws" not in args[args.index("--packages") + 1]
    conf = _conf(args)
    assert "spark.hadoop.fs.s3.impl" not in conf
    assert conf["spark.sql.shuffle.partitions"] == "1" and conf["spark.jars.ivy"] == "/x"


def test_stop_and_status_without_a_server(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_VAR_DIR", str(tmp_path / "var"))
    assert CliRunner().invoke(main, ["spark", "stop"]).output.strip() == "no Spark Connect server was running"
    status = CliRunner().invoke(main, ["spark", "status"])
    assert status.exit_code == 1 and "not running" in status.output


def test_a_dead_server_pid_is_not_reported_running(tmp_path):
    settings = load_settings(var_dir=str(tmp_path / "var"))
    spark_server.state_dir(settings).mkdir(parents=True)
    spark_server._state_file(settings).write_text(
        '{"pid": 999999, "port": 1, "url": "sc://127.0.0.1:1", "log": "x", "started_at": 0}'
    )
    assert spark_server.read_state(settings).alive is False
    assert spark_server.stop(settings) is False
    assert spark_server.read_state(settings) is None


@pytest.mark.parametrize(
    ("sse", "key", "expected"),
    [
        ("none", None, {}),
        ("AES256", None, {"spark.hadoop.fs.s3a.encryption.algorithm": "SSE-S3"}),
        ("aws:kms", None, {"spark.hadoop.fs.s3a.encryption.algorithm": "SSE-KMS"}),
        (
            "aws:kms",
            "arn:aws:kms:eu-west-3:111122223333:key/k1",
            {
                "spark.hadoop.fs.s3a.encryption.algorithm": "SSE-KMS",
                "spark.hadoop.fs.s3a.encryption.key": "arn:aws:kms:eu-west-3:111122223333:key/k1",
            },
        ),
    ],
)
def test_the_lake_encryption_settings_reach_s3a(tmp_path, monkeypatch, sse, key, expected):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    s3 = {"sse": sse, **({"kms_key_id": key} if key else {})}
    conf = spark_server.s3_conf(load_settings(var_dir=str(tmp_path / "var"), s3=s3))
    assert {k: v for k, v in conf.items() if ".encryption." in k} == expected
