//! Integration tests of the store: open checks, writes, reads, slashing, interchange.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use ssv_storage::tables::{Shares, SlashingSummaries, TABLE_NAMES, Table};
use ssv_storage::{
    AttestationToSign, BlockToSign, CommitteeRecord, DecidedRecord, Durability, ExportForm,
    Interchange, OperatorRecord, Safe, SecretShare, SlashingViolation, StorageError, Store,
    StoreConfig, ValidatorMetadata, ValidatorStatus, WriteOp, db::data_file, fixtures,
};

const ROOT: [u8; 32] = [0x42; 32];

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir, ROOT);
    c.durability = Durability::NoSyncSafe;
    c.geometry.max_size_bytes = 256 << 20;
    c
}

fn open(dir: &Path) -> Store {
    Store::open(config(dir)).expect("open")
}

#[test]
fn garbage_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(data_file(dir.path()), vec![0xA5u8; 64 * 1024]).unwrap();
    let err = Store::open(config(dir.path())).unwrap_err();
    assert!(matches!(err, StorageError::Open { .. }), "{err}");
    assert!(err.to_string().contains("cannot open database"), "{err}");
}

#[test]
fn text_file_and_truncated_file_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let list = b"this is not a database, it is a shopping list\n";
    std::fs::write(data_file(dir.path()), list).unwrap();
    let err = Store::open(config(dir.path())).unwrap_err();
    assert!(matches!(err, StorageError::NotMdbx { .. }), "{err}");
    assert_eq!(
        std::fs::read(data_file(dir.path())).unwrap(),
        list,
        "file was overwritten"
    );

    // A real database cut to its first few hundred bytes.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fixtures::populate(&store, 100, 4).unwrap();
    }
    let bytes = std::fs::read(data_file(dir.path())).unwrap();
    std::fs::remove_file(dir.path().join("mdbx.lck")).ok();
    // Cut inside the meta pages or the used pages: refused at open.
    for len in [300, 4096, 12_000, 12_288, 20_000] {
        std::fs::write(data_file(dir.path()), &bytes[..len]).unwrap();
        let err = Store::open(config(dir.path()));
        assert!(err.is_err(), "truncated to {len} bytes: opened");
    }
    // Cut only the unused tail of the pre-allocated file: harmless, all data is there.
    std::fs::write(data_file(dir.path()), &bytes[..bytes.len() / 2]).unwrap();
    let store = open(dir.path());
    assert_eq!(
        store.load_committees().unwrap().validator_committee.len(),
        100
    );
}

#[test]
fn damaged_meta_pages_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fixtures::populate(&store, 100, 4).unwrap();
    }
    std::fs::remove_file(dir.path().join("mdbx.lck")).ok();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(data_file(dir.path()))
        .unwrap();
    // MDBX keeps three meta pages at the start of the file; scribble over all of them.
    for page in 0..3u64 {
        f.seek(SeekFrom::Start(page * 4096 + 16)).unwrap();
        f.write_all(&[0x5Au8; 512]).unwrap();
    }
    drop(f);
    let err = Store::open(config(dir.path())).unwrap_err();
    assert!(matches!(err, StorageError::Open { .. }), "{err}");
}

#[test]
fn foreign_mdbx_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let env = libmdbx::Database::<libmdbx::NoWriteMap>::open(dir.path()).unwrap();
        let txn = env.begin_rw_txn().unwrap();
        let main = txn.open_table(None).unwrap();
        txn.put(&main, b"hello", b"world", libmdbx::WriteFlags::empty())
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(config(dir.path())).unwrap_err();
    assert!(matches!(err, StorageError::ForeignDatabase { .. }), "{err}");
}

