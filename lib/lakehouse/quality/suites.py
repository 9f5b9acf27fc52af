"""Expectation suites per layer and table, kept as code (Great Expectations 1.x classes).

Every check has a stable ``name`` (the key of the results table and of the gate's
message) and a ``severity``: ``critical`` stops ``pipeline_load_bi``, ``warning`` only
alerts. Suites are tolerant to added columns: they require the columns they know
(``ExpectTableColumnsToMatchSet(exact_match=False)``) and check the types of those.

Keys, foreign keys and where each table lives are not written here: they come from
the dataset's contract and path in the pipeline graph (``contract_checks``,
``dataset_suite``), so a suite always checks the keys its definition declares.

Checks that need more than one table or more than one run are turned into plain
expectations before validation:

* referential integrity: :func:`with_orphans` adds ``_orphan_<column>`` (the key when it
  is not NULL and missing from the dimension, else NULL); the check expects it NULL,
  so the unexpected sample lists the orphan keys;
* freshness: the latest date/hour key must be at most N hours older than the end of
  the run date (``ExpectColumnMaxToBeBetween``);
* volume: the row count must lie in a band around the median of the previous run
  dates' row counts, read from the results table (``ExpectTableRowCountToBeBetween``).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pyspark.sql import functions as F

from lakehouse.gold.energy_star import ANOMALY_CLASSES
from lakehouse.gold.keys import UNKNOWN_SK
from lakehouse.lake import Lake, delta_exists, read_delta
from lakehouse.pipelines.contracts import Contract
from lakehouse.quality.gx import gxe
from lakehouse.quality.model import ROW_COUNT_CHECK
from lakehouse.quality.settings import QualitySettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lakehouse.pipelines.graph import Dataset

Severity = Literal["critical", "warning"]
CRITICAL: Severity = "critical"
WARNING: Severity = "warning"
SALES_CHANNELS = ("direct", "wholesaler", "tender")


@dataclass(frozen=True)
class Check:
    """One expectation of a suite, with its stable name and severity."""

    name: str
    severity: Severity
    expectation: gxe.Expectation


@dataclass(frozen=True)
class SuiteInputs:
    """What a suite needs besides its table: the engine, the lake, the run date, the
    settings and the row counts of previous run dates (newest first) per suite."""

    spark: SparkSession
    lake: Lake
    run_date: dt.date
    settings: QualitySettings = field(default_factory=QualitySettings)
    row_count_history: Mapping[str, Sequence[int]] = field(default_factory=dict)

    def reference_time(self) -> dt.datetime:
        """The end of the run date (UTC): data of the run date is complete then."""
        return dt.datetime.combine(self.run_date + dt.timedelta(days=1), dt.time())


@dataclass(frozen=True)
class TableSuite:
    """The suite of one table: where it lives, how to prepare the validated frame
    (e.g. orphan columns) and its checks."""

    name: str  # "<layer>.<table>", also the GX suite name
    path: Callable[[Lake], str]
    checks: Callable[[SuiteInputs], list[Check]]
    prepare: Callable[[DataFrame, SuiteInputs], DataFrame] = lambda df, _inputs: df

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]

    def load(self, inputs: SuiteInputs) -> DataFrame:
        """The frame to validate; raises ``FileNotFoundError`` naming the path when the
        table (or a dimension it references) is missing, and analysis errors at once."""
        frame = self.prepare(read_delta(inputs.spark, _existing(self.path(inputs.lake), self.name)), inputs)
        _ = frame.schema  # analysis only: a missing column fails here, not in every expectation
        return frame


# --- building blocks ---------------------------------------------------------------


def schema_checks(types: Mapping[str, str]) -> list[Check]:
    """The known columns exist (others may be added) and have these Spark types."""
    checks = [
        Check(
            "columns_present",
            CRITICAL,
            gxe.ExpectTableColumnsToMatchSet(column_set=list(types), exact_match=False),
        )
    ]
    for column, type_name in types.items():
        checks.append(
            Check(
                f"{column}_is_{type_name}",
                CRITICAL,
                gxe.ExpectColumnValuesToBeOfType(column=column, type_=type_name),
            )
        )
    return checks


def key_checks(columns: Sequence[str], *, kind: str = "key") -> list[Check]:
    """Every key column not NULL, the key unique (check ``<kind>_<columns>_unique``)."""
    checks = [
        Check(f"{column}_not_null", CRITICAL, gxe.ExpectColumnValuesToNotBeNull(column=column))
        for column in columns
    ]
    name = f"{kind}_{'_'.join(columns)}_unique"
    if len(columns) == 1:
        checks.append(Check(name, CRITICAL, gxe.ExpectColumnValuesToBeUnique(column=columns[0])))
    else:
        checks.append(Check(name, CRITICAL, gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns))))
    return checks


def contract_checks(contract: Contract) -> list[Check]:
    """The checks a contract implies: its key and natural key not NULL and unique, and
    each foreign key not NULL, in its dimension and mostly known. A column checked as
    not NULL twice (a key that is also a foreign key) is checked once."""
    checks = [
        *key_checks(contract.keys),
        *(key_checks(contract.natural_key, kind="natural_key") if contract.natural_key else []),
        *(
            check
            for column, dimension in contract.foreign_keys.items()
            for check in foreign_key_checks(column, dimension)
        ),
    ]
    once: dict[str, Check] = {}
    for check in checks:
        once.setdefault(check.name, check)
    return list(once.values())


def between(
    column: str, low: float | None, high: float | None, *, severity: Severity = CRITICAL, mostly: float = 1.0
) -> Check:
    return Check(
        f"{column}_in_range",
        severity,
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high, mostly=mostly),
    )


def in_set(column: str, values: Sequence[str], *, severity: Severity = CRITICAL) -> Check:
    return Check(
        f"{column}_allowed", severity, gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(values))
    )


def orphan_check(column: str, dimension: str) -> Check:
    return Check(
        f"{column}_in_{dimension}", CRITICAL, gxe.ExpectColumnValuesToBeNull(column=f"_orphan_{column}")
    )


def foreign_key_checks(column: str, dimension: str, *, max_unknown_share: float = 0.01) -> list[Check]:
    """A fact's foreign key: never NULL and always in its dimension (critical: facts
    point unmatched rows to the unknown member -1), and at most ``max_unknown_share``
    of the rows on the unknown member (warning: a lookup is degrading)."""
    return [
        Check(f"{column}_not_null", CRITICAL, gxe.ExpectColumnValuesToNotBeNull(column=column)),
        orphan_check(column, dimension),
        Check(
            f"{column}_mostly_known",
            WARNING,
            gxe.ExpectColumnValuesToNotBeInSet(
                column=column, value_set=[UNKNOWN_SK], mostly=1 - max_unknown_share
            ),
        ),
    ]


def with_orphans(df: DataFrame, references: Mapping[str, DataFrame]) -> DataFrame:
    """Add ``_orphan_<column>``: the value of ``column`` when it is not NULL and absent
    from the dimension's key column of the same name, else NULL. A NULL key is not an
    orphan (``<column>_not_null`` reports those)."""
    for column, dimension in references.items():
        keys = (
            dimension.select(F.col(column).alias("_ref_key")).distinct().withColumn("_ref_found", F.lit(True))
        )
        df = (
            df.join(keys, df[column] == keys["_ref_key"], "left")
            .withColumn(
                f"_orphan_{column}",
                F.when(F.col(column).isNotNull() & F.col("_ref_found").isNull(), F.col(column)),
            )
            .drop("_ref_key", "_ref_found")
        )
    return df


def freshness_check(
    table: str, column: str, key_format: str, default_hours: float, inputs: SuiteInputs
) -> Check:
    """The latest ``column`` (an int key such as yyyymmdd or yyyymmddHH) is no older than
    N hours before the end of the run date."""
    hours = inputs.settings.freshness_hours.get(table, default_hours)
    oldest = inputs.reference_time() - dt.timedelta(hours=hours)
    return Check(
        f"fresh_within_{hours:g}h",
        CRITICAL,
        gxe.ExpectColumnMaxToBeBetween(column=column, min_value=int(oldest.strftime(key_format))),
    )


def volume_band(history: Sequence[int], settings: QualitySettings) -> tuple[int, int | None]:
    """Row-count band from previous runs' counts (newest first): ``[min_ratio, max_ratio]``
    x the median of the last ``volume_history_runs``; with fewer than
    ``volume_min_history`` previous runs only "not empty" (``(1, None)``)."""
    recent = list(history)[: settings.volume_history_runs]
    if len(recent) < settings.volume_min_history:
        return 1, None
    median = statistics.median(recent)
    return max(1, int(median * settings.volume_min_ratio)), int(median * settings.volume_max_ratio + 0.5)


def volume_check(suite: str, inputs: SuiteInputs, *, severity: Severity = CRITICAL) -> Check:
    low, high = volume_band(inputs.row_count_history.get(suite, ()), inputs.settings)
    return Check(ROW_COUNT_CHECK, severity, gxe.ExpectTableRowCountToBeBetween(min_value=low, max_value=high))


def _existing(path: str, table: str) -> str:
    if not delta_exists(path):
        raise FileNotFoundError(f"quality suite of {table}: no Delta table at {path}; build it first")
    return path


@functools.cache
def _datasets() -> dict[str, Dataset]:
    """The datasets of the pipeline whose tables the suites check."""
    from lakehouse.medallion import medallion_graph

    return medallion_graph().datasets


def _lake_path(dataset: str) -> Callable[[Lake], str]:
    relative = _datasets()[dataset].path
    return lambda lake: f"{lake.root}/{relative}"


def _references(foreign_keys: Mapping[str, str]) -> Callable[[DataFrame, SuiteInputs], DataFrame]:
    """Add the ``_orphan_<column>`` columns of the foreign keys (column -> dimension)."""
    paths = {column: _lake_path(dimension) for column, dimension in foreign_keys.items()}

    def prepare(df: DataFrame, inputs: SuiteInputs) -> DataFrame:
        dimensions = {
            column: read_delta(inputs.spark, _existing(path(inputs.lake), f"{column} dimension"))
            for column, path in paths.items()
        }
        return with_orphans(df, dimensions)

    return prepare


def dataset_suite(
    dataset: str, types: Mapping[str, str], checks: Callable[[SuiteInputs], list[Check]]
) -> TableSuite:
    """The suite of a pipeline dataset, named ``<layer>.<table>`` after its path: the
    types of ``types``' columns, its contract's checks, then ``checks``. A dataset with
    foreign keys gets its orphan columns before validation."""
    definition = _datasets()[dataset]
    contract, path = definition.contract, definition.path or ""
    table = re.search(r"table=([^/]+)", path)
    if contract is None or table is None:
        raise ValueError(f"quality suite of {dataset}: it needs a contract and a table= path, got {path!r}")

    def all_checks(inputs: SuiteInputs) -> list[Check]:
        return [*schema_checks(types), *contract_checks(contract), *checks(inputs)]

    name = f"{path.split('/', 1)[0]}.{table.group(1)}"
    if not contract.foreign_keys:
        return TableSuite(name, _lake_path(dataset), all_checks)
    return TableSuite(name, _lake_path(dataset), all_checks, _references(contract.foreign_keys))


# --- the suites ----------------------------------------------------------------------
# Each suite: the Spark types of the columns it knows, then its contract's checks (keys,
# foreign keys), then the value checks below.


def _dim_produit(inputs: SuiteInputs) -> list[Check]:
    return [
        between("unit_cost", 0, None, severity=WARNING),
        between("list_price", 0, None, severity=WARNING),
    ]


def _dim_site(inputs: SuiteInputs) -> list[Check]:
    return [in_set("site_type", ["plant", "distribution_center", "unknown"], severity=WARNING)]


def _dim_machine(inputs: SuiteInputs) -> list[Check]:
    return [between("rated_power_kw", 0, 1000, severity=WARNING)]


def _fact_ventes(inputs: SuiteInputs) -> list[Check]:
    return [
        between("quantity", 1, None),
        between("discount_pct", 0, 100),
        in_set("sales_channel", SALES_CHANNELS, severity=WARNING),
        freshness_check("fact_ventes", "date_key", "%Y%m%d", 48, inputs),
        volume_check("gold.fact_ventes", inputs),
    ]


def _fact_consommation_energie(inputs: SuiteInputs) -> list[Check]:
    return [
        in_set("anomaly_class", ANOMALY_CLASSES),
        between("kwh", 0, 1000),  # a meter cannot run backwards; 1 MWh an hour is no machine of ours
        between("minutes_observed", 1, 60),
        between("temperature_c", -30, 120, severity=WARNING),
        between("vibration_mm_s", 0, 50, severity=WARNING),
        # distribution of the hourly readings: exact aggregates, one pass with the others
        Check(
            "kwh_mean_in_band",
            WARNING,
            gxe.ExpectColumnMeanToBeBetween(column="kwh", min_value=2, max_value=100),
        ),
        Check(
            "kwh_stdev_in_band",
            WARNING,
            gxe.ExpectColumnStdevToBeBetween(column="kwh", min_value=0.1, max_value=80),
        ),
        Check(
            "temperature_mean_in_band",
            WARNING,
            gxe.ExpectColumnMeanToBeBetween(column="temperature_c", min_value=5, max_value=60),
        ),
        freshness_check("fact_consommation_energie", "hour_key", "%Y%m%d%H", 6, inputs),
        volume_check("gold.fact_consommation_energie", inputs),
    ]


def _fact_production(inputs: SuiteInputs) -> list[Check]:
    return [
        between("units_produced", 0, None),
        between("units_rejected", 0, None),
        between("attributed_kwh", 0, None, severity=WARNING),
    ]


def _silver_order_lines(inputs: SuiteInputs) -> list[Check]:
    return [between("quantity", 1, None), volume_check("silver.order_lines", inputs)]


def _silver_iot_readings_hourly(inputs: SuiteInputs) -> list[Check]:
    return [
        between("kwh", 0, 1000),
        between("minutes_observed", 1, 60),
        volume_check("silver.iot_readings_hourly", inputs),
    ]


def _no_value_checks(inputs: SuiteInputs) -> list[Check]:
    return []


SUITES: tuple[TableSuite, ...] = (
    dataset_suite(
        "silver_order_lines",
        {
            "order_id": "StringType",
            "line_number": "IntegerType",
            "order_date": "DateType",
            "product_id": "StringType",
            "quantity": "IntegerType",
        },
        _silver_order_lines,
    ),
    dataset_suite(
        "silver_iot_readings_hourly",
        {
            "machine_id": "StringType",
            "hour_ts": "TimestampType",
            "kwh": "DoubleType",
            "minutes_observed": "LongType",
        },
        _silver_iot_readings_hourly,
    ),
    dataset_suite(
        "dim_produit",
        {
            "product_sk": "LongType",
            "product_id": "StringType",
            "unit_cost": "DecimalType",
            "list_price": "DecimalType",
            "valid_from": "DateType",
            "is_current": "BooleanType",
        },
        _dim_produit,
    ),
    dataset_suite(
        "dim_site", {"site_sk": "LongType", "site_id": "StringType", "site_type": "StringType"}, _dim_site
    ),
    dataset_suite("dim_temps", {"date_key": "IntegerType", "date": "DateType"}, _no_value_checks),
    dataset_suite(
        "dim_machine",
        {"machine_sk": "LongType", "machine_id": "StringType", "rated_power_kw": "DoubleType"},
        _dim_machine,
    ),
    dataset_suite(
        "fact_ventes",
        {
            "order_id": "StringType",
            "line_number": "IntegerType",
            "date_key": "IntegerType",
            "product_sk": "LongType",
            "site_sk": "LongType",
            "quantity": "IntegerType",
            "net_amount": "DecimalType",
            "gross_amount": "DecimalType",
        },
        _fact_ventes,
    ),
    dataset_suite(
        "fact_consommation_energie",
        {
            "machine_sk": "LongType",
            "hour_key": "IntegerType",
            "kwh": "DoubleType",
            "temperature_c": "DoubleType",
            "vibration_mm_s": "DoubleType",
            "anomaly_class": "StringType",
        },
        _fact_consommation_energie,
    ),
    dataset_suite(
        "fact_production",
        {
            "batch_id": "StringType",
            "machine_sk": "LongType",
            "units_produced": "LongType",
            "attributed_kwh": "DoubleType",
        },
        _fact_production,
    ),
)


def select_suites(
    names: Sequence[str] | None = None, *, layers: Sequence[str] | None = None
) -> list[TableSuite]:
    """The suites named (``gold.fact_ventes`` or just ``fact_ventes``) or of the layers;
    all by default. Raises ``KeyError`` naming the known suites for an unknown name."""
    chosen = [s for s in SUITES if layers is None or s.layer in layers]
    if not names:
        return chosen
    by_name = {s.name: s for s in chosen} | {s.table: s for s in chosen}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise KeyError(f"unknown quality suite(s) {unknown}; known: {[s.name for s in chosen]}")
    return [by_name[n] for n in names]
