"""Reading a dataset file and its schema: the I/O shell around `mpc_ledger.jobs.datasets`.

Theory of operation: a reader turns a file (CSV or Parquet) into typed rows
in schema order; `fingerprint_file` folds them into a `Fingerprint`. The
same values give the same fingerprint from either format because the
encoding (see `datasets`) sees typed values, never text.

CSV rules (the only place text becomes values):

* UTF-8 (a byte-order mark is skipped); the first row is the header, with
  exactly the schema's column names, in any order (``read_rows(...,
  extra_columns=True)``, which `mpc-ledger model predict` uses: at least them;
  other columns are skipped).
* An empty field is null (so a string column cannot hold the empty string
  in a CSV file); a null in a column that is not nullable is an error.
* int64: an optional sign and decimal digits. float64: a decimal number,
  with optional exponent, or ``inf``/``nan`` (any case). bool: ``true``,
  ``false``, ``1`` or ``0`` (any case). No surrounding spaces anywhere.

Parquet columns must have a matching type: integers for int64 (unsigned
values above the int64 range are refused), floats or integers for float64,
strings for string, booleans for bool.

Every problem names the file, the line (CSV) or row (Parquet, counted from
1) and the column. Up to `REPORTED_PROBLEMS_MAX` are reported at once.

A `DataFileError` renders two ways. Its message (``str``) is for this
machine's operator: it names the file and may quote the offending cell or a
header name. Its `DataFileError.record_reason` names only the line or row,
the column and the kind of problem: no value, no path. That is the only form
that may reach a ledger record, a peer or a log (a job that fails on its
data aborts with it), because a cell may hold anything, a name included.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mpc_ledger.errors import ConfigError, UserError
from mpc_ledger.jobs._toml import read_toml
from mpc_ledger.jobs.datasets import (
    COLUMN_TYPES,
    INT64_MAX,
    INT64_MIN,
    Column,
    DatasetSchema,
    Fingerprint,
    FingerprintBuilder,
    Value,
    schema_problems,
)

__all__ = [
    "FILE_FORMATS",
    "REPORTED_PROBLEMS_MAX",
    "DataFileError",
    "DataProblem",
    "file_format",
    "fingerprint_file",
    "load_schema",
    "parse_columns",
    "read_rows",
    "schema_from_document",
]

FILE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
REPORTED_PROBLEMS_MAX = 20
_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(
    r"^[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$",
    re.IGNORECASE,
)
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_SCHEMA_KEYS = ("columns", "id_column", "label_column")
_COLUMN_KEYS = ("name", "type", "nullable")


_QUOTED_MAX_CHARS = 60  # of a cell quoted to the operator


@dataclasses.dataclass(frozen=True)
class DataProblem:
    """One problem of a data file: ``where`` (line or row, column) and ``reason`` never hold
    a value or a path; ``detail`` (the operator's wording) may quote the cell."""

    where: str
    reason: str
    detail: str = ""

    def render(self, *, local: bool) -> str:
        text = (self.detail or self.reason) if local else self.reason
        return f"{self.where}: {text}" if self.where else text


class DataFileError(UserError):
    """A dataset file (or its schema) does not hold what its schema says.

    ``str(error)`` is the operator's message (file, cells); `record_reason` is the form
    with neither values nor path that may go on the ledger (see the module docstring).
    """

    def __init__(
        self, problems: Sequence[DataProblem], *, path: Path | str, count: int | None = None
    ) -> None:
        self.problems = tuple(problems)
        self.count = count if count is not None else len(self.problems)
        super().__init__(self._lines(local=True), path=path)

    @property
    def record_reason(self) -> str:
        return self._lines(local=False)

    def _lines(self, *, local: bool) -> str:
        # The operator's message has a line per problem; a record's reason is one line.
        rendered = [problem.render(local=local) for problem in self.problems]
        if self.count == 1 and len(rendered) == 1:
            return rendered[0]
        more = self.count - len(rendered)
        if more:
            rendered.append(f"... and {more} more")
        head, separator = f"{self.count} problems:", "\n  " if local else "; "
        return head + ("\n  " if local else " ") + separator.join(rendered)


def _quoted(text: str) -> str:
    if len(text) > _QUOTED_MAX_CHARS:
        return repr(text[:_QUOTED_MAX_CHARS]) + "..."
    return repr(text)


# -- schemas --------------------------------------------------------------------------------


def load_schema(path: Path) -> DatasetSchema:
    """A schema TOML file (see parties/schemas/); every problem at once."""
    schema, problems = schema_from_document(read_toml(path))
    if schema is not None:
        problems.extend(schema_problems(schema))
    if problems or schema is None:
        raise ConfigError("\n  ".join(["invalid schema:", *problems]), path=path)
    return schema


def schema_from_document(document: dict[str, Any]) -> tuple[DatasetSchema | None, list[str]]:
    """A schema from parsed TOML, or the type problems found (values are checked after)."""
    problems = [
        f"{key}: unknown key; known: {', '.join(_SCHEMA_KEYS)}"
        for key in document
        if key not in _SCHEMA_KEYS
    ]
    raw_columns = document.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        problems.append("columns: required: a list of [[columns]] tables with name and type")
        raw_columns = []
    columns: list[Column] = []
    for index, raw in enumerate(raw_columns):
        field = f"columns[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{field}: must be a table with name and type")
            continue
        problems.extend(
            f"{field}.{key}: unknown key; known: {', '.join(_COLUMN_KEYS)}"
            for key in raw
            if key not in _COLUMN_KEYS
        )
        name, column_type, nullable = raw.get("name"), raw.get("type"), raw.get("nullable", False)
        if not isinstance(name, str):
            problems.append(f"{field}.name: required string")
        if not isinstance(column_type, str):
            problems.append(f"{field}.type: required, one of {', '.join(COLUMN_TYPES)}")
        if not isinstance(nullable, bool):
            problems.append(f"{field}.nullable: must be true or false")
        if isinstance(name, str) and isinstance(column_type, str) and isinstance(nullable, bool):
            columns.append(Column(name, column_type, nullable))
    names = {}
    for key in ("id_column", "label_column"):
        value = document.get(key, "")
        if not isinstance(value, str):
            problems.append(f"{key}: must be a column name")
            value = ""
        names[key] = value
    if problems:
        return None, problems
    return DatasetSchema(tuple(columns), names["id_column"], names["label_column"]), []


