//! Deterministic fixtures for tests and benchmarks (feature `test-utils`).
//!
//! Keys are not real BLS points: storage never interprets them, and deriving them from a
//! counter keeps fixtures reproducible and fast to build.

use crate::error::Result;
use crate::records::{CommitteeRecord, ShareRecord, ValidatorPubkey, committee_id};
use crate::slashing::AttestationToSign;
use crate::store::Store;
use crate::writer::WriteOp;

/// Validators written per commit by [`populate`].
pub const POPULATE_BATCH: usize = 10_000;

/// A deterministic 48-byte "public key" for validator `i`: the big-endian index followed by
/// a mixing pattern (distinct for every `i`).
pub fn pubkey(i: u64) -> ValidatorPubkey {
    let mut pk = [0u8; 48];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for chunk in pk.chunks_mut(8) {
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    pk[..8].copy_from_slice(&i.to_be_bytes());
    pk
}

/// Operators of committee `c` (4 consecutive IDs; committees of 4 as on mainnet's majority).
pub fn committee_operators(c: u64) -> Vec<u64> {
    (0..4).map(|k| 1 + c * 4 + k).collect()
}

/// The committee record of committee `c`.
pub fn committee(c: u64) -> CommitteeRecord {
    CommitteeRecord::new(committee_operators(c)).expect("fixture committees are valid")
}

/// Share of validator `i`, in committee `i % committees`, with a 256-byte encrypted share.
pub fn share(i: u64, committees: u64) -> ShareRecord {
    let ops = committee_operators(i % committees.max(1));
    ShareRecord {
        validator_pubkey: pubkey(i),
        validator_index: Some(i),
        committee_id: committee_id(&ops).expect("fixture operator ids fit in u32"),
        share_pubkeys: ops.iter().map(|&o| pubkey(o << 32 | i)).collect(),
        operator_ids: ops,
        encrypted_share: (0..256u32).map(|b| (b as u8) ^ (i as u8)).collect(),
        secret_share: None,
        owner: [7; 20],
        liquidated: false,
    }
}

/// Writes `validators` shares spread over `committees` committees, in batches of
/// [`POPULATE_BATCH`] (one commit each).
pub fn populate(store: &Store, validators: u64, committees: u64) -> Result<()> {
    let mut ops = Vec::with_capacity(POPULATE_BATCH);
    for i in 0..validators {
        ops.push(WriteOp::PutShare(share(i, committees)));
        if ops.len() == POPULATE_BATCH {
            store.write(std::mem::take(&mut ops))?;
        }
    }
    if !ops.is_empty() {
        store.write(ops)?;
    }
    Ok(())
}

/// One attestation per validator `0..n` for `epoch` (source `epoch - 1`).
pub fn attestations(n: u64, epoch: u64) -> Vec<AttestationToSign> {
    (0..n)
        .map(|i| AttestationToSign {
            pubkey: pubkey(i),
            source_epoch: epoch.saturating_sub(1),
            target_epoch: epoch,
            signing_root: [(epoch as u8) ^ (i as u8); 32],
        })
        .collect()
}
