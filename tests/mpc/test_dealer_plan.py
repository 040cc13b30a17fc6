"""The offline phase's pure parts: the plan's schema and bounds, the dealer's session
(window, credit, cancel, numbering), party 0's planner, and the loop with channel doubles.

The real jobs are in test_dealer_offline.py.
"""

from __future__ import annotations

import pytest
import torch

from mpc_ledger.mpc.dealer import (
    PLAN_LENGTH_MAX,
    SCHEMA,
    STREAM_SCHEMA,
    WINDOW_ELEMENTS_MAX,
    BadDealerRequest,
    Cancel,
    Credit,
    DealerBudget,
    DealerPlan,
    DealerRequest,
    DealerRequestRefused,
    DealerSession,
    RequestKind,
    Stopped,
    StreamedAnswer,
    parse_message,
    parse_stream_message,
    serve,
    stream_window,
)
from mpc_ledger.mpc.dealer_offline import (
    FALLBACKS_MAX,
    Decision,
    OfflinePlanner,
    credit_every,
    resized,
    step_rows,
)
from mpc_ledger.mpc.objects import decode_object, encode_object

TRIPLE = DealerRequest(RequestKind.MATMUL_TRIPLE, ((4, 5), (5, 1)))  # 20 + 5 + 4 elements
WRAPS = DealerRequest(RequestKind.WRAPS, ((4, 1),))  # 8 elements
SQUARE = DealerRequest(RequestKind.SQUARE, ((3,),))


def wire(value):
    return decode_object(encode_object(value))


def big_budget():
    return DealerBudget(max_request_elements=10**6, max_requests=10**6, max_job_elements=10**9)


def plan(first=1, repeats=3, sequence=(TRIPLE, WRAPS)):
    return DealerPlan(tuple(sequence), first, repeats)


# --- the schema ------------------------------------------------------------------------------


def test_a_plan_credit_and_cancel_travel_and_parse_back():
    for message in (plan(first=7), Credit(12), Cancel(0)):
        assert parse_message(wire(message.to_object())) == message
    request = parse_message(wire(TRIPLE.to_object()))
    assert request == TRIPLE
    for marker in (StreamedAnswer(5, (4, 1)), Stopped(9)):
        assert parse_stream_message(wire(marker.to_object())) == marker


def plan_object(**changes):
    value = plan().to_object()
    value.update(changes)
    return value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (plan_object(extra=1), "exactly the keys"),
        (plan_object(plan=()), "1 to 4096 requests, not 0"),
        (plan_object(plan="abc"), "not str"),
        (plan_object(plan=({"kind": "square"},)), "entry 0 is not a request's kind and shapes"),
        (
            plan_object(plan=({"kind": "_get_additive_PRSS", "shapes": ((4,),)},)),
            "entry 0: request kind '_get_additive_PRSS' is not one of",
        ),
        (
            plan_object(plan=({"kind": "matmul_triple", "shapes": ((4, 2), (3, 2))},)),
            "entry 0: matmul_triple: shapes",
        ),
        (
            plan_object(plan=({"function": "square", "shapes": ((4,),)},)),
            "entry 0 is not a request's kind and shapes",
        ),
        (plan_object(repeats=0), "repeats 0 is not an int of at least 1"),
        (plan_object(repeats=True), "repeats True"),
        (plan_object(repeats=10**7), "at most 1000000 times"),
        (plan_object(first=0), "first 0 is not an int of at least 1"),
        ({"schema": SCHEMA, "credit": -1}, "the credit -1 is not an int"),
        ({"schema": SCHEMA, "credit": 3, "cancel": 3}, "exactly the keys"),
        ({"schema": SCHEMA, "cancel": "all"}, "the cancel 'all' is not an int"),
        ({"schema": "v0", "plan": ()}, "exactly the keys"),  # not our schema: not a plan
    ],
)
def test_a_plan_outside_the_schema_is_refused_with_its_reason(value, reason):
    with pytest.raises(BadDealerRequest) as error:
        parse_message(wire(value))
    assert reason in str(error.value)


def test_a_plan_longer_than_one_step_can_be_is_refused():
    entries = tuple({"kind": "square", "shapes": ((1,),)} for _ in range(PLAN_LENGTH_MAX + 1))
    with pytest.raises(BadDealerRequest, match="1 to 4096 requests, not 4097"):
        parse_message(wire(plan_object(plan=entries)))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"schema": STREAM_SCHEMA, "number": 0, "size": torch.Size([4])}, "number 0"),
        ({"schema": STREAM_SCHEMA, "number": 1, "size": "big"}, "its size is a str"),
        ({"schema": STREAM_SCHEMA, "number": 1}, "has the keys"),
        ({"schema": SCHEMA, "stopped_at": 1}, "not a streamed answer"),
        (torch.Size([4]), "a Size is not a streamed answer"),
    ],
)
def test_party_0_refuses_a_stream_message_outside_the_schema(value, reason):
    with pytest.raises(BadDealerRequest, match=reason):
        parse_stream_message(wire(value))


