//! Operator RSA keys of the spec fixtures, for the vector runner only.
//!
//! The node's RSA (with its parsed-key cache) lives in `ssv-crypto-pipeline`, which depends on
//! this crate; the runner cannot use it without a dependency cycle, so it carries this small
//! aws-lc-rs wrapper. Signatures are PKCS#1 v1.5 over sha256 and so deterministic: both
//! produce the same bytes.

use aws_lc_rs::rsa::{
    Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};

/// Extracts the DER body of a PEM block (any label).
pub fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).map_err(|e| format!("pem: {e}"))?;
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("pem base64: {e}"))
}

/// `AlgorithmIdentifier { rsaEncryption, NULL }`.
const RSA_ALG: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// `tag ‖ len ‖ body`.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// Wraps a PKCS#1 `RSAPrivateKey` DER in a PKCS#8 `PrivateKeyInfo`.
fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x02, 0x01, 0x00];
    inner.extend_from_slice(&RSA_ALG);
    inner.extend_from_slice(&der(0x04, pkcs1));
    der(0x30, &inner)
}

/// Wraps a PKCS#1 `RSAPublicKey` DER in a PKIX `SubjectPublicKeyInfo` (what Go's
/// `x509.MarshalPKIXPublicKey` writes, and what ssv-spec puts in its PEM blocks).
pub fn pkcs1_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut bits = vec![0x00];
    bits.extend_from_slice(pkcs1);
    let mut inner = RSA_ALG.to_vec();
    inner.extend_from_slice(&der(0x03, &bits));
    der(0x30, &inner)
}

/// An operator private key of the fixtures.
pub struct OperatorKey {
    pair: RsaKeyPair,
    pkcs8: Vec<u8>,
}

impl OperatorKey {
    /// Parses a PEM "RSA PRIVATE KEY" (PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let der = pem_to_der(pem)?;
        let pair = RsaKeyPair::from_der(&der).map_err(|e| format!("rsa key: {e}"))?;
        Ok(OperatorKey {
            pair,
            pkcs8: pkcs1_to_pkcs8(&der),
        })
    }

    /// PKCS#1 v1.5 signature over sha256(`msg`).
    pub fn sign(&self, msg: &[u8]) -> Result<[u8; 256], String> {
        let mut sig = [0u8; 256];
        if self.pair.public_modulus_len() != 256 {
            return Err("not an RSA-2048 key".into());
        }
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                msg,
                &mut sig,
            )
            .map_err(|e| format!("rsa sign: {e}"))?;
        Ok(sig)
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER.
    pub fn public_der(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// PKCS#1 v1.5 decryption.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, String> {
        let key = PrivateDecryptingKey::from_pkcs8(&self.pkcs8).map_err(|e| format!("{e}"))?;
        let key = Pkcs1PrivateDecryptingKey::new(key).map_err(|e| format!("{e}"))?;
        let mut out = vec![0u8; key.min_output_size()];
        let n = key
            .decrypt(ciphertext, &mut out)
            .map_err(|e| format!("decrypt: {e}"))?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

/// Parses a public key given as PEM (PKIX or PKCS#1 DER inside) and returns its PKIX DER.
pub fn public_key_der_from_pem(pem: &[u8]) -> Result<Vec<u8>, String> {
    pem_to_der(pem)
}

/// Verifies a PKCS#1 v1.5 / sha256 signature with a public key in DER (PKIX or PKCS#1).
pub fn verify(public_der: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_der)
        .verify(msg, sig)
        .is_ok()
}

/// PKCS#1 v1.5 encryption with a public key in PKIX DER.
pub fn encrypt(public_der: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let key = PublicEncryptingKey::from_der(public_der).map_err(|e| format!("public key: {e}"))?;
    let key = Pkcs1PublicEncryptingKey::new(key).map_err(|e| format!("{e}"))?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let n = key
        .encrypt(plaintext, &mut out)
        .map_err(|e| format!("encrypt: {e}"))?
        .len();
    out.truncate(n);
    Ok(out)
}
