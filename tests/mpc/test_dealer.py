"""The dealer's request schema and budget (pure), and the loop with a channel double.

The attack against the real dealer through the real relay is in test_dealer_attack.py.
"""

from __future__ import annotations

import pytest
import torch

from mpc_ledger.mpc import crypten_compat
from mpc_ledger.mpc.dealer import (
    SCHEMA,
    BadDealerRequest,
    DealerBudget,
    DealerRequest,
    DealerRequestRefused,
    RequestKind,
    budget_for_program,
    parse_request,
    serve,
)
from mpc_ledger.mpc.errors import MpcError, ProtocolViolation
from mpc_ledger.mpc.objects import decode_object, encode_object
from mpc_ledger.mpc.preprocessing import DEVIATION_EXPONENTS
from mpc_ledger.mpc.train_spec import PIECEWISE_KNOTS, TrainSpec


def wire(value):
    """What the dealer gets: the value through the MPC object encoding."""
    return decode_object(encode_object(value))


def request(kind, *shapes):
    return {"schema": SCHEMA, "kind": kind, "shapes": tuple(torch.Size(s) for s in shapes)}


@pytest.mark.parametrize(
    ("value", "kind", "result"),
    [
        (request("mul_triple", (4, 1), (4, 5)), RequestKind.MUL_TRIPLE, (4, 5)),
        (request("matmul_triple", (16, 30), (30, 1)), RequestKind.MATMUL_TRIPLE, (16, 1)),
        (request("matmul_triple", (30,), (30, 2)), RequestKind.MATMUL_TRIPLE, (2,)),
        (request("binary_triple", (2, 1, 4, 5), (2, 1, 4, 5)), RequestKind.BINARY_TRIPLE, None),
        (request("square", ()), RequestKind.SQUARE, ()),
        (request("wraps", (3, 2)), RequestKind.WRAPS, (3, 2)),
        (request("b2a", (6, 1)), RequestKind.B2A, (6, 1)),
    ],
)
def test_the_requests_crypten_makes_parse(value, kind, result):
    parsed = parse_request(wire(value))
    assert parsed.kind is kind
    assert parsed.result_shape == (result if result is not None else parsed.shapes[0])
    # what party 0 sends decodes to the same request
    assert parse_request(wire(parsed.to_object())) == parsed


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            {"function": "_get_additive_PRSS", "device": "cpu", "args": ((4,),), "kwargs": {}},
            "call of CrypTen's dealer by name ('_get_additive_PRSS')",
        ),
        ({"function": "additive", "args": ((4,), (4,), "mul")}, "by name ('additive')"),
        (request("_get_binary_PRSS", (4,)), "request kind '_get_binary_PRSS' is not one of"),
        (request("conv2d_triple", (1, 1, 4, 4), (1, 1, 2, 2)), "'conv2d_triple' is not one of"),
        ({**request("square", (4,)), "device": "cuda"}, "exactly the keys"),
        ({**request("square", (4,)), "schema": "v0"}, "schema 'v0' is not"),
        (request("square", (4,), (4,)), "square takes 1 shape(s), got 2"),
        (request("mul_triple", (4,)), "mul_triple takes 2 shape(s), got 1"),
        (request("mul_triple", (4, 2), (3, 2)), "do not combine"),
        (request("matmul_triple", (4, 2), (3, 2)), "do not combine"),
        (request("square", (1,) * 9), "9 dimensions"),
        ({"schema": SCHEMA, "kind": "square", "shapes": ((4, -1),)}, "dimension -1"),
        ({"schema": SCHEMA, "kind": "square", "shapes": ((4, True),)}, "dimension True"),
        ({"schema": SCHEMA, "kind": "square", "shapes": ("abc",)}, "is a str, not a shape"),
        ({"schema": SCHEMA, "kind": 3, "shapes": ((4,),)}, "kind 3 is not one of"),
        ("square", "a str is not a dealer request"),
        (None, "a NoneType is not a dealer request"),
        # tensors travel in objects (crypten.load_from_party); the schema stays closed to them
        (torch.tensor([4, 4]), "a Tensor is not a dealer request"),
        ({"schema": SCHEMA, "kind": "square", "shapes": (torch.tensor([4]),)}, "a Tensor, not"),
        ({"schema": SCHEMA, "kind": "square", "shapes": torch.tensor([[4]])}, "is a Tensor, not"),
        ({"schema": SCHEMA, "kind": "square", "shapes": ((torch.tensor(4),),)}, "not an int"),
        ({"schema": SCHEMA, "kind": torch.tensor(1), "shapes": ((4,),)}, "is not one of"),
        ({"schema": torch.tensor(1), "kind": "square", "shapes": ((4,),)}, "is not 'mpc-"),
        (
            {"schema": SCHEMA, "kind": "matmul_triple", "shapes": ((2**63, 2), (2, 3))},
            "shape 0 has a dimension 9223372036854775808, not an int in 0..2**63-1",
        ),
    ],
)
def test_anything_outside_the_schema_is_refused_with_its_reason(value, reason):
    with pytest.raises(BadDealerRequest) as error:
        parse_request(wire(value))
    assert reason in str(error.value)


