"""Admission of users' calls: a bounded share of the daemon of their own.

Theory of operation: gRPC's synchronous server runs server interceptors on
its polling thread, before it hands a call to a thread pool, and a handler
may name the pool it runs on (``experimental_thread_pool``). A user names
themselves in the ``mpc-ledger-user`` request header; `UserAdmission`
counts their open calls there, without taking a thread, and refuses a call
over `UserLimits` at once. Admitted calls run on the users' own pool, which
is never asked for more threads than it has, so members' calls (consensus,
relay, status) never wait behind users' and users' short calls never wait
behind users' long streams.

The header is a routing claim only: the handler checks it against the TLS
certificate before anything else runs (`mpc_ledger.net.mtls`), and a user's
call without it is refused on the members' pool at once.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

__all__ = ["USER_HEADER", "UserAdmission", "UserLimits"]

USER_HEADER = "mpc-ledger-user"


@dataclasses.dataclass(frozen=True)
class UserLimits:
    """How much of a daemon its users may hold at once."""

    threads: int = 16  # the users' pool; admitted user calls never exceed it
    calls_per_user: int = 8
    streams_per_user: int = 4  # long streams (Ledger/Follow, Jobs/Progress)
    streams_total: int = 12  # below `threads`: users' short calls always find one


class UserAdmission:
    """Counts users' open calls against `UserLimits`; thread-safe."""

    def __init__(self, limits: UserLimits, long_methods: frozenset[str]) -> None:
        self.limits = limits
        self._long_methods = long_methods
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._streams: dict[str, int] = {}
        self._calls_total = 0
        self._streams_total = 0

    def admit(self, user_id: str, method: str) -> tuple[Callable[[], None] | None, str]:
        """(release, "") for an admitted call, (None, reason) for a refused one.

        ``release`` gives the slot back; it may be called more than once.
        """
        is_long = method in self._long_methods
        limits = self.limits
        with self._lock:
            if self._calls.get(user_id, 0) >= limits.calls_per_user:
                return None, f"user {user_id!r} has {limits.calls_per_user} calls open, the most"
            if is_long and self._streams.get(user_id, 0) >= limits.streams_per_user:
                return None, (
                    f"user {user_id!r} has {limits.streams_per_user} long streams open "
                    f"(Follow, Progress), the most; close one first"
                )
            if is_long and self._streams_total >= limits.streams_total:
                return None, f"this daemon's users hold {limits.streams_total} streams, the most"
            if self._calls_total >= limits.threads:
                return None, f"this daemon's users hold {limits.threads} calls, the most"
            self._count(user_id, is_long, +1)
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                self._count(user_id, is_long, -1)

        return release, ""

    def open_calls(self, user_id: str) -> int:
        with self._lock:
            return self._calls.get(user_id, 0)

    def _count(self, user_id: str, is_long: bool, step: int) -> None:
        _bump(self._calls, user_id, step)
        self._calls_total += step
        if is_long:
            _bump(self._streams, user_id, step)
            self._streams_total += step


def _bump(counts: dict[str, int], key: str, step: int) -> None:
    value = counts.get(key, 0) + step
    if value:
        counts[key] = value
    else:
        counts.pop(key, None)  # idle users leave no entry: the table stays bounded
