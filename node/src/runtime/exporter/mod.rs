//! Exporter mode (`ssv-node start --exporter`), as the Go node's exporter ("full node"):
//!
//! ```text
//! netio (all 128 subnets) ─ shard queues ─► validation (every committee, NetworkIndex)
//!                                               │ verdict back to gossipsub (relay or not)
//!                                               ▼
//!                                   DecidedCollector (commits until quorum)
//!                                      │                        │
//!                       MDBX decided_history (writer)     broadcast ─► /stream clients
//!                                      ▲
//!                          /v1/exporter/decideds (axum, api_addr)
//! ```
//!
//! No duties run, nothing is signed, no operator key is needed. Gossip is validated exactly
//! as an operator validates other committees' messages (every rule, RSA signatures included)
//! before it is relayed or counted, and a quorum of validated commits of one round and value
//! makes an instance decided. Its record (signers, value root, the aggregated commit) goes to
//! the `decided_history` table, which a pruner trims to `exporter.retention_slots` once an
//! epoch.
//!
//! Start-up order: beacon node (clock, duties for validation) → store (decided history on)
//! → contract sync's history (with `[eth1]`) → registry index from the store → network →
//! validation tasks → API → duties, registry follower and pruner.
//!
//! With `[eth1]` the exporter follows the SSV contract as an operator does, without an
//! operator key: contract sync stores every operator, cluster and validator (it decrypts no
//! share). After each batch of contract events it commits, after new validators' beacon
//! indices are resolved, and at least once an epoch, [`follow_registry`] rebuilds the
//! registry from the store and swaps it in whole; each message is validated against the
//! registry current when it is taken, so an added validator's messages are accepted and a
//! removed or liquidated one's refused from the rebuild on.

pub mod api;
pub mod collector;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use ssv_beacon_api::client::BeaconClient;
use ssv_crypto_pipeline::OperatorKeyCache;
use ssv_netio::{InboundMessage, Network, NetworkHandle, Subnets};
use ssv_protocol::chain::{ChainSpec, SlotClock};
use ssv_protocol::validation::{Config as ValidationConfig, MessageValidator, Verdict};
use ssv_storage::{CommitteeMap, Store, StoreConfig, WriteOp};
use tokio::sync::{broadcast, watch};

use super::metrics::Metrics;
use super::network_view::{DutyStore, NetworkIndex, NodeView};
use crate::config::Config;
use collector::DecidedCollector;

/// Validator indices per sync-duties request.
const SYNC_DUTIES_INDICES_MAX: usize = 512;

/// The registry as the exporter validates against it: every committee (operator keys are
/// in the long-lived [`OperatorKeyCache`] beside it). Replaced whole at each rebuild.
struct Registry {
    network: NetworkIndex,
    /// Committee ID → its size (the quorum of its decided instances).
    committee_sizes: std::collections::HashMap<[u8; 32], usize>,
    /// Bumped when a rebuild changes the set of validators (sync-committee members are
    /// fetched again for a new one).
    version: u64,
    /// Active validators whose beacon index is not known yet.
    missing_indices: usize,
}

/// The current [`Registry`], read per message by the validation tasks.
#[derive(Clone)]
struct SharedRegistry(Arc<std::sync::RwLock<Arc<Registry>>>);

impl SharedRegistry {
    fn get(&self) -> Arc<Registry> {
        // Writers only swap an Arc: the lock cannot be poisoned mid-update.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, r: Arc<Registry>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = r;
    }
}

