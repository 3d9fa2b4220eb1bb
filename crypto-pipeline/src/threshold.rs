//! Threshold BLS as SSV uses it: a validator key is split with Shamir's scheme over the BLS
//! scalar field, share `i` is the polynomial evaluated at the operator ID, and any `t`
//! partial signatures over one root combine into the validator signature by Lagrange
//! interpolation at zero.
//!
//! Lagrange coefficients depend only on the signer set, so they are cached per set
//! ([`LagrangeCache`]). The combination is a multi-scalar multiplication in G2. Coefficients
//! and partial signatures are public, so it runs a variable-time method: the GLS endomorphism
//! splits each 255-bit coefficient into four 64-bit digits and all `4t` products share their
//! doublings (see `gls.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use blst::{
    MultiPoint, blst_fr, blst_fr_add, blst_fr_from_scalar, blst_fr_from_uint64, blst_fr_inverse,
    blst_fr_mul, blst_fr_sub, blst_p1_affine, blst_p1_to_affine, blst_p2_affine, blst_p2_to_affine,
    blst_scalar, blst_scalar_from_be_bytes, blst_scalar_from_fr, min_pk,
};

use crate::bls::{PublicKey, SecretKey, Signature};
use crate::error::CryptoError;
use crate::gls;

/// An SSV operator ID. It is also the x coordinate of the operator's share.
pub type OperatorId = u64;

/// Most shares one key may be split into. SSV committees have 4 to 13 operators; the bound
/// keeps Lagrange work (quadratic in the set size) and cache entries small.
pub const SHARES_MAX: usize = 64;

/// Bound of the Lagrange coefficient cache, in signer sets. A committee of n operators with
/// quorum t has C(n, t) possible sets (4 for n = 4), so a node sees a few per committee. Too
/// small: coefficients are recomputed (t inversions, a few µs) on every reconstruction. When
/// full, the cache is cleared.
pub const LAGRANGE_CACHE_MAX: usize = 16_384;

/// Number of scalar bits used by the reconstruction's multi-scalar multiplication.
const SCALAR_BITS: usize = 255;

fn fr_from_u64(x: u64) -> blst_fr {
    let mut out = blst_fr::default();
    let limbs = [x, 0, 0, 0];
    // SAFETY: `limbs` is the four-limb little-endian integer blst reads; `out` is a live local.
    unsafe { blst_fr_from_uint64(&mut out, limbs.as_ptr()) };
    out
}

fn fr_from_scalar(s: &blst_scalar) -> blst_fr {
    let mut out = blst_fr::default();
    // SAFETY: both pointers refer to live, initialised values.
    unsafe { blst_fr_from_scalar(&mut out, s) };
    out
}

fn scalar_from_fr(f: &blst_fr) -> blst_scalar {
    let mut out = blst_scalar::default();
    // SAFETY: both pointers refer to live, initialised values.
    unsafe { blst_scalar_from_fr(&mut out, f) };
    out
}

fn fr_add(a: &blst_fr, b: &blst_fr) -> blst_fr {
    let mut out = blst_fr::default();
    // SAFETY: all pointers refer to live, initialised values; blst allows any aliasing here.
    unsafe { blst_fr_add(&mut out, a, b) };
    out
}

fn fr_sub(a: &blst_fr, b: &blst_fr) -> blst_fr {
    let mut out = blst_fr::default();
    // SAFETY: as in `fr_add`.
    unsafe { blst_fr_sub(&mut out, a, b) };
    out
}

fn fr_mul(a: &blst_fr, b: &blst_fr) -> blst_fr {
    let mut out = blst_fr::default();
    // SAFETY: as in `fr_add`.
    unsafe { blst_fr_mul(&mut out, a, b) };
    out
}

fn fr_inverse(a: &blst_fr) -> blst_fr {
    let mut out = blst_fr::default();
    // SAFETY: as in `fr_add`.
    unsafe { blst_fr_inverse(&mut out, a) };
    out
}

fn fr_is_zero(a: &blst_fr) -> bool {
    a.l.iter().all(|&l| l == 0)
}

fn random_fr<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> blst_fr {
    // 48 random bytes reduced modulo r: the bias is below 2^-128.
    let mut bytes = [0u8; 48];
    rng.fill_bytes(&mut bytes);
    let mut s = blst_scalar::default();
    // SAFETY: `bytes` is a live buffer of the length passed; `s` is a live local.
    unsafe { blst_scalar_from_be_bytes(&mut s, bytes.as_ptr(), bytes.len()) };
    fr_from_scalar(&s)
}

fn secret_key_from_fr(f: &blst_fr) -> Result<SecretKey, CryptoError> {
    let s = scalar_from_fr(f);
    let mut be = s.b;
    be.reverse();
    SecretKey::from_bytes(&be)
}

