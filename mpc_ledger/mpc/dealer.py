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

A request (kind, shapes) depends only on the job's shapes, not on data: it is
also the unit an offline phase would produce ahead of time.
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
from mpc_ledger.mpc.train_spec import TrainSpec

__all__ = [
    "DIMS_MAX",
    "SCHEMA",
    "TERMINATE",
    "BadDealerRequest",
    "DealerBudget",
    "DealerChannel",
    "DealerRequest",
    "DealerRequestRefused",
    "RequestKind",
    "budget_for_program",
    "parse_request",
    "request_seed",
    "serve",
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


Generate = Callable[[DealerRequest], torch.Tensor]


def serve(channel: DealerChannel, generate: Generate, budget: DealerBudget) -> int:
    """Answer party 0 until it says "terminate"; the number of requests served.

    DealerRequestRefused for a request outside the schema or the budget: nothing is
    generated for it, and the caller ends the job with the message as its reason.
    """
    served = 0
    while True:
        value = channel.receive()
        if value == TERMINATE:
            return served
        try:
            request = parse_request(value)
            budget.charge(request)
        except BadDealerRequest as exc:
            raise DealerRequestRefused(
                channel.party0_member,
                f"the dealer refused request {served + 1} from {channel.party0_member} "
                f"(rank 0): {exc}",
            ) from None
        channel.answer(generate(request))
        served += 1
