"""Datasets defined in SQL files, as Spark Declarative Pipelines define them::

    CREATE MATERIALIZED VIEW totals (
      CONSTRAINT positive EXPECT (qty > 0) ON VIOLATION DROP ROW
    ) COMMENT 'Quantity per kind' AS
    SELECT kind, sum(qty) AS qty FROM clean_events GROUP BY kind;

    CREATE STREAMING TABLE clean_events AS SELECT * FROM STREAM(raw_events) WHERE id IS NOT NULL;
    CREATE TEMPORARY VIEW recent AS SELECT * FROM totals WHERE qty > 10;

A small hand parser reads the head of each statement (the kind, the name, the
constraints and the clauses before ``AS``); the query after ``AS`` goes to the engine
as it is written, except ``STREAM(x)`` / ``STREAM x`` which become ``x`` (the runner
decides what a streaming table reads of ``x``: its new rows). The datasets a query
reads are the names in its ``FROM`` and ``JOIN`` clauses (common table expressions
and table functions left out), found by the same tokenizer, so the graph is known
without the engine: Spark Connect has no call that parses a query without analysing
it, and analysis needs the tables to exist.

Statements are split on ``;`` outside quotes and comments. Anything else (``CREATE
FLOW``, ``SET``, column lists...) is refused with the file, the line and what to write
instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.pipelines.graph import Action, DatasetKind, Expectation


class SqlError(ValueError):
    """A statement of a SQL file we cannot read; the message names the file and line."""


@dataclass(frozen=True)
class Token:
    kind: str  # word, quoted (a `backquoted` identifier), string, number, punct
    text: str
    start: int
    end: int
    line: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words

    @property
    def name(self) -> str:
        """The identifier it spells (backquotes removed)."""
        return self.text[1:-1].replace("``", "`") if self.kind == "quoted" else self.text


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"\d+(\.\d*)?([eE][+-]?\d+)?[A-Za-z]*|\.\d+([eE][+-]?\d+)?[A-Za-z]*")


def tokenize(text: str, *, first_line: int = 1, where: str = "<sql>") -> list[Token]:
    """Words, quoted identifiers, strings, numbers and punctuation; comments (``--``,
    ``/* */``) and white space dropped."""
    tokens: list[Token] = []
    i, line, n = 0, first_line, len(text)
    while i < n:
        char = text[i]
        if char == "\n":
            line, i = line + 1, i + 1
        elif char.isspace():
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise SqlError(f"{where}:{line}: a /* comment is not closed")
            line += text.count("\n", i, end)
            i = end + 2
        elif char in "'\"`":
            j = i + 1
            while True:
                if j >= n:
                    what = "identifier" if char == "`" else "string"
                    raise SqlError(f"{where}:{line}: a {what} opened with {char} is not closed")
                if text[j] == "\\" and char != "`":
                    j += 2
                elif text[j] == char and text.startswith(char * 2, j):
                    j += 2  # a doubled quote stands for itself
                elif text[j] == char:
                    break
                else:
                    j += 1
            kind = "quoted" if char == "`" else "string"
            tokens.append(Token(kind, text[i : j + 1], i, j + 1, line))
            line += text.count("\n", i, j + 1)
            i = j + 1
        elif match := _WORD.match(text, i):
            tokens.append(Token("word", match.group(), i, match.end(), line))
            i = match.end()
        elif match := _NUMBER.match(text, i):
            tokens.append(Token("number", match.group(), i, match.end(), line))
            i = match.end()
        else:
            tokens.append(Token("punct", char, i, i + 1, line))
            i += 1
    return tokens


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # of its first token
    tokens: list[Token]  # offsets relative to the file


def split_statements(text: str, *, where: str = "<sql>") -> list[Statement]:
    """The statements of a file, split on ``;`` outside quotes and comments."""
    statements, current = [], []
    for token in [*tokenize(text, where=where), None]:
        if token is None or (token.kind == "punct" and token.text == ";"):
            if current:
                statements.append(
                    Statement(text[current[0].start : current[-1].end], current[0].line, current)
                )
            current = []
        else:
            current.append(token)
    return statements


# --------------------------------------------------------------- table references
_CLAUSE_ENDS = frozenset(
    {"WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "UNION", "INTERSECT", "EXCEPT", "WINDOW", "QUALIFY",
     "SELECT", "SORT", "CLUSTER", "DISTRIBUTE", "LATERAL", "PIVOT", "UNPIVOT"}
)  # fmt: skip
_FROM_IN_FUNCTIONS = frozenset({"EXTRACT", "TRIM", "SUBSTRING", "SUBSTR", "POSITION", "OVERLAY"})


@dataclass
class QueryReads:
    names: list[str] = field(default_factory=list)  # tables read, as written (dotted if qualified)
    streams: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, name) of STREAM(x)
    lines: dict[str, int] = field(default_factory=dict)  # name -> line of its first read


def query_reads(tokens: list[Token]) -> QueryReads:
    """The tables a query reads: the names after ``FROM``, ``JOIN`` and the commas of a
    ``FROM`` list (``STREAM(x)`` and ``STREAM x`` included), without the common table
    expressions it defines and the table functions it calls (``range(10)``)."""
    reads = QueryReads()
    ctes = {
        tokens[i].name.lower()
        for i in range(len(tokens) - 2)
        if tokens[i].kind in ("word", "quoted") and tokens[i + 1].is_word("AS") and tokens[i + 2].text == "("
    }
    stack: list[dict[str, Any]] = [{"in_from": False, "opener": None}]
    expect_table = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        frame = stack[-1]
        if token.kind == "punct" and token.text == "(":
            opener = tokens[i - 1].text.upper() if i and tokens[i - 1].kind == "word" else None
            stack.append({"in_from": False, "opener": opener})
            expect_table = False
        elif token.kind == "punct" and token.text == ")":
            if len(stack) > 1:
                stack.pop()
            expect_table = False
        elif token.is_word("FROM", "JOIN"):
            if frame["opener"] in _FROM_IN_FUNCTIONS:  # EXTRACT(YEAR FROM d)
                pass
            else:
                expect_table = True
                frame["in_from"] = frame["in_from"] or token.is_word("FROM")
        elif token.kind == "punct" and token.text == "," and frame["in_from"]:
            expect_table = True
        elif token.kind == "word" and token.text.upper() in _CLAUSE_ENDS:
            frame["in_from"], expect_table = False, False
        elif expect_table and token.kind in ("word", "quoted"):
            expect_table = False
            start = token.start
            if token.is_word("STREAM") and i + 1 < len(tokens):
                following = tokens[i + 1]
                if following.text == "(" and i + 3 < len(tokens) and tokens[i + 3].text == ")":
                    name_token = tokens[i + 2]
                    reads.streams.append((start, tokens[i + 3].end, name_token.text))
                    _add(reads, name_token.name, name_token.line, ctes)
                    i += 4
                    continue
                if following.kind in ("word", "quoted"):
                    reads.streams.append((start, following.start, ""))
                    i += 1
                    token = following
            parts, j = [token.name], i
            while (
                j + 2 < len(tokens) and tokens[j + 1].text == "." and tokens[j + 2].kind in ("word", "quoted")
            ):
                parts.append(tokens[j + 2].name)
                j += 2
            if not (j + 1 < len(tokens) and tokens[j + 1].text == "("):  # not a table function
                _add(reads, ".".join(parts), token.line, ctes)
            i = j
        i += 1
    return reads


def _add(reads: QueryReads, name: str, line: int, ctes: set[str]) -> None:
    if name.lower() in ctes or name in reads.names:
        return
    reads.names.append(name)
    reads.lines[name] = line


def without_stream(query: str, offset: int, streams: list[tuple[int, int, str]]) -> str:
    """The query with ``STREAM(x)`` written ``x`` and ``STREAM x`` written ``x``."""
    pieces, last = [], 0
    for start, end, name in sorted(streams):
        pieces.append(query[last : start - offset])
        pieces.append(name)
        last = end - offset
    pieces.append(query[last:])
    return "".join(pieces)


# ------------------------------------------------------------------- statements
@dataclass
class SqlDataset:
    """One ``CREATE ...`` statement of a SQL file."""

    name: str
    kind: DatasetKind
    query: str  # what the engine runs (STREAM(...) removed)
    reads: list[str]  # the tables the query reads
    file: Path
    line: int
    comment: str | None = None
    partition_cols: tuple[str, ...] = ()
    table_properties: dict[str, str] = field(default_factory=dict)
    expectations: list[Expectation] = field(default_factory=list)
    private: bool = False  # CREATE PRIVATE ...: read by the pipeline only, not published
    # FROM STREAM read_files('path', option => value, ...): (path, options); the query
    # then reads the relation READ_FILES_RELATION, bound to each batch of new files.
    read_files: tuple[str, dict[str, str]] | None = None


_INSTEAD = {
    "FLOW": "write the flow in a Python file with @dp.append_flow(target=...)",
    "VIEW": "use CREATE TEMPORARY VIEW (not stored) or CREATE MATERIALIZED VIEW (stored)",
    "TABLE": "use CREATE STREAMING TABLE (appended) or CREATE MATERIALIZED VIEW (recomputed)",
    "LIVE": "use CREATE MATERIALIZED VIEW or CREATE STREAMING TABLE (the LIVE keyword is the old syntax)",
    "SET": "put the value under configuration: in spark-pipeline.yml "
    "(definitions read it with dp.current().parameters)",
    "USE": "datasets have simple names in the pipeline; remove the USE statement",
    "APPLY": "use dp.create_auto_cdc_flow(...) in a Python file",
    "AUTO": "use dp.create_auto_cdc_flow(...) in a Python file",
}
SUPPORTED = "CREATE MATERIALIZED VIEW, CREATE STREAMING TABLE or CREATE TEMPORARY VIEW ... AS SELECT ..."


def parse_file(path: Path) -> list[SqlDataset]:
    """Every dataset a SQL file defines."""
    text = path.read_text(encoding="utf-8")
    return [_parse_statement(statement, path, text) for statement in split_statements(text, where=str(path))]


def _parse_statement(statement: Statement, path: Path, source: str) -> SqlDataset:
    tokens = statement.tokens
    cursor = _Cursor(tokens, path, source)
    first = cursor.next("a statement")
    if not first.is_word("CREATE"):
        head = first.text.upper()
        hint = _INSTEAD.get(head, f"write {SUPPORTED}")
        raise SqlError(f"{path}:{first.line}: {head} statements are not supported; {hint}")
    if cursor.peek_word("OR"):
        cursor.next()
        cursor.expect_word("REFRESH", "REPLACE")
    private = cursor.peek_word("PRIVATE")
    if private:
        cursor.next()
    kind_token = cursor.next("MATERIALIZED VIEW, STREAMING TABLE or TEMPORARY VIEW")
    second = cursor.peek()
    pair = f"{kind_token.text.upper()} {second.text.upper() if second else ''}".strip()
    kinds = {
        "MATERIALIZED VIEW": DatasetKind.MATERIALIZED_VIEW,
        "STREAMING TABLE": DatasetKind.STREAMING_TABLE,
        "TEMPORARY VIEW": DatasetKind.TEMPORARY_VIEW,
        "TEMP VIEW": DatasetKind.TEMPORARY_VIEW,
    }
    if pair not in kinds:
        first_word = kind_token.text.upper()
        what = pair if first_word in ("MATERIALIZED", "STREAMING", "TEMPORARY", "TEMP") else first_word
        hint = _INSTEAD.get(first_word, f"write {SUPPORTED}")
        raise SqlError(f"{path}:{kind_token.line}: CREATE {what} is not supported; {hint}")
    cursor.next()
    kind = kinds[pair]
    name_token = cursor.next("the dataset's name")
    if name_token.kind not in ("word", "quoted") or not name_token.name.isidentifier():
        raise SqlError(
            f"{path}:{name_token.line}: {name_token.text!r} cannot name a dataset: use a simple "
            "name of letters, digits and '_'"
        )
    if cursor.peek() is not None and cursor.peek().text == ".":
        raise SqlError(
            f"{path}:{name_token.line}: qualified names (catalog.schema.name) are not supported; "
            "name the dataset with a simple name (its table goes under the pipeline's storage)"
        )
    if private and kind == DatasetKind.TEMPORARY_VIEW:
        raise SqlError(
            f"{path}:{kind_token.line}: CREATE PRIVATE {pair}: a temporary view is never stored, so "
            "it is private already; remove PRIVATE"
        )
    dataset = SqlDataset(name_token.name, kind, "", [], path, name_token.line, private=private)
    if cursor.peek() is not None and cursor.peek().text == "(":
        dataset.expectations = _constraints(cursor, path)
    while True:
        token = cursor.next("AS followed by the query")
        if token.is_word("AS"):
            break
        if token.is_word("COMMENT"):
            value = cursor.next("the comment")
            if value.kind != "string":
                raise SqlError(f"{path}:{value.line}: COMMENT takes a quoted string, got {value.text}")
            dataset.comment = _unquote(value.text)
        elif token.is_word("PARTITIONED"):
            cursor.expect_word("BY")
            dataset.partition_cols = tuple(t.name for t in cursor.parenthesised() if t.text != ",")
        elif token.is_word("TBLPROPERTIES"):
            items = [t for t in cursor.parenthesised() if t.text not in (",", "=")]
            if len(items) % 2 or any(t.kind != "string" for t in items):
                raise SqlError(f"{path}:{token.line}: write TBLPROPERTIES ('key' = 'value', ...)")
            dataset.table_properties = {
                _unquote(k.text): _unquote(v.text) for k, v in zip(items[::2], items[1::2], strict=True)
            }
        else:
            raise SqlError(
                f"{path}:{token.line}: {token.text!r} is not supported before AS in CREATE {pair}; "
                "the clauses read are a constraint list, COMMENT, PARTITIONED BY and TBLPROPERTIES"
            )
    query_tokens = tokens[cursor.index :]
    if not query_tokens:
        raise SqlError(f"{path}:{token.line}: AS is not followed by a query")
    offset = query_tokens[0].start
    query = source[offset : tokens[-1].end]
    reads = query_reads(query_tokens)
    if reads.streams and kind != DatasetKind.STREAMING_TABLE:
        raise SqlError(
            f"{path}:{statement.line}: {dataset.name} reads STREAM(...), which only a STREAMING TABLE "
            f"can do; write CREATE STREAMING TABLE {dataset.name} or read the table without STREAM"
        )
    dataset.query = without_stream(query, offset, reads.streams)
    dataset.reads = reads.names
    _read_files_call(dataset, path)
    return dataset


READ_FILES_RELATION = "__read_files"


def _read_files_call(dataset: SqlDataset, path: Path) -> None:
    """``read_files('path', format => 'csv', ...)`` in a streaming table's query: the
    incremental file source (Auto Loader), its call replaced by a relation name."""
    tokens = tokenize(dataset.query, first_line=dataset.line)
    calls = [i for i, t in enumerate(tokens[:-1]) if t.is_word("READ_FILES") and tokens[i + 1].text == "("]
    if not calls:
        return
    line = tokens[calls[0]].line
    if dataset.kind != DatasetKind.STREAMING_TABLE:
        raise SqlError(
            f"{path}:{line}: read_files(...) in CREATE {dataset.kind.value.upper().replace('_', ' ')} "
            f"{dataset.name}: files are read incrementally, by a streaming table; write CREATE "
            f"STREAMING TABLE {dataset.name} AS SELECT ... FROM STREAM read_files(...)"
        )
    if len(calls) > 1 or dataset.reads:
        raise SqlError(
            f"{path}:{line}: {dataset.name} reads read_files(...) with other sources; read the files "
            "into a streaming table of their own and join that table in another dataset"
        )
    start = calls[0]
    depth, end = 0, start + 1
    for end in range(start + 1, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[end].text, 0)
        if depth == 0:
            break
    inner = tokens[start + 2 : end]
    parts: list[list[Token]] = [[]]
    for token in inner:
        if token.text == ",":
            parts.append([])
        else:
            parts[-1].append(token)
    if not parts[0] or len(parts[0]) != 1 or parts[0][0].kind != "string":
        raise SqlError(f"{path}:{line}: read_files takes the folder as its first argument, a quoted string")
    options: dict[str, str] = {}
    for part in parts[1:]:
        texts = [t.text for t in part]
        if len(part) != 4 or texts[1:3] != ["=", ">"] or part[0].kind != "word":
            raise SqlError(
                f"{path}:{line}: read_files options are written name => value, got {' '.join(texts)!r}"
            )
        value = part[3]
        options[part[0].text] = _unquote(value.text) if value.kind == "string" else value.text
    dataset.read_files = (_unquote(parts[0][0].text), options)
    dataset.query = (
        dataset.query[: tokens[start].start] + READ_FILES_RELATION + dataset.query[tokens[end].end :]
    )


def _constraints(cursor: _Cursor, path: Path) -> list[Expectation]:
    """``(CONSTRAINT c EXPECT (predicate) [ON VIOLATION DROP ROW | FAIL UPDATE], ...)``."""
    opening = cursor.next()
    expectations = []
    while True:
        token = cursor.next("CONSTRAINT name EXPECT (predicate)")
        if not token.is_word("CONSTRAINT"):
            raise SqlError(
                f"{path}:{token.line}: only constraints are read in the list after the name "
                f"(CONSTRAINT name EXPECT (predicate) ...), got {token.text!r}; column definitions "
                "are not supported: the columns are the query's"
            )
        rule = cursor.next("the constraint's name")
        cursor.expect_word("EXPECT")
        inner = cursor.parenthesised()
        if not inner:
            raise SqlError(f"{path}:{rule.line}: constraint {rule.name}: EXPECT () has no predicate")
        predicate = cursor.source[inner[0].start : inner[-1].end]
        action = Action.WARN
        if cursor.peek_word("ON"):
            cursor.next()
            cursor.expect_word("VIOLATION")
            what = cursor.expect_word("DROP", "FAIL")
            cursor.expect_word("ROW" if what.is_word("DROP") else "UPDATE")
            action = Action.DROP if what.is_word("DROP") else Action.FAIL
        expectations.append(Expectation(rule.name, predicate, action))
        separator = cursor.next("',' or ')'")
        if separator.text == ")":
            return expectations
        if separator.text != ",":
            raise SqlError(
                f"{path}:{separator.line}: expected ',' or ')' after constraint {rule.name} "
                f"(opened line {opening.line}), got {separator.text!r}; the actions are "
                "ON VIOLATION DROP ROW and ON VIOLATION FAIL UPDATE"
            )


class _Cursor:
    def __init__(self, tokens: list[Token], path: Path, source: str) -> None:
        self.tokens, self.path, self.source, self.index = tokens, path, source, 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def peek_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.is_word(*words)

    def next(self, expected: str = "more") -> Token:
        token = self.peek()
        if token is None:
            line = self.tokens[-1].line if self.tokens else 1
            raise SqlError(f"{self.path}:{line}: the statement ends where {expected} was expected")
        self.index += 1
        return token

    def expect_word(self, *words: str) -> Token:
        token = self.next(" or ".join(words))
        if not token.is_word(*words):
            raise SqlError(f"{self.path}:{token.line}: expected {' or '.join(words)}, got {token.text!r}")
        return token

    def parenthesised(self) -> list[Token]:
        """The tokens between a ``(`` and its ``)``."""
        opening = self.next("(")
        if opening.text != "(":
            raise SqlError(f"{self.path}:{opening.line}: expected '(', got {opening.text!r}")
        depth, inner = 1, []
        while True:
            token = self.next("')'")
            depth += {"(": 1, ")": -1}.get(token.text, 0) if token.kind == "punct" else 0
            if depth == 0:
                return inner
            inner.append(token)


def _unquote(text: str) -> str:
    quote = text[0]
    body = text[1:-1].replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


# ------------------------------------------------------------------- execution
class SqlQuery:
    """A SQL dataset's flow function: its query on the running pipeline's session, the
    tables it reads bound to the frames the runner gives (``WITH RELATIONS`` of Spark
    Connect: the name in the query is the name of a relation sent with it)."""

    def __init__(self, dataset: SqlDataset) -> None:
        self.dataset = dataset
        self.__name__ = dataset.name
        self.__qualname__ = dataset.name
        self.__module__ = f"sql:{dataset.file}"
        self.__doc__ = dataset.comment

    def __call__(self, **frames: Any) -> Any:
        from lakehouse.pipelines.reads import sql_frame
        from lakehouse.pipelines.runner import current

        spark = current().spark
        if self.dataset.read_files is not None:
            from lakehouse.pipelines.api import read_files

            folder, options = self.dataset.read_files
            query = self.dataset.query
            return read_files(folder, **options).transform(
                lambda batch: sql_frame(spark, query, {READ_FILES_RELATION: batch})
            )
        return sql_frame(spark, self.dataset.query, frames)

    def __repr__(self) -> str:
        return f"SqlQuery({self.dataset.name!r} from {self.dataset.file}:{self.dataset.line})"
