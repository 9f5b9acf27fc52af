"""The one Spark session factory: the embedded Sail server of this process, a Spark
Connect server by URL, or classic JVM Spark (see ``lakehouse.engine``)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from lakehouse.config import Settings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_log = logging.getLogger(__name__)
_sail_server = None  # one embedded server per process, shared by all sessions
_sessions: dict[str, SparkSession] = {}  # Connect URL -> live session of this process

# The embedded engine's environment, read when its library loads (a variable already
# set wins). Sail's allocator (mimalloc) commits its arenas eagerly by default; the
# kernel then backs them with transparent huge pages, each zeroed whole (2 MiB) on first
# touch: a fifth of the engine's CPU went to the kernel on a daily run at scale 1. Lazy
# commit: new day 1.76-1.92 -> 1.64-1.72 s, full rebuild 6.4-9.0 -> 5.8-6.8 s.
SAIL_ENVIRONMENT = {
    "RUST_LOG": "warn",  # Sail logs every session at INFO otherwise
    "MIMALLOC_ARENA_EAGER_COMMIT": "0",
}

# Settings every engine gets: UTC so timestamps mean the same everywhere.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
}


class EngineError(RuntimeError):
    """The Spark engine could not be started or reached."""


def get_spark(settings: Settings | None = None, *, app_name: str = "lakehouse") -> SparkSession:
    """Return a Spark session for the configured engine (reuses a live one)."""
    settings = settings or load_settings()
    engine = settings.spark.engine
    if engine == "sail":
        return _sail_session(app_name)
    if engine == "remote":
        return _remote_session(settings.spark.remote, app_name)
    if engine == "classic":
        return _classic_session(settings, app_name)
    raise EngineError(f"unknown spark.engine {engine!r}; use sail, remote or classic")  # pragma: no cover


def _sail_session(app_name: str) -> SparkSession:
    global _sail_server
    from lakehouse.engine.compat import register_jdbc_source  # compat needs this module's is_sail

    for name, value in SAIL_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if _sail_server is None or not _sail_server.running:
        from pysail.spark import SparkConnectServer

        _sail_server = SparkConnectServer(ip="127.0.0.1", port=0)
        _sail_server.start(background=True)
        _log.info("Sail Spark Connect server listening on %s", _sail_server.listening_address)
    session = _connect(_sail_url(_sail_server), app_name)
    # Reattachable execution lets a client resume a result stream cut by the network; the
    # embedded server is in this process, reached over loopback. Each result otherwise
    # costs a ReleaseExecute call from a thread pool: new day at scale 1 1.80 -> 1.67 s,
    # full rebuild 6.83 -> 6.47 s (a Spark Connect server by URL keeps it).
    session.client.disable_reattachable_execute()
    register_jdbc_source(session)
    return session


def _sail_url(server) -> str:
    _, port = server.listening_address
    return f"sc://127.0.0.1:{port}"


def _connect(url: str, app_name: str) -> SparkSession:
    """One session per Connect URL. The builder's getOrCreate would hand back any
    active session, even one connected to another server."""
    from pyspark.sql import SparkSession

    session = _sessions.get(url)
    if session is None or session.is_stopped:
        builder = SparkSession.builder.remote(url).appName(app_name)
        for key, value in SESSION_CONF.items():
            builder = builder.config(key, value)
        session = builder.create()
        _sessions[url] = session
    return session


def _remote_session(url: str | None, app_name: str) -> SparkSession:
    if not url or not url.startswith("sc://"):
        raise EngineError(
            f"spark.engine is 'remote' but the URL is {url!r}; "
            "set SPARK_REMOTE=sc://host:port (or spark.remote in conf/local/lakehouse.yaml)"
        )
    _check_reachable(url)
    return _connect(url, app_name)


def _check_reachable(url: str, timeout_seconds: float = 5.0) -> None:
    """Fail fast: the Connect client would otherwise retry for minutes on first use."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url.split(";", 1)[0].replace("sc://", "http://", 1))
    host, port = parsed.hostname or "localhost", parsed.port or 15002
    try:
        socket.create_connection((host, port), timeout=timeout_seconds).close()
    except OSError as exc:
        raise EngineError(
            f"cannot reach the Spark Connect server at {url} ({host}:{port}): {exc}. "
            "Is the server running, and is SPARK_REMOTE right?"
        ) from exc


def _classic_session(settings: Settings, app_name: str) -> SparkSession:
    """Local JVM Spark with Delta; needs Java 17 and access to Maven Central for jars.

    Same jars as ``lakehouse spark serve`` (lakehouse.spark_server.packages): the Delta
    release Maven Central has for this Spark, which the delta-spark Python package's
    own version may be ahead of."""
    from pyspark.sql import SparkSession

    from lakehouse.spark_server import DELTA_CONF, EXCLUDED, packages

    builder = (
        SparkSession.builder.master("local[*]")
        .appName(app_name)
        .config("spark.jars.packages", ",".join(packages(s3=False)))
        .config("spark.jars.excludes", ",".join(EXCLUDED))
        .config("spark.jars.ivy", str(settings.var_dir / "ivy"))
    )
    for key, value in {**DELTA_CONF, **SESSION_CONF}.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:
        raise EngineError(
            "classic Spark could not start with Delta: its jars come from Maven Central, "
            f"which this machine may not reach ({exc}). Use spark.engine=sail instead."
        ) from exc


def is_sail(session: SparkSession) -> bool:
    """Whether ``session`` speaks to the embedded Sail server of this process."""
    return _sail_server is not None and _sessions.get(_sail_url(_sail_server)) is session


def close_sessions(url: str) -> int:
    """Stop this process's sessions on the Connect server at ``url`` (before that server
    stops: a client still open at exit sends cleanup calls to the dead server and
    retries them with back-off for minutes, holding the process open). Returns how many."""
    closed = 0
    for key in [k for k in _sessions if k == url or k.startswith(url.rstrip("/") + "/")]:
        session = _sessions.pop(key)
        if not session.is_stopped:
            session.stop()
            closed += 1
    return closed


def stop_embedded_engine() -> None:
    """Stop the in-process Sail server (tests and CLI shutdown)."""
    global _sail_server
    if _sail_server is None:
        return
    session = _sessions.pop(_sail_url(_sail_server), None)
    if session is not None:
        session.stop()
    if _sail_server.running:
        _sail_server.stop()
    _sail_server = None
