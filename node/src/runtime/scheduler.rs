//! The duty scheduler (control plane, tokio): fetches attester and sync-committee duties per
//! epoch, and at each slot hands every committee with duties its `CommitteeDuty` and our
//! beacon node's vote, on the bounded channel of the shard that owns the committee.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use ssv_protocol::runner::{CommitteeDuty, DutyKind, ValidatorDuty};
use ssv_protocol::signing::{
    DOMAIN_BEACON_ATTESTER, DOMAIN_SYNC_COMMITTEE, Domain, compute_domain,
};
use tokio::sync::watch;

use super::metrics::Metrics;
use super::registry::Registry;
use super::shard::ShardEvent;
use ssv_beacon_api::client::BeaconClient;
use ssv_beacon_api::types::{AttesterDuty, Fork, SyncDuty};
use ssv_protocol::chain::SlotClock;

/// Validator indices per duties request (beacon nodes cap request bodies).
pub const DUTIES_REQUEST_INDICES_MAX: usize = 2048;
/// Epochs of duties kept (current and next, plus one of slack).
pub const EPOCHS_KEPT: usize = 3;
/// Attempts to fetch a slot's attestation data before the slot is skipped.
pub const ATTESTATION_DATA_ATTEMPTS: usize = 3;

/// Fork data for signing domains.
#[derive(Debug, Clone, Copy)]
pub struct ForkInfo {
    /// Version before `epoch`.
    pub previous_version: [u8; 4],
    /// Version from `epoch`.
    pub current_version: [u8; 4],
    /// Activation epoch of `current_version`.
    pub epoch: u64,
    /// Genesis validators root.
    pub genesis_validators_root: [u8; 32],
}

impl ForkInfo {
    /// From the beacon node's fork and genesis.
    pub fn new(fork: &Fork, genesis_validators_root: [u8; 32]) -> Self {
        ForkInfo {
            previous_version: fork.previous_version,
            current_version: fork.current_version,
            epoch: fork.epoch,
            genesis_validators_root,
        }
    }

    fn domain(&self, kind: [u8; 4], epoch: u64) -> Domain {
        let version = if epoch >= self.epoch {
            self.current_version
        } else {
            self.previous_version
        };
        compute_domain(kind, version, self.genesis_validators_root)
    }
}

/// The scheduler's inputs.
pub struct Scheduler {
    /// Beacon nodes.
    pub client: Arc<BeaconClient>,
    /// Whom we run.
    pub registry: Arc<Registry>,
    /// One event channel per shard.
    pub shards: Vec<async_channel::Sender<ShardEvent>>,
    /// Shard of each committee (registry order).
    pub shard_of: Vec<usize>,
    /// The slot clock.
    pub clock: SlotClock,
    /// Fork data.
    pub fork: ForkInfo,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

#[derive(Default)]
struct EpochDuties {
    attester: Vec<AttesterDuty>,
    sync: Vec<SyncDuty>,
}

impl Scheduler {
    async fn fetch_epoch(&self, epoch: u64, indices: &[u64]) -> anyhow::Result<EpochDuties> {
        let mut duties = EpochDuties::default();
        for chunk in indices.chunks(DUTIES_REQUEST_INDICES_MAX) {
            duties
                .attester
                .extend(self.client.attester_duties(epoch, chunk).await?);
            duties
                .sync
                .extend(self.client.sync_duties(epoch, chunk).await?);
        }
        Ok(duties)
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut indices: Vec<u64> = this.registry.committee_of.keys().copied().collect();
        indices.sort_unstable();
        let (head_tx, head_rx) = watch::channel(0u64);
        let heads = tokio::spawn(follow_heads(this.client.clone(), head_tx));
        let mut epochs: BTreeMap<u64, Arc<EpochDuties>> = BTreeMap::new();
        let spe = this.clock.spec().slots_per_epoch();
        let mut next_slot = this.clock.current_slot().map_or(0, |s| s + 1);
        loop {
            let wait = this.clock.until_slot(next_slot);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
            let slot = next_slot;
            next_slot += 1;
            // A node that fell behind (suspended, overloaded) skips to the current slot.
            if let Some(now) = this.clock.current_slot()
                && now > slot + 1
            {
                tracing::warn!(
                    slot,
                    now,
                    "scheduler fell behind; skipping to the current slot"
                );
                next_slot = now + 1;
                continue;
            }
            let epoch = slot / spe;
            for e in [epoch, epoch + 1] {
                if epochs.contains_key(&e) {
                    continue;
                }
                match this.fetch_epoch(e, &indices).await {
                    Ok(d) => {
                        tracing::info!(
                            epoch = e,
                            attester = d.attester.len(),
                            sync = d.sync.len(),
                            "duties fetched"
                        );
                        epochs.insert(e, Arc::new(d));
                    }
                    Err(e2) => tracing::warn!(epoch = e, "fetching duties: {e2:#}"),
                }
            }
            while epochs.len() > EPOCHS_KEPT {
                epochs.pop_first();
            }
            let Some(duties) = epochs.get(&epoch).cloned() else {
                Metrics::add(&this.metrics.slots_skipped, 1);
                continue;
            };
            let this2 = this.clone();
            let head_rx = head_rx.clone();
            tokio::spawn(async move { this2.run_slot(slot, &duties, head_rx).await });
        }
        heads.abort();
    }

