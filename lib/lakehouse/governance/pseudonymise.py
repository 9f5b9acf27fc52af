"""Keyed pseudonymisation (HMAC-SHA256) of personal data, and its key.

The same value and key always give the same pseudonym, so pseudonymised columns still
join and count distinct; without the key, a pseudonym cannot be reversed or recomputed
from a guessed value (unlike a plain hash of an e-mail address).

The key comes from ``governance.pseudonymisation_key`` (``LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY``).
Only the ``local`` profile may fall back to a random key generated once in
``<var_dir>/governance/pseudonymisation.key`` (mode 0600); any other profile without a
configured key is an error. The key is never logged nor written to a table.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd  # module level: the pandas UDF's type hints are resolved from here

from lakehouse.config import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

KEY_ENV = "LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY"
_MIN_KEY_LENGTH = 16


class PseudonymisationKeyError(RuntimeError):
    """No usable pseudonymisation key (the message says where to set one)."""


def pseudonymisation_key(settings: Settings) -> bytes:
    """The key as bytes: configured, else (``local`` profile only) the generated key file."""
    configured = settings.governance.pseudonymisation_key
    if configured is not None and configured.get_secret_value():
        key = configured.get_secret_value()
        if len(key) < _MIN_KEY_LENGTH:
            raise PseudonymisationKeyError(
                f"the pseudonymisation key ({KEY_ENV}) is {len(key)} characters long; use at least "
                f"{_MIN_KEY_LENGTH} random characters, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return key.encode("utf-8")
    if settings.profile != "local":
        raise PseudonymisationKeyError(
            f"no pseudonymisation key for profile {settings.profile!r}: set {KEY_ENV} (from your secret "
            "store) or governance.pseudonymisation_key in conf/local/lakehouse.yaml; only the 'local' "
            "profile generates a key of its own"
        )
    return _local_key(settings.var_dir / settings.governance.key_file)


def _local_key(path: Path) -> bytes:
    """Read the local key file, creating it (0600, random 256 bits) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PseudonymisationKeyError(
            f"pseudonymisation key file {path} is readable by others (mode {mode:o}): run chmod 600 {path}"
        )
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < _MIN_KEY_LENGTH:
        raise PseudonymisationKeyError(f"pseudonymisation key file {path} is empty or too short: delete it to regenerate")
    return key.encode("utf-8")


def pseudonym(value: str | None, key: bytes) -> str | None:
    """HMAC-SHA256 (hex) of the normalised value (trimmed, lower case); NULL stays NULL
    and an empty string stays empty (nothing to hide, and it keeps "missing" visible)."""
    if value is None:
        return None
    normalised = value.strip().lower()
    if not normalised:
        return ""
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonym_column(column: Column, key: bytes) -> Column:
    """A Spark column of ``pseudonym(value, key)``, computed in a pandas UDF (Spark has
    no HMAC function; a salted ``sha2`` would not be a keyed hash)."""
    from pyspark.sql import functions as F

    @F.pandas_udf("string")
    def _hmac(values: pd.Series) -> pd.Series:
        return values.map(lambda value: pseudonym(value, key), na_action="ignore")

    return _hmac(column.cast("string"))


def with_pseudonyms(df: DataFrame, columns: Sequence[str], key: bytes, *, suffix: str = "_pseudonym") -> DataFrame:
    """Replace each of ``columns`` by ``<column><suffix>`` holding its pseudonym."""
    missing = [name for name in columns if name not in df.columns]
    if missing:
        raise ValueError(f"cannot pseudonymise {missing}: not in the DataFrame's columns {df.columns}")
    for name in columns:
        df = df.withColumn(f"{name}{suffix}", pseudonym_column(df[name], key)).drop(name)
    return df
