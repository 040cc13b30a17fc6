"""Why a record was refused: a code from a closed set, and the reason in words.

The code is what programs and metrics use (a Prometheus label, a client's
branch); the reason is for people and may name the author, the field, the
limit. Refusal text is never used as a protocol, and never as a label: a
label set must stay bounded whatever authors a submitter invents.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Refusal", "RefusalCode"]


class RefusalCode(StrEnum):
    """Adding a code is safe; renaming one changes what dashboards and clients see."""

    MALFORMED = "malformed"
    DUPLICATE = "duplicate"
    TOO_LARGE = "too-large"
    UNKNOWN_KIND = "unknown-kind"
    UNKNOWN_AUTHOR = "unknown-author"
    NOT_PERMITTED = "not-permitted"
    BAD_SIGNATURE = "bad-signature"
    INVALID = "invalid"
    QUOTA_EXCEEDED = "quota-exceeded"
    RATE_LIMITED = "rate-limited"
    MEMPOOL_FULL = "mempool-full"
    BUSY = "busy"  # the node's event queue stayed full for the submitter's whole timeout


@dataclass(frozen=True, slots=True)
class Refusal:
    code: RefusalCode
    reason: str

    def __str__(self) -> str:
        return self.reason