/// Checks that IDs are nonzero and distinct and that there are 1..=SHARES_MAX of them.
fn check_ids(ids: &[OperatorId]) -> Result<(), CryptoError> {
    if ids.is_empty() {
        return Err(CryptoError::InvalidOperatorIds("empty set"));
    }
    if ids.len() > SHARES_MAX {
        return Err(CryptoError::InvalidOperatorIds(
            "more than SHARES_MAX operators",
        ));
    }
    if ids.contains(&0) {
        return Err(CryptoError::InvalidOperatorIds(
            "operator ID 0 is not a valid share index",
        ));
    }
    for (i, a) in ids.iter().enumerate() {
        if ids[i + 1..].contains(a) {
            return Err(CryptoError::InvalidOperatorIds("duplicate operator ID"));
        }
    }
    Ok(())
}

/// Splits `sk` into one share per operator ID with reconstruction threshold `threshold`: the
/// shares are `f(id)` for a random polynomial `f` of degree `threshold - 1` with `f(0) = sk`.
pub fn split_secret_key<R: rand::RngCore + rand::CryptoRng>(
    sk: &SecretKey,
    threshold: usize,
    operator_ids: &[OperatorId],
    rng: &mut R,
) -> Result<Vec<(OperatorId, SecretKey)>, CryptoError> {
    check_ids(operator_ids)?;
    if threshold == 0 {
        return Err(CryptoError::InvalidThreshold("threshold is zero"));
    }
    if threshold > operator_ids.len() {
        return Err(CryptoError::InvalidThreshold(
            "threshold above the share count",
        ));
    }
    // A share that happens to be zero is not a valid secret key; the chance is 2^-255 per
    // share, so a couple of retries is more than enough.
    const SPLIT_ATTEMPTS_MAX: usize = 4;
    for _ in 0..SPLIT_ATTEMPTS_MAX {
        let mut coeffs = Vec::with_capacity(threshold);
        coeffs.push(fr_from_scalar(sk.scalar()));
        for _ in 1..threshold {
            coeffs.push(random_fr(rng));
        }
        let shares: Vec<blst_fr> = operator_ids
            .iter()
            .map(|&id| {
                let x = fr_from_u64(id);
                // Horner's rule from the top coefficient down.
                let mut acc = coeffs[threshold - 1];
                for c in coeffs[..threshold - 1].iter().rev() {
                    acc = fr_add(&fr_mul(&acc, &x), c);
                }
                acc
            })
            .collect();
        if shares.iter().any(fr_is_zero) {
            continue;
        }
        return operator_ids
            .iter()
            .zip(&shares)
            .map(|(&id, f)| Ok((id, secret_key_from_fr(f)?)))
            .collect();
    }
    Err(CryptoError::InvalidSecretKey)
}

/// Lagrange coefficients at zero for the signer set `ids` (in that order):
/// `λ_i = Π_{j≠i} x_j / (x_j − x_i)`.
fn lagrange_coefficients(ids: &[OperatorId]) -> Result<Vec<blst_fr>, CryptoError> {
    check_ids(ids)?;
    let xs: Vec<blst_fr> = ids.iter().map(|&id| fr_from_u64(id)).collect();
    let mut out = Vec::with_capacity(xs.len());
    for (i, xi) in xs.iter().enumerate() {
        let mut num = fr_from_u64(1);
        let mut den = fr_from_u64(1);
        for (j, xj) in xs.iter().enumerate() {
            if i != j {
                num = fr_mul(&num, xj);
                den = fr_mul(&den, &fr_sub(xj, xi));
            }
        }
        // IDs are distinct and below r, so no denominator is zero.
        debug_assert!(!fr_is_zero(&den));
        out.push(fr_mul(&num, &fr_inverse(&den)));
    }
    Ok(out)
}

/// Lagrange coefficients of one signer set, as 32-byte little-endian scalars.
#[derive(Debug)]
pub struct Coefficients {
    ids: Vec<OperatorId>,
    /// 32-byte little-endian scalars, for G1 (public-key reconstruction).
    scalars: Vec<u8>,
    /// Base-|z| digits (four 64-bit digits per coefficient), for the GLS path in G2.
    digits: Vec<u8>,
    frs: Vec<blst_fr>,
}

impl Coefficients {
    /// The signer set, sorted ascending; coefficients follow this order.
    pub fn ids(&self) -> &[OperatorId] {
        &self.ids
    }
}

/// Cache of Lagrange coefficients per signer set. Thread-safe; bounded by
/// [`LAGRANGE_CACHE_MAX`].
#[derive(Default)]
pub struct LagrangeCache {
    map: Mutex<HashMap<Vec<OperatorId>, Arc<Coefficients>>>,
}

impl LagrangeCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Coefficients for the signer set `sorted_ids` (must be sorted ascending).
    pub fn get(&self, sorted_ids: &[OperatorId]) -> Result<Arc<Coefficients>, CryptoError> {
        debug_assert!(sorted_ids.windows(2).all(|w| w[0] <= w[1]));
        if let Some(c) = self.lock().get(sorted_ids) {
            return Ok(Arc::clone(c));
        }
        let frs = lagrange_coefficients(sorted_ids)?;
        let blst_scalars: Vec<blst_scalar> = frs.iter().map(scalar_from_fr).collect();
        let scalars: Vec<u8> = blst_scalars.iter().flat_map(|s| s.b).collect();
        let digits = gls::digit_scalars(&blst_scalars);
        let c = Arc::new(Coefficients {
            ids: sorted_ids.to_vec(),
            scalars,
            digits,
            frs,
        });
        let mut map = self.lock();
        if map.len() >= LAGRANGE_CACHE_MAX {
            map.clear();
        }
        map.insert(sorted_ids.to_vec(), Arc::clone(&c));
        Ok(c)
    }

    /// Number of cached signer sets.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<OperatorId>, Arc<Coefficients>>> {
        // Inserts and clears are single calls: a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sorts `(id, item)` pairs by ID and fetches the coefficients of that set.
