"""deploy/systemd/mpc-ledger-party@.service: hardening options present, and
`systemd-analyze verify` / `security --offline` where systemd-analyze exists."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .deploy_helpers import DEPLOY, tool

UNIT = DEPLOY / "systemd" / "mpc-ledger-party@.service"
REQUIRED = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/mpc-ledger/%i",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    "StateDirectory": "mpc-ledger/%i",
    "StateDirectoryMode": "0700",
    "User": "mpc-ledger",
    "Restart": "on-failure",
    "RestartPreventExitStatus": "2",
    "KillSignal": "SIGTERM",
}


def service_section() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return dict(parser["Service"])


def test_hardening_options_are_set():
    service = service_section()
    for key, value in REQUIRED.items():
        assert service.get(key) == value, f"{key}={service.get(key)!r}, want {value!r}"
    assert service["ExecStart"].endswith("party start --config /etc/mpc-ledger/%i/party.toml")
    families = set(service["RestrictAddressFamilies"].split())
    assert families <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}


def _instance(tmp_path: Path) -> Path:
    """The unit as an instance, with ExecStart pointing at this venv's mpc-ledger (verify
    checks that the command exists)."""
    text = UNIT.read_text().replace(
        "/opt/mpc-ledger/venv/bin/mpc-ledger", str(Path(sys.executable).parent / "mpc-ledger")
    )
    path = tmp_path / "mpc-ledger-party@test.service"
    path.write_text(text)
    return path


def test_systemd_analyze_verify(tmp_path):
    analyze = tool("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(_instance(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify exits 0 on unknown keys but prints them: any output is a finding.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


def test_systemd_analyze_security_exposure_is_low(tmp_path):
    analyze = tool("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(_instance(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze has no offline security: {result.stderr.strip()}")
    assert float(match.group(1)) <= 2.0, result.stdout
