//! Variable-time multi-scalar multiplication in G2 with the GLS endomorphism, for threshold
//! reconstruction.
//!
//! On G2 the untwist-Frobenius-twist map ψ acts as multiplication by the curve parameter
//! `z = -0xd201000000010000` (Scott, eprint 2021/1130; blst's subgroup check tests exactly
//! this). With `r = z⁴ − z² + 1`, a scalar `k < r` has four digits below `|z|` in base `|z|`,
//! so `[k]P = Σ d_j·[|z|ʲ]P = Σ d_j·(−ψ)ʲ(P)`: a 255-bit multiplication becomes four 64-bit
//! ones that share their doublings. For the `t` partials of a reconstruction that is one
//! multi-scalar multiplication of `4t` points with 64-bit scalars (Straus's method with wNAF
//! digits), instead of `t` full multiplications. blst's own multi-point routine for a dozen
//! points was measured here at about 2.5 times the cost of this one.
//!
//! Lagrange coefficients and partial signatures are public, so variable time is fine here. A
//! partial outside G2 makes the result wrong (ψ is not `[z]` there), exactly as a wrong
//! partial does: the reconstructed signature then fails its subgroup check or verification,
//! and the partials are checked one by one.

use blst::{
    blst_fp, blst_fp_cneg, blst_fp2, blst_fp2_cneg, blst_fp2_mul, blst_p2, blst_p2_add_or_double,
    blst_p2_add_or_double_affine, blst_p2_affine, blst_p2_double, blst_p2_from_affine,
    blst_p2s_to_affine, blst_scalar,
};

/// `|z|`, the absolute value of the BLS12-381 curve parameter.
pub(crate) const Z_ABS: u64 = 0xd201_0000_0001_0000;

/// `1/(1+i)^((p−1)/3)` in Montgomery form (blst's `frobenius_x` in `psi`).
const PSI_X: blst_fp2 = blst_fp2 {
    fp: [
        blst_fp { l: [0; 6] },
        blst_fp {
            l: [
                0x890d_c9e4_8675_45c3,
                0x2af3_2253_3285_a5d5,
                0x5088_0866_309b_7e2c,
                0xa20d_1b8c_7e88_1024,
                0x14e4_f04f_e2db_9068,
                0x14e5_6d3f_1564_853a,
            ],
        },
    ],
};

/// `1/(1+i)^((p−1)/2)` in Montgomery form (blst's `frobenius_y` in `psi`).
const PSI_Y: blst_fp2 = blst_fp2 {
    fp: [
        blst_fp {
            l: [
                0x3e2f_585d_a55c_9ad1,
                0x4294_213d_86c1_8183,
                0x3828_44c8_8b62_3732,
                0x92ad_2afd_1910_3e18,
                0x1d79_4e4f_ac7c_f0b9,
                0x0bd5_92fc_7d82_5ec8,
            ],
        },
        blst_fp {
            l: [
                0x7bcf_a7a2_5aa3_0fda,
                0xdc17_dec1_2a92_7e7c,
                0x2f08_8dd8_6b4e_bef1,
                0xd1ca_2087_da74_d4a7,
                0x2da2_5966_96ce_bc1d,
                0x0e2b_7eed_bbfd_87d2,
            ],
        },
    ],
};

fn conj_mul(a: &blst_fp2, c: &blst_fp2) -> blst_fp2 {
    let mut conj = *a;
    let mut out = blst_fp2::default();
    // SAFETY: all pointers refer to live, initialised locals or constants; blst permits the
    // output to alias the input of `blst_fp_cneg`.
    unsafe {
        blst_fp_cneg(&mut conj.fp[1], &a.fp[1], true);
        blst_fp2_mul(&mut out, &conj, c);
    }
    out
}

/// ψ on an affine point. The point at infinity (all zero) maps to itself.
pub(crate) fn psi(p: &blst_p2_affine) -> blst_p2_affine {
    blst_p2_affine {
        x: conj_mul(&p.x, &PSI_X),
        y: conj_mul(&p.y, &PSI_Y),
    }
}

/// `−P` for an affine point.
pub(crate) fn neg(p: &blst_p2_affine) -> blst_p2_affine {
    let mut out = *p;
    // SAFETY: both pointers refer to live, initialised values.
    unsafe { blst_fp2_cneg(&mut out.y, &p.y, true) };
    out
}