fn rewrite_meta(dir: &Path, key: &[u8], value: &[u8]) {
    let options = libmdbx::DatabaseOptions {
        max_tables: Some(16),
        ..Default::default()
    };
    let env = libmdbx::Database::<libmdbx::NoWriteMap>::open_with_options(dir, options).unwrap();
    let txn = env.begin_rw_txn().unwrap();
    let meta = txn.open_table(Some("meta")).unwrap();
    txn.put(&meta, key, value, libmdbx::WriteFlags::empty())
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn other_schema_version_and_network_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let mut schema = ssv_storage::db::SCHEMA_MAGIC.to_vec();
    schema.extend_from_slice(&(ssv_storage::SCHEMA_VERSION + 1).to_be_bytes());
    rewrite_meta(dir.path(), b"schema", &schema);
    let err = Store::open(config(dir.path())).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::SchemaVersion { found, expected }
                if found == ssv_storage::SCHEMA_VERSION + 1 && expected == ssv_storage::SCHEMA_VERSION
        ),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let mut other = config(dir.path());
    other.genesis_validators_root = [1; 32];
    let err = Store::open(other).unwrap_err();
    assert!(matches!(err, StorageError::GenesisMismatch { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    rewrite_meta(dir.path(), b"schema", b"not ours");
    let err = Store::open(config(dir.path())).unwrap_err();
    assert!(matches!(err, StorageError::ForeignDatabase { .. }), "{err}");
}

#[test]
fn corrupt_value_is_an_error_on_read_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fixtures::populate(&store, 10, 2).unwrap();
    }
    {
        let options = libmdbx::DatabaseOptions {
            max_tables: Some(16),
            ..Default::default()
        };
        let env = libmdbx::Database::<libmdbx::NoWriteMap>::open_with_options(dir.path(), options)
            .unwrap();
        let txn = env.begin_rw_txn().unwrap();
        let shares = txn.open_table(Some(<Shares as Table>::NAME)).unwrap();
        txn.put(
            &shares,
            fixtures::pubkey(3),
            [0xEEu8; 100],
            libmdbx::WriteFlags::empty(),
        )
        .unwrap();
        txn.put(&shares, [1u8; 5], [0u8; 8], libmdbx::WriteFlags::empty())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(dir.path());
    assert!(matches!(
        store.share(&fixtures::pubkey(3)),
        Err(StorageError::CorruptRecord { .. })
    ));
    assert!(store.share(&fixtures::pubkey(4)).unwrap().is_some());
    assert!(matches!(
        store.load_committees(),
        Err(StorageError::CorruptRecord { .. })
    ));
}

#[test]
fn tables_are_declared_once_and_created() {
    assert_eq!(TABLE_NAMES.len(), 19);
    assert!(TABLE_NAMES.contains(&<Shares as Table>::NAME));
}

#[test]
fn records_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let share = fixtures::share(5, 3);
    let operator = OperatorRecord {
        id: 9,
        public_key: b"-----BEGIN RSA PUBLIC KEY-----".to_vec(),
        owner: [3; 20],
    };
    let meta = ValidatorMetadata {
        pubkey: share.validator_pubkey,
        index: 77,
        status: ValidatorStatus::Active,
        activation_epoch: 12,
        fee_recipient: [9; 20],
    };
    let decided = |height: u64| DecidedRecord {
        identifier: [1; 56],
        height,
        round: 1,
        signers: vec![1, 2, 3],
        value_root: [height as u8; 32],
        message: vec![height as u8; 40],
    };
    {
        let store = open(dir.path());
        let before = store.commits();
        store
            .write(vec![
                WriteOp::PutOperator(operator.clone()),
                WriteOp::PutShare(share.clone()),
                WriteOp::PutMetadata(meta.clone()),
                WriteOp::PutDecided(decided(10)),
                WriteOp::PutDecided(decided(8)),
                WriteOp::SetSyncCursor(1234),
            ])
            .unwrap();
        assert_eq!(store.commits(), before + 1, "one batch, one commit");
    }
    let store = open(dir.path());
    assert_eq!(
        store.share(&share.validator_pubkey).unwrap(),
        Some(share.clone())
    );
    assert_eq!(store.sync_cursor().unwrap(), Some(1234));
    assert_eq!(store.highest_decided(&[1; 56]).unwrap(), Some(decided(10)));
    let txn = store.read().unwrap();
    let op = txn
        .get::<ssv_storage::tables::Operators>(&9)
        .unwrap()
        .unwrap();
    assert_eq!(op.to_owned().unwrap(), operator);
    let m = txn
        .get::<ssv_storage::tables::Metadata>(&meta.pubkey)
        .unwrap()
        .unwrap();
    assert_eq!(m.to_owned().unwrap(), meta);
    let c = txn
        .get::<ssv_storage::tables::Committees>(&share.committee_id)
        .unwrap()
        .unwrap();
    assert_eq!(
        c.to_owned().unwrap(),
        CommitteeRecord::new(share.operator_ids.clone()).unwrap()
    );
    drop(txn);
    // Invalid records are refused before they reach the writer.
    let mut bad = share.clone();
    bad.share_pubkeys.clear();
    assert!(matches!(
        store.write(vec![WriteOp::PutShare(bad)]),
        Err(StorageError::InvalidRecord(_))
    ));
    store
        .write(vec![WriteOp::DeleteShare(share.validator_pubkey)])
        .unwrap();
    assert_eq!(store.share(&share.validator_pubkey).unwrap(), None);
}

