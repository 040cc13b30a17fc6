"""Operator commands for one party: `party keygen`, `party start`."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from mpc_ledger.daemon.logs import configure_logging
from mpc_ledger.daemon.parent import follow_parent
from mpc_ledger.daemon.server import PartyDaemon
from mpc_ledger.errors import UserError
from mpc_ledger.identity import certs
from mpc_ledger.identity.genesis import ROLES, check_member_id, parse_endpoint
from mpc_ledger.identity.material import generate_party_material
from mpc_ledger.identity.party import load_party, render_config
from mpc_ledger.jobs.job_run import RunnerOptions
from mpc_ledger.jobs.service import JobsService
from mpc_ledger.ledger.service import LedgerService
from mpc_ledger.mpc.relay import MpcRelayService
from mpc_ledger.net.ports import BindError, check_bindable
from mpc_ledger.rulebook import RULEBOOK

log = logging.getLogger("mpc_ledger.party")


def register(groups: Any) -> None:
    party = groups.add_parser("party", help="operate this organisation's party daemon")
    commands = party.add_subparsers(dest="party_command", metavar="COMMAND", required=True)

    keygen = commands.add_parser(
        "keygen",
        help="create this party's keys and its public member file",
        description="Create signing and TLS keys on this machine (private files are 0600 "
        "and never leave it) and member.json, the public file to send to the consortium.",
    )
    keygen.add_argument("--id", required=True, help="member id, e.g. hospital-a")
    keygen.add_argument("--endpoint", required=True, help="host:port peers will dial")
    keygen.add_argument("--roles", required=True, help=f"comma-separated, from: {', '.join(ROLES)}")
    keygen.add_argument("--organisation", default="", help="organisation name (informational)")
    keygen.add_argument("--out", required=True, type=Path, help="party directory to create")
    keygen.add_argument(
        "--tls-days",
        type=int,
        default=certs.LEAF_VALIDITY_DAYS,
        help="validity of the TLS leaf certificate (default: %(default)s)",
    )
    keygen.set_defaults(handler=keygen_command)

    start = commands.add_parser(
        "start",
        help="run the party daemon in the foreground",
        description="Serve this party's gRPC endpoint (mTLS only) until SIGTERM or Ctrl-C.",
    )
    start.add_argument("--config", required=True, type=Path, help="party.toml")
    start.set_defaults(handler=start_command)


def parse_roles(text: str) -> tuple[str, ...]:
    roles = tuple(sorted({r.strip() for r in text.split(",") if r.strip()}))
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise UserError(
            f"unknown role(s) {unknown or [text]}; known: {', '.join(ROLES)}", field="--roles"
        )
    return roles


def keygen_command(args: argparse.Namespace) -> int:
    check_member_id(args.id, field="--id")
    try:
        parse_endpoint(args.endpoint)
    except ValueError as exc:
        raise UserError(str(exc), field="--endpoint") from None
    roles = parse_roles(args.roles)
    if args.tls_days <= 0:
        raise UserError("must be a positive number of days", field="--tls-days")
    out: Path = args.out
    member = generate_party_material(
        out,
        member_id=args.id,
        endpoint=args.endpoint,
        roles=roles,
        organisation=args.organisation,
        tls_validity_days=args.tls_days,
    )
    config_path = out / "party.toml"
    if not config_path.exists():
        config_path.write_text(render_config(args.id))
    print(f"created party {member.id!r} in {out}")
    print(f"  private (0600, keep on this machine): {out / 'keys'}")
    print(f"  public member file, send to the consortium: {out / 'member.json'}")
    print(f"  TLS CA fingerprint (SHA-256): {member.tls_ca_fingerprint.hex()}")
    print(f"  next: put the assembled genesis at {out / 'genesis.json'} and run")
    print(f"        mpc-ledger party start --config {config_path}")
    return 0


# The worker program this daemon runs for its jobs, when not the installed one: a wrapper
# or a test double taking the worker's flags (a party runs its own worker; this gives no
# one else anything). A command line, split as a shell would.
WORKER_PROGRAM_ENV = "MPC_LEDGER_WORKER_PROGRAM"


def _runner_options() -> RunnerOptions | None:
    program = os.environ.get(WORKER_PROGRAM_ENV, "").strip()
    if not program:
        return None
    return RunnerOptions(worker_command=tuple(shlex.split(program)))


def start_command(args: argparse.Namespace) -> int:
    party = load_party(args.config)
    # The daemon is latency-bound: a message crosses several threads (gRPC,
    # the ledger loop, peer links). With CPython's default 5 ms switch
    # interval each hand-off to a waiting thread can cost up to 5 ms.
    sys.setswitchinterval(0.0005)
    configure_logging(party.config.log_level, json_lines=party.config.log_json)
    # Handlers first: a SIGTERM that arrives while starting still stops cleanly.
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    follow_parent()
    party.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Before the ledger is opened and replayed: a port that cannot be had is the
    # operator's one-line error, not the end of a start-up that logged its progress.
    try:
        check_bindable(party.listen_address)
    except BindError as exc:
        raise UserError(str(exc), path=args.config, field="party.listen") from None
    ledger = LedgerService(party, RULEBOOK)
    jobs = JobsService(party, ledger, _runner_options())
    # The relay takes MPC traffic only from each job's participants, as the ledger says.
    relay = MpcRelayService(participants=jobs.participants)
    daemon = PartyDaemon(party, services=[ledger, relay, jobs])
    try:
        daemon.start()
    except BindError as exc:
        field = "metrics.listen" if "metrics" in str(exc) else "party.listen"
        raise UserError(str(exc), path=args.config, field=field) from None
    member = party.identity.member
    log.info(
        "party %s (%s) serving on %s (port %d), chain id %s, %d peers",
        member.id,
        ",".join(member.roles),
        party.listen_address,
        daemon.port,
        party.genesis.chain_id.hex(),
        len(daemon.peers.members),
    )
    while not stop.wait(0.5):
        pass
    daemon.stop()
    log.info("stopped")
    sys.stderr.flush()
    return 0
