"""Proof that one record is on the ledger, checkable with the genesis alone.

Theory of operation
-------------------
A :class:`~mpc_ledger.proto.v1.export_pb2.RecordProof` carries the record,
its position in the whole record log, the RFC 6962 audit path from it to the
log root in the header of the block that committed it, that header and the
block's commit certificate. Checking it (:func:`verify_record_proof`) needs
only the genesis:

* ``chain``: the proof names the genesis' chain id;
* ``certificate``: a quorum of distinct genesis validators signed the header
  (:mod:`~mpc_ledger.verify.certificates`), so its log root and size are the
  ledger's;
* ``inclusion``: the audit path leads from the record's leaf at its index to
  that log root (:func:`mpc_ledger.merkle.verify_inclusion`);
* ``record``: the record parses, canonically;
* ``signature``: it is signed by its author: a member's key is in the
  genesis; a user's key comes from the ``bind_user`` record in the proof,
  itself included in the same log before the record and signed by the
  user's member. A proof cannot show the user's key was not revoked in
  between; a full export can.

Building one (:func:`build_record_proof`) reads blocks from height 1 up to
the record's block, keeping 32 bytes per record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.identity.signing import Purpose, verify_signature
from mpc_ledger.ledger.records import ParsedRecord, member_of_user, parse_record
from mpc_ledger.merkle import leaf_hash, verify_inclusion
from mpc_ledger.proto.v1 import consensus_pb2, export_pb2
from mpc_ledger.verify.certificates import assess_certificate
from mpc_ledger.verify.chain import genesis_validators
from mpc_ledger.verify.container import PROOF_FORMAT
from mpc_ledger.verify.logproofs import LeafHashLog

__all__ = ["ProofCheck", "ProofVerdict", "build_record_proof", "verify_record_proof"]


def build_record_proof(
    blocks: Iterable[consensus_pb2.CommittedBlock],
    chain_id: bytes,
    target_id: bytes,
    *,
    created_ms: int = 0,
) -> export_pb2.RecordProof | None:
    """The proof for record ``target_id`` from ``blocks`` (height 1 upwards); None if absent."""
    log = LeafHashLog()
    bindings: dict[str, export_pb2.RecordInclusion] = {}
    for committed in blocks:
        block = committed.block
        target: tuple[int, ParsedRecord] | None = None
        for raw in block.records:
            index = log.size
            log.append(leaf_hash(raw))
            parsed = parse_record(raw)
            if isinstance(parsed, str):
                continue
            if parsed.id == target_id:
                target = (index, parsed)
            elif target is None and parsed.kind == "bind_user":
                user_id = parsed.body.bind_user.user_id
                bindings[user_id] = export_pb2.RecordInclusion(record=raw, log_index=index)
        if target is None:
            continue
        index, parsed = target
        header = block.header
        size = int(header.log_size)
        proof = export_pb2.RecordProof(
            format=PROOF_FORMAT,
            chain_id=chain_id,
            header=header,
            certificate=committed.certificate,
            inclusion=export_pb2.RecordInclusion(
                record=parsed.raw, log_index=index, audit_path=log.inclusion_proof(index, size)
            ),
            created_ms=created_ms,
        )
        binding = bindings.get(parsed.body.author)
        if binding is not None:
            binding.audit_path.extend(log.inclusion_proof(binding.log_index, size))
            proof.author_binding.CopyFrom(binding)
        return proof
    return None


@dataclasses.dataclass(frozen=True)
class ProofCheck:
    check: str
    ok: bool
    detail: str


@dataclasses.dataclass
class ProofVerdict:
    checks: list[ProofCheck]
    record: dict[str, str]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "record": self.record,
            "checks": [dataclasses.asdict(check) for check in self.checks],
        }

    def render_text(self) -> str:
        lines = ["VERIFIED" if self.ok else "FAILED"]
        lines.extend(f"  {key:<10} {value}" for key, value in self.record.items())
        lines.extend(
            f"  {'ok' if c.ok else 'FAILED':<7} {c.check:<12} {c.detail}" for c in self.checks
        )
        return "\n".join(lines) + "\n"


def verify_record_proof(proof: export_pb2.RecordProof, genesis: Genesis) -> ProofVerdict:
    """Check ``proof`` against ``genesis`` (see the module docstring)."""
    checks: list[ProofCheck] = []
    chain_id = genesis.chain_id
    header = proof.header
    info: dict[str, str] = {"height": str(header.height)}
    if proof.chain_id != chain_id:
        checks.append(
            ProofCheck(
                "chain",
                False,
                f"the proof is for chain {proof.chain_id.hex()[:16]}…, the genesis defines "
                f"{chain_id.hex()[:16]}…",
            )
        )
        return ProofVerdict(checks, info)
    checks.append(ProofCheck("chain", True, f"chain {chain_id.hex()[:16]}…"))
    verdict = assess_certificate(genesis_validators(genesis), chain_id, header, proof.certificate)
    checks.append(
        ProofCheck(
            "certificate",
            verdict.ok,
            "; ".join(verdict.problems)
            or f"block {header.height} signed by {', '.join(sorted(verdict.signers))}",
        )
    )
    inclusion = proof.inclusion
    included = _included(inclusion, header)
    checks.append(
        ProofCheck(
            "inclusion",
            included,
            f"record #{inclusion.log_index} of {header.log_size} "
            + ("is in the certified log root" if included else "is not in the certified log root"),
        )
    )
    parsed = parse_record(inclusion.record)
    if isinstance(parsed, str):
        checks.append(ProofCheck("record", False, parsed))
        return ProofVerdict(checks, info)
    info.update(
        id=parsed.id.hex(),
        kind=parsed.kind,
        author=parsed.body.author,
        log_index=str(inclusion.log_index),
    )
    checks.append(_signature_check(proof, parsed, genesis))
    return ProofVerdict(checks, info)


def _included(inclusion: export_pb2.RecordInclusion, header: consensus_pb2.BlockHeader) -> bool:
    return verify_inclusion(
        inclusion.record,
        inclusion.log_index,
        header.log_size,
        list(inclusion.audit_path),
        header.log_root,
    )


def _signature_check(
    proof: export_pb2.RecordProof, parsed: ParsedRecord, genesis: Genesis
) -> ProofCheck:
    author = parsed.body.author
    member = genesis.member(author)
    if member is not None:
        key, whose = member.signing_public_key, f"member {author!r} (genesis key)"
    else:
        key_or_problem = _user_key(proof, author, genesis)
        if isinstance(key_or_problem, str):
            return ProofCheck("signature", False, key_or_problem)
        key, whose = (
            key_or_problem,
            f"user {author!r} (key bound at #{proof.author_binding.log_index})",
        )
    ok = verify_signature(
        key, Purpose.RECORD, genesis.chain_id, parsed.body, parsed.record.signature
    )
    return ProofCheck("signature", ok, f"{'signed' if ok else 'NOT signed'} by {whose}")


def _user_key(proof: export_pb2.RecordProof, author: str, genesis: Genesis) -> bytes | str:
    member_id = member_of_user(author)
    member = genesis.member(member_id) if member_id else None
    if member is None:
        return f"author {author!r} is neither a member nor a user of a member"
    if not proof.HasField("author_binding"):
        return f"the proof carries no key binding for user {author!r}"
    binding = proof.author_binding
    if not _included(binding, proof.header) or binding.log_index >= proof.inclusion.log_index:
        return "the key binding is not in the certified log before the record"
    parsed = parse_record(binding.record)
    if isinstance(parsed, str) or parsed.kind != "bind_user":
        return "the key binding is not a bind_user record"
    bound = parsed.body.bind_user
    if parsed.body.author != member.id or bound.user_id != author:
        return f"the key binding is not {member.id!r} binding {author!r}"
    if not verify_signature(
        member.signing_public_key,
        Purpose.RECORD,
        genesis.chain_id,
        parsed.body,
        parsed.record.signature,
    ):
        return f"the key binding is not signed by {member.id!r}"
    return bytes(bound.public_key)
