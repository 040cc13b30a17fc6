"""The Python API for a member's users (scientists, compliance officers).

A user has a profile folder made by `mpc-ledger user keygen` on the user's
own machine (`mpc_ledger.client.profile`).

`UserClient` talks to the user's own member's daemon over mTLS as the user.
Every record it writes is signed with the user's key; the daemon accepts the
connection only while the ledger holds the user's key, not revoked.

    from mpc_ledger.client import UserClient
    with UserClient.from_profile("~/alice") as client:
        print(client.tip().height)

A scientist's jobs, e.g. in a notebook:

    job_id = client.submit_job("job.toml")       # signed by the user; waits for the commit
    for progress in client.watch(job_id):        # live, until the job ends
        print(progress.state, progress.phase, progress.step, progress.steps, progress.loss)
    client.fetch_result(job_id, "model.safetensors")  # recipients; checked against the ledger
    client.jobs(); client.job_trail(job_id)      # from the committed blocks

`steps` is 0 and `fraction` None until the total is known: a job aligned by
PSI learns its training rows from its committed ``job_alignment``, and says
its phase ("aligning: private set intersection") meanwhile. `jobs()` counts
progress from the same records, once per committed epoch; a job's data owners
are its datasets' registrants, read from their registrations as the ledger's
rules read them.

Modules: `profile` (the user's keys and profile), `jobs` (the job calls),
`job_records` (what committed records say of a job: pure); this one holds
`UserClient`, the connection.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization

from mpc_ledger.client.job_records import JobSummary, TrailEntry
from mpc_ledger.client.jobs import JobError, JobMethods, JobProgress, job_id_bytes
from mpc_ledger.client.profile import USER_FORMAT, UserProfile, create_user_profile
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.records import make_record
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import jobs_service_pb2_grpc, ledger_pb2, ledger_service_pb2_grpc

__all__ = [
    "USER_FORMAT",
    "JobError",
    "JobProgress",
    "JobSummary",
    "TrailEntry",
    "UserClient",
    "UserProfile",
    "create_user_profile",
    "job_id_bytes",
]


class UserClient(JobMethods):
    """A user's connection to their own member's daemon (see the module docstring)."""

    def __init__(self, profile: UserProfile) -> None:
        self.profile = profile
        self.genesis = profile.genesis
        member = profile.member
        leaf = profile.tls_certificate.public_bytes(serialization.Encoding.PEM)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=member.tls_ca_certificate_pem,
            private_key=profile.tls_key_pem,
            certificate_chain=leaf + member.tls_ca_certificate_pem,
        )
        self._tls_channel = mtls.secure_channel_to(member, credentials, endpoint=profile.endpoint)
        # the daemon runs users' calls on their own share; the header says whose
        self._channel = mtls.user_channel(self._tls_channel, profile.user_id)
        self.stub = ledger_service_pb2_grpc.LedgerStub(self._channel)
        self.jobs_stub = jobs_service_pb2_grpc.JobsStub(self._channel)
        self.signer = Signer(profile.signing_key, profile.genesis.chain_id)

    @classmethod
    def from_profile(cls, path: Path | str) -> UserClient:
        return cls(UserProfile.load(path))

    def close(self) -> None:
        self._tls_channel.close()

    def __enter__(self) -> UserClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sign(self, **payload: Any) -> ledger_pb2.Record:
        """A record with ``payload`` (e.g. ``note=Note(text=...)``) signed by this user."""
        body = ledger_pb2.RecordBody(
            author=self.profile.user_id,
            nonce=secrets.randbits(63),
            created_ms=int(time.time() * 1000),
            **payload,
        )
        return make_record(self.signer, body)
