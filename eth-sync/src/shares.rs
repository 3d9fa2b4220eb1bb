//! The `shares` payload of `ValidatorAdded` and its checks, as the Go node does them
//! (`eth/eventhandler/handlers.go` and `validation.go` of ssvlabs/ssv):
//!
//! * layout: `signature (96) ‖ n × share public key (48) ‖ n × encrypted share (256)`, so
//!   exactly `96 + 304·n` bytes for `n` operators;
//! * the signature is the validator key's BLS signature (Ethereum DST) over the 32 bytes
//!   `keccak256("<owner as EIP-55 checksummed 0x-hex>:<nonce in decimal>")`, where the nonce
//!   counts the owner's earlier `ValidatorAdded` events (malformed ones included);
//! * our share is RSA PKCS#1 v1.5 encrypted to our operator key; the plaintext is the share's
//!   secret key as hex text (optionally `0x`-prefixed), and its public key must equal the
//!   share public key at our position.

use alloy::primitives::{Address, keccak256};
use ssv_crypto_pipeline::share::{self, ShareError};
pub use ssv_crypto_pipeline::share::{SHARE_PLAINTEXT_MAX, parse_share_plaintext, share_plaintext};
use ssv_crypto_pipeline::{OperatorSecretKey, PublicKey, SecretKey, Signature};

use super::error::EventRejection;

/// Length of the owner's BLS signature at the start of `shares`.
pub const SHARES_SIGNATURE_LEN: usize = 96;
/// Length of one share public key.
pub const SHARE_PUBKEY_LEN: usize = 48;
/// Length of one RSA-2048 encrypted share.
pub const ENCRYPTED_SHARE_LEN: usize = 256;

/// Expected `shares` length for `operators` operators.
pub const fn expected_shares_len(operators: usize) -> usize {
    SHARES_SIGNATURE_LEN + operators * (SHARE_PUBKEY_LEN + ENCRYPTED_SHARE_LEN)
}

/// `shares` split into its parts (borrowed).
#[derive(Debug, Clone)]
pub struct SplitShares<'a> {
    /// The owner's signature.
    pub signature: &'a [u8],
    /// Share public keys, one per operator in event order.
    pub share_pubkeys: Vec<&'a [u8]>,
    /// Encrypted shares, one per operator in event order.
    pub encrypted: Vec<&'a [u8]>,
}

/// Splits `shares` for `operators` operators, checking the length exactly.
pub fn split_shares(shares: &[u8], operators: usize) -> Result<SplitShares<'_>, EventRejection> {
    let expected = expected_shares_len(operators);
    if operators == 0 || shares.len() != expected {
        return Err(EventRejection::SharesLength {
            expected,
            got: shares.len(),
        });
    }
    let (signature, rest) = shares.split_at(SHARES_SIGNATURE_LEN);
    let (pubkeys, encrypted) = rest.split_at(operators * SHARE_PUBKEY_LEN);
    Ok(SplitShares {
        signature,
        share_pubkeys: pubkeys.chunks_exact(SHARE_PUBKEY_LEN).collect(),
        encrypted: encrypted.chunks_exact(ENCRYPTED_SHARE_LEN).collect(),
    })
}

/// The 32-byte message the owner signs: `keccak256("<checksummed owner>:<nonce>")`.
pub fn owner_nonce_message(owner: Address, nonce: u64) -> [u8; 32] {
    let text = format!("{}:{}", owner.to_checksum(None), nonce);
    keccak256(text.as_bytes()).0
}

/// Verifies the owner's signature with the validator public key.
pub fn verify_owner_signature(
    signature: &[u8],
    validator: &PublicKey,
    owner: Address,
    nonce: u64,
) -> Result<(), EventRejection> {
    let sig = Signature::from_bytes(signature).map_err(|e| EventRejection::BadSignature {
        nonce,
        reason: e.to_string(),
    })?;
    sig.verify(validator, &owner_nonce_message(owner, nonce))
        .map_err(|e| EventRejection::BadSignature {
            nonce,
            reason: e.to_string(),
        })
}

/// Signs the owner-and-nonce message (what the registering tool does; tests use it).
pub fn sign_owner_nonce(validator: &SecretKey, owner: Address, nonce: u64) -> [u8; 96] {
    validator
        .sign(&owner_nonce_message(owner, nonce))
        .to_bytes()
}

