"""The Spark engine behind every pipeline: the session factory (``session``) and the
workarounds for what one engine lacks (``compat``, with its registry of gaps).

Pipeline code only sees a ``SparkSession`` speaking Spark Connect (DataFrame and SQL
APIs; no RDDs, no JVM access), so the same code runs on:

- ``sail`` (default): Sail, a Rust Spark Connect server started inside this process
  in under a second, with Delta Lake support;
- ``remote``: any Spark Connect server, ``SPARK_REMOTE=sc://host:port`` (Apache Spark 4
  with Delta, Databricks through databricks-connect, a Sail cluster);
- ``classic``: local JVM Spark with the delta-spark jars, where the machine can fetch
  them from Maven Central.

``python -m lakehouse.engine`` prints the gaps and their workarounds.
"""

from lakehouse.engine.compat import jdbc_options, strip_collations
from lakehouse.engine.session import (
    SESSION_CONF,
    EngineError,
    close_sessions,
    get_spark,
    is_sail,
    stop_embedded_engine,
)

__all__ = [
    "SESSION_CONF",
    "EngineError",
    "close_sessions",
    "get_spark",
    "is_sail",
    "jdbc_options",
    "stop_embedded_engine",
    "strip_collations",
]
