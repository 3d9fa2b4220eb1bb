//! Contract sync into the persistent MDBX registry against a real Ethereum JSON-RPC node
//! (hardhat, installed by `testdata/eth/setup.sh`; without it the test fails saying so):
//! a sync that dies mid-history, a new process that reopens the database and resumes, the
//! registry compared with an uninterrupted in-memory sync, and the runtime's start-up
//! loader (`ssv-node start`) reading what the sync wrote.
//!
//! The 10,000-event rate into a durable MDBX store (with the in-memory store as the
//! baseline of the same run) is ignored by default:
//! `cargo test --release -p ssv-node --test eth_sync_mdbx -- --ignored --nocapture sync_10k`

#[path = "../../testdata/eth/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::*;
use ssv_crypto_pipeline::OperatorSecretKey;
use ssv_eth_sync::{
    BlockBatch, ContractSync, EthError, MdbxRegistryStore, MemoryRegistryStore, ProgressMode,
    RegistryChange, RegistryStore, StoredRegistry, SyncConfig,
};
use ssv_node::Registry;
use ssv_protocol::types::DomainType;
use ssv_storage::{Durability, Store, StoreConfig, WriteOp};

const OUR_ID: u64 = 1;

fn config(chain: &Chain, endpoints: Vec<String>) -> SyncConfig {
    let mut c = SyncConfig::new(endpoints, chain.contract, chain.deploy_block);
    c.follow_distance = 0;
    c.initial_range = 8;
    c.max_range = 64;
    c.poll_interval = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(20);
    c.endpoint_rounds_max = 3;
    c.progress = ProgressMode::Lines;
    c
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("ssv-eth-sync-mdbx-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_store(dir: &Path) -> Arc<Store> {
    let mut c = StoreConfig::new(dir, [0x11; 32]);
    c.durability = Durability::NoSyncSafe;
    c.geometry.max_size_bytes = 256 << 20;
    Arc::new(Store::open(c).expect("open store"))
}

/// A store that fails its `fail_at`-th commit, as a crash between two commits would.
struct CrashingStore<S> {
    inner: Arc<S>,
    commits: AtomicU64,
    fail_at: u64,
}

impl<S: RegistryStore> RegistryStore for CrashingStore<S> {
    fn load(&self) -> Result<StoredRegistry, EthError> {
        self.inner.load()
    }

    fn apply_batch(&self, batch: &BlockBatch) -> Result<(), EthError> {
        if self.commits.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(EthError::Storage("simulated crash".into()));
        }
        self.inner.apply_batch(batch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdbx_registry_resumes_after_a_crash_and_feeds_the_runtime() {
    require_dev_node!();
    let node = DevNode::start().await;
    let chain = Chain::deploy(&node).await;
    let key = Arc::new(OperatorSecretKey::generate().expect("rsa key"));
    register_operators(&chain, OUR_ID, &key, &[2, 3, 4, 5]).await;
    let mut reg = Registrar::new(OUR_ID, key.clone(), 3);
    let (a, b) = (chain.accounts[1], chain.accounts[2]);
    // One event per block, so that the crashing sync has many commits to fail.
    let regs: Vec<_> = (0..24)
        .map(|i| {
            let owner = if i % 2 == 0 { a } else { b };
            let ids = if i % 3 == 0 { &THEIRS_4 } else { &OURS_4 };
            let shares = if i == 5 {
                Shares::BadLength
            } else {
                Shares::Valid
            };
            reg.register(owner, ids, shares)
        })
        .collect();
    send_registrations(&chain, &regs, 1).await;
    for r in &regs[..3] {
        chain
            .send(
                r.owner,
                removeValidatorCall {
                    operatorIds: r.operator_ids.clone(),
                    publicKey: r.public_key.clone(),
                },
            )
            .await;
    }
    chain
        .send(
            a,
            exitValidatorCall {
                operatorIds: regs[4].operator_ids.clone(),
                publicKey: regs[4].public_key.clone(),
            },
        )
        .await;
    chain
        .send(
            chain.accounts[5],
            liquidateCall {
                clusterOwner: b,
                operatorIds: OURS_4.to_vec(),
            },
        )
        .await;
    chain
        .send(
            a,
            setFeeRecipientAddressCall {
                recipientAddress: alloy::primitives::Address::repeat_byte(0x77),
            },
        )
        .await;
    let head = chain.head().await;

    let reference = {
        let store = Arc::new(MemoryRegistryStore::new());
        let mut sync = ContractSync::new(
            config(&chain, vec![node.http_url()]),
            store.clone(),
            Some(key.clone()),
            None,
        )
        .expect("sync");
        sync.sync_history().await.expect("history");
        store.snapshot()
    };
    assert_eq!(reference.cursor, Some(head));
    assert_eq!(reference.state.malformed_total, 1);
    assert!(!reference.state.liquidated.is_empty());

    let dir = TempDir::new();
    let cursor_at_crash = {
        let registry = Arc::new(MdbxRegistryStore::new(open_store(&dir.0)).expect("registry"));
        let crashing = Arc::new(CrashingStore {
            inner: registry.clone(),
            commits: AtomicU64::new(0),
            fail_at: 14,
        });
        // Batches of two blocks with events: the 14th commit is mid-history, and the crash
        // drops a batch of several blocks.
        let mut small_batches = config(&chain, vec![node.http_url()]);
        small_batches.history_batch_blocks_max = 2;
        let mut first =
            ContractSync::new(small_batches, crashing, Some(key.clone()), None).expect("sync");
        let err = first.sync_history().await.expect_err("the crash stops it");
        assert!(matches!(err, EthError::Storage(_)), "{err}");
        first
            .cursor()
            .expect("blocks were committed before the crash")
        // The sync, the registry and the store (the MDBX environment) close here.
    };
    assert!(cursor_at_crash < head, "the crash happened mid-sync");

    // A new process: reopen the database, resume at cursor + 1.
    let store = open_store(&dir.0);
    let registry = Arc::new(MdbxRegistryStore::new(store.clone()).expect("registry"));
    assert_eq!(registry.load().expect("load").cursor, Some(cursor_at_crash));
    let mut second = ContractSync::new(
        config(&chain, vec![node.http_url()]),
        registry.clone(),
        Some(key.clone()),
        None,
    )
    .expect("sync");
    second.sync_history().await.expect("resumed sync");
    drop(second);
    // Nothing lost, nothing applied twice (a ValidatorAdded applied twice would have been
    // recorded malformed with a stale nonce).
    assert_eq!(registry.load().expect("load"), reference);

    // The runtime's start-up loader finds our operator by its public key, and, once the
    // beacon metadata gave our validators an index, decrypts every active share of ours.
    let own_active: Vec<[u8; 48]> = reference
        .state
        .own_active_validators()
        .map(|v| v.pubkey)
        .collect();
    assert!(!own_active.is_empty());
    let mut ops = Vec::new();
    for (i, v) in reference.state.validators.values().enumerate() {
        let mut share = store.share(&v.pubkey).expect("read").expect("share stored");
        share.validator_index = Some(i as u64);
        ops.push(WriteOp::PutShare(share));
    }
    store.write(ops).expect("metadata");
    let ours = ssv_node::resolve_operators(&store, &[(None, key.clone())]).expect("our operator");
    let loaded = Registry::load(&store, &ours, DomainType::MAINNET).expect("runtime load");
    assert_eq!(loaded.operator_id, OUR_ID);
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    assert_eq!(loaded.validator_count(), own_active.len());
    // A contract change that rewrites a share after the metadata refresh keeps its index.
    registry
        .apply_block(
            head + 1,
            &[RegistryChange::SetExitRequested {
                pubkey: own_active[0],
                block: head + 1,
            }],
        )
        .expect("block after the head");
    assert_eq!(
        registry.load().expect("load").state.validators[&own_active[0]].exit_requested_block,
        Some(head + 1)
    );
    assert!(
        store
            .share(&own_active[0])
            .unwrap()
            .unwrap()
            .validator_index
            .is_some()
    );
    let again = Registry::load(&store, &ours, DomainType::MAINNET).expect("runtime load");
    assert_eq!(again.validator_count(), own_active.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes a few minutes; run with --ignored to measure the sync rate into MDBX"]
async fn sync_10k_events_rate_mdbx() {
    require_dev_node!();
    const EVENTS: usize = 10_000;
    const OWNERS: usize = 8;
    let node = DevNode::start().await;
    let chain = Chain::deploy(&node).await;
    let key = Arc::new(OperatorSecretKey::generate().expect("rsa key"));
    register_operators(&chain, OUR_ID, &key, &[2, 3, 4, 5]).await;
    let regs = parallel_registrations(&chain, OUR_ID, &key, EVENTS, OWNERS);
    for owner_regs in &regs {
        send_registrations(&chain, owner_regs, 100).await;
    }
    let head = chain.head().await;
    let blocks = head - chain.deploy_block + 1;

    async fn timed<S: RegistryStore + 'static>(
        chain: &Chain,
        url: String,
        key: &Arc<OperatorSecretKey>,
        store: Arc<S>,
    ) -> (f64, ssv_eth_sync::SyncStats) {
        let mut cfg = config(chain, vec![url]);
        cfg.initial_range = 1_000;
        cfg.max_range = 10_000;
        let mut sync = ContractSync::new(cfg, store, Some(key.clone()), None).expect("sync");
        let started = Instant::now();
        sync.sync_history().await.expect("history");
        (started.elapsed().as_secs_f64(), sync.stats())
    }

    let memory = Arc::new(MemoryRegistryStore::new());
    let (memory_s, memory_stats) = timed(&chain, node.http_url(), &key, memory.clone()).await;
    let dir = TempDir::new();
    let store = {
        // The production setting: every commit is flushed before it returns.
        let c = StoreConfig::new(&dir.0, [0x11; 32]);
        Arc::new(Store::open(c).expect("open store"))
    };
    let registry = Arc::new(MdbxRegistryStore::new(store.clone()).expect("registry"));
    let (mdbx_s, mdbx_stats) = timed(&chain, node.http_url(), &key, registry.clone()).await;
    let events = (mdbx_stats.events_applied + mdbx_stats.events_malformed) as f64;
    eprintln!(
        "RESULT: {EVENTS} ValidatorAdded over {blocks} blocks; memory store {memory_s:.2} s \
         ({:.0} events/s, commits {} ms); MDBX durable {mdbx_s:.2} s ({:.0} events/s, {} \
         commits in {} ms); ratio {:.2}",
        events / memory_s,
        memory_stats.commit_us / 1000,
        events / mdbx_s,
        mdbx_stats.commits,
        mdbx_stats.commit_us / 1000,
        mdbx_s / memory_s
    );
    assert_eq!(mdbx_stats.events_malformed, 0);
    assert_eq!(registry.load().expect("load"), memory.snapshot());
    assert_eq!(
        store
            .load_committees()
            .expect("map")
            .validator_committee
            .len(),
        EVENTS
    );
}
