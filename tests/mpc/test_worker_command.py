"""`mpc_ledger.mpc.worker_command`: the one command line every worker is started with
(the job runner, the relay cluster, the benchmarks) is the one the worker parses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mpc_ledger.mpc.worker import build_parser
from mpc_ledger.mpc.worker_command import WORKER_PROGRAM, worker_command


def parsed(command):
    assert command[:3] == list(WORKER_PROGRAM)
    return build_parser().parse_args(command[3:])


def test_the_runners_relay_command_is_what_the_worker_reads():
    command = worker_command(
        Path("m.json"),
        2,
        Path("out.json"),
        socket_path=Path("relay.sock"),
        events=True,
        model_path=Path("model.pt"),
    )
    args = parsed(command)
    assert (args.manifest, args.rank, args.output) == (Path("m.json"), 2, Path("out.json"))
    assert (args.transport, args.socket, args.rendezvous) == ("relay", Path("relay.sock"), None)
    assert args.events and args.model_out == Path("model.pt")


def test_the_benchmarks_gloo_command_is_what_the_worker_reads():
    args = parsed(worker_command(Path("m.json"), 0, Path("o.json"), rendezvous="file:///tmp/r"))
    assert (args.transport, args.rendezvous, args.socket) == ("gloo", "file:///tmp/r", None)
    assert not args.events and args.model_out is None


def test_a_double_takes_the_same_flags_and_one_transport_is_required():
    double = (sys.executable, "double.py", "mode")
    command = worker_command(Path("m"), 1, Path("o"), socket_path=Path("s"), program=double)
    assert command[:3] == list(double) and command[3:5] == ["--manifest", "m"]
    for transports in ({}, {"socket_path": Path("s"), "rendezvous": "file:///r"}):
        with pytest.raises(ValueError, match="exactly one"):
            worker_command(Path("m"), 0, Path("o"), **transports)
