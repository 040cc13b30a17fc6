"""`mpc-ledger user ...`: a member's scientists and compliance officers.

`user keygen` runs on the user's machine; `user add` runs on the member's
(it needs the member's TLS CA key and writes the binding to the ledger, which
pins the user's TLS key); `user revoke` writes a revocation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mpc_ledger.cli._daemon_call import call_party_daemon, fail
from mpc_ledger.client import USER_FORMAT, create_user_profile
from mpc_ledger.documents import NestingError, parse_json
from mpc_ledger.errors import ConfigError, UserError
from mpc_ledger.identity import certs, keys
from mpc_ledger.identity.party import Party, load_party
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.ledger.records import USER_ROLES, make_record, member_of_user
from mpc_ledger.proto.v1 import ledger_pb2, ledger_service_pb2

REVOKE_REASON_MAX_BYTES = 1024


def register(groups: Any) -> None:
    user = groups.add_parser("user", help="a member's scientists and compliance officers")
    commands = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    keygen = commands.add_parser(
        "keygen",
        help="(user) make your keys and profile on your own machine",
        description="Create a user's signing and TLS keys (0600, never leave this machine), "
        "user.json (send it to your organisation's operator) and user.toml (your profile).",
    )
    keygen.add_argument("--id", required=True, help="<member id>/<name>, e.g. hospital-a/alice")
    keygen.add_argument("--out", required=True, type=Path, help="profile folder to create")
    keygen.set_defaults(handler=keygen_command)
    add = commands.add_parser(
        "add",
        help="(operator) bind a user's key on the ledger and issue their TLS certificate",
    )
    add.add_argument("user_file", type=Path, metavar="USER_JSON")
    add.add_argument("--roles", required=True, help=f"comma-separated: {', '.join(USER_ROLES)}")
    add.add_argument("--name", default="", help="display name (informational)")
    add.add_argument("--config", required=True, type=Path, help="the member's party.toml")
    add.add_argument("--out", type=Path, help="certificate to write (default: next to USER_JSON)")
    add.add_argument("--days", type=int, default=certs.LEAF_VALIDITY_DAYS)
    add.set_defaults(handler=add_command)
    revoke = commands.add_parser(
        "revoke",
        help="(operator) revoke a user's key on the ledger",
        description="Write the revocation of one of this member's users to the ledger. Once "
        "it commits, the user's requests, open streams included, are refused on every "
        "daemon; `user add` with new keys binds the id again (the old certificate stays "
        "refused).",
    )
    revoke.add_argument("user_id", metavar="USER_ID", help="<member id>/<name>")
    revoke.add_argument("--reason", default="", help="why (on the ledger: no secrets)")
    revoke.add_argument("--config", required=True, type=Path, help="the member's party.toml")
    revoke.set_defaults(handler=revoke_command)


def keygen_command(args: argparse.Namespace) -> int:
    create_user_profile(args.out, args.id)
    print(f"created user {args.id!r} in {args.out}")
    print(f"  send {args.out / 'user.json'} to the operator of {member_of_user(args.id)!r}")
    print(f"  put the certificate they send back at {args.out / 'keys' / 'tls.crt'}")
    print(f"  and the consortium's genesis.json at {args.out / 'genesis.json'}")
    return 0


def _read_user_file(path: Path) -> dict[str, Any]:
    try:
        document = parse_json(path.read_text())
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON (line {exc.lineno})", path=path) from None
    except NestingError as exc:
        raise ConfigError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(document, dict) or document.get("format") != USER_FORMAT:
        raise ConfigError(f"not a user file (format {USER_FORMAT!r})", path=path)
    return document


def add_command(args: argparse.Namespace) -> int:
    party = load_party(args.config)
    member = party.identity.member
    document = _read_user_file(args.user_file)
    user_id = document.get("user_id")
    if not isinstance(user_id, str) or member_of_user(user_id) != member.id:
        raise ConfigError(
            f"user {user_id!r} is not in {member.id!r}'s namespace ('{member.id}/<name>')",
            path=args.user_file,
            field="user_id",
        )
    roles = sorted({r.strip() for r in args.roles.split(",") if r.strip()})
    if not roles or any(r not in USER_ROLES for r in roles):
        raise UserError(f"choose from {', '.join(USER_ROLES)}", field="--roles")
    try:
        signing_key = bytes.fromhex(str(document.get("signing_public_key", "")))
        tls_public = serialization.load_pem_public_key(str(document["tls_public_key"]).encode())
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"unreadable key: {exc}", path=args.user_file) from None
    if len(signing_key) != 32 or not isinstance(tls_public, ec.EllipticCurvePublicKey):
        raise ConfigError("keys are not an Ed25519 and an ECDSA key", path=args.user_file)
    if party.config.tls_ca_key_path is None:
        raise ConfigError(
            "needed to issue user certificates", path=args.config, field="keys.tls_ca_key"
        )
    ca_key = keys.load_tls_key(party.config.tls_ca_key_path, field="keys.tls_ca_key")
    ca_certificate = x509.load_der_x509_certificate(member.tls_ca_certificate)
    certificate = certs.issue_user_certificate(
        user_id, tls_public, ca_certificate, ca_key, now=dt.datetime.now(dt.UTC), days=args.days
    )
    out: Path = args.out or args.user_file.with_name(f"{user_id.split('/')[1]}.crt")
    binding = ledger_pb2.UserKeyBinding(
        user_id=user_id,
        public_key=signing_key,
        roles=roles,
        display_name=args.name,
        tls_spki_sha256=certs.spki_sha256(tls_public),
    )

    def bound(reply: ledger_service_pb2.SubmitResponse) -> int:
        # Only once committed: a certificate for a binding the ledger does not have is no use.
        keys.write_public_file(out, certificate.public_bytes(serialization.Encoding.PEM))
        record = reply.record_id.hex()
        print(f"bound {user_id!r} ({', '.join(roles)}) on the ledger; record {record}")
        print(f"  send {out} (their keys/tls.crt) and the genesis.json to the user")
        return 0

    return _submit_member_record(party, "binding", bound, bind_user=binding)


def revoke_command(args: argparse.Namespace) -> int:
    party = load_party(args.config)
    member = party.identity.member
    if member_of_user(args.user_id) != member.id:
        raise UserError(
            f"user {args.user_id!r} is not in {member.id!r}'s namespace ('{member.id}/<name>')",
            field="USER_ID",
        )
    if len(args.reason.encode()) > REVOKE_REASON_MAX_BYTES:
        raise UserError(f"longer than {REVOKE_REASON_MAX_BYTES} bytes", field="--reason")
    revocation = ledger_pb2.UserKeyRevocation(user_id=args.user_id, reason=args.reason)

    def revoked(reply: ledger_service_pb2.SubmitResponse) -> int:
        print(f"revoked {args.user_id!r} on the ledger; record {reply.record_id.hex()}")
        print("  its open calls end now; bind it again (`user add`) with new keys to restore it")
        return 0

    return _submit_member_record(party, "revocation", revoked, revoke_user=revocation)


def _submit_member_record(
    party: Party,
    what: str,
    committed: Callable[[ledger_service_pb2.SubmitResponse], int],
    **payload: Any,
) -> int:
    """Sign ``payload`` as the member, submit it, wait for the commit, then ``committed(reply)``;
    exit 1 (saying why on stderr) if the daemon did not answer, the ledger refused the record
    or it did not commit."""

    def action(client: LedgerClient) -> int:
        body = ledger_pb2.RecordBody(
            author=party.identity.member.id,
            nonce=secrets.randbits(63),
            created_ms=int(time.time() * 1000),
            **payload,
        )
        reply = client.submit(make_record(client.signer, body))
        if not reply.accepted:
            return fail(f"the ledger refused the {what}: {reply.reason}")
        if not client.wait_committed(reply.record_id).committed:
            return fail(f"the {what} was accepted but has not committed yet")
        return committed(reply)

    return call_party_daemon(party, action)
