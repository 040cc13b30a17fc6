"""The dealer's side of a job: a closed schema of requests, bounded by the job.

Theory of operation. CrypTen's own dealer loop (``TTPServer``) receives a
dict from party 0 and runs ``getattr(self, message["function"])(*args)``:
party 0 can call any method, among them ``_get_additive_PRSS``, which
returns the plaintext of the next triple's mask, and so unmask every value
opened in a multiplication. This module replaces that loop:

* Party 0's CrypTen client is made to send a `DealerRequest`
  (`crypten_compat.install_dealer_client`): a request kind from a fixed set
  and the operands' shapes, nothing else. The kinds are what CrypTen's
  dealer provider asks for in the programs the project runs: a Beaver triple
  for ``mul`` or ``matmul``, a square pair, a binary (AND) triple, the wraps
  of a random sharing (truncation with three or more parties) and a random
  bit for B2A. Convolutions are not served: no program uses them.
* `parse_request` decodes what arrived (already a safe `objects` value, never
  a pickle) against that schema: the exact keys, a known kind, the kind's
  number of shapes, each a tuple of at most `DIMS_MAX` non-negative ints,
  operands whose result shape exists (computed without allocating). A CrypTen
  call by name, an unknown kind, an extra key: refused.
* `DealerBudget` bounds what one job may ask for, derived from the job's
  program (`budget_for_program`): elements per request from the largest
  tensor the program multiplies (rows x the widest layer), and requests and
  elements per job from the number of training steps. A request over either
  bound is refused before anything is generated.
* `serve` answers each accepted request with the generator chosen by our
  code from a fixed table keyed by the kind (`crypten_compat.start_dealer`),
  and returns when party 0 says "terminate". A refused request raises
  `DealerRequestRefused` (a `ProtocolViolation` naming party 0); the worker
  makes it the job's abort reason, which the relay tells every party, so the
  job fails with that reason everywhere and party 0 receives no answer.

* The randomness of every answer is bound to the request (`request_seed`):
  for its n-th request, every party (and the dealer, for every party) draws
  from a generator seeded by SHA-256 over the seed it shares with the dealer,
  n, and the request's kind and shapes, not from one long stream. Party 0
  alone says what it asks for, so without this a party 0 that asks for
  something else than the others generate (a square where they draw a
  triple, other shapes, a request more or fewer) would get an answer made of
  their shares, e.g. the square of their mask a less their share of b. Now
  a request that is not the one the others made is answered from
  randomness unrelated to theirs: it can only make the job's result wrong.

A request (kind, shapes) depends only on the job's shapes, not on data, which
is what the offline phase relies on:

* After a training step, party 0 knows the requests the next steps make (the
  same as the last step with the same batch size, `mpc_ledger.mpc.dealer_offline`)
  and sends one `DealerPlan`: that sequence, the number of its first request
  and how many times it repeats. `parse_message` bounds it like a request
  (every entry is a request of the schema; at most `PLAN_LENGTH_MAX` entries,
  `PLAN_REPEATS_MAX` repeats) and `DealerBudget.check_plan` refuses a plan
  the rest of the budget does not cover, before anything is generated.
* `serve` then generates the planned answers in order, for the numbers the
  requests would have had, with the same generators (so each is bit for bit
  the answer an ordinary request would have got), and streams each to party 0
  (a `STREAM_SCHEMA` header with its number and size, then the tensor) at most
  `stream_window` answers ahead of party 0's credit (`Credit`: "I have taken
  the answers up to n", a send party 0 does not wait on). Each answer
  generated is charged to the budget as a request is.
* A request that is not the plan's next makes party 0 send `Cancel(n)` ("I
  took the answers up to n"): the dealer stops, sends a `Stopped` marker with
  the last number it streamed, and numbers the next request n + 1. Party 0
  discards the answers up to the marker; each was made for a (number, kind,
  shapes) that no party drew, so it is unrelated to the others' shares.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from mpc_ledger.mpc.conformance import conformance_inputs
from mpc_ledger.mpc.errors import ProtocolViolation
from mpc_ledger.mpc.preprocessing import DEVIATION_EXPONENTS
from mpc_ledger.mpc.train_spec import PIECEWISE_KNOTS, TrainSpec

__all__ = [
    "DIMS_MAX",
    "PLAN_LENGTH_MAX",
    "PLAN_REPEATS_MAX",
    "SCHEMA",
    "STREAM_SCHEMA",
    "TERMINATE",
    "WINDOW_ELEMENTS_MAX",
    "BadDealerRequest",
    "Cancel",
    "Credit",
    "DealerBudget",
    "DealerChannel",
    "DealerPlan",
    "DealerRequest",
    "DealerRequestRefused",
    "DealerSession",
    "RequestKind",
    "Stopped",
    "StreamedAnswer",
    "budget_for_program",
    "parse_message",
    "parse_request",
    "parse_stream_message",
    "request_seed",
    "serve",
    "stream_window",
]

SCHEMA = "mpc-ledger/dealer-request/v1"
TERMINATE = "terminate"  # what CrypTen's client sends at shutdown
DIMS_MAX = 8
_KEYS = frozenset({"schema", "kind", "shapes"})
_NAME_SHOWN_CHARS = 48


class RequestKind(enum.Enum):
    """What the dealer may be asked for; the value is the wire name."""

    MUL_TRIPLE = "mul_triple"
    MATMUL_TRIPLE = "matmul_triple"
    SQUARE = "square"
    BINARY_TRIPLE = "binary_triple"
    WRAPS = "wraps"
    B2A = "b2a"


_ARITY = {
    RequestKind.MUL_TRIPLE: 2,
    RequestKind.MATMUL_TRIPLE: 2,
    RequestKind.SQUARE: 1,
    RequestKind.BINARY_TRIPLE: 2,
    RequestKind.WRAPS: 1,
    RequestKind.B2A: 1,
}
_BY_NAME = {kind.value: kind for kind in RequestKind}

Shape = tuple[int, ...]


class BadDealerRequest(ValueError):
    """A request outside the schema or the job's bounds; the message says which and why."""


