//! Partial signatures: what each operator signs with its share, before (randao, selection
//! proofs, ...) or after consensus (attestations, blocks, ...).
//!
//! ```text
//! PartialSignatureMessage  = { PartialSignature: [96]byte, SigningRoot: [32]byte,
//!                              Signer: u64, ValidatorIndex: u64 }            (144 bytes)
//! PartialSignatureMessages = { Type: u64, Slot: u64,
//!                              Messages: List[PartialSignatureMessage, 1512] }
//! ```

use ssz::{Decode, Encode};
use ssz_derive::{Decode, Encode};
use ssz_types::VariableList;
use tree_hash_derive::TreeHash;

use crate::error::Error;
use crate::limits::{BLS_SIGNATURE_SIZE, PartialSignaturesMax};
use crate::types::{OperatorId, Root, Slot, ValidatorIndex};

/// A compressed BLS signature (G2).
pub type BlsSignature = [u8; BLS_SIGNATURE_SIZE];

/// What a `PartialSignatureMessages` is for (ssv-spec `PartialSigMsgType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartialSigMsgType {
    /// Signatures of the decided duty data (attestations, sync messages, blocks, ...).
    PostConsensus,
    /// RANDAO reveal of a proposer.
    RandaoPartialSig,
    /// Aggregator selection proof.
    SelectionProofPartialSig,
    /// Sync-committee contribution selection proofs.
    ContributionProofs,
    /// Validator registration.
    ValidatorRegistrationPartialSig,
    /// Voluntary exit.
    VoluntaryExitPartialSig,
}

impl PartialSigMsgType {
    /// The wire value.
    pub const fn to_u64(self) -> u64 {
        match self {
            PartialSigMsgType::PostConsensus => 0,
            PartialSigMsgType::RandaoPartialSig => 1,
            PartialSigMsgType::SelectionProofPartialSig => 2,
            PartialSigMsgType::ContributionProofs => 3,
            PartialSigMsgType::ValidatorRegistrationPartialSig => 4,
            PartialSigMsgType::VoluntaryExitPartialSig => 5,
        }
    }

    /// Parses the wire value.
    pub const fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => PartialSigMsgType::PostConsensus,
            1 => PartialSigMsgType::RandaoPartialSig,
            2 => PartialSigMsgType::SelectionProofPartialSig,
            3 => PartialSigMsgType::ContributionProofs,
            4 => PartialSigMsgType::ValidatorRegistrationPartialSig,
            5 => PartialSigMsgType::VoluntaryExitPartialSig,
            _ => return None,
        })
    }
}

/// One operator's partial signature over one signing root for one validator.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, tree_hash_derive::TreeHash)]
pub struct PartialSignatureMessage {
    /// The signature with the operator's share of the validator key.
    pub partial_signature: BlsSignature,
    /// What was signed.
    pub signing_root: Root,
    /// The operator.
    pub signer: OperatorId,
    /// The validator whose share signed.
    pub validator_index: ValidatorIndex,
}

impl PartialSignatureMessage {
    /// ssv-spec's rule: the signer is not 0.
    pub fn validate(&self) -> Result<(), Error> {
        if self.signer == 0 {
            return Err(Error::ZeroSigner);
        }
        Ok(())
    }
}

/// All partial signatures of one operator for one duty step (one slot).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct PartialSignatureMessages {
    /// Raw [`PartialSigMsgType`].
    pub msg_type: u64,
    /// The duty's slot.
    pub slot: Slot,
    /// The signatures, all from one signer.
    pub messages: VariableList<PartialSignatureMessage, PartialSignaturesMax>,
}

impl PartialSignatureMessages {
    /// Builds a container, checking the list limit.
    pub fn new(
        msg_type: PartialSigMsgType,
        slot: Slot,
        messages: Vec<PartialSignatureMessage>,
    ) -> Result<Self, Error> {
        Ok(PartialSignatureMessages {
            msg_type: msg_type.to_u64(),
            slot,
            messages: VariableList::new(messages)
                .map_err(|e| Error::Decode(format!("partial signatures: {e:?}")))?,
        })
    }

    /// Decodes SSZ (bounded by the list limit; never panics).
    pub fn from_ssz(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_ssz_bytes(bytes).map_err(Error::from)
    }

    /// Encodes to SSZ.
    pub fn to_ssz(&self) -> Vec<u8> {
        self.as_ssz_bytes()
    }

    /// The type, if known.
    pub fn kind(&self) -> Option<PartialSigMsgType> {
        PartialSigMsgType::from_u64(self.msg_type)
    }

    /// The one signer of all messages (that of the first), if any.
    pub fn signer(&self) -> Option<OperatorId> {
        self.messages.first().map(|m| m.signer)
    }

    /// ssv-spec's `PartialSignatureMessages.Validate`: at least one message, all from the
    /// same signer, none from signer 0.
    pub fn validate(&self) -> Result<(), Error> {
        validate_partial_signers(self.messages.iter().map(|m| m.signer))
    }
}

/// The rules of [`PartialSignatureMessages::validate`] over the signers alone, in message
/// order (consistency is checked before each message's own rule, as the spec does).
pub fn validate_partial_signers(
    mut signers: impl Iterator<Item = OperatorId>,
) -> Result<(), Error> {
    let Some(first) = signers.next() else {
        return Err(Error::NoPartialSigMessages);
    };
    for signer in std::iter::once(first).chain(signers) {
        if signer != first {
            return Err(Error::InconsistentSigners);
        }
        if signer == 0 {
            return Err(Error::ZeroSigner);
        }
    }
    Ok(())
}
