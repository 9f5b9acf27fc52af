"""Sources read over the network (APIs) and landed as files for bronze."""

from lakehouse.sources.regulatory_api import (
    RecallApiClient,
    RecallApiError,
    fetch_to_landing,
    latest_report_date,
    load_watermark,
    next_window,
    save_watermark,
    write_landing,
)

__all__ = [
    "RecallApiClient",
    "RecallApiError",
    "fetch_to_landing",
    "latest_report_date",
    "load_watermark",
    "next_window",
    "save_watermark",
    "write_landing",
]
