"""Bronze steps called by the bronze notebooks."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from lakehouse.bronze.ingest import (
    ERP_CSV_ENTITIES,
    REFERENTIAL_TABLES,
    IngestionResult,
    ingest_delimited_files,
    snapshot_referential,
)
from lakehouse.lake import Lake
from lakehouse.postgres import PostgresEndpoint


def run_bronze_erp(
    spark: SparkSession,
    lake: Lake,
    *,
    run_date: dt.date,
    batch_id: str,
    ingested_at: dt.datetime,
    entities: tuple[str, ...] = tuple(ERP_CSV_ENTITIES),
) -> list[IngestionResult]:
    """Ingest new ERP CSV exports (order lines, stock snapshots) up to ``run_date``."""
    unknown = sorted(set(entities) - set(ERP_CSV_ENTITIES))
    if unknown:
        raise ValueError(f"unknown ERP entities {unknown}; known: {sorted(ERP_CSV_ENTITIES)}")
    return [
        ingest_delimited_files(
            spark,
            lake,
            source="erp",
            entity=entity,
            fmt=ERP_CSV_ENTITIES[entity],
            run_date=run_date,
            batch_id=batch_id,
            ingested_at=ingested_at,
        )
        for entity in entities
    ]


def run_bronze_referential(
    spark: SparkSession,
    lake: Lake,
    endpoint: PostgresEndpoint,
    *,
    run_date: dt.date,
    batch_id: str,
    ingested_at: dt.datetime,
) -> list[IngestionResult]:
    """Snapshot every referential table of PostgreSQL for ``run_date``."""
    return [
        snapshot_referential(
            spark,
            lake,
            endpoint,
            table=table,
            run_date=run_date,
            batch_id=batch_id,
            ingested_at=ingested_at,
        )
        for table in REFERENTIAL_TABLES
    ]
