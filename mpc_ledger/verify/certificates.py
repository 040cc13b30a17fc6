"""A commit certificate checked against a block *header*, for readers holding no records.

:func:`mpc_ledger.consensus.verify_certificate` checks a certificate against a
whole block: the signatures, and that the block's records hash to its
header. An auditor keeps those apart: a record proof carries a header and no
records, and the export verifier reports records that do not match their
header as a ``records-root`` failure of its own while still judging the
certificate. So this module applies the same rules to the header alone:

* the certificate's height and block id are the header's (the id is the
  SHA-256 of the header, so the header's records root and log root are what
  the validators signed);
* the header names the genesis validator set;
* every signature is by a distinct genesis validator over the precommit body
  rebuilt from (chain id, height, round, block id, signer), with the
  ``consensus/precommit`` purpose;
* there are at least a quorum of them.

``tests/verify/test_certificates.py`` holds it to the same verdicts as
``verify_certificate`` on every kind of bad certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpc_ledger.consensus import ValidatorSet, block_id, precommit_body
from mpc_ledger.consensus.messages import vote_signature_ok
from mpc_ledger.proto.v1 import consensus_pb2 as pb

__all__ = ["CertificateVerdict", "assess_certificate", "check_header_certificate"]


@dataclass(frozen=True, slots=True)
class CertificateVerdict:
    problems: tuple[str, ...]
    # Distinct genesis validators whose precommit signature verified.
    signers: frozenset[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def assess_certificate(
    validators: ValidatorSet,
    chain_id: bytes,
    header: pb.BlockHeader,
    certificate: pb.Certificate,
    header_id: bytes | None = None,
) -> CertificateVerdict:
    """Every reason ``certificate`` does not prove ``header`` final, and who validly signed.

    Unlike ``verify_certificate`` it does not stop at the first reason: a
    report names a duplicate signer *and* the missing quorum.
    """
    problems: list[str] = []
    if certificate.height != header.height:
        problems.append(
            f"certificate height {certificate.height} is not block height {header.height}"
        )
    if certificate.block_id != (header_id if header_id is not None else block_id(header)):
        problems.append("certificate block id is not the block header's hash")
    if header.validator_set_hash != validators.hash:
        problems.append("block names another validator set than the genesis")
    valid: set[str] = set()
    seen: set[str] = set()
    for entry in certificate.signatures:
        signer = entry.validator_id
        if signer in seen:
            problems.append(f"signer {signer!r} is counted twice (duplicate signature)")
            continue
        seen.add(signer)
        public_key = validators.public_key(signer)
        if public_key is None:
            problems.append(f"signer {signer!r} is not a validator in the genesis")
            continue
        body = precommit_body(
            chain_id, certificate.height, certificate.round, certificate.block_id, signer
        )
        vote = pb.Vote(body=body, signature=entry.signature)
        if not vote_signature_ok(public_key, chain_id, vote):
            problems.append(f"precommit signature of {signer!r} does not verify")
            continue
        valid.add(signer)
    if len(valid) < validators.quorum:
        problems.append(
            f"{len(valid)} valid signatures of distinct validators, "
            f"a quorum is {validators.quorum} of {len(validators)}"
        )
    return CertificateVerdict(tuple(problems), frozenset(valid))


def check_header_certificate(
    validators: ValidatorSet,
    chain_id: bytes,
    header: pb.BlockHeader,
    certificate: pb.Certificate,
) -> str | None:
    """None when ``certificate`` proves ``header`` final, else the first reason."""
    problems = assess_certificate(validators, chain_id, header, certificate).problems
    return problems[0] if problems else None
