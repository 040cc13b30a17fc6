"""What a replay checks: one party's channels against the checkpoints on the ledger. Pure.

Theory of operation. A replay re-runs one party's worker with the seed it
committed, its registered data and the frames it received (its inbound log,
`mpc_ledger.mpc.inbound_log`), with nothing on the network. Two sets of
checkpoints come from the ledger, each "after M messages of channel s->r the
digest is D" (`Checkpoint`; the ledger's channel digests at the alignment,
at each epoch's end and at the job's end, `mpc_ledger.mpc.transcript`):

* **inbound** (r is the replayed party): what the party itself recorded as
  received. The log must reproduce them (`inbound_problems`) before the
  replay runs: a log that does not is not the one the job saw.
* **outbound** (s is the replayed party): what each *receiving* party
  recorded. The replay's own transcript keeps its digest after exactly M
  messages of each such channel (`Transcript.watch`), and `judge` compares.
  The honest program on the same inputs sends exactly the same bytes, so a
  digest that differs proves the party sent something else than the agreed
  program computes: a deviation, named by its first checkpoint (in the order
  alignment, epochs, end) and channel. A replay that stops before a
  checkpoint (the log runs out, a frame that does not fit the program) is a
  deviation at that checkpoint too, with the reason.

Labels are the ledger's (``alignment``, ``epoch N``, ``end``); counts and
digests are compared whatever label the other end gave its checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "Checkpoint",
    "ReplayTargets",
    "ReplayVerdict",
    "channel_key",
    "inbound_problems",
    "judge",
    "label_order",
    "parse_channel_key",
]

PrefixDigests = Mapping[tuple[int, int], Mapping[int, str]]


@dataclasses.dataclass(frozen=True, order=True)
class Checkpoint:
    """After ``messages`` messages the channel's digest (hex) was ``digest``."""

    order: int  # label_order(label): alignment 0, epoch N -> N, end last
    label: str
    messages: int
    digest: str


def label_order(label: str) -> int:
    if label == "alignment":
        return 0
    if label == "end":
        return 1 << 30
    if label.startswith("epoch "):
        return int(label.removeprefix("epoch "))
    raise ValueError(f"unknown checkpoint label {label!r}")


def channel_key(sender: int, receiver: int) -> str:
    return f"{sender}->{receiver}"


def parse_channel_key(key: str) -> tuple[int, int]:
    sender, _, receiver = key.partition("->")
    return int(sender), int(receiver)


