"""Make one party's keys, then its Kubernetes Secret and ConfigMap, on the party's own host.

    # 1. on the party's own host: keys (private files 0600, in PARTY_DIR/keys)
    python scripts/make_party_manifests.py keygen --id hospital-a \\
        --endpoint hospital-a.example.org:7001 --roles data,validator --out hospital-a
    # 2. send hospital-a/member.json to the consortium; put the genesis.json you get
    #    back at hospital-a/genesis.json and check its chain id (deploy/README.md)
    # 3. render and apply, straight from this host to the party's own cluster
    python scripts/make_party_manifests.py render --party-dir hospital-a | kubectl apply -f -

`keygen` is `mpc-ledger party keygen` with the same arguments. `chain-id GENESIS`
prints the genesis' chain id, recomputed from its content. `render` loads the
party directory as the daemon would (its keys must match its genesis entry, so a
Secret that could not start a daemon is never written), then prints:

* a ConfigMap ``NAME-config``: party.toml rewritten for the container's paths,
  genesis.json (byte for byte), the TLS leaf certificate and the policy file;
* a Secret ``NAME-keys``: exactly the private keys the daemon reads, base64 in
  ``data``: signing.key and tls.key; tls-ca.key only with --include-ca-key.

Where the private keys go: this script reads them from PARTY_DIR/keys and
writes them only to stdout or to the --out file secret.yaml (created 0600,
never overwritten). It opens no connection. Piped to `kubectl apply`, they go
to the Kubernetes API of the cluster you are logged in to and are stored in
its etcd: run this only against the party's own cluster (not a shared or
another organisation's), with encryption at rest for Secrets and RBAC that
lets only the party's operators read Secrets in its namespace. The member's
TLS CA key (keys/tls-ca.key) stays on this host by default: the daemon does
not need it, and keeping it off the cluster means that re-issuing the TLS
leaf (deploy/README.md) really evicts a leaked leaf key.

The paths inside the container match deploy/kubernetes/statefulset.yaml:
ConfigMap at /etc/mpc-ledger, keys copied by an init container from the Secret
into an in-memory /run/mpc-ledger/keys (0600), data at /var/lib/mpc-ledger.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
import yaml

from mpc_ledger.errors import UserError
from mpc_ledger.identity.genesis import load_genesis
from mpc_ledger.identity.keys import read_private_file
from mpc_ledger.identity.material import load_party_identity
from mpc_ledger.identity.party import load_party_config

CONFIG_DIR = "/etc/mpc-ledger"
KEYS_DIR = "/run/mpc-ledger/keys"
DATA_DIR = "/var/lib/mpc-ledger"
DEFAULT_NAME = "mpc-ledger-party"
DEFAULT_NAMESPACE = "mpc-ledger"
# Inside the pod; the NetworkPolicy limits who reaches them.
DEFAULT_LISTEN = "0.0.0.0:7001"
DEFAULT_METRICS_LISTEN = "0.0.0.0:9464"
APP_LABELS = {"app.kubernetes.io/name": DEFAULT_NAME, "app.kubernetes.io/part-of": "mpc-ledger"}


def keygen_command(args: argparse.Namespace, extra: list[str]) -> int:
    """`mpc-ledger party keygen ARGS`: the real command, so the keys are made exactly as always."""
    mpc_ledger = [sys.executable, "-m", "mpc_ledger.cli.main"]
    return subprocess.run([*mpc_ledger, "party", "keygen", *extra], check=False).returncode


def container_config(
    source: dict[str, Any],
    member_id: str,
    *,
    listen: str,
    metrics_listen: str,
    policy: bool,
    include_ca_key: bool,
) -> str:
    """party.toml for the container: same member, log settings and [peers]; container paths."""
    party: dict[str, Any] = {
        "id": member_id,
        "genesis": f"{CONFIG_DIR}/genesis.json",
        "listen": listen,
        "data_dir": DATA_DIR,
    }
    if policy:
        party["policy"] = f"{CONFIG_DIR}/policy.toml"
    keys = {
        "signing_key": f"{KEYS_DIR}/signing.key",
        "tls_key": f"{KEYS_DIR}/tls.key",
        "tls_certificate": f"{CONFIG_DIR}/tls.crt",
    }
    if include_ca_key:
        keys["tls_ca_key"] = f"{KEYS_DIR}/tls-ca.key"
    document: dict[str, Any] = {
        "party": party,
        "keys": keys,
        "metrics": {"listen": metrics_listen},
        "log": dict(source.get("log", {"level": "info"})),
    }
    if source.get("peers"):
        document["peers"] = dict(source["peers"])
    header = (
        f"# mpc-ledger party {member_id!r} in Kubernetes, rendered by make_party_manifests.py.\n"
        "# Paths are the container's: ConfigMap at /etc/mpc-ledger, keys copied from the\n"
        "# Secret to /run/mpc-ledger/keys (0600), data on the PersistentVolume.\n"
    )
    return header + tomli_w.dumps(document)


def render_objects(
    party_dir: Path,
    *,
    genesis_path: Path | None = None,
    policy_path: Path | None = None,
    name: str = DEFAULT_NAME,
    namespace: str = DEFAULT_NAMESPACE,
    listen: str = DEFAULT_LISTEN,
    metrics_listen: str = DEFAULT_METRICS_LISTEN,
    include_ca_key: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ConfigMap, Secret) for the party in ``party_dir``; raises UserError naming what is wrong."""
    config_path = party_dir / "party.toml"
    config = load_party_config(config_path)
    genesis_path = genesis_path or config.genesis_path
    if not genesis_path.is_file():
        raise UserError(
            "no genesis yet: put the consortium's genesis.json there (or pass --genesis)",
            path=genesis_path,
        )
    genesis = load_genesis(genesis_path)
    # The same checks as `party start`: a key that does not match the genesis stops here.
    load_party_identity(
        genesis,
        config.member_id,
        signing_key_path=config.signing_key_path,
        tls_key_path=config.tls_key_path,
        tls_certificate_path=config.tls_certificate_path,
        config_path=config_path,
    )
    policy_path = policy_path or config.policy_path
    if policy_path is not None and not policy_path.is_file():
        raise UserError("policy file not found", path=policy_path)
    private = {"signing.key": config.signing_key_path, "tls.key": config.tls_key_path}
    if include_ca_key:
        if config.tls_ca_key_path is None:
            raise UserError("party.toml names no keys.tls_ca_key", path=config_path)
        private["tls-ca.key"] = config.tls_ca_key_path
    source = _read_toml(config_path)
    data = {
        "party.toml": container_config(
            source,
            config.member_id,
            listen=listen,
            metrics_listen=metrics_listen,
            policy=policy_path is not None,
            include_ca_key=include_ca_key,
        ),
        "genesis.json": genesis_path.read_text(),
        "tls.crt": config.tls_certificate_path.read_text(),
    }
    if policy_path is not None:
        data["policy.toml"] = policy_path.read_text()
    annotations = {
        "mpc-ledger/member-id": config.member_id,
        "mpc-ledger/chain-id": genesis.chain_id.hex(),
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(f"{name}-config", namespace, annotations),
        "data": data,
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(f"{name}-keys", namespace, annotations),
        "type": "Opaque",
        "data": {key: _read_private_base64(path) for key, path in private.items()},
    }
    return configmap, secret


