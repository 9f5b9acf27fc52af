"""The three restitution steps of ``pipeline_load_bi``, from the configuration:
what the notebooks and ``lakehouse bi`` call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from lakehouse.bi.dashboards import DashboardsReport, build_dashboards
from lakehouse.bi.gold import BiExportError, GoldTable, discover_gold_tables
from lakehouse.bi.postgres_bi import BiLoadReport, LoadMode, load_postgres_bi
from lakehouse.bi.tableau import ExtractReport, export_tableau
from lakehouse.config import Settings
from lakehouse.lake import Lake

Progress = Callable[[str], None]


def tableau_dir(settings: Settings) -> Path:
    return settings.bi.output_path(settings.var_dir) / "tableau"


def dashboards_dir(settings: Settings) -> Path:
    return settings.bi.output_path(settings.var_dir) / "dashboards"


def gold_tables(settings: Settings) -> list[GoldTable]:
    tables = discover_gold_tables(Lake(settings.lake_root))
    if not tables:
        raise BiExportError(f"no gold table under {settings.lake_root}/gold: run the daily job first")
    return tables


def export_extracts(
    settings: Settings, *, single_table: bool | None = None, progress: Progress | None = None
) -> list[ExtractReport]:
    """One .hyper file per subject area (or per fact with ``single_table``)."""
    chosen = settings.bi.single_table_extracts if single_table is None else single_table
    return export_tableau(
        gold_tables(settings), tableau_dir(settings), single_table=chosen, progress=progress
    )


def load_postgres(
    settings: Settings, *, mode: LoadMode | None = None, progress: Progress | None = None
) -> BiLoadReport:
    """Gold into the BI schema of the project's PostgreSQL (embedded or external)."""
    from lakehouse.postgres import ensure_server

    return load_postgres_bi(
        ensure_server(settings),
        gold_tables(settings),
        schema=settings.bi.postgres_schema,
        mode=mode or settings.bi.postgres_mode,
        reader_role=settings.bi.reader_role,
        progress=progress,
    )


def build_pages(settings: Settings, *, generated_at: dt.datetime | None = None) -> DashboardsReport:
    """The four static dashboards and their index page."""
    return build_dashboards(gold_tables(settings), dashboards_dir(settings), generated_at=generated_at)
