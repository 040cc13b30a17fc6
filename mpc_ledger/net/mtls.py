"""Mutually authenticated TLS between consortium members, checked against the genesis.

Theory of operation:

* A server trusts every member's CA (the genesis lists them) and requires a
  client certificate, so the TLS handshake itself refuses anyone whose
  certificate no member's CA issued, plaintext clients and expired
  certificates.
* That is not yet identity: member A's CA could issue a leaf naming "b".
  `identify_peer` therefore takes the leaf from the TLS session, reads the
  member id it names, and checks that exactly that member's CA (from the
  genesis) issued it. `MemberAuthInterceptor` runs that check before every
  RPC and aborts with UNAUTHENTICATED, naming the reason, when it fails.
* A client dialling member B trusts only B's CA and checks the name "b", so
  no other member can pose as B's server.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import grpc
from cryptography import x509

from mpc_ledger.identity import certs
from mpc_ledger.identity.genesis import Genesis, Member
from mpc_ledger.identity.material import PartyIdentity

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Caller",
    "MemberAuthInterceptor",
    "PeerAuthError",
    "caller_of",
    "identify_caller",
    "identify_peer",
    "member_aio_channel",
    "member_channel",
    "peer_of",
    "secure_channel_to",
    "server_credentials",
    "server_options",
]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class PeerAuthError(Exception):
    """The peer's certificate does not establish a genesis member."""


def server_credentials(identity: PartyIdentity) -> grpc.ServerCredentials:
    roots = b"".join(m.tls_ca_certificate_pem for m in identity.genesis.members)
    return grpc.ssl_server_credentials(
        [(identity.tls_key_pem, identity.tls_certificate_chain_pem)],
        root_certificates=roots,
        require_client_auth=True,
    )


def channel_options() -> list[tuple[str, Any]]:
    """Client options: message limits and keepalive pings every 20 s on open calls, so a
    peer that vanished without closing its connection is noticed."""
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def server_options() -> list[tuple[str, Any]]:
    """Server options that accept the clients' keepalive pings on idle long-lived streams.

    gRPC's server defaults allow one ping without data every 5 minutes and
    answer more with GOAWAY "too_many_pings", which killed idle gossip and MPC
    links after about a minute.
    """
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def _client_credentials(identity: PartyIdentity, peer: Member) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=peer.tls_ca_certificate_pem,
        private_key=identity.tls_key_pem,
        certificate_chain=identity.tls_certificate_chain_pem,
    )


def secure_channel_to(
    peer: Member, credentials: grpc.ChannelCredentials, *, endpoint: str | None = None
) -> grpc.Channel:
    """A channel to ``peer`` with these client credentials, checking the name ``peer.id``."""
    options = [*channel_options(), ("grpc.ssl_target_name_override", peer.id)]
    return grpc.secure_channel(endpoint or peer.endpoint, credentials, options=options)


def member_channel(
    identity: PartyIdentity, peer: Member, *, endpoint: str | None = None
) -> grpc.Channel:
    """A channel to ``peer`` that authenticates as ``identity`` and trusts only ``peer``'s CA."""
    return secure_channel_to(peer, _client_credentials(identity, peer), endpoint=endpoint)


