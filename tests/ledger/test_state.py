"""The ledger's state machine: who may write what, with real signatures."""

from __future__ import annotations

import json
import subprocess
import sys

import nacl.signing
import pytest

from mpc_ledger.identity.genesis import QuotaParams
from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs.rules import JOB_RULES
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.ledger.refusals import RefusalCode
from mpc_ledger.ledger.state import LEDGER_RULES, LedgerState, Rule, Rulebook
from mpc_ledger.proto.v1 import jobs_pb2, ledger_pb2
from mpc_ledger.rulebook import RULEBOOK

from .conftest import raw


@pytest.fixture
def state(authors):
    return LedgerState(authors.genesis, LEDGER_RULES)


def check(state, record):
    parsed = parse_record(raw(record))
    assert not isinstance(parsed, str), parsed
    return state.check(parsed)


def commit(state, *records):
    assert state.check_block([raw(r) for r in records]) is None
    for record in records:
        state.apply(parse_record(raw(record)))


def test_member_note_is_valid(state, authors):
    assert check(state, authors.note("a")) is None


def test_signature_by_another_key_is_refused(state, authors):
    forged = authors.note("a", signer=authors.signers["b"])
    assert check(state, forged) == "signature does not verify under 'a''s key"


def test_signature_for_another_chain_is_refused(state, authors):
    other_chain = Signer(authors.signers["a"]._key, bytes(32))
    assert "signature does not verify" in check(state, authors.note("a", signer=other_chain))


def test_changed_byte_breaks_the_signature(state, authors):
    record = authors.note("a", text="pay 10")
    record.body.note.text = "pay 99"
    assert "signature does not verify" in check(state, record)


def test_unknown_author_and_unbound_user(state, authors):
    assert "neither a member nor a user id" in check(state, authors.note("zed"))
    assert check(state, authors.note("a/alice")) == "user 'a/alice' has no key bound on the ledger"


def test_bind_then_user_writes_then_revoke(state, authors):
    commit(state, authors.bind("a", "a/alice"))
    assert check(state, authors.note("a/alice")) is None
    commit(state, authors.revoke("a", "a/alice"))
    assert check(state, authors.note("a/alice")) == "user 'a/alice''s key was revoked"


def test_member_binds_only_its_own_users(state, authors):
    assert check(state, authors.bind("b", "a/mallory")) == (
        "member 'b' may bind users only as 'b/<name>'"
    )
    assert "may revoke only its own users" in check(state, authors.revoke("b", "a/alice"))


def test_users_cannot_bind_users(state, authors):
    commit(state, authors.bind("a", "a/alice"))
    binding = ledger_pb2.UserKeyBinding(user_id="a/eve", public_key=bytes(32), roles=["scientist"])
    record = authors.record("a/alice", bind_user=binding)
    assert check(state, record) == "only members may write bind_user records; 'a/alice' is a user"


def test_bad_bindings(state, authors):
    key = bytes(nacl.signing.SigningKey.generate().verify_key)
    cases = {
        "x": "must be '<member id>/<name>'",
        "a/ok": None,
    }
    for user_id, expected in cases.items():
        binding = ledger_pb2.UserKeyBinding(user_id=user_id, public_key=key, roles=["scientist"])
        result = check(state, authors.record("a", bind_user=binding))
        assert (result is None) if expected is None else (expected in result)
    binding = ledger_pb2.UserKeyBinding(user_id="a/r", public_key=key, roles=["king"])
    assert "roles must be" in check(state, authors.record("a", bind_user=binding))
    binding = ledger_pb2.UserKeyBinding(user_id="a/k", public_key=b"short", roles=["scientist"])
    assert "32-byte" in check(state, authors.record("a", bind_user=binding))