class DealerRequestRefused(ProtocolViolation):
    """The dealer refused party 0's request and ends the job (the reason names the request)."""


def _numel(shape: Shape) -> int:
    return math.prod(shape)


@dataclasses.dataclass(frozen=True)
class DealerRequest:
    """One request: a kind and its operands' shapes (one or two, as the kind says)."""

    kind: RequestKind
    shapes: tuple[Shape, ...]

    def __post_init__(self) -> None:
        if len(self.shapes) != _ARITY[self.kind]:
            raise BadDealerRequest(
                f"{self.kind.value} takes {_ARITY[self.kind]} shape(s), got {len(self.shapes)}"
            )

    @property
    def result_shape(self) -> Shape:
        """The shape of the answer; BadDealerRequest if the operands do not combine."""
        try:
            if self.kind in (RequestKind.MUL_TRIPLE, RequestKind.BINARY_TRIPLE):
                return tuple(torch.broadcast_shapes(*self.shapes))  # type: ignore[no-untyped-call]
            if self.kind is RequestKind.MATMUL_TRIPLE:
                # meta tensors: torch's own shape rules for matmul, nothing allocated
                left, right = (torch.empty(s, device="meta") for s in self.shapes)
                return tuple(torch.matmul(left, right).shape)
        except RuntimeError as exc:
            raise BadDealerRequest(
                f"{self.kind.value}: shapes {list(self.shapes)} do not combine ({exc})"
            ) from None
        return self.shapes[0]

    @property
    def elements(self) -> int:
        """What the dealer generates for it, per party: the operands and the result."""
        return sum(_numel(s) for s in self.shapes) + _numel(self.result_shape)

    def describe(self) -> str:
        return f"{self.kind.value} {' x '.join(str(list(s)) for s in self.shapes)}"

    def to_object(self) -> dict[str, Any]:
        """The value party 0 sends with ``send_obj`` (see `mpc_ledger.mpc.objects`)."""
        return {
            "schema": SCHEMA,
            "kind": self.kind.value,
            "shapes": tuple(torch.Size(s) for s in self.shapes),
        }


_SEED_TAG = b"mpc-ledger/dealer-request-seed/v1\x00"
_SEED_MASK = (1 << 63) - 1  # torch.Generator.manual_seed takes a signed 64-bit value