fn sorted_with_coefficients<T: Copy>(
    items: &[(OperatorId, T)],
    cache: &LagrangeCache,
) -> Result<(Vec<T>, Arc<Coefficients>), CryptoError> {
    let mut sorted: Vec<(OperatorId, T)> = items.to_vec();
    sorted.sort_by_key(|(id, _)| *id);
    let ids: Vec<OperatorId> = sorted.iter().map(|(id, _)| *id).collect();
    let coeffs = cache.get(&ids)?;
    Ok((sorted.into_iter().map(|(_, t)| t).collect(), coeffs))
}

/// Combines partial signatures into the validator signature (Lagrange interpolation at 0).
///
/// Takes any number of partials from distinct operators; with at least the threshold of
/// valid partials the result is the validator's signature. The partials only need to be
/// decompressed: the result must still be subgroup-checked and verified (the batch paths do).
pub fn reconstruct_signature(
    partials: &[(OperatorId, Signature)],
    cache: &LagrangeCache,
) -> Result<Signature, CryptoError> {
    let (sigs, coeffs) = sorted_with_coefficients(partials, cache)?;
    let points: Vec<blst_p2_affine> = sigs.iter().map(|s| *s.affine()).collect();
    let sum = gls::msm(&points, &coeffs.digits);
    let mut aff = blst_p2_affine::default();
    // SAFETY: both pointers refer to live, initialised values.
    unsafe { blst_p2_to_affine(&mut aff, &sum) };
    Ok(Signature::from_affine(aff))
}

/// Combines share public keys into the validator public key (Lagrange interpolation at 0).
pub fn reconstruct_public_key(
    shares: &[(OperatorId, PublicKey)],
    cache: &LagrangeCache,
) -> Result<PublicKey, CryptoError> {
    let (pks, coeffs) = sorted_with_coefficients(shares, cache)?;
    let points: Vec<blst_p1_affine> = pks.iter().map(|p| *p.affine()).collect();
    let sum = points.as_slice().mult(&coeffs.scalars, SCALAR_BITS);
    let mut aff = blst_p1_affine::default();
    // SAFETY: both pointers refer to live, initialised values.
    unsafe { blst_p1_to_affine(&mut aff, &sum) };
    // A combination of valid keys is in G1; it is infinity only for inconsistent shares.
    let pk = min_pk::PublicKey::from(aff);
    pk.validate()
        .map_err(|_| CryptoError::InvalidPublicKey("reconstructed key is infinity"))?;
    Ok(PublicKey::from_affine_unchecked(aff))
}

/// Combines secret-key shares into the secret key (Lagrange interpolation at 0).
pub fn reconstruct_secret_key(
    shares: &[(OperatorId, SecretKey)],
    cache: &LagrangeCache,
) -> Result<SecretKey, CryptoError> {
    let mut sorted: Vec<&(OperatorId, SecretKey)> = shares.iter().collect();
    sorted.sort_by_key(|(id, _)| *id);
    let ids: Vec<OperatorId> = sorted.iter().map(|(id, _)| *id).collect();
    let coeffs = cache.get(&ids)?;
    let mut acc = blst_fr::default();
    for ((_, sk), l) in sorted.iter().zip(&coeffs.frs) {
        acc = fr_add(&acc, &fr_mul(&fr_from_scalar(sk.scalar()), l));
    }
    secret_key_from_fr(&acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn lagrange_rejects_bad_sets() {
        let cache = LagrangeCache::new();
        assert!(cache.get(&[]).is_err());
        assert!(cache.get(&[0, 1]).is_err());
        assert!(cache.get(&[1, 1]).is_err());
        assert!(cache.get(&[1, 2, 3]).is_ok());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn split_rejects_bad_parameters() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let sk = SecretKey::random(&mut rng);
        assert!(split_secret_key(&sk, 0, &[1, 2, 3], &mut rng).is_err());
        assert!(split_secret_key(&sk, 4, &[1, 2, 3], &mut rng).is_err());
        assert!(split_secret_key(&sk, 2, &[1, 2, 2], &mut rng).is_err());
        assert!(split_secret_key(&sk, 2, &[0, 2, 3], &mut rng).is_err());
    }

    #[test]
    fn threshold_one_gives_the_key_itself() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let sk = SecretKey::random(&mut rng);
        let shares = split_secret_key(&sk, 1, &[5, 9], &mut rng).expect("split");
        for (_, s) in &shares {
            assert_eq!(s.to_bytes(), sk.to_bytes());
        }
    }
}