@dataclasses.dataclass(frozen=True)
class ReplayTargets:
    """The ledger's checkpoints for one party (``rank``) of one job."""

    rank: int
    inbound: Mapping[tuple[int, int], tuple[Checkpoint, ...]]
    outbound: Mapping[tuple[int, int], tuple[Checkpoint, ...]]

    def watch(self) -> dict[tuple[int, int], tuple[int, ...]]:
        """What the replay's transcript must keep: every outbound checkpoint's count."""
        return {
            key: tuple(sorted({c.messages for c in checkpoints}))
            for key, checkpoints in self.outbound.items()
        }

    def inbound_watch(self) -> dict[tuple[int, int], tuple[int, ...]]:
        return {
            key: tuple(sorted({c.messages for c in checkpoints}))
            for key, checkpoints in self.inbound.items()
        }

    def to_json(self) -> dict[str, Any]:
        def side(table: Mapping[tuple[int, int], tuple[Checkpoint, ...]]) -> dict[str, Any]:
            return {
                channel_key(*key): [[c.label, c.messages, c.digest] for c in checkpoints]
                for key, checkpoints in sorted(table.items())
            }

        return {"rank": self.rank, "inbound": side(self.inbound), "outbound": side(self.outbound)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReplayTargets:
        def side(table: Mapping[str, Any]) -> dict[tuple[int, int], tuple[Checkpoint, ...]]:
            return {
                parse_channel_key(key): tuple(
                    sorted(
                        Checkpoint(label_order(str(label)), str(label), int(count), str(digest))
                        for label, count, digest in entries
                    )
                )
                for key, entries in table.items()
            }

        return cls(int(raw["rank"]), side(raw["inbound"]), side(raw["outbound"]))


def inbound_problems(targets: ReplayTargets, log_digests: PrefixDigests) -> list[str]:
    """Where the inbound log disagrees with what the party recorded as received (empty:
    it agrees at every checkpoint)."""
    problems = []
    for (sender, receiver), checkpoints in sorted(targets.inbound.items()):
        got = log_digests.get((sender, receiver), {})
        for checkpoint in checkpoints:
            digest = got.get(checkpoint.messages)
            where = f"channel {sender}->{receiver} at {checkpoint.label}"
            if digest is None:
                problems.append(
                    f"{where}: the ledger records {checkpoint.messages} messages received; "
                    "the log holds fewer"
                )
            elif digest != checkpoint.digest:
                problems.append(
                    f"{where}: the log's digest after {checkpoint.messages} messages is "
                    f"{digest[:16]}…, the ledger's {checkpoint.digest[:16]}…"
                )
    return problems


@dataclasses.dataclass(frozen=True)
class ReplayVerdict:
    correct: bool
    detail: str  # "" when correct; else the first differing checkpoint and channel(s)
    frames_checked: int  # messages sent, up to the last checkpoint of each channel
    deviated_label: str | None = None
    deviated_channels: tuple[tuple[int, int], ...] = ()
    # (sender, receiver, messages, digest): each outbound channel's last checkpoint matched
    channels_checked: tuple[tuple[int, int, int, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "correct": self.correct,
            "detail": self.detail,
            "frames_checked": self.frames_checked,
            "deviated_label": self.deviated_label,
            "deviated_channels": [channel_key(*c) for c in self.deviated_channels],
            "channels_checked": [
                {"channel": channel_key(s, r), "messages": m, "digest": d}
                for s, r, m, d in self.channels_checked
            ],
        }


def judge(
    targets: ReplayTargets,
    replay_digests: PrefixDigests,
    *,
    stopped: str | None,
    describe: Any = lambda rank: f"rank {rank}",
) -> ReplayVerdict:
    """The verdict on the replay's outbound digests; ``stopped`` is why the replay ended
    early (None: it ran the program to its end)."""
    first: tuple[int, str] | None = None
    failing: dict[int, list[tuple[int, int]]] = {}
    missing: dict[int, list[tuple[int, int]]] = {}
    checked = []
    frames = 0
    for key, checkpoints in sorted(targets.outbound.items()):
        got = replay_digests.get(key, {})
        last_ok: Checkpoint | None = None
        for checkpoint in checkpoints:
            digest = got.get(checkpoint.messages)
            if digest == checkpoint.digest:
                last_ok = checkpoint
                continue
            bucket = missing if digest is None else failing
            bucket.setdefault(checkpoint.order, []).append(key)
            if first is None or checkpoint.order < first[0]:
                first = (checkpoint.order, checkpoint.label)
            break
        if last_ok is not None:
            checked.append((*key, last_ok.messages, last_ok.digest))
            frames += last_ok.messages
    if first is None:
        return ReplayVerdict(True, "", frames, channels_checked=tuple(checked))
    order, label = first
    channels = tuple(sorted(failing.get(order, []) + missing.get(order, [])))
    names = ", ".join(f"{describe(s)}→{describe(r)}" for s, r in channels)
    if failing.get(order):
        detail = f"channel {names}, {label}: what it sent differs from the agreed program's"
    else:
        detail = f"channel {names}, {label}: the replay stopped before it ({stopped or 'ended'})"
    return ReplayVerdict(False, detail, frames, label, channels, tuple(checked))


def checkpoints_of(
    table: Iterable[tuple[str, Mapping[tuple[int, int], Any]]], keep: Any
) -> dict[tuple[int, int], tuple[Checkpoint, ...]]:
    """Checkpoints by channel from (label, channels) pairs, for the channels ``keep``
    accepts; a channel is anything with ``messages`` and ``digest`` (bytes or hex)."""
    out: dict[tuple[int, int], list[Checkpoint]] = {}
    for label, channels in table:
        for key, channel in channels.items():
            if not keep(key):
                continue
            digest = channel.digest.hex() if isinstance(channel.digest, bytes) else channel.digest
            out.setdefault(key, []).append(
                Checkpoint(label_order(label), label, int(channel.messages), str(digest))
            )
    return {key: tuple(sorted(set(values))) for key, values in out.items()}
