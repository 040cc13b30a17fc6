"""`mpc-ledger audit replay JOB_ID`: re-execute this party's side of a job and judge it.

    mpc-ledger audit replay JOB_ID --config party.toml [--format text|json] [--no-record]
                            [--export LEDGER_EXPORT]

Theory of operation (the checks are `mpc_ledger.mpc.replay`'s; this is the
shell around them, in this order, each failure a refusal with its reason):

1. The party's own ledger, exported from its daemon (or an export given with
   ``--export``: then nothing touches the network and nothing is recorded) and
   verified offline like any export (`mpc_ledger.verify`): the job's records
   come from there.
2. The job completed; this member holds a rank in it.
3. The job seed in the job folder is the one this member committed in its
   ``job_started`` (`mpc_ledger.mpc.job_seed.seed_commitment`).
4. A data owner's registered dataset still has its committed fingerprint.
5. The inbound log decrypts and authenticates chunk by chunk (a changed byte,
   a dropped or truncated chunk: refused), and reproduces every digest this
   party recorded on the ledger as received.
6. The worker runs again in a process of its own (`--transport replay`): the
   same program, the committed seed, the registered data, receives served
   from the log, nothing on the network. It keeps its outbound digests at
   every count a receiving party recorded a checkpoint.
7. The verdict (`replay.judge`): correct, or deviated at the first
   checkpoint where what the honest program sends differs from what the
   receiver recorded. It is printed and (unless ``--no-record``) written to
   the ledger as a ``replay_verdict`` signed by this member.

Exit codes as `verify`'s: 0 the replay matched, 1 it deviated or a check
refused the evidence (the reason says which), 2 bad input (no such job, files
missing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpc_ledger.documents import parse_json
from mpc_ledger.errors import UserError
from mpc_ledger.identity.party import Party, load_party
from mpc_ledger.jobs.data_check import DataCheckFailed, recheck_dataset
from mpc_ledger.jobs.job_folder import job_folder, log_key_path, replay_files
from mpc_ledger.jobs.job_run import JOB_WORKER_PROGRAM
from mpc_ledger.mpc.job_seed import JobSeedError, read_job_seed, seed_commitment
from mpc_ledger.mpc.replay import (
    ReplayTargets,
    ReplayVerdict,
    channel_key,
    inbound_problems,
    judge,
    parse_channel_key,
)
from mpc_ledger.mpc.worker_command import worker_command
from mpc_ledger.verify.job_view import JobView
from mpc_ledger.verify.replay_targets import replay_targets

if TYPE_CHECKING:  # the network code is imported where a daemon is called
    from mpc_ledger.ledger.client import LedgerClient

__all__ = ["register"]

REPLAY_TIMEOUT_S = 6 * 3600.0


def register(groups: Any) -> None:
    audit = groups.add_parser(
        "audit", help="prove after the fact that a party ran the agreed program"
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    replay = commands.add_parser(
        "replay",
        help="re-execute this party's side of a job from its committed seed, data and "
        "inbound log, and check every message it sent",
        description="Re-run this party's worker for JOB_ID offline and check every frame "
        "it sent against the digests the receiving parties recorded on the ledger. "
        "Exit 0 when it ran the agreed program, 1 when it deviated or the evidence was "
        "refused, 2 on bad input.",
    )
    replay.add_argument("job_id", metavar="JOB_ID", help="the job id (hex, a prefix will do)")
    replay.add_argument("--config", required=True, type=Path, help="party.toml")
    replay.add_argument("--format", choices=("text", "json"), default="text")
    replay.add_argument(
        "--no-record",
        action="store_true",
        help="print the verdict only; do not write it to the ledger",
    )
    replay.add_argument(
        "--export",
        type=Path,
        metavar="LEDGER_EXPORT",
        help="read the job's records from this export (`ledger export`) instead of the "
        "party's daemon: no network at all (implies --no-record)",
    )
    replay.set_defaults(handler=replay_command)


class Refused(Exception):
    """The evidence for a replay does not hold (exit 1); the message says what and where."""


@dataclass
class _Subject:
    """The party replayed, in the job, with what the ledger says of it."""

    view: JobView
    rank: int
    member: str
    role: str
    dataset_id: str
    fingerprint: bytes
    commitment: bytes

    def name(self, rank: int) -> str:
        return f"{self.view.member_of(rank)}"


def _say(text: str) -> None:
    print(f"replay: {text}", file=sys.stderr, flush=True)


def _ledger_job(party: Party, job_id: str, scratch: Path, export: Path | None) -> JobView:
    """The job's view from this party's own ledger (or ``export``), verified offline."""
    from mpc_ledger.verify import verify_export

    if export is None:
        export = scratch / "ledger.export"
        _export_own_ledger(party, export)
    report = verify_export(export, party.genesis, job_id=job_id)
    # A deviation found by an earlier replay is a `jobs` failure, and no reason not to
    # replay again; anything else means the records themselves cannot be trusted.
    broken = [f for f in report.failures if f.check != "jobs"]
    if broken:
        first = broken[0]
        raise Refused(
            f"the ledger does not verify ({len(broken)} failures; first: {first.check}: "
            f"{first.message}): its checkpoints cannot be trusted"
        )
    views: list[JobView] = [
        v for v in report.job_views.values() if v.job_id.hex().startswith(job_id.lower())
    ]
    if not views:
        raise UserError(f"no job {job_id!r} on this party's ledger", field="JOB_ID")
    if len(views) > 1:
        raise UserError(f"{job_id!r} names {len(views)} jobs: give more digits", field="JOB_ID")
    return views[0]


def _export_own_ledger(party: Party, export: Path) -> None:
    from mpc_ledger.cli._daemon_call import call_party_daemon
    from mpc_ledger.cli.compliance import paged_blocks
    from mpc_ledger.verify.export import write_export

    def action(client: LedgerClient) -> int:
        tip = int(client.tip().height)
        write_export(
            export,
            paged_blocks(client, 1, tip),
            genesis_json=party.config.genesis_path.read_bytes(),
            chain_id=party.genesis.chain_id,
            from_height=1,
            to_height=tip,
            exporter_id=party.identity.member.id,
            created_ms=int(time.time() * 1000),
        )
        return 0

    if call_party_daemon(party, action) != 0:
        raise UserError("cannot read this party's ledger from its daemon (or give --export FILE)")


def _subject(view: JobView, member: str) -> _Subject:
    if view.status != "completed":
        raise Refused(f"job {view.short} is {view.status}: only a completed job is replayed")
    party = next((p for p in view.parties if p.member == member), None)
    if party is None:
        raise UserError(f"{member!r} holds no rank in job {view.short}", field="--config")
    start = next((s for s in view.starts if s.member == member and not s.refused), None)
    if start is None:
        raise Refused(f"{member!r} wrote no job_started for job {view.short}")
    if not start.seed_commitment:
        raise Refused(
            f"{member!r} started job {view.short} without committing a job seed "
            "(a daemon older than replays): it cannot be replayed"
        )
    return _Subject(
        view,
        party.rank,
        member,
        party.role,
        party.dataset_id,
        start.fingerprint,
        start.seed_commitment,
    )


def _check_seed(subject: _Subject, seed_path: Path, chain_id: bytes) -> None:
    try:
        seed = read_job_seed(seed_path)
    except JobSeedError as exc:
        raise Refused(str(exc)) from None
    if seed_commitment(chain_id, subject.view.job_id, subject.member, seed) != subject.commitment:
        raise Refused(
            f"{seed_path}: this seed is not the one {subject.member} committed in its "
            f"job_started ({subject.commitment.hex()[:16]}…)"
        )


def _check_data(subject: _Subject, data_dir: Path) -> None:
    if subject.role != "data":
        return
    try:
        recheck_dataset(data_dir, subject.dataset_id, subject.fingerprint)
    except DataCheckFailed as exc:
        raise Refused(f"the data the job ran on is not here: {exc.reason}") from None


def _check_log(subject: _Subject, targets: ReplayTargets, log: Path, key_path: Path) -> int:
    """The log's frames agree with what the party recorded as received; how many frames."""
    # here, not at the top: it imports torch, which no other command of the CLI needs
    from mpc_ledger.mpc.inbound_log import (
        InboundLogError,
        inbound_prefix_digests,
        load_log_key,
        read_inbound_log,
    )

    job_text = subject.view.job_id.hex()
    try:
        key = load_log_key(key_path)
        frames = read_inbound_log(
            log, key, job_id=job_text, rank=subject.rank, member=subject.member
        )
    except InboundLogError as exc:
        raise Refused(str(exc)) from None
    digests = inbound_prefix_digests(frames, subject.rank, job_text, targets.inbound_watch())
    problems = inbound_problems(targets, digests)
    if problems:
        raise Refused(
            f"{log}: the inbound log is not what this party recorded as received: "
            + "; ".join(problems[:3])
        )
    return len(frames)


