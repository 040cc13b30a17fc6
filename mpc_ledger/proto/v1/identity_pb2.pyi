from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Member(_message.Message):
    __slots__ = ("id", "roles", "signing_public_key", "tls_ca_certificate", "endpoint", "organisation")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    SIGNING_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    TLS_CA_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    ORGANISATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    signing_public_key: bytes
    tls_ca_certificate: bytes
    endpoint: str
    organisation: str
    def __init__(self, id: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., signing_public_key: _Optional[bytes] = ..., tls_ca_certificate: _Optional[bytes] = ..., endpoint: _Optional[str] = ..., organisation: _Optional[str] = ...) -> None: ...

class ConsensusParams(_message.Message):
    __slots__ = ("timeout_propose_ms", "timeout_propose_delta_ms", "timeout_prevote_ms", "timeout_prevote_delta_ms", "timeout_precommit_ms", "timeout_precommit_delta_ms", "max_block_records", "max_record_bytes", "empty_block_interval_ms")
    TIMEOUT_PROPOSE_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_PROPOSE_DELTA_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_PREVOTE_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_PREVOTE_DELTA_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_PRECOMMIT_MS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_PRECOMMIT_DELTA_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCK_RECORDS_FIELD_NUMBER: _ClassVar[int]
    MAX_RECORD_BYTES_FIELD_NUMBER: _ClassVar[int]
    EMPTY_BLOCK_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    timeout_propose_ms: int
    timeout_propose_delta_ms: int
    timeout_prevote_ms: int
    timeout_prevote_delta_ms: int
    timeout_precommit_ms: int
    timeout_precommit_delta_ms: int
    max_block_records: int
    max_record_bytes: int
    empty_block_interval_ms: int
    def __init__(self, timeout_propose_ms: _Optional[int] = ..., timeout_propose_delta_ms: _Optional[int] = ..., timeout_prevote_ms: _Optional[int] = ..., timeout_prevote_delta_ms: _Optional[int] = ..., timeout_precommit_ms: _Optional[int] = ..., timeout_precommit_delta_ms: _Optional[int] = ..., max_block_records: _Optional[int] = ..., max_record_bytes: _Optional[int] = ..., empty_block_interval_ms: _Optional[int] = ...) -> None: ...

class QuotaParams(_message.Message):
    __slots__ = ("user_window_blocks", "user_records_per_window", "user_bytes_per_window", "user_submit_per_s", "user_submit_burst")
    USER_WINDOW_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    USER_RECORDS_PER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    USER_BYTES_PER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    USER_SUBMIT_PER_S_FIELD_NUMBER: _ClassVar[int]
    USER_SUBMIT_BURST_FIELD_NUMBER: _ClassVar[int]
    user_window_blocks: int
    user_records_per_window: int
    user_bytes_per_window: int
    user_submit_per_s: int
    user_submit_burst: int
    def __init__(self, user_window_blocks: _Optional[int] = ..., user_records_per_window: _Optional[int] = ..., user_bytes_per_window: _Optional[int] = ..., user_submit_per_s: _Optional[int] = ..., user_submit_burst: _Optional[int] = ...) -> None: ...

class MpcParams(_message.Message):
    __slots__ = ("allowed_protocols", "allowed_tuple_providers", "min_test_rows")
    ALLOWED_PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_TUPLE_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MIN_TEST_ROWS_FIELD_NUMBER: _ClassVar[int]
    allowed_protocols: _containers.RepeatedScalarFieldContainer[str]
    allowed_tuple_providers: _containers.RepeatedScalarFieldContainer[str]
    min_test_rows: int
    def __init__(self, allowed_protocols: _Optional[_Iterable[str]] = ..., allowed_tuple_providers: _Optional[_Iterable[str]] = ..., min_test_rows: _Optional[int] = ...) -> None: ...

class Genesis(_message.Message):
    __slots__ = ("format_version", "consortium", "genesis_time", "members", "consensus", "mpc", "quotas")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONSORTIUM_FIELD_NUMBER: _ClassVar[int]
    GENESIS_TIME_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CONSENSUS_FIELD_NUMBER: _ClassVar[int]
    MPC_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    consortium: str
    genesis_time: str
    members: _containers.RepeatedCompositeFieldContainer[Member]
    consensus: ConsensusParams
    mpc: MpcParams
    quotas: QuotaParams
    def __init__(self, format_version: _Optional[int] = ..., consortium: _Optional[str] = ..., genesis_time: _Optional[str] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., consensus: _Optional[_Union[ConsensusParams, _Mapping]] = ..., mpc: _Optional[_Union[MpcParams, _Mapping]] = ..., quotas: _Optional[_Union[QuotaParams, _Mapping]] = ...) -> None: ...
