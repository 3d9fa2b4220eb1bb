//! Record types stored in the tables. Each is an rkyv archive on disk; see [`crate::codec`].
//!
//! These are storage's own types: the node converts from the wire types of `ssv-protocol`
//! when it writes, so the on-disk schema does not change when the wire types do.

use rkyv::{Archive, Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, StorageError};

/// BLS public key of a validator (compressed G1).
pub type ValidatorPubkey = [u8; 48];
/// BLS public key of one operator's share of a validator key.
pub type SharePubkey = [u8; 48];
/// Operator ID as assigned by the SSV contract.
pub type OperatorId = u64;
/// Committee ID: sha256 of the sorted operator IDs, each as `u32` little-endian.
pub type CommitteeId = [u8; 32];
/// QBFT instance identifier (the 56-byte `MessageID`: domain, role, duty executor ID).
pub type QbftIdentifier = [u8; 56];
/// Execution-layer address (fee recipient, owner).
pub type Address = [u8; 20];
/// A 32-byte root (signing root, genesis validators root).
pub type Root = [u8; 32];

/// Most operators in one committee (13 is the largest cluster SSV allows).
pub const COMMITTEE_OPERATORS_MAX: usize = 13;
/// Largest operator public key we store. A 4096-bit RSA key as base64 PEM is ~1 KiB; the
/// bound matches what the node's contract-event handler accepts (4 KiB), so every operator
/// the handler admits can be stored (a smaller bound here would let one oversized
/// `OperatorAdded` stop the contract sync for good).
pub const OPERATOR_PUBLIC_KEY_BYTES_MAX: usize = 4096;
/// Largest encrypted share we store (RSA-4096 ciphertext, base64: well under this).
pub const ENCRYPTED_SHARE_BYTES_MAX: usize = 2048;
/// Largest stored decided message (an SSZ `SignedSSVMessage` with its full data).
pub const DECIDED_MESSAGE_BYTES_MAX: usize = 1 << 20;

/// Computes the committee ID of a set of operators: sha256 over the operator IDs sorted
/// ascending, each encoded as `u32` little-endian (as the SSV network does).
pub fn committee_id(operator_ids: &[OperatorId]) -> Result<CommitteeId> {
    let mut ids = operator_ids.to_vec();
    ids.sort_unstable();
    let mut hasher = Sha256::new();
    for id in ids {
        let id = u32::try_from(id).map_err(|_| {
            StorageError::InvalidRecord(format!("operator id {id} does not fit in u32"))
        })?;
        hasher.update(id.to_le_bytes());
    }
    Ok(hasher.finalize().into())
}

/// An operator registered in the SSV contract.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    /// Operator ID.
    pub id: OperatorId,
    /// The operator's RSA public key as published in the contract (PEM or DER bytes).
    pub public_key: Vec<u8>,
    /// Owner address.
    pub owner: Address,
}

impl OperatorRecord {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.public_key.len() > OPERATOR_PUBLIC_KEY_BYTES_MAX {
            return Err(StorageError::InvalidRecord(format!(
                "operator {} public key is {} bytes, more than {OPERATOR_PUBLIC_KEY_BYTES_MAX}",
                self.id,
                self.public_key.len()
            )));
        }
        Ok(())
    }
}

/// A committee: a set of operators that runs duties for its validators together.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CommitteeRecord {
    /// [`committee_id`] of `operator_ids`.
    pub id: CommitteeId,
    /// Member operator IDs, sorted ascending.
    pub operator_ids: Vec<OperatorId>,
}

impl CommitteeRecord {
    /// Builds a committee record (sorts the IDs and computes the ID).
    pub fn new(mut operator_ids: Vec<OperatorId>) -> Result<Self> {
        operator_ids.sort_unstable();
        let id = committee_id(&operator_ids)?;
        let record = CommitteeRecord { id, operator_ids };
        record.validate()?;
        Ok(record)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_operators(&self.operator_ids)?;
        if committee_id(&self.operator_ids)? != self.id {
            return Err(StorageError::InvalidRecord(
                "committee id does not match its operator ids".into(),
            ));
        }
        Ok(())
    }
}

fn validate_operators(ids: &[OperatorId]) -> Result<()> {
    if ids.is_empty() || ids.len() > COMMITTEE_OPERATORS_MAX {
        return Err(StorageError::InvalidRecord(format!(
            "committee of {} operators (1..={COMMITTEE_OPERATORS_MAX} allowed)",
            ids.len()
        )));
    }
    if !ids.windows(2).all(|w| w[0] < w[1]) {
        return Err(StorageError::InvalidRecord(
            "operator ids must be sorted and distinct".into(),
        ));
    }
    Ok(())
}

