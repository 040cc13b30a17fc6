"""What a worker tells its party daemon while it runs: typed events, one JSON line each.

Theory of operation
-------------------
``python -m mpc_ledger.mpc.worker --events`` writes one line per event on its
stdout; the party daemon's job runner (`mpc_ledger.jobs.worker_process`)
reads them. Both ends use this module, so they cannot drift apart: the worker
builds the frozen dataclasses below and `encode`s them; the daemon `decode`s
each line back into one of them and matches on the class (as h11's events).

=============  ===============  ==============================================
kind           class            when
=============  ===============  ==============================================
``progress``   `StepProgress`   at most once a second during training
``epoch``      `EpochEnded`     after each epoch, with the transcript snapshot
                                taken at its end (and the mean training loss
                                when the job reveals it)
``alignment``  `Aligned`        a PSI job's data ranks, after the private set
                                intersection and before training
``result``     `Finished`       the worker's result without its ``output``
=============  ===============  ==============================================

A failure is not an event: the worker exits non-zero and its result file
says why (`mpc_ledger.mpc.worker`).

Decoding is closed: the kinds are a fixed table (`_SCHEMAS`, kind -> class and
one parser per field), never a name looked up anywhere else, and every field
is type-checked before a class is built. A line that is not a JSON object
with a string ``"event"`` is `NotAnEvent` (a library printing on stdout; the
daemon ignores it); an unknown kind or a missing, extra or ill-typed field is
`WorkerEventError`, naming the kind and the field. Optional fields are left
out of a line when they are None, and may be absent from a decoded one.

This module and `mpc_ledger.mpc.snapshots` import neither torch nor CrypTen:
the party daemon never does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from mpc_ledger.documents import parse_json
from mpc_ledger.mpc.snapshots import ChannelStats, TranscriptSnapshot

__all__ = [
    "Aligned",
    "EpochEnded",
    "Finished",
    "NotAnEvent",
    "StepProgress",
    "WorkerEvent",
    "WorkerEventError",
    "decode",
    "encode",
]

_DIGEST_HEX_CHARS = 64  # SHA-256


class WorkerEventError(ValueError):
    """A line that claims to be a worker event but is not a valid one."""


class NotAnEvent(WorkerEventError):
    """A line that is no worker event at all (not a JSON object with a string "event")."""


@dataclasses.dataclass(frozen=True)
class StepProgress:
    """Training is at ``step`` (counted over the whole job) of epoch ``epoch`` (from 1)."""

    kind: ClassVar[str] = "progress"
    epoch: int
    step: int
    elapsed_s: float


@dataclasses.dataclass(frozen=True)
class EpochEnded:
    """Epoch ``epoch`` (from 1) is over after ``step`` steps in all."""

    kind: ClassVar[str] = "epoch"
    epoch: int
    step: int
    elapsed_s: float
    transcript: TranscriptSnapshot | None = None  # None only off the relay (gloo)
    loss: float | None = None  # only when the job reveals it


@dataclasses.dataclass(frozen=True)
class Aligned:
    """The private set intersection's outcome, as this data rank saw it."""

    kind: ClassVar[str] = "alignment"
    method: str
    intersection_size: int
    train_rows: int
    test_rows: int
    transcript: TranscriptSnapshot  # taken right after the PSI


@dataclasses.dataclass(frozen=True)
class Finished:
    """The worker's result (the result file's fields but its ``output``)."""

    kind: ClassVar[str] = "result"
    job_id: str
    rank: int
    member: str
    transport: str
    tuple_provider: str
    trusted_first_party_allowed: bool
    communication: Mapping[str, int | float]  # rounds, bytes, time_s, wait_s
    wall_s: float
    transcript: TranscriptSnapshot | None = None  # the job's end; None off the relay
    dealer: Mapping[str, int | float] | None = None  # the dealer rank's requests, elements


WorkerEvent = StepProgress | EpochEnded | Aligned | Finished


def encode(event: WorkerEvent) -> str:
    """One JSON line (without its newline) for ``event``."""
    document: dict[str, Any] = {"event": event.kind}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if value is None:
            continue
        if isinstance(value, TranscriptSnapshot):
            value = value.to_json()
        elif isinstance(value, Mapping):
            value = dict(value)
        document[field.name] = value
    return json.dumps(document)


