"""Restitution: gold tables out to Tableau (.hyper extracts), a PostgreSQL BI schema
and static HTML dashboards (``lakehouse.bi.tableau``, ``.postgres_bi``, ``.dashboards``).
Every export is driven by the gold tables that exist
(:func:`lakehouse.bi.gold.discover_gold_tables`), so new gold tables flow through.
Kept import-free so that the configuration can load :mod:`lakehouse.bi.settings` cheaply."""