#[test]
fn decided_history_in_exporter_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.decided_history = true;
    let store = Store::open(c).unwrap();
    let ops = (0..5u64)
        .map(|h| {
            WriteOp::PutDecided(DecidedRecord {
                identifier: [2; 56],
                height: h,
                round: 1,
                signers: vec![1, 2, 3],
                value_root: [0; 32],
                message: vec![],
            })
        })
        .collect();
    store.write(ops).unwrap();
    let txn = store.read().unwrap();
    assert_eq!(
        txn.count::<ssv_storage::tables::DecidedHistory>().unwrap(),
        5
    );
    assert_eq!(store.highest_decided(&[2; 56]).unwrap().unwrap().height, 4);
}

#[test]
fn decrypted_secret_is_not_written_unless_configured() {
    for persist in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let secret = [0xC7u8; 32];
        let mut share = fixtures::share(1, 1);
        share.secret_share = Some(SecretShare(secret));
        {
            let mut c = config(dir.path());
            c.persist_decrypted_shares = persist;
            c.durability = Durability::Durable;
            let store = Store::open(c).unwrap();
            store.write(vec![WriteOp::PutShare(share.clone())]).unwrap();
            let stored = store.share(&share.validator_pubkey).unwrap().unwrap();
            assert_eq!(stored.secret_share.is_some(), persist);
        }
        let file = std::fs::read(data_file(dir.path())).unwrap();
        let found = file.windows(32).any(|w| w == secret);
        assert_eq!(
            found, persist,
            "persist={persist}: secret bytes in file = {found}"
        );
    }
}

#[test]
fn readers_do_not_block_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fixtures::populate(&store, 10, 2).unwrap();
    // A long-lived snapshot sees the old state while writes commit underneath it.
    let txn = store.read().unwrap();
    assert_eq!(txn.count::<Shares>().unwrap(), 10);
    for i in 10..20 {
        store
            .write(vec![WriteOp::PutShare(fixtures::share(i, 2))])
            .unwrap();
    }
    assert_eq!(txn.count::<Shares>().unwrap(), 10);
    drop(txn);
    assert_eq!(store.read().unwrap().count::<Shares>().unwrap(), 20);
}

#[test]
fn concurrent_batches_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let before = store.commits();
    let receivers: Vec<_> = (0..200u64)
        .map(|i| {
            store
                .submit(vec![WriteOp::PutShare(fixtures::share(i, 8))])
                .unwrap()
        })
        .collect();
    let mut seqs: Vec<u64> = receivers
        .iter()
        .map(|r| r.recv().unwrap().unwrap().commit_seq)
        .collect();
    seqs.dedup();
    let commits = store.commits() - before;
    assert!((1..=200).contains(&commits));
    assert_eq!(
        seqs.len() as u64,
        commits,
        "acks carry the commit that wrote them"
    );
    assert_eq!(
        store.load_committees().unwrap().validator_committee.len(),
        200
    );
}

#[test]
fn committee_map_matches_shares() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fixtures::populate(&store, 1000, 37).unwrap();
    let map = store.load_committees().unwrap();
    assert_eq!(map.committees.len(), 37);
    assert_eq!(map.validator_committee.len(), 1000);
    let total: usize = map.committees.values().map(|c| c.validators.len()).sum();
    assert_eq!(total, 1000);
    let share = fixtures::share(123, 37);
    let entry = &map.committees[&share.committee_id];
    assert_eq!(entry.operator_ids, share.operator_ids);
    assert!(
        entry
            .validators
            .iter()
            .any(|v| v.pubkey == share.validator_pubkey && v.index == Some(123))
    );
}

