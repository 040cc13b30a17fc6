"""`mpc_ledger.identity.ids`: one id syntax, and every checker that uses it agrees."""

from __future__ import annotations

import pytest

from mpc_ledger.errors import ConfigError
from mpc_ledger.identity.genesis import check_member_id
from mpc_ledger.identity.ids import MEMBER_ID, QUALIFIED_ID
from mpc_ledger.jobs.datasets import check_dataset_id
from mpc_ledger.ledger.records import member_of_user

MEMBERS = {"a": True, "hospital-a": True, "9": True, "a" * 63: True, "a" * 64: False}
MEMBERS |= {"-a": False, "A": False, "a_b": False, "a.b": False, "": False}
NAMES = {"alice": True, "cohort-2026.v1_x": True, "n" * 63: True, "n" * 64: False}
NAMES |= {".x": False, "_x": False, "Alice": False, "a/b": False, "": False}


@pytest.mark.parametrize(("member", "valid"), MEMBERS.items())
def test_member_ids(member, valid):
    assert bool(MEMBER_ID.match(member)) is valid
    if valid:
        assert check_member_id(member) == member
    else:
        with pytest.raises(ConfigError, match="not a valid member id"):
            check_member_id(member)


@pytest.mark.parametrize(("name", "valid"), NAMES.items())
def test_user_and_dataset_ids_are_one_syntax(name, valid):
    qualified = f"hospital-a/{name}"
    assert bool(QUALIFIED_ID.match(qualified)) is valid
    assert member_of_user(qualified) == ("hospital-a" if valid else None)
    assert (check_dataset_id(qualified, "hospital-a") is None) is valid
