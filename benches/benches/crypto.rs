//! Signature work: BLS primitives, batch verification per batch size (same root and distinct
//! roots), threshold reconstruction, the duty path against the reference path, and RSA-2048.
//!
//! `cargo bench -p ssv-benches --bench crypto` (single-threaded figures: prefix with
//! `taskset -c 1`). Per-signature figures use `Throughput::Elements`, so criterion reports
//! signatures per second; compare them within one run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ssv_crypto_pipeline::batch::{verify_sets, verify_sets_parallel};
use ssv_crypto_pipeline::bls::{HashToG2Cache, HashedRoot, Signature};
use ssv_crypto_pipeline::duty::{
    ValidatorPartials, reconstruct_and_verify, reconstruct_then_verify_each,
};
use ssv_crypto_pipeline::fixtures;
use ssv_crypto_pipeline::rsa::OperatorSecretKey;
use ssv_crypto_pipeline::threshold::{LagrangeCache, OperatorId, reconstruct_signature};

/// Batch sizes of the batch groups.
const SIZES: [usize; 4] = [16, 64, 256, 1024];

fn bls(c: &mut Criterion) {
    let mut g = c.benchmark_group("bls");
    let mut rng = fixtures::rng(1);
    let root = fixtures::root(&mut rng);
    let set = fixtures::same_root_sets(1, &root, 1)[0];
    let sk = fixtures::threshold_validators(1, 4, 3, 2)
        .remove(0)
        .secret_key;
    let bytes = set.signature.to_bytes();
    g.bench_function("verify_single", |b| {
        b.iter(|| black_box(set.signature.verify(&set.public_key, &set.root)))
    });
    g.bench_function("decompress", |b| {
        b.iter(|| black_box(Signature::from_bytes(&bytes)))
    });
    g.bench_function("subgroup_check", |b| {
        b.iter(|| black_box(set.signature.in_subgroup()))
    });
    g.bench_function("hash_to_g2", |b| {
        b.iter(|| black_box(HashedRoot::new(&root)))
    });
    g.bench_function("sign", |b| b.iter(|| black_box(sk.sign(&root))));
    let cache = HashToG2Cache::new();
    g.bench_function("sign_cached_root", |b| {
        b.iter(|| black_box(cache.sign(&sk, &root)))
    });
    g.finish();
}

fn batch(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new().build().expect("rayon pool");
    let mut rng = fixtures::rng(2);
    let root = fixtures::root(&mut rng);
    let mut g = c.benchmark_group("batch_same_root");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let sets = fixtures::same_root_sets(n, &root, n as u64);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("single_thread", n), &sets, |b, s| {
            b.iter(|| black_box(verify_sets(s)))
        });
        g.bench_with_input(BenchmarkId::new("pool", n), &sets, |b, s| {
            b.iter(|| black_box(verify_sets_parallel(s, &pool)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("batch_distinct_root");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for n in SIZES {
        let sets = fixtures::distinct_root_sets(n, n as u64);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("single_thread", n), &sets, |b, s| {
            b.iter(|| black_box(verify_sets(s)))
        });
    }
    g.finish();
    // A batch of 256 with 4 bad sets: the cost of bisection.
    let mut g = c.benchmark_group("batch_bisect");
    g.sample_size(10);
    let mut sets = fixtures::same_root_sets(256, &root, 7);
    for i in [5, 90, 91, 200] {
        sets[i].signature = sets[(i + 7) % 256].signature;
    }
    g.throughput(Throughput::Elements(256));
    g.bench_function("same_root_256_with_4_bad", |b| {
        b.iter(|| black_box(verify_sets(&sets)))
    });
    g.finish();
}

fn threshold(c: &mut Criterion) {
    let mut g = c.benchmark_group("threshold");
    let mut rng = fixtures::rng(3);
    let root = fixtures::root(&mut rng);
    for (n, t) in [(4, 3), (7, 5), (10, 7), (13, 9)] {
        let v = fixtures::threshold_validators(1, n, t, 3);
        let partials = fixtures::partials(&v, t, &root);
        let pairs: Vec<(OperatorId, Signature)> = partials[0]
            .iter()
            .map(|p| (p.operator_id, p.signature))
            .collect();
        let cache = LagrangeCache::new();
        g.bench_with_input(
            BenchmarkId::new("reconstruct", format!("t{t}")),
            &pairs,
            |b, p| b.iter(|| black_box(reconstruct_signature(p, &cache))),
        );
    }
    g.finish();
}

fn duty(c: &mut Criterion) {
    let mut g = c.benchmark_group("duty_path");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let mut rng = fixtures::rng(4);
    let root = fixtures::root(&mut rng);
    let validators = fixtures::threshold_validators(256, 4, 3, 4);
    let partials = fixtures::partials(&validators, 3, &root);
    let inputs: Vec<ValidatorPartials<'_>> = validators
        .iter()
        .zip(&partials)
        .map(|(v, p)| ValidatorPartials {
            validator_public_key: v.public_key,
            partials: p,
        })
        .collect();
    let cache = LagrangeCache::new();
    g.throughput(Throughput::Elements(256));
    g.bench_function("reconstruct_then_batch_256", |b| {
        b.iter(|| black_box(reconstruct_and_verify(&root, &inputs, &cache, None)))
    });
    g.throughput(Throughput::Elements(32));
    g.bench_function("reference_reconstruct_then_verify_each_32", |b| {
        b.iter(|| black_box(reconstruct_then_verify_each(&root, &inputs[..32], &cache)))
    });
    g.finish();
}

fn rsa(c: &mut Criterion) {
    let mut g = c.benchmark_group("rsa2048");
    let sk = OperatorSecretKey::generate().expect("RSA key generation");
    let pk = sk.public_key();
    let msg = [0x42u8; 300];
    let sig = sk.sign(&msg).expect("sign");
    let ct = pk.encrypt(&[7u8; 32]).expect("encrypt");
    g.bench_function("verify", |b| b.iter(|| black_box(pk.verify(&msg, &sig))));
    g.bench_function("sign", |b| b.iter(|| black_box(sk.sign(&msg))));
    g.bench_function("decrypt_share", |b| b.iter(|| black_box(sk.decrypt(&ct))));
    g.finish();
}

criterion_group!(benches, bls, batch, threshold, duty, rsa);
criterion_main!(benches);
