//! The exporter's decided history against a `BTreeMap` model: range reads per identifier and
//! across identifiers, the read limit, pruning below a height, and a reopen.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::path::Path;

use ssv_storage::{DecidedRecord, Durability, Store, StoreConfig, WriteOp};

fn open(dir: &Path) -> Store {
    let mut c = StoreConfig::new(dir, [7; 32]);
    c.durability = Durability::NoSyncSafe;
    c.geometry.max_size_bytes = 256 << 20;
    c.decided_history = true;
    Store::open(c).expect("open")
}

fn record(id: u8, height: u64) -> DecidedRecord {
    let mut identifier = [0u8; 56];
    identifier[0] = id;
    identifier[55] = id.wrapping_mul(37);
    DecidedRecord {
        identifier,
        height,
        round: 1,
        signers: vec![1, 2, u64::from(id) % 4 + 3],
        value_root: [id ^ height as u8; 32],
        message: vec![id; 10],
    }
}

#[test]
fn ranges_limits_and_pruning_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut model: BTreeMap<([u8; 56], u64), DecidedRecord> = BTreeMap::new();
    let mut ops = Vec::new();
    for id in [3u8, 1, 200, 255] {
        for height in [0u64, 5, 6, 7, 100, u64::MAX - 1] {
            let r = record(id, height);
            model.insert((r.identifier, height), r.clone());
            ops.push(WriteOp::PutDecided(r));
        }
    }
    store.write(ops).unwrap();
    assert_eq!(store.decided_history_len().unwrap(), model.len());

    let all = |model: &BTreeMap<([u8; 56], u64), DecidedRecord>, from: u64, to: u64| {
        model
            .iter()
            .filter(|((_, h), _)| (from..=to).contains(h))
            .map(|(_, r)| r.clone())
            .collect::<Vec<_>>()
    };
    for (from, to) in [(0, 0), (5, 7), (6, 100), (8, 99), (0, u64::MAX)] {
        let got = store.decided_history_all(from, to, 1000, |_| true).unwrap();
        assert!(!got.truncated);
        assert_eq!(got.records, all(&model, from, to), "{from}..={to}");
        let one = record(200, 0).identifier;
        let got = store.decided_history(&one, from, to, 1000).unwrap();
        let want: Vec<_> = all(&model, from, to)
            .into_iter()
            .filter(|r| r.identifier == one)
            .collect();
        assert_eq!(got.records, want, "one identifier {from}..={to}");
    }
    // A filter on the identifier, and the limit.
    let only_1 = store
        .decided_history_all(0, u64::MAX, 1000, |id| id[0] == 1)
        .unwrap();
    assert_eq!(only_1.records.len(), 6);
    let capped = store.decided_history_all(0, u64::MAX, 5, |_| true).unwrap();
    assert!(capped.truncated);
    assert_eq!(capped.records, all(&model, 0, u64::MAX)[..5].to_vec());

    // Pruning keeps heights at or above the bound, and survives a reopen.
    store
        .write(vec![WriteOp::PruneDecidedHistory { below_height: 7 }])
        .unwrap();
    model.retain(|(_, h), _| *h >= 7);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.decided_history_len().unwrap(), model.len());
    let got = store
        .decided_history_all(0, u64::MAX, 1000, |_| true)
        .unwrap();
    assert_eq!(got.records, all(&model, 0, u64::MAX));
    // The highest-decided table is not pruned.
    let id = record(3, 0).identifier;
    assert_eq!(
        store.highest_decided(&id).unwrap().unwrap().height,
        u64::MAX - 1
    );
}
