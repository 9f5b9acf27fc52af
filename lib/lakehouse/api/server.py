"""Build the API from the settings and run it with uvicorn (in the foreground for
``lakehouse api serve``, or in a thread on a free port for tests and the load test)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from lakehouse.access import AccessPolicy, load_access_policy
from lakehouse.api.app import create_app
from lakehouse.api.audit import AuditBuffer
from lakehouse.api.tokens import ReloadingTokenStore, TokenStore
from lakehouse.config import Settings


def load_policy(settings: Settings) -> AccessPolicy:
    return load_access_policy(settings.project_root / settings.api.access_file)


def load_tokens(settings: Settings, policy: AccessPolicy) -> TokenStore:
    """Token hashes of the settings and the tokens file; a token of an unknown role is an error."""
    path = settings.project_root / settings.api.tokens_file
    store = ReloadingTokenStore(settings.api.tokens, path, roles=policy.roles)
    unknown = sorted(store.roles() - set(policy.roles))
    if unknown:
        raise ValueError(f"API tokens have role(s) {unknown} not defined in {settings.api.access_file}")
    return store


def app_from_settings(settings: Settings) -> FastAPI:
    policy = load_policy(settings)
    api = settings.api
    return create_app(
        lake_root=settings.lake_root,
        policy=policy,
        tokens=load_tokens(settings, policy),
        audit=AuditBuffer(
            settings.lake_root, flush_seconds=api.audit_flush_seconds, flush_events=api.audit_flush_events
        ),
        default_page_size=api.default_page_size,
        max_page_size=api.max_page_size,
        snapshot_check_seconds=api.snapshot_check_seconds,
    )


class BackgroundServer:
    """``with BackgroundServer(app) as server: httpx.get(server.url + "/health")``: uvicorn
    in a thread, on a port the OS picks (so parallel test workers never collide)."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.url = f"http://{host}:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
