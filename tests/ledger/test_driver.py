"""The ReadyDriver on a real consensus core (one validator, real keys) with recording doubles
for its clock, transport and application, and the in-memory store: the order it owns, the
proposal's wait for records, a member that only follows. The node and the simulator are
both driven by this class: tests/ledger/test_catchup.py and tests/consensus/test_simulation.py
check that each runs it."""

from __future__ import annotations

import nacl.signing

from mpc_ledger.consensus import (
    ConsensusConfig,
    ConsensusCore,
    ProposalRequest,
    Ready,
    Timeout,
    ValidatorSet,
    signed_position,
)
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.driver import DriverObserver, ReadyDriver, Step
from mpc_ledger.ledger.store import MemoryBlockStore
from mpc_ledger.proto.v1 import consensus_pb2 as pb

CHAIN_ID = bytes(range(32))
WAIT_MS = 500


class Recorder:
    """Clock, transport, application and observer at once: one log of what happened when."""

    def __init__(self, store: MemoryBlockStore) -> None:
        self.store = store
        self.log: list[str] = []
        self.now = 1000.0
        self.records: list[bytes] = []
        self.followed: list[int] = []

    # Clock
    def now_ms(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return 7

    def schedule(self, timeout: Timeout) -> None:
        self.log.append("schedule")

    # Transport: what the store holds when a message leaves
    def send(self, message: pb.ConsensusMessage) -> None:
        mark = self.store.consensus_state().last_signed
        assert signed_position(message) <= signed_position(mark), "sent before persisted"
        self.log.append(f"send {message.WhichOneof('kind')}")

    # Application
    def follow(self, item: pb.CommittedBlock) -> None:
        self.followed.append(item.block.header.height)

    def on_durable(self, committed: list[pb.CommittedBlock], evidence: list[pb.Evidence]) -> None:
        assert self.store.height() == committed[-1].block.header.height, "applied before stored"
        self.log.append("apply " + ",".join(str(c.block.header.height) for c in committed))

    def has_records(self) -> bool:
        return bool(self.records)

    def proposal_wait_ms(self) -> float:
        return WAIT_MS

    def choose_records(self, request: ProposalRequest) -> list[bytes]:
        chosen, self.records = self.records, []
        return chosen


class StepLog(DriverObserver):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def after_step(self, step: Step, ready: Ready) -> None:
        self.recorder.log.append(f"-- {step}")


class CountingStore(MemoryBlockStore):
    def __init__(self, recorder_log: list[str]) -> None:
        super().__init__(lambda height, record: record)
        self.saves = recorder_log

    def save(self, state, committed, evidence=None) -> None:
        super().save(state, committed, evidence)
        self.saves.append("persist")


def one_validator(observer=None):
    """A driver around the core of a one-validator chain (it commits on its own votes)."""
    key = nacl.signing.SigningKey(bytes(32))
    config = ConsensusConfig(CHAIN_ID, ValidatorSet([("v", bytes(key.verify_key))]))
    log: list[str] = []
    store = CountingStore(log)
    recorder = Recorder(store)
    recorder.log = log
    core = ConsensusCore(config, "v", Signer(key, CHAIN_ID), lambda height, raws: None)
    driver = ReadyDriver(core, store, recorder, recorder, recorder, observer or StepLog(recorder))
    return driver, core, store, recorder


def test_one_ready_is_persisted_then_sent_then_scheduled_then_applied():
    driver, core, store, recorder = one_validator()
    recorder.records = [b"r1"]  # records waiting: the proposer does not wait
    driver.handle(core.start())
    log = recorder.log
    proposing = log.index("-- apply") + 1  # after start's own Ready: the proposal's
    assert log[proposing:] == [
        "persist",
        "-- persist",
        "send proposal",
        "send vote",
        "send vote",
        "-- send",
        *["schedule"] * log[proposing:].count("schedule"),
        "-- schedule",
        "apply 1",
        "-- apply",
    ]
    assert store.height() == 1 and list(store.block(1).block.records) == [b"r1"]
    assert store.block(1).block.header.time_ms == 7  # the clock's wall time
    assert recorder.followed == [1]  # the state followed before anything was stored


def test_a_proposer_with_no_records_waits_for_some_or_for_its_wait_to_end():
    driver, core, store, recorder = one_validator()
    driver.handle(core.start())
    assert store.height() == 0
    assert driver.proposal_deadline_ms == 1000.0 + WAIT_MS
    recorder.now += WAIT_MS - 1
    driver.maybe_propose()
    assert store.height() == 0  # not yet, and nothing arrived
    recorder.records = [b"r1"]
    driver.maybe_propose()  # a record arrived: at once
    assert store.height() == 1
    recorder.now += WAIT_MS  # height 2 waits from the commit of 1, then goes out empty
    driver.maybe_propose()
    assert store.height() == 2 and list(store.block(2).block.records) == []


def test_rejections_go_to_the_observer_and_a_follower_only_stores_and_applies():
    rejected = []

    class Rejections(DriverObserver):
        def rejected(self, rejection):
            rejected.append(rejection.reason)

    driver, core, store, recorder = one_validator(Rejections())
    driver.handle(core.start())
    driver.take(core.receive(b"\xffnot a message"))
    assert rejected == ["malformed"]
    # a member without a core: certified blocks in, stored and applied, never a proposal
    follower_log: list[str] = []
    follower_store = CountingStore(follower_log)
    follower = Recorder(follower_store)
    follower.log = follower_log
    follow = ReadyDriver(None, follower_store, follower, follower, follower)
    recorder.records = [b"r1"]
    driver.maybe_propose()
    follow.handle(Ready(committed=[store.block(1)]))
    assert follower_log == ["persist", "apply 1"] and follower.followed == [1]
