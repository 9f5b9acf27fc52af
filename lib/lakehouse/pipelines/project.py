"""A pipeline project of its own: a ``spark-pipeline.yml`` and its definition files.

The spec file follows Spark Declarative Pipelines' format::

    name: sales                       # the pipeline's name (event log, checkpoints, paths)
    storage: ./storage                # the lake root: tables, checkpoints, event log
    libraries:                        # the files defining its datasets
      - glob:
          include: transformations/**
    configuration:                    # key/values the definitions read
      source_system: erp              #   dp.current().parameters["source_system"]

``storage`` is a folder (relative to the spec file's folder), ``file:///...`` or
``s3://bucket/prefix``. Library files are Python files (``.py``) registering datasets
with ``lakehouse.pipelines`` decorators, each one imported by path on every load into
the pipeline's graph (so a project needs no package and no install), and SQL files
(``.sql``) of ``CREATE MATERIALIZED VIEW / STREAMING TABLE / TEMPORARY VIEW``
statements (:mod:`lakehouse.pipelines.sql`). Definitions may read each other by
parameter name or by table name (``spark.read.table("x")``, ``FROM x``).

``lakehouse pipeline init NAME`` writes a project; ``lakehouse pipeline run`` (and
``dry-run``, ``events``, ``lineage``) find the spec in the current folder or its parents.
"""

from __future__ import annotations

import datetime as dt
import glob
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lakehouse.pipelines.api import graph as collect_graph
from lakehouse.pipelines.graph import GraphError, PipelineGraph

SPEC_FILES = ("spark-pipeline.yml", "spark-pipeline.yaml")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class SpecError(ValueError):
    """The pipeline spec or one of its library files is invalid; the message names the
    file, the key and what is expected."""


class GlobLibrary(BaseModel):
    include: str = Field(min_length=1)

    model_config = ConfigDict(extra="forbid")


class Library(BaseModel):
    glob: GlobLibrary

    model_config = ConfigDict(extra="forbid")


class PipelineSpec(BaseModel):
    """The content of ``spark-pipeline.yml``."""

    name: str
    storage: str = Field(min_length=1)
    libraries: list[Library] = Field(min_length=1)
    configuration: dict[str, str] = {}

    model_config = ConfigDict(extra="forbid")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "must start with a letter or '_' and hold only letters, digits, '_' and '-' "
                f"(it names folders of the storage), got {value!r}"
            )
        return value

    @field_validator("configuration", mode="before")
    @classmethod
    def _scalars_as_strings(cls, value: Any) -> Any:
        """Values are strings (as in ``spark.conf``); numbers and booleans are taken
        as written in YAML."""
        if isinstance(value, dict):
            converted = {}
            for key, item in value.items():
                if isinstance(item, bool):
                    item = str(item).lower()
                elif isinstance(item, int | float | dt.date):
                    item = str(item)
                converted[str(key)] = item
            return converted
        return value


