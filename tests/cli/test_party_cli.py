"""The operator's path through the real CLI: real daemon processes, real mTLS, real exit codes."""

from __future__ import annotations

import json
import os
import signal

import grpc
import pytest

from mpc_ledger.daemon.processes import DaemonProcess
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import party_pb2, party_pb2_grpc
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def running(consortium, tmp_path):
    daemons = {}
    for member_id in consortium.ids:
        daemon = DaemonProcess(consortium.config(member_id), tmp_path / f"{member_id}.log")
        daemons[member_id] = daemon
    for member_id, daemon in daemons.items():
        daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
    yield daemons
    for daemon in daemons.values():
        daemon.stop()


def status_json(consortium, member_id, timeout_ms=10000):
    result = run_cli(
        "status",
        "--config",
        consortium.config(member_id),
        "--format",
        "json",
        "--timeout-ms",
        str(timeout_ms),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_each_party_sees_the_other_two_over_mtls(consortium, running):
    for member_id in consortium.ids:
        reply = status_json(consortium, member_id)
        assert reply["member_id"] == member_id
        assert reply["caller_id"] == member_id
        assert reply["chain_id"] == consortium.genesis.chain_id.hex()
        peers = {p["id"]: p for p in reply["peers"]}
        assert set(peers) == set(consortium.ids) - {member_id}
        assert all(p.get("reachable") for p in peers.values()), peers
    text = run_cli("status", "--config", consortium.config("a"), "--timeout-ms", "10000")
    assert text.returncode == 0
    assert "2/2 answering over mTLS" in text.stdout
    assert "ledger     height" in text.stdout and "(validator)" in text.stdout


def test_a_down_peer_is_reported_and_a_down_daemon_exits_1(consortium, running):
    assert running["c"].stop() == 0
    reply = status_json(consortium, "a", timeout_ms=1500)
    peers = {p["id"]: p for p in reply["peers"]}
    assert peers["b"]["reachable"] is True
    assert peers["c"].get("reachable", False) is False
    assert "UNAVAILABLE" in peers["c"]["error"]
    down = run_cli("status", "--config", consortium.config("c"))
    assert down.returncode == 1
    assert "did not answer" in down.stderr and "party start" in down.stderr
    assert down.stdout == ""
    as_json = run_cli("status", "--config", consortium.config("c"), "--format", "json")
    assert as_json.returncode == 1 and "did not answer" in as_json.stderr
    assert "did not answer" in json.loads(as_json.stdout)["error"]  # still one document


def test_a_client_with_a_foreign_certificate_is_refused(consortium, running, tmp_path):
    other = make_consortium(tmp_path / "other")  # same ids, different keys
    foreign = other.party("a").identity
    target = consortium.genesis.member("b")
    channel = mtls.member_channel(foreign, target)
    with pytest.raises(grpc.RpcError) as error:
        party_pb2_grpc.PartyControlStub(channel).Status(party_pb2.StatusRequest(), timeout=5)
    channel.close()
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    # and b is still serving its members afterwards
    assert status_json(consortium, "a")["peers"][0]["reachable"]


def test_sigterm_and_sigint_stop_cleanly(consortium, running):
    assert running["a"].stop(signal.SIGTERM) == 0
    assert "received SIGTERM, stopping" in running["a"].log()
    assert "stopped" in running["a"].log()
    assert running["b"].stop(signal.SIGINT) == 0
    assert "received SIGINT, stopping" in running["b"].log()


def one_line_error(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_missing_config_file(tmp_path):
    line = one_line_error(run_cli("party", "start", "--config", tmp_path / "nope.toml"))
    assert f"{tmp_path / 'nope.toml'}: config file not found" in line


def test_bad_field_names_file_and_field(consortium):
    config = consortium.config("a")
    config.write_text(config.read_text().replace('level = "info"', 'level = "loud"'))
    line = one_line_error(run_cli("party", "start", "--config", config))
    assert f"{config}: log.level: must be one of" in line


def test_unknown_key_is_an_error(consortium):
    config = consortium.config("a")
    config.write_text(config.read_text().replace("[keys]", "[keys]\nsigning_kee = 'x'"))
    result = run_cli("party", "start", "--config", config)
    assert result.returncode == 2
    assert "keys.signing_kee: unknown key" in result.stderr


def test_key_that_does_not_match_the_genesis(consortium):
    config = consortium.config("a")
    b_key = consortium.root / "b" / "keys" / "signing.key"
    config.write_text(config.read_text().replace('"keys/signing.key"', f'"{b_key}"'))
    line = one_line_error(run_cli("party", "start", "--config", config))
    assert f"{config}: keys.signing_key:" in line
    assert "is not the signing key the genesis lists for 'a'" in line


def test_tls_certificate_of_another_member(consortium):
    config = consortium.config("a")
    b_cert = consortium.root / "b" / "keys" / "tls.crt"
    config.write_text(config.read_text().replace('"keys/tls.crt"', f'"{b_cert}"'))
    line = one_line_error(run_cli("party", "start", "--config", config))
    assert f"{config}: keys.tls_certificate:" in line
    assert "names 'b', not 'a'" in line


def test_world_readable_key_is_refused(consortium):
    key = consortium.root / "a" / "keys" / "tls.key"
    os.chmod(key, 0o644)
    line = one_line_error(run_cli("party", "start", "--config", consortium.config("a")))
    assert str(key) in line and "chmod 600" in line


def test_member_not_in_genesis(consortium):
    config = consortium.config("a")
    config.write_text(config.read_text().replace('id = "a"', 'id = "zz"'))
    line = one_line_error(run_cli("party", "start", "--config", config))
    assert f"{config}: party.id: member 'zz' is not in the genesis" in line


def test_listen_address_in_use(consortium, running):
    # b's config pointed at a's address, which a already serves
    config = consortium.config("b")
    address = consortium.genesis.member("a").endpoint
    config.write_text(config.read_text().replace("[party]", f'[party]\nlisten = "{address}"'))
    line = one_line_error(run_cli("party", "start", "--config", config))
    assert f"{config}: party.listen: cannot listen on {address}" in line


def test_keygen_then_assemble(tmp_path):
    for member_id, port, roles in (("hosp-a", 7301, "data,validator"), ("bank-b", 7302, "data")):
        result = run_cli(
            "party",
            "keygen",
            "--id",
            member_id,
            "--endpoint",
            f"localhost:{port}",
            "--roles",
            roles,
            "--out",
            tmp_path / member_id,
        )
        assert result.returncode == 0, result.stderr
        assert "member.json" in result.stdout
        assert oct((tmp_path / member_id / "keys" / "signing.key").stat().st_mode)[-3:] == "600"
    again = run_cli(
        "party",
        "keygen",
        "--id",
        "hosp-a",
        "--endpoint",
        "localhost:7301",
        "--roles",
        "data",
        "--out",
        tmp_path / "hosp-a",
    )
    assert "refusing to overwrite" in one_line_error(again)
    out = tmp_path / "genesis.json"
    result = run_cli(
        "consortium",
        "assemble",
        tmp_path / "hosp-a" / "member.json",
        tmp_path / "bank-b" / "member.json",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    chain_id = json.loads(out.read_text())["chain_id"]
    assert f"chain id: {chain_id}" in result.stdout
    duplicate = run_cli(
        "consortium",
        "assemble",
        tmp_path / "hosp-a" / "member.json",
        tmp_path / "hosp-a" / "member.json",
        "--out",
        tmp_path / "g2.json",
    )
    assert duplicate.returncode == 2
    assert "id: same as" in duplicate.stderr
    assert not (tmp_path / "g2.json").exists()


def test_keygen_rejects_bad_input_before_writing_anything(tmp_path):
    line = one_line_error(
        run_cli(
            "party",
            "keygen",
            "--id",
            "A!",
            "--endpoint",
            "h:1",
            "--roles",
            "data",
            "--out",
            tmp_path / "p",
        )
    )
    assert "--id: 'A!' is not a valid member id" in line
    line = one_line_error(
        run_cli(
            "party",
            "keygen",
            "--id",
            "a",
            "--endpoint",
            "h:1",
            "--roles",
            "data,boss",
            "--out",
            tmp_path / "p",
        )
    )
    assert "--roles: unknown role(s) ['boss']" in line
    assert not (tmp_path / "p").exists()
