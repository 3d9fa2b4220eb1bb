//! RSA-2048 operator identities over aws-lc-rs: PKCS#1 v1.5 + SHA-256 signatures on every
//! SSV message, PKCS#1 v1.5 encryption of validator key shares to operators, and the key
//! formats of ssv-spec (private keys as PEM "RSA PRIVATE KEY" with PKCS#1 DER; public keys as
//! base64 of a PEM "RSA PUBLIC KEY" block that wraps PKIX `SubjectPublicKeyInfo` DER).
//!
//! aws-lc-rs verifies in about 16 µs with a parsed key (the pure-Rust `rsa` crate takes about
//! 200 µs), so parsed keys are kept per operator in an [`OperatorKeyCache`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use aws_lc_rs::signature::{
    KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::CryptoError;
use crate::threshold::OperatorId;

/// Length of an RSA-2048 signature.
pub const RSA_SIGNATURE_BYTES: usize = 256;
/// Longest PEM or base64 key text accepted (an RSA-4096 private key PEM is about 3.3 KB).
pub const RSA_KEY_TEXT_MAX: usize = 16 * 1024;
/// Longest ciphertext accepted by `decrypt` (one RSA-8192 block).
pub const RSA_CIPHERTEXT_MAX: usize = 1024;
/// Bound of the parsed-key cache, in operators. Too small: keys of active operators are
/// re-parsed (tens of µs each) on every message. When full, the cache is cleared.
pub const OPERATOR_KEY_CACHE_MAX: usize = 65_536;

const PEM_PUBLIC_LABEL: &str = "RSA PUBLIC KEY";
const PEM_PRIVATE_LABEL: &str = "RSA PRIVATE KEY";

/// Decodes the first PEM block; returns its label and DER body.
fn pem_decode(text: &str) -> Result<(String, Vec<u8>), CryptoError> {
    if text.len() > RSA_KEY_TEXT_MAX {
        return Err(CryptoError::InvalidRsaKey(
            "PEM text longer than RSA_KEY_TEXT_MAX",
        ));
    }
    let mut lines = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "));
    let begin = lines
        .next()
        .ok_or(CryptoError::InvalidRsaKey("no PEM BEGIN line"))?;
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(CryptoError::InvalidRsaKey("malformed PEM BEGIN line"))?;
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for l in lines {
        if l == end {
            ended = true;
            break;
        }
        if l.contains(':') {
            return Err(CryptoError::InvalidRsaKey("encrypted PEM is not supported"));
        }
        body.push_str(l);
    }
    if !ended {
        return Err(CryptoError::InvalidRsaKey("no PEM END line"));
    }
    let der = B64
        .decode(body)
        .map_err(|_| CryptoError::InvalidRsaKey("bad base64 in PEM"))?;
    Ok((label.to_string(), der))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn b64_text(text: &str) -> Result<String, CryptoError> {
    if text.len() > RSA_KEY_TEXT_MAX * 2 {
        return Err(CryptoError::InvalidRsaKey(
            "base64 text longer than the key bound",
        ));
    }
    let raw = B64
        .decode(text.trim())
        .map_err(|_| CryptoError::InvalidRsaKey("bad base64 around the PEM"))?;
    String::from_utf8(raw).map_err(|_| CryptoError::InvalidRsaKey("PEM is not UTF-8"))
}

/// Reads one DER TLV at the start of `der`: `(tag, content, rest)`.
fn der_tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Extracts the PKCS#1 `RSAPrivateKey` from a PKCS#8 `PrivateKeyInfo`.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (0x30, info, _) = der_tlv(pkcs8)? else {
        return None;
    };
    let (0x02, _version, rest) = der_tlv(info)? else {
        return None;
    };
    let (0x30, _alg, rest) = der_tlv(rest)? else {
        return None;
    };
    let (0x04, key, _) = der_tlv(rest)? else {
        return None;
    };
    Some(key.to_vec())
}

