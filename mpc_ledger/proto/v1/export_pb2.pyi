from mpc_ledger.proto.v1 import consensus_pb2 as _consensus_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportHeader(_message.Message):
    __slots__ = ("format", "genesis_json", "chain_id", "from_height", "to_height", "created_ms", "exporter_id", "anchor", "anchor_log_frontier")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    GENESIS_JSON_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TO_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    EXPORTER_ID_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_LOG_FRONTIER_FIELD_NUMBER: _ClassVar[int]
    format: str
    genesis_json: bytes
    chain_id: bytes
    from_height: int
    to_height: int
    created_ms: int
    exporter_id: str
    anchor: _consensus_pb2.CommittedBlock
    anchor_log_frontier: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, format: _Optional[str] = ..., genesis_json: _Optional[bytes] = ..., chain_id: _Optional[bytes] = ..., from_height: _Optional[int] = ..., to_height: _Optional[int] = ..., created_ms: _Optional[int] = ..., exporter_id: _Optional[str] = ..., anchor: _Optional[_Union[_consensus_pb2.CommittedBlock, _Mapping]] = ..., anchor_log_frontier: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ExportTrailer(_message.Message):
    __slots__ = ("block_count", "record_count", "log_size", "log_root")
    BLOCK_COUNT_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    LOG_ROOT_FIELD_NUMBER: _ClassVar[int]
    block_count: int
    record_count: int
    log_size: int
    log_root: bytes
    def __init__(self, block_count: _Optional[int] = ..., record_count: _Optional[int] = ..., log_size: _Optional[int] = ..., log_root: _Optional[bytes] = ...) -> None: ...

class ExportFrame(_message.Message):
    __slots__ = ("header", "block", "trailer")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    TRAILER_FIELD_NUMBER: _ClassVar[int]
    header: ExportHeader
    block: _consensus_pb2.CommittedBlock
    trailer: ExportTrailer
    def __init__(self, header: _Optional[_Union[ExportHeader, _Mapping]] = ..., block: _Optional[_Union[_consensus_pb2.CommittedBlock, _Mapping]] = ..., trailer: _Optional[_Union[ExportTrailer, _Mapping]] = ...) -> None: ...

class RecordInclusion(_message.Message):
    __slots__ = ("record", "log_index", "audit_path")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    LOG_INDEX_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PATH_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    log_index: int
    audit_path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, record: _Optional[bytes] = ..., log_index: _Optional[int] = ..., audit_path: _Optional[_Iterable[bytes]] = ...) -> None: ...

class RecordProof(_message.Message):
    __slots__ = ("format", "chain_id", "header", "certificate", "inclusion", "author_binding", "created_ms")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_BINDING_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    format: str
    chain_id: bytes
    header: _consensus_pb2.BlockHeader
    certificate: _consensus_pb2.Certificate
    inclusion: RecordInclusion
    author_binding: RecordInclusion
    created_ms: int
    def __init__(self, format: _Optional[str] = ..., chain_id: _Optional[bytes] = ..., header: _Optional[_Union[_consensus_pb2.BlockHeader, _Mapping]] = ..., certificate: _Optional[_Union[_consensus_pb2.Certificate, _Mapping]] = ..., inclusion: _Optional[_Union[RecordInclusion, _Mapping]] = ..., author_binding: _Optional[_Union[RecordInclusion, _Mapping]] = ..., created_ms: _Optional[int] = ...) -> None: ...
