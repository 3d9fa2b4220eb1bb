//! Batch verification of `(public key, signing root, signature)` sets, one `Result` per set.
//!
//! 1. Every signature is subgroup-checked on its own (about 50 µs each); a failing set gets
//!    [`CryptoError::SignatureNotInSubgroup`] and stays out of the batch.
//! 2. Sets that share a signing root are folded by random linear combination: with random
//!    nonzero 64-bit `r_i`, `e(Σ r_i·pk_i, H(m)) = e(g1, Σ r_i·sig_i)`. That is one
//!    multi-scalar multiplication in G1, one in G2 and one pairing pair per root, instead of
//!    a hash and two Miller loops per signature. A forged set passes with probability 2^-64.
//! 3. The folded per-root triples (and the sets whose root is unique) go through blst's
//!    `verify_multiple_aggregate_signatures`, which randomises them once more and shares one
//!    final exponentiation. A batch that holds a single root is checked with one pairing.
//! 4. A failing batch is bisected, with fresh randomness at each level, so that exactly the
//!    bad sets fail and every good set passes: `O(k·log n)` sub-batches for `k` bad sets.

use std::cmp::Ordering;

use blst::{
    BLST_ERROR, blst_fp_cneg, blst_fp12, blst_fp12_is_one, blst_p1_affine,
    blst_p1_affine_generator, blst_p1_affine_is_inf, blst_p1_to_affine, blst_p2_affine,
    blst_p2_to_affine, blst_scalar, blst_scalar_from_uint64, min_pk,
};
use rand::RngCore;
use rayon::prelude::*;

use std::sync::OnceLock;

use crate::bls::{ETH_DST, HashToG2Cache, PublicKey, Signature, SigningRoot};
use crate::error::CryptoError;
use crate::msm;

/// Bits of the random scalars of the linear combination: a bad set slips through a batch with
/// probability 2^-64. More bits make every multi-scalar multiplication slower.
pub const RANDOM_SCALAR_BITS: usize = 64;

/// One signature to check: who signed, what, and the signature (decompressed on arrival).
#[derive(Clone, Copy, Debug)]
pub struct SignatureSet {
    /// The signer's validated public key.
    pub public_key: PublicKey,
    /// The signed root.
    pub root: SigningRoot,
    /// The signature, on the curve; its subgroup check happens here.
    pub signature: Signature,
}

fn nonzero_u64<R: RngCore>(rng: &mut R) -> u64 {
    loop {
        let r = rng.next_u64();
        if r != 0 {
            return r;
        }
    }
}

/// Verifies the sets on the calling thread, one result per set, in order.
pub fn verify_sets(sets: &[SignatureSet]) -> Vec<Result<(), CryptoError>> {
    verify_sets_with_rng(sets, &mut rand::thread_rng())
}

/// [`verify_sets`] with the caller's randomness (which must be unpredictable to the signers).
pub fn verify_sets_with_rng<R: RngCore>(
    sets: &[SignatureSet],
    rng: &mut R,
) -> Vec<Result<(), CryptoError>> {
    let mut out: Vec<Result<(), CryptoError>> = vec![Ok(()); sets.len()];
    let mut idx = Vec::with_capacity(sets.len());
    for (i, s) in sets.iter().enumerate() {
        if s.signature.in_subgroup() {
            idx.push(i);
        } else {
            out[i] = Err(CryptoError::SignatureNotInSubgroup);
        }
    }
    sort_by_root(sets, &mut idx);
    bisect(sets, &idx, rng, &mut out);
    out
}

/// Verifies the sets on `pool`: subgroup checks in parallel, then one batch per worker (each
/// bisected on its own). Blocks the caller until done; call it from a pool or a thread that
/// may block, never from a shard's executor.
pub fn verify_sets_parallel(
    sets: &[SignatureSet],
    pool: &rayon::ThreadPool,
) -> Vec<Result<(), CryptoError>> {
    pool.install(|| {
        let in_group: Vec<bool> = sets.par_iter().map(|s| s.signature.in_subgroup()).collect();
        let mut out: Vec<Result<(), CryptoError>> = in_group
            .iter()
            .map(|&ok| {
                if ok {
                    Ok(())
                } else {
                    Err(CryptoError::SignatureNotInSubgroup)
                }
            })
            .collect();
        let mut idx: Vec<usize> = (0..sets.len()).filter(|&i| in_group[i]).collect();
        sort_by_root(sets, &mut idx);
        let workers = pool.current_num_threads().max(1);
        let chunk = idx.len().div_ceil(workers).max(1);
        let partial: Vec<Vec<(usize, Result<(), CryptoError>)>> = idx
            .par_chunks(chunk)
            .map(|c| {
                let mut local: Vec<Result<(), CryptoError>> = vec![Ok(()); sets.len()];
                bisect(sets, c, &mut rand::thread_rng(), &mut local);
                c.iter().map(|&i| (i, local[i].clone())).collect()
            })
            .collect();
        for (i, r) in partial.into_iter().flatten() {
            out[i] = r;
        }
        out
    })
}

fn sort_by_root(sets: &[SignatureSet], idx: &mut [usize]) {
    idx.sort_by(|&a, &b| match sets[a].root.cmp(&sets[b].root) {
        Ordering::Equal => a.cmp(&b),
        o => o,
    });
}