def _run_worker(subject: _Subject, party: Party, scratch: Path, targets: ReplayTargets) -> Any:
    folder = job_folder(party.config.data_dir, subject.view.job_id)
    files = replay_files(folder, subject.rank)
    watch_path = scratch / "watch.json"
    watch_path.write_text(
        json.dumps({channel_key(*k): list(v) for k, v in targets.watch().items()})
    )
    output = scratch / "replay-result.json"
    command = worker_command(
        files.manifest,
        subject.rank,
        output,
        replay_log=files.inbound_log,
        replay_watch=watch_path,
        job_seed=files.seed,
        log_key=log_key_path(party.config.data_dir),
        program=JOB_WORKER_PROGRAM,
    )
    started = time.monotonic()
    log_path = scratch / "replay-worker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while True:
            try:
                process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed > REPLAY_TIMEOUT_S:
                    process.kill()
                    raise Refused(f"the replay ran longer than {REPLAY_TIMEOUT_S:g}s") from None
                _say(f"still replaying ({elapsed:.0f}s)")
    try:
        result = parse_json(output.read_text())
    except (OSError, ValueError):
        tail = log_path.read_text()[-800:]
        raise Refused(
            f"the replay worker wrote no result (exit {process.returncode}): {tail}"
        ) from None
    return result, time.monotonic() - started


