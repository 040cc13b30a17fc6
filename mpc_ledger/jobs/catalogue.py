"""The local dataset catalogue: where this party's registered datasets live on its own disk.

Theory of operation: the ledger knows a dataset by its schema, row count and
fingerprint, never by where its file is. ``mpc-ledger dataset register``
writes one small TOML file per dataset it registered, once the registration
is committed, at ``<data_dir>/datasets/<name>.toml`` (``name`` is the part
of the dataset id after ``<member>/``): the file's absolute path, the schema
used to fingerprint it and the fingerprint registered. The job runner reads
it to find the file again and re-fingerprint it before a job.

Contract: the catalogue is local only (directory 0700, files 0600); it is
never written to the ledger or sent to a peer. It holds no data values.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from pathlib import Path

from mpc_ledger.documents import NestingError, parse_toml
from mpc_ledger.errors import ConfigError
from mpc_ledger.jobs.datafiles import schema_from_document
from mpc_ledger.jobs.datasets import DatasetSchema, check_dataset_id, schema_problems

__all__ = [
    "CatalogueEntry",
    "catalogue_dir",
    "entry_path",
    "find_entry",
    "load_entry",
    "write_entry",
]

CATALOGUE_DIR = "datasets"


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    dataset_id: str
    path: Path  # absolute
    schema: DatasetSchema
    fingerprint: bytes


def catalogue_dir(data_dir: Path) -> Path:
    return Path(data_dir) / CATALOGUE_DIR


def entry_path(data_dir: Path, dataset_id: str) -> Path:
    problem = check_dataset_id(dataset_id)
    if problem is not None:
        raise ValueError(problem)
    return catalogue_dir(data_dir) / f"{dataset_id.partition('/')[2]}.toml"


def _text(value: str) -> str:
    # A JSON string is a valid TOML basic string for what json.dumps emits.
    return json.dumps(value, ensure_ascii=True)


def render_entry(entry: CatalogueEntry) -> str:
    schema = entry.schema
    lines = [
        "# Written by `mpc-ledger dataset register`: where this registered dataset lives.",
        "# Local to this machine; never put on the ledger or sent to a peer.",
        f"dataset_id = {_text(entry.dataset_id)}",
        f"path = {_text(str(entry.path))}",
        f"fingerprint = {_text(entry.fingerprint.hex())}",
        "",
        "[schema]",
        f"id_column = {_text(schema.id_column)}",
        f"label_column = {_text(schema.label_column)}",
    ]
    for column in schema.columns:
        lines += [
            "",
            "[[schema.columns]]",
            f"name = {_text(column.name)}",
            f"type = {_text(column.type)}",
            f"nullable = {'true' if column.nullable else 'false'}",
        ]
    return "\n".join(lines) + "\n"


def write_entry(data_dir: Path, entry: CatalogueEntry) -> Path:
    """Write (atomically, 0600) the entry for a dataset this party registered."""
    folder = catalogue_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = entry_path(data_dir, entry.dataset_id)
    tmp = target.with_suffix(".toml.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render_entry(entry))
    os.replace(tmp, target)
    return target


def load_entry(path: Path) -> CatalogueEntry:
    """Read one catalogue file; `ConfigError` names the file and what is wrong."""
    try:
        document = parse_toml(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, NestingError) as exc:
        raise ConfigError(f"cannot read the catalogue entry: {exc}", path=path) from None
    problems: list[str] = []
    dataset_id, file_path, fingerprint = (
        document.get("dataset_id"),
        document.get("path"),
        document.get("fingerprint"),
    )
    if not isinstance(dataset_id, str) or check_dataset_id(dataset_id) is not None:
        problems.append("dataset_id: required, '<member>/<name>'")
    if not isinstance(file_path, str) or not Path(file_path).is_absolute():
        problems.append("path: required, an absolute path")
    try:
        fingerprint_bytes = bytes.fromhex(fingerprint) if isinstance(fingerprint, str) else b""
    except ValueError:
        fingerprint_bytes = b""
    if len(fingerprint_bytes) != 32:
        problems.append("fingerprint: required, 64 hex digits")
    raw_schema = document.get("schema")
    schema, schema_errors = (
        schema_from_document(raw_schema) if isinstance(raw_schema, dict) else (None, ["schema"])
    )
    problems += [f"schema.{p}" for p in schema_errors]
    if schema is not None:
        problems += [f"schema: {p}" for p in schema_problems(schema)]
    if problems or schema is None:
        raise ConfigError("\n  ".join(["invalid catalogue entry:", *problems]), path=path)
    assert isinstance(dataset_id, str) and isinstance(file_path, str)
    return CatalogueEntry(dataset_id, Path(file_path), schema, fingerprint_bytes)


def find_entry(data_dir: Path, dataset_id: str) -> CatalogueEntry | None:
    """This party's entry for ``dataset_id``, or None when it never registered it here."""
    path = entry_path(data_dir, dataset_id)
    if not path.exists():
        return None
    entry = load_entry(path)
    if entry.dataset_id != dataset_id:
        raise ConfigError(f"names dataset {entry.dataset_id!r}, not {dataset_id!r}", path=path)
    return entry
