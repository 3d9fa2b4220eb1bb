//! The BLS operations the runner-suite harness performs for the runners (sign with a share,
//! reconstruct, verify), over blst. The node does these in `ssv-crypto-pipeline`, which
//! depends on this crate; the harness cannot use it without a cycle, so it carries this small
//! plain (unbatched) version. BLS signing is deterministic, so both give the same bytes.

use blst::min_pk::{PublicKey, SecretKey, Signature};
use blst::{
    BLST_ERROR, blst_fr, blst_fr_from_uint64, blst_fr_inverse, blst_fr_mul, blst_fr_sub, blst_p2,
    blst_p2_add_or_double, blst_p2_affine, blst_p2_from_affine, blst_p2_mult, blst_p2_to_affine,
    blst_scalar, blst_scalar_from_fr,
};

/// The Ethereum proof-of-possession ciphersuite.
const DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Signs `root` with a 32-byte big-endian secret key.
pub fn sign(secret: &[u8; 32], root: &[u8; 32]) -> Result<[u8; 96], String> {
    let sk = SecretKey::from_bytes(secret).map_err(|e| format!("secret key: {e:?}"))?;
    Ok(sk.sign(root, DST, &[]).to_bytes())
}

/// The compressed public key of a secret key.
pub fn public_key(secret: &[u8; 32]) -> Result<[u8; 48], String> {
    let sk = SecretKey::from_bytes(secret).map_err(|e| format!("secret key: {e:?}"))?;
    Ok(sk.sk_to_pk().to_bytes())
}

/// Whether `sig` is a valid signature of `root` by `pubkey`.
pub fn verify(pubkey: &[u8], root: &[u8; 32], sig: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (
        PublicKey::key_validate(pubkey),
        Signature::sig_validate(sig, true),
    ) else {
        return false;
    };
    sig.verify(true, root, DST, &[], &pk, false) == BLST_ERROR::BLST_SUCCESS
}

fn fr(x: u64) -> blst_fr {
    let mut out = blst_fr::default();
    let limbs = [x, 0, 0, 0];
    // SAFETY: both pointers refer to live values of the right size.
    unsafe { blst_fr_from_uint64(&mut out, limbs.as_ptr()) };
    out
}

fn fr_op(
    a: &blst_fr,
    b: &blst_fr,
    op: unsafe extern "C" fn(*mut blst_fr, *const blst_fr, *const blst_fr),
) -> blst_fr {
    let mut out = blst_fr::default();
    // SAFETY: all three pointers refer to live, initialised values.
    unsafe { op(&mut out, a, b) };
    out
}

/// Lagrange interpolation at 0 of the partial signatures (operator ID as x), as ssv-spec's
/// `ReconstructSignatures`: every partial given takes part.
pub fn reconstruct(partials: &[(u64, [u8; 96])]) -> Result<[u8; 96], String> {
    if partials.is_empty() {
        return Err("no partial signatures".into());
    }
    let mut ids: Vec<u64> = partials.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != partials.len() || ids.first() == Some(&0) {
        return Err("operator IDs must be distinct and non-zero".into());
    }
    let mut sum = blst_p2::default();
    let mut first = true;
    for (i, (xi, sig)) in partials.iter().enumerate() {
        let mut num = fr(1);
        let mut den = fr(1);
        for (j, (xj, _)) in partials.iter().enumerate() {
            if i != j {
                num = fr_op(&num, &fr(*xj), blst_fr_mul);
                den = fr_op(&den, &fr_op(&fr(*xj), &fr(*xi), blst_fr_sub), blst_fr_mul);
            }
        }
        let mut inv = blst_fr::default();
        // SAFETY: live values; den is non-zero because the IDs are distinct.
        unsafe { blst_fr_inverse(&mut inv, &den) };
        let coeff = fr_op(&num, &inv, blst_fr_mul);
        let mut scalar = blst_scalar::default();
        // SAFETY: live values.
        unsafe { blst_scalar_from_fr(&mut scalar, &coeff) };
        let sig = Signature::from_bytes(sig).map_err(|e| format!("partial of {xi}: {e:?}"))?;
        let affine: blst_p2_affine = sig.into();
        let mut point = blst_p2::default();
        let mut term = blst_p2::default();
        // SAFETY: live values; the scalar is 255 bits at most.
        unsafe {
            blst_p2_from_affine(&mut point, &affine);
            blst_p2_mult(&mut term, &point, scalar.b.as_ptr(), 255);
        }
        if first {
            sum = term;
            first = false;
        } else {
            let acc = sum;
            // SAFETY: live values.
            unsafe { blst_p2_add_or_double(&mut sum, &acc, &term) };
        }
    }
    let mut aff = blst_p2_affine::default();
    // SAFETY: live values.
    unsafe { blst_p2_to_affine(&mut aff, &sum) };
    Ok(Signature::from(aff).to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_a_polynomial_reconstruct_the_key_signature() {
        // f(x) = a0 + a1·x with small scalars: share_i = f(i); any two shares reconstruct
        // a0's signature.
        let mut a0 = [0u8; 32];
        a0[31] = 5;
        let share = |x: u8| {
            let mut s = [0u8; 32];
            s[31] = 5 + 3 * x;
            s
        };
        let root = [7u8; 32];
        let want = sign(&a0, &root).expect("sign");
        let partials: Vec<(u64, [u8; 96])> = [1u8, 3]
            .iter()
            .map(|&x| (u64::from(x), sign(&share(x), &root).expect("sign")))
            .collect();
        assert_eq!(reconstruct(&partials).expect("reconstruct"), want);
        let pk = public_key(&a0).expect("pk");
        assert!(verify(&pk, &root, &want));
        assert!(!verify(&pk, &[8; 32], &want));
    }
}
