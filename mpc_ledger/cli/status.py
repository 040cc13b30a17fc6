"""`mpc-ledger status`: this party's daemon and which peers answer it over mTLS.

A daemon that does not answer is exit 1 with the reason on stderr; with
``--format json`` stdout still carries a document, ``{"member_id", "error"}``,
so that a monitoring script always has one to parse.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from mpc_ledger.cli._daemon_call import fail
from mpc_ledger.identity.party import load_party
from mpc_ledger.jobs.lifecycle import STATUSES
from mpc_ledger.ledger.client import local_target
from mpc_ledger.net import mtls
from mpc_ledger.net.peers import describe_rpc_error
from mpc_ledger.proto.v1 import party_pb2, party_pb2_grpc


def register(groups: Any) -> None:
    status = groups.add_parser(
        "status",
        help="show this party and which peers answer over mTLS",
        description="Ask this party's running daemon (as the party itself, over mTLS) for "
        "its status; the daemon probes every peer. Exits 1 if the daemon does not answer.",
    )
    status.add_argument("--config", required=True, type=Path, help="party.toml")
    status.add_argument("--format", choices=("text", "json"), default="text")
    status.add_argument(
        "--timeout-ms", type=int, default=2000, help="per-peer probe timeout (default: 2000)"
    )
    status.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    party = load_party(args.config)
    target = local_target(party.listen_address)
    channel = mtls.member_channel(party.identity, party.identity.member, endpoint=target)
    stub = party_pb2_grpc.PartyControlStub(channel)
    request = party_pb2.StatusRequest(probe_peers=True, peer_timeout_ms=max(1, args.timeout_ms))
    try:
        reply = stub.Status(request, timeout=args.timeout_ms / 1000 + 5)
    except grpc.RpcError as exc:
        message = (
            f"party daemon {party.identity.member.id!r} at {target} did not answer "
            f"({describe_rpc_error(exc)}). Is `mpc-ledger party start --config {args.config}` "
            "running?"
        )
        if args.format == "json":  # the document a monitoring script asked for, saying why
            print(json.dumps({"member_id": party.identity.member.id, "error": message}))
        return fail(message)
    finally:
        channel.close()
    if args.format == "json":
        document = json_format.MessageToDict(reply, preserving_proto_field_name=True)
        print(json.dumps(document, indent=2))
    else:
        print(render_status(reply, party.identity.tls_certificate.not_valid_after_utc.date()))
    return 0


def render_status(reply: party_pb2.StatusResponse, tls_expires: object) -> str:
    answering = sum(p.reachable for p in reply.peers)
    lines = [
        f"party      {reply.member_id} ({', '.join(reply.roles)})",
        f"consortium {reply.consortium}  chain {reply.chain_id[:16]}…",
        f"serving    {reply.listen_address}  up {reply.uptime_s:.0f}s  version {reply.version}",
        f"tls cert   valid until {tls_expires}",
        f"peers      {answering}/{len(reply.peers)} answering over mTLS",
    ]
    if reply.HasField("ledger"):
        ledger = reply.ledger
        role = "validator" if ledger.validator else "follower"
        lines.insert(
            4,
            f"ledger     height {ledger.height}  round {ledger.round}  records {ledger.log_size}  "
            f"mempool {ledger.mempool_size}  last commit {ledger.since_last_commit_s:.1f}s ago"
            f"  ({role})",
        )
    if reply.jobs:  # empty from a daemon without the jobs service
        lines.insert(len(lines) - 1, f"jobs       {jobs_summary(reply.jobs)}")
    width = max((len(p.id) for p in reply.peers), default=4)
    for peer in reply.peers:
        state = f"ok  {peer.round_trip_ms:6.1f} ms" if peer.reachable else f"DOWN  {peer.error}"
        lines.append(f"  {peer.id:<{width}}  {peer.endpoint:<21}  {state}")
    return "\n".join(lines)


def jobs_summary(jobs: Mapping[str, int]) -> str:
    """``1 running, 3 completed``: the states that have jobs, in the order of a job's life."""
    order = {status: index for index, status in enumerate(STATUSES)}
    states = sorted(jobs, key=lambda status: (order.get(status, len(order)), status))
    counted = [f"{jobs[status]} {status}" for status in states if jobs[status]]
    return ", ".join(counted) or "none"
