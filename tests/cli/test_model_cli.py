"""`mpc-ledger model predict|show` on model files (`mpc_ledger.mpc.model_file`), in process.

The files are written by `write_model_file`, as `job result` writes them, around models built
with the training program's own `build_torch_model`; the preprocessing tensors are made here
(a job's workers release them under the same names). A real job's file is applied through the
CLI in tests/jobs/test_job_cli.py.
"""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest
import torch

from mpc_ledger.cli.main import main
from mpc_ledger.mpc.model_codec import encode_model, model_digest_of_encoding
from mpc_ledger.mpc.model_file import (
    PREPROCESSING_MEAN,
    PREPROCESSING_SCALE,
    ModelFileError,
    ModelFileInfo,
    write_model_file,
)
from mpc_ledger.mpc.train_spec import TrainSpec, build_torch_model

FEATURES = ("age", "bmi", "crp")
MEAN = np.array([50.0, 25.0, 3.0], dtype=np.float32)
SCALE = np.array([10.0, 4.0, 2.0], dtype=np.float32)
ROWS = np.array([[61.0, 22.5, 1.0], [38.0, 31.0, 7.5], [50.0, 25.0, 3.0]])


def model_file(folder, *, kind="logistic", loss="bce", classes=0, standardised=True, **changes):
    """A model file of a model with seeded weights; (path, the torch model, the info)."""
    spec = TrainSpec(
        layout="horizontal", model=kind, n_features=3, loss=loss, classes=classes, seed=5
    )
    model = build_torch_model(spec)
    tensors = {name: p.detach().numpy() for name, p in model.state_dict().items()}
    if standardised:
        tensors |= {PREPROCESSING_MEAN: MEAN, PREPROCESSING_SCALE: SCALE}
    fields = {
        "job_id": "ab" * 32,
        "model_hash": model_digest_of_encoding(encode_model(tensors)).hex(),
        "kind": kind,
        "loss": loss,
        "features": FEATURES,
        "label": "readmitted",
        "standardised": standardised,
        "classes": classes,
    }
    info = ModelFileInfo(**(fields | changes))
    path = folder / f"{kind}.safetensors"
    write_model_file(path, info, tensors)
    return path, model, info


def rows_csv(path, header, rows):
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def expected_outputs(model, rows, standardised=True):
    x = (rows - MEAN) / SCALE if standardised else rows
    with torch.no_grad():
        return model(torch.tensor(x, dtype=torch.float32))


