"""Four real daemons started by the CLI, on loopback: one order everywhere, crashes, partitions."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time

import pytest

from mpc_ledger.consensus import block_id
from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.proxy import ProxyMesh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IDS = ["a", "b", "c", "auditor"]


class Cluster:
    def __init__(self, root, *, proxies: bool = False):
        self.consortium = make_consortium(root / "c", "a,b,c", auditor=True)
        self.root = root
        genesis = self.consortium.genesis
        self.mesh = None
        if proxies:
            listen = {}
            for member_id in IDS:
                host, _, port = genesis.member(member_id).endpoint.rpartition(":")
                listen[member_id] = (host, int(port))
            self.mesh = ProxyMesh(listen)
            for member_id in IDS:
                config = self.consortium.config(member_id)
                peers = "".join(
                    f'{peer} = "{address}"\n'
                    for peer, address in self.mesh.addresses_for(member_id).items()
                )
                config.write_text(config.read_text() + "\n[peers]\n" + peers)
        self.daemons: dict[str, DaemonProcess] = {}
        self.clients: dict[str, LedgerClient] = {}
        for member_id in IDS:
            self.start(member_id)

    def start(self, member_id):
        log = self.root / f"{member_id}-{time.monotonic_ns()}.log"
        daemon = DaemonProcess(self.consortium.config(member_id), log)
        daemon.wait_serving(self.consortium.genesis.member(member_id).endpoint)
        self.daemons[member_id] = daemon
        if member_id not in self.clients:
            self.clients[member_id] = LedgerClient(self.consortium.party(member_id))

    def height(self, member_id):
        try:
            return int(self.clients[member_id].tip(timeout_s=2).height)
        except Exception:
            return -1

    def wait(self, predicate, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        logs = {m: d.log()[-1500:] for m, d in self.daemons.items()}
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; logs: {logs}")

    def submit_notes(self, member_id, count, prefix):
        client = self.clients[member_id]
        ids = []
        for index in range(count):
            reply = client.submit(client.note(f"{prefix}-{index}"))
            assert reply.accepted, reply.reason
            ids.append(reply.record_id)
        return ids

    def chain(self, member_id, up_to):
        return [
            (item.block.header.height, block_id(item.block.header), list(item.block.records))
            for item in self.clients[member_id].blocks(1, up_to)
        ][:up_to]

    def assert_no_fork(self, members=IDS):
        common = min(self.height(m) for m in members)
        assert common > 0
        chains = {m: self.chain(m, common) for m in members}
        reference = chains[members[0]]
        for member_id, chain in chains.items():
            assert [h for h, _, _ in chain] == list(range(1, common + 1))
            assert [i for _, i, _ in chain] == [i for _, i, _ in reference], member_id
        return reference

    def stop(self):
        for client in self.clients.values():
            client.close()
        stop_all(list(self.daemons.values()))
        if self.mesh is not None:
            self.mesh.close()


@pytest.fixture
def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    cluster.stop()


@pytest.fixture
def meshed(tmp_path):
    cluster = Cluster(tmp_path, proxies=True)
    yield cluster
    cluster.stop()


def wait_all_committed(cluster, ids, members=IDS, timeout_s=30):
    for member_id in members:
        for record_id in ids:
            reply = cluster.clients[member_id].wait_committed(record_id, timeout_s)
            assert reply.committed, (member_id, record_id.hex())


def test_records_submitted_anywhere_commit_in_one_order_everywhere(cluster):
    submitted: list[bytes] = []
    threads = [
        threading.Thread(target=lambda m=m: submitted.extend(cluster.submit_notes(m, 10, m)))
        for m in IDS
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(submitted) == 40
    wait_all_committed(cluster, submitted)
    cluster.wait(lambda: len({cluster.height(m) for m in IDS}) == 1, 10, "equal heights")
    chain = cluster.assert_no_fork()
    from mpc_ledger.ledger.records import parse_record

    committed = [parse_record(raw).id for _, _, records in chain for raw in records]
    assert sorted(committed) == sorted(submitted)  # each exactly once, nothing invented


@pytest.mark.parametrize("victim", ["proposer", "auditor"])
def test_kill_9_then_restart_catches_up_without_a_fork(cluster, victim):
    first = cluster.submit_notes("b", 3, "before")
    wait_all_committed(cluster, first)
    if victim == "proposer":
        # the validator that proposed the newest block is likely to propose again soon
        newest = cluster.clients["b"].tip().height
        victim = next(iter(cluster.clients["b"].blocks(newest, 1))).block.header.proposer_id
    cluster.daemons[victim].stop(signal.SIGKILL)
    survivors = [m for m in IDS if m != victim]
    started = time.monotonic()
    during = cluster.submit_notes(survivors[0], 5, "during")
    wait_all_committed(cluster, during, survivors, timeout_s=30)
    # one base propose timeout (3 s) plus a round, with room for a loaded machine
    assert time.monotonic() - started < 15
    cluster.start(victim)
    target = cluster.height(survivors[0])
    cluster.wait(lambda: cluster.height(victim) >= target, 10, f"{victim} to catch up")
    after = cluster.submit_notes(victim, 3, "after")
    wait_all_committed(cluster, after)
    cluster.assert_no_fork()


def test_partition_minority_stops_majority_goes_on_then_all_converge(meshed):
    warmup = meshed.submit_notes("a", 2, "warm")
    wait_all_committed(meshed, warmup)
    meshed.mesh.partition({"a"})
    time.sleep(0.5)
    cut_height = meshed.height("a")
    majority = ["b", "c", "auditor"]
    during = meshed.submit_notes("b", 5, "majority")
    wait_all_committed(meshed, during, majority)
    # the minority accepts records but cannot commit them
    stranded = meshed.submit_notes("a", 1, "minority")
    time.sleep(2)
    assert meshed.height("a") <= cut_height + 1
    assert not meshed.clients["a"].wait_committed(stranded[0], 0.5).committed
    meshed.mesh.heal()
    target = meshed.height("b")
    meshed.wait(lambda: meshed.height("a") >= target, 20, "a to converge after healing")
    meshed.assert_no_fork()


def test_one_way_partition_keeps_everyone_committing(meshed):
    meshed.mesh.partition({"a"}, one_way=True)  # a's messages are lost; a still hears others
    ids = meshed.submit_notes("b", 5, "oneway")
    wait_all_committed(meshed, ids, IDS)  # a learns the commits from the others' precommits
    meshed.assert_no_fork()


def test_no_validator_ever_produced_equivocation_evidence(cluster):
    ids = cluster.submit_notes("c", 5, "x")
    wait_all_committed(cluster, ids)
    cluster.daemons["a"].stop(signal.SIGKILL)
    cluster.start("a")
    ids = cluster.submit_notes("a", 3, "y")
    wait_all_committed(cluster, ids)
    for member_id in IDS:
        cluster.daemons[member_id].stop()
        path = cluster.consortium.root / member_id / "data" / "ledger.sqlite"
        db = sqlite3.connect(path)
        assert db.execute("SELECT COUNT(*) FROM evidence").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] > 0
        db.close()
