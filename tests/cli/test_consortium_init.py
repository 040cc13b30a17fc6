"""`consortium init --base-port 0`: ports that stay free until the daemons bind them."""

from __future__ import annotations

import tomllib

import pytest

from mpc_ledger.net import ports
from mpc_ledger.testing.consortium import make_consortium


def _metrics_ports(root, member_ids) -> list[int]:
    ports = []
    for member_id in member_ids:
        config = tomllib.loads((root / member_id / "party.toml").read_text())
        ports.append(int(config["metrics"]["listen"].rpartition(":")[2]))
    return ports


def test_picked_ports_are_outside_the_ephemeral_range_and_never_repeat(tmp_path) -> None:
    ephemeral = ports._ephemeral_range()
    if ephemeral is None:
        pytest.skip("this kernel does not report its ephemeral port range")
    first = make_consortium(tmp_path / "one", "a,b,c", auditor=True)
    second = make_consortium(tmp_path / "two", "a,b,c", auditor=True)
    used = []
    for made in (first, second):
        for member_id in made.ids:
            endpoint = made.genesis.member(member_id).endpoint
            used.append(int(endpoint.rpartition(":")[2]))
        used.extend(_metrics_ports(made.root, made.ids))
    # Outgoing connections take their local ports from the ephemeral range; a
    # port picked there could be taken before the daemon binds it.
    assert all(port < ephemeral[0] for port in used), used
    assert len(set(used)) == len(used) == 16
