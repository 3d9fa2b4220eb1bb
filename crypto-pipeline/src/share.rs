//! A validator key share as an operator receives it: RSA PKCS#1 v1.5 encrypted to the
//! operator's key (the `ValidatorAdded` event's `shares` payload carries one per operator),
//! with the plaintext being the share's secret key as hex text (`0x` optional, as ssv-keys
//! writes it and the Go node accepts it).
//!
//! Both contract sync (checking a new event) and the node's start-up (loading stored shares)
//! decrypt with [`decrypt_share`]; the devnet and tests encrypt [`share_plaintext`].

use crate::{OperatorSecretKey, SecretKey};

/// Longest decrypted plaintext accepted (64 hex digits, a `0x` prefix and some whitespace).
pub const SHARE_PLAINTEXT_MAX: usize = 80;

/// Why an encrypted share was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// The RSA decryption failed or the plaintext is not a secret key.
    #[error("share decryption failed: {0}")]
    Decryption(String),
    /// The decrypted share's public key is not the one it was registered with.
    #[error("decrypted share does not match its share public key")]
    KeyMismatch,
}

/// The plaintext an operator's share is encrypted as: `0x` and the 64 hex digits of the
/// secret key (what ssv-keys produces; the Go node accepts it with or without `0x`).
pub fn share_plaintext(share: &SecretKey) -> String {
    format!("0x{}", hex::encode(share.to_bytes()))
}

/// Parses a decrypted share plaintext (hex secret key, `0x` optional, up to 64 digits,
/// left-padded as a big-endian scalar).
pub fn parse_share_plaintext(plaintext: &[u8]) -> Result<SecretKey, ShareError> {
    if plaintext.len() > SHARE_PLAINTEXT_MAX {
        return Err(ShareError::Decryption(format!(
            "plaintext of {} bytes",
            plaintext.len()
        )));
    }
    let text = std::str::from_utf8(plaintext)
        .map_err(|_| ShareError::Decryption("plaintext is not text".into()))?
        .trim();
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.is_empty() || digits.len() > 64 {
        return Err(ShareError::Decryption(format!(
            "{} hex digits, expected 1..=64",
            digits.len()
        )));
    }
    let padded = format!("{digits:0>64}");
    let bytes =
        hex::decode(padded).map_err(|_| ShareError::Decryption("plaintext is not hex".into()))?;
    SecretKey::from_bytes(&bytes).map_err(|e| ShareError::Decryption(e.to_string()))
}

/// Decrypts our share and checks it against its share public key.
pub fn decrypt_share(
    key: &OperatorSecretKey,
    encrypted: &[u8],
    share_pubkey: &[u8],
) -> Result<SecretKey, ShareError> {
    let plaintext = key
        .decrypt(encrypted)
        .map_err(|e| ShareError::Decryption(e.to_string()))?;
    let secret = parse_share_plaintext(&plaintext)?;
    if secret.public_key().to_bytes().as_slice() != share_pubkey {
        return Err(ShareError::KeyMismatch);
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_round_trip_and_mismatch() {
        let key = OperatorSecretKey::generate().expect("rsa key");
        let share = SecretKey::from_ikm(&[3u8; 32]);
        let other = SecretKey::from_ikm(&[4u8; 32]);
        let enc = key
            .public_key()
            .encrypt(share_plaintext(&share).as_bytes())
            .expect("encrypt");
        assert_eq!(enc.len(), 256);
        let got = decrypt_share(&key, &enc, &share.public_key().to_bytes()).expect("decrypts");
        assert_eq!(got.to_bytes(), share.to_bytes());
        assert_eq!(
            decrypt_share(&key, &enc, &other.public_key().to_bytes()).map(|_| ()),
            Err(ShareError::KeyMismatch)
        );
        let mut corrupt = enc.clone();
        corrupt[10] ^= 1;
        assert!(matches!(
            decrypt_share(&key, &corrupt, &share.public_key().to_bytes()),
            Err(ShareError::Decryption(_))
        ));
        // Without the prefix, and shorter than 64 digits, as herumi's SetHexString accepts.
        let bare = hex::encode(share.to_bytes());
        assert_eq!(
            parse_share_plaintext(bare.as_bytes())
                .expect("bare hex")
                .to_bytes(),
            share.to_bytes()
        );
        assert!(parse_share_plaintext(b"0x").is_err());
        assert!(parse_share_plaintext(b"zz").is_err());
        assert!(parse_share_plaintext(&[b'1'; 100]).is_err());
    }
}
