"""CrypTen programs across real processes: party daemons with the relay (real mTLS), one
worker process per rank, the dealer's worker at the dealer member.

Conformance against plaintext, pairwise digest agreement, a dishonest party caught by the
digests, a duplicated and a replayed frame refused, a stranger's certificate refused, and
parties that die or hang making the others fail fast with their name.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import torch

from mpc_ledger.identity import certs, keys
from mpc_ledger.mpc.conformance import conformance_inputs, mlp_step_reference
from mpc_ledger.mpc.train_spec import TrainSpec
from mpc_ledger.mpc.transcript import TranscriptSnapshot, compare_transcripts
from mpc_ledger.mpc.worker import JobManifest
from mpc_ledger.net.peers import describe_rpc_error
from mpc_ledger.proto.v1 import mpc_pb2, mpc_pb2_grpc
from mpc_ledger.testing.mpc_cluster import RelayCluster, wait_all

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
TOLERANCE = {
    "add": 1e-3,
    "mul": 2e-3,
    "matmul": 5e-3,
    "relu": 1e-3,
    "sigmoid": 2e-2,
    "softmax": 2e-2,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with RelayCluster(tmp_path_factory.mktemp("mpc"), "a,b", dealer=True) as running:
        yield running


def manifest(job_id, members=("a", "b", "dealer"), program=None, timeout_s=60.0):
    return JobManifest(
        job_id=job_id,
        members=members,
        world_size=len(members) - 1,
        tuple_provider="dealer",
        peer_timeout_s=timeout_s,
        program=program or {"name": "conformance"},
    )


def training(epochs=1, rows=64, layout="vertical", model="logistic", recipients=(1,), **fields):
    from mpc_ledger.mpc.sample_data import breast_cancer_split

    full = breast_cancer_split(seed=0, rows=rows)
    n_train, n_test = len(full["x_train"]), len(full["x_test"])
    if layout == "vertical":
        extra = {
            "columns_per_rank": (15, 15),
            "train_rows_per_rank": (n_train,),
            "test_rows_per_rank": (n_test,),
        }
    else:
        extra = {
            "train_rows_per_rank": (n_train // 2, n_train - n_train // 2),
            "test_rows_per_rank": (n_test // 2, n_test - n_test // 2),
        }
    spec = TrainSpec(
        layout=layout,
        model=model,
        n_features=30,
        epochs=epochs,
        label_rank=1,
        hidden=(4,),
        learning_rate=0.5,
        recipients=recipients,
        **extra,
        **fields,
    )
    return (
        spec,
        full,
        {
            "name": "train",
            "spec": spec.to_json(),
            "data": {"source": "breast_cancer", "rows": rows},
        },
    )


def check_conformance(results, world_size):
    inputs = conformance_inputs()
    x, y, w = inputs["x"], inputs["y"], inputs["w"]
    expected = {
        "add": x + y,
        "mul": x * y,
        "matmul": x @ w,
        "lt": (x < y).float(),
        "gt": (x > y).float(),
        "relu": x.relu(),
        "sigmoid": x.sigmoid(),
        "softmax": x.softmax(dim=1),
    }
    reference = mlp_step_reference()
    for result in results[:world_size]:
        output = result["output"]
        for name, value in expected.items():
            got = torch.tensor(output[name])
            if name in ("lt", "gt"):
                assert torch.equal(got, value), name
            else:
                assert torch.allclose(got, value, atol=TOLERANCE[name]), (name, got, value)
        assert sorted(output["mlp_step"]) == sorted(reference)
        for name, value in reference.items():
            assert torch.allclose(
                torch.tensor(output["mlp_step"][name]), torch.tensor(value), atol=2e-2
            ), name


def transcripts(results):
    return {r["rank"]: TranscriptSnapshot.from_json(r["transcript"]) for r in results}


def test_conformance_two_parties_with_the_dealer(cluster):
    run = cluster.run(manifest("conf2"), timeout_s=180)
    assert run.exit_codes == [0, 0, 0], run.logs()
    check_conformance(run.results, 2)
    assert compare_transcripts(transcripts(run.results)) == []
    assert {r["tuple_provider"] for r in run.results} == {"dealer"}
    assert all(r["communication"]["rounds"] > 0 for r in run.results)


@pytest.mark.slow
def test_conformance_three_parties_with_the_dealer(tmp_path):
    with RelayCluster(tmp_path, "a,b,c", dealer=True) as three:
        run = three.run(manifest("conf3", members=("a", "b", "c", "dealer")), timeout_s=240)
    assert run.exit_codes == [0, 0, 0, 0], run.logs()
    check_conformance(run.results, 3)
    snapshots = transcripts(run.results)
    assert compare_transcripts(snapshots) == []
    assert {(c.sender, c.receiver) for c in snapshots[1].channels} >= {
        (0, 1),
        (1, 0),
        (1, 2),
        (2, 1),
    }


@pytest.mark.slow
def test_horizontal_mlp_training_reveals_the_model_only_to_recipients(cluster):
    """Pooled standardisation and shuffled batches, with the dealer serving every triple
    (its budget covers the statistics) over the real relays."""
    _spec, _, program = training(
        layout="horizontal",
        model="mlp",
        recipients=(1,),
        batch_order="shuffled",
        standardisation="pooled",
    )
    run = cluster.run(manifest("train-h", program=program), timeout_s=240)
    assert run.exit_codes == [0, 0, 0], run.logs()
    party0, party1 = run.results[0]["output"], run.results[1]["output"]
    assert party0["model"] is None
    assert sorted(party1["model"]) == [
        "0.bias",
        "0.weight",
        "2.bias",
        "2.weight",
        "preprocessing.mean",
        "preprocessing.scale",
    ]
    # the data were standardised already (breast_cancer_split): pooled statistics near 0, 1
    assert torch.allclose(
        torch.tensor(party1["model"]["preprocessing.mean"]), torch.zeros(30), atol=0.2
    )
    assert party0["batch_order_digest"] == party1["batch_order_digest"]
    assert party0["test_accuracy"] == party1["test_accuracy"] > 0.6
    assert compare_transcripts(transcripts(run.results)) == []


def launch_dishonest(cluster, job, mode, dishonest_rank=0):
    double = [sys.executable, str(HERE / "dishonest_worker.py"), mode]
    return cluster.launch(job, programs={dishonest_rank: double})


@pytest.mark.parametrize("mode", ["tamper", "phantom"])
def test_a_dishonest_transcript_is_caught_by_the_pairwise_check(cluster, tmp_path, mode):
    job = manifest(f"dishonest-{mode}", timeout_s=20)
    workers = launch_dishonest(cluster, job, mode)
    wait_all(workers, 180)
    results = [w.result() for w in workers]
    if any("error" in r for r in results):
        pytest.fail("\n".join(w.log() for w in workers))
    mismatches = compare_transcripts(transcripts(results))
    altered_to = int(workers[0].log().split("altered its frame to rank ")[1].split()[0])
    assert [(m.sender, m.receiver) for m in mismatches] == [(0, altered_to)], mismatches
    assert "digest" in mismatches[0].reason


def test_a_duplicated_frame_is_refused_naming_the_sender(cluster):
    """Both copies reach party b in one delivery (see dishonest_worker.py): one outcome."""
    job = manifest("duplicate", timeout_s=20)
    workers = launch_dishonest(cluster, job, "duplicate")
    wait_all(workers, 120)
    error = workers[1].result().get("error", "")
    assert "refused a frame from a (rank 0): duplicated frame from a (rank 0)" in error, (
        error,
        workers[1].log(),
    )


def test_a_replayed_frame_is_refused_naming_the_sender(cluster):
    """Resent once party b has certainly consumed it (see dishonest_worker.py): one outcome."""
    job = manifest("replay", timeout_s=20)
    workers = launch_dishonest(cluster, job, "replay")
    wait_all(workers, 120)
    error = workers[1].result().get("error", "")
    assert "refused a frame from a (rank 0): replayed frame from a (rank 0)" in error, (
        error,
        workers[1].log(),
    )


def test_a_certificate_outside_the_genesis_cannot_join(cluster):
    base = cluster.consortium.party("a").identity
    foreign_key = keys.generate_tls_key()
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    foreign_ca = certs.make_ca_certificate("mallory", foreign_key, now=now)
    leaf_key = keys.generate_tls_key()
    leaf = certs.issue_leaf_certificate(
        "a", leaf_key.public_key(), foreign_ca, foreign_key, now=now, days=1
    )
    target = cluster.consortium.genesis.member("b")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=target.tls_ca_certificate_pem,
        private_key=keys.tls_key_pem(leaf_key),
        certificate_chain=leaf.public_bytes(certs.serialization.Encoding.PEM),
    )
    channel = grpc.secure_channel(
        target.endpoint, credentials, options=[("grpc.ssl_target_name_override", "b")]
    )
    frame = mpc_pb2.MpcFrame(job_id="x", receiver_rank=1, kind=mpc_pb2.FRAME_KIND_BARRIER)
    with pytest.raises(grpc.RpcError) as error:
        mpc_pb2_grpc.MpcPeerStub(channel).Link(
            iter([mpc_pb2.PeerBatch(frames=[frame])]), timeout=10
        )
    channel.close()
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "TLS handshake failed" in describe_rpc_error(error.value)
    del base


def attached(pid):
    """Whether process ``pid`` holds a connected Unix stream socket: a worker holds
    none until it has connected to its daemon's relay (`ss` reads the kernel's table)."""
    table = subprocess.run(
        ["ss", "-xpH", "state", "established"], capture_output=True, text=True, check=True
    ).stdout
    return f"pid={pid}," in table


def wait_until_computing(workers, seconds=3.0):
    """Wait until every worker has attached to its relay, then ``seconds`` more for their
    first frames to flow. A worker killed before it attached is unknown to its daemon,
    which then has no failure to report: its peers wait for their peer timeout."""
    deadline = time.monotonic() + 120  # importing CrypTen on a loaded 2-core machine
    while not all(attached(w.process.pid) for w in workers):
        if any(w.process.poll() is not None for w in workers):
            return
        assert time.monotonic() < deadline, "the workers did not attach within 120 s"
        time.sleep(0.2)
    time.sleep(seconds)


@pytest.mark.slow
def test_a_killed_party_makes_the_others_fail_fast_with_its_name(cluster):
    _, _, program = training(epochs=30, rows=None)
    workers = cluster.launch(manifest("killed", program=program, timeout_s=60))
    wait_until_computing(workers, 2.0)
    workers[1].process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    wait_all([workers[0], workers[2]], 30)
    elapsed = time.monotonic() - killed_at
    assert elapsed < 15, elapsed
    for survivor in (workers[0], workers[2]):
        error = survivor.result().get("error", "")
        assert "party b" in error, error
    assert workers[0].process.returncode == 1


@pytest.mark.slow
def test_a_hung_party_times_out_with_its_name(cluster):
    _, _, program = training(epochs=30, rows=None)
    workers = cluster.launch(manifest("hung", program=program, timeout_s=3))
    wait_until_computing(workers, 2.0)
    os.kill(workers[1].process.pid, signal.SIGSTOP)
    try:
        workers[0].process.wait(30)
    finally:
        os.kill(workers[1].process.pid, signal.SIGCONT)
        workers[1].process.kill()
    wait_all(workers, 30)
    error = workers[0].result().get("error", "")
    assert "party b (rank 1)" in error and "3s" in error, error


@pytest.mark.slow
def test_a_dead_daemon_makes_the_others_fail_fast_with_its_name(tmp_path):
    with RelayCluster(tmp_path, "a,b", dealer=True) as own:
        _, _, program = training(epochs=30, rows=None)
        workers = own.launch(manifest("daemon-dies", program=program, timeout_s=60))
        wait_until_computing(workers, 2.0)
        own.daemons["b"].process.kill()
        killed_at = time.monotonic()
        wait_all([workers[0], workers[2]], 30)
        assert time.monotonic() - killed_at < 15
        error = workers[0].result().get("error", "")
        # The relay's notice for a peer daemon it lost (`MpcRelayService.peer_lost`, rank -1):
        # "party b failed: " and why its link ended ("... its daemon ..."). Party a may hear
        # it from its own relay or relayed by the dealer, which stops on the same notice
        # ("party dealer (rank 2) failed: party b failed: ..."): the same text either way.
        assert "party b failed: " in error and "its daemon" in error, error
        workers[1].process.kill()


def channel_counts(observed):
    """(sender, receiver) -> (messages, rounds, bytes) of a transcript snapshot."""
    channels = TranscriptSnapshot.from_json(observed["transcript"]).channels
    return {(c.sender, c.receiver): (c.messages, c.rounds, c.size_bytes) for c in channels}


def transcript_growth(before, after):
    start = channel_counts(before)
    return {
        link: tuple(a - b for a, b in zip(counts, start.get(link, (0, 0, 0)), strict=True))
        for link, counts in channel_counts(after).items()
    }


def test_cryptens_api_as_documented_objects_tensors_seeds_and_statistics(cluster):
    """load_from_party, broadcast_obj of tensors, a uint64 seed, and the statistics contract:
    CrypTen's counts only in verbose mode, reset by its reset; ours and the transcript always."""
    spec = importlib.util.spec_from_file_location(
        "crypten_api_worker", HERE / "crypten_api_worker.py"
    )
    api_worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api_worker)
    script = [sys.executable, str(HERE / "crypten_api_worker.py")]
    workers = cluster.launch(manifest("crypten-api", timeout_s=30), programs={0: script, 1: script})
    wait_all(workers, 180)
    logs = "\n".join(w.log() for w in workers)
    results = [w.result() for w in workers]
    assert [w.process.returncode for w in workers] == [0, 0, 0], (results, logs)
    parties = results[:2]
    assert api_worker.SEED >= 2**63
    for party in parties:
        for calls in (party["quiet"], party["verbose"]):
            assert calls["loaded_type"] == "MPCTensor"
            assert torch.allclose(torch.tensor(calls["loaded"]), api_worker.FEATURES, atol=1e-3)
            assert calls["payload"] == api_worker.described(api_worker.PAYLOAD)
            assert calls["seed"] == api_worker.SEED
    zero = {"rounds": 0, "bytes": 0, "time": 0}
    for party in parties:
        quiet, verbose = party["after_quiet"], party["after_verbose"]
        assert party["init"]["crypten"] == quiet["crypten"] == zero  # verbose off: not counted
        ours_quiet = quiet["ours"]["rounds"] - party["init"]["ours"]["rounds"]
        ours_verbose = verbose["ours"]["rounds"] - quiet["ours"]["rounds"]
        assert ours_quiet == ours_verbose > 0  # ours count whatever the mode
        counted = verbose["crypten"]
        assert counted["rounds"] == ours_verbose and counted["bytes"] > 0 and counted["time"] > 0
        # the transcript records the same frames in both passes
        growth = transcript_growth(party["init"], quiet)
        assert growth == transcript_growth(quiet, verbose) and growth
        assert party["after_reset"]["crypten"] == zero
        assert party["after_reset"]["ours"] == verbose["ours"]
    rounds = parties[0]["after_verbose"]["crypten"]["rounds"]
    assert f"Rounds: {rounds}" in parties[0]["printed"] and parties[1]["printed"] == []
    assert compare_transcripts(transcripts(results)) == []


def test_a_200_mib_tensor_crosses_the_relay_intact(cluster):
    """gRPC refuses messages over 16 MiB: the relay must split what it queued for a peer."""
    job = manifest("big-tensor", timeout_s=300)
    script = [sys.executable, str(HERE / "big_tensor_worker.py")]
    workers = cluster.launch(
        job, programs=dict.fromkeys(range(3), script), worker_args=["--megabytes", "200"]
    )
    wait_all(workers, 400)
    logs = "\n".join(w.log() for w in workers)
    assert [w.process.returncode for w in workers] == [0, 0, 0], logs
    sent, received = workers[0].result(), workers[1].result()
    assert sent["sha256"] == received["sha256"], logs
    assert compare_transcripts(transcripts([sent, received])) == []