def request_seed(shared_seed: int, number: int, request: DealerRequest) -> int:
    """The seed of one party's generator for the ``number``-th request (from 1). Pure.

    ``shared_seed`` is the seed that party shares with the dealer (CrypTen's seed
    exchange). Two requests that differ in their number, kind or any shape get
    unrelated seeds, so an answer to a request the other parties did not make
    says nothing about the shares they drew.
    """
    if number < 1:
        raise ValueError(f"requests are numbered from 1, not {number}")
    shapes = ";".join(",".join(map(str, shape)) for shape in request.shapes)
    message = b"%b%d\x00%d\x00%b\x00%b" % (
        _SEED_TAG,
        shared_seed % (1 << 64),
        number,
        request.kind.value.encode(),
        shapes.encode(),
    )
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") & _SEED_MASK


def _shown(value: object) -> str:
    """A peer's string, shortened, for an error message."""
    text = repr(value)
    return text if len(text) <= _NAME_SHOWN_CHARS else text[:_NAME_SHOWN_CHARS] + "...'"


_DIM_MAX = 2**63 - 1


def _shape(value: object, where: str) -> Shape:
    if not isinstance(value, torch.Size | tuple | list):
        raise BadDealerRequest(f"{where} is a {type(value).__name__}, not a shape")
    if len(value) > DIMS_MAX:
        raise BadDealerRequest(f"{where} has {len(value)} dimensions (at most {DIMS_MAX})")
    dims = []
    for dim in value:
        # A dimension is an int64 to torch; the object encoding also carries uint64 (seeds).
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim <= _DIM_MAX:
            raise BadDealerRequest(
                f"{where} has a dimension {_shown(dim)}, not an int in 0..2**63-1"
            )
        dims.append(dim)
    return tuple(dims)


def parse_request(value: object) -> DealerRequest:
    """The `DealerRequest` that ``value`` (a decoded object from party 0) encodes.

    BadDealerRequest, saying what is wrong, for anything outside the schema.
    """
    if not isinstance(value, dict):
        raise BadDealerRequest(f"a {type(value).__name__} is not a dealer request")
    if "function" in value:
        raise BadDealerRequest(
            f"a call of CrypTen's dealer by name ({_shown(value['function'])}) is not a "
            "dealer request; the dealer serves only the kinds "
            f"{sorted(_BY_NAME)}"
        )
    if set(value) != _KEYS:
        raise BadDealerRequest(
            f"a dealer request has exactly the keys {sorted(_KEYS)}, not {sorted(value)}"
        )
    if value["schema"] != SCHEMA:
        raise BadDealerRequest(f"schema {_shown(value['schema'])} is not {SCHEMA!r}")
    kind = _BY_NAME.get(value["kind"]) if isinstance(value["kind"], str) else None
    if kind is None:
        raise BadDealerRequest(
            f"request kind {_shown(value['kind'])} is not one of {sorted(_BY_NAME)}"
        )
    shapes = value["shapes"]
    if not isinstance(shapes, tuple | list):
        raise BadDealerRequest(f"{kind.value}: shapes is a {type(shapes).__name__}, not a list")
    if len(shapes) != _ARITY[kind]:
        raise BadDealerRequest(f"{kind.value} takes {_ARITY[kind]} shape(s), got {len(shapes)}")
    request = DealerRequest(
        kind, tuple(_shape(s, f"{kind.value} shape {i}") for i, s in enumerate(shapes))
    )
    request.result_shape  # noqa: B018  (refuses operands that do not combine)
    return request


# --- the job's bounds ------------------------------------------------------------------------

# How far CrypTen's own calls stretch the program's tensors: the widest one is the whole test
# set through the widest layer, and CrypTen stacks a few copies of a tensor into one request
# (e.g. argmax compares every pair of classes at once). Measured on every model this release
# trains and on the conformance program: at most 5 x rows x width elements (operands and
# result); the factor is the headroom over rows x width.
REQUEST_ELEMENTS_FACTOR = 16
# Requests per training step and layer (forward, loss, backward, update: each layer's
# multiplication, activation and comparisons): measured at most 45; ten times that.
REQUESTS_PER_LAYER_STEP = 400
# Elements per step and layer in units of the largest request allowed: measured well under 1
# (about 5 x rows x width); forty times the largest request leaves room for the loss and metric.
ELEMENTS_PER_LAYER_STEP_FACTOR = 40
# Pooled standardisation's statistics (`mpc_ledger.mpc.preprocessing`): two batched
# comparisons, the one-hot products and three Newton steps, in steps' worth of requests.
PREPROCESSING_STEPS = 2


