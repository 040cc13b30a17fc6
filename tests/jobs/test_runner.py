"""The job runner end to end: real daemons (`mpc-ledger party start`, real mTLS), datasets
registered through the CLI, a scientist's signed job, real CrypTen worker processes.

One consortium (data parties a and b, the dealer, an auditor) serves every test; each test
submits its own job and reads the outcome from the auditor's copy of the ledger (the
auditor, a member in no job, also plays the outsider who attacks a job's MPC traffic). a holds
five feature columns of 120 breast-cancer rows, b five more and the label (vertical).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import grpc
import nacl.signing
import numpy as np
import pytest

from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs.spec import JobDatasetRef, JobSpec, ModelSpec, OptimiserSpec
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.ledger.records import make_record, parse_record
from mpc_ledger.mpc.transcript import ChannelStats, TranscriptSnapshot, compare_transcripts
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import jobs_pb2, ledger_pb2, mpc_pb2, mpc_pb2_grpc
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import run_cli

from .conftest import worker_pids

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 120
POLICY = """version = 1
submitters = ["a/*"]
datasets = ["*"]
models = [{models}]
max_epochs = 50
recipients = ["b", "b/*"]
min_rows = 0
"""
SCIENTIST = "a/sci"
FEATURES_A = [f"fa{i}" for i in range(5)]
FEATURES_B = [f"fb{i}" for i in range(5)]


@dataclasses.dataclass
class World:
    root: Path
    consortium: object
    scientist_key: nacl.signing.SigningKey
    datasets: dict[str, Path]

    def party(self, member_id):
        return self.consortium.party(member_id)

    def data_dir(self, member_id) -> Path:
        return self.party(member_id).config.data_dir


def _write_csv(path: Path, header: list[str], columns: list[np.ndarray]) -> None:
    lines = [",".join(header)]
    for row in zip(*columns, strict=True):
        lines.append(",".join(str(v) for v in row))
    path.write_text("\n".join(lines) + "\n")


def _register(consortium, member_id, path, dataset_id, columns, label=""):
    args = ["dataset", "register", path, "--id", dataset_id, "--columns", columns]
    if label:
        args += ["--label-column", label]
    result = run_cli(*args, "--config", consortium.config(member_id), timeout_s=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from sklearn.datasets import load_breast_cancer

    root = tmp_path_factory.mktemp("runner")
    consortium = make_consortium(root / "c", "a,b", dealer=True, auditor=True)
    for member_id, models in (
        ("a", '"logistic_regression", "mlp"'),
        ("b", '"logistic_regression"'),
    ):
        folder = root / "c" / member_id
        (folder / "policy.toml").write_text(POLICY.format(models=models))
        config = folder / "party.toml"
        config.write_text(
            config.read_text().replace("[party]\n", '[party]\npolicy = "policy.toml"\n')
        )
    features, labels = load_breast_cancer(return_X_y=True)
    features, labels = features[:ROWS], labels[:ROWS]
    ids = [f"p{i}" for i in range(ROWS)]
    data = root / "data"
    data.mkdir()
    paths = {
        "a/feat": data / "a-feat.csv",
        "a/feat2": data / "a-feat2.csv",
        "b/lab": data / "b-lab.csv",
    }
    for name in ("a/feat", "a/feat2"):
        _write_csv(paths[name], ["id", *FEATURES_A], [ids, *features[:, :5].T.round(4)])
    _write_csv(
        paths["b/lab"], ["id", *FEATURES_B, "y"], [ids, *features[:, 5:10].T.round(4), labels]
    )
    daemons = [DaemonProcess(consortium.config(m), root / f"{m}.log") for m in consortium.ids]
    try:
        for member_id, daemon in zip(consortium.ids, daemons, strict=True):
            daemon.wait_serving(consortium.genesis.member(member_id).endpoint, 60)
        columns_a = ",".join(["id:string", *(f"{c}:float64" for c in FEATURES_A)])
        columns_b = ",".join(["id:string", *(f"{c}:float64" for c in FEATURES_B), "y:int64"])
        _register(consortium, "a", paths["a/feat"], "a/feat", columns_a)
        _register(consortium, "a", paths["a/feat2"], "a/feat2", columns_a)
        _register(consortium, "b", paths["b/lab"], "b/lab", columns_b, label="y")
        key = nacl.signing.SigningKey.generate()
        with LedgerClient(consortium.party("a")) as client:
            binding = ledger_pb2.UserKeyBinding(
                user_id=SCIENTIST, public_key=bytes(key.verify_key), roles=["scientist"]
            )
            body = ledger_pb2.RecordBody(author="a", nonce=secrets.randbits(63), bind_user=binding)
            _submit(client, make_record(client.signer, body))
        yield World(root, consortium, key, paths)
    finally:
        stop_all(daemons)
        for daemon in daemons:  # the runner never failed on its own
            log = daemon.log_path.read_text(errors="replace")
            assert "ERROR   mpc_ledger.jobs" not in log, f"{daemon.config}:\n{log}"


def _submit(client, record):
    reply = client.submit(record)
    assert reply.accepted, reply.reason
    assert client.wait_committed(reply.record_id).committed
    return reply.record_id


def spec(**changes) -> JobSpec:
    base = JobSpec(
        name="cancer",
        layout="vertical",
        datasets=(
            JobDatasetRef("a/feat", tuple(FEATURES_A)),
            JobDatasetRef("b/lab", tuple(FEATURES_B)),
        ),
        label="y",
        model=ModelSpec("logistic_regression"),
        loss="bce",
        optimiser=OptimiserSpec(learning_rate=0.5),
        epochs=1,
        batch_size=32,
        recipients=("b",),
        seed=3,
        test_fraction=0.25,
    )
    return dataclasses.replace(base, **changes)


def submit_job(world: World, job: JobSpec) -> bytes:
    signer = Signer(world.scientist_key, world.consortium.genesis.chain_id)
    body = ledger_pb2.RecordBody(
        author=SCIENTIST,
        nonce=secrets.randbits(63),
        job_submission=jobs_pb2.JobSubmission(spec=job.to_proto()),
    )
    with LedgerClient(world.party("a")) as client:  # transport as member a; signed by the user
        return _submit(client, make_record(signer, body))


def job_records(world: World, job_id: bytes) -> list:
    """(kind, author, payload) of every committed record of the job, in commit order."""
    found = []
    with LedgerClient(world.party("auditor")) as client:
        for item in client.blocks(1, 1000):
            for raw in item.block.records:
                parsed = parse_record(raw)
                if isinstance(parsed, str) or not parsed.kind.startswith(("job_", "participation")):
                    continue
                payload = getattr(parsed.body, parsed.kind)
                if parsed.id == job_id or getattr(payload, "job_id", b"") == job_id:
                    found.append((parsed.kind, parsed.body.author, payload))
    return found


def wait_for(world, job_id, done, timeout_s=150):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = job_records(world, job_id)
        if done(records):
            return records
        time.sleep(0.5)
    pytest.fail(f"timed out; records: {[(k, a) for k, a, _ in job_records(world, job_id)]}")


def kinds(records, kind):
    return [(author, payload) for k, author, payload in records if k == kind]


def snapshot(job_id, rank, channels, data_ranks=None) -> TranscriptSnapshot:
    stats = tuple(
        ChannelStats(c.sender_rank, c.receiver_rank, c.digest.hex(), c.messages, c.size_bytes, 0)
        for c in channels
        if data_ranks is None or {c.sender_rank, c.receiver_rank} <= data_ranks
    )
    return TranscriptSnapshot(job_id.hex(), rank, "ledger", stats)


def test_an_approved_job_runs_to_completion_on_every_party(world):
    job_id = submit_job(world, spec())
    ranks = {"a": 0, "b": 1, "dealer": 2}
    records = wait_for(
        world,
        job_id,
        lambda r: len(kinds(r, "participation_proof")) == 3 or kinds(r, "job_aborted"),
    )
    assert not kinds(records, "job_aborted"), kinds(records, "job_aborted")
    assert sorted((a, d.approve) for a, d in kinds(records, "job_decision")) == [
        ("a", True),
        ("b", True),
    ]
    assert sorted(a for a, _ in kinds(records, "job_started")) == ["a", "b", "dealer"]
    epochs = kinds(records, "job_epoch_digests")
    assert sorted((a, d.epoch) for a, d in epochs) == [("a", 1), ("b", 1)]
    per_epoch = {ranks[a]: snapshot(job_id, ranks[a], d.channels, {0, 1}) for a, d in epochs}
    assert compare_transcripts(per_epoch) == []
    assert all(s.channels for s in per_epoch.values())
    proofs = {
        ranks[a]: snapshot(job_id, ranks[a], p.final_channels)
        for a, p in kinds(records, "participation_proof")
    }
    assert compare_transcripts(proofs) == []
    [(author, completed)] = kinds(records, "job_completed")
    assert author == "a" and len(completed.model_hash) == 32
    metrics = {m.name: m.value for m in completed.metrics}
    assert sorted(metrics) == [
        "test_accuracy",
        "test_f1",
        "test_log_loss",
        "test_precision",
        "test_recall",
    ]
    assert 0.5 < metrics["test_accuracy"] <= 1.0 and metrics["test_log_loss"] > 0
    for member_id in ("a", "dealer"):
        assert not (world.data_dir(member_id) / "jobs" / job_id.hex() / "model.pt").exists()
    model = world.data_dir("b") / "jobs" / job_id.hex() / "model.pt"
    assert model.exists() and model.stat().st_mode & 0o777 == 0o600
    assert worker_pids(job_id.hex()) == []


def test_a_job_one_party_rejects_never_starts(world):
    job_id = submit_job(world, spec(model=ModelSpec("mlp", (4,))))
    records = wait_for(
        world, job_id, lambda r: any(not d.approve for _, d in kinds(r, "job_decision"))
    )
    decisions = dict(kinds(records, "job_decision"))
    assert not decisions["b"].approve
    assert "model 'mlp' is not allowed" in decisions["b"].reasons[0]
    # a approves; its decision lands only if committed before b's rejection ended the job.
    assert decisions.get("a") is None or decisions["a"].approve
    time.sleep(2)  # anything that would start has had time to
    records = job_records(world, job_id)
    assert {k for k, _, _ in records} == {"job_submission", "job_decision"}
    for member_id in ("a", "b", "dealer"):
        assert not (world.data_dir(member_id) / "jobs" / job_id.hex()).exists()
    assert worker_pids(job_id.hex()) == []


def test_a_changed_dataset_aborts_the_job_before_any_worker_starts(world):
    path = world.datasets["a/feat2"]
    lines = path.read_text().splitlines()
    first = lines[1].split(",")
    first[1] = str(float(first[1]) + 1)
    lines[1] = ",".join(first)
    path.write_text("\n".join(lines) + "\n")
    job = spec(datasets=(JobDatasetRef("a/feat2", tuple(FEATURES_A)), spec().datasets[1]))
    job_id = submit_job(world, job)
    records = wait_for(world, job_id, lambda r: kinds(r, "job_aborted"))
    [(author, aborted)] = kinds(records, "job_aborted")
    assert author == "a" and "dataset 'a/feat2' changed" in aborted.reason
    assert "a" not in [a for a, _ in kinds(records, "job_started")]
    time.sleep(1)
    for member_id in ("a", "b", "dealer"):
        folder = world.data_dir(member_id) / "jobs" / job_id.hex()
        assert not list(folder.glob("worker-rank*.log")), member_id
    assert worker_pids(job_id.hex()) == []


def raw_job_records(world: World, job_id: bytes) -> list[bytes]:
    """The committed bytes of every record of the job, from the auditor's copy of the ledger."""
    found = []
    with LedgerClient(world.party("auditor")) as client:
        for item in client.blocks(1, 1000):
            for raw in item.block.records:
                parsed = parse_record(raw)
                if isinstance(parsed, str) or not parsed.kind.startswith("job_"):
                    continue
                payload = getattr(parsed.body, parsed.kind)
                if parsed.id == job_id or getattr(payload, "job_id", b"") == job_id:
                    found.append(bytes(raw))
    return found


