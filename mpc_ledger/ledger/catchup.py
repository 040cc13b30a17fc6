"""Catch-up: fetching certified blocks from peers that say they are ahead.

Theory of operation: a peer's height (announced, or answered to `Tip`) is a
hint of whom to ask, never believed: only blocks whose certificates check
move this node on. Each peer that claims to be ahead gets its own lane (one
thread, at most one per member), which asks it for the blocks after our tip
in chunks, hands each to the node and reads the node's verdict. Lanes run in
parallel, so a peer that is slow, hangs or lies holds only its own lane; the
cost is that two honest lanes may download the same blocks (the node takes
the first and answers "already had" to the second).

A peer is put in the penalty box, and neither asked nor heard for a while,
when it serves a block that fails its checks or a block other than the next
one asked for. An honest peer does neither: it serves its stored, certified
chain in order from the height asked. A peer that sends nothing is not
blamed (its `Tip` may be one fsync ahead of its store); its lane ends, and
only its next claim opens another.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator

import grpc

from mpc_ledger.identity.genesis import Genesis, Member
from mpc_ledger.ledger.node import CatchUpOutcome, CatchUpVerdict, LedgerNode
from mpc_ledger.net.peers import PeerSet, describe_rpc_error
from mpc_ledger.proto.v1 import consensus_pb2, ledger_service_pb2, ledger_service_pb2_grpc

__all__ = ["BlockFetcher", "PenaltyBox"]

log = logging.getLogger(__name__)

# Blocks asked for in one GetBlocks call (the server sends at most 1000).
FETCH_CHUNK_BLOCKS = 128
# Blocks handed to the node whose verdict is not read yet: the node judges a
# batch of them per fsync, and a refusal stops the lane at most this far on.
VERDICTS_IN_FLIGHT_MAX = 64
GET_BLOCKS_TIMEOUT_S = 30.0
VERDICT_TIMEOUT_S = 30.0
PENALTY_FIRST_S = 60.0
PENALTY_MAX_S = 3600.0


@dataclasses.dataclass
class _Offence:
    count: int
    until_s: float


class PenaltyBox:
    """Peers not to fetch from until a time; each new offence doubles the stay, up to a cap.

    Time is an input (``now_s``, any monotonic clock), so tests need no sleeping.
    Entries are keyed by member id: at most one per genesis member.
    """

    def __init__(self, first_s: float = PENALTY_FIRST_S, max_s: float = PENALTY_MAX_S) -> None:
        self._first_s = first_s
        self._max_s = max_s
        self._offences: dict[str, _Offence] = {}

    def punish(self, peer_id: str, now_s: float) -> float:
        """Box ``peer_id`` from ``now_s``; answers how long it stays (seconds)."""
        previous = self._offences.get(peer_id)
        # The count stops at 32 (a stay doubled 31 times is past any cap) so the
        # doubling never overflows a float.
        count = 1 if previous is None else min(previous.count + 1, 32)
        stay_s = min(self._first_s * float(1 << (count - 1)), self._max_s)
        self._offences[peer_id] = _Offence(count, now_s + stay_s)
        return stay_s

    def holds(self, peer_id: str, now_s: float) -> bool:
        offence = self._offences.get(peer_id)
        return offence is not None and now_s < offence.until_s


_Verdicts = collections.deque[tuple[int, concurrent.futures.Future[CatchUpVerdict]]]


class _LaneStopped(Exception):
    """The lane ends without blaming its peer (network failure, node too slow)."""


class BlockFetcher:
    """Fetches certified blocks from every peer that claims to be ahead; see the module."""

    def __init__(
        self,
        peers: PeerSet,
        genesis: Genesis,
        node: LedgerNode,
        *,
        clock_s: Callable[[], float] = time.monotonic,
        penalties: PenaltyBox | None = None,
    ) -> None:
        self._peers = peers
        self._genesis = genesis
        self._node = node
        self._clock_s = clock_s
        self._penalties = penalties or PenaltyBox()
        self._lock = threading.Lock()  # guards the penalties, the claims and the lanes
        self._claims: dict[str, int] = {}
        self._lanes: set[str] = set()

    def peer_ahead(self, peer_id: str, ours: int, theirs: int) -> None:
        """A hint that ``peer_id`` holds blocks up to ``theirs``; called on the node's loop."""
        member = self._genesis.member(peer_id)
        if member is None or peer_id == self._node.member_id:
            return
        with self._lock:
            if self._penalties.holds(peer_id, self._clock_s()):
                return
            self._claims[peer_id] = theirs
            if peer_id in self._lanes or theirs <= self._node.height:
                return
            self._lanes.add(peer_id)
        threading.Thread(
            target=self._lane, args=(member,), name=f"block-fetch-{peer_id}", daemon=True
        ).start()

    def sync_on_start(self, timeout_s: float = 5.0) -> None:
        """Ask every peer for its tip once, at start, and fetch from each that is ahead.

        A node that restarts behind would otherwise wait for the next height
        announcement (up to a second on an idle ledger) before catching up.
        The calls go out together, so a peer that does not answer delays no other.
        """
        request = ledger_service_pb2.TipRequest()
        calls = [
            (member, self._stub(member).Tip.future(request, timeout=timeout_s))
            for member in self._peers.members
        ]
        for member, call in calls:
            try:
                tip = call.result()
            except grpc.RpcError:
                continue
            self.peer_ahead(member.id, self._node.height, int(tip.height))

    # -- one lane per peer ---------------------------------------------------------------

    def _lane(self, member: Member) -> None:
        ended = False
        try:
            while (chunk := self._next_chunk(member.id)) is not None:
                problem = self._fetch_chunk(member, *chunk)
                if problem is not None:
                    self._punish(member.id, problem)
                    return
            ended = True  # `_next_chunk` closed the lane under the lock
        except grpc.RpcError as exc:
            log.info("fetching blocks from %r failed: %s", member.id, describe_rpc_error(exc))
        except _LaneStopped as exc:
            log.info("stopped fetching blocks from %r: %s", member.id, exc)
        finally:
            if not ended:
                with self._lock:
                    self._lanes.discard(member.id)

    def _next_chunk(self, peer_id: str) -> tuple[int, int, int] | None:
        """(from height, block count, claimed height), or None: the lane is closed."""
        with self._lock:
            claim = self._claims.get(peer_id, 0)
            from_height = self._node.height + 1
            if claim < from_height:
                # Closed under the lock, so a claim that comes after this opens a new lane.
                self._lanes.discard(peer_id)
                return None
            return from_height, min(claim - from_height + 1, FETCH_CHUNK_BLOCKS), claim

    def _fetch_chunk(self, member: Member, from_height: int, count: int, claim: int) -> str | None:
        """Fetch and hand over one chunk; answers what the peer did wrong, or None."""
        request = ledger_service_pb2.GetBlocksRequest(from_height=from_height, max_blocks=count)
        call = self._stub(member).GetBlocks(
            request, timeout=GET_BLOCKS_TIMEOUT_S, wait_for_ready=True
        )
        verdicts: _Verdicts = collections.deque()
        try:
            problem, received = self._hand_over(call, from_height, count, verdicts)
        except grpc.RpcError:
            # Blocks handed over before the stream broke are judged all the same.
            if (problem := _judge_all(verdicts)) is None:
                raise
            return problem
        finally:
            call.cancel()
        if problem is None and received == 0:
            # Not blamed: a peer's Tip may run ahead of its store by one batch's fsync.
            raise _LaneStopped(f"it claimed height {claim} but sent no block {from_height}")
        return problem or _judge_all(verdicts)

    def _hand_over(
        self,
        call: Iterator[consensus_pb2.CommittedBlock],
        from_height: int,
        count: int,
        verdicts: _Verdicts,
    ) -> tuple[str | None, int]:
        """Give the node each block as it comes, reading verdicts as they are ready.

        Answers what the peer did wrong (or None) and how many blocks came.
        """
        expected = from_height
        for item in call:
            height = int(item.block.header.height)
            if height != expected:
                return f"sent block {height} when {expected} was next", expected - from_height
            verdicts.append((height, self._node.on_certified(item)))
            expected += 1
            while verdicts and (verdicts[0][1].done() or len(verdicts) >= VERDICTS_IN_FLIGHT_MAX):
                if (problem := _judge(*verdicts.popleft())) is not None:
                    return problem, expected - from_height
            if expected - from_height >= count:
                break  # all we asked for; more would be the peer's doing
        return None, expected - from_height

    def _stub(self, member: Member) -> ledger_service_pb2_grpc.LedgerStub:
        return ledger_service_pb2_grpc.LedgerStub(self._peers.channel(member))

    def _punish(self, peer_id: str, problem: str) -> None:
        with self._lock:
            stay_s = self._penalties.punish(peer_id, self._clock_s())
            self._claims.pop(peer_id, None)
        log.warning("catch-up: not fetching from %r for %.0f s: it %s", peer_id, stay_s, problem)


def _judge_all(verdicts: _Verdicts) -> str | None:
    while verdicts:
        if (problem := _judge(*verdicts.popleft())) is not None:
            return problem
    return None


def _judge(height: int, verdict: concurrent.futures.Future[CatchUpVerdict]) -> str | None:
    try:
        result = verdict.result(VERDICT_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        raise _LaneStopped(f"the ledger loop did not judge block {height} in time") from None
    if result.outcome == CatchUpOutcome.REFUSED:
        return f"served block {height} that failed its checks ({result.detail})"
    return None