/// Our operator's decrypted BLS secret-key share.
///
/// Persisted only when the store's configuration sets
/// [`StoreConfig::persist_decrypted_shares`](crate::StoreConfig::persist_decrypted_shares);
/// otherwise the writer strips it before the share is encoded, and the node decrypts
/// [`ShareRecord::encrypted_share`] with its operator key at start-up. `Debug` never prints it.
#[derive(Archive, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct SecretShare(pub [u8; 32]);

impl std::fmt::Debug for SecretShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretShare(<redacted>)")
    }
}

/// One validator's share set, as registered in the contract (`ValidatorAdded`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    /// The validator's public key.
    pub validator_pubkey: ValidatorPubkey,
    /// Beacon-chain validator index, once known.
    pub validator_index: Option<u64>,
    /// The committee running this validator.
    pub committee_id: CommitteeId,
    /// Operators of the committee, sorted ascending.
    pub operator_ids: Vec<OperatorId>,
    /// Share public key of each operator, in the order of `operator_ids`.
    pub share_pubkeys: Vec<SharePubkey>,
    /// Our operator's share, encrypted to our RSA key, as published in the contract event.
    pub encrypted_share: Vec<u8>,
    /// Our decrypted share: see [`SecretShare`] for when it is written.
    pub secret_share: Option<SecretShare>,
    /// Owner (the account that registered the validator).
    pub owner: Address,
    /// Whether the owner's cluster is liquidated (no duties are run).
    pub liquidated: bool,
}

impl ShareRecord {
    pub(crate) fn validate(&self) -> Result<()> {
        validate_operators(&self.operator_ids)?;
        if self.share_pubkeys.len() != self.operator_ids.len() {
            return Err(StorageError::InvalidRecord(format!(
                "{} share public keys for {} operators",
                self.share_pubkeys.len(),
                self.operator_ids.len()
            )));
        }
        if committee_id(&self.operator_ids)? != self.committee_id {
            return Err(StorageError::InvalidRecord(
                "share committee id does not match its operator ids".into(),
            ));
        }
        if self.encrypted_share.len() > ENCRYPTED_SHARE_BYTES_MAX {
            return Err(StorageError::InvalidRecord(format!(
                "encrypted share of {} bytes, more than {ENCRYPTED_SHARE_BYTES_MAX}",
                self.encrypted_share.len()
            )));
        }
        Ok(())
    }
}

/// Beacon-chain status of a validator, as the beacon node reports it (collapsed).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub enum ValidatorStatus {
    /// Not yet seen by the beacon node.
    Unknown,
    /// Deposited, waiting for activation.
    Pending,
    /// Active: duties are assigned.
    Active,
    /// Exit initiated, still active.
    Exiting,
    /// Exited.
    Exited,
    /// Slashed.
    Slashed,
    /// Withdrawn.
    Withdrawn,
}

/// Beacon metadata of a validator, refreshed from the beacon node.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ValidatorMetadata {
    /// The validator's public key.
    pub pubkey: ValidatorPubkey,
    /// Beacon-chain validator index.
    pub index: u64,
    /// Beacon-chain status.
    pub status: ValidatorStatus,
    /// Activation epoch (`u64::MAX` when not yet known).
    pub activation_epoch: u64,
    /// Fee recipient set by the owner.
    pub fee_recipient: Address,
}

/// The highest decided QBFT instance of one identifier (and, in exporter mode, each one).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DecidedRecord {
    /// The QBFT identifier (`MessageID`).
    pub identifier: QbftIdentifier,
    /// Instance height (the slot for duty instances).
    pub height: u64,
    /// Round in which it was decided.
    pub round: u64,
    /// Operators whose commit signatures make up the decided message.
    pub signers: Vec<OperatorId>,
    /// Root of the decided value.
    pub value_root: Root,
    /// The decided message as received (SSZ `SignedSSVMessage`), opaque here.
    pub message: Vec<u8>,
}

