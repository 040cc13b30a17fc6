"""Real party daemons with the MPC relay, and real worker processes, for tests and benchmarks.

`RelayCluster` makes a local consortium with the real `consortium init`
code, starts one party daemon per member (each its own process, running
`PartyDaemon` with `MpcRelayService` on its genesis port, real mTLS), and
runs a job as one worker process per rank (`python -m mpc_ledger.mpc.worker`).
With ``delay_ms`` (a number, 0 included) every daemon dials its peers through
a `proxy.ProxyMesh` on loopback, whose delay line holds every byte for that
long one way; `RelayCluster.set_delay` changes it between jobs (the relay's
long-lived links stay open).
Run ``python -m mpc_ledger.testing.mpc_cluster --config party.toml`` to start
one such daemon by hand (until `mpc-ledger party start` hosts the relay).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpc_ledger.daemon.parent import child_env, follow_parent
from mpc_ledger.daemon.processes import DaemonProcess
from mpc_ledger.identity.genesis import parse_endpoint
from mpc_ledger.mpc.relay import socket_path_for
from mpc_ledger.mpc.worker_command import WORKER_PROGRAM, worker_command
from mpc_ledger.testing.consortium import LocalConsortium, make_consortium
from mpc_ledger.testing.proxy import ProxyMesh

if TYPE_CHECKING:  # the worker module imports torch: the daemons this starts must not wait on it
    from mpc_ledger.mpc.worker import JobManifest

__all__ = ["JobRun", "RelayCluster", "WorkerProcess", "main"]

RELAY_DAEMON = [sys.executable, "-m", "mpc_ledger.testing.mpc_cluster"]


class _RelayDaemonProcess(DaemonProcess):
    """`DaemonProcess`, but started through this module's `main` (daemon + relay); it, too,
    dies with the test or benchmark that started it."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*RELAY_DAEMON, "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**child_env(), "PYTHONUNBUFFERED": "1"},
        )


@dataclasses.dataclass
class WorkerProcess:
    rank: int
    member: str
    process: subprocess.Popen[bytes]
    output: Path
    log_path: Path

    def result(self) -> dict[str, Any]:
        if not self.output.exists():
            return {"rank": self.rank, "error": f"no result (exit {self.process.returncode})"}
        document: dict[str, Any] = json.loads(self.output.read_text())
        return document

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclasses.dataclass
class JobRun:
    workers: list[WorkerProcess]
    wall_s: float

    @property
    def results(self) -> list[dict[str, Any]]:
        return [w.result() for w in self.workers]

    @property
    def exit_codes(self) -> list[int | None]:
        return [w.process.returncode for w in self.workers]

    def logs(self) -> str:
        return "\n".join(f"--- rank {w.rank} ({w.member}) ---\n{w.log()}" for w in self.workers)


