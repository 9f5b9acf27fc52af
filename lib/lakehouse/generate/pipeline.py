"""``generate_all``: build every entity, write landing files and ground truth, load
the referential. Same (seed, scale, days, run_date) -> byte-identical files.

Landing layout (relative to ``<lake_root>/landing/``, one folder per drop date)::

    source=erp/order_lines/<date>/order_lines_<yyyymmdd>.csv        French CSV
    source=erp/stock_snapshots/<date>/stock_<yyyymmdd>.csv          French CSV
    source=erp/deliveries/<date>/deliveries_<yyyymmdd>.jsonl        JSON lines
    source=erp/production_batches/<date>/production_<yyyymmdd>.jsonl
    source=iot/readings/<date>/readings_<site_id>_<yyyymmdd>.jsonl  one file per plant
    source=regulatory/recalls/<date>/recalls_<yyyymmdd>.json        one document

Ground truth (``settings.ground_truth_dir``, never in the lake): ``defects.json``,
``order_lines_defects.csv``, ``landing_defects.csv`` (stock and JSON-lines defects),
``energy_anomalies.csv``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lakehouse.config import Settings, is_remote_uri
from lakehouse.generate.defects import (
    JSON_LINES_DEFECT_RATES,
    ORDER_LINE_DEFECT_RATES,
    STOCK_DEFECT_RATES,
    DefectRecord,
    pick_malformed,
    truncate_json,
)
from lakehouse.generate.energy import (
    ANOMALY_SHARE,
    ANOMALY_TYPES,
    Anomaly,
    anomalies_frame,
    plan_anomalies,
    readings_jsonl,
    readings_path,
    simulate_plant,
)
from lakehouse.generate.formats import (
    CSV_ENCODING,
    clear_folder,
    json_lines,
    json_values,
    write_text_atomic,
)
from lakehouse.generate.order_export import order_line_files
from lakehouse.generate.orders import DELIVERY_COLUMNS, build_deliveries, build_order_lines
from lakehouse.generate.params import MINUTES_PER_DAY, GenerationError, GenerationParams
from lakehouse.generate.postgres_load import load_referential
from lakehouse.generate.production import batch_records, build_production_batches
from lakehouse.generate.recalls import recall_document, recall_text, recalls_path
from lakehouse.generate.referential import Referential, build_referential
from lakehouse.generate.report import EntityStats, GenerationReport
from lakehouse.generate.stock import stock_files
from lakehouse.postgres import PostgresEndpoint

# The generator owns these landing folders (per drop date) and clears them first;
# relative to <lake_root>/landing/.
LANDING_FOLDERS = {
    "order_lines": "source=erp/order_lines",
    "stock_snapshots": "source=erp/stock_snapshots",
    "deliveries": "source=erp/deliveries",
    "production_batches": "source=erp/production_batches",
    "iot_readings": "source=iot/readings",
    "recalls": "source=regulatory/recalls",
}
GROUND_TRUTH_FILES = (
    "defects.json",
    "order_lines_defects.csv",
    "landing_defects.csv",
    "energy_anomalies.csv",
)
# Steps in the order they run, for progress displays.
STEPS = (
    "referential",
    "order_lines",
    "deliveries",
    "stock_snapshots",
    "production_batches",
    "iot_readings",
    "recalls",
    "ground_truth",
    "postgres",
)

ProgressCallback = Callable[[str, str], None]  # (step, message)


def _noop(step: str, message: str) -> None:
    """Default progress callback."""


class _Writer:
    """Writes lake-relative files under ``lake_root`` and counts bytes."""

    def __init__(self, lake_root: Path) -> None:
        self.lake_root = lake_root
        self.bytes_written = 0

    def write(self, relative_path: str, text: str | bytes, encoding: str = "utf-8") -> None:
        self.bytes_written += write_text_atomic(self.lake_root / relative_path, text, encoding)


def clear_landing(landing: Path, params: GenerationParams) -> None:
    """Delete the generator's own drop folders for the dates it is about to write."""
    for folder in LANDING_FOLDERS.values():
        for day in params.dates:
            clear_folder(landing / folder / day.isoformat())


