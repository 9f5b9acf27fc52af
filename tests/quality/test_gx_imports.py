"""lakehouse.quality.gx: Great Expectations imported with scipy.stats and altair deferred
until first used. Each check runs in a fresh interpreter: what a process has imported
is the point."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from lakehouse.quality.gx import DEFERRED, DeferredModule, defer_unused_imports


def _run(code: str) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON object."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_great_expectations_still_imports_them_eagerly() -> None:
    """The gap: GX 1.24 imports scipy.stats and altair at import. When this fails, GX no
    longer does, and lakehouse.quality.gx can go (import GX directly)."""
    loaded = _run(
        """
        import json, sys, types
        import great_expectations
        print(json.dumps({n: type(sys.modules.get(n)) is types.ModuleType for n in ("scipy.stats", "altair")}))
        """
    )
    assert loaded == {"scipy.stats": True, "altair": True}


def test_quality_run_imports_leave_them_deferred_and_first_use_loads_them() -> None:
    state = _run(
        """
        import json, sys
        import lakehouse.quality.run
        before = {n: type(sys.modules[n]).__name__ for n in ("scipy.stats", "altair")}
        from scipy import stats
        import altair
        cdf = stats.norm.cdf(0.0)
        print(json.dumps({
            "before": before,
            "cdf": cdf,
            "altair": isinstance(altair.__version__, str),
            "after": {n: type(sys.modules[n]).__name__ for n in ("scipy.stats", "altair")},
        }))
        """
    )
    assert state == {
        "before": {"scipy.stats": "DeferredModule", "altair": "DeferredModule"},
        "cdf": 0.5,
        "altair": True,
        "after": {"scipy.stats": "module", "altair": "module"},
    }


def test_defer_skips_imported_and_missing_modules() -> None:
    assert DEFERRED == ("scipy.stats", "altair")
    assert defer_unused_imports(("json", "no_such_module_here", "no_such_package.sub")) == []
    assert "no_such_module_here" not in sys.modules


def test_deferred_module_reports_the_real_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.machinery

    spec = importlib.machinery.ModuleSpec("lakehouse_missing_module", None, origin="/nowhere.py")
    stand_in = DeferredModule("lakehouse_missing_module", spec)
    monkeypatch.setitem(sys.modules, "lakehouse_missing_module", stand_in)
    with pytest.raises(ModuleNotFoundError, match="lakehouse_missing_module"):
        stand_in.anything  # noqa: B018
    assert "lakehouse_missing_module" not in sys.modules
