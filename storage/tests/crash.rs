//! Crash test: a child process (this test binary, re-executed in child mode) writes batches
//! and records slashing protection with durable commits, printing a line after each
//! acknowledgement; the parent SIGKILLs it at a random moment, reopens the database, and
//! checks that every acknowledged write is there and that slashing protection still refuses
//! what it refused (or would have refused) before the crash. Several rounds run on the same
//! database, each resuming where the last one's durable state ended.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ssv_storage::{
    AttestationToSign, BlockToSign, Durability, Safe, Store, StoreConfig, WriteOp, fixtures,
};

const ROOT: [u8; 32] = [3; 32];
const CHILD_ENV: &str = "SSV_STORAGE_CRASH_CHILD_DIR";
/// Rounds of spawn-and-kill.
const ROUNDS: usize = 20;
/// Bound on the child's loop (it is killed long before).
const CHILD_ITERATIONS_MAX: u64 = 1_000_000;
const SIGNER: [u8; 48] = [9; 48];

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir, ROOT);
    c.durability = Durability::Durable;
    c.geometry.max_size_bytes = 256 << 20;
    c
}

fn signing_root(i: u64) -> [u8; 32] {
    let mut r = [0u8; 32];
    r[..8].copy_from_slice(&i.to_be_bytes());
    r[31] = 1;
    r
}

/// Child mode: only does something when re-executed by `sigkill_at_random_points`.
#[test]
#[ignore = "child process of sigkill_at_random_points"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(config(Path::new(&dir))).expect("child open");
    let start = store.sync_cursor().expect("cursor").map_or(0, |c| c + 1);
    for i in start..start + CHILD_ITERATIONS_MAX {
        store
            .write(vec![
                WriteOp::PutShare(fixtures::share(i, 16)),
                WriteOp::SetSyncCursor(i),
            ])
            .expect("child write");
        println!("W {i}");
        let verdicts = store
            .check_and_record(
                &[BlockToSign {
                    pubkey: SIGNER,
                    slot: i,
                    signing_root: signing_root(i),
                }],
                &[AttestationToSign {
                    pubkey: SIGNER,
                    source_epoch: i,
                    target_epoch: i + 1,
                    signing_root: signing_root(i),
                }],
            )
            .expect("child slashing");
        if verdicts.blocks[0] != Ok(Safe::Recorded)
            || verdicts.attestations[0] != Ok(Safe::Recorded)
        {
            println!("BAD {i} {verdicts:?}");
            std::process::exit(3);
        }
        println!("S {i}");
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    nanos | 1
}

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn sigkill_at_random_points() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = seed();
    let mut total_acks = 0u64;
    let mut last_write: Option<u64> = None;
    let mut last_slash: Option<u64> = None;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        // Wait for the child to make progress, then kill it at a random point.
        let started = Instant::now();
        while !lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("W ") || l.starts_with("BAD"))
            && started.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(next(&mut rng) % 250));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let lines = lines.lock().unwrap().clone();
        assert!(
            !lines.iter().any(|l| l.starts_with("BAD")),
            "round {round}: {lines:?}"
        );
        for line in &lines {
            let mut parts = line.split(' ');
            match (
                parts.next(),
                parts.next().and_then(|n| n.parse::<u64>().ok()),
            ) {
                (Some("W"), Some(i)) => {
                    last_write = Some(i);
                    total_acks += 1;
                }
                (Some("S"), Some(i)) => {
                    last_slash = Some(i);
                    total_acks += 1;
                }
                _ => {}
            }
        }

        // Reopen: everything acknowledged is there.
        let store = Store::open(config(dir.path())).expect("reopen after SIGKILL");
        if let Some(w) = last_write {
            let cursor = store
                .sync_cursor()
                .unwrap()
                .expect("acknowledged cursor lost");
            assert!(
                cursor >= w,
                "round {round}: cursor {cursor} < acknowledged {w}"
            );
            for i in 0..=w {
                assert_eq!(
                    store.share(&fixtures::pubkey(i)).unwrap(),
                    Some(fixtures::share(i, 16)),
                    "round {round}: acknowledged share {i} lost"
                );
            }
        }
        // Slashing protection still refuses what the acknowledged records make slashable.
        if let Some(s) = last_slash {
            let other_root = [0xEE; 32];
            let mut probes = vec![
                // Double vote on the last acknowledged target.
                AttestationToSign {
                    pubkey: SIGNER,
                    source_epoch: s,
                    target_epoch: s + 1,
                    signing_root: other_root,
                },
                // Far below everything recorded.
                AttestationToSign {
                    pubkey: SIGNER,
                    source_epoch: 0,
                    target_epoch: 0,
                    signing_root: other_root,
                },
            ];
            if s > 0 {
                // Surrounds the last acknowledged vote.
                probes.push(AttestationToSign {
                    pubkey: SIGNER,
                    source_epoch: s - 1,
                    target_epoch: s + 2,
                    signing_root: other_root,
                });
            }
            let block = [BlockToSign {
                pubkey: SIGNER,
                slot: s,
                signing_root: other_root,
            }];
            let v = store.check_and_record(&block, &probes).unwrap();
            assert!(
                v.blocks[0].is_err(),
                "round {round}: double proposal at {s} allowed"
            );
            for (probe, verdict) in probes.iter().zip(&v.attestations) {
                assert!(
                    verdict.is_err(),
                    "round {round}: {probe:?} allowed after crash"
                );
            }
            // The same block again is still fine to sign (and records nothing new).
            let again = store
                .check_and_record(
                    &[BlockToSign {
                        pubkey: SIGNER,
                        slot: s,
                        signing_root: signing_root(s),
                    }],
                    &[],
                )
                .unwrap();
            assert_eq!(again.blocks[0], Ok(Safe::SameData));
        }
        drop(store);
    }
    println!(
        "{ROUNDS} rounds, {total_acks} acknowledged commits, last write {last_write:?}, last slashing record {last_slash:?}"
    );
    assert!(
        total_acks >= ROUNDS as u64,
        "the child made too little progress: {total_acks} acks"
    );
}
