//! BLS12-381 signatures as Ethereum uses them: min-pk (48-byte public keys in G1, 96-byte
//! signatures in G2), hash-to-curve with the proof-of-possession DST, over blst.
//!
//! Pipeline stages are types. A [`PublicKey`] is always fully validated (on the curve, in the
//! subgroup, not infinity): keys are registered once and reused, so the check is paid once.
//! A [`Signature`] is decompressed (and so on the curve) when it arrives; its subgroup check is
//! part of every verification path in this crate and is never skipped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use blst::{
    BLST_ERROR, blst_hash_to_g2, blst_p1_affine, blst_p2, blst_p2_affine, blst_p2_affine_in_g2,
    blst_p2_to_affine, blst_scalar, blst_sign_pk_in_g1, min_pk,
};

use crate::error::CryptoError;

/// Domain separation tag of Ethereum's BLS signatures (proof-of-possession scheme, G2).
pub const ETH_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A 32-byte signing root (the SSZ hash-tree-root of the signed object and its domain).
pub type SigningRoot = [u8; 32];

/// Length of a compressed BLS public key.
pub const PUBLIC_KEY_BYTES: usize = 48;
/// Length of a compressed BLS signature.
pub const SIGNATURE_BYTES: usize = 96;
/// Length of a BLS secret key (big-endian scalar).
pub const SECRET_KEY_BYTES: usize = 32;

/// Bound of the hash-to-G2 cache. Each entry is one signing root (about 300 bytes). Too small:
/// roots of one slot get evicted while validators still sign them and each re-hash costs about
/// 0.2 ms. When full, the whole cache is cleared (roots of past slots are dead anyway).
pub const HASH_CACHE_MAX: usize = 4096;

fn blst_err(e: BLST_ERROR) -> &'static str {
    match e {
        BLST_ERROR::BLST_SUCCESS => "success",
        BLST_ERROR::BLST_BAD_ENCODING => "bad encoding",
        BLST_ERROR::BLST_POINT_NOT_ON_CURVE => "point not on curve",
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => "point not in subgroup",
        BLST_ERROR::BLST_AGGR_TYPE_MISMATCH => "aggregate type mismatch",
        BLST_ERROR::BLST_VERIFY_FAIL => "verification failed",
        BLST_ERROR::BLST_PK_IS_INFINITY => "point at infinity",
        BLST_ERROR::BLST_BAD_SCALAR => "bad scalar",
    }
}

/// A BLS secret key (a nonzero scalar). Debug output never shows the key.
#[derive(Clone)]
pub struct SecretKey(pub(crate) min_pk::SecretKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Parses a 32-byte big-endian scalar; rejects zero and values at or above the group order.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        min_pk::SecretKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| CryptoError::InvalidSecretKey)
    }

    /// Generates a key from 32 bytes of input key material (EIP-2333 `KeyGen`).
    pub fn from_ikm(ikm: &[u8; 32]) -> Self {
        Self(
            min_pk::SecretKey::key_gen(ikm, &[])
                .expect("32 bytes of IKM is the documented minimum"),
        )
    }

    /// Generates a random key.
    pub fn random<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> Self {
        let mut ikm = [0u8; 32];
        rng.fill_bytes(&mut ikm);
        Self::from_ikm(&ikm)
    }

    /// The 32-byte big-endian encoding.
    pub fn to_bytes(&self) -> [u8; SECRET_KEY_BYTES] {
        self.0.to_bytes()
    }

    /// The public key `[sk]G1`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.sk_to_pk())
    }

    /// Signs a signing root: hash to G2, then one scalar multiplication.
    pub fn sign(&self, root: &SigningRoot) -> Signature {
        Signature(self.0.sign(root, ETH_DST, &[]))
    }

    /// Signs with a pre-computed hash of the signing root (see [`HashToG2Cache`]): one scalar
    /// multiplication, no hashing.
    pub fn sign_hashed(&self, hash: &HashedRoot) -> Signature {
        let scalar: &blst_scalar = (&self.0).into();
        let mut out = blst_p2::default();
        let mut aff = blst_p2_affine::default();
        // SAFETY: all pointers are to live, initialised values of the types blst expects;
        // `out` and `aff` are distinct locals written only by blst.
        unsafe {
            blst_sign_pk_in_g1(&mut out, &hash.point, scalar);
            blst_p2_to_affine(&mut aff, &out);
        }
        Signature(aff.into())
    }

    pub(crate) fn scalar(&self) -> &blst_scalar {
        (&self.0).into()
    }
}

