"""The ERP's daily order-line export: French CSV files with injected defects.

One file per drop date ``landing/source=erp/order_lines/<date>/order_lines_<yyyymmdd>.csv``
holding the lines ordered that day, plus late lines of the 1-5 previous days and
duplicates re-sent from the previous day. From ``params.schema_change_date`` on, the
header gains a trailing ``sales_channel`` column.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lakehouse.generate.defects import ORDER_LINE_DEFECT_RATES, DefectRecord, defect_count
from lakehouse.generate.formats import CsvFile, csv_line, csv_lines, fr_decimal
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


@dataclass(frozen=True)
class ExportValues:
    """Every line's values as exported, field-level defects applied; spelled as text
    only for the rows of one file at a time (:meth:`fields`)."""

    lines: pd.DataFrame
    order_ord: np.ndarray
    defect: np.ndarray
    product_id: np.ndarray
    quantity: np.ndarray

    def fields(self, rows: np.ndarray) -> list[np.ndarray]:
        """The export fields of ``rows``, in :data:`BASE_COLUMNS` order then ``sales_channel``."""
        lines = self.lines

        def take(column: str) -> np.ndarray:
            return lines[column].to_numpy(dtype=object)[rows]

        return [
            take("order_id"),
            lines["line_number"].to_numpy()[rows].astype(str).astype(object),
            self._order_dates(rows),
            take("customer_id"),
            self.product_id[rows],
            take("product_label"),
            take("site_id"),
            self.quantity[rows].astype(str).astype(object),
            fr_decimal(lines["unit_price"].to_numpy()[rows], 2),
            fr_decimal(lines["discount_pct"].to_numpy()[rows], 2),
            take("sales_channel"),
        ]

    def _order_dates(self, rows: np.ndarray) -> np.ndarray:
        ordinals = self.order_ord[rows]
        spelled = {o: dt.date.fromordinal(int(o)).strftime("%d/%m/%Y") for o in np.unique(ordinals)}
        text = np.array([spelled[o] for o in ordinals.tolist()], dtype=object)
        for i in np.flatnonzero(self.defect[rows] == "impossible_date"):
            text[i] = impossible_date(dt.date.fromordinal(int(ordinals[i])))
        return text


def export_values(params: GenerationParams, lines: pd.DataFrame, plan: DefectPlan) -> ExportValues:
    """Unknown product ids and negative quantities applied to every line (seeded)."""
    rng = params.rng("order_line_defects", "values")
    product_id = lines["product_id"].to_numpy(dtype=object).copy()
    quantity = lines["quantity"].to_numpy().copy()
    unknown = np.flatnonzero(plan.defect == "unknown_product")
    # 'P9xxx' is outside the id range of any allowed scale (at most 2,000 products).
    product_id[unknown] = [f"P9{v:03d}" for v in rng.integers(0, 1000, len(unknown))]
    negative = plan.defect == "negative_quantity"
    quantity[negative] = -quantity[negative]
    order_ord = np.array([d.toordinal() for d in lines["order_date"]], dtype=np.int64)
    return ExportValues(lines, order_ord, plan.defect, product_id, quantity)


def render_line(fields: list[str], width: int, ragged: bool, missing: bool, drop_at: int) -> str:
    """One CSV line with the file's ``width`` columns; a ragged line loses the field at
    ``drop_at`` or gains an empty trailing field."""
    values = fields[:width]
    if ragged:
        values = values[:drop_at] + values[drop_at + 1 :] if missing else [*values, ""]
    return csv_line(values)


@dataclass(frozen=True)
class Placement:
    """Where each line goes: the lines of each file in the ERP's order (by order id,
    so late lines come first), and the duplicate copies with their sort keys."""

    base_rows: dict[int, np.ndarray]  # drop-date ordinal -> line indexes in file order
    # drop-date ordinal -> (sort key, arrival sequence, index of the copied line)
    duplicates: dict[int, list[tuple[float, int, int]]]
    drop_at: np.ndarray  # for ragged lines: the field dropped


def place_lines(params: GenerationParams, lines: pd.DataFrame, plan: DefectPlan) -> Placement:
    """A duplicate gets a random key after its original (same file) or anywhere (next
    day's file); keys are positions among the lines already in the file (seeded)."""
    rng = params.rng("order_line_defects", "placement")
    drop_at = rng.integers(1, len(BASE_COLUMNS), len(lines))
    run_ord = params.run_date.toordinal()
    change_ord = params.schema_change_date.toordinal()
    by_file = np.lexsort((lines["line_number"].to_numpy(), lines["order_id"].to_numpy(), plan.file_date))
    file_of_sorted = plan.file_date[by_file]
    base_rows = {d.toordinal(): by_file[file_of_sorted == d.toordinal()] for d in params.dates}
    position = np.empty(len(lines))
    for rows in base_rows.values():
        position[rows] = np.arange(len(rows))
    size = {day: len(rows) for day, rows in base_rows.items()}
    duplicates: dict[int, list[tuple[float, int, int]]] = {day: [] for day in base_rows}
    for i in plan.duplicated.tolist():
        day = int(plan.file_date[i])
        same_schema = (day + 1 < change_ord) or (day >= change_ord)
        if day + 1 <= run_ord and same_schema and rng.random() < 0.5:
            target = day + 1  # re-sent in the next day's file
            key = rng.uniform(-0.5, size[target])
        else:
            target = day
            key = rng.uniform(position[i] + 1e-6, size[target])
        duplicates[target].append((key, size[target], i))
        size[target] += 1
    return Placement(base_rows, duplicates, drop_at)


def file_lines(
    params: GenerationParams, day: dt.date, values: ExportValues, plan: DefectPlan, placement: Placement
) -> tuple[CsvFile, list[DefectRecord]]:
    """One drop date's file: its lines and duplicate copies in order, and its defects."""
    base = placement.base_rows[day.toordinal()]
    copies = placement.duplicates[day.toordinal()]
    keys = np.concatenate([np.arange(len(base), dtype=float), [k for k, _, _ in copies]])
    sequence = np.concatenate([np.arange(len(base)), [s for _, s, _ in copies]])
    order = np.lexsort((sequence, keys))
    rows = np.concatenate([base, np.array([i for _, _, i in copies], dtype=np.int64)])[order]
    kinds = np.concatenate([plan.defect[base], np.full(len(copies), "duplicate", dtype=object)])[order]

    header = header_for(params, day)
    fields = values.fields(rows)
    text = csv_lines(fields[: len(header)])
    for j in np.flatnonzero(kinds == "ragged_row"):
        i = rows[j]
        row_fields = [str(column[j]) for column in fields]
        text[j] = render_line(
            row_fields, len(header), True, bool(plan.ragged_missing[i]), int(placement.drop_at[i])
        )
    path = order_lines_path(day)
    defects = [DefectRecord(path, int(j) + 2, kind) for j, kind in enumerate(kinds) if kind is not None]
    return CsvFile(path, day, header, text), defects


def order_line_files(
    params: GenerationParams, lines: pd.DataFrame
) -> Iterator[tuple[CsvFile, list[DefectRecord]]]:
    """Every daily order-line file with its defects, one drop date at a time (the text
    of one file in memory at once)."""
    plan = plan_order_line_defects(params, lines)
    values = export_values(params, lines, plan)
    placement = place_lines(params, lines, plan)
    for day in params.dates:
        yield file_lines(params, day, values, plan, placement)
