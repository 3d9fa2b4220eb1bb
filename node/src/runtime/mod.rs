//! `ssv-node start`: the operator node's runtime.
//!
//! ```text
//! control plane (tokio, 2 threads)          data plane (glommio shard k pinned to core k)
//!   beacon client ─ scheduler ──Duty──────────► shard: checks ─► CommitteeRunner ─┐
//!   submitter ◄──────────── Submission ◄────────┘   ▲ gossip (ShardQueue)         │
//!   metrics / pprof HTTP                             │                             ▼
//!                          netio thread (libp2p) ────┘    rayon crypto pool: sign, reconstruct+verify
//!                          storage writer thread (MDBX): slashing protection, decided values
//! ```
//!
//! Start-up order: operator key → beacon nodes (every node's sync status probed, then genesis,
//! spec, fork from a healthy one; retried with backoff while unreachable; probed again once a
//! slot from then on) → store (keyed by the genesis validators root) → registry (operators, our
//! committees, decrypted shares) → network (subscribed to our committees' subnets) → crypto
//! pool → shards → submitter → scheduler. SIGINT / SIGTERM stop it in reverse.

pub mod api;
pub mod doppelganger;
pub mod exporter;
pub mod health;
pub mod live;
pub mod metrics;
pub mod network_view;
pub mod pprof;
pub mod registry;
pub mod scheduler;
pub mod shard;
pub mod tracing_otlp;
pub mod validator_runners;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ssv_crypto_pipeline::{HashToG2Cache, LagrangeCache, OperatorSecretKey};
use ssv_netio::{Network, NetworkConfig, Subnet, Subnets};
use ssv_protocol::chain::{ChainSpec, SlotClock};
use ssv_storage::{Store, StoreConfig};
use tokio::sync::watch;

use crate::config::{Config, OperatorKey};
use metrics::Metrics;
use registry::{LiveRegistry, Registry};
use scheduler::{ForkInfo, Scheduler};
use shard::{SUBMISSIONS_MAX, Services, ShardEvent, Submission};
use ssv_beacon_api::client::BeaconClient;
use ssv_beacon_api::types::{Fork, Genesis, Spec};

/// Longest wait between two attempts to reach the beacon node at start-up.
pub const BEACON_RETRY_MAX: Duration = Duration::from_secs(30);
/// Shortest pause between two health probes of the beacon nodes (they are probed once a
/// slot; this bounds a devnet's short slots). Too small and the probes are a load of their
/// own on the beacon nodes.
pub const BEACON_PROBE_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// Longest pause between two health probes. Too large and a node that started lagging keeps
/// serving duties (stale attestation data, missed blocks) for that long.
pub const BEACON_PROBE_INTERVAL_MAX: Duration = Duration::from_secs(12);
/// How long shards get to stop before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Largest operator key file read.
pub const KEY_FILE_BYTES_MAX: u64 = 64 * 1024;

