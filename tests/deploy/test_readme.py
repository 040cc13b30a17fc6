"""deploy/README.md stays true: its TLS rotation snippet works on a real party, it lists
every metric the daemon exports, and the files it names exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from mpc_ledger.identity.party import load_party
from mpc_ledger.metrics import DaemonMetrics
from mpc_ledger.testing.consortium import make_consortium

from .deploy_helpers import DEPLOY, ROOT

README = (DEPLOY / "README.md").read_text()


def rotation_snippet() -> str:
    block = README.split("<!-- rotate-tls:begin -->")[1].split("<!-- rotate-tls:end -->")[0]
    match = re.search(r"```python\n(.*?)```", block, re.DOTALL)
    assert match, "the rotation snippet is not a python code block"
    return match.group(1)


@pytest.mark.integration
def test_tls_rotation_snippet_issues_a_leaf_the_daemon_accepts(tmp_path):
    consortium = make_consortium(tmp_path / "consortium", "a")
    party_dir = consortium.root / "a"
    before = consortium.party("a").identity.tls_certificate
    script = tmp_path / "rotate_tls.py"
    script.write_text(rotation_snippet())
    result = subprocess.run(
        [sys.executable, str(script), str(party_dir), "30"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    keys = party_dir / "keys"
    assert (keys / "tls.key.new").stat().st_mode & 0o777 == 0o600
    # The README's swap, then the daemon's own checks against the unchanged genesis.
    for name in ("tls.key", "tls.crt"):
        shutil.move(keys / name, keys / f"{name}.old")
        shutil.move(keys / f"{name}.new", keys / name)
    after = load_party(consortium.config("a")).identity.tls_certificate
    assert after.serial_number != before.serial_number
    assert after.public_key() != before.public_key()
    lifetime = after.not_valid_after_utc - after.not_valid_before_utc
    assert 29 <= lifetime.days <= 31


def test_every_exported_metric_is_documented():
    for family in DaemonMetrics().registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}" in README, f"{name} is not in deploy/README.md"


def test_named_files_exist():
    named = re.findall(r"`(?:\.\./)?((?:deploy|scripts)/[\w./@-]+)`", README)
    assert "scripts/make_party_manifests.py" in named
    for relative in named:
        assert (ROOT / relative).exists(), relative
    named = re.findall(r"`((?:kubernetes|compose|systemd)/[\w./@-]+)`", README)
    assert "systemd/mpc-ledger-party@.service" in named
    for relative in named:
        assert (DEPLOY / relative).exists(), relative