def member_aio_channel(
    identity: PartyIdentity, peer: Member, *, endpoint: str | None = None
) -> grpc.aio.Channel:
    """`member_channel` for asyncio code (create it on the event loop that will use it)."""
    options = [*channel_options(), ("grpc.ssl_target_name_override", peer.id)]
    return grpc.aio.secure_channel(
        endpoint or peer.endpoint, _client_credentials(identity, peer), options=options
    )


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is calling: a member itself, or one of its users (``user_id`` = "member/name")."""

    member: Member
    user_id: str | None = None

    @property
    def name(self) -> str:
        return self.user_id or self.member.id


def identify_caller(
    genesis: Genesis, auth_context: Mapping[str, Any], *, now: dt.datetime | None = None
) -> Caller:
    """The member, or member's user, the TLS peer's certificate establishes; else PeerAuthError.

    A member's leaf names the member ("a"); a user's leaf names the user
    ("a/alice"). Either way the leaf must be issued by the CA the genesis
    lists for that member, and be within its validity period now.
    """
    if auth_context.get("transport_security_type") != [b"ssl"]:
        raise PeerAuthError("connection is not TLS")
    pem = (auth_context.get("x509_pem_cert") or [b""])[0]
    if not pem:
        raise PeerAuthError("peer presented no client certificate")
    caller, not_before, not_after = _issued_leaf(genesis, bytes(pem))
    now = now or dt.datetime.now(dt.UTC)
    if not not_before <= now < not_after:
        raise PeerAuthError(f"certificate of {caller.name!r} is outside its validity period")
    return caller


# Leaves that passed the issuance check, by (chain id, exact PEM bytes). Every
# RPC identifies its caller, and the check (a certificate parse and an ECDSA
# verification, about 0.1 ms) gives the same answer for the same bytes under
# the same genesis; the validity period is still compared with the clock on
# every call. Refusals are not kept. Bounded: emptied when full.
_ISSUED_MAX = 1024
_issued: dict[tuple[bytes, bytes], tuple[Caller, dt.datetime, dt.datetime]] = {}
_issued_lock = threading.Lock()


def _issued_leaf(genesis: Genesis, pem: bytes) -> tuple[Caller, dt.datetime, dt.datetime]:
    """(caller, not before, not after) of a leaf issued by the CA of the member it names."""
    key = (genesis.chain_id, pem)
    with _issued_lock:
        found = _issued.get(key)
    if found is not None:
        return found
    try:
        leaf = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PeerAuthError(f"unreadable peer certificate: {exc}") from None
    claimed = certs.leaf_member_id(leaf) or ""
    member_id, slash, user_name = claimed.partition("/")
    member = genesis.member(member_id) if member_id else None
    if member is None or (slash and not user_name):
        raise PeerAuthError(f"certificate names {claimed!r}, which is not a genesis member")
    problem = certs.issuance_problem(leaf, member.tls_ca_certificate)
    if problem is not None:
        raise PeerAuthError(
            f"certificate names {'user' if slash else 'member'} {claimed!r} but was not issued "
            f"by {member_id!r}'s CA in the genesis ({problem})"
        )
    found = (
        Caller(member, claimed if slash else None),
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
    )
    with _issued_lock:
        if len(_issued) >= _ISSUED_MAX:
            _issued.clear()
        _issued[key] = found
    return found


def identify_peer(
    genesis: Genesis, auth_context: Mapping[str, Any], *, now: dt.datetime | None = None
) -> Member:
    """The genesis member the TLS peer's certificate establishes (users are refused)."""
    caller = identify_caller(genesis, auth_context, now=now)
    if caller.user_id is not None:
        raise PeerAuthError(f"{caller.user_id!r} is a user; only members may call this")
    return caller.member


def peer_of(genesis: Genesis, context: grpc.ServicerContext) -> Member:
    """The member calling the RPC being served.

    The interceptor has already refused any caller this would reject; it is
    computed again (a dictionary lookup for a certificate already checked)
    rather than handed over through thread-local state, which streaming
    handlers outlive.
    """
    return identify_peer(genesis, context.auth_context())


def caller_of(genesis: Genesis, context: grpc.ServicerContext) -> Caller:
    """The member or user calling the RPC being served (see `peer_of`)."""
    return identify_caller(genesis, context.auth_context())


class MemberAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates every RPC's caller before it runs.

    Members may call everything. Users (a member's scientists and compliance
    officers, with certificates from their member's CA) may call only
    ``user_methods``, and only while ``user_active`` says their key is bound
    on the ledger and not revoked. Refusals are UNAUTHENTICATED (who you are
    is not established) or PERMISSION_DENIED (a user calling a member-only
    method), with the reason.
    """

    def __init__(
        self,
        genesis: Genesis,
        on_reject: Callable[[str, str], None] | None = None,
        *,
        user_methods: frozenset[str] = frozenset(),
        user_active: Callable[[str], bool] = lambda user_id: False,
    ):
        self._genesis = genesis
        self._on_reject = on_reject
        self._user_methods = user_methods
        self.user_active = user_active

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                factory = getattr(grpc, f"{kind}_rpc_method_handler")
                return factory(
                    self._wrap(behaviour, method),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler

    def _wrap(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        def authenticated(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                caller = identify_caller(self._genesis, context.auth_context())
            except PeerAuthError as exc:
                self._refuse(context, method, grpc.StatusCode.UNAUTHENTICATED, str(exc))
            if caller.user_id is not None:
                if method not in self._user_methods:
                    reason = f"user {caller.user_id!r} may not call {method}; it is for members"
                    self._refuse(context, method, grpc.StatusCode.PERMISSION_DENIED, reason)
                if not self.user_active(caller.user_id):
                    reason = (
                        f"user {caller.user_id!r} has no active key on the ledger "
                        "(never bound, or revoked)"
                    )
                    self._refuse(context, method, grpc.StatusCode.UNAUTHENTICATED, reason)
            return behaviour(request, context)

        return authenticated

    def _refuse(
        self, context: grpc.ServicerContext, method: str, code: grpc.StatusCode, reason: str
    ) -> NoReturn:
        if self._on_reject is not None:
            self._on_reject(method, reason)
        context.abort(code, reason)
        raise AssertionError("context.abort returned")  # abort always raises
