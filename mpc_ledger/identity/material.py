"""A party's key material: made on the party's own machine, loaded and checked at start.

Layout of a party directory (made by `mpc-ledger party keygen`):

    keys/signing.key   Ed25519 signing key           0600, never leaves the machine
    keys/tls-ca.key    the member's TLS CA key       0600, never leaves the machine
    keys/tls-ca.crt    the member's TLS CA cert      public, also in member.json
    keys/tls.key       TLS leaf key                  0600, never leaves the machine
    keys/tls.crt       TLS leaf cert (issued by CA)  public
    member.json        the public member file to send to the consortium
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import nacl.signing
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mpc_ledger.errors import IdentityError
from mpc_ledger.identity import certs, keys
from mpc_ledger.identity.genesis import MEMBER_FORMAT, Genesis, Member, parse_endpoint

__all__ = [
    "KEY_FILES",
    "PartyIdentity",
    "generate_party_material",
    "load_party_identity",
]

KEY_FILES = {
    "signing_key": "keys/signing.key",
    "tls_ca_key": "keys/tls-ca.key",
    "tls_ca_certificate": "keys/tls-ca.crt",
    "tls_key": "keys/tls.key",
    "tls_certificate": "keys/tls.crt",
}


def generate_party_material(
    out_dir: Path,
    *,
    member_id: str,
    endpoint: str,
    roles: tuple[str, ...],
    organisation: str = "",
    now: dt.datetime | None = None,
    tls_validity_days: int = certs.LEAF_VALIDITY_DAYS,
) -> Member:
    """Create every key and certificate of one party under ``out_dir``; return its member entry."""
    now = now or dt.datetime.now(dt.UTC)
    host, _ = parse_endpoint(endpoint)
    for relative in (*KEY_FILES.values(), "member.json"):
        if (out_dir / relative).exists():
            raise IdentityError(
                "already exists; refusing to overwrite keys", path=out_dir / relative
            )
    (out_dir / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
    (out_dir / "keys").chmod(0o700)

    signing_key = keys.generate_signing_key()
    ca_key = keys.generate_tls_key()
    ca_certificate = certs.make_ca_certificate(member_id, ca_key, now=now)
    leaf_key = keys.generate_tls_key()
    leaf = certs.issue_leaf_certificate(
        member_id,
        leaf_key.public_key(),
        ca_certificate,
        ca_key,
        now=now,
        days=tls_validity_days,
        extra_hosts=(host,),
    )
    pem = serialization.Encoding.PEM
    keys.write_private_file(out_dir / KEY_FILES["signing_key"], keys.signing_key_pem(signing_key))
    keys.write_private_file(out_dir / KEY_FILES["tls_ca_key"], keys.tls_key_pem(ca_key))
    keys.write_private_file(out_dir / KEY_FILES["tls_key"], keys.tls_key_pem(leaf_key))
    keys.write_public_file(
        out_dir / KEY_FILES["tls_ca_certificate"], ca_certificate.public_bytes(pem)
    )
    keys.write_public_file(out_dir / KEY_FILES["tls_certificate"], leaf.public_bytes(pem))
    member = Member(
        id=member_id,
        roles=tuple(sorted(roles)),
        signing_public_key=bytes(signing_key.verify_key),
        tls_ca_certificate=ca_certificate.public_bytes(serialization.Encoding.DER),
        endpoint=endpoint,
        organisation=organisation,
    )
    document = {"format": MEMBER_FORMAT, **member.to_json()}
    keys.write_public_file(
        out_dir / "member.json", (json.dumps(document, indent=2) + "\n").encode()
    )
    return member


@dataclasses.dataclass(frozen=True)
class PartyIdentity:
    """Everything a running party proves itself with, checked against the genesis."""

    member: Member
    genesis: Genesis
    signing_key: nacl.signing.SigningKey = dataclasses.field(repr=False)
    tls_key_pem: bytes = dataclasses.field(repr=False)
    tls_certificate: x509.Certificate

    @property
    def tls_certificate_chain_pem(self) -> bytes:
        """Leaf then CA: a peer that trusts only our CA can build the chain."""
        leaf = self.tls_certificate.public_bytes(serialization.Encoding.PEM)
        return leaf + self.member.tls_ca_certificate_pem


def load_party_identity(
    genesis: Genesis,
    member_id: str,
    *,
    signing_key_path: Path,
    tls_key_path: Path,
    tls_certificate_path: Path,
    config_path: Path | str,
    now: dt.datetime | None = None,
) -> PartyIdentity:
    """Load a party's keys and check each one against its genesis entry.

    Every mismatch names the config file and the field that points at the
    offending file, since that is what the operator edits.
    """
    now = now or dt.datetime.now(dt.UTC)
    member = genesis.member(member_id)
    if member is None:
        known = ", ".join(m.id for m in genesis.members)
        raise IdentityError(
            f"member {member_id!r} is not in the genesis (members: {known})",
            path=config_path,
            field="party.id",
        )
    signing_key = keys.load_signing_key(signing_key_path, field="keys.signing_key")
    if bytes(signing_key.verify_key) != member.signing_public_key:
        raise IdentityError(
            f"{signing_key_path} is not the signing key the genesis lists for {member_id!r}",
            path=config_path,
            field="keys.signing_key",
        )
    tls_key = keys.load_tls_key(tls_key_path, field="keys.tls_key")
    leaf = _load_certificate(tls_certificate_path, config_path)
    _check_leaf(leaf, member, tls_certificate_path, config_path, now)
    if leaf.public_key() != tls_key.public_key():
        raise IdentityError(
            f"{tls_key_path} is not the key of certificate {tls_certificate_path}",
            path=config_path,
            field="keys.tls_key",
        )
    return PartyIdentity(member, genesis, signing_key, keys.tls_key_pem(tls_key), leaf)


def _load_certificate(path: Path, config_path: Path | str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise IdentityError(
            f"{path}: file not found", path=config_path, field="keys.tls_certificate"
        ) from None
    except ValueError as exc:
        raise IdentityError(
            f"{path}: not a PEM certificate ({exc})", path=config_path, field="keys.tls_certificate"
        ) from None


def _check_leaf(
    leaf: x509.Certificate,
    member: Member,
    path: Path,
    config_path: Path | str,
    now: dt.datetime,
) -> None:
    def fail(message: str) -> IdentityError:
        return IdentityError(f"{path}: {message}", path=config_path, field="keys.tls_certificate")

    if certs.leaf_member_id(leaf) != member.id:
        raise fail(f"names {certs.leaf_member_id(leaf)!r}, not {member.id!r}")
    problem = certs.issuance_problem(leaf, member.tls_ca_certificate)
    if problem is not None:
        raise fail(f"was not issued by {member.id!r}'s CA in the genesis ({problem})")
    if leaf.not_valid_after_utc <= now:
        raise fail(f"expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if leaf.not_valid_before_utc > now:
        raise fail(f"not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