def test_predict_applies_the_preprocessing_and_the_model_by_column_name(tmp_path, capsys):
    path, model, _ = model_file(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    # columns in another order, and one the model does not take (skipped)
    rows = rows_csv(
        tmp_path / "rows.csv",
        ["crp", "patient", "age", "bmi"],
        [[r[2], f"p{i}", r[0], r[1]] for i, r in enumerate(ROWS)],
    )
    assert main(["model", "predict", str(path), "--input", str(rows)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "probability,label"
    logits = expected_outputs(model, ROWS).squeeze(1)
    got = [tuple(map(float, line.split(","))) for line in lines[1:]]
    assert len(got) == len(ROWS)
    for (probability, label), logit in zip(got, logits, strict=True):
        assert probability == pytest.approx(float(torch.sigmoid(logit)), abs=1e-6)
        assert label == float(logit > 0)
    # without the preprocessing the predictions would differ: it was applied
    raw = torch.sigmoid(expected_outputs(model, ROWS, standardised=False)).squeeze(1)
    assert not np.allclose([p for p, _ in got], raw.numpy(), atol=1e-3)

    out = tmp_path / "predictions.json"
    command = ["model", "predict", str(path), "--input", str(rows), "--output", str(out)]
    assert main([*command, "--format", "json"]) == 0
    document = json.loads(out.read_text())
    assert [d["label"] for d in document] == [int(label) for _, label in got]
    assert out.stat().st_mode & 0o777 == 0o600


def test_multiclass_and_regression_predictions(tmp_path, capsys):
    rows = rows_csv(tmp_path / "rows.csv", FEATURES, ROWS)
    path, model, _ = model_file(tmp_path, kind="softmax", loss="cross_entropy", classes=3)
    assert main(["model", "predict", str(path), "--input", str(rows)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "class,probability_0,probability_1,probability_2"
    probabilities = torch.softmax(expected_outputs(model, ROWS), dim=1)
    for line, expected in zip(lines[1:], probabilities, strict=True):
        cells = line.split(",")
        assert int(cells[0]) == int(expected.argmax())
        assert np.allclose([float(c) for c in cells[1:]], expected.numpy(), atol=1e-6)

    path, model, _ = model_file(tmp_path, kind="linear", loss="mse", standardised=False)
    assert main(["model", "predict", str(path), "--input", str(rows), "--format", "json"]) == 0
    captured = capsys.readouterr()
    values = [d["value"] for d in json.loads(captured.out)]
    expected_values = expected_outputs(model, ROWS, standardised=False).squeeze(1)
    assert np.allclose(values, expected_values.numpy(), atol=1e-5)
    assert "holds no preprocessing" in captured.err


def test_show_prints_the_metadata(tmp_path, capsys):
    path, _, info = model_file(tmp_path)
    assert main(["model", "show", str(path), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format"] == "mpc-ledger/model-file/v1"
    assert document["features"] == list(FEATURES) and document["label"] == "readmitted"
    assert document["model"] == {"kind": "logistic", "hidden": [], "loss": "bce", "classes": 0}
    assert document["preprocessing"]["kind"] == "standardise"
    assert main(["model", "show", str(path)]) == 0
    assert info.model_hash in capsys.readouterr().out


def test_rows_that_do_not_fit_are_refused_naming_column_and_line_never_the_value(tmp_path, capsys):
    path, _, _ = model_file(tmp_path)
    missing = rows_csv(tmp_path / "missing.csv", ["age", "bmi"], ROWS[:, :2])
    assert main(["model", "predict", str(path), "--input", str(missing)]) == 2
    assert "missing schema columns 'crp'" in capsys.readouterr().err

    bad = ROWS.tolist()
    bad[1][1] = "secret-4711"
    written = rows_csv(tmp_path / "bad.csv", FEATURES, bad)
    out = tmp_path / "out.csv"
    command = ["model", "predict", str(path), "--input", str(written), "--output", str(out)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "line 3, column 'bmi': not a float64" in err, err
    assert "secret-4711" not in err
    assert not out.exists() and not (tmp_path / "out.csv.partial").exists()

    bad[1][1] = "inf"
    written = rows_csv(tmp_path / "inf.csv", FEATURES, bad)
    assert main(["model", "predict", str(path), "--input", str(written)]) == 2
    assert "row 2 (after the header), column 'bmi': not a finite number" in capsys.readouterr().err


def test_a_changed_header_byte_or_tensor_byte_is_refused(tmp_path, capsys):
    path, _, _ = model_file(tmp_path)
    rows = rows_csv(tmp_path / "rows.csv", FEATURES, ROWS)
    original = path.read_bytes()
    header_length = int.from_bytes(original[:8], "little")
    header = original[8 : 8 + header_length]

    # a byte in the header's JSON: the file no longer parses
    brace = 8 + header.index(b"{")
    path.write_bytes(original[:brace] + b"[" + original[brace + 1 :])
    assert main(["model", "predict", str(path), "--input", str(rows)]) == 2
    assert "not a valid safetensors file" in capsys.readouterr().err

    # a shape in the header: the tensors no longer fit the metadata's model
    shape = 8 + header.index(b'"shape":[1,3]')
    changed = original[:shape] + b'"shape":[3,1]' + original[shape + 13 :]
    path.write_bytes(changed)
    assert main(["model", "show", str(path)]) == 2
    assert "the metadata's model needs float32 (1, 3)" in capsys.readouterr().err

    # a weight's last byte: the tensors no longer hash to the file's model hash
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0x01]))
    assert main(["model", "predict", str(path), "--input", str(rows)]) == 2
    assert "do not hash to the model hash it states" in capsys.readouterr().err


def test_metadata_of_another_version_or_model_is_refused(tmp_path, capsys):
    import safetensors.numpy

    # metadata naming four features for a model of three: its weights do not fit, so the
    # writer refuses it, and a reader refuses such a file written by other means
    with pytest.raises(ModelFileError, match="needs float32 \\(1, 4\\)"):
        model_file(tmp_path, features=("age", "bmi", "crp", "sex"))
    assert list(tmp_path.iterdir()) == []
    path, _, info = model_file(tmp_path)
    tensors = safetensors.numpy.load(path.read_bytes())
    document = dataclasses.replace(info, features=("age", "bmi", "crp", "sex")).to_json()
    metadata = {"mpc_ledger": json.dumps(document)}
    path.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))
    assert main(["model", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "tensor 'weight' is float32 (1, 3); the metadata's model needs float32 (1, 4)" in err

    other = tmp_path / "other.safetensors"
    document = json.dumps({"format": "mpc-ledger/model-file/v9"})
    arrays = {"weight": np.zeros((1, 3), np.float32)}
    other.write_bytes(safetensors.numpy.save(arrays, metadata={"mpc_ledger": document}))
    assert main(["model", "show", str(other)]) == 2
    assert "'mpc-ledger/model-file/v9' is not one this release reads" in capsys.readouterr().err
    other.write_bytes(safetensors.numpy.save(arrays))
    assert main(["model", "show", str(other)]) == 2
    assert "has no mpc_ledger metadata" in capsys.readouterr().err


class _Marker:
    """Unpickling this creates a file: the file must never appear."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_or_torch_save_file_is_refused_without_being_unpickled(tmp_path, capsys):
    rows = rows_csv(tmp_path / "rows.csv", FEATURES, ROWS)
    marker = tmp_path / "unpickled"
    pickled = tmp_path / "model.pt"
    pickled.write_bytes(pickle.dumps({"weight": _Marker(marker)}))
    assert main(["model", "predict", str(pickled), "--input", str(rows)]) == 2
    assert "not a model file (safetensors)" in capsys.readouterr().err
    assert not marker.exists()

    torch.save({"weight": torch.zeros(1, 3)}, tmp_path / "saved.pt")
    assert main(["model", "show", str(tmp_path / "saved.pt")]) == 2
    assert "not a model file (safetensors)" in capsys.readouterr().err