    async fn run_slot(&self, slot: u64, duties: &EpochDuties, mut head: watch::Receiver<u64>) {
        let epoch = self.clock.spec().epoch_of(slot);
        let mut by_committee: HashMap<usize, Vec<ValidatorDuty>> = HashMap::new();
        for d in duties.attester.iter().filter(|d| d.slot == slot) {
            if let Some(&c) = self.registry.committee_of.get(&d.validator_index) {
                by_committee.entry(c).or_default().push(ValidatorDuty {
                    kind: DutyKind::Attester {
                        committee_index: d.committee_index,
                        committees_at_slot: d.committees_at_slot,
                        validator_committee_index: d.validator_committee_index,
                    },
                    validator_index: d.validator_index,
                    pubkey: d.pubkey,
                });
            }
        }
        for d in &duties.sync {
            if let Some(&c) = self.registry.committee_of.get(&d.validator_index) {
                by_committee.entry(c).or_default().push(ValidatorDuty {
                    kind: DutyKind::SyncCommittee,
                    validator_index: d.validator_index,
                    pubkey: d.pubkey,
                });
            }
        }
        if by_committee.is_empty() {
            return;
        }
        // Attest to the slot's block: wait for its head event, at most a third of the slot.
        let deadline = self.clock.spec().slot_duration() / 3;
        let _ = tokio::time::timeout(deadline, head.wait_for(|h| *h >= slot)).await;
        let mut data = None;
        for attempt in 0..ATTESTATION_DATA_ATTEMPTS {
            match self.client.attestation_data(slot, 0).await {
                Ok(d) => {
                    data = Some(d);
                    break;
                }
                Err(e) => {
                    tracing::warn!(slot, attempt, "attestation data: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let Some(data) = data else {
            Metrics::add(&self.metrics.slots_skipped, 1);
            tracing::error!(slot, "no attestation data: slot skipped");
            return;
        };
        let vote = data.vote();
        let attester_domain = self.fork.domain(DOMAIN_BEACON_ATTESTER, epoch);
        let sync_domain = self.fork.domain(DOMAIN_SYNC_COMMITTEE, epoch);
        for (committee, duties) in by_committee {
            let duty = CommitteeDuty {
                slot,
                duties,
                attester_domain,
                sync_domain,
            };
            let shard = self.shard_of[committee];
            let event = ShardEvent::Duty {
                committee,
                duty,
                vote,
            };
            if self.shards[shard].try_send(event).is_err() {
                Metrics::add(&self.metrics.slots_skipped, 1);
                tracing::error!(slot, shard, "shard queue full: committee duty dropped");
            }
        }
    }
}

/// Follows the beacon node's head events into `tx`, reconnecting on failure.
async fn follow_heads(client: Arc<BeaconClient>, tx: watch::Sender<u64>) {
    loop {
        match client.head_events().await {
            Ok(mut events) => {
                while let Some(ev) = events.next().await {
                    tx.send_if_modified(|h| {
                        let newer = ev.slot > *h;
                        if newer {
                            *h = ev.slot;
                        }
                        newer
                    });
                }
                tracing::debug!("head event stream ended; reconnecting");
            }
            Err(e) => tracing::warn!("head events: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
