"""The worker -> daemon events: every kind round-trips, bad lines are refused by name."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mpc_ledger.mpc.snapshots import ChannelStats, TranscriptSnapshot
from mpc_ledger.mpc.worker_events import (
    Aligned,
    EpochEnded,
    Finished,
    NotAnEvent,
    StepProgress,
    WorkerEventError,
    decode,
    encode,
)

DIGEST = "ab" * 32
SNAPSHOT = TranscriptSnapshot(
    job_id="00" * 32,
    rank=1,
    label="epoch-1",
    channels=(ChannelStats(0, 1, DIGEST, 3, 120, 2), ChannelStats(1, 0, DIGEST, 4, 96, 2)),
)
EVENTS = [
    StepProgress(epoch=1, step=7, elapsed_s=1.5),
    EpochEnded(epoch=2, step=10, elapsed_s=3.25, transcript=SNAPSHOT, loss=0.5),
    EpochEnded(epoch=1, step=5, elapsed_s=2.0),  # off the relay, the loss not revealed
    Aligned("psi", intersection_size=50, train_rows=40, test_rows=10, transcript=SNAPSHOT),
    Finished(
        job_id="00" * 32,
        rank=0,
        member="a",
        transport="relay",
        tuple_provider="dealer",
        trusted_first_party_allowed=False,
        communication={"rounds": 12, "bytes": 4096, "time_s": 0.25},
        wall_s=9.5,
        transcript=SNAPSHOT,
    ),
    Finished(
        job_id="00" * 32,
        rank=2,
        member="dealer",
        transport="gloo",
        tuple_provider="dealer",
        trusted_first_party_allowed=False,
        communication={"rounds": 1, "bytes": 8, "time_s": 0.0},
        wall_s=1.0,
        dealer={"requests": 3, "elements": 300},
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_as_one_line(event):
    line = encode(event)
    assert "\n" not in line
    assert decode(line) == event
    assert decode(line.encode()) == event


def test_the_lines_keep_the_kind_and_leave_out_what_is_none():
    """The line is {"event": kind, field: value, ...}; an optional field that is None is
    absent (as the worker always wrote it)."""
    assert json.loads(encode(EVENTS[0])) == {
        "event": "progress",
        "epoch": 1,
        "step": 7,
        "elapsed_s": 1.5,
    }
    assert json.loads(encode(EVENTS[2])) == {
        "event": "epoch",
        "epoch": 1,
        "step": 5,
        "elapsed_s": 2.0,
    }
    aligned = json.loads(encode(EVENTS[3]))
    assert aligned["event"] == "alignment"
    assert aligned["transcript"] == SNAPSHOT.to_json()


@pytest.mark.parametrize(
    "line",
    [b"", b"loading weights...", b"[1, 2]", b'{"no": "event"}', b'{"event": 3}', b"\xff\xfe"],
)
def test_a_line_that_is_no_event_is_not_an_event(line):
    with pytest.raises(NotAnEvent):
        decode(line)


def _line(**changes):
    document = json.loads(encode(EVENTS[1]))
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not _DROP})


_DROP = object()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"event": "__import__"}', "unknown worker event kind '__import__'"),
        ('{"event": "Finished"}', "unknown worker event kind 'Finished'"),
        (_line(step=_DROP), "epoch event: missing field 'step'"),
        (_line(extra=1), "epoch event: unexpected field 'extra'"),
        (_line(step="10"), "epoch.step: not a whole number >= 0"),
        (_line(step=True), "epoch.step: not a whole number >= 0"),
        (_line(step=-1), "epoch.step: not a whole number >= 0"),
        (_line(step=1.0), "epoch.step: not a whole number >= 0"),
        (_line(loss="0.5"), "epoch.loss: not a number"),
        (_line(loss=None), "epoch.loss: not a number"),
        (_line(transcript=[]), "epoch.transcript: not a transcript snapshot"),
        (
            _line(transcript={**SNAPSHOT.to_json(), "channels": {}}),
            "epoch.transcript.channels: not a list",
        ),
        (
            _line(transcript={**SNAPSHOT.to_json(), "channels": [{"sender": 0}]}),
            "epoch.transcript.channels[0]: not a channel",
        ),
        (
            _line(
                transcript={
                    **SNAPSHOT.to_json(),
                    "channels": [{**SNAPSHOT.channels[0].to_json(), "digest": "zz" * 32}],
                }
            ),
            "epoch.transcript.channels[0].digest: not a SHA-256 digest in hex",
        ),
        (
            _line(
                transcript={
                    **SNAPSHOT.to_json(),
                    "channels": [{**SNAPSHOT.channels[0].to_json(), "messages": "3"}],
                }
            ),
            "epoch.transcript.channels[0].messages: not a whole number >= 0",
        ),
    ],
)
def test_a_bad_event_is_refused_naming_the_kind_and_the_field(line, message):
    with pytest.raises(WorkerEventError) as raised:
        decode(line)
    assert not isinstance(raised.value, NotAnEvent)
    assert message in str(raised.value)


def test_a_finished_event_checks_its_counts_and_flag():
    document = json.loads(encode(EVENTS[4]))
    with pytest.raises(WorkerEventError, match=r"result\.communication\.rounds: not a number"):
        decode(json.dumps({**document, "communication": {"rounds": "12"}}))
    with pytest.raises(WorkerEventError, match=r"result\.trusted_first_party_allowed"):
        decode(json.dumps({**document, "trusted_first_party_allowed": 0}))


def test_the_daemon_side_imports_no_torch():
    """The party daemon decodes the events and never imports torch or CrypTen."""
    code = (
        "import sys, mpc_ledger.mpc.worker_events, mpc_ledger.jobs.runner; "
        "assert 'torch' not in sys.modules and 'crypten' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
