"""Offline verification of ledger exports and record proofs; report rendering.

A compliance officer holds two files: ``genesis.json`` (the consortium's trust
root, whose hash is the chain id) and an export or a record proof. Everything
here checks the second against the first and nothing else: no network, no
party's server, no clock. The pieces:

* :mod:`.container`: the export and proof file formats (FORMAT.md), bounded
  reading of untrusted files, atomic writing;
* :mod:`.chain`: the pipeline of checks over an export (its docstring is the
  theory of operation), with :mod:`.certificates` (a certificate against a
  header), :mod:`.replay` (records through the ledger's own state machine),
  :mod:`.jobs` (the job audit's plug-in point) and :mod:`.consistency`
  (extends an older export, or forks from it);
* :mod:`.logproofs`: RFC 6962 proofs from leaf hashes and a frontier;
* :mod:`.proofs`: one record's inclusion proof, built and checked;
* :mod:`.report`: what was found, as text, JSON or one standalone HTML page.
"""

from mpc_ledger.verify.chain import verify_export
from mpc_ledger.verify.container import (
    EXPORT_FORMAT,
    PROOF_FORMAT,
    ExportFormatError,
    ExportReader,
    ExportWriter,
    read_proof,
    write_proof,
)
from mpc_ledger.verify.proofs import build_record_proof, verify_record_proof
from mpc_ledger.verify.report import CHECKS, Failure, Report, render

__all__ = [
    "CHECKS",
    "EXPORT_FORMAT",
    "PROOF_FORMAT",
    "ExportFormatError",
    "ExportReader",
    "ExportWriter",
    "Failure",
    "Report",
    "build_record_proof",
    "read_proof",
    "render",
    "verify_export",
    "verify_record_proof",
    "write_proof",
]