/// Reads the registry from the store: every committee and validator (liquidated ones are
/// known but not active: validation refuses their duties), and every operator's key into
/// `keys` (parsed once per operator). `first` logs each unusable key (later rebuilds only
/// count them).
fn load_registry(
    store: &Store,
    keys: &OperatorKeyCache,
    version: u64,
    first: bool,
) -> anyhow::Result<(Registry, CommitteeMap)> {
    use ssv_storage::tables::Operators;
    use std::ops::ControlFlow;
    let txn = store.read().context("opening a read snapshot")?;
    let mut bad_keys = 0usize;
    txn.scan::<Operators>(None, |id, op| {
        let pem = String::from_utf8_lossy(op.get().public_key.as_slice()).into_owned();
        if let Err(e) = keys.get_or_parse(id, pem.trim()) {
            bad_keys += 1;
            if first {
                tracing::warn!(operator = id, "operator public key unusable: {e}");
            }
        }
        Ok(ControlFlow::Continue(()))
    })
    .context("reading operators")?;
    let map = CommitteeMap::load(&txn).context("loading committees")?;
    drop(txn);
    if bad_keys > 0 && !first {
        tracing::debug!(bad_keys, "operators with unusable public keys");
    }
    let committee_sizes = map
        .committees
        .values()
        .map(|c| {
            (
                ssv_protocol::committee::CommitteeId::from_operators(&c.operator_ids).0,
                c.operator_ids.len(),
            )
        })
        .collect();
    let missing_indices = map
        .committees
        .values()
        .flat_map(|c| c.validators.iter())
        .filter(|v| v.index.is_none() && !v.liquidated)
        .count();
    Ok((
        Registry {
            network: NetworkIndex::from_map(&map),
            committee_sizes,
            version,
            missing_indices,
        },
        map,
    ))
}

/// Counters of the exporter's message path.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    decided: AtomicU64,
    not_stored: AtomicU64,
}

