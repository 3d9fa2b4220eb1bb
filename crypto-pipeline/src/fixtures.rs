//! Deterministic fixtures for tests, benchmarks and the perf summary: keys, threshold shares,
//! signature sets and invalid signatures, all derived from a seed.

use blst::{
    blst_fp, blst_fp_from_uint64, blst_fp2, blst_fp2_add, blst_fp2_mul, blst_fp2_sqr,
    blst_fp2_sqrt, blst_p2_affine,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::batch::SignatureSet;
use crate::bls::{PublicKey, SecretKey, Signature, SigningRoot};
use crate::duty::Partial;
use crate::threshold::{OperatorId, split_secret_key};

/// A seeded, reproducible CSPRNG.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A random signing root.
pub fn root(rng: &mut ChaCha20Rng) -> SigningRoot {
    let mut r = [0u8; 32];
    rng.fill_bytes(&mut r);
    r
}

/// `n` keys and their signatures over `root`.
pub fn same_root_sets(n: usize, root: &SigningRoot, seed: u64) -> Vec<SignatureSet> {
    let mut rng = rng(seed);
    (0..n)
        .map(|_| {
            let sk = SecretKey::random(&mut rng);
            SignatureSet {
                public_key: sk.public_key(),
                root: *root,
                signature: sk.sign(root),
            }
        })
        .collect()
}

/// `n` keys, each signing its own random root.
pub fn distinct_root_sets(n: usize, seed: u64) -> Vec<SignatureSet> {
    let mut rng = rng(seed);
    (0..n)
        .map(|_| {
            let sk = SecretKey::random(&mut rng);
            let r = root(&mut rng);
            SignatureSet {
                public_key: sk.public_key(),
                root: r,
                signature: sk.sign(&r),
            }
        })
        .collect()
}

/// A point on the G2 curve that is not in the prime-order subgroup, as a signature: it
/// decompresses fine and must be caught by the subgroup check.
pub fn non_subgroup_signature(seed: u64) -> Signature {
    let mut rng = rng(seed);
    let fp = |v: u64| {
        let mut out = blst_fp::default();
        let limbs = [v, 0, 0, 0, 0, 0];
        // SAFETY: `limbs` holds the six limbs blst reads; `out` is a live local.
        unsafe { blst_fp_from_uint64(&mut out, limbs.as_ptr()) };
        out
    };
    let b = blst_fp2 { fp: [fp(4), fp(4)] };
    loop {
        let x = blst_fp2 {
            fp: [fp(rng.next_u64()), fp(rng.next_u64())],
        };
        let mut x2 = blst_fp2::default();
        let mut rhs = blst_fp2::default();
        let mut y = blst_fp2::default();
        // SAFETY: all pointers refer to live locals; blst allows output/input aliasing for
        // these field operations.
        let is_square = unsafe {
            blst_fp2_sqr(&mut x2, &x);
            blst_fp2_mul(&mut rhs, &x2, &x);
            blst_fp2_add(&mut rhs, &rhs, &b);
            blst_fp2_sqrt(&mut y, &rhs)
        };
        if !is_square {
            continue;
        }
        let sig = Signature::from_affine(blst_p2_affine { x, y });
        // Round-trip through the wire encoding, as a network message would.
        if let Ok(s) = Signature::from_bytes(&sig.to_bytes())
            && !s.in_subgroup()
        {
            return s;
        }
    }
}

/// A validator key split among operators `1..=n` with threshold `t`.
pub struct ThresholdValidator {
    /// The validator secret key.
    pub secret_key: SecretKey,
    /// The validator public key.
    pub public_key: PublicKey,
    /// `(operator ID, share secret key, share public key)`.
    pub shares: Vec<(OperatorId, SecretKey, PublicKey)>,
}

/// `count` validators, each split `t`-of-`n` among operators `1..=n`.
pub fn threshold_validators(
    count: usize,
    n: usize,
    t: usize,
    seed: u64,
) -> Vec<ThresholdValidator> {
    let mut rng = rng(seed);
    let ids: Vec<OperatorId> = (1..=n as u64).collect();
    (0..count)
        .map(|_| {
            let sk = SecretKey::random(&mut rng);
            let shares = split_secret_key(&sk, t, &ids, &mut rng)
                .expect("fixture parameters are valid")
                .into_iter()
                .map(|(id, s)| {
                    let pk = s.public_key();
                    (id, s, pk)
                })
                .collect();
            ThresholdValidator {
                public_key: sk.public_key(),
                secret_key: sk,
                shares,
            }
        })
        .collect()
}

/// The first `t` operators' partial signatures of `root` for each validator.
pub fn partials(
    validators: &[ThresholdValidator],
    t: usize,
    root: &SigningRoot,
) -> Vec<Vec<Partial>> {
    validators
        .iter()
        .map(|v| {
            v.shares[..t]
                .iter()
                .map(|(id, sk, pk)| Partial {
                    operator_id: *id,
                    share_public_key: *pk,
                    signature: sk.sign(root),
                })
                .collect()
        })
        .collect()
}
