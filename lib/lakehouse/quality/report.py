"""The quality summary people look at: per table, the pass rate over run dates, and
the latest failures with their samples; as DataFrames (notebook) and as one static,
self-contained HTML page (the chart is an embedded PNG: no CDN needed offline)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
from pathlib import Path

import pandas as pd

from lakehouse.quality.results import latest_run_per_date

FAILURE_COLUMNS = [
    "run_date",
    "severity",
    "suite",
    "expectation",
    "column_name",
    "unexpected_count",
    "observed_value",
    "sample",
    "exception",
]


def pass_rates(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run date x table (latest run of each date): checks, passed, failed
    critical, pass_rate (0-1)."""
    rows = latest_run_per_date(results)
    if rows.empty:
        return pd.DataFrame(columns=["run_date", "suite", "checks", "passed", "failed_critical", "pass_rate"])
    rows = rows.assign(
        is_passed=rows["success"].astype(bool),
        is_failed_critical=(~rows["success"].astype(bool)) & (rows["severity"] == "critical"),
    )
    summary = (
        rows.groupby(["run_date", "suite"])
        .agg(
            checks=("expectation", "size"),
            passed=("is_passed", "sum"),
            failed_critical=("is_failed_critical", "sum"),
        )
        .reset_index()
    )
    summary["pass_rate"] = summary["passed"] / summary["checks"]
    return summary.sort_values(["run_date", "suite"]).reset_index(drop=True)


def latest_failures(results: pd.DataFrame) -> pd.DataFrame:
    """Failed expectations of the latest run (of the latest run date), critical first."""
    if results.empty:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    rows = latest_run_per_date(results)
    rows = rows[rows["run_date"] == rows["run_date"].max()]
    failed = rows[~rows["success"].astype(bool)]
    order = failed["severity"].map({"critical": 0, "warning": 1})
    return (
        failed.assign(_order=order)
        .sort_values(["_order", "suite", "expectation"])[FAILURE_COLUMNS]
        .reset_index(drop=True)
    )


def pass_rate_chart_png(rates: pd.DataFrame) -> bytes | None:
    """Pass rate per table over run dates, as PNG bytes (None without data)."""
    if rates.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = rates.pivot(index="run_date", columns="suite", values="pass_rate").sort_index()
    figure, axes = plt.subplots(figsize=(9, 4))
    wide.plot(
        ax=axes, marker="o", ylim=(0, 1.05), title="Quality pass rate per table (latest run of each date)"
    )
    axes.set_ylabel("share of expectations passed")
    axes.legend(fontsize="small", loc="lower left")
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()


def summary_html(
    results: pd.DataFrame, *, docs_link: str | None = None, generated_at: dt.datetime | None = None
) -> str:
    rates = pass_rates(results)
    failures = latest_failures(results)
    png = pass_rate_chart_png(rates)
    latest = rates[rates["run_date"] == rates["run_date"].max()] if not rates.empty else rates
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Data quality summary</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Data quality summary</h1>",
        f"<p>Generated {html.escape(str(generated_at or dt.datetime.now(dt.UTC).replace(microsecond=0)))}."
        + (
            f" Great Expectations Data Docs of the latest run: <a href='{html.escape(docs_link)}'>"
            f"{html.escape(docs_link)}</a>"
            if docs_link
            else ""
        )
        + "</p>",
        "<h2>Latest run date, per table</h2>",
        latest.to_html(index=False, float_format=lambda v: f"{v:.1%}", classes="grid")
        if not latest.empty
        else "<p>No run.</p>",
        "<h2>Pass rate over time</h2>",
        f"<img alt='pass rate per table' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        if png
        else "<p>No run.</p>",
        f"<h2>Latest failures ({len(failures)})</h2>",
        failures.to_html(index=False, classes="grid", na_rep="") if not failures.empty else "<p>None.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_summary_html(results: pd.DataFrame, path: Path, *, docs_index: Path | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # relative link: the runs folder can be copied or served as a whole
    link = os.path.relpath(docs_index, path.parent) if docs_index is not None else None
    path.write_text(summary_html(results, docs_link=link), encoding="utf-8")
    return path


_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table.grid { border-collapse: collapse; font-size: 13px; }
table.grid th, table.grid td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
table.grid th { background: #f0f0f0; }
td { max-width: 40em; overflow-wrap: anywhere; }
"""
