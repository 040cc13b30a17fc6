"""The rulebook: every record kind the consortium's ledger accepts, and its rule.

One place builds it, so a party's node and the offline verifier check the
same kinds the same way: the ledger's own rules
(`mpc_ledger.ledger.state.LEDGER_RULES`: notes, user bindings, revocations)
and the jobs package's (`mpc_ledger.jobs.rules.JOB_RULES`: dataset
registrations and job records). A kind in both is refused when this module
is imported (`Rulebook` raises), not resolved by import order.

Layer: this module imports `ledger` and `jobs`, so it sits above both and
below what builds nodes and verifies exports (`cli`, `verify`, the tests);
`ledger` itself never imports it or `jobs`.
"""

from __future__ import annotations

from mpc_ledger.jobs.rules import JOB_RULES
from mpc_ledger.ledger.state import LEDGER_RULES, Rulebook

__all__ = ["RULEBOOK"]

RULEBOOK = Rulebook(LEDGER_RULES, JOB_RULES)
