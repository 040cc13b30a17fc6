from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Column(_message.Message):
    __slots__ = ("name", "type", "nullable")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NULLABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    nullable: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., nullable: _Optional[bool] = ...) -> None: ...

class DatasetSchema(_message.Message):
    __slots__ = ("columns", "id_column", "label_column")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    id_column: str
    label_column: str
    def __init__(self, columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., id_column: _Optional[str] = ..., label_column: _Optional[str] = ...) -> None: ...

class DatasetRegistration(_message.Message):
    __slots__ = ("dataset_id", "schema", "row_count", "schema_hash", "rows_root", "fingerprint", "description")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_HASH_FIELD_NUMBER: _ClassVar[int]
    ROWS_ROOT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    schema: DatasetSchema
    row_count: int
    schema_hash: bytes
    rows_root: bytes
    fingerprint: bytes
    description: str
    def __init__(self, dataset_id: _Optional[str] = ..., schema: _Optional[_Union[DatasetSchema, _Mapping]] = ..., row_count: _Optional[int] = ..., schema_hash: _Optional[bytes] = ..., rows_root: _Optional[bytes] = ..., fingerprint: _Optional[bytes] = ..., description: _Optional[str] = ...) -> None: ...

class JobDataset(_message.Message):
    __slots__ = ("dataset_id", "features", "id_column")
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    dataset_id: str
    features: _containers.RepeatedScalarFieldContainer[str]
    id_column: str
    def __init__(self, dataset_id: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., id_column: _Optional[str] = ...) -> None: ...

class ModelSpec(_message.Message):
    __slots__ = ("kind", "hidden_sizes", "classes")
    KIND_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_SIZES_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    hidden_sizes: _containers.RepeatedScalarFieldContainer[int]
    classes: int
    def __init__(self, kind: _Optional[str] = ..., hidden_sizes: _Optional[_Iterable[int]] = ..., classes: _Optional[int] = ...) -> None: ...

class OptimiserSpec(_message.Message):
    __slots__ = ("kind", "learning_rate", "momentum", "weight_decay")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    learning_rate: float
    momentum: float
    weight_decay: float
    def __init__(self, kind: _Optional[str] = ..., learning_rate: _Optional[float] = ..., momentum: _Optional[float] = ..., weight_decay: _Optional[float] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("name", "description", "layout", "alignment", "datasets", "label", "model", "loss", "optimiser", "epochs", "batch_size", "seed", "test_fraction", "recipients", "reveal_training_loss", "tuple_provider", "dealer", "protocol", "batch_order", "standardisation", "sigmoid", "gradient_threshold")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    ALIGNMENT_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    OPTIMISER_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TEST_FRACTION_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    REVEAL_TRAINING_LOSS_FIELD_NUMBER: _ClassVar[int]
    TUPLE_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DEALER_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    BATCH_ORDER_FIELD_NUMBER: _ClassVar[int]
    STANDARDISATION_FIELD_NUMBER: _ClassVar[int]
    SIGMOID_FIELD_NUMBER: _ClassVar[int]
    GRADIENT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    layout: str
    alignment: str
    datasets: _containers.RepeatedCompositeFieldContainer[JobDataset]
    label: str
    model: ModelSpec
    loss: str
    optimiser: OptimiserSpec
    epochs: int
    batch_size: int
    seed: int
    test_fraction: float
    recipients: _containers.RepeatedScalarFieldContainer[str]
    reveal_training_loss: bool
    tuple_provider: str
    dealer: str
    protocol: str
    batch_order: str
    standardisation: str
    sigmoid: str
    gradient_threshold: float
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., layout: _Optional[str] = ..., alignment: _Optional[str] = ..., datasets: _Optional[_Iterable[_Union[JobDataset, _Mapping]]] = ..., label: _Optional[str] = ..., model: _Optional[_Union[ModelSpec, _Mapping]] = ..., loss: _Optional[str] = ..., optimiser: _Optional[_Union[OptimiserSpec, _Mapping]] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., seed: _Optional[int] = ..., test_fraction: _Optional[float] = ..., recipients: _Optional[_Iterable[str]] = ..., reveal_training_loss: _Optional[bool] = ..., tuple_provider: _Optional[str] = ..., dealer: _Optional[str] = ..., protocol: _Optional[str] = ..., batch_order: _Optional[str] = ..., standardisation: _Optional[str] = ..., sigmoid: _Optional[str] = ..., gradient_threshold: _Optional[float] = ...) -> None: ...

