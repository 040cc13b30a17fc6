"""Sans-IO Tendermint consensus: messages, timeouts and payloads in; a ``Ready`` out.

Start with :class:`ConsensusCore` (its module docstring has the theory of
operation and the persist-before-send contract). Blocks and their checks are
in :mod:`.blocks`, certificates and evidence in :mod:`.certificate`, the
signing high-water mark in :mod:`.guard`. Nothing in this package performs
I/O, reads a clock or draws randomness.
"""

from mpc_ledger.consensus.blocks import (
    GENESIS_PREVIOUS_HASH,
    BlockLimits,
    RecordsValidator,
    build_block,
    check_block,
    genesis_tip,
    tip_after,
)
from mpc_ledger.consensus.certificate import (
    make_certificate,
    precommit_body,
    verify_certificate,
    verify_evidence,
)
from mpc_ledger.consensus.core import (
    ConsensusConfig,
    ConsensusCore,
    ProposalRequest,
    Ready,
    Timeout,
    TimeoutConfig,
)
from mpc_ledger.consensus.guard import SigningGuard, signed_position
from mpc_ledger.consensus.messages import Reason, Rejection, block_id, parse_message
from mpc_ledger.consensus.validators import Validator, ValidatorSet, max_faulty, quorum_size

__all__ = [
    "GENESIS_PREVIOUS_HASH",
    "BlockLimits",
    "ConsensusConfig",
    "ConsensusCore",
    "ProposalRequest",
    "Ready",
    "Reason",
    "RecordsValidator",
    "Rejection",
    "SigningGuard",
    "Timeout",
    "TimeoutConfig",
    "Validator",
    "ValidatorSet",
    "block_id",
    "build_block",
    "check_block",
    "genesis_tip",
    "make_certificate",
    "max_faulty",
    "parse_message",
    "precommit_body",
    "quorum_size",
    "signed_position",
    "tip_after",
    "verify_certificate",
    "verify_evidence",
]
