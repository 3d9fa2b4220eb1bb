//! Duty runners: sans-IO state machines that take a duty from its start to the signatures
//! that go to the beacon node.
//!
//! One file a role. Today: the committee role ([`committee`]: attester and sync-committee
//! messages of every validator of a committee, one QBFT instance a slot). The role-neutral
//! core and the other roles (proposer, aggregator, sync-committee contribution, validator
//! registration, voluntary exit) join this folder.

pub mod committee;

pub use committee::*;
