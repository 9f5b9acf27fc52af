"""Run the compared subset on classic local JVM Spark, in a child process.

Once a Spark Connect session exists, PySpark marks the process as Connect-only
(``SPARK_CONNECT_MODE_ENABLED``), so the classic side runs in its own interpreter
with a clean environment::

    python -m lakehouse.bench.classic INPUT_DIR OUTPUT_DIR

It prints one JSON object: ``start_seconds`` (JVM and session start) and
``transform_seconds`` (read Parquet, transform, write Parquet).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Variables that would turn the child into a Spark Connect client.
_CONNECT_VARIABLES = (
    "SPARK_CONNECT_MODE_ENABLED",
    "SPARK_REMOTE",
    "SPARK_LOCAL_REMOTE",
    "SPARK_CONNECT_MODE",
)
CORES = 2
DRIVER_MEMORY = "4g"


class ClassicSparkError(RuntimeError):
    """The classic Spark child process failed."""


def clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CONNECT_VARIABLES}
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    return env


def run_classic_subset(
    input_dir: str | Path, output_dir: str | Path, *, timeout_seconds: float = 3600
) -> dict:
    """Start the child, wait for it, return its timings (raises with its stderr on failure)."""
    command = [sys.executable, "-m", "lakehouse.bench.classic", str(input_dir), str(output_dir)]
    started = time.perf_counter()
    done = subprocess.run(
        command, env=clean_environment(), capture_output=True, text=True, timeout=timeout_seconds, check=False
    )
    if done.returncode != 0:
        raise ClassicSparkError(
            f"classic Spark on {input_dir} exited with {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 3)
    return result


def main(input_dir: str, output_dir: str) -> None:
    from pyspark.sql import SparkSession

    from lakehouse.bench.compare import run_spark_subset
    from lakehouse.engine import SESSION_CONF

    started = time.perf_counter()
    builder = (
        SparkSession.builder.master(f"local[{CORES}]")
        .appName("lakehouse-bench-classic")
        .config("spark.driver.memory", DRIVER_MEMORY)
        .config("spark.ui.enabled", "false")
    )
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    start_seconds = time.perf_counter() - started
    transform_seconds = run_spark_subset(spark, input_dir, output_dir)
    spark.stop()
    print(
        json.dumps(
            {"start_seconds": round(start_seconds, 3), "transform_seconds": round(transform_seconds, 3)}
        )
    )


if __name__ == "__main__":  # pragma: no cover - run as a child process
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m lakehouse.bench.classic INPUT_DIR OUTPUT_DIR")
    main(sys.argv[1], sys.argv[2])