/// The four base-`|z|` digits of a scalar below `r`, least significant first.
pub(crate) fn decompose(k: &blst_scalar) -> [u64; 4] {
    let mut limbs = [0u64; 4];
    for (i, l) in limbs.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&k.b[8 * i..8 * i + 8]);
        *l = u64::from_le_bytes(b);
    }
    let mut digits = [0u64; 4];
    for d in digits.iter_mut().take(3) {
        // Long division of the 256-bit value by |z|, most significant limb first.
        let mut rem: u128 = 0;
        for l in limbs.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*l);
            *l = (cur / u128::from(Z_ABS)) as u64;
            rem = cur % u128::from(Z_ABS);
        }
        *d = rem as u64;
    }
    // k < r < |z|^4, so what is left is one digit.
    debug_assert!(limbs[1] == 0 && limbs[2] == 0 && limbs[3] == 0 && limbs[0] < Z_ABS);
    digits[3] = limbs[0];
    digits
}

/// Base-`|z|` digits of a set of scalars, as the little-endian 64-bit scalars the
/// multi-scalar multiplication reads: for point `i`, digits `4i..4i+4`.
pub(crate) fn digit_scalars(scalars: &[blst_scalar]) -> Vec<u8> {
    let mut out = Vec::with_capacity(scalars.len() * 32);
    for s in scalars {
        for d in decompose(s) {
            out.extend_from_slice(&d.to_le_bytes());
        }
    }
    out
}

/// Width of the signed sliding windows (wNAF). Tables hold `2^(W−2)` odd multiples per
/// point; digits are nonzero about once every `W + 1` bits.
const WNAF_W: u32 = 5;
/// Odd multiples per table: `P, 3P, …, (2^(W−1) − 1)P`.
const TABLE_LEN: usize = 1 << (WNAF_W - 2);
/// Digit positions of a 64-bit scalar in width-W NAF (one more than its bit length).
const NAF_LEN: usize = 65;

/// Width-`WNAF_W` non-adjacent form of `k`, least significant digit first.
fn wnaf(k: u64) -> [i8; NAF_LEN] {
    let mut out = [0i8; NAF_LEN];
    let mut k = u128::from(k);
    let window = 1i128 << WNAF_W;
    let mut i = 0;
    while k != 0 {
        if k & 1 == 1 {
            let mut d = (k % (window as u128)) as i128;
            if d >= window / 2 {
                d -= window;
            }
            out[i] = d as i8;
            k = (k as i128 - d) as u128;
        }
        k >>= 1;
        i += 1;
    }
    out
}

