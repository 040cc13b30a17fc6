"""A ledger node: the I/O shell around the Sans-IO consensus core.

Theory of operation: one thread (the loop) owns the core, the ledger state,
the mempool and the store. Everything else — gRPC handlers, peer links, the
block fetcher — posts events to the loop's queue and, where it needs an
answer, waits on a future. The loop takes every event already queued (a
batch), feeds each to the core, and hands every `Ready` to the node's
`ReadyDriver` (:mod:`.driver`, the same class the simulator runs), which
handles them, merged, in the fixed order the core's contract requires:

1. persist: consensus state (the signing high-water mark) and newly committed
   blocks in one fsynced SQLite transaction;
2. send: hand signed messages to the peer links;
3. schedule the requested timeouts (a heap of deadlines the loop fires);
4. apply committed blocks to the ledger state, wake whoever waits on their
   records, prune the mempool, announce the new height;
5. answer a proposal request with records from the mempool.

What the driver needs of a daemon is the node's: its clock (`_LoopClock`),
its peer links (`_LinkTransport`) and its ledger (`_NodeApplication`: the
state, the mempool and the waiters).

Batching is what makes the ledger fast: one fsync covers every vote and
block of a batch. Nothing a peer sends can block the loop: links have bounded
queues, and invalid input becomes a logged rejection.

The loop's queue is bounded too (`NodeOptions.queue_max_events`), and what
happens when it is full depends on who posts:

* network input (`on_gossip`: votes, proposals, gossiped records, heights) is
  dropped and counted (`NodeStats.gossip_dropped`, the metric
  ``mpc_ledger_gossip_dropped_total{kind}``), like a full socket buffer: a
  peer must never stall the thread that reads its stream, and consensus
  recovers lost messages by its timeouts and re-gossip;
* callers that want an answer (`submit`, `wait_committed`, `query`,
  `on_certified`) wait for room up to their own timeout, then get the answer
  a timeout gets (a refusal with the code ``busy``, None, TimeoutError);
* the loop itself never waits on its own queue (it would wait for itself).

A caller of `wait_committed` that gives up cancels its future and leaves it
for the loop to forget (a deque the loop drains before each batch), so a
record that never commits keeps no waiter, however often it is waited for.

A member without the validator role runs the same loop without a core: it
follows the chain by fetching certified blocks from validators and checking
every certificate.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import heapq
import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from mpc_ledger.consensus import (
    BlockLimits,
    ConsensusConfig,
    ConsensusCore,
    ProposalRequest,
    Ready,
    Rejection,
    Timeout,
    TimeoutConfig,
    Validator,
    ValidatorSet,
    block_id,
    check_block,
    genesis_tip,
    tip_after,
    verify_certificate,
)
from mpc_ledger.identity.material import PartyIdentity
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.driver import DriverObserver, ReadyDriver
from mpc_ledger.ledger.mempool import Mempool
from mpc_ledger.ledger.ratelimit import TokenBuckets
from mpc_ledger.ledger.records import ParsedRecord, member_of_user, parse_record
from mpc_ledger.ledger.refusals import Refusal, RefusalCode
from mpc_ledger.ledger.state import LedgerState, Rulebook, user_tls_refusal
from mpc_ledger.ledger.store import BlockStore
from mpc_ledger.metrics import DaemonMetrics
from mpc_ledger.proto.v1 import consensus_pb2, ledger_service_pb2

__all__ = ["CatchUpOutcome", "CatchUpVerdict", "LedgerNode", "NodeOptions", "SubmitResult"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long the catch-up fetcher's thread waits for room in the loop's queue per block.
CERTIFIED_POST_TIMEOUT_S = 30.0
# A flood of dropped gossip logs one warning per this interval (the metric counts all).
DROP_LOG_INTERVAL_S = 10.0


@dataclasses.dataclass(frozen=True)
class NodeOptions:
    # How often a node tells its peers its height (lets laggards notice).
    announce_interval_ms: int = 1000
    # Events handled per loop iteration at most (bounds one fsync's batch).
    batch_max: int = 2000
    # Events waiting for the loop at most (see the module docstring for a full queue):
    # room for a full SubmitBatch (10_000) and every peer's link backlog at once.
    queue_max_events: int = 50_000
    mempool_max_records: int = 50_000


@dataclasses.dataclass(frozen=True)
class SubmitResult:
    record_id: bytes
    accepted: bool
    reason: str = ""
    # A `RefusalCode` value when refused: what a program may branch on.
    code: str = ""


class CatchUpOutcome(StrEnum):
    """What became of one block a peer served in catch-up."""

    ACCEPTED = "accepted"  # checked and committed: the next height, a valid certificate
    # A height we already hold (consensus or another peer was first): no progress, and
    # not checked, so no proof either way about the peer that sent it.
    ALREADY_HAD = "already-had"
    REFUSED = "refused"  # failed a check: the peer that sent it served junk


@dataclasses.dataclass(frozen=True)
class CatchUpVerdict:
    outcome: CatchUpOutcome
    detail: str = ""


def validator_set_of(identity: PartyIdentity) -> ValidatorSet:
    return ValidatorSet(
        [Validator(m.id, m.signing_public_key) for m in identity.genesis.validators]
    )


class LedgerNode:
    """See the module docstring. Thread-safe public methods; one loop thread inside.

    ``rules``: the record kinds its ledger state accepts (`ledger.state.Rulebook`;
    a party daemon passes `mpc_ledger.rulebook.RULEBOOK`).
    """

    def __init__(
        self,
        identity: PartyIdentity,
        store: BlockStore,
        rules: Rulebook,
        *,
        send: Callable[[consensus_pb2.ConsensusMessage], None] = lambda message: None,
        broadcast_record: Callable[[bytes], None] = lambda raw: None,
        announce: Callable[[int], None] = lambda height: None,
        on_peer_ahead: Callable[[str, int, int], None] = lambda peer, ours, theirs: None,
        options: NodeOptions | None = None,
    ) -> None:
        self.identity = identity
        self.member_id = identity.member.id
        self.options = options or NodeOptions()
        self._store = store
        self._send = send
        self._broadcast_record = broadcast_record
        self._announce = announce
        self.on_peer_ahead = on_peer_ahead
        genesis = identity.genesis
        self._validators = validator_set_of(identity)
        params = genesis.consensus
        self._limits = BlockLimits(params.max_block_records, params.max_record_bytes)
        self._timeouts = TimeoutConfig(
            params.timeout_propose_ms,
            params.timeout_propose_delta_ms,
            params.timeout_prevote_ms,
            params.timeout_prevote_delta_ms,
            params.timeout_precommit_ms,
            params.timeout_precommit_delta_ms,
        )
        self.state = LedgerState(genesis, rules)
        self.mempool = Mempool(max_records=self.options.mempool_max_records)
        quotas = genesis.quotas
        self._submit_rate = TokenBuckets(quotas.user_submit_per_s, quotas.user_submit_burst)
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue(self.options.queue_max_events)
        # (record id, future) of `wait_committed` callers that gave up; the loop forgets them.
        self._abandoned: collections.deque[
            tuple[bytes, concurrent.futures.Future[tuple[int, int]]]
        ] = collections.deque()
        self._last_drop_log = -math.inf
        self._clock = _LoopClock()
        self._waiters: dict[bytes, list[concurrent.futures.Future[tuple[int, int]]]] = {}
        self._waiter_count = 0
        self._tip = genesis_tip()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._committed = threading.Condition()
        self._last_announce = 0.0
        self._height_at_last_announce = -1
        self._replay()
        self.core: ConsensusCore | None = None
        if identity.member.has_role("validator"):
            config = ConsensusConfig(
                chain_id=genesis.chain_id,
                validators=self._validators,
                timeouts=self._timeouts,
                limits=self._limits,
            )
            signer = Signer(identity.signing_key, genesis.chain_id)
            self.core = ConsensusCore(
                config, self.member_id, signer, self._validate_records, store.consensus_state()
            )
        self.stats = NodeStats()
        # Set by the daemon before start(); None in tests that need no metrics.
        self.metrics: DaemonMetrics | None = None
        self._submitted_at: dict[bytes, float] = {}
        # Records of blocks applied but not yet durable, by height (see `_NodeApplication`).
        self._parsed_at: dict[int, list[ParsedRecord]] = {}
        self._commit_listeners: list[Callable[[int, list[ParsedRecord]], None]] = []
        self._driver = ReadyDriver(
            self.core,
            _MeteredStore(self),
            self._clock,
            _LinkTransport(self._send),
            _NodeApplication(self),
            _NodeObserver(self),
        )

    # -- startup -------------------------------------------------------------------------

    def _replay(self) -> None:
        """Rebuild the ledger state from the stored chain (signatures were checked at commit)."""
        count = 0
        for item in self._store.iter_blocks(1):
            self._apply_state(item)
            count += 1
        if count:
            log.info("replayed %d blocks, %d records", count, self.state.size)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ledger-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        # Only to wake an idle loop: a full queue means it is awake and sees `_stopping`.
        with contextlib.suppress(queue.Full):
            self._events.put_nowait(("stop", None))
        if self._thread is not None:
            self._thread.join(timeout_s)
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()

    # -- public, thread-safe -------------------------------------------------------------

    @property
    def height(self) -> int:
        return int(self._tip.height)

    def tip(self) -> ledger_service_pb2.TipResponse:
        tip = self._tip
        return ledger_service_pb2.TipResponse(
            height=tip.height,
            block_id=tip.block_id,
            log_size=tip.log_size,
            round=self.core.round if self.core else 0,
            mempool_size=len(self.mempool),
        )

    def submit(self, raw: bytes, *, timeout_s: float = 10.0) -> SubmitResult:
        """Check a record and queue it for a block (and for every validator's mempool)."""
        return self.submit_many([raw], timeout_s=timeout_s)[0]

    def submit_many(self, raws: Sequence[bytes], *, timeout_s: float = 10.0) -> list[SubmitResult]:
        results: list[SubmitResult | concurrent.futures.Future[SubmitResult]] = []
        deadline = time.monotonic() + timeout_s
        for raw in raws:
            parsed = parse_record(raw)
            if isinstance(parsed, str):
                self._count_refusal(RefusalCode.MALFORMED)
                results.append(SubmitResult(b"", False, parsed, RefusalCode.MALFORMED))
                continue
            future: concurrent.futures.Future[SubmitResult] = concurrent.futures.Future()
            if self._post(("submit", (parsed, future, True)), deadline - time.monotonic()):
                results.append(future)
            else:
                self._count_refusal(RefusalCode.BUSY)
                reason = f"busy: the ledger node's queue stayed full for {timeout_s:g} s"
                results.append(SubmitResult(parsed.id, False, reason, RefusalCode.BUSY))
        return [
            r if isinstance(r, SubmitResult) else r.result(max(0.0, deadline - time.monotonic()))
            for r in results
        ]

    def wait_height(self, height: int, timeout_s: float) -> bool:
        """Block until the tip reaches ``height`` (True) or the timeout passes (False)."""
        with self._committed:
            return self._committed.wait_for(lambda: self._tip.height >= height, timeout_s)

    def wait_committed(self, record_id: bytes, timeout_s: float) -> tuple[int, int] | None:
        """(height, log index) once ``record_id`` is committed; None on timeout."""
        future: concurrent.futures.Future[tuple[int, int]] = concurrent.futures.Future()
        deadline = time.monotonic() + timeout_s
        if not self._post(("wait", (record_id, future)), timeout_s):
            return None
        try:
            return future.result(max(0.0, deadline - time.monotonic()))
        except concurrent.futures.CancelledError:
            return None  # the node stopped
        except concurrent.futures.TimeoutError:
            pass
        if not future.cancel():  # the loop is answering it right now
            return future.result(timeout_s)
        # The loop owns the waiters: it forgets this one (a record that never commits
        # would otherwise keep every timed-out waiter for ever). A deque, not the queue:
        # giving up must not wait for room.
        self._abandoned.append((record_id, future))
        return None

    @property
    def queued_events(self) -> int:
        """Events waiting for the loop now (approximate; at most `queue_max_events`)."""
        return self._events.qsize()

    @property
    def waiters(self) -> int:
        """Callers of `wait_committed` waiting now (read from any thread: one int)."""
        return self._waiter_count

    def user_refusal(self, user_id: str, tls_spki_sha256: bytes) -> str | None:
        """Why ``user_id`` may not connect with this TLS key now (`user_tls_refusal`)."""
        entry = self.state.user(user_id)  # one dict read: safe from any thread
        return user_tls_refusal(entry, user_id, tls_spki_sha256)

    def add_commit_listener(self, listener: Callable[[int, list[ParsedRecord]], None]) -> None:
        """Call ``listener(height, records)`` on the loop thread after each block is durable.

        Listeners must return quickly (hand work to their own thread): the
        loop waits for them. Register before `start()`.
        """
        self._commit_listeners.append(listener)

    def query(self, read: Callable[[LedgerState], T], timeout_s: float = 10.0) -> T:
        """Run ``read(state)`` on the loop thread, between blocks, and return its result.

        The ledger state changes only on the loop thread; reading it from
        another thread could see a block half applied.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        deadline = time.monotonic() + timeout_s
        if not self._post(("query", (read, future)), timeout_s):
            raise TimeoutError(f"the ledger node's queue stayed full for {timeout_s:g} s")
        result: T = future.result(max(0.0, deadline - time.monotonic()))
        return result

    def on_gossip(self, sender: str, message: Any) -> None:
        """A message from a peer link (already authenticated as ``sender``); dropped and
        counted when the loop's queue is full (never waits: see the module docstring)."""
        kind = message.WhichOneof("kind")
        if kind == "consensus":
            self._post_gossip(kind, ("consensus", (sender, message.consensus)))
        elif kind == "record":
            raw = message.record.SerializeToString(deterministic=True)
            parsed = parse_record(raw)
            if isinstance(parsed, str):
                log.debug("refused a record gossiped by %s: %s", sender, parsed)
                self._count_refusal(RefusalCode.MALFORMED)
            else:
                self._post_gossip(kind, ("submit", (parsed, None, False)))
        elif kind == "tip_height":
            self._post_gossip(kind, ("peer_height", (sender, message.tip_height)))

    def on_certified(
        self, item: consensus_pb2.CommittedBlock
    ) -> concurrent.futures.Future[CatchUpVerdict]:
        """A certified block fetched from a peer (catch-up); the future says what became of it."""
        future: concurrent.futures.Future[CatchUpVerdict] = concurrent.futures.Future()
        if not self._post(("certified", (item, future)), CERTIFIED_POST_TIMEOUT_S):
            # What a verdict not given in time says: the fetcher stops, blaming no one.
            future.set_exception(TimeoutError("the ledger node's queue stayed full"))
        return future

    def _post(self, event: tuple[str, Any], timeout_s: float) -> bool:
        """Queue ``event`` for the loop, waiting up to ``timeout_s`` for room; False if none."""
        # The loop waiting for room in its own queue would wait for ever.
        wait = timeout_s > 0 and threading.current_thread() is not self._thread
        try:
            if wait:
                self._events.put(event, timeout=timeout_s)
            else:
                self._events.put_nowait(event)
        except queue.Full:
            return False
        return True

    def _post_gossip(self, kind: str, event: tuple[str, Any]) -> None:
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self._count_dropped(kind)

    def _count_dropped(self, kind: str) -> None:
        # Called from gRPC threads; a lost increment of a statistic is harmless.
        self.stats.gossip_dropped += 1
        if self.metrics is not None:
            self.metrics.gossip_dropped.labels(kind).inc()
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:  # a flood logs once a while
            self._last_drop_log = now
            log.warning(
                "the ledger loop's queue is full (%d events): dropping gossip from peers "
                "(%d dropped so far)",
                self.options.queue_max_events,
                self.stats.gossip_dropped,
            )

    def blocks(self, from_height: int, limit: int) -> list[consensus_pb2.CommittedBlock]:
        return self._store.blocks(from_height, limit)

    # -- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            if self.core is not None:
                self._driver.handle(self.core.start())
            while not self._stopping.is_set():
                self._iteration()
        except Exception:
            log.exception("ledger loop failed; this node stops taking part in consensus")
            raise

    def _next_wait_s(self) -> float:
        deadlines_ms = [1000 * self._last_announce + self.options.announce_interval_ms]
        for deadline_ms in (self._clock.next_deadline_ms(), self._driver.proposal_deadline_ms):
            if deadline_ms is not None:
                deadlines_ms.append(deadline_ms)
        return max(0.0, min(deadlines_ms) / 1000 - time.monotonic())

    def _iteration(self) -> None:
        batch: list[tuple[str, Any]] = []
        try:
            batch.append(self._events.get(timeout=self._next_wait_s()))
            while len(batch) < self.options.batch_max:
                batch.append(self._events.get_nowait())
        except queue.Empty:
            pass
        # Before the batch: whatever is answered in it was posted after these callers
        # gave up, so an answer is a barrier (their waits, if still queued, are skipped).
        while self._abandoned:
            self._remove_waiter(*self._abandoned.popleft())
        for kind, payload in batch:
            if kind == "stop":
                return
            self._dispatch(kind, payload)
        self._fire_timers()
        self._driver.flush()  # one fsync for the whole batch
        self._driver.maybe_propose()
        self._maybe_announce()

    def _dispatch(self, kind: str, payload: Any) -> None:
        core = self.core
        if kind == "consensus":
            sender, message = payload
            if core is not None:
                self._driver.take(core.receive(message))
        elif kind == "submit":
            self._on_submit(*payload)
        elif kind == "wait":
            self._add_waiter(*payload)
        elif kind == "certified":
            item, verdict = payload
            verdict.set_result(self._on_certified(item))
        elif kind == "query":
            read, future = payload
            try:
                future.set_result(read(self.state))
            except Exception as exc:  # the caller's bug: report it there, keep the loop
                future.set_exception(exc)
        elif kind == "peer_height":
            sender, height = payload
            if height > self._tip.height:
                self.on_peer_ahead(sender, int(self._tip.height), int(height))

    def _add_waiter(
        self, record_id: bytes, future: concurrent.futures.Future[tuple[int, int]]
    ) -> None:
        location = self._store.record_location(record_id)
        if location is not None:
            _answer(future, location)
        elif not future.cancelled():  # a caller that gave up already is not kept
            self._waiters.setdefault(record_id, []).append(future)
            self._waiter_count += 1

    def _remove_waiter(
        self, record_id: bytes, future: concurrent.futures.Future[tuple[int, int]]
    ) -> None:
        futures = self._waiters.get(record_id)
        if futures is None or future not in futures:
            return  # answered meanwhile
        futures.remove(future)
        self._waiter_count -= 1
        if not futures:
            del self._waiters[record_id]

    def _wake_waiters(self, record_id: bytes, location: tuple[int, int]) -> None:
        futures = self._waiters.pop(record_id, [])
        self._waiter_count -= len(futures)
        for future in futures:
            _answer(future, location)

    def _validate_records(self, height: int, raws: Sequence[bytes]) -> str | None:
        """The core's records validator: the state must be exactly at ``height - 1``."""
        if height != self._tip.height + 1:
            return f"ledger state is at height {self._tip.height}, not {height - 1}"
        return self.state.check_block(raws)

    def _count_rejection(self, rejection: Rejection) -> None:
        self.stats.rejections += 1
        log.debug("consensus rejected: %s", rejection)
        if self.metrics is not None:
            self.metrics.consensus_rejections.labels(str(rejection.reason)).inc()

    def _on_submit(
        self,
        parsed: ParsedRecord,
        future: concurrent.futures.Future[SubmitResult] | None,
        forward: bool,
    ) -> None:
        refusal = self._admit(parsed, rate_limited=forward)
        if refusal is not None:
            self._count_refusal(refusal.code)
        elif forward:
            self._submitted_at[parsed.id] = time.monotonic()
            self._broadcast_record(parsed.raw)
        if future is not None:
            if refusal is None:
                future.set_result(SubmitResult(parsed.id, True))
            else:
                future.set_result(SubmitResult(parsed.id, False, refusal.reason, refusal.code))

    def _admit(self, parsed: ParsedRecord, *, rate_limited: bool) -> Refusal | None:
        """Into the mempool, or the refusal: duplicate, the ledger's rules (with what the
        author has waiting counted against its quota), the submit rate, room.

        Only records submitted here are rate limited (gossiped ones were, where
        they were submitted), and only after the rules: a record that is not
        its author's cannot spend the author's tokens.
        """
        if parsed.id in self.mempool:
            return Refusal(
                RefusalCode.DUPLICATE, "duplicate: this record is already waiting for a block"
            )
        refusal = self.state.refusal(parsed, *self.mempool.pending(parsed.body.author))
        if refusal is None and rate_limited:
            refusal = self._rate_refusal(parsed.body.author)
        return refusal or self.mempool.add(parsed)

    def _rate_refusal(self, author: str) -> Refusal | None:
        if member_of_user(author) is None:
            return None  # members' daemons write their own job records: never throttled
        if self._submit_rate.take(author, time.monotonic()):
            return None
        quotas = self.identity.genesis.quotas
        return Refusal(
            RefusalCode.RATE_LIMITED,
            f"rate limited: user {author!r} may submit {quotas.user_submit_per_s} records "
            f"a second (bursts of {quotas.user_submit_burst}); try again shortly",
        )

    def _count_refusal(self, code: RefusalCode) -> None:
        # Called from gRPC threads too; a lost increment of a statistic is harmless.
        self.stats.records_refused += 1
        if self.metrics is not None:
            self.metrics.records_rejected.labels(code.value).inc()

    def _on_certified(self, item: consensus_pb2.CommittedBlock) -> CatchUpVerdict:
        header = item.block.header
        if header.height <= self._tip.height:
            return CatchUpVerdict(CatchUpOutcome.ALREADY_HAD)
        if header.height != self._tip.height + 1:
            # The fetcher asks for the next height and stops at the first refusal, so an
            # honest peer never leaves a gap.
            detail = f"block {header.height} when {self._tip.height + 1} is next"
            return CatchUpVerdict(CatchUpOutcome.REFUSED, detail)
        if self.core is not None:
            return self._commit_certified_by_core(self.core, item)
        rejection = verify_certificate(
            self._validators, self.identity.genesis.chain_id, item.block, item.certificate
        ) or check_block(
            item.block, self._tip, self._validators, self._limits, self._validate_records
        )
        if rejection is not None:  # the fetcher logs it, naming the peer
            return CatchUpVerdict(CatchUpOutcome.REFUSED, str(rejection))
        self._driver.take(Ready(committed=[item]))
        return CatchUpVerdict(CatchUpOutcome.ACCEPTED)

    def _commit_certified_by_core(
        self, core: ConsensusCore, item: consensus_pb2.CommittedBlock
    ) -> CatchUpVerdict:
        later = core.commit_certified(item.block, item.certificate)
        self._driver.take(later)
        # Votes the core held for this height may commit it first, in the same call: the
        # same block then (the certificate is not checked, but the block is ours).
        wanted = block_id(item.block.header)
        if any(block_id(done.block.header) == wanted for done in later.committed):
            return CatchUpVerdict(CatchUpOutcome.ACCEPTED)
        detail = str(later.rejections[-1]) if later.rejections else "not committed"
        return CatchUpVerdict(CatchUpOutcome.REFUSED, detail)

    def _fire_timers(self) -> None:
        now_ms = self._clock.now_ms()
        while self.core is not None:
            timeout = self._clock.pop_due(now_ms)
            if timeout is None:
                return
            self._driver.take(self.core.on_timeout(timeout))

    def _proposal_wait_ms(self) -> float:
        """How long a proposer with an empty mempool waits for records."""
        # Never wait so long that the others' propose timeout fires first.
        interval_ms = self.identity.genesis.consensus.empty_block_interval_ms
        return min(interval_ms, self._timeouts.propose_ms // 2)

    def _choose_records(self) -> list[ParsedRecord]:
        draft = self.state.draft_block()
        return self.mempool.take(
            self._limits.max_block_records,
            self._limits.max_record_bytes * 8,
            lambda chosen, record: draft.try_add(record) is None,
        )

    def _apply_state(self, item: consensus_pb2.CommittedBlock) -> list[ParsedRecord]:
        block = item.block
        records = _parsed_records(block)
        self.state.apply_block(int(block.header.height), records)
        self._tip = tip_after(self._tip, block, block_id(block.header))
        return records

    def _on_durable(
        self, committed: list[consensus_pb2.CommittedBlock], evidence: list[consensus_pb2.Evidence]
    ) -> None:
        for item in committed:
            self._after_commit(item)
        if committed:
            self._announce(int(self._tip.height))
            self._last_announce = time.monotonic()
        for found in evidence:
            log.warning("evidence of equivocation stored: %s", found.WhichOneof("kind"))

    def _after_commit(self, item: consensus_pb2.CommittedBlock) -> None:
        """Once a block is durable: count it, clean the mempool, wake waiters."""
        block = item.block
        first_index = block.header.log_size - len(block.records)
        records = self._parsed_at.pop(block.header.height, None) or _parsed_records(block)
        ids = [parsed.id for parsed in records]
        self.stats.blocks_committed += 1
        now = self.stats.last_commit_monotonic = time.monotonic()
        if self.metrics is not None:
            self.metrics.rounds_per_height.observe(item.certificate.round + 1)
            for parsed in records:
                submitted = self._submitted_at.pop(parsed.id, None)
                if submitted is not None:
                    self.metrics.commit_latency.observe(now - submitted)
        else:
            for parsed in records:
                self._submitted_at.pop(parsed.id, None)
        self.stats.records_committed += len(ids)
        self.mempool.remove(ids)
        if any(parsed.kind != "note" for parsed in records):
            for dropped, reason in self.mempool.prune(self.state.check):
                self._submitted_at.pop(dropped, None)
                log.info("dropped record %s from the mempool: %s", dropped.hex()[:16], reason)
        with self._committed:
            self._committed.notify_all()
        for offset, identifier in enumerate(ids):
            self._wake_waiters(identifier, (int(block.header.height), int(first_index) + offset))
        for listener in self._commit_listeners:
            try:
                listener(int(block.header.height), records)
            except Exception:
                log.exception("a commit listener failed at height %d", block.header.height)

    def _maybe_announce(self) -> None:
        """Every announce interval: tell peers our height, and when this height has not
        moved since the last time, re-send this round's messages (lost ones are not
        retransmitted otherwise)."""
        now = time.monotonic()
        if now - self._last_announce < self.options.announce_interval_ms / 1000:
            return
        self._last_announce = now
        self._announce(int(self._tip.height))
        if self.core is not None and self._tip.height == self._height_at_last_announce:
            self._driver.handle(self.core.gossip())
        self._height_at_last_announce = int(self._tip.height)


class _LoopClock:
    """The loop's clock: the process's time, and timers kept as a heap the loop fires."""

    def __init__(self) -> None:
        self._timers: list[tuple[float, int, Timeout]] = []
        self._timer_seq = itertools.count()  # equal deadlines fire in scheduling order

    def now_ms(self) -> float:
        return time.monotonic() * 1000

    def wall_ms(self) -> int:
        return int(time.time() * 1000)

    def schedule(self, timeout: Timeout) -> None:
        deadline_ms = self.now_ms() + timeout.duration_ms
        heapq.heappush(self._timers, (deadline_ms, next(self._timer_seq), timeout))

    def next_deadline_ms(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def pop_due(self, now_ms: float) -> Timeout | None:
        """The earliest timer due at ``now_ms``, taken off the heap; None if none is."""
        if self._timers and self._timers[0][0] <= now_ms:
            return heapq.heappop(self._timers)[2]
        return None


class _LinkTransport:
    """The driver's transport: the peer links' send (each link queues, never blocks)."""

    def __init__(self, send: Callable[[consensus_pb2.ConsensusMessage], None]) -> None:
        self.send = send


class _MeteredStore:
    """The node's store as the driver saves to it: each save's fsync latency is observed."""

    def __init__(self, node: LedgerNode) -> None:
        self._node = node

    def save(
        self,
        state: consensus_pb2.ConsensusState | None,
        committed: list[consensus_pb2.CommittedBlock],
        evidence: list[consensus_pb2.Evidence] | None = None,
    ) -> None:
        started = time.perf_counter()
        self._node._store.save(state, committed, evidence)
        if self._node.metrics is not None:  # set by the daemon after construction
            self._node.metrics.fsync_latency.observe(time.perf_counter() - started)


class _NodeApplication:
    """The node's ledger as the driver sees it: state, mempool, waiters (the node's own)."""

    def __init__(self, node: LedgerNode) -> None:
        self._node = node

    def follow(self, item: consensus_pb2.CommittedBlock) -> None:
        # parsed once: `_after_commit` takes the same records by height
        self._node._parsed_at[item.block.header.height] = self._node._apply_state(item)

    def on_durable(
        self, committed: list[consensus_pb2.CommittedBlock], evidence: list[consensus_pb2.Evidence]
    ) -> None:
        self._node._on_durable(committed, evidence)

    def has_records(self) -> bool:
        return len(self._node.mempool) > 0

    def proposal_wait_ms(self) -> float:
        return self._node._proposal_wait_ms()

    def choose_records(self, request: ProposalRequest) -> list[bytes]:
        return [record.raw for record in self._node._choose_records()]


class _NodeObserver(DriverObserver):
    def __init__(self, node: LedgerNode) -> None:
        self._node = node

    def rejected(self, rejection: Rejection) -> None:
        self._node._count_rejection(rejection)


def _answer(future: concurrent.futures.Future[T], value: T) -> None:
    """Set ``future``'s result unless its caller cancelled it (gave up waiting): marking
    it running first makes the caller's `cancel` fail from then on, so the two never race."""
    if future.set_running_or_notify_cancel():
        future.set_result(value)


def _parsed_records(block: consensus_pb2.Block) -> list[ParsedRecord]:
    records = []
    for raw in block.records:
        parsed = parse_record(raw)
        assert not isinstance(parsed, str), "a committed block holds a malformed record"
        records.append(parsed)
    return records


@dataclasses.dataclass
class NodeStats:
    blocks_committed: int = 0
    records_committed: int = 0
    records_refused: int = 0
    rejections: int = 0
    gossip_dropped: int = 0  # network input dropped because the loop's queue was full
    last_commit_monotonic: float = dataclasses.field(default_factory=time.monotonic)
