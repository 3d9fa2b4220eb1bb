//! Model-based test: random operation sequences, with simulated restarts (drop and reopen),
//! run against the store and against a plain in-memory model; every read and every slashing
//! verdict must agree.
//!
//! The slashing model is the naive reading of EIP-3076 over the complete history (scan every
//! record, lower bounds = minimum present), so it also checks the store's summary shortcuts.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use ssv_storage::{
    AttestationToSign, BlockToSign, DecidedRecord, Durability, Interchange, PruneBelow, Safe,
    SlashingViolation, Store, StoreConfig, Verdict, WriteOp, fixtures,
    interchange::{
        InterchangeAttestation, InterchangeBlock, InterchangeMetadata, InterchangeRecord,
    },
};

const ROOT: [u8; 32] = [7; 32];
const VALIDATORS: u8 = 8;

#[derive(Debug, Clone)]
enum Op {
    PutShare { v: u8, committee: u8 },
    DeleteShare { v: u8 },
    SetCursor(u64),
    PutDecided { ident: u8, height: u16 },
    Attest(Vec<(u8, u8, u8, u8)>),
    Propose(Vec<(u8, u8, u8)>),
    Import(Vec<(u8, Option<u8>, Option<(u8, u8)>)>),
    Prune { target: u8, slot: u8 },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0..VALIDATORS;
    prop_oneof![
        2 => (v.clone(), 0u8..3).prop_map(|(v, committee)| Op::PutShare { v, committee }),
        1 => v.clone().prop_map(|v| Op::DeleteShare { v }),
        1 => any::<u64>().prop_map(Op::SetCursor),
        1 => (0u8..3, 0u16..50).prop_map(|(ident, height)| Op::PutDecided { ident, height }),
        4 => prop::collection::vec((0u8..3, 0u8..12, 0u8..12, 0u8..3), 1..12).prop_map(Op::Attest),
        2 => prop::collection::vec((0u8..3, 0u8..20, 0u8..3), 1..8).prop_map(Op::Propose),
        1 => prop::collection::vec(
            (0u8..3, prop::option::of(0u8..20), prop::option::of((0u8..12, 0u8..12))),
            0..4
        )
        .prop_map(Op::Import),
        1 => (0u8..12, 0u8..20).prop_map(|(target, slot)| Op::Prune { target, slot }),
        1 => Just(Op::Restart),
    ]
}

fn root_of(r: u8) -> [u8; 32] {
    // Root 0 is the all-zero ("unknown") root, which never counts as the same message.
    [r; 32]
}

#[derive(Default)]
struct ValidatorModel {
    blocks: BTreeMap<u64, Option<[u8; 32]>>,
    atts: BTreeMap<u64, (u64, Option<[u8; 32]>)>,
    /// Highest source / target ever pruned away (lower bounds survive pruning).
    pruned_source: Option<u64>,
    pruned_target: Option<u64>,
}

impl ValidatorModel {
    fn low_source(&self) -> Option<u64> {
        let present = self.atts.values().map(|(ps, _)| *ps).min();
        [present, self.pruned_source].into_iter().flatten().max()
    }
    fn low_target(&self) -> Option<u64> {
        let present = self.atts.keys().min().copied();
        [present, self.pruned_target].into_iter().flatten().max()
    }
}

#[derive(Default)]
struct Model {
    shares: BTreeMap<u8, ssv_storage::ShareRecord>,
    cursor: Option<u64>,
    decided: BTreeMap<u8, DecidedRecord>,
    slashing: BTreeMap<[u8; 48], ValidatorModel>,
}

fn same(existing: Option<[u8; 32]>, new: [u8; 32]) -> bool {
    existing.is_some_and(|r| r != [0; 32] && r == new)
}