@dataclasses.dataclass
class DealerBudget:
    """What one job may ask of the dealer; `charge` refuses what goes over."""

    max_request_elements: int
    max_requests: int
    max_job_elements: int
    requests: int = 0
    elements: int = 0

    def charge(self, request: DealerRequest) -> None:
        elements = request.elements
        if elements > self.max_request_elements:
            raise BadDealerRequest(
                f"{request.describe()} asks for {elements} elements; this job's requests "
                f"need at most {self.max_request_elements}"
            )
        if self.requests + 1 > self.max_requests:
            raise BadDealerRequest(f"this job needs at most {self.max_requests} dealer requests")
        if self.elements + elements > self.max_job_elements:
            raise BadDealerRequest(
                f"{request.describe()} would bring this job to {self.elements + elements} "
                f"elements from the dealer; it needs at most {self.max_job_elements}"
            )
        self.requests += 1
        self.elements += elements

    def check_plan(self, plan: DealerPlan) -> None:
        """Refuse a plan whose answers the rest of the budget does not cover (charges nothing:
        `charge` counts each answer when it is generated, so a cancelled plan costs only the
        answers streamed)."""
        for entry in plan.sequence:
            if entry.elements > self.max_request_elements:
                raise BadDealerRequest(
                    f"the plan's {entry.describe()} asks for {entry.elements} elements; this "
                    f"job's requests need at most {self.max_request_elements}"
                )
        if self.requests + plan.answers > self.max_requests:
            raise BadDealerRequest(
                f"a plan of {plan.answers} answers ({len(plan.sequence)} x {plan.repeats}) "
                f"would bring this job to {self.requests + plan.answers} dealer requests; it "
                f"needs at most {self.max_requests}"
            )
        if self.elements + plan.elements > self.max_job_elements:
            raise BadDealerRequest(
                f"a plan of {plan.answers} answers would bring this job to "
                f"{self.elements + plan.elements} elements from the dealer; it needs at most "
                f"{self.max_job_elements}"
            )


def _budget(rows: int, widths: Sequence[int], layers: int, steps: int) -> DealerBudget:
    width = max(widths)
    largest = REQUEST_ELEMENTS_FACTOR * max(rows * width, width * width, 1)
    per_step = layers * ELEMENTS_PER_LAYER_STEP_FACTOR * largest
    return DealerBudget(
        max_request_elements=largest,
        max_requests=steps * layers * REQUESTS_PER_LAYER_STEP,
        max_job_elements=steps * per_step,
    )


def budget_for_program(program: Mapping[str, Any]) -> DealerBudget:
    """The bounds of a worker program (the manifest's ``program``); ValueError if it has none.

    A training job: rows are the larger of the batch and the test set (evaluated at once),
    widths the features, hidden layers and outputs; steps the epochs' batches, plus the
    evaluation and the model's reveal. A job aligned by PSI states no rows in its spec; the
    dealer's ``data.max_rows`` (the smallest dataset, which bounds the intersection) does.
    """
    name = program.get("name")
    if name == "conformance":
        shapes = [tuple(t.shape) for t in conformance_inputs().values()]
        rows = max(s[0] for s in shapes)
        return _budget(rows, [s[-1] for s in shapes], layers=2, steps=4)
    if name != "train":
        raise ValueError(f"the dealer has no bounds for program {name!r}")
    spec = TrainSpec.from_json(program["spec"])
    rows_known = spec.n_train + spec.n_test
    max_rows = int(program.get("data", {}).get("max_rows", 0))
    if rows_known == 0 and max_rows <= 0:
        raise ValueError("the dealer needs the job's row counts (or data.max_rows) to bound it")
    train_rows = spec.n_train if rows_known else max_rows
    test_rows = spec.n_test if rows_known else max_rows
    rows = max(min(spec.batch_size, train_rows), test_rows, 1)
    batches = math.ceil(train_rows / spec.batch_size) if train_rows else 0
    widths = [spec.n_features, *spec.hidden, spec.output_size, spec.classes**2]
    if spec.sigmoid == "piecewise":  # the logits compared with every knot at once
        widths.append(len(PIECEWISE_KNOTS) * spec.output_size)
    layers = (len(spec.hidden) if spec.model == "mlp" else 0) + 1
    steps = spec.epochs * batches + 4
    if spec.standardisation == "pooled":
        # `preprocessing.standardise` takes the rows in chunks of `rows` (at most one step's
        # requests each); the statistics before it compare and multiply vectors of
        # parties x features x exponents elements, in about PREPROCESSING_STEPS steps' requests.
        steps += math.ceil((train_rows + test_rows) / rows) + PREPROCESSING_STEPS
        parties = len(spec.train_rows_per_rank)
        widths.append(_ceil_div(2 * parties * len(DEVIATION_EXPONENTS) * spec.n_features, rows))
    return _budget(rows, widths, layers, steps=steps)


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


