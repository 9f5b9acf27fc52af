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


def share(part: Column, total: Column) -> Column:
    """``part / total`` rounded half-up to 4 decimals, NULL when ``total`` is 0 or NULL."""
    return F.when(total != 0, F.round(part / total, 4)).cast("decimal(9,4)")


def is_out_of_stock(quantity_on_hand: Column) -> Column:
    """Stock-out: nothing on hand (exactly 0)."""
    return quantity_on_hand == 0


def is_below_safety_stock(quantity_on_hand: Column, safety_stock: Column) -> Column:
    """Strictly below the safety stock (a stock-out is below it too; exactly at it is not)."""
    return quantity_on_hand < safety_stock


def is_otif(is_on_time: Column, is_complete: Column) -> Column:
    """On time and in full; NULL while not delivered (both inputs NULL)."""
    return is_on_time & is_complete
