import nacl.signing
import pytest

from mpc_ledger.identity.signing import (
    Purpose,
    Signer,
    signing_bytes,
    unknown_field_path,
    verify_signature,
)
from mpc_ledger.proto.v1 import consensus_pb2, ledger_pb2, party_pb2

CHAIN = bytes(range(32))
OTHER_CHAIN = bytes(32)


@pytest.fixture
def signer():
    return Signer(nacl.signing.SigningKey.generate(), CHAIN)


def body():
    return party_pb2.PeerStatus(
        id="b", endpoint="127.0.0.1:7002", reachable=True, round_trip_ms=1.5
    )


def test_valid_signature_verifies(signer):
    signature = signer.sign(Purpose.TEST, body())
    assert verify_signature(signer.public_key, Purpose.TEST, CHAIN, body(), signature)


def test_flipped_byte_in_body_fails(signer):
    signature = signer.sign(Purpose.TEST, body())
    encoded = bytearray(body().SerializeToString(deterministic=True))
    encoded[3] ^= 0x01
    assert not verify_signature(signer.public_key, Purpose.TEST, CHAIN, bytes(encoded), signature)


def test_flipped_byte_in_signature_fails(signer):
    signature = bytearray(signer.sign(Purpose.TEST, body()))
    signature[10] ^= 0x80
    assert not verify_signature(signer.public_key, Purpose.TEST, CHAIN, body(), bytes(signature))


def test_other_purpose_fails(signer):
    signature = signer.sign(Purpose.PREVOTE, body())
    assert not verify_signature(signer.public_key, Purpose.PRECOMMIT, CHAIN, body(), signature)


def test_other_chain_fails(signer):
    signature = signer.sign(Purpose.TEST, body())
    assert not verify_signature(signer.public_key, Purpose.TEST, OTHER_CHAIN, body(), signature)


def test_other_members_key_fails(signer):
    other = Signer(nacl.signing.SigningKey.generate(), CHAIN)
    signature = signer.sign(Purpose.TEST, body())
    assert not verify_signature(other.public_key, Purpose.TEST, CHAIN, body(), signature)


def test_malformed_inputs_are_a_failed_verification_not_an_exception(signer):
    signature = signer.sign(Purpose.TEST, body())
    assert not verify_signature(b"short", Purpose.TEST, CHAIN, body(), signature)
    assert not verify_signature(signer.public_key, Purpose.TEST, CHAIN, body(), signature[:-1])
    assert not verify_signature(bytes(32), Purpose.TEST, CHAIN, body(), signature)


def test_signing_bytes_are_unambiguous():
    # Moving a byte between the purpose and the chain id changes the signed bytes.
    assert signing_bytes("ab", b"c", b"") != signing_bytes("a", b"bc", b"")
    assert signing_bytes("a", b"b", b"c") != signing_bytes("a", b"bc", b"")


def test_deterministic_encoding_is_what_is_signed(signer):
    message = body()
    assert signing_bytes(Purpose.TEST, CHAIN, message).endswith(
        message.SerializeToString(deterministic=True)
    )


def test_repr_does_not_show_the_key(signer):
    assert "Signer(public_key=" in repr(signer)
    assert bytes(signer._key).hex() not in repr(signer)


def test_unknown_fields_are_found_at_any_depth_and_fail_verification(signer):
    record = ledger_pb2.Record(body=ledger_pb2.RecordBody(author="a", note=ledger_pb2.Note()))
    assert unknown_field_path(record) is None
    record.body.note.MergeFromString(b"\x7a\x03abc")
    assert unknown_field_path(record) == "body.note: field number 15"
    signature = signer.sign(Purpose.TEST, record.body)  # signed with the padding in it
    assert not verify_signature(signer.public_key, Purpose.TEST, CHAIN, record.body, signature)
    block = consensus_pb2.Block(records=[b"x"])
    assert unknown_field_path(block) is None
    proposal = consensus_pb2.ConsensusMessage()
    proposal.proposal.block.header.MergeFromString(b"\x7a\x01z")
    assert unknown_field_path(proposal) == "proposal.block.header: field number 15"
