//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the network layer. Errors from remote input (ENRs, handshake
/// records, gossip messages) are values, never panics.
#[derive(Debug, thiserror::Error)]
pub enum NetioError {
    /// A subnet index was not below `SUBNET_COUNT`.
    #[error("subnet {0} out of range (must be < 128)")]
    SubnetOutOfRange(usize),
    /// The shard count must be at least 1.
    #[error("shard count must be at least 1")]
    ZeroShards,
    /// Reading or writing the persisted network key failed.
    #[error("network key file {path}: {source}")]
    KeyIo {
        /// The key file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The persisted network key is not 64 hex characters of a valid secp256k1 secret.
    #[error("network key file {0} is corrupt")]
    KeyCorrupt(PathBuf),
    /// Building or updating our ENR failed.
    #[error("ENR: {0}")]
    Enr(String),
    /// A remote ENR could not be parsed or lacks a field we need.
    #[error("invalid remote ENR: {0}")]
    InvalidEnr(String),
    /// The discv5 service could not start or failed.
    #[error("discovery: {0}")]
    Discovery(String),
    /// The libp2p transport, swarm or listener could not be set up.
    #[error("transport: {0}")]
    Transport(String),
    /// The gossipsub configuration or scoring parameters were rejected.
    #[error("gossipsub: {0}")]
    Gossipsub(String),
    /// A handshake record (signed envelope with node info) was malformed or badly signed.
    #[error("handshake record: {0}")]
    Handshake(String),
    /// A message was larger than the gossip limit.
    #[error("message of {size} bytes exceeds the {max}-byte gossip limit")]
    MessageTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The network thread has stopped; the handle can no longer reach it.
    #[error("network service has stopped")]
    ServiceStopped,
    /// The command queue to the network thread is full (only from non-blocking calls).
    #[error("network command queue is full")]
    CommandQueueFull,
    /// Publishing failed inside gossipsub (no peers on the topic, duplicate, too large...).
    #[error("publish: {0}")]
    Publish(String),
    /// The connection gater refused a connection (banned peer, per-IP or peer limit).
    #[error("connection refused by gater: {0}")]
    Gated(String),
    /// A configuration value is invalid.
    #[error("config: {0}")]
    Config(String),
}