def test_a_key_can_be_bound_once(state, authors):
    commit(state, authors.bind("a", "a/alice"))
    again = ledger_pb2.UserKeyBinding(
        user_id="a/alice2",
        public_key=authors.user_signer("a/alice").public_key,
        roles=["scientist"],
    )
    assert "already bound to user 'a/alice'" in check(state, authors.record("a", bind_user=again))
    assert "already has an active key" in check(state, authors.bind("a", "a/alice"))


def test_duplicate_record_is_refused(state, authors):
    record = authors.note("b")
    commit(state, record)
    assert check(state, record) == "duplicate: this record is already on the ledger"


def test_block_is_checked_in_order(state, authors):
    bind, note = authors.bind("c", "c/carol"), authors.note("c/carol")
    assert state.check_block([raw(bind), raw(note)]) is None  # the binding comes first
    reason = state.check_block([raw(note), raw(bind)])
    assert reason.startswith("record 0") and "has no key bound" in reason
    twice = authors.note("a")
    assert "record 1" in state.check_block([raw(twice), raw(twice)])
    revoke = authors.revoke("c", "c/carol")
    commit(state, bind)
    reason = state.check_block([raw(revoke), raw(authors.note("c/carol"))])
    assert reason.startswith("record 1") and "revoked" in reason
    # checking never changed the committed state
    assert check(state, authors.note("c/carol")) is None


def test_draft_block_adds_only_what_fits(state, authors):
    draft = state.draft_block()
    bind = parse_record(raw(authors.bind("a", "a/dave")))
    note = parse_record(raw(authors.note("a/dave")))
    assert draft.try_add(note) is not None  # not bound yet
    assert draft.try_add(bind) is None
    assert draft.try_add(note) is None
    assert draft.try_add(note) == "duplicate: this record is already on the ledger"


def test_malformed_and_non_canonical_bytes(state, authors):
    assert state.check_raw(b"\xff\x00garbage")[1].startswith("malformed record")
    record = authors.note("a")
    body = record.body.SerializeToString(deterministic=True)
    # the same fields, but with the signature first: a different encoding of the record
    reordered = b"\x12\x40" + record.signature + b"\x0a" + bytes([len(body)]) + body
    assert parse_record(reordered) == "malformed record: not in canonical encoding"


def test_oversized_record_is_refused(authors):
    state = LedgerState(authors.genesis, LEDGER_RULES)
    state.max_record_bytes = 200
    record = authors.record("a", note=ledger_pb2.Note(data=b"x" * 500))
    assert "the limit is 200" in check(state, record)


def test_note_limits(state, authors):
    long_text = authors.record("a", note=ledger_pb2.Note(text="x" * 5000))
    assert "note text longer than" in check(state, long_text)


def test_feature_tables_follow_the_overlay(state):
    draft_view = state.draft_block()._overlay
    draft_view.put("jobs", "j1", ("pending",))
    assert draft_view.get("jobs", "j1") == ("pending",)
    assert state.get("jobs", "j1") is None  # a draft never changes the committed state
    state.put("jobs", "j0", ("done",))
    assert draft_view.keys("jobs") == ["j0", "j1"]


def test_unsigned_padding_beside_a_signed_body_is_refused(state, authors):
    record = raw(authors.note("a"))
    padded = record + b"\x7a\x80\x08" + bytes(1024)  # field 15, 1 KiB, outside the body
    assert parse_record(padded) == "malformed record: unknown field at Record: field number 15"
    assert state.check_raw(padded)[1].startswith("malformed record: unknown field")
    assert state.check_block([padded]).startswith("record 0: malformed record: unknown field")