/// An operator's RSA public key, parsed once.
pub struct OperatorPublicKey {
    parsed: ParsedPublicKey,
    spki_der: Vec<u8>,
}

impl std::fmt::Debug for OperatorPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperatorPublicKey({} bytes SPKI)", self.spki_der.len())
    }
}

impl OperatorPublicKey {
    /// Parses DER: PKIX `SubjectPublicKeyInfo` or PKCS#1 `RSAPublicKey`; 2048 to 8192 bits.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|_| CryptoError::InvalidRsaKey("not an RSA public key"))?;
        let spki_der = key
            .as_der()
            .map_err(|_| CryptoError::InvalidRsaKey("cannot re-encode key"))?
            .as_ref()
            .to_vec();
        let parsed = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &spki_der)
            .map_err(|_| CryptoError::InvalidRsaKey("unsupported RSA public key size"))?;
        Ok(Self { parsed, spki_der })
    }

    /// Parses a PEM block ("RSA PUBLIC KEY" or "PUBLIC KEY"; either DER layout inside).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        let (label, der) = pem_decode(pem)?;
        if label != PEM_PUBLIC_LABEL && label != "PUBLIC KEY" {
            return Err(CryptoError::InvalidRsaKey("PEM label is not a public key"));
        }
        Self::from_der(&der)
    }

    /// Parses the ssv-spec / registry format: base64 of the PEM text.
    pub fn from_base64_pem(text: &str) -> Result<Self, CryptoError> {
        Self::from_pem(&b64_text(text)?)
    }

    /// PEM "RSA PUBLIC KEY" wrapping PKIX DER, as the Go node writes it.
    pub fn to_pem(&self) -> String {
        pem_encode(PEM_PUBLIC_LABEL, &self.spki_der)
    }

    /// Base64 of [`Self::to_pem`]: the registry format.
    pub fn to_base64_pem(&self) -> String {
        B64.encode(self.to_pem())
    }

    /// PKIX `SubjectPublicKeyInfo` DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature over `msg`.
    pub fn verify(&self, msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        self.parsed
            .verify_sig(msg, signature)
            .map_err(|_| CryptoError::RsaVerificationFailed)
    }

    /// Encrypts with PKCS#1 v1.5 padding (how key shares are delivered to operators).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = PublicEncryptingKey::from_der(&self.spki_der)
            .map_err(|_| CryptoError::Rsa("encryption key setup"))?;
        let key = Pkcs1PublicEncryptingKey::new(key)
            .map_err(|_| CryptoError::Rsa("encryption key setup"))?;
        if plaintext.len() > key.max_plaintext_size() {
            return Err(CryptoError::Rsa("encryption (plaintext too long)"));
        }
        let mut out = vec![0u8; key.ciphertext_size()];
        let n = key
            .encrypt(plaintext, &mut out)
            .map_err(|_| CryptoError::Rsa("encryption"))?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

/// An operator's RSA private key: signs messages and decrypts key shares.
pub struct OperatorSecretKey {
    keypair: KeyPair,
    decrypting: Pkcs1PrivateDecryptingKey,
    public: OperatorPublicKey,
}

impl std::fmt::Debug for OperatorSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorSecretKey(..)")
    }
}

impl OperatorSecretKey {
    /// Generates a new RSA-2048 key.
    pub fn generate() -> Result<Self, CryptoError> {
        let keypair =
            KeyPair::generate(KeySize::Rsa2048).map_err(|_| CryptoError::Rsa("key generation"))?;
        Self::from_keypair(keypair)
    }