/// Runs the exporter until SIGINT / SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let exporter = config
        .exporter
        .context("exporter mode without an exporter config")?;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        super::shutdown_signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    if !config.operators.is_empty() {
        tracing::warn!("exporter mode: the operator key in the config is not used");
    }
    let metrics = Arc::new(Metrics::default());
    let health_slot = super::metrics::HealthSlot::default();
    if let Some(addr) = config.metrics_addr {
        let local = super::metrics::serve(addr, metrics.clone(), health_slot.clone())
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!("metrics on http://{local}/metrics");
    }
    let domain = config.network.domain();
    let client = Arc::new(
        BeaconClient::new(config.beacon_nodes.clone()).context("beacon node configuration")?,
    );
    let (genesis, spec, _fork) = super::wait_for_beacon(&client, &mut stop_rx).await?;
    let slot_duration = super::slot_of_spec(&spec);
    let chain = ChainSpec::new(
        spec.slots_per_epoch,
        slot_duration,
        spec.epochs_per_sync_committee_period,
    )
    .context("the beacon node's chain spec")?;
    let clock = SlotClock::new(genesis.genesis_time, chain).context("the beacon node's genesis")?;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let mut store_cfg =
        StoreConfig::new(config.data_dir.join("db"), genesis.genesis_validators_root);
    store_cfg.decided_history = true;
    let store = Arc::new(Store::open(store_cfg).context("opening the database")?);
    // Contract sync (with `[eth1]`): the history first, so that the registry loaded next
    // holds every committee up to the head; new blocks are followed from then on.
    let (follower, sync_counters) = match &config.eth1 {
        Some(eth1) => {
            let (f, c) =
                super::sync_contract_exporter(eth1, &config, &store, &stop_rx, &metrics).await?;
            (Some(f), Some(c))
        }
        None => (None, None),
    };
    if let Err(e) = super::resolve_indices(&store, &client).await {
        tracing::warn!("beacon indices of new validators not resolved: {e:#}");
    }
    let keys = Arc::new(OperatorKeyCache::new());
    let (registry, map) = load_registry(&store, &keys, 0, true)?;
    tracing::info!(
        committees = registry.network.committee_count(),
        validators = registry.network.validator_count(),
        retention_slots = exporter.retention_slots,
        contract_sync = sync_counters.is_some(),
        "exporter registry loaded"
    );
    let registry = SharedRegistry(Arc::new(std::sync::RwLock::new(Arc::new(registry))));
    let index = api::LiveIndex::new(api::ExporterIndex::from_map(&map));
    drop(map);

    let net_cfg = super::network_config(&config, domain, Subnets::ALL)?;
    let mut network =
        tokio::task::block_in_place(|| Network::start(net_cfg)).context("starting the network")?;
    tracing::info!(peer_id = %network.handle.peer_id(), subnets = 128, "exporter network started");

    let (stream_tx, _) = broadcast::channel::<Arc<str>>(api::STREAM_QUEUE_MAX);
    let duties = Arc::new(DutyStore::default());
    let counters = Arc::new(Counters::default());
    let validation_cfg = ValidationConfig {
        domain,
        chain,
        genesis_ms: clock.genesis_ms(),
    };
    let mut tasks = Vec::new();
    for queue in std::mem::take(&mut network.shards) {
        let ctx = Pipeline {
            registry: registry.clone(),
            keys: keys.clone(),
            duties: duties.clone(),
            store: store.clone(),
            network: network.handle.clone(),
            stream: stream_tx.clone(),
            index: index.clone(),
            domain,
            slots_per_epoch: chain.slots_per_epoch(),
            counters: counters.clone(),
            metrics: metrics.clone(),
        };
        let validation = MessageValidator::new(validation_cfg);
        tasks.push(tokio::spawn(async move {
            let mut collector = DecidedCollector::default();
            let mut validation = validation;
            while let Some(msg) = queue.recv().await {
                ctx.on_gossip(&mut validation, &mut collector, msg);
            }
        }));
    }

    let sources = super::health_sources(&config, &client, &network.handle, &store);
    let _ = health_slot.set(sources.clone());
    if let Some(addr) = config.api_addr {
        // The node API (identity, peers, topics, health, validators) and the exporter's
        // routes on one server.
        let router = api::router(Arc::new(api::ApiState {
            store: store.clone(),
            index: index.clone(),
            domain,
            stream: stream_tx.clone(),
        }));
        let served =
            super::serve_api(addr, &config, &network.handle, &store, sources, router).await?;
        if let Some(local) = served {
            tracing::info!("exporter API on http://{local} (/v1/exporter/decideds, /stream)");
        }
    } else {
        tracing::warn!("no api_addr: decided history is stored but not served");
    }
    tasks.push(tokio::spawn(fetch_duties(
        client.clone(),
        clock,
        duties.clone(),
        registry.clone(),
    )));
    tasks.push(tokio::spawn(follow_registry(RegistryFollower {
        store: store.clone(),
        client: client.clone(),
        keys: keys.clone(),
        registry: registry.clone(),
        index: index.clone(),
        sync: sync_counters,
        clock,
    })));
    if let Some(f) = follower {
        tasks.push(f);
    }
    tasks.push(tokio::spawn(prune(
        store.clone(),
        clock,
        exporter.retention_slots,
    )));
    tracing::info!("exporter running");

    let _ = stop_rx.wait_for(|s| *s).await;
    tracing::info!("stopping");
    for t in &tasks {
        t.abort();
    }
    tokio::task::block_in_place(move || drop(network));
    tracing::info!(
        accepted = counters.accepted.load(Ordering::Relaxed),
        refused = counters.refused.load(Ordering::Relaxed),
        decided = counters.decided.load(Ordering::Relaxed),
        not_stored = counters.not_stored.load(Ordering::Relaxed),
        "exporter stopped"
    );
    Ok(())
}