def test_a_cell_that_no_longer_parses_aborts_without_its_value_or_path(world):
    """A cell holding a name and a birth date: the abort reason on the ledger names its line
    and column only, never the cell nor where the file is."""
    path = world.root / "data" / "a-cells.csv"
    path.write_bytes(world.datasets["a/feat"].read_bytes())
    columns = ",".join(["id:string", *(f"{c}:float64" for c in FEATURES_A)])
    _register(world.consortium, "a", path, "a/cells", columns)
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[2] = "Jane Q. Patient 1970-01-01"  # line 6, column fa1
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    job = spec(datasets=(JobDatasetRef("a/cells", tuple(FEATURES_A)), spec().datasets[1]))
    job_id = submit_job(world, job)
    records = wait_for(world, job_id, lambda r: kinds(r, "job_aborted"))
    [(author, aborted)] = kinds(records, "job_aborted")
    assert author == "a"
    assert "dataset 'a/cells' cannot be read: line 6, column 'fa1': not a float64" in (
        aborted.reason
    ), aborted.reason
    committed = b"".join(raw_job_records(world, job_id))
    for secret in (b"Jane Q. Patient", b"1970-01-01", str(path).encode(), b"a-cells.csv"):
        assert secret not in committed, secret
    assert str(world.root).encode() not in committed
    assert worker_pids(job_id.hex()) == []


