from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatusRequest(_message.Message):
    __slots__ = ("probe_peers", "peer_timeout_ms")
    PROBE_PEERS_FIELD_NUMBER: _ClassVar[int]
    PEER_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    probe_peers: bool
    peer_timeout_ms: int
    def __init__(self, probe_peers: _Optional[bool] = ..., peer_timeout_ms: _Optional[int] = ...) -> None: ...

class PeerStatus(_message.Message):
    __slots__ = ("id", "endpoint", "reachable", "round_trip_ms", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    endpoint: str
    reachable: bool
    round_trip_ms: float
    error: str
    def __init__(self, id: _Optional[str] = ..., endpoint: _Optional[str] = ..., reachable: _Optional[bool] = ..., round_trip_ms: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("member_id", "roles", "chain_id", "consortium", "listen_address", "version", "uptime_s", "caller_id", "peers", "ledger", "jobs")
    class JobsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CONSORTIUM_FIELD_NUMBER: _ClassVar[int]
    LISTEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    CALLER_ID_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    chain_id: str
    consortium: str
    listen_address: str
    version: str
    uptime_s: float
    caller_id: str
    peers: _containers.RepeatedCompositeFieldContainer[PeerStatus]
    ledger: LedgerHealth
    jobs: _containers.ScalarMap[str, int]
    def __init__(self, member_id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., chain_id: _Optional[str] = ..., consortium: _Optional[str] = ..., listen_address: _Optional[str] = ..., version: _Optional[str] = ..., uptime_s: _Optional[float] = ..., caller_id: _Optional[str] = ..., peers: _Optional[_Iterable[_Union[PeerStatus, _Mapping]]] = ..., ledger: _Optional[_Union[LedgerHealth, _Mapping]] = ..., jobs: _Optional[_Mapping[str, int]] = ...) -> None: ...

class LedgerHealth(_message.Message):
    __slots__ = ("validator", "height", "round", "mempool_size", "since_last_commit_s", "log_size")
    VALIDATOR_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    MEMPOOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    SINCE_LAST_COMMIT_S_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    validator: bool
    height: int
    round: int
    mempool_size: int
    since_last_commit_s: float
    log_size: int
    def __init__(self, validator: _Optional[bool] = ..., height: _Optional[int] = ..., round: _Optional[int] = ..., mempool_size: _Optional[int] = ..., since_last_commit_s: _Optional[float] = ..., log_size: _Optional[int] = ...) -> None: ...