@dataclass(frozen=True)
class PipelineProject:
    """A loaded spec: its file, its folder and where its lake is."""

    spec_file: Path
    spec: PipelineSpec

    @property
    def folder(self) -> Path:
        return self.spec_file.parent

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def storage(self) -> str:
        """The lake root: an absolute local path or a remote URI (``s3://...``)."""
        storage = self.spec.storage
        if storage.startswith("file://"):
            storage = storage.removeprefix("file://")
        elif "://" in storage:
            return storage.rstrip("/")
        path = Path(storage).expanduser()
        return str(path if path.is_absolute() else (self.folder / path).resolve())

    def library_files(self) -> list[Path]:
        """The Python and SQL files the ``libraries`` globs match, in a stable order."""
        files: list[Path] = []
        for index, library in enumerate(self.spec.libraries):
            pattern = library.glob.include
            matched = sorted(
                Path(p)
                for p in glob.glob(str(self.folder / pattern), recursive=True)
                if Path(p).is_file() and "__pycache__" not in Path(p).parts
            )
            if not matched:
                raise SpecError(
                    f"{self.spec_file}: libraries[{index}].glob.include {pattern!r} matches no file "
                    f"under {self.folder}"
                )
            for path in matched:
                if path.suffix not in (".py", ".sql"):
                    raise SpecError(
                        f"{path}: matched by libraries[{index}].glob.include {pattern!r}, but only "
                        "Python (.py) and SQL (.sql) files can define datasets; narrow the glob (e.g. "
                        f"'{pattern.rstrip('*').rstrip('/')}/**/*.py')"
                    )
                if path not in files:
                    files.append(path)
        return files

    def load_graph(self) -> PipelineGraph:
        """The pipeline's graph: every library file read fresh each time (so edited
        files are read again), its definitions collected into one graph. Python files
        calling ``SparkSession.active()`` when imported need a session started first
        (:meth:`runner` does it)."""
        files = self.library_files()
        with collect_graph(self.name, named_reads=True) as collected:
            for path in files:
                if path.suffix == ".sql":
                    _add_sql_file(collected, path)
                else:
                    _import_file(path, self._module_name(path))
        return collected

    def parameters(self, run_date: str | dt.date | None = None) -> dict[str, Any]:
        """What definitions see in ``dp.current().parameters``: the configuration, and
        ``run_date`` (the argument, else ``configuration.run_date``, else today)."""
        chosen = run_date or self.spec.configuration.get("run_date") or dt.date.today()
        if isinstance(chosen, str):
            try:
                chosen = dt.date.fromisoformat(chosen)
            except ValueError:
                raise SpecError(f"run_date must be YYYY-MM-DD, got {chosen!r}") from None
        return {**self.spec.configuration, "run_date": chosen}

    def settings(self) -> Any:
        """The lakehouse settings the pipeline runs with (engine, parallel flows...):
        those of the lakehouse project holding the spec file if there is one
        (``conf/base/lakehouse.yaml`` above it, or ``LAKEHOUSE_HOME``), the defaults
        otherwise; ``LAKEHOUSE_*`` variables apply in both cases. The lake root is
        ``storage``."""
        from lakehouse.config import ConfigError, find_project_root, load_settings

        try:
            root = find_project_root(self.folder)
        except ConfigError:
            root = self.folder
        return load_settings(project_root=root, lake_root=self.storage)

    def runner(self, *, run_date: str | dt.date | None = None, settings: Any = None) -> Any:
        """A :class:`~lakehouse.pipelines.runner.PipelineRunner` of this pipeline on the
        configured engine, its lake at ``storage``."""
        from lakehouse.engine import get_spark
        from lakehouse.lake import Lake
        from lakehouse.pipelines.runner import PipelineRunner

        parameters = self.parameters(run_date)
        settings = settings or self.settings()
        spark = get_spark(settings, app_name=f"pipeline-{self.name}")  # active while files load
        graph = self.load_graph()
        return PipelineRunner(
            spark,
            graph,
            Lake(self.storage),
            parameters=parameters,
            parallelism=settings.pipelines.parallel_flows,
        )

    def _module_name(self, path: Path) -> str:
        relative = path.relative_to(self.folder) if path.is_relative_to(self.folder) else Path(path.name)
        parts = [re.sub(r"\W", "_", part) for part in relative.with_suffix("").parts]
        return ".".join(["lakehouse_pipeline_project", re.sub(r"\W", "_", self.name), *parts])


def _add_sql_file(graph: PipelineGraph, path: Path) -> None:
    """The datasets of one SQL file, each with one flow running its query."""
    from lakehouse.pipelines.graph import Dataset, DatasetKind, Flow, FlowKind
    from lakehouse.pipelines.sql import SqlError, SqlQuery, parse_file

    try:
        datasets = parse_file(path)
    except SqlError as exc:
        raise SpecError(str(exc)) from exc
    flow_kinds = {
        DatasetKind.STREAMING_TABLE: FlowKind.APPEND,
        DatasetKind.MATERIALIZED_VIEW: FlowKind.COMPLETE,
        DatasetKind.TEMPORARY_VIEW: FlowKind.VIEW,
    }
    for dataset in datasets:
        try:
            graph.add_dataset(
                Dataset(
                    name=dataset.name,
                    kind=dataset.kind,
                    comment=dataset.comment,
                    partition_cols=dataset.partition_cols,
                    table_properties=dataset.table_properties,
                    expectations=list(dataset.expectations),
                    private=dataset.private,
                )
            )
            graph.add_flow(
                Flow(
                    name=dataset.name,
                    target=dataset.name,
                    kind=flow_kinds[dataset.kind],
                    function=SqlQuery(dataset),
                    inputs=tuple(name for name in dataset.reads if "." not in name),
                )
            )
        except GraphError as exc:
            raise SpecError(f"{path}:{dataset.line}: {exc}") from exc


