"""The recall feed of bronze: fetch new notices from the recall API into the landing zone.

Offline by default: with ``ingestion.regulatory.base_url`` unset, nothing is fetched and
bronze ingests the recall documents already in ``landing/source=regulatory/recalls``
(the generator's, one document a day). With a base URL, each run fetches the notices
whose ``report_date`` is after the last one landed (watermark in
``_system/watermarks/regulatory_recalls.json``) up to the run date, into
``landing/source=regulatory/recalls_api/<YYYY-MM-DD>/recalls_api_<from>_<to>.jsonl``
(openFDA drug-enforcement records, one per line), which the ``bronze_recalls_api`` flow
then appends to ``bronze/source=regulatory/table=recalls``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from lakehouse.bronze.settings import RegulatorySettings
from lakehouse.config import is_remote_uri
from lakehouse.lake import Lake
from lakehouse.sources.regulatory_api import RecallApiClient, fetch_to_landing

API_LANDING_ENTITY = "recalls_api"
WATERMARK_FILE = "watermarks/regulatory_recalls.json"


def api_landing_folder(lake: Lake) -> str:
    return lake.landing("regulatory", API_LANDING_ENTITY)


def fetch_recalls(
    settings: RegulatorySettings,
    lake: Lake,
    run_date: dt.date,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Path | None:
    """Land the notices reported since the last fetch, up to ``run_date``; the landed
    file, or None when offline (no ``base_url``) or already up to date."""
    if not settings.base_url:
        return None
    if is_remote_uri(lake.root):
        raise ValueError(
            f"fetching recalls writes local landing files; the lake {lake.root} is remote: "
            "run the fetch with a local lake root and upload the landing folder (lakehouse.landing)"
        )
    with RecallApiClient(
        settings.base_url,
        timeout_seconds=settings.timeout_seconds,
        max_retries=settings.max_retries,
        page_size=settings.page_size,
        sleep=sleep,
    ) as client:
        return fetch_to_landing(
            client,
            api_landing_folder(lake),
            lake.system(WATERMARK_FILE),
            run_date,
            initial_from=run_date - dt.timedelta(days=settings.lookback_days),
        )
