from mpc_ledger.proto.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Note(_message.Message):
    __slots__ = ("text", "data")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    text: str
    data: bytes
    def __init__(self, text: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class UserKeyBinding(_message.Message):
    __slots__ = ("user_id", "public_key", "roles", "display_name", "tls_spki_sha256")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TLS_SPKI_SHA256_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    public_key: bytes
    roles: _containers.RepeatedScalarFieldContainer[str]
    display_name: str
    tls_spki_sha256: bytes
    def __init__(self, user_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., roles: _Optional[_Iterable[str]] = ..., display_name: _Optional[str] = ..., tls_spki_sha256: _Optional[bytes] = ...) -> None: ...

class UserKeyRevocation(_message.Message):
    __slots__ = ("user_id", "reason")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RecordBody(_message.Message):
    __slots__ = ("author", "nonce", "created_ms", "note", "bind_user", "revoke_user", "dataset_registration", "job_submission", "job_decision", "job_started", "job_epoch_digests", "job_aborted", "job_completed", "participation_proof", "job_alignment", "replay_verdict")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    BIND_USER_FIELD_NUMBER: _ClassVar[int]
    REVOKE_USER_FIELD_NUMBER: _ClassVar[int]
    DATASET_REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    JOB_SUBMISSION_FIELD_NUMBER: _ClassVar[int]
    JOB_DECISION_FIELD_NUMBER: _ClassVar[int]
    JOB_STARTED_FIELD_NUMBER: _ClassVar[int]
    JOB_EPOCH_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    JOB_ABORTED_FIELD_NUMBER: _ClassVar[int]
    JOB_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    PARTICIPATION_PROOF_FIELD_NUMBER: _ClassVar[int]
    JOB_ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    REPLAY_VERDICT_FIELD_NUMBER: _ClassVar[int]
    author: str
    nonce: int
    created_ms: int
    note: Note
    bind_user: UserKeyBinding
    revoke_user: UserKeyRevocation
    dataset_registration: _jobs_pb2.DatasetRegistration
    job_submission: _jobs_pb2.JobSubmission
    job_decision: _jobs_pb2.JobDecision
    job_started: _jobs_pb2.JobStarted
    job_epoch_digests: _jobs_pb2.JobEpochDigests
    job_aborted: _jobs_pb2.JobAborted
    job_completed: _jobs_pb2.JobCompleted
    participation_proof: _jobs_pb2.ParticipationProof
    job_alignment: _jobs_pb2.JobAlignment
    replay_verdict: _jobs_pb2.ReplayVerdict
    def __init__(self, author: _Optional[str] = ..., nonce: _Optional[int] = ..., created_ms: _Optional[int] = ..., note: _Optional[_Union[Note, _Mapping]] = ..., bind_user: _Optional[_Union[UserKeyBinding, _Mapping]] = ..., revoke_user: _Optional[_Union[UserKeyRevocation, _Mapping]] = ..., dataset_registration: _Optional[_Union[_jobs_pb2.DatasetRegistration, _Mapping]] = ..., job_submission: _Optional[_Union[_jobs_pb2.JobSubmission, _Mapping]] = ..., job_decision: _Optional[_Union[_jobs_pb2.JobDecision, _Mapping]] = ..., job_started: _Optional[_Union[_jobs_pb2.JobStarted, _Mapping]] = ..., job_epoch_digests: _Optional[_Union[_jobs_pb2.JobEpochDigests, _Mapping]] = ..., job_aborted: _Optional[_Union[_jobs_pb2.JobAborted, _Mapping]] = ..., job_completed: _Optional[_Union[_jobs_pb2.JobCompleted, _Mapping]] = ..., participation_proof: _Optional[_Union[_jobs_pb2.ParticipationProof, _Mapping]] = ..., job_alignment: _Optional[_Union[_jobs_pb2.JobAlignment, _Mapping]] = ..., replay_verdict: _Optional[_Union[_jobs_pb2.ReplayVerdict, _Mapping]] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: RecordBody
    signature: bytes
    def __init__(self, body: _Optional[_Union[RecordBody, _Mapping]] = ..., signature: _Optional[bytes] = ...) -> None: ...