class RelayCluster:
    """A local consortium whose daemons host the MPC relay; use as a context manager."""

    def __init__(
        self,
        root: Path,
        parties: str = "a,b",
        *,
        dealer: bool = True,
        delay_ms: float | None = None,
    ) -> None:
        self.root = Path(root)
        self.consortium: LocalConsortium = make_consortium(
            self.root / "consortium", parties, dealer=dealer
        )
        self.daemons: dict[str, DaemonProcess] = {}  # member id -> daemon with the relay
        self._jobs = 0
        self.mesh: ProxyMesh | None = None
        if delay_ms is not None:
            self.mesh = self._proxy_links(delay_ms)

    def _proxy_links(self, delay_ms: float) -> ProxyMesh:
        """Every daemon dials every peer through its own delay line (`[peers]` in its config)."""
        genesis = self.consortium.genesis
        listen = {}
        for member_id in self.consortium.ids:
            member = genesis.member(member_id)
            assert member is not None  # the consortium was made with these ids
            listen[member_id] = parse_endpoint(member.endpoint)
        mesh = ProxyMesh(listen, delay_ms=delay_ms)
        for member_id in self.consortium.ids:
            config = self.consortium.config(member_id)
            peers = "".join(f'{p} = "{a}"\n' for p, a in mesh.addresses_for(member_id).items())
            config.write_text(config.read_text() + "\n[peers]\n" + peers)
        return mesh

    def set_delay(self, delay_ms: float) -> None:
        """The one-way delay of every link from now on (a cluster made with ``delay_ms``)."""
        if self.mesh is None:
            raise RuntimeError("this cluster was made without delay lines (delay_ms=None)")
        self.mesh.set_delay(delay_ms)

    def start(self, members: Sequence[str] | None = None, timeout_s: float = 30) -> None:
        for member_id in members or self.consortium.ids:
            log_path = self.root / f"daemon-{member_id}.log"
            started: DaemonProcess = _RelayDaemonProcess(
                self.consortium.config(member_id), log_path
            )
            self.daemons[member_id] = started
        for member_id, daemon in self.daemons.items():
            party = self.consortium.party(member_id)
            daemon.wait_serving(party.listen_address, timeout_s)
            self._wait_socket(member_id, daemon, timeout_s)

    def _wait_socket(self, member_id: str, daemon: DaemonProcess, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.socket(member_id).exists():
            if daemon.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"relay of {member_id} did not start:\n{daemon.log()}")
            time.sleep(0.05)

    def socket(self, member_id: str) -> Path:
        return socket_path_for(self.consortium.party(member_id).config.data_dir)

    def stop(self) -> None:
        for daemon in self.daemons.values():
            daemon.stop()
        self.daemons.clear()
        if self.mesh is not None:
            self.mesh.close()
            self.mesh = None

    def __enter__(self) -> RelayCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def launch(
        self,
        manifest: JobManifest,
        *,
        worker_args: Sequence[str] = (),
        programs: Mapping[int, Sequence[str]] | None = None,
    ) -> list[WorkerProcess]:
        """Start one worker process per rank, each attached to its own member's relay.

        ``programs`` replaces the worker command (``python -m mpc_ledger.mpc.worker``)
        for some ranks, e.g. by a test double taking the same arguments.
        """
        self._jobs += 1
        folder = self.root / f"job-{self._jobs}-{manifest.job_id}"
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path = folder / "manifest.json"
        manifest.write(manifest_path)
        workers = []
        for rank, member_id in enumerate(manifest.members):
            output = folder / f"rank{rank}.json"
            log_path = folder / f"rank{rank}.log"
            command = [
                *worker_command(
                    manifest_path,
                    rank,
                    output,
                    socket_path=self.socket(member_id),
                    program=(programs or {}).get(rank, WORKER_PROGRAM),
                ),
                *worker_args,
            ]
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
            workers.append(WorkerProcess(rank, member_id, process, output, log_path))
        return workers

    def run(self, manifest: JobManifest, *, timeout_s: float = 120) -> JobRun:
        started = time.monotonic()
        workers = self.launch(manifest)
        wait_all(workers, timeout_s)
        return JobRun(workers, time.monotonic() - started)


def wait_all(workers: Sequence[WorkerProcess], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for worker in workers:
        try:
            worker.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in workers:
                if other.process.poll() is None:
                    other.process.kill()
                    other.process.wait()
            raise TimeoutError(f"job did not finish within {timeout_s}s") from None


def main(argv: list[str] | None = None) -> int:
    """Run one party daemon with the MPC relay until SIGTERM/SIGINT."""
    from mpc_ledger.daemon.server import PartyDaemon
    from mpc_ledger.identity.party import load_party
    from mpc_ledger.mpc.relay import MpcRelayService

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    party = load_party(args.config)
    party.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    daemon = PartyDaemon(party, services=[MpcRelayService()])
    daemon.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    follow_parent()  # SIGTERM (above: a clean stop) when the starter dies
    while not stop.wait(0.5):
        pass
    daemon.stop(0.5)
    return 0


@contextlib.contextmanager
def relay_cluster(
    root: Path, parties: str = "a,b", *, dealer: bool = True
) -> Iterator[RelayCluster]:
    cluster = RelayCluster(root, parties, dealer=dealer)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
