//! The `ssv-node` binary's library: configuration, runtime, duty scheduling, beacon client and
//! the local devnet.

pub mod beacon;
pub mod config;
pub mod devnet;
pub mod devnet_chain;
pub mod eth;
pub mod runtime;
