//! Every table of the database, declared in one place: name, key type, value type.
//!
//! Keys are fixed-size byte strings; integers in keys are big-endian (see
//! [`crate::codec::Key`]) so MDBX's lexicographic order is numeric order and range scans
//! over one validator's history are contiguous. Values are rkyv archives
//! ([`crate::codec::Record`]). The one exception is [`META_TABLE`], which holds raw bytes so
//! the schema check does not depend on the rkyv layout it guards.

use crate::codec::{Key, PrefixedU64, Record, Singleton};
use crate::records::{
    Address, AttestationRecord, BlockRecord, ClusterId, CommitteeId, CommitteeRecord,
    DecidedRecord, FeeRecipient, LiquidatedCluster, MalformedEventRecord, OperatorId,
    OperatorRecord, OperatorStatus, OwnOperatorRecord, OwnShareRecord, OwnerNonce, QbftIdentifier,
    ShareRecord, SlashingSummary, SyncCursor, ValidatorEventsRecord, ValidatorMetadata,
    ValidatorPubkey,
};

/// A typed table.
pub trait Table {
    /// MDBX name of the table.
    const NAME: &'static str;
    /// Key type.
    type Key: Key;
    /// Value type.
    type Value: Record;
}

/// Raw-bytes table holding the schema magic/version and the genesis validators root.
pub const META_TABLE: &str = "meta";

macro_rules! tables {
    ($( $(#[$doc:meta])* $ty:ident : $name:literal, $key:ty => $value:ty; )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $ty;
            impl Table for $ty {
                const NAME: &'static str = $name;
                type Key = $key;
                type Value = $value;
            }
            const _: () = crate::codec::assert_align::<$value>();
        )*
        /// Names of all typed tables (created at open; [`META_TABLE`] is extra).
        pub const TABLE_NAMES: &[&str] = &[$($name),*];
    };
}

tables! {
    /// Operators by ID.
    Operators: "operators", OperatorId => OperatorRecord;
    /// Validator shares by validator public key.
    Shares: "shares", ValidatorPubkey => ShareRecord;
    /// Committees by committee ID.
    Committees: "committees", CommitteeId => CommitteeRecord;
    /// Beacon metadata by validator public key.
    Metadata: "validator_metadata", ValidatorPubkey => ValidatorMetadata;
    /// Highest decided instance per QBFT identifier.
    Decided: "decided_highest", QbftIdentifier => DecidedRecord;
    /// Every decided instance by (identifier, height): exporter mode only.
    DecidedHistory: "decided_history", PrefixedU64<56> => DecidedRecord;
    /// Signed blocks by (validator, slot).
    SignedBlocks: "slashing_blocks", PrefixedU64<48> => BlockRecord;
    /// Signed attestations by (validator, target epoch).
    SignedAttestations: "slashing_attestations", PrefixedU64<48> => AttestationRecord;
    /// Per-validator slashing bounds.
    SlashingSummaries: "slashing_summary", ValidatorPubkey => SlashingSummary;
    /// Contract-sync cursor (one row).
    ContractSync: "contract_sync", Singleton => SyncCursor;
    /// Contract-sync status of each operator (the `removed` flag).
    OperatorStatuses: "operator_status", OperatorId => OperatorStatus;
    /// Contract-event facts of each validator beyond its share (event order, blocks).
    ValidatorEvents: "validator_events", ValidatorPubkey => ValidatorEventsRecord;
    /// Next `ValidatorAdded` nonce of each owner.
    OwnerNonces: "owner_nonces", Address => OwnerNonce;
    /// Fee recipient of each owner that set one.
    FeeRecipients: "fee_recipients", Address => FeeRecipient;
    /// Liquidated clusters by [`crate::records::cluster_id`].
    LiquidatedClusters: "liquidated_clusters", ClusterId => LiquidatedCluster;
    /// The newest [`crate::records::MALFORMED_EVENTS_MAX`] malformed contract events, by
    /// sequence number (0 for the first ever recorded).
    MalformedEvents: "malformed_events", u64 => MalformedEventRecord;
    /// Our operator ID, once known (one row).
    OwnOperator: "own_operator", Singleton => OwnOperatorRecord;
    /// Encrypted shares of our other operator IDs (a node hosting several), by validator
    /// public key and operator ID.
    OwnShares: "own_shares", PrefixedU64<48> => OwnShareRecord;
    /// Our operator IDs beyond the [`OwnOperator`] row (a node hosting several operators
    /// with contract sync), by ID.
    OwnOperatorIds: "own_operator_ids", OperatorId => OwnOperatorRecord;
}

/// Tables added after a schema version's first release: a database of that version that
/// lacks one gets it created, empty, at open (nothing stored is lost or changed).
pub const TABLES_ADDED_LATER: &[&str] = &["own_shares", "own_operator_ids"];

/// Number of named tables, including [`META_TABLE`]; MDBX's `max_tables` is set from it.
pub const TABLES_COUNT: usize = TABLE_NAMES.len() + 1;
