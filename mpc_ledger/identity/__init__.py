"""Keys, certificates, the genesis (the trust root) and canonical signing."""

from mpc_ledger.identity.genesis import ConsensusParams, Genesis, Member, MpcParams, load_genesis
from mpc_ledger.identity.signing import Purpose, Signer, signing_bytes, verify_signature

__all__ = [
    "ConsensusParams",
    "Genesis",
    "Member",
    "MpcParams",
    "Purpose",
    "Signer",
    "load_genesis",
    "signing_bytes",
    "verify_signature",
]