fn read_bounded(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("reading the {what} {}", path.display()))?;
    if meta.len() > KEY_FILE_BYTES_MAX {
        bail!(
            "the {what} {} is larger than {KEY_FILE_BYTES_MAX} bytes",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

/// Loads the operator's RSA key as the config says.
pub fn load_operator_key(key: &OperatorKey) -> anyhow::Result<OperatorSecretKey> {
    match key {
        OperatorKey::Plain(path) => {
            let text = read_bounded(path, "operator key")?;
            let text = text.trim();
            OperatorSecretKey::from_pem(text)
                .or_else(|_| OperatorSecretKey::from_base64_pem(text))
                .map_err(|e| anyhow::anyhow!("operator key {}: {e}", path.display()))
        }
        OperatorKey::Keystore { keystore, password } => {
            let json = read_bounded(keystore, "operator keystore")?;
            let password = read_bounded(password, "password file")?;
            ssv_crypto_pipeline::keystore::decrypt_operator_key(json.as_bytes(), &password)
                .map_err(|e| anyhow::anyhow!("operator keystore {}: {e}", keystore.display()))
        }
    }
}

/// Asks the beacon node for genesis, spec and fork until it answers (backoff up to
/// [`BEACON_RETRY_MAX`]), or until `stop`.
async fn wait_for_beacon(
    client: &BeaconClient,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<(Genesis, Spec, Fork)> {
    let mut delay = Duration::from_millis(500);
    loop {
        // Probed first: a lagging node listed first must not be the one that answers.
        client.probe_health().await;
        let r = async {
            let g = client.genesis().await?;
            let s = client.spec().await?;
            let f = client.fork().await?;
            Ok::<_, ssv_beacon_api::client::BeaconError>((g, s, f))
        }
        .await;
        match r {
            Ok(x) => return Ok(x),
            Err(e) => {
                tracing::warn!("beacon node not ready ({e}); retrying in {delay:?}");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => bail!("stopped while waiting for the beacon node"),
        }
        delay = (delay * 2).min(BEACON_RETRY_MAX);
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs the node until SIGINT / SIGTERM.
pub fn start(config: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ssv-control")
        .enable_all()
        .build()
        .context("starting the control-plane runtime")?;
    if config.exporter.is_some() {
        return rt.block_on(exporter::run(config));
    }
    rt.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });

    if config.operators.is_empty() {
        bail!("an operator node needs an operator key");
    }
    let mut keys: Vec<(Option<u64>, Arc<OperatorSecretKey>)> = Vec::new();
    for o in &config.operators {
        keys.push((o.id, Arc::new(load_operator_key(&o.key)?)));
    }
    // Contract sync follows every operator the node hosts.
    let sync_keys: Vec<Arc<OperatorSecretKey>> = keys.iter().map(|(_, k)| k.clone()).collect();
    // Metrics and profiles are served from the start, so a node waiting for its beacon node
    // can be observed.
    let metrics = Arc::new(Metrics::default());
    let health_slot = metrics::HealthSlot::default();
    if let Some(addr) = config.metrics_addr {
        let local = metrics::serve(addr, metrics.clone(), health_slot.clone())
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!("metrics on http://{local}/metrics");
    }
    if let Some(addr) = config.pprof_addr {
        let local = pprof::serve(addr)
            .await
            .with_context(|| format!("serving pprof on {addr}"))?;
        tracing::info!("CPU profiles on http://{local}/debug/pprof/profile?seconds=10");
    }

    let domain = config.network.domain();
    let client = Arc::new(
        BeaconClient::new(config.beacon_nodes.clone())
            .context("beacon node configuration")?
            .with_observer(metrics.clone() as Arc<dyn ssv_beacon_api::RequestObserver>),
    );
    let (genesis, spec, fork) = wait_for_beacon(&client, &mut stop_rx).await?;

    let schedule = match client.fork_schedule().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("no fork schedule from the beacon node ({e}): the head fork only");
            None
        }
    };
    let preset = match config.network {
        crate::config::Network::Public(name) => ssv_protocol::types::network_preset(name),
        crate::config::Network::Local => None,
    };
    ssv_beacon_api::check_genesis(&genesis, preset, SlotClock::now_ms() / 1000)
        .map_err(|why| anyhow::anyhow!("{why}"))?;
    // Refused here, before anything runs: a zero or absurd slot duration, slots per epoch
    // or genesis from a broken or lying beacon node would break every slot computation.
    let slot_duration = slot_of_spec(&spec);
    let chain = ChainSpec::new(
        spec.slots_per_epoch,
        slot_duration,
        spec.epochs_per_sync_committee_period,
    )
    .context("the beacon node's chain spec")?;
    let clock = SlotClock::new(genesis.genesis_time, chain).context("the beacon node's genesis")?;
    let prober = tokio::spawn(probe_beacon_nodes(
        client.clone(),
        slot_duration,
        metrics.clone(),
    ));
    tracing::info!(
        network = config.network.name(),
        slot_ms = slot_duration.as_millis() as u64,
        gvr = hex::encode(genesis.genesis_validators_root),
        "beacon node ready"
    );

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = Arc::new(
        Store::open(StoreConfig::new(
            config.data_dir.join("db"),
            genesis.genesis_validators_root,
        ))
        .context("opening the database")?,
    );
    let stopped = Arc::new(registry::StoppedValidators::default());
    let (follower, updater_tx) = match &config.eth1 {
        Some(eth1) => {
            let (f, u) = sync_contract(
                eth1,
                &config,
                &store,
                &sync_keys,
                &stop_rx,
                stopped.clone(),
                &metrics,
            )
            .await?;
            (Some(f), Some(u))
        }
        None => (None, None),
    };
    if let Err(e) = resolve_indices(&store, &client).await {
        tracing::warn!("beacon indices of new validators not resolved: {e:#}");
    }
    let ours = Arc::new(registry::resolve_operators(&store, &keys)?);
    let registry = Arc::new(Registry::load(&store, &ours, domain)?);
    for s in &registry.skipped {
        tracing::warn!("validator not run: {s}");
    }
    let ids: Vec<u64> = ours.ids().collect();
    for &id in &ids {
        let runs: Vec<&Arc<registry::CommitteeInfo>> = registry
            .committees
            .iter()
            .filter(|c| c.member.operator_id == id)
            .collect();
        tracing::info!(
            operator = id,
            committees = runs.len(),
            validators = runs.iter().map(|c| c.validators.len()).sum::<usize>(),
            "operator hosted"
        );
    }
    tracing::info!(
        operator = registry.operator_id,
        operators = ?ids,
        committees = registry.committees.len(),
        validators = registry.validator_count(),
        "registry loaded"
    );
    bump_new_validators(&store, &registry, &clock)?;
    let mut subnets = Subnets::NONE;
    for s in registry.active_subnets() {
        subnets.insert(Subnet::new(s as usize)?);
    }
    let live = Arc::new(LiveRegistry::new(registry));
    let net_cfg = network_config(&config, domain, subnets)?;
    let mut network =
        tokio::task::block_in_place(|| Network::start(net_cfg)).context("starting the network")?;
    tracing::info!(peer_id = %network.handle.peer_id(), "network started");
    let sources = health_sources(&config, &client, &network.handle, &store);
    let _ = health_slot.set(sources.clone());
    if let Some(addr) = config.api_addr {
        serve_api(
            addr,
            &config,
            &network.handle,
            &store,
            sources,
            axum::Router::new(),
        )
        .await?;
    }

    // Doppelganger protection: every validator tracked (in detection) before any shard can
    // sign; the scheduler runs the liveness checks.
    let (doppelganger, doppelganger_monitor) = match config.doppelganger_epochs {
        Some(epochs) => {
            let d = Arc::new(doppelganger::Doppelganger::new(epochs));
            let monitor = doppelganger::Monitor::new(
                d.clone(),
                client.clone(),
                live.clone(),
                stopped.clone(),
                metrics.clone(),
            );
            tracing::info!(
                detection_epochs = epochs,
                validators = d.counts().1,
                "doppelganger protection on: no validator is signed for until liveness shows \
                 no other instance"
            );
            (d, Some(monitor))
        }
        None => (Arc::new(doppelganger::Doppelganger::default()), None),
    };

    if let Some(endpoint) = &config.otlp_endpoint {
        tracing_otlp::install(endpoint)?;
        tracing::info!("duty traces over OTLP to {endpoint}/v1/traces");
    }
    let pool = Arc::new(shard::crypto_pool(config.crypto_threads)?);
    let (sub_tx, sub_rx) = async_channel::bounded::<Submission>(SUBMISSIONS_MAX);
    let services = Arc::new(Services {
        registry: live.clone(),
        operator_keys: ours.clone(),
        published: Default::default(),
        network: network.handle.clone(),
        store: store.clone(),
        pool,
        hash_cache: Arc::new(HashToG2Cache::new()),
        lagrange: Arc::new(LagrangeCache::new()),
        submissions: sub_tx,
        metrics: metrics.clone(),
        clock,
        fault: config.fault,
        domain,
        duties: Arc::new(network_view::DutyStore::default()),
        stopped,
        doppelganger,
        clock_offset_ms: std::sync::atomic::AtomicI64::new(0),
    });
    if let Some(f) = config.fault {
        tracing::warn!(fault = ?f, "FAULT INJECTION is on (local devnet)");
    }

    // Shards.
    let shard::Shards {
        events: shard_txs,
        handles,
    } = shard::spawn_shards(
        &services,
        std::mem::take(&mut network.shards),
        config.pin_shards,
    )?;

    // Submitter.
    let submitter = {
        let client = client.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            while let Ok(s) = sub_rx.recv().await {
                let client = client.clone();
                let metrics = metrics.clone();
                // Each submission on its own task: a slow beacon node does not hold back
                // the next slot's submissions.
                tokio::spawn(async move { submit(&client, &metrics, clock, s).await });
            }
        })
    };

    // The live registry: contract events (handed over from the task that took them during
    // history sync) and beacon statuses reach the data plane from now on.
    let updater = live::RegistryUpdater {
        live: live.clone(),
        store: store.clone(),
        ours: ours.clone(),
        domain,
        client: client.clone(),
        stopped: services.stopped.clone(),
        shards: shard_txs.clone(),
        network: services.network.clone(),
        clock,
        metrics: metrics.clone(),
    };
    let updater = match updater_tx {
        Some(tx) => {
            if tx.send(updater).is_err() {
                bail!("contract sync's event task stopped before the node started");
            }
            None
        }
        None => Some(tokio::spawn(updater.run(None, stop_rx.clone()))),
    };

    let scheduler = Scheduler {
        client: client.clone(),
        registry: live.clone(),
        shards: shard_txs.clone(),
        clock,
        fork: ForkInfo::new(&fork, schedule.as_deref(), &genesis, &spec),
        metrics: metrics.clone(),
        duties: services.duties.clone(),
        doppelganger: doppelganger_monitor,
    };
    let sched = tokio::spawn(scheduler.run(stop_rx.clone()));
    let pruner = tokio::spawn(prune_slashing_history(
        store.clone(),
        clock,
        config.slashing_history_epochs,
        metrics.clone(),
    ));
    let net_stats = tokio::spawn(copy_network_stats(
        services.network.clone(),
        metrics.clone(),
    ));
    tracing::info!("node running");

    // Wait for the stop signal.
    let _ = stop_rx.wait_for(|s| *s).await;
    tracing::info!("stopping");
    let _ = sched.await;
    prober.abort();
    pruner.abort();
    net_stats.abort();
    if let Some(u) = updater {
        u.abort();
    }
    if let Some(f) = follower {
        f.abort();
    }
    for tx in &shard_txs {
        let _ = tx.send(ShardEvent::Shutdown).await;
    }
    let joined = tokio::task::spawn_blocking(move || {
        for h in handles {
            let _ = h.join();
        }
    });
    if tokio::time::timeout(SHUTDOWN_GRACE, joined).await.is_err() {
        tracing::warn!("shards did not stop within {SHUTDOWN_GRACE:?}");
    }
    submitter.abort();
    tokio::task::block_in_place(move || drop(network));
    tracing::info!(metrics = %metrics.render().lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join(", "), "stopped");
    Ok(())
}

