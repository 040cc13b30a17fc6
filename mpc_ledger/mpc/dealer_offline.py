"""Party 0's side of the dealer's offline phase: what to plan, take, credit or cancel. Pure.

Theory of operation. The dealer's requests depend only on the job's shapes (see
`mpc_ledger.mpc.dealer`), so two training steps with batches of the same size make the
same requests in the same order. `OfflinePlanner` records the requests of each step; at
the start of a step (`step_starts`, called by the training loop through
`crypten_compat.dealer_step_starts`) it remembers the previous step's sequence under its
batch size and, when no plan is streaming and the coming steps' batch size has a known
sequence, returns a `DealerPlan` for as many consecutive steps as have that size (the
schedule, `step_rows`, comes from the job's spec). So the first step asks for everything,
the second streams. A step of a size not seen yet (the last, partial batch of an epoch)
streams too when the planner may resize (`resizable_rows`): its sequence is the first
step's with every dimension equal to that step's rows replaced by its own (`resized`),
which is what the program asks when the batch size is no other dimension of the model;
where it is not (a fallback, counted), the partial batch asks, and that of every later
epoch streams its own recorded sequence.

While a plan is active, `on_request` says whether the request CrypTen makes is the next
planned one (`TAKE`: the caller takes the streamed answer, then sends the credit `took`
returns, if any) or not (`CANCEL`: the caller sends `cancel`'s message, discards the
answers up to the dealer's marker, then asks as usual). A step that made other requests
than the last one of its size (e.g. an optimiser's first step) costs one fallback, and its
own sequence is what the next plan repeats. Each fallback wastes what the dealer streamed
past it (at most a window, charged to the job's budget like any answer), so after
`FALLBACKS_MAX` fallbacks party 0 plans no more and asks for the rest: a program whose
steps keep changing costs at most that many windows of the budget.

Credit goes back every `credit_every` answers (half the window), so the dealer, which
streams at most `dealer.stream_window` answers ahead of the credit, never waits for a
credit party 0 withholds until it has more answers than the window.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

from mpc_ledger.mpc.dealer import Cancel, Credit, DealerPlan, DealerRequest, stream_window

__all__ = [
    "FALLBACKS_MAX",
    "Decision",
    "OfflineCounts",
    "OfflinePlanner",
    "credit_every",
    "resized",
    "step_rows",
]

FALLBACKS_MAX = 4


class Decision(enum.Enum):
    ASK = "ask"  # an ordinary request
    TAKE = "take"  # the next streamed answer is this request's
    CANCEL = "cancel"  # the plan did not foresee it: cancel, then ask


def step_rows(n_train: int, batch_size: int, epochs: int) -> tuple[int, ...]:
    """The batch size of every training step, in order (the training loop's schedule)."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    per_epoch = tuple(
        min(start + batch_size, n_train) - start for start in range(0, n_train, batch_size)
    )
    return per_epoch * epochs


def resized(
    sequence: Sequence[DealerRequest], rows: int, to_rows: int
) -> tuple[DealerRequest, ...]:
    """``sequence`` (the requests of a step of ``rows`` rows) as a step of ``to_rows`` makes
    them, if the rows are the only dimension equal to ``rows``."""

    def shape(dims: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(to_rows if d == rows else d for d in dims)

    return tuple(DealerRequest(r.kind, tuple(shape(s) for s in r.shapes)) for r in sequence)


def credit_every(window: int) -> int:
    return max(1, window // 2)


@dataclasses.dataclass
class OfflineCounts:
    """What party 0 reports: answers streamed, ordinary requests, plans sent, fallbacks."""

    streamed: int = 0
    requested: int = 0
    plans: int = 0
    fallbacks: int = 0
    discarded: int = 0

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Active:
    plan: DealerPlan
    window: int
    taken: int = 0
    credited: int = 0

    @property
    def next_number(self) -> int:
        return self.plan.first + self.taken

    @property
    def last_taken(self) -> int:
        return self.plan.first + self.taken - 1

    @property
    def exhausted(self) -> bool:
        return self.taken == self.plan.answers


class OfflinePlanner:
    def __init__(self, resizable_rows: bool = False) -> None:
        # whether a step of a new size may be planned from the first step (`resized`)
        self.resizable_rows = resizable_rows
        self.counts = OfflineCounts()
        self._known: dict[int, tuple[DealerRequest, ...]] = {}
        self._step: list[DealerRequest] = []
        self._step_rows: int | None = None
        self._active: _Active | None = None

    @property
    def active(self) -> DealerPlan | None:
        return None if self._active is None else self._active.plan

    def step_starts(
        self, index: int, schedule: Sequence[int], next_number: int
    ) -> DealerPlan | None:
        """Step ``index`` (from 0) of ``schedule`` starts; ``next_number`` is the number of
        its first request. The plan to send the dealer, if one is due."""
        if self._step_rows is not None and self._step:
            self._known[self._step_rows] = tuple(self._step)
        self._step = []
        self._step_rows = schedule[index]
        if self._active is not None:
            if not self._active.exhausted:
                return None  # still streaming the steps it covers
            self._active = None
        sequence = self._known.get(schedule[index])
        if sequence is None and self.resizable_rows and schedule[0] in self._known:
            sequence = resized(self._known[schedule[0]], schedule[0], schedule[index])
        if sequence is None or self.counts.fallbacks >= FALLBACKS_MAX:
            return None
        repeats = 0
        for rows in schedule[index:]:
            if rows != schedule[index]:
                break
            repeats += 1
        plan = DealerPlan(sequence, next_number, repeats)
        self._active = _Active(plan, stream_window(plan))
        self.counts.plans += 1
        return plan

    def on_request(self, request: DealerRequest, number: int) -> Decision:
        self._step.append(request)
        active = self._active
        if active is None or active.exhausted:
            self._active = None
            self.counts.requested += 1
            return Decision.ASK
        if number == active.next_number and active.plan.request(number) == request:
            return Decision.TAKE
        self.counts.fallbacks += 1
        self.counts.requested += 1
        return Decision.CANCEL

    def expected(self) -> tuple[int, DealerRequest]:
        """The number and request of the next streamed answer."""
        assert self._active is not None
        number = self._active.next_number
        return number, self._active.plan.request(number)

    def took(self) -> Credit | None:
        """The answer `expected` named was taken; the credit to send, if one is due."""
        active = self._active
        assert active is not None and not active.exhausted
        active.taken += 1
        self.counts.streamed += 1
        if active.taken - active.credited >= credit_every(active.window):
            active.credited = active.taken
            return Credit(active.last_taken)
        return None

    def cancel(self) -> tuple[Cancel, DealerPlan, int]:
        """Stop the active plan: the message, the plan and the number of the first answer
        to discard (the dealer may have streamed up to the plan's last)."""
        active = self._active
        assert active is not None
        self._active = None
        return Cancel(active.last_taken), active.plan, active.next_number

    def close(self) -> tuple[Cancel, DealerPlan, int] | None:
        """At the job's end: the cancel of a plan not taken to its end, if any (so every
        answer the dealer streamed is consumed before it is told to terminate)."""
        if self._active is None or self._active.exhausted:
            return None
        return self.cancel()
