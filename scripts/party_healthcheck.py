"""Is this party's daemon serving? One gRPC health check over mTLS, as the party itself.

For container health checks (Docker HEALTHCHECK, Kubernetes exec probes, a
systemd watchdog script): exit 0 when the daemon answers SERVING, 1 otherwise,
with one line on stdout saying which (Docker keeps it in `docker inspect`).

Why not `mpc-ledger status`: that imports the whole package (PyTorch and
CrypTen, about 1.5 s of CPU per probe) and asks the daemon to probe every
peer, so a probe would load the peers too and fail when a peer is down. This
script imports only grpcio and the standard library (about 0.1 s), asks the
daemon's own `grpc.health.v1.Health/Check`, and does not depend on peers:
a party whose peers are down is still a live, ready party.

Why not kubelet's native gRPC probe: it speaks plaintext, and the daemon
serves mTLS only, with a client certificate a member's CA issued. This script
presents the party's own TLS certificate (read through party.toml, like the
daemon) and trusts only the party's own CA from the genesis, under the name
the certificate carries (the member id), exactly as a peer would dial it.

It deliberately does not import mpc_ledger: it reads the few fields it needs
from party.toml and genesis.json itself, and an unreadable config is an
unhealthy party (exit 1), never a stack trace.

    python party_healthcheck.py [--config party.toml] [--timeout 3] [--service NAME]

The config defaults to $MPC_LEDGER_CONFIG, then /etc/mpc-ledger/party.toml.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

DEFAULT_CONFIG = "/etc/mpc-ledger/party.toml"
WILDCARD_HOSTS = ("0.0.0.0", "", "[::]", "::")  # noqa: S104 - dialled as loopback, never bound


class CheckError(Exception):
    """Why the check could not even be attempted (a config or key problem)."""


def local_target(address: str) -> str:
    """Where to dial a daemon that listens on ``address`` from the same host."""
    host, _, port = address.rpartition(":")
    if host in WILDCARD_HOSTS:
        return f"127.0.0.1:{port}"
    return address


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckError(f"cannot read {what} {path}: {exc.strerror}") from None


def load_probe(config_path: Path) -> tuple[str, str, bytes, bytes, bytes]:
    """(target, member id, trusted CA PEM, client key PEM, client certificate chain PEM)."""
    try:
        config = tomllib.loads(_read(config_path, "config").decode())
        party, keys = config["party"], config["keys"]
        member_id, genesis_name = party["id"], party["genesis"]
        key_name, certificate_name = keys["tls_key"], keys["tls_certificate"]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise CheckError(f"{config_path}: not a party config ({exc!r})") from None
    base = config_path.parent

    def resolve(value: str) -> Path:
        return Path(value) if Path(value).is_absolute() else base / value

    try:
        genesis = json.loads(_read(resolve(genesis_name), "genesis"))
        member = next(m for m in genesis["members"] if m["id"] == member_id)
        endpoint, ca_pem = member["endpoint"], member["tls_ca_certificate"].encode()
    except (ValueError, KeyError, TypeError, StopIteration):
        raise CheckError(f"genesis has no usable entry for member {member_id!r}") from None
    certificate = _read(resolve(certificate_name), "TLS certificate")
    key = _read(resolve(key_name), "TLS key")
    target = local_target(party.get("listen") or endpoint)
    return target, member_id, ca_pem, key, certificate + ca_pem


def check(config_path: Path, *, timeout_s: float, service: str = "") -> tuple[bool, str]:
    """(serving?, one line saying what was seen)."""
    try:
        target, member_id, ca_pem, key, chain = load_probe(config_path)
    except CheckError as exc:
        return False, f"unhealthy: {exc}"
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key, certificate_chain=chain
    )
    options = [("grpc.ssl_target_name_override", member_id)]
    with grpc.secure_channel(target, credentials, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code().name if exc.code() else "UNKNOWN"
            detail = exc.details() or ""
            return False, f"unhealthy: party {member_id!r} at {target}: {code} {detail}".rstrip()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    healthy = reply.status == health_pb2.HealthCheckResponse.SERVING
    word = "healthy" if healthy else "unhealthy"
    return healthy, f"{word}: party {member_id!r} at {target}: {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("MPC_LEDGER_CONFIG") or DEFAULT_CONFIG),
        help="party.toml (default: $MPC_LEDGER_CONFIG, then %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default: 3)")
    parser.add_argument("--service", default="", help='health service name (default: "")')
    args = parser.parse_args(argv)
    healthy, line = check(args.config, timeout_s=args.timeout, service=args.service)
    print(line)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
