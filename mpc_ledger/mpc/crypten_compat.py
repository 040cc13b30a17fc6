"""The one place that touches CrypTen's internals so that CrypTen 0.4.1 runs on torch 2.13.

CrypTen 0.4.1 (the last release) imports
``torch.onnx._internal.registration.registry`` when the older
``torch.onnx.symbolic_registry`` is missing. torch 2.13 has neither, so
``import crypten`` fails. CrypTen only binds the name at import time and,
on that code path, registers its ONNX symbolics through the public
``torch.onnx.register_custom_op_symbolic`` instead; a stand-in module that
provides the name is therefore enough. The stand-in is registered only when
the real module cannot be found, and only once.

Everything else that must reach into CrypTen (installing the project's own
communicator, the legacy ONNX exporter for ``crypten.nn.from_pytorch``, the
dealer's request schema and its offline phase on party 0's side and CrypTen's
tuple generators on the dealer's, see `mpc_ledger.mpc.dealer`; re-encoding a comparison's result,
`fixed_point`; CrypTen's seeds drawn from the job seed instead of ``os.urandom``, `seed_crypten`;
a cheaper sigmoid for training, `sigmoid_approximation`) is added here too, so a CrypTen
upgrade has one file to review.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from mpc_ledger.mpc.dealer import (
    BadDealerRequest,
    DealerPlan,
    DealerRequest,
    RequestKind,
    Stopped,
    StreamedAnswer,
    parse_stream_message,
    request_seed,
)
from mpc_ledger.mpc.dealer_offline import Decision, OfflinePlanner, step_rows
from mpc_ledger.mpc.errors import MpcError, ProtocolViolation
from mpc_ledger.mpc.train_spec import PIECEWISE_KNOTS

__all__ = [
    "CRYPTEN_PROVIDER_NAMES",
    "STAND_IN_MODULES",
    "dealer_request_for",
    "dealer_step_starts",
    "finish_dealer_offline",
    "fixed_point",
    "import_crypten",
    "install_communicator",
    "install_dealer_client",
    "seed_crypten",
    "set_tuple_provider",
    "sigmoid_approximation",
    "start_dealer",
]

_REGISTRATION = "torch.onnx._internal.registration"
STAND_IN_MODULES = (_REGISTRATION,)
_STAND_IN_MARK = "__mpc_ledger_stand_in__"


def _module_exists(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _install_registration_stand_in() -> None:
    if _module_exists(_REGISTRATION):
        return
    stand_in = types.ModuleType(_REGISTRATION)
    stand_in.__doc__ = "mpc-ledger stand-in: CrypTen 0.4.1 imports `registry` from here."
    stand_in.registry = None  # type: ignore[attr-defined]  # bound by CrypTen, never called
    setattr(stand_in, _STAND_IN_MARK, True)
    sys.modules[_REGISTRATION] = stand_in


def import_crypten() -> Any:
    """Import CrypTen on this torch, applying the compatibility shims first. Idempotent."""
    importlib.import_module("torch.onnx")
    _install_registration_stand_in()
    return importlib.import_module("crypten")


def seed_crypten(seed: bytes) -> None:
    """CrypTen's init draws its generators' seeds from the job seed. Call before
    ``crypten.init()``; idempotent (the last seed given wins).

    CrypTen 0.4.1's ``_setup_prng`` (called by ``crypten.init``, looked up as a module
    global at call time) draws the seed it shares with the next party, its local seed and
    party 0's global seed from ``os.urandom``, then ``_sync_seeds`` exchanges them. The
    replacement makes the same generators and calls the same ``_sync_seeds`` with seeds
    derived from ``seed`` (`mpc_ledger.mpc.job_seed.derive_int64`): the exchange and every
    share drawn from them are then a function of the committed seed and what was
    received, which a replay re-executes. The dealer's seeds for each party are drawn
    by CrypTen from torch's global generator, which the worker seeds from the job seed
    too (`job_seed.seed_global_generators`).
    """
    from mpc_ledger.mpc.job_seed import derive_int64

    crypten = import_crypten()
    torch = importlib.import_module("torch")
    _CRYPTEN_SEED["seed"] = seed
    if getattr(crypten._setup_prng, _STAND_IN_MARK, False):
        return

    def setup_prng() -> None:
        job_seed = _CRYPTEN_SEED["seed"]
        for key in crypten.generators:
            crypten.generators[key][torch.device("cpu")] = torch.Generator(device="cpu")
        next_seed = torch.tensor(derive_int64(job_seed, "crypten-next"))
        local_seed = derive_int64(job_seed, "crypten-local")
        global_seed = torch.tensor(derive_int64(job_seed, "crypten-global"))
        crypten._sync_seeds(next_seed, local_seed, global_seed)

    setattr(setup_prng, _STAND_IN_MARK, True)
    crypten._setup_prng = setup_prng


_CRYPTEN_SEED: dict[str, bytes] = {}


# Our provider names -> CrypTen's cfg.mpc.provider values.
CRYPTEN_PROVIDER_NAMES = {"dealer": "TTP", "trusted-first-party": "TFP"}


def install_communicator(communicator_class: type, torch_distributed_stand_in: object) -> Any:
    """Make CrypTen use ``communicator_class`` instead of torch.distributed. Idempotent.

    CrypTen 0.4.1 looks the class up by the name ``DistributedCommunicator``
    in two modules (``crypten.communicator``, whose ``get``/``_init`` read it
    as a module global, and ``crypten.mpc.context``), so both names are
    rebound. Its dealer module (``crypten.mpc.provider.ttp_provider``) also
    calls ``torch.distributed`` directly for the seed exchange; that module's
    ``dist`` is pointed at ``torch_distributed_stand_in``. The ONNX export
    behind ``crypten.nn.from_pytorch`` is switched to the legacy exporter.
    Must run before ``crypten.init()``; returns the crypten module.
    """
    crypten = import_crypten()
    communicator_package = importlib.import_module("crypten.communicator")
    context = importlib.import_module("crypten.mpc.context")
    ttp_provider = importlib.import_module("crypten.mpc.provider.ttp_provider")
    if communicator_package.is_initialized():
        raise RuntimeError("install the MPC communicator before crypten.init()")
    communicator_package.DistributedCommunicator = communicator_class  # type: ignore[attr-defined]
    context.DistributedCommunicator = communicator_class  # type: ignore[attr-defined]
    ttp_provider.dist = torch_distributed_stand_in  # type: ignore[attr-defined]
    install_legacy_onnx_export()
    return crypten


def set_tuple_provider(provider: str, *, offline_phase: bool = False) -> None:
    """Point CrypTen's config at the dealer ("TTP") or trusted first party ("TFP").

    For the dealer, party 0's client is made to send `DealerRequest`s first
    (`install_dealer_client`, with the offline phase if asked): no path uses the
    dealer without the schema.
    """
    if provider not in CRYPTEN_PROVIDER_NAMES:
        raise ValueError(
            f"unknown tuple provider {provider!r}; known: {list(CRYPTEN_PROVIDER_NAMES)}"
        )
    crypten = import_crypten()
    if provider == "dealer":
        install_dealer_client(offline_phase=offline_phase)
    crypten.cfg.mpc.provider = CRYPTEN_PROVIDER_NAMES[provider]


# CrypTen's TTP provider names its requests after TTPServer's methods; each maps to one kind
# of our schema ("additive" to one per op: only mul and matmul are served).
_CRYPTEN_REQUESTS = {
    "square": RequestKind.SQUARE,
    "binary": RequestKind.BINARY_TRIPLE,
    "wraps": RequestKind.WRAPS,
    "B2A": RequestKind.B2A,
}
_ADDITIVE_OPS = {"mul": RequestKind.MUL_TRIPLE, "matmul": RequestKind.MATMUL_TRIPLE}


def dealer_request_for(
    function: str, device: str | None, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> DealerRequest:
    """The `DealerRequest` for one of CrypTen's own ``ttp_request`` calls (on party 0).

    MpcError for a call the dealer does not serve (a convolution, a GPU device):
    this party's own program asked for it, so the job fails here, before any request.
    """
    if device not in (None, "cpu"):
        raise MpcError(f"the dealer serves tensors on the CPU only, not on {device!r}")
    if function == "additive":
        size0, size1, op, *extra = args
        kind = _ADDITIVE_OPS.get(op)
        if kind is None or extra or kwargs:
            raise MpcError(f"the dealer serves Beaver triples for mul and matmul only, not {op!r}")
        return DealerRequest(kind, (tuple(size0), tuple(size1)))
    kind = _CRYPTEN_REQUESTS.get(function)
    if kind is None or kwargs:
        raise MpcError(f"CrypTen asked the dealer for {function!r}, which it does not serve")
    return DealerRequest(kind, tuple(tuple(size) for size in args))


def install_dealer_client(*, offline_phase: bool = False) -> None:
    """Party 0 sends `DealerRequest`s instead of CrypTen's call by name. Idempotent.

    Replaces ``ttp_request`` of CrypTen's (private) TTP client class; the rest
    of the exchange is CrypTen's: the dealer answers with the result's size,
    then broadcasts the tensor to party 0. The size is checked against the
    request's own result shape before a buffer is made for it.

    With ``offline_phase`` (our relay transport only: its sends never wait, so
    party 0's credit and the dealer's stream cannot block each other as two
    blocking sends over gloo could), party 0 plans the dealer's answers ahead
    (`mpc_ledger.mpc.dealer_offline`, `dealer_step_starts`) and takes streamed
    answers instead of asking.
    """
    import_crypten()
    _OFFLINE_PHASE["enabled"] = offline_phase
    ttp = importlib.import_module("crypten.mpc.provider.ttp_provider")
    client_class = ttp.TTPClient._TTPClient__TTPClient
    if getattr(client_class.ttp_request, _STAND_IN_MARK, False):
        return
    communicator = importlib.import_module("crypten.communicator")
    torch = importlib.import_module("torch")

    def ttp_request(self: Any, function: str, device: Any, *args: Any, **kwargs: Any) -> Any:
        request = dealer_request_for(
            function, None if device is None else str(device), args, kwargs
        )
        comm = communicator.get()
        offline = _party0_offline()
        if offline is not None:
            return offline.fetch(comm, self, request)
        return _ask_dealer(comm, self, request)

    setattr(ttp_request, _STAND_IN_MARK, True)
    client_class.ttp_request = ttp_request
    _bind_tuples_to_requests(ttp, torch)


def _dealer_violation(comm: Any, message: str) -> ProtocolViolation:
    dealer_rank = comm.get_ttp_rank()
    return ProtocolViolation(f"rank {dealer_rank}", f"the dealer (rank {dealer_rank}) {message}")


def _ask_dealer(comm: Any, client: Any, request: DealerRequest) -> Any:
    """An ordinary request: send it, wait for the size, then the tensor."""
    torch = importlib.import_module("torch")
    dealer_rank = comm.get_ttp_rank()
    comm.send_obj(request.to_object(), dealer_rank, client.ttp_group)
    size = comm.recv_obj(dealer_rank, client.ttp_group)
    if not isinstance(size, torch.Size) or tuple(size) != request.result_shape:
        raise _dealer_violation(
            comm,
            f"answered {request.describe()} with size {size!r}, not {list(request.result_shape)}",
        )
    result = torch.empty(size, dtype=torch.long)
    comm.broadcast(result, dealer_rank, client.comm_group)
    return result


_OFFLINE_PHASE: dict[str, Any] = {"enabled": False, "party0": None}


class _Party0Offline:
    """Party 0's offline phase over CrypTen's communicator: `OfflinePlanner` decides, this
    sends and receives. Every streamed header and size is checked against party 0's own
    plan before a buffer is made; anything else is a `ProtocolViolation` naming the dealer."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.planner = OfflinePlanner()
        self.schedule: tuple[int, ...] | None = None

    def fetch(self, comm: Any, client: Any, request: DealerRequest) -> Any:
        number = int(getattr(client, "mpc_ledger_requests", 0))
        decision = self.planner.on_request(request, number)
        if decision is Decision.TAKE:
            answer = self._take(comm, *self.planner.expected())
            credit = self.planner.took()
            if credit is not None:  # a send party 0 does not wait on
                comm.send_obj(credit.to_object(), comm.get_ttp_rank(), client.ttp_group)
            return answer
        if decision is Decision.CANCEL:
            self._cancel(comm, *self.planner.cancel())
        return _ask_dealer(comm, client, request)

    def send_plan(self, comm: Any, plan: DealerPlan) -> None:
        comm.send_obj(plan.to_object(), comm.get_ttp_rank(), self.client.ttp_group)

    def _header(self, comm: Any) -> StreamedAnswer | Stopped:
        value = comm.recv_obj(comm.get_ttp_rank(), self.client.ttp_group)
        try:
            return parse_stream_message(value)
        except BadDealerRequest as exc:
            raise _dealer_violation(comm, f"streamed what is not an answer: {exc}") from None

    def _receive(self, comm: Any, header: StreamedAnswer) -> Any:
        torch = importlib.import_module("torch")
        result = torch.empty(header.size, dtype=torch.long)
        comm.broadcast(result, comm.get_ttp_rank(), self.client.comm_group)
        return result

    def _expect(
        self, comm: Any, header: StreamedAnswer | Stopped, number: int, request: DealerRequest
    ) -> StreamedAnswer:
        if not isinstance(header, StreamedAnswer):
            raise _dealer_violation(
                comm, f"stopped at request {header.last} while streaming a plan not cancelled"
            )
        if header.number != number or header.size != request.result_shape:
            raise _dealer_violation(
                comm,
                f"streamed answer {header.number} with size {list(header.size)}; party 0 "
                f"expected answer {number}, {request.describe()}, of size "
                f"{list(request.result_shape)}",
            )
        return header

    def _take(self, comm: Any, number: int, request: DealerRequest) -> Any:
        # Streamed ahead, not asked for: no round trip. The offline phase runs over the
        # project's communicator only (`install_dealer_client`).
        with comm.streamed_receives():
            return self._receive(comm, self._expect(comm, self._header(comm), number, request))

    def _cancel(self, comm: Any, cancel: Any, plan: DealerPlan, first_unused: int) -> None:
        """Tell the dealer to stop; discard what it streamed up to its marker."""
        comm.send_obj(cancel.to_object(), comm.get_ttp_rank(), self.client.ttp_group)
        number = first_unused
        while True:
            header = self._header(comm)
            if isinstance(header, Stopped):
                if header.last != number - 1:
                    raise _dealer_violation(
                        comm, f"stopped at request {header.last} after streaming {number - 1}"
                    )
                return
            if number > plan.last:
                raise _dealer_violation(comm, f"streamed answer {number}, past the plan's end")
            self._receive(comm, self._expect(comm, header, number, plan.request(number)))
            self.planner.counts.discarded += 1
            number += 1

    def close(self, comm: Any) -> None:
        due = self.planner.close()
        if due is not None:
            self._cancel(comm, *due)


