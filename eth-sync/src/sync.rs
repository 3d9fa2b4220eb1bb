//! The sync driver: historical `eth_getLogs` in bounded, adaptive block ranges, then
//! following new heads (WebSocket `newHeads` where the endpoint is `ws://`/`wss://`, polling
//! otherwise) `follow_distance` blocks behind the head, over several endpoints with failover.
//!
//! History is committed in batches: the blocks of one `eth_getLogs` range go to the store in
//! one transaction with the cursor at the range's end ([`RegistryStore::apply_batch`]); a
//! range with more than [`SyncConfig::history_batch_blocks_max`] blocks with events or
//! [`SyncConfig::history_batch_changes_max`] registry changes is cut into several, each
//! ending at a block with events. While following the head ([`ContractSync::run`] after the
//! history) each block with events is its own transaction, so nothing waits for a batch to
//! fill. Either way a block's committee changes go to the data plane only after the
//! transaction holding the block, in event order, so the data plane never acts on state a
//! crash could lose; a crash leaves the cursor at the end of the last committed batch, and a
//! restart handles the blocks after it again from the registry as it was there.
//!
//! Handling runs on the calling task: BLS verification (about 1 ms per `ValidatorAdded`)
//! and the store commit are synchronous. Run the sync on its own task of a multi-threaded
//! runtime; it shares nothing with the duty path.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, Header};
use alloy::transports::{RpcError, TransportError};
use futures::{Stream, StreamExt};
use ssv_crypto_pipeline::OperatorSecretKey;
use tokio::sync::{mpsc, watch};

use super::abi;
use super::error::EthError;
use super::events::{BadLog, LogEvent, decode_rpc_log};
use super::handler::{DataPlaneEvent, EventHandler};
use super::progress::{Progress, ProgressMode};
use super::registry::{BlockBatch, RegistryState, RegistryStore};

/// Default distance behind the head (reorg safety). Too small: a reorg deeper than this
/// could remove events already applied (they are never rolled back).
pub const FOLLOW_DISTANCE_DEFAULT: u64 = 8;
/// Default first `eth_getLogs` range, in blocks.
pub const LOG_RANGE_INITIAL_DEFAULT: u64 = 1_000;
/// Default largest `eth_getLogs` range, in blocks. Too large: providers refuse or time out
/// (the range then halves, costing a round trip each time).
pub const LOG_RANGE_MAX_DEFAULT: u64 = 10_000;
/// A range that returned fewer logs than this doubles for the next request.
pub const LOGS_GROW_BELOW: usize = 2_000;
/// Default interval between head polls (HTTP endpoints). Too large: new events are seen
/// late; too small: needless requests.
pub const POLL_INTERVAL_DEFAULT: Duration = Duration::from_secs(4);
/// Default timeout of one JSON-RPC request (and of connecting).
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Default number of full rounds over all endpoints that may fail in a row before the sync
/// gives up with [`EthError::AllEndpointsFailed`].
pub const ENDPOINT_ROUNDS_MAX_DEFAULT: u32 = 5;
/// First back-off after a full round of failed endpoints; doubles each round.
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest back-off between rounds.
pub const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// Default most blocks with events one history transaction carries. Too small: history
/// costs a durable commit (about 4 ms) every few blocks again; too large: see
/// [`HISTORY_BATCH_CHANGES_MAX_DEFAULT`], which usually binds first.
pub const HISTORY_BATCH_BLOCKS_MAX_DEFAULT: usize = 1_000;
/// Default most registry changes one history transaction carries (the batch closes after
/// the block that reaches it). Too large: a crash redoes more handling (a `ValidatorAdded` is
/// two changes and about 1 ms of BLS, so 4,096 is about 2 s), the batch's memory grows (a
/// change is at most about 1.3 KB, a 13-operator validator: about 5 MB) and the data-plane
/// events of the batch's first block wait longer for its commit; too small: more commits.
pub const HISTORY_BATCH_CHANGES_MAX_DEFAULT: usize = 4_096;
/// Bound of the data-plane channel the caller should create. When it is full the sync
/// waits (back-pressure): committee changes are never dropped.
pub const DATA_PLANE_QUEUE_MAX: usize = 4_096;

/// Error-message fragments by which providers say "this `eth_getLogs` range is too big".
const RANGE_ERROR_HINTS: [&str; 10] = [
    "block range",
    "range too",
    "too many",
    "limit exceeded",
    "exceed",
    "more than",
    "too large",
    "response size",
    "query timeout",
    "results",
];

