//! Signature work of the node: BLS over blst, RSA operator identities, threshold keys and the
//! batching verifier.
//!
//! Place in the data flow: a shard decodes a gossip message, checks its RSA operator
//! signature ([`rsa::OperatorKeyCache`]), decompresses the BLS partial signatures it carries
//! ([`bls::Signature::from_bytes`]) and, at quorum, hands the partials of a slot to
//! [`duty::reconstruct_and_verify`] (reconstruct, subgroup check, same-root batch, culprit
//! search only on failure). Other BLS sets go to the [`verifier::BatchVerifier`] service,
//! which batches them on a rayon pool and answers each with a future. Signing uses
//! [`bls::HashToG2Cache`] so one slot's root is hashed once. The crate depends on no other
//! crate of the workspace: signing roots are plain `[u8; 32]`.
//!
//! At start-up the node reads its operator RSA key from the Go node's encrypted key file
//! ([`keystore::decrypt_operator_key`]); `ssv-node keygen --password-file` writes one with
//! [`keystore::encrypt_operator_key`].
//!
//! Criterion benchmarks live in `benches/benches/crypto.rs`; the summary is
//! `cargo run --release -p ssv-perf -- crypto --json`.

pub mod batch;
pub mod bls;
pub mod duty;
pub mod error;
pub mod fixtures;
mod gls;
pub mod keystore;
mod msm;
pub mod rsa;
pub mod share;
pub mod threshold;
pub mod verifier;

pub use batch::{SignatureSet, verify_sets, verify_sets_parallel};
pub use bls::{ETH_DST, HashToG2Cache, PublicKey, SecretKey, Signature, SigningRoot, cpu_path};
pub use duty::{Partial, ValidatorPartials, reconstruct_and_verify, reconstruct_then_verify_each};
pub use error::CryptoError;
pub use keystore::{
    Kdf, decrypt_keystore_secret, decrypt_operator_key, encrypt_keystore_secret,
    encrypt_operator_key, encrypt_operator_key_with, keystore_public_key,
};
pub use rsa::{OperatorKeyCache, OperatorPublicKey, OperatorSecretKey};
pub use threshold::{
    LagrangeCache, OperatorId, reconstruct_public_key, reconstruct_secret_key,
    reconstruct_signature, split_secret_key,
};
pub use verifier::{BatchVerifier, VerifierConfig, VerifyFuture};
