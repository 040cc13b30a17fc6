"""scripts/make_party_manifests.py on a real party: `keygen` through the script, a genesis
from `consortium assemble`, then the Secret and ConfigMap it renders.

The rendered objects are checked against the files they come from (the Secret
holds exactly the private keys, the ConfigMap only public files), validated
against the Kubernetes schemas, and then laid out as the kubelet would mount
them, to prove that the party.toml inside loads as the daemon loads it.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml

from mpc_ledger.errors import UserError
from mpc_ledger.identity.party import load_party
from mpc_ledger.testing.processes import run_cli

from .deploy_helpers import SCRIPTS, load_script, validate_kubernetes

pytestmark = pytest.mark.integration  # runs the real CLI in child processes

SCRIPT = SCRIPTS / "make_party_manifests.py"
manifests = load_script("make_party_manifests")


def run_script(*args, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        **kwargs,
    )


@pytest.fixture(scope="module")
def party_dir(tmp_path_factory):
    """hospital-a made by the script's `keygen`, with a genesis from `consortium assemble`."""
    root = tmp_path_factory.mktemp("party")
    made = run_script(
        "keygen",
        "--id",
        "hospital-a",
        "--endpoint",
        "hospital-a.example.org:7001",
        "--roles",
        "data,validator",
        "--out",
        root / "hospital-a",
    )
    assert made.returncode == 0, made.stderr
    assert "created party 'hospital-a'" in made.stdout
    assembled = run_cli(
        "consortium",
        "assemble",
        root / "hospital-a" / "member.json",
        "--out",
        root / "hospital-a" / "genesis.json",
    )
    assert assembled.returncode == 0, assembled.stderr
    return root / "hospital-a"


@pytest.fixture
def party_copy(party_dir, tmp_path):
    copy = tmp_path / "hospital-a"
    shutil.copytree(party_dir, copy)  # copies modes: keys stay 0600
    return copy


def test_render_prints_exactly_the_keys_and_the_public_files(party_dir):
    result = run_script("render", "--party-dir", party_dir)
    assert result.returncode == 0, result.stderr
    configmap, secret = yaml.safe_load_all(result.stdout)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "mpc-ledger-party-keys"
    assert secret["type"] == "Opaque" and set(secret) == {
        "apiVersion",
        "kind",
        "metadata",
        "type",
        "data",
    }
    keys = party_dir / "keys"
    assert secret["data"] == {
        "signing.key": base64.b64encode((keys / "signing.key").read_bytes()).decode(),
        "tls.key": base64.b64encode((keys / "tls.key").read_bytes()).decode(),
    }
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["name"] == "mpc-ledger-party-config"
    data = configmap["data"]
    assert set(data) == {"party.toml", "genesis.json", "tls.crt"}
    assert data["genesis.json"] == (party_dir / "genesis.json").read_text()
    assert data["tls.crt"] == (keys / "tls.crt").read_text()
    assert "PRIVATE KEY" not in result.stdout.split("kind: Secret")[0]
    chain_id = configmap["metadata"]["annotations"]["mpc-ledger/chain-id"]
    assert chain_id in result.stderr
    validate_kubernetes([configmap, secret])


def test_the_ca_key_goes_into_the_secret_only_when_asked(party_dir):
    _configmap, secret = manifests.render_objects(party_dir, include_ca_key=True)
    assert set(secret["data"]) == {"signing.key", "tls.key", "tls-ca.key"}
    ca_key = (party_dir / "keys" / "tls-ca.key").read_bytes()
    assert base64.b64decode(secret["data"]["tls-ca.key"]) == ca_key
    config = tomllib.loads(_configmap["data"]["party.toml"])
    assert config["keys"]["tls_ca_key"] == "/run/mpc-ledger/keys/tls-ca.key"


def test_rendered_config_loads_where_the_kubelet_mounts_it(party_dir, tmp_path):
    """Lay the ConfigMap and Secret out under a fake root, as the pod sees them, and load."""
    configmap, secret = manifests.render_objects(party_dir)
    fake_root = tmp_path / "pod"
    config_dir = fake_root / manifests.CONFIG_DIR.lstrip("/")
    keys_dir = fake_root / manifests.KEYS_DIR.lstrip("/")
    config_dir.mkdir(parents=True)
    keys_dir.mkdir(parents=True, mode=0o700)
    text = configmap["data"]["party.toml"]
    for absolute in (manifests.CONFIG_DIR, manifests.KEYS_DIR, manifests.DATA_DIR):
        text = text.replace(f'"{absolute}', f'"{fake_root}{absolute}')
    for name, value in configmap["data"].items():
        (config_dir / name).write_text(text if name == "party.toml" else value)
    for name, value in secret["data"].items():
        path = keys_dir / name
        path.write_bytes(base64.b64decode(value))
        path.chmod(0o600)  # what the init container's `install -m 0600` does
    party = load_party(config_dir / "party.toml")
    assert party.identity.member.id == "hospital-a"
    assert party.config.listen == "0.0.0.0:7001"
    assert party.config.metrics_listen == "0.0.0.0:9464"
    assert party.config.data_dir == fake_root / "var/lib/mpc-ledger"


def test_peers_policy_and_log_settings_carry_over(party_copy, tmp_path):
    config = party_copy / "party.toml"
    policy = tmp_path / "policy.toml"
    policy.write_text("# no rules\n")
    config.write_text(config.read_text().replace('level = "info"', 'level = "debug"\njson = true'))
    configmap, _secret = manifests.render_objects(party_copy, policy_path=policy)
    rendered = tomllib.loads(configmap["data"]["party.toml"])
    assert rendered["log"] == {"level": "debug", "json": True}
    assert rendered["party"]["policy"] == "/etc/mpc-ledger/policy.toml"
    assert configmap["data"]["policy.toml"] == "# no rules\n"


def test_out_writes_the_secret_0600_and_never_overwrites(party_dir, tmp_path):
    out = tmp_path / "manifests"
    result = run_script("render", "--party-dir", party_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    assert (out / "secret.yaml").stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load((out / "secret.yaml").read_text())["kind"] == "Secret"
    assert yaml.safe_load((out / "configmap.yaml").read_text())["kind"] == "ConfigMap"
    again = run_script("render", "--party-dir", party_dir, "--out", out)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr


def test_a_group_readable_key_is_refused(party_copy):
    os.chmod(party_copy / "keys" / "signing.key", 0o640)
    with pytest.raises(UserError, match="group/others can access it"):
        manifests.render_objects(party_copy)


def test_no_genesis_yet_is_one_clear_line(party_copy):
    (party_copy / "genesis.json").unlink()
    result = run_script("render", "--party-dir", party_copy)
    assert result.returncode == 2
    assert "no genesis yet" in result.stderr and "Traceback" not in result.stderr
