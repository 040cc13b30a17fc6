"""mTLS against real gRPC servers on loopback: who gets in, and what everyone else is told."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import grpc
import pytest
from cryptography import x509

from mpc_ledger.daemon.server import PartyDaemon
from mpc_ledger.identity import certs, keys
from mpc_ledger.identity.material import PartyIdentity
from mpc_ledger.net import mtls
from mpc_ledger.net.peers import describe_rpc_error
from mpc_ledger.proto.v1 import party_pb2, party_pb2_grpc
from mpc_ledger.testing.consortium import make_consortium

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def server(consortium):
    party = consortium.party("b")
    daemon = PartyDaemon(party)
    daemon.start()
    yield daemon
    daemon.stop(0)


def ca_key_of(consortium, member_id):
    return keys.load_tls_key(consortium.root / member_id / "keys" / "tls-ca.key")


def ca_cert_of(consortium, member_id):
    pem = (consortium.root / member_id / "keys" / "tls-ca.crt").read_bytes()
    return x509.load_pem_x509_certificate(pem)


def status_with(identity: PartyIdentity, server: PartyDaemon, *, as_name: str = "b"):
    """Call b's Status presenting ``identity``'s certificate."""
    target = server.party.identity.member
    channel = mtls.member_channel(identity, target)
    try:
        return party_pb2_grpc.PartyControlStub(channel).Status(party_pb2.StatusRequest(), timeout=5)
    finally:
        channel.close()


def forged_identity(consortium, *, name, issuer_id=None, ca=None, not_after=None):
    """An identity whose leaf names ``name``, issued by ``issuer_id``'s CA (or a foreign ``ca``)."""
    base = consortium.party("a").identity
    leaf_key = keys.generate_tls_key()
    if ca is None:
        ca_key, ca_cert = ca_key_of(consortium, issuer_id), ca_cert_of(consortium, issuer_id)
    else:
        ca_key, ca_cert = ca
    now = NOW if not_after is None else not_after - dt.timedelta(days=1)
    leaf = certs.issue_leaf_certificate(
        name,
        leaf_key.public_key(),
        ca_cert,
        ca_key,
        now=now,
        days=1,
        not_valid_before=now - dt.timedelta(days=2),
    )
    member = dataclasses.replace(
        base.member, tls_ca_certificate=ca_cert.public_bytes(certs.serialization.Encoding.DER)
    )
    return PartyIdentity(member, base.genesis, base.signing_key, keys.tls_key_pem(leaf_key), leaf)


def test_member_connects_and_is_identified(consortium, server):
    reply = status_with(consortium.party("a").identity, server)
    assert reply.member_id == "b"
    assert reply.caller_id == "a"
    assert reply.chain_id == consortium.genesis.chain_id.hex()


def test_certificate_from_a_ca_outside_the_genesis_is_refused(consortium, server):
    foreign_key = keys.generate_tls_key()
    foreign_ca = certs.make_ca_certificate("mallory", foreign_key, now=NOW)
    intruder = forged_identity(consortium, name="a", ca=(foreign_key, foreign_ca))
    with pytest.raises(grpc.RpcError) as error:
        status_with(intruder, server)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "TLS handshake failed" in describe_rpc_error(error.value)


def test_plaintext_client_is_refused(server):
    channel = grpc.insecure_channel(server.party.listen_address)
    with pytest.raises(grpc.RpcError) as error:
        party_pb2_grpc.PartyControlStub(channel).Status(party_pb2.StatusRequest(), timeout=5)
    channel.close()
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_member_presenting_another_members_id_is_refused(consortium, server, caplog):
    # a's own CA (trusted by the TLS layer) issues a leaf that claims to be c.
    impostor = forged_identity(consortium, name="c", issuer_id="a")
    with caplog.at_level(logging.WARNING), pytest.raises(grpc.RpcError) as error:
        status_with(impostor, server)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "names member 'c' but was not issued by 'c''s CA" in error.value.details()
    assert any("refused /mpc_ledger.v1.PartyControl/Status" in r.message for r in caplog.records)


def test_name_outside_the_genesis_is_refused_even_from_a_member_ca(consortium, server):
    stranger = forged_identity(consortium, name="zed", issuer_id="a")
    with pytest.raises(grpc.RpcError) as error:
        status_with(stranger, server)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "'zed', which is not a genesis member" in error.value.details()


def test_expired_certificate_is_refused(consortium, server):
    expired = forged_identity(
        consortium, name="a", issuer_id="a", not_after=NOW - dt.timedelta(days=3)
    )
    assert expired.tls_certificate.not_valid_after_utc < NOW
    with pytest.raises(grpc.RpcError) as error:
        status_with(expired, server)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_refuses_a_server_posing_as_another_member(consortium, server):
    # Dial b's port believing it is c: only c's CA is trusted for c, so b's certificate fails.
    a = consortium.party("a").identity
    c = consortium.genesis.member("c")
    channel = mtls.member_channel(a, c, endpoint=server.party.listen_address)
    with pytest.raises(grpc.RpcError) as error:
        party_pb2_grpc.PartyControlStub(channel).Status(party_pb2.StatusRequest(), timeout=5)
    channel.close()
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_identify_peer_rejects_non_tls_and_missing_certificates(consortium):
    genesis = consortium.genesis
    with pytest.raises(mtls.PeerAuthError, match="not TLS"):
        mtls.identify_peer(genesis, {"transport_security_type": [b"insecure"]})
    with pytest.raises(mtls.PeerAuthError, match="no client certificate"):
        mtls.identify_peer(genesis, {"transport_security_type": [b"ssl"]})


def _auth_context(identity: PartyIdentity) -> dict[str, list[bytes]]:
    pem = identity.tls_certificate.public_bytes(certs.serialization.Encoding.PEM)
    return {"transport_security_type": [b"ssl"], "x509_pem_cert": [pem]}


def test_a_known_certificate_is_still_checked_against_the_clock(consortium):
    # The issuance check is remembered per certificate; its validity period is not.
    b = consortium.party("b").identity
    context = _auth_context(b)
    assert mtls.identify_caller(consortium.genesis, context).member.id == "b"
    later = b.tls_certificate.not_valid_after_utc + dt.timedelta(seconds=1)
    with pytest.raises(mtls.PeerAuthError, match="'b' is outside its validity period"):
        mtls.identify_caller(consortium.genesis, context, now=later)
    assert mtls.identify_caller(consortium.genesis, context).member.id == "b"


def test_a_certificate_known_under_one_genesis_is_refused_under_another(consortium, tmp_path):
    # Same member ids, different CAs: what passed in one consortium proves nothing in another.
    other = make_consortium(tmp_path / "other", "a,b")
    b = consortium.party("b").identity
    assert mtls.identify_caller(consortium.genesis, _auth_context(b)).member.id == "b"
    with pytest.raises(mtls.PeerAuthError, match="was not issued by 'b'"):
        mtls.identify_caller(other.genesis, _auth_context(b))