/// Configuration of the contract sync.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Execution JSON-RPC endpoints, in order of preference (`http(s)://` or `ws(s)://`).
    pub endpoints: Vec<String>,
    /// The SSVNetwork contract.
    pub contract: Address,
    /// First block to read (the contract's deployment block).
    pub start_block: u64,
    /// Blocks to stay behind the head.
    pub follow_distance: u64,
    /// First `eth_getLogs` range.
    pub initial_range: u64,
    /// Largest `eth_getLogs` range.
    pub max_range: u64,
    /// Head poll interval on HTTP endpoints (and the longest wait for a WebSocket head).
    pub poll_interval: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Full failed rounds over all endpoints before giving up.
    pub endpoint_rounds_max: u32,
    /// How historical progress is shown.
    pub progress: ProgressMode,
    /// Most blocks with events in one history transaction.
    pub history_batch_blocks_max: usize,
    /// Most registry changes in one history transaction (exceeded by at most one block's).
    pub history_batch_changes_max: usize,
}

impl SyncConfig {
    /// A configuration with the defaults for a contract at `contract` deployed at
    /// `start_block`.
    pub fn new(endpoints: Vec<String>, contract: Address, start_block: u64) -> Self {
        Self {
            endpoints,
            contract,
            start_block,
            follow_distance: FOLLOW_DISTANCE_DEFAULT,
            initial_range: LOG_RANGE_INITIAL_DEFAULT,
            max_range: LOG_RANGE_MAX_DEFAULT,
            poll_interval: POLL_INTERVAL_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            endpoint_rounds_max: ENDPOINT_ROUNDS_MAX_DEFAULT,
            progress: ProgressMode::Auto,
            history_batch_blocks_max: HISTORY_BATCH_BLOCKS_MAX_DEFAULT,
            history_batch_changes_max: HISTORY_BATCH_CHANGES_MAX_DEFAULT,
        }
    }

    /// The configuration of a public network by name (`mainnet`, `holesky`, `hoodi`):
    /// contract address and deployment block from `ssv_protocol::types::NETWORK_PRESETS`.
    pub fn for_network(name: &str, endpoints: Vec<String>) -> Result<Self, EthError> {
        let preset = ssv_protocol::types::network_preset(name)
            .ok_or_else(|| EthError::Config(format!("unknown network {name:?}")))?;
        let contract: Address = preset
            .registry_contract
            .parse()
            .map_err(|e| EthError::Config(format!("preset contract address of {name}: {e}")))?;
        Ok(Self::new(endpoints, contract, preset.registry_sync_offset))
    }

