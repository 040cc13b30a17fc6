"""Deterministic simulation of a whole consortium's consensus, from one seed.

Theory of operation
-------------------
``Simulation(seed, scenario)`` runs n validators (real :class:`ConsensusCore`
instances with real Ed25519 keys) in one process, in virtual time. All
randomness (keys, record contents, network faults, crash times, Byzantine
choices) comes from one ``random.Random(seed)`` owned by the simulator, and
events at equal times run in scheduling order, so a seed replays exactly:

    python -m mpc_ledger.testing.sim --seed 17 --scenario partition

prints the same trace digest every time (``--trace`` prints the trace).

Each node's core is driven by the daemon's own :class:`ReadyDriver`
(:mod:`mpc_ledger.ledger.driver`), which owns the order the core's contract
asks: persist the state and committed blocks, then send, then schedule
timeouts, then apply commits, then answer a proposal request. The simulator
only supplies what the driver is parameterised by: a `MemoryBlockStore` as
the node's disk (it survives a crash: a crash drops the core, the driver and
the mempool), its virtual clock and event queue for timers, the simulated
network as transport (the persist-before-send checker looks at every message
there, against what the store holds), and a mempool as the application; it
schedules crashes right after a node locks from the driver's observer hook.
On top of the driver it runs the two things a daemon adds: periodic gossip of
the round's messages (``core.gossip()``, only when the node has made no
progress since the last tick) and catch-up (a node that receives a message
for a height it has already committed answers with its certified blocks from
that height, which the laggard feeds to ``core.commit_certified``).

After every event the checkers in :mod:`._sim_checkers` look at everything
honest nodes emitted; at the scenario's stabilisation time the network heals,
crashed nodes come back, and every honest node must then commit
``progress_heights`` more heights within ``progress_bound_ms``. Any failure
raises :class:`SimulationFailure` with the seed, the scenario and the replay
command.

Scenarios: ``clean``, ``lossy`` (drop, duplicate, delay, reorder),
``partition`` (symmetric and one-way, healing and re-forming), ``crash``
(crash and restart from persisted state), ``byzantine`` (f validators mixing
the behaviours of :mod:`._sim_byzantine`), ``twins`` (one validator key run by
two processes).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import nacl.signing
from google.protobuf.message import DecodeError

from mpc_ledger.consensus import (
    BlockLimits,
    ConsensusConfig,
    ConsensusCore,
    ProposalRequest,
    Ready,
    Reason,
    Rejection,
    Timeout,
    TimeoutConfig,
    ValidatorSet,
    max_faulty,
)
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.driver import DriverObserver, ReadyDriver, Step
from mpc_ledger.ledger.store import MemoryBlockStore
from mpc_ledger.proto.v1 import consensus_pb2 as pb
from mpc_ledger.testing._sim_byzantine import BEHAVIOURS, Mischief
from mpc_ledger.testing._sim_checkers import Invariants, InvariantViolation
from mpc_ledger.testing._sim_network import Event, EventQueue, FaultModel, Network, Wire

__all__ = [
    "SCENARIOS",
    "Scenario",
    "SimResult",
    "Simulation",
    "SimulationFailure",
    "main",
    "n_for_seed",
    "record_ok",
    "run_simulation",
]

RECORD_SIZE_BYTES = 16
MEMPOOL_RECORDS_MAX = 64
BLOCK_RECORDS_MAX = 4
GOSSIP_INTERVAL_MS = 120
SYNC_BLOCKS_MAX = 4
PENDING_SYNC_MAX = 16
EVENTS_MAX = 400_000
TIMEOUTS = TimeoutConfig(
    propose_ms=150,
    propose_delta_ms=50,
    prevote_ms=80,
    prevote_delta_ms=40,
    precommit_ms=80,
    precommit_delta_ms=40,
)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    faults: FaultModel = field(default_factory=FaultModel)
    stabilise_at_ms: int = 0
    partitions: bool = False
    crashes: bool = False
    byzantine: bool = False
    twins: bool = False
    # Chance that a node crashes right after it locks (precommits a block):
    # the moment where forgetting the lock would fork the chain.
    crash_after_lock_probability: float = 0.0
    progress_heights: int = 3
    progress_bound_ms: int = 20_000
    submit_interval_ms: int = 40


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("clean", progress_heights=4),
        Scenario(
            "lossy",
            FaultModel(
                drop_probability=0.2,
                duplicate_probability=0.1,
                delay_ms_min=1,
                delay_ms_max=150,
            ),
            stabilise_at_ms=1500,
        ),
        Scenario(
            "partition",
            FaultModel(drop_probability=0.05, delay_ms_max=60),
            stabilise_at_ms=2500,
            partitions=True,
        ),
        Scenario(
            "crash",
            FaultModel(drop_probability=0.05, delay_ms_max=60),
            stabilise_at_ms=2500,
            crashes=True,
            crash_after_lock_probability=0.2,
        ),
        Scenario(
            "byzantine",
            FaultModel(drop_probability=0.05, duplicate_probability=0.05, delay_ms_max=60),
            stabilise_at_ms=1000,
            byzantine=True,
        ),
        Scenario(
            "twins",
            FaultModel(drop_probability=0.05, delay_ms_max=80),
            stabilise_at_ms=1000,
            twins=True,
        ),
    )
}


def n_for_seed(seed: int) -> int:
    """The validator count a seed runs with unless told otherwise."""
    return (4, 5, 7)[seed % 3]


def record_ok(record: bytes) -> bool:
    """The simulation's record rule: 16 bytes whose first byte is not a multiple of 5."""
    return len(record) == RECORD_SIZE_BYTES and record[0] % 5 != 0


