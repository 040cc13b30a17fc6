"""Prometheus metrics of one party daemon (`[metrics] listen = "host:port"` in party.toml).

Each daemon owns its registry (never the process-global one), so tests can
run several daemons in one process. Values are read from the parts at scrape
time where they already keep counts (ledger height, mempool, peers) and
observed as events happen where they do not (fsync and commit latency).
Nothing secret is exported: counts, sizes and durations only.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["DaemonMetrics"]

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_FSYNC_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.ledger_height = Gauge(
            "mpc_ledger_height", "Height of the newest committed block", registry=registry
        )
        self.ledger_records = Gauge(
            "mpc_ledger_log_size", "Records committed on the ledger", registry=registry
        )
        self.mempool_size = Gauge(
            "mpc_ledger_mempool_records", "Records waiting for a block", registry=registry
        )
        self.peers_connected = Gauge(
            "mpc_ledger_peers_connected", "Peers whose gossip stream is open", registry=registry
        )
        self.rounds_per_height = Histogram(
            "mpc_ledger_rounds_per_height",
            "Consensus rounds a height took (1 = decided in its first round)",
            buckets=(1, 2, 3, 4, 6, 8, 16),
            registry=registry,
        )
        self.commit_latency = Histogram(
            "mpc_ledger_commit_latency_seconds",
            "From a record's submission to this node until it committed",
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.fsync_latency = Histogram(
            "mpc_ledger_fsync_seconds",
            "Durable writes of the block store (one SQLite transaction, fsynced)",
            buckets=_FSYNC_BUCKETS_S,
            registry=registry,
        )
        self.records_rejected = Counter(
            "mpc_ledger_records_rejected",
            "Records refused, by refusal code (a closed set: mpc_ledger.ledger.refusals)",
            ["reason"],
            registry=registry,
        )
        self.commit_waiters = Gauge(
            "mpc_ledger_commit_waiters",
            "WaitCommitted calls waiting now (each is answered or forgotten at its timeout)",
            registry=registry,
        )
        # Kinds are the gossip message's oneof names (consensus, record, tip_height).
        self.gossip_dropped = Counter(
            "mpc_ledger_gossip_dropped",
            "Messages from peers dropped because the ledger loop's queue was full, by kind",
            ["kind"],
            registry=registry,
        )
        self.consensus_rejections = Counter(
            "mpc_ledger_consensus_rejections",
            "Consensus messages from peers refused, by reason (a closed set of codes)",
            ["reason"],
            registry=registry,
        )
        # Fed by `mpc_ledger.jobs.service.JobsService`: every known state, 0 when none.
        self.jobs = Gauge(
            "mpc_ledger_jobs", "Jobs on the ledger, by state", ["state"], registry=registry
        )
        self.mpc_bytes = Counter(
            "mpc_ledger_mpc_bytes", "MPC frame bytes relayed, by job", ["job"], registry=registry
        )
        self.mpc_frames = Counter(
            "mpc_ledger_mpc_frames", "MPC frames relayed, by job", ["job"], registry=registry
        )
        # Reasons are the relay's fixed codes (never a job id a peer chose): bounded labels.
        self.mpc_refused = Counter(
            "mpc_ledger_mpc_refused",
            "MPC frames and failure notices the relay refused or dropped, by reason",
            ["reason"],
            registry=registry,
        )
        # Fed by the job runner from its worker's transcript (epoch ends, job end).
        self.mpc_rounds = Gauge(
            "mpc_ledger_mpc_rounds",
            "MPC communication rounds this party's worker took part in, by job",
            ["job"],
            registry=registry,
        )
        # Fed by the job runner: the total from the ledger (`mpc_ledger.jobs.progress`: 0
        # until a PSI job's job_alignment commits), the steps from this party's worker.
        self.job_steps = Gauge(
            "mpc_ledger_job_steps",
            "Training steps of the job in all (0: not known yet), by job",
            ["job"],
            registry=registry,
        )
        self.job_step = Gauge(
            "mpc_ledger_job_step",
            "Training steps this party's worker has done, by job",
            ["job"],
            registry=registry,
        )
        self.job_progress = Gauge(
            "mpc_ledger_job_progress_ratio",
            "Training steps done of the job's total (0 while it is not known), by job",
            ["job"],
            registry=registry,
        )
        self._server: object | None = None

    def gauge_from(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """Read ``gauge``'s value from ``read`` at every scrape."""
        gauge.set_function(read)

    def serve(self, address: str) -> int:
        """Start the HTTP endpoint (`/metrics`) on ``address``; return the bound port."""
        host, _, port = address.rpartition(":")
        server, _thread = start_http_server(
            int(port), addr=host.strip("[]") or "127.0.0.1", registry=self.registry
        )
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server = None