def _digests(result: dict[str, Any]) -> dict[tuple[int, int], dict[int, str]]:
    raw = (result.get("replay") or {}).get("prefix_digests") or {}
    return {
        parse_channel_key(key): {int(count): str(d) for count, d in values.items()}
        for key, values in raw.items()
    }


def _verdict_text(subject: _Subject, verdict: ReplayVerdict) -> str:
    who = f"{subject.member} (rank {subject.rank})"
    if not verdict.correct:
        return f"{who} deviated: {verdict.detail}"
    receivers = {s_r[1] for s_r in ((c[0], c[1]) for c in verdict.channels_checked)}
    data = (
        f"on dataset {subject.dataset_id} (fingerprint {subject.fingerprint.hex()[:16]}…) "
        if subject.role == "data"
        else "as the dealer "
    )
    return (
        f"{who} ran the agreed program {data}with the committed seed: every one of "
        f"{verdict.frames_checked} frames sent to {len(receivers)} parties matches"
    )


def _record(party: Party, subject: _Subject, verdict: ReplayVerdict) -> str:
    """Write the verdict to the ledger, signed by this member; the record id."""
    from mpc_ledger.cli._daemon_call import call_party_daemon
    from mpc_ledger.proto.v1 import jobs_pb2

    message = jobs_pb2.ReplayVerdict(
        job_id=subject.view.job_id,
        rank=subject.rank,
        member=subject.member,
        verdict="correct" if verdict.correct else "deviated",
        detail=verdict.detail[:500],
        seed_commitment=subject.commitment,
        dataset_fingerprint=subject.fingerprint,
        frames_checked=verdict.frames_checked,
        channels_checked=[
            jobs_pb2.ChannelDigest(
                sender_rank=s, receiver_rank=r, digest=bytes.fromhex(d), messages=m
            )
            for s, r, m, d in verdict.channels_checked
        ],
    )
    committed: dict[str, Any] = {}

    def action(client: LedgerClient) -> int:
        reply = client.submit(client.sign(replay_verdict=message))
        if not reply.accepted:
            raise Refused(f"the ledger refused the verdict: {reply.reason}")
        where = client.wait_committed(reply.record_id)
        if not where.committed:
            raise Refused(f"verdict {reply.record_id.hex()} accepted but not committed yet")
        committed["id"] = reply.record_id.hex()
        return 0

    if call_party_daemon(party, action) != 0:
        raise Refused("the verdict could not be written: the daemon did not answer")
    return str(committed["id"])


def replay_command(args: argparse.Namespace) -> int:
    party = load_party(args.config)
    member = party.identity.member.id
    try:
        with tempfile.TemporaryDirectory(prefix="mpc-ledger-replay-") as scratch_name:
            scratch = Path(scratch_name)
            _say(f"reading job {args.job_id} from this party's ledger")
            view = _ledger_job(party, args.job_id, scratch, args.export)
            subject = _subject(view, member)
            files = replay_files(job_folder(party.config.data_dir, view.job_id), subject.rank)
            for path in (files.manifest, files.inbound_log, files.seed):
                if not path.exists():
                    raise UserError(
                        f"this party's job folder has no {path.name}: the job did not run "
                        "here, or not with a daemon that keeps replays",
                        path=path,
                    )
            targets = replay_targets(view, subject.rank)
            _check_seed(subject, files.seed, party.genesis.chain_id)
            _check_data(subject, party.config.data_dir)
            key_path = log_key_path(party.config.data_dir)
            received = _check_log(subject, targets, files.inbound_log, key_path)
            _say(f"inbound log verified ({received} frames); re-running rank {subject.rank}")
            result, seconds = _run_worker(subject, party, scratch, targets)
        verdict = judge(
            targets, _digests(result), stopped=result.get("error"), describe=subject.name
        )
        offline = args.no_record or args.export is not None
        record_id = None if offline else _record(party, subject, verdict)
    except Refused as exc:
        return _refused(args, str(exc))
    text = _verdict_text(subject, verdict)
    if args.format == "json":
        document = {
            "job_id": view.job_id.hex(),
            "member": subject.member,
            "rank": subject.rank,
            "verdict": "correct" if verdict.correct else "deviated",
            "frames_received": received,
            "replay_seconds": round(seconds, 3),
            "record_id": record_id,
            **verdict.to_json(),
            "summary": text,
        }
        print(json.dumps(document, indent=2))
    else:
        print(text)
        if record_id is not None:
            print(f"verdict recorded on the ledger: record {record_id}")
    return 0 if verdict.correct else 1


def _refused(args: argparse.Namespace, reason: str) -> int:
    if args.format == "json":
        print(json.dumps({"verdict": "refused", "reason": reason}, indent=2))
    print(f"mpc-ledger: replay refused: {reason}", file=sys.stderr)
    return 1
