"""One CrypTen party of one job, as its own process: ``python -m mpc_ledger.mpc.worker``.

The worker reads a job manifest (JSON; the jobs layer will write it from the
ledger), installs the project's communicator into CrypTen, attaches to its
own party daemon's relay over the Unix socket, runs the program (or, at the
dealer's rank, the project's dealer loop, `mpc_ledger.mpc.dealer.serve`,
bounded by the program), and writes one JSON
result: the program's output, the communication statistics (the
communicator's own, always counted, `MpcCommunicator.transport_stats`, with
``wait_s``: the seconds spent blocked waiting for frames, so ``wall_s`` less
it is the party's own compute; over gloo CrypTen's, in its verbose mode), the
transcript snapshot, the tuple
provider used and, over the relay, ``traffic`` (`mpc_ledger.mpc.round_trips`):
``job`` (the whole job's sequential round trips, dealer round trips, frames,
bytes) and, for training at a data rank, ``training`` (the same from the
first training step to the end of the last epoch, in total and
``per_step``, with seconds and figures per peer); at party 0 and the dealer,
``dealer``: the dealer's answers streamed ahead and requested
(`mpc_ledger.mpc.dealer_offline`). It opens no port.

Manifest fields: ``job_id``; ``members`` (member id per rank: data parties
0..world_size-1, then the dealer when the provider is "dealer");
``world_size``; ``tuple_provider`` ("dealer" or "trusted-first-party");
``allow_trusted_first_party`` (false unless a local demo says so);
``peer_timeout_s``; ``program`` ({"name": "train", "spec": {...},
"data": {...}} or {"name": "conformance"}). ``data`` is
``{"source": "breast_cancer", ...}`` (tests, benchmarks) or
``{"source": "file", ...}``: this party's registered dataset, read through
the local catalogue and re-fingerprinted *before* CrypTen starts, so a
changed file fails the worker before anything is shared. The reader is the
jobs layer's (`mpc_ledger.jobs.worker_bridge.read_party_file`), passed in by
the program a party daemon runs, ``python -m mpc_ledger.jobs.worker_main``;
this module's own ``python -m mpc_ledger.mpc.worker`` reads no files. With
``data.alignment`` ({"method": "psi", "id_column", "row_counts",
"test_fraction"}) the data ranks first run the private set intersection
of their id columns over the same communicator (`mpc_ledger.mpc.psi`; the
dealer takes no part), keep only the intersection's rows, in its canonical
order, split them, and report an `Aligned` event (the intersection's size,
its split, the transcript after the PSI) before training; the training
spec's row counts are the intersection's. The
dealer's ``data`` is empty, or for a job aligned by PSI ``{"max_rows"}``:
the smallest dataset's row count, which bounds the intersection and so the
dealer's budget (`mpc_ledger.mpc.dealer.budget_for_program`).

``--events`` writes the typed events of `mpc_ledger.mpc.worker_events` to
stdout, one JSON line each, for the party daemon's job runner: `StepProgress`
during training, `EpochEnded` after each epoch (the transcript snapshot
taken at the epoch's end; the loss only when the job reveals it) and
`Finished` (the result without its output). ``--model-out
PATH`` (recipients) saves the revealed model there
(``torch.save`` of a name -> tensor dict, mode 0600, and its canonical encoding,
`mpc_ledger.mpc.model_codec`, beside it as ``.bin``) instead of putting it in
the result. With ``MPC_LEDGER_WORKER_PARENT=<pid>`` in its environment the
worker dies with that parent (Linux), so a crashed daemon leaves no worker.

Replays (`mpc_ledger.mpc.replay`, ``mpc-ledger audit replay``): ``--job-seed
PATH`` is the party's committed job seed (`mpc_ledger.mpc.job_seed`); every
random choice of the run is derived from it (CrypTen's seeds through
`crypten_compat.seed_crypten`, torch's, numpy's and Python's generators, the
PSI's). ``--inbound-log PATH --log-key KEY`` keeps every frame received in an
encrypted inbound log (`mpc_ledger.mpc.inbound_log`). ``--transport replay
--replay-log PATH --log-key KEY`` runs the same program with receives served
from that log and nothing on the network, keeping the digest of each channel
after the message counts ``--replay-watch`` (JSON: ``{"s->r": [counts]}``) names;
its result (also on failure: how far it got is the evidence) has them under
``replay.prefix_digests``.

``--transport gloo`` runs the same program on CrypTen's own torch.distributed
transport (benchmark baseline only; never between organisations).

Exit status: 0 done, 1 the job failed (the one-line reason is on stderr and
in the result file, and peers were told), 2 bad arguments or manifest.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpc_ledger.documents import parse_json
from mpc_ledger.mpc import crypten_compat
from mpc_ledger.mpc.communicator import (
    DEFAULT_PEER_TIMEOUT_S,
    PROVIDER_DEALER,
    PROVIDER_TRUSTED_FIRST_PARTY,
    CommunicatorSetup,
    FrameLink,
    MpcCommunicator,
    TorchDistributedShim,
)
from mpc_ledger.mpc.conformance import run_conformance
from mpc_ledger.mpc.dealer import DealerChannel, budget_for_program, serve
from mpc_ledger.mpc.errors import MpcError
from mpc_ledger.mpc.inbound_log import (
    InboundLogWriter,
    LoggingLink,
    ReplayLink,
    load_log_key,
    load_or_create_log_key,
    read_inbound_log,
)
from mpc_ledger.mpc.job_seed import SeededRandom, read_job_seed, seed_global_generators
from mpc_ledger.mpc.model_codec import encode_model
from mpc_ledger.mpc.replay import channel_key, parse_channel_key
from mpc_ledger.mpc.round_trips import TrafficCounts, training_report
from mpc_ledger.mpc.sample_data import breast_cancer_split, party_data
from mpc_ledger.mpc.snapshots import TranscriptSnapshot
from mpc_ledger.mpc.tables import FileReader, LocalTable, split_rows
from mpc_ledger.mpc.train_spec import PartyData, TrainSpec
from mpc_ledger.mpc.training import run_training
from mpc_ledger.mpc.worker_events import (
    Aligned,
    EpochEnded,
    Finished,
    StepProgress,
    WorkerEvent,
    encode,
)
from mpc_ledger.mpc.worker_link import RelayLink
from mpc_ledger.proto.v1 import mpc_pb2

__all__ = ["JobManifest", "build_parser", "load_manifest", "main"]

log = logging.getLogger("mpc_ledger.mpc.worker")


@dataclasses.dataclass(frozen=True)
class JobManifest:
    job_id: str
    members: tuple[str, ...]
    world_size: int
    tuple_provider: str = PROVIDER_DEALER
    allow_trusted_first_party: bool = False
    peer_timeout_s: float = DEFAULT_PEER_TIMEOUT_S
    program: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "conformance"})
    # The dealer's offline phase (`mpc_ledger.mpc.dealer_offline`): on unless a benchmark
    # measures the configuration before it (every request answered while the step waits).
    dealer_offline: bool = True

    def __post_init__(self) -> None:
        if self.tuple_provider not in (PROVIDER_DEALER, PROVIDER_TRUSTED_FIRST_PARTY):
            raise ValueError(
                f"tuple_provider {self.tuple_provider!r} is not dealer or trusted-first-party"
            )
        expected = self.world_size + (1 if self.tuple_provider == PROVIDER_DEALER else 0)
        if len(self.members) != expected:
            raise ValueError(
                f"members must name {expected} ranks (world_size {self.world_size}"
                f"{' + the dealer' if self.tuple_provider == PROVIDER_DEALER else ''})"
            )
        if self.peer_timeout_s <= 0:
            raise ValueError("peer_timeout_s must be positive")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")


def load_manifest(path: Path) -> JobManifest:
    raw = json.loads(Path(path).read_text())
    raw["members"] = tuple(raw["members"])
    return JobManifest(**raw)


def _hello(manifest: JobManifest, rank: int) -> mpc_pb2.WorkerHello:
    return mpc_pb2.WorkerHello(
        job_id=manifest.job_id,
        rank=rank,
        ranks=[mpc_pb2.RankMember(rank=r, member_id=m) for r, m in enumerate(manifest.members)],
        tuple_provider=manifest.tuple_provider,
    )


@dataclasses.dataclass(frozen=True)
class Recording:
    """What makes a run replayable (`mpc_ledger.mpc.replay`), or a replay itself.

    ``seed``: the committed job seed every random choice is derived from
    (`mpc_ledger.mpc.job_seed`; None: the OS's randomness, not replayable).
    ``log``: keep every frame received in this inbound log. ``replay``: serve
    receives from these logged frames instead of the relay (nothing reaches the
    network) and keep the digests ``watch`` asks for.
    """

    seed: bytes | None = None
    log: InboundLogWriter | None = None
    replay: tuple[mpc_pb2.MpcFrame, ...] | None = None
    watch: dict[tuple[int, int], tuple[int, ...]] = dataclasses.field(default_factory=dict)


def _link_factory(
    manifest: JobManifest, rank: int, socket_path: Path | None, recording: Recording
) -> Callable[[], FrameLink]:
    replayed = recording.replay
    if replayed is not None:
        return lambda: ReplayLink(replayed)
    assert socket_path is not None
    hello = _hello(manifest, rank)
    log = recording.log
    if log is None:
        return lambda: RelayLink(socket_path, hello)
    return lambda: LoggingLink(RelayLink(socket_path, hello), log)


def _setup_relay(
    manifest: JobManifest,
    rank: int,
    link_factory: Callable[[], FrameLink],
    communicator_class: type[MpcCommunicator],
    watch: dict[tuple[int, int], tuple[int, ...]],
) -> Any:
    crypten = crypten_compat.install_communicator(communicator_class, TorchDistributedShim())
    crypten_compat.set_tuple_provider(
        manifest.tuple_provider, offline_phase=manifest.dealer_offline
    )
    MpcCommunicator.configure(
        CommunicatorSetup(
            job_id=manifest.job_id,
            rank=rank,
            world_size=manifest.world_size,
            members=manifest.members,
            link_factory=link_factory,
            tuple_provider=manifest.tuple_provider,
            allow_trusted_first_party=manifest.allow_trusted_first_party,
            peer_timeout_s=manifest.peer_timeout_s,
            watch=watch,
        )
    )
    return crypten


def _setup_gloo(manifest: JobManifest, rank: int, rendezvous: str) -> Any:
    total = manifest.world_size
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(total),
            "RENDEZVOUS": rendezvous,
            "DISTRIBUTED_BACKEND": "gloo",
        }
    )
    crypten = crypten_compat.import_crypten()
    crypten_compat.install_legacy_onnx_export()
    crypten_compat.set_tuple_provider(manifest.tuple_provider)
    crypten.cfg.communicator.verbose = True  # gloo counts rounds and bytes only then
    return crypten


Emit = Callable[[WorkerEvent], None]


def _no_events(_event: WorkerEvent) -> None:
    pass


def _load_data(
    manifest: JobManifest, rank: int, read_file: FileReader | None
) -> PartyData | LocalTable | None:
    """This data party's part of the data, read (and, from a file, re-fingerprinted) before
    CrypTen starts: a party whose data changed fails before it shares anything. A job
    aligned by PSI gets the whole table (`LocalTable`), cut after the intersection."""
    program = manifest.program
    if program.get("name") != "train" or rank >= manifest.world_size:
        return None
    spec = TrainSpec.from_json(program["spec"])
    data_spec = program.get("data", {"source": "breast_cancer"})
    source = data_spec.get("source")
    if source == "breast_cancer":
        full = breast_cancer_split(seed=int(data_spec.get("seed", 0)), rows=data_spec.get("rows"))
        return party_data(spec, rank, full)
    if source == "file":
        if read_file is None:
            raise ValueError(
                "this worker program reads no party files: a party daemon's jobs run "
                "`python -m mpc_ledger.jobs.worker_main`"
            )
        return read_file(data_spec, spec, rank)
    raise ValueError(f"unknown data source {source!r}")


def _align(
    manifest: JobManifest,
    rank: int,
    spec: TrainSpec,
    table: LocalTable,
    emit: Emit,
    seed: bytes | None,
) -> tuple[TrainSpec, PartyData]:
    """The private set intersection, then this party's rows of it, in canonical order."""
    from mpc_ledger.mpc.psi import CommunicatorTransport, encode_ids, intersect

    alignment = manifest.program["data"]["alignment"]
    communicator = MpcCommunicator.instance
    assert communicator is not None
    result = intersect(
        encode_ids(table.ids, str(alignment["id_column"])),
        rank=rank,
        parties=manifest.world_size,
        job_id=manifest.job_id.encode(),
        transport=CommunicatorTransport(communicator),
        set_sizes=[int(n) for n in alignment["row_counts"]],
        describe=lambda r: f"party {manifest.members[r]} (rank {r})",
        rng=SeededRandom(seed, "psi") if seed is not None else None,
    )
    train, test = split_rows(result.size, float(alignment["test_fraction"]))
    if train < 1 or test < 1:
        raise ValueError(
            f"the parties' datasets have {result.size} ids in common: too few to train "
            f"and test on ({train} training and {test} test rows)"
        )
    emit(
        Aligned(
            method="psi",
            intersection_size=result.size,
            train_rows=train,
            test_rows=test,
            transcript=communicator.snapshot("psi"),
        )
    )
    spec = dataclasses.replace(spec, train_rows_per_rank=(train,), test_rows_per_rank=(test,))
    return spec, table.party_data(result.rows, train, pooled=spec.standardisation == "pooled")


class _TrainingWindow:
    """This party's round trips, frames and bytes from the start of the first training step
    to the end of the last epoch (set-up, alignment and evaluation excluded): the result's
    ``traffic.training`` (`round_trips.training_report`), and the same from the start of the
    second step (``after_first_step``: the steady state, once the dealer's offline phase has
    had its planning step). Relay transport only."""

    def __init__(self) -> None:
        self._starts: list[tuple[TrafficCounts, float]] = []
        self.report: dict[str, Any] | None = None

    def step_starts(self, step: int) -> None:
        communicator = MpcCommunicator.instance
        if communicator is not None and step <= 2 and len(self._starts) == step - 1:
            self._starts.append((communicator.traffic.snapshot(), time.perf_counter()))

    def stop(self, steps: int) -> None:
        communicator = MpcCommunicator.instance
        if communicator is None or not self._starts:
            return
        end, ended = communicator.traffic.snapshot(), time.perf_counter()
        name_of = communicator.setup.member_of
        windows = [
            training_report(counts, end, steps=steps - i, seconds=ended - started, name_of=name_of)
            for i, (counts, started) in enumerate(self._starts)
        ]
        self.report = windows[0]
        if len(windows) > 1:
            self.report["after_first_step"] = windows[1]


def _run_program(
    crypten: Any,
    manifest: JobManifest,
    rank: int,
    data: PartyData | LocalTable | None,
    emit: Emit,
    window: _TrainingWindow,
    seed: bytes | None,
    step_parts: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    program = manifest.program
    name = program.get("name")
    if name == "conformance":
        return run_conformance(crypten, rank, manifest.world_size)
    if name == "train":
        assert data is not None  # _load_data ran first
        spec = TrainSpec.from_json(program["spec"])
        if not isinstance(data, PartyData):  # a whole table: aligned by PSI first
            spec, data = _align(manifest, rank, spec, data, emit, seed)

        def on_step(report: dict[str, Any]) -> None:
            emit(StepProgress(report["epoch"], report["step"], report["elapsed_s"]))

        def on_epoch(report: dict[str, Any]) -> None:
            if report["epoch"] == spec.epochs:
                window.stop(int(report["step"]))
            communicator = MpcCommunicator.instance
            label = f"epoch-{report['epoch']}"
            emit(
                EpochEnded(
                    epoch=report["epoch"],
                    step=report["step"],
                    elapsed_s=report["elapsed_s"],
                    transcript=communicator.snapshot(label) if communicator is not None else None,
                    loss=report.get("loss"),
                )
            )

        return run_training(
            crypten,
            spec,
            rank,
            manifest.world_size,
            data,
            on_step=on_step,
            on_epoch=on_epoch,
            on_step_start=window.step_starts,
            on_step_part=step_parts,
        )
    raise ValueError(f"unknown program {name!r}")


def _communicator_stats(crypten: Any) -> dict[str, Any]:
    """Our own always-on counts over the relay; CrypTen's (verbose mode) over gloo."""
    communicator = crypten.communicator.get()
    if isinstance(communicator, MpcCommunicator):
        return communicator.transport_stats()
    stats = communicator.get_communication_stats()
    return {
        "rounds": int(stats["rounds"]),
        "bytes": int(stats["bytes"]),
        "time_s": float(stats["time"]),
    }


def run(
    manifest: JobManifest,
    rank: int,
    *,
    transport: str,
    socket_path: Path | None,
    rendezvous: str | None,
    communicator_class: type[MpcCommunicator] = MpcCommunicator,
    emit: Emit = _no_events,
    read_file: FileReader | None = None,
    recording: Recording | None = None,
    step_parts: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    recording = recording or Recording()
    if recording.seed is not None:
        seed_global_generators(recording.seed)
        crypten_compat.seed_crypten(recording.seed)
    data = _load_data(manifest, rank, read_file)
    if transport in ("relay", "replay"):
        factory = _link_factory(manifest, rank, socket_path, recording)
        crypten = _setup_relay(manifest, rank, factory, communicator_class, recording.watch)
    else:
        assert rendezvous is not None
        crypten = _setup_gloo(manifest, rank, rendezvous)
    result: dict[str, Any] = {
        "job_id": manifest.job_id,
        "rank": rank,
        "member": manifest.members[rank],
        "transport": transport,
        "tuple_provider": manifest.tuple_provider,
        "trusted_first_party_allowed": manifest.allow_trusted_first_party,
    }
    if rank == manifest.world_size:
        generate = crypten_compat.start_dealer()
        budget = budget_for_program(manifest.program)
        channel = DealerChannel(crypten.communicator.get(), manifest.members[0])
        session = serve(channel, generate, budget)  # returns when party 0 says "terminate"
        result["output"] = None
        result["dealer"] = {
            "requests": budget.requests,
            "elements": budget.elements,
            "streamed": session.streamed,
            "plans": session.plans,
        }
    else:
        crypten.init()
        window = _TrainingWindow()
        result["output"] = _run_program(
            crypten, manifest, rank, data, emit, window, recording.seed, step_parts
        )
        if window.report is not None:
            result["traffic"] = {"training": window.report}
        offline = crypten_compat.finish_dealer_offline()  # party 0: streamed/requested counts
        if offline is not None:
            result["dealer"] = offline
    result["communication"] = _communicator_stats(crypten)
    if transport in ("relay", "replay"):
        communicator = MpcCommunicator.instance
        assert communicator is not None
        communicator.release_dealer()
        result.setdefault("traffic", {})["job"] = communicator.traffic.snapshot().totals()
        result["transcript"] = communicator.snapshot("job-end").to_json()
        if transport == "replay":
            result["replay"] = _replay_report(communicator)
    crypten.uninit()
    result["wall_s"] = time.perf_counter() - started
    return result


def _replay_report(communicator: MpcCommunicator | None) -> dict[str, Any]:
    """The digests a replay kept (`Transcript.watch`), by channel ("s->r") and count."""
    digests = communicator.transcript.prefix_digests() if communicator is not None else {}
    return {
        "prefix_digests": {
            channel_key(*key): {str(count): digest for count, digest in sorted(values.items())}
            for key, values in sorted(digests.items())
        }
    }


def _abort(reason: str) -> None:
    communicator = MpcCommunicator.instance
    if communicator is not None:
        try:
            communicator.close(abort_reason=reason)
        except Exception:
            log.debug("abort notice failed", exc_info=True)
        MpcCommunicator.instance = None


def build_parser() -> argparse.ArgumentParser:
    """The flags `mpc_ledger.mpc.worker_command.worker_command` writes."""
    parser = argparse.ArgumentParser(
        prog="python -m mpc_ledger.mpc.worker", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True, help="where to write the JSON result")
    parser.add_argument("--socket", type=Path, help="the party daemon's MPC relay socket")
    parser.add_argument("--transport", choices=("relay", "gloo", "replay"), default="relay")
    parser.add_argument("--rendezvous", help="gloo only: file:///path shared by the parties")
    parser.add_argument("--events", action="store_true", help="JSON lines on stdout")
    parser.add_argument("--model-out", type=Path, help="recipients: save the model here")
    parser.add_argument("--job-seed", type=Path, help="the committed job seed (32 bytes, 0600)")
    parser.add_argument("--inbound-log", type=Path, help="keep every frame received here")
    parser.add_argument("--log-key", type=Path, help="the party's inbound-log key (0600)")
    parser.add_argument(
        "--replay-log", type=Path, help="replay: serve receives from this inbound log"
    )
    parser.add_argument(
        "--replay-watch", type=Path, help="replay: the channel counts whose digests to keep (JSON)"
    )
    return parser


def main(
    argv: list[str] | None = None,
    *,
    communicator_class: type[MpcCommunicator] = MpcCommunicator,
    read_file: FileReader | None = None,
    step_parts: Callable[[str], None] | None = None,
) -> int:
    """The worker's command line; ``communicator_class`` lets tests run a dishonest double,
    ``read_file`` reads a party's registered file (the jobs layer's, `jobs.worker_main`),
    ``step_parts`` hears each training step's parts end (a benchmark's counters,
    `training.STEP_PARTS`)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _die_with_parent()
    emit = _print_event if args.events else _no_events
    try:
        manifest = load_manifest(args.manifest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {args.manifest}: invalid job manifest: {exc}", file=sys.stderr)
        return 2
    if not 0 <= args.rank < len(manifest.members):
        print(
            f"error: --rank {args.rank} is not a rank of the job (0..{len(manifest.members) - 1})",
            file=sys.stderr,
        )
        return 2
    if args.transport == "relay" and args.socket is None:
        print("error: --socket is required with the relay transport", file=sys.stderr)
        return 2
    try:
        recording = _recording(args, manifest)
    except (OSError, ValueError, MpcError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run(
            manifest,
            args.rank,
            transport=args.transport,
            socket_path=args.socket,
            rendezvous=args.rendezvous,
            communicator_class=communicator_class,
            emit=emit,
            read_file=read_file,
            recording=recording,
            step_parts=step_parts,
        )
        if args.model_out is not None:
            _save_model(result, args.model_out)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, MpcError) else f"{type(exc).__name__}: {exc}"
        failure: dict[str, Any] = {
            "rank": args.rank,
            "error": reason,
            "error_type": type(exc).__name__,
        }
        if args.transport == "replay":  # how far the replay got is the verdict's evidence
            failure["replay"] = _replay_report(MpcCommunicator.instance)
        _abort(reason)
        _close_log(recording)
        _write(args.output, failure)
        if not isinstance(exc, MpcError):
            traceback.print_exc()
        print(f"error: rank {args.rank}: {reason}", file=sys.stderr)
        return 1
    _close_log(recording)
    _write(args.output, result)
    emit(_finished(result))
    return 0


def _recording(args: argparse.Namespace, manifest: JobManifest) -> Recording:
    """The seed, the inbound log or the replay the flags ask for; ValueError if they do
    not fit together."""
    if (args.inbound_log is not None or args.replay_log is not None) and args.log_key is None:
        raise ValueError("--inbound-log and --replay-log need --log-key")
    if (args.transport == "replay") != (args.replay_log is not None):
        raise ValueError("--transport replay and --replay-log go together")
    seed = read_job_seed(args.job_seed) if args.job_seed is not None else None
    member = manifest.members[args.rank]
    if args.replay_log is not None:
        key = load_log_key(args.log_key)
        frames = read_inbound_log(
            args.replay_log, key, job_id=manifest.job_id, rank=args.rank, member=member
        )
        watch: dict[tuple[int, int], tuple[int, ...]] = {}
        if args.replay_watch is not None:
            raw = parse_json(args.replay_watch.read_text())
            watch = {
                parse_channel_key(key): tuple(int(n) for n in counts) for key, counts in raw.items()
            }
        return Recording(seed=seed, replay=tuple(frames), watch=watch)
    log = None
    if args.inbound_log is not None:
        key = load_or_create_log_key(args.log_key)
        log = InboundLogWriter(
            args.inbound_log, key, job_id=manifest.job_id, rank=args.rank, member=member
        )
    return Recording(seed=seed, log=log)


def _close_log(recording: Recording) -> None:
    if recording.log is not None:
        recording.log.close()


def _finished(result: dict[str, Any]) -> Finished:
    """The result event: `run`'s result but its output."""
    transcript = result.get("transcript")
    return Finished(
        job_id=result["job_id"],
        rank=result["rank"],
        member=result["member"],
        transport=result["transport"],
        tuple_provider=result["tuple_provider"],
        trusted_first_party_allowed=result["trusted_first_party_allowed"],
        communication=result["communication"],
        wall_s=result["wall_s"],
        transcript=TranscriptSnapshot.from_json(transcript) if transcript is not None else None,
        dealer=result.get("dealer"),
    )


def _print_event(event: WorkerEvent) -> None:
    sys.stdout.write(encode(event) + "\n")
    sys.stdout.flush()


def _save_model(result: dict[str, Any], path: Path) -> None:
    """Move a recipient's plaintext model out of the result into ``path`` (0600)."""
    output = result.get("output")
    if not isinstance(output, dict) or output.get("model") is None:
        return
    import torch

    parameters = output.pop("model")
    model = {name: torch.tensor(values) for name, values in parameters.items()}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        torch.save(model, handle)
    # Beside it, the canonical encoding the ledger's model hash covers: what Jobs/Result
    # serves, so a recipient checks it against the ledger and never unpickles a download.
    fd = os.open(path.with_suffix(".bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        for part in encode_model(parameters):
            handle.write(part)
    output["model_path"] = str(path)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Get SIGKILL when the party daemon that started us dies (Linux)."""
    parent = os.environ.get("MPC_LEDGER_WORKER_PARENT")
    if not parent:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # it died before the call above
        os._exit(1)


def _write(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