/// The p2p settings of `config` for `subnets` (loopback limits on a local network).
pub(crate) fn network_config(
    config: &Config,
    domain: ssv_protocol::types::DomainType,
    subnets: Subnets,
) -> anyhow::Result<NetworkConfig> {
    let mut net_cfg = NetworkConfig::new(domain);
    net_cfg.data_dir = Some(config.data_dir.clone());
    net_cfg.ip = config.p2p.ip;
    net_cfg.tcp_port = config.p2p.tcp_port;
    net_cfg.udp_port = config.p2p.udp_port;
    net_cfg.quic_port = config.p2p.quic_port;
    net_cfg.max_peers = config.p2p.max_peers;
    net_cfg.subnets = subnets;
    net_cfg.shard_count = config.shards;
    if config.p2p.ip.is_loopback() {
        // A local network: every peer shares one address.
        let lo = NetworkConfig::loopback(domain);
        net_cfg.max_connections_per_ip = lo.max_connections_per_ip;
        net_cfg.ip_colocation_whitelist = lo.ip_colocation_whitelist;
        net_cfg.discovery_interval = lo.discovery_interval;
        net_cfg.min_peers = 1;
    }
    for b in &config.p2p.bootnodes {
        net_cfg.bootnodes.push(
            b.parse()
                .map_err(|e| anyhow::anyhow!("bootnode {b:?} is not an ENR: {e}"))?,
        );
    }
    Ok(net_cfg)
}

