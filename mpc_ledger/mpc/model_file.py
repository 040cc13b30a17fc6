"""The model file `mpc-ledger job result` writes and `mpc-ledger model predict` applies.

Format (``mpc-ledger/model-file/v1``, documented in `mpc_ledger/verify/FORMAT.md`): a
safetensors file (an 8-byte header length, a JSON header, raw little-endian tensors; no
pickle, so nothing in it can run code when it is read). Its tensors are the model's
parameters under their PyTorch names, float32, so that ``model.load_state_dict`` takes
``safetensors.torch.load_file(path)`` once any ``preprocessing.*`` entries are dropped, and,
when the job released them, ``preprocessing.mean`` and ``preprocessing.scale`` (float32, one
per feature: the model takes ``(x - mean) / scale``). The header's ``__metadata__`` holds one
entry, ``mpc_ledger``: a JSON document (`ModelFileInfo`) saying what the model is (job id,
model hash, kind, hidden widths, loss, classes), what it takes (the feature columns in the
model's input order, the label's name) and its preprocessing.

Contract: `read_model_file` refuses (`ModelFileError`, exit 2 in the CLI, naming the file
and what is wrong) anything that is not such a file: not safetensors (a pickle or a
``torch.save`` file among them, never unpickled), metadata missing or of another format
version, tensors that are not the ones the metadata's model has, or tensors whose canonical
encoding (`mpc_ledger.mpc.model_codec`) does not hash to the model hash the file states
(compare that hash with the ledger's: `mpc-ledger job show`). `write_model_file` writes 0600
through a partial file, so a failed write leaves nothing.

Writing needs numpy only (the CLI's job commands must not wait on torch); building the model
to apply it (`torch_model`, `predict`) imports torch and the training program's
`build_torch_model`, the architecture the job trained.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from mpc_ledger.documents import NestingError, parse_json
from mpc_ledger.errors import UserError
from mpc_ledger.model_kinds import LOSSES, PROGRAM_KINDS
from mpc_ledger.mpc.model_codec import MODEL_MAX_BYTES, encode_model, model_digest_of_encoding

if TYPE_CHECKING:  # imported where a model is applied, not where a file is written
    import torch

__all__ = [
    "MODEL_FILE_FORMAT",
    "PREPROCESSING_MEAN",
    "PREPROCESSING_SCALE",
    "ModelFileError",
    "ModelFileInfo",
    "predict",
    "read_model_file",
    "torch_model",
    "write_model_file",
]

MODEL_FILE_FORMAT = "mpc-ledger/model-file/v1"
METADATA_KEY = "mpc_ledger"
PREPROCESSING_MEAN = "preprocessing.mean"
PREPROCESSING_SCALE = "preprocessing.scale"
# a file names its kind by the program's name (`mpc_ledger.model_kinds`), as files
# already written do
MODEL_KINDS = PROGRAM_KINDS
_HEADER_MAX_BYTES = 16 << 20
_FEATURES_MAX = 1 << 16
_HEX_32 = re.compile(r"^[0-9a-f]{64}$")
NO_PREPROCESSING_NOTE = (
    "the model takes the features as the training saw them: each data owner standardised "
    "its own columns with its own training rows' mean and deviation, which this file does "
    "not hold"
)


class ModelFileError(UserError):
    """A file that is not a model file this release reads (the message says what is wrong)."""


@dataclasses.dataclass(frozen=True)
class ModelFileInfo:
    """What a model file says of its model (its ``__metadata__``)."""

    job_id: str  # hex
    model_hash: str  # hex, as on the ledger
    kind: str  # MODEL_KINDS
    loss: str  # LOSSES
    features: tuple[str, ...]  # the model's inputs, in order
    label: str
    standardised: bool  # preprocessing.mean and .scale are in the file
    hidden: tuple[int, ...] = ()  # mlp only
    classes: int = 0  # cross_entropy only

    @property
    def task(self) -> str:
        return {"bce": "binary", "cross_entropy": "multiclass", "mse": "regression"}[self.loss]

    def to_json(self) -> dict[str, Any]:
        preprocessing: dict[str, Any] = (
            {"kind": "standardise", "mean": PREPROCESSING_MEAN, "scale": PREPROCESSING_SCALE}
            if self.standardised
            else {"kind": "none", "note": NO_PREPROCESSING_NOTE}
        )
        return {
            "format": MODEL_FILE_FORMAT,
            "job_id": self.job_id,
            "model_hash": self.model_hash,
            "model": {
                "kind": self.kind,
                "hidden": list(self.hidden),
                "loss": self.loss,
                "classes": self.classes,
            },
            "features": list(self.features),
            "label": self.label,
            "preprocessing": preprocessing,
        }

    @classmethod
    def from_json(cls, document: Any, path: Path) -> ModelFileInfo:
        """The metadata document; `ModelFileError` naming the first field that is wrong."""
        if not isinstance(document, dict):
            raise ModelFileError("its mpc_ledger metadata is not a JSON object", path=path)
        if document.get("format") != MODEL_FILE_FORMAT:
            raise ModelFileError(
                f"model file format {str(document.get('format'))[:60]!r} is not one this "
                f"release reads ({MODEL_FILE_FORMAT})",
                path=path,
            )
        fields = _Fields(document, path)
        model = fields.object("model")
        preprocessing = fields.object("preprocessing")
        kind = fields.choice(model, "model.kind", MODEL_KINDS)
        standardise = fields.choice(preprocessing, "preprocessing.kind", ("standardise", "none"))
        return cls(
            job_id=fields.hex32(document, "job_id"),
            model_hash=fields.hex32(document, "model_hash"),
            kind=kind,
            loss=fields.choice(model, "model.loss", LOSSES),
            features=fields.names(document, "features"),
            label=fields.text(document, "label"),
            standardised=standardise == "standardise",
            hidden=fields.widths(model, "model.hidden"),
            classes=fields.count(model, "model.classes"),
        )


class _Fields:
    """Typed reads of the metadata, each a `ModelFileError` naming the field."""

    def __init__(self, document: dict[str, Any], path: Path) -> None:
        self.document = document
        self.path = path

    def _fail(self, field: str, problem: str) -> ModelFileError:
        return ModelFileError(problem, path=self.path, field=f"metadata {field}")

    def _leaf(self, field: str) -> str:
        return field.rpartition(".")[2]

    def object(self, field: str) -> dict[str, Any]:
        value = self.document.get(field)
        if not isinstance(value, dict):
            raise self._fail(field, "must be an object")
        return value

    def choice(self, table: dict[str, Any], field: str, allowed: tuple[str, ...]) -> str:
        value = table.get(self._leaf(field))
        if value not in allowed:
            raise self._fail(field, f"must be one of {', '.join(allowed)}")
        return str(value)

    def hex32(self, table: dict[str, Any], field: str) -> str:
        value = table.get(field)
        if not isinstance(value, str) or not _HEX_32.match(value):
            raise self._fail(field, "must be 64 lowercase hex digits")
        return value

    def text(self, table: dict[str, Any], field: str) -> str:
        value = table.get(field)
        if not isinstance(value, str) or not value or len(value) > 256:
            raise self._fail(field, "must be a name (1 to 256 characters)")
        return value

    def names(self, table: dict[str, Any], field: str) -> tuple[str, ...]:
        value = table.get(field)
        if not isinstance(value, list) or not 1 <= len(value) <= _FEATURES_MAX:
            raise self._fail(field, f"must be a list of 1 to {_FEATURES_MAX} column names")
        if not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value):
            raise self._fail(field, "must hold distinct, non-empty column names")
        return tuple(value)

    def widths(self, table: dict[str, Any], field: str) -> tuple[int, ...]:
        value = table.get(self._leaf(field))
        if not isinstance(value, list) or not all(_is_count(v) and v >= 1 for v in value):
            raise self._fail(field, "must be a list of widths (integers >= 1)")
        return tuple(value)

    def count(self, table: dict[str, Any], field: str) -> int:
        value = table.get(self._leaf(field))
        if not _is_count(value):
            raise self._fail(field, "must be an integer >= 0")
        return value


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1 << 20


# -- writing -------------------------------------------------------------------------------------


def write_model_file(
    target: Path, info: ModelFileInfo, tensors: Mapping[str, np.ndarray[Any, Any]]
) -> None:
    """The model file for ``tensors`` (the decoded canonical encoding) at ``target`` (0600),
    via a partial file beside it; `ModelFileError` (nothing written) if the tensors are not
    the model ``info`` describes, as `read_model_file` would refuse the file."""
    import safetensors.numpy

    _check_tensors(info, tensors, target)
    metadata = {METADATA_KEY: json.dumps(info.to_json(), sort_keys=True)}
    arrays = {name: np.ascontiguousarray(v, dtype=np.float32) for name, v in tensors.items()}
    encoded = safetensors.numpy.save(arrays, metadata=metadata)
    partial = target.with_name(target.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(encoded)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


# -- reading -------------------------------------------------------------------------------------


def read_model_file(path: Path) -> tuple[ModelFileInfo, dict[str, np.ndarray[Any, Any]]]:
    """The metadata and tensors of a model file, checked (see the module docstring)."""
    path = Path(path)
    data = _read_bounded(path)
    tensors = _safetensors(data, path)
    info = ModelFileInfo.from_json(_metadata(data, path), path)
    _check_tensors(info, tensors, path)
    digest = model_digest_of_encoding(encode_model(tensors)).hex()
    if digest != info.model_hash:
        raise ModelFileError(
            f"its tensors do not hash to the model hash it states (they hash to "
            f"{digest[:16]}, the file says {info.model_hash[:16]}): the file was changed",
            path=path,
        )
    return info, tensors


def _read_bounded(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MODEL_MAX_BYTES + _HEADER_MAX_BYTES:
            raise ModelFileError(f"{size} bytes is larger than any model file", path=path)
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError("model file not found", path=path) from None
    except OSError as exc:
        raise ModelFileError(f"cannot be read: {exc.strerror}", path=path) from None


def _safetensors(data: bytes, path: Path) -> dict[str, np.ndarray[Any, Any]]:
    import safetensors
    import safetensors.numpy

    if len(data) < 8 or int.from_bytes(data[:8], "little") > _HEADER_MAX_BYTES:
        # a pickle or a torch.save file lands here: its first bytes are no header length
        raise ModelFileError(
            "not a model file (safetensors): the header length is missing or too large "
            "(a torch.save or pickle file is refused, never loaded)",
            path=path,
        )
    try:
        return dict(safetensors.numpy.load(data))
    except (safetensors.SafetensorError, ValueError, TypeError) as exc:
        raise ModelFileError(f"not a valid safetensors file: {exc}", path=path) from None


def _metadata(data: bytes, path: Path) -> Any:
    """The mpc_ledger document of a header safetensors has already parsed."""
    length = int.from_bytes(data[:8], "little")
    try:
        header = parse_json(data[8 : 8 + length])
    except (ValueError, NestingError):
        raise ModelFileError("its safetensors header is not JSON", path=path) from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    text = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    if not isinstance(text, str):
        raise ModelFileError(
            "has no mpc_ledger metadata: not a model file from `mpc-ledger job result`",
            path=path,
        )
    try:
        return parse_json(text)
    except (ValueError, NestingError):
        raise ModelFileError("its mpc_ledger metadata is not JSON", path=path) from None


def _check_tensors(
    info: ModelFileInfo, tensors: Mapping[str, np.ndarray[Any, Any]], path: Path
) -> None:
    """The tensors are exactly those of the metadata's model, with its shapes, float32."""
    expected = _parameter_shapes(info, path)
    n_features = len(info.features)
    if info.standardised:
        expected |= {PREPROCESSING_MEAN: (n_features,), PREPROCESSING_SCALE: (n_features,)}
    if sorted(tensors) != sorted(expected):
        raise ModelFileError(
            f"holds tensors {sorted(tensors)}; the model its metadata describes has "
            f"{sorted(expected)}",
            path=path,
        )
    for name, shape in expected.items():
        tensor = tensors[name]
        if tensor.dtype != np.float32 or tuple(tensor.shape) != shape:
            raise ModelFileError(
                f"tensor {name!r} is {tensor.dtype} {tuple(tensor.shape)}; the metadata's "
                f"model needs float32 {shape}",
                path=path,
            )
        if not np.isfinite(tensor).all():
            raise ModelFileError(f"tensor {name!r} holds a value that is not finite", path=path)
    if info.standardised and not (tensors[PREPROCESSING_SCALE] > 0).all():
        raise ModelFileError(f"tensor {PREPROCESSING_SCALE!r} must be positive", path=path)


