//! Runner for the EIP-3076 interchange test vectors (eth-clients/slashing-protection-
//! interchange-tests): each file starts from an empty database, imports each step's
//! interchange (which must fail exactly when `should_succeed` is false), then checks every
//! block and attestation of the step, which must be allowed exactly when its
//! `should_succeed` is true.
//!
//! This implementation imports minified (see [`crate::slashing`]), so it is held to
//! `should_succeed`, not to `should_succeed_complete` (the expectation for implementations
//! that keep the complete imported history).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::db::{Durability, StoreConfig};
use crate::interchange::Interchange;
use crate::slashing::{AttestationToSign, BlockToSign};
use crate::store::Store;

/// Most vector files one run reads (the suite has a few dozen).
pub const VECTOR_FILES_MAX: usize = 10_000;
/// Largest vector file read (bytes).
pub const VECTOR_FILE_BYTES_MAX: u64 = 64 << 20;

#[derive(Deserialize)]
struct TestCase {
    name: String,
    genesis_validators_root: String,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Step {
    should_succeed: bool,
    interchange: serde_json::Value,
    #[serde(default)]
    blocks: Vec<TestBlock>,
    #[serde(default)]
    attestations: Vec<TestAttestation>,
}

#[derive(Deserialize)]
struct TestBlock {
    pubkey: String,
    slot: String,
    #[serde(default)]
    signing_root: Option<String>,
    should_succeed: bool,
}

#[derive(Deserialize)]
struct TestAttestation {
    pubkey: String,
    source_epoch: String,
    target_epoch: String,
    #[serde(default)]
    signing_root: Option<String>,
    should_succeed: bool,
}

fn hex_bytes<const N: usize>(v: &str) -> Result<[u8; N], String> {
    let digits = v.strip_prefix("0x").unwrap_or(v);
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|e| format!("bad hex {v:?}: {e}"))?;
    Ok(out)
}

fn num(v: &str) -> Result<u64, String> {
    v.parse().map_err(|_| format!("bad number {v:?}"))
}

/// Outcome of a run over a folder.
#[derive(Debug, Default)]
pub struct VectorReport {
    /// Files that passed.
    pub passed: usize,
    /// Files that failed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// JSON files that are not test cases (the interchange `schema.json`).
    pub skipped: Vec<PathBuf>,
}

/// Runs every `*.json` file of `dir` (sorted by name). `schema.json` is the format's JSON
/// schema, not a case, and is skipped; any other file that does not parse as a case fails.
pub fn run_dir(dir: &Path) -> std::io::Result<VectorReport> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .take(VECTOR_FILES_MAX)
        .collect();
    files.sort();
    let mut report = VectorReport::default();
    for file in files {
        if file.file_name().is_some_and(|n| n == "schema.json") {
            report.skipped.push(file);
            continue;
        }
        match run_file(&file) {
            Ok(()) => report.passed += 1,
            Err(reason) => report.failed.push((file, reason)),
        }
    }
    Ok(report)
}

/// Runs one vector file against a fresh database in a temporary directory.
pub fn run_file(path: &Path) -> Result<(), String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot stat: {e}"))?
        .len();
    if len > VECTOR_FILE_BYTES_MAX {
        return Err(format!("file of {len} bytes is too large"));
    }
    let text = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let case: TestCase =
        serde_json::from_slice(&text).map_err(|e| format!("not a test case: {e}"))?;
    let root = hex_bytes::<32>(&case.genesis_validators_root)?;
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create temp dir: {e}"))?;
    let mut config = StoreConfig::new(dir.path(), root);
    // Logic, not durability, is under test here; see `Durability::NoSyncSafe`.
    config.durability = Durability::NoSyncSafe;
    config.geometry.max_size_bytes = 64 << 20;
    let store = Store::open(config).map_err(|e| format!("cannot open store: {e}"))?;
    for (i, step) in case.steps.iter().enumerate() {
        let imported = serde_json::from_value::<Interchange>(step.interchange.clone())
            .map_err(|e| crate::StorageError::Interchange(e.to_string()))
            .and_then(|interchange| store.import_interchange(&interchange));
        match (&imported, step.should_succeed) {
            (Ok(_), false) => {
                return Err(format!(
                    "{}: step {i}: import succeeded, expected failure",
                    case.name
                ));
            }
            (Err(e), true) => {
                return Err(format!("{}: step {i}: import failed: {e}", case.name));
            }
            _ => {}
        }
        let mut blocks = Vec::with_capacity(step.blocks.len());
        for b in &step.blocks {
            blocks.push(BlockToSign {
                pubkey: hex_bytes(&b.pubkey)?,
                slot: num(&b.slot)?,
                signing_root: b
                    .signing_root
                    .as_deref()
                    .map(hex_bytes)
                    .transpose()?
                    .unwrap_or([0; 32]),
            });
        }
        let mut attestations = Vec::with_capacity(step.attestations.len());
        for a in &step.attestations {
            attestations.push(AttestationToSign {
                pubkey: hex_bytes(&a.pubkey)?,
                source_epoch: num(&a.source_epoch)?,
                target_epoch: num(&a.target_epoch)?,
                signing_root: a
                    .signing_root
                    .as_deref()
                    .map(hex_bytes)
                    .transpose()?
                    .unwrap_or([0; 32]),
            });
        }
        let verdicts = store
            .check_and_record(&blocks, &attestations)
            .map_err(|e| format!("{}: step {i}: check failed: {e}", case.name))?;
        for (j, (b, v)) in step.blocks.iter().zip(&verdicts.blocks).enumerate() {
            if v.is_ok() != b.should_succeed {
                return Err(format!(
                    "{}: step {i}: block {j} (slot {}): got {v:?}, expected should_succeed={}",
                    case.name, b.slot, b.should_succeed
                ));
            }
        }
        for (j, (a, v)) in step
            .attestations
            .iter()
            .zip(&verdicts.attestations)
            .enumerate()
        {
            if v.is_ok() != a.should_succeed {
                return Err(format!(
                    "{}: step {i}: attestation {j} ({}, {}): got {v:?}, expected should_succeed={}",
                    case.name, a.source_epoch, a.target_epoch, a.should_succeed
                ));
            }
        }
    }
    Ok(())
}
