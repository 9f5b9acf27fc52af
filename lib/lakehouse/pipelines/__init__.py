"""Declarative pipelines (the Delta Live Tables equivalent).

Names follow ``pyspark.pipelines`` plus the Databricks extras::

    from lakehouse import pipelines as dp

    @dp.table(path="bronze/source=erp/table=orders")
    def bronze_orders():
        return dp.read_files("landing/source=erp/orders", format="csv", sep=";", encoding="latin-1")

    @dp.materialized_view
    @dp.expect_or_drop("positive_quantity", "quantity > 0")
    def silver_orders(bronze_orders):
        return bronze_orders.select(...)

    runner = dp.PipelineRunner(spark, dp.load_graph("pharma", ["my.module"]), lake)
    runner.dry_run(); run = runner.run()
"""

from lakehouse.pipelines.api import (
    append_flow,
    apply_changes,
    apply_changes_from_snapshot,
    create_auto_cdc_flow,
    create_auto_cdc_from_snapshot_flow,
    create_sink,
    create_streaming_table,
    expect,
    expect_all,
    expect_all_or_drop,
    expect_all_or_fail,
    expect_or_drop,
    expect_or_fail,
    graph,
    load_graph,
    materialized_view,
    read,
    read_files,
    read_stream,
    table,
    temporary_view,
    view,
)
from lakehouse.pipelines.contracts import Contract
from lakehouse.pipelines.expectations import ExpectationFailed, ExpectationResult
from lakehouse.pipelines.graph import GraphError, PipelineGraph
from lakehouse.pipelines.incremental import by_day, by_key, by_month
from lakehouse.pipelines.runner import (
    DryRunReport,
    PipelineContext,
    PipelineFailed,
    PipelineRun,
    PipelineRunner,
    current,
)

__all__ = [
    "Contract",
    "DryRunReport",
    "ExpectationFailed",
    "ExpectationResult",
    "GraphError",
    "PipelineContext",
    "PipelineFailed",
    "PipelineGraph",
    "PipelineRun",
    "PipelineRunner",
    "append_flow",
    "apply_changes",
    "apply_changes_from_snapshot",
    "by_day",
    "by_key",
    "by_month",
    "create_auto_cdc_flow",
    "create_auto_cdc_from_snapshot_flow",
    "create_sink",
    "create_streaming_table",
    "current",
    "expect",
    "expect_all",
    "expect_all_or_drop",
    "expect_all_or_fail",
    "expect_or_drop",
    "expect_or_fail",
    "graph",
    "load_graph",
    "materialized_view",
    "read",
    "read_files",
    "read_stream",
    "table",
    "temporary_view",
    "view",
]
