"""`mpc-ledger dev up`: a complete local consortium on this machine, until Ctrl-C.

Three data parties (hospital-a, hospital-b, hospital-c), a dealer and an
auditor validator (n = 4 validators, f = 1), made by the real `consortium
init` (generated keys, real mTLS); each hospital gets a policy that lets
the demo scientist hospital-a/alice run linear models and an mlp with the
model going to hospital-a. The five daemons run as child processes
(`python -m mpc_ledger.cli.main party start --config ...`), each logging to
``DIR/<member>.log``. A folder that already holds a consortium is reused.
SIGINT, SIGTERM or SIGHUP stops them all cleanly; so does the death of the
program that started `dev up`, if it set ``MPC_LEDGER_PARENT_PID`` to its pid
(the demo does).

The line ``consortium ready`` on stdout says every daemon serves (the demo
waits for it).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mpc_ledger.consortium import create_local_consortium
from mpc_ledger.daemon.parent import Stopped, child_env, follow_parent, stop_on_signals
from mpc_ledger.daemon.processes import CLI, DaemonProcess, stop_all
from mpc_ledger.identity.genesis import load_genesis

__all__ = ["DEV_POLICY", "HOSPITALS", "READY_LINE", "register"]

HOSPITALS = ("hospital-a", "hospital-b", "hospital-c")
MEMBERS = (*HOSPITALS, "dealer", "auditor")
READY_LINE = "consortium ready"
DEV_POLICY = """# {member}'s policy for the local dev consortium (`mpc-ledger dev up`).
version = 1
submitters = ["hospital-a/alice"]
datasets = ["*"]
models = ["logistic_regression", "linear_regression", "mlp"]
max_epochs = 50
recipients = ["hospital-a", "hospital-a/*"]
allow_loss_reveal = true
min_rows = 0
tuple_providers = ["dealer"]
"""


def register(groups: Any) -> None:
    dev = groups.add_parser("dev", help="a local consortium for development and demos")
    commands = dev.add_subparsers(dest="dev_command", metavar="COMMAND", required=True)
    up = commands.add_parser(
        "up",
        help="start hospital-a, -b, -c, a dealer and an auditor here, until Ctrl-C",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--dir", type=Path, default=Path("dev-consortium"), help="consortium folder")
    up.add_argument(
        "--base-port", type=int, default=7001, help="first port (0: free ports; default 7001)"
    )
    up.set_defaults(handler=up_command)


def prepare(folder: Path, base_port: int) -> None:
    """`consortium init` into ``folder`` (unless it holds one) and a policy per hospital."""
    if not (folder / "genesis.json").exists():
        create_local_consortium(folder, HOSPITALS, dealer=True, auditor=True, base_port=base_port)
    for member in HOSPITALS:
        policy = folder / member / "policy.toml"
        if not policy.exists():
            policy.write_text(DEV_POLICY.format(member=member))
        config = folder / member / "party.toml"
        text = config.read_text()
        if "policy =" not in text:
            config.write_text(text.replace("[party]\n", '[party]\npolicy = "policy.toml"\n', 1))


class _Daemon(DaemonProcess):
    """A daemon in its own session: a terminal's Ctrl-C reaches only `dev up`, which then
    stops each daemon once (SIGTERM); the daemons still die with `dev up` (see
    `mpc_ledger.daemon.parent`)."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [*CLI, "party", "start", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**child_env(), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )


def up_command(args: argparse.Namespace) -> int:
    # Handlers first: a signal while preparing or starting still stops what was started.
    with stop_on_signals():
        follow_parent()  # started by the demo (any program that set PARENT_ENV): end with it
        try:
            return _run_consortium(args.dir.resolve(), args.base_port)
        except Stopped:
            return 0  # asked to stop: the documented way to end `dev up`


def _run_consortium(folder: Path, base_port: int) -> int:
    """Start the five daemons, print `READY_LINE`, watch them until one exits or a stop."""
    prepare(folder, base_port)
    genesis = load_genesis(folder / "genesis.json")
    daemons: list[DaemonProcess] = []
    try:
        for member in MEMBERS:
            daemons.append(_Daemon(folder / member / "party.toml", folder / f"{member}.log"))
        for member, daemon in zip(MEMBERS, daemons, strict=True):
            endpoint = genesis.member(member)
            assert endpoint is not None
            daemon.wait_serving(endpoint.endpoint, 60)
        _print_usage(folder, genesis)
        print(READY_LINE, flush=True)
        while True:
            time.sleep(0.5)
            for member, daemon in zip(MEMBERS, daemons, strict=True):
                if daemon.process.poll() is not None:
                    print(
                        f"mpc-ledger: {member}'s daemon exited with {daemon.process.returncode}; "
                        f"see {daemon.log_path}",
                        file=sys.stderr,
                    )
                    return 1
    finally:
        _say("stopping the daemons ...")
        codes = stop_all(daemons)
        _say(f"stopped ({', '.join(f'{m} {c}' for m, c in zip(MEMBERS, codes, strict=False))})")


def _say(text: str) -> None:
    """Print, unless no one reads our output any more (a starter that was killed): the
    stop must go on."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def _print_usage(folder: Path, genesis: Any) -> None:
    print(f"local consortium in {folder} (chain {genesis.chain_id.hex()[:16]}…)")
    for member in MEMBERS:
        info = genesis.member(member)
        roles = ",".join(info.roles) if info is not None else ""
        endpoint = info.endpoint if info is not None else ""
        print(f"  {member:<11} {endpoint:<16} {roles:<16} {folder / member / 'party.toml'}")
    config_a = folder / "hospital-a" / "party.toml"
    print("daemon logs: " + str(folder / "<member>.log"))
    print("try, in another terminal:")
    print(f"  mpc-ledger status --config {config_a}")
    print(f"  mpc-ledger ledger tail --config {config_a} --follow")
    print("  mpc-ledger user keygen --id hospital-a/alice --out alice")
    print(f"  mpc-ledger user add alice/user.json --roles scientist --config {config_a} \\")
    print(f"      --out alice/keys/tls.crt && cp {folder / 'genesis.json'} alice/")
    print("  mpc-ledger job submit job.toml --profile alice")
    print("stop with Ctrl-C", flush=True)
