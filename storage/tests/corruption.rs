//! Random damage to data pages (not the meta pages, covered in `store.rs`): opening and
//! reading must give data or a typed error, never a panic (nor a crash of the process).

use std::path::Path;

use ssv_storage::{Durability, Store, StoreConfig, db::data_file, fixtures};

const ROOT: [u8; 32] = [5; 32];
const PAGE: usize = 4096;
/// Damaged copies tried per run.
const TRIALS: u64 = 60;
const VALIDATORS: u64 = 2_000;

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir, ROOT);
    c.durability = Durability::NoSyncSafe;
    c.geometry.max_size_bytes = 64 << 20;
    c
}

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn damaged_data_pages_never_panic() {
    let pristine = tempfile::tempdir().unwrap();
    let used_pages = {
        let store = Store::open(config(pristine.path())).unwrap();
        fixtures::populate(&store, VALIDATORS, 50).unwrap();
        // Pages in use: everything up to the last written byte that is not zero.
        let bytes = std::fs::read(data_file(pristine.path())).unwrap();
        bytes
            .chunks(PAGE)
            .rposition(|p| p.iter().any(|&b| b != 0))
            .unwrap()
            + 1
    };
    assert!(used_pages > 10, "fixture too small: {used_pages} pages");
    let original = std::fs::read(data_file(pristine.path())).unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let (mut opened, mut read_ok, mut errors) = (0, 0, 0);
    for _ in 0..TRIALS {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = original.clone();
        for _ in 0..1 + next(&mut rng) % 8 {
            let page = 3 + (next(&mut rng) as usize) % (used_pages - 3);
            let at = page * PAGE + (next(&mut rng) as usize) % PAGE;
            bytes[at] ^= 1 << (next(&mut rng) % 8);
        }
        std::fs::write(data_file(dir.path()), &bytes).unwrap();
        let Ok(store) = Store::open(config(dir.path())) else {
            errors += 1;
            continue;
        };
        opened += 1;
        match store.load_committees() {
            Ok(map) => {
                read_ok += 1;
                // Whatever survived must be internally consistent.
                assert!(map.validator_committee.len() as u64 <= VALIDATORS + 1);
            }
            Err(_) => errors += 1,
        }
        for i in (0..VALIDATORS).step_by(97) {
            let _ = store.share(&fixtures::pubkey(i));
        }
        let _ = store.check_and_record(&[], &fixtures::attestations(50, 3));
    }
    println!(
        "{TRIALS} damaged copies: {opened} opened, {read_ok} fully read, {errors} typed errors"
    );
    // The seed is fixed, so this is deterministic: some damage must have been detected.
    // (Not all can be: MDBX keeps no page checksums, so a flipped bit inside a key or a
    // public key reads back as different valid data; rkyv validation catches broken layout.)
    assert!(errors > 0, "no damage detected in {TRIALS} trials");
}
