//! The beacon-node side of the control plane: the Beacon API types, a client over several
//! beacon nodes, and a simulator that serves the same API for devnets and tests.

pub mod api;
pub mod client;
pub mod sim;
