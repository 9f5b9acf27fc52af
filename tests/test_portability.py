"""The same library transformations give the same rows on classic JVM Spark as on
the embedded engine: the pipeline code is engine-neutral PySpark (Delta aside)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import pickle
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from lakehouse.gold.dimensions import build_dim_produit, build_dim_temps
from lakehouse.gold.pharma_kpis import build_kpi_marge_journaliere
from lakehouse.gold.pharma_star import build_fact_ventes
from lakehouse.pipelines import expectations as ex
from lakehouse.pipelines.graph import Action, Expectation
from lakehouse.silver.pharma import LATEST_VERSION_RULE, ORDER_LINE_RULES, prepare_order_lines

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("classic_spark")]
PROJECT_ROOT = Path(__file__).resolve().parents[1]

BRONZE_SCHEMA = (
    "order_id string, line_number string, order_date string, customer_id string, product_id string, "
    "product_label string, site_id string, quantity string, unit_price string, discount_pct string, "
    "sales_channel string, _rescued_data string, _corrupt_record string, _source_file string, "
    "_line_number int, _ingested_at timestamp"
)
T1, T2 = dt.datetime(2026, 11, 1, 6), dt.datetime(2026, 11, 2, 6)
BRONZE = [
    ("O1", "1", "01/11/2026", "C1", "P1", "L", "S01", "2", "10,50", "5", None, None, None, "f1", 2, T1),
    ("O1", "1", "01/11/2026", "C1", "P1", "L", "S01", "3", "10,50", "5", None, None, None, "f2", 2, T2),
    ("O2", "1", "02/11/2026", "C1", "P9", "L", "S01", "1", "4,00", "0", None, None, None, "f1", 3, T1),
    ("O3", "1", "31/02/2026", "C1", "P1", "L", "S02", "-4", "4,00", "0", None, None, None, "f1", 4, T1),
    (None, None, None, None, None, None, None, None, None, None, None, None, "O4;oops", "f1", 5, T1),
    ("O5", "2", "03/11/2026", "C2", "P2", "L", "S02", "1", "1,999", "12,5", "direct", None, None, "f1", 6, T1),
]
PRODUCTS = [
    ("P1", "3400930000001", "Doliprane", "N02BE01", "N", "cp", True),
    ("P2", "3400930000002", "Spasfon", "A03AX12", "A", "cp", True),
]
PRICES = [
    ("P1", dt.date(2026, 1, 1), dt.date(2026, 11, 2), Decimal("6.0000"), Decimal("10.5000")),
    ("P1", dt.date(2026, 11, 2), None, Decimal("7.0000"), Decimal("10.5000")),
    ("P2", dt.date(2026, 1, 1), None, Decimal("1.0000"), Decimal("2.0000")),
]


def _classic_session():
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("portability")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )


def print_classic_results() -> None:
    """Run in a child process: a Connect session in the same process turns PySpark's
    builder into Connect mode, so classic Spark gets a fresh interpreter."""
    session = _classic_session()
    print(base64.b64encode(pickle.dumps(_star(session))).decode())
    session.stop()


def _classic_results() -> dict:
    code = "from tests.test_portability import print_classic_results; print_classic_results()"
    # A Connect session marks the environment (SPARK_CONNECT_MODE_ENABLED): not for the child.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_REMOTE", "SPARK_CONNECT"))}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return pickle.loads(base64.b64decode(done.stdout.strip().splitlines()[-1]))


def _star(session):
    bronze = session.createDataFrame(BRONZE, BRONZE_SCHEMA)
    products = session.createDataFrame(
        PRODUCTS,
        "product_id string, cip13 string, name string, atc_code string, atc_class string, "
        "dosage_form string, is_active boolean",
    )
    prices = session.createDataFrame(
        PRICES,
        "product_id string, valid_from date, valid_to date, unit_cost decimal(12,4), list_price decimal(12,4)",
    )
    rules = [Expectation(n, p, Action.DROP) for n, p in {**ORDER_LINE_RULES, **LATEST_VERSION_RULE}.items()]
    flagged = ex.flag(prepare_order_lines(bronze, products), rules)
    _, counts = ex.count(flagged, rules)
    kept, dropped = ex.split(flagged, rules)
    silver = kept.drop(*[c for c in kept.columns if c.startswith("_check_")])
    dim = build_dim_produit(products, prices)
    fact = build_fact_ventes(silver, dim)
    return {
        "expectation_counts": counts,
        "quarantine": sorted((r._line_number, tuple(r._rejection_reasons)) for r in dropped.collect()),
        "fact_ventes": sorted(map(tuple, fact.collect()), key=str),
        "kpi": sorted(map(tuple, build_kpi_marge_journaliere(fact).collect()), key=str),
        "dim_temps": sorted(map(tuple, build_dim_temps(session, dt.date(2026, 1, 1), dt.date(2026, 12, 31)).collect())),
    }


def test_silver_and_gold_give_identical_rows_on_classic_spark_and_the_embedded_engine(spark):
    embedded, jvm = _star(spark), _classic_results()
    assert embedded["quarantine"][:3] == [
        (2, ("latest_version_of_line",)),
        (3, ("known_product",)),
        (4, ("valid_order_date", "positive_quantity")),
    ]
    for part in ("expectation_counts", "quarantine", "fact_ventes", "kpi", "dim_temps"):
        assert embedded[part] == jvm[part], part
    assert len(embedded["fact_ventes"]) == 2 and len(embedded["dim_temps"]) == 365