# --- the offline phase: plans, credit, cancellation -----------------------------------------

STREAM_SCHEMA = "mpc-ledger/dealer-stream/v1"
# One step's requests: at most REQUESTS_PER_LAYER_STEP per layer (measured at most 45), and
# well inside what one object may hold (`objects.ITEMS_MAX`).
PLAN_LENGTH_MAX = 4096
PLAN_REPEATS_MAX = 1_000_000  # the budget bounds the product; this bounds the arithmetic
# The most the dealer has streamed and party 0 not yet credited, in elements (8 bytes each):
# what waits in party 0's memory.
WINDOW_ELEMENTS_MAX = 8 * 1024 * 1024
_PLAN_KEYS = frozenset({"schema", "plan", "first", "repeats"})
_ENTRY_KEYS = frozenset({"kind", "shapes"})


@dataclasses.dataclass(frozen=True)
class DealerPlan:
    """Party 0's forecast: ``sequence`` repeated ``repeats`` times, numbered from ``first``."""

    sequence: tuple[DealerRequest, ...]
    first: int
    repeats: int

    @property
    def answers(self) -> int:
        return len(self.sequence) * self.repeats

    @property
    def elements(self) -> int:
        return sum(entry.elements for entry in self.sequence) * self.repeats

    @property
    def last(self) -> int:
        """The number of the plan's last answer."""
        return self.first + self.answers - 1

    def request(self, number: int) -> DealerRequest:
        """The planned request numbered ``number`` (first..last)."""
        if not self.first <= number <= self.last:
            raise ValueError(f"request {number} is outside the plan ({self.first}..{self.last})")
        return self.sequence[(number - self.first) % len(self.sequence)]

    def to_object(self) -> dict[str, Any]:
        entries = tuple(
            {k: v for k, v in entry.to_object().items() if k != "schema"} for entry in self.sequence
        )
        return {"schema": SCHEMA, "plan": entries, "first": self.first, "repeats": self.repeats}


@dataclasses.dataclass(frozen=True)
class Credit:
    """Party 0 has taken the streamed answers up to ``through`` (a number)."""

    through: int

    def to_object(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "credit": self.through}


@dataclasses.dataclass(frozen=True)
class Cancel:
    """Party 0 stops the plan: it took the answers up to ``through`` and needs no more."""

    through: int

    def to_object(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "cancel": self.through}


@dataclasses.dataclass(frozen=True)
class StreamedAnswer:
    """The header of one streamed answer (the tensor follows)."""

    number: int
    size: Shape

    def to_object(self) -> dict[str, Any]:
        return {"schema": STREAM_SCHEMA, "number": self.number, "size": torch.Size(self.size)}


@dataclasses.dataclass(frozen=True)
class Stopped:
    """The dealer's marker after a `Cancel`: ``last`` is the last number it streamed."""

    last: int

    def to_object(self) -> dict[str, Any]:
        return {"schema": STREAM_SCHEMA, "stopped_at": self.last}


