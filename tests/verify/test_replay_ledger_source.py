"""`audit replay` takes a job's checkpoints only from a ledger that verifies: a changed record
in the export it reads is refused before any job is looked up (`cli.audit._ledger_job`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mpc_ledger.cli.audit import Refused, _ledger_job
from mpc_ledger.errors import UserError

from .conftest import export_chain, standard_chain
from .test_tamper import _tampered


def test_a_changed_record_in_the_export_is_refused(consortium, builder, tmp_path):
    standard_chain(builder)
    blocks, block = _tampered(builder, 3)
    block.block.records[1] = block.block.records[1].replace(b"two", b"twO")
    export = export_chain(consortium, builder, tmp_path / "x", blocks=blocks)
    party = SimpleNamespace(genesis=consortium.genesis)
    with pytest.raises(Refused, match=r"the ledger does not verify \(\d+ failures; first: "):
        _ledger_job(party, "ab" * 32, tmp_path, export)


def test_an_export_that_verifies_but_lacks_the_job_is_bad_input(consortium, builder, tmp_path):
    standard_chain(builder)
    export = export_chain(consortium, builder, tmp_path / "x")
    party = SimpleNamespace(genesis=consortium.genesis)
    with pytest.raises(UserError, match="no job 'abab"):
        _ledger_job(party, "ab" * 32, tmp_path, export)
