"""Ledger throughput and latency: real daemons on loopback, fsync on, signed 1 KiB records.

    python benchmarks/ledger_bench.py            # full run (about two minutes)
    python benchmarks/ledger_bench.py --smoke    # seconds; what `make test` runs

Measures, on a consortium of 4 validators started by the CLI (`party start`):

1. saturation: N pre-signed records submitted in batches to all four nodes at
   once; committed records per second, from the first submission to the
   commit of the last record, as seen by a client following each node;
2. latency: records submitted one by one at half the saturation rate (open
   loop, spread over the nodes); submit-to-commit latency: from the start of
   the Submit call to the block reaching a client following one node; with
   the daemons' CPU time over the same interval (how busy the two cores
   were), and, for scale, the same latency at a quarter of the saturation
   rate and at 20 records/s (about one record per block: the floor of one
   block's round trip). Records submitted one by one cost more than in
   batches (a gRPC call each), so "half load" submitted this way may be
   more than the ledger keeps up with: the latency then grows with the run;
3. failover: the proposer of the next height is killed (SIGKILL) and a
   record submitted elsewhere; time from the kill to the next commit;
4. restart: the killed node is started again; time from its start until it
   is at the others' height and takes part in consensus again;
5. catch-up: on a consortium that commits empty blocks back to back, the
   dealer (a member that follows the ledger without voting) is stopped
   while the validators commit a few thousand blocks; then two validators
   are stopped too, so the chain halts (the other two still serve blocks),
   and the dealer is restarted: blocks per second it fetches and verifies
   (every certificate and block checked, as a lagging validator does). A
   stopped validator would slow the others down each time its turn to
   propose came, and a chain still racing would compete for the two cores:
   either way the figure would time something else.

The baseline in the same run is one validator alone (n = 1: no network, no
votes from others), which bounds what consensus on this machine can reach.

The load generator runs its pacing loop, gRPC's client threads and the
commit watcher in one Python process, so it uses the daemons' 0.5 ms GIL
switch interval (see `party start`): with CPython's default 5 ms, a watcher
thread waiting for the GIL behind another adds milliseconds to what it
timestamps.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import secrets
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from mpc_ledger.consensus import ValidatorSet
from mpc_ledger.daemon.parent import stop_on_signals
from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.ledger.records import make_record, record_id
from mpc_ledger.proto.v1 import ledger_pb2, ledger_service_pb2
from mpc_ledger.testing.consortium import LocalConsortium, make_consortium

RECORD_BYTES = 1024
LIGHT_LOAD_PER_S = 20
SWITCH_INTERVAL_S = 0.0005  # the daemon's, see mpc_ledger/cli/party.py
TARGET_RECORDS_PER_S = 1000
TARGET_P50_MS = 15
TARGET_P99_MS = 50


class Cluster:
    def __init__(self, consortium: LocalConsortium, logs: Path) -> None:
        self.consortium = consortium
        self.logs = logs
        self.ids = consortium.ids
        self.daemons = [DaemonProcess(consortium.config(i), logs / f"{i}.log") for i in self.ids]
        try:
            for member_id, daemon in zip(self.ids, self.daemons, strict=True):
                daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
        except BaseException:
            stop_all(self.daemons)
            raise
        self.parties = [consortium.party(i) for i in self.ids]
        self.clients = [LedgerClient(p) for p in self.parties]
        deadline = time.monotonic() + 30
        while min(self._height(c) for c in self.clients) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the ledger did not commit its first block within 30 s")
            time.sleep(0.1)

    @staticmethod
    def _height(client: LedgerClient) -> int:
        try:
            return int(client.tip().height)
        except Exception:
            return 0

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        for daemon in self.daemons:
            daemon.stop()


def signed_records(cluster: Cluster, count: int) -> list[list[ledger_pb2.Record]]:
    """``count`` 1 KiB notes, each signed by the member whose node will receive it."""
    per_node: list[list[ledger_pb2.Record]] = [[] for _ in cluster.parties]
    signers = [Signer(p.identity.signing_key, p.genesis.chain_id) for p in cluster.parties]
    for index in range(count):
        node = index % len(cluster.parties)
        body = ledger_pb2.RecordBody(
            author=cluster.parties[node].identity.member.id,
            nonce=secrets.randbits(63),
            created_ms=int(time.time() * 1000),
            note=ledger_pb2.Note(text=f"bench {index}", data=os.urandom(RECORD_BYTES - 100)),
        )
        per_node[node].append(make_record(signers[node], body))
    return per_node


class CommitWatcher:
    """Follows one node's committed blocks; records when each record id was first seen."""

    def __init__(self, client: LedgerClient, from_height: int) -> None:
        self.seen: dict[bytes, float] = {}
        self._stream = client.stub.Follow(
            ledger_service_pb2.GetBlocksRequest(from_height=from_height)
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._stream:
                now = time.perf_counter()
                for raw in item.block.records:
                    self.seen[record_id(ledger_pb2.Record.FromString(raw).body)] = now
        except Exception:  # cancelled at the end of the run
            pass

    def stop(self) -> None:
        self._stream.cancel()


def saturation(cluster: Cluster, count: int, batch: int) -> float:
    per_node = signed_records(cluster, count)
    start_height = int(cluster.clients[0].tip().height) + 1
    watchers = [CommitWatcher(c, start_height) for c in cluster.clients]
    ids = {record_id(r.body) for records in per_node for r in records}
    errors: list[str] = []

    def submit(client: LedgerClient, records: list[ledger_pb2.Record]) -> None:
        for offset in range(0, len(records), batch):
            chunk = records[offset : offset + batch]
            reply = client.stub.SubmitBatch(
                ledger_service_pb2.SubmitBatchRequest(records=chunk), timeout=60
            )
            errors.extend(r.reason for r in reply.results if not r.accepted)

    started = time.perf_counter()
    threads = [
        threading.Thread(target=submit, args=(client, records))
        for client, records in zip(cluster.clients, per_node, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} records refused, e.g. {errors[0]}")
    deadline = time.monotonic() + 120
    while any(not ids <= w.seen.keys() for w in watchers):
        if time.monotonic() > deadline:
            raise RuntimeError("not every record committed within 120 s")
        time.sleep(0.05)
    finished = max(max(w.seen[i] for i in ids) for w in watchers)
    for watcher in watchers:
        watcher.stop()
    return count / (finished - started)


@dataclasses.dataclass
class LatencyRun:
    latencies_ms: list[float]  # sorted
    achieved_per_s: float  # the submission rate the load generator really kept
    daemon_cores: float | None  # the daemons' CPU seconds per second, first submit to last commit


def latency(cluster: Cluster, rate_per_s: float, duration_s: float) -> LatencyRun:
    """Open loop: one pacing thread starts each Submit on schedule without waiting for the
    previous reply (a closed loop would slow down with the ledger and measure a lighter
    load than it names)."""
    count = max(int(rate_per_s * duration_s), len(cluster.clients))
    per_node = signed_records(cluster, count)
    schedule = [
        (node, record)
        for batch in itertools.zip_longest(*per_node)
        for node, record in enumerate(batch)
        if record is not None
    ]
    start_height = int(cluster.clients[0].tip().height) + 1
    # One watcher: every node commits a block within about a millisecond of the
    # others, and four watchers parsing every record would compete with the
    # daemons for the same two cores.
    watcher = CommitWatcher(cluster.clients[0], start_height)
    submitted: dict[bytes, float] = {}
    replies = []
    interval_s = 1 / rate_per_s
    cpu_before = cpu_seconds(cluster)
    first = next_at = time.perf_counter()
    for node, record in schedule:
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        request = ledger_service_pb2.SubmitRequest(record=record)
        replies.append(cluster.clients[node].stub.Submit.future(request, timeout=60))
        submitted[record_id(record.body)] = sent
        next_at += interval_s
    achieved = len(schedule) / max(time.perf_counter() - first, 1e-9)
    refused = [r.result().reason for r in replies if not r.result().accepted]
    if refused:
        raise RuntimeError(f"{len(refused)} records refused, e.g. {refused[0]}")
    deadline = time.monotonic() + 60
    while any(i not in watcher.seen for i in submitted):
        if time.monotonic() > deadline:
            raise RuntimeError("not every record committed within 60 s")
        time.sleep(0.05)
    watcher.stop()
    cpu_after, elapsed = cpu_seconds(cluster), max(watcher.seen.values()) - first
    cores = None
    if cpu_before is not None and cpu_after is not None:
        cores = (cpu_after - cpu_before) / elapsed
    return LatencyRun(
        sorted((watcher.seen[i] - sent) * 1000 for i, sent in submitted.items()), achieved, cores
    )


def failover_and_restart(cluster: Cluster) -> tuple[float, float, float]:
    """(kill-to-commit seconds, restart-to-in-consensus seconds, base propose timeout s)."""
    genesis = cluster.consortium.genesis
    validators = ValidatorSet([(m.id, m.signing_public_key) for m in genesis.validators])
    client = cluster.clients[0]
    height = int(client.tip().height)
    client.wait_committed(client.submit(client.note("sync")).record_id, 10)
    height = int(client.tip().height)
    victim = validators.proposer(height + 1, 0)
    index = cluster.ids.index(victim)
    survivor = cluster.clients[(index + 1) % len(cluster.ids)]
    cluster.daemons[index].stop(signal.SIGKILL)
    killed = time.perf_counter()
    reply = survivor.submit(survivor.note("after the proposer died"))
    committed = survivor.wait_committed(reply.record_id, 60)
    if not committed.committed:
        raise RuntimeError("no commit within 60 s after killing the proposer")
    failover_s = time.perf_counter() - killed
    cluster.clients[index].close()
    started = time.perf_counter()
    daemon = DaemonProcess(cluster.consortium.config(victim), cluster.logs / f"{victim}-2.log")
    cluster.daemons[index] = daemon
    daemon.wait_serving(genesis.member(victim).endpoint)
    cluster.clients[index] = LedgerClient(cluster.parties[index])
    deadline = time.monotonic() + 60
    while cluster._height(cluster.clients[index]) < cluster._height(survivor):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{victim} did not rejoin within 60 s")
        time.sleep(0.01)
    rejoin_s = time.perf_counter() - started
    return failover_s, rejoin_s, genesis.consensus.timeout_propose_ms / 1000


def catch_up(root: Path, stopped_s: float) -> tuple[int, float]:
    """(blocks fetched, blocks/s) for a node that was down while others raced ahead."""
    consortium = make_consortium(
        root / "catchup", "a,b,c", auditor=True, dealer=True, empty_block_interval_ms=0
    )
    cluster = Cluster(consortium, root)
    try:
        lagger = cluster.ids.index("dealer")
        cluster.daemons[lagger].stop()
        time.sleep(stopped_s)
        for member_id in ("c", "auditor"):
            index = cluster.ids.index(member_id)
            cluster.daemons[index].stop()
        target = cluster._height(cluster.clients[0])
        cluster.clients[lagger].close()
        daemon = DaemonProcess(consortium.config("dealer"), root / "dealer-catchup.log")
        cluster.daemons[lagger] = daemon
        daemon.wait_serving(consortium.genesis.member("dealer").endpoint)
        client = LedgerClient(cluster.parties[lagger])
        cluster.clients[lagger] = client
        first = cluster._height(client)
        started = time.perf_counter()
        deadline = time.monotonic() + 120
        while cluster._height(client) < target:
            if time.monotonic() > deadline:
                raise RuntimeError("catch-up did not finish within 120 s")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        return target - first, (target - first) / elapsed
    finally:
        cluster.stop()


def cpu_seconds(cluster: Cluster) -> float | None:
    """User + system CPU time of every daemon process so far (None where /proc is missing)."""
    total = 0.0
    for daemon in cluster.daemons:
        try:
            fields = Path(f"/proc/{daemon.process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


def run(parties: str, root: Path, count: int, batch: int) -> float:
    consortium = make_consortium(root / parties.replace(",", "-"), parties)
    cluster = Cluster(consortium, root)
    try:
        return saturation(cluster, count, batch)
    finally:
        cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, small numbers")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--catch-up-seconds", type=float, default=30.0)
    args = parser.parse_args()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    count = 400 if args.smoke else args.records
    latency_s = 2.0 if args.smoke else args.latency_seconds
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        root = Path(tmp)
        print(f"ledger benchmark: {count} signed {RECORD_BYTES}-byte records, fsync on", flush=True)
        baseline = run("solo", root, count, 200)
        print(f"  baseline, 1 validator alone:     {baseline:8.0f} records/s", flush=True)
        consortium = make_consortium(root / "four", "a,b,c", auditor=True)
        cluster = Cluster(consortium, root)
        try:
            throughput = saturation(cluster, count, 200)
            print(
                f"  4 validators, saturation:        {throughput:8.0f} records/s"
                f"   (target >= {TARGET_RECORDS_PER_S}; {throughput / baseline:.2f}x the baseline)",
                flush=True,
            )
            rate = throughput / 2
            half = latency(cluster, rate, latency_s)
            latencies = half.latencies_ms
            p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
            busy = ""
            if half.daemon_cores is not None:
                busy = f", daemons busy {half.daemon_cores:.2f} of {os.cpu_count()} cores"
            print(
                f"  4 validators at {rate:.0f} records/s (half load; the load generator kept"
                f" {half.achieved_per_s:.0f}), {len(latencies)} records:\n"
                f"    submit-to-commit p50 {p50:6.1f} ms   (target <= {TARGET_P50_MS})\n"
                f"    submit-to-commit p99 {p99:6.1f} ms   (target <= {TARGET_P99_MS})\n"
                f"    mean {statistics.fmean(latencies):.1f} ms, max {latencies[-1]:.1f} ms{busy}",
                flush=True,
            )
            print("  for scale, the same one-by-one submissions at lighter loads:", flush=True)
            for name, lighter in (
                ("a quarter of saturation", throughput / 4),
                ("about one record per block", LIGHT_LOAD_PER_S),
            ):
                shown = latency(cluster, lighter, latency_s / 2).latencies_ms
                print(
                    f"    {lighter:6.0f} records/s ({name}): p50 {percentile(shown, 0.5):.1f} ms,"
                    f" p99 {percentile(shown, 0.99):.1f} ms",
                    flush=True,
                )
            failover_s, rejoin_s, propose_s = failover_and_restart(cluster)
            print(
                f"  proposer killed: next commit after {failover_s:.2f} s"
                f"   (target <= base propose timeout {propose_s:.1f} s + one round)\n"
                f"  killed node restarted: back in consensus after {rejoin_s:.2f} s"
                f"   (target <= 3 s)",
                flush=True,
            )
        finally:
            cluster.stop()
        blocks, rate_blocks = catch_up(root, 3.0 if args.smoke else args.catch_up_seconds)
        print(
            f"  catch-up: {blocks} blocks fetched and verified at {rate_blocks:.0f} blocks/s"
            f"   (target >= 2000)"
        )
    return 0


if __name__ == "__main__":
    with stop_on_signals():  # a SIGTERM or Ctrl-C stops the daemons it started
        sys.exit(main())