    fn from_keypair(keypair: KeyPair) -> Result<Self, CryptoError> {
        let pkcs8 = keypair
            .as_der()
            .map_err(|_| CryptoError::Rsa("key export"))?;
        let decrypting = PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| CryptoError::InvalidRsaKey("key unusable for decryption"))
            .and_then(|k| {
                Pkcs1PrivateDecryptingKey::new(k)
                    .map_err(|_| CryptoError::InvalidRsaKey("key unusable for PKCS#1 decryption"))
            })?;
        let spki = keypair
            .public_key()
            .as_der()
            .map_err(|_| CryptoError::Rsa("public key export"))?;
        let public = OperatorPublicKey::from_der(spki.as_ref())?;
        Ok(Self {
            keypair,
            decrypting,
            public,
        })
    }

    /// Parses DER: PKCS#1 `RSAPrivateKey`, or PKCS#8.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        let keypair = KeyPair::from_der(der)
            .or_else(|_| KeyPair::from_pkcs8(der))
            .map_err(|_| CryptoError::InvalidRsaKey("not an RSA private key of 2048..8192 bits"))?;
        Self::from_keypair(keypair)
    }

    /// Parses PEM: "RSA PRIVATE KEY" (PKCS#1) or "PRIVATE KEY" (PKCS#8).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        let (label, der) = pem_decode(pem)?;
        if label != PEM_PRIVATE_LABEL && label != "PRIVATE KEY" {
            return Err(CryptoError::InvalidRsaKey("PEM label is not a private key"));
        }
        Self::from_der(&der)
    }

    /// Parses base64 of the PEM text (ssv-spec `SKPem`).
    pub fn from_base64_pem(text: &str) -> Result<Self, CryptoError> {
        Self::from_pem(&b64_text(text)?)
    }

    /// Parses hex of the PEM text (ssv-spec `OperatorKeys`); hex of bare DER also works.
    pub fn from_hex_pem(text: &str) -> Result<Self, CryptoError> {
        if text.len() > RSA_KEY_TEXT_MAX * 2 {
            return Err(CryptoError::InvalidRsaKey(
                "hex text longer than the key bound",
            ));
        }
        let raw = hex::decode(text.trim().trim_start_matches("0x"))
            .map_err(|_| CryptoError::InvalidRsaKey("bad hex"))?;
        match std::str::from_utf8(&raw) {
            Ok(pem) if pem.contains("-----BEGIN ") => Self::from_pem(pem),
            _ => Self::from_der(&raw),
        }
    }

    /// PEM "RSA PRIVATE KEY" with PKCS#1 DER, as the Go node writes it.
    pub fn to_pem(&self) -> Result<String, CryptoError> {
        let pkcs8 = self
            .keypair
            .as_der()
            .map_err(|_| CryptoError::Rsa("key export"))?;
        let pkcs1 =
            pkcs1_from_pkcs8(pkcs8.as_ref()).ok_or(CryptoError::Rsa("PKCS#8 unwrapping"))?;
        Ok(pem_encode(PEM_PRIVATE_LABEL, &pkcs1))
    }

    /// The public half.
    pub fn public_key(&self) -> &OperatorPublicKey {
        &self.public
    }

    /// Signs `msg` with RSASSA-PKCS1-v1_5 and SHA-256 (deterministic).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut sig = vec![0u8; self.keypair.public_modulus_len()];
        self.keypair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut sig)
            .map_err(|_| CryptoError::Rsa("signing"))?;
        Ok(sig)
    }

    /// Decrypts a PKCS#1 v1.5 ciphertext (an encrypted key share).
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if ciphertext.len() > RSA_CIPHERTEXT_MAX {
            return Err(CryptoError::Rsa("decryption (ciphertext too long)"));
        }
        let mut out = vec![0u8; self.decrypting.min_output_size()];
        let n = self
            .decrypting
            .decrypt(ciphertext, &mut out)
            .map_err(|_| CryptoError::Rsa("decryption"))?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

/// Parsed operator public keys by operator ID, shared by all shards. Bounded by
/// [`OPERATOR_KEY_CACHE_MAX`].
#[derive(Default)]
pub struct OperatorKeyCache {
    map: RwLock<HashMap<OperatorId, Arc<OperatorPublicKey>>>,
}

