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
* A user's leaf names "member/name" and is issued by that member's CA; it is
  accepted only on that member's daemon, and only while the user's binding on
  the ledger is active and pins the leaf's TLS key (SPKI hash), so a
  certificate from an earlier binding of the same id no longer works. Users'
  calls get their own bounded share of the daemon (`mpc_ledger.net.admission`).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from typing import Any, NoReturn

import grpc
from cryptography import x509

from mpc_ledger.identity import certs
from mpc_ledger.identity.genesis import Genesis, Member
from mpc_ledger.identity.material import PartyIdentity
from mpc_ledger.net.admission import USER_HEADER, UserAdmission, UserLimits

__all__ = [
    "MESSAGE_MAX_BYTES",
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
    "user_channel",
]

MESSAGE_MAX_BYTES = 16 * 1024 * 1024


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
        ("grpc.max_send_message_length", MESSAGE_MAX_BYTES),
        ("grpc.max_receive_message_length", MESSAGE_MAX_BYTES),
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
        ("grpc.max_send_message_length", MESSAGE_MAX_BYTES),
        ("grpc.max_receive_message_length", MESSAGE_MAX_BYTES),
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
    # SHA-256 of the leaf's SubjectPublicKeyInfo (a user's binding on the ledger pins it)
    tls_spki_sha256: bytes = b""

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
        Caller(member, claimed if slash else None, certs.spki_sha256(leaf.public_key())),
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


UserRefusal = Callable[[str, bytes], str | None]


def _no_users(user_id: str, tls_spki_sha256: bytes) -> str | None:
    return f"user {user_id!r} has no active key on the ledger (never bound, or revoked)"


class MemberAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates every RPC's caller before it runs, and gives users their own share.

    Members may call everything. Users (a member's scientists and compliance
    officers, with certificates from their member's CA) may call only
    ``user_methods``, only on their own member's daemon (``home_member_id``),
    only with a certificate for the TLS key their binding on the ledger pins,
    and only while it is not revoked (``user_refusal`` says why not). A user's
    call names the user in the `USER_HEADER` header; it is admitted by
    `UserAdmission` on the polling thread and runs on the users' pool, and a
    user's long stream ends as soon as the user is refused between messages.
    Refusals are UNAUTHENTICATED (who you are is not established),
    PERMISSION_DENIED (not for you, not here) or RESOURCE_EXHAUSTED (over the
    users' limits), with the reason.
    """

    def __init__(
        self,
        genesis: Genesis,
        on_reject: Callable[[str, str], None] | None = None,
        *,
        user_methods: frozenset[str] = frozenset(),
        user_refusal: UserRefusal = _no_users,
        home_member_id: str | None = None,
        user_limits: UserLimits | None = None,
        long_user_methods: frozenset[str] = frozenset(),
    ):
        self._genesis = genesis
        self._on_reject = on_reject
        self._user_methods = user_methods
        self.user_refusal = user_refusal
        self._home_member_id = home_member_id
        self.admission = UserAdmission(user_limits or UserLimits(), long_user_methods)
        self._user_pool = futures.ThreadPoolExecutor(
            max_workers=self.admission.limits.threads, thread_name_prefix="rpc-user"
        )
        # Refusals never wait on anything; their own pool keeps them from queueing
        # behind the users' full pool or taking a member's thread.
        self._refusal_pool = futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="rpc-refuse"
        )

    def close(self) -> None:
        self._user_pool.shutdown(wait=False, cancel_futures=True)
        self._refusal_pool.shutdown(wait=False, cancel_futures=True)

    # -- on the polling thread ---------------------------------------------------------

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        claimed = _header(handler_call_details.invocation_metadata, USER_HEADER)
        if claimed is None:
            return _rebuild(handler, lambda behaviour, _: self._member_path(behaviour, method))
        refusal = self._claim_refusal(claimed, method)
        if refusal is not None:
            code, reason = refusal
            return _rebuild(
                handler, lambda _, __: self._refusing(method, code, reason), self._refusal_pool
            )
        release, reason = self.admission.admit(claimed, method)
        if release is None:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED
            return _rebuild(
                handler, lambda _, __: self._refusing(method, code, reason), self._refusal_pool
            )
        return _rebuild(
            handler,
            lambda behaviour, streams: self._user_path(
                behaviour, method, claimed, release, streams
            ),
            self._user_pool,
        )

    def _claim_refusal(self, claimed: str, method: str) -> tuple[grpc.StatusCode, str] | None:
        member_id, slash, name = claimed.partition("/")
        if len(claimed) > _USER_ID_MAX_CHARS or not (member_id and slash and name):
            return grpc.StatusCode.UNAUTHENTICATED, f"{USER_HEADER} header is not a user id"
        if method not in self._user_methods:
            reason = f"user {claimed!r} may not call {method}; it is for members"
            return grpc.StatusCode.PERMISSION_DENIED, reason
        return None

    # -- on a pool thread --------------------------------------------------------------

    def _member_path(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        def authenticated(request: Any, context: grpc.ServicerContext) -> Any:
            caller = self._authenticate(context, method)
            if caller.user_id is not None:
                reason = (
                    f"user {caller.user_id!r} called without the {USER_HEADER} header; "
                    "users' calls run on their own share of the daemon (update the client)"
                )
                self._refuse(context, method, grpc.StatusCode.PERMISSION_DENIED, reason)
            return behaviour(request, context)

        return authenticated

    def _user_path(
        self,
        behaviour: Callable[..., Any],
        method: str,
        claimed: str,
        release: Callable[[], None],
        streams: bool,
    ) -> Callable[..., Any]:
        def authenticated(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                caller = self._authenticate(context, method)
                if caller.user_id != claimed:
                    reason = (
                        f"the {USER_HEADER} header names {claimed!r}, "
                        f"the certificate {caller.name!r}"
                    )
                    self._refuse(context, method, grpc.StatusCode.UNAUTHENTICATED, reason)
                result = behaviour(request, context)
            except BaseException:
                release()
                raise
            if not streams:
                release()
                return result
            return self._while_allowed(result, context, caller, method, release)

        # A call cancelled before its handler runs never calls it: the slot comes back
        # when gRPC drops the handler.
        weakref.finalize(authenticated, release)
        return authenticated

    def _while_allowed(
        self,
        responses: Iterator[Any],
        context: grpc.ServicerContext,
        caller: Caller,
        method: str,
        release: Callable[[], None],
    ) -> Iterator[Any]:
        """A user's response stream that ends as soon as the user is refused (revoked)."""
        try:
            for response in responses:
                yield response
                reason = self._user_refusal_of(caller)
                if reason is not None:
                    self._refuse(context, method, grpc.StatusCode.UNAUTHENTICATED, reason)
        finally:
            release()

    def _authenticate(self, context: grpc.ServicerContext, method: str) -> Caller:
        try:
            caller = identify_caller(self._genesis, context.auth_context())
        except PeerAuthError as exc:
            self._refuse(context, method, grpc.StatusCode.UNAUTHENTICATED, str(exc))
        if caller.user_id is None:
            return caller
        if method not in self._user_methods:
            reason = f"user {caller.user_id!r} may not call {method}; it is for members"
            self._refuse(context, method, grpc.StatusCode.PERMISSION_DENIED, reason)
        home = self._home_member_id
        if home is not None and caller.member.id != home:
            reason = (
                f"user {caller.user_id!r} may call only their own member's daemon "
                f"({caller.member.id!r}), not {home!r}'s"
            )
            self._refuse(context, method, grpc.StatusCode.PERMISSION_DENIED, reason)
        refusal = self._user_refusal_of(caller)
        if refusal is not None:
            self._refuse(context, method, grpc.StatusCode.UNAUTHENTICATED, refusal)
        return caller

    def _user_refusal_of(self, caller: Caller) -> str | None:
        assert caller.user_id is not None
        return self.user_refusal(caller.user_id, caller.tls_spki_sha256)

    def _refusing(self, method: str, code: grpc.StatusCode, reason: str) -> Callable[..., Any]:
        def refuse(request: Any, context: grpc.ServicerContext) -> Any:
            self._refuse(context, method, code, reason)

        return refuse

    def _refuse(
        self, context: grpc.ServicerContext, method: str, code: grpc.StatusCode, reason: str
    ) -> NoReturn:
        if self._on_reject is not None:
            self._on_reject(method, reason)
        context.abort(code, reason)
        raise AssertionError("context.abort returned")  # abort always raises


_USER_ID_MAX_CHARS = 256
_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def _header(metadata: Any, name: str) -> str | None:
    for key, value in metadata or ():
        if key == name:
            return value if isinstance(value, str) else None
    return None


def _rebuild(
    handler: Any,
    wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]],
    pool: futures.ThreadPoolExecutor | None = None,
) -> Any:
    """``handler`` with its behaviour wrapped (told whether it streams responses), run on
    ``pool`` (gRPC's ``experimental_thread_pool``) or the server's own."""
    for kind in _KINDS:
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            wrapped = wrap(behaviour, kind.endswith("_stream"))
            if pool is not None:
                wrapped.experimental_thread_pool = pool  # type: ignore[attr-defined]
            factory = getattr(grpc, f"{kind}_rpc_method_handler")
            return factory(
                wrapped,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


class _CallDetails(
    collections.namedtuple(
        "_CallDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    pass


class _UserHeader(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Adds the `USER_HEADER` header to every call."""

    def __init__(self, user_id: str) -> None:
        self._header = (USER_HEADER, user_id)

    def _details(self, details: Any) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._header],
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


def user_channel(channel: grpc.Channel, user_id: str) -> grpc.Channel:
    """``channel`` with every call naming ``user_id`` in the `USER_HEADER` header."""
    return grpc.intercept_channel(channel, _UserHeader(user_id))
