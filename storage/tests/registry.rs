//! The contract-sync registry tables: round trips across a reopen, the bounded
//! malformed-event window, and the cursor check that refuses a whole batch.

use std::ops::ControlFlow;
use std::path::Path;

use ssv_storage::tables::{
    FeeRecipients, LiquidatedClusters, MalformedEvents, OperatorStatuses, OwnOperator, OwnerNonces,
    ValidatorEvents,
};
use ssv_storage::{
    Durability, LiquidatedCluster, MALFORMED_EVENTS_MAX, MALFORMED_TEXT_BYTES_MAX,
    MalformedEventRecord, OperatorRecord, OperatorStatus, StorageError, Store, StoreConfig,
    ValidatorEventsRecord, WriteOp, cluster_id, fixtures,
};

const ROOT: [u8; 32] = [0x42; 32];

fn open(dir: &Path) -> Store {
    let mut c = StoreConfig::new(dir, ROOT);
    c.durability = Durability::NoSyncSafe;
    c.geometry.max_size_bytes = 256 << 20;
    Store::open(c).expect("open")
}

fn malformed(block: u64) -> MalformedEventRecord {
    MalformedEventRecord {
        block,
        log_index: 3,
        tx_hash: [block as u8; 32],
        event: "ValidatorAdded".into(),
        reason: format!("bad shares in block {block}"),
    }
}

#[test]
fn registry_rows_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let share = fixtures::share(7, 4);
    let events = ValidatorEventsRecord {
        event_operator_ids: share.operator_ids.iter().rev().copied().collect(),
        added_block: 100,
        exit_requested_block: Some(120),
        own_operator_id: Some(share.operator_ids[1]),
    };
    let cluster = LiquidatedCluster {
        owner: [9; 20],
        operator_ids: vec![1, 2, 3, 4],
    };
    {
        let store = open(dir.path());
        store
            .write(vec![
                WriteOp::PutOperator(OperatorRecord {
                    id: 5,
                    public_key: b"pem".to_vec(),
                    owner: [1; 20],
                }),
                WriteOp::PutOperatorStatus(5, OperatorStatus { removed: true }),
                WriteOp::PutShare(share.clone()),
                WriteOp::PutValidatorEvents(share.validator_pubkey, events.clone()),
                WriteOp::SetOwnerNonce([2; 20], 11),
                WriteOp::SetFeeRecipient([2; 20], [3; 20]),
                WriteOp::PutLiquidatedCluster(cluster.clone()),
                WriteOp::SetOwnOperator(5),
                WriteOp::AppendMalformedEvent(malformed(1)),
                WriteOp::AdvanceSyncCursor(100),
            ])
            .unwrap();
    }
    let store = open(dir.path());
    let txn = store.read().unwrap();
    assert_eq!(
        txn.get::<OperatorStatuses>(&5)
            .unwrap()
            .unwrap()
            .to_owned()
            .unwrap(),
        OperatorStatus { removed: true }
    );
    assert_eq!(
        txn.get::<ValidatorEvents>(&share.validator_pubkey)
            .unwrap()
            .unwrap()
            .to_owned()
            .unwrap(),
        events
    );
    assert_eq!(
        txn.get::<OwnerNonces>(&[2; 20])
            .unwrap()
            .unwrap()
            .next
            .to_native(),
        11
    );
    assert_eq!(
        txn.get::<FeeRecipients>(&[2; 20])
            .unwrap()
            .unwrap()
            .recipient,
        [3; 20]
    );
    let id = cluster_id(&[9; 20], &[4, 3, 2, 1]);
    assert_eq!(cluster.id(), id);
    assert_ne!(
        id,
        cluster_id(&[8; 20], &[1, 2, 3, 4]),
        "the owner is part of the key"
    );
    assert_eq!(
        txn.get::<LiquidatedClusters>(&id)
            .unwrap()
            .unwrap()
            .to_owned()
            .unwrap(),
        cluster
    );
    assert_eq!(
        txn.get::<OwnOperator>(&ssv_storage::codec::Singleton)
            .unwrap()
            .unwrap()
            .id
            .to_native(),
        5
    );
    let (seq, first) = txn.last::<MalformedEvents>().unwrap().unwrap();
    assert_eq!((seq, first.to_owned().unwrap()), (0, malformed(1)));
    drop(txn);
    assert_eq!(store.sync_cursor().unwrap(), Some(100));

    // Removal: the share and its events row go together; the cluster row is deleted.
    store
        .write(vec![
            WriteOp::DeleteShare(share.validator_pubkey),
            WriteOp::DeleteLiquidatedCluster(id),
            WriteOp::DeleteOperator(5),
        ])
        .unwrap();
    let txn = store.read().unwrap();
    assert!(
        txn.get::<ValidatorEvents>(&share.validator_pubkey)
            .unwrap()
            .is_none()
    );
    assert!(txn.get::<LiquidatedClusters>(&id).unwrap().is_none());
    assert!(txn.get::<OperatorStatuses>(&5).unwrap().is_none());
    assert!(store.share(&share.validator_pubkey).unwrap().is_none());
}

