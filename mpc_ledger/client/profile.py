"""A user's profile folder: keys, certificate, genesis (`mpc-ledger user keygen` makes it).

    keys/signing.key   Ed25519 key that signs every request (0600)
    keys/tls.key       TLS client key (0600)
    keys/tls.crt       TLS client certificate, issued by the member's CA
                       (`mpc-ledger user add` on the member's side)
    genesis.json       the consortium's genesis (from the member's operator)
    user.json          the public half, sent to the member's operator
    user.toml          this profile

Private keys are made here, on the user's own machine, and written 0600.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import nacl.signing
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mpc_ledger.documents import NestingError, parse_toml
from mpc_ledger.errors import ConfigError
from mpc_ledger.identity import keys
from mpc_ledger.identity.genesis import Genesis, Member, load_genesis
from mpc_ledger.ledger.records import member_of_user

__all__ = ["USER_FORMAT", "UserProfile", "create_user_profile"]

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
            raw = parse_toml(path.read_text())
        except FileNotFoundError:
            raise ConfigError("user profile not found", path=path) from None
        except (tomllib.TOMLDecodeError, NestingError) as exc:
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
