//! Multi-scalar multiplication with short scalars for the random linear combinations of batch
//! verification: blst's Pippenger tiles, with the window chosen for the scalar length.
//!
//! blst sizes its window from the point count alone, for 255-bit scalars (7 bits at 256
//! points). With 64-bit scalars the bucket sums weigh more, and a cost model of
//! `⌈bits / c⌉ · (n + 2^c)` additions picks 6 bits at 256 points, about 8% fewer additions
//! (measured: 2–3% faster in G2). A Pippenger with affine buckets and batched inversions was
//! tried and measured slower than blst's XYZZ buckets here (17 against 16 µs per point). So
//! was splitting each 64-bit `r_i` into two 32-bit halves over the GLV/GLS endomorphisms
//! (`2n` points with 32-bit scalars per group): no measurable gain, so the plain fold stays.

use blst::{
    blst_p1, blst_p1_add_or_double, blst_p1_affine, blst_p1_double,
    blst_p1s_mult_pippenger_scratch_sizeof, blst_p1s_tile_pippenger, blst_p2,
    blst_p2_add_or_double, blst_p2_affine, blst_p2_double, blst_p2s_mult_pippenger_scratch_sizeof,
    blst_p2s_tile_pippenger, limb_t,
};

/// Largest window considered; 2^15 buckets of G2 points is already 10 MB.
const WINDOW_MAX: usize = 16;

/// The window (in bits) that minimises `⌈nbits / c⌉ · (n + 2^c)`.
pub(crate) fn window_for(npoints: usize, nbits: usize) -> usize {
    (1..=WINDOW_MAX)
        .min_by_key(|&c| nbits.div_ceil(c) * (npoints + (1usize << c)))
        .unwrap_or(1)
}

macro_rules! msm_impl {
    ($name:ident, $point:ty, $affine:ty, $sizeof:ident, $tile:ident, $add:ident, $double:ident) => {
        /// `Σ k_i·P_i` with `nbits`-bit little-endian scalars of `⌈nbits/8⌉` bytes each.
        pub(crate) fn $name(points: &[$affine], scalars: &[u8], nbits: usize) -> $point {
            let nbytes = nbits.div_ceil(8);
            assert!(
                scalars.len() >= points.len() * nbytes,
                "one scalar per point"
            );
            let mut ret = <$point>::default();
            if points.is_empty() || nbits == 0 {
                return ret;
            }
            let window = window_for(points.len(), nbits);
            // SAFETY: blst returns the size of one bucket for a one-point input.
            let bucket_bytes = unsafe { $sizeof(1) };
            // Buckets start zeroed; blst leaves them zeroed after each tile.
            let mut scratch: Vec<limb_t> =
                vec![0; (bucket_bytes << (window - 1)).div_ceil(std::mem::size_of::<limb_t>())];
            let pts: [*const $affine; 2] = [points.as_ptr(), std::ptr::null()];
            let scs: [*const u8; 2] = [scalars.as_ptr(), std::ptr::null()];
            // Windows from the top, as blst's own Pippenger loop: the top one holds the
            // `nbits % window` excess bits (possibly none, then only the Booth carry).
            let mut bit0 = nbits - nbits % window;
            loop {
                let mut tile = <$point>::default();
                // SAFETY: `pts[0]`/`scs[0]` point to `points.len()` contiguous points and
                // scalars (a null second entry tells blst they are contiguous); `scratch`
                // holds 2^(window-1) buckets, the most any tile of this window uses; `tile`
                // and `ret` are live locals.
                unsafe {
                    $tile(
                        &mut tile,
                        pts.as_ptr(),
                        points.len(),
                        scs.as_ptr(),
                        nbits,
                        scratch.as_mut_ptr(),
                        bit0,
                        window,
                    );
                    $add(&mut ret, &ret, &tile);
                }
                if bit0 == 0 {
                    break;
                }
                for _ in 0..window {
                    // SAFETY: in-place doubling of a live point is allowed by blst.
                    unsafe { $double(&mut ret, &ret) };
                }
                bit0 -= window;
            }
            ret
        }
    };
}

msm_impl!(
    p1_msm,
    blst_p1,
    blst_p1_affine,
    blst_p1s_mult_pippenger_scratch_sizeof,
    blst_p1s_tile_pippenger,
    blst_p1_add_or_double,
    blst_p1_double
);

msm_impl!(
    p2_msm,
    blst_p2,
    blst_p2_affine,
    blst_p2s_mult_pippenger_scratch_sizeof,
    blst_p2s_tile_pippenger,
    blst_p2_add_or_double,
    blst_p2_double
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use blst::{MultiPoint, blst_p1_is_equal, blst_p2_affine, blst_p2_is_equal};
    use rand::RngCore;

    #[test]
    fn windows_follow_the_cost_model() {
        assert_eq!(window_for(256, 64), 6);
        assert!(window_for(16, 64) <= 5);
        assert!(window_for(4096, 64) >= 8);
    }

    #[test]
    fn matches_blst_for_many_sizes() {
        let mut rng = fixtures::rng(5);
        let sets = fixtures::same_root_sets(70, &[1u8; 32], 5);
        let p1: Vec<blst_p1_affine> = sets.iter().map(|s| *s.public_key.affine()).collect();
        let p2: Vec<blst_p2_affine> = sets.iter().map(|s| *s.signature.affine()).collect();
        for n in [1usize, 2, 3, 17, 64, 70] {
            for nbits in [1usize, 8, 30, 64, 65] {
                let mut scalars = vec![0u8; n * nbits.div_ceil(8)];
                rng.fill_bytes(&mut scalars);
                let want1 = p1[..n].mult(&scalars, nbits);
                let want2 = p2[..n].mult(&scalars, nbits);
                let got1 = p1_msm(&p1[..n], &scalars, nbits);
                let got2 = p2_msm(&p2[..n], &scalars, nbits);
                // SAFETY: all pointers refer to live locals.
                unsafe {
                    assert!(blst_p1_is_equal(&got1, &want1), "G1 n={n} bits={nbits}");
                    assert!(blst_p2_is_equal(&got2, &want2), "G2 n={n} bits={nbits}");
                }
            }
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::fixtures;
    use blst::{MultiPoint, blst_p2_affine};

    /// `cargo test --release -p ssv-crypto-pipeline msm::timing -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, not a test"]
    fn compare_g2_msm_variants() {
        let sets = fixtures::same_root_sets(256, &[3u8; 32], 7);
        let p2: Vec<blst_p2_affine> = sets.iter().map(|s| *s.signature.affine()).collect();
        let scalars: Vec<u8> = (0..256 * 8).map(|i| (i * 131 + 7) as u8).collect();
        for _ in 0..3 {
            let t = std::time::Instant::now();
            for _ in 0..5 {
                std::hint::black_box(p2.as_slice().mult(&scalars, 64));
            }
            let blst_us = t.elapsed().as_secs_f64() * 1e6 / (5.0 * 256.0);
            let t = std::time::Instant::now();
            for _ in 0..5 {
                std::hint::black_box(p2_msm(&p2, &scalars, 64));
            }
            let tile_us = t.elapsed().as_secs_f64() * 1e6 / (5.0 * 256.0);
            println!("G2 MSM n=256 64-bit, per point: blst {blst_us:.2} µs, tiles {tile_us:.2} µs");
        }
    }
}
