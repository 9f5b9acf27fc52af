"""One configuration object, read from files and the environment.

Precedence (highest first): keyword arguments, ``LAKEHOUSE_*`` environment variables
(nested with ``__``, e.g. ``LAKEHOUSE_POSTGRES__PASSWORD``), ``conf/local/lakehouse.yaml``
(git-ignored: secrets and machine overrides), ``conf/base/lakehouse.yaml`` (committed).
The project root is the folder holding ``conf/``; it is found from ``LAKEHOUSE_HOME``
or by walking up from the current directory, so notebooks run from any sub-folder.
``load_settings(project_root=folder)`` names it instead: its ``conf/`` files are read
if it has them, otherwise the defaults apply (a pipeline project of its own, outside
this repository, see ``lakehouse.pipelines.project``).

This module knows no layer. The sections a layer owns (``ingestion`` of bronze,
``quality``, ``bi``) are declared by that layer and added by ``lakehouse.settings``,
which importing the package loads: ``load_settings`` returns that composed model.
"""

from __future__ import annotations

import datetime as dt
import os
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_FILE = "lakehouse.yaml"


class ConfigError(RuntimeError):
    """The configuration cannot be found or is invalid."""


# The project root given to load_settings(project_root=...), while it builds Settings.
_chosen_root: ContextVar[Path | None] = ContextVar("chosen_project_root", default=None)


def _project_root() -> Path:
    return _chosen_root.get() or find_project_root()


def find_project_root(start: Path | None = None) -> Path:
    """Return the folder holding ``conf/base/lakehouse.yaml``.

    ``LAKEHOUSE_HOME`` wins; otherwise walk up from ``start`` (default: the cwd).
    """
    home = os.environ.get("LAKEHOUSE_HOME")
    if home:
        root = Path(home).expanduser().resolve()
        if not (root / "conf" / "base" / CONFIG_FILE).is_file():
            raise ConfigError(f"LAKEHOUSE_HOME={home} has no conf/base/{CONFIG_FILE}")
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "conf" / "base" / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(
        f"no conf/base/{CONFIG_FILE} in {here} or its parents; "
        "run from inside the project or set LAKEHOUSE_HOME to the project folder"
    )


class GeneratorSettings(BaseModel):
    seed: int = 42
    scale: float = Field(1.0, gt=0)
    days: int = Field(30, ge=1)


class PostgresSettings(BaseModel):
    mode: Literal["embedded", "external"] = "embedded"
    host: str = "localhost"
    port: int = 5432
    database: str = "postgres"
    user: str = "postgres"
    password: SecretStr = SecretStr("")
    schema_: str = Field("referential", alias="schema")
    # TLS to an external server (libpq's sslmode; verify-full checks the certificate
    # against sslrootcert and the host name). The embedded server uses a unix socket.
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = None
    sslrootcert: Path | None = None

    model_config = {"populate_by_name": True}


class SparkSettings(BaseModel):
    engine: Literal["sail", "remote", "classic"] = "sail"
    remote: str | None = None  # sc://host:port; SPARK_REMOTE sets it too


class PipelineSettings(BaseModel):
    """How pipeline runs execute (lakehouse.pipelines)."""

    # Flows whose inputs are ready run side by side, up to this many at once.
    parallel_flows: int = Field(default=4, ge=1)


class SmtpSettings(BaseModel):
    """The SMTP server that sends job e-mail notifications. Put the password in
    ``LAKEHOUSE_NOTIFICATIONS__SMTP__PASSWORD`` (or conf/local/), never in conf/base/."""

    host: str = "localhost"
    port: int = 25
    from_address: str = Field("lakehouse@localhost", alias="from")
    user: str | None = None
    password: SecretStr = SecretStr("")
    starttls: bool = False  # STARTTLS after connecting (port 587)
    ssl: bool = False  # TLS from the start (port 465)
    timeout_seconds: float = Field(10.0, gt=0)

    model_config = {"populate_by_name": True}


class NotificationSettings(BaseModel):
    """``notifications:`` of lakehouse.yaml (job notifications of jobs.yaml)."""

    smtp: SmtpSettings | None = None


class S3Settings(BaseModel):
    """``s3:`` of lakehouse.yaml: the S3 endpoint and the landing zone (lakehouse.landing).
    Credentials come from the AWS chain (``AWS_ACCESS_KEY_ID``..., a profile, a role)."""

    endpoint_url: str | None = None  # None: AWS; else e.g. http://127.0.0.1:9000 (MinIO)
    region: str | None = None
    sse: Literal["none", "AES256", "aws:kms"] = "none"
    kms_key_id: str | None = None  # with sse: aws:kms; None uses the account's default key
    landing_bucket: str | None = None
    landing_prefix: str = ""  # the lake root's path in the bucket, e.g. "lake"


class GovernanceSettings(BaseModel):
    """``governance:`` of lakehouse.yaml (lakehouse.governance). The pseudonymisation key
    comes from ``LAKEHOUSE_GOVERNANCE__PSEUDONYMISATION_KEY`` (or conf/local/); only the
    ``local`` profile may fall back to a key generated in ``key_file`` (mode 0600)."""

    pseudonymisation_key: SecretStr | None = None
    key_file: Path = Path("governance/pseudonymisation.key")  # relative to var_dir
    catalog_file: Path = Path("conf/base/catalog.yaml")  # relative to the project root