class JobSubmission(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class JobDecision(_message.Message):
    __slots__ = ("job_id", "approve", "reasons", "policy_hash")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    approve: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    policy_hash: bytes
    def __init__(self, job_id: _Optional[bytes] = ..., approve: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., policy_hash: _Optional[bytes] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("job_id", "manifest_hash", "dataset_fingerprint", "seed_commitment")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_HASH_FIELD_NUMBER: _ClassVar[int]
    DATASET_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    SEED_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    manifest_hash: bytes
    dataset_fingerprint: bytes
    seed_commitment: bytes
    def __init__(self, job_id: _Optional[bytes] = ..., manifest_hash: _Optional[bytes] = ..., dataset_fingerprint: _Optional[bytes] = ..., seed_commitment: _Optional[bytes] = ...) -> None: ...

class ChannelDigest(_message.Message):
    __slots__ = ("sender_rank", "receiver_rank", "digest", "messages", "size_bytes", "rounds")
    SENDER_RANK_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_RANK_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    sender_rank: int
    receiver_rank: int
    digest: bytes
    messages: int
    size_bytes: int
    rounds: int
    def __init__(self, sender_rank: _Optional[int] = ..., receiver_rank: _Optional[int] = ..., digest: _Optional[bytes] = ..., messages: _Optional[int] = ..., size_bytes: _Optional[int] = ..., rounds: _Optional[int] = ...) -> None: ...

class JobEpochDigests(_message.Message):
    __slots__ = ("job_id", "epoch", "channels")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    epoch: int
    channels: _containers.RepeatedCompositeFieldContainer[ChannelDigest]
    def __init__(self, job_id: _Optional[bytes] = ..., epoch: _Optional[int] = ..., channels: _Optional[_Iterable[_Union[ChannelDigest, _Mapping]]] = ...) -> None: ...

class JobAlignment(_message.Message):
    __slots__ = ("job_id", "method", "intersection_size", "train_rows", "test_rows", "channels")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    INTERSECTION_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    TEST_ROWS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    method: str
    intersection_size: int
    train_rows: int
    test_rows: int
    channels: _containers.RepeatedCompositeFieldContainer[ChannelDigest]
    def __init__(self, job_id: _Optional[bytes] = ..., method: _Optional[str] = ..., intersection_size: _Optional[int] = ..., train_rows: _Optional[int] = ..., test_rows: _Optional[int] = ..., channels: _Optional[_Iterable[_Union[ChannelDigest, _Mapping]]] = ...) -> None: ...

class JobAborted(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    reason: str
    def __init__(self, job_id: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class JobCompleted(_message.Message):
    __slots__ = ("job_id", "model_hash", "metrics")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_HASH_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    model_hash: bytes
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    def __init__(self, job_id: _Optional[bytes] = ..., model_hash: _Optional[bytes] = ..., metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ...) -> None: ...

class ParticipationProof(_message.Message):
    __slots__ = ("job_id", "manifest_hash", "dataset_fingerprint", "rank", "final_channels", "rows_contributed", "epochs_completed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_HASH_FIELD_NUMBER: _ClassVar[int]
    DATASET_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    FINAL_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ROWS_CONTRIBUTED_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    manifest_hash: bytes
    dataset_fingerprint: bytes
    rank: int
    final_channels: _containers.RepeatedCompositeFieldContainer[ChannelDigest]
    rows_contributed: int
    epochs_completed: int
    def __init__(self, job_id: _Optional[bytes] = ..., manifest_hash: _Optional[bytes] = ..., dataset_fingerprint: _Optional[bytes] = ..., rank: _Optional[int] = ..., final_channels: _Optional[_Iterable[_Union[ChannelDigest, _Mapping]]] = ..., rows_contributed: _Optional[int] = ..., epochs_completed: _Optional[int] = ...) -> None: ...

class ReplayVerdict(_message.Message):
    __slots__ = ("job_id", "rank", "member", "verdict", "detail", "seed_commitment", "dataset_fingerprint", "frames_checked", "channels_checked")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SEED_COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    DATASET_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    job_id: bytes
    rank: int
    member: str
    verdict: str
    detail: str
    seed_commitment: bytes
    dataset_fingerprint: bytes
    frames_checked: int
    channels_checked: _containers.RepeatedCompositeFieldContainer[ChannelDigest]
    def __init__(self, job_id: _Optional[bytes] = ..., rank: _Optional[int] = ..., member: _Optional[str] = ..., verdict: _Optional[str] = ..., detail: _Optional[str] = ..., seed_commitment: _Optional[bytes] = ..., dataset_fingerprint: _Optional[bytes] = ..., frames_checked: _Optional[int] = ..., channels_checked: _Optional[_Iterable[_Union[ChannelDigest, _Mapping]]] = ...) -> None: ...

class ManifestParty(_message.Message):
    __slots__ = ("rank", "member_id", "role", "dataset_id", "dataset_fingerprint", "row_count", "train_rows", "test_rows", "feature_columns", "holds_label", "id_column")
    RANK_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    TEST_ROWS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    HOLDS_LABEL_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    rank: int
    member_id: str
    role: str
    dataset_id: str
    dataset_fingerprint: bytes
    row_count: int
    train_rows: int
    test_rows: int
    feature_columns: _containers.RepeatedScalarFieldContainer[str]
    holds_label: bool
    id_column: str
    def __init__(self, rank: _Optional[int] = ..., member_id: _Optional[str] = ..., role: _Optional[str] = ..., dataset_id: _Optional[str] = ..., dataset_fingerprint: _Optional[bytes] = ..., row_count: _Optional[int] = ..., train_rows: _Optional[int] = ..., test_rows: _Optional[int] = ..., feature_columns: _Optional[_Iterable[str]] = ..., holds_label: _Optional[bool] = ..., id_column: _Optional[str] = ...) -> None: ...

class JobManifest(_message.Message):
    __slots__ = ("chain_id", "job_id", "submitter", "spec", "parties", "world_size", "dealer_rank", "label_rank", "n_features", "recipient_ranks")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMITTER_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    DEALER_RANK_FIELD_NUMBER: _ClassVar[int]
    LABEL_RANK_FIELD_NUMBER: _ClassVar[int]
    N_FEATURES_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_RANKS_FIELD_NUMBER: _ClassVar[int]
    chain_id: bytes
    job_id: bytes
    submitter: str
    spec: JobSpec
    parties: _containers.RepeatedCompositeFieldContainer[ManifestParty]
    world_size: int
    dealer_rank: int
    label_rank: int
    n_features: int
    recipient_ranks: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, chain_id: _Optional[bytes] = ..., job_id: _Optional[bytes] = ..., submitter: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., parties: _Optional[_Iterable[_Union[ManifestParty, _Mapping]]] = ..., world_size: _Optional[int] = ..., dealer_rank: _Optional[int] = ..., label_rank: _Optional[int] = ..., n_features: _Optional[int] = ..., recipient_ranks: _Optional[_Iterable[int]] = ...) -> None: ...

class PolicyDocument(_message.Message):
    __slots__ = ("version", "submitters", "datasets", "models", "max_epochs", "recipients", "allow_loss_reveal", "min_rows", "tuple_providers", "min_test_rows")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBMITTERS_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    MAX_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_LOSS_REVEAL_FIELD_NUMBER: _ClassVar[int]
    MIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    TUPLE_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MIN_TEST_ROWS_FIELD_NUMBER: _ClassVar[int]
    version: int
    submitters: _containers.RepeatedScalarFieldContainer[str]
    datasets: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedScalarFieldContainer[str]
    max_epochs: int
    recipients: _containers.RepeatedScalarFieldContainer[str]
    allow_loss_reveal: bool
    min_rows: int
    tuple_providers: _containers.RepeatedScalarFieldContainer[str]
    min_test_rows: int
    def __init__(self, version: _Optional[int] = ..., submitters: _Optional[_Iterable[str]] = ..., datasets: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[str]] = ..., max_epochs: _Optional[int] = ..., recipients: _Optional[_Iterable[str]] = ..., allow_loss_reveal: _Optional[bool] = ..., min_rows: _Optional[int] = ..., tuple_providers: _Optional[_Iterable[str]] = ..., min_test_rows: _Optional[int] = ...) -> None: ...