impl Model {
    fn attest(&mut self, a: &AttestationToSign) -> Verdict {
        let (s, t) = (a.source_epoch, a.target_epoch);
        if s > t {
            return Err(SlashingViolation::SourceExceedsTarget);
        }
        let m = self.slashing.entry(a.pubkey).or_default();
        if let Some(&(es, er)) = m.atts.get(&t) {
            return if same(er, a.signing_root) {
                Ok(Safe::SameData)
            } else {
                Err(SlashingViolation::DoubleVote {
                    existing_source: es,
                })
            };
        }
        if let Some((&pt, &(ps, _))) = m.atts.range(t + 1..).find(|(_, (ps, _))| *ps < s) {
            return Err(SlashingViolation::SurroundedByExisting { existing: (ps, pt) });
        }
        // A surrounded record has s < its source <= its target < t. Records with source >
        // target exist only as imported minified ones, whose source is also the lower
        // bound: the bound below refuses what this range leaves out (as the store does).
        if let Some((&pt, &(ps, _))) = m
            .atts
            .range(s.saturating_add(1).min(t)..t)
            .find(|(_, (ps, _))| *ps > s)
        {
            return Err(SlashingViolation::SurroundsExisting { existing: (ps, pt) });
        }
        if let Some(low_source) = m.low_source()
            && s < low_source
        {
            return Err(SlashingViolation::SourceBelowLowerBound { low_source });
        }
        if let Some(low_target) = m.low_target()
            && t <= low_target
        {
            return Err(SlashingViolation::TargetNotAboveLowerBound { low_target });
        }
        m.atts.insert(t, (s, Some(a.signing_root)));
        Ok(Safe::Recorded)
    }

    fn propose(&mut self, b: &BlockToSign) -> Verdict {
        let m = self.slashing.entry(b.pubkey).or_default();
        if let Some(&er) = m.blocks.get(&b.slot) {
            return if same(er, b.signing_root) {
                Ok(Safe::SameData)
            } else {
                Err(SlashingViolation::DoubleProposal)
            };
        }
        if let Some(&low_slot) = m.blocks.keys().min()
            && b.slot <= low_slot
        {
            return Err(SlashingViolation::SlotNotAboveLowerBound { low_slot });
        }
        m.blocks.insert(b.slot, Some(b.signing_root));
        Ok(Safe::Recorded)
    }

    fn prune(&mut self, target_below: u64, slot_below: u64) {
        for m in self.slashing.values_mut() {
            let max_slot = m.blocks.keys().max().copied();
            m.blocks
                .retain(|&slot, _| slot >= slot_below || Some(slot) == max_slot);
            let max_target = m.atts.keys().max().copied();
            let doomed: Vec<u64> = m
                .atts
                .keys()
                .copied()
                .filter(|&t| t < target_below && Some(t) != max_target)
                .collect();
            for t in doomed {
                let (s, _) = m.atts.remove(&t).expect("key from the map");
                m.pruned_source = Some(m.pruned_source.map_or(s, |p| p.max(s)));
                m.pruned_target = Some(m.pruned_target.map_or(t, |p| p.max(t)));
            }
        }
    }

    fn import(&mut self, entries: &[(u8, Option<u8>, Option<(u8, u8)>)]) {
        for &(v, slot, att) in entries {
            let m = self.slashing.entry([v; 48]).or_default();
            if let Some(slot) = slot {
                let slot = m
                    .blocks
                    .keys()
                    .max()
                    .map_or(slot as u64, |&x| x.max(slot as u64));
                m.blocks.clear();
                m.blocks.insert(slot, None);
            }
            if let Some((s, t)) = att {
                let s = m
                    .atts
                    .values()
                    .map(|a| a.0)
                    .max()
                    .map_or(s as u64, |x| x.max(s as u64));
                let t = m.atts.keys().max().map_or(t as u64, |&x| x.max(t as u64));
                m.atts.clear();
                m.atts.insert(t, (s, None));
            }
        }
    }
}

fn interchange(entries: &[(u8, Option<u8>, Option<(u8, u8)>)]) -> Interchange {
    Interchange {
        metadata: InterchangeMetadata {
            interchange_format_version: "5".into(),
            genesis_validators_root: format!("0x{}", hex::encode(ROOT)),
        },
        data: entries
            .iter()
            .map(|&(v, slot, att)| InterchangeRecord {
                pubkey: format!("0x{}", hex::encode([v; 48])),
                signed_blocks: slot
                    .map(|s| InterchangeBlock {
                        slot: s.to_string(),
                        signing_root: None,
                    })
                    .into_iter()
                    .collect(),
                signed_attestations: att
                    .map(|(s, t)| InterchangeAttestation {
                        source_epoch: s.to_string(),
                        target_epoch: t.to_string(),
                        signing_root: Some(format!("0x{}", hex::encode([1u8; 32]))),
                    })
                    .into_iter()
                    .collect(),
            })
            .collect(),
    }
}

