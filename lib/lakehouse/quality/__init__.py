"""Data quality of the lakehouse tables with Great Expectations 1.x.

Suites per layer and table (:mod:`lakehouse.quality.suites`), validation and Data Docs
(:mod:`lakehouse.quality.validate`), the results table and the gate
(:mod:`lakehouse.quality.results`), the summary page (:mod:`lakehouse.quality.report`)
and one entry point (:func:`lakehouse.quality.run.run_quality`). Nothing here imports
Great Expectations at package import (it takes seconds): import the sub-modules.
"""
