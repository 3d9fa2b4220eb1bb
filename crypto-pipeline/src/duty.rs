//! The node's path for partial signatures: reconstruct, then verify.
//!
//! As in ssv-spec, partial signatures are decompressed (on the curve) when they arrive. At
//! quorum each validator's signature is reconstructed by Lagrange interpolation, and all the
//! reconstructed signatures of one signing root are verified together: one subgroup check
//! each, then a same-root batch (one pairing pair for the root). Partials are verified one by
//! one (in a bisected batch of their own) only when a reconstructed signature fails, to name
//! the operator at fault. The Go reference node instead verifies each reconstructed signature
//! alone ([`reconstruct_then_verify_each`], kept as the baseline).

use std::cell::RefCell;

use rand::RngCore;

use crate::batch::{SignatureSet, verify_sets, verify_sets_parallel, verify_sets_with_rng};
use crate::bls::{PublicKey, Signature, SigningRoot};
use crate::error::CryptoError;
use crate::threshold::{LagrangeCache, OperatorId, reconstruct_signature};

/// One operator's partial signature of a validator duty, with the share key it must verify
/// against.
#[derive(Clone, Copy, Debug)]
pub struct Partial {
    /// The signing operator; also the share index.
    pub operator_id: OperatorId,
    /// The operator's share public key for this validator.
    pub share_public_key: PublicKey,
    /// The partial signature, decompressed on arrival.
    pub signature: Signature,
}

/// The partials collected at quorum for one validator.
#[derive(Clone, Copy, Debug)]
pub struct ValidatorPartials<'a> {
    /// The validator's public key (what the beacon node checks).
    pub validator_public_key: PublicKey,
    /// At least `threshold` partials from distinct operators.
    pub partials: &'a [Partial],
}

fn reconstruct(v: &ValidatorPartials<'_>, cache: &LagrangeCache) -> Result<Signature, CryptoError> {
    let pairs: Vec<(OperatorId, Signature)> = v
        .partials
        .iter()
        .map(|p| (p.operator_id, p.signature))
        .collect();
    reconstruct_signature(&pairs, cache)
}

/// Reconstructs and verifies the signatures of many validators over one signing root.
///
/// Returns, per validator in order, the reconstructed signature (verified, subgroup
/// included) or why there is none: `InvalidPartials` names the operators whose partials do
/// not verify; `ReconstructionMismatch` says every partial verified but the result did not
/// (the share keys do not belong to the validator key). With `pool`, the batch and the
/// culprit search run on it; without, on the calling thread.
pub fn reconstruct_and_verify(
    root: &SigningRoot,
    validators: &[ValidatorPartials<'_>],
    cache: &LagrangeCache,
    pool: Option<&rayon::ThreadPool>,
) -> Vec<Result<Signature, CryptoError>> {
    match pool {
        Some(p) => reconstruct_and_verify_by(root, validators, cache, &|sets| {
            verify_sets_parallel(sets, p)
        }),
        None => reconstruct_and_verify_by(root, validators, cache, &verify_sets),
    }
}

/// [`reconstruct_and_verify`] on the calling thread with the caller's randomness for the
/// batch's linear combinations (which must be unpredictable to the signers). The perf gate
/// passes a seeded generator: the random scalars decide part of the work, and its instruction
/// count must repeat exactly.
pub fn reconstruct_and_verify_with_rng<R: RngCore>(
    root: &SigningRoot,
    validators: &[ValidatorPartials<'_>],
    cache: &LagrangeCache,
    rng: &mut R,
) -> Vec<Result<Signature, CryptoError>> {
    let rng = RefCell::new(rng);
    reconstruct_and_verify_by(root, validators, cache, &|sets| {
        verify_sets_with_rng(sets, &mut **rng.borrow_mut())
    })
}

type VerifyFn<'a> = dyn Fn(&[SignatureSet]) -> Vec<Result<(), CryptoError>> + 'a;

fn reconstruct_and_verify_by(
    root: &SigningRoot,
    validators: &[ValidatorPartials<'_>],
    cache: &LagrangeCache,
    verify: &VerifyFn<'_>,
) -> Vec<Result<Signature, CryptoError>> {
    let reconstructed: Vec<Result<Signature, CryptoError>> =
        validators.iter().map(|v| reconstruct(v, cache)).collect();
    let mut sets = Vec::with_capacity(validators.len());
    let mut set_of = Vec::with_capacity(validators.len());
    for (i, r) in reconstructed.iter().enumerate() {
        if let Ok(sig) = r {
            set_of.push(i);
            sets.push(SignatureSet {
                public_key: validators[i].validator_public_key,
                root: *root,
                signature: *sig,
            });
        }
    }
    let results = verify(&sets);
    let mut out = reconstructed;
    for (k, r) in results.into_iter().enumerate() {
        let i = set_of[k];
        if r.is_err() {
            out[i] = Err(find_culprits(root, &validators[i], verify));
        }
    }
    out
}

/// Verifies the partials of one validator to name the faulty operators.
fn find_culprits(
    root: &SigningRoot,
    v: &ValidatorPartials<'_>,
    verify: &VerifyFn<'_>,
) -> CryptoError {
    let sets: Vec<SignatureSet> = v
        .partials
        .iter()
        .map(|p| SignatureSet {
            public_key: p.share_public_key,
            root: *root,
            signature: p.signature,
        })
        .collect();
    let culprits: Vec<OperatorId> = verify(&sets)
        .iter()
        .zip(v.partials)
        .filter(|(r, _)| r.is_err())
        .map(|(_, p)| p.operator_id)
        .collect();
    if culprits.is_empty() {
        CryptoError::ReconstructionMismatch
    } else {
        CryptoError::InvalidPartials(culprits)
    }
}

/// The Go reference node's way, kept as the baseline: reconstruct each validator's signature,
/// then verify it alone (subgroup check, hash, two Miller loops, final exponentiation).
pub fn reconstruct_then_verify_each(
    root: &SigningRoot,
    validators: &[ValidatorPartials<'_>],
    cache: &LagrangeCache,
) -> Vec<Result<Signature, CryptoError>> {
    validators
        .iter()
        .map(|v| {
            let sig = reconstruct(v, cache)?;
            sig.verify(&v.validator_public_key, root)?;
            Ok(sig)
        })
        .collect()
}
