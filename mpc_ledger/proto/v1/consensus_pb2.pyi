from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Step(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_UNSPECIFIED: _ClassVar[Step]
    STEP_PROPOSE: _ClassVar[Step]
    STEP_PREVOTE: _ClassVar[Step]
    STEP_PRECOMMIT: _ClassVar[Step]
STEP_UNSPECIFIED: Step
STEP_PROPOSE: Step
STEP_PREVOTE: Step
STEP_PRECOMMIT: Step

class Validator(_message.Message):
    __slots__ = ("id", "public_key")
    ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    public_key: bytes
    def __init__(self, id: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class ValidatorSet(_message.Message):
    __slots__ = ("validators",)
    VALIDATORS_FIELD_NUMBER: _ClassVar[int]
    validators: _containers.RepeatedCompositeFieldContainer[Validator]
    def __init__(self, validators: _Optional[_Iterable[_Union[Validator, _Mapping]]] = ...) -> None: ...

class BlockHeader(_message.Message):
    __slots__ = ("height", "previous_block_hash", "proposer_id", "time_ms", "records_root", "records_count", "log_root", "log_size", "validator_set_hash")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ROOT_FIELD_NUMBER: _ClassVar[int]
    RECORDS_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOG_ROOT_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_SET_HASH_FIELD_NUMBER: _ClassVar[int]
    height: int
    previous_block_hash: bytes
    proposer_id: str
    time_ms: int
    records_root: bytes
    records_count: int
    log_root: bytes
    log_size: int
    validator_set_hash: bytes
    def __init__(self, height: _Optional[int] = ..., previous_block_hash: _Optional[bytes] = ..., proposer_id: _Optional[str] = ..., time_ms: _Optional[int] = ..., records_root: _Optional[bytes] = ..., records_count: _Optional[int] = ..., log_root: _Optional[bytes] = ..., log_size: _Optional[int] = ..., validator_set_hash: _Optional[bytes] = ...) -> None: ...

class Block(_message.Message):
    __slots__ = ("header", "records")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    header: BlockHeader
    records: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, header: _Optional[_Union[BlockHeader, _Mapping]] = ..., records: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ProposalBody(_message.Message):
    __slots__ = ("chain_id", "height", "round", "pol_round", "block_id", "proposer_id")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    POL_ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_ID_FIELD_NUMBER: _ClassVar[int]
    chain_id: bytes
    height: int
    round: int
    pol_round: int
    block_id: bytes
    proposer_id: str
    def __init__(self, chain_id: _Optional[bytes] = ..., height: _Optional[int] = ..., round: _Optional[int] = ..., pol_round: _Optional[int] = ..., block_id: _Optional[bytes] = ..., proposer_id: _Optional[str] = ...) -> None: ...

class Proposal(_message.Message):
    __slots__ = ("body", "signature", "block")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    body: ProposalBody
    signature: bytes
    block: Block
    def __init__(self, body: _Optional[_Union[ProposalBody, _Mapping]] = ..., signature: _Optional[bytes] = ..., block: _Optional[_Union[Block, _Mapping]] = ...) -> None: ...

class VoteBody(_message.Message):
    __slots__ = ("chain_id", "step", "height", "round", "block_id", "validator_id")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    chain_id: bytes
    step: Step
    height: int
    round: int
    block_id: bytes
    validator_id: str
    def __init__(self, chain_id: _Optional[bytes] = ..., step: _Optional[_Union[Step, str]] = ..., height: _Optional[int] = ..., round: _Optional[int] = ..., block_id: _Optional[bytes] = ..., validator_id: _Optional[str] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("body", "signature")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    body: VoteBody
    signature: bytes
    def __init__(self, body: _Optional[_Union[VoteBody, _Mapping]] = ..., signature: _Optional[bytes] = ...) -> None: ...

class ConsensusMessage(_message.Message):
    __slots__ = ("proposal", "vote")
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    proposal: Proposal
    vote: Vote
    def __init__(self, proposal: _Optional[_Union[Proposal, _Mapping]] = ..., vote: _Optional[_Union[Vote, _Mapping]] = ...) -> None: ...

class CommitSignature(_message.Message):
    __slots__ = ("validator_id", "signature")
    VALIDATOR_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    validator_id: str
    signature: bytes
    def __init__(self, validator_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("height", "round", "block_id", "signatures")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    height: int
    round: int
    block_id: bytes
    signatures: _containers.RepeatedCompositeFieldContainer[CommitSignature]
    def __init__(self, height: _Optional[int] = ..., round: _Optional[int] = ..., block_id: _Optional[bytes] = ..., signatures: _Optional[_Iterable[_Union[CommitSignature, _Mapping]]] = ...) -> None: ...

class CommittedBlock(_message.Message):
    __slots__ = ("block", "certificate")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    block: Block
    certificate: Certificate
    def __init__(self, block: _Optional[_Union[Block, _Mapping]] = ..., certificate: _Optional[_Union[Certificate, _Mapping]] = ...) -> None: ...

class DuplicateVoteEvidence(_message.Message):
    __slots__ = ("first", "second")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    first: Vote
    second: Vote
    def __init__(self, first: _Optional[_Union[Vote, _Mapping]] = ..., second: _Optional[_Union[Vote, _Mapping]] = ...) -> None: ...

class DuplicateProposalEvidence(_message.Message):
    __slots__ = ("first_body", "first_signature", "second_body", "second_signature")
    FIRST_BODY_FIELD_NUMBER: _ClassVar[int]
    FIRST_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SECOND_BODY_FIELD_NUMBER: _ClassVar[int]
    SECOND_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    first_body: ProposalBody
    first_signature: bytes
    second_body: ProposalBody
    second_signature: bytes
    def __init__(self, first_body: _Optional[_Union[ProposalBody, _Mapping]] = ..., first_signature: _Optional[bytes] = ..., second_body: _Optional[_Union[ProposalBody, _Mapping]] = ..., second_signature: _Optional[bytes] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("duplicate_vote", "duplicate_proposal")
    DUPLICATE_VOTE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    duplicate_vote: DuplicateVoteEvidence
    duplicate_proposal: DuplicateProposalEvidence
    def __init__(self, duplicate_vote: _Optional[_Union[DuplicateVoteEvidence, _Mapping]] = ..., duplicate_proposal: _Optional[_Union[DuplicateProposalEvidence, _Mapping]] = ...) -> None: ...

class ChainTip(_message.Message):
    __slots__ = ("height", "block_id", "time_ms", "log_size", "log_frontier")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    LOG_SIZE_FIELD_NUMBER: _ClassVar[int]
    LOG_FRONTIER_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_id: bytes
    time_ms: int
    log_size: int
    log_frontier: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, height: _Optional[int] = ..., block_id: _Optional[bytes] = ..., time_ms: _Optional[int] = ..., log_size: _Optional[int] = ..., log_frontier: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ConsensusState(_message.Message):
    __slots__ = ("tip", "round", "step", "locked_round", "locked_block", "valid_round", "valid_block", "last_signed", "valid_round_prevotes")
    TIP_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOCKED_ROUND_FIELD_NUMBER: _ClassVar[int]
    LOCKED_BLOCK_FIELD_NUMBER: _ClassVar[int]
    VALID_ROUND_FIELD_NUMBER: _ClassVar[int]
    VALID_BLOCK_FIELD_NUMBER: _ClassVar[int]
    LAST_SIGNED_FIELD_NUMBER: _ClassVar[int]
    VALID_ROUND_PREVOTES_FIELD_NUMBER: _ClassVar[int]
    tip: ChainTip
    round: int
    step: Step
    locked_round: int
    locked_block: Block
    valid_round: int
    valid_block: Block
    last_signed: ConsensusMessage
    valid_round_prevotes: _containers.RepeatedCompositeFieldContainer[Vote]
    def __init__(self, tip: _Optional[_Union[ChainTip, _Mapping]] = ..., round: _Optional[int] = ..., step: _Optional[_Union[Step, str]] = ..., locked_round: _Optional[int] = ..., locked_block: _Optional[_Union[Block, _Mapping]] = ..., valid_round: _Optional[int] = ..., valid_block: _Optional[_Union[Block, _Mapping]] = ..., last_signed: _Optional[_Union[ConsensusMessage, _Mapping]] = ..., valid_round_prevotes: _Optional[_Iterable[_Union[Vote, _Mapping]]] = ...) -> None: ...
