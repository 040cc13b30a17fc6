"""Shared fixtures: real consortia made by the real CLI code, in temporary folders, and
real gRPC servers holding a member's certificate that answer what a test scripts."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import grpc
import pytest

from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import ledger_service_pb2_grpc
from mpc_ledger.testing.consortium import LocalConsortium, make_consortium


@pytest.fixture
def consortium(tmp_path: Path) -> LocalConsortium:
    return make_consortium(tmp_path / "consortium")


class ScriptedLedger(ledger_service_pb2_grpc.LedgerServicer):
    """Serves ``script(from_height, max_blocks)`` (a None item breaks the stream there) and
    answers every `Submit` with ``submit_reply``; counts what it was asked."""

    def __init__(self, script, submit_reply=None):
        self._script = script
        self._submit_reply = submit_reply
        self.asked = 0
        self.submitted = 0

    def GetBlocks(self, request, context):
        self.asked += 1
        for item in self._script(request.from_height, request.max_blocks):
            if item is None:
                context.abort(grpc.StatusCode.INTERNAL, "stream broken on purpose")
            yield item

    def Submit(self, request, context):
        self.submitted += 1
        if self._submit_reply is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this script answers no Submit")
        return self._submit_reply


@pytest.fixture
def serve(consortium):
    """``serve(member_id, script, submit_reply=None)``: a `ScriptedLedger` at the member's
    endpoint in the genesis, with its certificate (the caller's mTLS checks it)."""
    servers = []

    def start(member_id, script=lambda first, count: [], submit_reply=None) -> ScriptedLedger:
        servicer = ScriptedLedger(script, submit_reply)
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        ledger_service_pb2_grpc.add_LedgerServicer_to_server(servicer, server)
        identity = consortium.party(member_id).identity
        server.add_secure_port(
            consortium.genesis.member(member_id).endpoint, mtls.server_credentials(identity)
        )
        server.start()
        servers.append(server)
        return servicer

    yield start
    for server in servers:
        server.stop(grace=None)
