//! Beacon-chain containers that SSV duties carry, byte-compatible with go-eth2-client (the
//! library ssv-spec v1.2.2 builds on) and with the consensus specs' mainnet preset.
//!
//! Where they sit in the data flow: a non-committee duty's QBFT value is a
//! [`ValidatorConsensusData`] (duty ‖ data version ‖ opaque `DataSSZ`). Its `validate()` decodes
//! `DataSSZ` into the beacon object the duty role and fork call for — an
//! [`phase0::AggregateAndProof`] / [`electra::AggregateAndProof`], a list of sync-committee
//! [`Contribution`]s, or a (blinded) block of Capella, Deneb, Electra or Fulu — and the runner
//! signs the hash-tree-root of that object with [`crate::signing::compute_signing_root`].
//!
//! Every list and bitfield carries its preset limit as a type-level number (the aliases below,
//! each checked against its `*_MAX` constant), so decoding never allocates beyond it.

pub mod altair;
pub mod builder;
pub mod capella;
pub mod consensus_data;
pub mod deneb;
pub mod deposit;
pub mod electra;
pub mod fulu;
pub mod phase0;

pub use consensus_data::{
    AggregateAndProofData, Contribution, Contributions, DataVersion, Proposal, SignedProposal,
    ValidatorConsensusData, ValidatorDuty,
};

use ssz_types::typenum::{self, Prod, U1, U2, U8, U16, U64, U128, U512, U4096};
use ssz_types::{FixedVector, VariableList};

/// A compressed BLS signature (G2).
pub use crate::partial_sig::BlsSignature;
/// A compressed BLS public key (G1).
pub use crate::types::BlsPublicKey;
/// A 32-byte root or hash.
pub use crate::types::Root;

/// An execution-layer address.
pub type ExecutionAddress = [u8; 20];
/// A KZG commitment to a blob.
pub type KzgCommitment = [u8; 48];
/// A KZG proof.
pub type KzgProof = [u8; 48];
/// A blob of 4096 field elements.
pub type Blob = FixedVector<u8, BlobSize>;
/// One execution-layer transaction, opaque.
pub type Transaction = VariableList<u8, TransactionBytesMax>;

// ---- Mainnet preset bounds (consensus-specs `presets/mainnet`, names in the docs). ----

