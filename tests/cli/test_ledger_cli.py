"""`mpc-ledger ledger ...` against four real daemons."""

from __future__ import annotations

import json

import pytest

from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    root = tmp_path_factory.mktemp("ledger-cli")
    consortium = make_consortium(root / "c", "a,b,c", auditor=True)
    daemons = [DaemonProcess(consortium.config(m), root / f"{m}.log") for m in consortium.ids]
    for member_id, daemon in zip(consortium.ids, daemons, strict=True):
        daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
    yield consortium
    stop_all(daemons)


def ledger(consortium, member_id, *args):
    return run_cli("ledger", *args, "--config", consortium.config(member_id))


def test_note_commits_and_every_node_shows_it(consortium):
    result = ledger(consortium, "b", "note", "quarterly key rotation done", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    committed = json.loads(result.stdout)
    for member_id in consortium.ids:
        tail = ledger(consortium, member_id, "tail", "-n", "5")
        assert tail.returncode == 0
        assert "quarterly key rotation done" in tail.stdout
        assert committed["record_id"][:16] in tail.stdout
    shown = ledger(consortium, "auditor", "show", str(committed["height"]), "--format", "json")
    block = json.loads(shown.stdout)
    assert block["height"] == committed["height"]
    assert len(block["certificate"]["signers"]) >= 3  # quorum of 4 validators
    assert [r["id"] for r in block["records"]] == [committed["record_id"]]
    assert block["records"][0]["author"] == "b"


def test_status_and_show_text(consortium):
    status = ledger(consortium, "c", "status", "--format", "json")
    assert status.returncode == 0
    assert json.loads(status.stdout)["height"] >= 1
    show = ledger(consortium, "c", "show", "1")
    assert show.returncode == 0
    assert "certificate" in show.stdout and "signed by" in show.stdout
    missing = ledger(consortium, "c", "show", "999999")
    assert missing.returncode == 1
    assert "no block at height 999999" in missing.stderr
    assert missing.stdout == ""  # errors on stderr: stdout only ever carries output


def test_daemon_not_running(tmp_path):
    lonely = make_consortium(tmp_path / "lonely", "x")
    result = run_cli("ledger", "status", "--config", lonely.config("x"))
    assert result.returncode == 1
    assert "did not answer" in result.stderr and "party start" in result.stderr


# One command of each family that calls the party's own daemon (`job` calls it as a user:
# tests/cli/test_user_cli.py checks its errors).
DAEMON_COMMANDS = {
    "ledger": ("ledger", "tail", "-n", "3"),
    "dataset": ("dataset", "list"),
    "export": ("ledger", "export", "-o", "{tmp}/ledger.export"),
    "user": ("user", "revoke", "x/alice", "--reason", "left"),
    "status": ("status",),
}


def test_every_family_says_on_stderr_that_the_daemon_is_down(tmp_path):
    lonely = make_consortium(tmp_path / "lonely", "x")
    for family, command in DAEMON_COMMANDS.items():
        argv = [part.format(tmp=tmp_path) for part in command]
        result = run_cli(*argv, "--config", lonely.config("x"))
        assert result.returncode == 1, (family, result.stdout, result.stderr)
        assert result.stdout == "", family  # stdout only ever carries a command's output
        [line] = result.stderr.splitlines()  # one line, no traceback
        assert line.startswith("mpc-ledger: ") and "did not answer" in line, (family, line)
        assert "party start --config" in line, (family, line)
    assert not (tmp_path / "ledger.export").exists()  # nothing half-written
