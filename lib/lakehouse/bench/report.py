"""The benchmark's JSON record and its Markdown summary."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from importlib import metadata
from pathlib import Path

import psutil

PACKAGES = ("pysail", "pyspark", "duckdb", "deltalake", "pyarrow")
TARGETS = {
    "classic_over_embedded": ("embedded engine >= 10x faster than classic local Spark", 10.0, "min"),
    "embedded_over_duckdb": ("embedded engine within 2x of DuckDB", 2.0, "max"),
    "full_rebuild_over_daily": ("daily increment >= 5x cheaper than a full rebuild", 5.0, "min"),
}


def machine() -> dict[str, object]:
    """What the figures were measured on, including the load other work put on it."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "logical_cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
    }


def report_paths(out_dir: Path) -> tuple[Path, Path]:
    """``bench-<UTC time>.json`` and ``.md`` in ``out_dir``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return out_dir / f"bench-{stamp}.json", out_dir / f"bench-{stamp}.md"


def write_reports(record: dict[str, object], json_path: Path, md_path: Path) -> None:
    """Write (or rewrite, as scales complete) both reports."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(record), encoding="utf-8")
    from lakehouse.bench.chart import write_chart  # matplotlib: only once a report exists

    write_chart(record, json_path.with_suffix(".svg"))


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _stage_rows(stages: list[dict]) -> list[list[object]]:
    return [
        [
            s["stage"],
            f"{s['seconds']:.1f}",
            f"{s['rows_in']:,}",
            f"{s['rows_out']:,}",
            f"{s['rows_per_second']:,.0f}",
            f"{s['peak_rss_mib']:,.0f}",
        ]
        for s in stages
    ]


STAGE_HEADER = ["stage", "wall s", "rows in", "rows out", "rows/s", "peak RSS MiB"]


def markdown(record: dict) -> str:
    """The record as Markdown tables (one section per scale factor)."""
    host = record["machine"]
    lines = [
        f"# Benchmark {record['started_at']}",
        "",
        f"{host['logical_cpus']} logical CPUs, {host['memory_gib']} GiB, Python {host['python']}; "
        f"load average at start {host['load_average_1_5_15']}, at end {record.get('load_average_at_end')}. "
        f"Packages: {', '.join(f'{k} {v}' for k, v in host['packages'].items())}.",
        "",
    ]
    if record.get("note"):  # e.g. results of separate runs put together
        lines += [f"Note: {record['note']}.", ""]
    for scale in record["scales"]:
        lines += _scale_section(scale)
    lines += ["## Targets", ""]
    lines += _table(["target", "scale", "measured", "met"], _target_rows(record))
    return "\n".join(lines) + "\n"


def _scale_section(scale: dict) -> list[str]:
    inc = scale["incremental"]
    lines = [
        f"## Scale {scale['scale']} ({scale['days_of_history']} days of history, run date {scale['run_date']})",
        "",
        "Stages (the history run; rows in/out from the event log, rows/s = rows out / wall s):",
        "",
        *_table(STAGE_HEADER, _stage_rows(scale["stages"])),
        "",
        *_downstream_section(scale.get("downstream", [])),
        f"Incremental: one new day on top of the history against a full rebuild of all days "
        f"(full rebuild / daily = **{inc['full_rebuild_over_daily']}x**):",
        "",
        *_table(STAGE_HEADER, _stage_rows(inc["daily_update"] + inc["full_rebuild"])),
        "",
    ]
    if inc.get("nothing_new"):
        floor = sum(s["seconds"] for s in inc["nothing_new"])
        lines += [
            f"The daily run again, with nothing new (every source and view skipped): {floor:.2f} s, "
            "the fixed cost of the three runs.",
            "",
        ]
    lines += _slowest_flows(scale["stages"] + inc["daily_update"])
    lines += _comparison_section(scale["comparison"])
    lines += _spark_pipeline_section(scale.get("spark_connect_pipeline"))
    lines += _daily_job_section(scale.get("daily_job"))
    tables = sorted(scale["tables"], key=lambda t: -t["bytes"])
    total = sum(t["bytes"] for t in tables)
    lines += [f"Delta tables after the runs ({len(tables)} tables, {total / 2**20:,.1f} MiB in all):", ""]
    lines += _table(
        ["table", "rows", "MiB", "version"],
        [[t["table"], f"{t['rows']:,}", f"{t['bytes'] / 2**20:,.2f}", t["version"]] for t in tables],
    )
    return [*lines, ""]