impl DecidedRecord {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.signers.len() > COMMITTEE_OPERATORS_MAX {
            return Err(StorageError::InvalidRecord(format!(
                "decided message with {} signers",
                self.signers.len()
            )));
        }
        if self.message.len() > DECIDED_MESSAGE_BYTES_MAX {
            return Err(StorageError::InvalidRecord(format!(
                "decided message of {} bytes, more than {DECIDED_MESSAGE_BYTES_MAX}",
                self.message.len()
            )));
        }
        Ok(())
    }
}

/// Contract-sync progress: every event up to and including this block is applied.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncCursor {
    /// Last execution-layer block whose events were processed.
    pub last_processed_block: u64,
}

/// Most malformed contract events kept in [`crate::tables::MalformedEvents`]: appending one
/// more deletes the oldest. The total ever recorded is still known (the newest key + 1). Too
/// small: a burst of bad events pushes out the ones an operator wants to inspect; each record
/// is at most ~2.1 KiB, so 1,024 of them bound the table to ~2 MiB.
pub const MALFORMED_EVENTS_MAX: usize = 1024;
/// Longest event name or reason text stored with a malformed event (longer text is refused
/// by [`MalformedEventRecord`] validation; the node truncates before it writes).
pub const MALFORMED_TEXT_BYTES_MAX: usize = 1024;

/// Key of a cluster (an owner and a set of operators) in [`crate::tables::LiquidatedClusters`]:
/// sha256 over the owner's 20 bytes, then each operator ID, sorted ascending, as `u64`
/// big-endian. (Not the contract's own cluster hash, which the node never needs.)
pub type ClusterId = [u8; 32];

/// Computes the [`ClusterId`] of `owner`'s cluster with these operators (any order).
pub fn cluster_id(owner: &Address, operator_ids: &[OperatorId]) -> ClusterId {
    let mut ids = operator_ids.to_vec();
    ids.sort_unstable();
    let mut hasher = Sha256::new();
    hasher.update(owner);
    for id in ids {
        hasher.update(id.to_be_bytes());
    }
    hasher.finalize().into()
}

/// Contract-sync status of an operator, next to its [`OperatorRecord`] (kept apart so the
/// operators table keeps the layout the runtime and devnet write).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorStatus {
    /// `OperatorRemoved` was seen. The operator stays in the operators table (as in the Go
    /// node): validators registered with it still name it.
    pub removed: bool,
}

/// What the contract events say about a validator beyond its [`ShareRecord`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ValidatorEventsRecord {
    /// Operator IDs in the order of the `ValidatorAdded` event (the share record keeps them
    /// sorted, with the share public keys reordered to match).
    pub event_operator_ids: Vec<OperatorId>,
    /// Block of the `ValidatorAdded` event.
    pub added_block: u64,
    /// Block of the last `ValidatorExited` event, if any.
    pub exit_requested_block: Option<u64>,
    /// Our operator ID when the share record's `encrypted_share` is ours (we are in the
    /// committee); `None` for validators of other committees.
    pub own_operator_id: Option<OperatorId>,
}

impl ValidatorEventsRecord {
    pub(crate) fn validate(&self) -> Result<()> {
        let mut sorted = self.event_operator_ids.clone();
        sorted.sort_unstable();
        validate_operators(&sorted)?;
        if let Some(own) = self.own_operator_id
            && !self.event_operator_ids.contains(&own)
        {
            return Err(StorageError::InvalidRecord(format!(
                "own operator {own} is not in the validator's committee"
            )));
        }
        Ok(())
    }
}

/// An owner's next `ValidatorAdded` nonce.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerNonce {
    /// Nonce the owner's next `ValidatorAdded` must be signed with.
    pub next: u64,
}

/// An owner's fee recipient (`FeeRecipientAddressUpdated`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRecipient {
    /// The fee recipient address.
    pub recipient: Address,
}

/// A liquidated cluster (`ClusterLiquidated`, until `ClusterReactivated`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LiquidatedCluster {
    /// Cluster owner.
    pub owner: Address,
    /// Operator IDs, sorted ascending (as the event named them, so not checked for
    /// duplicates: the record mirrors what the contract said).
    pub operator_ids: Vec<OperatorId>,
}

impl LiquidatedCluster {
    /// Its key.
    pub fn id(&self) -> ClusterId {
        cluster_id(&self.owner, &self.operator_ids)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.operator_ids.len() > COMMITTEE_OPERATORS_MAX {
            return Err(StorageError::InvalidRecord(format!(
                "cluster of {} operators (at most {COMMITTEE_OPERATORS_MAX})",
                self.operator_ids.len()
            )));
        }
        if !self.operator_ids.windows(2).all(|w| w[0] <= w[1]) {
            return Err(StorageError::InvalidRecord(
                "cluster operator ids must be sorted".into(),
            ));
        }
        Ok(())
    }
}