#[test]
fn malformed_events_keep_the_newest_window() {
    let dir = tempfile::tempdir().unwrap();
    let total = MALFORMED_EVENTS_MAX as u64 + 37;
    {
        let store = open(dir.path());
        // Several per batch, so the window also slides inside one transaction.
        for chunk in (0..total).collect::<Vec<_>>().chunks(100) {
            store
                .write(
                    chunk
                        .iter()
                        .map(|b| WriteOp::AppendMalformedEvent(malformed(*b)))
                        .collect(),
                )
                .unwrap();
        }
    }
    let store = open(dir.path());
    let txn = store.read().unwrap();
    assert_eq!(
        txn.count::<MalformedEvents>().unwrap(),
        MALFORMED_EVENTS_MAX
    );
    let mut seen = Vec::new();
    txn.scan::<MalformedEvents>(None, |seq, m| {
        assert_eq!(m.block.to_native(), seq, "sequence numbers are contiguous");
        seen.push(seq);
        Ok(ControlFlow::Continue(()))
    })
    .unwrap();
    assert_eq!(
        seen.first().copied(),
        Some(total - MALFORMED_EVENTS_MAX as u64)
    );
    assert_eq!(seen.last().copied(), Some(total - 1));
}

#[test]
fn cursor_regression_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.write(vec![WriteOp::AdvanceSyncCursor(10)]).unwrap();
    for block in [10, 3] {
        let err = store
            .write(vec![
                WriteOp::SetOwnerNonce([1; 20], 1),
                WriteOp::AdvanceSyncCursor(block),
            ])
            .unwrap_err();
        assert!(
            matches!(err, StorageError::CursorRegression { block: b, cursor: 10 } if b == block),
            "{err}"
        );
    }
    // Nothing of the refused batches was stored, and the writer carries on.
    assert!(
        store
            .read()
            .unwrap()
            .get::<OwnerNonces>(&[1; 20])
            .unwrap()
            .is_none()
    );
    store.write(vec![WriteOp::AdvanceSyncCursor(11)]).unwrap();
    assert_eq!(store.sync_cursor().unwrap(), Some(11));
}

