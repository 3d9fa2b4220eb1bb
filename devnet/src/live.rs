//! `ssv-node devnet --execution-endpoint URL --live-registry`: registry changes while the
//! nodes run, through the contract and contract sync, never a restart.
//!
//! The last [`LATE`] validators are left out of the set-up's registration and belong to a
//! second owner (the endpoint's second account). While the nodes run, a miner task mines a
//! block every [`MINE_MS`] (the nodes follow [`FOLLOW_DISTANCE`] blocks behind the head) and
//! at fixed counted slots the driver sends:
//!
//! | counted slot | event | validators |
//! |---|---|---|
//! | [`ADD_AT`] | `ValidatorAdded` × 4 (second owner) | the late ones |
//! | [`REMOVE_AT`] | `ValidatorRemoved` × 2 | 0, 1 |
//! | [`EXIT_AT`] | `ValidatorExited` | 2 |
//! | [`FEE_AT`] | `FeeRecipientAddressUpdated` (second owner) | the late ones |
//! | [`LIQUIDATE_AT`] | `ClusterLiquidated` (second owner) | the late ones |
//! | [`REACTIVATE_AT`] | `ClusterReactivated` (second owner) | the late ones |
//! | [`BEACON_EXIT_AT`] | exited on the beacon chain (status) | 3 |
//!
//! The late validators' deposits are processed only [`DEPOSIT_DELAY_SLOTS`] after their
//! addition (the beacon node does not know them before: no index), so the nodes must look
//! them up until it does.
//! Each event becomes final for the nodes when the block [`FOLLOW_DISTANCE`] above its own
//! is mined; the driver notes that time. Its *first eligible slot* is the first slot that
//! starts [`APPLY_BUDGET_MS`] or more after it (the nodes' head poll and the registry
//! update). Every validator is a sync-committee member (one message per slot), which gives
//! a per-slot record of which validators are run. The verdict ([`LiveReport::check`]):
//! - added, reactivated: a valid sync message in every slot from the first eligible one
//!   until the next change, none before the addition, and no attestation in the epoch of
//!   the event (the slashing-protection bump at the event);
//! - removed, liquidated: no submission at all from the first eligible slot on (until the
//!   reactivation);
//! - the exit: a valid voluntary exit of validator 2;
//! - the beacon-chain exit: validator 3 runs until its status changes and signs nothing from
//!   the second slot of the next epoch on (statuses are read once an epoch);
//! - the fee recipient: the late validators' new recipient prepared on the beacon node
//!   after the event;
//! - every untouched validator: every sync message and every attestation of the run valid.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy::primitives::Address;
use anyhow::Context;
use serde::Serialize;

use crate::chain::DevChain;
use crate::sim::{BeaconSim, SLOTS_PER_EPOCH, SubmissionRecord};
use crate::{Setup, SlotClock};

/// Blocks the nodes stay behind the head.
pub const FOLLOW_DISTANCE: u64 = 2;
/// Contract sync's head poll in the nodes.
pub const POLL_MS: u64 = 200;
/// A block is mined this often.
pub const MINE_MS: u64 = 250;
/// Validators added while the nodes run.
pub const LATE: u64 = 4;
/// From an event becoming final to the start of its first eligible slot, at least.
pub const APPLY_BUDGET_MS: u64 = 1_000;
/// Validators removed.
pub const REMOVED: [u64; 2] = [0, 1];
/// The validator whose exit is requested.
pub const EXITING: u64 = 2;
/// Counted slots of the events.
pub const ADD_AT: u64 = 1;
/// See [`ADD_AT`].
pub const REMOVE_AT: u64 = 4;
/// See [`ADD_AT`].
pub const EXIT_AT: u64 = 6;
/// See [`ADD_AT`].
pub const FEE_AT: u64 = 8;
/// See [`ADD_AT`].
pub const LIQUIDATE_AT: u64 = 10;
/// See [`ADD_AT`].
pub const REACTIVATE_AT: u64 = 14;
/// The late validators' deposits are processed (the beacon node knows them, pending until
/// then) this many slots after their `ValidatorAdded` is sent.
pub const DEPOSIT_DELAY_SLOTS: u64 = 3;
/// The validator that exits on the beacon chain (status `exited_unslashed`).
pub const BEACON_EXITED: u64 = 3;
/// Counted slot from which it is exited.
pub const BEACON_EXIT_AT: u64 = 12;
/// Fewest counted slots of a live-registry run: past the first slots of the next epoch,
/// where the once-an-epoch status check stops the exited validator.
pub const SLOTS_MIN: u64 = 36;
/// Fewest validators (the late ones, the removed ones, the exiting one, and a few more).
pub const VALIDATORS_MIN: u64 = 10;
/// The second owner's new fee recipient.
pub const NEW_FEE_RECIPIENT: [u8; 20] = [0xfe; 20];