/// The health probes of `/health` (API and metrics port) and `/v1/node/health`.
pub(crate) fn health_sources(
    config: &Config,
    client: &Arc<BeaconClient>,
    network: &ssv_netio::NetworkHandle,
    store: &Arc<Store>,
) -> Arc<health::HealthSources> {
    let floor = if config.p2p.ip.is_loopback() {
        health::PeerFloor::LOOPBACK
    } else {
        health::PeerFloor::GO
    };
    let eth1 = config.eth1.as_ref().map(|e| health::Eth1Probe {
        endpoints: e.endpoints.clone(),
        follow_distance: e
            .follow_distance
            .unwrap_or(ssv_eth_sync::sync::FOLLOW_DISTANCE_DEFAULT),
    });
    let listen = vec![
        format!("tcp://{}:{}", config.p2p.ip, config.p2p.tcp_port),
        format!("udp://{}:{}", config.p2p.ip, config.p2p.udp_port),
    ];
    Arc::new(health::HealthSources::new(
        client.clone(),
        network.clone(),
        store.clone(),
        eth1,
        floor,
        listen,
    ))
}

/// Serves the node API on `addr` and logs `api on http://ADDR`. A configured address that
/// cannot be bound stops the node; the default one only logs (another node on the host may
/// hold it). `extra` is merged in (the exporter's routes); returns the bound address.
pub(crate) async fn serve_api(
    addr: std::net::SocketAddr,
    config: &Config,
    network: &ssv_netio::NetworkHandle,
    store: &Arc<Store>,
    sources: Arc<health::HealthSources>,
    extra: axum::Router,
) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let version = NetworkConfig::new(config.network.domain()).node_version;
    let state = Arc::new(api::ApiState::new(
        network.clone(),
        store.clone(),
        sources,
        version,
    ));
    match api::serve(addr, api::router(state).merge(extra)).await {
        Ok(local) => {
            tracing::info!("api on http://{local}");
            Ok(Some(local))
        }
        Err(e) if !config.api_addr_explicit => {
            tracing::error!("node API not served on the default {addr}: {e:#}");
            Ok(None)
        }
        Err(e) => Err(e.context(format!("serving the node API on {addr}"))),
    }
}

/// The slot duration the beacon node's spec gives (unchecked: [`ChainSpec::new`] checks it).
fn slot_of_spec(spec: &Spec) -> Duration {
    Duration::from_millis(
        spec.slot_duration_ms
            .unwrap_or(spec.seconds_per_slot.saturating_mul(1000)),
    )
}

/// Probes every beacon node's sync status once a slot (clamped to
/// [`BEACON_PROBE_INTERVAL_MIN`]..=[`BEACON_PROBE_INTERVAL_MAX`]), so that requests go to a
/// healthy node first and a node that starts lagging stops being used within a slot; counts
/// each node found unhealthy or unreachable in `beacon_nodes_unhealthy`.
async fn probe_beacon_nodes(client: Arc<BeaconClient>, slot: Duration, metrics: Arc<Metrics>) {
    let every = slot.clamp(BEACON_PROBE_INTERVAL_MIN, BEACON_PROBE_INTERVAL_MAX);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let found = client.probe_health().await;
        let unhealthy = found.iter().filter(|h| !h.is_healthy()).count();
        Metrics::add(&metrics.beacon_nodes_unhealthy, unhealthy as u64);
    }
}

