"""The one driver of a consensus core: what a node does with each `Ready`, in order.

Theory of operation
-------------------
The core (:mod:`mpc_ledger.consensus.core`) answers every input with a
`Ready` and leaves the I/O to its caller, in a fixed order. `ReadyDriver` is
that caller, for the daemon's `LedgerNode` and for the simulator's nodes
alike, so the simulator checks the code production runs. It owns the order
and nothing else; what differs between the two is passed in:

* a store (a `BlockStore`: SQLite in a daemon, `MemoryBlockStore` in the
  simulator; the driver only saves, see `Persister`),
* a `Clock`: the time (monotonic, for waits; wall, for block headers) and
  timers (a heap the node's loop fires, the simulator's event queue),
* a `Transport`: a signed message to every other validator (the peer links,
  the simulated network),
* an `Application`: the state the chain feeds (the node's `LedgerState`,
  mempool and waiters; the simulator's mempool) and the records to propose.

Callers `take` each `Ready` the core answers (several, when they batch
inputs) and then `flush`. Taking applies committed blocks to the
application's in-memory state at once, because the next input of a batch
may be a proposal on top of them; everything else waits for the flush, which
handles the merged `Ready` in the core's order:

1. persist: the consensus state (the signing high-water mark), the committed
   blocks and the evidence in one `BlockStore.save`, before anything leaves;
2. send the messages;
3. schedule the timeouts;
4. apply: tell the application the committed blocks and evidence are durable
   (it wakes waiters, cleans its mempool, announces);
5. propose: keep the proposal request, and propose once the application has
   records or its wait for them is over (a caller whose proposal waits calls
   `maybe_propose` when records arrive or time passes); the core's answer to
   a proposal is handled the same way, from step 1.

An observer sees the end of each step (`DriverObserver.after_step`): the
simulator schedules a crash right after a node locks there, a test records
the order. One `ReadyDriver`
belongs to one core, on one thread; after a crash the simulator builds a new
core and a new driver on the same store.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from mpc_ledger.consensus import ConsensusCore, ProposalRequest, Ready, Rejection, Timeout
from mpc_ledger.proto.v1 import consensus_pb2

__all__ = [
    "Application",
    "Clock",
    "DriverObserver",
    "Persister",
    "ReadyDriver",
    "Step",
    "Transport",
]


class Persister(Protocol):
    """What the driver needs of a `BlockStore` (:mod:`.store` has the durability contract)."""

    def save(
        self,
        state: consensus_pb2.ConsensusState | None,
        committed: list[consensus_pb2.CommittedBlock],
        evidence: list[consensus_pb2.Evidence] | None = None,
    ) -> None: ...


class Clock(Protocol):
    def now_ms(self) -> float:
        """Monotonic time, for waits (the proposal's wait for records)."""
        ...

    def wall_ms(self) -> int:
        """Wall time, for the header of a block this node proposes."""
        ...

    def schedule(self, timeout: Timeout) -> None:
        """Have the core's `on_timeout(timeout)` called after ``timeout.duration_ms``."""
        ...


class Transport(Protocol):
    def send(self, message: consensus_pb2.ConsensusMessage) -> None:
        """To every other validator; may lose it (the core's gossip makes up for that)."""
        ...


class Application(Protocol):
    def follow(self, item: consensus_pb2.CommittedBlock) -> None:
        """A block the core committed, not yet durable: bring the in-memory state along."""
        ...

    def on_durable(
        self, committed: list[consensus_pb2.CommittedBlock], evidence: list[consensus_pb2.Evidence]
    ) -> None:
        """The blocks (and evidence) of one `Ready` are stored: acknowledge them."""
        ...

    def has_records(self) -> bool:
        """Whether records wait for a block (a proposer with some proposes at once)."""
        ...

    def proposal_wait_ms(self) -> float:
        """How long a proposer with no records waits for some before proposing anyway."""
        ...

    def choose_records(self, request: ProposalRequest) -> list[bytes]:
        """The records of the block this node proposes now."""
        ...


class Step(StrEnum):
    """The steps of handling one `Ready`, in their order."""

    PERSIST = "persist"
    SEND = "send"
    SCHEDULE = "schedule"
    APPLY = "apply"


class DriverObserver:
    """Hooks into the driver (no-ops here): override what you need."""

    def rejected(self, rejection: Rejection) -> None:
        """The core refused an input (peer data, usually): count or log it."""

    def after_step(self, step: Step, ready: Ready) -> None:
        """``step`` of handling ``ready`` is done (the simulator may schedule a crash)."""


class ReadyDriver:
    """See the module docstring. ``core`` is None for a member that only follows the chain."""

    def __init__(
        self,
        core: ConsensusCore | None,
        store: Persister,
        clock: Clock,
        transport: Transport,
        application: Application,
        observer: DriverObserver | None = None,
    ) -> None:
        self.core = core
        self._store = store
        self._clock = clock
        self._transport = transport
        self._application = application
        self._observer = observer or DriverObserver()
        self._taken = Ready()
        # (request, monotonic deadline) of a proposal waiting for records
        self._pending_proposal: tuple[ProposalRequest, float] | None = None

    @property
    def proposal_deadline_ms(self) -> float | None:
        """When a waiting proposal goes out without records (monotonic); None: none waits."""
        return None if self._pending_proposal is None else self._pending_proposal[1]

    def take(self, later: Ready) -> None:
        """Fold a `Ready` the core answered into the next flush (see the module docstring)."""
        for item in later.committed:
            self._application.follow(item)
        for rejection in later.rejections:
            self._observer.rejected(rejection)
        self._taken.merge(later)

    def flush(self) -> None:
        """Handle everything taken since the last flush, in the core's order."""
        while True:
            ready, self._taken = self._taken, Ready()
            self._handle(ready)
            if ready.proposal_request is not None:
                self._pending_proposal = (ready.proposal_request, self._proposal_deadline_ms())
            if not self._propose_if_due():
                return

    def handle(self, ready: Ready) -> None:
        """`take` one `Ready` and `flush` (for callers that do not batch)."""
        self.take(ready)
        self.flush()

    def maybe_propose(self) -> None:
        """Propose if a waiting proposal is due now (call when records arrive or time passes)."""
        if self._propose_if_due():
            self.flush()

    def _handle(self, ready: Ready) -> None:
        """Steps 1-4 for one `Ready`: the order the core's persistence contract asks."""
        self._persist(ready)
        self._send(ready)
        self._schedule(ready)
        self._apply(ready)

    def _persist(self, ready: Ready) -> None:
        if ready.persist is not None or ready.committed or ready.evidence:
            self._store.save(ready.persist, ready.committed, ready.evidence)
        self._observer.after_step(Step.PERSIST, ready)

    def _send(self, ready: Ready) -> None:
        for message in ready.messages:
            self._transport.send(message)
        self._observer.after_step(Step.SEND, ready)

    def _schedule(self, ready: Ready) -> None:
        for timeout in ready.timeouts:
            self._clock.schedule(timeout)
        self._observer.after_step(Step.SCHEDULE, ready)

    def _apply(self, ready: Ready) -> None:
        if ready.committed or ready.evidence:
            self._application.on_durable(ready.committed, ready.evidence)
        self._observer.after_step(Step.APPLY, ready)

    def _proposal_deadline_ms(self) -> float:
        wait_ms = 0.0 if self._application.has_records() else self._application.proposal_wait_ms()
        return self._clock.now_ms() + wait_ms

    def _propose_if_due(self) -> bool:
        """Take the core's answer to a due proposal (True), or leave it waiting (False)."""
        pending = self._pending_proposal
        if pending is None or self.core is None:
            return False
        request, deadline_ms = pending
        if not self._application.has_records() and self._clock.now_ms() < deadline_ms:
            return False
        self._pending_proposal = None
        records = self._application.choose_records(request)
        self.take(self.core.propose(request, records, self._clock.wall_ms()))
        return True