def jsonl_files(
    params: GenerationParams,
    stream: str,
    records: pd.DataFrame,
    columns: tuple[str, ...],
    path_for: Callable[[dt.date], str],
) -> Iterator[tuple[str, bytes, list[DefectRecord]]]:
    """JSON lines per drop date (``records.drop_date``), one file at a time; ~0.5 % of
    all lines truncated. Every date of the period gets a file, empty when nothing was
    dropped. Yields the path, the bytes and the file's defects."""
    rng = params.rng(stream, "defects")
    drop_ord = np.array([d.toordinal() for d in records["drop_date"]], dtype=np.int64)
    in_file_order = np.argsort(drop_ord, kind="stable")
    hit = deque(pick_malformed(rng, len(records)).tolist())
    first = 0  # index of the day's first line among all lines
    for day in params.dates:
        rows = in_file_order[first : first + int((drop_ord == day.toordinal()).sum())]
        day_records = records.iloc[rows]
        lines = json_lines({name: json_values(day_records[name]) for name in columns}).to_pylist()
        path, defects = path_for(day), []
        while hit and hit[0] < first + len(rows):
            i = hit.popleft() - first
            lines[i] = truncate_json(rng, lines[i])
            defects.append(DefectRecord(path, i + 1, "malformed_json"))
        first += len(rows)
        yield path, "".join(line + "\n" for line in lines).encode("utf-8"), defects