/// `Σ k_i·P_i` for points in G2, given `digit_scalars(k)`.
///
/// Straus's method over the `4t` GLS sub-scalars: one shared run of 65 doublings, one mixed
/// addition per nonzero wNAF digit. The odd-multiple tables are computed for the `t` input
/// points only; the tables of `ψ(P)`, `ψ²(P)`, `ψ³(P)` are ψ images of them (ψ costs two
/// field multiplications).
pub(crate) fn msm(points: &[blst_p2_affine], digits: &[u8]) -> blst_p2 {
    debug_assert_eq!(digits.len(), points.len() * 32);
    // Odd multiples of each input point, in Jacobian coordinates, then all to affine at once
    // (one shared inversion).
    let mut jac = vec![blst_p2::default(); points.len() * TABLE_LEN];
    for (p, row) in points.iter().zip(jac.chunks_mut(TABLE_LEN)) {
        let mut base = blst_p2::default();
        let mut twice = blst_p2::default();
        // SAFETY: all pointers refer to live, initialised values; blst permits the output of
        // an addition to alias its first input.
        unsafe {
            blst_p2_from_affine(&mut base, p);
            blst_p2_double(&mut twice, &base);
            row[0] = base;
            for k in 1..TABLE_LEN {
                let prev = row[k - 1];
                blst_p2_add_or_double(&mut row[k], &prev, &twice);
            }
        }
    }
    let mut affine = vec![blst_p2_affine::default(); jac.len()];
    if !jac.is_empty() {
        let ptrs: [*const blst_p2; 2] = [jac.as_ptr(), std::ptr::null()];
        // SAFETY: `ptrs[0]` points to `jac.len()` contiguous points (a null second pointer
        // tells blst the input is contiguous) and `affine` has room for as many outputs.
        unsafe { blst_p2s_to_affine(affine.as_mut_ptr(), ptrs.as_ptr(), jac.len()) };
    }
    // Tables of the 4t sub-points: [|z|^j]P = (−ψ)^j(P).
    let mut tables: Vec<[blst_p2_affine; TABLE_LEN]> = Vec::with_capacity(points.len() * 4);
    for row in affine.chunks(TABLE_LEN) {
        let mut t0 = [blst_p2_affine::default(); TABLE_LEN];
        t0.copy_from_slice(row);
        let t1 = t0.map(|p| psi(&p));
        let t2 = t1.map(|p| psi(&p));
        let t3 = t2.map(|p| psi(&p));
        tables.extend([t0, t1.map(|p| neg(&p)), t2, t3.map(|p| neg(&p))]);
    }
    let nafs: Vec<[i8; NAF_LEN]> = digits
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            wnaf(u64::from_le_bytes(b))
        })
        .collect();
    let top = (0..NAF_LEN).rev().find(|&i| nafs.iter().any(|n| n[i] != 0));
    let mut acc = blst_p2::default(); // the point at infinity
    let Some(top) = top else { return acc };
    for i in (0..=top).rev() {
        if i != top {
            // SAFETY: in-place doubling of a live, initialised point is allowed by blst.
            unsafe { blst_p2_double(&mut acc, &acc) };
        }
        for (naf, table) in nafs.iter().zip(&tables) {
            let d = naf[i];
            if d == 0 {
                continue;
            }
            let entry = table[usize::from(d.unsigned_abs() / 2)];
            let entry = if d < 0 { neg(&entry) } else { entry };
            // SAFETY: all pointers refer to live, initialised values; the output may alias
            // the first input.
            unsafe { blst_p2_add_or_double_affine(&mut acc, &acc, &entry) };
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bls::SecretKey;
    use blst::{blst_p2_affine_is_equal, blst_p2_from_affine, blst_p2_is_equal, blst_p2_mult};
    use rand::{RngCore, SeedableRng};

    fn g2_point(seed: u64) -> blst_p2_affine {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        *SecretKey::random(&mut rng).sign(&[seed as u8; 32]).affine()
    }

    fn mult(p: &blst_p2_affine, scalar: &[u8], bits: usize) -> blst_p2 {
        let mut j = blst_p2::default();
        let mut out = blst_p2::default();
        // SAFETY: all pointers refer to live locals; `scalar` holds `bits` bits.
        unsafe {
            blst_p2_from_affine(&mut j, p);
            blst_p2_mult(&mut out, &j, scalar.as_ptr(), bits);
        }
        out
    }

    #[test]
    fn psi_is_multiplication_by_z_on_g2() {
        for seed in 0..4 {
            let p = g2_point(seed);
            // [z]P = −[|z|]P
            let mut zp = mult(&p, &Z_ABS.to_le_bytes(), 64);
            // SAFETY: `zp` is a live local.
            unsafe { blst::blst_p2_cneg(&mut zp, true) };
            let mut psi_j = blst_p2::default();
            // SAFETY: both pointers refer to live locals.
            unsafe { blst_p2_from_affine(&mut psi_j, &psi(&p)) };
            // SAFETY: both pointers refer to live locals.
            assert!(unsafe { blst_p2_is_equal(&zp, &psi_j) });
            // SAFETY: both pointers refer to live locals.
            assert!(unsafe { blst_p2_affine_is_equal(&neg(&neg(&p)), &p) });
        }
    }

    #[test]
    fn decomposition_recombines() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        for _ in 0..64 {
            let mut k = blst_scalar::default();
            rng.fill_bytes(&mut k.b);
            k.b[31] &= 0x3f; // below 2^254 < r
            let d = decompose(&k);
            // Recombine with 128-bit chunks: Σ d_j |z|^j, via schoolbook on u64 limbs.
            let mut acc = [0u64; 5];
            for &dj in d.iter().rev() {
                // acc = acc * |z| + dj
                let mut carry: u128 = u128::from(dj);
                for l in acc.iter_mut() {
                    let v = u128::from(*l) * u128::from(Z_ABS) + carry;
                    *l = v as u64;
                    carry = v >> 64;
                }
            }
            let mut want = [0u64; 5];
            for (i, w) in want.iter_mut().take(4).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(&k.b[8 * i..8 * i + 8]);
                *w = u64::from_le_bytes(b);
            }
            assert_eq!(acc, want);
            assert!(d.iter().all(|&x| x < Z_ABS));
        }
    }

    #[test]
    fn gls_msm_matches_plain_multiplication() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let mut points: Vec<blst_p2_affine> = (0..5).map(g2_point).collect();
        points[3] = blst_p2_affine::default(); // the point at infinity
        let scalars: Vec<blst_scalar> = (0..5)
            .map(|i| {
                let mut k = blst_scalar::default();
                rng.fill_bytes(&mut k.b);
                k.b[31] &= 0x3f;
                if i == 4 {
                    k.b = [0; 32]; // a zero scalar
                    k.b[0] = 1;
                }
                k
            })
            .collect();
        let got = msm(&points, &digit_scalars(&scalars));
        let mut want = blst_p2::default();
        for (p, k) in points.iter().zip(&scalars) {
            let term = mult(p, &k.b, 255);
            // SAFETY: all pointers refer to live locals; blst permits aliasing in add.
            unsafe { blst::blst_p2_add_or_double(&mut want, &want, &term) };
        }
        // SAFETY: both pointers refer to live locals.
        assert!(unsafe { blst_p2_is_equal(&got, &want) });
    }
}