def _metadata(name: str, namespace: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(APP_LABELS),
        "annotations": dict(annotations),
    }


def _read_toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())


def _read_private_base64(path: Path) -> str:
    # read_private_file refuses a key that group or others can read, as the daemon does.
    return base64.b64encode(read_private_file(path)).decode("ascii")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (party.toml, PEM, genesis) as YAML block literals, for review."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def to_yaml(*objects: dict[str, Any]) -> str:
    return str(yaml.dump_all(objects, Dumper=_BlockDumper, sort_keys=False, width=1000))


def _write_new(path: Path, text: str, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)


def render_command(args: argparse.Namespace) -> int:
    configmap, secret = render_objects(
        args.party_dir,
        genesis_path=args.genesis,
        policy_path=args.policy,
        name=args.name,
        namespace=args.namespace,
        listen=args.listen,
        metrics_listen=args.metrics_listen,
        include_ca_key=args.include_ca_key,
    )
    annotations = configmap["metadata"]["annotations"]
    print(
        f"party {annotations['mpc-ledger/member-id']!r}, chain id "
        f"{annotations['mpc-ledger/chain-id']}: check it against the consortium's",
        file=sys.stderr,
    )
    if args.out is None:
        sys.stdout.write(to_yaml(configmap, secret))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for file_name in ("configmap.yaml", "secret.yaml"):
        if (args.out / file_name).exists():
            raise UserError("already exists; refusing to overwrite", path=args.out / file_name)
    _write_new(args.out / "configmap.yaml", to_yaml(configmap), 0o644)
    _write_new(args.out / "secret.yaml", to_yaml(secret), 0o600)
    print(f"wrote {args.out / 'configmap.yaml'}", file=sys.stderr)
    print(
        f"wrote {args.out / 'secret.yaml'} (0600, holds private keys: apply it, then delete it)",
        file=sys.stderr,
    )
    return 0


def chain_id_command(args: argparse.Namespace) -> int:
    """Print the chain id of a genesis file, recomputed from its content (an edited file fails)."""
    print(load_genesis(args.genesis).chain_id.hex())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "keygen",
        help="run `mpc-ledger party keygen` with the arguments that follow",
        add_help=False,
    )
    chain_id = commands.add_parser("chain-id", help="print a genesis file's checked chain id")
    chain_id.add_argument("genesis", type=Path, help="genesis.json")
    chain_id.set_defaults(handler=chain_id_command)
    render = commands.add_parser("render", help="print the party's ConfigMap and Secret")
    render.set_defaults(handler=render_command)
    render.add_argument("--party-dir", required=True, type=Path, help="made by `party keygen`")
    render.add_argument("--genesis", type=Path, help="default: the one party.toml names")
    render.add_argument("--policy", type=Path, help="default: the one party.toml names, if any")
    render.add_argument(
        "--name", default=DEFAULT_NAME, help="object name prefix (default: %(default)s)"
    )
    render.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="default: %(default)s")
    render.add_argument("--listen", default=DEFAULT_LISTEN, help="default: %(default)s")
    render.add_argument(
        "--metrics-listen", default=DEFAULT_METRICS_LISTEN, help="default: %(default)s"
    )
    render.add_argument(
        "--include-ca-key",
        action="store_true",
        help="also put keys/tls-ca.key in the Secret (default: it stays on this host)",
    )
    render.add_argument(
        "--out", type=Path, help="write configmap.yaml and secret.yaml (0600) here, not stdout"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keygen"]:
        return keygen_command(argparse.Namespace(), argv[1:])
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except UserError as exc:
        print(f"make_party_manifests: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
