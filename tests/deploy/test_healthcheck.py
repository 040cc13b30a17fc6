"""scripts/party_healthcheck.py against a real daemon: SERVING over mTLS as the party itself,
and a clear exit 1 when the daemon is down or the config is unusable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mpc_ledger.daemon.processes import DaemonProcess
from mpc_ledger.testing.consortium import make_consortium

from .deploy_helpers import SCRIPTS, load_script

SCRIPT = SCRIPTS / "party_healthcheck.py"


def healthcheck(*args) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.integration
def test_serving_daemon_is_healthy_and_a_stopped_one_is_not(tmp_path):
    consortium = make_consortium(tmp_path / "consortium", "a")
    party = consortium.party("a")
    daemon = DaemonProcess(consortium.config("a"), tmp_path / "a.log")
    try:
        daemon.wait_serving(party.listen_address)
        result = healthcheck("--config", consortium.config("a"), "--timeout", "5")
        assert result.returncode == 0, result.stdout + daemon.log()
        assert result.stdout.startswith("healthy: party 'a'") and "SERVING" in result.stdout
        unknown = healthcheck("--config", consortium.config("a"), "--service", "nope")
        assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stdout
    finally:
        daemon.stop()
    down = healthcheck("--config", consortium.config("a"), "--timeout", "1")
    assert down.returncode == 1
    assert down.stdout.startswith("unhealthy: party 'a'") and "UNAVAILABLE" in down.stdout


def test_config_from_the_environment_and_unusable_configs(tmp_path, monkeypatch):
    party_healthcheck = load_script("party_healthcheck")
    monkeypatch.setenv("MPC_LEDGER_CONFIG", str(tmp_path / "missing.toml"))
    assert party_healthcheck.main([]) == 1
    (tmp_path / "bad.toml").write_text("[party]\nid = 'a'\n")
    healthy, line = party_healthcheck.check(tmp_path / "bad.toml", timeout_s=1)
    assert not healthy and "not a party config" in line
    assert party_healthcheck.local_target("0.0.0.0:7001") == "127.0.0.1:7001"
    assert party_healthcheck.local_target("[::]:7001") == "127.0.0.1:7001"
    assert party_healthcheck.local_target("10.0.0.5:7001") == "10.0.0.5:7001"
