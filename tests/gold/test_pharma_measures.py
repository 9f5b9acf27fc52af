from decimal import Decimal

from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.gold.pharma_measures import cost_amount, is_otif, margin_amount, margin_rate, net_amount, share


def test_margin_uses_cent_rounded_amounts_and_handles_nulls_and_zero_revenue(spark):
    lines = spark.createDataFrame(
        [
            (3, Decimal("10.5000"), Decimal("5.00"), Decimal("6.1234")),
            (1, Decimal("1.9990"), Decimal("12.50"), Decimal("1.0000")),
            (2, Decimal("0.0000"), Decimal("0.00"), Decimal("1.0000")),
            (1, Decimal("4.0000"), Decimal("0.00"), None),  # no cost known
        ],
        "qty int, price decimal(12,4), discount decimal(5,2), cost decimal(12,4)",
    )
    q, p, d, c = F.col("qty"), F.col("price"), F.col("discount"), F.col("cost")
    actual = (
        lines.select(net_amount(q, p, d).alias("net"), cost_amount(q, c).alias("cost"))
        .withColumn("margin", margin_amount(F.col("net"), F.col("cost")))
        .withColumn("rate", margin_rate(F.col("margin"), F.col("net")))
    )
    # 3 x 10.50 = 31.50, discount 1.575 -> 1.58, net 29.92; cost 18.3702 -> 18.37
    # 1.999 -> 2.00, discount 0.249875 -> 0.25, net 1.75; cost 1.00
    expected = spark.createDataFrame(
        [
            (Decimal("29.92"), Decimal("18.37"), Decimal("11.55"), Decimal("0.3860")),
            (Decimal("1.75"), Decimal("1.00"), Decimal("0.75"), Decimal("0.4286")),
            (Decimal("0.00"), Decimal("2.00"), Decimal("-2.00"), None),
            (Decimal("4.00"), None, None, None),
        ],
        "net decimal(18,2), cost decimal(18,2), margin decimal(18,2), rate decimal(9,4)",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)


def test_share_rounds_to_4_decimals_and_is_null_without_a_total_and_otif_null_while_pending(spark):
    df = spark.createDataFrame(
        [(1, 3, True, True), (2, 3, True, False), (0, 0, None, None), (5, None, False, None)],
        "part long, total long, on_time boolean, complete boolean",
    )
    actual = df.select(
        share(F.col("part"), F.col("total")).alias("rate"),
        is_otif(F.col("on_time"), F.col("complete")).alias("otif"),
    )
    expected = spark.createDataFrame(
        [(Decimal("0.3333"), True), (Decimal("0.6667"), False), (None, None), (None, False)],
        "rate decimal(9,4), otif boolean",
    )
    assert_df_equality(actual, expected, ignore_nullable=True)