def parse_columns(text: str, *, id_column: str = "", label_column: str = "") -> DatasetSchema:
    """``name:type,...`` (``name:type?`` for a nullable column), as `--columns` takes it."""
    problems: list[str] = []
    columns: list[Column] = []
    for index, item in enumerate(text.split(",")):
        name, sep, column_type = item.strip().rpartition(":")
        nullable = column_type.endswith("?")
        column_type = column_type.removesuffix("?")
        if not sep:
            problems.append(f"columns[{index}]: {item.strip()!r} is not name:type")
            continue
        columns.append(Column(name, column_type, nullable))
    schema = DatasetSchema(tuple(columns), id_column, label_column)
    problems.extend(schema_problems(schema) if not problems else [])
    if problems:
        raise UserError("\n  ".join(["invalid:", *problems]), field="--columns")
    return schema


# -- files ----------------------------------------------------------------------------------


def file_format(path: Path) -> str:
    found = FILE_FORMATS.get(Path(path).suffix.lower())
    if found is None:
        detail = f"unknown file type {Path(path).suffix!r}; use one of {', '.join(FILE_FORMATS)}"
        raise _error(path, "", "unknown file type", detail)
    return found


def read_rows(
    path: Path, schema: DatasetSchema, *, extra_columns: bool = False
) -> Iterator[tuple[Value, ...]]:
    """Typed rows in schema order; raises `DataFileError` naming every problem found.

    ``extra_columns``: the file may hold columns the schema does not name (they are
    skipped, never parsed); by default they are an error, as a dataset's file must match
    its registered schema exactly."""
    problems = _Problems(path)
    if file_format(path) == "csv":
        yield from _read_csv(Path(path), schema, problems, extra_columns)
    else:
        yield from _read_parquet(Path(path), schema, problems, extra_columns)
    problems.raise_if_any()