/// One registry change of the run.
#[derive(Debug, Clone, Serialize)]
pub struct LiveEvent {
    /// What happened.
    pub name: &'static str,
    /// Validators it concerns.
    pub validators: Vec<u64>,
    /// Counted slot it was sent in.
    pub sent_slot: u64,
    /// Chain slot it was sent in.
    pub chain_slot: u64,
    /// Its block.
    pub block: u64,
    /// When it became final for the nodes (Unix ms).
    pub final_ms: u64,
    /// The first slot that starts [`APPLY_BUDGET_MS`] after that.
    pub first_eligible_slot: u64,
}

/// The live-registry part of the summary.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LiveReport {
    /// The events, in order.
    pub events: Vec<LiveEvent>,
    /// Each finding that failed the run.
    pub failures: Vec<String>,
    /// Per validator: slots of its valid sync messages (compressed as ranges).
    pub sync_slots: BTreeMap<u64, String>,
    /// Per validator: slots of its valid attestations.
    pub attestation_slots: BTreeMap<u64, Vec<u64>>,
}

/// Drives the events and mines blocks until `done`.
pub struct Driver {
    chain: DevChain,
    setup: Arc<Setup>,
    owner2: Address,
    first: u64,
    genesis_ms: u64,
    slot_ms: u64,
}

impl Driver {
    /// A driver for counted slots from `first` (chain slot).
    pub fn new(
        chain: DevChain,
        setup: Arc<Setup>,
        owner2: Address,
        first: u64,
        genesis_ms: u64,
        slot_ms: u64,
    ) -> Self {
        Driver {
            chain,
            setup,
            owner2,
            first,
            genesis_ms,
            slot_ms,
        }
    }

    fn slot_start(&self, chain_slot: u64) -> u64 {
        self.genesis_ms + chain_slot * self.slot_ms
    }

    /// Runs the events at their slots while mining; returns the events once the last one is
    /// final, then keeps mining until `done`.
    pub async fn run(self, done: Arc<AtomicBool>) -> anyhow::Result<Vec<LiveEvent>> {
        let ops = self.setup.committees[0].clone();
        let late: Vec<&crate::ValidatorKeys> = self
            .setup
            .validators
            .iter()
            .filter(|v| self.setup.late.contains(&v.index))
            .collect();
        anyhow::ensure!(
            late.iter()
                .all(|v| self.setup.committees[v.committee] == ops),
            "the late validators must share one committee"
        );
        let late_ids: Vec<u64> = late.iter().map(|v| v.index).collect();
        let owner1 = self.chain.owner;
        let mut events = Vec::new();
        let plan: [(u64, &'static str); 6] = [
            (ADD_AT, "added"),
            (REMOVE_AT, "removed"),
            (EXIT_AT, "exit requested"),
            (FEE_AT, "fee recipient"),
            (LIQUIDATE_AT, "liquidated"),
            (REACTIVATE_AT, "reactivated"),
        ];
        let miner = {
            let chain = self.chain.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    if let Err(e) = chain.mine().await {
                        eprintln!("devnet: mining: {e:#}");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(MINE_MS)).await;
                }
            })
        };
        for (at, name) in plan {
            let chain_slot = self.first + at;
            let start = self.slot_start(chain_slot) + self.slot_ms / 10;
            let wait = start.saturating_sub(SlotClock::now_ms());
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            let v = |i: u64| &self.setup.validators[i as usize];
            let (block, validators) = match name {
                "added" => (
                    self.chain.add_validators(self.owner2, &ops, &late).await?,
                    late_ids.clone(),
                ),
                "removed" => {
                    let mut last = 0;
                    for i in REMOVED {
                        last = self
                            .chain
                            .remove_validator(owner1, &ops, &v(i).pubkey)
                            .await?;
                    }
                    (last, REMOVED.to_vec())
                }
                "exit requested" => (
                    self.chain
                        .exit_validator(owner1, &ops, &v(EXITING).pubkey)
                        .await?,
                    vec![EXITING],
                ),
                "fee recipient" => (
                    self.chain
                        .set_fee_recipient(self.owner2, Address::from(NEW_FEE_RECIPIENT))
                        .await?,
                    late_ids.clone(),
                ),
                "liquidated" => (
                    self.chain.liquidate(self.owner2, &ops).await?,
                    late_ids.clone(),
                ),
                _ => (
                    self.chain.reactivate(self.owner2, &ops).await?,
                    late_ids.clone(),
                ),
            };
            // Final once the head is FOLLOW_DISTANCE above it (the miner mines on).
            let final_ms = loop {
                let head = self.chain.head().await?;
                if head >= block + FOLLOW_DISTANCE {
                    break SlotClock::now_ms();
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            };
            // A late validator also needs its deposit processed (then one status tick).
            let known_ms = if name == "added" {
                self.slot_start(self.first + ADD_AT + DEPOSIT_DELAY_SLOTS) + self.slot_ms
            } else {
                0
            };
            let eligible_from = final_ms.max(known_ms) + APPLY_BUDGET_MS;
            let first_eligible_slot =
                (eligible_from.saturating_sub(self.genesis_ms)).div_ceil(self.slot_ms);
            println!(
                "devnet: {name} ({validators:?}) in block {block}, final for the nodes at \
                 chain slot {}; first eligible slot {first_eligible_slot}",
                (final_ms - self.genesis_ms) / self.slot_ms
            );
            events.push(LiveEvent {
                name,
                validators,
                sent_slot: at,
                chain_slot,
                block,
                final_ms,
                first_eligible_slot,
            });
        }
        // The beacon-chain exit: the status changes at its slot; the nodes read statuses
        // once an epoch, at the first slot tick of the next one.
        let exit_slot = self.first + BEACON_EXIT_AT;
        let next_epoch = (exit_slot / SLOTS_PER_EPOCH + 1) * SLOTS_PER_EPOCH;
        events.push(LiveEvent {
            name: "beacon exit",
            validators: vec![BEACON_EXITED],
            sent_slot: BEACON_EXIT_AT,
            chain_slot: exit_slot,
            block: 0,
            final_ms: self.slot_start(exit_slot),
            first_eligible_slot: next_epoch + 2,
        });
        // Keep mining (the nodes' contract sync follows the head) until the run ends.
        tokio::spawn(async move {
            let _ = miner.await;
        });
        Ok(events)
    }
}

