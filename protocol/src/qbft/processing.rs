//! A signed QBFT message with its inner [`Message`] decoded once (ssv-spec
//! `ProcessingMessage`).

use sha2::{Digest, Sha256};

use super::Message;
use super::message::MessageType;
use crate::error::Error;
use crate::message::SignedSsvMessage;
use crate::types::{CommitteeOperator, OperatorId, Root};

/// A `SignedSSVMessage` carrying a QBFT message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingMessage {
    /// The message as signed and sent.
    pub signed: SignedSsvMessage,
    /// `signed.ssv_message.data`, decoded.
    pub qbft: Message,
}

/// The root of a full value: sha256 of its bytes (ssv-spec `HashDataRoot`).
pub fn hash_data_root(data: &[u8]) -> Root {
    Sha256::digest(data).into()
}

impl ProcessingMessage {
    /// Decodes the QBFT message (`UnmarshalSSZ` error code on bad bytes).
    pub fn new(signed: SignedSsvMessage) -> Result<Self, Error> {
        let qbft = Message::from_ssz(&signed.ssv_message.data)?;
        Ok(ProcessingMessage { signed, qbft })
    }

    /// ssv-spec `ProcessingMessage.Validate`: the signed envelope, then the QBFT message.
    pub fn validate(&self) -> Result<(), Error> {
        self.signed.validate()?;
        self.qbft.validate()
    }

    /// The signers.
    pub fn signers(&self) -> &[OperatorId] {
        &self.signed.operator_ids
    }

    /// Whether the signers are exactly `ids` (as sets, same size).
    pub fn matched_signers(&self, ids: &[OperatorId]) -> bool {
        let signers = self.signers();
        signers.len() == ids.len() && signers.iter().all(|s| ids.contains(s))
    }

    /// Whether any signer is in `ids`.
    pub fn common_signers(&self, ids: &[OperatorId]) -> bool {
        self.signers().iter().any(|s| ids.contains(s))
    }

    /// Whether every signer is a committee member.
    pub fn signers_in_committee(&self, committee: &[CommitteeOperator]) -> bool {
        self.signers()
            .iter()
            .all(|s| committee.iter().any(|o| o.operator_id == *s))
    }

    /// The message type, if known.
    pub fn kind(&self) -> Option<MessageType> {
        self.qbft.kind()
    }

    /// A round change that carries a prepared value (`DataRound != NoRound`).
    pub fn round_change_prepared(&self) -> bool {
        self.kind() == Some(MessageType::RoundChange) && self.qbft.data_round != super::NO_ROUND
    }

    /// The justifications of `RoundChangeJustification`, decoded.
    pub fn round_change_justifications(&self) -> Result<Vec<ProcessingMessage>, Error> {
        self.qbft
            .round_change_justifications()?
            .into_iter()
            .map(ProcessingMessage::new)
            .collect()
    }

    /// The justifications of `PrepareJustification`, decoded.
    pub fn prepare_justifications(&self) -> Result<Vec<ProcessingMessage>, Error> {
        self.qbft
            .prepare_justifications()?
            .into_iter()
            .map(ProcessingMessage::new)
            .collect()
    }
}
