//! Fulu containers (go-eth2-client `api/v1/fulu`). Fulu blocks are Electra blocks; what
//! changes for a proposer is the block contents, which carry one KZG cell proof per cell of
//! each extended blob (PeerDAS) instead of one proof per blob.

use ssz_derive::{Decode, Encode};
use ssz_types::VariableList;
use tree_hash_derive::TreeHash;

pub use super::electra::{BeaconBlock, BlindedBeaconBlock};
use super::{Blob, FuluBlobCommitmentsMax, FuluKzgProofsMax, KzgProof};

/// A Fulu block with its blobs and their cell KZG proofs.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct BlockContents {
    /// The block.
    pub block: BeaconBlock,
    /// Cell KZG proofs, `CELLS_PER_EXT_BLOB` per blob.
    pub kzg_proofs: VariableList<KzgProof, FuluKzgProofsMax>,
    /// The blobs.
    pub blobs: VariableList<Blob, FuluBlobCommitmentsMax>,
}