fn att(pk: u8, s: u64, t: u64) -> AttestationToSign {
    AttestationToSign {
        pubkey: [pk; 48],
        source_epoch: s,
        target_epoch: t,
        signing_root: [(s * 31 + t) as u8; 32],
    }
}

#[test]
fn slashing_rules_and_batch_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let v = store
        .check_and_record(
            &[],
            &[
                att(1, 10, 20),
                att(2, 10, 20),
                att(1, 10, 20),
                att(1, 11, 20),
            ],
        )
        .unwrap();
    assert_eq!(v.attestations[0], Ok(Safe::Recorded));
    assert_eq!(v.attestations[1], Ok(Safe::Recorded));
    assert_eq!(v.attestations[2], Ok(Safe::SameData));
    assert_eq!(
        v.attestations[3],
        Err(SlashingViolation::DoubleVote {
            existing_source: 10
        })
    );
    let v = store
        .check_and_record(
            &[],
            &[
                att(1, 9, 21),
                att(1, 11, 19),
                att(1, 5, 4),
                att(1, 15, 17),
                att(1, 12, 30),
            ],
        )
        .unwrap();
    assert_eq!(
        v.attestations[0],
        Err(SlashingViolation::SurroundsExisting { existing: (10, 20) })
    );
    assert_eq!(
        v.attestations[1],
        Err(SlashingViolation::SurroundedByExisting { existing: (10, 20) })
    );
    assert_eq!(
        v.attestations[2],
        Err(SlashingViolation::SourceExceedsTarget)
    );
    assert_eq!(
        v.attestations[3],
        Err(SlashingViolation::SurroundedByExisting { existing: (10, 20) })
    );
    assert_eq!(v.attestations[4], Ok(Safe::Recorded));
    // Below the lowest target: refused even though it conflicts with nothing.
    let v = store.check_and_record(&[], &[att(1, 1, 2)]).unwrap();
    assert_eq!(
        v.attestations[0],
        Err(SlashingViolation::SourceBelowLowerBound { low_source: 10 })
    );

    let block = |slot: u64, root: u8| BlockToSign {
        pubkey: [1; 48],
        slot,
        signing_root: [root; 32],
    };
    let v = store
        .check_and_record(
            &[
                block(100, 1),
                block(100, 1),
                block(100, 2),
                block(99, 3),
                block(101, 4),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(
        v.blocks,
        vec![
            Ok(Safe::Recorded),
            Ok(Safe::SameData),
            Err(SlashingViolation::DoubleProposal),
            Err(SlashingViolation::SlotNotAboveLowerBound { low_slot: 100 }),
            Ok(Safe::Recorded)
        ]
    );
}

#[test]
fn interchange_export_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .check_and_record(&[], &[att(1, 1, 2), att(1, 2, 3), att(2, 5, 9)])
        .unwrap();
    store
        .check_and_record(
            &[BlockToSign {
                pubkey: [1; 48],
                slot: 64,
                signing_root: [8; 32],
            }],
            &[],
        )
        .unwrap();
    let complete = store.export_interchange(ExportForm::Complete).unwrap();
    assert_eq!(complete.data.len(), 2);
    assert_eq!(complete.data[0].signed_attestations.len(), 2);
    assert_eq!(complete.data[0].signed_blocks.len(), 1);
    let minified = store.export_interchange(ExportForm::Minified).unwrap();
    assert_eq!(minified.data[0].signed_attestations.len(), 1);
    assert_eq!(minified.data[0].signed_attestations[0].source_epoch, "2");
    assert_eq!(minified.data[0].signed_attestations[0].target_epoch, "3");

    for doc in [complete, minified] {
        let json = doc.to_json();
        let parsed = Interchange::from_json(json.as_bytes()).unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        let other = open(dir2.path());
        other.import_interchange(&parsed).unwrap();
        // The importer refuses everything the exporter signed, and allows what comes next.
        let v = other
            .check_and_record(
                &[],
                &[att(1, 2, 3), att(1, 1, 2), att(2, 5, 9), att(1, 3, 4)],
            )
            .unwrap();
        assert!(
            v.attestations[0].is_err() && v.attestations[1].is_err() && v.attestations[2].is_err()
        );
        assert_eq!(v.attestations[3], Ok(Safe::Recorded));
        let b = other
            .check_and_record(
                &[BlockToSign {
                    pubkey: [1; 48],
                    slot: 64,
                    signing_root: [8; 32],
                }],
                &[],
            )
            .unwrap();
        assert!(b.blocks[0].is_err());
    }

    // Another network's document is refused and changes nothing.
    let mut foreign = store.export_interchange(ExportForm::Minified).unwrap();
    foreign.metadata.genesis_validators_root = format!("0x{}", "00".repeat(32));
    let dir3 = tempfile::tempdir().unwrap();
    let third = open(dir3.path());
    assert!(matches!(
        third.import_interchange(&foreign),
        Err(StorageError::Interchange(_))
    ));
    assert!(
        third
            .export_interchange(ExportForm::Complete)
            .unwrap()
            .data
            .is_empty()
    );
}

