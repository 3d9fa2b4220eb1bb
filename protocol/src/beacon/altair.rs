//! Altair containers (consensus-specs `altair/`, go-eth2-client `spec/altair`): the sync
//! aggregate of a block and sync-committee contributions.

use ssz_derive::{Decode, Encode};
use ssz_types::BitVector;
use tree_hash_derive::TreeHash;

use super::{BlsSignature, Root, SyncCommitteeSize, SyncSubcommitteeSize};
use crate::types::{Slot, ValidatorIndex};

/// The sync committee's aggregate signature of a block's parent.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SyncAggregate {
    /// Participating members.
    pub sync_committee_bits: BitVector<SyncCommitteeSize>,
    /// Aggregate signature.
    pub sync_committee_signature: BlsSignature,
}

/// The aggregate of one sync subcommittee's messages for a block root.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SyncCommitteeContribution {
    /// Slot.
    pub slot: Slot,
    /// The block root signed.
    pub beacon_block_root: Root,
    /// Subcommittee (0..4).
    pub subcommittee_index: u64,
    /// Participating subcommittee members.
    pub aggregation_bits: BitVector<SyncSubcommitteeSize>,
    /// Aggregate signature.
    pub signature: BlsSignature,
}

/// A contribution with its aggregator's selection proof.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ContributionAndProof {
    /// The aggregator.
    pub aggregator_index: ValidatorIndex,
    /// The contribution.
    pub contribution: SyncCommitteeContribution,
    /// Selection proof.
    pub selection_proof: BlsSignature,
}

/// A contribution and proof with the aggregator's signature.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SignedContributionAndProof {
    /// The contribution and proof.
    pub message: ContributionAndProof,
    /// Aggregator signature (`DOMAIN_CONTRIBUTION_AND_PROOF`).
    pub signature: BlsSignature,
}

/// What a sync-committee member signs to prove it aggregates a subcommittee
/// (`DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SyncAggregatorSelectionData {
    /// Slot.
    pub slot: Slot,
    /// Subcommittee (0..4).
    pub subcommittee_index: u64,
}
