"""The ERP's daily order-line export: French CSV files with injected defects.

One file per drop date ``landing/source=erp/order_lines/<date>/order_lines_<yyyymmdd>.csv``
holding the lines ordered that day, plus late lines of the 1-5 previous days and
duplicates re-sent from the previous day. From ``params.schema_change_date`` on, the
header gains a trailing ``sales_channel`` column.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lakehouse.generate.defects import ORDER_LINE_DEFECT_RATES, DefectRecord, defect_count
from lakehouse.generate.formats import CsvExport, CsvFile, csv_line, fr_date, fr_decimal
from lakehouse.generate.params import GenerationParams

BASE_COLUMNS = (
    "order_id", "line_number", "order_date", "customer_id", "product_id", "product_label",
    "site_id", "quantity", "unit_price", "discount_pct",
)  # fmt: skip
NEW_COLUMN = "sales_channel"


def order_lines_path(day: dt.date) -> str:
    return f"landing/source=erp/order_lines/{day.isoformat()}/order_lines_{day:%Y%m%d}.csv"


def header_for(params: GenerationParams, day: dt.date) -> tuple[str, ...]:
    """Columns of the export dropped on ``day``."""
    return (*BASE_COLUMNS, NEW_COLUMN) if day >= params.schema_change_date else BASE_COLUMNS


def impossible_date(day: dt.date) -> str:
    """A dd/mm/yyyy string near ``day`` that no calendar has: 31 of a 30-day month,
    30/02, or 32 of a 31-day month."""
    days_in_month = calendar.monthrange(day.year, day.month)[1]
    if day.month == 2:
        return f"30/02/{day.year}"
    return f"{days_in_month + 1:02d}/{day.month:02d}/{day.year}"


@dataclass(frozen=True)
class DefectPlan:
    """Which line gets which defect (indexes into the clean lines)."""

    file_date: np.ndarray  # ordinal of the drop date of each line
    defect: np.ndarray  # defect of each line (object; None = clean)
    duplicated: np.ndarray  # indexes of lines copied once more
    ragged_missing: np.ndarray  # for ragged lines: True = a field dropped, False = one added


def plan_order_line_defects(params: GenerationParams, lines: pd.DataFrame) -> DefectPlan:
    """Choose disjoint sets of lines for each defect type (seeded)."""
    rng = params.rng("order_line_defects")
    n = len(lines)
    order_ord = np.array([d.toordinal() for d in lines["order_date"]], dtype=np.int64)
    file_ord = order_ord.copy()
    defect = np.full(n, None, dtype=object)
    run_ord = params.run_date.toordinal()

    # Late records: only lines whose order date leaves room for a later file.
    candidates = np.flatnonzero(order_ord < run_ord)
    late = rng.choice(
        candidates,
        size=min(len(candidates), defect_count(ORDER_LINE_DEFECT_RATES["late_record"], n)),
        replace=False,
    )
    lag = np.minimum(rng.integers(1, 6, len(late)), run_ord - order_ord[late])
    file_ord[late] += lag
    defect[late] = "late_record"

    pool = rng.permutation(np.flatnonzero(defect == None))  # noqa: E711 (element-wise)
    taken = 0
    chosen: dict[str, np.ndarray] = {}
    for kind in ("duplicate", "unknown_product", "negative_quantity", "ragged_row", "impossible_date"):
        count = min(defect_count(ORDER_LINE_DEFECT_RATES[kind], n), len(pool) - taken)
        chosen[kind] = np.sort(pool[taken : taken + count])
        taken += count
    for kind in ("unknown_product", "negative_quantity", "ragged_row", "impossible_date"):
        defect[chosen[kind]] = kind
    return DefectPlan(
        file_date=file_ord,
        defect=defect,
        duplicated=chosen["duplicate"],
        ragged_missing=rng.random(n) < 0.5,
    )


def render_fields(params: GenerationParams, lines: pd.DataFrame, plan: DefectPlan) -> list[list[str]]:
    """Every line's fields as export strings, field-level defects applied."""
    rng = params.rng("order_line_defects", "values")
    product_id = lines["product_id"].to_numpy(dtype=object).copy()
    quantity = lines["quantity"].to_numpy().copy()
    order_date = fr_date(lines["order_date"]).to_numpy(dtype=object)
    unknown = np.flatnonzero(plan.defect == "unknown_product")
    # 'P9xxx' is outside the id range of any allowed scale (at most 2,000 products).
    product_id[unknown] = [f"P9{v:03d}" for v in rng.integers(0, 1000, len(unknown))]
    negative = plan.defect == "negative_quantity"
    quantity[negative] = -quantity[negative]
    for i in np.flatnonzero(plan.defect == "impossible_date"):
        order_date[i] = impossible_date(lines["order_date"].iat[i])
    columns = [
        lines["order_id"].to_numpy(dtype=object),
        lines["line_number"].astype(str).to_numpy(dtype=object),
        order_date,
        lines["customer_id"].to_numpy(dtype=object),
        product_id,
        lines["product_label"].to_numpy(dtype=object),
        lines["site_id"].to_numpy(dtype=object),
        quantity.astype(str).astype(object),
        fr_decimal(lines["unit_price"], 2),
        fr_decimal(lines["discount_pct"], 2),
        lines["sales_channel"].to_numpy(dtype=object),
    ]
    return [list(row) for row in zip(*columns)]


