"""The ledger's deterministic state machine: who may write what.

Theory of operation: the state is a pure function of the genesis and the
committed records, in order. `LedgerState.check(record)` says whether a record
may be appended now (and why not); `apply` appends it. A block's records are
checked in order against an overlay, so a block may bind a user and carry that
user's first record, and two identical records in one block are refused.
Every honest node gives the same answer for the same chain: nothing here reads
a clock, a file or a random source.

Record kinds are `Rule`s: who may author them (members, users, users with a
role) and the payload's own check and effect. The rules are data passed in: a
`LedgerState` knows only the kinds of the `Rulebook` it is built with, and
refuses any other kind (``unknown-kind``). This module exports the ledger's own
rules (`LEDGER_RULES`: notes, user bindings and revocations); features above
the ledger export theirs (`mpc_ledger.jobs.rules.JOB_RULES`), and
`mpc_ledger.rulebook` merges them into the one rulebook that nodes and the
verifier use. Nothing here imports a feature, and importing nothing registers
anything.

Quotas: what a user authors is counted per window of the genesis's
``quotas.user_window_blocks`` heights; a record beyond the window's records or
bytes is refused (``quota-exceeded``). The height of the block a record would
land in (`LedgerState.next_height`) is the only input besides the records, so
validators agree. Members' records are not counted: they are the consortium's
own daemons (job decisions, digests, proofs), which a quota must not starve.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from mpc_ledger.identity.genesis import Genesis, QuotaParams
from mpc_ledger.identity.signing import Purpose, verify_signature
from mpc_ledger.ledger.records import USER_ROLES, ParsedRecord, member_of_user, parse_record
from mpc_ledger.ledger.refusals import Refusal, RefusalCode

__all__ = [
    "LEDGER_RULES",
    "BlockDraft",
    "LedgerState",
    "Rule",
    "Rulebook",
    "StateView",
    "UserEntry",
    "user_tls_refusal",
]

NOTE_TEXT_MAX_BYTES = 4096
NOTE_DATA_MAX_BYTES = 64 * 1024
_SIGNATURE_CACHE_MAX = 200_000


@dataclasses.dataclass(frozen=True)
class QuotaUsage:
    """What one user authored in one window of heights."""

    window: int
    records: int = 0
    size_bytes: int = 0


_QUOTA_NAMESPACE = "quota"


@dataclasses.dataclass(frozen=True)
class UserEntry:
    user_id: str
    member_id: str
    public_key: bytes
    roles: tuple[str, ...]
    active: bool = True
    # SHA-256 of the user's TLS SubjectPublicKeyInfo; b"" in bindings older than the field.
    tls_spki_sha256: bytes = b""


class StateView(Protocol):
    genesis: Genesis

    def user(self, user_id: str) -> UserEntry | None: ...

    def seen(self, record_id: bytes) -> bool: ...

    def put_user(self, entry: UserEntry) -> None: ...

    def user_with_key(self, public_key: bytes) -> str | None: ...

    def get(self, namespace: str, key: str) -> Any: ...

    def put(self, namespace: str, key: str, value: Any) -> None: ...

    def keys(self, namespace: str) -> list[str]: ...


@dataclasses.dataclass(frozen=True)
class Rule:
    """How one record kind is checked and applied.

    ``authors``: "member", "user" or "any". ``user_role``: a role a user author
    must hold. ``check`` returns None or the reason; ``apply`` changes state.
    """

    authors: str
    check: Callable[[StateView, ParsedRecord], str | None]
    apply: Callable[[StateView, ParsedRecord], None] = lambda view, record: None
    user_role: str | None = None


class Rulebook(Mapping[str, Rule]):
    """Record kind -> `Rule`, immutable: the merge of ``parts``, each kind in one part only.

    A kind in two parts is refused here (ValueError naming it), when the rulebook
    is built, so no part can silently replace another's rule for a kind.
    """

    def __init__(self, *parts: Mapping[str, Rule]) -> None:
        rules: dict[str, Rule] = {}
        for part in parts:
            for kind, rule in part.items():
                if kind in rules:
                    raise ValueError(f"record kind {kind!r} has a rule in two parts of a rulebook")
                rules[kind] = rule
        self._rules = MappingProxyType(rules)

    def __getitem__(self, kind: str) -> Rule:
        return self._rules[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __repr__(self) -> str:
        return f"Rulebook({', '.join(self._rules)})"


class LedgerState:
    """The committed state; see the module docstring.

    ``rules``: every record kind this state accepts (no default: a node and the
    verifier pass `mpc_ledger.rulebook.RULEBOOK`, a test of the ledger alone
    `LEDGER_RULES`).
    """

    def __init__(self, genesis: Genesis, rules: Rulebook) -> None:
        self.genesis = genesis
        self.rules = rules
        self._chain_id = genesis.chain_id
        self._member_keys = {m.id: m.signing_public_key for m in genesis.members}
        self._users: dict[str, UserEntry] = {}
        self._keys: dict[bytes, str] = {}
        self._seen: set[bytes] = set()
        # Typed state of other features (datasets, jobs, ...): namespace -> key -> value.
        # Values must be immutable (frozen dataclasses, tuples): an overlay shares them.
        self._tables: dict[str, dict[str, Any]] = {}
        self._signature_ok: dict[tuple[bytes, bytes, bytes], bool] = {}
        self.max_record_bytes = genesis.consensus.max_record_bytes
        self.quotas = genesis.quotas
        self.size = 0
        # The height of the block that records checked or applied now belong to.
        self.next_height = 1

    # -- StateView ---------------------------------------------------------------------

    def user(self, user_id: str) -> UserEntry | None:
        return self._users.get(user_id)

    def seen(self, record_id: bytes) -> bool:
        return record_id in self._seen

    def put_user(self, entry: UserEntry) -> None:
        old = self._users.get(entry.user_id)
        if old is not None:
            self._keys.pop(old.public_key, None)
        self._users[entry.user_id] = entry
        if entry.active:
            self._keys[entry.public_key] = entry.user_id

    def user_with_key(self, public_key: bytes) -> str | None:
        return self._keys.get(public_key)

    def get(self, namespace: str, key: str) -> Any:
        return self._tables.get(namespace, {}).get(key)

    def put(self, namespace: str, key: str, value: Any) -> None:
        self._tables.setdefault(namespace, {})[key] = value

    def keys(self, namespace: str) -> list[str]:
        return sorted(self._tables.get(namespace, {}))

    def users(self) -> list[UserEntry]:
        return sorted(self._users.values(), key=lambda u: u.user_id)

    # -- checking ------------------------------------------------------------------------

    def check(self, record: ParsedRecord) -> str | None:
        """None when ``record`` may be appended to the committed state now; else why not."""
        refusal = _check(self, self, record)
        return None if refusal is None else refusal.reason

    def refusal(
        self, record: ParsedRecord, pending_records: int = 0, pending_bytes: int = 0
    ) -> Refusal | None:
        """`check` with the refusal's code; what the author has waiting for a block
        (``pending_*``, the mempool's) counts against its quota."""
        return _check(self, self, record, pending_records, pending_bytes)

    def check_raw(self, raw: bytes) -> tuple[ParsedRecord | None, str | None]:
        parsed = parse_record(raw)
        if isinstance(parsed, str):
            return None, parsed
        return parsed, self.check(parsed)

    def check_block(self, raws: Sequence[bytes]) -> str | None:
        """None when these records, in this order, may all be appended; else the first reason."""
        overlay = _Overlay(self)
        for index, raw in enumerate(raws):
            parsed = parse_record(raw)
            if isinstance(parsed, str):
                return f"record {index}: {parsed}"
            refusal = _check(self, overlay, parsed)
            if refusal is not None:
                return f"record {index} ({parsed.id.hex()[:16]}): {refusal}"
            _apply(overlay, parsed)
        return None

    def draft_block(self) -> BlockDraft:
        """An empty block in progress: add records one by one, each checked with those before."""
        return BlockDraft(self)

    def apply(self, record: ParsedRecord) -> None:
        """Append a record already checked (committed records are applied without re-checking)."""
        _apply(self, record)

    def apply_all(self, records: Iterable[ParsedRecord]) -> None:
        for record in records:
            _apply(self, record)

    def apply_block(self, height: int, records: Iterable[ParsedRecord]) -> None:
        """Append a committed block's records; what is checked next belongs to ``height + 1``."""
        self.next_height = height
        self.apply_all(records)
        self.next_height = height + 1

    def mark_seen(self, record_id: bytes) -> None:
        self._seen.add(record_id)
        self.size += 1

    # -- signatures ----------------------------------------------------------------------

    def author_key(self, view: StateView, author: str) -> tuple[bytes | None, str | None]:
        """The key that must have signed for ``author``, or why there is none."""
        key = self._member_keys.get(author)
        if key is not None:
            return key, None
        if member_of_user(author) is None:
            return None, f"author {author!r} is neither a member nor a user id (member/name)"
        user = view.user(author)
        if user is None:
            return None, f"user {author!r} has no key bound on the ledger"
        if not user.active:
            return None, f"user {author!r}'s key was revoked"
        return user.public_key, None

    def signature_valid(self, record: ParsedRecord, public_key: bytes) -> bool:
        key = (record.id, record.record.signature, public_key)
        cached = self._signature_ok.get(key)
        if cached is None:
            cached = verify_signature(
                public_key, Purpose.RECORD, self._chain_id, record.body, record.record.signature
            )
            if len(self._signature_ok) >= _SIGNATURE_CACHE_MAX:
                self._signature_ok.clear()
            self._signature_ok[key] = cached
        return cached


class BlockDraft:
    """Records chosen for a block so far, as an overlay on the committed state."""

    def __init__(self, state: LedgerState) -> None:
        self._state = state
        self._overlay = _Overlay(state)

    def try_add(self, record: ParsedRecord) -> str | None:
        """Add ``record`` if it is valid after those added before; else the reason."""
        refusal = _check(self._state, self._overlay, record)
        if refusal is None:
            _apply(self._overlay, record)
            return None
        return refusal.reason


class _Overlay:
    """Changes of a block in progress, over the committed state."""

    def __init__(self, base: LedgerState) -> None:
        self.genesis = base.genesis
        self.rules = base.rules
        self._base = base
        self._users: dict[str, UserEntry] = {}
        self._keys: dict[bytes, str | None] = {}
        self._seen: set[bytes] = set()
        self._tables: dict[str, dict[str, Any]] = {}
        self.next_height = base.next_height
        self.quotas = base.quotas

    def user(self, user_id: str) -> UserEntry | None:
        return self._users[user_id] if user_id in self._users else self._base.user(user_id)

    def get(self, namespace: str, key: str) -> Any:
        table = self._tables.get(namespace, {})
        return table[key] if key in table else self._base.get(namespace, key)

    def put(self, namespace: str, key: str, value: Any) -> None:
        self._tables.setdefault(namespace, {})[key] = value

    def keys(self, namespace: str) -> list[str]:
        return sorted(set(self._base.keys(namespace)) | set(self._tables.get(namespace, {})))

    def seen(self, record_id: bytes) -> bool:
        return record_id in self._seen or self._base.seen(record_id)

    def put_user(self, entry: UserEntry) -> None:
        old = self.user(entry.user_id)
        if old is not None:
            self._keys[old.public_key] = None
        self._users[entry.user_id] = entry
        if entry.active:
            self._keys[entry.public_key] = entry.user_id

    def user_with_key(self, public_key: bytes) -> str | None:
        if public_key in self._keys:
            return self._keys[public_key]
        return self._base.user_with_key(public_key)

    def mark_seen(self, record_id: bytes) -> None:
        self._seen.add(record_id)


def _check(
    state: LedgerState,
    view: LedgerState | _Overlay,
    record: ParsedRecord,
    pending_records: int = 0,
    pending_bytes: int = 0,
) -> Refusal | None:
    if len(record.raw) > state.max_record_bytes:
        return Refusal(
            RefusalCode.TOO_LARGE,
            f"record is {len(record.raw)} bytes; the limit is {state.max_record_bytes}",
        )
    if view.seen(record.id):
        return Refusal(RefusalCode.DUPLICATE, "duplicate: this record is already on the ledger")
    rule = state.rules.get(record.kind)
    if rule is None:
        kind = record.kind or "(none)"
        return Refusal(RefusalCode.UNKNOWN_KIND, f"unknown record kind {kind!r}")
    author = record.body.author
    key, problem = state.author_key(view, author)
    if key is None:
        return Refusal(RefusalCode.UNKNOWN_AUTHOR, problem or "unknown author")
    permission = _permission(state, view, rule, record)
    if permission is not None:
        return Refusal(RefusalCode.NOT_PERMITTED, permission)
    if not state.signature_valid(record, key):
        return Refusal(
            RefusalCode.BAD_SIGNATURE, f"signature does not verify under {author!r}'s key"
        )
    invalid = rule.check(view, record)
    if invalid is not None:
        return Refusal(RefusalCode.INVALID, invalid)
    return _quota(state, view, record, pending_records, pending_bytes)


def _window(quotas: QuotaParams, height: int) -> int:
    return (height - 1) // quotas.user_window_blocks


def _usage(
    view: LedgerState | _Overlay, author: str, height: int, quotas: QuotaParams
) -> QuotaUsage:
    window = _window(quotas, height)
    usage = view.get(_QUOTA_NAMESPACE, author)
    if isinstance(usage, QuotaUsage) and usage.window == window:
        return usage
    return QuotaUsage(window)


def _quota(
    state: LedgerState,
    view: LedgerState | _Overlay,
    record: ParsedRecord,
    pending_records: int = 0,
    pending_bytes: int = 0,
) -> Refusal | None:
    author = record.body.author
    if author in state._member_keys:
        return None
    quotas = state.quotas
    height = view.next_height
    usage = _usage(view, author, height, quotas)
    records = usage.records + pending_records + 1
    size_bytes = usage.size_bytes + pending_bytes + len(record.raw)
    if records <= quotas.user_records_per_window and size_bytes <= quotas.user_bytes_per_window:
        return None
    first = _window(quotas, height) * quotas.user_window_blocks + 1
    return Refusal(
        RefusalCode.QUOTA_EXCEEDED,
        f"quota: user {author!r} may write {quotas.user_records_per_window} records and "
        f"{quotas.user_bytes_per_window} bytes per {quotas.user_window_blocks} blocks; "
        f"this would make {records} records and {size_bytes} bytes in the window from "
        f"height {first} (the next window starts at height "
        f"{first + quotas.user_window_blocks})",
    )


def _count_quota(view: LedgerState | _Overlay, record: ParsedRecord) -> None:
    author = record.body.author
    if member_of_user(author) is None:
        return  # a member (member ids hold no '/')
    height = view.next_height
    usage = _usage(view, author, height, view.quotas)
    counted = QuotaUsage(usage.window, usage.records + 1, usage.size_bytes + len(record.raw))
    view.put(_QUOTA_NAMESPACE, author, counted)


def _permission(
    state: LedgerState, view: LedgerState | _Overlay, rule: Rule, record: ParsedRecord
) -> str | None:
    author = record.body.author
    is_member = author in state._member_keys
    if rule.authors == "member" and not is_member:
        return f"only members may write {record.kind} records; {author!r} is a user"
    if rule.authors == "user" and is_member:
        return f"only users may write {record.kind} records; {author!r} is a member"
    if rule.user_role is not None and not is_member:
        user = view.user(author)
        if user is None or rule.user_role not in user.roles:
            return f"user {author!r} lacks the {rule.user_role!r} role for {record.kind} records"
    return None


def _apply(view: LedgerState | _Overlay, record: ParsedRecord) -> None:
    view.rules[record.kind].apply(view, record)
    _count_quota(view, record)
    view.mark_seen(record.id)


# -- built-in record kinds ----------------------------------------------------------------


def _check_note(view: StateView, record: ParsedRecord) -> str | None:
    note = record.body.note
    if len(note.text.encode()) > NOTE_TEXT_MAX_BYTES:
        return f"note text longer than {NOTE_TEXT_MAX_BYTES} bytes"
    if len(note.data) > NOTE_DATA_MAX_BYTES:
        return f"note data longer than {NOTE_DATA_MAX_BYTES} bytes"
    return None


def _check_bind(view: StateView, record: ParsedRecord) -> str | None:
    binding = record.body.bind_user
    author = record.body.author
    owner = member_of_user(binding.user_id)
    if owner is None:
        return f"user id {binding.user_id!r} must be '<member id>/<name>'"
    if owner != author:
        return f"member {author!r} may bind users only as '{author}/<name>'"
    if len(binding.public_key) != 32:
        return "public_key must be a 32-byte Ed25519 key"
    if len(binding.tls_spki_sha256) not in (0, 32):
        return "tls_spki_sha256 must be a 32-byte SHA-256 (or empty in an old binding)"
    roles = list(binding.roles)
    if not roles or any(r not in USER_ROLES for r in roles) or len(set(roles)) != len(roles):
        return f"roles must be distinct values from {', '.join(USER_ROLES)}"
    existing = view.user(binding.user_id)
    if existing is not None and existing.active:
        return f"user {binding.user_id!r} already has an active key; revoke it first"
    holder = view.user_with_key(binding.public_key)
    if holder is not None:
        return f"this key is already bound to user {holder!r}"
    return None


def _apply_bind(view: StateView, record: ParsedRecord) -> None:
    binding = record.body.bind_user
    view.put_user(
        UserEntry(
            user_id=binding.user_id,
            member_id=record.body.author,
            public_key=bytes(binding.public_key),
            roles=tuple(sorted(binding.roles)),
            tls_spki_sha256=bytes(binding.tls_spki_sha256),
        )
    )


def user_tls_refusal(entry: UserEntry | None, user_id: str, tls_spki_sha256: bytes) -> str | None:
    """Why ``user_id`` may not connect with a certificate for this TLS key; None if it may.

    The key must be the one the user's active binding pins: a certificate the
    member's CA issued for an earlier binding of the same id (before a
    revocation and a new binding with new keys) is refused. Bindings made
    before bindings pinned a TLS key pin none and are refused until rebound.
    """
    if entry is None or not entry.active:
        return f"user {user_id!r} has no active key on the ledger (never bound, or revoked)"
    if not entry.tls_spki_sha256:
        return (
            f"user {user_id!r}'s binding pins no TLS key (bound before this version); "
            "its member must revoke it and bind it again with `mpc-ledger user add`"
        )
    if not hmac.compare_digest(entry.tls_spki_sha256, tls_spki_sha256):
        return (
            f"user {user_id!r}'s certificate is not for the TLS key bound on the ledger "
            "(a certificate from an earlier binding?)"
        )
    return None


def _check_revoke(view: StateView, record: ParsedRecord) -> str | None:
    revocation = record.body.revoke_user
    if member_of_user(revocation.user_id) != record.body.author:
        return f"member {record.body.author!r} may revoke only its own users"
    user = view.user(revocation.user_id)
    if user is None or not user.active:
        return f"user {revocation.user_id!r} has no active key to revoke"
    return None


def _apply_revoke(view: StateView, record: ParsedRecord) -> None:
    user = view.user(record.body.revoke_user.user_id)
    assert user is not None  # checked before
    view.put_user(dataclasses.replace(user, active=False))


# The ledger's own record kinds, whatever features run above it.
LEDGER_RULES = Rulebook(
    {
        "note": Rule(authors="any", check=_check_note),
        "bind_user": Rule(authors="member", check=_check_bind, apply=_apply_bind),
        "revoke_user": Rule(authors="member", check=_check_revoke, apply=_apply_revoke),
    }
)
