"""One way for a command to call a daemon: open a client, run, map a failed call to exit 1.

Every command that talks to a daemon (``ledger``, ``dataset``, the daemon half
of ``compliance``, ``job``) goes through :func:`call_daemon`: it runs the
command's action with the client, closes the client whatever happens, and turns
a failed gRPC call into one line on stderr naming the daemon that did not
answer, and exit 1 (``mpc_ledger.cli.main``'s code for "the operation failed").
:func:`fail` is the same line and code for a refusal the action itself finds
(the ledger refused a record): errors go to stderr, stdout carries only the
command's output, so that a script can parse it.

``compliance`` imports this module inside its daemon handlers, never at the
top: the offline ``verify`` path must import no network code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

import grpc

from mpc_ledger.identity.party import Party
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.net.peers import describe_rpc_error

__all__ = ["call_daemon", "call_party_daemon", "fail"]


class _Closable(Protocol):
    def close(self) -> None: ...


_Client = TypeVar("_Client", bound=_Closable)


def fail(message: str) -> int:
    """``mpc-ledger: MESSAGE`` on stderr; exit code 1 (the operation failed)."""
    print(f"mpc-ledger: {message}", file=sys.stderr)
    return 1


def call_daemon(
    client: _Client, action: Callable[[_Client], int], unanswered: Callable[[str], str]
) -> int:
    """``action(client)``, then close the client; a failed call is exit 1 with
    ``unanswered(gRPC's reason)`` on stderr."""
    try:
        return action(client)
    except grpc.RpcError as exc:
        return fail(unanswered(describe_rpc_error(exc)))
    finally:
        client.close()


def call_party_daemon(party: Party, action: Callable[[LedgerClient], int]) -> int:
    """``action(client)`` against this party's own daemon."""

    def unanswered(reason: str) -> str:
        return (
            f"the party daemon did not answer ({reason}); "
            f"is `mpc-ledger party start --config {party.config.path}` running?"
        )

    return call_daemon(LedgerClient(party), action, unanswered)
