"""`mpc-ledger dataset register/list` against real daemons (a, b and an auditor validator)."""

from __future__ import annotations

import json

import pytest

from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import run_cli

from .conftest import PARTIES

pytestmark = pytest.mark.integration

CSV = "patient_id,age,bmi,smoker,readmitted\np1,34,22.5,true,false\np2,51,30.1,false,true\n"


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset-cli")
    consortium = make_consortium(root / "c", "a,b", dealer=True, auditor=True)
    daemons = [DaemonProcess(consortium.config(m), root / f"{m}.log") for m in consortium.ids]
    try:
        for member_id, daemon in zip(consortium.ids, daemons, strict=True):
            daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
        yield consortium
    finally:
        stop_all(daemons)


def dataset(consortium, member_id, *args):
    return run_cli("dataset", *args, "--config", consortium.config(member_id))


def test_register_then_every_party_lists_it(consortium, tmp_path):
    data = tmp_path / "cohort.csv"
    data.write_text(CSV)
    result = dataset(
        consortium,
        "a",
        "register",
        data,
        "--id",
        "a/cohort-2026",
        "--schema",
        PARTIES / "schemas" / "hospital-a-cohort.toml",
        "--description",
        "test cohort",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    registered = json.loads(result.stdout)
    assert registered["rows"] == 2 and len(registered["fingerprint"]) == 64

    again = dataset(
        consortium,
        "a",
        "register",
        data,
        "--id",
        "a/cohort-2026",
        "--columns",
        "patient_id:string,age:int64,bmi:float64,smoker:bool,readmitted:bool",
    )
    assert again.returncode == 1
    assert "refused the registration: dataset 'a/cohort-2026' is already registered" in (
        again.stderr
    )
    assert again.stdout == ""  # errors on stderr: stdout only ever carries output

    for member_id in ("b", "auditor"):
        listed = dataset(consortium, member_id, "list", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        [entry] = json.loads(listed.stdout)
        assert entry["dataset_id"] == "a/cohort-2026" and entry["owner"] == "a"
        assert entry["rows"] == 2 and entry["fingerprint"] == registered["fingerprint"]
        assert [c["name"] for c in entry["schema"]["columns"]][:2] == ["patient_id", "age"]
        assert "p1" not in listed.stdout and "22.5" not in listed.stdout  # never values
    text = dataset(consortium, "b", "list")
    assert "a/cohort-2026" in text.stdout and registered["fingerprint"][:16] in text.stdout
    assert "readmitted:bool" in text.stdout


def test_bad_input_is_one_clear_error(consortium, tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("patient_id,age,bmi,smoker,readmitted\np1,old,22.5,true,false\n")
    schema = PARTIES / "schemas" / "hospital-a-cohort.toml"
    result = dataset(consortium, "a", "register", data, "--id", "a/bad", "--schema", schema)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"mpc-ledger: error: {data}: line 2, column 'age': 'old' is not an int64"
    )
    assert "Traceback" not in result.stderr
    result = dataset(consortium, "a", "register", data, "--id", "b/theirs", "--schema", schema)
    assert result.returncode == 2
    assert "--id: member 'a' may register datasets only as 'a/<name>'" in result.stderr
    result = dataset(consortium, "dealer", "register", data, "--id", "dealer/x", "--schema", schema)
    assert result.returncode == 2 and "lacks the data role" in result.stderr