@contextlib.contextmanager
def policy_of(world: World, member_id: str, text: str):
    """``member_id``'s policy file holds ``text`` (the runner reads it afresh per job)."""
    path = world.root / "c" / member_id / "policy.toml"
    before = path.read_text()
    path.write_text(text)
    try:
        yield
    finally:
        path.write_text(before)


def decision_of(world: World, job_id: bytes, member_id: str):
    records = wait_for(
        world, job_id, lambda r: any(a == member_id for a, _ in kinds(r, "job_decision"))
    )
    return dict(kinds(records, "job_decision"))[member_id]


def test_a_policy_whose_max_epochs_is_out_of_range_rejects_the_job(world):
    """max_epochs = 2^32 does not fit the policy hash: the owner's decision is a rejection
    saying why (never a job left pending for ever), and the reason names no local path."""
    policy = POLICY.format(models='"logistic_regression"').replace(
        "max_epochs = 50", f"max_epochs = {2**32}"
    )
    with policy_of(world, "a", policy):
        job_id = submit_job(world, spec(seed=21))
        decision = decision_of(world, job_id, "a")
    assert not decision.approve
    assert list(decision.reasons) == [
        "the policy cannot be read: invalid policy: max_epochs: must be an integer from 1 "
        "to 4294967295"
    ]
    assert str(world.root) not in decision.reasons[0]


