//! Property tests: threshold split/reconstruct round-trips, and batches with planted bad sets
//! report exactly those.

use proptest::prelude::*;
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha20Rng;
use ssv_crypto_pipeline::batch::verify_sets_with_rng;
use ssv_crypto_pipeline::fixtures;
use ssv_crypto_pipeline::{
    CryptoError, LagrangeCache, OperatorId, SecretKey, Signature, SignatureSet,
    reconstruct_public_key, reconstruct_secret_key, reconstruct_signature, split_secret_key,
    verify_sets_parallel,
};

const PARAMS: [(usize, usize); 4] = [(4, 3), (7, 5), (10, 7), (13, 9)];

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn split_then_reconstruct_roundtrips(seed in any::<u64>(), which in 0usize..4, id_base in 1u64..1_000_000) {
        let (n, t) = PARAMS[which];
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sk = SecretKey::random(&mut rng);
        // Operator IDs need not be 1..=n: any distinct nonzero IDs.
        let mut ids: Vec<OperatorId> = (0..n as u64).map(|i| id_base + i * 7919).collect();
        ids.shuffle(&mut rng);
        let shares = split_secret_key(&sk, t, &ids, &mut rng).expect("split");
        prop_assert_eq!(shares.len(), n);
        let cache = LagrangeCache::new();
        // A random t-subset, in random order.
        let mut subset = shares.clone();
        subset.shuffle(&mut rng);
        subset.truncate(t);
        let rec = reconstruct_secret_key(&subset, &cache).expect("reconstruct");
        prop_assert_eq!(rec.to_bytes(), sk.to_bytes());
        let pks: Vec<_> = subset.iter().map(|(id, s)| (*id, s.public_key())).collect();
        prop_assert_eq!(reconstruct_public_key(&pks, &cache).expect("pk"), sk.public_key());
        let root: [u8; 32] = rng.r#gen();
        let partials: Vec<(OperatorId, Signature)> = subset.iter().map(|(id, s)| (*id, s.sign(&root))).collect();
        let sig = reconstruct_signature(&partials, &cache).expect("sig");
        prop_assert!(sig.verify(&sk.public_key(), &root).is_ok());
        prop_assert_eq!(sig, sk.sign(&root));
        // More than t shares reconstruct too; fewer do not.
        let all = reconstruct_secret_key(&shares, &cache).expect("all");
        prop_assert_eq!(all.to_bytes(), sk.to_bytes());
        let few = reconstruct_secret_key(&subset[..t - 1], &cache).expect("few");
        prop_assert_ne!(few.to_bytes(), sk.to_bytes());
    }
}

/// How a planted bad set is broken.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Signature by the right key over another root.
    WrongRoot,
    /// Signature over the right root by another key.
    WrongKey,
    /// A curve point outside the G2 subgroup.
    NotInSubgroup,
    /// Two sets' signatures swapped (each is invalid alone, their sum is fine).
    Swapped,
}

fn build(
    seed: u64,
    n: usize,
    roots: usize,
    bad: &[(usize, Fault)],
) -> (Vec<SignatureSet>, Vec<bool>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let root_list: Vec<[u8; 32]> = (0..roots).map(|_| rng.r#gen()).collect();
    let keys: Vec<SecretKey> = (0..n).map(|_| SecretKey::random(&mut rng)).collect();
    let mut sets: Vec<SignatureSet> = keys
        .iter()
        .map(|sk| {
            // Mostly the first root (as in a slot), some others.
            let root = if rng.gen_bool(0.7) {
                root_list[0]
            } else {
                root_list[rng.gen_range(0..roots)]
            };
            SignatureSet {
                public_key: sk.public_key(),
                root,
                signature: sk.sign(&root),
            }
        })
        .collect();
    let mut is_bad = vec![false; n];
    for &(i, fault) in bad {
        let i = i % n;
        match fault {
            Fault::WrongRoot => {
                let other: [u8; 32] = rng.r#gen();
                sets[i].signature = keys[i].sign(&other);
                is_bad[i] = true;
            }
            Fault::WrongKey => {
                sets[i].signature = SecretKey::random(&mut rng).sign(&sets[i].root);
                is_bad[i] = true;
            }
            Fault::NotInSubgroup => {
                sets[i].signature = fixtures::non_subgroup_signature(seed ^ i as u64);
                is_bad[i] = true;
            }
            Fault::Swapped => {
                let j = (i + 1) % n;
                if j != i
                    && sets[i].root == sets[j].root
                    && sets[i].public_key != sets[j].public_key
                {
                    let (a, b) = (sets[i].signature, sets[j].signature);
                    sets[i].signature = b;
                    sets[j].signature = a;
                    is_bad[i] = true;
                    is_bad[j] = true;
                }
            }
        }
    }
    // Faults may undo each other (the same pair swapped twice): a set is bad exactly when
    // its signature differs from the honest one (BLS signing is deterministic).
    for (i, s) in sets.iter().enumerate() {
        is_bad[i] = s.signature != keys[i].sign(&s.root);
    }
    (sets, is_bad)
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::WrongRoot),
        Just(Fault::WrongKey),
        Just(Fault::NotInSubgroup),
        Just(Fault::Swapped)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn batches_report_exactly_the_bad_sets(
        seed in any::<u64>(),
        n in 1usize..40,
        roots in 1usize..4,
        bad in proptest::collection::vec((any::<usize>(), fault()), 0..5),
    ) {
        let (sets, is_bad) = build(seed, n, roots, &bad);
        let results = verify_sets_with_rng(&sets, &mut ChaCha20Rng::seed_from_u64(seed.wrapping_add(1)));
        prop_assert_eq!(results.len(), n);
        for (i, r) in results.iter().enumerate() {
            prop_assert_eq!(r.is_err(), is_bad[i], "set {} result {:?}", i, r);
            // The error names the reason.
            if let Err(e) = r {
                let subgroup = matches!(e, CryptoError::SignatureNotInSubgroup);
                prop_assert_eq!(subgroup, !sets[i].signature.in_subgroup());
            }
        }
    }
}

#[test]
fn parallel_batches_report_exactly_the_bad_sets() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("pool");
    let bad = [
        (3, Fault::WrongRoot),
        (17, Fault::NotInSubgroup),
        (40, Fault::Swapped),
        (61, Fault::WrongKey),
    ];
    let (sets, is_bad) = build(99, 64, 1, &bad);
    let results = verify_sets_parallel(&sets, &pool);
    let got: Vec<bool> = results.iter().map(Result::is_err).collect();
    assert_eq!(got, is_bad);
    assert_eq!(is_bad.iter().filter(|b| **b).count(), 5);
}
