"""The Python API for a member's users (scientists, compliance officers).

A user has a profile folder made by `mpc-ledger user keygen` on the user's
own machine:

    keys/signing.key   Ed25519 key that signs every request (0600)
    keys/tls.key       TLS client key (0600)
    keys/tls.crt       TLS client certificate, issued by the member's CA
                       (`mpc-ledger user add` on the member's side)
    genesis.json       the consortium's genesis (from the member's operator)
    user.json          the public half, sent to the member's operator
    user.toml          this profile

`UserClient` talks to the user's own member's daemon over mTLS as the user.
Every record it writes is signed with the user's key; the daemon accepts the
connection only while the ledger holds the user's key, not revoked.

    from mpc_ledger.client import UserClient
    with UserClient.from_profile("~/alice") as client:
        print(client.tip().height)
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
import tomllib
from pathlib import Path
from typing import Any

import grpc
import nacl.signing
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mpc_ledger.errors import ConfigError
from mpc_ledger.identity import keys
from mpc_ledger.identity.genesis import Genesis, Member, load_genesis
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.client import LedgerCalls
from mpc_ledger.ledger.records import make_record, member_of_user
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import (
    ledger_pb2,
    ledger_service_pb2_grpc,
)

__all__ = ["USER_FORMAT", "UserClient", "UserProfile", "create_user_profile"]

USER_FORMAT = "mpc-ledger/user/v1"


@dataclasses.dataclass(frozen=True)
class UserProfile:
    path: Path
    user_id: str
    signing_key: nacl.signing.SigningKey = dataclasses.field(repr=False)
    tls_key_pem: bytes = dataclasses.field(repr=False)
    tls_certificate: x509.Certificate
    genesis: Genesis
    endpoint: str | None

    @property
    def member(self) -> Member:
        member_id = member_of_user(self.user_id) or ""
        member = self.genesis.member(member_id)
        if member is None:
            raise ConfigError(f"member {member_id!r} is not in the genesis", path=self.path)
        return member

    @classmethod
    def load(cls, path: Path | str) -> UserProfile:
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / "user.toml"
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("user profile not found", path=path) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=path) from None
        base = path.parent

        def file(field: str) -> Path:
            value = raw.get(field)
            if not isinstance(value, str) or not value:
                raise ConfigError("required path", path=path, field=field)
            return (base / value).resolve()

        user_id = raw.get("user_id")
        if not isinstance(user_id, str) or member_of_user(user_id) is None:
            raise ConfigError("must be '<member id>/<name>'", path=path, field="user_id")
        certificate_path = file("tls_certificate")
        if not certificate_path.is_file():
            raise ConfigError(
                f"{certificate_path} is missing: ask your organisation's operator to run "
                f"`mpc-ledger user add` with your user.json and put the certificate there",
                path=path,
                field="tls_certificate",
            )
        genesis_path = file("genesis")
        if not genesis_path.is_file():
            raise ConfigError(
                f"{genesis_path} is missing: get genesis.json from your organisation's operator",
                path=path,
                field="genesis",
            )
        try:
            certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        except ValueError as exc:
            raise ConfigError(
                f"not a PEM certificate: {exc}", path=path, field="tls_certificate"
            ) from None
        endpoint = raw.get("endpoint") or None
        return cls(
            path=path,
            user_id=user_id,
            signing_key=keys.load_signing_key(file("signing_key"), field="signing_key"),
            tls_key_pem=keys.tls_key_pem(keys.load_tls_key(file("tls_key"), field="tls_key")),
            tls_certificate=certificate,
            genesis=load_genesis(genesis_path),
            endpoint=endpoint if isinstance(endpoint, str) else None,
        )


def create_user_profile(out: Path, user_id: str) -> dict[str, Any]:
    """Make a user's keys and profile under ``out``; return the public user document."""
    if member_of_user(user_id) is None:
        raise ConfigError(f"{user_id!r} must be '<member id>/<name>'", field="--id")
    for name in ("keys/signing.key", "keys/tls.key", "user.json", "user.toml"):
        if (out / name).exists():
            raise ConfigError("already exists; refusing to overwrite", path=out / name)
    (out / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
    signing_key = keys.generate_signing_key()
    tls_key = keys.generate_tls_key()
    keys.write_private_file(out / "keys" / "signing.key", keys.signing_key_pem(signing_key))
    keys.write_private_file(out / "keys" / "tls.key", keys.tls_key_pem(tls_key))
    public = {
        "format": USER_FORMAT,
        "user_id": user_id,
        "signing_public_key": bytes(signing_key.verify_key).hex(),
        "tls_public_key": tls_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }
    keys.write_public_file(out / "user.json", (json.dumps(public, indent=2) + "\n").encode())
    profile = {
        "user_id": user_id,
        "signing_key": "keys/signing.key",
        "tls_key": "keys/tls.key",
        "tls_certificate": "keys/tls.crt",
        "genesis": "genesis.json",
        "endpoint": "",
    }
    header = (
        "# mpc-ledger user profile. `endpoint` empty: your organisation's daemon as the\n"
        "# genesis lists it; set host:port to reach it another way.\n"
    )
    keys.write_public_file(out / "user.toml", (header + tomli_w.dumps(profile)).encode())
    return public


class UserClient(LedgerCalls):
    """A user's connection to their own member's daemon (see the module docstring)."""

    def __init__(self, profile: UserProfile) -> None:
        self.profile = profile
        member = profile.member
        leaf = profile.tls_certificate.public_bytes(serialization.Encoding.PEM)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=member.tls_ca_certificate_pem,
            private_key=profile.tls_key_pem,
            certificate_chain=leaf + member.tls_ca_certificate_pem,
        )
        options = [*mtls.channel_options(), ("grpc.ssl_target_name_override", member.id)]
        self._channel = grpc.secure_channel(
            profile.endpoint or member.endpoint, credentials, options=options
        )
        self.stub = ledger_service_pb2_grpc.LedgerStub(self._channel)
        self.signer = Signer(profile.signing_key, profile.genesis.chain_id)

    @classmethod
    def from_profile(cls, path: Path | str) -> UserClient:
        return cls(UserProfile.load(path))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> UserClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sign(self, **payload: Any) -> ledger_pb2.Record:
        """A record with ``payload`` (e.g. ``note=Note(text=...)``) signed by this user."""
        body = ledger_pb2.RecordBody(
            author=self.profile.user_id,
            nonce=secrets.randbits(63),
            created_ms=int(time.time() * 1000),
            **payload,
        )
        return make_record(self.signer, body)