/// Checks the sets `idx` (subgroup-checked, sorted by root) as one batch; on failure splits
/// the batch in two and recurses, so only bad sets end up with an error.
fn bisect<R: RngCore>(
    sets: &[SignatureSet],
    idx: &[usize],
    rng: &mut R,
    out: &mut [Result<(), CryptoError>],
) {
    if idx.is_empty() {
        return;
    }
    if batch_ok(sets, idx, rng) {
        return; // `out` already holds `Ok` for these.
    }
    if idx.len() == 1 {
        out[idx[0]] = Err(CryptoError::VerificationFailed);
        return;
    }
    let (a, b) = idx.split_at(idx.len() / 2);
    bisect(sets, a, rng, out);
    bisect(sets, b, rng, out);
}

/// Folds one root's sets into `(Σ r_i·pk_i, Σ r_i·sig_i)`.
fn fold_same_root<R: RngCore>(
    sets: &[SignatureSet],
    run: &[usize],
    rng: &mut R,
) -> (blst_p1_affine, blst_p2_affine) {
    let mut scalars = Vec::with_capacity(run.len() * 8);
    for _ in run {
        scalars.extend_from_slice(&nonzero_u64(rng).to_le_bytes());
    }
    let pks: Vec<blst_p1_affine> = run.iter().map(|&i| *sets[i].public_key.affine()).collect();
    let sigs: Vec<blst_p2_affine> = run.iter().map(|&i| *sets[i].signature.affine()).collect();
    let pk = msm::p1_msm(&pks, &scalars, RANDOM_SCALAR_BITS);
    let sig = msm::p2_msm(&sigs, &scalars, RANDOM_SCALAR_BITS);
    let mut pk_aff = blst_p1_affine::default();
    let mut sig_aff = blst_p2_affine::default();
    // SAFETY: all pointers refer to live, initialised locals.
    unsafe {
        blst_p1_to_affine(&mut pk_aff, &pk);
        blst_p2_to_affine(&mut sig_aff, &sig);
    }
    (pk_aff, sig_aff)
}

/// Hashes of recent signing roots: a slot's root is hashed once for all its batches.
fn hash_cache() -> &'static HashToG2Cache {
    static CACHE: OnceLock<HashToG2Cache> = OnceLock::new();
    CACHE.get_or_init(HashToG2Cache::new)
}

/// `e(pk, H(root)) == e(g1, sig)` as one two-pair Miller loop and one final exponentiation,
/// with the hash from the cache. The signature (or every folded one) passed its subgroup check
/// already and public keys are validated when parsed, so neither check is repeated here.
fn single_root_ok(pk: &blst_p1_affine, sig: &blst_p2_affine, root: &SigningRoot) -> bool {
    // SAFETY: `pk` refers to a live, initialised point.
    if unsafe { blst_p1_affine_is_inf(pk) } {
        // A folded key is infinity only by a 2^-64 accident or a rogue-key relation; either
        // way, let bisection sort it out.
        return false;
    }
    let hash = hash_cache().get(root);
    // SAFETY: blst returns a pointer to its static generator; the copy is negated in place.
    let neg_g1 = unsafe {
        let mut g = *blst_p1_affine_generator();
        let y = g.y;
        blst_fp_cneg(&mut g.y, &y, true);
        g
    };
    let ml = blst_fp12::miller_loop_n(&[*hash.affine(), *sig], &[*pk, neg_g1]);
    // SAFETY: `final_exp` returns a live, initialised value.
    unsafe { blst_fp12_is_one(&ml.final_exp()) }
}

/// One batch check of `idx` (subgroup-checked, sorted by root). True only if all sets verify
/// (except with probability 2^-64).
fn batch_ok<R: RngCore>(sets: &[SignatureSet], idx: &[usize], rng: &mut R) -> bool {
    let mut pks: Vec<blst_p1_affine> = Vec::new();
    let mut sigs: Vec<blst_p2_affine> = Vec::new();
    let mut roots: Vec<&SigningRoot> = Vec::new();
    for run in idx.chunk_by(|&a, &b| sets[a].root == sets[b].root) {
        let (pk, sig) = if run.len() == 1 {
            (
                *sets[run[0]].public_key.affine(),
                *sets[run[0]].signature.affine(),
            )
        } else {
            fold_same_root(sets, run, rng)
        };
        pks.push(pk);
        sigs.push(sig);
        roots.push(&sets[run[0]].root);
    }
    if pks.len() == 1 {
        return single_root_ok(&pks[0], &sigs[0], roots[0]);
    }
    let pk_objs: Vec<min_pk::PublicKey> = pks.into_iter().map(Into::into).collect();
    let sig_objs: Vec<min_pk::Signature> = sigs.into_iter().map(Into::into).collect();
    let pk_refs: Vec<&min_pk::PublicKey> = pk_objs.iter().collect();
    let sig_refs: Vec<&min_pk::Signature> = sig_objs.iter().collect();
    let msgs: Vec<&[u8]> = roots.iter().map(|r| &r[..]).collect();
    let rands: Vec<blst_scalar> = (0..pk_refs.len())
        .map(|_| {
            let limbs = [nonzero_u64(rng), 0, 0, 0];
            let mut s = blst_scalar::default();
            // SAFETY: `limbs` holds the four limbs blst reads; `s` is a live local.
            unsafe { blst_scalar_from_uint64(&mut s, limbs.as_ptr()) };
            s
        })
        .collect();
    // Subgroup checks were done per signature above (and a sum of G2 points is in G2), and
    // public keys are validated at parse time, so both flags are false here.
    min_pk::Signature::verify_multiple_aggregate_signatures(
        &msgs,
        ETH_DST,
        &pk_refs,
        false,
        &sig_refs,
        false,
        &rands,
        RANDOM_SCALAR_BITS,
    ) == BLST_ERROR::BLST_SUCCESS
}