/// What one validation task needs.
struct Pipeline {
    registry: SharedRegistry,
    keys: Arc<OperatorKeyCache>,
    duties: Arc<DutyStore>,
    store: Arc<Store>,
    network: NetworkHandle,
    stream: broadcast::Sender<Arc<str>>,
    index: api::LiveIndex,
    domain: ssv_protocol::types::DomainType,
    slots_per_epoch: u64,
    counters: Arc<Counters>,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Validates one gossip message, reports the verdict, and records a decided instance it
    /// completes.
    fn on_gossip(
        &self,
        validation: &mut MessageValidator<ssv_netio::PeerId>,
        collector: &mut DecidedCollector,
        msg: InboundMessage,
    ) {
        Metrics::add(&self.metrics.messages_in, 1);
        // The registry as it is now: a rebuild swaps in a new one for the next message.
        let registry = self.registry.get();
        let view = NodeView {
            index: &registry.network,
            duties: &self.duties,
            keys: &self.keys,
            slots_per_epoch: self.slots_per_epoch,
        };
        let verdict = match validation.validate(
            &view,
            msg.propagation_source,
            &msg.data,
            Some(msg.subnet.index() as u64),
            SlotClock::now_ms(),
        ) {
            Ok(validated) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                Metrics::add(&self.metrics.messages_accepted, 1);
                let size = registry
                    .committee_sizes
                    .get(validated.committee_id())
                    .copied()
                    .unwrap_or(0);
                if let Some(record) = collector.on_message(&validated, size) {
                    self.decided(record);
                }
                ssv_netio::ValidationResult::Accept
            }
            Err(violation) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                self.metrics.validation.record(violation.rule);
                tracing::debug!(
                    peer = %msg.propagation_source,
                    rule = ?violation.rule,
                    "message refused: {violation}"
                );
                match violation.verdict() {
                    Verdict::Ignore => {
                        Metrics::add(&self.metrics.messages_ignored, 1);
                        ssv_netio::ValidationResult::Ignore
                    }
                    Verdict::Reject => {
                        Metrics::add(&self.metrics.messages_rejected, 1);
                        ssv_netio::ValidationResult::Reject
                    }
                }
            }
        };
        if let Err(e) = self.network.try_report_validation(&msg, verdict) {
            tracing::debug!("validation report dropped: {e}");
        }
    }

    fn decided(&self, record: ssv_storage::DecidedRecord) {
        self.counters.decided.fetch_add(1, Ordering::Relaxed);
        Metrics::add(&self.metrics.decided, 1);
        tracing::info!(
            slot = record.height,
            identifier = hex::encode(record.identifier),
            root = hex::encode(record.value_root),
            signers = ?record.signers,
            "exporter: decided"
        );
        // Subscribers first: a full write queue must not delay the live stream.
        if self.stream.receiver_count() > 0 {
            for text in api::stream_messages(&self.index.get(), self.domain, &record) {
                let _ = self.stream.send(Arc::from(text));
            }
        }
        // Not waited for (the validation task must not block); a full queue loses this row,
        // counted and logged.
        if let Err(e) = self.store.try_submit(vec![WriteOp::PutDecided(record)]) {
            self.counters.not_stored.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("decided record not stored: {e}");
        }
    }
}

/// Fetches, once an epoch, the proposer duties and the sync-committee members among the
/// registry's validators: validation checks proposals and contributions against them (and
/// sizes a committee's duty budget by its sync members). A rebuilt registry (new validators)
/// has the members of the current period fetched again.
async fn fetch_duties(
    client: Arc<BeaconClient>,
    clock: SlotClock,
    duties: Arc<DutyStore>,
    registry: SharedRegistry,
) {
    let spec = *clock.spec();
    let mut fetched_epoch = None;
    loop {
        let epoch = clock.current_slot().map_or(0, |s| spec.epoch_of(s));
        for e in [epoch, epoch + 1] {
            let period = spec.sync_period_of(e);
            let current = registry.get();
            let members_known = duties.sync_period_fetched_for(period, current.version);
            if fetched_epoch.is_some_and(|f| f >= e) && members_known {
                continue;
            }
            let mut ok = true;
            if fetched_epoch.is_none_or(|f| f < e) {
                match client.proposer_duties(e).await {
                    Ok(p) => {
                        duties.set_proposers(e, p.data.iter().map(|d| (d.slot, d.validator_index)))
                    }
                    Err(err) => {
                        tracing::warn!(epoch = e, "fetching proposer duties: {err}");
                        ok = false;
                    }
                }
            }
            if !members_known {
                let indices = current.network.validator_indices();
                let mut members = Vec::new();
                let mut members_ok = true;
                for chunk in indices.chunks(SYNC_DUTIES_INDICES_MAX) {
                    match client.sync_duties(e, chunk).await {
                        Ok(d) => members.extend(d.iter().map(|d| d.validator_index)),
                        Err(err) => {
                            tracing::warn!(epoch = e, "fetching sync-committee members: {err}");
                            members_ok = false;
                        }
                    }
                }
                if members_ok {
                    duties.set_sync_members(period, members);
                    duties.sync_period_fetched(period, current.version);
                }
                ok &= members_ok;
            }
            if ok {
                fetched_epoch = Some(fetched_epoch.map_or(e, |f: u64| f.max(e)));
            }
        }
        tokio::time::sleep(spec.slot_duration()).await;
    }
}