def decode(line: str | bytes) -> WorkerEvent:
    """The event on one line; `NotAnEvent` or `WorkerEventError` (see the module docstring)."""
    try:
        document = parse_json(line)
    except ValueError:  # NestingError and UnicodeDecodeError are ValueErrors too
        raise NotAnEvent("not a JSON document") from None
    if not isinstance(document, dict) or not isinstance(document.get("event"), str):
        raise NotAnEvent('not a JSON object with a string "event"')
    kind = document.pop("event")
    schema = _SCHEMAS.get(kind)
    if schema is None:
        raise WorkerEventError(f"unknown worker event kind {kind!r}")
    cls, parsers = schema
    extra = sorted(set(document) - set(parsers))
    if extra:
        raise WorkerEventError(f"{kind} event: unexpected field {extra[0]!r}")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in document:
            if field.default is dataclasses.MISSING:
                raise WorkerEventError(f"{kind} event: missing field {field.name!r}")
            continue
        values[field.name] = parsers[field.name](document[field.name], f"{kind}.{field.name}")
    return cls(**values)


# -- field parsers: (value, where) -> the field's value, or WorkerEventError -----------------

_Parser = Callable[[Any, str], Any]


def _count(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:  # bool is an int: excluded
        raise WorkerEventError(f"{where}: not a whole number >= 0")
    return value


def _number(value: Any, where: str) -> float:
    if type(value) not in (int, float):
        raise WorkerEventError(f"{where}: not a number")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise WorkerEventError(f"{where}: not a string")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise WorkerEventError(f"{where}: not true or false")
    return value


def _numbers(value: Any, where: str) -> dict[str, int | float]:
    if not isinstance(value, dict):
        raise WorkerEventError(f"{where}: not an object")
    for name, number in value.items():
        if type(number) not in (int, float):
            raise WorkerEventError(f"{where}.{name}: not a number")
    return dict(value)


def _digest(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) != _DIGEST_HEX_CHARS:
        raise WorkerEventError(f"{where}: not a SHA-256 digest in hex")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise WorkerEventError(f"{where}: not a SHA-256 digest in hex") from None
    return value


_CHANNEL_FIELDS: Mapping[str, _Parser] = {
    "sender": _count,
    "receiver": _count,
    "digest": _digest,
    "messages": _count,
    "size_bytes": _count,
    "rounds": _count,
}


def _channel(value: Any, where: str) -> ChannelStats:
    if not isinstance(value, dict) or set(value) != set(_CHANNEL_FIELDS):
        raise WorkerEventError(f"{where}: not a channel ({', '.join(_CHANNEL_FIELDS)})")
    fields = {n: parse(value[n], f"{where}.{n}") for n, parse in _CHANNEL_FIELDS.items()}
    return ChannelStats(**fields)


_SNAPSHOT_FIELDS = ("job_id", "rank", "label", "channels")


def _snapshot(value: Any, where: str) -> TranscriptSnapshot:
    if not isinstance(value, dict) or set(value) != set(_SNAPSHOT_FIELDS):
        names = ", ".join(_SNAPSHOT_FIELDS)
        raise WorkerEventError(f"{where}: not a transcript snapshot ({names})")
    channels = value["channels"]
    if not isinstance(channels, list):
        raise WorkerEventError(f"{where}.channels: not a list")
    return TranscriptSnapshot(
        job_id=_text(value["job_id"], f"{where}.job_id"),
        rank=_count(value["rank"], f"{where}.rank"),
        label=_text(value["label"], f"{where}.label"),
        channels=tuple(_channel(c, f"{where}.channels[{i}]") for i, c in enumerate(channels)),
    )


# The closed table: every kind a worker may send, its class and a parser for each field.
_SCHEMAS: Mapping[str, tuple[type[WorkerEvent], Mapping[str, _Parser]]] = {
    StepProgress.kind: (
        StepProgress,
        {"epoch": _count, "step": _count, "elapsed_s": _number},
    ),
    EpochEnded.kind: (
        EpochEnded,
        {
            "epoch": _count,
            "step": _count,
            "elapsed_s": _number,
            "transcript": _snapshot,
            "loss": _number,
        },
    ),
    Aligned.kind: (
        Aligned,
        {
            "method": _text,
            "intersection_size": _count,
            "train_rows": _count,
            "test_rows": _count,
            "transcript": _snapshot,
        },
    ),
    Finished.kind: (
        Finished,
        {
            "job_id": _text,
            "rank": _count,
            "member": _text,
            "transport": _text,
            "tuple_provider": _text,
            "trusted_first_party_allowed": _flag,
            "communication": _numbers,
            "wall_s": _number,
            "transcript": _snapshot,
            "dealer": _numbers,
        },
    ),
}