def _party0_offline() -> _Party0Offline | None:
    """Party 0's side of the dealer (it counts its requests; it plans only when the offline
    phase is on); None on every other rank and without the dealer."""
    crypten = import_crypten()
    if crypten.cfg.mpc.provider != "TTP" or crypten.communicator.get().get_rank() != 0:
        return None
    ttp = importlib.import_module("crypten.mpc.provider.ttp_provider")
    client = ttp.TTPClient.get()
    current: _Party0Offline | None = _OFFLINE_PHASE["party0"]
    if current is None or current.client is not client:  # a new job (CrypTen re-initialised)
        current = _Party0Offline(client)
        _OFFLINE_PHASE["party0"] = current
    return current


def dealer_step_starts(spec: Any, step: int) -> None:
    """The training loop's hook: step ``step`` (from 1) of ``spec`` (a `TrainSpec`) starts.

    On party 0 with the offline phase on, sends the dealer a plan when one is due; a
    no-op everywhere else.
    """
    if not _OFFLINE_PHASE["enabled"]:
        return
    offline = _party0_offline()
    if offline is None:
        return
    if offline.schedule is None:
        offline.schedule = step_rows(spec.n_train, spec.batch_size, spec.epochs)
        # a partial batch is planned from the first step's requests when no other dimension
        # of the model could be mistaken for the batch's (else it asks, the first time)
        dimensions = {spec.n_features, *spec.columns_per_rank, *spec.hidden, spec.output_size}
        offline.planner.resizable_rows = spec.batch_size > 1 and spec.batch_size not in dimensions
    next_number = int(getattr(offline.client, "mpc_ledger_requests", 0)) + 1
    plan = offline.planner.step_starts(step - 1, offline.schedule, next_number)
    if plan is not None:
        offline.send_plan(importlib.import_module("crypten.communicator").get(), plan)


