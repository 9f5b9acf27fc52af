"""The model definitions of ``ml/models/`` (MLflow "models from code") and the
estimator files they load.

Each file of ``ml/models/`` defines one ``mlflow.pyfunc.PythonModel`` and ends with
``mlflow.models.set_model(...)``: MLflow logs the file itself, not a pickle of the
object, and the fitted scikit-learn estimator travels beside it as a skops file
(``estimator.skops``, no pickle: loading checks every type it would create) with its
settings as JSON (``model.json``: categories, threshold, ...).

Training (``lakehouse.ml.training``) loads the same files to build the in-memory model
it evaluates, so what is evaluated is what is served.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

MODELS_DIR = Path("ml") / "models"
ESTIMATOR_FILE = "estimator.skops"
SETTINGS_FILE = "model.json"
# What a fitted HistGradientBoosting estimator holds besides plain data: skops asks
# for each such type to be trusted explicitly.
_TRUSTED_PREFIXES = ("sklearn.", "functools.partial", "numpy.")
_loaded: dict[Path, ModuleType] = {}


def code_path(name: str, project_root: Path | None = None) -> Path:
    """``<project_root>/ml/models/<name>.py`` (the project of the configuration by default)."""
    if project_root is None:
        from lakehouse.config import find_project_root

        project_root = find_project_root()
    path = Path(project_root) / MODELS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"model definition {path} does not exist (expected in {MODELS_DIR}/)")
    return path


def load_definition(name: str, project_root: Path | None = None) -> ModuleType:
    """The module of ``ml/models/<name>.py``, imported once per process. Registered to
    be pickled by value, so a model object shipped to engine workers (``mapInPandas``)
    does not need ``ml/`` on their path."""
    path = code_path(name, project_root).resolve()
    if path not in _loaded:
        module_name = f"lakehouse_models.{name}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        pickle_by_value(module)
        _loaded[path] = module
    return _loaded[path]


def pickle_by_value(module: ModuleType) -> None:
    """Let the engine's cloudpickle ship ``module``'s classes with the objects that use them."""
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(module)


def save_estimator(estimator, folder: Path, **settings) -> dict[str, str]:
    """Write the estimator (skops) and its settings (JSON) to ``folder``; returns the
    MLflow ``artifacts`` mapping the model definitions read in ``load_context``."""
    import skops.io

    folder.mkdir(parents=True, exist_ok=True)
    skops.io.dump(estimator, folder / ESTIMATOR_FILE)
    (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True), encoding="utf-8")
    return {"estimator": str(folder / ESTIMATOR_FILE), "settings": str(folder / SETTINGS_FILE)}


def load_estimator(artifacts: dict[str, str]) -> tuple[object, dict]:
    """The estimator and settings written by ``save_estimator``. Refuses a file that
    would create anything but scikit-learn and numpy objects."""
    import skops.io

    path = artifacts["estimator"]
    untrusted = skops.io.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if unexpected:
        raise ValueError(f"{path}: refusing to load types outside scikit-learn and numpy: {unexpected}")
    estimator = skops.io.load(path, trusted=untrusted)
    settings_file = artifacts.get("settings")
    settings = json.loads(Path(settings_file).read_text(encoding="utf-8")) if settings_file else {}
    return estimator, settings


def definition_name(model) -> str:
    """``energy_forecast`` for a model built from ``ml/models/energy_forecast.py``."""
    module = type(model).__module__
    if not module.startswith("lakehouse_models."):
        raise TypeError(f"{type(model).__name__} is not defined in {MODELS_DIR}/ (module {module})")
    return module.removeprefix("lakehouse_models.")
