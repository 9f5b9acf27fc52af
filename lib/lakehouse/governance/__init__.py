"""Governance of the lake: audit trail, catalog, pseudonymisation and erasure.

``lakehouse.governance.audit`` is imported by other parts of the project (the job
runner, the API): keep this package's import cheap (no Spark, no pipeline graph).
"""