class ApiToken(BaseModel):
    """One bearer token of the internal API: only the SHA-256 of the token is stored."""

    name: str  # the caller's identity in the audit log
    role: str  # a role of conf/base/access.yaml
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ApiSettings(BaseModel):
    """``api:`` of lakehouse.yaml (lakehouse.api, the read-only HTTP API over gold)."""

    host: str = "127.0.0.1"
    port: int = 8000
    access_file: Path = Path("conf/base/access.yaml")  # roles and policies, relative to the project root
    tokens_file: Path = Path("conf/local/api_tokens.yaml")  # written by `lakehouse api token create`
    # more hashes, e.g. LAKEHOUSE_API__TOKENS='[{"name":..,"role":..,"sha256":..}]'
    tokens: list[ApiToken] = []
    default_page_size: int = Field(100, ge=1)
    max_page_size: int = Field(5000, ge=1)
    snapshot_check_seconds: float = Field(1.0, ge=0)  # how stale a cached table version may be
    audit_flush_seconds: float = Field(2.0, gt=0)
    audit_flush_events: int = Field(500, ge=1)


class MlSettings(BaseModel):
    """``ml:`` of lakehouse.yaml: the energy models (lakehouse.ml) and their MLflow store."""

    tracking_uri: str | None = None  # None: sqlite:///<var_dir>/mlflow/mlflow.db (also the registry)
    artifact_root: str | None = None  # None: <var_dir>/mlflow/artifacts
    seed: int = 42
    holdout_days: int = Field(7, ge=1)  # the last days of history, never trained on
    anomaly_threshold: float | None = Field(None, gt=0, lt=1)  # flag score; None: tuned on training data
    ui_url: str = "http://127.0.0.1:5000"  # the MLflow UI of `make mlflow-ui`, for run links
    catch_up_days: int = Field(7, ge=1)  # scoring also fills the days before the run date never scored


class Settings(BaseSettings):
    """Settings of one lakehouse instance. Paths are absolute once loaded. The layers'
    sections are fields of the subclass ``lakehouse.settings.LakehouseSettings``."""

    profile: str = "local"
    project_root: Path = Field(default_factory=_project_root)
    lake_root: str = "./lake"
    runs_dir: Path = Path("./runs")
    var_dir: Path = Path("./var")
    run_date: dt.date = Field(default_factory=dt.date.today)
    generator: GeneratorSettings = GeneratorSettings()
    postgres: PostgresSettings = PostgresSettings()
    spark: SparkSettings = SparkSettings()
    pipelines: PipelineSettings = PipelineSettings()
    notifications: NotificationSettings = NotificationSettings()
    s3: S3Settings | None = None
    governance: GovernanceSettings = GovernanceSettings()
    api: ApiSettings = ApiSettings()
    ml: MlSettings = MlSettings()  # energy models and their MLflow store (lakehouse.ml)

    model_config = SettingsConfigDict(env_prefix="LAKEHOUSE_", env_nested_delimiter="__", extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        root = _project_root()
        files = [root / "conf" / "base" / CONFIG_FILE, root / "conf" / "local" / CONFIG_FILE]
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=[f for f in files if f.is_file()])
        return (init_settings, env_settings, yaml_source)

    @field_validator("run_date", mode="before")
    @classmethod
    def _parse_run_date(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"", "today"}:
            return dt.date.today()
        return value

    def model_post_init(self, __context: Any) -> None:
        if os.environ.get("SPARK_REMOTE") and not self.spark.remote:
            self.spark.remote = os.environ["SPARK_REMOTE"]
            if self.spark.engine == "sail":
                self.spark.engine = "remote"
        self.runs_dir = self._absolute(self.runs_dir)
        self.var_dir = self._absolute(self.var_dir)
        if not is_remote_uri(self.lake_root):
            self.lake_root = str(self._absolute(Path(self.lake_root)))

    def _absolute(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.project_root / path).resolve()

    @cached_property
    def postgres_data_dir(self) -> Path:
        return self.var_dir / "postgres"

    @cached_property
    def ground_truth_dir(self) -> Path:
        """Generator's answers (injected defects, anomalies): never read by pipelines."""
        return self.var_dir / "ground_truth"


# The model load_settings builds: Settings and the layers' sections (lakehouse.settings).
_model: type[Settings] = Settings


def use_model(model: type[Settings]) -> None:
    """Make :func:`load_settings` build ``model``, a subclass of :class:`Settings` adding
    the sections the layers own (called once, by ``lakehouse.settings``)."""
    global _model
    _model = model


def is_remote_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def load_settings(**overrides: Any) -> Settings:
    """Load settings; ``overrides`` (e.g. ``lake_root=..., run_date=...``) win over all
    sources. ``None`` values are ignored so notebook parameters can default to config.

    ``project_root`` (a folder) replaces the search for ``conf/base/lakehouse.yaml``:
    that folder's ``conf/base`` and ``conf/local`` files are read when they exist, the
    defaults apply otherwise, and relative paths resolve against it."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "project_root" in overrides:
        overrides["project_root"] = Path(overrides["project_root"]).expanduser().resolve()
    token = _chosen_root.set(overrides.get("project_root"))
    try:
        return _model(**overrides)
    except ConfigError:
        raise
    except Exception as exc:  # pydantic's ValidationError names the field
        raise ConfigError(f"invalid lakehouse configuration: {exc}") from exc
    finally:
        _chosen_root.reset(token)