#[test]
fn vectors_folder_passes_through_the_runner_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/slashing-interchange");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eip3076-vectors"))
        .arg("--vectors")
        .arg(&dir)
        .output()
        .expect("run eip3076-vectors");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            p.extension().is_some_and(|x| x == "json") && !p.ends_with("schema.json")
        })
        .count();
    assert!(files >= 30, "vector folder has only {files} cases");
    assert_eq!(
        last,
        format!("{files} passed, 0 failed"),
        "runner output:\n{stdout}"
    );
    assert!(out.status.success());
}

#[test]
fn runner_reports_failures_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/slashing-interchange/single_validator_single_block.json");
    let text = std::fs::read_to_string(src).unwrap();
    // Flip the expectation of the first check: the runner must now report a failure.
    let broken = text.replacen("\"should_succeed\": false", "\"should_succeed\": true", 1);
    assert_ne!(broken, text);
    std::fs::write(dir.path().join("broken.json"), broken).unwrap();
    std::fs::write(dir.path().join("ok.json"), text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eip3076-vectors"))
        .arg("--vectors")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("FAIL broken.json"), "{stdout}");
    assert_eq!(lines[1], "1 passed, 1 failed");
    assert!(!out.status.success());
}

#[test]
fn pruning_keeps_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let history: Vec<_> = (1..=100).map(|e| att(1, e - 1, e)).collect();
    assert!(
        store
            .check_and_record(&[], &history)
            .unwrap()
            .attestations
            .iter()
            .all(|v| v.is_ok())
    );
    let blocks: Vec<_> = (1..=10)
        .map(|slot| BlockToSign {
            pubkey: [1; 48],
            slot: slot * 32,
            signing_root: [1; 32],
        })
        .collect();
    store.check_and_record(&blocks, &[]).unwrap();
    let summary = store
        .prune_slashing(ssv_storage::PruneBelow {
            attestation_target_epoch: 90,
            block_slot: 200,
        })
        .unwrap();
    assert_eq!(summary.attestations_deleted, 89);
    assert_eq!(summary.blocks_deleted, 6);
    let v = store
        .check_and_record(
            &[BlockToSign {
                pubkey: [1; 48],
                slot: 100,
                signing_root: [2; 32],
            }],
            &[
                att(1, 49, 50),
                att(1, 88, 95),
                AttestationToSign {
                    signing_root: [0xEE; 32],
                    ..att(1, 99, 100)
                },
                att(1, 100, 101),
            ],
        )
        .unwrap();
    assert!(v.blocks[0].is_err(), "pruned slot signed again");
    assert!(v.attestations[0].is_err(), "pruned epoch signed again");
    assert!(v.attestations[1].is_err(), "surround of kept records");
    assert!(v.attestations[2].is_err(), "double vote");
    assert_eq!(v.attestations[3], Ok(Safe::Recorded));
    assert_eq!(
        store.export_interchange(ExportForm::Complete).unwrap().data[0]
            .signed_attestations
            .len(),
        12
    );
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