def stream_window(plan: DealerPlan) -> int:
    """How many answers the dealer may stream ahead of party 0's credit (both sides compute
    it from the plan): two repeats' worth, fewer if that would hold more than
    `WINDOW_ELEMENTS_MAX` elements; never less than one."""
    largest = max(_numel(entry.result_shape) for entry in plan.sequence)
    return max(1, min(2 * len(plan.sequence), WINDOW_ELEMENTS_MAX // max(largest, 1)))


def _number(value: object, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**62:
        raise BadDealerRequest(f"{where} {_shown(value)} is not an int of at least {low}")
    return value


def _parse_plan(value: dict[str, Any]) -> DealerPlan:
    if set(value) != _PLAN_KEYS:
        raise BadDealerRequest(
            f"a dealer plan has exactly the keys {sorted(_PLAN_KEYS)}, not {sorted(value)}"
        )
    entries = value["plan"]
    if not isinstance(entries, tuple | list) or not 1 <= len(entries) <= PLAN_LENGTH_MAX:
        size = len(entries) if isinstance(entries, tuple | list) else type(entries).__name__
        raise BadDealerRequest(f"a plan has 1 to {PLAN_LENGTH_MAX} requests, not {size}")
    sequence = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            raise BadDealerRequest(f"plan entry {index} is not a request's kind and shapes")
        try:
            sequence.append(parse_request({"schema": SCHEMA, **entry}))
        except BadDealerRequest as exc:
            raise BadDealerRequest(f"plan entry {index}: {exc}") from None
    repeats = _number(value["repeats"], "the plan's repeats", 1)
    if repeats > PLAN_REPEATS_MAX:
        raise BadDealerRequest(f"a plan repeats at most {PLAN_REPEATS_MAX} times, not {repeats}")
    return DealerPlan(tuple(sequence), _number(value["first"], "the plan's first", 1), repeats)


Message = DealerRequest | DealerPlan | Credit | Cancel


def parse_message(value: object) -> Message:
    """What party 0 sent the dealer (not "terminate"): a request, a plan, a credit or a
    cancel. BadDealerRequest, saying what is wrong, for anything else."""
    if isinstance(value, dict) and "schema" in value and value.get("schema") == SCHEMA:
        if "plan" in value:
            return _parse_plan(value)
        for key, kind in (("credit", Credit), ("cancel", Cancel)):
            if key in value:
                if set(value) != {"schema", key}:
                    raise BadDealerRequest(
                        f"a dealer {key} has exactly the keys ['{key}', 'schema'], "
                        f"not {sorted(value)}"
                    )
                return kind(_number(value[key], f"the {key}", 0))
    return parse_request(value)


def parse_stream_message(value: object) -> StreamedAnswer | Stopped:
    """What the dealer streams to party 0; BadDealerRequest for anything else (party 0
    makes it a `ProtocolViolation` naming the dealer)."""
    if not isinstance(value, dict) or value.get("schema") != STREAM_SCHEMA:
        raise BadDealerRequest(f"a {type(value).__name__} is not a streamed answer")
    if set(value) == {"schema", "stopped_at"}:
        return Stopped(_number(value["stopped_at"], "the stop marker", 0))
    if set(value) != {"schema", "number", "size"}:
        raise BadDealerRequest(f"a streamed answer has the keys {sorted(value)}")
    return StreamedAnswer(
        _number(value["number"], "the answer's number", 1), _shape(value["size"], "its size")
    )


@dataclasses.dataclass
class _Stream:
    plan: DealerPlan
    window: int
    sent: int = 0  # answers streamed
    credited: int = 0  # answers party 0 says it took

    @property
    def last_sent(self) -> int:
        return self.plan.first + self.sent - 1

    @property
    def complete(self) -> bool:
        return self.sent == self.plan.answers


class DealerSession:
    """The dealer's state between party 0's messages (pure: no I/O, no CrypTen).

    Numbers every answer: ordinary requests and streamed ones share one count, the one
    every party binds its generators to (`request_seed`). BadDealerRequest for a message
    the state does not allow, before anything is generated for it.
    """

    def __init__(self, budget: DealerBudget) -> None:
        self.budget = budget
        self.next_number = 1
        self.stream: _Stream | None = None
        self.requested = 0
        self.streamed = 0
        self.plans = 0
        self.cancelled = 0

    def _no_stream_running(self, what: str) -> None:
        if self.stream is not None and not self.stream.complete:
            raise BadDealerRequest(
                f"{what} while the plan from request {self.stream.plan.first} is streaming "
                f"(up to {self.stream.last_sent}); cancel it first"
            )
        self.stream = None

    def on_request(self, request: DealerRequest) -> int:
        """Charge ``request``; the number to answer it with."""
        self._no_stream_running(f"request {request.describe()}")
        self.budget.charge(request)
        number = self.next_number
        self.next_number += 1
        self.requested += 1
        return number

    def on_plan(self, plan: DealerPlan) -> None:
        self._no_stream_running("a new plan")
        if plan.first != self.next_number:
            raise BadDealerRequest(
                f"the plan starts at request {plan.first}; the next request is {self.next_number}"
            )
        self.budget.check_plan(plan)
        self.stream = _Stream(plan, stream_window(plan))
        self.plans += 1

    def may_stream(self) -> bool:
        """Whether the dealer streams another answer now (instead of waiting for party 0)."""
        stream = self.stream
        return (
            stream is not None
            and not stream.complete
            and stream.sent - stream.credited < stream.window
        )

    def next_streamed(self) -> tuple[DealerRequest, int]:
        """The next planned request, charged, and its number."""
        stream = self.stream
        assert stream is not None and self.may_stream()
        number = stream.plan.first + stream.sent
        request = stream.plan.request(number)
        self.budget.charge(request)  # within the plan's check: cannot fail
        stream.sent += 1
        self.next_number = number + 1
        self.streamed += 1
        return request, number

    def _checked_through(self, through: int, what: str) -> _Stream:
        stream = self.stream
        if stream is None:
            raise BadDealerRequest(f"a {what} with no plan streaming")
        low = stream.plan.first - 1 + stream.credited
        if not low <= through <= stream.last_sent:
            raise BadDealerRequest(
                f"a {what} through request {through}; the dealer streamed "
                f"{stream.plan.first}..{stream.last_sent} and had credit through {low}"
            )
        return stream

    def on_credit(self, credit: Credit) -> None:
        stream = self._checked_through(credit.through, "credit")
        stream.credited = credit.through - stream.plan.first + 1

    def on_cancel(self, cancel: Cancel) -> Stopped:
        """Stop streaming; the next request is numbered ``cancel.through + 1``."""
        stream = self._checked_through(cancel.through, "cancel")
        self.stream = None
        self.next_number = cancel.through + 1
        self.cancelled += 1
        return Stopped(stream.last_sent)


# --- the loop --------------------------------------------------------------------------------


class DealerChannel:
    """How the dealer talks to party 0 (CrypTen's communicator calls, in one place)."""

    def __init__(self, communicator: Any, party0_member: str) -> None:
        self._comm = communicator
        self.party0_member = party0_member

    def receive(self) -> Any:
        return self._comm.recv_obj(0, self._comm.ttp_group)

    def answer(self, result: torch.Tensor) -> None:
        """Party 0 gets the size first, then the tensor, as CrypTen's client expects."""
        self._comm.send_obj(result.size(), 0, self._comm.ttp_group)
        self._comm.broadcast(result, self._comm.get_ttp_rank(), self._comm.ttp_comm_group)

    def stream(self, number: int, result: torch.Tensor) -> None:
        """A planned answer ahead of use: its header, then the tensor (as `answer`)."""
        header = StreamedAnswer(number, tuple(result.size()))
        self._comm.send_obj(header.to_object(), 0, self._comm.ttp_group)
        self._comm.broadcast(result, self._comm.get_ttp_rank(), self._comm.ttp_comm_group)

    def stopped(self, marker: Stopped) -> None:
        self._comm.send_obj(marker.to_object(), 0, self._comm.ttp_group)


Generate = Callable[[DealerRequest, int], torch.Tensor]


def _what(value: object) -> str:
    """What a refused message was, for the reason (its number is the session's next)."""
    if isinstance(value, dict) and ("credit" in value or "cancel" in value):
        return "message at request"
    return "plan at request" if isinstance(value, dict) and "plan" in value else "request"


def serve(channel: DealerChannel, generate: Generate, budget: DealerBudget) -> DealerSession:
    """Answer party 0 until it says "terminate"; the session (its counts).

    ``generate(request, number)`` makes the answer to the ``number``-th request. A plan's
    answers are streamed while the window allows; otherwise the dealer waits for party 0.
    DealerRequestRefused for a message outside the schema, the budget or the session's
    state: nothing is generated for it, and the caller ends the job with the message as
    its reason.
    """
    session = DealerSession(budget)
    while True:
        if session.may_stream():
            request, number = session.next_streamed()
            channel.stream(number, generate(request, number))
            continue
        value = channel.receive()
        if value == TERMINATE:
            return session
        try:
            message = parse_message(value)
            if isinstance(message, DealerRequest):
                number = session.on_request(message)
            elif isinstance(message, DealerPlan):
                session.on_plan(message)
            elif isinstance(message, Credit):
                session.on_credit(message)
            else:
                channel.stopped(session.on_cancel(message))
        except BadDealerRequest as exc:
            what = _what(value)
            raise DealerRequestRefused(
                channel.party0_member,
                f"the dealer refused {what} {session.next_number} from "
                f"{channel.party0_member} (rank 0): {exc}",
            ) from None
        if isinstance(message, DealerRequest):
            channel.answer(generate(message, number))
