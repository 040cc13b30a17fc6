"""The `Status` handler without gRPC: the member, the caller, each service's part, peers."""

from __future__ import annotations

import types

from mpc_ledger import __version__
from mpc_ledger.daemon.status import (
    DEFAULT_PEER_TIMEOUT_MS,
    PEER_TIMEOUT_MAX_MS,
    StatusHandler,
    peer_timeout_s,
)
from mpc_ledger.net.peers import PeerProbe

PARTY = types.SimpleNamespace(
    identity=types.SimpleNamespace(member=types.SimpleNamespace(id="a", roles=("data",))),
    genesis=types.SimpleNamespace(chain_id=b"\x01" * 32, consortium="demo"),
    listen_address="127.0.0.1:7001",
)
B = types.SimpleNamespace(id="b", endpoint="127.0.0.1:7002")
C = types.SimpleNamespace(id="c", endpoint="127.0.0.1:7003")


class Peers:
    def __init__(self):
        self.timeouts_s = []

    def probe_all(self, timeout_s):
        self.timeouts_s.append(timeout_s)
        return [PeerProbe(B, 1.5, None), PeerProbe(C, 0.0, "UNAVAILABLE: refused")]


class Jobs:
    def status(self, response):
        response.jobs["running"] = 1


class Clock:
    now = 10.0

    def __call__(self):
        return self.now


def test_the_status_names_the_member_the_caller_and_each_services_part():
    clock, peers = Clock(), Peers()
    handler = StatusHandler(PARTY, [Jobs()], peers, clock=clock)
    clock.now = 12.0
    handler.started()
    clock.now = 15.5
    response = handler.status("b", probe_peers=False, peer_timeout_ms=0)
    assert (response.member_id, list(response.roles), response.caller_id) == ("a", ["data"], "b")
    assert response.chain_id == "01" * 32 and response.consortium == "demo"
    assert response.listen_address == "127.0.0.1:7001" and response.version == __version__
    assert response.uptime_s == 3.5  # from started(), not from construction
    assert dict(response.jobs) == {"running": 1}
    assert list(response.peers) == [] and peers.timeouts_s == []


def test_peers_are_probed_only_when_asked_within_a_bounded_timeout():
    peers = Peers()
    response = StatusHandler(PARTY, [], peers).status("b", probe_peers=True, peer_timeout_ms=500)
    assert [(p.id, p.endpoint, p.reachable, p.error) for p in response.peers] == [
        ("b", "127.0.0.1:7002", True, ""),
        ("c", "127.0.0.1:7003", False, "UNAVAILABLE: refused"),
    ]
    assert response.peers[0].round_trip_ms == 1.5 and peers.timeouts_s == [0.5]


def test_the_peer_timeout_defaults_and_is_capped():
    assert peer_timeout_s(0) == DEFAULT_PEER_TIMEOUT_MS / 1000
    assert peer_timeout_s(250) == 0.25
    assert peer_timeout_s(10**9) == PEER_TIMEOUT_MAX_MS / 1000
