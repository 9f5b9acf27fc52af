"""The session factory: embedded Sail by default, any Spark Connect server by URL."""

import pytest

from lakehouse.config import load_settings
from lakehouse.engine import EngineError, get_spark


def test_remote_engine_runs_the_same_code_on_another_spark_connect_server(spark, monkeypatch, tmp_path):
    """A second Sail server on loopback stands in for a cluster reached by SPARK_REMOTE."""
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    try:
        _, port = server.listening_address
        monkeypatch.setenv("SPARK_REMOTE", f"sc://127.0.0.1:{port}")
        settings = load_settings()
        assert settings.spark.engine == "remote"
        session = get_spark(settings, app_name="remote-test")
        assert session is not spark  # not the embedded session that is already active
        session.sql("CREATE OR REPLACE TEMPORARY VIEW only_on_remote AS SELECT 1 AS x")
        assert not spark.catalog.tableExists("only_on_remote")
        path = str(tmp_path / "t")
        session.createDataFrame([(1, "a"), (2, "b")], "id int, v string").write.format("delta").save(path)
        assert session.read.format("delta").load(path).count() == 2
        assert session.conf.get("spark.sql.session.timeZone") == "UTC"
        assert session.client._use_reattachable_execute  # a server across a network may cut streams
        session.stop()
    finally:
        server.stop()


def test_embedded_engine_streams_results_without_reattachable_execution(spark):
    """In-process server over loopback: no ReleaseExecute call per result (pyspark keeps
    the switch in a private attribute, read here)."""
    assert get_spark(load_settings(spark={"engine": "sail"})) is spark
    assert not spark.client._use_reattachable_execute
    assert [r.n for r in spark.range(3).selectExpr("id * 2 AS n").collect()] == [0, 2, 4]


def test_remote_engine_without_url_says_what_to_set(monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    with pytest.raises(EngineError, match="SPARK_REMOTE=sc://host:port"):
        get_spark(load_settings(spark={"engine": "remote"}))


def test_unreachable_remote_engine_names_the_url(monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    settings = load_settings(spark={"engine": "remote", "remote": "sc://127.0.0.1:1"})
    with pytest.raises(EngineError, match="sc://127.0.0.1:1"):
        get_spark(settings).sql("select 1").collect()


def test_jdbc_options_reach_a_unix_socket_on_every_engine(spark):
    """Sail's source takes the socket folder as host; JVM Spark's driver needs junixsocket."""
    from lakehouse.engine import is_sail, jdbc_options
    from lakehouse.postgres import PostgresEndpoint

    socket_endpoint = PostgresEndpoint("/data/pg", 5432, "postgres", "postgres", "", "referential")
    tcp_endpoint = PostgresEndpoint("db.internal", 5433, "ref", "u", "p", "referential", sslmode="require")
    other_engine = object()  # a session of another engine than this process's Sail
    assert jdbc_options(other_engine, tcp_endpoint) == {"url": tcp_endpoint.jdbc_url, "driver": "org.postgresql.Driver"}
    jvm_url = jdbc_options(other_engine, socket_endpoint)["url"]
    assert "socketFactory=org.newsclub.net.unix.AFUNIXSocketFactory$FactoryArg" in jvm_url
    assert "socketFactoryArg=/data/pg/.s.PGSQL.5432" in jvm_url
    if is_sail(spark):
        assert jdbc_options(spark, socket_endpoint) == {"url": socket_endpoint.jdbc_url}


def test_close_sessions_stops_only_the_clients_of_that_server(monkeypatch):
    from lakehouse.engine import session as engine_session

    class Client:
        def __init__(self) -> None:
            self.is_stopped = False

        def stop(self) -> None:
            self.is_stopped = True

    mine, with_params, other = Client(), Client(), Client()
    monkeypatch.setattr(
        engine_session,
        "_sessions",
        {
            "sc://127.0.0.1:15002": mine,
            "sc://127.0.0.1:15002/;user_id=x": with_params,
            "sc://127.0.0.1:15003": other,
        },
    )
    assert engine_session.close_sessions("sc://127.0.0.1:15002") == 2
    assert mine.is_stopped and with_params.is_stopped and not other.is_stopped
    assert list(engine_session._sessions) == ["sc://127.0.0.1:15003"]
