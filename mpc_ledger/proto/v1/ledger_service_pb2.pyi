from mpc_ledger.proto.v1 import consensus_pb2 as _consensus_pb2
from mpc_ledger.proto.v1 import ledger_pb2 as _ledger_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GossipBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[GossipMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[GossipMessage, _Mapping]]] = ...) -> None: ...

class GossipMessage(_message.Message):
    __slots__ = ("consensus", "record", "tip_height")
    CONSENSUS_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    TIP_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    consensus: _consensus_pb2.ConsensusMessage
    record: _ledger_pb2.Record
    tip_height: int
    def __init__(self, consensus: _Optional[_Union[_consensus_pb2.ConsensusMessage, _Mapping]] = ..., record: _Optional[_Union[_ledger_pb2.Record, _Mapping]] = ..., tip_height: _Optional[int] = ...) -> None: ...

class GossipAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SubmitRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: _ledger_pb2.Record
    def __init__(self, record: _Optional[_Union[_ledger_pb2.Record, _Mapping]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("record_id", "accepted", "reason", "code")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    record_id: bytes
    accepted: bool
    reason: str
    code: str
    def __init__(self, record_id: _Optional[bytes] = ..., accepted: _Optional[bool] = ..., reason: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[_ledger_pb2.Record]
    def __init__(self, records: _Optional[_Iterable[_Union[_ledger_pb2.Record, _Mapping]]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SubmitResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[SubmitResponse, _Mapping]]] = ...) -> None: ...

class WaitCommittedRequest(_message.Message):
    __slots__ = ("record_id", "timeout_ms")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    record_id: bytes
    timeout_ms: int
    def __init__(self, record_id: _Optional[bytes] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class WaitCommittedResponse(_message.Message):
    __slots__ = ("committed", "height", "log_index")
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    committed: bool
    height: int
    log_index: int
    def __init__(self, committed: _Optional[bool] = ..., height: _Optional[int] = ..., log_index: _Optional[int] = ...) -> None: ...

class TipRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TipResponse(_message.Message):
    __slots__ = ("height", "block_id", "log_size", "round", "mempool_size")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MEMPOOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_id: bytes
    log_size: int
    round: int
    mempool_size: int
    def __init__(self, height: _Optional[int] = ..., block_id: _Optional[bytes] = ..., log_size: _Optional[int] = ..., round: _Optional[int] = ..., mempool_size: _Optional[int] = ...) -> None: ...

class GetBlocksRequest(_message.Message):
    __slots__ = ("from_height", "max_blocks")
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    from_height: int
    max_blocks: int
    def __init__(self, from_height: _Optional[int] = ..., max_blocks: _Optional[int] = ...) -> None: ...