def fingerprint_file(path: Path, schema: DatasetSchema) -> Fingerprint:
    builder = FingerprintBuilder(schema)
    builder.add_all(read_rows(path, schema))
    return builder.result()


def _error(path: Path, where: str, reason: str, detail: str = "") -> DataFileError:
    return DataFileError([DataProblem(where, reason, detail)], path=path)


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[DataProblem] = []
        self.count = 0

    def add(self, where: str, reason: str, detail: str = "") -> None:
        self.count += 1
        if len(self.items) < REPORTED_PROBLEMS_MAX:
            self.items.append(DataProblem(where, reason, detail))

    def fatal(self, where: str, reason: str, detail: str = "") -> DataFileError:
        return _error(self.path, where, reason, detail)

    def raise_if_any(self) -> None:
        if self.items:
            raise DataFileError(self.items, path=self.path, count=self.count)


def _header_order(
    header: Sequence[str],
    schema: DatasetSchema,
    problems: _Problems,
    where: str,
    extra_columns: bool,
) -> list[int]:
    """For each schema column, its position in the file's header. A header name that is not
    the schema's may be a cell (a file without a header): only the operator sees it."""
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in positions:
            if schema.column(name) is not None:
                raise problems.fatal(where, f"column {name!r} appears twice")
            raise problems.fatal(
                where, "a column name appears twice", f"column {name!r} appears twice"
            )
        positions[name] = index
    missing = [name for name in schema.names if name not in positions]
    extra = [] if extra_columns else [n for n in header if schema.column(n) is None]
    if missing or extra:
        reasons, details = [], []
        if missing:
            text = f"missing schema columns {', '.join(map(repr, missing))}"
            reasons.append(text)
            details.append(text)
        if extra:
            reasons.append(f"{len(extra)} column(s) not in the schema")
            details.append(f"columns not in the schema {', '.join(map(repr, extra))}")
        raise problems.fatal(where, "; ".join(reasons), "; ".join(details))
    return [positions[name] for name in schema.names]


def _read_csv(
    path: Path, schema: DatasetSchema, problems: _Problems, extra_columns: bool
) -> Iterator[tuple[Value, ...]]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise problems.fatal("", "file not found") from None
    except OSError as exc:
        raise problems.fatal("", "cannot be read", f"cannot read: {exc}") from None
    with handle:
        reader = csv.reader(handle, strict=True)
        line = 1
        try:
            header = next(reader, None)
            if header is None:
                raise problems.fatal("line 1", "empty file; the first line must be the header")
            order = _header_order(header, schema, problems, "line 1 (header)", extra_columns)
            for fields in reader:
                line = reader.line_num
                if len(fields) != len(header):
                    problems.add(
                        f"line {line}", f"has {len(fields)} fields; the header has {len(header)}"
                    )
                    continue
                row = _csv_row(fields, order, schema, problems, line)
                if row is not None:
                    yield row
        except UnicodeDecodeError:
            raise problems.fatal(f"line {line + 1}", "not UTF-8 text") from None
        except csv.Error as exc:
            where = f"line {reader.line_num}"
            raise problems.fatal(where, "not valid CSV", f"not valid CSV: {exc}") from None


