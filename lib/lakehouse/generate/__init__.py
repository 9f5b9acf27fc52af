"""Deterministic synthetic data for every source of the lakehouse.

Same (seed, scale, days, run_date) -> byte-identical files. Public API:

- :func:`generate_all` writes the landing files, the ground truth and (optionally)
  the PostgreSQL referential, and returns a :class:`GenerationReport`;
- :data:`generate_command` is the ``generate`` click command.

See :mod:`lakehouse.generate.pipeline` for the file layout and
:mod:`lakehouse.generate.defects` for the injected defects and their rates.
"""

from lakehouse.generate.cli import generate_command
from lakehouse.generate.params import GenerationError, GenerationParams
from lakehouse.generate.pipeline import STEPS, generate_all
from lakehouse.generate.report import EntityStats, GenerationReport

__all__ = [
    "STEPS",
    "EntityStats",
    "GenerationError",
    "GenerationParams",
    "GenerationReport",
    "generate_all",
    "generate_command",
]
