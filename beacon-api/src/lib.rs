//! The beacon-node side of the control plane: the Beacon API types (`ethereum/beacon-APIs`,
//! JSON as the API specifies) and a client over several beacon nodes with failover: it
//! probes each node's sync status ([`health`]) and sends requests to a healthy one first, and
//! takes head events from every node.
//!
//! The attestation data and checkpoints are the protocol crate's own types
//! ([`ssv_protocol::beacon_vote::AttestationData`], re-exported in [`types`]), which carry
//! both their SSZ and their JSON form: what the client fetches is what the runners sign,
//! with no conversion in between.
//!
//! The client treats every beacon node as untrusted input: every answer is parsed into a
//! typed value or refused with a [`BeaconError`].

pub mod checks;
pub mod client;
pub mod health;
pub mod types;

pub use checks::{check_attestation_data, check_genesis};
pub use client::{BeaconClient, BeaconError, RequestObserver};
pub use health::NodeHealth;
