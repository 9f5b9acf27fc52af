"""Incremental file ingestion, exactly once: the Auto Loader (``cloudFiles``) equivalent.

``read_new_files`` lists a landing folder, keeps the files no earlier batch has read,
records them as batch *N* in a checkpoint and returns their rows as a lazy DataFrame;
the caller writes the rows (stamped ``_batch_id = N``) and then calls ``commit_batch``.

Modules: ``options`` (``FileSource``, ``TextFormat``), ``listing`` (the files as
listed), ``checkpoint`` (batches recorded and committed), ``parsing`` (one file's
bytes to rows; inference), ``schema`` (a batch's schema), ``frames`` (a batch as a
DataFrame), ``batches`` (``read_new_files``, ``commit_batch``) and ``declaration``
(``read_files`` of the definition API, with Auto Loader's option names).

Exactly once, across runs and crashes
    The checkpoint is a folder of small JSON files, each written once and atomically
    (local: temp file then rename; S3: a single PUT)::

        <checkpoint>/metadata.json        the source (path, format) it belongs to
        <checkpoint>/offsets/<N>.json     batch N: files (path, size, mtime), schema, ingested_at
        <checkpoint>/commits/<N>.json     batch N is in the target

    ``offsets/N`` is written *before* the caller writes the data, ``commits/N`` after.
    A batch with offsets but no commit is *pending* (the run crashed in between): the
    next call asks ``target_has_batch(N)`` whether the target holds rows with
    ``_batch_id = N``. If it does, N is marked committed and not read again; if not,
    the same files are read again under the same batch id, schema and ``_ingested_at``
    (a file changed or deleted since is left out of the replay; a changed file is then
    read by the next batch). One writer per checkpoint at a time. Every offsets file
    is read on each call (fine for thousands of batches; there is no compaction).

File identity
    As in Databricks Auto Loader, a file is identified by its path: a file dropped
    again under the same name (a re-export, a re-run of the drop) is not read again.
    With the option ``allowOverwrites=true`` a file whose size or modification time
    changed is read again, in full, by the next batch and listed in
    ``IncrementalBatch.rewritten_files``; its earlier rows stay in the target
    (de-duplicate downstream, e.g. with a CDC flow, if rewrites are corrections).
    Files and folders whose name starts with ``_`` or ``.`` are ignored, as in Spark.

Parsing (CSV, JSON, text)
    Files are read as bytes (``binaryFile``) and parsed in ``mapInPandas``, so any
    encoding works and one bad line never fails the batch (Sail's CSV/JSON readers have
    no PERMISSIVE mode: gap ``no_permissive_text_readers`` of ``lakehouse.engine.compat``):

    - a CSV row whose field count differs from the header, a JSON line that is not a
      JSON object, or a line that cannot be decoded in the declared encoding, becomes a
      row with its raw text in ``_corrupt_record`` and the data columns NULL;
    - a value that does not fit its column's type (``'abc'`` for a ``bigint``) is NULL
      in the column and kept in ``_rescued_data`` as ``{"column": "abc"}``;
    - a column the schema does not know (explicit ``schema`` only) goes to
      ``_rescued_data`` too. Nothing is silently dropped.

    JSON lines with an explicit schema are parsed vectorised by Arrow (``parsing._json_lines_frame``);
    only the lines Arrow refuses go through the line-by-line parser, with the same rows.

    Parquet files are read natively, one read per file (so each row knows its file:
    engines lack ``_metadata``; bound the plan size with ``max_files``), and cast to
    the schema the same way (mismatches and unknown columns rescued).

Schema
    An explicit ``schema`` (DDL) is used as given. Otherwise the first batch infers it:
    CSV columns come from the header and are strings; JSON keys get ``bigint``,
    ``double``, ``boolean`` or ``string`` (nested values and mixed types: ``string``,
    holding the JSON text; integers mixed with decimals: ``double``); Parquet keeps the
    file types. ``schema_hints`` (DDL) force the type of the columns they name (a hinted
    column absent from the files is still added). The schema is stored in each batch's
    offsets file. A column first seen in a later batch is *added* at the end (earlier
    rows: NULL) and reported in ``IncrementalBatch.schema_changes``; a column's type
    never changes once recorded (values that no longer fit are rescued).

Columns of ``IncrementalBatch.df``: the schema's columns, then ``_rescued_data``,
``_corrupt_record`` (names configurable), ``_source_file`` (the path as listed:
absolute, or an ``s3://`` URI), ``_line_number`` (1-based line where the record starts,
header included; NULL for Parquet), ``_ingested_at`` and ``_batch_id``.
"""

from lakehouse.pipelines.autoloader.batches import IncrementalBatch, commit_batch, read_new_files
from lakehouse.pipelines.autoloader.checkpoint import (
    BatchOffsets,
    CheckpointError,
    CheckpointState,
    delta_has_batch,
    load_checkpoint,
    recover,
)
from lakehouse.pipelines.autoloader.declaration import IncrementalFiles, read_files
from lakehouse.pipelines.autoloader.listing import SourceFile, list_source_files
from lakehouse.pipelines.autoloader.options import (
    BATCH_ID,
    INGESTED_AT,
    LINE_NUMBER,
    SOURCE_FILE,
    TEXT_SCHEMA,
    FileSource,
    Format,
    Schema,
    TextFormat,
    text_format,
)
from lakehouse.pipelines.autoloader.parsing import discover_columns, merge_types, parse_file
from lakehouse.pipelines.autoloader.schema import merge_schema, parse_ddl

__all__ = [
    "BATCH_ID",
    "INGESTED_AT",
    "LINE_NUMBER",
    "SOURCE_FILE",
    "TEXT_SCHEMA",
    "BatchOffsets",
    "CheckpointError",
    "CheckpointState",
    "FileSource",
    "Format",
    "IncrementalBatch",
    "IncrementalFiles",
    "Schema",
    "SourceFile",
    "TextFormat",
    "commit_batch",
    "delta_has_batch",
    "discover_columns",
    "list_source_files",
    "load_checkpoint",
    "merge_schema",
    "merge_types",
    "parse_ddl",
    "parse_file",
    "read_files",
    "read_new_files",
    "recover",
    "text_format",
]
