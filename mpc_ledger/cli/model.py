"""`mpc-ledger model ...`: apply a model file from `job result`, here, in plain PyTorch.

No MPC, no daemon, no profile: the file (`mpc_ledger.mpc.model_file`, safetensors, never
unpickled) says what the model is and what it takes. `predict` reads the rows (CSV or
Parquet, `mpc_ledger.jobs.datafiles`) by column name: the file's feature columns must be
there (others are skipped); a missing column, or a cell that is not a finite number, is an
error naming the column and the line or row, never the cell. It applies the file's
preprocessing (standardisation, when the job released it) and the model, and prints or
writes one prediction per row, in the rows' order:

    binary      probability (of the positive class), label (1 when the probability > 0.5)
    multiclass  class (the most probable), probability_0 .. probability_<classes-1>
    regression  value

`--format json` writes a list of objects instead: ``{"probability", "label"}``,
``{"class", "probabilities"}`` or ``{"value"}``. `--output FILE` is written 0600 via a
partial file, so a failed run leaves none; nothing is printed until every row has been read.
`show` prints the file's metadata.

Exit codes: 0 success; 2 bad input (a model file that is not one, rows that do not fit it),
as for every file `mpc-ledger` reads (`mpc_ledger.cli.main`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mpc_ledger.errors import UserError
from mpc_ledger.jobs.datafiles import DataFileError, read_rows
from mpc_ledger.jobs.datasets import Column, DatasetSchema
from mpc_ledger.mpc.model_file import ModelFileInfo, predict, read_model_file

__all__ = ["predict_command", "register", "show_command"]


def register(groups: Any) -> None:
    model = groups.add_parser("model", help="(scientist) apply a model file from `job result`")
    commands = model.add_subparsers(dest="model_command", metavar="COMMAND", required=True)
    apply = commands.add_parser(
        "predict",
        help="predictions of a model file for rows of a CSV or Parquet file (local, plain)",
    )
    apply.add_argument("model", type=Path, metavar="MODEL", help="a file from `job result`")
    apply.add_argument("--input", type=Path, required=True, help="rows (.csv, .parquet)")
    apply.add_argument("--output", type=Path, help="file to write (0600; default: stdout)")
    apply.add_argument("--format", choices=("csv", "json"), default="csv")
    apply.set_defaults(handler=predict_command)
    show = commands.add_parser("show", help="what a model file says of its model")
    show.add_argument("model", type=Path, metavar="MODEL")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(handler=show_command)


def predict_command(args: argparse.Namespace) -> int:
    info, tensors = read_model_file(args.model)
    features = read_features(args.input, info.features)
    if not info.standardised:
        print(f"mpc-ledger: note: {args.model}: {_NO_PREPROCESSING}", file=sys.stderr)
    outputs = predict(info, tensors, features)
    text = render_predictions(info, outputs, args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        _write_private(args.output, text)
        print(f"wrote {len(outputs)} predictions to {args.output}", file=sys.stderr)
    return 0


_NO_PREPROCESSING = (
    "the file holds no preprocessing: give the features as the training saw them "
    "(each data owner's columns standardised with its own training rows' statistics)"
)


def show_command(args: argparse.Namespace) -> int:
    info, tensors = read_model_file(args.model)
    document = info.to_json()
    if args.format == "json":
        print(json.dumps(document, indent=2))
        return 0
    model = document["model"]
    shape = f", hidden {model['hidden']}" if model["hidden"] else ""
    shape += f", {model['classes']} classes" if model["classes"] else ""
    parameters = sum(int(v.size) for v in tensors.values())
    print(f"model          {model['kind']} ({info.task}, loss {model['loss']}{shape})")
    print(f"job            {info.job_id}")
    print(f"model hash     {info.model_hash} (compare: `mpc-ledger job show JOB_ID`)")
    print(f"features       {', '.join(info.features)}")
    print(f"label          {info.label}")
    print(f"preprocessing  {document['preprocessing']['kind']}")
    print(f"tensors        {len(tensors)} ({parameters} values)")
    return 0


def read_features(path: Path, names: tuple[str, ...]) -> np.ndarray[Any, Any]:
    """The rows' ``names`` columns (float64, in that order); `UserError` naming the column
    and the line or row of a problem, never a cell's value (it may be anything)."""
    schema = DatasetSchema(tuple(Column(name, "float64") for name in names))
    try:
        rows = list(read_rows(path, schema, extra_columns=True))
    except DataFileError as exc:
        raise UserError(exc.record_reason, path=path) from None
    if not rows:
        raise UserError("holds no rows to predict", path=path)
    features = np.array(rows, dtype=np.float64)
    bad = ~np.isfinite(features)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise UserError(
            f"row {row + 1} (after the header), column {names[column]!r}: not a finite number",
            path=path,
        )
    return features


def render_predictions(info: ModelFileInfo, outputs: np.ndarray[Any, Any], fmt: str) -> str:
    """One prediction per row, as CSV (a header, then rows) or as a JSON list."""
    records = [_record(info, row) for row in outputs]
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_columns(info))
    for record in records:
        cells = list(record.values())
        writer.writerow([*cells[:-1], *cells[-1]] if info.task == "multiclass" else cells)
    return buffer.getvalue()


def _columns(info: ModelFileInfo) -> list[str]:
    if info.task == "binary":
        return ["probability", "label"]
    if info.task == "multiclass":
        return ["class", *(f"probability_{c}" for c in range(info.classes))]
    return ["value"]


def _record(info: ModelFileInfo, row: np.ndarray[Any, Any]) -> dict[str, Any]:
    values = [float(v) for v in row]
    if info.task == "binary":
        return {"probability": values[0], "label": int(values[0] > 0.5)}
    if info.task == "multiclass":
        return {"class": int(np.argmax(row)), "probabilities": values}
    return {"value": values[0]}


def _write_private(target: Path, text: str) -> None:
    partial = target.with_name(target.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        partial.replace(target)
    except OSError as exc:
        raise UserError(f"cannot be written: {exc.strerror}", path=target) from None
    finally:
        partial.unlink(missing_ok=True)
