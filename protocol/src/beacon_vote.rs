//! The value committee consensus agrees on: the attestation vote of a slot.
//!
//! ```text
//! Checkpoint = { Epoch: u64, Root: [32]byte }                       (40 bytes)
//! BeaconVote = { BlockRoot: [32]byte, Source: Checkpoint, Target: Checkpoint } (112 bytes)
//! ```

use serde::{Deserialize, Serialize};
use ssz::{Decode, Encode};
use ssz_derive::{Decode, Encode};
use tree_hash_derive::TreeHash;

use crate::error::Error;
use crate::types::{Epoch, Root};

/// A beacon-chain checkpoint (SSZ, and the consensus specs' JSON form for the Beacon API).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Encode,
    Decode,
    TreeHash,
    Serialize,
    Deserialize,
)]
pub struct Checkpoint {
    /// Epoch.
    #[serde(with = "crate::json::u64_str")]
    pub epoch: Epoch,
    /// Block root at the epoch's start.
    #[serde(with = "crate::json::hex_bytes")]
    pub root: Root,
}

/// What a committee decides for a slot; every attestation of the committee is built from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Encode, Decode, TreeHash)]
pub struct BeaconVote {
    /// Head block root.
    pub block_root: Root,
    /// Source checkpoint.
    pub source: Checkpoint,
    /// Target checkpoint.
    pub target: Checkpoint,
}

/// Encoded size of a [`BeaconVote`].
pub const BEACON_VOTE_SIZE: usize = 112;

impl BeaconVote {
    /// Decodes SSZ (fixed 112 bytes).
    pub fn from_ssz(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_ssz_bytes(bytes).map_err(Error::from)
    }

    /// Encodes to SSZ.
    pub fn to_ssz(&self) -> Vec<u8> {
        self.as_ssz_bytes()
    }

    /// The committee runner's value check: source epoch lower than target epoch.
    pub fn validate(&self) -> Result<(), Error> {
        if self.source.epoch >= self.target.epoch {
            return Err(Error::AttestationSourceNotLessThanTarget {
                source_epoch: self.source.epoch,
                target_epoch: self.target.epoch,
            });
        }
        Ok(())
    }
}

/// The phase0 `AttestationData` container; since Electra `index` is always 0 and the
/// committee index travels beside it. The one attestation-data type of the workspace: SSZ
/// for signing roots and the runners, JSON for the Beacon API (`ssv-beacon-api` re-exports
/// it).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Encode,
    Decode,
    TreeHash,
    Serialize,
    Deserialize,
)]
pub struct AttestationData {
    /// Slot.
    #[serde(with = "crate::json::u64_str")]
    pub slot: u64,
    /// Committee index (0 since Electra).
    #[serde(with = "crate::json::u64_str")]
    pub index: u64,
    /// Head block root.
    #[serde(with = "crate::json::hex_bytes")]
    pub beacon_block_root: Root,
    /// Source checkpoint.
    pub source: Checkpoint,
    /// Target checkpoint.
    pub target: Checkpoint,
}

impl BeaconVote {
    /// The Electra attestation data this vote makes at `slot`: every validator of the
    /// committee attests to the same data, so they share one signing root.
    pub fn attestation_data(&self, slot: u64) -> AttestationData {
        AttestationData {
            slot,
            index: 0,
            beacon_block_root: self.block_root,
            source: self.source,
            target: self.target,
        }
    }
}

impl AttestationData {
    /// The vote part of this data.
    pub fn vote(&self) -> BeaconVote {
        BeaconVote {
            block_root: self.beacon_block_root,
            source: self.source,
            target: self.target,
        }
    }
}