def test_a_policys_min_test_rows_rejects_a_job_that_tests_on_fewer(world):
    """120 rows at test_fraction 0.25: 30 test rows, fewer than a's policy asks for."""
    policy = POLICY.format(models='"logistic_regression"') + "min_test_rows = 31\n"
    with policy_of(world, "a", policy):
        job_id = submit_job(world, spec(seed=22))
        decision = decision_of(world, job_id, "a")
    assert not decision.approve
    assert list(decision.reasons) == ["the job tests on 30 rows; the minimum is 31 (min_test_rows)"]


def test_a_worker_killed_mid_training_aborts_the_job_everywhere(world):
    job_id = submit_job(world, spec(epochs=40))
    wait_for(world, job_id, lambda r: kinds(r, "job_epoch_digests"))
    workers = worker_pids(job_id.hex())
    assert len(workers) == 3, workers
    victim = next(p for p in workers if b"--rank\x000" in Path(f"/proc/{p}/cmdline").read_bytes())
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    records = wait_for(world, job_id, lambda r: kinds(r, "job_aborted"), timeout_s=60)
    [(author, aborted)] = kinds(records, "job_aborted")
    assert author in ("a", "b", "dealer") and "worker failed" in aborted.reason, aborted.reason
    deadline = time.monotonic() + 20
    while worker_pids(job_id.hex()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker_pids(job_id.hex()) == []
    assert time.monotonic() - killed_at < 30
    assert not kinds(job_records(world, job_id), "job_completed")


def _forge_until(world: World, job_hex: str, stop: threading.Event) -> int:
    """As the auditor (a member, but no participant): report each data party's peer failed
    and feed it a frame claiming that peer's rank, until ``stop``; how many batches landed."""
    identity = world.party("auditor").identity
    targets = {"a": (0, 1, "b"), "b": (1, 0, "a")}  # target -> (its rank, peer rank, peer)
    genesis = world.consortium.genesis
    channels = {m: mtls.member_channel(identity, genesis.member(m)) for m in targets}
    landed = 0
    try:
        while not stop.is_set():
            for member_id, (rank, peer_rank, peer) in targets.items():
                frame = mpc_pb2.MpcFrame(
                    job_id=job_hex,
                    sender_rank=peer_rank,
                    receiver_rank=rank,
                    kind=mpc_pb2.FRAME_KIND_BARRIER,
                )
                failure = mpc_pb2.PartyFailure(job_id=job_hex, member_id=peer, reason="forged")
                batch = mpc_pb2.PeerBatch(frames=[frame], failures=[failure])
                with contextlib.suppress(grpc.RpcError):
                    mpc_pb2_grpc.MpcPeerStub(channels[member_id]).Link(iter([batch]), timeout=10)
                    landed += 1
            stop.wait(0.2)
    finally:
        for channel in channels.values():
            channel.close()
    return landed


def test_a_member_outside_the_job_can_neither_fail_nor_feed_it(world):
    job_id = submit_job(world, spec())
    stop = threading.Event()
    landed: list[int] = []
    attacker = threading.Thread(
        target=lambda: landed.append(_forge_until(world, job_id.hex(), stop)), daemon=True
    )
    attacker.start()
    try:
        records = wait_for(
            world,
            job_id,
            lambda r: len(kinds(r, "participation_proof")) == 3 or kinds(r, "job_aborted"),
        )
    finally:
        stop.set()
        attacker.join(30)
    assert landed and landed[0] > 0  # the auditor's batches were accepted by the transport
    assert not kinds(records, "job_aborted"), kinds(records, "job_aborted")
    assert len(kinds(records, "job_completed")) == 1