class SimulationFailure(AssertionError):
    """An invariant or progress check failed; the message says how to replay it."""


@dataclass(slots=True)
class SimResult:
    seed: int
    scenario: str
    n: int
    trace_digest: str
    end_time_ms: int
    events: int
    heights: dict[str, int]
    rejections: Counter[str]
    evidence_seen: int
    signed_messages_checked: int
    certificates_checked: int
    messages_sent: int
    messages_dropped: int

    def summary(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.rejections.items()))
        return (
            f"seed={self.seed} scenario={self.scenario} n={self.n} "
            f"t={self.end_time_ms}ms events={self.events} heights={self.heights}\n"
            f"  sent={self.messages_sent} dropped={self.messages_dropped} "
            f"signed-checked={self.signed_messages_checked} "
            f"certificates={self.certificates_checked} evidence={self.evidence_seen}\n"
            f"  rejections: {reasons or 'none'}\n"
            f"  trace digest: {self.trace_digest}"
        )


def _record_id(height: int, record: bytes) -> bytes:
    """The simulation's records are opaque and unique: each is its own id in the store."""
    return record


@dataclass(slots=True)
class _Node:
    """One simulated process: durable store; volatile core, driver and mempool."""

    name: str
    index: int
    validator_id: str
    signer: Signer
    honest: bool
    mischief: Mischief | None = None
    store: MemoryBlockStore = field(default_factory=lambda: MemoryBlockStore(_record_id))
    core: ConsensusCore | None = None
    driver: ReadyDriver | None = None
    epoch: int = 0
    mempool: dict[bytes, None] = field(default_factory=dict)
    pending_sync: dict[int, pb.CommittedBlock] = field(default_factory=dict)
    last_sync_sent_ms: dict[int, int] = field(default_factory=dict)
    last_gossip_position: tuple[int, int, int] = (0, 0, 0)

    @property
    def committed_height(self) -> int:
        return self.store.height()

    def is_committed(self, record: bytes) -> bool:
        return self.store.record_location(record) is not None

    def records_validator(self, height: int, records: Sequence[bytes]) -> str | None:
        seen: set[bytes] = set()
        for record in records:
            if not record_ok(record):
                return "record fails the simulation's record rule"
            if self.is_committed(record) or record in seen:
                return "record already committed or repeated"
            seen.add(record)
        return None

    def handle(self, ready: Ready) -> None:
        """Hand ``ready`` to the node's driver (only while it runs: a core needs one)."""
        assert self.driver is not None
        self.driver.handle(ready)


