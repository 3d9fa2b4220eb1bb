//! The live registry: contract events and the beacon node's view of our validators reach the
//! running data plane without a restart.
//!
//! ```text
//! contract sync ──DataPlaneEvent──► follow_contract ──stop──► StoppedValidators (at once)
//!                                        │ batch of events, or a slot / epoch tick
//!                                        ▼
//!   beacon node ◄── indices, statuses ── RegistryUpdater::refresh: Registry::refresh (reuses
//!                                        decrypted shares) → forced bump of every validator
//!                                        added → LiveRegistry::publish → shards (runners),
//!                                        scheduler (duties fetched again), subnets (ENR)
//! ```
//!
//! Safety: a removal or liquidation stops signing the moment its event arrives (before the
//! registry is rebuilt); a validator added (or added back, or reactivated) runs only after
//! its slashing protection was bumped in a durable commit, as the Go node does at the
//! contract event, so nothing at or below the current epoch is signed for a validator that
//! may have signed elsewhere meanwhile. A registry that cannot be built or bumped is not
//! published: the previous one stays, and the next tick tries again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use ssv_beacon_api::client::BeaconClient;
use ssv_eth_sync::DataPlaneEvent;
use ssv_netio::{NetworkHandle, Subnet};
use ssv_protocol::chain::SlotClock;
use ssv_protocol::types::DomainType;
use ssv_storage::Store;
use tokio::sync::{mpsc, oneshot, watch};

use super::metrics::{self, Metrics};
use super::registry::{LiveRegistry, StoppedValidators};
use super::shard::ShardEvent;

/// Beacon statuses of a validator that will never attest again: it is not run.
pub const DONE_STATUSES: [&str; 4] = [
    "exited_unslashed",
    "exited_slashed",
    "withdrawal_possible",
    "withdrawal_done",
];

/// Applies registry changes to the running node.
pub struct RegistryUpdater {
    /// What the data plane runs.
    pub live: Arc<LiveRegistry>,
    /// The store contract sync writes.
    pub store: Arc<Store>,
    /// Our operators' RSA keys (decrypt new shares).
    pub ours: Arc<super::shard::OurOperators>,
    /// Our network's domain.
    pub domain: DomainType,
    /// Beacon nodes (indices and statuses).
    pub client: Arc<BeaconClient>,
    /// Validators never to be signed for.
    pub stopped: Arc<StoppedValidators>,
    /// The shards' event channels.
    pub shards: Vec<async_channel::Sender<ShardEvent>>,
    /// The network (subnet subscriptions).
    pub network: NetworkHandle,
    /// The chain's clock.
    pub clock: SlotClock,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// What [`RegistryUpdater::run`] keeps between refreshes.
#[derive(Default)]
struct State {
    /// Subnets we are subscribed to for our committees.
    subscribed: BTreeSet<u64>,
    /// Validators the beacon node reports exited or withdrawn (not run).
    done: HashSet<[u8; 48]>,
    /// A refresh failed (or one is wanted): try again at the next tick.
    dirty: bool,
    /// Last epoch whose statuses were fetched.
    statuses_epoch: Option<u64>,
}

/// Consumes contract sync's data-plane events from the first one (history replay included,
/// so that the sync never waits on a full queue). Until the registry is loaded only stops and
/// re-adds matter (the registry loaded next has the final word, and start-up bumps every
/// validator that did not attest here lately); once `ready` hands over the updater, every
/// batch of events is applied to the running node.
pub async fn follow_contract(
    mut events: mpsc::Receiver<DataPlaneEvent>,
    stopped: Arc<StoppedValidators>,
    ready: oneshot::Receiver<RegistryUpdater>,
    stop: watch::Receiver<bool>,
) {
    tokio::pin!(ready);
    let updater = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(DataPlaneEvent::StopValidator { validator_pubkey, .. }) => {
                    stopped.stop(validator_pubkey);
                }
                Some(DataPlaneEvent::StartValidator(v)) => {
                    stopped.restart(&v.validator_pubkey);
                }
                Some(_) => {}
                None => return,
            },
            u = &mut ready => match u {
                Ok(u) => break u,
                Err(_) => return,
            },
        }
    };
    updater.run(Some(events), stop).await;
}

