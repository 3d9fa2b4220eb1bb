//! SSV wire types and protocol logic: the bottom of the workspace.
//!
//! Gossip bytes arrive at a shard, are decoded here ([`message::SignedSsvMessage`] and the
//! inner [`qbft::Message`] / [`partial_sig::PartialSignatureMessages`]), checked by the
//! structural rules of ssv-spec v1.2.2 (`validate()`), and fed to the sans-IO state machines
//! (QBFT, duty runners) that also live here. No threads, sockets or clocks: time and messages
//! go in, actions come out.
//!
//! Encodings are SSZ through Lighthouse's `ethereum_ssz` and `tree_hash` crates; every list
//! carries its spec limit (see [`limits`]) so decoding never allocates beyond it.

pub mod beacon;
pub mod beacon_vote;
pub mod chain;
pub mod committee;
pub mod error;
pub mod error_code;
pub mod json;
pub mod limits;
pub mod message;
pub mod partial_sig;
pub mod qbft;
pub mod runner;
pub mod signing;
pub mod types;
pub mod validation;

pub use error::Error;
pub use error_code::ErrorCode;

#[cfg(feature = "spec-vectors")]
pub mod vectors;
