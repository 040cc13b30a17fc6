from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_KIND_UNSPECIFIED: _ClassVar[FrameKind]
    FRAME_KIND_TENSORS: _ClassVar[FrameKind]
    FRAME_KIND_OBJECT: _ClassVar[FrameKind]
    FRAME_KIND_BARRIER: _ClassVar[FrameKind]
FRAME_KIND_UNSPECIFIED: FrameKind
FRAME_KIND_TENSORS: FrameKind
FRAME_KIND_OBJECT: FrameKind
FRAME_KIND_BARRIER: FrameKind

class TensorSpec(_message.Message):
    __slots__ = ("dtype", "shape")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class MpcObject(_message.Message):
    __slots__ = ("none", "bool_value", "int_value", "float_value", "string_value", "list_value", "tuple_value", "size_value", "dict_value", "tensor_value", "uint_value")
    NONE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    TUPLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    SIZE_VALUE_FIELD_NUMBER: _ClassVar[int]
    DICT_VALUE_FIELD_NUMBER: _ClassVar[int]
    TENSOR_VALUE_FIELD_NUMBER: _ClassVar[int]
    UINT_VALUE_FIELD_NUMBER: _ClassVar[int]
    none: bool
    bool_value: bool
    int_value: int
    float_value: float
    string_value: str
    list_value: MpcObjectList
    tuple_value: MpcObjectList
    size_value: MpcSize
    dict_value: MpcObjectDict
    tensor_value: MpcTensor
    uint_value: int
    def __init__(self, none: _Optional[bool] = ..., bool_value: _Optional[bool] = ..., int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., string_value: _Optional[str] = ..., list_value: _Optional[_Union[MpcObjectList, _Mapping]] = ..., tuple_value: _Optional[_Union[MpcObjectList, _Mapping]] = ..., size_value: _Optional[_Union[MpcSize, _Mapping]] = ..., dict_value: _Optional[_Union[MpcObjectDict, _Mapping]] = ..., tensor_value: _Optional[_Union[MpcTensor, _Mapping]] = ..., uint_value: _Optional[int] = ...) -> None: ...

class MpcTensor(_message.Message):
    __slots__ = ("spec", "data")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    spec: TensorSpec
    data: bytes
    def __init__(self, spec: _Optional[_Union[TensorSpec, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class MpcObjectList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[MpcObject]
    def __init__(self, items: _Optional[_Iterable[_Union[MpcObject, _Mapping]]] = ...) -> None: ...

class MpcSize(_message.Message):
    __slots__ = ("dims",)
    DIMS_FIELD_NUMBER: _ClassVar[int]
    dims: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, dims: _Optional[_Iterable[int]] = ...) -> None: ...

class MpcObjectEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: MpcObject
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MpcObject, _Mapping]] = ...) -> None: ...

class MpcObjectDict(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[MpcObjectEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[MpcObjectEntry, _Mapping]]] = ...) -> None: ...

class MpcFrame(_message.Message):
    __slots__ = ("job_id", "seq", "sender_rank", "receiver_rank", "kind", "tensors", "object", "data", "chunk_index", "chunk_count", "sender_member")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SENDER_RANK_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_RANK_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    SENDER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    seq: int
    sender_rank: int
    receiver_rank: int
    kind: FrameKind
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    object: MpcObject
    data: bytes
    chunk_index: int
    chunk_count: int
    sender_member: str
    def __init__(self, job_id: _Optional[str] = ..., seq: _Optional[int] = ..., sender_rank: _Optional[int] = ..., receiver_rank: _Optional[int] = ..., kind: _Optional[_Union[FrameKind, str]] = ..., tensors: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., object: _Optional[_Union[MpcObject, _Mapping]] = ..., data: _Optional[bytes] = ..., chunk_index: _Optional[int] = ..., chunk_count: _Optional[int] = ..., sender_member: _Optional[str] = ...) -> None: ...

class RankMember(_message.Message):
    __slots__ = ("rank", "member_id")
    RANK_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    rank: int
    member_id: str
    def __init__(self, rank: _Optional[int] = ..., member_id: _Optional[str] = ...) -> None: ...

class WorkerHello(_message.Message):
    __slots__ = ("job_id", "rank", "ranks", "tuple_provider")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    RANKS_FIELD_NUMBER: _ClassVar[int]
    TUPLE_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    rank: int
    ranks: _containers.RepeatedCompositeFieldContainer[RankMember]
    tuple_provider: str
    def __init__(self, job_id: _Optional[str] = ..., rank: _Optional[int] = ..., ranks: _Optional[_Iterable[_Union[RankMember, _Mapping]]] = ..., tuple_provider: _Optional[str] = ...) -> None: ...

class WorkerToRelay(_message.Message):
    __slots__ = ("hello", "frames", "done", "abort_reason")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ABORT_REASON_FIELD_NUMBER: _ClassVar[int]
    hello: WorkerHello
    frames: _containers.RepeatedCompositeFieldContainer[MpcFrame]
    done: bool
    abort_reason: str
    def __init__(self, hello: _Optional[_Union[WorkerHello, _Mapping]] = ..., frames: _Optional[_Iterable[_Union[MpcFrame, _Mapping]]] = ..., done: _Optional[bool] = ..., abort_reason: _Optional[str] = ...) -> None: ...

class PartyFailure(_message.Message):
    __slots__ = ("job_id", "member_id", "rank", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    member_id: str
    rank: int
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., member_id: _Optional[str] = ..., rank: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RelayToWorker(_message.Message):
    __slots__ = ("attached", "frames", "failures")
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    attached: bool
    frames: _containers.RepeatedCompositeFieldContainer[MpcFrame]
    failures: _containers.RepeatedCompositeFieldContainer[PartyFailure]
    def __init__(self, attached: _Optional[bool] = ..., frames: _Optional[_Iterable[_Union[MpcFrame, _Mapping]]] = ..., failures: _Optional[_Iterable[_Union[PartyFailure, _Mapping]]] = ...) -> None: ...

class PeerBatch(_message.Message):
    __slots__ = ("frames", "failures")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[MpcFrame]
    failures: _containers.RepeatedCompositeFieldContainer[PartyFailure]
    def __init__(self, frames: _Optional[_Iterable[_Union[MpcFrame, _Mapping]]] = ..., failures: _Optional[_Iterable[_Union[PartyFailure, _Mapping]]] = ...) -> None: ...

class LinkClosed(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