/// Syncs the SSV contract's history into the database (with a progress display), then
/// follows new blocks on a background task. Its data-plane events go to
/// [`live::follow_contract`] from the first one; the returned sender hands it the
/// [`live::RegistryUpdater`] once the data plane runs, and from then on every change reaches
/// the running node (a removal or liquidation stops signing the moment its event arrives).
async fn sync_contract(
    eth1: &crate::config::Eth1Config,
    config: &Config,
    store: &Arc<Store>,
    keys: &[Arc<OperatorSecretKey>],
    stop: &watch::Receiver<bool>,
    stopped: Arc<registry::StoppedValidators>,
    metrics: &Metrics,
) -> anyhow::Result<(
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<live::RegistryUpdater>,
)> {
    use ssv_eth_sync::{ContractSync, DataPlaneEvent, MdbxRegistryStore};
    let cfg = sync_config(eth1, config)?;
    let registry_store =
        Arc::new(MdbxRegistryStore::new(store.clone()).context("opening the contract registry")?);
    // A queue far deeper than the sync's default: a full queue holds the sync back, and the
    // events are taken from the first one (history replay included).
    let (dp_tx, dp_rx) = tokio::sync::mpsc::channel::<DataPlaneEvent>(1 << 16);
    let (updater_tx, updater_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(live::follow_contract(
        dp_rx,
        stopped,
        updater_rx,
        stop.clone(),
    ));
    let sync = ContractSync::with_keys(cfg, registry_store, keys.to_vec(), Some(dp_tx))?
        .with_stop(stop.clone());
    let _ = metrics.event_sync.set(sync.counters());
    Ok((sync_history_then_follow(sync).await?, updater_tx))
}

/// Syncs the contract's history, then follows new blocks on a background task.
async fn sync_history_then_follow<S: ssv_eth_sync::RegistryStore + 'static>(
    mut sync: ssv_eth_sync::ContractSync<S>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let cursor = sync
        .sync_history()
        .await
        .context("contract sync (history)")?;
    tracing::info!(cursor = ?cursor, stats = ?sync.stats(), "contract history synced");
    Ok(tokio::spawn(async move {
        if let Err(e) = sync.run().await {
            tracing::error!("contract sync stopped: {e}");
        }
    }))
}

/// Contract sync of an exporter: no operator key, so every operator, cluster and validator
/// is stored (no share is ours, none is decrypted) and no data-plane event is produced; the
/// returned counters (`events_applied` moves after each committed batch with events) tell
/// the exporter when to rebuild its registry. Syncs the history, then follows new blocks on
/// a background task.
async fn sync_contract_exporter(
    eth1: &crate::config::Eth1Config,
    config: &Config,
    store: &Arc<Store>,
    stop: &watch::Receiver<bool>,
    metrics: &Metrics,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, Arc<ssv_eth_sync::SyncCounters>)> {
    use ssv_eth_sync::{ContractSync, MdbxRegistryStore};
    let cfg = sync_config(eth1, config)?;
    let registry_store =
        Arc::new(MdbxRegistryStore::new(store.clone()).context("opening the contract registry")?);
    let sync = ContractSync::new(cfg, registry_store, None, None)?.with_stop(stop.clone());
    let counters = sync.counters();
    let _ = metrics.event_sync.set(counters.clone());
    Ok((sync_history_then_follow(sync).await?, counters))
}

/// Contract sync's configuration from `[eth1]` and the network.
fn sync_config(
    eth1: &crate::config::Eth1Config,
    config: &Config,
) -> anyhow::Result<ssv_eth_sync::SyncConfig> {
    use ssv_eth_sync::SyncConfig;
    let mut cfg = match config.network {
        crate::config::Network::Public(name) => {
            SyncConfig::for_network(name, eth1.endpoints.clone())?
        }
        crate::config::Network::Local => {
            SyncConfig::new(eth1.endpoints.clone(), ssv_eth_sync::Address::ZERO, 0)
        }
    };
    if let Some(c) = &eth1.contract {
        cfg.contract = c
            .parse()
            .map_err(|e| anyhow::anyhow!("eth1.contract {c:?}: {e}"))?;
    }
    if let Some(b) = eth1.start_block {
        cfg.start_block = b;
    }
    if let Some(d) = eth1.follow_distance {
        cfg.follow_distance = d;
    }
    if let Some(ms) = eth1.poll_interval_ms {
        cfg.poll_interval = Duration::from_millis(ms);
    }
    Ok(cfg)
}

/// Gives every validator of the registry that did not attest here in the previous or current
/// epoch the Go node's bump: nothing at or below the current epoch and slot is signed for it,
/// as it may have signed elsewhere since it last signed here (new here, or removed and
/// re-added, or reactivated before this start; changes while the node runs are bumped by
/// [`live::RegistryUpdater`] at the event).
fn bump_new_validators(
    store: &Store,
    registry: &Registry,
    clock: &SlotClock,
) -> anyhow::Result<()> {
    let Some(slot) = clock.current_slot() else {
        return Ok(()); // before genesis nothing can have been signed
    };
    // Each validator once (a committee with several of our IDs has an entry per ID).
    let pubkeys: Vec<[u8; 48]> = registry.shares().map(|v| v.pubkey).collect();
    let bumped = store
        .bump_slashing_protection(&pubkeys, clock.spec().epoch_of(slot), slot)
        .context("bumping slashing protection of new validators")?;
    if bumped > 0 {
        tracing::info!(
            bumped,
            epoch = clock.spec().epoch_of(slot),
            "slashing protection of validators not active here in the last epoch starts at the current epoch"
        );
    }
    Ok(())
}

