"""Partial exports (--from) and the comparison of a newer export with an older one."""

from __future__ import annotations

from mpc_ledger.verify import verify_export
from mpc_ledger.verify.container import ExportReader, ExportWriter

from .conftest import export_chain, standard_chain


def test_a_partial_export_verifies_and_says_what_it_cannot_show(consortium, builder, tmp_path):
    standard_chain(builder)
    path = export_chain(consortium, builder, tmp_path / "p", from_height=4)
    report = verify_export(path, consortium.genesis)
    assert report.ok, report.failures
    assert report.chain["heights"] == "4..6" and report.chain["partial"] == "yes"
    assert report.chain["records"] == 3 and report.chain["log_size"] == 10
    assert "anchor" in report.checks_run
    text = " ".join(report.limitations)
    assert "partial export from height 4" in text
    # alice's key was bound at height 1: her record at height 5 rests on its certificate
    assert "1 records by users whose keys were bound before height 4" in text


def test_a_partial_export_with_a_forged_frontier(consortium, builder, tmp_path):
    standard_chain(builder)
    good = export_chain(consortium, builder, tmp_path / "p", from_height=4)
    with ExportReader(good) as reader:
        header = reader.header
        blocks = list(reader.blocks())
    header.anchor_log_frontier[0] = bytes(32)
    with ExportWriter(tmp_path / "bad", header) as writer:
        for block in blocks:
            writer.block(block)
        writer.finish(blocks[-1].block.header.log_size, blocks[-1].block.header.log_root)
    report = verify_export(tmp_path / "bad", consortium.genesis)
    assert [(f.check, f.height, f.message) for f in report.failures] == [
        ("anchor", 3, "the log frontier does not hash to the block's log root")
    ]


def test_a_newer_export_extends_an_older_one(consortium, builder, tmp_path):
    standard_chain(builder)
    old = export_chain(consortium, builder, tmp_path / "old", to_height=3)
    builder.commit([builder.note("c", "later")])
    new = export_chain(consortium, builder, tmp_path / "new")
    report = verify_export(new, consortium.genesis, previous=old)
    assert report.ok, report.failures
    assert report.chain["extends_previous"].startswith(f"yes: {old} (heights 1..3, 7 records)")


def test_a_partial_newer_export_still_proves_it_extends(consortium, builder, tmp_path):
    standard_chain(builder)
    old = export_chain(consortium, builder, tmp_path / "old", to_height=5)
    new = export_chain(consortium, builder, tmp_path / "new", from_height=3)
    report = verify_export(new, consortium.genesis, previous=old)
    assert report.ok, report.failures
    assert "consistency proof of" in report.chain["extends_previous"]


def test_an_export_that_forks_an_earlier_one(consortium, builder, tmp_path):
    builder.commit([builder.note("a", "common")])
    builder.commit([builder.note("b", "common too")])
    fork = builder.fork()
    builder.commit([builder.note("a", "what really happened")])
    builder.commit([builder.note("b", "and then")])
    old = export_chain(consortium, builder, tmp_path / "old")
    # a quorum signs a second block at height 3: the chain the new export shows
    fork.commit([fork.note("a", "a different story")])
    fork.commit([])
    fork.commit([fork.note("c", "longer, too")])
    new = export_chain(consortium, fork, tmp_path / "new")
    assert verify_export(new, consortium.genesis).ok  # each export is fine on its own
    report = verify_export(new, consortium.genesis, previous=old)
    (failure,) = report.failures
    assert failure.check == "consistency" and failure.height == 3
    assert failure.message.startswith(f"fork: at height 3 the previous export ({old}) has block ")


def test_a_fork_between_heights_neither_holds_fails_the_consistency_proof(
    consortium, builder, tmp_path
):
    builder.commit([builder.note("a", "common")])
    fork = builder.fork()
    builder.commit([builder.note("a", "old story")])
    builder.commit([])
    old = export_chain(consortium, builder, tmp_path / "old")  # heights 1..3, 2 records
    fork.commit([fork.note("a", "new story")])
    fork.commit([])
    fork.commit([])
    fork.commit([fork.note("b", "more")])
    new = export_chain(consortium, fork, tmp_path / "new", from_height=5)  # anchor 4, 2 records
    report = verify_export(new, consortium.genesis, previous=old)
    (failure,) = report.failures
    assert failure.check == "consistency"
    assert "is not a prefix of this one (3 records)" in failure.message
    assert "the consistency proof does not verify" in failure.message


def test_a_newer_export_that_starts_too_late_cannot_be_compared(consortium, builder, tmp_path):
    standard_chain(builder)
    old = export_chain(consortium, builder, tmp_path / "old", to_height=2)
    new = export_chain(consortium, builder, tmp_path / "new", from_height=5)
    report = verify_export(new, consortium.genesis, previous=old)
    (failure,) = report.failures
    assert failure.check == "consistency"
    assert "cannot be proven" in failure.message and "--from 3 or lower" in failure.message


def test_an_older_export_given_as_the_newer(consortium, builder, tmp_path):
    standard_chain(builder)
    short = export_chain(consortium, builder, tmp_path / "short", to_height=2)
    long = export_chain(consortium, builder, tmp_path / "long")
    report = verify_export(short, consortium.genesis, previous=long)
    assert [f.check for f in report.failures] == ["consistency"]
    assert "does not extend the previous one" in report.failures[0].message


def test_a_tampered_previous_export_is_reported(consortium, builder, tmp_path):
    standard_chain(builder)
    new = export_chain(consortium, builder, tmp_path / "new")
    builder.blocks[1].certificate.ClearField("signatures")  # the builder's copy, after exporting
    old = export_chain(
        consortium, builder, tmp_path / "old", to_height=3, blocks=builder.blocks[:3]
    )
    report = verify_export(new, consortium.genesis, previous=old)
    messages = [f.message for f in report.failures]
    assert any("the previous export" in m and "[certificate] at height 2" in m for m in messages)