    fn validate(&self) -> Result<(), EthError> {
        if self.endpoints.is_empty() {
            return Err(EthError::Config("no execution endpoint".into()));
        }
        for url in &self.endpoints {
            if !["http://", "https://", "ws://", "wss://"]
                .iter()
                .any(|s| url.starts_with(s))
            {
                return Err(EthError::Config(format!(
                    "endpoint {} is not http(s):// or ws(s)://",
                    redact(url)
                )));
            }
        }
        if self.initial_range == 0 || self.max_range < self.initial_range {
            return Err(EthError::Config(format!(
                "log ranges: initial {} must be in 1..=max {}",
                self.initial_range, self.max_range
            )));
        }
        if self.history_batch_blocks_max == 0 || self.history_batch_changes_max == 0 {
            return Err(EthError::Config(
                "history batch bounds must be at least 1".into(),
            ));
        }
        if self.endpoint_rounds_max == 0 {
            return Err(EthError::Config(
                "endpoint_rounds_max must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The scheme and host of an endpoint URL (paths and queries often hold API keys).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<endpoint>".into();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}")
}

/// Whether an `eth_getLogs` failure means "ask for a smaller range".
pub fn is_range_error(e: &TransportError) -> bool {
    match e {
        RpcError::ErrorResp(payload) => {
            let msg = payload.message.to_lowercase();
            payload.code == -32005 || RANGE_ERROR_HINTS.iter().any(|h| msg.contains(h))
        }
        _ => false,
    }
}

/// Counters a running sync updates at each commit, for readers on other tasks (metrics).
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// Events applied.
    pub events_applied: std::sync::atomic::AtomicU64,
    /// Events recorded as malformed and skipped.
    pub events_malformed: std::sync::atomic::AtomicU64,
    /// The last block committed (0: none yet).
    pub last_block: std::sync::atomic::AtomicU64,
}

impl SyncCounters {
    fn record(&self, last: u64, applied: u64, malformed: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.events_applied.fetch_add(applied, Relaxed);
        self.events_malformed.fetch_add(malformed, Relaxed);
        self.last_block.store(last, Relaxed);
    }
}

/// Counters of one sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Store transactions committed (each holds one or more blocks).
    pub commits: u64,
    /// Blocks committed: those with events, and each range's end (which moves the cursor
    /// over blocks without events); `commits` would be this with one transaction per block.
    pub blocks_committed: u64,
    /// Events applied.
    pub events_applied: u64,
    /// Events recorded as malformed and skipped.
    pub events_malformed: u64,
    /// `eth_getLogs` requests.
    pub get_logs_calls: u64,
    /// Times the range was halved after a provider refusal or timeout.
    pub range_shrinks: u64,
    /// Endpoint failures (each one moved to the next endpoint).
    pub endpoint_failures: u64,
    /// Data-plane events sent.
    pub data_plane_sent: u64,
    /// Data-plane events lost because the receiver was gone.
    pub data_plane_lost: u64,
    /// Time spent in `eth_getLogs` (request and decoding of the response), µs.
    pub fetch_us: u64,
    /// Time spent validating and applying events (BLS, RSA), µs.
    pub handle_us: u64,
    /// Time spent in store commits, µs.
    pub commit_us: u64,
}

/// When a pending batch is committed.
#[derive(Debug, Clone, Copy)]
struct BatchLimits {
    /// Commit once the batch holds this many blocks with events.
    blocks_max: usize,
    /// Commit once the batch holds this many changes.
    changes_max: usize,
}

impl BatchLimits {
    /// Following the head: every block with events is committed before the next is handled.
    const PER_BLOCK: BatchLimits = BatchLimits {
        blocks_max: 1,
        changes_max: usize::MAX,
    };
}

/// Blocks handled (the sync's in-memory registry has them) but not yet committed: their
/// changes and what to report once they are.
#[derive(Debug, Default)]
struct Pending {
    batch: BlockBatch,
    /// Committee changes of the batch's blocks, in block and event order.
    data_plane: Vec<DataPlaneEvent>,
    applied: u64,
    malformed: u64,
}

type HeadStream = Pin<Box<dyn Stream<Item = Header> + Send>>;

struct Endpoints {
    urls: Vec<String>,
    current: usize,
    provider: Option<DynProvider>,
    failures_in_row: u32,
    rounds_max: u32,
    timeout: Duration,
    total_failures: u64,
}

impl Endpoints {
    fn url(&self) -> &str {
        &self.urls[self.current]
    }

    fn is_pubsub(&self) -> bool {
        let url = self.url();
        url.starts_with("ws://") || url.starts_with("wss://")
    }

    async fn get(&mut self) -> Result<DynProvider, EthError> {
        loop {
            if let Some(p) = &self.provider {
                return Ok(p.clone());
            }
            let url = self.url().to_string();
            let connect = ProviderBuilder::new()
                .disable_recommended_fillers()
                .connect(&url);
            match tokio::time::timeout(self.timeout, connect).await {
                Ok(Ok(p)) => {
                    tracing::info!(endpoint = %redact(&url), "execution endpoint connected");
                    self.provider = Some(p.erased());
                }
                Ok(Err(e)) => self.fail(&format!("connect: {e}")).await?,
                Err(_) => self.fail("connect timed out").await?,
            }
        }
    }

    /// Drops the current endpoint and moves to the next, backing off after a full round.
    async fn fail(&mut self, err: &str) -> Result<(), EthError> {
        tracing::warn!(endpoint = %redact(self.url()), error = %err, "execution endpoint failed; trying the next");
        self.provider = None;
        self.failures_in_row += 1;
        self.total_failures += 1;
        self.current = (self.current + 1) % self.urls.len();
        let n = self.urls.len() as u32;
        let rounds = self.failures_in_row / n;
        if rounds >= self.rounds_max {
            return Err(EthError::AllEndpointsFailed {
                endpoints: self.urls.len(),
                rounds,
                last: err.to_string(),
            });
        }
        if self.failures_in_row.is_multiple_of(n) {
            let backoff = BACKOFF_BASE
                .saturating_mul(1u32 << rounds.min(16))
                .min(BACKOFF_MAX);
            tokio::time::sleep(backoff).await;
        }
        Ok(())
    }