/// A contract event the node skipped as malformed.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MalformedEventRecord {
    /// Execution-layer block number.
    pub block: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Transaction hash.
    pub tx_hash: Root,
    /// Event name.
    pub event: String,
    /// Why it was skipped.
    pub reason: String,
}

impl MalformedEventRecord {
    pub(crate) fn validate(&self) -> Result<()> {
        for (what, text) in [("event name", &self.event), ("reason", &self.reason)] {
            if text.len() > MALFORMED_TEXT_BYTES_MAX {
                return Err(StorageError::InvalidRecord(format!(
                    "malformed-event {what} of {} bytes, more than {MALFORMED_TEXT_BYTES_MAX}",
                    text.len()
                )));
            }
        }
        Ok(())
    }
}

/// The encrypted share of one of our operators for one validator, when the node hosts
/// several operator IDs of its committee (the [`ShareRecord`] holds one encrypted share; the
/// others are kept here, keyed by validator public key and operator ID).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OwnShareRecord {
    /// The share, RSA-encrypted to that operator's key.
    pub encrypted_share: Vec<u8>,
}

impl OwnShareRecord {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.encrypted_share.is_empty() || self.encrypted_share.len() > ENCRYPTED_SHARE_BYTES_MAX
        {
            return Err(StorageError::InvalidRecord(format!(
                "own encrypted share of {} bytes (1..={ENCRYPTED_SHARE_BYTES_MAX})",
                self.encrypted_share.len()
            )));
        }
        Ok(())
    }
}

/// Our operator ID, once the contract sync saw our `OperatorAdded`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnOperatorRecord {
    /// Our operator ID.
    pub id: OperatorId,
}

/// A signed attestation kept by slashing protection (the target epoch is in the key).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestationRecord {
    /// Source epoch.
    pub source_epoch: u64,
    /// Signing root, when known (imported minified records have none).
    pub signing_root: Option<Root>,
}

/// A signed block kept by slashing protection (the slot is in the key).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRecord {
    /// Signing root, when known.
    pub signing_root: Option<Root>,
}

/// Per-validator bounds that make the common slashing check one lookup.
///
/// `low_*` are the EIP-3076 lower bounds (the minimum source, target and slot present, or the
/// values an import raised them to); `max_*` the highest values present. A new attestation
/// with `source >= max_source` and `target > max_target` cannot conflict with any record,
/// so only attestations below the maxima need the range scans.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlashingSummary {
    /// Lowest block slot present (blocks at or below it are refused).
    pub low_slot: Option<u64>,
    /// Highest block slot present.
    pub max_slot: Option<u64>,
    /// Lowest attestation source present (sources below it are refused).
    pub low_source: Option<u64>,
    /// Lowest attestation target present (targets at or below it are refused).
    pub low_target: Option<u64>,
    /// Highest attestation source present.
    pub max_source: Option<u64>,
    /// Highest attestation target present.
    pub max_target: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committee_id_is_sha256_of_sorted_u32_le() {
        let mut expected = Sha256::new();
        for id in [1u32, 2, 3, 4] {
            expected.update(id.to_le_bytes());
        }
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(committee_id(&[4, 2, 3, 1]).unwrap(), expected);
        assert_eq!(committee_id(&[1, 2, 3, 4]).unwrap(), expected);
        assert!(committee_id(&[1, u64::from(u32::MAX) + 1]).is_err());
    }

    #[test]
    fn share_validation_catches_bad_records() {
        let ops = vec![1, 2, 3, 4];
        let good = ShareRecord {
            validator_pubkey: [1; 48],
            validator_index: Some(5),
            committee_id: committee_id(&ops).unwrap(),
            operator_ids: ops.clone(),
            share_pubkeys: vec![[2; 48]; 4],
            encrypted_share: vec![0; 256],
            secret_share: None,
            owner: [0; 20],
            liquidated: false,
        };
        assert!(good.validate().is_ok());
        let mut bad = good.clone();
        bad.share_pubkeys.pop();
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.committee_id = [0; 32];
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.operator_ids = vec![2, 1, 3, 4];
        assert!(bad.validate().is_err());
        assert_eq!(
            format!("{:?}", SecretShare([7; 32])),
            "SecretShare(<redacted>)"
        );
    }
}
