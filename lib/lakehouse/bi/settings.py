"""``bi:`` of lakehouse.yaml: where the restitution outputs go and how PostgreSQL is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

_SQL_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


class BiSettings(BaseModel):
    output_dir: Path = Path("bi")  # relative to var_dir: tableau/*.hyper and dashboards/*.html
    single_table_extracts: bool = False  # one denormalised "Extract"."Extract" table per fact (old servers)
    postgres_schema: str = Field("bi", pattern=_SQL_NAME)
    postgres_mode: Literal["replace", "merge"] = "replace"
    reader_role: str = Field("bi_reader", pattern=_SQL_NAME)  # SELECT only on the BI schema

    def output_path(self, var_dir: Path) -> Path:
        return self.output_dir if self.output_dir.is_absolute() else var_dir / self.output_dir