# --- the budget --------------------------------------------------------------------------------


def test_a_plan_over_the_budget_is_refused_before_anything_is_generated():
    budget = DealerBudget(max_request_elements=30, max_requests=10, max_job_elements=200)
    budget.check_plan(plan(repeats=5))  # 10 answers, 185 elements: fits exactly
    with pytest.raises(BadDealerRequest, match=r"plan of 12 answers \(2 x 6\).*at most 10"):
        budget.check_plan(plan(repeats=6))
    budget.charge(SQUARE)  # 6 elements: 191 with the plan's 185
    with pytest.raises(BadDealerRequest, match="11 dealer requests"):
        budget.check_plan(plan(repeats=5))
    with pytest.raises(BadDealerRequest, match=r"to 116 elements from the dealer; .* at most 60"):
        DealerBudget(30, 100, 60).check_plan(plan(repeats=2, sequence=(TRIPLE, TRIPLE)))
    with pytest.raises(BadDealerRequest, match=r"plan's matmul_triple .* 29 elements.*at most 20"):
        DealerBudget(20, 100, 10**6).check_plan(plan())
    assert (budget.requests, budget.elements) == (1, 6)  # a check charges nothing


# --- the dealer's session -----------------------------------------------------------------------


def test_the_window_is_two_repeats_bounded_by_elements():
    assert stream_window(plan()) == 4
    wide = DealerRequest(RequestKind.SQUARE, ((WINDOW_ELEMENTS_MAX // 3,),))
    assert stream_window(plan(sequence=(wide, SQUARE))) == 3
    huge = DealerRequest(RequestKind.SQUARE, ((WINDOW_ELEMENTS_MAX * 2,),))
    assert stream_window(plan(sequence=(huge,))) == 1


def stream_all(session):
    out = []
    while session.may_stream():
        request, number = session.next_streamed()
        out.append((number, request))
    return out


def test_the_dealer_streams_a_window_ahead_and_refills_on_credit():
    session = DealerSession(big_budget())
    assert session.on_request(SQUARE) == 1
    session.on_plan(plan(first=2, repeats=3))  # answers 2..7, window 4
    assert stream_all(session) == [(2, TRIPLE), (3, WRAPS), (4, TRIPLE), (5, WRAPS)]
    session.on_credit(Credit(3))
    assert stream_all(session) == [(6, TRIPLE), (7, WRAPS)]
    session.on_credit(Credit(7))
    assert not session.may_stream()
    assert session.on_request(SQUARE) == 8  # after the plan, numbering goes on
    assert (session.streamed, session.requested, session.plans) == (6, 2, 1)
    assert session.budget.requests == 8


def test_a_cancel_stops_the_stream_and_renumbers_from_what_party_0_took():
    budget = big_budget()
    session = DealerSession(budget)
    session.on_plan(plan(first=1, repeats=3))
    assert len(stream_all(session)) == 4
    assert session.on_cancel(Cancel(2)) == Stopped(4)
    assert not session.may_stream()
    assert session.on_request(SQUARE) == 3  # what every party draws for its third request
    assert budget.requests == 5  # the two unused answers were generated, so they are charged


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (["request"], "while the plan from request 1 is streaming .up to 4.; cancel it first"),
        (["plan"], "a new plan while the plan from request 1 is streaming"),
        (["credit 5"], "a credit through request 5; the dealer streamed 1..4"),
        (["credit 3", "credit 2"], "a credit through request 2; .* credit through 3"),
        (["cancel 9"], "a cancel through request 9"),
        (["cancel 2", "cancel 2"], "a cancel with no plan streaming"),
        (["cancel 2", "credit 2"], "a credit with no plan streaming"),
    ],
)
def test_the_session_refuses_what_its_state_does_not_allow(steps, reason):
    session = DealerSession(big_budget())
    session.on_plan(plan(first=1, repeats=3))
    stream_all(session)
    with pytest.raises(BadDealerRequest, match=reason):
        for step in steps:
            if step == "request":
                session.on_request(SQUARE)
            elif step == "plan":
                session.on_plan(plan(first=5))
            else:
                name, number = step.split()
                (session.on_credit if name == "credit" else session.on_cancel)(
                    (Credit if name == "credit" else Cancel)(int(number))
                )


def test_a_plan_must_start_at_the_next_number():
    session = DealerSession(big_budget())
    session.on_request(SQUARE)
    with pytest.raises(BadDealerRequest, match="starts at request 5; the next request is 2"):
        session.on_plan(plan(first=5))


# --- the loop, with a channel double ------------------------------------------------------------


class Channel:
    """Party 0's messages as a list; what the dealer sends collected in order."""

    party0_member = "a"

    def __init__(self, values):
        self.values = [v.to_object() if hasattr(v, "to_object") else v for v in values]
        self.sent = []

    def receive(self):
        value = self.values.pop(0)
        return "terminate" if value == "end" else wire(value)

    def answer(self, result):
        self.sent.append(("answer", tuple(result.shape)))

    def stream(self, number, result):
        self.sent.append(("stream", number, tuple(result.shape)))

    def stopped(self, marker):
        self.sent.append(("stopped", marker.last))


def test_serve_streams_a_plan_answers_after_it_and_renumbers_after_a_cancel():
    generated = []

    def generate(request, number):
        generated.append((number, request))
        return torch.zeros(request.result_shape, dtype=torch.long)

    channel = Channel(
        [SQUARE, plan(first=2, repeats=2), Credit(3), SQUARE, plan(7, 2), Cancel(8), WRAPS, "end"]
    )
    session = serve(channel, generate, big_budget())
    assert channel.sent == [
        ("answer", (3,)),
        *[("stream", n, (4, 1)) for n in (2, 3, 4, 5)],
        ("answer", (3,)),
        *[("stream", n, (4, 1)) for n in (7, 8, 9, 10)],
        ("stopped", 10),
        ("answer", (4, 1)),
    ]
    # the answer after the cancel is bound to number 9, as every party's ninth draw is
    assert [n for n, _ in generated] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 9]
    assert generated[-1] == (9, WRAPS)
    assert (session.streamed, session.requested, session.plans, session.cancelled) == (8, 3, 2, 1)