/// Prunes slashing-protection records older than `history_epochs` once an epoch (and at
/// start), off the async threads; the per-validator watermark keeps refusing everything
/// that was pruned.
async fn prune_slashing_history(
    store: Arc<Store>,
    clock: SlotClock,
    history_epochs: u64,
    metrics: Arc<Metrics>,
) {
    let spec = *clock.spec();
    loop {
        if let Some(slot) = clock.current_slot() {
            let epoch = spec.epoch_of(slot);
            if let Some(keep_from) = epoch.checked_sub(history_epochs) {
                let below = ssv_storage::PruneBelow {
                    attestation_target_epoch: keep_from,
                    block_slot: spec.first_slot(keep_from),
                };
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.prune_slashing(below)).await {
                    Ok(Ok(s)) => {
                        let n = (s.attestations_deleted + s.blocks_deleted) as u64;
                        Metrics::add(&metrics.slashing_pruned, n);
                        if n > 0 {
                            tracing::info!(
                                attestations = s.attestations_deleted,
                                blocks = s.blocks_deleted,
                                below_epoch = keep_from,
                                "slashing-protection history pruned"
                            );
                        }
                    }
                    Ok(Err(e)) => tracing::error!("pruning slashing protection: {e}"),
                    Err(e) => tracing::error!("pruning slashing protection: {e}"),
                }
            }
        }
        tokio::time::sleep(spec.slot_duration() * spec.slots_per_epoch() as u32).await;
    }
}

/// Validator public keys per `validators` request.
pub const INDEX_REQUEST_KEYS_MAX: usize = 512;

/// Asks the beacon node for the index of every stored validator that has none yet (shares
/// from contract sync arrive without one) and stores it in the share.
async fn resolve_indices(store: &Store, client: &BeaconClient) -> anyhow::Result<usize> {
    let map = store.load_committees().context("loading committees")?;
    let missing: Vec<[u8; 48]> = map
        .committees
        .values()
        .flat_map(|c| c.validators.iter())
        .filter(|v| v.index.is_none() && !v.liquidated)
        .map(|v| v.pubkey)
        .collect();
    // Indices already taken by a validator we hold: a beacon node that hands one of them to
    // another pubkey is lying.
    let mut taken: std::collections::HashMap<u64, [u8; 48]> = map
        .committees
        .values()
        .flat_map(|c| c.validators.iter())
        .filter_map(|v| v.index.map(|i| (i, v.pubkey)))
        .collect();
    let wanted: std::collections::HashSet<[u8; 48]> = missing.iter().copied().collect();
    let mut resolved = 0;
    for chunk in missing.chunks(INDEX_REQUEST_KEYS_MAX) {
        let ids: Vec<String> = chunk
            .iter()
            .map(|p| format!("0x{}", hex::encode(p)))
            .collect();
        let entries = client.validators(&ids).await?;
        let mut ops = Vec::new();
        let mut this_batch = std::collections::HashSet::new();
        for e in entries {
            let pubkey = e.validator.pubkey;
            if !wanted.contains(&pubkey) || !this_batch.insert(pubkey) {
                tracing::error!(
                    pubkey = hex::encode(pubkey),
                    index = e.index,
                    "beacon node answered with a validator we did not ask for (or twice): ignored"
                );
                continue;
            }
            if let Some(other) = taken.get(&e.index)
                && *other != pubkey
            {
                tracing::error!(
                    pubkey = hex::encode(pubkey),
                    index = e.index,
                    holder = hex::encode(other),
                    "beacon node gave an index we already hold for another pubkey: ignored"
                );
                continue;
            }
            taken.insert(e.index, pubkey);
            // Set inside the write transaction: never undoes a concurrent contract change.
            ops.push(ssv_storage::WriteOp::SetValidatorIndex(pubkey, e.index));
        }
        resolved += ops.len();
        if !ops.is_empty() {
            store.write(ops).context("storing validator indices")?;
        }
    }
    if !missing.is_empty() {
        tracing::info!(
            missing = missing.len(),
            resolved,
            "beacon indices of stored validators"
        );
    }
    Ok(resolved)
}

