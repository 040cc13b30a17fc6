"""Records waiting for a block: bounded, first come first served, no duplicates.

The mempool holds records that passed `LedgerState.check` when they arrived.
A proposer takes a prefix that is valid *together* (checked in order against
an overlay, so two records that conflict never share a block); records that
a commit made invalid (a duplicate, a revoked user) are dropped with a reason.
What each author has waiting is tallied, so admission can count it against
the author's quota before it is committed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from mpc_ledger.ledger.records import ParsedRecord
from mpc_ledger.ledger.refusals import Refusal, RefusalCode

__all__ = ["Mempool"]


class Mempool:
    def __init__(self, *, max_records: int = 50_000, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._records: OrderedDict[bytes, ParsedRecord] = OrderedDict()
        self._bytes = 0
        # author -> (records, bytes) waiting; an author leaves when nothing waits.
        self._by_author: dict[str, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, record_id: bytes) -> bool:
        return record_id in self._records

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def pending(self, author: str) -> tuple[int, int]:
        """(records, bytes) by ``author`` waiting for a block."""
        return self._by_author.get(author, (0, 0))

    def _tally(self, record: ParsedRecord, sign: int) -> None:
        author = record.body.author
        records, size_bytes = self.pending(author)
        records += sign
        size_bytes += sign * len(record.raw)
        if records:
            self._by_author[author] = (records, size_bytes)
        else:
            self._by_author.pop(author, None)

    def add(self, record: ParsedRecord) -> Refusal | None:
        """Queue ``record``; the refusal when it cannot be queued."""
        if record.id in self._records:
            return Refusal(
                RefusalCode.DUPLICATE, "duplicate: this record is already waiting for a block"
            )
        if len(self._records) >= self.max_records or self._bytes + len(record.raw) > self.max_bytes:
            return Refusal(RefusalCode.MEMPOOL_FULL, "mempool full: try again shortly")
        self._records[record.id] = record
        self._bytes += len(record.raw)
        self._tally(record, 1)
        return None

    def take(
        self,
        max_records: int,
        max_bytes: int,
        fits: Callable[[list[ParsedRecord], ParsedRecord], bool],
    ) -> list[ParsedRecord]:
        """Up to ``max_records`` records, oldest first, each ``fits`` with those before it."""
        chosen: list[ParsedRecord] = []
        total = 0
        for record in self._records.values():
            if len(chosen) >= max_records:
                break
            if total + len(record.raw) > max_bytes:
                continue
            if fits(chosen, record):
                chosen.append(record)
                total += len(record.raw)
        return chosen

    def remove(self, record_ids: Iterable[bytes]) -> None:
        for record_id in record_ids:
            record = self._records.pop(record_id, None)
            if record is not None:
                self._bytes -= len(record.raw)
                self._tally(record, -1)

    def prune(self, still_valid: Callable[[ParsedRecord], str | None]) -> list[tuple[bytes, str]]:
        """Drop records no longer valid after a commit; return (id, reason) for each."""
        dropped = []
        for record in list(self._records.values()):
            reason = still_valid(record)
            if reason is not None:
                dropped.append((record.id, reason))
        self.remove(record_id for record_id, _ in dropped)
        return dropped