/// `MAX_VALIDATORS_PER_COMMITTEE`.
pub const VALIDATORS_PER_COMMITTEE_MAX: usize = 2048;
/// `MAX_COMMITTEES_PER_SLOT`.
pub const COMMITTEES_PER_SLOT_MAX: usize = 64;
/// `MAX_VALIDATORS_PER_COMMITTEE * MAX_COMMITTEES_PER_SLOT`: Electra attestation bits.
pub const ELECTRA_ATTESTERS_MAX: usize = VALIDATORS_PER_COMMITTEE_MAX * COMMITTEES_PER_SLOT_MAX;
/// `MAX_PROPOSER_SLASHINGS`.
pub const PROPOSER_SLASHINGS_MAX: usize = 16;
/// `MAX_ATTESTER_SLASHINGS` (phase0 to Deneb).
pub const ATTESTER_SLASHINGS_MAX: usize = 2;
/// `MAX_ATTESTER_SLASHINGS_ELECTRA`.
pub const ELECTRA_ATTESTER_SLASHINGS_MAX: usize = 1;
/// `MAX_ATTESTATIONS` (phase0 to Deneb).
pub const ATTESTATIONS_MAX: usize = 128;
/// `MAX_ATTESTATIONS_ELECTRA`.
pub const ELECTRA_ATTESTATIONS_MAX: usize = 8;
/// `MAX_DEPOSITS`.
pub const DEPOSITS_MAX: usize = 16;
/// `MAX_VOLUNTARY_EXITS`.
pub const VOLUNTARY_EXITS_MAX: usize = 16;
/// `DEPOSIT_CONTRACT_TREE_DEPTH + 1`: length of a deposit's Merkle proof.
pub const DEPOSIT_PROOF_LEN: usize = 33;
/// `SYNC_COMMITTEE_SIZE`.
pub const SYNC_COMMITTEE_SIZE: usize = 512;
/// `SYNC_COMMITTEE_SIZE / SYNC_COMMITTEE_SUBNET_COUNT`: bits of a contribution.
pub const SYNC_SUBCOMMITTEE_SIZE: usize = 128;
/// `BYTES_PER_LOGS_BLOOM`.
pub const LOGS_BLOOM_SIZE: usize = 256;
/// `MAX_EXTRA_DATA_BYTES`.
pub const EXTRA_DATA_MAX: usize = 32;
/// `MAX_BYTES_PER_TRANSACTION`.
pub const TRANSACTION_BYTES_MAX: usize = 1 << 30;
/// `MAX_TRANSACTIONS_PER_PAYLOAD`.
pub const TRANSACTIONS_MAX: usize = 1 << 20;
/// `MAX_WITHDRAWALS_PER_PAYLOAD`.
pub const WITHDRAWALS_MAX: usize = 16;
/// `MAX_BLS_TO_EXECUTION_CHANGES`.
pub const BLS_TO_EXECUTION_CHANGES_MAX: usize = 16;
/// `MAX_BLOB_COMMITMENTS_PER_BLOCK` of Deneb (also the blob and proof bound of Deneb and
/// Electra block contents).
pub const DENEB_BLOB_COMMITMENTS_MAX: usize = 4096;
/// `MAX_BLOB_COMMITMENTS_PER_BLOCK` of Electra.
pub const ELECTRA_BLOB_COMMITMENTS_MAX: usize = 4096;
/// `MAX_BLOB_COMMITMENTS_PER_BLOCK` of Fulu (also its block contents' blob bound).
pub const FULU_BLOB_COMMITMENTS_MAX: usize = 4096;
/// `FIELD_ELEMENTS_PER_EXT_BLOB` (Fulu): field elements of a blob extended for data
/// availability sampling.
pub const FIELD_ELEMENTS_PER_EXT_BLOB: usize = 8192;
/// `FIELD_ELEMENTS_PER_EXT_BLOB * MAX_BLOB_COMMITMENTS_PER_BLOCK`: the KZG-proof bound of Fulu
/// block contents (go-eth2-client `ssz-max:"33554432"`).
pub const FULU_KZG_PROOFS_MAX: usize = FIELD_ELEMENTS_PER_EXT_BLOB * FULU_BLOB_COMMITMENTS_MAX;
/// `BYTES_PER_BLOB` (`FIELD_ELEMENTS_PER_BLOB * 32`).
pub const BLOB_SIZE: usize = 131_072;
/// `MAX_DEPOSIT_REQUESTS_PER_PAYLOAD`.
pub const DEPOSIT_REQUESTS_MAX: usize = 8192;
/// `MAX_WITHDRAWAL_REQUESTS_PER_PAYLOAD`.
pub const WITHDRAWAL_REQUESTS_MAX: usize = 16;
/// `MAX_CONSOLIDATION_REQUESTS_PER_PAYLOAD`.
pub const CONSOLIDATION_REQUESTS_MAX: usize = 2;

// ---- The same bounds as type-level numbers. ----

/// [`VALIDATORS_PER_COMMITTEE_MAX`]
pub type ValidatorsPerCommitteeMax = typenum::U2048;
/// [`COMMITTEES_PER_SLOT_MAX`]
pub type CommitteesPerSlotMax = U64;
/// [`ELECTRA_ATTESTERS_MAX`]
pub type ElectraAttestersMax = Prod<ValidatorsPerCommitteeMax, CommitteesPerSlotMax>;
/// [`PROPOSER_SLASHINGS_MAX`]
pub type ProposerSlashingsMax = U16;
/// [`ATTESTER_SLASHINGS_MAX`]
pub type AttesterSlashingsMax = U2;
/// [`ELECTRA_ATTESTER_SLASHINGS_MAX`]
pub type ElectraAttesterSlashingsMax = U1;
/// [`ATTESTATIONS_MAX`]
pub type AttestationsMax = U128;
/// [`ELECTRA_ATTESTATIONS_MAX`]
pub type ElectraAttestationsMax = U8;
/// [`DEPOSITS_MAX`]
pub type DepositsMax = U16;
/// [`VOLUNTARY_EXITS_MAX`]
pub type VoluntaryExitsMax = U16;
/// [`DEPOSIT_PROOF_LEN`]
pub type DepositProofLen = typenum::U33;
/// [`SYNC_COMMITTEE_SIZE`]
pub type SyncCommitteeSize = U512;
/// [`SYNC_SUBCOMMITTEE_SIZE`]
pub type SyncSubcommitteeSize = U128;
/// [`EXTRA_DATA_MAX`]
pub type ExtraDataMax = typenum::U32;
/// [`TRANSACTION_BYTES_MAX`]
pub type TransactionBytesMax = typenum::U1073741824;
/// [`TRANSACTIONS_MAX`]
pub type TransactionsMax = typenum::U1048576;
/// [`WITHDRAWALS_MAX`]
pub type WithdrawalsMax = U16;
/// [`BLS_TO_EXECUTION_CHANGES_MAX`]
pub type BlsToExecutionChangesMax = U16;
/// [`DENEB_BLOB_COMMITMENTS_MAX`]
pub type DenebBlobCommitmentsMax = U4096;
/// [`ELECTRA_BLOB_COMMITMENTS_MAX`]
pub type ElectraBlobCommitmentsMax = U4096;
/// [`FULU_BLOB_COMMITMENTS_MAX`]
pub type FuluBlobCommitmentsMax = U4096;
/// [`FULU_KZG_PROOFS_MAX`]
pub type FuluKzgProofsMax = typenum::U33554432;
/// [`BLOB_SIZE`]
pub type BlobSize = typenum::U131072;
/// [`DEPOSIT_REQUESTS_MAX`]
pub type DepositRequestsMax = typenum::U8192;
/// [`WITHDRAWAL_REQUESTS_MAX`]
pub type WithdrawalRequestsMax = U16;
/// [`CONSOLIDATION_REQUESTS_MAX`]
pub type ConsolidationRequestsMax = U2;