impl OperatorKeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached key of `id`, if any.
    pub fn get(&self, id: OperatorId) -> Option<Arc<OperatorPublicKey>> {
        self.read().get(&id).cloned()
    }

    /// The key of `id`, parsed from the registry's base64 PEM on first use.
    pub fn get_or_parse(
        &self,
        id: OperatorId,
        base64_pem: &str,
    ) -> Result<Arc<OperatorPublicKey>, CryptoError> {
        if let Some(k) = self.get(id) {
            return Ok(k);
        }
        let key = Arc::new(OperatorPublicKey::from_base64_pem(base64_pem)?);
        self.insert(id, Arc::clone(&key));
        Ok(key)
    }

    /// Stores (or replaces) the key of `id`.
    pub fn insert(&self, id: OperatorId, key: Arc<OperatorPublicKey>) {
        let mut map = self.write();
        if map.len() >= OPERATOR_KEY_CACHE_MAX && !map.contains_key(&id) {
            map.clear();
        }
        map.insert(id, key);
    }

    /// Forgets the key of `id` (operator removed or key rotated).
    pub fn remove(&self, id: OperatorId) {
        self.write().remove(&id);
    }

    /// Verifies `signature` over `msg` with the cached key of `id`.
    pub fn verify(&self, id: OperatorId, msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let key = self
            .get(id)
            .ok_or(CryptoError::InvalidRsaKey("unknown operator"))?;
        key.verify(msg, signature)
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<OperatorId, Arc<OperatorPublicKey>>> {
        // Inserts, removes and clears are single calls: a poisoned map is still consistent.
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<OperatorId, Arc<OperatorPublicKey>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_and_der_parsing_rejects_garbage() {
        assert!(OperatorPublicKey::from_pem("hello").is_err());
        assert!(OperatorPublicKey::from_base64_pem("!!!").is_err());
        assert!(OperatorPublicKey::from_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(OperatorSecretKey::from_hex_pem("zz").is_err());
        assert!(OperatorSecretKey::from_pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n").is_err());
        assert!(der_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
    }

    #[test]
    fn generated_key_roundtrips_through_pem_signs_and_decrypts() {
        let sk = OperatorSecretKey::generate().expect("keygen");
        let pem = sk.to_pem().expect("pem");
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let sk2 = OperatorSecretKey::from_pem(&pem).expect("reparse");
        let pk = OperatorPublicKey::from_base64_pem(&sk.public_key().to_base64_pem())
            .expect("public roundtrip");
        let msg = b"ssv message";
        let sig = sk.sign(msg).expect("sign");
        assert_eq!(sig.len(), RSA_SIGNATURE_BYTES);
        // PKCS#1 v1.5 is deterministic: the reparsed key gives the same bytes.
        assert_eq!(sk2.sign(msg).expect("sign"), sig);
        pk.verify(msg, &sig).expect("verify");
        assert_eq!(
            pk.verify(b"other", &sig),
            Err(CryptoError::RsaVerificationFailed)
        );
        let ct = pk.encrypt(b"share secret").expect("encrypt");
        assert_eq!(sk2.decrypt(&ct).expect("decrypt"), b"share secret");
        let mut bad = ct.clone();
        bad[10] ^= 1;
        assert!(
            sk.decrypt(&bad).is_err() || sk.decrypt(&bad).ok() != Some(b"share secret".to_vec())
        );

        let cache = OperatorKeyCache::new();
        let k = cache
            .get_or_parse(7, &sk.public_key().to_base64_pem())
            .expect("cache");
        assert_eq!(k.spki_der(), pk.spki_der());
        cache.verify(7, msg, &sig).expect("cached verify");
        assert!(cache.verify(8, msg, &sig).is_err());
        assert_eq!(cache.len(), 1);
    }
}
