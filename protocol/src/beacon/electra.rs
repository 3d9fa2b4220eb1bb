//! Electra containers (consensus-specs `electra/`, go-eth2-client `spec/electra`,
//! `api/v1/electra`): multi-committee attestations, execution requests, and the blocks. Fulu
//! reuses the block and blinded block unchanged.

use ssz_derive::{Decode, Encode};
use ssz_types::{BitList, BitVector, VariableList};
use tree_hash_derive::TreeHash;

use super::altair::SyncAggregate;
use super::capella::SignedBlsToExecutionChange;
use super::deneb::{ExecutionPayload, ExecutionPayloadHeader};
use super::phase0::{AttestationData, Deposit, Eth1Data, ProposerSlashing, SignedVoluntaryExit};
use super::{
    Blob, BlsPublicKey, BlsSignature, BlsToExecutionChangesMax, CommitteesPerSlotMax,
    ConsolidationRequestsMax, DenebBlobCommitmentsMax, DepositRequestsMax, DepositsMax,
    ElectraAttestationsMax, ElectraAttesterSlashingsMax, ElectraAttestersMax,
    ElectraBlobCommitmentsMax, ExecutionAddress, KzgCommitment, KzgProof, ProposerSlashingsMax,
    Root, VoluntaryExitsMax, WithdrawalRequestsMax,
};
use crate::types::{Slot, ValidatorIndex};

/// An attestation that may span several committees of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct Attestation {
    /// Participants, committee after committee (in `committee_bits` order).
    pub aggregation_bits: BitList<ElectraAttestersMax>,
    /// The vote (`index` is 0).
    pub data: AttestationData,
    /// Aggregate signature.
    pub signature: BlsSignature,
    /// Committees taking part.
    pub committee_bits: BitVector<CommitteesPerSlotMax>,
}

/// An Electra aggregator's aggregate with its selection proof.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct AggregateAndProof {
    /// The aggregator.
    pub aggregator_index: ValidatorIndex,
    /// The aggregate.
    pub aggregate: Attestation,
    /// Signature of the slot proving selection as aggregator.
    pub selection_proof: BlsSignature,
}

/// An Electra aggregate and proof with the aggregator's signature.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SignedAggregateAndProof {
    /// The aggregate and proof.
    pub message: AggregateAndProof,
    /// Aggregator signature (`DOMAIN_AGGREGATE_AND_PROOF`).
    pub signature: BlsSignature,
}

/// An Electra attestation with its attesters listed by index.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct IndexedAttestation {
    /// Attesting validator indices.
    pub attesting_indices: VariableList<ValidatorIndex, ElectraAttestersMax>,
    /// The vote.
    pub data: AttestationData,
    /// Aggregate signature.
    pub signature: BlsSignature,
}

/// Two conflicting Electra attestations.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct AttesterSlashing {
    /// First attestation.
    pub attestation_1: IndexedAttestation,
    /// Second attestation.
    pub attestation_2: IndexedAttestation,
}

/// A deposit made on the execution layer (EIP-6110).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct DepositRequest {
    /// Validator public key.
    pub pubkey: BlsPublicKey,
    /// Withdrawal credentials.
    pub withdrawal_credentials: Root,
    /// Amount in Gwei.
    pub amount: u64,
    /// Deposit signature.
    pub signature: BlsSignature,
    /// Deposit index.
    pub index: u64,
}

/// A withdrawal triggered from the execution layer (EIP-7002).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct WithdrawalRequest {
    /// Requesting address.
    pub source_address: ExecutionAddress,
    /// The validator.
    pub validator_pubkey: BlsPublicKey,
    /// Amount in Gwei (0: full exit).
    pub amount: u64,
}

/// A consolidation of two validators (EIP-7251).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ConsolidationRequest {
    /// Requesting address.
    pub source_address: ExecutionAddress,
    /// Validator consolidated away.
    pub source_pubkey: BlsPublicKey,
    /// Validator consolidated into.
    pub target_pubkey: BlsPublicKey,
}

/// The execution-layer requests of a block.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ExecutionRequests {
    /// Deposits.
    pub deposits: VariableList<DepositRequest, DepositRequestsMax>,
    /// Withdrawals.
    pub withdrawals: VariableList<WithdrawalRequest, WithdrawalRequestsMax>,
    /// Consolidations.
    pub consolidations: VariableList<ConsolidationRequest, ConsolidationRequestsMax>,
}