fn open(dir: &Path) -> Store {
    let mut c = StoreConfig::new(dir, ROOT);
    c.durability = Durability::NoSyncSafe;
    c.geometry.max_size_bytes = 64 << 20;
    Store::open(c).expect("open")
}

fn decided(ident: u8, height: u16) -> DecidedRecord {
    DecidedRecord {
        identifier: [ident; 56],
        height: u64::from(height),
        round: u64::from(height % 3),
        signers: vec![1, 2, 3],
        value_root: [height as u8; 32],
        message: vec![ident; 10],
    }
}

fn check_reads(store: &Store, model: &Model) {
    for v in 0..VALIDATORS {
        let pk = fixtures::pubkey(u64::from(v));
        assert_eq!(
            store.share(&pk).unwrap().as_ref(),
            model.shares.get(&v),
            "share {v}"
        );
    }
    assert_eq!(store.sync_cursor().unwrap(), model.cursor);
    for ident in 0..3u8 {
        assert_eq!(
            store.highest_decided(&[ident; 56]).unwrap().as_ref(),
            model.decided.get(&ident)
        );
    }
    let map = store.load_committees().unwrap();
    assert_eq!(map.validator_committee.len(), model.shares.len());
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::PutShare { v, committee } => {
                let share = fixtures::share(u64::from(v), 3 + u64::from(committee));
                store.write(vec![WriteOp::PutShare(share.clone())]).unwrap();
                model.shares.insert(v, share);
            }
            Op::DeleteShare { v } => {
                store
                    .write(vec![WriteOp::DeleteShare(fixtures::pubkey(u64::from(v)))])
                    .unwrap();
                model.shares.remove(&v);
            }
            Op::SetCursor(b) => {
                store.write(vec![WriteOp::SetSyncCursor(b)]).unwrap();
                model.cursor = Some(b);
            }
            Op::PutDecided { ident, height } => {
                store
                    .write(vec![WriteOp::PutDecided(decided(ident, height))])
                    .unwrap();
                if model
                    .decided
                    .get(&ident)
                    .is_none_or(|d| u64::from(height) >= d.height)
                {
                    model.decided.insert(ident, decided(ident, height));
                }
            }
            Op::Attest(list) => {
                let atts: Vec<_> = list
                    .iter()
                    .map(|&(v, s, t, r)| AttestationToSign {
                        pubkey: [v; 48],
                        source_epoch: u64::from(s),
                        target_epoch: u64::from(t),
                        signing_root: root_of(r),
                    })
                    .collect();
                let got = store.check_and_record(&[], &atts).unwrap().attestations;
                let want: Vec<Verdict> = atts.iter().map(|a| model.attest(a)).collect();
                assert_eq!(got, want, "attestations {atts:?}");
            }
            Op::Propose(list) => {
                let blocks: Vec<_> = list
                    .iter()
                    .map(|&(v, slot, r)| BlockToSign {
                        pubkey: [v; 48],
                        slot: u64::from(slot),
                        signing_root: root_of(r),
                    })
                    .collect();
                let got = store.check_and_record(&blocks, &[]).unwrap().blocks;
                let want: Vec<Verdict> = blocks.iter().map(|b| model.propose(b)).collect();
                assert_eq!(got, want, "blocks {blocks:?}");
            }
            Op::Import(entries) => {
                store.import_interchange(&interchange(&entries)).unwrap();
                model.import(&entries);
            }
            Op::Prune { target, slot } => {
                store
                    .prune_slashing(PruneBelow {
                        attestation_target_epoch: u64::from(target),
                        block_slot: u64::from(slot),
                    })
                    .unwrap();
                model.prune(u64::from(target), u64::from(slot));
            }
            Op::Restart => {
                drop(store);
                store = open(dir.path());
            }
        }
        check_reads(&store, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