def write_ground_truth(
    folder: Path,
    params: GenerationParams,
    stats: dict[str, EntityStats],
    order_defects: list[DefectRecord],
    other_defects: list[tuple[str, DefectRecord]],
    anomalies: pd.DataFrame,
) -> int:
    """Write the ground-truth files; returns bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in GROUND_TRUTH_FILES:
        clear_folder(folder / name)
    record_units = {"recalls": "notice"}
    landing_entities = list(LANDING_FOLDERS)
    summary: dict[str, object] = {
        "generator": params.as_dict(),
        "schema_change_date": params.schema_change_date.isoformat(),
        "schema_changes": [
            {
                "entity": "order_lines",
                "column": "sales_channel",
                "first_drop_date": params.schema_change_date.isoformat(),
            }
        ],
        "rates": {
            "order_lines": ORDER_LINE_DEFECT_RATES,
            "stock_snapshots": STOCK_DEFECT_RATES,
            "deliveries": JSON_LINES_DEFECT_RATES,
            "production_batches": JSON_LINES_DEFECT_RATES,
            "iot_readings": {"anomalous_minutes": ANOMALY_SHARE},
        },
        "notes": (
            "records = data lines in the files (CSV headers excluded), except recalls: "
            "notices. Each defect type gets max(1, round(rate * base)) records, base = records "
            "(order lines: records minus duplicate copies). "
            "energy_anomalies.csv end_ts is exclusive."
        ),
    }
    for name in landing_entities:  # one top-level key per landing entity
        summary[name] = {
            "records": stats[name].rows,
            "record_unit": record_units.get(name, "line"),
            "files": stats[name].files,
            "defects": stats[name].defects,
            **({"anomalies": stats[name].anomalies} if stats[name].anomalies else {}),
        }
    summary_text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    size = write_text_atomic(folder / "defects.json", summary_text, "utf-8")
    order_csv = pd.DataFrame(
        [(d.file, d.line_number, d.defect) for d in order_defects],
        columns=["file", "line_number", "defect"],
    ).to_csv(index=False, lineterminator="\n")
    size += write_text_atomic(folder / "order_lines_defects.csv", order_csv, "utf-8")
    other_csv = pd.DataFrame(
        [(entity, d.file, d.line_number, d.defect) for entity, d in other_defects],
        columns=["entity", "file", "line_number", "defect"],
    ).to_csv(index=False, lineterminator="\n")
    size += write_text_atomic(folder / "landing_defects.csv", other_csv, "utf-8")
    size += write_text_atomic(
        folder / "energy_anomalies.csv", anomalies.to_csv(index=False, lineterminator="\n"), "utf-8"
    )
    return size


def _count(defects: list[DefectRecord], kinds: dict[str, float]) -> dict[str, int]:
    """Defects per type, every documented type present (0 when none)."""
    counts = dict.fromkeys(kinds, 0)
    for record in defects:
        counts[record.defect] += 1
    return counts


@dataclass
class _Context:
    """What every step of one run shares: inputs, the file writer, and the results."""

    params: GenerationParams
    ref: Referential
    writer: _Writer
    notify: ProgressCallback
    stats: dict[str, EntityStats] = field(default_factory=dict)
    order_defects: list[DefectRecord] = field(default_factory=list)
    other_defects: list[tuple[str, DefectRecord]] = field(default_factory=list)

    def write_jsonl(
        self,
        entity: str,
        records: pd.DataFrame,
        columns: tuple[str, ...],
        path_for: Callable[[dt.date], str],
    ) -> None:
        """Write one JSON-lines entity (with malformed lines) and record its stats."""
        defects: list[DefectRecord] = []
        for path, data, file_defects in jsonl_files(self.params, entity, records, columns, path_for):
            self.writer.write(path, data)
            defects += file_defects
        self.other_defects += [(entity, d) for d in defects]
        self.stats[entity] = EntityStats(
            entity, len(records), self.params.days, LANDING_FOLDERS[entity],
            _count(defects, JSON_LINES_DEFECT_RATES),
        )  # fmt: skip


def step_order_lines(ctx: _Context) -> pd.DataFrame:
    """Order-line CSV files, written one at a time; returns the clean lines
    (deliveries follow them)."""
    lines = build_order_lines(ctx.params, ctx.ref)
    records = files = 0
    for file, defects in order_line_files(ctx.params, lines):
        ctx.writer.write(file.relative_path, file.text(), CSV_ENCODING)
        ctx.order_defects += defects
        records += len(file.lines)
        files += 1
        ctx.notify(f"order_lines:{file.drop_date}", f"{file.drop_date}: {records:,} lines")
    ctx.stats["order_lines"] = EntityStats(
        "order_lines", records, files, LANDING_FOLDERS["order_lines"],
        _count(ctx.order_defects, ORDER_LINE_DEFECT_RATES),
    )  # fmt: skip
    ctx.notify("order_lines", f"{records:,} lines in {files} files")
    return lines


def step_deliveries(ctx: _Context, lines: pd.DataFrame) -> None:
    deliveries = build_deliveries(ctx.params, ctx.ref, lines)
    ctx.write_jsonl(
        "deliveries", deliveries, DELIVERY_COLUMNS,
        lambda d: f"landing/source=erp/deliveries/{d.isoformat()}/deliveries_{d:%Y%m%d}.jsonl",
    )  # fmt: skip
    ctx.notify("deliveries", f"{len(deliveries):,} deliveries")


def step_stock(ctx: _Context) -> None:
    records = files = 0
    defects: list[DefectRecord] = []
    for file, file_defects in stock_files(ctx.params, ctx.ref):
        ctx.writer.write(file.relative_path, file.text(), CSV_ENCODING)
        defects += file_defects
        records += len(file.lines)
        files += 1
    ctx.other_defects += [("stock_snapshots", d) for d in defects]
    ctx.stats["stock_snapshots"] = EntityStats(
        "stock_snapshots", records, files, LANDING_FOLDERS["stock_snapshots"],
        _count(defects, STOCK_DEFECT_RATES),
    )  # fmt: skip
    ctx.notify("stock_snapshots", f"{records:,} rows")


def step_production(ctx: _Context) -> pd.DataFrame:
    """Production-batch files; returns the batches (they drive the energy readings)."""
    batches = build_production_batches(ctx.params, ctx.ref)
    records = batch_records(ctx.params, batches)
    ctx.write_jsonl(
        "production_batches", records.assign(drop_date=batches["drop_date"]), tuple(records.columns),
        lambda d: f"landing/source=erp/production_batches/{d.isoformat()}/production_{d:%Y%m%d}.jsonl",
    )  # fmt: skip
    ctx.notify("production_batches", f"{len(batches):,} batches")
    return batches


def step_readings(ctx: _Context, batches: pd.DataFrame) -> list[Anomaly]:
    """Readings files, one plant at a time and one day at a time (memory: one plant's
    compact readings); returns the anomalies."""
    params, ref = ctx.params, ctx.ref
    anomalies = plan_anomalies(params, ref)
    readings = files = 0
    for site_id in ref.sites.loc[ref.sites["site_type"] == "plant", "site_id"]:
        plant = simulate_plant(params, ref, site_id, batches, anomalies)
        if not plant.machine_ids:
            continue
        for d, day in enumerate(params.dates):
            ctx.writer.write(readings_path(site_id, day), readings_jsonl(params, plant, d))
            readings += len(plant.machine_ids) * MINUTES_PER_DAY
            files += 1
            ctx.notify(f"iot_readings:{site_id}:{day}", f"{site_id} {day}: {readings:,} readings")
        ctx.notify(f"iot_readings:{site_id}", f"{len(plant.machine_ids)} machines x {params.days} days")
        del plant
    counts = {kind: sum(a.anomaly_type == kind for a in anomalies) for kind in ANOMALY_TYPES}
    ctx.stats["iot_readings"] = EntityStats(
        "iot_readings", readings, files, LANDING_FOLDERS["iot_readings"], {}, counts
    )
    ctx.notify("iot_readings", f"{readings:,} readings, {len(anomalies)} anomalies")
    return anomalies


def step_recalls(ctx: _Context) -> None:
    notices = 0
    for day in ctx.params.dates:
        document = recall_document(ctx.params, ctx.ref, day)
        notices += len(document["notices"])
        ctx.writer.write(recalls_path(day), recall_text(document))
    ctx.stats["recalls"] = EntityStats("recalls", notices, ctx.params.days, LANDING_FOLDERS["recalls"])
    ctx.notify("recalls", f"{notices} notices")


def step_postgres(ctx: _Context, endpoint: PostgresEndpoint) -> str:
    """Load the referential and check every table's row count; returns where it went."""
    counts = load_referential(endpoint, ctx.ref)
    for name, count in counts.items():
        if count != ctx.stats[name].rows:
            raise GenerationError(
                f"{name}: {ctx.stats[name].rows} rows expected in PostgreSQL, found {count}"
            )
    loaded = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    ctx.notify("postgres", f"schema {endpoint.schema}: {loaded}")
    return f"schema {endpoint.schema} ({endpoint!r})"