/// A validated BLS public key: on the curve, in the G1 subgroup, not infinity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) min_pk::PublicKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.to_bytes()))
    }
}

impl PublicKey {
    /// Decompresses and fully validates 48 bytes (curve, subgroup, infinity). Costs about
    /// 60 µs: do it once per key, when the key is registered, and keep the result.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != PUBLIC_KEY_BYTES {
            return Err(CryptoError::InvalidPublicKey("length is not 48 bytes"));
        }
        min_pk::PublicKey::key_validate(bytes)
            .map(Self)
            .map_err(|e| CryptoError::InvalidPublicKey(blst_err(e)))
    }

    /// The 48-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_BYTES] {
        self.0.to_bytes()
    }

    pub(crate) fn affine(&self) -> &blst_p1_affine {
        (&self.0).into()
    }

    pub(crate) fn from_affine_unchecked(p: blst_p1_affine) -> Self {
        Self(p.into())
    }
}

/// A BLS signature that decompressed to a point on the G2 curve. Subgroup membership is not
/// yet known: every verification in this crate checks it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub(crate) min_pk::Signature);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", hex::encode(self.to_bytes()))
    }
}

impl Signature {
    /// Decompresses 96 bytes (about 30 µs): the point must be on the curve. Do it when the
    /// message arrives, so malformed signatures are rejected before any other work.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != SIGNATURE_BYTES {
            return Err(CryptoError::InvalidSignatureEncoding(
                "length is not 96 bytes",
            ));
        }
        min_pk::Signature::from_bytes(bytes)
            .map(Self)
            .map_err(|e| CryptoError::InvalidSignatureEncoding(blst_err(e)))
    }

    /// The 96-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_BYTES] {
        self.0.to_bytes()
    }

    /// Whether the point is in the prime-order G2 subgroup (about 50 µs).
    pub fn in_subgroup(&self) -> bool {
        // SAFETY: `affine()` points to a live, initialised `blst_p2_affine`.
        unsafe { blst_p2_affine_in_g2(self.affine()) }
    }

    /// Verifies this signature alone: subgroup check, hash to G2, two Miller loops and a final
    /// exponentiation. About 1.1 ms; prefer the batch paths for anything hot.
    pub fn verify(&self, pk: &PublicKey, root: &SigningRoot) -> Result<(), CryptoError> {
        match self.0.verify(true, root, ETH_DST, &[], &pk.0, false) {
            BLST_ERROR::BLST_SUCCESS => Ok(()),
            BLST_ERROR::BLST_POINT_NOT_IN_GROUP => Err(CryptoError::SignatureNotInSubgroup),
            _ => Err(CryptoError::VerificationFailed),
        }
    }

    pub(crate) fn affine(&self) -> &blst_p2_affine {
        (&self.0).into()
    }

    pub(crate) fn from_affine(p: blst_p2_affine) -> Self {
        Self(p.into())
    }
}

/// A signing root hashed to G2, ready for [`SecretKey::sign_hashed`].
#[derive(Clone, Copy)]
pub struct HashedRoot {
    point: blst_p2,
    affine: blst_p2_affine,
}

impl HashedRoot {
    /// Hashes a signing root to G2 with the Ethereum DST (about 0.2 ms).
    pub fn new(root: &SigningRoot) -> Self {
        let mut point = blst_p2::default();
        // SAFETY: `point` is a live local; message and DST are valid slices whose lengths are
        // passed with them; the augmentation is empty (null pointer, zero length is allowed).
        unsafe {
            blst_hash_to_g2(
                &mut point,
                root.as_ptr(),
                root.len(),
                ETH_DST.as_ptr(),
                ETH_DST.len(),
                std::ptr::null(),
                0,
            );
        }
        let mut affine = blst_p2_affine::default();
        // SAFETY: both pointers refer to live, initialised locals.
        unsafe { blst_p2_to_affine(&mut affine, &point) };
        Self { point, affine }
    }

    /// The hashed point in affine coordinates (for pairings).
    pub(crate) fn affine(&self) -> &blst_p2_affine {
        &self.affine
    }
}

/// Cache of hash-to-G2 per signing root. Since Electra every attestation of a slot signs the
/// same root, so one hash serves every validator of the slot. Thread-safe; bounded by
/// [`HASH_CACHE_MAX`].
#[derive(Default)]
pub struct HashToG2Cache {
    map: Mutex<HashMap<SigningRoot, Arc<HashedRoot>>>,
}

