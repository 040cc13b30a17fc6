"""The deterministic simulator: a sweep of seeds, exact replay, and checkers that do catch bugs."""

from __future__ import annotations

from collections import Counter

import pytest

from mpc_ledger.consensus import ConsensusCore, Ready
from mpc_ledger.consensus.tally import NIL
from mpc_ledger.ledger.driver import ReadyDriver
from mpc_ledger.ledger.store import MemoryBlockStore
from mpc_ledger.proto.v1 import consensus_pb2 as pb
from mpc_ledger.testing.sim import (
    SCENARIOS,
    Simulation,
    SimulationFailure,
    main,
    n_for_seed,
    run_simulation,
)

SEEDS_PER_SCENARIO = 100
SWEEP = [(scenario, seed) for scenario in sorted(SCENARIOS) for seed in range(SEEDS_PER_SCENARIO)]


@pytest.mark.slow
@pytest.mark.parametrize(("scenario", "seed"), SWEEP)
def test_sweep(scenario: str, seed: int) -> None:
    result = run_simulation(seed, scenario)
    assert result.n == n_for_seed(seed)
    honest_heights = [height for name, height in result.heights.items()]
    assert max(honest_heights) >= SCENARIOS[scenario].progress_heights


def test_sweep_covers_every_size() -> None:
    sizes = Counter((scenario, n_for_seed(seed)) for scenario, seed in SWEEP)
    assert {n for _, n in sizes} == {4, 5, 7}
    assert min(sizes.values()) >= SEEDS_PER_SCENARIO // 3
    assert len(SWEEP) >= 300


def test_a_seed_replays_exactly() -> None:
    first = run_simulation(11, "partition")
    second = run_simulation(11, "partition")
    assert first.trace_digest == second.trace_digest
    assert first.heights == second.heights and first.events == second.events
    assert run_simulation(12, "partition").trace_digest != first.trace_digest


def test_command_line_replays_and_prints_the_digest(capsys) -> None:
    assert main(["--seed", "3", "--scenario", "lossy"]) == 0
    out = capsys.readouterr().out
    assert run_simulation(3, "lossy").trace_digest in out
    assert main(["--seed", "3", "--scenario", "clean", "--trace"]) == 0
    assert " deliver " in capsys.readouterr().out


def test_byzantine_members_are_noticed_and_tolerated() -> None:
    reasons: Counter[str] = Counter()
    evidence = 0
    for seed in range(12):
        result = run_simulation(seed, "byzantine")
        reasons.update(result.rejections)
        evidence += result.evidence_seen
    for reason in (
        "bad-signature",
        "wrong-chain-id",
        "not-a-validator",
        "not-the-round-proposer",
        "malformed",
        "bad-certificate",
        "past-height",
        "conflicting-proposal",
    ):
        assert reasons[f"core: {reason}"] > 0, reason
    assert evidence > 0


def test_twins_are_caught_equivocating() -> None:
    assert sum(run_simulation(seed, "twins").evidence_seen for seed in range(6)) > 0


# -- the checkers catch broken cores ----------------------------------------------------------


class NoLockCore(ConsensusCore):
    """Broken on purpose: ignores its lock and never re-proposes its valid value."""

    def _prevote_choice(self, proposal: pb.Proposal) -> bytes | None:
        proposed_id = proposal.body.block_id
        return proposed_id if self._is_valid(proposed_id) else NIL

    def _start_round(self, round_: int) -> None:
        self._valid_block = None
        super()._start_round(round_)


class NoGuardCore(ConsensusCore):
    """Broken on purpose: forgets what it signed when it restarts."""

    def _restore(self, state: pb.ConsensusState) -> None:
        forgetful = pb.ConsensusState()
        forgetful.CopyFrom(state)
        forgetful.ClearField("last_signed")
        forgetful.step = pb.STEP_UNSPECIFIED
        forgetful.round = 0
        super()._restore(forgetful)


class WeakQuorumCore(ConsensusCore):
    """Broken on purpose: commits on f + 1 precommits."""

    def _rule_commit(self) -> bool:
        quorum = self._validators.quorum
        self._validators.quorum = self._validators.f + 1
        try:
            return super()._rule_commit()
        finally:
            self._validators.quorum = quorum


def first_failure(core: type[ConsensusCore], scenario: str, seeds: range) -> str | None:
    for seed in seeds:
        try:
            Simulation(seed, scenario, core_factory=core).run()
        except SimulationFailure as failure:
            return str(failure)
    return None


@pytest.mark.slow
def test_agreement_checker_catches_a_core_without_locking() -> None:
    failure = first_failure(NoLockCore, "partition", range(300))
    assert failure is not None
    assert "agreement" in failure
    assert "replay: python -m mpc_ledger.testing.sim --seed" in failure


def test_double_signing_checker_catches_a_core_that_forgets_what_it_signed() -> None:
    failure = first_failure(NoGuardCore, "crash", range(20))
    assert failure is not None and "double signing" in failure


def test_certificate_checker_catches_a_weak_quorum() -> None:
    failure = first_failure(WeakQuorumCore, "clean", range(3, 4))  # n = 4: f + 1 = 2 < 3
    assert failure is not None and "certificate" in failure


# -- the simulator runs the daemon's driver, and catches a broken one --------------------------


class SendsBeforePersisting(ReadyDriver):
    """Broken on purpose: sends a Ready's messages before it persists what they sign."""

    def _handle(self, ready: Ready) -> None:
        self._send(ready)
        self._persist(ready)
        self._schedule(ready)
        self._apply(ready)


def test_the_simulated_nodes_are_driven_by_the_daemons_driver_on_a_memory_store() -> None:
    simulation = Simulation(3, "crash")
    simulation.run()
    running = [node for node in simulation.nodes if node.driver is not None]
    assert running and all(type(node.driver) is ReadyDriver for node in running)
    assert all(type(node.store) is MemoryBlockStore for node in simulation.nodes)
    assert all(node.driver.core is node.core for node in running)


def test_persist_before_send_checker_catches_a_driver_that_sends_first() -> None:
    failure = None
    try:
        Simulation(3, "clean", driver_factory=SendsBeforePersisting).run()
    except SimulationFailure as caught:
        failure = str(caught)
    assert failure is not None and "persist before send" in failure
    assert "replay: python -m mpc_ledger.testing.sim --seed 3 --scenario clean" in failure


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(KeyError):
        Simulation(1, "no-such-scenario")
