//! The QBFT message (ssv-spec `qbft.Message`):
//!
//! ```text
//! Message = { MsgType: u64, Height: u64, Round: u64, Identifier: List[u8, 56], Root: [32]byte,
//!             DataRound: u64,
//!             RoundChangeJustification: List[List[u8, 51852], 13],
//!             PrepareJustification:     List[List[u8, 3700], 13] }
//! ```
//! Justifications are SSZ-encoded `SignedSSVMessage`s.

use ssz::{Decode, Encode};
use ssz_derive::{Decode, Encode};
use ssz_types::VariableList;
use tree_hash_derive::TreeHash;

use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::limits::{
    CommitteeMax, MessageIdMax, PrepareJustificationMax, RoundChangeJustificationMax,
};
use crate::message::SignedSsvMessage;
use crate::types::{Height, Root, Round};

/// QBFT message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// The leader's proposal.
    Proposal,
    /// Prepare vote.
    Prepare,
    /// Commit vote.
    Commit,
    /// Round change.
    RoundChange,
}

impl MessageType {
    /// The wire value.
    pub const fn to_u64(self) -> u64 {
        match self {
            MessageType::Proposal => 0,
            MessageType::Prepare => 1,
            MessageType::Commit => 2,
            MessageType::RoundChange => 3,
        }
    }

    /// Parses the wire value.
    pub const fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => MessageType::Proposal,
            1 => MessageType::Prepare,
            2 => MessageType::Commit,
            3 => MessageType::RoundChange,
            _ => return None,
        })
    }
}

/// One round-change justification (an encoded `SignedSSVMessage`).
pub type RoundChangeJustification = VariableList<u8, RoundChangeJustificationMax>;
/// One prepare justification (an encoded `SignedSSVMessage`).
pub type PrepareJustification = VariableList<u8, PrepareJustificationMax>;

/// A QBFT message.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct Message {
    /// Raw [`MessageType`].
    pub msg_type: u64,
    /// Instance height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The instance identifier (a `MessageID`).
    pub identifier: VariableList<u8, MessageIdMax>,
    /// Root of the value (hash of the full data).
    pub root: Root,
    /// Round in which the value was prepared (round changes).
    pub data_round: Round,
    /// Round-change justifications (proposals in rounds > 1).
    pub round_change_justification: VariableList<RoundChangeJustification, CommitteeMax>,
    /// Prepare justifications (proposals and round changes of a prepared value).
    pub prepare_justification: VariableList<PrepareJustification, CommitteeMax>,
}

impl Message {
    /// Decodes SSZ (bounded; never panics).
    pub fn from_ssz(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_ssz_bytes(bytes).map_err(Error::from)
    }

    /// Encodes to SSZ.
    pub fn to_ssz(&self) -> Vec<u8> {
        self.as_ssz_bytes()
    }

    /// The message type, if known.
    pub fn kind(&self) -> Option<MessageType> {
        MessageType::from_u64(self.msg_type)
    }

    /// Decodes the round-change justifications.
    pub fn round_change_justifications(&self) -> Result<Vec<SignedSsvMessage>, Error> {
        self.round_change_justification
            .iter()
            .map(|j| SignedSsvMessage::from_ssz(j))
            .collect()
    }

    /// Decodes the prepare justifications.
    pub fn prepare_justifications(&self) -> Result<Vec<SignedSsvMessage>, Error> {
        self.prepare_justification
            .iter()
            .map(|j| SignedSsvMessage::from_ssz(j))
            .collect()
    }

    /// ssv-spec's `qbft.Message.Validate`: a 56-byte identifier, a known type, and
    /// justifications that decode.
    pub fn validate(&self) -> Result<(), Error> {
        if self.identifier.is_empty() {
            return Err(Error::spec(
                ErrorCode::MessageIdentifierInvalid,
                "message identifier invalid",
            ));
        }
        if self.kind().is_none() {
            return Err(Error::spec(
                ErrorCode::MessageTypeInvalid,
                "message type is invalid",
            ));
        }
        self.round_change_justifications()?;
        self.prepare_justifications()?;
        Ok(())
    }
}