impl HashToG2Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hash of `root`, computed on first use.
    pub fn get(&self, root: &SigningRoot) -> Arc<HashedRoot> {
        if let Some(h) = self.lock().get(root) {
            return Arc::clone(h);
        }
        // Hash outside the lock: two threads may both hash a new root once; both results are
        // identical, so whichever lands last is fine.
        let hashed = Arc::new(HashedRoot::new(root));
        let mut map = self.lock();
        if map.len() >= HASH_CACHE_MAX {
            map.clear();
        }
        map.insert(*root, Arc::clone(&hashed));
        hashed
    }

    /// Signs `root` with `sk`, hashing the root at most once across calls.
    pub fn sign(&self, sk: &SecretKey, root: &SigningRoot) -> Signature {
        sk.sign_hashed(&self.get(root))
    }

    /// Number of cached roots.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SigningRoot, Arc<HashedRoot>>> {
        // A panic while holding this lock cannot leave the map inconsistent (inserts and
        // clears are single calls), so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How blst was compiled, decided by blst's build script from the build host.
const BLST_BUILD_MODE: &str = env!("SSV_BLST_BUILD_MODE");

/// Which blst arithmetic path this binary runs, e.g.
/// `"x86_64 adx: mulx/adcx/adox assembly compiled in (cpu adx=true)"`.
///
/// blst's build script compiles the ADX assembly in (`__ADX__`) when the build host has ADX or
/// `-C target-cpu` enables it; otherwise its x86_64 assembly picks the path at run time from
/// CPUID; the `portable` feature disables ISA extensions. Our build script mirrors that
/// decision (see `build.rs`), and the CPU's features are checked here at run time.
pub fn cpu_path() -> String {
    #[cfg(target_arch = "x86_64")]
    let (adx, avx2) = (
        std::is_x86_feature_detected!("adx"),
        std::is_x86_feature_detected!("avx2"),
    );
    #[cfg(not(target_arch = "x86_64"))]
    let (adx, avx2) = (false, false);
    let path = match BLST_BUILD_MODE {
        "adx" => "x86_64 adx: mulx/adcx/adox assembly compiled in",
        "runtime" if adx => "x86_64 adx: assembly chosen at run time from CPUID",
        "runtime" => "x86_64 mulq: assembly without ADX (chosen at run time from CPUID)",
        "portable" => "portable: assembly without ISA extensions",
        _ => "generic assembly for this architecture",
    };
    format!("{path} (cpu adx={adx} avx2={avx2})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sign_verify_roundtrip_and_encodings() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let sk = SecretKey::random(&mut rng);
        let pk = sk.public_key();
        let root = [7u8; 32];
        let sig = sk.sign(&root);
        sig.verify(&pk, &root).expect("valid signature");
        assert_eq!(
            sig.verify(&pk, &[8u8; 32]),
            Err(CryptoError::VerificationFailed)
        );
        let pk2 = PublicKey::from_bytes(&pk.to_bytes()).expect("roundtrip");
        assert_eq!(pk, pk2);
        let sig2 = Signature::from_bytes(&sig.to_bytes()).expect("roundtrip");
        assert_eq!(sig, sig2);
        let sk2 = SecretKey::from_bytes(&sk.to_bytes()).expect("roundtrip");
        assert_eq!(sk2.public_key(), pk);
        // The cached-hash path gives the same bytes as the plain path.
        let cache = HashToG2Cache::new();
        assert_eq!(cache.sign(&sk, &root), sig);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn bad_encodings_are_typed_errors() {
        assert!(matches!(
            PublicKey::from_bytes(&[0u8; 47]),
            Err(CryptoError::InvalidPublicKey(_))
        ));
        assert!(matches!(
            PublicKey::from_bytes(&[0xffu8; 48]),
            Err(CryptoError::InvalidPublicKey(_))
        ));
        assert!(matches!(
            Signature::from_bytes(&[0xffu8; 96]),
            Err(CryptoError::InvalidSignatureEncoding(_))
        ));
        assert!(matches!(
            Signature::from_bytes(&[0u8; 95]),
            Err(CryptoError::InvalidSignatureEncoding(_))
        ));
        assert_eq!(
            SecretKey::from_bytes(&[0u8; 32]).err(),
            Some(CryptoError::InvalidSecretKey)
        );
        // Infinity public key: compressed encoding 0xc0 followed by zeros.
        let mut inf = [0u8; 48];
        inf[0] = 0xc0;
        assert!(PublicKey::from_bytes(&inf).is_err());
    }

    #[test]
    fn cpu_path_names_a_path() {
        let p = cpu_path();
        assert!(p.contains("cpu adx="), "{p}");
    }
}