def test_a_long_peer_string_is_shortened_in_the_reason():
    with pytest.raises(BadDealerRequest) as error:
        parse_request(wire(request("x" * 500, (4,))))
    assert "x" * 100 not in str(error.value)


def test_the_budget_refuses_a_request_over_its_bounds_and_counts_what_it_accepts():
    budget = DealerBudget(max_request_elements=100, max_requests=3, max_job_elements=150)
    small = DealerRequest(RequestKind.SQUARE, ((10, 2),))  # 20 + 20 elements
    budget.charge(small)
    assert (budget.requests, budget.elements) == (1, 40)
    with pytest.raises(BadDealerRequest, match=r"asks for 120 elements.*at most 100"):
        budget.charge(DealerRequest(RequestKind.SQUARE, ((60,),)))
    budget.charge(small)
    budget.charge(small)
    with pytest.raises(BadDealerRequest, match="at most 3 dealer requests"):
        budget.charge(small)
    assert (budget.requests, budget.elements) == (3, 120)
    total = DealerBudget(max_request_elements=100, max_requests=10, max_job_elements=50)
    total.charge(small)
    with pytest.raises(BadDealerRequest, match="would bring this job to 80 elements"):
        total.charge(small)


def train_program(**fields):
    base = {
        "layout": "vertical",
        "model": "logistic",
        "n_features": 30,
        "columns_per_rank": (15, 15),
        "label_rank": 1,
        "train_rows_per_rank": (48,),
        "test_rows_per_rank": (16,),
        "batch_size": 16,
    }
    spec = TrainSpec(**{**base, **fields})
    return {"name": "train", "spec": spec.to_json(), "data": {}}


def test_the_budget_grows_with_the_job_and_is_finite():
    small = budget_for_program(train_program())
    wider = budget_for_program(train_program(model="mlp", hidden=(64, 64)))
    longer = budget_for_program(train_program(epochs=10))
    assert wider.max_request_elements > small.max_request_elements
    assert wider.max_requests > small.max_requests
    assert longer.max_job_elements > small.max_job_elements
    assert longer.max_request_elements == small.max_request_elements
    # the whole test set goes through the model at once
    assert small.max_request_elements >= 16 * 31


def test_the_piecewise_sigmoid_widens_the_budget_by_its_knots():
    """It compares the logits with all 15 knots at once: at 3 parties CrypTen's adder asks for
    a binary triple of (2, 1, 15, rows, 1) operands, more than a narrow model's other requests
    (here 3 features: 16 x 16 rows x 3)."""
    narrow = {"n_features": 3, "columns_per_rank": (2, 1), "hidden": ()}
    exact = budget_for_program(train_program(**narrow))
    piecewise = budget_for_program(train_program(**narrow, sigmoid="piecewise"))
    shape = (2, 1, len(PIECEWISE_KNOTS), 16, 1)
    stacked = DealerRequest(RequestKind.BINARY_TRIPLE, (shape, shape))
    assert exact.max_request_elements < stacked.elements <= piecewise.max_request_elements
    piecewise.charge(stacked)
    with pytest.raises(BadDealerRequest, match="this job's requests need at most"):
        exact.charge(stacked)


def test_pooled_standardisation_widens_the_budget_by_its_statistics():
    """The pooled statistics compare (2 signs x 26 exponents x parties x features) elements
    at once (an AND of two such operands and their result per request): with eight parties,
    batches of 2 rows and a small test set that is more than a training step's largest
    request; and `standardise` adds a multiplication per chunk of rows."""
    base = {
        "layout": "horizontal",
        "train_rows_per_rank": (6,) * 8,
        "test_rows_per_rank": (1,) * 8,
        "batch_size": 2,
    }
    local = budget_for_program(train_program(**base))
    pooled = budget_for_program(train_program(**base, standardisation="pooled"))
    comparison = 3 * 2 * len(DEVIATION_EXPONENTS) * 8 * 30
    assert local.max_request_elements < comparison <= pooled.max_request_elements
    assert pooled.max_requests > local.max_requests
    assert pooled.max_job_elements > local.max_job_elements


def test_a_psi_job_is_bounded_by_the_dealers_max_rows_and_refused_without():
    spec = train_program(train_rows_per_rank=(0,), test_rows_per_rank=(0,))
    with pytest.raises(ValueError, match="row counts"):
        budget_for_program(spec)
    # at most 64 rows in the intersection: at least the budget of 48 training and 16 test rows
    bounded = budget_for_program({**spec, "data": {"max_rows": 64}})
    known = budget_for_program(train_program())
    assert bounded.max_requests >= known.max_requests
    assert bounded.max_request_elements >= known.max_request_elements


def test_an_unknown_program_has_no_bounds():
    with pytest.raises(ValueError, match="no bounds for program 'mine'"):
        budget_for_program({"name": "mine"})