impl RegistryUpdater {
    /// Runs until `stop`: applies each batch of contract events (`events`, when contract
    /// sync runs), resolves the beacon index of new validators every slot until it is known,
    /// and reads every validator's beacon status once an epoch.
    pub async fn run(
        self,
        mut events: Option<mpsc::Receiver<DataPlaneEvent>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut state = State {
            subscribed: self.live.current().active_subnets(),
            ..State::default()
        };
        let mut tick = tokio::time::interval(self.clock.spec().slot_duration());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = async {
                match events.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = next => {
                    let Some(ev) = ev else {
                        events = None;
                        continue;
                    };
                    let mut why = Vec::new();
                    self.note(ev, &mut why);
                    // Everything already queued joins this refresh.
                    while let Some(ev) = events.as_mut().and_then(|rx| rx.try_recv().ok()) {
                        self.note(ev, &mut why);
                    }
                    if !why.is_empty() {
                        self.refresh(&mut state, &why.join(", ")).await;
                    }
                }
                _ = tick.tick() => self.on_tick(&mut state).await,
                _ = stop.changed() => return,
            }
        }
    }

    /// Takes one event: a stop is applied at once; every change is named in `why` (the
    /// registry is rebuilt from the store, which already holds it).
    fn note(&self, ev: DataPlaneEvent, why: &mut Vec<String>) {
        match ev {
            DataPlaneEvent::StopValidator {
                validator_pubkey,
                reason,
            } => {
                if self.stopped.stop(validator_pubkey) {
                    tracing::warn!(
                        validator = hex::encode(validator_pubkey),
                        ?reason,
                        "validator stopped on-chain: no more signatures for it"
                    );
                }
                why.push(format!("{reason:?}"));
            }
            DataPlaneEvent::StartValidator(v) => {
                tracing::info!(
                    validator = hex::encode(v.validator_pubkey),
                    "validator added on-chain"
                );
                why.push("added".into());
            }
            DataPlaneEvent::ExitValidator {
                validator_pubkey,
                block,
            } => {
                tracing::info!(
                    validator = hex::encode(validator_pubkey),
                    block,
                    "exit requested on-chain"
                );
                why.push("exit requested".into());
            }
            DataPlaneEvent::FeeRecipientUpdated { owner, recipient } => {
                tracing::info!(
                    owner = %owner,
                    recipient = %recipient,
                    "fee recipient updated on-chain"
                );
                why.push("fee recipient".into());
            }
            // Subnets follow the registry's committees.
            DataPlaneEvent::SubscribeSubnet { .. } | DataPlaneEvent::UnsubscribeSubnet { .. } => {}
        }
    }

    /// Every slot: new validators' indices (while some are missing) and a failed refresh
    /// again; every epoch: the beacon statuses of all our validators.
    async fn on_tick(&self, state: &mut State) {
        let epoch = self
            .clock
            .current_slot()
            .map(|s| self.clock.spec().epoch_of(s));
        if epoch.is_some() && state.statuses_epoch != epoch {
            match self.fetch_done().await {
                Ok(done) => {
                    state.statuses_epoch = epoch;
                    // Once an epoch the registry is rebuilt whatever happened: other
                    // clusters' changes and removed operators reach gossip validation (only
                    // our own validators' events come as data-plane events).
                    state.dirty = true;
                    if done != state.done {
                        tracing::info!(
                            exited = done.len(),
                            "validators exited or withdrawn on the beacon chain: not run"
                        );
                        state.done = done;
                        state.dirty = true;
                    }
                }
                Err(e) => tracing::warn!("validator statuses: {e:#}"),
            }
        }
        let registry = self.live.current();
        let missing_index = registry
            .skipped
            .iter()
            .any(|s| s.ends_with(super::registry::NO_INDEX_YET));
        if state.dirty || missing_index {
            self.refresh(state, "beacon status").await;
        }
    }

    /// The beacon node's statuses of every validator we run: those that are done.
    async fn fetch_done(&self) -> anyhow::Result<HashSet<[u8; 48]>> {
        let registry = self.live.current();
        let ids: Vec<String> = registry
            .shares()
            .map(|s| format!("0x{}", hex::encode(s.pubkey)))
            .collect();
        let mut done = HashSet::new();
        let ours: HashSet<[u8; 48]> = registry.shares().map(|s| s.pubkey).collect();
        let mut seen = HashSet::new();
        let mut counts: Vec<(&str, u64)> = Vec::new();
        for chunk in ids.chunks(super::INDEX_REQUEST_KEYS_MAX) {
            for e in self.client.validators(chunk).await? {
                if DONE_STATUSES.contains(&e.status.as_str()) {
                    done.insert(e.validator.pubkey);
                }
                if ours.contains(&e.validator.pubkey) && seen.insert(e.validator.pubkey) {
                    counts.push((metrics::validator_status_category(&e.status), 1));
                }
            }
        }
        // The Go node's `ssv_validator_validators_per_status`: ours by beacon status, those
        // the beacon node does not know, and those still without an index.
        counts.push(("not_found", (ours.len() - seen.len()) as u64));
        let no_index = registry
            .skipped
            .iter()
            .filter(|s| s.ends_with(super::registry::NO_INDEX_YET))
            .count();
        counts.push(("no_index", no_index as u64));
        self.metrics.set_validator_statuses(&counts);
        // Only validators we asked about count (a lying beacon node cannot stop others).
        done.retain(|p| ours.contains(p));
        Ok(done)
    }

    /// Rebuilds the registry from the store and hands it to the data plane; see the module
    /// docs for the order that keeps it safe.
    async fn refresh(&self, state: &mut State, why: &str) {
        let t = Instant::now();
        state.dirty = true;
        if let Err(e) = super::resolve_indices(&self.store, &self.client).await {
            tracing::warn!("beacon indices of new validators not resolved: {e:#}");
        }
        let prev = self.live.current();
        let next = {
            let (prev, store, ours, domain) = (
                prev.clone(),
                self.store.clone(),
                self.ours.clone(),
                self.domain,
            );
            let done = state.done.clone();
            tokio::task::spawn_blocking(move || prev.refresh(&store, &ours, domain, &done)).await
        };
        let next = match next {
            Ok(Ok(r)) => Arc::new(r),
            Ok(Err(e)) => {
                tracing::error!("registry not rebuilt ({why}): {e:#}; the previous one runs");
                return;
            }
            Err(e) => {
                tracing::error!("registry not rebuilt ({why}): {e}; the previous one runs");
                return;
            }
        };
        // Added: not run before, or stopped since (removed or liquidated, then back).
        let added: Vec<[u8; 48]> = next
            .shares()
            .filter(|s| {
                prev.share(s.index).is_none_or(|p| p.pubkey != s.pubkey)
                    || self.stopped.is_stopped(&s.pubkey)
            })
            .map(|s| s.pubkey)
            .collect();
        let removed = prev
            .shares()
            .filter(|s| next.share(s.index).is_none_or(|n| n.pubkey != s.pubkey))
            .count();
        if !added.is_empty()
            && let Some(slot) = self.clock.current_slot()
        {
            let store = self.store.clone();
            let epoch = self.clock.spec().epoch_of(slot);
            let pubkeys = added.clone();
            let bumped = tokio::task::spawn_blocking(move || {
                store.bump_slashing_protection_forced(&pubkeys, epoch, slot)
            })
            .await;
            match bumped {
                Ok(Ok(n)) => tracing::info!(
                    bumped = n,
                    epoch,
                    slot,
                    "slashing protection of added validators bumped: they attest from the \
                     next epoch"
                ),
                Ok(Err(e)) => {
                    tracing::error!("bumping added validators failed ({e}): not started yet");
                    return;
                }
                Err(e) => {
                    tracing::error!("bumping added validators failed ({e}): not started yet");
                    return;
                }
            }
        }
        if added.is_empty() && removed == 0 && next.same_as(&prev) {
            // Nothing the data plane would see: no new version (which would make the
            // scheduler fetch duties again).
            state.dirty = false;
            tracing::debug!(
                why,
                took_ms = t.elapsed().as_millis() as u64,
                "registry unchanged"
            );
            return;
        }
        for pubkey in &added {
            if self.stopped.restart(pubkey) {
                tracing::info!(
                    validator = hex::encode(pubkey),
                    "validator back in the registry: signing again"
                );
            }
        }
        self.live.publish(next.clone());
        for tx in &self.shards {
            if tx.send(ShardEvent::Registry(next.clone())).await.is_err() {
                tracing::warn!("a shard stopped before the registry update reached it");
            }
        }
        let want = next.active_subnets();
        for s in want.difference(&state.subscribed) {
            if let Ok(subnet) = Subnet::new(*s as usize)
                && let Err(e) = self.network.subscribe(subnet).await
            {
                tracing::error!(subnet = s, "subscribing a new committee's subnet: {e}");
            }
        }
        for s in state.subscribed.difference(&want) {
            if let Ok(subnet) = Subnet::new(*s as usize)
                && let Err(e) = self.network.unsubscribe(subnet).await
            {
                tracing::warn!(subnet = s, "leaving a subnet without validators: {e}");
            }
        }
        state.subscribed = want;
        state.dirty = false;
        Metrics::add(&self.metrics.registry_updates, 1);
        Metrics::add(&self.metrics.validators_added_live, added.len() as u64);
        Metrics::add(&self.metrics.validators_removed_live, removed as u64);
        let committees: HashMap<usize, ()> = next.committee_of.values().map(|c| (*c, ())).collect();
        if !added.is_empty() || removed > 0 {
            tracing::info!(
                why,
                validators = next.validator_count(),
                committees = committees.len(),
                added = added.len(),
                removed,
                subnets = state.subscribed.len(),
                took_ms = t.elapsed().as_millis() as u64,
                "registry updated"
            );
        } else {
            tracing::debug!(
                why,
                took_ms = t.elapsed().as_millis() as u64,
                "registry refreshed"
            );
        }
    }
}