async fn submit(client: &BeaconClient, metrics: &Metrics, clock: SlotClock, s: Submission) {
    use metrics::BeaconRole;
    // The Go node's per-epoch submission gauge counts by the epoch of the submission time.
    let epoch = clock
        .current_slot()
        .map_or(0, |slot| clock.spec().epoch_of(slot));
    let ok = |role: BeaconRole, counter: &std::sync::atomic::AtomicU64, n: usize| {
        Metrics::add(counter, n as u64);
        metrics.record_submitted(role, epoch, n as u64);
    };
    match s {
        Submission::Attestations(atts) => {
            let span = atts
                .first()
                .and_then(|a| tracing_otlp::submission(a.data.slot, a.attester_index));
            let r = client.submit_attestations(&atts).await;
            if let Some(span) = span {
                span.end(atts.len(), r.is_ok());
            }
            match r {
                Ok(()) => ok(
                    BeaconRole::Attester,
                    &metrics.attestations_submitted,
                    atts.len(),
                ),
                Err(e) => {
                    metrics.record_submission_failed(BeaconRole::Attester);
                    tracing::error!(count = atts.len(), "submitting attestations: {e}");
                }
            }
        }
        Submission::SyncMessages(msgs) => match client.submit_sync_messages(&msgs).await {
            Ok(()) => ok(
                BeaconRole::SyncCommittee,
                &metrics.sync_messages_submitted,
                msgs.len(),
            ),
            Err(e) => {
                metrics.record_submission_failed(BeaconRole::SyncCommittee);
                tracing::error!(count = msgs.len(), "submitting sync messages: {e}");
            }
        },
        Submission::Block(signed) => {
            let version = signed.proposal.version().name();
            let blinded = signed.proposal.is_blinded();
            let slot = signed.proposal.slot();
            match client
                .publish_block(version, blinded, signed.to_ssz())
                .await
            {
                Ok(()) => {
                    ok(BeaconRole::Proposer, &metrics.blocks_submitted, 1);
                    tracing::info!(slot, blinded, version, "block published");
                }
                Err(e) => {
                    metrics.record_submission_failed(BeaconRole::Proposer);
                    tracing::error!(slot, "publishing the block: {e}");
                }
            }
        }
        Submission::FetchBlock {
            key,
            slot,
            randao_reveal,
            reply,
        } => {
            let data = client
                .produce_block(slot, &randao_reveal, &GRAFFITI)
                .await
                .map(|b| {
                    tracing::debug!(
                        slot,
                        blinded = b.blinded,
                        version = b.version,
                        "block produced"
                    );
                    (b.version, b.ssz)
                })
                .map_err(|e| e.to_string());
            if reply
                .send(ShardEvent::BeaconData { key, data })
                .await
                .is_err()
            {
                tracing::warn!(slot, "shard stopped before its block arrived");
            }
        }
        Submission::FetchAggregate {
            key,
            slot,
            committee_index,
            validator_index,
            selection_proof,
            reply,
        } => {
            // Aggregates are made at two thirds of the slot, when the committee's
            // attestations have had a third of the slot to spread.
            let at = clock.slot_start_ms(slot) + clock.spec().slot_ms() * 2 / 3;
            let wait = at.saturating_sub(SlotClock::now_ms());
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            let data = fetch_aggregate(
                client,
                slot,
                committee_index,
                validator_index,
                selection_proof,
            )
            .await;
            if let Err(e) = &data {
                Metrics::add(&metrics.beacon_data_refused, 1);
                tracing::error!(slot, validator = validator_index, "no aggregate: {e}");
            }
            if reply
                .send(ShardEvent::BeaconData { key, data })
                .await
                .is_err()
            {
                tracing::warn!(slot, "shard stopped before its aggregate arrived");
            }
        }
        Submission::FetchContributions {
            key,
            slot,
            candidates,
            reply,
        } => {
            // Contributions are made at two thirds of the slot, as aggregates are.
            let at = clock.slot_start_ms(slot) + clock.spec().slot_ms() * 2 / 3;
            let wait = at.saturating_sub(SlotClock::now_ms());
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            let data = fetch_contributions(client, slot, &candidates).await;
            if let Err(e) = &data {
                Metrics::add(&metrics.beacon_data_refused, 1);
                tracing::error!(slot, "no sync-committee contributions: {e}");
            }
            if reply
                .send(ShardEvent::Contributions { key, data })
                .await
                .is_err()
            {
                tracing::warn!(slot, "shard stopped before its contributions arrived");
            }
        }
        Submission::Contribution(c) => {
            let body = ssv_beacon_api::types::SignedContributionAndProofJson::from_container(&c);
            match client.publish_contributions(&[body]).await {
                Ok(()) => ok(
                    BeaconRole::SyncCommitteeContribution,
                    &metrics.contributions_submitted,
                    1,
                ),
                Err(e) => {
                    metrics.record_submission_failed(BeaconRole::SyncCommitteeContribution);
                    tracing::error!(
                        slot = c.message.contribution.slot,
                        "publishing a contribution: {e}"
                    );
                }
            }
        }
        Submission::Exit(e) => {
            let body = ssv_beacon_api::types::SignedVoluntaryExitJson::from_container(&e);
            match client.submit_exit(&body).await {
                Ok(()) => {
                    ok(BeaconRole::VoluntaryExit, &metrics.exits_submitted, 1);
                    tracing::info!(
                        validator = e.message.validator_index,
                        "voluntary exit submitted"
                    );
                }
                Err(e) => {
                    metrics.record_submission_failed(BeaconRole::VoluntaryExit);
                    tracing::error!("submitting a voluntary exit: {e}");
                }
            }
        }
        Submission::Registration(r) => {
            let body = ssv_beacon_api::types::SignedValidatorRegistrationJson::from_container(&r);
            match client.register_validators(&[body]).await {
                Ok(()) => ok(
                    BeaconRole::ValidatorRegistration,
                    &metrics.registrations_submitted,
                    1,
                ),
                Err(e) => {
                    metrics.record_submission_failed(BeaconRole::ValidatorRegistration);
                    tracing::error!("submitting a builder registration: {e}");
                }
            }
        }
        Submission::Aggregate(signed) => {
            use ssv_protocol::beacon::consensus_data::SignedAggregateAndProofData;
            let SignedAggregateAndProofData::Electra(a) = &*signed else {
                metrics.record_submission_failed(BeaconRole::Aggregator);
                tracing::error!("a phase 0 aggregate: this node publishes Electra aggregates only");
                return;
            };
            let body = ssv_beacon_api::types::SignedAggregateAndProofElectra::from_container(a);
            match client.publish_aggregates(&[body]).await {
                Ok(()) => ok(BeaconRole::Aggregator, &metrics.aggregates_submitted, 1),
                Err(e) => {
                    metrics.record_submission_failed(BeaconRole::Aggregator);
                    tracing::error!(
                        slot = a.message.aggregate.data.slot,
                        "publishing the aggregate: {e}"
                    );
                }
            }
        }
    }
}

