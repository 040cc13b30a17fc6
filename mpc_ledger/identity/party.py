"""The party configuration file (TOML) and the checked `Party` it loads into.

Relative paths in the file are relative to the file's own folder, so a party
directory can be moved as a whole. Unknown sections and keys are errors: a
misspelt key silently ignored is a misconfigured party.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from mpc_ledger.documents import NestingError, parse_toml
from mpc_ledger.errors import ConfigError
from mpc_ledger.identity.genesis import Genesis, load_genesis, parse_endpoint
from mpc_ledger.identity.material import KEY_FILES, PartyIdentity, load_party_identity

__all__ = ["LOG_LEVELS", "Party", "PartyConfig", "load_party", "load_party_config", "render_config"]

LOG_LEVELS = ("debug", "info", "warning", "error")

_SCHEMA: dict[str, dict[str, tuple[bool, str]]] = {
    # section -> key -> (required, description)
    "party": {
        "id": (True, "this party's member id in the genesis"),
        "genesis": (True, "path of genesis.json"),
        "listen": (False, "host:port to serve on (default: the genesis endpoint)"),
        "data_dir": (False, "folder for the ledger and job data (default: data)"),
        "policy": (False, "path of this party's policy file"),
    },
    "keys": {
        "signing_key": (True, "Ed25519 signing key (0600)"),
        "tls_key": (True, "TLS leaf key (0600)"),
        "tls_certificate": (True, "TLS leaf certificate"),
        "tls_ca_key": (False, "this member's TLS CA key (0600), for rotating the leaf"),
    },
    "metrics": {
        "listen": (False, "host:port for the Prometheus endpoint /metrics (default: off)"),
    },
    "log": {
        "level": (False, f"one of {', '.join(LOG_LEVELS)} (default: info)"),
        "json": (False, "true for one JSON object per log line"),
    },
}


@dataclasses.dataclass(frozen=True)
class PartyConfig:
    path: Path
    member_id: str
    genesis_path: Path
    listen: str | None
    data_dir: Path
    policy_path: Path | None
    signing_key_path: Path
    tls_key_path: Path
    tls_certificate_path: Path
    tls_ca_key_path: Path | None
    log_level: str
    log_json: bool
    metrics_listen: str | None = None
    # member id -> address to dial instead of the genesis endpoint
    peer_addresses: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Party:
    """A loaded, cross-checked party: its config, its genesis and its identity."""

    config: PartyConfig
    genesis: Genesis
    identity: PartyIdentity

    @property
    def listen_address(self) -> str:
        return self.config.listen or self.identity.member.endpoint


def load_party_config(path: Path) -> PartyConfig:
    path = Path(path)
    try:
        raw = parse_toml(path.read_text())
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    except (tomllib.TOMLDecodeError, NestingError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    peers = raw.pop("peers", {})
    problems = _check_schema(raw)
    problems += _check_peers(peers)
    if problems:
        raise ConfigError("\n  ".join(["invalid:", *problems]), path=path)
    base = path.parent
    party, keys, log = raw["party"], raw["keys"], raw.get("log", {})

    def resolve(value: str) -> Path:
        return (base / value).resolve() if not Path(value).is_absolute() else Path(value)

    listen = party.get("listen")
    if listen is not None:
        try:
            _check_listen(listen)
        except ValueError as exc:
            raise ConfigError(str(exc), path=path, field="party.listen") from None
    metrics_listen = raw.get("metrics", {}).get("listen")
    if metrics_listen is not None:
        try:
            _check_listen(metrics_listen)
        except ValueError as exc:
            raise ConfigError(str(exc), path=path, field="metrics.listen") from None
    level = log.get("level", "info")
    if level not in LOG_LEVELS:
        raise ConfigError(f"must be one of {', '.join(LOG_LEVELS)}", path=path, field="log.level")
    return PartyConfig(
        path=path,
        member_id=party["id"],
        genesis_path=resolve(party["genesis"]),
        listen=listen,
        data_dir=resolve(party.get("data_dir", "data")),
        policy_path=resolve(party["policy"]) if "policy" in party else None,
        signing_key_path=resolve(keys["signing_key"]),
        tls_key_path=resolve(keys["tls_key"]),
        tls_certificate_path=resolve(keys["tls_certificate"]),
        tls_ca_key_path=resolve(keys["tls_ca_key"]) if "tls_ca_key" in keys else None,
        log_level=level,
        log_json=bool(log.get("json", False)),
        peer_addresses=dict(peers),
        metrics_listen=metrics_listen,
    )


def _check_peers(peers: Any) -> list[str]:
    """[peers] maps member ids to the address to dial them at (NAT, internal DNS, proxies)."""
    if not isinstance(peers, dict):
        return ['peers: must be a table [peers] of member id = "host:port"']
    problems = []
    for member_id, address in peers.items():
        if not isinstance(address, str):
            problems.append(f'peers.{member_id}: must be a "host:port" string')
            continue
        try:
            parse_endpoint(address)
        except ValueError as exc:
            problems.append(f"peers.{member_id}: {exc}")
    return problems


def _check_schema(raw: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for section in raw:
        if section not in _SCHEMA:
            problems.append(f"[{section}]: unknown section; known: {', '.join(_SCHEMA)}")
    for section, fields in _SCHEMA.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            problems.append(f"{section}: must be a table [{section}]")
            continue
        for key in table:
            if key not in fields:
                problems.append(f"{section}.{key}: unknown key; known: {', '.join(fields)}")
        for key, (required, description) in fields.items():
            value = table.get(key)
            if value is None:
                if required:
                    problems.append(f"{section}.{key}: required ({description})")
                continue
            expected = bool if key == "json" else str
            if not isinstance(value, expected) or (expected is str and not value):
                problems.append(f"{section}.{key}: must be a {expected.__name__} ({description})")
    return problems


def _check_listen(listen: str) -> None:
    # A listen address may be a wildcard (unlike an endpoint peers dial).
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{listen!r} is not host:port")


def load_party(path: Path) -> Party:
    """Load the config, its genesis and keys, and check that they all agree."""
    config = load_party_config(path)
    if not config.genesis_path.is_file():
        raise ConfigError(
            f"{config.genesis_path}: file not found", path=config.path, field="party.genesis"
        )
    genesis = load_genesis(config.genesis_path)
    if config.policy_path is not None and not config.policy_path.is_file():
        raise ConfigError(
            f"{config.policy_path}: file not found", path=config.path, field="party.policy"
        )
    unknown = sorted(set(config.peer_addresses) - {m.id for m in genesis.members})
    if unknown:
        raise ConfigError(
            f"not genesis members: {', '.join(unknown)}", path=config.path, field="peers"
        )
    identity = load_party_identity(
        genesis,
        config.member_id,
        signing_key_path=config.signing_key_path,
        tls_key_path=config.tls_key_path,
        tls_certificate_path=config.tls_certificate_path,
        config_path=config.path,
    )
    return Party(config, genesis, identity)


def render_config(
    member_id: str,
    *,
    genesis: str = "genesis.json",
    listen: str | None = None,
    data_dir: str = "data",
    key_dir: str = ".",
    metrics_listen: str | None = None,
) -> str:
    """A commented party config pointing at the files `party keygen` writes."""
    prefix = "" if key_dir in ("", ".") else key_dir.rstrip("/") + "/"
    party: dict[str, Any] = {"id": member_id, "genesis": genesis, "data_dir": data_dir}
    if listen is not None:
        party["listen"] = listen
    keys = {
        "signing_key": prefix + KEY_FILES["signing_key"],
        "tls_key": prefix + KEY_FILES["tls_key"],
        "tls_certificate": prefix + KEY_FILES["tls_certificate"],
        "tls_ca_key": prefix + KEY_FILES["tls_ca_key"],
    }
    document: dict[str, Any] = {"party": party, "keys": keys}
    if metrics_listen is not None:
        document["metrics"] = {"listen": metrics_listen}
    document["log"] = {"level": "info"}
    body = tomli_w.dumps(document)
    header = (
        f"# mpc-ledger party configuration for member {member_id!r}.\n"
        "# Paths are relative to this file.\n"
        "# Start with: mpc-ledger party start --config <this file>\n"
    )
    return header + body