def test_serve_refuses_a_plan_over_the_budget_naming_party_0_and_generates_nothing():
    def generate(request, number):
        raise AssertionError("nothing may be generated for a refused plan")

    budget = DealerBudget(max_request_elements=100, max_requests=5, max_job_elements=10**6)
    with pytest.raises(DealerRequestRefused) as error:
        serve(Channel([plan(repeats=3)]), generate, budget)
    assert error.value.member_id == "a"
    assert "the dealer refused plan at request 1 from a (rank 0)" in str(error.value)
    assert "a plan of 6 answers (2 x 3) would bring this job to 6" in str(error.value)
    assert budget.requests == 0


def test_serve_refuses_a_request_while_a_plan_streams():
    channel = Channel([plan(repeats=3), SQUARE])
    with pytest.raises(DealerRequestRefused, match=r"refused request 5 .* cancel it first"):
        serve(channel, lambda r, n: torch.zeros(r.result_shape, dtype=torch.long), big_budget())


# --- party 0's planner --------------------------------------------------------------------------


def test_the_schedule_is_the_training_loops():
    assert step_rows(48, 20, 2) == (20, 20, 8, 20, 20, 8)
    assert step_rows(48, 16, 1) == (16, 16, 16)
    assert credit_every(4) == 2 and credit_every(1) == 1


def run_step(planner, requests, number):
    """Party 0's requests in one step: what the planner decided for each; the next number."""
    decisions = []
    for request in requests:
        number += 1
        decision = planner.on_request(request, number)
        decisions.append(decision)
        if decision is Decision.TAKE:
            assert planner.expected() == (number, request)
            planner.took()
        elif decision is Decision.CANCEL:
            planner.cancel()
    return decisions, number


def test_party_0_plans_from_the_last_step_of_the_same_size():
    planner = OfflinePlanner()
    schedule = step_rows(48, 20, 2)
    full, partial = (TRIPLE, WRAPS, SQUARE), (WRAPS, SQUARE)
    number = 2  # two requests before training (not part of any step)
    plans = []
    for index, rows in enumerate(schedule):
        plans.append(planner.step_starts(index, schedule, number + 1))
        decisions, number = run_step(planner, full if rows == 20 else partial, number)
        expected = Decision.ASK if index in (0, 2) else Decision.TAKE
        assert set(decisions) == {expected}, index
    assert plans[0] is None and plans[2] is None and plans[4] is None  # 4: still streaming
    assert plans[1] == DealerPlan(full, 6, 1)
    assert plans[3] == DealerPlan(full, 11, 2)
    assert plans[5] == DealerPlan(partial, 17, 1)
    assert planner.on_request(SQUARE, number + 1) is Decision.ASK  # the evaluation
    assert planner.counts.to_json() == {
        "streamed": 3 + 6 + 2,
        "requested": 3 + 2 + 1,
        "plans": 3,
        "fallbacks": 0,
        "discarded": 0,
    }
    assert planner.close() is None


