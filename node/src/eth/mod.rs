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
//!     ──one transaction per block (changes + cursor)──► RegistryStore (registry.rs)
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
//! in-memory implementation (tests, nodes without a database). The MDBX implementation
//! over `ssv-storage` maps [`RegistryChange`]s to that crate's write batch (operators,
//! shares, cursor) plus tables it does not have yet (owner nonces, liquidated clusters,
//! fee recipients, malformed-event records).

pub mod abi;
pub mod error;
pub mod events;
pub mod handler;
pub mod progress;
pub mod registry;
pub mod shares;
pub mod sync;

pub use error::{EthError, EventRejection};
pub use handler::{DataPlaneEvent, EventHandler, StartValidator, StopReason};
pub use progress::ProgressMode;
pub use registry::{
    ClusterKey, MalformedEvent, MemoryRegistryStore, OperatorRecord, OwnShare, RegistryChange,
    RegistryState, RegistryStore, StoredRegistry, ValidatorRecord,
};
pub use sync::{ContractSync, DATA_PLANE_QUEUE_MAX, SyncConfig, SyncStats};
