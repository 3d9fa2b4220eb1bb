//! Errors of the contract sync.
//!
//! Two kinds of failure are kept apart on purpose. [`EthError`] stops the sync (no endpoint
//! answers, the store cannot commit, the configuration is wrong). [`EventRejection`] never
//! does: it is why one contract event was recorded as malformed and skipped, exactly as the
//! Go node treats a `MalformedEventError`.

/// Errors that stop the contract sync (returned by [`crate::ContractSync`]).
#[derive(Debug, thiserror::Error)]
pub enum EthError {
    /// The configuration cannot be used (no endpoint, unknown network name, bad address,
    /// zero-sized range). Fix the configuration; retrying does not help.
    #[error("invalid contract-sync configuration: {0}")]
    Config(String),
    /// Every execution endpoint failed for `rounds` full rounds in a row.
    #[error(
        "all {endpoints} execution endpoints failed {rounds} rounds in a row; last error: {last}"
    )]
    AllEndpointsFailed {
        /// Number of configured endpoints.
        endpoints: usize,
        /// Full rounds over all endpoints that failed.
        rounds: u32,
        /// The last endpoint's error.
        last: String,
    },
    /// The registry store failed to load or to commit a block. The sync's in-memory view is
    /// reloaded from the store, so nothing half-applied survives; restart the sync to go on.
    #[error("registry store: {0}")]
    Storage(String),
    /// A commit for a block at or below the stored cursor was refused: it would apply that
    /// block's events twice.
    #[error("cursor regression: block {block} is not after the stored cursor {cursor}")]
    CursorRegression {
        /// The block that was to be committed.
        block: u64,
        /// The cursor already stored.
        cursor: u64,
    },
    /// The sync was asked to stop (shutdown signal).
    #[error("contract sync stopped")]
    Stopped,
}

/// Why one contract event was recorded as malformed and skipped. The sync goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventRejection {
    /// The log does not decode as the event its topic names (wrong topics, bad ABI data,
    /// or data longer than [`crate::events::LOG_DATA_MAX`]).
    #[error("undecodable log: {0}")]
    Undecodable(String),
    /// `OperatorAdded` for an operator ID that is already registered.
    #[error("operator {0} already exists")]
    OperatorExists(u64),
    /// `OperatorAdded` with a public key another operator already registered.
    #[error("operator public key already registered by operator {0}")]
    OperatorKeyExists(u64),
    /// `OperatorAdded` whose public key is not ABI `bytes` wrapping base64 text.
    #[error("operator public key is not ABI-encoded base64: {0}")]
    BadOperatorKey(String),
    /// The event names an operator that was never added.
    #[error("operator {0} does not exist")]
    UnknownOperator(u64),
    /// The operator set is not a valid committee (size not 3f+1 in 4..=13, duplicates).
    #[error("invalid operator set: {0}")]
    InvalidOperators(String),
    /// `ValidatorAdded.shares` is not 96 + 304·n bytes for n operators.
    #[error("shares length is {got} bytes, expected {expected}")]
    SharesLength {
        /// 96 + (48 + 256) · operators.
        expected: usize,
        /// What the event carried.
        got: usize,
    },
    /// The validator public key is not a valid BLS12-381 G1 point.
    #[error("invalid validator public key: {0}")]
    BadValidatorKey(String),
    /// The owner's BLS signature over `keccak256("<owner>:<nonce>")` does not verify.
    #[error("owner signature does not verify for nonce {nonce}: {reason}")]
    BadSignature {
        /// The nonce the message was built with.
        nonce: u64,
        /// What failed (decoding or verification).
        reason: String,
    },
    /// Our encrypted share does not decrypt with our operator key, or is not a hex secret.
    #[error("our share does not decrypt: {0}")]
    ShareDecryption(String),
    /// Our decrypted share's public key is not the share public key in the event.
    #[error("our decrypted share does not match its share public key")]
    ShareKeyMismatch,
    /// The validator is registered under a different owner.
    #[error("validator belongs to a different owner")]
    DifferentOwner,
    /// The validator named by a removal or exit is not registered.
    #[error("validator is not registered")]
    UnknownValidator,
}
