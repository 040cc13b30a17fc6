"""Shared fixtures: real consortia made by the real CLI code, in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpc_ledger.testing.consortium import LocalConsortium, make_consortium


@pytest.fixture
def consortium(tmp_path: Path) -> LocalConsortium:
    return make_consortium(tmp_path / "consortium")
