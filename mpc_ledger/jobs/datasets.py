"""Datasets: schemas, the canonical row encoding, fingerprints, registrations.

Theory of operation
-------------------
A data member never puts a value on the ledger. It registers a dataset by
its *schema* (columns, types, id and label column) and its *fingerprint*,
which commits to every value so that, before a job shares anything, the
owner can recompute it and prove the data did not change since approval.

* **Canonical row encoding.** A row is encoded column by column in schema
  order (whatever order a file keeps them in) as ``u32 BE column count``
  then, per value, ``type tag (1 byte) || u32 BE length || payload``:
  null ``0x00`` (empty), int64 ``0x01`` (8 bytes two's complement, BE),
  float64 ``0x02`` (8 bytes IEEE 754 binary64, BE; every NaN becomes the one
  quiet NaN 0x7ff8000000000000 so the same data gives the same bytes from
  any reader), string ``0x03`` (UTF-8), bool ``0x04`` (one byte 0 or 1).
  The encoding depends on typed values only, so a CSV file and a Parquet
  file holding the same values give the same bytes.
* **Schema hash.** SHA-256 over a tag and the schema's deterministic
  protobuf encoding (no map fields; column order is significant).
* **Fingerprint.** ``rows_root`` is the RFC 6962 Merkle root
  (`mpc_ledger.merkle`) over the encoded rows, in file order; the
  fingerprint is SHA-256 over a tag, the schema hash, the row count (u64 BE)
  and ``rows_root``. The registration carries all four, so the ledger
  checks that they agree and an owner can later prove one row's inclusion.

Everything here is pure; reading files lives in `mpc_ledger.jobs.datafiles`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from mpc_ledger.identity.ids import QUALIFIED_ID
from mpc_ledger.merkle import HASH_SIZE_BYTES, MerkleFrontier
from mpc_ledger.proto.v1 import jobs_pb2

__all__ = [
    "COLUMN_TYPES",
    "NUMERIC_TYPES",
    "Column",
    "DatasetSchema",
    "Fingerprint",
    "FingerprintBuilder",
    "RegisteredDataset",
    "Value",
    "check_dataset_id",
    "dataset_fingerprint",
    "encode_row",
    "make_registration",
    "owner_of",
    "registration_problems",
    "schema_problems",
]

COLUMN_TYPES = ("int64", "float64", "string", "bool")
# Types a model can read as a number (features and labels).
NUMERIC_TYPES = ("int64", "float64", "bool")
COLUMNS_MAX = 4096
COLUMN_NAME_MAX_BYTES = 128
DESCRIPTION_MAX_BYTES = 1024
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

Value = int | float | str | bool | None

_SCHEMA_TAG = b"mpc-ledger/dataset-schema/v1\x00"
_FINGERPRINT_TAG = b"mpc-ledger/dataset/v1\x00"
_TAGS = {"null": 0x00, "int64": 0x01, "float64": 0x02, "string": 0x03, "bool": 0x04}
_CANONICAL_NAN = struct.pack(">Q", 0x7FF8000000000000)


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = False

    def describe(self) -> str:
        """``name:type`` with ``?`` when nullable (the `--columns` syntax)."""
        return f"{self.name}:{self.type}{'?' if self.nullable else ''}"


@dataclasses.dataclass(frozen=True)
class DatasetSchema:
    columns: tuple[Column, ...]
    id_column: str = ""
    label_column: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def to_proto(self) -> jobs_pb2.DatasetSchema:
        return jobs_pb2.DatasetSchema(
            columns=[
                jobs_pb2.Column(name=c.name, type=c.type, nullable=c.nullable) for c in self.columns
            ],
            id_column=self.id_column,
            label_column=self.label_column,
        )

    @classmethod
    def from_proto(cls, message: jobs_pb2.DatasetSchema) -> DatasetSchema:
        return cls(
            columns=tuple(Column(c.name, c.type, c.nullable) for c in message.columns),
            id_column=message.id_column,
            label_column=message.label_column,
        )

    @property
    def schema_hash(self) -> bytes:
        encoded = self.to_proto().SerializeToString(deterministic=True)
        return hashlib.sha256(_SCHEMA_TAG + encoded).digest()

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": [dataclasses.asdict(c) for c in self.columns],
            "id_column": self.id_column,
            "label_column": self.label_column,
        }


def check_dataset_id(dataset_id: str, owner: str | None = None) -> str | None:
    """None when ``dataset_id`` is ``<member>/<name>`` (in ``owner``'s namespace); else why not."""
    match = QUALIFIED_ID.match(dataset_id)
    if match is None:
        return (
            f"{dataset_id!r} is not '<member id>/<name>' (lowercase letters, digits, "
            "'-' in the member id, also '.' and '_' in the name, each at most 63 characters)"
        )
    if owner is not None and match.group(1) != owner:
        return f"member {owner!r} may register datasets only as '{owner}/<name>'"
    return None


def owner_of(dataset_id: str) -> str:
    """The member part of a valid dataset id."""
    return dataset_id.partition("/")[0]


def schema_problems(schema: DatasetSchema) -> list[str]:
    """Every problem in ``schema``, each as ``field: message``."""
    problems: list[str] = []
    if not schema.columns:
        problems.append("columns: at least one column is required")
    if len(schema.columns) > COLUMNS_MAX:
        problems.append(f"columns: at most {COLUMNS_MAX} columns")
    seen: set[str] = set()
    for index, column in enumerate(schema.columns):
        field = f"columns[{index}]"
        problem = _column_name_problem(column.name)
        if problem is not None:
            problems.append(f"{field}.name: {problem}")
        elif column.name in seen:
            problems.append(f"{field}.name: {column.name!r} appears twice")
        seen.add(column.name)
        if column.type not in COLUMN_TYPES:
            problems.append(
                f"{field}.type: {column.type!r} is not one of {', '.join(COLUMN_TYPES)}"
            )
    for field, name in (("id_column", schema.id_column), ("label_column", schema.label_column)):
        if name and name not in seen:
            problems.append(f"{field}: {name!r} is not a column of the schema")
    if schema.id_column and schema.id_column == schema.label_column:
        problems.append("label_column: the id column cannot be the label")
    label = schema.column(schema.label_column) if schema.label_column else None
    if label is not None and label.type not in NUMERIC_TYPES:
        problems.append(f"label_column: {label.name!r} is a {label.type}; a label must be numeric")
    return problems


def _column_name_problem(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name.encode()) > COLUMN_NAME_MAX_BYTES:
        return f"longer than {COLUMN_NAME_MAX_BYTES} bytes"
    if not name.isprintable() or name != name.strip():
        return f"{name!r} has control characters or surrounding spaces"
    return None


# -- canonical encoding ---------------------------------------------------------------------


def _value_bytes(column_type: str, value: Value) -> bytes:
    if value is None:
        return bytes((_TAGS["null"],)) + struct.pack(">I", 0)
    if column_type == "int64":
        assert isinstance(value, int) and not isinstance(value, bool)
        payload = struct.pack(">q", value)
    elif column_type == "float64":
        assert isinstance(value, float)
        payload = _CANONICAL_NAN if math.isnan(value) else struct.pack(">d", value)
    elif column_type == "string":
        assert isinstance(value, str)
        payload = value.encode("utf-8")
    elif column_type == "bool":
        assert isinstance(value, bool)
        payload = b"\x01" if value else b"\x00"
    else:
        raise ValueError(f"unknown column type {column_type!r}")
    return bytes((_TAGS[column_type],)) + struct.pack(">I", len(payload)) + payload


def encode_row(schema: DatasetSchema, values: Sequence[Value]) -> bytes:
    """The canonical encoding of one row, ``values`` in schema order, already typed.

    The readers in `datafiles` produce typed values (an int64 column holds
    ``int``, a float64 column ``float``, ...); anything else is our bug.
    """
    if len(values) != len(schema.columns):
        raise ValueError(
            f"a row of this schema has {len(schema.columns)} values, not {len(values)}"
        )
    parts = [struct.pack(">I", len(values))]
    parts.extend(_value_bytes(c.type, v) for c, v in zip(schema.columns, values, strict=True))
    return b"".join(parts)


def dataset_fingerprint(schema_hash: bytes, row_count: int, rows_root: bytes) -> bytes:
    return hashlib.sha256(
        _FINGERPRINT_TAG + schema_hash + struct.pack(">Q", row_count) + rows_root
    ).digest()


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    schema_hash: bytes
    row_count: int
    rows_root: bytes
    fingerprint: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_hash": self.schema_hash.hex(),
            "row_count": self.row_count,
            "rows_root": self.rows_root.hex(),
            "fingerprint": self.fingerprint.hex(),
        }


