//! Phase 0 containers (consensus-specs `phase0/beacon-chain.md`, go-eth2-client
//! `spec/phase0`): attestations and aggregates, slashings, deposits, exits, and the fork and
//! signing data of domain computation.

use ssz_derive::{Decode, Encode};
use ssz_types::{BitList, FixedVector, VariableList};
use tree_hash_derive::TreeHash;

use super::{BlsPublicKey, BlsSignature, DepositProofLen, Root, ValidatorsPerCommitteeMax};
use crate::types::{Epoch, Slot, ValidatorIndex};

pub use crate::beacon_vote::AttestationData;

/// A (possibly aggregated) attestation of one committee.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct Attestation {
    /// Which committee members took part.
    pub aggregation_bits: BitList<ValidatorsPerCommitteeMax>,
    /// The vote.
    pub data: AttestationData,
    /// Aggregate signature.
    pub signature: BlsSignature,
}

/// An aggregator's aggregate with its selection proof.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct AggregateAndProof {
    /// The aggregator.
    pub aggregator_index: ValidatorIndex,
    /// The aggregate.
    pub aggregate: Attestation,
    /// Signature of the slot proving selection as aggregator.
    pub selection_proof: BlsSignature,
}

/// An aggregate and proof with the aggregator's signature.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SignedAggregateAndProof {
    /// The aggregate and proof.
    pub message: AggregateAndProof,
    /// Aggregator signature (`DOMAIN_AGGREGATE_AND_PROOF`).
    pub signature: BlsSignature,
}

/// An attestation with its attesters listed by index.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct IndexedAttestation {
    /// Attesting validator indices.
    pub attesting_indices: VariableList<ValidatorIndex, ValidatorsPerCommitteeMax>,
    /// The vote.
    pub data: AttestationData,
    /// Aggregate signature.
    pub signature: BlsSignature,
}

/// Two conflicting attestations.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct AttesterSlashing {
    /// First attestation.
    pub attestation_1: IndexedAttestation,
    /// Second attestation.
    pub attestation_2: IndexedAttestation,
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct BeaconBlockHeader {
    /// Slot.
    pub slot: Slot,
    /// Proposer.
    pub proposer_index: ValidatorIndex,
    /// Parent block root.
    pub parent_root: Root,
    /// Post-state root.
    pub state_root: Root,
    /// Body root.
    pub body_root: Root,
}

/// A signed block header.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SignedBeaconBlockHeader {
    /// The header.
    pub message: BeaconBlockHeader,
    /// Proposer signature.
    pub signature: BlsSignature,
}

/// Two conflicting signed headers of one proposer.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ProposerSlashing {
    /// First header.
    pub signed_header_1: SignedBeaconBlockHeader,
    /// Second header.
    pub signed_header_2: SignedBeaconBlockHeader,
}

/// The eth1 vote of a block.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct Eth1Data {
    /// Deposit tree root.
    pub deposit_root: Root,
    /// Deposit count.
    pub deposit_count: u64,
    /// Eth1 block hash.
    pub block_hash: Root,
}

/// What a deposit's signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct DepositMessage {
    /// Validator public key.
    pub pubkey: BlsPublicKey,
    /// Withdrawal credentials.
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    pub amount: u64,
}

/// A deposit as the deposit contract logs it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct DepositData {
    /// Validator public key.
    pub pubkey: BlsPublicKey,
    /// Withdrawal credentials.
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    pub amount: u64,
    /// Signature over the [`DepositMessage`] with the deposit domain.
    pub signature: BlsSignature,
}

/// A deposit with its Merkle proof against the deposit root.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct Deposit {
    /// Branch of the deposit tree (with the length mix-in).
    pub proof: FixedVector<Root, DepositProofLen>,
    /// The deposit.
    pub data: DepositData,
}

/// A request to exit.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct VoluntaryExit {
    /// Earliest exit epoch.
    pub epoch: Epoch,
    /// The exiting validator.
    pub validator_index: ValidatorIndex,
}

/// A signed exit.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SignedVoluntaryExit {
    /// The exit.
    pub message: VoluntaryExit,
    /// Validator signature.
    pub signature: BlsSignature,
}