def render_line(fields: list[str], width: int, ragged: bool, missing: bool, drop_at: int) -> str:
    """One CSV line with the file's ``width`` columns; a ragged line loses the field at
    ``drop_at`` or gains an empty trailing field."""
    values = fields[:width]
    if ragged:
        values = values[:drop_at] + values[drop_at + 1 :] if missing else [*values, ""]
    return csv_line(values)


def build_order_line_export(params: GenerationParams, lines: pd.DataFrame) -> CsvExport:
    """Render every daily order-line file with its defects, and the ground truth."""
    plan = plan_order_line_defects(params, lines)
    fields = render_fields(params, lines, plan)
    rng = params.rng("order_line_defects", "placement")
    drop_at = rng.integers(1, len(BASE_COLUMNS), len(lines))
    run_ord = params.run_date.toordinal()
    change_ord = params.schema_change_date.toordinal()

    # Entries per file: (sort key, sequence, line text, defect). Base lines keep the
    # ERP's order (by order id, so late lines come first); a duplicate gets a random
    # key after its original (same file) or anywhere (next day's file).
    entries: dict[int, list[tuple[float, int, str, str | None]]] = {d.toordinal(): [] for d in params.dates}
    text_of: dict[int, str] = {}
    position: dict[int, float] = {}
    by_file = np.lexsort((lines["line_number"].to_numpy(), lines["order_id"].to_numpy(), plan.file_date))
    for i in by_file.tolist():
        day = int(plan.file_date[i])
        width = len(header_for(params, dt.date.fromordinal(day)))
        kind = plan.defect[i]
        ragged, missing = kind == "ragged_row", bool(plan.ragged_missing[i])
        text = render_line(fields[i], width, ragged, missing, int(drop_at[i]))
        position[i] = float(len(entries[day]))
        entries[day].append((position[i], len(entries[day]), text, kind))
        text_of[i] = text
    for i in plan.duplicated.tolist():
        day = int(plan.file_date[i])
        same_schema = (day + 1 < change_ord) or (day >= change_ord)
        if day + 1 <= run_ord and same_schema and rng.random() < 0.5:
            target = day + 1  # re-sent in the next day's file
            key = rng.uniform(-0.5, len(entries[target]))
        else:
            target = day
            key = rng.uniform(position[i] + 1e-6, len(entries[target]))
        entries[target].append((key, len(entries[target]), text_of[i], "duplicate"))

    files, defects = [], []
    for day in params.dates:
        path = order_lines_path(day)
        ordered = sorted(entries[day.toordinal()], key=lambda e: (e[0], e[1]))
        files.append(CsvFile(path, day, header_for(params, day), [e[2] for e in ordered]))
        defects.extend(
            DefectRecord(path, number, kind)
            for number, (_, _, _, kind) in enumerate(ordered, start=2)
            if kind is not None
        )
    return CsvExport(files, defects)