class Simulation:
    def __init__(
        self,
        seed: int,
        scenario: Scenario | str,
        n: int | None = None,
        trace: Callable[[str], None] | None = None,
        core_factory: Callable[..., ConsensusCore] = ConsensusCore,
        driver_factory: Callable[..., ReadyDriver] = ReadyDriver,
    ) -> None:
        self.seed = seed
        self.scenario = scenario if isinstance(scenario, Scenario) else SCENARIOS[scenario]
        self.n = n if n is not None else n_for_seed(seed)
        self.n_given = n is not None
        if self.n < 1:
            raise ValueError("at least one validator")
        self._trace_sink = trace
        self._trace = hashlib.sha256()
        self._core_factory = core_factory
        self._driver_factory = driver_factory
        # Not for secrets: the whole point is that a seed replays (keys are test keys).
        self._rng = random.Random(seed)  # noqa: S311
        self._queue = EventQueue()
        self._network = Network(
            self._rng, self._queue, self.scenario.faults, self.scenario.stabilise_at_ms
        )
        self.now_ms = 0
        self._events = 0
        self._rejections: Counter[str] = Counter()
        self._baseline_height: int | None = None
        self._lock_crashes_left = 2 * self.n
        try:
            self._setup_members()  # boots every node: its first messages are checked too
        except InvariantViolation as violation:
            raise self._failure(str(violation)) from violation
        self._schedule_scenario()

    # -- setup -----------------------------------------------------------------------------

    def _setup_members(self) -> None:
        chain_id = hashlib.sha256(f"sim/{self.scenario.name}/{self.seed}".encode()).digest()
        keys = [nacl.signing.SigningKey(self._rng.randbytes(32)) for _ in range(self.n)]
        ids = [f"v{i:02d}" for i in range(self.n)]
        self.validators = ValidatorSet(
            (vid, bytes(key.verify_key)) for vid, key in zip(ids, keys, strict=True)
        )
        self.config = ConsensusConfig(
            chain_id=chain_id,
            validators=self.validators,
            timeouts=TIMEOUTS,
            limits=BlockLimits(max_block_records=BLOCK_RECORDS_MAX, max_record_bytes=64),
        )
        byzantine = self._choose_byzantine(ids)
        self.nodes = [
            _Node(f"p{i}", i, ids[i], Signer(keys[i], chain_id), ids[i] not in byzantine)
            for i in range(self.n)
        ]
        if self.scenario.twins and max_faulty(self.n) >= 1:
            twin = self._rng.randrange(self.n)
            self.nodes.append(
                _Node(f"p{self.n}", self.n, ids[twin], Signer(keys[twin], chain_id), False)
            )
            self.nodes[twin].honest = False
            byzantine = {ids[twin]}
        self._byzantine_ids = frozenset(byzantine)
        # The protocol promises nothing beyond f; a scenario that broke this would
        # "find" failures that are not bugs.
        assert len(self._byzantine_ids) <= max_faulty(self.n)
        self._attach_mischief()
        self.invariants = Invariants(self.validators, chain_id, self._byzantine_ids, record_ok)
        for node in self.nodes:
            self._boot(node)

    def _choose_byzantine(self, ids: list[str]) -> set[str]:
        if not self.scenario.byzantine:
            return set()
        count = max_faulty(self.n)
        return set(self._rng.sample(ids, count))

    def _attach_mischief(self) -> None:
        if not self.scenario.byzantine:
            return
        for node in self.nodes:
            if node.validator_id not in self._byzantine_ids:
                continue
            chosen = {b for b in BEHAVIOURS if self._rng.random() < 0.6}
            chosen = chosen or {self._rng.choice(BEHAVIOURS)}
            node.mischief = Mischief(
                self._rng,
                frozenset(chosen),
                node.signer,
                node.validator_id,
                self.validators,
                self._invalid_record,
            )

    def _schedule_scenario(self) -> None:
        stabilise_at_ms = self.scenario.stabilise_at_ms
        for node in self.nodes:
            self._queue.push(self._rng.randrange(GOSSIP_INTERVAL_MS), "gossip", node.index)
        self._queue.push(self._rng.randrange(self.scenario.submit_interval_ms), "submit")
        self._queue.push(stabilise_at_ms, "stabilise")
        if self.scenario.partitions:
            self._schedule_partitions(stabilise_at_ms)
        if self.scenario.crashes:
            self._schedule_crashes(stabilise_at_ms)

    def _schedule_partitions(self, until_ms: int) -> None:
        time_ms = self._rng.randrange(50, 300)
        while time_ms < until_ms - 100:
            side = set(self._rng.sample(range(len(self.nodes)), self._rng.randrange(1, self.n)))
            one_way = self._rng.random() < 0.5
            blocked = {
                (a, b)
                for a in range(len(self.nodes))
                for b in range(len(self.nodes))
                if (a in side) != (b in side) and (a in side or not one_way)
            }
            self._queue.push(time_ms, "partition", (frozenset(blocked), one_way))
            time_ms += self._rng.randrange(200, 1200)
            self._queue.push(min(time_ms, until_ms), "heal")
            time_ms += self._rng.randrange(50, 400)

    def _schedule_crashes(self, until_ms: int) -> None:
        for _ in range(self._rng.randrange(2, 2 + self.n)):
            at_ms = self._rng.randrange(50, max(51, until_ms - 300))
            node = self._rng.randrange(len(self.nodes))
            self._queue.push(at_ms, "crash", node)
            self._queue.push(
                min(until_ms - 1, at_ms + self._rng.randrange(30, 1200)), "restart", node
            )

    # -- node lifecycle --------------------------------------------------------------------

    def _boot(self, node: _Node) -> None:
        node.epoch += 1
        node.core = self._core_factory(
            self.config,
            node.validator_id,
            node.signer,
            node.records_validator,
            node.store.consensus_state(),
        )
        node.driver = self._driver_factory(
            node.core,
            node.store,
            _SimClock(self, node.index, node.epoch),
            _SimTransport(self, node),
            _SimApplication(self, node),
            _SimObserver(self, node),
        )
        node.handle(node.core.start())

    def _crash(self, node: _Node) -> None:
        if node.core is None:
            return
        node.core = None
        node.driver = None
        node.mempool.clear()
        node.pending_sync.clear()
        node.epoch += 1

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> SimResult:
        try:
            self._loop()
        except InvariantViolation as violation:
            raise self._failure(str(violation)) from violation
        except SimulationFailure:
            raise
        except Exception as error:  # a crash in the core under test is a failure too
            raise self._failure(f"unexpected {type(error).__name__}: {error}") from error
        return self._result()

    def _loop(self) -> None:
        scenario = self.scenario
        deadline_ms = scenario.stabilise_at_ms + scenario.progress_bound_ms
        while True:
            event = self._queue.pop()
            if event is None:
                raise self._failure("event queue ran dry")
            self.now_ms = event.time_ms
            self._events += 1
            if self._events > EVENTS_MAX:
                raise self._failure(f"more than {EVENTS_MAX} events")
            if self._progress_done():
                return
            if self.now_ms > deadline_ms:
                raise self._failure(self._progress_report())
            self._dispatch(event)

    def _progress_done(self) -> bool:
        if self._baseline_height is None:
            return False
        target = self._baseline_height + self.scenario.progress_heights
        return min(n.committed_height for n in self.nodes if n.honest) >= target

    def _progress_report(self) -> str:
        heights = {n.name: n.committed_height for n in self.nodes if n.honest}
        return (
            f"progress: honest nodes did not commit {self.scenario.progress_heights} heights "
            f"past {self._baseline_height} within {self.scenario.progress_bound_ms}ms of "
            f"stabilisation; heights {heights}"
        )

    def _dispatch(self, event: Event) -> None:
        kind, payload = event.kind, event.payload
        if kind == "deliver":
            self._deliver(*payload)
        elif kind == "timeout":
            self._fire_timeout(*payload)
        elif kind == "gossip":
            self._gossip(self.nodes[payload])
        elif kind == "submit":
            self._submit()
        elif kind == "crash":
            self._note(f"crash {self.nodes[payload].name}")
            self._crash(self.nodes[payload])
        elif kind == "restart":
            self._restart(self.nodes[payload])
        elif kind == "partition":
            self._note(f"partition one_way={payload[1]} {sorted(payload[0])}")
            self._network.partition(set(payload[0]))
        elif kind == "heal":
            self._note("heal")
            self._network.heal()
        elif kind == "stabilise":
            self._stabilise()

    def _restart(self, node: _Node) -> None:
        if node.core is None:
            self._note(f"restart {node.name}")
            self._boot(node)

    def _stabilise(self) -> None:
        self._note("stabilise")
        self._network.heal()
        for node in self.nodes:
            self._restart(node)
        self._baseline_height = max(n.committed_height for n in self.nodes if n.honest)

    def _note(self, line: str) -> None:
        text = f"{self.now_ms} {line}"
        self._trace.update(text.encode() + b"\n")
        if self._trace_sink is not None:
            self._trace_sink(text)

    # -- inputs to nodes ---------------------------------------------------------------------

    def _deliver(self, source: int, destination: int, wire: Wire) -> None:
        node = self.nodes[destination]
        self._note(f"deliver {source}>{destination} {wire[0]} {len(wire[1])}")
        if node.core is None:
            return
        if node.mischief is not None:
            node.mischief.remember(wire)
        if wire[0] == "sync":
            self._receive_sync(node, wire[1])
            return
        ready = node.core.receive(wire[1])
        past = any(r.reason == Reason.PAST_HEIGHT for r in ready.rejections)
        node.handle(ready)
        if past:
            self._send_sync(node, source, wire[1])

    def _fire_timeout(self, index: int, epoch: int, timeout: Timeout) -> None:
        node = self.nodes[index]
        if node.core is None or node.epoch != epoch:
            return  # the timer died with the process
        self._note(f"timeout {node.name} {timeout.height}/{timeout.round}/{timeout.step}")
        node.handle(node.core.on_timeout(timeout))

    def _gossip(self, node: _Node) -> None:
        self._queue.push(self.now_ms + GOSSIP_INTERVAL_MS, "gossip", node.index)
        core = node.core
        if core is None:
            return
        position = (core.height, core.round, int(core.step))
        if position == node.last_gossip_position:
            self._note(f"gossip {node.name}")
            node.handle(core.gossip())
        node.last_gossip_position = position
        if node.mischief is not None:
            recent = node.store.block(node.committed_height)
            sends = node.mischief.on_tick(
                self._peers(node), core.height, core.round, core.tip, recent
            )
            for destination, wire in sends:
                self._network.send(self.now_ms, node.index, destination, wire)

    def _submit(self) -> None:
        self._queue.push(self.now_ms + self.scenario.submit_interval_ms, "submit")
        record = bytearray(self._rng.randbytes(RECORD_SIZE_BYTES))
        if self._rng.random() < 0.2:
            record[0] = 5 * self._rng.randrange(52)  # fails the record rule
        live = [n for n in self.nodes if n.core is not None]
        if not live:
            return
        node = self._rng.choice(live)
        self.invariants.submitted.add(bytes(record))
        # Admission control, as a real mempool does: refused records get a reason.
        if not record_ok(bytes(record)):
            self._rejections["mempool: record rule"] += 1
        elif len(node.mempool) < MEMPOOL_RECORDS_MAX:
            node.mempool[bytes(record)] = None

    def _invalid_record(self) -> bytes:
        record = bytearray(self._rng.randbytes(RECORD_SIZE_BYTES))
        record[0] = 0
        self.invariants.submitted.add(bytes(record))
        return bytes(record)

    # -- catch-up ----------------------------------------------------------------------------

    def _send_sync(self, node: _Node, peer: int, data: bytes) -> None:
        """``peer`` is behind: send it our certified blocks from its height on (rate limited)."""
        if self.now_ms - node.last_sync_sent_ms.get(peer, -GOSSIP_INTERVAL_MS) < GOSSIP_INTERVAL_MS:
            return
        message = pb.ConsensusMessage.FromString(data)
        height = (
            message.proposal.body.height
            if message.WhichOneof("kind") == "proposal"
            else message.vote.body.height
        )
        node.last_sync_sent_ms[peer] = self.now_ms
        for committed in node.store.blocks(height, SYNC_BLOCKS_MAX):
            wire = ("sync", committed.SerializeToString(deterministic=True))
            self._network.send(self.now_ms, node.index, peer, wire)

    def _receive_sync(self, node: _Node, data: bytes) -> None:
        try:
            committed = pb.CommittedBlock.FromString(data)
        except DecodeError:
            self._rejections["sync: malformed"] += 1
            return
        height = committed.block.header.height
        if height > node.committed_height + 1:
            if len(node.pending_sync) < PENDING_SYNC_MAX or height in node.pending_sync:
                node.pending_sync[height] = committed
            return
        self._apply_sync(node, committed)
        while node.core is not None and node.committed_height + 1 in node.pending_sync:
            self._apply_sync(node, node.pending_sync.pop(node.committed_height + 1))

    def _apply_sync(self, node: _Node, committed: pb.CommittedBlock) -> None:
        assert node.core is not None
        node.handle(node.core.commit_certified(committed.block, committed.certificate))

    # -- what the driver calls (the order is the driver's: see `ReadyDriver`) ----------------
    def _maybe_crash_after_lock(self, node: _Node, ready: Ready) -> None:
        probability = self.scenario.crash_after_lock_probability
        if self.now_ms >= self.scenario.stabilise_at_ms - 200 or self._lock_crashes_left <= 0:
            return
        locked = any(
            m.WhichOneof("kind") == "vote"
            and m.vote.body.step == pb.STEP_PRECOMMIT
            and m.vote.body.block_id
            and m.vote.body.validator_id == node.validator_id
            for m in ready.messages
        )
        if locked and self._rng.random() < probability:
            self._lock_crashes_left -= 1
            crash_at_ms = self.now_ms + self._rng.randrange(0, 10)
            self._queue.push(crash_at_ms, "crash", node.index)
            self._queue.push(crash_at_ms + self._rng.randrange(20, 150), "restart", node.index)

    def _peers(self, node: _Node) -> list[int]:
        return [n.index for n in self.nodes if n.index != node.index]

    def _on_send(self, node: _Node, message: pb.ConsensusMessage) -> None:
        """What leaves a node: checked against what its store holds, then on the network."""
        if node.honest:
            persisted = node.store.consensus_state()
            self.invariants.on_send(node.name, node.validator_id, message, persisted)
        peers = self._peers(node)
        if node.mischief is not None:
            assert node.core is not None
            sends = node.mischief.outgoing(message, peers, node.core.tip)
        else:
            wire = ("consensus", message.SerializeToString(deterministic=True))
            sends = [(peer, wire) for peer in peers]
        for destination, wire in sends:
            self._network.send(self.now_ms, node.index, destination, wire)

    def _on_durable(
        self, node: _Node, committed: list[pb.CommittedBlock], evidence: list[pb.Evidence]
    ) -> None:
        for item in committed:
            self._note(
                f"commit {node.name} {item.block.header.height} "
                f"{item.certificate.block_id.hex()[:16]}"
            )
            if node.honest:
                self.invariants.on_commit(node.name, item)
            for record in item.block.records:
                node.mempool.pop(record, None)
        if node.honest:
            for found in evidence:
                self.invariants.on_evidence(node.name, found)

    # -- results -----------------------------------------------------------------------------

    def replay_command(self) -> str:
        command = (
            f"python -m mpc_ledger.testing.sim --seed {self.seed} --scenario {self.scenario.name}"
        )
        return command + (
            f" --n {self.n}" if self.n_given and self.n != n_for_seed(self.seed) else ""
        )

    def _failure(self, what: str) -> SimulationFailure:
        return SimulationFailure(
            f"simulation failed: {what}\n"
            f"  seed={self.seed} scenario={self.scenario.name} n={self.n} "
            f"at t={self.now_ms}ms after {self.events} events\n"
            f"  replay: {self.replay_command()} --trace"
        )

    @property
    def events(self) -> int:
        return self._events

    def _result(self) -> SimResult:
        return SimResult(
            seed=self.seed,
            scenario=self.scenario.name,
            n=self.n,
            trace_digest=self._trace.hexdigest(),
            end_time_ms=self.now_ms,
            events=self._events,
            heights={n.name: n.committed_height for n in self.nodes},
            rejections=self._rejections,
            evidence_seen=self.invariants.evidence_seen,
            signed_messages_checked=self.invariants.signed_messages_checked,
            certificates_checked=self.invariants.certificates_checked,
            messages_sent=self._network.sent,
            messages_dropped=self._network.dropped,
        )


