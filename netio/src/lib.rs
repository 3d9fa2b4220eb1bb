//! The network layer of the SSV node: libp2p host, gossipsub on `ssv.v2.<subnet>` topics,
//! discv5 discovery, peer scoring and connection gating, the `/ssv/info/0.0.1` handshake, and
//! delivery of inbound messages to the shard that owns their subnet.
//!
//! # Place in the data flow
//!
//! ```text
//! gossip bytes ─► netio (network thread: swarm + discv5) ──ShardQueue k (bounded)──► shard k
//!                   ▲                                                                 │
//!                   └──────── NetworkHandle: accept / reject / ignore, publish ◄──────┘
//! ```
//!
//! Every inbound message waits in gossipsub's cache until its shard reports
//! [`ValidationResult`]: only `Accept` forwards it; `Reject` penalises the sender (P4 and the
//! application score P5); `Ignore` drops it quietly. [`shard_for`] maps a subnet to its shard,
//! so one committee's messages always reach the same core.
//!
//! # Compatibility with the Go node (v2.x)
//!
//! TCP (13001) and QUIC, Noise XX, yamux, identify; gossipsub with D 8 / Dlo 6 / Dhi 12,
//! heartbeat 700 ms, history 6 / gossip 4, seen-TTL 550 heartbeats, max message size
//! [`spec::GOSSIP_MAX_SIZE`]; messages carry an author and sequence number but no signature
//! (Go's `StrictNoSign` with an author), and their ID is [`msg_id::message_id`]. Peer scoring
//! uses the Go thresholds and topic parameters ([`scoring`]). discv5 uses the `ssvdv5` protocol
//! ID and the `domaintype` / `next_domaintype` / `subnets` ENR entries ([`discovery`]).
//!
//! # Why the swarm runs on its own thread
//!
//! libp2p's TCP and QUIC transports exist only for tokio, and glommio's sockets are not `Send`,
//! so there is no glommio-native transport. Two set-ups were measured on the development
//! machine (`shared/TOOLCHAIN.md`): (A) the swarm polled inside a glommio task with a
//! one-worker tokio runtime entered for IO, about 320 µs gossip round trip; (B) the swarm on its
//! own OS thread with a one-thread tokio runtime and bounded channels to the shards, about
//! 400 µs. We use (B): it is the set-up libp2p supports and tests, it keeps socket IO and
//! gossipsub's heartbeat off the shard cores, and the extra ~80 µs is well inside the budget of
//! a 12 s slot. The `gossip_mesh` example measures this design end to end on loopback, from
//! `publish` on one node to a glommio shard of another node taking the message off its queue:
//! with 8 nodes and 2000 messages at 1000/s, median 0.29 ms and p99 5 ms over TCP (0.65 ms
//! median over QUIC), measured on the 2-core development machine while it was loaded by other
//! builds (`cargo run --release -p ssv-netio --example gossip_mesh -- --nodes 8 --messages
//! 2000`).

pub mod discovery;
pub mod error;
pub mod gater;
pub mod handshake;
pub mod keys;
pub mod msg_id;
pub mod rate;
pub mod scoring;
pub mod service;
pub mod shard;
pub mod spec;
pub mod subnets;

pub use discovery::Bootnode;
pub use error::NetioError;
pub use keys::NetworkKey;
pub use scoring::ValidationResult;
pub use service::{
    DetachedEvent, DetachedNetwork, Network, NetworkConfig, NetworkEvent, NetworkHandle,
    NetworkStats, PeerConnection, PeerInfo,
};
pub use shard::{InboundMessage, ShardQueue, ShardStats, shard_for};
pub use spec::{DomainType, SUBNET_COUNT, Subnet, subnet_from_topic, topic_name};
pub use subnets::Subnets;

/// Re-exported so users can name records and message IDs without depending on the crates.
pub use discv5::Enr;
pub use libp2p::PeerId;
pub use libp2p::gossipsub::MessageId;
