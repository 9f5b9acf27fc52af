"""``lakehouse spark``: a local Apache Spark 4 Spark Connect server with Delta Lake.

The same server a cluster runs (``org.apache.spark.sql.connect.service.SparkConnectServer``
from the pyspark package), on loopback with ``local[N]``: the pipelines reach it with
``SPARK_REMOTE=sc://127.0.0.1:PORT`` exactly as they would reach a cluster.

Its jars come from Maven Central through ivy (cache in ``<var_dir>/ivy``): Delta Lake for
this Spark version, the PostgreSQL JDBC driver (bronze referential) and hadoop-aws
(``s3a://``). Its pid, URL and log live in ``<var_dir>/spark/``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from lakehouse.config import Settings, load_settings

CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DEFAULT_PORT = 15002
# Delta Lake release built for this Spark minor version (io.delta:delta-spark_<spark>_2.13).
# The delta-spark Python package may be ahead of Maven Central: 4.4.0 is the release there
# for Spark 4.2 (the Python package is only used for its pip_utils, not needed here).
DELTA_VERSIONS = {"4.2": "4.4.0", "4.1": "4.0.0", "4.0": "4.0.0"}
POSTGRES_JDBC = "org.postgresql:postgresql:42.7.4"
# The embedded PostgreSQL listens on a unix socket: the JDBC driver reaches it through
# junixsocket's socket factory (lakehouse.engine.jdbc_url).
UNIX_SOCKETS = [
    "com.kohlschutter.junixsocket:junixsocket-common:2.10.1",
    "com.kohlschutter.junixsocket:junixsocket-native-common:2.10.1",
]
# Transitive dependencies of Delta (through delta-kernel) and hadoop-aws that Spark already
# ships in a newer version: left out so that only one copy is on the classpath.
EXCLUDED = [
    "org.apache.hadoop:hadoop-client-api",
    "org.apache.hadoop:hadoop-client-runtime",
    "org.apache.parquet:parquet-column",
    "org.apache.parquet:parquet-common",
    "org.apache.parquet:parquet-encoding",
    "org.apache.parquet:parquet-format-structures",
    "org.apache.parquet:parquet-hadoop",
    "org.apache.parquet:parquet-jackson",
    "com.fasterxml.jackson.core:jackson-core",
    "com.fasterxml.jackson.core:jackson-databind",
    "com.fasterxml.jackson.core:jackson-annotations",
    "com.fasterxml.jackson.datatype:jackson-datatype-jdk8",
    "org.apache.logging.log4j:log4j-api",
    "org.apache.logging.log4j:log4j-core",
    "org.apache.logging.log4j:log4j-slf4j2-impl",
    "org.slf4j:slf4j-api",
    "org.xerial.snappy:snappy-java",
    "com.github.luben:zstd-jni",
    "io.airlift:aircompressor",
    "org.roaringbitmap:RoaringBitmap",
    "commons-logging:commons-logging",
]
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class SparkServerError(RuntimeError):
    """The local Spark Connect server could not be started or stopped."""


@dataclass
class ServerState:
    pid: int
    port: int
    url: str
    log: str
    started_at: float

    @property
    def alive(self) -> bool:
        return _pid_alive(self.pid)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _spark_minor() -> str:
    import pyspark

    return ".".join(pyspark.__version__.split(".")[:2])


def _hadoop_version() -> str:
    """hadoop-aws must match the hadoop-client jars pyspark ships."""
    for jar in (spark_home() / "jars").glob("hadoop-client-api-*.jar"):
        return jar.stem.removeprefix("hadoop-client-api-")
    raise SparkServerError(f"no hadoop-client-api jar in {spark_home() / 'jars'}")


def packages(*, s3: bool = True) -> list[str]:
    minor = _spark_minor()
    if minor not in DELTA_VERSIONS:
        raise SparkServerError(f"no known Delta Lake release for Spark {minor}; add it to DELTA_VERSIONS")
    found = [f"io.delta:delta-spark_{minor}_2.13:{DELTA_VERSIONS[minor]}", POSTGRES_JDBC, *UNIX_SOCKETS]
    if s3:
        found.append(f"org.apache.hadoop:hadoop-aws:{_hadoop_version()}")
    return found


def state_dir(settings: Settings) -> Path:
    return settings.var_dir / "spark"


def _state_file(settings: Settings) -> Path:
    return state_dir(settings) / "connect-server.json"


def read_state(settings: Settings) -> ServerState | None:
    path = _state_file(settings)
    if not path.exists():
        return None
    return ServerState(**json.loads(path.read_text()))


def _pid_alive(pid: int) -> bool:
    """Running, and not a zombie (a server this process started and that has exited)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _port_answers(port: int, timeout: float = 0.5) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def s3_conf(settings: Settings) -> dict[str, str]:
    """hadoop-aws settings so the lake's ``s3://`` URIs mean on Spark what they mean to
    Sail, delta-rs and pyarrow: S3A serves the ``s3`` scheme too (no ``s3a://`` rewrite
    of the lake root), at the endpoint and region of ``AWS_ENDPOINT_URL`` /
    ``AWS_REGION`` (or ``s3.endpoint_url`` / ``s3.region``) as they are when the server
    starts. Credentials follow S3A's chain (``AWS_ACCESS_KEY_ID``..., profile, role)."""
    conf = {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
    configured = settings.s3  # None when lakehouse.yaml has no s3: section
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or (configured.endpoint_url if configured else None)
    region = (
        os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or (configured.region if configured else None)
    )
    if endpoint:  # an S3-compatible server (MinIO, a local test server): path-style URLs
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(endpoint.startswith("https://")).lower()
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    conf.update(s3_encryption_conf(configured.sse, configured.kms_key_id) if configured else {})
    return conf


# Server-side encryption of what Spark writes, as `s3.sse` asks of every other writer:
# S3A's names for the same S3 modes.
S3A_ENCRYPTION = {"AES256": "SSE-S3", "aws:kms": "SSE-KMS"}


def s3_encryption_conf(sse: str, kms_key_id: str | None) -> dict[str, str]:
    """``fs.s3a.encryption.*`` for ``s3.sse`` (``none``, ``AES256``, ``aws:kms``) and its
    KMS key (none: the account's default key)."""
    if sse not in S3A_ENCRYPTION:
        return {}
    conf = {"spark.hadoop.fs.s3a.encryption.algorithm": S3A_ENCRYPTION[sse]}
    if sse == "aws:kms" and kms_key_id:
        conf["spark.hadoop.fs.s3a.encryption.key"] = kms_key_id
    return conf


def shuffle_partitions(cores: str) -> int:
    count = (os.cpu_count() or 2) if cores == "*" else int(cores)
    return max(2, 2 * count)


def command(
    settings: Settings,
    *,
    port: int,
    cores: str = "*",
    driver_memory: str = "2g",
    s3: bool = True,
    extra_conf: dict[str, str] | None = None,
) -> list[str]:
    """The spark-submit command line of the server."""
    home = state_dir(settings)
    conf = {
        **DELTA_CONF,
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.jars.ivy": str(settings.var_dir / "ivy"),
        "spark.sql.session.timeZone": "UTC",
        # No Hive metastore, no spark-warehouse/ or derby.log in the working directory:
        # the lake addresses tables by path.
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.local.dir": str(home / "tmp"),
        "spark.ui.enabled": "false",
        "spark.log.level": "WARN",  # INFO logs every task: tens of MB per job
        # Laptop-sized parallelism: Spark's defaults (200 shuffle partitions, 50 for the
        # Delta log's state) are made for clusters and cost seconds per small table here.
        "spark.sql.shuffle.partitions": str(shuffle_partitions(cores)),
        "spark.databricks.delta.snapshotPartitions": "2",
        **(s3_conf(settings) if s3 else {}),
        **(extra_conf or {}),
    }
    args = [
        str(spark_home() / "bin" / "spark-submit"),
        "--master", f"local[{cores}]",
        "--driver-memory", driver_memory,
        "--name", "lakehouse Spark Connect server",
        "--class", CONNECT_SERVER_CLASS,
        "--packages", ",".join(packages(s3=s3)),
        "--exclude-packages", ",".join(EXCLUDED),
    ]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return args


def start(
    settings: Settings,
    *,
    port: int = DEFAULT_PORT,
    cores: str = "*",
    driver_memory: str = "2g",
    s3: bool = True,
    timeout: float = 1800.0,
    extra_conf: dict[str, str] | None = None,
) -> ServerState:
    """Start the server in the background and return once its port answers (or raise).
    A server this project already runs is returned as it is."""
    current = read_state(settings)
    if current is not None and current.alive and _port_answers(current.port):
        return current
    port = port or _free_port()
    if _port_answers(port):
        raise SparkServerError(f"port {port} is already in use; pass --port (0 picks a free one)")
    home = state_dir(settings)
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    log_path = home / "connect-server.log"
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        # Python UDFs run in workers of this virtualenv's Python (same pyspark, cloudpickle).
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOG_DIR": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",  # loopback only, and no warning about the host name
    }
    env.pop("SPARK_REMOTE", None)  # spark-submit would try to be a Connect client
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    started = time.time()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command(settings, port=port, cores=cores, driver_memory=driver_memory, s3=s3, extra_conf=extra_conf),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=home,
            start_new_session=True,  # its own process group: stop() ends the JVM and its workers
        )
    state = ServerState(
        pid=process.pid, port=port, url=f"sc://127.0.0.1:{port}", log=str(log_path), started_at=started
    )
    _state_file(settings).write_text(json.dumps(state.__dict__))
    deadline = time.monotonic() + timeout
    while not _port_answers(port):
        if process.poll() is not None:
            _state_file(settings).unlink(missing_ok=True)
            raise SparkServerError(
                f"the Spark Connect server exited with code {process.returncode}; see {log_path}:\n"
                + _tail(log_path)
            )
        if time.monotonic() > deadline:
            stop(settings)
            raise SparkServerError(f"the Spark Connect server did not answer within {timeout:.0f} s; see {log_path}")
        time.sleep(0.5)
    return state


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(settings: Settings, *, timeout: float = 30.0) -> bool:
    """Stop the server this project started; False when none was running."""
    state = read_state(settings)
    if state is None:
        return False
    was_alive = state.alive
    if was_alive:
        from lakehouse.engine import close_sessions

        close_sessions(state.url)  # this process's clients first: none left talking to a dead server
        try:
            os.killpg(state.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while _pid_alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(state.pid):
            try:
                os.killpg(state.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _state_file(settings).unlink(missing_ok=True)
    return was_alive


@click.group("spark")
def spark_cli() -> None:
    """A local Apache Spark 4 Spark Connect server with Delta Lake (the cluster engine).

    \b
    Examples:
      lakehouse spark serve --cores 2 --driver-memory 4g
      SPARK_REMOTE=sc://127.0.0.1:15002 lakehouse jobs run daily
      lakehouse spark stop
    """


@spark_cli.command("serve")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="gRPC port on 127.0.0.1 (0: a free one).")
@click.option("--cores", default="*", show_default=True, help="N of local[N] (* = all cores).")
@click.option("--driver-memory", default="2g", show_default=True, help="JVM heap of the driver.")
@click.option("--s3/--no-s3", default=True, show_default=True, help="Add hadoop-aws (s3a://) to the jars.")
@click.option("--timeout", type=float, default=1800.0, show_default=True, help="Seconds to wait for the port (the first start fetches the jars).")
@click.option("--conf", "confs", multiple=True, metavar="KEY=VALUE", help="Extra Spark configuration, repeatable.")
def serve_command(port: int, cores: str, driver_memory: str, s3: bool, timeout: float, confs: tuple[str, ...]) -> None:
    """Start the server in the background, wait until it answers, print its URL."""
    settings = load_settings()
    extra = {}
    for item in confs:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--conf")
        extra[key] = value
    began = time.monotonic()
    try:
        state = start(
            settings, port=port, cores=cores, driver_memory=driver_memory, s3=s3, timeout=timeout, extra_conf=extra
        )
    except SparkServerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Spark Connect server (Apache Spark with Delta Lake) pid {state.pid}, ready in {time.monotonic() - began:.1f} s")
    click.echo(f"log: {state.log}")
    click.echo(f"export SPARK_REMOTE={state.url}")


@spark_cli.command("stop")
def stop_command() -> None:
    """Stop the server started by `lakehouse spark serve`."""
    if stop(load_settings()):
        click.echo("Spark Connect server stopped")
    else:
        click.echo("no Spark Connect server was running")


@spark_cli.command("status")
def status_command() -> None:
    """Whether the server runs, and its URL."""
    state = read_state(load_settings())
    if state is None or not state.alive:
        click.echo("not running")
        sys.exit(1)
    click.echo(f"running, pid {state.pid}: {state.url} (answers: {_port_answers(state.port)}); log {state.log}")