class FingerprintBuilder:
    """Rows in, a `Fingerprint` out; memory is O(log rows) (a Merkle frontier)."""

    def __init__(self, schema: DatasetSchema) -> None:
        self.schema = schema
        self._frontier = MerkleFrontier()

    def add(self, values: Sequence[Value]) -> None:
        self._frontier.append(encode_row(self.schema, values))

    def add_all(self, rows: Iterable[Sequence[Value]]) -> None:
        for values in rows:
            self.add(values)

    @property
    def row_count(self) -> int:
        return self._frontier.size

    def result(self) -> Fingerprint:
        schema_hash = self.schema.schema_hash
        rows_root = self._frontier.root()
        return Fingerprint(
            schema_hash=schema_hash,
            row_count=self.row_count,
            rows_root=rows_root,
            fingerprint=dataset_fingerprint(schema_hash, self.row_count, rows_root),
        )


# -- registrations --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RegisteredDataset:
    """What the ledger knows about a dataset (never a value)."""

    dataset_id: str
    owner: str
    schema: DatasetSchema
    row_count: int
    schema_hash: bytes
    rows_root: bytes
    fingerprint: bytes
    description: str = ""
    record_id: bytes = b""

    @classmethod
    def from_registration(
        cls, owner: str, message: jobs_pb2.DatasetRegistration, record_id: bytes = b""
    ) -> RegisteredDataset:
        return cls(
            dataset_id=message.dataset_id,
            owner=owner,
            schema=DatasetSchema.from_proto(message.schema),
            row_count=message.row_count,
            schema_hash=bytes(message.schema_hash),
            rows_root=bytes(message.rows_root),
            fingerprint=bytes(message.fingerprint),
            description=message.description,
            record_id=record_id,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "owner": self.owner,
            "rows": self.row_count,
            "fingerprint": self.fingerprint.hex(),
            "schema_hash": self.schema_hash.hex(),
            "rows_root": self.rows_root.hex(),
            "description": self.description,
            "schema": self.schema.to_json(),
            "record_id": self.record_id.hex(),
        }


