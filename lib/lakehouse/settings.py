"""The configuration of the whole lakehouse: :class:`lakehouse.config.Settings` (what
belongs to no layer) and the section each layer declares and owns. This is the one place
that knows every layer's settings; ``lakehouse.config`` knows none of them.

Importing ``lakehouse`` loads this module, so ``load_settings()`` always returns a
:class:`LakehouseSettings`: ``settings.bi.postgres_schema``, ``settings.quality...``,
``settings.ingestion...`` are typed, validated models, read from the same YAML keys and
``LAKEHOUSE_<SECTION>__<FIELD>`` variables as the other sections.
"""

from __future__ import annotations

from lakehouse.bi.settings import BiSettings
from lakehouse.bronze.settings import IngestionSettings
from lakehouse.config import Settings, use_model
from lakehouse.quality.settings import QualitySettings


class LakehouseSettings(Settings):
    """:class:`Settings` with the layers' sections."""

    ingestion: IngestionSettings = IngestionSettings()  # how sources reach bronze (lakehouse.bronze.settings)
    quality: QualitySettings = QualitySettings()  # data quality suites (lakehouse.quality)
    bi: BiSettings = BiSettings()  # Tableau extracts, PostgreSQL BI schema, dashboards (lakehouse.bi)


use_model(LakehouseSettings)
