//! Signature work of the node: BLS over blst, RSA operator identities, threshold keys and the
//! batching verifier. Shards hand sets to the verifier and get one result per set back.
//!
//! Sits above `ssv-protocol` (for signing roots) and below the node.
