"""The tamper suite: every way an export can lie is caught, with the right check and place."""

from __future__ import annotations

import nacl.signing
import pytest

from mpc_ledger.consensus import precommit_body
from mpc_ledger.identity.signing import Purpose, Signer
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.proto.v1 import consensus_pb2, ledger_pb2
from mpc_ledger.verify import verify_export

from .conftest import export_chain, standard_chain


def failures(report, check=None):
    return [f for f in report.failures if check is None or f.check == check]


def checks_failed(report):
    return {f.check for f in report.failures}


def test_untampered_export_verifies(consortium, builder, tmp_path):
    standard_chain(builder)
    report = verify_export(export_chain(consortium, builder, tmp_path / "x"), consortium.genesis)
    assert report.ok, report.failures
    assert report.chain["blocks"] == 6 and report.chain["records"] == 10
    assert report.records_by_kind == {"bind_user": 1, "note": 9}
    assert report.records_by_author["a/alice"] == 2
    assert sum(report.signed_certificates.values()) == 6 * 3
    assert report.chain["jobs"] == "none in this export"


def _tampered(builder, height):
    """A deep copy of the chain's blocks, and the block at ``height`` in it to change."""
    blocks = [
        consensus_pb2.CommittedBlock.FromString(b.SerializeToString()) for b in builder.blocks
    ]
    return blocks, blocks[height - 1]


def test_a_byte_changed_in_a_record(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks, block = _tampered(builder, 3)
    raw = block.block.records[1]
    changed = raw.replace(b"two", b"twO")
    block.block.records[1] = changed
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x", blocks=blocks), consortium.genesis
    )
    assert checks_failed(report) == {"records-root", "log-root", "record-signature"}
    (signature,) = failures(report, "record-signature")
    assert signature.height == 3 and signature.log_index == 5
    assert signature.record_id == parse_record(changed).id.hex()
    assert "signature does not verify under 'b'" in signature.message
    (root,) = failures(report, "records-root")
    assert root.height == 3 and "do not hash to its header's records root" in root.message
    assert [f.height for f in failures(report, "log-root")] == [3]


def test_a_record_dropped(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks, block = _tampered(builder, 3)
    del block.block.records[0]
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x", blocks=blocks), consortium.genesis
    )
    assert checks_failed(report) == {"records-root", "log-root"}
    messages = [f.message for f in failures(report, "records-root")]
    assert "the header counts 3 records, the block holds 2" in messages
    assert all(f.height == 3 for f in failures(report, "records-root"))


def test_two_records_swapped(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks, block = _tampered(builder, 3)
    first, second = block.block.records[0], block.block.records[1]
    block.block.records[0], block.block.records[1] = second, first
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x", blocks=blocks), consortium.genesis
    )
    # every record is still genuine: only where they sit gives it away
    assert checks_failed(report) == {"records-root", "log-root"}
    assert failures(report, "records-root")[0].height == 3


def test_a_swap_that_breaks_a_rule_is_a_permission_failure(consortium, builder, tmp_path):
    # alice's record moved before the block that binds her key (two blocks re-certified)
    builder.commit([builder.note("a/alice", "too early"), builder.bind("a", "a/alice")])
    report = verify_export(export_chain(consortium, builder, tmp_path / "x"), consortium.genesis)
    (failure,) = report.failures
    assert failure.check == "record-permission" and failure.height == 1 and failure.log_index == 0
    assert "has no key bound" in failure.message


def test_a_forged_record_signature(consortium, builder, tmp_path):
    standard_chain(builder)
    forged = builder.record("b", signer=builder.signers["c"], note=ledger_pb2.Note(text="I am b"))
    builder.commit([builder.note("a", "fine"), forged])  # a quorum certified it anyway
    report = verify_export(export_chain(consortium, builder, tmp_path / "x"), consortium.genesis)
    (failure,) = report.failures
    assert failure.check == "record-signature"
    assert (failure.height, failure.log_index) == (7, 11)
    assert failure.record_id == parse_record(forged).id.hex()
    assert failure.message == "signature does not verify under 'b''s key"


def test_a_certificate_one_signature_short(consortium, builder, tmp_path):
    standard_chain(builder)
    builder.commit([builder.note("a")], signers=["a", "b"])
    report = verify_export(export_chain(consortium, builder, tmp_path / "x"), consortium.genesis)
    (failure,) = report.failures
    assert failure.check == "certificate" and failure.height == 7
    assert failure.message == "2 valid signatures of distinct validators, a quorum is 3 of 4"


def test_the_same_validators_signature_counted_twice(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks, block = _tampered(builder, 4)
    signatures = block.certificate.signatures
    signatures[2].CopyFrom(signatures[0])
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x", blocks=blocks), consortium.genesis
    )
    messages = [(f.height, f.message) for f in failures(report, "certificate")]
    assert messages == [
        (4, f"signer {signatures[0].validator_id!r} is counted twice (duplicate signature)"),
        (4, "2 valid signatures of distinct validators, a quorum is 3 of 4"),
    ]
    assert checks_failed(report) == {"certificate"}


