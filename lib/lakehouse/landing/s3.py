"""An S3 landing zone: upload drops, list the new ones, archive the ingested ones.

Keys follow the lake layout (DESIGN §4), below an optional prefix (the lake root's
path inside the bucket, so ``S3Landing("b", "lake")`` feeds ``Lake("s3://b/lake")``)::

    <prefix>/landing/source=<src>/<entity>/<YYYY-MM-DD>/<file>     a drop
    <prefix>/_archive/landing/source=<src>/<entity>/<YYYY-MM-DD>/<file>   once archived

The archive is outside ``landing/``, so neither ``list_landing_files`` nor the
incremental file reader sees archived files. With ``sse`` set, every write (upload
and the archive copy) asks for that server-side encryption: ``"AES256"`` (SSE-S3) or
``"aws:kms"`` (SSE-KMS, with ``kms_key_id`` or the account's default key).

Any S3 endpoint works (AWS, MinIO, a test server): pass a boto3 client built for it,
e.g. ``S3Landing.make_client(endpoint_url="http://127.0.0.1:9000", region="us-east-1")``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from lakehouse.config import S3Settings

SSE_MODES = ("AES256", "aws:kms")
ARCHIVE = "_archive"


class LandingError(RuntimeError):
    """An S3 landing operation failed; the message names the bucket and key."""


class S3Landing:
    """The landing zone in ``s3://<bucket>/<prefix>/landing/``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any,
        sse: str | None = None,
        kms_key_id: str | None = None,
    ) -> None:
        if sse is not None and sse not in SSE_MODES:
            raise ValueError(f"S3Landing s3://{bucket}: sse={sse!r}; use None, 'AES256' or 'aws:kms'")
        if kms_key_id and sse != "aws:kms":
            raise ValueError(
                f"S3Landing s3://{bucket}: kms_key_id is only used with sse='aws:kms' (sse={sse!r})"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.sse = sse
        self.kms_key_id = kms_key_id

    def __repr__(self) -> str:
        return f"S3Landing(s3://{self.bucket}/{self.prefix}, sse={self.sse!r})"

    # ------------------------------------------------------------------ construction

    @staticmethod
    def make_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
        """A boto3 S3 client; credentials come from the usual AWS chain (env, profile, role)."""
        import boto3

        return boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    @classmethod
    def from_settings(cls, settings: S3Settings, *, client: Any = None) -> S3Landing:
        """The landing zone of the ``s3:`` section of lakehouse.yaml."""
        if not settings.landing_bucket:
            raise ValueError(
                "s3.landing_bucket is not set in lakehouse.yaml (or LAKEHOUSE_S3__LANDING_BUCKET)"
            )
        return cls(
            settings.landing_bucket,
            settings.landing_prefix,
            client=client or cls.make_client(settings.endpoint_url, settings.region),
            sse=None if settings.sse == "none" else settings.sse,
            kms_key_id=settings.kms_key_id,
        )

    # ------------------------------------------------------------------ keys

    def _key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def folder(self, source: str, entity: str) -> str:
        """Key prefix of one entity's drops (ends with ``/``)."""
        return self._key("landing", f"source={source}", entity) + "/"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _extra_args(self) -> dict[str, str]:
        if self.sse is None:
            return {}
        args = {"ServerSideEncryption": self.sse}
        if self.sse == "aws:kms" and self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    def _error(self, action: str, key: str, exc: Exception) -> LandingError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "?"), error.get("Message", "")
            if code == "NoSuchBucket":
                message = f"bucket {self.bucket!r} does not exist (or is not visible with these credentials)"
            detail = f"{code}: {message}"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return LandingError(f"{action} s3://{self.bucket}/{key} failed: {detail}")

    # ------------------------------------------------------------------ operations

    def upload_drop(self, local_path: str | Path, source: str, entity: str, drop_date: dt.date | str) -> str:
        """Upload one file as a drop of ``drop_date``; returns its key."""
        local = Path(local_path)
        day = drop_date if isinstance(drop_date, str) else drop_date.isoformat()
        dt.date.fromisoformat(day)  # a folder that is not a date would never be ingested
        key = self.folder(source, entity) + f"{day}/{local.name}"
        self._upload(local, key)
        return key

    def _upload(self, local: Path, key: str) -> None:
        if not local.is_file():
            raise LandingError(f"upload to s3://{self.bucket}/{key} failed: {local} is not a file")
        try:
            self.client.upload_file(str(local), self.bucket, key, ExtraArgs=self._extra_args())
        except (ClientError, BotoCoreError) as exc:
            raise self._error("upload to", key, exc) from exc
        except Exception as exc:  # boto3's S3UploadFailedError wraps the ClientError
            cause = exc.__cause__ or exc.__context__
            raise self._error("upload to", key, cause if isinstance(cause, ClientError) else exc) from exc

    def list_new(self, source: str, entity: str, *, since_keys: Iterable[str] = ()) -> list[str]:
        """Keys of the entity's drops not in ``since_keys``, oldest drop first.

        Only ``<YYYY-MM-DD>/<file>`` keys count; names starting with ``_`` or ``.``
        are skipped, as the incremental reader does.
        """
        seen = set(since_keys)
        folder = self.folder(source, entity)
        found: list[tuple[str, str]] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder
            ):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    parts = key[len(folder) :].split("/")
                    if len(parts) != 2 or key in seen or parts[1].startswith(("_", ".")):
                        continue
                    try:
                        dt.date.fromisoformat(parts[0])
                    except ValueError:
                        continue
                    found.append((parts[0], key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error("listing", folder, exc) from exc
        return [key for _, key in sorted(found)]

    def archive_key(self, key: str) -> str:
        relative = key[len(self.prefix) + 1 :] if self.prefix and key.startswith(self.prefix + "/") else key
        return self._key(ARCHIVE, relative)

    def archive(self, keys: Iterable[str]) -> list[str]:
        """Move objects to ``<prefix>/_archive/...`` (copy with this zone's encryption,
        then delete); returns the new keys. Safe to re-run after a partial failure."""
        moved = []
        for key in keys:
            target = self.archive_key(key)
            try:
                self.client.copy(
                    {"Bucket": self.bucket, "Key": key}, self.bucket, target, ExtraArgs=self._extra_args()
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._error("archiving (copy to " + self.uri(target) + ")", key, exc) from exc
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError) as exc:
                raise self._error(
                    "archiving (delete after copy to " + self.uri(target) + ")", key, exc
                ) from exc
            moved.append(target)
        return moved

    def upload_generated(self, local_landing_root: str | Path) -> list[str]:
        """Upload what the generator wrote to a local ``landing/`` folder (files
        ``source=<src>/<entity>/<YYYY-MM-DD>/<file>`` below it), keeping the layout.
        Returns the keys, sorted; hidden files are skipped."""
        root = Path(local_landing_root)
        if not root.is_dir():
            raise LandingError(f"upload to s3://{self.bucket}/{self._key('landing')}: {root} is not a folder")
        keys = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            if any(part.startswith(".") for part in relative.split("/")):
                continue
            key = self._key("landing", relative)
            self._upload(path, key)
            keys.append(key)
        return keys