/// Opens the raw MDBX file (as a damaged disk or a hand edit would change it).
fn raw_edit(
    dir: &Path,
    edit: impl FnOnce(&libmdbx::Transaction<'_, libmdbx::RW, libmdbx::NoWriteMap>),
) {
    let options = libmdbx::DatabaseOptions {
        max_tables: Some(32),
        ..Default::default()
    };
    let env = libmdbx::Database::<libmdbx::NoWriteMap>::open_with_options(dir, options).unwrap();
    let txn = env.begin_rw_txn().unwrap();
    edit(&txn);
    txn.commit().unwrap();
}

/// The summary row never decides alone: with one validator's row deleted and another's
/// overwritten with garbage, every double vote, surround vote and double proposal is still
/// refused from the records themselves, and a new message for those validators is refused
/// too (their pruned history's bounds are unknown: fail closed) while other validators sign.
#[test]
fn damaged_summary_rows_still_refuse() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let v = store
            .check_and_record(
                &[BlockToSign {
                    pubkey: [1; 48],
                    slot: 640,
                    signing_root: [1; 32],
                }],
                &[
                    att(1, 10, 20),
                    att(1, 11, 21),
                    att(2, 10, 20),
                    att(2, 11, 21),
                ],
            )
            .unwrap();
        assert!(v.blocks.iter().chain(&v.attestations).all(|v| v.is_ok()));
    }
    raw_edit(dir.path(), |txn| {
        let t = txn
            .open_table(Some(<SlashingSummaries as Table>::NAME))
            .unwrap();
        txn.del(&t, [1u8; 48], None).unwrap();
        txn.put(&t, [2u8; 48], [0xEEu8; 7], libmdbx::WriteFlags::empty())
            .unwrap();
    });
    let store = open(dir.path());
    for pk in [1u8, 2] {
        let v = store
            .check_and_record(
                &[],
                &[
                    AttestationToSign {
                        signing_root: [0xAB; 32],
                        ..att(pk, 10, 20)
                    },
                    att(pk, 9, 22),
                    att(pk, 12, 19),
                    att(pk, 30, 31),
                ],
            )
            .unwrap();
        assert_eq!(
            v.attestations[0],
            Err(SlashingViolation::DoubleVote {
                existing_source: 10
            }),
            "validator {pk}"
        );
        assert_eq!(
            v.attestations[1],
            Err(SlashingViolation::SurroundsExisting { existing: (10, 20) }),
            "validator {pk}"
        );
        assert_eq!(
            v.attestations[2],
            Err(SlashingViolation::SurroundedByExisting { existing: (10, 20) }),
            "validator {pk}"
        );
        let fail_closed = if pk == 1 {
            SlashingViolation::MissingWatermark
        } else {
            SlashingViolation::UnreadableWatermark
        };
        assert_eq!(v.attestations[3], Err(fail_closed), "validator {pk}");
    }
    let v = store
        .check_and_record(
            &[
                BlockToSign {
                    pubkey: [1; 48],
                    slot: 640,
                    signing_root: [9; 32],
                },
                BlockToSign {
                    pubkey: [1; 48],
                    slot: 700,
                    signing_root: [9; 32],
                },
            ],
            &[att(3, 30, 31)],
        )
        .unwrap();
    assert_eq!(v.blocks[0], Err(SlashingViolation::DoubleProposal));
    assert_eq!(v.blocks[1], Err(SlashingViolation::MissingWatermark));
    assert_eq!(
        v.attestations[0],
        Ok(Safe::Recorded),
        "an intact validator signs"
    );
}