def _csv_row(
    fields: Sequence[str],
    order: Sequence[int],
    schema: DatasetSchema,
    problems: _Problems,
    line: int,
) -> tuple[Value, ...] | None:
    values: list[Value] = []
    ok = True
    for column, position in zip(schema.columns, order, strict=True):
        text = fields[position]
        value, problem = _parse_text(text, column)
        if problem is not None:
            reason, detail = problem
            problems.add(f"line {line}, column {column.name!r}", reason, detail)
            ok = False
        values.append(value)
    return tuple(values) if ok else None


def _parse_text(text: str, column: Column) -> tuple[Value, tuple[str, str] | None]:
    """The value, or (the problem without the value, the problem quoting it)."""
    if text == "":
        if column.nullable:
            return None, None
        return None, ("empty (null) in a column that is not nullable", "")
    if column.type == "string":
        return text, None
    if column.type == "int64":
        if not _INT.match(text):
            return None, ("not an int64", f"{_quoted(text)} is not an int64")
        number = int(text)
        if not INT64_MIN <= number <= INT64_MAX:
            return None, ("outside the int64 range", f"{text} is outside the int64 range")
        return number, None
    if column.type == "float64":
        if not _FLOAT.match(text):
            return None, ("not a float64", f"{_quoted(text)} is not a float64")
        return float(text), None
    flag = _BOOLS.get(text.lower())
    if flag is None:
        reason = "not a bool (true, false, 1 or 0)"
        return None, (reason, f"{_quoted(text)} is {reason}")
    return flag, None


def _read_parquet(
    path: Path, schema: DatasetSchema, problems: _Problems, extra_columns: bool
) -> Iterator[tuple[Value, ...]]:
    try:
        import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise problems.fatal(
            "", "reading Parquet needs the pyarrow package (pip install pyarrow)"
        ) from None
    if not path.is_file():
        raise problems.fatal("", "file not found")
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        detail = f"not a readable Parquet file: {exc}"
        raise problems.fatal("", "not a readable Parquet file", detail) from None
    arrow_schema = parquet.schema_arrow
    _header_order(arrow_schema.names, schema, problems, "schema", extra_columns)
    for column in schema.columns:
        arrow_type = arrow_schema.field(column.name).type
        if not _arrow_type_fits(pa, arrow_type, column.type):
            raise problems.fatal(
                f"column {column.name!r}",
                f"Parquet type {arrow_type} cannot hold the schema's {column.type}",
            )
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=65536, columns=list(schema.names)):
            columns = [batch.column(name).to_pylist() for name in schema.names]
            for values in zip(*columns, strict=True):
                row += 1
                typed = _parquet_row(values, schema, problems, row)
                if typed is not None:
                    yield typed
    except (OSError, pa.ArrowException) as exc:
        raise problems.fatal(f"row {row + 1}", "cannot be read", f"cannot read: {exc}") from None


def _arrow_type_fits(pa: Any, arrow_type: Any, column_type: str) -> bool:
    types = pa.types
    if column_type == "int64":
        return bool(types.is_integer(arrow_type))
    if column_type == "float64":
        return bool(types.is_floating(arrow_type) or types.is_integer(arrow_type))
    if column_type == "string":
        return bool(types.is_string(arrow_type) or types.is_large_string(arrow_type))
    return bool(types.is_boolean(arrow_type))


def _parquet_row(
    values: Sequence[Any], schema: DatasetSchema, problems: _Problems, row: int
) -> tuple[Value, ...] | None:
    typed: list[Value] = []
    ok = True
    for column, value in zip(schema.columns, values, strict=True):
        if value is None:
            if not column.nullable:
                problems.add(
                    f"row {row}, column {column.name!r}", "null in a column that is not nullable"
                )
                ok = False
            typed.append(None)
        elif column.type == "int64" and not INT64_MIN <= value <= INT64_MAX:
            problems.add(
                f"row {row}, column {column.name!r}",
                "outside the int64 range",
                f"{value} is outside the int64 range",
            )
            ok = False
        elif column.type == "float64":
            typed.append(float(value))
        else:
            typed.append(value)
    return tuple(typed) if ok else None