/// The contributions of the subcommittees whose selection proof makes the validator an
/// aggregator (`None`: none does), each checked (slot, subcommittee, block root), as the SSZ
/// list the runner decides on. The block root is the one the slot's sync-committee messages
/// sign (the beacon node's head at the slot, from its attestation data).
async fn fetch_contributions(
    client: &BeaconClient,
    slot: u64,
    candidates: &[([u8; 96], u64)],
) -> Result<Option<(u64, Vec<u8>)>, String> {
    use ssv_protocol::beacon::consensus_data::{Contribution, Contributions, DataVersion};
    use ssz::Encode as _;
    let aggregating: Vec<&([u8; 96], u64)> = candidates
        .iter()
        .filter(|(proof, _)| ssv_protocol::runner::is_sync_committee_aggregator(proof))
        .collect();
    if aggregating.is_empty() {
        return Ok(None);
    }
    let root = client
        .attestation_data(slot, 0)
        .await
        .map_err(|e| e.to_string())?
        .beacon_block_root;
    let mut list = Vec::new();
    for (proof, subnet) in aggregating {
        let c = client
            .sync_committee_contribution(slot, *subnet, &root)
            .await
            .map_err(|e| e.to_string())?
            .to_container()?;
        if c.slot != slot || c.subcommittee_index != *subnet || c.beacon_block_root != root {
            return Err(format!(
                "contribution of slot {} subcommittee {} is not the one asked for",
                c.slot, c.subcommittee_index
            ));
        }
        list.push(Contribution {
            selection_proof_sig: *proof,
            contribution: c,
        });
    }
    let list: Contributions = list
        .try_into()
        .map_err(|e| format!("too many contributions: {e:?}"))?;
    Ok(Some((DataVersion::Electra.to_u64(), list.as_ssz_bytes())))
}

/// The beacon node's aggregate of our validator's committee, checked (the slot, the
/// attestation data the beacon node gives for the slot, the committee's bit set), as the
/// SSZ `AggregateAndProof` the runner decides on.
async fn fetch_aggregate(
    client: &BeaconClient,
    slot: u64,
    committee_index: u64,
    validator_index: u64,
    selection_proof: [u8; 96],
) -> Result<(String, Vec<u8>), String> {
    use ssz::Encode as _;
    use tree_hash::TreeHash as _;
    let data = client
        .attestation_data(slot, committee_index)
        .await
        .map_err(|e| e.to_string())?;
    if data.slot != slot {
        return Err(format!(
            "attestation data for slot {} (asked {slot})",
            data.slot
        ));
    }
    let root = data.tree_hash_root().0;
    let aggregate = client
        .aggregate_attestation(slot, &root, committee_index)
        .await
        .map_err(|e| e.to_string())?
        .to_container()?;
    if aggregate.data != data {
        return Err("the aggregate is of other attestation data".into());
    }
    if !aggregate
        .committee_bits
        .get(committee_index as usize)
        .unwrap_or(false)
    {
        return Err(format!(
            "the aggregate is not of committee {committee_index}"
        ));
    }
    let aggregate_and_proof = ssv_protocol::beacon::electra::AggregateAndProof {
        aggregator_index: validator_index,
        aggregate,
        selection_proof,
    };
    Ok(("electra".into(), aggregate_and_proof.as_ssz_bytes()))
}

/// How often the network's counters, peers and queue depths are copied into the metrics:
/// a Prometheus scrape sees values at most this old (too long hides short peer losses; each
/// poll asks the network thread once plus once per subscribed subnet).
const NETWORK_STATS_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Copies the network's drop counters, peer counts and shard queue depths into the metrics.
async fn copy_network_stats(network: ssv_netio::NetworkHandle, metrics: Arc<Metrics>) {
    use metrics::Queue;
    use std::sync::atomic::Ordering::Relaxed;
    let mut tick = tokio::time::interval(NETWORK_STATS_PERIOD);
    loop {
        tick.tick().await;
        let Ok(s) = network.stats().await else {
            return;
        };
        metrics.p2p_rate_limited.store(s.rate_limited, Relaxed);
        metrics.set_dropped(Queue::ShardGossip, s.shards.iter().map(|q| q.dropped).sum());
        metrics.set_dropped(Queue::NetworkEvents, s.dropped_events);
        metrics
            .peers_connected
            .store(s.connected_peers as i64, Relaxed);
        for (i, q) in s.shards.iter().enumerate() {
            metrics.set_inbox(i, q.queued);
        }
        for subnet in ssv_netio::Subnet::all() {
            let peers = if s.subscribed.contains(subnet) {
                match network.topic_peers(subnet).await {
                    Ok(n) => Some(n),
                    Err(_) => return,
                }
            } else {
                None
            };
            metrics.set_topic_peers(subnet.index(), peers);
        }
    }
}

/// The graffiti of the blocks this node proposes.
pub const GRAFFITI: [u8; 32] = *b"ssv-node (rust)\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
