//! Contract sync: the node learns its operators, validators and key shares from the
//! SSVNetwork contract's events.
//!
//! # Place in the data flow
//!
//! ```text
//! execution endpoints ──eth_getLogs (adaptive ranges) / newHeads──► sync (sync.rs)
//!     ──logs──► events.rs (decode, sol! ABI in abi.rs)
//!     ──events──► handler.rs (validate as the Go node; shares.rs: length, owner BLS
//!                 signature, RSA-decrypt our share) ──► registry changes per block
//!     ──one transaction per batch of blocks (changes + cursor; history: a log range,
//!       bounded; at the head: one block)──► RegistryStore (registry.rs)
//!     ──after the commit──► DataPlaneEvent channel (subscribe subnet, start/stop/exit)
//! ```
//!
//! Malformed events are recorded in the store and skipped with a `warn` log line; they
//! never stop the sync. Storage or endpoint failures do ([`EthError`]); a restart resumes
//! at the block after the stored cursor.
//!
//! # Storage
//!
//! The sync persists through the [`RegistryStore`] trait. [`MemoryRegistryStore`] is the
//! in-memory implementation (tests, nodes without a database). [`MdbxRegistryStore`]
//! (`mdbx_store.rs`) is the persistent one: it maps each [`BlockBatch`]'s [`RegistryChange`]s
//! to one `ssv-storage` write batch (operators, committees, shares of every committee, owner
//! nonces, fee recipients, liquidated clusters, malformed events) ending with the cursor,
//! committed as one transaction, so `ssv-node start` finds what the sync wrote.

pub mod abi;
pub mod error;
pub mod events;
pub mod handler;
pub mod mdbx_store;
pub mod progress;
pub mod registry;
pub mod shares;
pub mod sync;

pub use alloy::primitives::Address;
pub use error::{EthError, EventRejection};
pub use handler::{DataPlaneEvent, EventHandler, StartValidator, StopReason};
pub use mdbx_store::MdbxRegistryStore;
pub use progress::ProgressMode;
pub use registry::{
    BlockBatch, ClusterKey, MalformedEvent, MemoryRegistryStore, OperatorRecord, OwnShare,
    RegistryChange, RegistryState, RegistryStore, StoredRegistry, ValidatorRecord,
};
pub use sync::{
    ContractSync, DATA_PLANE_QUEUE_MAX, HISTORY_BATCH_BLOCKS_MAX_DEFAULT,
    HISTORY_BATCH_CHANGES_MAX_DEFAULT, SyncConfig, SyncCounters, SyncStats,
};