def make_registration(
    dataset_id: str, schema: DatasetSchema, fingerprint: Fingerprint, description: str = ""
) -> jobs_pb2.DatasetRegistration:
    return jobs_pb2.DatasetRegistration(
        dataset_id=dataset_id,
        schema=schema.to_proto(),
        row_count=fingerprint.row_count,
        schema_hash=fingerprint.schema_hash,
        rows_root=fingerprint.rows_root,
        fingerprint=fingerprint.fingerprint,
        description=description,
    )


def registration_problems(message: jobs_pb2.DatasetRegistration, author: str) -> list[str]:
    """Every problem a registration has on its own (the ledger adds uniqueness and roles)."""
    problems: list[str] = []
    id_problem = check_dataset_id(message.dataset_id, author)
    if id_problem is not None:
        problems.append(f"dataset_id: {id_problem}")
    schema = DatasetSchema.from_proto(message.schema)
    problems.extend(f"schema.{p}" for p in schema_problems(schema))
    if message.row_count < 1:
        problems.append("row_count: a dataset has at least one row")
    for field in ("schema_hash", "rows_root", "fingerprint"):
        if len(getattr(message, field)) != HASH_SIZE_BYTES:
            problems.append(f"{field}: must be a {HASH_SIZE_BYTES}-byte SHA-256")
    if len(message.description.encode()) > DESCRIPTION_MAX_BYTES:
        problems.append(f"description: longer than {DESCRIPTION_MAX_BYTES} bytes")
    if problems:
        return problems
    if message.schema_hash != schema.schema_hash:
        problems.append("schema_hash: does not match the schema")
    expected = dataset_fingerprint(message.schema_hash, message.row_count, message.rows_root)
    if message.fingerprint != expected:
        problems.append("fingerprint: does not match schema_hash, row_count and rows_root")
    return problems
