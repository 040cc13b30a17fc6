"""The job manifest: what every participant of a job agrees on before training.

Theory of operation: the manifest is derived only from what the ledger
holds (the checked job spec, the registered datasets, the genesis), so every
party computes the same one and its hash, with no message between them. It
fixes the ranks (data owners in the order the spec lists their datasets,
0..n-1, then the dealer, rank n, as `mpc_ledger.mpc.communicator` numbers
them), each party's dataset fingerprint, row split and feature columns, the
label's rank and the recipients' ranks. With alignment "psi" the row split
is not known until the intersection is (each data party's `JobAlignment`
record states it); the manifest then names each dataset's id column and
leaves train_rows and test_rows at 0. The state machine builds it when a
job is submitted (`mpc_ledger.jobs.rules`); `JobStarted` and
`ParticipationProof` records carry its hash, and the runner reads it to
configure its worker.

The hash is SHA-256 over a tag and the manifest's deterministic protobuf
encoding (`JobManifest` in jobs.proto).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.jobs.datasets import RegisteredDataset
from mpc_ledger.jobs.spec import (
    JobSpec,
    id_column_of,
    ledger_problems,
    resolve_dealer,
    spec_problems,
    split_rows,
)
from mpc_ledger.proto.v1 import jobs_pb2

__all__ = ["JobManifest", "ManifestParty", "build_manifest"]

_MANIFEST_TAG = b"mpc-ledger/job-manifest/v1\x00"


@dataclasses.dataclass(frozen=True)
class ManifestParty:
    rank: int
    member_id: str
    role: str  # "data" or "dealer"
    dataset_id: str = ""
    dataset_fingerprint: bytes = b""
    row_count: int = 0
    train_rows: int = 0
    test_rows: int = 0
    feature_columns: tuple[str, ...] = ()
    holds_label: bool = False
    id_column: str = ""  # alignment "psi" only

    def to_proto(self) -> jobs_pb2.ManifestParty:
        return jobs_pb2.ManifestParty(
            rank=self.rank,
            member_id=self.member_id,
            role=self.role,
            dataset_id=self.dataset_id,
            dataset_fingerprint=self.dataset_fingerprint,
            row_count=self.row_count,
            train_rows=self.train_rows,
            test_rows=self.test_rows,
            feature_columns=list(self.feature_columns),
            holds_label=self.holds_label,
            id_column=self.id_column,
        )


@dataclasses.dataclass(frozen=True)
class JobManifest:
    """What every participant agrees on before training (see the module docstring).

    ``world_size`` is CrypTen's: the data parties (ranks 0..world_size-1);
    the dealer, when there is one, is rank ``world_size``.
    """

    chain_id: bytes
    job_id: bytes
    submitter: str
    spec: JobSpec
    parties: tuple[ManifestParty, ...]
    world_size: int
    dealer_rank: int | None
    label_rank: int | None  # vertical: the rank holding the labels; horizontal: None
    n_features: int
    recipient_ranks: tuple[int, ...]

    @property
    def participants(self) -> tuple[str, ...]:
        """Member ids by rank (data owners, then the dealer)."""
        return tuple(p.member_id for p in self.parties)

    def party(self, member_id: str) -> ManifestParty | None:
        for party in self.parties:
            if party.member_id == member_id:
                return party
        return None

    def to_proto(self) -> jobs_pb2.JobManifest:
        return jobs_pb2.JobManifest(
            chain_id=self.chain_id,
            job_id=self.job_id,
            submitter=self.submitter,
            spec=self.spec.to_proto(),
            parties=[p.to_proto() for p in self.parties],
            world_size=self.world_size,
            dealer_rank=-1 if self.dealer_rank is None else self.dealer_rank,
            label_rank=-1 if self.label_rank is None else self.label_rank,
            n_features=self.n_features,
            recipient_ranks=list(self.recipient_ranks),
        )

    @property
    def manifest_hash(self) -> bytes:
        encoded = self.to_proto().SerializeToString(deterministic=True)
        return hashlib.sha256(_MANIFEST_TAG + encoded).digest()


def build_manifest(
    job_id: bytes,
    submitter: str,
    spec: JobSpec,
    registry: Mapping[str, RegisteredDataset],
    genesis: Genesis,
) -> JobManifest:
    """The manifest of a spec that passes `spec_problems` and `ledger_problems`.

    Raises ValueError for one that does not (callers check first).
    """
    problems = spec_problems(spec) + ledger_problems(spec, registry, genesis)
    if problems:
        raise ValueError("the spec does not check: " + "; ".join(problems))
    parties: list[ManifestParty] = []
    label_rank: int | None = None
    for rank, ref in enumerate(spec.datasets):
        dataset = registry[ref.dataset_id]
        psi = spec.alignment == "psi"
        train, test = (0, 0) if psi else split_rows(dataset.row_count, spec.test_fraction)
        holds_label = dataset.schema.column(spec.label) is not None
        if spec.layout == "vertical" and holds_label:
            label_rank = rank
        parties.append(
            ManifestParty(
                rank=rank,
                member_id=dataset.owner,
                role="data",
                dataset_id=dataset.dataset_id,
                dataset_fingerprint=dataset.fingerprint,
                row_count=dataset.row_count,
                train_rows=train,
                test_rows=test,
                feature_columns=ref.features,
                holds_label=holds_label,
                id_column=id_column_of(ref, dataset) if psi else "",
            )
        )
    world_size = len(parties)
    dealer, _ = resolve_dealer(spec, genesis)
    if dealer is not None:
        parties.append(ManifestParty(rank=world_size, member_id=dealer, role="dealer"))
    ranks = {p.member_id: p.rank for p in parties}
    recipient_ranks = sorted({ranks[r.partition("/")[0]] for r in spec.recipients})
    n_features = (
        sum(len(d.features) for d in spec.datasets)
        if spec.layout == "vertical"
        else len(spec.datasets[0].features)
    )
    return JobManifest(
        chain_id=genesis.chain_id,
        job_id=job_id,
        submitter=submitter,
        spec=spec,
        parties=tuple(parties),
        world_size=world_size,
        dealer_rank=world_size if dealer is not None else None,
        label_rank=label_rank,
        n_features=n_features,
        recipient_ranks=tuple(recipient_ranks),
    )