/// How often the registry follower looks at contract sync's counters.
const REGISTRY_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// What [`follow_registry`] needs.
struct RegistryFollower {
    store: Arc<Store>,
    client: Arc<BeaconClient>,
    keys: Arc<OperatorKeyCache>,
    registry: SharedRegistry,
    index: api::LiveIndex,
    /// Contract sync's counters (`None`: no `[eth1]`, the store changes only at restarts).
    sync: Option<Arc<ssv_eth_sync::SyncCounters>>,
    clock: SlotClock,
}

/// Rebuilds the registry (validation's [`NetworkIndex`], the API's [`api::ExporterIndex`])
/// from the store and swaps it in: after each batch of contract events contract sync
/// committed, after new validators' beacon indices were resolved (looked up every slot
/// while some are missing), and at least once an epoch. A rebuild that fails keeps the
/// previous registry and is tried again a slot later.
async fn follow_registry(f: RegistryFollower) {
    use std::sync::atomic::Ordering::Relaxed;
    let spec = *f.clock.spec();
    let applied = |f: &RegistryFollower| f.sync.as_ref().map(|c| c.events_applied.load(Relaxed));
    // Events the loaded registry already holds (the history was synced before it loaded).
    let mut seen = applied(&f);
    let mut built_epoch = f.clock.current_slot().map(|s| spec.epoch_of(s));
    let mut looked_up_slot = f.clock.current_slot();
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut version = f.registry.get().version;
    loop {
        tokio::time::sleep(REGISTRY_POLL).await;
        let now_applied = applied(&f);
        let slot = f.clock.current_slot();
        let epoch = slot.map(|s| spec.epoch_of(s));
        let mut want = now_applied != seen || epoch != built_epoch;
        let current = f.registry.get();
        let look_up = want || (current.missing_indices > 0 && slot != looked_up_slot);
        if retry_at.is_some_and(|t| tokio::time::Instant::now() < t) {
            continue;
        }
        if look_up {
            looked_up_slot = slot;
            match super::resolve_indices(&f.store, &f.client).await {
                Ok(n) if n > 0 => want = true,
                Ok(_) => {}
                Err(e) => tracing::warn!("beacon indices of new validators not resolved: {e:#}"),
            }
        }
        if !want && retry_at.is_none() {
            continue;
        }
        let store = f.store.clone();
        let keys = f.keys.clone();
        let started = std::time::Instant::now();
        match tokio::task::spawn_blocking(move || load_registry(&store, &keys, 0, false)).await {
            Ok(Ok((mut registry, map))) => {
                // A new version (sync-committee members fetched again) only when the set of
                // validators changed.
                if registry.network.validator_indices() != current.network.validator_indices() {
                    version += 1;
                }
                registry.version = version;
                tracing::info!(
                    version,
                    committees = registry.network.committee_count(),
                    validators = registry.network.validator_count(),
                    missing_indices = registry.missing_indices,
                    contract_events = now_applied,
                    ms = started.elapsed().as_millis() as u64,
                    "exporter registry rebuilt"
                );
                let index = Arc::new(api::ExporterIndex::from_map(&map));
                f.registry.set(Arc::new(registry));
                f.index.set(index);
                seen = now_applied;
                built_epoch = epoch;
                retry_at = None;
            }
            Ok(Err(e)) => {
                tracing::error!("rebuilding the exporter registry (the previous one stays): {e:#}");
                retry_at = Some(tokio::time::Instant::now() + spec.slot_duration());
            }
            Err(e) => {
                tracing::error!("rebuilding the exporter registry (the previous one stays): {e}");
                retry_at = Some(tokio::time::Instant::now() + spec.slot_duration());
            }
        }
    }
}