def _sign_precommit(signer: Signer, chain_id, block, validator_id):
    header = block.block.header
    body = precommit_body(chain_id, header.height, 0, block.certificate.block_id, validator_id)
    return consensus_pb2.CommitSignature(
        validator_id=validator_id, signature=signer.sign(Purpose.PRECOMMIT, body)
    )


def test_a_validator_not_in_the_genesis(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks, block = _tampered(builder, 2)
    outsider = Signer(nacl.signing.SigningKey.generate(), builder.chain_id)
    block.certificate.signatures[2].CopyFrom(
        _sign_precommit(outsider, builder.chain_id, block, "mallory")
    )
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x", blocks=blocks), consortium.genesis
    )
    messages = [f.message for f in failures(report, "certificate")]
    assert messages == [
        "signer 'mallory' is not a validator in the genesis",
        "2 valid signatures of distinct validators, a quorum is 3 of 4",
    ]
    assert {f.height for f in report.failures} == {2}


def test_a_validators_name_with_another_key(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks, block = _tampered(builder, 2)
    outsider = Signer(nacl.signing.SigningKey.generate(), builder.chain_id)
    name = block.certificate.signatures[1].validator_id
    block.certificate.signatures[1].CopyFrom(
        _sign_precommit(outsider, builder.chain_id, block, name)
    )
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x", blocks=blocks), consortium.genesis
    )
    assert f"precommit signature of {name!r} does not verify" in [
        f.message for f in report.failures
    ]


def test_a_block_dropped_from_the_middle(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks = list(builder.blocks)
    del blocks[2]
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x", blocks=blocks, to_height=6),
        consortium.genesis,
    )
    chain = failures(report, "hash-chain")
    assert [(f.height, f.message) for f in chain] == [
        (4, "block 4 follows block 2"),
        (4, "previous block hash is not the hash of block 2"),
    ]


def test_a_header_changed_after_certification(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks, block = _tampered(builder, 5)
    block.block.header.proposer_id = (
        "auditor" if block.block.header.proposer_id != "auditor" else "a"
    )
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x", blocks=blocks), consortium.genesis
    )
    assert (5, "certificate block id is not the block header's hash") in [
        (f.height, f.message) for f in failures(report, "certificate")
    ]
    assert [f.height for f in failures(report, "hash-chain")] == [6]  # the next block's link


def test_the_wrong_genesis(consortium, other_consortium, builder, tmp_path):
    standard_chain(builder)
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x"), other_consortium.genesis
    )
    (failure,) = report.failures
    assert failure.check == "genesis"
    assert "the genesis file defines chain" in failure.message
    assert "wrong genesis" in failure.message


def test_a_record_by_a_user_nobody_bound(consortium, builder, tmp_path):
    standard_chain(builder)
    stranger = builder.note("b/stranger", "hi")
    builder.commit([stranger])
    report = verify_export(export_chain(consortium, builder, tmp_path / "x"), consortium.genesis)
    (failure,) = report.failures
    assert failure.check == "record-permission"
    assert failure.message == "user 'b/stranger' has no key bound on the ledger"
    assert failure.record_id == parse_record(stranger).id.hex()


def test_a_record_that_is_not_a_record(consortium, builder, tmp_path):
    builder.commit([b"\xff\xff not protobuf"])
    report = verify_export(export_chain(consortium, builder, tmp_path / "x"), consortium.genesis)
    (failure,) = report.failures
    assert failure.check == "record-encoding" and failure.log_index == 0
    assert failure.message.startswith("malformed record")


def test_a_wrong_trailer(consortium, builder, tmp_path):
    from mpc_ledger.verify.container import ExportReader, ExportWriter

    standard_chain(builder)
    good = export_chain(consortium, builder, tmp_path / "good")
    with ExportReader(good) as reader:
        header = reader.header
        blocks = list(reader.blocks())
    with ExportWriter(tmp_path / "bad", header) as writer:
        for block in blocks:
            writer.block(block)
        writer.finish(999, bytes(32))
    report = verify_export(tmp_path / "bad", consortium.genesis)
    assert [f.message for f in report.failures] == [
        "log_size is 999, the export holds 10",
        "log_root is not the last block's log root",
    ]


def test_asking_for_a_job_that_is_not_there(consortium, builder, tmp_path):
    standard_chain(builder)
    report = verify_export(
        export_chain(consortium, builder, tmp_path / "x"), consortium.genesis, job_id="job-42"
    )
    (failure,) = report.failures
    assert (failure.check, failure.message) == ("jobs", "job 'job-42' is not in this export")


@pytest.mark.parametrize("count", [1, 3])
def test_failures_are_bounded(consortium, builder, tmp_path, monkeypatch, count):
    import mpc_ledger.verify.report as report_module

    monkeypatch.setattr(report_module, "FAILURES_LISTED_MAX", count)
    builder.commit([builder.note("b/nobody", str(i)) for i in range(5)])
    report = verify_export(export_chain(consortium, builder, tmp_path / "x"), consortium.genesis)
    assert len(report.failures) == count
    assert report.failure_counts["record-permission"] == 5
    assert sum(report.failures_omitted.values()) == 5 - count