def generate_all(
    settings: Settings,
    *,
    endpoint: PostgresEndpoint | None = None,
    progress: ProgressCallback | None = None,
) -> GenerationReport:
    """Generate every source for ``settings`` (seed, scale, days, run_date).

    Writes the landing files under ``<lake_root>/landing/`` (after deleting the
    generator's own folders for those dates), the ground truth under
    ``settings.ground_truth_dir``, and, when ``endpoint`` is given, recreates the
    referential schema in PostgreSQL. ``progress(step, message)`` is called as each
    step of :data:`STEPS` finishes, and on the way with ``"order_lines:<date>"`` as
    each order-line file is written, ``"iot_readings:<site_id>:<date>"`` as each
    readings file is and ``"iot_readings:<site_id>"`` as each plant's are.
    """
    started = time.perf_counter()
    params = GenerationParams.from_settings(settings)
    if is_remote_uri(settings.lake_root):
        raise GenerationError(
            f"lake_root must be a local folder for the generator, found {settings.lake_root!r}"
        )
    lake_root = Path(settings.lake_root.removeprefix("file://"))
    ctx = _Context(params, build_referential(params), _Writer(lake_root), progress or _noop)
    target = f"postgres {endpoint.schema}" if endpoint else "not loaded"
    for name, frame in ctx.ref.tables().items():
        destination = f"{target}.{name}" if endpoint else target
        ctx.stats[name] = EntityStats(name, len(frame), destination=destination)
    ctx.notify("referential", ", ".join(f"{n} {len(f):,}" for n, f in ctx.ref.tables().items()))

    clear_landing(lake_root / "landing", params)
    lines = step_order_lines(ctx)
    step_deliveries(ctx, lines)
    del lines  # the biggest frame of the run: not kept while readings are simulated
    step_stock(ctx)
    batches = step_production(ctx)
    anomalies = step_readings(ctx, batches)
    step_recalls(ctx)
    ctx.writer.bytes_written += write_ground_truth(
        settings.ground_truth_dir,
        params,
        ctx.stats,
        ctx.order_defects,
        ctx.other_defects,
        anomalies_frame(params, anomalies),
    )
    ctx.notify("ground_truth", str(settings.ground_truth_dir))
    postgres = step_postgres(ctx, endpoint) if endpoint is not None else None

    return GenerationReport(
        parameters=params.as_dict(),
        landing_root=str(lake_root / "landing"),
        ground_truth_dir=str(settings.ground_truth_dir),
        postgres=postgres,
        schema_change_date=params.schema_change_date.isoformat(),
        entities=ctx.stats,
        bytes_written=ctx.writer.bytes_written,
        elapsed_seconds=time.perf_counter() - started,
    )
