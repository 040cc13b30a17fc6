"""A member's user: keys made on the user's side, bound by the member, then talking to the
member's daemon over mTLS as themselves — and refused once revoked."""

from __future__ import annotations

import secrets
import shutil

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from mpc_ledger.client import UserClient, UserProfile
from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.ledger.records import make_record
from mpc_ledger.net import mtls
from mpc_ledger.net.admission import UserLimits
from mpc_ledger.proto.v1 import (
    ledger_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
    party_pb2,
    party_pb2_grpc,
)
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    root = tmp_path_factory.mktemp("users")
    consortium = make_consortium(root / "c", "a,b,c", auditor=True)
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
    listed = run_cli("job", "list", "--profile", profile)
    assert listed.returncode == 1 and listed.stdout == ""  # the error on stderr only
    assert "a's daemon refused or did not answer (UNAUTHENTICATED" in listed.stderr


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


# -- attacks by bound users (the security-hardening issue, findings 1, 5 and 14) ----------


def revoke_with_cli(consortium, user_id):
    result = run_cli(
        "user",
        "revoke",
        user_id,
        "--reason",
        "test",
        "--config",
        consortium.config(user_id.split("/")[0]),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"revoked {user_id!r}" in result.stdout


def test_a_user_cannot_call_another_members_daemon(consortium, tmp_path):
    profile = make_user(consortium, tmp_path, "a/mallory")
    user = UserProfile.load(profile)
    target = consortium.genesis.member("b")
    # a/mallory's own certificate, presented to b's daemon (trusting b's CA, as an attacker would)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=target.tls_ca_certificate_pem,
        private_key=user.tls_key_pem,
        certificate_chain=user.tls_certificate.public_bytes(serialization.Encoding.PEM)
        + user.member.tls_ca_certificate_pem,
    )
    tls = mtls.secure_channel_to(target, credentials)
    try:
        for channel in (tls, mtls.user_channel(tls, "a/mallory")):
            with pytest.raises(grpc.RpcError) as error:
                ledger_service_pb2_grpc.LedgerStub(channel).Tip(
                    ledger_service_pb2.TipRequest(), timeout=10
                )
            assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "may call only their own member's daemon ('a'), not 'b''s" in (
                error.value.details()
            )
    finally:
        tls.close()
    with UserClient(user) as client:  # and their own member's daemon still serves them
        assert client.tip().height >= 1


def test_rebinding_a_user_with_new_keys_refuses_the_old_certificate(consortium, tmp_path):
    old = make_user(consortium, tmp_path / "old", "a/carol")
    with LedgerClient(consortium.party("a")) as member:
        body = ledger_pb2.RecordBody(
            author="a",
            nonce=secrets.randbits(63),
            revoke_user=ledger_pb2.UserKeyRevocation(user_id="a/carol", reason="new keys"),
        )
        reply = member.submit(make_record(member.signer, body))
        assert member.wait_committed(reply.record_id, 20).committed
    new = make_user(consortium, tmp_path / "new", "a/carol")
    with UserClient.from_profile(new) as client:
        assert client.tip().height >= 1
    with UserClient.from_profile(old) as client, pytest.raises(grpc.RpcError) as error:
        client.tip()
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "not for the TLS key bound on the ledger" in error.value.details()


def test_user_revoke_ends_the_users_open_follow_stream(consortium, tmp_path):
    profile = make_user(consortium, tmp_path, "a/dave")
    with UserClient.from_profile(profile) as client:
        stream = client.stub.Follow(ledger_service_pb2.GetBlocksRequest(from_height=1), timeout=90)
        first = next(stream)
        assert first.block.header.height == 1
        revoke_with_cli(consortium, "a/dave")
        with pytest.raises(grpc.RpcError) as error:
            for _ in stream:  # the ledger keeps committing blocks; the stream must end
                pass
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, error.value
    assert "no active key on the ledger" in error.value.details()


def test_one_users_streams_leave_members_and_other_users_served(consortium, tmp_path):
    attacker = make_user(consortium, tmp_path, "a/erin")
    other = make_user(consortium, tmp_path, "a/frank")
    limit = UserLimits().streams_per_user
    with UserClient.from_profile(attacker) as client:
        request = ledger_service_pb2.GetBlocksRequest(from_height=1)
        streams = [client.stub.Follow(request, timeout=120) for _ in range(40)]
        try:
            outcomes = [_first_of(stream) for stream in streams]
            admitted = [o for o in outcomes if o == "block"]
            refused = [o for o in outcomes if o != "block"]
            assert len(admitted) == limit, outcomes
            assert all("RESOURCE_EXHAUSTED" in o and "long streams open" in o for o in refused)
            # members' calls do not wait behind the user's streams...
            with LedgerClient(consortium.party("a")) as member:
                assert member.tip(timeout_s=5).height >= 1
            status = run_cli("status", "--config", consortium.config("a"), "--format", "json")
            assert status.returncode == 0, status.stdout + status.stderr
            # ...and neither do another user's short calls
            with UserClient.from_profile(other) as bystander:
                assert bystander.tip(timeout_s=5).height >= 1
        finally:
            for stream in streams:
                stream.cancel()


def _first_of(stream):
    """'block' if the stream yields a block, else the refusal as 'CODE: details'."""
    try:
        next(stream)
    except grpc.RpcError as exc:
        return f"{exc.code().name}: {exc.details()}"
    return "block"
