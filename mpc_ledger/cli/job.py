"""`mpc-ledger job ...`: a scientist's jobs, as the user (profile from `user keygen`).

Every command talks to the user's own member's daemon over mTLS as the user
(`mpc_ledger.client.UserClient`); `submit` signs the job with the user's key.
`watch`'s last line, `show` and `list --format json` give a completed job's test
metrics (`mpc_ledger.mpc.evaluation`); `result` writes the model file
(`mpc_ledger.mpc.model_file`) that `mpc-ledger model predict` applies.
`--profile DIR` defaults to the environment variable MPC_LEDGER_PROFILE.
`watch` shows the job's phase where a bar would say nothing (before its total
is known: a PSI job's, until its alignment commits), then a bar and an ETA;
`list` a running job's progress as the ledger has it (per committed epoch).

Exit codes: 0 success; 1 the operation failed (the ledger refused the job, a
daemon refused or did not answer, `watch` saw the job aborted or rejected);
2 bad input (an invalid spec: every problem with its field).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpc_ledger.cli._daemon_call import call_daemon, fail
from mpc_ledger.client import JobError, JobProgress, JobSummary, UserClient, job_id_bytes
from mpc_ledger.errors import UserError
from mpc_ledger.jobs.progress import PHASE_TRAINING
from mpc_ledger.jobs.spec import load_job_spec

__all__ = ["register"]

PROFILE_ENV = "MPC_LEDGER_PROFILE"
_BAR = 24


def register(groups: Any) -> None:
    job = groups.add_parser("job", help="(scientist) submit, watch and fetch jobs")
    commands = job.add_subparsers(dest="job_command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, *, formats: bool = False) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument(
            "--profile",
            type=Path,
            default=os.environ.get(PROFILE_ENV) or None,
            help=f"your user profile folder (`user keygen`; default: ${PROFILE_ENV})",
        )
        if formats:
            parser.add_argument("--format", choices=("text", "json"), default="text")
        return parser

    submit = command("submit", "sign a job spec (TOML) with your key and submit it")
    submit.add_argument("spec", type=Path, metavar="JOB_TOML")
    submit.set_defaults(handler=submit_command)
    listing = command("list", "every job on the ledger and its state", formats=True)
    listing.set_defaults(handler=list_command)
    watch = command("watch", "live progress until the job ends (exit 1 if it did not complete)")
    watch.add_argument("job_id", metavar="JOB_ID")
    watch.set_defaults(handler=watch_command)
    result = command(
        "result", "(recipients) fetch the trained model file (safetensors; see `model predict`)"
    )
    result.add_argument("job_id", metavar="JOB_ID")
    result.add_argument(
        "-o", "--out", type=Path, required=True, help="file to write (0600), e.g. model.safetensors"
    )
    result.set_defaults(handler=result_command)
    show = command("show", "the job's whole record trail", formats=True)
    show.add_argument("job_id", metavar="JOB_ID")
    show.set_defaults(handler=show_command)


def _run(args: argparse.Namespace, action: Callable[[UserClient], int]) -> int:
    if args.profile is None:
        raise UserError(f"give --profile DIR or set {PROFILE_ENV}", field="--profile")
    client = UserClient.from_profile(args.profile)

    def guarded(opened: UserClient) -> int:
        try:
            return action(opened)
        except JobError as exc:
            return fail(str(exc))

    def unanswered(reason: str) -> str:
        return f"{client.profile.member.id}'s daemon refused or did not answer ({reason})"

    return call_daemon(client, guarded, unanswered)


def submit_command(args: argparse.Namespace) -> int:
    spec = load_job_spec(args.spec)  # before connecting: bad input is exit 2

    def action(client: UserClient) -> int:
        print(client.submit_job(spec))
        return 0

    return _run(args, action)


def list_command(args: argparse.Namespace) -> int:
    def action(client: UserClient) -> int:
        jobs = client.jobs()
        if args.format == "json":
            print(json.dumps([j.to_json() for j in jobs], indent=2))
            return 0
        if not jobs:
            print("no jobs on the ledger")
            return 0
        print(
            f"{'JOB':<64}  {'STATE':<10} {'NAME':<24} {'SUBMITTER':<20} {'SUBMITTED':<24} PROGRESS"
        )
        for job in jobs:
            print(
                f"{job.job_id}  {job.state:<10} {job.name[:24]:<24} "
                f"{job.submitter:<20} {job.submitted:<24} {_listed_progress(job)}".rstrip()
            )
        return 0

    return _run(args, action)


def _listed_progress(job: JobSummary) -> str:
    """A running job's committed epochs and their steps, or its phase before it trains
    (the ledger's view: `watch` shows the live step)."""
    if job.state != "running":
        return ""
    fraction = job.fraction
    if fraction is None or job.phase != PHASE_TRAINING:
        return job.phase
    return f"{fraction * 100:.1f}%  epoch {job.epoch}/{job.epochs}  step {job.step}/{job.steps}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _bar(progress: JobProgress) -> str:
    """The bar once the job trains; before that its phase ("aligning: ..."), since a bar
    at 0% says nothing of a job whose total is not known yet (a PSI job's, before its
    alignment commits)."""
    fraction = progress.fraction
    if progress.phase and (fraction is None or progress.phase != PHASE_TRAINING):
        return f"{progress.phase:<{_BAR + 9}}"  # as wide as the bar and its percentage
    fraction = fraction or 0.0  # a daemon without phases, before the total is known
    filled = min(_BAR, int(fraction * _BAR))
    return f"[{'#' * filled}{'.' * (_BAR - filled)}] {fraction * 100:5.1f}%"


def progress_line(progress: JobProgress) -> str:
    """One line: state, bar (or phase), epoch, step, elapsed, ETA, loss (when revealed)."""
    state = progress.state
    # this daemon's own worker, where it says more than "running" (starting, finishing)
    if progress.state == "running" and progress.local_state not in ("", "running"):
        state = f"running/{progress.local_state}"
    parts = [
        f"{state:<18}",
        _bar(progress),
        f"epoch {progress.epoch}/{progress.epochs}",
        f"step {progress.step}/{progress.steps or '?'}",
        f"elapsed {_duration(progress.elapsed_s)}",
        f"eta {_duration(progress.eta_s)}",
    ]
    if progress.loss is not None:
        parts.append(f"loss {progress.loss:.4f}")
    return "  ".join(parts)


def watch_command(args: argparse.Namespace) -> int:
    job_id_bytes(args.job_id)
    live = sys.stdout.isatty()

    def action(client: UserClient) -> int:
        last: JobProgress | None = None
        shown = ""
        for progress in client.watch(args.job_id):
            last = progress
            line = progress_line(progress)
            if live:
                print(f"\r{line}\x1b[K", end="", flush=True)
            elif line.split("  elapsed")[0] != shown:  # a log: only when something moved
                print(line, flush=True)
            shown = line.split("  elapsed")[0]
        if live:
            print()
        if last is None or not last.ended:
            return fail("the progress stream ended before the job did")
        if last.state != "completed":
            print(f"job {last.state}: {last.reason}", flush=True)
            return 1
        metrics = ", ".join(f"{name} {value:.4f}" for name, value in last.metrics)
        print(f"job completed{': ' + metrics if metrics else ''}", flush=True)
        return 0

    return _run(args, action)


def result_command(args: argparse.Namespace) -> int:
    job_id_bytes(args.job_id)

    def action(client: UserClient) -> int:
        digest = client.fetch_result(args.job_id, args.out)
        print(f"wrote {args.out} (model sha256 {digest}, as the ledger has it)")
        return 0

    return _run(args, action)


def show_command(args: argparse.Namespace) -> int:
    job_id_bytes(args.job_id)

    def action(client: UserClient) -> int:
        trail = client.job_trail(args.job_id)
        if not trail:
            return fail(f"no job {args.job_id} on the ledger")
        if args.format == "json":
            print(json.dumps([entry.to_json() for entry in trail], indent=2))
            return 0
        for entry in trail:
            print(
                f"{entry.time}  h{entry.height:<5} #{entry.log_index:<6} {entry.record_id[:16]}  "
                f"{entry.kind:<20} {entry.author:<18} {entry.detail}"
            )
        return 0

    return _run(args, action)
