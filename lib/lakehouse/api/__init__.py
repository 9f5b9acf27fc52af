"""The internal read-only HTTP API over gold tables and KPIs (``lakehouse api serve``).

Bearer tokens, roles and policies of conf/base/access.yaml (lakehouse.access), reads
with delta-rs cached by Delta version, every read in the audit log. See docs/api.md.
"""

from lakehouse.api.app import create_app
from lakehouse.api.server import BackgroundServer, app_from_settings

__all__ = ["BackgroundServer", "app_from_settings", "create_app"]
