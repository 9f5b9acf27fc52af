"""Great Expectations, imported without the modules our suites never use.

Import GX through this module (``from lakehouse.quality.gx import gx, gxe``), not
directly. Gap: ``import great_expectations`` (1.24.1) imports ``scipy.stats`` and
``altair`` at once, for the KL-divergence expectation and the KS-test metrics
(``expect_column_kl_divergence_to_be_less_than``,
``column_*_ks_test_p_value``). No suite of ours uses them and no Data Docs page we
render draws with them, yet they are about a third of the import: 1.3-3 s of every
quality process on a loaded 2-core machine (``python -X importtime``, scipy 1.16,
altair 6.3). Before GX is imported, :func:`defer_unused_imports` puts a stand-in for
each in ``sys.modules``: ``import altair`` and ``from scipy import stats`` bind the
stand-in, and its first attribute read imports the real module and answers from it,
so code that does use them still works, only later.

Remove this module (import GX directly again) when
``tests/quality/test_gx_imports.py::test_great_expectations_still_imports_them_eagerly``
fails: GX then no longer imports them at import time.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

DEFERRED = ("scipy.stats", "altair")


class DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is read."""

    def __init__(self, name: str, spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(name)
        # what the import system and inspect read of a module in sys.modules: no load
        self.__spec__ = spec
        self.__file__ = spec.origin
        self.__dict__["_real_module"] = None

    def __getattr__(self, attribute: str) -> Any:  # only for what the stand-in does not hold
        return getattr(self.load(), attribute)

    def __dir__(self) -> list[str]:
        return dir(self.load())

    def load(self) -> types.ModuleType:
        """The real module, imported on the first call."""
        real = self.__dict__["_real_module"]
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__["_real_module"] = real
        return real


def defer_unused_imports(names: tuple[str, ...] = DEFERRED) -> list[str]:
    """Put a :class:`DeferredModule` in ``sys.modules`` for each of ``names`` not imported
    yet and installed; return the names deferred. Finding a submodule's spec reads its
    package's location without importing the package."""
    deferred = []
    for name in names:
        if name in sys.modules:
            continue
        spec = _find_spec_without_import(name)
        if spec is None:
            continue
        sys.modules[name] = DeferredModule(name, spec)
        deferred.append(name)
    return deferred


def _find_spec_without_import(name: str) -> importlib.machinery.ModuleSpec | None:
    parent, _, _child = name.rpartition(".")
    if not parent:
        return importlib.machinery.PathFinder.find_spec(name)
    parent_spec = _find_spec_without_import(parent)
    if parent_spec is None or parent_spec.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(name, list(parent_spec.submodule_search_locations))


defer_unused_imports()

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402

__all__ = ["DEFERRED", "DeferredModule", "defer_unused_imports", "gx", "gxe"]
