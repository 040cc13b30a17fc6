"""`mpc_ledger.timestamps`: the one block-time formatting the CLI, client and verifier share."""

from __future__ import annotations

from mpc_ledger.timestamps import block_time_text

MARCH_1_2026_NOON_MS = 1_772_366_400_000


def test_milliseconds_for_records_seconds_for_reports():
    time_ms = MARCH_1_2026_NOON_MS + 250
    assert block_time_text(time_ms) == "2026-03-01T12:00:00.250Z"
    assert block_time_text(time_ms, milliseconds=False) == "2026-03-01T12:00:00Z"
    assert block_time_text(MARCH_1_2026_NOON_MS + 7) == "2026-03-01T12:00:00.007Z"


def test_a_time_out_of_any_calendar_is_shown_not_raised():
    for time_ms in (2**63 - 1, -(2**63)):
        assert block_time_text(time_ms) == f"{time_ms} ms since 1970"
        assert block_time_text(time_ms, milliseconds=False) == f"{time_ms} ms since 1970"
