"""What a generation run wrote: per-entity rows, files, defects, and timing."""

from __future__ import annotations

from dataclasses import dataclass, field
from io import StringIO

from rich.console import Console
from rich.table import Table


@dataclass
class EntityStats:
    """One generated entity: records written, files, injected defects and anomalies."""

    entity: str
    rows: int
    files: int = 0
    destination: str = ""
    defects: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)

    def issues_text(self) -> str:
        """'duplicate=12, late_record=24' (zeros left out), then ' | ' and anomalies."""
        defects = ", ".join(f"{k}={v}" for k, v in self.defects.items() if v)
        anomalies = ", ".join(f"{k}={v}" for k, v in self.anomalies.items() if v)
        return " | ".join(part for part in (defects, anomalies) if part)


@dataclass
class GenerationReport:
    """Returned by :func:`lakehouse.generate.generate_all`; print it or ``to_table()``."""

    parameters: dict[str, object]
    landing_root: str
    ground_truth_dir: str
    postgres: str | None  # where the referential went, None when not loaded
    schema_change_date: str
    entities: dict[str, EntityStats] = field(default_factory=dict)
    bytes_written: int = 0
    elapsed_seconds: float = 0.0

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: s.rows for name, s in self.entities.items()}

    @property
    def file_counts(self) -> dict[str, int]:
        return {name: s.files for name, s in self.entities.items()}

    def to_table(self) -> Table:
        """A rich table: one row per entity."""
        p = self.parameters
        table = Table(
            title=(
                f"Generated {p['start_date']} .. {p['run_date']} "
                f"(seed {p['seed']}, scale {p['scale']}, {p['days']} days) "
                f"in {self.elapsed_seconds:.1f} s"
            ),
            caption=(
                f"landing: {self.landing_root}\nground truth: {self.ground_truth_dir}\n"
                f"referential: {self.postgres or 'not loaded (--no-postgres)'}\n"
                f"order_lines gain 'sales_channel' from {self.schema_change_date}; "
                f"{self.bytes_written / 1e6:.1f} MB written"
            ),
            caption_justify="left",
        )
        table.add_column("entity")
        table.add_column("rows", justify="right")
        table.add_column("files", justify="right")
        table.add_column("defects / anomalies")
        table.add_column("destination")
        for stats in self.entities.values():
            table.add_row(
                stats.entity,
                f"{stats.rows:,}",
                f"{stats.files:,}",
                stats.issues_text(),
                stats.destination,
            )
        return table

    def __str__(self) -> str:
        buffer = StringIO()
        Console(file=buffer, width=160, color_system=None, force_terminal=False).print(self.to_table())
        return buffer.getvalue().rstrip()
