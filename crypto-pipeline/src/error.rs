//! The one error type of this crate.

use crate::threshold::OperatorId;

/// Everything that can go wrong in signature work. Variants that describe bad input from the
/// network say so: the caller maps them to its peer-scoring decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// BLS secret key bytes were not 32 bytes of a nonzero scalar below the group order.
    #[error("invalid BLS secret key")]
    InvalidSecretKey,
    /// BLS public key bytes did not decode to a usable key: bad length or encoding, not on the
    /// curve, not in the G1 subgroup, or the point at infinity. From the network: reject.
    #[error("invalid BLS public key: {0}")]
    InvalidPublicKey(&'static str),
    /// BLS signature bytes did not decompress to a point on the G2 curve. From the network:
    /// reject the message (the sender produced garbage).
    #[error("invalid BLS signature encoding: {0}")]
    InvalidSignatureEncoding(&'static str),
    /// The signature is on the curve but not in the prime-order G2 subgroup. From the network:
    /// reject.
    #[error("BLS signature is not in the G2 subgroup")]
    SignatureNotInSubgroup,
    /// The signature does not verify against the public key and signing root. From the
    /// network: reject.
    #[error("BLS signature verification failed")]
    VerificationFailed,
    /// Threshold parameters out of range (threshold zero, above the share count, or more shares
    /// than `SHARES_MAX`).
    #[error("invalid threshold parameters: {0}")]
    InvalidThreshold(&'static str),
    /// Operator IDs unusable as Shamir evaluation points: zero, duplicated, or fewer than needed.
    #[error("invalid operator ID set: {0}")]
    InvalidOperatorIds(&'static str),
    /// An RSA key did not parse (bad PEM, base64, hex or DER, unsupported size).
    #[error("invalid RSA key: {0}")]
    InvalidRsaKey(&'static str),
    /// An RSA private-key operation failed (signing, or decryption of a malformed ciphertext).
    #[error("RSA {0} failed")]
    Rsa(&'static str),
    /// An RSA signature did not verify. From the network: reject the message.
    #[error("RSA signature verification failed")]
    RsaVerificationFailed,
    /// The batch verifier's input queue holds `QUEUE_MAX` sets already; the new set was not
    /// queued (drop-newest policy). The caller may retry later or verify directly.
    #[error("batch verifier queue is full ({0} sets)")]
    QueueFull(usize),
    /// The batch verifier was shut down before it produced this result.
    #[error("batch verifier stopped")]
    VerifierStopped,
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The reconstructed signature failed and these operators' partial signatures do not
    /// verify against their share keys. From the network: reject those partial messages.
    #[error("partial signatures of operators {0:?} are invalid")]
    InvalidPartials(Vec<OperatorId>),
    /// The reconstructed signature does not verify although every partial does: the share
    /// public keys do not belong to the validator key (a registry problem, not a peer fault).
    #[error("reconstructed signature does not verify although every partial signature does")]
    ReconstructionMismatch,
    /// A keystore file could not be read: not JSON, a required module or field missing, bad
    /// hex, a wrong IV or checksum length, or a KDF, checksum or cipher function other than
    /// the ones EIP-2335 defines (pbkdf2 / scrypt, sha256, aes-128-ctr).
    #[error("invalid keystore: {0}")]
    InvalidKeystore(&'static str),
    /// A keystore value is over one of the `keystore::*_MAX` bounds (file size, ciphertext
    /// length, KDF cost or memory). The file is refused before any key derivation runs.
    #[error("keystore parameter over its bound: {0}")]
    KeystoreLimit(&'static str),
    /// The keystore checksum does not match: the password is wrong, or the file was modified.
    #[error("wrong keystore password (checksum mismatch)")]
    WrongPassword,
    /// The password is unusable: empty once control codes are stripped, longer than
    /// `keystore::PASSWORD_BYTES_MAX`, or (when encrypting) holding C1 control codes, which
    /// EIP-2335 and the Go node normalise differently.
    #[error("unusable keystore password: {0}")]
    InvalidPassword(&'static str),
    /// The keystore's `pubKey` field names a different key than the one it decrypts to: the
    /// file was assembled from two keys, or edited.
    #[error("keystore pubKey does not match the decrypted private key")]
    KeystorePublicKeyMismatch,
    /// The operating system's random source failed (salt or IV generation).
    #[error("system random source failed")]
    RandomSource,
}