def _downstream_section(stages: list[dict]) -> list[str]:
    if not stages:
        return []
    lines = ["After the daily run (ML and exports; rows out = rows scored or exported):", ""]
    lines += _table(STAGE_HEADER, _stage_rows(stages))
    failed = [f"{s['stage']}: {s['details']['error']}" for s in stages if "error" in s.get("details", {})]
    if failed:
        lines += ["", "Failed (not measured): " + "; ".join(failed)]
    return [*lines, ""]


def _slowest_flows(stages: list[dict]) -> list[str]:
    rows = [
        [s["stage"], flow, f"{seconds:.1f}"]
        for s in stages
        for flow, seconds in s.get("details", {}).get("slowest_flows", {}).items()
    ]
    if not rows:
        return []
    title = "Slowest flows of each stage (event log; flows run side by side, so a flow's time includes waiting for a core):"
    return [title, "", *_table(["stage", "flow", "wall s"], rows), ""]


def _comparison_section(comparison: dict) -> list[str]:
    if not comparison:
        return []
    rows = [[engine, f"{seconds:.2f}"] for engine, seconds in comparison["seconds"].items()]
    return [
        "Same gold transformations, Parquet in and out (`lakehouse.bench.compare`); inputs "
        + ", ".join(f"{k} {v:,}" for k, v in comparison["input_rows"].items())
        + "; outputs "
        + ", ".join(f"{k} {v:,}" for k, v in comparison["output_rows"].items())
        + ":",
        "",
        *_table(["engine", "wall s (best run)"], rows),
        "",
        _classic_sentence(comparison)
        + (
            f"Apache Spark over Spark Connect / embedded = **{comparison['spark_connect_over_embedded']}x**; "
            if comparison.get("spark_connect_over_embedded") is not None
            else ""
        )
        + f"embedded / DuckDB = **{comparison['embedded_over_duckdb']}x**; identical results: "
        f"**{comparison['identical']}**.",
        "",
    ]


def _spark_pipeline_section(spark: dict | None) -> list[str]:
    if not spark:
        return []
    rows = [
        [
            r["run"],
            r["stage"] if r["stage"] != "total" else "**total**",
            f"{r['sail_seconds']:.2f}",
            f"{r['spark_seconds']:.2f}",
            "-" if r["spark_over_sail"] is None else f"{r['spark_over_sail']}x",
            "yes" if r["same_rows_written"] else "**no**",
        ]
        for r in spark["side_by_side"]
    ]
    return [
        "The whole pipeline on Apache Spark over Spark Connect, beside the embedded engine (the same "
        f"landing files and PostgreSQL; daily update Spark / Sail = **{spark['daily_update_spark_over_sail']}x**):",
        "",
        *_table(["run", "stage", "Sail s", "Spark s", "Spark / Sail", "same rows written"], rows),
        "",
    ]


def _daily_job_section(job: dict | None) -> list[str]:
    if not job:
        return []
    rows = []
    for engine, run in job["engines"].items():
        tasks = ", ".join(f"{task} {seconds:.0f}" for task, seconds in run.get("tasks_seconds", {}).items())
        rows.append([engine, f"{run['seconds']:.1f}", run["state"], tasks or "-"])
    ratio = job["spark_over_sail"]
    lines = [
        f"`lakehouse jobs run daily` for the new day ({job['run_date']}) on a copy of each lake as the history "
        "left it (wall time, the notebooks' kernels included); "
        + (f"Spark / Sail = **{ratio}x**:" if ratio is not None else "no ratio: a run failed:"),
        "",
        *_table(["engine", "wall s", "state", "task s"], rows),
        "",
    ]
    failed = [f"{engine}: {run['error']}" for engine, run in job["engines"].items() if run.get("error")]
    if failed:
        lines += ["Failed: " + "; ".join(failed), ""]
    return lines


def _classic_sentence(comparison: dict) -> str:
    if comparison.get("classic_over_embedded") is None:
        return "classic Spark not run (--no-classic); "
    return (
        f"classic / embedded = **{comparison['classic_over_embedded']}x** (classic session start "
        f"{comparison['classic_start_seconds']} s, not counted); "
    )


def _target_rows(record: dict) -> list[list[object]]:
    rows = []
    for scale in record["scales"]:
        measured = {
            "classic_over_embedded": scale["comparison"].get("classic_over_embedded"),
            "embedded_over_duckdb": scale["comparison"].get("embedded_over_duckdb"),
            "full_rebuild_over_daily": scale["incremental"]["full_rebuild_over_daily"],
        }
        for key, (text, limit, kind) in TARGETS.items():
            value = measured[key]
            met = None if value is None else (value >= limit if kind == "min" else value <= limit)
            rows.append(
                [
                    text,
                    scale["scale"],
                    "-" if value is None else f"{value}x",
                    {True: "yes", False: "no"}.get(met, "-"),
                ]
            )
    return rows