/// Slots as ranges (`34-40,43`).
fn ranges(slots: &[u64]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        let mut j = i;
        while j + 1 < slots.len() && slots[j + 1] == slots[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            slots[i].to_string()
        } else {
            format!("{}-{}", slots[i], slots[j])
        });
        i = j + 1;
    }
    out.join(",")
}

impl LiveReport {
    /// Checks the record against the events (see the module docs); `first..=last` are the
    /// counted chain slots and `validators` every validator of the set-up.
    pub fn check(
        events: Vec<LiveEvent>,
        rec: &SubmissionRecord,
        validators: u64,
        (first, last): (u64, u64),
        sim: &BeaconSim,
    ) -> LiveReport {
        let mut failures = Vec::new();
        let ev = |name: &str| events.iter().find(|e| e.name == name);
        let slots_of = |set: &std::collections::HashSet<(u64, u64)>, v: u64| -> Vec<u64> {
            let mut s: Vec<u64> = set
                .iter()
                .filter(|(_, i)| *i == v)
                .map(|(s, _)| *s)
                .collect();
            s.sort_unstable();
            s
        };
        let synced = |v: u64| slots_of(&rec.synced, v);
        let attested = |v: u64| slots_of(&rec.attested, v);
        let (Some(add), Some(rem), Some(exit), Some(fee), Some(liq), Some(react)) = (
            ev("added"),
            ev("removed"),
            ev("exit requested"),
            ev("fee recipient"),
            ev("liquidated"),
            ev("reactivated"),
        ) else {
            return LiveReport {
                failures: vec![format!("not every event was sent: {events:?}")],
                events,
                ..LiveReport::default()
            };
        };
        let epoch_of = |slot: u64| slot / SLOTS_PER_EPOCH;
        // Removed: nothing from the first eligible slot on; every sync message before the
        // event was sent.
        for &v in &rem.validators {
            let s = synced(v);
            let a = attested(v);
            if let Some(x) = s.iter().chain(&a).find(|x| **x >= rem.first_eligible_slot) {
                failures.push(format!(
                    "validator {v} removed (first eligible slot {}) submitted for slot {x}",
                    rem.first_eligible_slot
                ));
            }
            let want: Vec<u64> = (first..rem.chain_slot).collect();
            let before: Vec<u64> = s.iter().copied().filter(|x| *x < rem.chain_slot).collect();
            if before != want {
                failures.push(format!(
                    "validator {v} did not sync every slot before its removal: {}",
                    ranges(&before)
                ));
            }
        }
        // The late validators: run from the addition, stopped while liquidated, run again.
        for &v in &add.validators {
            let s = synced(v);
            let a = attested(v);
            let mut want: Vec<u64> = (add.first_eligible_slot..liq.chain_slot).collect();
            want.extend(react.first_eligible_slot..=last);
            for x in &want {
                if !s.contains(x) {
                    failures.push(format!(
                        "validator {v} (added, first eligible slot {}; liquidated at {}, \
                         reactivated, first eligible slot {}) has no sync message in slot {x}: \
                         {}",
                        add.first_eligible_slot,
                        liq.chain_slot,
                        react.first_eligible_slot,
                        ranges(&s)
                    ));
                    break;
                }
            }
            if let Some(x) = s.iter().chain(&a).find(|x| **x < add.chain_slot) {
                failures.push(format!(
                    "validator {v} submitted for slot {x}, before it was added"
                ));
            }
            if let Some(x) = s
                .iter()
                .chain(&a)
                .find(|x| (liq.first_eligible_slot..react.chain_slot).contains(*x))
            {
                failures.push(format!(
                    "validator {v} submitted for slot {x} while its cluster was liquidated \
                     (first eligible slot {})",
                    liq.first_eligible_slot
                ));
            }
            // The bump at the addition and at the reactivation: not in those epochs.
            for e in [add, react] {
                if let Some(x) = a.iter().find(|x| epoch_of(**x) == epoch_of(e.chain_slot)) {
                    failures.push(format!(
                        "validator {v} attested in slot {x}, in the epoch it was {} in",
                        e.name
                    ));
                }
            }
        }
        if let Some(bx) = ev("beacon exit") {
            let v = BEACON_EXITED;
            let s = synced(v);
            if let Some(x) = s
                .iter()
                .chain(&attested(v))
                .find(|x| **x >= bx.first_eligible_slot)
            {
                failures.push(format!(
                    "validator {v} exited on the beacon chain at slot {} (first eligible slot \
                     {}) submitted for slot {x}",
                    bx.chain_slot, bx.first_eligible_slot
                ));
            }
            let want: Vec<u64> = (first..bx.chain_slot).collect();
            let before: Vec<u64> = s.iter().copied().filter(|x| *x < bx.chain_slot).collect();
            if before != want {
                failures.push(format!(
                    "validator {v} did not sync every slot before it exited: {}",
                    ranges(&before)
                ));
            }
        } else {
            failures.push("the beacon-chain exit is not among the events".into());
        }
        if !rec.exited.contains(&EXITING) {
            failures.push(format!(
                "no valid voluntary exit of validator {EXITING} (requested in block {})",
                exit.block
            ));
        }
        for &v in &fee.validators {
            let ok = rec.fee_recipients.get(&v).is_some_and(|p| {
                p.iter()
                    .any(|(ms, r)| *ms >= fee.final_ms && *r == NEW_FEE_RECIPIENT)
            });
            if !ok {
                failures.push(format!(
                    "validator {v}'s new fee recipient was not prepared on the beacon node"
                ));
            }
        }
        // Untouched validators: every duty of the run.
        let touched: Vec<u64> = events
            .iter()
            .flat_map(|e| e.validators.iter().copied())
            .collect();
        for v in (0..validators).filter(|v| !touched.contains(v)) {
            let s = synced(v);
            if s != (first..=last).collect::<Vec<_>>() {
                failures.push(format!(
                    "untouched validator {v} missed sync messages: {}",
                    ranges(&s)
                ));
            }
            for slot in sim.attester_slots(v, first, last) {
                if !rec.attested.contains(&(slot, v)) {
                    failures.push(format!(
                        "untouched validator {v} missed its attestation of slot {slot}"
                    ));
                }
            }
        }
        let mut report = LiveReport {
            events,
            failures,
            ..LiveReport::default()
        };
        for v in 0..validators {
            report.sync_slots.insert(v, ranges(&synced(v)));
            report.attestation_slots.insert(v, attested(v));
        }
        report
    }
}

/// The second owner, and the set-up's late validators re-signed for it.
pub async fn prepare(chain: &DevChain, setup: &mut Setup) -> anyhow::Result<Address> {
    let owner2 = chain.second_account().await?;
    setup.make_late(LATE, owner2);
    Ok(owner2)
}

impl std::fmt::Display for LiveReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.events {
            writeln!(
                f,
                "  {:<15} {:?} block {} sent in slot {}, first eligible slot {}",
                e.name, e.validators, e.block, e.chain_slot, e.first_eligible_slot
            )?;
        }
        for (v, s) in &self.sync_slots {
            writeln!(f, "  validator {v:>3} synced {s}")?;
        }
        Ok(())
    }
}

/// Helper for the caller: `Context` on the driver's join.
pub fn joined<T>(r: Result<anyhow::Result<T>, tokio::task::JoinError>) -> anyhow::Result<T> {
    r.context("live-registry driver task")?
}
