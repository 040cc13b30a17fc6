"""Transcript digests: what each party sent and received, per directed channel.

Theory of operation:

* A channel is a directed pair of ranks (sender, receiver). Each party keeps
  a running SHA-256 for every channel it is an end of. Every logical frame
  it sends on a channel, or consumes from it, is folded in as
  ``canonical_header(frame) + data`` (see `frames.canonical_header`): job id,
  sequence number, sender, receiver, kind, dtypes, shapes, object, payload.
* The sender hashes what it hands to the transport, the receiver what it
  takes from it, so for an honest pair the sender's digest of A->B equals
  the receiver's digest of A->B, and so do the message and byte counts.
  ``rounds`` (communicator operations that used the channel) is reported
  for information only; it is not compared.
* `Transcript.snapshot()` freezes the state (the running hashes continue);
  the jobs layer signs snapshots at epoch ends and at the job's end. The
  snapshot values (`ChannelStats`, `TranscriptSnapshot`) live in
  `mpc_ledger.mpc.snapshots`, which imports no torch, for the party daemon.
* `compare_transcripts` is pure: given each party's snapshot, it lists every
  link whose two ends disagree, naming the link and what differs.
* `Transcript.watch` asks for a channel's digest after exactly n messages
  (`prefix_digests`): a replay (`mpc_ledger.mpc.replay`) checks what it would
  have sent against every checkpoint the receiving party recorded, whatever
  the label of the checkpoint at either end.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping

from mpc_ledger.mpc.frames import canonical_header
from mpc_ledger.mpc.snapshots import ChannelStats, TranscriptSnapshot
from mpc_ledger.proto.v1 import mpc_pb2

__all__ = [
    "ChannelStats",
    "Transcript",
    "TranscriptMismatch",
    "TranscriptSnapshot",
    "compare_transcripts",
]

_EMPTY_DIGEST = hashlib.sha256().hexdigest()


class _Channel:
    __slots__ = ("hash", "messages", "rounds", "size_bytes")

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.messages = 0
        self.size_bytes = 0
        self.rounds = 0


class Transcript:
    """The running digests of one party (rank) in one job."""

    def __init__(self, job_id: str, rank: int) -> None:
        self.job_id = job_id
        self.rank = rank
        self._channels: dict[tuple[int, int], _Channel] = {}
        self._round_marks: set[tuple[int, int]] = set()
        self._watched: dict[tuple[int, int], frozenset[int]] = {}
        self._prefixes: dict[tuple[int, int], dict[int, str]] = {}

    def watch(self, sender: int, receiver: int, message_counts: Iterable[int]) -> None:
        """Keep channel sender->receiver's digest after each of ``message_counts`` messages
        (0 is the empty channel's); `prefix_digests` returns them."""
        counts = frozenset(int(n) for n in message_counts)
        key = (sender, receiver)
        self._watched[key] = counts
        prefixes = self._prefixes.setdefault(key, {})
        if 0 in counts:
            prefixes[0] = _EMPTY_DIGEST

    def prefix_digests(self) -> dict[tuple[int, int], dict[int, str]]:
        """(sender, receiver) -> {messages: hex digest after that many} for every watched
        count reached so far."""
        return {key: dict(values) for key, values in self._prefixes.items()}

    def _channel(self, sender: int, receiver: int) -> _Channel:
        key = (sender, receiver)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _Channel()
        return channel

    def record(self, frame: mpc_pb2.MpcFrame) -> None:
        """Fold one logical frame (sent by us or consumed by us) into its channel."""
        if self.rank not in (frame.sender_rank, frame.receiver_rank):
            raise ValueError(
                f"rank {self.rank} is no end of {frame.sender_rank}->{frame.receiver_rank}"
            )
        key = (frame.sender_rank, frame.receiver_rank)
        channel = self._channel(*key)
        channel.hash.update(canonical_header(frame))
        channel.hash.update(frame.data)
        channel.messages += 1
        channel.size_bytes += len(frame.data)
        if channel.messages in self._watched.get(key, ()):
            self._prefixes[key][channel.messages] = channel.hash.copy().hexdigest()
        if key not in self._round_marks:
            self._round_marks.add(key)
            channel.rounds += 1

    def end_round(self) -> None:
        """One communicator operation is over; the next frame on a channel starts a round."""
        self._round_marks.clear()

    def snapshot(self, label: str) -> TranscriptSnapshot:
        channels = tuple(
            ChannelStats(
                sender=s,
                receiver=r,
                digest=c.hash.copy().hexdigest(),
                messages=c.messages,
                size_bytes=c.size_bytes,
                rounds=c.rounds,
            )
            for (s, r), c in sorted(self._channels.items())
        )
        return TranscriptSnapshot(self.job_id, self.rank, label, channels)


@dataclasses.dataclass(frozen=True)
class TranscriptMismatch:
    sender: int
    receiver: int
    reason: str

    def __str__(self) -> str:
        return f"link {self.sender}->{self.receiver}: {self.reason}"


def _empty(sender: int, receiver: int) -> ChannelStats:
    return ChannelStats(sender, receiver, _EMPTY_DIGEST, 0, 0, 0)


def compare_transcripts(
    snapshots_by_party: Mapping[int, TranscriptSnapshot],
) -> list[TranscriptMismatch]:
    """Every link whose sender's record differs from its receiver's (empty: all agree).

    A channel one end never used counts as empty at that end, so frames one
    party claims to have sent but the other never consumed are a mismatch.
    Snapshots of different jobs are a mismatch of their own.
    """
    mismatches: list[TranscriptMismatch] = []
    jobs = {s.job_id for s in snapshots_by_party.values()}
    if len(jobs) > 1:
        mismatches.append(
            TranscriptMismatch(-1, -1, f"snapshots of different jobs: {sorted(jobs)}")
        )
    links: set[tuple[int, int]] = set()
    for snapshot in snapshots_by_party.values():
        links.update((c.sender, c.receiver) for c in snapshot.channels)
    for sender, receiver in sorted(links):
        if sender not in snapshots_by_party or receiver not in snapshots_by_party:
            missing = sender if sender not in snapshots_by_party else receiver
            mismatches.append(
                TranscriptMismatch(sender, receiver, f"no transcript from rank {missing}")
            )
            continue
        sent = snapshots_by_party[sender].channel(sender, receiver) or _empty(sender, receiver)
        got = snapshots_by_party[receiver].channel(sender, receiver) or _empty(sender, receiver)
        problems = []
        if sent.digest != got.digest:
            problems.append(f"digest {sent.digest[:16]}… sent, {got.digest[:16]}… received")
        if sent.messages != got.messages:
            problems.append(f"{sent.messages} messages sent, {got.messages} received")
        if sent.size_bytes != got.size_bytes:
            problems.append(f"{sent.size_bytes} bytes sent, {got.size_bytes} received")
        if problems:
            mismatches.append(TranscriptMismatch(sender, receiver, "; ".join(problems)))
    return mismatches