def _parameter_shapes(info: ModelFileInfo, path: Path) -> dict[str, tuple[int, ...]]:
    model = torch_model(info, path)
    return {name: tuple(p.shape) for name, p in model.state_dict().items()}


# -- applying ------------------------------------------------------------------------------------


def torch_model(info: ModelFileInfo, path: Path | None = None) -> torch.nn.Module:
    """The architecture the job trained (`build_torch_model`), with its initial weights;
    `ModelFileError` if the metadata's model, loss and classes do not go together."""
    from mpc_ledger.mpc.train_spec import TrainSpec, build_torch_model

    try:
        spec = TrainSpec(
            layout="horizontal",
            model=info.kind,
            n_features=len(info.features),
            hidden=info.hidden if info.kind == "mlp" else (),
            loss=info.loss,
            classes=info.classes,
        )
    except ValueError as exc:
        raise ModelFileError(f"its metadata describes no model: {exc}", path=path) from None
    return build_torch_model(spec)


def predict(
    info: ModelFileInfo, tensors: Mapping[str, np.ndarray[Any, Any]], features: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """The model's outputs for ``features`` (rows x the file's features, in its order, as the
    rows hold them): a probability per row (binary), per class (multiclass), or the value."""
    import torch

    x = np.asarray(features, dtype=np.float64)
    if info.standardised:
        x = (x - tensors[PREPROCESSING_MEAN]) / tensors[PREPROCESSING_SCALE]
    model = torch_model(info)
    model.load_state_dict({n: torch.from_numpy(tensors[n].copy()) for n in model.state_dict()})
    model.eval()
    with torch.no_grad():
        output = model(torch.from_numpy(x.astype(np.float32)))
        if info.task == "binary":
            output = torch.sigmoid(output)
        elif info.task == "multiclass":
            output = torch.softmax(output, dim=1)
    result: np.ndarray[Any, Any] = output.numpy()
    return result
