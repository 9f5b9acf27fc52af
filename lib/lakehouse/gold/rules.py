"""Business rules of the architecture document, one named Column function each.

Money is DECIMAL end to end (never float) and rounded half-up to the cent only in
the stored amounts, so totals computed from facts match the ERP to the cent.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

MONEY = "decimal(18,2)"


def gross_amount(quantity: Column, unit_price: Column) -> Column:
    """Quantity x list unit price, before discount."""
    return F.round(quantity * unit_price, 2).cast(MONEY)


def discount_amount(quantity: Column, unit_price: Column, discount_pct: Column) -> Column:
    return F.round(quantity * unit_price * discount_pct / F.lit(100), 2).cast(MONEY)


def net_amount(quantity: Column, unit_price: Column, discount_pct: Column) -> Column:
    """Gross minus discount, each rounded to the cent first (as the invoice does)."""
    return (gross_amount(quantity, unit_price) - discount_amount(quantity, unit_price, discount_pct)).cast(
        MONEY
    )


def cost_amount(quantity: Column, unit_cost_at_order_date: Column) -> Column:
    """Quantity x unit cost valid at the order date (not today's cost)."""
    return F.round(quantity * unit_cost_at_order_date, 2).cast(MONEY)


def margin_amount(net: Column, cost: Column) -> Column:
    return (net - cost).cast(MONEY)


def margin_rate(margin: Column, net: Column) -> Column:
    """Margin over net revenue, NULL when there is no revenue (not a division error)."""
    return F.when(net != 0, F.round(margin / net, 4)).cast("decimal(9,4)")
