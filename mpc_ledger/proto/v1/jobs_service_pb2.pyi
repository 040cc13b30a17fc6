from mpc_ledger.proto.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobRef(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    def __init__(self, job_id: _Optional[bytes] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("job_id", "state", "local_state", "epoch", "epochs", "step", "steps", "elapsed_s", "eta_s", "has_loss", "loss", "reason", "ended", "metrics", "phase")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STATE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    HAS_LOSS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    state: str
    local_state: str
    epoch: int
    epochs: int
    step: int
    steps: int
    elapsed_s: float
    eta_s: float
    has_loss: bool
    loss: float
    reason: str
    ended: bool
    metrics: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.Metric]
    phase: str
    def __init__(self, job_id: _Optional[bytes] = ..., state: _Optional[str] = ..., local_state: _Optional[str] = ..., epoch: _Optional[int] = ..., epochs: _Optional[int] = ..., step: _Optional[int] = ..., steps: _Optional[int] = ..., elapsed_s: _Optional[float] = ..., eta_s: _Optional[float] = ..., has_loss: _Optional[bool] = ..., loss: _Optional[float] = ..., reason: _Optional[str] = ..., ended: _Optional[bool] = ..., metrics: _Optional[_Iterable[_Union[_jobs_pb2.Metric, _Mapping]]] = ..., phase: _Optional[str] = ...) -> None: ...

class ModelChunk(_message.Message):
    __slots__ = ("data", "total_bytes")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_bytes: int
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ...) -> None: ...