/// The Go node's bump for validators not active here: a validator new to this store, or one
/// whose last attestation here is old (it may have signed elsewhere since), gets nothing at
/// or below the current epoch / slot; one that attested here in the last epoch (a restart)
/// keeps its own records.
#[test]
fn validators_not_active_here_are_bumped_to_the_current_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .check_and_record(&[], &[att(1, 18, 19), att(3, 10, 11)])
        .unwrap();
    let bumped = store
        .bump_slashing_protection(&[[1; 48], [2; 48], [3; 48]], 20, 20 * 32 + 3)
        .unwrap();
    assert_eq!(bumped, 3, "the slot for all; the epochs for 2 and 3 only");
    let v = store
        .check_and_record(
            &[
                BlockToSign {
                    pubkey: [2; 48],
                    slot: 20 * 32 + 3,
                    signing_root: [1; 32],
                },
                BlockToSign {
                    pubkey: [2; 48],
                    slot: 20 * 32 + 4,
                    signing_root: [1; 32],
                },
            ],
            &[
                att(2, 19, 20),
                att(2, 20, 21),
                att(1, 19, 20),
                att(3, 19, 20),
                att(3, 20, 21),
            ],
        )
        .unwrap();
    assert!(v.blocks[0].is_err(), "the current slot");
    assert_eq!(v.blocks[1], Ok(Safe::Recorded));
    assert!(v.attestations[0].is_err(), "new: the current epoch");
    assert_eq!(v.attestations[1], Ok(Safe::Recorded));
    assert_eq!(
        v.attestations[2],
        Ok(Safe::Recorded),
        "active here: a restart"
    );
    assert!(v.attestations[3].is_err(), "stale history: bumped");
    assert_eq!(v.attestations[4], Ok(Safe::Recorded));
    // A second bump in the same epoch changes nothing.
    assert_eq!(
        store
            .bump_slashing_protection(&[[1; 48], [2; 48], [3; 48]], 20, 20 * 32 + 3)
            .unwrap(),
        0
    );
}

/// A validator added back while the node runs is bumped even when it attested here in the
/// last epoch (the Go node bumps at the contract event): it was stopped here since, and may
/// have signed elsewhere, so nothing at or below the current epoch is signed for it.
#[test]
fn a_forced_bump_covers_validators_active_here() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Both attested here in the previous epoch.
    store
        .check_and_record(&[], &[att(1, 18, 19), att(2, 18, 19)])
        .unwrap();
    store
        .bump_slashing_protection(&[[1; 48]], 20, 20 * 32 + 3)
        .unwrap();
    assert_eq!(
        store
            .bump_slashing_protection_forced(&[[2; 48]], 20, 20 * 32 + 3)
            .unwrap(),
        1
    );
    let v = store
        .check_and_record(&[], &[att(1, 19, 20), att(2, 19, 20), att(2, 20, 21)])
        .unwrap();
    assert_eq!(
        v.attestations[0],
        Ok(Safe::Recorded),
        "a restart attests on"
    );
    assert!(
        v.attestations[1].is_err(),
        "re-added: not in the current epoch"
    );
    assert_eq!(v.attestations[2], Ok(Safe::Recorded), "but in the next");
}

/// An import into a validator whose records lost their watermark row is refused whole.
#[test]
fn import_refuses_records_without_a_watermark() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.check_and_record(&[], &[att(1, 99, 100)]).unwrap();
    }
    raw_edit(dir.path(), |txn| {
        let t = txn
            .open_table(Some(<SlashingSummaries as Table>::NAME))
            .unwrap();
        txn.del(&t, [1u8; 48], None).unwrap();
    });
    let store = open(dir.path());
    let doc = Interchange::from_json(
        format!(
            r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"0x{}"}},
            "data":[{{"pubkey":"0x{}","signed_blocks":[],
            "signed_attestations":[{{"source_epoch":"49","target_epoch":"50"}}]}}]}}"#,
            hex::encode(ROOT),
            hex::encode([1u8; 48])
        )
        .as_bytes(),
    )
    .unwrap();
    let err = store.import_interchange(&doc).unwrap_err();
    assert!(err.to_string().contains("refusing to merge"), "{err}");
    // The record at target 100 is still there and still refuses another vote.
    let v = store
        .check_and_record(
            &[],
            &[AttestationToSign {
                signing_root: [0xCD; 32],
                ..att(1, 99, 100)
            }],
        )
        .unwrap();
    assert!(v.attestations[0].is_err());
}

/// The read-only check says what `check_and_record` would, records nothing, and sees the
/// same damaged-watermark refusals.
#[test]
fn attestation_violations_check_without_recording() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .check_and_record(&[], &[att(1, 10, 20), att(1, 11, 21)])
        .unwrap();
    let double = AttestationToSign {
        signing_root: [0xAB; 32],
        ..att(1, 10, 20)
    };
    let got = store
        .attestation_violations(&[double, att(1, 10, 20), att(1, 9, 22), att(1, 21, 22)])
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(SlashingViolation::DoubleVote {
                existing_source: 10
            }),
            None,
            Some(SlashingViolation::SurroundsExisting { existing: (10, 20) }),
            None,
        ]
    );
    // Nothing was recorded: the new one is still new.
    let v = store.check_and_record(&[], &[att(1, 21, 22)]).unwrap();
    assert_eq!(v.attestations[0], Ok(Safe::Recorded));
}