def _import_file(path: Path, module_name: str) -> None:
    """Run one definition file as a module. It is in ``sys.modules`` only while it runs:
    afterwards its functions are pickled by value (UDFs reach any engine), and the
    next load reads the file again."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except GraphError as exc:
        raise SpecError(f"{path}: {exc}") from exc
    except Exception as exc:
        raise SpecError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(module_name, None)


def find_spec_file(start: Path | None = None) -> Path | None:
    """``spark-pipeline.yml`` (or ``.yaml``) in ``start`` (default: the cwd) or the
    nearest of its parents; ``None`` if there is none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in SPEC_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def load_project(spec_file: str | Path) -> PipelineProject:
    """Read and validate a spec file (a folder: its ``spark-pipeline.yml``)."""
    path = Path(spec_file).expanduser().resolve()
    if path.is_dir():
        found = next((path / n for n in SPEC_FILES if (path / n).is_file()), None)
        if found is None:
            raise SpecError(f"{path} holds no {' or '.join(SPEC_FILES)}")
        path = found
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(content, dict):
        raise SpecError(
            f"{path}: expected a mapping with the keys name, storage, libraries and configuration, "
            f"got {type(content).__name__}"
        )
    try:
        spec = PipelineSpec.model_validate(content)
    except ValidationError as exc:
        raise SpecError(f"{path} is invalid:\n" + "\n".join(_describe(e) for e in exc.errors())) from None
    return PipelineProject(path, spec)


_EXPECTED = {
    "name": "the pipeline's name, e.g. name: sales",
    "storage": "the lake root: a folder (relative to this file), file:///... or s3://bucket/prefix",
    "libraries": "a list of entries like  - glob: {include: transformations/**}",
    "configuration": "a mapping of keys to string values",
}


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    top = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        known = ", ".join(_EXPECTED) if len(error["loc"]) == 1 else "the keys shown in the docs"
        return f"- {location}: unknown key (expected {known})"
    hint = f" (expected {_EXPECTED[top]})" if top in _EXPECTED else ""
    return f"- {location}: {error['msg']}{hint}"


# ------------------------------------------------------------------ scaffolding
SPEC_TEMPLATE = """\
# A declarative pipeline (lakehouse.pipelines), in the format of Spark Declarative
# Pipelines' spark-pipeline.yml. Run it from this folder: lakehouse pipeline run
name: {name}
# The lake root: tables, checkpoints and the event log (_system/event_log).
# A folder relative to this file, file:///absolute/path or s3://bucket/prefix.
storage: ./storage
# The Python and SQL files defining the datasets.
libraries:
  - glob:
      include: transformations/**
# Key/values for the definitions: dp.current().parameters["source_system"]
configuration:
  source_system: example
"""

EXAMPLE_TEMPLATE = '''\
"""An example dataset: a materialized view over a small inline DataFrame.

Run `lakehouse pipeline run`, then `lakehouse pipeline events`: the row with a
quantity of 0 is dropped by the expectation. Run again: nothing changed, so the
view is SKIPPED.
"""

from pyspark.sql import functions as F

from lakehouse import pipelines as dp


@dp.materialized_view
@dp.expect_or_drop("positive_quantity", "quantity > 0")
def example_orders():
    """Orders of the example (one row per order)."""
    context = dp.current()
    rows = [(1, "aspirin", 3), (2, "ibuprofen", 0), (3, "paracetamol", 5)]
    return context.spark.createDataFrame(rows, "order_id int, product string, quantity int").withColumn(
        "source_system", F.lit(context.parameters["source_system"])
    )
'''


def init_project(folder: str | Path) -> Path:
    """Write a new project in ``folder`` (created; must not hold a spec yet): the spec
    file and one example dataset. Returns the spec file."""
    target = Path(folder).expanduser().resolve()
    name = target.name
    if not _NAME.match(name):
        raise SpecError(
            f"{name!r} cannot name a pipeline: start with a letter or '_' and use only "
            "letters, digits, '_' and '-'"
        )
    if target.exists() and any(target.iterdir()):
        raise SpecError(f"{target} already exists and is not empty; choose a new folder")
    (target / "transformations").mkdir(parents=True, exist_ok=True)
    spec_file = target / SPEC_FILES[0]
    spec_file.write_text(SPEC_TEMPLATE.format(name=name), encoding="utf-8")
    (target / "transformations" / "example_orders.py").write_text(EXAMPLE_TEMPLATE, encoding="utf-8")
    return spec_file