class _SimClock:
    """A node's clock: virtual time, and timers as events that die with the process."""

    def __init__(self, sim: Simulation, index: int, epoch: int) -> None:
        self._sim = sim
        self._index = index
        self._epoch = epoch

    def now_ms(self) -> float:
        return self._sim.now_ms

    def wall_ms(self) -> int:
        return self._sim.now_ms

    def schedule(self, timeout: Timeout) -> None:
        payload = (self._index, self._epoch, timeout)
        self._sim._queue.push(self._sim.now_ms + timeout.duration_ms, "timeout", payload)


class _SimTransport:
    def __init__(self, sim: Simulation, node: _Node) -> None:
        self._sim = sim
        self._node = node

    def send(self, message: pb.ConsensusMessage) -> None:
        self._sim._on_send(self._node, message)


class _SimApplication:
    """A node's application: its mempool (what is committed is the store's record index)."""

    def __init__(self, sim: Simulation, node: _Node) -> None:
        self._sim = sim
        self._node = node

    def follow(self, item: pb.CommittedBlock) -> None:
        pass  # the records validator reads the store, which the driver saves first

    def on_durable(self, committed: list[pb.CommittedBlock], evidence: list[pb.Evidence]) -> None:
        self._sim._on_durable(self._node, committed, evidence)

    def has_records(self) -> bool:
        return bool(self._node.mempool)

    def proposal_wait_ms(self) -> float:
        return 0  # proposes at once: an empty block moves consensus as well as a full one

    def choose_records(self, request: ProposalRequest) -> list[bytes]:
        node = self._node
        records = [r for r in node.mempool if not node.is_committed(r)]
        return records[:BLOCK_RECORDS_MAX]


class _SimObserver(DriverObserver):
    def __init__(self, sim: Simulation, node: _Node) -> None:
        self._sim = sim
        self._node = node

    def rejected(self, rejection: Rejection) -> None:
        self._sim._rejections[f"core: {rejection.reason}"] += 1

    def after_step(self, step: Step, ready: Ready) -> None:
        if step == Step.APPLY:  # as a daemon could: between a Ready and the next input
            self._sim._maybe_crash_after_lock(self._node, ready)


def run_simulation(seed: int, scenario: str, n: int | None = None) -> SimResult:
    """Run one seed of one scenario; raises :class:`SimulationFailure` on a violation."""
    return Simulation(seed, scenario, n).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay one deterministic consensus simulation.")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--n", type=int, default=None, help="validators (default: from the seed)")
    parser.add_argument("--trace", action="store_true", help="print every event")
    args = parser.parse_args(argv)
    sink = print if args.trace else None
    try:
        result = Simulation(args.seed, args.scenario, args.n, trace=sink).run()
    except SimulationFailure as failure:
        print(failure, file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