/// An Electra (and Fulu) block body.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct BeaconBlockBody {
    /// RANDAO reveal.
    pub randao_reveal: BlsSignature,
    /// Eth1 vote.
    pub eth1_data: Eth1Data,
    /// Graffiti.
    pub graffiti: Root,
    /// Proposer slashings.
    pub proposer_slashings: VariableList<ProposerSlashing, ProposerSlashingsMax>,
    /// Attester slashings.
    pub attester_slashings: VariableList<AttesterSlashing, ElectraAttesterSlashingsMax>,
    /// Attestations.
    pub attestations: VariableList<Attestation, ElectraAttestationsMax>,
    /// Deposits.
    pub deposits: VariableList<Deposit, DepositsMax>,
    /// Voluntary exits.
    pub voluntary_exits: VariableList<SignedVoluntaryExit, VoluntaryExitsMax>,
    /// Sync aggregate.
    pub sync_aggregate: SyncAggregate,
    /// Execution payload.
    pub execution_payload: ExecutionPayload,
    /// BLS-to-execution changes.
    pub bls_to_execution_changes:
        VariableList<SignedBlsToExecutionChange, BlsToExecutionChangesMax>,
    /// Blob KZG commitments.
    pub blob_kzg_commitments: VariableList<KzgCommitment, ElectraBlobCommitmentsMax>,
    /// Execution-layer requests.
    pub execution_requests: ExecutionRequests,
}

/// An Electra (and Fulu) block.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct BeaconBlock {
    /// Slot.
    pub slot: Slot,
    /// Proposer.
    pub proposer_index: ValidatorIndex,
    /// Parent block root.
    pub parent_root: Root,
    /// Post-state root.
    pub state_root: Root,
    /// Body.
    pub body: BeaconBlockBody,
}

/// An Electra (and Fulu) blinded block body.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct BlindedBeaconBlockBody {
    /// RANDAO reveal.
    pub randao_reveal: BlsSignature,
    /// Eth1 vote.
    pub eth1_data: Eth1Data,
    /// Graffiti.
    pub graffiti: Root,
    /// Proposer slashings.
    pub proposer_slashings: VariableList<ProposerSlashing, ProposerSlashingsMax>,
    /// Attester slashings.
    pub attester_slashings: VariableList<AttesterSlashing, ElectraAttesterSlashingsMax>,
    /// Attestations.
    pub attestations: VariableList<Attestation, ElectraAttestationsMax>,
    /// Deposits.
    pub deposits: VariableList<Deposit, DepositsMax>,
    /// Voluntary exits.
    pub voluntary_exits: VariableList<SignedVoluntaryExit, VoluntaryExitsMax>,
    /// Sync aggregate.
    pub sync_aggregate: SyncAggregate,
    /// Execution payload header.
    pub execution_payload_header: ExecutionPayloadHeader,
    /// BLS-to-execution changes.
    pub bls_to_execution_changes:
        VariableList<SignedBlsToExecutionChange, BlsToExecutionChangesMax>,
    /// Blob KZG commitments.
    pub blob_kzg_commitments: VariableList<KzgCommitment, ElectraBlobCommitmentsMax>,
    /// Execution-layer requests.
    pub execution_requests: ExecutionRequests,
}

/// An Electra (and Fulu) blinded block.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct BlindedBeaconBlock {
    /// Slot.
    pub slot: Slot,
    /// Proposer.
    pub proposer_index: ValidatorIndex,
    /// Parent block root.
    pub parent_root: Root,
    /// Post-state root.
    pub state_root: Root,
    /// Body.
    pub body: BlindedBeaconBlockBody,
}

/// An Electra block with its blobs and their KZG proofs (Beacon API `BlockContents`; the
/// proof and blob bounds are Deneb's, as go-eth2-client declares them).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct BlockContents {
    /// The block.
    pub block: BeaconBlock,
    /// One KZG proof per blob.
    pub kzg_proofs: VariableList<KzgProof, DenebBlobCommitmentsMax>,
    /// The blobs.
    pub blobs: VariableList<Blob, DenebBlobCommitmentsMax>,
}

impl BeaconBlock {
    /// The blinded form of this block (payload replaced by its header): same block root.
    pub fn to_blinded(&self) -> BlindedBeaconBlock {
        BlindedBeaconBlock {
            slot: self.slot,
            proposer_index: self.proposer_index,
            parent_root: self.parent_root,
            state_root: self.state_root,
            body: BlindedBeaconBlockBody {
                randao_reveal: self.body.randao_reveal,
                eth1_data: self.body.eth1_data.clone(),
                graffiti: self.body.graffiti,
                proposer_slashings: self.body.proposer_slashings.clone(),
                attester_slashings: self.body.attester_slashings.clone(),
                attestations: self.body.attestations.clone(),
                deposits: self.body.deposits.clone(),
                voluntary_exits: self.body.voluntary_exits.clone(),
                sync_aggregate: self.body.sync_aggregate.clone(),
                execution_payload_header: self.body.execution_payload.to_header(),
                bls_to_execution_changes: self.body.bls_to_execution_changes.clone(),
                blob_kzg_commitments: self.body.blob_kzg_commitments.clone(),
                execution_requests: self.body.execution_requests.clone(),
            },
        }
    }
}