/// The value check's read-only question on blocks: a slot already holding a block, or not
/// above the watermark, is refused; a later slot and an unknown validator are not; nothing is
/// recorded by asking.
#[test]
fn block_slot_violation_reads_without_recording() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.block_slot_violation(&[1; 48], 10).unwrap(), None);
    assert_eq!(
        store.block_slot_violation(&[1; 48], 10).unwrap(),
        None,
        "asking records nothing"
    );
    store
        .check_and_record(
            &[BlockToSign {
                pubkey: [1; 48],
                slot: 10,
                signing_root: [1; 32],
            }],
            &[],
        )
        .unwrap();
    assert_eq!(
        store.block_slot_violation(&[1; 48], 10).unwrap(),
        Some(SlashingViolation::DoubleProposal)
    );
    assert_eq!(
        store.block_slot_violation(&[1; 48], 9).unwrap(),
        Some(SlashingViolation::SlotNotAboveLowerBound { low_slot: 10 })
    );
    assert_eq!(store.block_slot_violation(&[1; 48], 11).unwrap(), None);
    assert_eq!(store.block_slot_violation(&[2; 48], 10).unwrap(), None);
}

/// A database written before the `own_shares` and `own_operator_ids` tables existed (the
/// tables dropped here, as the previous version left it) still opens, keeps what it
/// stored, and gets the tables: own shares of several operators are then stored and go
/// with their validator, and further own operator IDs are stored.
#[test]
fn a_database_without_the_own_shares_table_opens_and_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let share = fixtures::share(1, 1);
    {
        let store = open(dir.path());
        store.write(vec![WriteOp::PutShare(share.clone())]).unwrap();
    }
    raw_edit(dir.path(), |txn| {
        for name in ["own_shares", "own_operator_ids"] {
            let t = txn.open_table(Some(name)).unwrap();
            // SAFETY: no other handle or cursor of this table is open in this process.
            unsafe { txn.drop_table(t) }.unwrap();
        }
    });
    raw_edit(dir.path(), |txn| {
        assert!(txn.open_table(Some("own_shares")).is_err(), "dropped");
        assert!(txn.open_table(Some("own_operator_ids")).is_err(), "dropped");
    });
    let store = open(dir.path());
    let pk = share.validator_pubkey;
    assert_eq!(store.share(&pk).unwrap().unwrap(), share);
    assert_eq!(store.own_share(&pk, share.operator_ids[0]).unwrap(), None);
    let other = share.operator_ids[1];
    store
        .write(vec![WriteOp::PutOwnShare(
            pk,
            other,
            ssv_storage::OwnShareRecord {
                encrypted_share: vec![7; 256],
            },
        )])
        .unwrap();
    assert_eq!(store.own_share(&pk, other).unwrap(), Some(vec![7; 256]));
    let bad = store.write(vec![WriteOp::PutOwnShare(
        pk,
        other,
        ssv_storage::OwnShareRecord {
            encrypted_share: Vec::new(),
        },
    )]);
    assert!(bad.is_err(), "an empty own share is refused");
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.own_share(&pk, other).unwrap(), Some(vec![7; 256]));
    store.write(vec![WriteOp::DeleteShare(pk)]).unwrap();
    assert_eq!(store.own_share(&pk, other).unwrap(), None);
    // The table of our further operator IDs (contract sync hosting several) is there too.
    store
        .write(vec![WriteOp::SetOwnOperator(2), WriteOp::AddOwnOperator(5)])
        .unwrap();
    let txn = store.read().unwrap();
    let got = txn
        .get::<ssv_storage::tables::OwnOperatorIds>(&5)
        .unwrap()
        .map(|r| r.id.to_native());
    assert_eq!(got, Some(5));
    assert!(
        txn.get::<ssv_storage::tables::OwnOperatorIds>(&2)
            .unwrap()
            .is_none()
    );
}