def test_a_users_records_stop_at_the_window_quota_and_members_are_not_counted(authors):
    state = LedgerState(authors.genesis, LEDGER_RULES)
    state.quotas = QuotaParams(user_window_blocks=10, user_records_per_window=2)
    state.apply_block(1, [parse_record(raw(authors.bind("a", "a/quota")))])
    notes = [parse_record(raw(authors.note("a/quota", f"n{i}"))) for i in range(4)]
    assert state.refusal(notes[0]) is None
    # what waits in a mempool counts as used
    assert state.refusal(notes[0], 2, 100).code == RefusalCode.QUOTA_EXCEEDED
    assert state.check_block([r.raw for r in notes[:3]]).startswith("record 2 (")
    state.apply_block(2, notes[:2])
    refusal = state.refusal(notes[2])
    assert refusal.code == RefusalCode.QUOTA_EXCEEDED
    assert "next window starts at height 11" in refusal.reason
    for index in range(5):  # members' own records are never counted
        assert state.refusal(parse_record(raw(authors.note("a", f"m{index}")))) is None
    state.apply_block(10, [])
    assert state.refusal(notes[2]) is None  # a new window
    draft = state.draft_block()
    assert draft.try_add(notes[2]) is None
    assert draft.try_add(notes[3]) is None


def test_refusals_carry_a_code_from_a_closed_set(authors):
    state = LedgerState(authors.genesis, LEDGER_RULES)
    stranger = parse_record(raw(authors.note("x/unknown")))
    assert state.refusal(stranger).code == RefusalCode.UNKNOWN_AUTHOR
    forged = parse_record(raw(authors.note("a", signer=authors.signers["b"])))
    assert state.refusal(forged).code == RefusalCode.BAD_SIGNATURE
    binding = parse_record(raw(authors.bind("a", "b/eve")))
    assert state.refusal(binding).code == RefusalCode.INVALID


# -- the rulebook: rules passed in, never registered by importing (issue #14) -----------

# Builds a state with the ledger's own rules in a fresh interpreter, then lists what got
# imported: a feature above the ledger must not come in with it.
LEDGER_ONLY_RUN = """
import json, sys
from pathlib import Path
from mpc_ledger.identity.genesis import load_genesis
from mpc_ledger.ledger.state import LEDGER_RULES, LedgerState
state = LedgerState(load_genesis(Path(sys.argv[1])), LEDGER_RULES)
above = ("mpc_ledger.jobs", "mpc_ledger.rulebook", "mpc_ledger.daemon")
print(json.dumps(sorted(m for m in sys.modules if m.startswith(above))))
"""


def test_a_ledger_state_imports_no_feature_above_the_ledger(ledger_consortium):
    result = subprocess.run(
        [sys.executable, "-c", LEDGER_ONLY_RUN, str(ledger_consortium.genesis_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_a_state_with_the_ledgers_rules_only_refuses_a_job_record(state, authors):
    decision = authors.record("a", job_decision=jobs_pb2.JobDecision(job_id=bytes(32)))
    refusal = state.refusal(parse_record(raw(decision)))
    assert refusal.code == RefusalCode.UNKNOWN_KIND
    assert refusal.reason == "unknown record kind 'job_decision'"
    # the same record under the whole rulebook reaches the job rules
    whole = LedgerState(authors.genesis, RULEBOOK).refusal(parse_record(raw(decision)))
    assert whole.code == RefusalCode.INVALID and "no job" in whole.reason


def test_a_kind_in_two_parts_of_a_rulebook_is_refused():
    again = {"note": Rule(authors="member", check=lambda view, record: None)}
    with pytest.raises(ValueError, match="record kind 'note' has a rule in two parts"):
        Rulebook(LEDGER_RULES, again)
    with pytest.raises(ValueError, match="'job_decision'"):
        Rulebook(LEDGER_RULES, JOB_RULES, {"job_decision": again["note"]})


def test_the_rulebook_is_the_ledgers_rules_and_the_jobs_and_cannot_be_changed():
    assert set(RULEBOOK) == set(LEDGER_RULES) | set(JOB_RULES)
    assert not set(LEDGER_RULES) & set(JOB_RULES)
    assert RULEBOOK["note"] is LEDGER_RULES["note"]
    assert RULEBOOK["job_started"] is JOB_RULES["job_started"]
    with pytest.raises(TypeError):
        RULEBOOK["note"] = JOB_RULES["job_started"]