/// Once an epoch, deletes decided history older than `retention_slots`.
async fn prune(store: Arc<Store>, clock: SlotClock, retention_slots: u64) {
    let spec = *clock.spec();
    loop {
        if let Some(slot) = clock.current_slot()
            && slot > retention_slots
        {
            let below = slot - retention_slots;
            let s = store.clone();
            match tokio::task::spawn_blocking(move || {
                s.write(vec![WriteOp::PruneDecidedHistory {
                    below_height: below,
                }])
            })
            .await
            {
                Ok(Ok(_)) => tracing::debug!(below_slot = below, "decided history pruned"),
                Ok(Err(e)) => tracing::error!("pruning decided history: {e}"),
                Err(e) => tracing::error!("pruning decided history: {e}"),
            }
        }
        tokio::time::sleep(spec.slot_duration() * spec.slots_per_epoch() as u32).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssv_protocol::validation::NetworkView as _;
    use ssv_storage::records::LiquidatedCluster;

    fn view<'a>(
        r: &'a Registry,
        duties: &'a DutyStore,
        keys: &'a OperatorKeyCache,
    ) -> NodeView<'a> {
        NodeView {
            index: &r.network,
            duties,
            keys,
            slots_per_epoch: 32,
        }
    }

    /// A rebuild reads what contract sync stored since the last one: an added validator is
    /// known, a removed one unknown, a liquidated one known as liquidated (validation refuses
    /// the last two).
    #[test]
    fn a_rebuilt_registry_follows_the_store() {
        let setup = ssv_devnet::Setup::generate(4, 3, 4, 7).expect("set-up");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(StoreConfig::new(dir.path().join("db"), [0; 32])).expect("store");
        let ops = setup.store_ops_exporter().expect("ops");
        // The third validator's share comes later (as a ValidatorAdded while running).
        let late = setup.validators[2].pubkey;
        let (late_ops, first): (Vec<_>, Vec<_>) = ops
            .into_iter()
            .partition(|op| matches!(op, WriteOp::PutShare(s) if s.validator_pubkey == late));
        store.write(first).expect("first registry");
        let keys = OperatorKeyCache::new();
        let duties = DutyStore::default();
        let (r, _) = load_registry(&store, &keys, 0, true).expect("load");
        assert_eq!(r.network.validator_count(), 2);
        assert!(view(&r, &duties, &keys).validator(&late, 0).is_none());

        let removed = setup.validators[0].pubkey;
        let mut changes = late_ops;
        changes.push(WriteOp::DeleteShare(removed));
        store.write(changes).expect("changes");
        let (r, _) = load_registry(&store, &keys, 0, false).expect("reload");
        let v = view(&r, &duties, &keys);
        assert!(v.validator(&removed, 0).is_none(), "removed");
        assert!(
            v.validator(&late, 0).is_some_and(|x| !x.liquidated),
            "added"
        );

        // A liquidation, as contract sync stores it: the cluster, and its shares flagged.
        let mut liquidation = vec![WriteOp::PutLiquidatedCluster(LiquidatedCluster {
            owner: setup.owner.0.0,
            operator_ids: setup.committees[0].clone(),
        })];
        for op in setup.store_ops_exporter().expect("ops") {
            if let WriteOp::PutShare(mut s) = op
                && s.validator_pubkey == late
            {
                s.liquidated = true;
                liquidation.push(WriteOp::PutShare(s));
            }
        }
        store.write(liquidation).expect("liquidation");
        let (r, _) = load_registry(&store, &keys, 0, false).expect("reload");
        let v = view(&r, &duties, &keys);
        assert!(
            v.validator(&late, 0).is_some_and(|x| x.liquidated),
            "liquidated"
        );
        assert_eq!(r.missing_indices, 0);
    }
}
