//! The batching verifier service and the reconstruct-then-verify duty path.

use std::time::Duration;

use futures::executor::block_on;
use ssv_crypto_pipeline::fixtures;
use ssv_crypto_pipeline::{
    BatchVerifier, CryptoError, LagrangeCache, Partial, SignatureSet, ValidatorPartials,
    VerifierConfig, reconstruct_and_verify, reconstruct_then_verify_each,
};

#[test]
fn verifier_service_answers_each_set() {
    let root = [3u8; 32];
    let mut sets = fixtures::same_root_sets(40, &root, 1);
    sets.extend(fixtures::distinct_root_sets(8, 2));
    // Plant: a wrong-root signature, and a non-subgroup one.
    sets[5].signature = sets[6].signature;
    sets[44].signature = fixtures::non_subgroup_signature(3);
    let verifier = BatchVerifier::new(VerifierConfig {
        batch_size: 16,
        flush_deadline: Duration::from_millis(2),
        queue_capacity: 1024,
        pool_threads: 2,
    })
    .expect("verifier");
    let futures: Vec<_> = sets
        .iter()
        .map(|s| verifier.submit(*s).expect("queued"))
        .collect();
    let results = block_on(futures::future::join_all(futures));
    for (i, r) in results.iter().enumerate() {
        match i {
            5 => assert_eq!(r, &Err(CryptoError::VerificationFailed)),
            44 => assert_eq!(r, &Err(CryptoError::SignatureNotInSubgroup)),
            _ => assert_eq!(r, &Ok(()), "set {i}"),
        }
    }
    let stats = verifier.stats();
    assert_eq!(
        stats.submitted.load(std::sync::atomic::Ordering::Relaxed),
        48
    );
    assert_eq!(
        stats.failed_sets.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert!(stats.batches.load(std::sync::atomic::Ordering::Relaxed) >= 3);

    // A lone set is flushed by the deadline, not held back.
    let lone = verifier.submit(sets[0]).expect("queued");
    assert_eq!(block_on(lone), Ok(()));
    drop(verifier);
}

#[test]
fn verifier_rejects_bad_config() {
    let bad = |c: VerifierConfig| BatchVerifier::new(c).err();
    assert!(
        bad(VerifierConfig {
            batch_size: 0,
            ..VerifierConfig::default()
        })
        .is_some()
    );
    assert!(
        bad(VerifierConfig {
            queue_capacity: 0,
            ..VerifierConfig::default()
        })
        .is_some()
    );
    assert!(
        bad(VerifierConfig {
            flush_deadline: Duration::from_secs(60),
            ..VerifierConfig::default()
        })
        .is_some()
    );
}

#[test]
fn pending_results_are_delivered_on_shutdown() {
    let root = [9u8; 32];
    let sets: Vec<SignatureSet> = fixtures::same_root_sets(10, &root, 4);
    let verifier = BatchVerifier::new(VerifierConfig {
        batch_size: 1000,
        flush_deadline: Duration::from_millis(500),
        queue_capacity: 64,
        pool_threads: 1,
    })
    .expect("verifier");
    let futures: Vec<_> = sets
        .iter()
        .map(|s| verifier.submit(*s).expect("queued"))
        .collect();
    drop(verifier); // closes the queue before the deadline: the batch is flushed now.
    for r in block_on(futures::future::join_all(futures)) {
        assert_eq!(r, Ok(()));
    }
}

#[test]
fn duty_path_reconstructs_verifies_and_names_culprits() {
    let (n, t) = (4, 3);
    let root = [7u8; 32];
    let validators = fixtures::threshold_validators(12, n, t, 5);
    let mut partials = fixtures::partials(&validators, t, &root);
    // Validator 2: operator 2 signed another root. Validator 7: operator 3 sent a
    // non-subgroup point. Validator 9: operators 1 and 3 both bad.
    partials[2][1].signature = validators[2].shares[1].1.sign(&[8u8; 32]);
    partials[7][2].signature = fixtures::non_subgroup_signature(7);
    partials[9][0].signature = validators[9].shares[0].1.sign(&[8u8; 32]);
    partials[9][2].signature = validators[9].shares[1].1.sign(&root);
    // Validator 11: the share keys registered for it are another validator's: every partial
    // verifies against them, the reconstruction does not.
    let foreign: Vec<Partial> = fixtures::partials(&validators[10..11], t, &root)[0].clone();
    partials[11] = foreign;
    let inputs: Vec<ValidatorPartials<'_>> = validators
        .iter()
        .zip(&partials)
        .map(|(v, p)| ValidatorPartials {
            validator_public_key: v.public_key,
            partials: p,
        })
        .collect();
    let cache = LagrangeCache::new();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    for results in [
        reconstruct_and_verify(&root, &inputs, &cache, None),
        reconstruct_and_verify(&root, &inputs, &cache, Some(&pool)),
    ] {
        for (i, r) in results.iter().enumerate() {
            match i {
                2 => assert_eq!(r, &Err(CryptoError::InvalidPartials(vec![2]))),
                7 => assert_eq!(r, &Err(CryptoError::InvalidPartials(vec![3]))),
                9 => assert_eq!(r, &Err(CryptoError::InvalidPartials(vec![1, 3]))),
                11 => assert_eq!(r, &Err(CryptoError::ReconstructionMismatch)),
                _ => assert_eq!(
                    r,
                    &Ok(validators[i].secret_key.sign(&root)),
                    "validator {i}"
                ),
            }
        }
    }
    // The reference path agrees on which validators succeed.
    let reference = reconstruct_then_verify_each(&root, &inputs, &cache);
    for (i, r) in reference.iter().enumerate() {
        assert_eq!(r.is_ok(), ![2, 7, 9, 11].contains(&i), "validator {i}");
    }
    // One signer set was used throughout: one cache entry.
    assert_eq!(cache.len(), 1);
}
