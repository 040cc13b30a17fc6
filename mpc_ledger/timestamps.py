"""Block times as people read them: one formatting for the CLI, the client and the verifier.

A block header carries ``time_ms``, milliseconds since 1970 in UTC (the
proposer's clock). Every place that shows one uses :func:`block_time_text`:
ISO 8601 in UTC, with milliseconds where a reader compares records within one
second (``ledger show``, ``job show``) and without where a report summarises
(the verifier). A time out of any calendar (read from a file: an export can say
anything) is shown as a number instead of raising. A leaf module: no imports
of the package, so the offline verifier may use it.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["block_time_text"]


def block_time_text(time_ms: int, *, milliseconds: bool = True) -> str:
    """``2026-03-01T12:00:00.250Z`` (or ``...:00Z`` without ``milliseconds``)."""
    try:
        moment = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC)
    except (OverflowError, ValueError, OSError):
        return f"{time_ms} ms since 1970"
    if not milliseconds:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"