#[cfg(test)]
mod tests {
    use super::*;
    use ssz_types::typenum::Unsigned;

    #[test]
    fn type_level_bounds_match_constants() {
        let pairs = [
            (
                ValidatorsPerCommitteeMax::USIZE,
                VALIDATORS_PER_COMMITTEE_MAX,
            ),
            (CommitteesPerSlotMax::USIZE, COMMITTEES_PER_SLOT_MAX),
            (ElectraAttestersMax::USIZE, ELECTRA_ATTESTERS_MAX),
            (ProposerSlashingsMax::USIZE, PROPOSER_SLASHINGS_MAX),
            (AttesterSlashingsMax::USIZE, ATTESTER_SLASHINGS_MAX),
            (
                ElectraAttesterSlashingsMax::USIZE,
                ELECTRA_ATTESTER_SLASHINGS_MAX,
            ),
            (AttestationsMax::USIZE, ATTESTATIONS_MAX),
            (ElectraAttestationsMax::USIZE, ELECTRA_ATTESTATIONS_MAX),
            (DepositsMax::USIZE, DEPOSITS_MAX),
            (VoluntaryExitsMax::USIZE, VOLUNTARY_EXITS_MAX),
            (DepositProofLen::USIZE, DEPOSIT_PROOF_LEN),
            (SyncCommitteeSize::USIZE, SYNC_COMMITTEE_SIZE),
            (SyncSubcommitteeSize::USIZE, SYNC_SUBCOMMITTEE_SIZE),
            (ExtraDataMax::USIZE, EXTRA_DATA_MAX),
            (TransactionBytesMax::USIZE, TRANSACTION_BYTES_MAX),
            (TransactionsMax::USIZE, TRANSACTIONS_MAX),
            (WithdrawalsMax::USIZE, WITHDRAWALS_MAX),
            (
                BlsToExecutionChangesMax::USIZE,
                BLS_TO_EXECUTION_CHANGES_MAX,
            ),
            (DenebBlobCommitmentsMax::USIZE, DENEB_BLOB_COMMITMENTS_MAX),
            (
                ElectraBlobCommitmentsMax::USIZE,
                ELECTRA_BLOB_COMMITMENTS_MAX,
            ),
            (FuluBlobCommitmentsMax::USIZE, FULU_BLOB_COMMITMENTS_MAX),
            (FuluKzgProofsMax::USIZE, FULU_KZG_PROOFS_MAX),
            (BlobSize::USIZE, BLOB_SIZE),
            (DepositRequestsMax::USIZE, DEPOSIT_REQUESTS_MAX),
            (WithdrawalRequestsMax::USIZE, WITHDRAWAL_REQUESTS_MAX),
            (ConsolidationRequestsMax::USIZE, CONSOLIDATION_REQUESTS_MAX),
        ];
        for (i, (type_level, constant)) in pairs.into_iter().enumerate() {
            assert_eq!(type_level, constant, "bound #{i}");
        }
    }
}