def test_a_step_unlike_the_last_falls_back_once_and_plans_from_itself():
    planner = OfflinePlanner()
    schedule = (16, 16, 16, 16)
    first, later = (TRIPLE, WRAPS), (TRIPLE, SQUARE)  # e.g. an optimiser's first step
    number = 0
    assert planner.step_starts(0, schedule, 1) is None
    _, number = run_step(planner, first, number)
    assert planner.step_starts(1, schedule, number + 1) == DealerPlan(first, 3, 3)
    decisions, number = run_step(planner, later, number)
    assert decisions == [Decision.TAKE, Decision.CANCEL]
    assert planner.step_starts(2, schedule, number + 1) == DealerPlan(later, 5, 2)
    for index in (2, 3):
        if index == 3:
            assert planner.step_starts(3, schedule, number + 1) is None
        decisions, number = run_step(planner, later, number)
        assert decisions == [Decision.TAKE, Decision.TAKE]
    assert planner.counts.fallbacks == 1 and planner.counts.plans == 2


def step_of(rows):
    """A step's requests for a batch of ``rows`` (5 features): forward, comparison, update."""
    return (
        DealerRequest(RequestKind.MATMUL_TRIPLE, ((rows, 5), (5, 1))),
        DealerRequest(RequestKind.BINARY_TRIPLE, ((15, rows, 1), (15, rows, 1))),
        DealerRequest(RequestKind.MATMUL_TRIPLE, ((1, rows), (rows, 5))),
        DealerRequest(RequestKind.WRAPS, ((1, 5),)),
    )


def test_a_partial_batch_is_planned_from_the_first_step_resized():
    assert resized(step_of(20), 20, 8) == step_of(8)
    planner = OfflinePlanner(resizable_rows=True)
    schedule = step_rows(48, 20, 2)  # 20, 20, 8, 20, 20, 8
    number, plans, asked = 0, [], []
    for index, rows in enumerate(schedule):
        plans.append(planner.step_starts(index, schedule, number + 1))
        decisions, number = run_step(planner, step_of(rows), number)
        asked.append(Decision.ASK in decisions)
    assert asked == [True, False, False, False, False, False]  # only the very first step
    assert plans[2] == DealerPlan(step_of(8), 9, 1)
    assert planner.counts.fallbacks == 0 and planner.counts.requested == 4


def test_a_wrongly_resized_plan_falls_back_once_and_the_next_epoch_streams():
    """Where the batch size is also another dimension (here 5, the features), the resized
    sequence is not what the program asks: one counted fallback, then the recorded one."""
    planner = OfflinePlanner(resizable_rows=True)
    schedule = step_rows(13, 5, 2)  # 5, 5, 3, 5, 5, 3
    number, decisions_of = 0, []
    for index, rows in enumerate(schedule):
        planner.step_starts(index, schedule, number + 1)
        decisions, number = run_step(planner, step_of(rows), number)
        decisions_of.append(decisions)
    assert Decision.CANCEL in decisions_of[2]
    assert set(decisions_of[5]) == {Decision.TAKE}
    assert planner.counts.fallbacks == 1


def test_party_0_credits_every_half_window_and_cancels_what_it_did_not_take():
    planner = OfflinePlanner()
    planner.step_starts(0, (16, 16, 16), 1)
    run_step(planner, (TRIPLE, WRAPS), 0)
    planned = planner.step_starts(1, (16, 16, 16), 3)
    assert planned == DealerPlan((TRIPLE, WRAPS), 3, 2) and stream_window(planned) == 4
    credits = []
    for number, request in ((3, TRIPLE), (4, WRAPS), (5, TRIPLE)):
        assert planner.on_request(request, number) is Decision.TAKE
        credits.append(planner.took())
    assert credits == [None, Credit(4), None]
    cancel, cancelled, first_unused = planner.close()
    assert (cancel, cancelled, first_unused) == (Cancel(5), planned, 6)
    assert planner.active is None


def test_party_0_stops_planning_after_its_fallbacks():
    planner = OfflinePlanner()
    schedule = (16,) * (FALLBACKS_MAX + 3)
    number = 0
    for index in range(len(schedule)):
        plan = planner.step_starts(index, schedule, number + 1)
        assert (plan is None) == (index == 0 or index > FALLBACKS_MAX), index
        # every step makes other requests than the last one
        step = (TRIPLE, DealerRequest(RequestKind.WRAPS, ((index + 1, 1),)))
        _, number = run_step(planner, step, number)
    assert planner.counts.fallbacks == FALLBACKS_MAX
