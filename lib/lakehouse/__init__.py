"""Medallion lakehouse for pharma sales and machine energy data.

Layers mirror the lake: ``lakehouse.bronze``, ``lakehouse.silver``, ``lakehouse.gold``;
``lakehouse.engine`` gives the Spark session, ``lakehouse.config`` the settings.
"""

__version__ = "0.1.0"