def finish_dealer_offline() -> dict[str, int] | None:
    """Party 0, after its program: cancel a plan still streaming (so the dealer's channel
    is read to its end before "terminate"); its counts of streamed answers, ordinary
    requests, plans and fallbacks for the result; None on other ranks or without the
    dealer."""
    offline = _party0_offline()
    if offline is None:
        return None
    offline.close(importlib.import_module("crypten.communicator").get())
    return offline.planner.counts.to_json()


# CrypTen's TTP provider methods that draw one request's randomness -> the name of the
# request its party 0 sends for it (CrypTen's ``ttp_request`` function names).
_TUPLE_METHODS = {
    "generate_additive_triple": "additive",
    "square": "square",
    "generate_binary_triple": "binary",
    "wrap_rng": "wraps",
    "B2A_rng": "B2A",
}


def _request_of(function: str, bound: inspect.BoundArguments) -> DealerRequest:
    """The request party 0 sends for this call of a TTP provider method (any party)."""
    arguments = dict(bound.arguments)
    arguments.pop("self", None)
    device = arguments.pop("device", None)
    extra_args = tuple(arguments.pop("args", ()))
    extra_kwargs = dict(arguments.pop("kwargs", {}))
    return dealer_request_for(
        function,
        None if device is None else str(device),
        (*arguments.values(), *extra_args),
        extra_kwargs,
    )


