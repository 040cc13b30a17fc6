"""The consortium's trust root: members, their keys, and the consortium's parameters.

`genesis.json` is the only file every party must agree on byte for byte in
meaning. Its chain id is SHA-256 over a purpose tag and the deterministic
protobuf encoding of `mpc_ledger.v1.Genesis` (members sorted by id, roles
sorted), so two operators who load the same members compute the same id no
matter how the JSON was formatted. The JSON also carries the chain id it was
written with; a file whose content no longer hashes to it is refused (it was
edited after assembly).

Member files (`member.json`) are the public half of `party keygen`: what an
operator sends to whoever assembles the consortium.

Loading never trusts the file: every problem is reported, all at once, with
the file and the field.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from google.protobuf.descriptor import FieldDescriptor

from mpc_ledger.documents import NestingError, parse_json
from mpc_ledger.errors import ConfigError
from mpc_ledger.identity.certs import certificate_fingerprint, der_to_pem, pem_to_der
from mpc_ledger.identity.ids import MEMBER_ID
from mpc_ledger.proto.v1 import identity_pb2

__all__ = [
    "DEFAULT_MIN_TEST_ROWS",
    "GENESIS_FORMAT",
    "MEMBER_FORMAT",
    "ROLES",
    "ConsensusParams",
    "Genesis",
    "Member",
    "MpcParams",
    "QuotaParams",
    "assemble_genesis",
    "check_member_id",
    "load_genesis",
    "load_member_file",
    "parse_endpoint",
]

GENESIS_FORMAT = "mpc-ledger/genesis/v1"
MEMBER_FORMAT = "mpc-ledger/member/v1"
ROLES = ("data", "dealer", "observer", "validator")
_CHAIN_ID_TAG = b"mpc-ledger/genesis/v1\x00"


@dataclasses.dataclass(frozen=True)
class Member:
    id: str
    roles: tuple[str, ...]
    signing_public_key: bytes
    tls_ca_certificate: bytes  # DER
    endpoint: str
    organisation: str = ""

    @property
    def tls_ca_fingerprint(self) -> bytes:
        return hashlib.sha256(self.tls_ca_certificate).digest()

    @property
    def tls_ca_certificate_pem(self) -> bytes:
        return der_to_pem(self.tls_ca_certificate)

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def to_proto(self) -> identity_pb2.Member:
        return identity_pb2.Member(
            id=self.id,
            roles=sorted(self.roles),
            signing_public_key=self.signing_public_key,
            tls_ca_certificate=self.tls_ca_certificate,
            endpoint=self.endpoint,
            organisation=self.organisation,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organisation": self.organisation,
            "roles": sorted(self.roles),
            "endpoint": self.endpoint,
            "signing_public_key": self.signing_public_key.hex(),
            "tls_ca_fingerprint_sha256": self.tls_ca_fingerprint.hex(),
            "tls_ca_certificate": self.tls_ca_certificate_pem.decode(),
        }


@dataclasses.dataclass(frozen=True)
class ConsensusParams:
    # Tendermint's timeouts; they only matter when a proposer or votes are
    # missing (a healthy network commits in milliseconds).
    timeout_propose_ms: int = 3000
    timeout_propose_delta_ms: int = 500
    timeout_prevote_ms: int = 1000
    timeout_prevote_delta_ms: int = 500
    timeout_precommit_ms: int = 1000
    timeout_precommit_delta_ms: int = 500
    max_block_records: int = 2000
    max_record_bytes: int = 1 << 20
    empty_block_interval_ms: int = 1000

    def to_proto(self) -> identity_pb2.ConsensusParams:
        return identity_pb2.ConsensusParams(**dataclasses.asdict(self))


# A job's test metric is revealed to its submitter: over fewer rows it can describe one
# person. Every job of a consortium tests on at least this many (its genesis may say more).
DEFAULT_MIN_TEST_ROWS = 10


@dataclasses.dataclass(frozen=True)
class QuotaParams:
    """What one user may write (members' own records are not counted).

    The window quota is part of the ledger's rules, so every validator gives
    the same answer: per user, per window of ``user_window_blocks`` heights,
    at most so many records and bytes. The submit rate is checked only where
    a record is submitted, against that daemon's clock: a token bucket per
    user, never part of what validators replay.
    """

    user_window_blocks: int = 1000
    user_records_per_window: int = 1000
    user_bytes_per_window: int = 4 * 1024 * 1024
    user_submit_per_s: int = 20
    user_submit_burst: int = 200

    def to_proto(self) -> identity_pb2.QuotaParams:
        return identity_pb2.QuotaParams(**dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class MpcParams:
    allowed_protocols: tuple[str, ...] = ("crypten-0.4.1-arithmetic",)
    allowed_tuple_providers: tuple[str, ...] = ("dealer",)
    min_test_rows: int = DEFAULT_MIN_TEST_ROWS

    def __post_init__(self) -> None:
        # 0 on the wire stands for the default (`to_proto`), so it cannot be a value too.
        if self.min_test_rows < 1:
            raise ValueError(f"min_test_rows must be at least 1, not {self.min_test_rows}")

    def to_proto(self) -> identity_pb2.MpcParams:
        return identity_pb2.MpcParams(
            allowed_protocols=list(self.allowed_protocols),
            allowed_tuple_providers=list(self.allowed_tuple_providers),
            # Only when not the default, as with `QuotaParams`: a genesis from before the
            # field keeps its chain id. So the default is part of what such a chain means
            # and must never change (a new default needs a new field).
            min_test_rows=0 if self.min_test_rows == DEFAULT_MIN_TEST_ROWS else self.min_test_rows,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "allowed_protocols": list(self.allowed_protocols),
            "allowed_tuple_providers": list(self.allowed_tuple_providers),
        }
        if self.min_test_rows != DEFAULT_MIN_TEST_ROWS:
            document["min_test_rows"] = self.min_test_rows
        return document


@dataclasses.dataclass(frozen=True)
class Genesis:
    consortium: str
    genesis_time: str
    members: tuple[Member, ...]
    consensus: ConsensusParams = ConsensusParams()
    mpc: MpcParams = MpcParams()
    format_version: int = 1
    quotas: QuotaParams = QuotaParams()

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", tuple(sorted(self.members, key=lambda m: m.id)))

    def to_proto(self) -> identity_pb2.Genesis:
        return identity_pb2.Genesis(
            format_version=self.format_version,
            consortium=self.consortium,
            genesis_time=self.genesis_time,
            members=[m.to_proto() for m in self.members],
            consensus=self.consensus.to_proto(),
            mpc=self.mpc.to_proto(),
            # Only when set: a genesis from before quotas keeps its chain id.
            quotas=self.quotas.to_proto() if self.quotas != QuotaParams() else None,
        )

    @functools.cached_property
    def chain_id(self) -> bytes:
        """SHA-256 over the deterministic encoding (computed once: it is on hot paths)."""
        encoded = self.to_proto().SerializeToString(deterministic=True)
        return hashlib.sha256(_CHAIN_ID_TAG + encoded).digest()

    def member(self, member_id: str) -> Member | None:
        for member in self.members:
            if member.id == member_id:
                return member
        return None

    def with_role(self, role: str) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.has_role(role))

    @property
    def validators(self) -> tuple[Member, ...]:
        return self.with_role("validator")

    def to_json(self) -> str:
        document = {
            "format": GENESIS_FORMAT,
            "chain_id": self.chain_id.hex(),
            "consortium": self.consortium,
            "genesis_time": self.genesis_time,
            "consensus": dataclasses.asdict(self.consensus),
            "mpc": self.mpc.to_json(),
            "members": [m.to_json() for m in self.members],
        }
        if self.quotas != QuotaParams():
            document["quotas"] = dataclasses.asdict(self.quotas)
        return json.dumps(document, indent=2) + "\n"


def check_member_id(member_id: str, *, field: str = "id") -> str:
    """Return ``member_id`` if it is a valid id, else raise ConfigError naming ``field``."""
    if not MEMBER_ID.match(member_id):
        raise ConfigError(
            f"{member_id!r} is not a valid member id: lowercase letters, digits and '-', "
            "starting with a letter or digit, at most 63 characters",
            field=field,
        )
    return member_id


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6); raise ValueError saying why not."""
    host, sep, port_text = endpoint.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{endpoint!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{endpoint!r}: port must be a number from 1 to 65535")
    if host in ("0.0.0.0", "::"):  # noqa: S104 - refusing it, not binding it
        raise ValueError(f"{endpoint!r}: a wildcard address cannot be dialled; name the host")
    if any(c.isspace() for c in host):
        raise ValueError(f"{endpoint!r}: host contains whitespace")
    return host, int(port_text)


class _Problems:
    """Collects every problem in one document so the user sees them all at once."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.items: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(f"{field}: {message}")

    def raise_if_any(self) -> None:
        if len(self.items) == 1:  # one line: "file: field: what"
            raise ConfigError(self.items[0], path=self.path)
        if self.items:
            raise ConfigError("\n  ".join(["invalid:", *self.items]), path=self.path)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    try:
        return parse_json(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno})", path=path
        ) from None
    except NestingError as exc:
        raise ConfigError(f"not valid JSON: {exc}", path=path) from None


def member_from_json(doc: Any, problems: _Problems, prefix: str) -> Member | None:
    if not isinstance(doc, dict):
        problems.add(prefix or "document", "must be a JSON object")
        return None
    before = len(problems.items)

    def text(field: str, *, required: bool = True) -> str:
        value = doc.get(field, None if required else "")
        if not isinstance(value, str) or (required and not value):
            problems.add(f"{prefix}{field}", "required string" if required else "must be a string")
            return ""
        return value

    member_id = text("id")
    if member_id and not MEMBER_ID.match(member_id):
        problems.add(f"{prefix}id", f"{member_id!r} must match {MEMBER_ID.pattern}")
    roles_value = doc.get("roles")
    roles: tuple[str, ...] = ()
    if not isinstance(roles_value, list) or not roles_value:
        problems.add(f"{prefix}roles", f"a non-empty list of {', '.join(ROLES)}")
    else:
        roles = tuple(sorted({str(r) for r in roles_value}))
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            problems.add(f"{prefix}roles", f"unknown role(s) {unknown}; known: {', '.join(ROLES)}")
        if len(roles) != len(roles_value):
            problems.add(f"{prefix}roles", "lists a role twice")
    endpoint = text("endpoint")
    if endpoint:
        try:
            parse_endpoint(endpoint)
        except ValueError as exc:
            problems.add(f"{prefix}endpoint", str(exc))
    signing_key = b""
    try:
        signing_key = bytes.fromhex(text("signing_public_key"))
        if len(signing_key) != 32:
            problems.add(f"{prefix}signing_public_key", "must be 32 bytes (64 hex digits)")
    except ValueError:
        problems.add(f"{prefix}signing_public_key", "not hex")
    ca_der = _ca_certificate(doc, problems, prefix)
    organisation = text("organisation", required=False)
    if len(problems.items) > before or ca_der is None:
        return None
    return Member(member_id, roles, signing_key, ca_der, endpoint, organisation)


def _ca_certificate(doc: dict[str, Any], problems: _Problems, prefix: str) -> bytes | None:
    pem = doc.get("tls_ca_certificate")
    if not isinstance(pem, str) or not pem:
        problems.add(f"{prefix}tls_ca_certificate", "required PEM certificate")
        return None
    try:
        der = pem_to_der(pem.encode())
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        problems.add(f"{prefix}tls_ca_certificate", f"not a PEM X.509 certificate ({exc})")
        return None
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        problems.add(f"{prefix}tls_ca_certificate", "is not a CA certificate")
    fingerprint = doc.get("tls_ca_fingerprint_sha256")
    if fingerprint is not None and fingerprint != certificate_fingerprint(certificate).hex():
        problems.add(
            f"{prefix}tls_ca_fingerprint_sha256", "does not match tls_ca_certificate (edited?)"
        )
    return der


def load_member_file(path: Path) -> Member:
    doc = _read_json(path)
    problems = _Problems(path)
    if isinstance(doc, dict) and doc.get("format") != MEMBER_FORMAT:
        problems.add("format", f"expected {MEMBER_FORMAT!r}")
    member = member_from_json(doc, problems, "")
    problems.raise_if_any()
    assert member is not None
    return member


def validate_members(members: Sequence[Member], problems: _Problems, names: Sequence[str]) -> None:
    """Consortium-wide rules: unique ids, keys, CAs and endpoints; a validator exists."""
    _unique(problems, names, [m.id for m in members], "id")
    _unique(problems, names, [m.signing_public_key.hex() for m in members], "signing_public_key")
    _unique(problems, names, [m.tls_ca_fingerprint.hex() for m in members], "tls_ca_certificate")
    _unique(problems, names, [m.endpoint for m in members], "endpoint")
    if members and not any(m.has_role("validator") for m in members):
        problems.add("members", "at least one member must have the 'validator' role")


def _unique(problems: _Problems, names: Sequence[str], values: Iterable[str], field: str) -> None:
    seen: dict[str, str] = {}
    for name, value in zip(names, values, strict=True):
        if value in seen:
            problems.add(f"{name}: {field}", f"same as {seen[value]}")
        else:
            seen[value] = name


def assemble_genesis(
    members: Sequence[Member],
    *,
    consortium: str,
    genesis_time: str,
    sources: Sequence[str],
    consensus: ConsensusParams | None = None,
    mpc: MpcParams | None = None,
) -> Genesis:
    problems = _Problems("consortium")
    if not members:
        problems.add("members", "no member files given")
    validate_members(members, problems, sources)
    problems.raise_if_any()
    return Genesis(
        consortium=consortium,
        genesis_time=genesis_time,
        members=tuple(members),
        consensus=consensus or ConsensusParams(),
        mpc=mpc or MpcParams(),
    )


def load_genesis(path: Path) -> Genesis:
    doc = _read_json(path)
    problems = _Problems(path)
    if not isinstance(doc, dict):
        raise ConfigError("must be a JSON object", path=path)
    if doc.get("format") != GENESIS_FORMAT:
        problems.add("format", f"expected {GENESIS_FORMAT!r}")
    members: list[Member] = []
    names: list[str] = []
    raw_members = doc.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        problems.add("members", "a non-empty list")
        raw_members = []
    for index, raw in enumerate(raw_members):
        member = member_from_json(raw, problems, f"members[{index}].")
        if member is not None:
            members.append(member)
            names.append(f"members[{index}] ({member.id})")
    validate_members(members, problems, names)
    consensus = _params(doc, "consensus", ConsensusParams, problems)
    mpc = _params(doc, "mpc", MpcParams, problems)
    quotas = _params(doc, "quotas", QuotaParams, problems)
    for field in ("consortium", "genesis_time"):
        if not isinstance(doc.get(field), str):
            problems.add(field, "required string")
    problems.raise_if_any()
    assert consensus is not None and mpc is not None and quotas is not None
    genesis = Genesis(
        consortium=doc["consortium"],
        genesis_time=doc["genesis_time"],
        members=tuple(members),
        consensus=consensus,
        mpc=mpc,
        quotas=quotas,
    )
    recorded = doc.get("chain_id")
    if recorded is not None and recorded != genesis.chain_id.hex():
        raise ConfigError(
            f"content hashes to {genesis.chain_id.hex()}, not the recorded {recorded}: "
            "the file was changed after it was assembled",
            path=path,
            field="chain_id",
        )
    return genesis


def _params(doc: dict[str, Any], field: str, cls: type[Any], problems: _Problems) -> Any:
    raw = doc.get(field, {})
    if not isinstance(raw, dict):
        problems.add(field, "must be an object")
        return None
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            problems.add(f"{field}.{key}", f"unknown field; known: {', '.join(known)}")
        elif isinstance(getattr(cls(), key), int):
            minimum = 0 if key == "empty_block_interval_ms" else 1
            maximum = _largest(cls().to_proto(), key)
            if not isinstance(value, int) or isinstance(value, bool):
                problems.add(f"{field}.{key}", f"must be an integer >= {minimum}")
            elif not minimum <= value <= maximum:
                problems.add(f"{field}.{key}", f"must be an integer from {minimum} to {maximum}")
            else:
                values[key] = value
        elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.add(f"{field}.{key}", "must be a list of strings")
        else:
            values[key] = tuple(value)
    return cls(**values)


_PROTO_INT_MAX = {
    FieldDescriptor.TYPE_UINT32: (1 << 32) - 1,
    FieldDescriptor.TYPE_UINT64: (1 << 64) - 1,
    FieldDescriptor.TYPE_INT32: (1 << 31) - 1,
    FieldDescriptor.TYPE_INT64: (1 << 63) - 1,
}


def _largest(message: Any, key: str) -> int:
    """The largest value the genesis's protobuf field ``key`` holds: a larger one could not
    be hashed into the chain id."""
    return _PROTO_INT_MAX[message.DESCRIPTOR.fields_by_name[key].type]
