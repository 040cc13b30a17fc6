"""A member's user: keys made on the user's side, bound by the member, then talking to the
member's daemon over mTLS as themselves — and refused once revoked."""

from __future__ import annotations

import secrets
import shutil

import grpc
import pytest

from mpc_ledger.client import UserClient
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.ledger.records import make_record
from mpc_ledger.proto.v1 import ledger_pb2, party_pb2, party_pb2_grpc
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import DaemonProcess, run_cli, stop_all

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    root = tmp_path_factory.mktemp("users")
    consortium = make_consortium(root / "c", "a,b,c", "--auditor")
    daemons = [DaemonProcess(consortium.config(m), root / f"{m}.log") for m in consortium.ids]
    for member_id, daemon in zip(consortium.ids, daemons, strict=True):
        daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
    yield consortium
    stop_all(daemons)


def make_user(consortium, tmp_path, user_id, roles="scientist"):
    profile = tmp_path / user_id.replace("/", "-")
    result = run_cli("user", "keygen", "--id", user_id, "--out", profile)
    assert result.returncode == 0, result.stderr
    assert oct((profile / "keys" / "signing.key").stat().st_mode)[-3:] == "600"
    member = user_id.split("/")[0]
    added = run_cli(
        "user",
        "add",
        profile / "user.json",
        "--roles",
        roles,
        "--config",
        consortium.config(member),
        "--out",
        profile / "keys" / "tls.crt",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    assert "bound" in added.stdout
    shutil.copy(consortium.genesis_path, profile / "genesis.json")
    return profile


def test_bound_user_reads_and_writes_as_themselves(consortium, tmp_path):
    profile = make_user(consortium, tmp_path, "a/alice")
    with UserClient.from_profile(profile) as client:
        assert client.tip().height >= 1
        record = client.sign(note=ledger_pb2.Note(text="hello from alice"))
        reply = client.submit(record)
        assert reply.accepted, reply.reason
        assert client.wait_committed(reply.record_id, 20).committed
        assert record.body.author == "a/alice"
        # members-only methods stay closed to users
        status = party_pb2_grpc.PartyControlStub(client._channel)
        with pytest.raises(grpc.RpcError) as error:
            status.Status(party_pb2.StatusRequest(), timeout=5)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "user 'a/alice' may not call /mpc_ledger.v1.PartyControl/Status" in (
            error.value.details()
        )


def test_revoked_user_is_refused(consortium, tmp_path):
    profile = make_user(consortium, tmp_path, "a/bob")
    with LedgerClient(consortium.party("a")) as member:
        body = ledger_pb2.RecordBody(
            author="a",
            nonce=secrets.randbits(63),
            revoke_user=ledger_pb2.UserKeyRevocation(user_id="a/bob", reason="left"),
        )
        reply = member.submit(make_record(member.signer, body))
        assert member.wait_committed(reply.record_id, 20).committed
    with UserClient.from_profile(profile) as client, pytest.raises(grpc.RpcError) as error:
        client.tip()
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "no active key on the ledger" in error.value.details()


def test_user_add_refuses_another_members_namespace(consortium, tmp_path):
    profile = tmp_path / "eve"
    assert run_cli("user", "keygen", "--id", "b/eve", "--out", profile).returncode == 0
    result = run_cli(
        "user",
        "add",
        profile / "user.json",
        "--roles",
        "scientist",
        "--config",
        consortium.config("a"),
    )
    assert result.returncode == 2
    assert "user 'b/eve' is not in 'a''s namespace" in result.stderr


def test_profile_without_certificate_says_what_to_do(tmp_path):
    profile = tmp_path / "carol"
    assert run_cli("user", "keygen", "--id", "c/carol", "--out", profile).returncode == 0
    from mpc_ledger.client import UserProfile
    from mpc_ledger.errors import ConfigError

    with pytest.raises(ConfigError, match="ask your organisation's operator"):
        UserProfile.load(profile)
