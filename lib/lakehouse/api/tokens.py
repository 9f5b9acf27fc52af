"""Bearer tokens of the internal API. Only SHA-256 hashes are stored (tokens are 256
random bits, so a fast hash is enough); a token is shown once, when created."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from lakehouse.config import ApiToken

TOKEN_PREFIX = "lh_"
log = logging.getLogger("lakehouse.api.tokens")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its name goes to the audit log, its role to the policy."""

    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenStore:
    """Token hashes from the settings and the tokens file; looks a presented token up."""

    def __init__(self, entries: Iterable[ApiToken]) -> None:
        self._by_hash = {entry.sha256: Principal(name=entry.name, role=entry.role) for entry in entries}

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, token: str) -> Principal | None:
        return self._by_hash.get(hash_token(token))

    def roles(self) -> set[str]:
        return {p.role for p in self._by_hash.values()}


class ReloadingTokenStore(TokenStore):
    """Also reads the tokens file again when it changes (checked at most every
    ``check_seconds``), so `lakehouse api token create` and revocations apply to a
    running server. A new entry with a role unknown to the policy is ignored and logged."""

    def __init__(
        self, fixed: Iterable[ApiToken], path: Path, *, roles: Iterable[str], check_seconds: float = 1.0
    ) -> None:
        self._fixed, self._path, self._roles = list(fixed), path, set(roles)
        self._check_seconds = check_seconds
        self._checked_at = time.monotonic()
        self._stamp = self._file_stamp()
        super().__init__([*self._fixed, *read_tokens_file(path)])

    def authenticate(self, token: str) -> Principal | None:
        if time.monotonic() - self._checked_at >= self._check_seconds:
            self._checked_at = time.monotonic()
            self._reload_if_changed()
        return super().authenticate(token)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            info = self._path.stat()
        except FileNotFoundError:
            return None
        return info.st_mtime_ns, info.st_size

    def _reload_if_changed(self) -> None:
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        try:
            entries = read_tokens_file(self._path)
        except ValueError:
            log.exception("API tokens file changed but is invalid; keeping the previous tokens")
            return
        self._stamp = stamp
        known = [e for e in entries if e.role in self._roles]
        for entry in entries:
            if entry.role not in self._roles:
                log.error("API token %r has role %r, not defined in the access policy: ignored", entry.name, entry.role)
        self._by_hash = {e.sha256: Principal(name=e.name, role=e.role) for e in [*self._fixed, *known]}


def read_tokens_file(path: Path) -> list[ApiToken]:
    """Entries of a tokens file (``tokens: [{name, role, sha256}]``); none if it is absent."""
    if not path.is_file():
        return []
    content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return [ApiToken.model_validate(item) for item in content.get("tokens", [])]
    except Exception as exc:
        raise ValueError(f"invalid API tokens file {path}: {exc}") from exc


def create_token(path: Path, *, name: str, role: str) -> str:
    """Add a new token for ``name`` with ``role`` to the tokens file (mode 0600) and
    return it; only its hash is written. A name already present is refused."""
    entries = read_tokens_file(path)
    if any(entry.name == name for entry in entries):
        raise ValueError(f"a token named {name!r} already exists in {path}; choose another --name")
    token = new_token()
    entries.append(ApiToken(name=name, role=role, sha256=hash_token(token)))
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"tokens": [entry.model_dump() for entry in entries]}, sort_keys=False)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    return token
