"""Errors of the MPC transport. None derives from RuntimeError on purpose.

CrypTen's dealer loop (`TTPServer`) treats a RuntimeError as "shut down
quietly"; a peer failure must instead end the dealer's worker with an error.
"""

from __future__ import annotations

__all__ = [
    "MpcError",
    "PeerFailedError",
    "PeerTimeoutError",
    "ProtocolViolation",
    "RelayUnavailableError",
    "TupleProviderRefused",
]


class MpcError(Exception):
    """Base of every MPC transport error."""


class PeerFailedError(MpcError):
    """A party of the job (or its daemon, or the link to it) failed; the message names it."""

    def __init__(self, member_id: str, message: str) -> None:
        self.member_id = member_id
        super().__init__(message)


class PeerTimeoutError(PeerFailedError):
    """A party did not deliver an expected frame within the timeout."""


class ProtocolViolation(PeerFailedError):
    """A party sent a malformed, mislabelled, replayed or duplicated frame."""


class RelayUnavailableError(MpcError):
    """The worker cannot reach (or lost) its own party daemon's relay."""


class TupleProviderRefused(MpcError):
    """The job asks for a tuple provider it is not allowed to use."""