#[test]
fn a_refused_batch_does_not_take_queued_batches_with_it() {
    // Batches queued together may share a transaction; when one fails the writer retries
    // each alone, so only the bad batch is refused (folded or not, the outcome is the same).
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.write(vec![WriteOp::AdvanceSyncCursor(10)]).unwrap();
    let good = store
        .submit(vec![WriteOp::SetOwnerNonce([1; 20], 4)])
        .unwrap();
    let bad = store
        .submit(vec![
            WriteOp::SetOwnerNonce([2; 20], 4),
            WriteOp::AdvanceSyncCursor(9),
        ])
        .unwrap();
    let next = store.submit(vec![WriteOp::AdvanceSyncCursor(12)]).unwrap();
    assert!(good.recv().unwrap().is_ok());
    assert!(matches!(
        bad.recv().unwrap(),
        Err(StorageError::CursorRegression { .. })
    ));
    assert!(next.recv().unwrap().is_ok());
    let txn = store.read().unwrap();
    assert!(txn.get::<OwnerNonces>(&[1; 20]).unwrap().is_some());
    assert!(txn.get::<OwnerNonces>(&[2; 20]).unwrap().is_none());
    drop(txn);
    assert_eq!(store.sync_cursor().unwrap(), Some(12));
}

#[test]
fn bad_registry_records_are_refused_before_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut long = malformed(1);
    long.reason = "x".repeat(MALFORMED_TEXT_BYTES_MAX + 1);
    for op in [
        WriteOp::AppendMalformedEvent(long),
        WriteOp::PutValidatorEvents(
            [1; 48],
            ValidatorEventsRecord {
                event_operator_ids: vec![1, 2, 2, 4],
                added_block: 1,
                exit_requested_block: None,
                own_operator_id: None,
            },
        ),
        WriteOp::PutValidatorEvents(
            [1; 48],
            ValidatorEventsRecord {
                event_operator_ids: vec![4, 3, 2, 1],
                added_block: 1,
                exit_requested_block: None,
                own_operator_id: Some(9),
            },
        ),
        WriteOp::PutLiquidatedCluster(LiquidatedCluster {
            owner: [0; 20],
            operator_ids: vec![3, 2],
        }),
    ] {
        assert!(
            matches!(store.write(vec![op]), Err(StorageError::InvalidRecord(_))),
            "refused"
        );
    }
    assert_eq!(store.commits(), 0);
}

#[test]
fn registry_share_keeps_the_beacon_index_and_stored_secret() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let indexed = fixtures::share(3, 2);
    assert_eq!(indexed.validator_index, Some(3));
    store
        .write(vec![WriteOp::PutShare(indexed.clone())])
        .unwrap();
    // The contract sync knows no index; a later change (here: liquidation) must not erase it.
    let from_sync = ssv_storage::ShareRecord {
        validator_index: None,
        liquidated: true,
        ..indexed.clone()
    };
    store
        .write(vec![WriteOp::PutRegistryShare(from_sync.clone())])
        .unwrap();
    let stored = store.share(&indexed.validator_pubkey).unwrap().unwrap();
    assert_eq!(stored.validator_index, Some(3));
    assert!(stored.liquidated);
    // A new validator gets the record as given.
    let fresh = ssv_storage::ShareRecord {
        validator_index: None,
        ..fixtures::share(4, 2)
    };
    store
        .write(vec![WriteOp::PutRegistryShare(fresh.clone())])
        .unwrap();
    assert_eq!(store.share(&fresh.validator_pubkey).unwrap(), Some(fresh));
    let map = store.load_committees().unwrap();
    assert_eq!(map.validator_committee.len(), 2);
}

#[test]
fn set_validator_index_changes_only_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let share = ssv_storage::ShareRecord {
        validator_index: None,
        liquidated: true,
        ..fixtures::share(5, 2)
    };
    store.write(vec![WriteOp::PutShare(share.clone())]).unwrap();
    store
        .write(vec![
            WriteOp::SetValidatorIndex(share.validator_pubkey, 77),
            // Absent: nothing is created.
            WriteOp::SetValidatorIndex(fixtures::pubkey(999), 78),
        ])
        .unwrap();
    let stored = store.share(&share.validator_pubkey).unwrap().unwrap();
    assert_eq!(
        stored,
        ssv_storage::ShareRecord {
            validator_index: Some(77),
            ..share
        }
    );
    assert!(store.share(&fixtures::pubkey(999)).unwrap().is_none());
}