def _seeded_generator(torch: Any, seed: int) -> Any:
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return generator


def _bind_tuples_to_requests(ttp: Any, torch: Any) -> None:
    """Each party draws a request's randomness from a generator of that request's own.

    Before each of CrypTen's TTP provider methods runs, the party's generator
    shared with the dealer is replaced by one seeded with `request_seed` (the
    shared seed, this party's count of requests, the request's kind and shapes);
    the dealer does the same for every party (`start_dealer`). See
    `mpc_ledger.mpc.dealer` for why: an answer to a request the others did not
    make is then unrelated to their shares.
    """
    provider = ttp.TrustedThirdParty
    for method_name, function in _TUPLE_METHODS.items():
        method = getattr(provider, method_name)
        if getattr(method, _STAND_IN_MARK, False):
            continue
        signature = inspect.signature(method)

        def bound_to_request(
            self: Any,
            *args: Any,
            _method: Any = method,
            _function: str = function,
            _signature: inspect.Signature = signature,
            **kwargs: Any,
        ) -> Any:
            request = _request_of(_function, _signature.bind(self, *args, **kwargs))
            client = ttp.TTPClient.get()
            if not hasattr(client, "mpc_ledger_shared_seed"):
                client.mpc_ledger_shared_seed = client.generator.initial_seed()
                client.mpc_ledger_requests = 0
            client.mpc_ledger_requests += 1
            seed = request_seed(client.mpc_ledger_shared_seed, client.mpc_ledger_requests, request)
            client.generator = _seeded_generator(torch, seed)
            return _method(self, *args, **kwargs)

        setattr(bound_to_request, _STAND_IN_MARK, True)
        setattr(provider, method_name, bound_to_request)


