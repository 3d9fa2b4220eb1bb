//! The `ssv-node` binary's library: configuration and the runtime, wiring the other crates
//! together (`ssv-protocol` rules and runners, `ssv-crypto-pipeline`, `ssv-storage`,
//! `ssv-netio`, `ssv-beacon-api`, `ssv-eth-sync`; `ssv-devnet` for the `devnet` and
//! `beacon-sim` subcommands).
//!
//! # Public API
//!
//! Two things, and nothing else:
//!
//! * [`main`], the command line (`ssv-node start [--exporter] | bootnode | keygen |
//!   export-public-key | generate-config | slashing-protection | devnet | beacon-sim`), which
//!   `main.rs` calls;
//! * the **data plane** of `ssv-node start`, for harnesses that run it without a beacon node
//!   or a contract (the capacity benchmark in `perf/`): build a [`Registry`] of committees
//!   and shares, a [`Services`] bundle (network handle, store, crypto pool, caches,
//!   submission channel, [`Metrics`], [`SlotClock`]), start shards with [`spawn_shards`]
//!   and feed them [`ShardEvent`]s; what they produce for the beacon node comes out as
//!   [`Submission`]s. A harness that drives a shard step by step (the runtime tests in
//!   `node/tests/runtime.rs`) builds a [`Shard`] itself and calls its `on_event`,
//!   `on_gossip` and `flush`.
//!
//! Everything else (the config, the duty scheduler, the submitter, the HTTP endpoints, the
//! start-up sequence) is private to the binary.

mod bootnode;
mod cli;
mod config;
mod generate;
mod logging;
mod runtime;

pub use cli::main;
pub use runtime::doppelganger::{Detection, Doppelganger};
pub use runtime::live::RegistryUpdater;
pub use runtime::metrics::{Metrics, Stage};
pub use runtime::network_view::{DutyStore, NetworkIndex, NodeView};
pub use runtime::registry::{
    CommitteeInfo, LiveRegistry, Registry, StoppedValidators, ValidatorShare, resolve_operators,
};
pub use runtime::shard::{
    OurOperators, PublishedCounts, RsaSigner, SHARD_EVENTS_MAX, SUBMISSIONS_MAX, Services, Shard,
    ShardEvent, Shards, Submission, crypto_pool, shard_of, spawn_shards,
};
pub use ssv_protocol::chain::SlotClock;