    fn ok(&mut self) {
        self.failures_in_row = 0;
    }
}

/// The contract sync of one node.
pub struct ContractSync<S: RegistryStore> {
    config: SyncConfig,
    store: Arc<S>,
    handler: EventHandler,
    state: RegistryState,
    cursor: Option<u64>,
    endpoints: Endpoints,
    data_plane: Option<mpsc::Sender<DataPlaneEvent>>,
    range: u64,
    /// Largest range not yet refused: growth stops below a range a provider refused.
    range_cap: u64,
    stats: SyncStats,
    /// What others may read while the sync runs (its metrics).
    counters: Arc<SyncCounters>,
    heads: Option<HeadStream>,
    stop: Option<watch::Receiver<bool>>,
}

impl<S: RegistryStore> std::fmt::Debug for ContractSync<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContractSync")
            .field("cursor", &self.cursor)
            .field("range", &self.range)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<S: RegistryStore> ContractSync<S> {
    /// Loads the registry and cursor from `store`. `operator_key` identifies our operator
    /// (its `OperatorAdded` sets our ID) and decrypts our shares; `data_plane` receives the
    /// committee changes (create it with [`DATA_PLANE_QUEUE_MAX`]).
    pub fn new(
        config: SyncConfig,
        store: Arc<S>,
        operator_key: Option<Arc<OperatorSecretKey>>,
        data_plane: Option<mpsc::Sender<DataPlaneEvent>>,
    ) -> Result<Self, EthError> {
        Self::with_keys(
            config,
            store,
            operator_key.into_iter().collect(),
            data_plane,
        )
    }

    /// [`ContractSync::new`] for a node hosting several operators: each of `operator_keys`
    /// identifies one of our operators (its `OperatorAdded` records its ID as ours) and
    /// decrypts that operator's shares.
    pub fn with_keys(
        config: SyncConfig,
        store: Arc<S>,
        operator_keys: Vec<Arc<OperatorSecretKey>>,
        data_plane: Option<mpsc::Sender<DataPlaneEvent>>,
    ) -> Result<Self, EthError> {
        config.validate()?;
        let stored = store.load()?;
        let mut state = stored.state;
        state.rebuild_indexes();
        Ok(Self {
            endpoints: Endpoints {
                urls: config.endpoints.clone(),
                current: 0,
                provider: None,
                failures_in_row: 0,
                rounds_max: config.endpoint_rounds_max,
                timeout: config.request_timeout,
                total_failures: 0,
            },
            range: config.initial_range,
            range_cap: config.max_range,
            config,
            store,
            handler: EventHandler::with_keys(operator_keys),
            state,
            cursor: stored.cursor,
            data_plane,
            stats: SyncStats::default(),
            counters: Arc::new(SyncCounters::default()),
            heads: None,
            stop: None,
        })
    }

    /// Counters that follow the sync while it runs (moved into its task): events applied and
    /// malformed, last committed block.
    pub fn counters(&self) -> Arc<SyncCounters> {
        self.counters.clone()
    }

    /// Stops the sync between two ranges (or while waiting for a head) once `stop` is true.
    pub fn with_stop(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The registry at the cursor.
    pub fn state(&self) -> &RegistryState {
        &self.state
    }

    /// The last block committed.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// Counters so far.
    pub fn stats(&self) -> SyncStats {
        SyncStats {
            endpoint_failures: self.endpoints.total_failures,
            ..self.stats
        }
    }

    /// The current `eth_getLogs` range.
    pub fn range(&self) -> u64 {
        self.range
    }

    fn next_block(&self) -> u64 {
        self.cursor
            .map_or(self.config.start_block, |c| c + 1)
            .max(self.config.start_block)
    }

    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }

    /// Sends the start of every active validator of ours already in the store (and the
    /// subnets they need). Called once at start-up: the data plane starts empty.
    pub async fn announce_loaded(&mut self) -> usize {
        let mut starts = Vec::new();
        for v in self.state.own_active_validators() {
            match self.handler.start_event(&self.state, v) {
                Ok(s) => starts.push(s),
                Err(e) => tracing::error!(
                    validator = %hex::encode(v.pubkey),
                    error = %e,
                    "stored share of ours does not decrypt; validator not started"
                ),
            }
        }
        let mut subnets: Vec<u64> = starts.iter().map(|s| s.subnet).collect();
        subnets.sort_unstable();
        subnets.dedup();
        for subnet in subnets {
            self.send(DataPlaneEvent::SubscribeSubnet { subnet }).await;
        }
        let n = starts.len();
        for s in starts {
            self.send(DataPlaneEvent::StartValidator(Box::new(s))).await;
        }
        n
    }

    async fn send(&mut self, ev: DataPlaneEvent) {
        let Some(tx) = &self.data_plane else {
            return;
        };
        if tx.send(ev).await.is_ok() {
            self.stats.data_plane_sent += 1;
        } else {
            self.stats.data_plane_lost += 1;
            if self.stats.data_plane_lost == 1 {
                tracing::warn!("data-plane receiver is gone; committee changes are only stored");
            }
        }
    }

    /// The head block number, with failover.
    pub async fn head(&mut self) -> Result<u64, EthError> {
        loop {
            let provider = self.endpoints.get().await?;
            match tokio::time::timeout(self.config.request_timeout, provider.get_block_number())
                .await
            {
                Ok(Ok(n)) => {
                    self.endpoints.ok();
                    return Ok(n);
                }
                Ok(Err(e)) => {
                    self.endpoints
                        .fail(&format!("eth_blockNumber: {e}"))
                        .await?
                }
                Err(_) => self.endpoints.fail("eth_blockNumber timed out").await?,
            }
        }
    }

    /// Syncs to `head - follow_distance`, re-reading the head until caught up, with
    /// progress. Returns the cursor.
    pub async fn sync_history(&mut self) -> Result<Option<u64>, EthError> {
        let mut target = self
            .head()
            .await?
            .saturating_sub(self.config.follow_distance);
        let mut progress = Progress::new(self.config.progress, self.next_block(), target);
        loop {
            progress.set_target(target);
            let limits = self.history_limits();
            self.sync_to_inner(target, limits, Some(&mut progress))
                .await?;
            let next = self
                .head()
                .await?
                .saturating_sub(self.config.follow_distance);
            if next <= target {
                break;
            }
            target = next;
        }
        if let Some(c) = self.cursor {
            progress.finish(c);
        }
        Ok(self.cursor)
    }

    /// Syncs every block up to `target` (inclusive) that is not yet committed, in history
    /// batches.
    pub async fn sync_to(&mut self, target: u64) -> Result<(), EthError> {
        self.sync_to_inner(target, self.history_limits(), None)
            .await
    }

    fn history_limits(&self) -> BatchLimits {
        BatchLimits {
            blocks_max: self.config.history_batch_blocks_max,
            changes_max: self.config.history_batch_changes_max,
        }
    }

    async fn sync_to_inner(
        &mut self,
        target: u64,
        limits: BatchLimits,
        mut progress: Option<&mut Progress>,
    ) -> Result<(), EthError> {
        let topics = abi::event_topics();
        while self.next_block() <= target {
            if self.stopped() {
                return Err(EthError::Stopped);
            }
            let from = self.next_block();
            let to = target.min(from.saturating_add(self.range - 1));
            let provider = self.endpoints.get().await?;
            let filter = Filter::new()
                .address(self.config.contract)
                .event_signature(topics.clone())
                .from_block(from)
                .to_block(to);
            self.stats.get_logs_calls += 1;
            let fetch_started = std::time::Instant::now();
            let logs =
                match tokio::time::timeout(self.config.request_timeout, provider.get_logs(&filter))
                    .await
                {
                    Ok(Ok(logs)) => logs,
                    Ok(Err(e)) if is_range_error(&e) && self.range > 1 => {
                        self.shrink_range(&e.to_string());
                        continue;
                    }
                    Ok(Err(e)) => {
                        self.endpoints.fail(&format!("eth_getLogs: {e}")).await?;
                        continue;
                    }
                    Err(_) => {
                        // A range with too many logs can also show up as a timeout.
                        self.shrink_range("timeout");
                        self.endpoints.fail("eth_getLogs timed out").await?;
                        continue;
                    }
                };
            let mut events: Vec<LogEvent> = Vec::with_capacity(logs.len());
            let mut bad: Option<BadLog> = None;
            for log in logs.iter().filter(|l| !l.removed) {
                match decode_rpc_log(log, self.config.contract, from, to) {
                    Ok(ev) => events.push(ev),
                    Err(e) => {
                        bad = Some(e);
                        break;
                    }
                }
            }
            self.stats.fetch_us += fetch_started.elapsed().as_micros() as u64;
            if let Some(BadLog(e)) = bad {
                self.endpoints
                    .fail(&format!("bad eth_getLogs response: {e}"))
                    .await?;
                continue;
            }
            self.endpoints.ok();
            if logs.len() < LOGS_GROW_BELOW && self.range < self.range_cap {
                self.range = (self.range * 2).min(self.range_cap);
            }
            events.sort_by_key(|e| (e.meta.block, e.meta.log_index));
            events.dedup_by_key(|e| (e.meta.block, e.meta.log_index));
            // Every block of the range is handled and committed before the next request, so
            // no uncommitted block waits on the network, and a stop between ranges drops none.
            let mut pending = Pending::default();
            for block_events in events.chunk_by(|a, b| a.meta.block == b.meta.block) {
                let block = block_events[0].meta.block;
                self.handle_block(&mut pending, block, block_events);
                if pending.batch.block_count() >= limits.blocks_max
                    || pending.batch.changes().len() >= limits.changes_max
                {
                    self.commit(&mut pending, progress.as_deref_mut()).await?;
                }
            }
            if pending
                .batch
                .last_block()
                .or(self.cursor)
                .is_none_or(|c| c < to)
            {
                pending.batch.push(to, Vec::new());
            }
            self.commit(&mut pending, progress.as_deref_mut()).await?;
        }
        Ok(())
    }

    fn shrink_range(&mut self, why: &str) {
        let old = self.range;
        self.range_cap = old.saturating_sub(1).max(1);
        self.range = (self.range / 2).max(1);
        self.stats.range_shrinks += 1;
        tracing::info!(
            from = old,
            to = self.range,
            reason = why,
            "eth_getLogs range reduced"
        );
    }

    /// Handles one block's events against the in-memory registry and adds the result to
    /// `pending`.
    fn handle_block(&mut self, pending: &mut Pending, block: u64, events: &[LogEvent]) {
        debug_assert!(
            pending
                .batch
                .last_block()
                .or(self.cursor)
                .is_none_or(|c| block > c),
            "blocks are handled in order"
        );
        let handle_started = std::time::Instant::now();
        let outcome = self.handler.handle_block(&mut self.state, events);
        self.stats.handle_us += handle_started.elapsed().as_micros() as u64;
        pending.batch.push(block, outcome.changes);
        pending.data_plane.extend(outcome.data_plane);
        pending.applied += outcome.applied;
        pending.malformed += outcome.malformed;
    }

    /// Commits the pending blocks in one transaction, then sends their committee changes.
    /// Leaves `pending` empty; an empty one commits nothing.
    async fn commit(
        &mut self,
        pending: &mut Pending,
        progress: Option<&mut Progress>,
    ) -> Result<(), EthError> {
        let pending = std::mem::take(pending);
        let Some(last) = pending.batch.last_block() else {
            return Ok(());
        };
        debug_assert!(
            self.cursor
                .is_none_or(|c| pending.batch.first_block().is_some_and(|f| f > c)),
            "batches commit in order"
        );
        let commit_started = std::time::Instant::now();
        let committed = self.store.apply_batch(&pending.batch);
        self.stats.commit_us += commit_started.elapsed().as_micros() as u64;
        if let Err(e) = committed {
            // The in-memory state already holds the batch's changes: go back to what the
            // store has, so that a retry starts from a consistent view. The batch's
            // data-plane events are dropped with it; the retry produces them again.
            let stored = self.store.load()?;
            self.state = stored.state;
            self.state.rebuild_indexes();
            self.cursor = stored.cursor;
            return Err(e);
        }
        self.cursor = Some(last);
        self.stats.commits += 1;
        self.stats.blocks_committed += pending.batch.block_count() as u64;
        self.stats.events_applied += pending.applied;
        self.stats.events_malformed += pending.malformed;
        self.counters
            .record(last, pending.applied, pending.malformed);
        if let Some(p) = progress {
            p.update(last, pending.applied, pending.malformed);
        }
        for ev in pending.data_plane {
            self.send(ev).await;
        }
        Ok(())
    }

    /// Waits for the next head: a `newHeads` notification on WebSocket endpoints (at most
    /// `poll_interval`), a `poll_interval` sleep otherwise.
    async fn wait_for_head(&mut self) {
        if self.endpoints.is_pubsub()
            && self.heads.is_none()
            && let Ok(provider) = self.endpoints.get().await
        {
            match tokio::time::timeout(self.config.request_timeout, provider.subscribe_blocks())
                .await
            {
                Ok(Ok(sub)) => self.heads = Some(Box::pin(sub.into_stream())),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "newHeads subscription failed; polling");
                }
                Err(_) => tracing::warn!("newHeads subscription timed out; polling"),
            }
        }
        let poll = self.config.poll_interval;
        match &mut self.heads {
            Some(stream) => match tokio::time::timeout(poll, stream.next()).await {
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => {
                    tracing::warn!("newHeads subscription ended; resubscribing");
                    self.heads = None;
                }
            },
            None => tokio::time::sleep(poll).await,
        }
    }

    /// Runs the sync until `stop` (see [`with_stop`](Self::with_stop)) turns true: announces
    /// the stored validators, syncs the history with progress, then follows the head.
    /// Returns `Ok(())` when stopped, or the error that ended it.
    pub async fn run(mut self) -> Result<(), EthError> {
        let started = self.announce_loaded().await;
        tracing::info!(
            cursor = ?self.cursor,
            validators_started = started,
            "contract sync starting"
        );
        let result = async {
            self.sync_history().await?;
            loop {
                let mut stop = self.stop.clone();
                tokio::select! {
                    () = self.wait_for_head() => {}
                    _ = async {
                        match &mut stop {
                            Some(s) => { let _ = s.wait_for(|v| *v).await; }
                            None => std::future::pending::<()>().await,
                        }
                    } => return Err(EthError::Stopped),
                }
                let target = self
                    .head()
                    .await?
                    .saturating_sub(self.config.follow_distance);
                // At the head a block's committee changes must not wait for later blocks.
                self.sync_to_inner(target, BatchLimits::PER_BLOCK, None)
                    .await?;
            }
        }
        .await;
        match result {
            Err(EthError::Stopped) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::rpc::json_rpc::ErrorPayload;

    #[test]
    fn urls_are_redacted_to_scheme_and_host() {
        assert_eq!(
            redact("https://mainnet.infura.io/v3/SECRETKEY"),
            "https://mainnet.infura.io"
        );
        assert_eq!(
            redact("wss://user:pw@host:8546/ws?key=1"),
            "wss://host:8546"
        );
        assert_eq!(redact("garbage"), "<endpoint>");
    }

    #[test]
    fn range_errors_are_recognised() {
        let err = |code: i64, msg: &str| -> TransportError {
            RpcError::ErrorResp(ErrorPayload {
                code,
                message: msg.to_string().into(),
                data: None,
            })
        };
        assert!(is_range_error(&err(-32005, "whatever")));
        assert!(is_range_error(&err(
            -32600,
            "eth_getLogs is limited to a 10,000 range; block range too large"
        )));
        assert!(is_range_error(&err(
            -32602,
            "query returned more than 10000 results"
        )));
        assert!(!is_range_error(&err(-32601, "method not found")));
    }

    #[test]
    fn presets_and_validation() {
        let c = SyncConfig::for_network("hoodi", vec!["http://127.0.0.1:8545".into()])
            .expect("hoodi preset");
        assert_eq!(c.start_block, 1_065);
        assert_eq!(
            c.contract,
            "0x58410Bef803ECd7E63B23664C586A6DB72DAf59c"
                .parse::<Address>()
                .expect("address")
        );
        assert!(c.validate().is_ok());
        let m = SyncConfig::for_network("mainnet", vec!["https://x".into()]).expect("mainnet");
        assert_eq!(m.start_block, 17_507_487);
        assert!(SyncConfig::for_network("goerli", vec![]).is_err());
        let mut bad = c.clone();
        bad.endpoints = vec![];
        assert!(matches!(bad.validate(), Err(EthError::Config(_))));
        bad.endpoints = vec!["ftp://x".into()];
        assert!(bad.validate().is_err());
        let mut bad = c;
        bad.initial_range = 0;
        assert!(bad.validate().is_err());
    }
}