def start_dealer() -> Callable[[DealerRequest, int], Any]:
    """Start CrypTen at the dealer's rank; return its generator of answers by kind.

    Does what CrypTen's ``TTPServer()`` does before its loop (``crypten.init``,
    the seed exchange with every party) but not the loop, which runs
    ``getattr(self, name)`` on whatever party 0 sends; `mpc_ledger.mpc.dealer.serve`
    runs instead. The generator calls TTPServer's own generation methods,
    chosen here from a fixed table keyed by the request's kind.
    """
    crypten = import_crypten()
    crypten.init()
    ttp = importlib.import_module("crypten.mpc.provider.ttp_provider")
    comm = crypten.communicator.get()
    server = ttp.TTPServer.__new__(ttp.TTPServer)  # not __init__: that is CrypTen's loop
    server.ttp_group = comm.ttp_group
    server.comm_group = comm.ttp_comm_group
    server.device = "cpu"
    server._setup_generators()
    torch = importlib.import_module("torch")
    shared_seeds = [generator.initial_seed() for generator in server.generators]
    table: dict[RequestKind, Callable[[tuple[Any, ...]], Any]] = {
        RequestKind.MUL_TRIPLE: lambda shapes: server.additive(shapes[0], shapes[1], "mul"),
        RequestKind.MATMUL_TRIPLE: lambda shapes: server.additive(shapes[0], shapes[1], "matmul"),
        RequestKind.SQUARE: lambda shapes: server.square(shapes[0]),
        RequestKind.BINARY_TRIPLE: lambda shapes: server.binary(shapes[0], shapes[1]),
        RequestKind.WRAPS: lambda shapes: server.wraps(shapes[0]),
        RequestKind.B2A: lambda shapes: server.B2A(shapes[0]),
    }

    def generate(request: DealerRequest, number: int) -> Any:
        # Every party's generator bound to this request, as the parties bind theirs
        # (`_bind_tuples_to_requests`): numbered by the dealer's session, which counts
        # ordinary and streamed answers alike.
        server.generators = [
            _seeded_generator(torch, request_seed(seed, number, request)) for seed in shared_seeds
        ]
        return table[request.kind](request.shapes)

    return generate


