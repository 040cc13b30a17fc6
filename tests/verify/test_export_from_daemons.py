"""`ledger export`, `ledger prove`, `verify`, `verify-proof` against four real daemons."""

from __future__ import annotations

import json

import pytest

from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.testing.consortium import make_consortium

from .conftest import run_cli_inprocess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-live")
    consortium = make_consortium(root / "c", "a,b,c", auditor=True)
    daemons = [DaemonProcess(consortium.config(m), root / f"{m}.log") for m in consortium.ids]
    for member_id, daemon in zip(consortium.ids, daemons, strict=True):
        daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
    record_ids = []
    with LedgerClient(consortium.party("b")) as client:
        for i in range(5):
            reply = client.submit(client.note(f"note {i}"))
            assert reply.accepted, reply.reason
            record_ids.append(reply.record_id)
        for record_id in record_ids:
            assert client.wait_committed(record_id).committed
    # Every test exports from some member: each must hold the notes (a member whose links
    # came up late catches up only after the next height announcement).
    for member_id in consortium.ids:
        with LedgerClient(consortium.party(member_id)) as client:
            assert client.wait_committed(record_ids[-1]).committed, member_id
    yield consortium, record_ids
    stop_all(daemons)


def test_export_then_verify(live, tmp_path, capsys):
    consortium, _ = live
    out = tmp_path / "ledger.export"
    code = run_cli_inprocess("ledger", "export", "-o", out, "--config", consortium.config("c"))
    assert code == 0, capsys.readouterr()
    assert "exported heights 1.." in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.export"]  # no temp file left
    code = run_cli_inprocess(
        "verify", out, "--genesis", consortium.genesis_path, "--format", "json"
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["failures"]
    assert report["records_by_author"]["b"] >= 5
    assert report["chain"]["exported_by"] == "c"


def test_partial_export_then_verify_against_the_full_one(live, tmp_path, capsys):
    consortium, _ = live
    full = tmp_path / "full.export"
    assert (
        run_cli_inprocess("ledger", "export", "-o", full, "--config", consortium.config("a")) == 0
    )
    partial = tmp_path / "partial.export"
    code = run_cli_inprocess(
        "ledger", "export", "-o", partial, "--from", "2", "--config", consortium.config("b")
    )
    assert code == 0
    capsys.readouterr()
    code = run_cli_inprocess(
        "verify", partial, "--genesis", consortium.genesis_path, "--previous", full
    )
    out = capsys.readouterr().out
    # the partial export was made later: it extends the full one (or equals it)
    assert code == 0, out
    assert "partial export from height 2" in out


def test_prove_then_verify_proof(live, tmp_path, capsys):
    consortium, record_ids = live
    proof = tmp_path / "record.proof"
    code = run_cli_inprocess(
        "ledger", "prove", record_ids[2].hex(), "-o", proof, "--config", consortium.config("a")
    )
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    code = run_cli_inprocess("verify-proof", proof, "--genesis", consortium.genesis_path)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("VERIFIED") and record_ids[2].hex() in out


def test_prove_an_unknown_record(live, tmp_path, capsys):
    consortium, _ = live
    code = run_cli_inprocess(
        "ledger", "prove", "00" * 32, "-o", tmp_path / "p", "--config", consortium.config("a")
    )
    assert code == 1 and "not committed" in capsys.readouterr().err
    code = run_cli_inprocess(
        "ledger", "prove", "xyz", "-o", tmp_path / "p", "--config", consortium.config("a")
    )
    assert code == 2


def test_export_from_above_the_tip(live, tmp_path, capsys):
    consortium, _ = live
    code = run_cli_inprocess(
        "ledger",
        "export",
        "-o",
        tmp_path / "x",
        "--from",
        "999999",
        "--config",
        consortium.config("a"),
    )
    assert code == 2 and "above this party's ledger" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