/// Decrypts our share and checks it against its share public key
/// ([`ssv_crypto_pipeline::share::decrypt_share`], its refusal as an event rejection).
pub fn decrypt_share(
    key: &OperatorSecretKey,
    encrypted: &[u8],
    share_pubkey: &[u8],
) -> Result<SecretKey, EventRejection> {
    share::decrypt_share(key, encrypted, share_pubkey).map_err(EventRejection::from)
}

impl From<ShareError> for EventRejection {
    fn from(e: ShareError) -> Self {
        match e {
            ShareError::Decryption(reason) => EventRejection::ShareDecryption(reason),
            ShareError::KeyMismatch => EventRejection::ShareKeyMismatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ContractEvent, decode_log_data};

    #[test]
    fn layout_is_checked_exactly() {
        assert_eq!(expected_shares_len(4), 1312);
        let shares = vec![0u8; 1312];
        let split = split_shares(&shares, 4).expect("valid length");
        assert_eq!(split.share_pubkeys.len(), 4);
        assert_eq!(split.encrypted.len(), 4);
        assert!(split.encrypted.iter().all(|e| e.len() == 256));
        for bad in [0, 1311, 1313, 96, 96 + 304 * 3] {
            assert_eq!(
                split_shares(&vec![0u8; bad], 4).map(|_| ()),
                Err(EventRejection::SharesLength {
                    expected: 1312,
                    got: bad
                })
            );
        }
        assert!(split_shares(&[0u8; 96], 0).is_err());
    }

    #[test]
    fn message_is_keccak_of_checksummed_owner_and_decimal_nonce() {
        let owner: Address = "0x77fc6e8b24a623725d935bc88057098d0bca6eb3"
            .parse()
            .expect("address");
        let text = format!("{}:{}", owner.to_checksum(None), 12);
        assert_eq!(text, "0x77FC6e8B24a623725d935Bc88057098D0bCA6eB3:12");
        assert_eq!(owner_nonce_message(owner, 12), keccak256(text.as_bytes()).0);
    }

    /// The real testnet event's signature verifies with the message built as above, at the
    /// owner's nonce at that time (2: found once by trying nonces upwards from 0; the Go
    /// test fixture expects a failure because its store starts the owner at nonce 0), and
    /// not at the neighbouring nonces. This pins the exact message bytes to the chain's.
    #[test]
    fn real_event_signature_verifies_at_its_nonce() {
        let (_, data) = crate::events::tests::fixture_log();
        let Ok(ContractEvent::ValidatorAdded(e)) = decode_log_data(&data).1 else {
            panic!("fixture decodes");
        };
        let split = split_shares(&e.shares, e.operatorIds.len()).expect("layout");
        let pk = PublicKey::from_bytes(&e.publicKey).expect("validator key");
        let nonce = REAL_EVENT_NONCE;
        verify_owner_signature(split.signature, &pk, e.owner, nonce).expect("verifies");
        for other in [nonce.wrapping_sub(1), nonce + 1] {
            assert!(verify_owner_signature(split.signature, &pk, e.owner, other).is_err());
        }
    }

    /// Nonce of the fixture owner at the fixture's block (see the test above).
    const REAL_EVENT_NONCE: u64 = 2;

    #[test]
    fn share_refusals_become_event_rejections() {
        let key = OperatorSecretKey::generate().expect("rsa key");
        let share = SecretKey::from_ikm(&[3u8; 32]);
        let other = SecretKey::from_ikm(&[4u8; 32]);
        let enc = key
            .public_key()
            .encrypt(share_plaintext(&share).as_bytes())
            .expect("encrypt");
        assert_eq!(enc.len(), ENCRYPTED_SHARE_LEN);
        assert_eq!(
            decrypt_share(&key, &enc, &other.public_key().to_bytes()).map(|_| ()),
            Err(EventRejection::ShareKeyMismatch)
        );
        assert!(matches!(
            decrypt_share(&key, &enc[..255], &share.public_key().to_bytes()),
            Err(EventRejection::ShareDecryption(_))
        ));
    }

    #[test]
    fn owner_signature_round_trip() {
        let sk = SecretKey::from_ikm(&[9u8; 32]);
        let owner = Address::repeat_byte(0xab);
        let sig = sign_owner_nonce(&sk, owner, 5);
        verify_owner_signature(&sig, &sk.public_key(), owner, 5).expect("verifies");
        assert!(verify_owner_signature(&sig, &sk.public_key(), owner, 6).is_err());
        assert!(verify_owner_signature(&sig[..95], &sk.public_key(), owner, 5).is_err());
    }
}
