"""Medallion lakehouse for pharma sales and machine energy data.

Layers mirror the lake: ``lakehouse.bronze``, ``lakehouse.silver``, ``lakehouse.gold``;
``lakehouse.engine`` gives the Spark session, ``lakehouse.config`` the settings.

Importing the package composes it, in every process (the command line, a job's child
processes and kernels, a test): ``lakehouse.settings`` adds each layer's section to the
configuration, ``lakehouse.wiring`` registers what job runs need from the rest of the
application (the embedded PostgreSQL up before a run, the audit entry after it).
"""

__version__ = "0.1.0"

import sys as _sys

# jsonschema, under nbformat and Great Expectations, imports its optional IRI format
# checker when it is installed; rfc3987_syntax builds a grammar at import, about a second
# of every task process and kernel, for a format nothing here validates.
_sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from lakehouse import settings, wiring  # noqa: E402, F401  (composition: see the docstring)