def install_legacy_onnx_export() -> None:
    """``crypten.nn.from_pytorch`` on torch 2.13: export with the legacy (TorchScript) exporter.

    torch 2.13's ``torch.onnx.export`` defaults to the dynamo exporter, whose
    graphs CrypTen's converter and symbolic overrides do not understand;
    ``dynamo=False`` selects the exporter CrypTen was written against.
    """
    import_crypten()
    converter = importlib.import_module("crypten.nn.onnx_converter")
    if getattr(converter, "_export_pytorch_model", None) is None:
        raise RuntimeError("crypten.nn.onnx_converter has no _export_pytorch_model to replace")
    if getattr(converter._export_pytorch_model, _STAND_IN_MARK, False):
        return
    torch = importlib.import_module("torch")

    def export_pytorch_model(f: Any, pytorch_model: Any, dummy_input: Any) -> Any:
        torch.onnx.export(
            pytorch_model,
            dummy_input,
            f,
            do_constant_folding=False,
            export_params=True,
            input_names=["input"],
            operator_export_type=torch.onnx.OperatorExportTypes.ONNX,
            output_names=["output"],
            opset_version=converter._OPSET_VERSION,
            dynamo=False,
        )
        return f

    setattr(export_pytorch_model, _STAND_IN_MARK, True)
    converter._export_pytorch_model = export_pytorch_model  # type: ignore[attr-defined]


def fixed_point(tensor: Any) -> Any:
    """A copy of ``tensor`` (an arithmetic MPCTensor) in CrypTen's default fixed-point
    encoding.

    CrypTen encodes the 0/1 results of comparisons and of a one-hot argmax with scale 1.
    Arithmetic between two tensors re-encodes as needed, but ``crypten.stack`` and
    ``crypten.cat`` keep the first tensor's encoder for all of them, so such a result is
    re-encoded before it is stacked with others (exact: the shares are multiplied by the
    scale, locally).
    """
    from crypten.encoder import FixedPointEncoder

    result = tensor.clone()
    result._tensor.encode_(FixedPointEncoder())
    return result


# --- the training program's sigmoid (`TrainSpec.sigmoid`) ------------------------------------

