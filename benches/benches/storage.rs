//! Storage benchmarks: share lookup, committee load at start-up, one slot's batched write,
//! and the slashing check of 1,000 attestations. Fixtures are deterministic
//! (`ssv_storage::fixtures`).
//!
//! `cargo bench -p ssv-benches --bench storage`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ssv_storage::tables::Shares;
use ssv_storage::{DecidedRecord, Durability, Store, StoreConfig, WriteOp, fixtures};

const ROOT: [u8; 32] = [0x11; 32];
/// Committees in the fixtures (about 100 validators per committee at 10,000 validators).
const COMMITTEES: u64 = 100;

fn config(dir: &Path, durability: Durability) -> StoreConfig {
    let mut c = StoreConfig::new(dir, ROOT);
    c.durability = durability;
    c
}

fn populated(validators: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(config(dir.path(), Durability::NoSyncSafe)).expect("open");
    fixtures::populate(&store, validators, COMMITTEES).expect("populate");
    dir
}

fn share_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage/share_lookup");
    let dir = populated(10_000);
    let store = Store::open(config(dir.path(), Durability::Durable)).expect("open");
    let keys: Vec<_> = (0..1024u64)
        .map(|i| fixtures::pubkey(i * 9 % 10_000))
        .collect();
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function(BenchmarkId::new("in_place_one_txn", 10_000), |b| {
        b.iter(|| {
            let txn = store.read().expect("read");
            let shares = txn.table::<Shares>().expect("table");
            let mut sum = 0u64;
            for k in &keys {
                let share = txn.get_with(&shares, k).expect("get").expect("present");
                sum += share.operator_ids.len() as u64 + share.committee_id[0] as u64;
            }
            black_box(sum)
        })
    });
    group.bench_function(BenchmarkId::new("owned_txn_per_lookup", 10_000), |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for k in &keys {
                sum += store
                    .share(k)
                    .expect("get")
                    .expect("present")
                    .operator_ids
                    .len() as u64;
            }
            black_box(sum)
        })
    });
    group.finish();
}

fn committee_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage/committee_load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for validators in [10_000u64, 100_000] {
        let dir = populated(validators);
        group.throughput(Throughput::Elements(validators));
        // Open the database (schema check, writer thread) and build the committee map, as
        // the node does at start-up; with MDBX page validation (the default) and without.
        for validate_pages in [true, false] {
            let name = if validate_pages {
                "validated"
            } else {
                "unvalidated"
            };
            group.bench_with_input(BenchmarkId::new(name, validators), &validators, |b, &n| {
                b.iter(|| {
                    let mut c = config(dir.path(), Durability::Durable);
                    c.validate_pages = validate_pages;
                    let store = Store::open(c).expect("open");
                    let map = store.load_committees().expect("load");
                    assert_eq!(map.validator_committee.len() as u64, n);
                    black_box(map.committees.len())
                })
            });
        }
    }
    group.finish();
}

fn slot_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage/slot_write");
    group.sample_size(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(config(dir.path(), Durability::Durable)).expect("open");
    let mut height = 0u64;
    // One slot of an operator with 10,000 validators in 100 committees: ~313 attestation
    // duties in ~100 committee instances; each decided instance is one record here, plus the
    // sync cursor. Records per batch: 1 (unbatched baseline), 100, 1,000.
    for records in [1u64, 100, 1_000] {
        group.throughput(Throughput::Elements(records));
        group.bench_with_input(BenchmarkId::from_parameter(records), &records, |b, &n| {
            b.iter(|| {
                height += 1;
                let mut ops: Vec<WriteOp> = (0..n)
                    .map(|k| {
                        let mut identifier = [0u8; 56];
                        identifier[..8].copy_from_slice(&k.to_be_bytes());
                        WriteOp::PutDecided(DecidedRecord {
                            identifier,
                            height,
                            round: 1,
                            signers: vec![1, 2, 3],
                            value_root: [height as u8; 32],
                            message: vec![0xAB; 300],
                        })
                    })
                    .collect();
                ops.push(WriteOp::SetSyncCursor(height));
                black_box(store.write(ops).expect("write"))
            })
        });
    }
    group.finish();
}

fn slashing_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage/slashing_check_1000_attestations");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1_000));
    for (name, durability) in [
        ("durable", Durability::Durable),
        ("no_sync", Durability::NoSyncSafe),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(config(dir.path(), durability)).expect("open");
        let mut epoch = 1u64;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                epoch += 1;
                let atts = fixtures::attestations(1_000, epoch);
                let v = store.check_and_record(&[], &atts).expect("check");
                assert!(v.attestations.iter().all(|v| v.is_ok()));
                black_box(v)
            })
        });
    }
    group.finish();
}

criterion_group!(
    storage,
    share_lookup,
    committee_load,
    slot_write,
    slashing_check
);
criterion_main!(storage);
