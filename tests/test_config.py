import datetime as dt

import pytest

from lakehouse.config import ConfigError, find_project_root, load_settings


def test_defaults_come_from_conf_base_and_paths_are_absolute(monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    settings = load_settings()
    root = find_project_root()
    assert settings.lake_root == str(root / "lake")
    assert settings.runs_dir == root / "runs"
    assert settings.postgres_data_dir == root / "var" / "postgres"
    assert settings.spark.engine == "sail"


def test_environment_beats_file_and_arguments_beat_environment(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_LAKE_ROOT", "s3://bucket/lake")
    monkeypatch.setenv("LAKEHOUSE_GENERATOR__SCALE", "0.25")
    monkeypatch.setenv("LAKEHOUSE_RUN_DATE", "2026-01-02")
    settings = load_settings()
    assert settings.lake_root == "s3://bucket/lake"  # remote roots are kept as given
    assert settings.generator.scale == 0.25 and settings.generator.days == 30
    assert settings.run_date == dt.date(2026, 1, 2)
    assert load_settings(run_date="2026-03-04").run_date == dt.date(2026, 3, 4)


def test_spark_remote_selects_the_remote_engine(monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", "sc://cluster:15002")
    settings = load_settings()
    assert (settings.spark.engine, settings.spark.remote) == ("remote", "sc://cluster:15002")


def test_password_is_not_printed(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_POSTGRES__PASSWORD", "s3cret")
    settings = load_settings()
    assert settings.postgres.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


def test_invalid_value_names_the_field():
    with pytest.raises(ConfigError, match="generator.scale"):
        load_settings(generator={"scale": -1})


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match="lake_rot"):
        load_settings(lake_rot="/tmp/x")


def test_project_root_must_hold_the_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="conf/base/lakehouse.yaml"):
        find_project_root()


def test_postgres_tls_settings_reach_psycopg_and_jdbc_and_the_password_stays_hidden(monkeypatch):
    from lakehouse.config import load_settings
    from lakehouse.postgres import ensure_server

    monkeypatch.setenv("LAKEHOUSE_POSTGRES__PASSWORD", "s3cret-pw")
    settings = load_settings(
        postgres={
            "mode": "external",
            "host": "db.internal",
            "port": 6432,
            "database": "erp",
            "sslmode": "verify-full",
            "sslrootcert": "/etc/ssl/erp-ca.pem",
        }
    )
    endpoint = ensure_server(settings)
    assert endpoint.conninfo() == (
        "host='db.internal' port='6432' dbname='erp' user='postgres' sslmode='verify-full' "
        "sslrootcert='/etc/ssl/erp-ca.pem' password='s3cret-pw'"
    )
    assert endpoint.jdbc_url == (
        "jdbc:postgresql://db.internal:6432/erp?sslmode=verify-full&sslrootcert=/etc/ssl/erp-ca.pem"
    )
    assert "s3cret-pw" not in repr(endpoint) and "s3cret-pw" not in repr(settings)
