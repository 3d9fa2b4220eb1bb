//! Capella containers (consensus-specs `capella/`, go-eth2-client `spec/capella` and
//! `api/v1/capella`): withdrawals, BLS-to-execution changes, and the full and blinded blocks.

use ssz_derive::{Decode, Encode};
use ssz_types::VariableList;
use tree_hash::TreeHash as _;
use tree_hash_derive::TreeHash;

use super::altair::SyncAggregate;
use super::phase0::{
    Attestation, AttesterSlashing, Deposit, Eth1Data, ProposerSlashing, SignedVoluntaryExit,
};
use super::{
    AttestationsMax, AttesterSlashingsMax, BlsPublicKey, BlsSignature, BlsToExecutionChangesMax,
    DepositsMax, ExecutionAddress, ExtraDataMax, LOGS_BLOOM_SIZE, ProposerSlashingsMax, Root,
    Transaction, TransactionsMax, VoluntaryExitsMax, WithdrawalsMax,
};
use crate::types::{Slot, ValidatorIndex};

/// A withdrawal from the beacon chain to the execution layer.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct Withdrawal {
    /// Withdrawal index.
    pub index: u64,
    /// The validator.
    pub validator_index: ValidatorIndex,
    /// Recipient.
    pub address: ExecutionAddress,
    /// Amount in Gwei.
    pub amount: u64,
}

/// Withdrawals of a payload (`SSZWithdrawals` in ssv-spec), hashed as a list.
pub type Withdrawals = VariableList<Withdrawal, WithdrawalsMax>;

/// A change of withdrawal credentials from a BLS key to an execution address.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct BlsToExecutionChange {
    /// The validator.
    pub validator_index: ValidatorIndex,
    /// The BLS withdrawal key.
    pub from_bls_pubkey: BlsPublicKey,
    /// The new withdrawal address.
    pub to_execution_address: ExecutionAddress,
}

/// A signed [`BlsToExecutionChange`].
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SignedBlsToExecutionChange {
    /// The change.
    pub message: BlsToExecutionChange,
    /// Signature with the BLS withdrawal key.
    pub signature: BlsSignature,
}

/// A Capella execution payload.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ExecutionPayload {
    /// Parent execution block hash.
    pub parent_hash: Root,
    /// Fee recipient.
    pub fee_recipient: ExecutionAddress,
    /// Execution state root.
    pub state_root: Root,
    /// Receipts root.
    pub receipts_root: Root,
    /// Logs bloom.
    pub logs_bloom: [u8; LOGS_BLOOM_SIZE],
    /// RANDAO mix.
    pub prev_randao: Root,
    /// Block number.
    pub block_number: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Timestamp.
    pub timestamp: u64,
    /// Extra data.
    pub extra_data: VariableList<u8, ExtraDataMax>,
    /// Base fee per gas (uint256, little-endian).
    pub base_fee_per_gas: [u8; 32],
    /// Execution block hash.
    pub block_hash: Root,
    /// Transactions.
    pub transactions: VariableList<Transaction, TransactionsMax>,
    /// Withdrawals.
    pub withdrawals: Withdrawals,
}

/// A Capella execution payload header (transactions and withdrawals as roots).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ExecutionPayloadHeader {
    /// Parent execution block hash.
    pub parent_hash: Root,
    /// Fee recipient.
    pub fee_recipient: ExecutionAddress,
    /// Execution state root.
    pub state_root: Root,
    /// Receipts root.
    pub receipts_root: Root,
    /// Logs bloom.
    pub logs_bloom: [u8; LOGS_BLOOM_SIZE],
    /// RANDAO mix.
    pub prev_randao: Root,
    /// Block number.
    pub block_number: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Timestamp.
    pub timestamp: u64,
    /// Extra data.
    pub extra_data: VariableList<u8, ExtraDataMax>,
    /// Base fee per gas (uint256, little-endian).
    pub base_fee_per_gas: [u8; 32],
    /// Execution block hash.
    pub block_hash: Root,
    /// Root of the transactions list.
    pub transactions_root: Root,
    /// Root of the withdrawals list.
    pub withdrawals_root: Root,
}

/// A Capella block body.
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
    pub attester_slashings: VariableList<AttesterSlashing, AttesterSlashingsMax>,
    /// Attestations.
    pub attestations: VariableList<Attestation, AttestationsMax>,
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
}

/// A Capella block.
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

/// A Capella blinded block body (the payload as a header).
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
    pub attester_slashings: VariableList<AttesterSlashing, AttesterSlashingsMax>,
    /// Attestations.
    pub attestations: VariableList<Attestation, AttestationsMax>,
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
}

/// A Capella blinded block.
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

impl ExecutionPayload {
    /// The header of this payload, as a blinded block carries it (same hash-tree-root).
    pub fn to_header(&self) -> ExecutionPayloadHeader {
        ExecutionPayloadHeader {
            parent_hash: self.parent_hash,
            fee_recipient: self.fee_recipient,
            state_root: self.state_root,
            receipts_root: self.receipts_root,
            logs_bloom: self.logs_bloom,
            prev_randao: self.prev_randao,
            block_number: self.block_number,
            gas_limit: self.gas_limit,
            gas_used: self.gas_used,
            timestamp: self.timestamp,
            extra_data: self.extra_data.clone(),
            base_fee_per_gas: self.base_fee_per_gas,
            block_hash: self.block_hash,
            transactions_root: self.transactions.tree_hash_root().0,
            withdrawals_root: self.withdrawals.tree_hash_root().0,
        }
    }
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
            },
        }
    }
}
