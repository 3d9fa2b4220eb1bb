//! Builder API containers (ethereum/builder-specs): the validator registration a validator
//! signs so that relays and builders know its fee recipient and gas limit.

use ssz_derive::{Decode, Encode};
use tree_hash_derive::TreeHash;

use super::{BlsPublicKey, BlsSignature, ExecutionAddress};

/// `ValidatorRegistrationV1`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ValidatorRegistration {
    /// Where the validator's execution rewards go.
    pub fee_recipient: ExecutionAddress,
    /// Preferred gas limit.
    pub gas_limit: u64,
    /// Unix seconds of the registration.
    pub timestamp: u64,
    /// The validator.
    pub pubkey: BlsPublicKey,
}

/// `SignedValidatorRegistrationV1`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SignedValidatorRegistration {
    /// The registration.
    pub message: ValidatorRegistration,
    /// Validator signature (`DOMAIN_APPLICATION_BUILDER`).
    pub signature: BlsSignature,
}