# Odd polynomials 1/2 + c1 x + c3 x^3 for the sigmoid. poly3: the least-squares fit on
# [-8, 8] (max error 0.11 there; the fit of Kim et al. 2018, iDASH logistic regression),
# two multiplications deep (x^2, then x * (c1 + c3 x^2)): with 2 data parties each is one
# round trip (Beaver's opening; the truncation is local). linear: the Taylor line at 0, one
# product by a public value (no round trip with 2 data parties). Both are unbounded outside
# their range: a logit far out gives a gradient larger than the exact one.
_SIGMOID_POLYNOMIALS: Mapping[str, tuple[float, float]] = {
    "poly3": (0.15011372, -0.00159277),
    "linear": (0.25, 0.0),
}
# CrypTen's own Chebyshev tanh (public configuration), sigmoid(x) = tanh(x / 2) / 2 + 1/2:
# 6 terms (the fewest it takes) on x / 2 in [-1, 1], clipped to 0 or 1 outside (a hardtanh:
# two comparisons).
_CHEBYSHEV = {"functions.sigmoid_tanh_method": "chebyshev", "functions.sigmoid_tanh_terms": 6}


# piecewise: the sigmoid's linear interpolation between `PIECEWISE_KNOTS`, flat (at its values
# there) outside them: max error 0.012 (at 0 +- 0.5, and 3e-4 beyond +-8). It is the sum
# y0 + sum_j d_j relu(x - k_j) (d_j: the slope's change at knot j), and every relu is one
# stacked comparison (`MPCTensor.relu`: a less-than-zero and a product by its 0/1 bit,
# which needs no truncation), then a product by the public d_j and a sum: one comparison's
# rounds plus one (plus one more truncation with 3 or more data parties). Chosen by
# measurement (benchmarks/step_breakdown.py): on breast cancer it trains to plaintext's
# accuracy and parameters, where fewer knots or a clipped polynomial drift away.


def _piecewise_sigmoid() -> Callable[[Any], Any]:
    import torch

    knots = torch.tensor(PIECEWISE_KNOTS, dtype=torch.float64)
    values = torch.sigmoid(knots)
    zero = torch.zeros(1, dtype=torch.float64)
    slopes = torch.cat([zero, (values[1:] - values[:-1]) / (knots[1:] - knots[:-1]), zero])
    changes = (slopes[1:] - slopes[:-1]).float()
    start = float(values[0])

    def sigmoid(self: Any) -> Any:
        crypten = importlib.import_module("crypten")
        shifted = crypten.stack([self.sub(float(k)) for k in PIECEWISE_KNOTS])
        weights = changes.view(-1, *([1] * self.dim()))
        return shifted.relu().mul(weights).sum(0).add(start)

    return sigmoid


@contextlib.contextmanager
def sigmoid_approximation(name: str) -> Iterator[None]:
    """Within the block, CrypTen's ``MPCTensor.sigmoid`` (so BCE-with-logits's forward, the
    one place training takes a sigmoid) is ``name`` (`TrainSpec.sigmoid`): "exact" leaves
    CrypTen's default; "chebyshev" is CrypTen's own method, set through ``crypten.cfg``;
    "piecewise", "poly3" and "linear" are the functions above, installed on ``MPCTensor`` for
    the block only. ValueError for any other name."""
    crypten = importlib.import_module("crypten")
    if name == "exact":
        yield
        return
    if name == "chebyshev":
        with crypten.cfg.temp_override(_CHEBYSHEV):
            yield
        return
    if name == "piecewise":
        sigmoid = _piecewise_sigmoid()
    elif name in _SIGMOID_POLYNOMIALS:
        c1, c3 = _SIGMOID_POLYNOMIALS[name]

        def sigmoid(self: Any) -> Any:
            if c3 == 0:
                return self.mul(c1).add(0.5)
            return self.mul(self.square().mul(c3).add(c1)).add(0.5)

    else:
        raise ValueError(f"no sigmoid approximation named {name!r}")

    mpc_tensor = crypten.mpc.MPCTensor
    if "sigmoid" in vars(mpc_tensor):  # only ever the inherited CrypTensor.sigmoid
        raise RuntimeError("MPCTensor.sigmoid is already replaced (nested approximation?)")
    mpc_tensor.sigmoid = sigmoid
    try:
        yield
    finally:
        del mpc_tensor.sigmoid  # back to the inherited CrypTensor.sigmoid