class Channel:
    """Party 0's requests as a list; the dealer's answers collected."""

    party0_member = "a"

    def __init__(self, values):
        self.values = list(values)
        self.answers = []

    def receive(self):
        return wire(self.values.pop(0))

    def answer(self, result):
        self.answers.append(result)


def test_serve_answers_schema_requests_until_terminate():
    generated = []

    def generate(req, number):
        generated.append(req)
        return torch.zeros(req.result_shape, dtype=torch.long)

    channel = Channel([request("matmul_triple", (4, 5), (5, 3)), request("b2a", (4,)), "terminate"])
    budget = budget_for_program({"name": "conformance"})
    assert serve(channel, generate, budget).requested == 2
    assert [a.shape for a in channel.answers] == [(4, 3), (4,)]
    assert [g.kind for g in generated] == [RequestKind.MATMUL_TRIPLE, RequestKind.B2A]


def test_serve_refuses_without_generating_and_names_party_0():
    def generate(req, number):
        raise AssertionError("nothing may be generated for a refused request")

    prss = {"function": "_get_additive_PRSS", "device": "cpu", "args": ((4, 5),), "kwargs": {}}
    channel = Channel([prss])
    with pytest.raises(DealerRequestRefused) as error:
        serve(channel, generate, budget_for_program({"name": "conformance"}))
    assert isinstance(error.value, ProtocolViolation) and error.value.member_id == "a"
    assert "refused request 1 from a (rank 0)" in str(error.value)
    assert "_get_additive_PRSS" in str(error.value)
    assert channel.answers == []


def test_serve_refuses_an_oversized_triple():
    channel = Channel([request("mul_triple", (4, 5), (4, 5)), request("mul_triple", (10**6,), ())])
    with pytest.raises(DealerRequestRefused, match=r"request 2 .* asks for 2000001 elements"):
        serve(
            channel,
            lambda r, n: torch.zeros(r.result_shape),
            budget_for_program({"name": "conformance"}),
        )
    assert len(channel.answers) == 1


@pytest.mark.parametrize(
    ("function", "args", "kind", "shapes"),
    [
        (
            "additive",
            (torch.Size([4, 5]), torch.Size([5, 3]), "matmul"),
            RequestKind.MATMUL_TRIPLE,
            ((4, 5), (5, 3)),
        ),
        (
            "additive",
            (torch.Size([4]), torch.Size([4]), "mul"),
            RequestKind.MUL_TRIPLE,
            ((4,), (4,)),
        ),
        ("square", (torch.Size([2, 2]),), RequestKind.SQUARE, ((2, 2),)),
        ("binary", (torch.Size([3]), torch.Size([3])), RequestKind.BINARY_TRIPLE, ((3,), (3,))),
        ("wraps", (torch.Size([3]),), RequestKind.WRAPS, ((3,),)),
        ("B2A", (torch.Size([3]),), RequestKind.B2A, ((3,),)),
    ],
)
def test_party_0_maps_crypten_calls_onto_the_schema(function, args, kind, shapes):
    assert crypten_compat.dealer_request_for(function, "cpu", args, {}) == DealerRequest(
        kind, shapes
    )


@pytest.mark.parametrize(
    ("function", "device", "args", "kwargs", "reason"),
    [
        ("additive", "cpu", ((1, 1, 4, 4), (1, 1, 2, 2), "conv2d"), {"stride": 1}, "'conv2d'"),
        ("additive", "cpu", ((4,), (4,), "mul"), {"alpha": 2}, "mul and matmul only"),
        ("square", "cuda:0", ((4,),), {}, "CPU only"),
        ("_get_additive_PRSS", "cpu", ((4,),), {}, "does not serve"),
    ],
)
def test_party_0_refuses_calls_the_dealer_does_not_serve(function, device, args, kwargs, reason):
    with pytest.raises(MpcError, match=reason):
        crypten_compat.dealer_request_for(function, device, args, kwargs)


def test_request_seeds_differ_by_number_kind_and_shape_and_repeat_exactly():
    from mpc_ledger.mpc.dealer import request_seed

    triple = DealerRequest(RequestKind.MUL_TRIPLE, ((16, 30), (16, 30)))
    square = DealerRequest(RequestKind.SQUARE, ((16, 30),))
    other_shape = DealerRequest(RequestKind.MUL_TRIPLE, ((16, 30), (30, 16)))
    seeds = {
        request_seed(7, 1, triple),
        request_seed(7, 2, triple),
        request_seed(7, 1, square),
        request_seed(7, 1, other_shape),
        request_seed(8, 1, triple),
        request_seed(-7, 1, triple),  # CrypTen's seeds are signed 64-bit values
    }
    assert len(seeds) == 6
    assert request_seed(7, 1, triple) == request_seed(7, 1, triple)
    assert all(0 <= seed < 2**63 for seed in seeds)
    with pytest.raises(ValueError, match="from 1"):
        request_seed(7, 0, triple)
