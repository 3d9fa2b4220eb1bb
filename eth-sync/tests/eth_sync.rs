//! Contract-sync integration tests against a real Ethereum JSON-RPC node (hardhat 2.29.1 on
//! 127.0.0.1, installed by `testdata/eth/setup.sh`) and a test contract that emits the
//! SSVNetwork events with their real signatures.
//!
//! Each test starts its own dev node. Without `testdata/eth/node_modules` the tests fail,
//! saying so; CI's `.ci/run` runs the set-up first.
//!
//! The 10,000-event rate measurement is ignored by default:
//! `cargo test --release -p ssv-eth-sync --test eth_sync -- --ignored --nocapture sync_10k`

#[path = "../../testdata/eth/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use harness::*;
use ssv_crypto_pipeline::OperatorSecretKey;
use ssv_eth_sync::{
    BlockBatch, ContractSync, DATA_PLANE_QUEUE_MAX, DataPlaneEvent, EthError, MemoryRegistryStore,
    ProgressMode, RegistryStore, StopReason, StoredRegistry, SyncConfig,
};
use tokio::sync::{mpsc, watch};

const OUR_ID: u64 = 1;
const OURS_7: [u64; 7] = [1, 2, 3, 4, 5, 6, 7];

fn our_key() -> Arc<OperatorSecretKey> {
    Arc::new(OperatorSecretKey::generate().expect("rsa key"))
}

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

fn drain(rx: &mut mpsc::Receiver<DataPlaneEvent>) -> Vec<DataPlaneEvent> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        out.push(ev);
    }
    out
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    subscribe: usize,
    unsubscribe: usize,
    start: usize,
    stop_removed: usize,
    stop_liquidated: usize,
    exit: usize,
    fee: usize,
}

fn count(events: &[DataPlaneEvent]) -> Counts {
    let mut c = Counts::default();
    for ev in events {
        match ev {
            DataPlaneEvent::SubscribeSubnet { .. } => c.subscribe += 1,
            DataPlaneEvent::UnsubscribeSubnet { .. } => c.unsubscribe += 1,
            DataPlaneEvent::StartValidator(s) => {
                // The decrypted share is the one the event published for us.
                assert_eq!(s.share_secret.public_key().to_bytes(), s.share_pubkey);
                assert_eq!(s.operator_id, OUR_ID);
                c.start += 1;
            }
            DataPlaneEvent::StopValidator { reason, .. } => match reason {
                StopReason::Removed => c.stop_removed += 1,
                StopReason::Liquidated => c.stop_liquidated += 1,
            },
            DataPlaneEvent::ExitValidator { .. } => c.exit += 1,
            DataPlaneEvent::FeeRecipientUpdated { .. } => c.fee += 1,
        }
    }
    c
}

async fn sync_fresh(
    chain: &Chain,
    endpoints: Vec<String>,
    key: &Arc<OperatorSecretKey>,
) -> StoredRegistry {
    let store = Arc::new(MemoryRegistryStore::new());
    let mut sync = ContractSync::new(
        config(chain, endpoints),
        store.clone(),
        Some(key.clone()),
        None,
    )
    .expect("sync");
    sync.sync_history().await.expect("history");
    store.snapshot()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_history_sync_of_a_few_hundred_events() {
    require_dev_node!();
    let node = DevNode::start().await;
    let chain = Chain::deploy(&node).await;
    let key = our_key();
    register_operators(&chain, OUR_ID, &key, &[2, 3, 4, 5, 6, 7]).await;
    let (a, b, c) = (chain.accounts[1], chain.accounts[2], chain.accounts[3]);
    let mut reg = Registrar::new(OUR_ID, key.clone(), 1);
    let a_bulk: Vec<_> = (0..80)
        .map(|_| reg.register(a, &OURS_4, Shares::Valid))
        .collect();
    let b_bulk: Vec<_> = (0..60)
        .map(|_| reg.register(b, &THEIRS_4, Shares::Valid))
        .collect();
    let c_regs: Vec<_> = (0..40)
        .map(|_| reg.register(c, &OURS_7, Shares::Valid))
        .collect();
    let a_single: Vec<_> = (0..20)
        .map(|_| reg.register(a, &OURS_4, Shares::Valid))
        .collect();
    send_registrations(&chain, &a_bulk, 20).await;
    send_registrations(&chain, &b_bulk, 30).await;
    send_registrations(&chain, &c_regs[..10], 1).await;
    send_registrations(&chain, &c_regs[10..], 30).await;
    send_registrations(&chain, &a_single, 1).await;
    let mut recipients = BTreeMap::new();
    for i in 0..30u8 {
        let owner = chain.accounts[1 + (i as usize % 3)];
        let recipient = Address::repeat_byte(0x10 + i);
        chain
            .send(
                owner,
                setFeeRecipientAddressCall {
                    recipientAddress: recipient,
                },
            )
            .await;
        recipients.insert(owner, recipient);
    }
    for r in &a_bulk[..10] {
        chain
            .send(
                a,
                exitValidatorCall {
                    operatorIds: r.operator_ids.clone(),
                    publicKey: r.public_key.clone(),
                },
            )
            .await;
    }
    for r in b_bulk[..20].iter().chain(&a_single[15..]) {
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
    let head = chain.head().await;

    // A dead endpoint first: the sync must fail over to the live one.
    let store = Arc::new(MemoryRegistryStore::new());
    let (tx, mut rx) = mpsc::channel(DATA_PLANE_QUEUE_MAX);
    let mut sync = ContractSync::new(
        config(&chain, vec![dead_endpoint(), node.http_url()]),
        store.clone(),
        Some(key.clone()),
        Some(tx),
    )
    .expect("sync");
    let started = Instant::now();
    assert_eq!(sync.sync_history().await.expect("history"), Some(head));
    let stats = sync.stats();
    let events = 7 + 200 + 30 + 10 + 25;
    eprintln!(
        "synced {events} events over {} blocks in {:?}: {stats:?}",
        head - chain.deploy_block + 1,
        started.elapsed()
    );
    assert_eq!(stats.events_applied, events);
    assert_eq!(stats.events_malformed, 0);
    assert!(stats.endpoint_failures >= 1, "the dead endpoint was tried");
    assert!(
        stats.get_logs_calls > 3,
        "the history was read in several ranges"
    );

    let s = store.snapshot();
    assert_eq!(s.cursor, Some(head));
    assert_eq!(s.state, *sync.state(), "store and in-memory view agree");
    let st = &s.state;
    assert_eq!(st.own_operator, Some(OUR_ID));
    assert_eq!(st.operators.len(), 7);
    assert_eq!(st.validators.len(), 200 - 25);
    assert_eq!(st.malformed_total, 0);
    assert_eq!((st.nonce(&a), st.nonce(&b), st.nonce(&c)), (100, 60, 40));
    for (owner, recipient) in &recipients {
        assert_eq!(st.fee_recipients.get(owner), Some(recipient));
    }
    let exited = st
        .validators
        .values()
        .filter(|v| v.exit_requested_block.is_some())
        .count();
    assert_eq!(exited, 10);
    let own = st
        .validators
        .values()
        .filter(|v| v.own_share.is_some())
        .count();
    assert_eq!(own, 80 + 40 + 15);

    let dp = count(&drain(&mut rx));
    assert_eq!(dp.start, 140);
    assert_eq!(dp.stop_removed, 5);
    assert_eq!(dp.exit, 10);
    assert_eq!(dp.stop_liquidated, 0);
    // Two committees of ours: one subscription per distinct subnet.
    let subnets: std::collections::BTreeSet<u64> = st
        .own_active_validators()
        .map(|v| v.committee().1)
        .collect();
    assert_eq!(dp.subscribe, subnets.len());
    assert_eq!(dp.unsubscribe, 0);
    assert!(dp.fee > 0);
}

/// A store that fails its `fail_at`-th commit, as a crash between two commits would.
struct CrashingStore {
    inner: Arc<MemoryRegistryStore>,
    commits: AtomicU64,
    fail_at: u64,
}

impl RegistryStore for CrashingStore {
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
async fn restart_mid_sync_resumes_exactly() {
    require_dev_node!();
    let node = DevNode::start().await;
    let chain = Chain::deploy(&node).await;
    let key = our_key();
    register_operators(&chain, OUR_ID, &key, &[2, 3, 4, 5]).await;
    let mut reg = Registrar::new(OUR_ID, key.clone(), 2);
    // One event per block; the crashing syncs commit at most 4 blocks per batch, so there
    // are more than a dozen commits for the crash to hit, each after a multi-block batch.
    let regs: Vec<_> = (0..40)
        .map(|i| {
            let owner = chain.accounts[1 + i % 2];
            let ids = if i % 3 == 0 { &THEIRS_4 } else { &OURS_4 };
            reg.register(owner, ids, Shares::Valid)
        })
        .collect();
    send_registrations(&chain, &regs, 1).await;
    for r in &regs[..6] {
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
    let head = chain.head().await;

    let reference = sync_fresh(&chain, vec![node.http_url()], &key).await;
    assert_eq!(reference.cursor, Some(head));
    assert_eq!(reference.state.malformed_total, 0);
    assert_eq!(reference.state.validators.len(), 34);

    for fail_at in [3, 7, 12] {
        let inner = Arc::new(MemoryRegistryStore::new());
        let crashing = Arc::new(CrashingStore {
            inner: inner.clone(),
            commits: AtomicU64::new(0),
            fail_at,
        });
        let mut small_batches = config(&chain, vec![node.http_url()]);
        small_batches.history_batch_blocks_max = 4;
        let mut first =
            ContractSync::new(small_batches, crashing, Some(key.clone()), None).expect("sync");
        let err = first
            .sync_history()
            .await
            .expect_err("the crash stops the sync");
        assert!(matches!(err, EthError::Storage(_)), "{err}");
        let at_crash = inner.snapshot();
        let cursor = at_crash
            .cursor
            .expect("some blocks were committed before the crash");
        assert!(cursor < head, "crash {fail_at} happened mid-sync");
        // The failed sync dropped the handled but uncommitted batch from its view.
        assert_eq!(first.cursor(), Some(cursor));
        assert_eq!(*first.state(), at_crash.state);
        drop(first);

        let mut second = ContractSync::new(
            config(&chain, vec![node.http_url()]),
            inner.clone(),
            Some(key.clone()),
            None,
        )
        .expect("sync");
        second.sync_history().await.expect("resumed sync");
        // Same cursor and registry as an uninterrupted sync: nothing lost, nothing applied
        // twice (a ValidatorAdded applied twice would be recorded malformed: stale nonce).
        assert_eq!(inner.snapshot(), reference, "crash at commit {fail_at}");
    }

    // A clean stop in the middle (sync_to a middle block), then a new process.
    let store = Arc::new(MemoryRegistryStore::new());
    let mid = (chain.deploy_block + head) / 2;
    let mut first = ContractSync::new(
        config(&chain, vec![node.http_url()]),
        store.clone(),
        Some(key.clone()),
        None,
    )
    .expect("sync");
    first.sync_to(mid).await.expect("first half");
    assert_eq!(store.snapshot().cursor, Some(mid));
    drop(first);
    let (tx, mut rx) = mpsc::channel(DATA_PLANE_QUEUE_MAX);
    let mut second = ContractSync::new(
        config(&chain, vec![node.http_url()]),
        store.clone(),
        Some(key.clone()),
        Some(tx),
    )
    .expect("sync");
    let announced = second.announce_loaded().await;
    assert!(
        announced > 0,
        "the restarted node starts the validators it already had"
    );
    second.sync_history().await.expect("second half");
    assert_eq!(store.snapshot(), reference);
    let dp = count(&drain(&mut rx));
    let own_active = reference.state.own_active_validators().count();
    let removed_own = regs[..6]
        .iter()
        .filter(|r| r.operator_ids == OURS_4)
        .count();
    assert_eq!(dp.start - dp.stop_removed, own_active);
    assert!(removed_own >= dp.stop_removed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_shares_and_bad_encryption_are_skipped_and_reported() {
    require_dev_node!();
    let node = DevNode::start().await;
    let chain = Chain::deploy(&node).await;
    let key = our_key();
    register_operators(&chain, OUR_ID, &key, &[2, 3, 4, 5]).await;
    let a = chain.accounts[1];
    let mut reg = Registrar::new(OUR_ID, key.clone(), 3);
    let regs = vec![
        reg.register(a, &OURS_4, Shares::Valid),
        reg.register(a, &OURS_4, Shares::BadLength),
        reg.register(a, &OURS_4, Shares::BadEncryption),
        reg.register(a, &OURS_4, Shares::WrongShareKey),
        reg.register(a, &OURS_4, Shares::BadSignature),
        reg.register(a, &THEIRS_4, Shares::BadLength),
        // After all the bad ones the owner's nonce is 6 on both sides: this one is valid.
        reg.register(a, &OURS_4, Shares::Valid),
    ];
    send_registrations(&chain, &regs, 1).await;
    // An operator ID registered twice, and the removal of a validator never added.
    chain
        .send(
            a,
            registerOperatorCall {
                operatorId: 2,
                publicKey: fake_operator_key_field(99),
                fee: Default::default(),
            },
        )
        .await;
    chain
        .send(
            a,
            removeValidatorCall {
                operatorIds: OURS_4.to_vec(),
                publicKey: vec![0xaa; 48].into(),
            },
        )
        .await;
    let head = chain.head().await;

    let store = Arc::new(MemoryRegistryStore::new());
    let (tx, mut rx) = mpsc::channel(DATA_PLANE_QUEUE_MAX);
    let mut sync = ContractSync::new(
        config(&chain, vec![node.http_url()]),
        store.clone(),
        Some(key.clone()),
        Some(tx),
    )
    .expect("sync");
    assert_eq!(
        sync.sync_history().await.expect("the sync goes on"),
        Some(head)
    );
    let st = store.snapshot().state;
    let reasons: Vec<(String, String)> = st
        .malformed_recent
        .iter()
        .map(|m| (m.event.clone(), m.reason.clone()))
        .collect();
    eprintln!("malformed events recorded: {reasons:#?}");
    assert_eq!(st.malformed_total, 7);
    let expect = [
        (
            "ValidatorAdded",
            "shares length is 1311 bytes, expected 1312",
        ),
        ("ValidatorAdded", "our share does not decrypt"),
        ("ValidatorAdded", "does not match its share public key"),
        (
            "ValidatorAdded",
            "owner signature does not verify for nonce 4",
        ),
        ("ValidatorAdded", "shares length is 1311 bytes"),
        ("OperatorAdded", "operator 2 already exists"),
        ("ValidatorRemoved", "validator is not registered"),
    ];
    for ((event, reason), (want_event, want_reason)) in reasons.iter().zip(expect) {
        assert_eq!(event, want_event);
        assert!(
            reason.contains(want_reason),
            "{reason:?} should contain {want_reason:?}"
        );
    }
    // Only the two valid registrations exist; the nonce counted all seven.
    assert_eq!(st.validators.len(), 2);
    assert!(
        st.validators
            .contains_key(&<[u8; 48]>::try_from(&regs[0].public_key[..]).expect("48"))
    );
    assert!(
        st.validators
            .contains_key(&<[u8; 48]>::try_from(&regs[6].public_key[..]).expect("48"))
    );
    assert_eq!(st.nonce(&a), 7);
    let dp = count(&drain(&mut rx));
    assert_eq!(dp.start, 2);
    assert_eq!(sync.stats().events_malformed, 7);
}

async fn wait_for(
    rx: &mut mpsc::Receiver<DataPlaneEvent>,
    seen: &mut Vec<DataPlaneEvent>,
    what: &str,
    done: impl Fn(&Counts) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&count(seen)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(ev)) => seen.push(ev),
            Ok(None) => panic!("data plane closed while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}; seen {:?}", count(seen)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_removed_and_cluster_liquidated_stop_duties() {
    require_dev_node!();
    let node = DevNode::start().await;
    let chain = Chain::deploy(&node).await;
    let key = our_key();
    register_operators(&chain, OUR_ID, &key, &[2, 3, 4, 5]).await;
    let (a, b) = (chain.accounts[1], chain.accounts[2]);
    let mut reg = Registrar::new(OUR_ID, key.clone(), 4);
    let a_regs: Vec<_> = (0..3)
        .map(|_| reg.register(a, &OURS_4, Shares::Valid))
        .collect();
    let b_regs: Vec<_> = (0..2)
        .map(|_| reg.register(b, &OURS_4, Shares::Valid))
        .collect();
    send_registrations(&chain, &a_regs, 3).await;

    // Follow mode over WebSocket (newHeads), as a running node does.
    let store = Arc::new(MemoryRegistryStore::new());
    let (tx, mut rx) = mpsc::channel(DATA_PLANE_QUEUE_MAX);
    let (stop_tx, stop_rx) = watch::channel(false);
    let sync = ContractSync::new(
        config(&chain, vec![node.ws_url()]),
        store.clone(),
        Some(key.clone()),
        Some(tx),
    )
    .expect("sync")
    .with_stop(stop_rx);
    let task = tokio::spawn(sync.run());
    let mut seen = Vec::new();
    wait_for(&mut rx, &mut seen, "A's validators", |c| {
        c.start == 3 && c.subscribe == 1
    })
    .await;

    // New registrations while following.
    send_registrations(&chain, &b_regs, 2).await;
    wait_for(&mut rx, &mut seen, "B's validators", |c| c.start == 5).await;

    // ValidatorRemoved stops that validator only.
    chain
        .send(
            a,
            removeValidatorCall {
                operatorIds: OURS_4.to_vec(),
                publicKey: a_regs[0].public_key.clone(),
            },
        )
        .await;
    wait_for(&mut rx, &mut seen, "the removal", |c| c.stop_removed == 1).await;
    let removed = seen.iter().find_map(|e| match e {
        DataPlaneEvent::StopValidator {
            validator_pubkey,
            reason: StopReason::Removed,
        } => Some(*validator_pubkey),
        _ => None,
    });
    assert_eq!(
        removed.map(|k| k.to_vec()),
        Some(a_regs[0].public_key.to_vec())
    );

    // ClusterLiquidated stops the cluster's validators (B's two); A's keep the subnet.
    chain
        .send(
            chain.accounts[5],
            liquidateCall {
                clusterOwner: b,
                operatorIds: OURS_4.to_vec(),
            },
        )
        .await;
    wait_for(&mut rx, &mut seen, "B's liquidation", |c| {
        c.stop_liquidated == 2
    })
    .await;
    assert_eq!(count(&seen).unsubscribe, 0);

    // Liquidating A's cluster stops the rest and leaves the subnet.
    chain
        .send(
            chain.accounts[5],
            liquidateCall {
                clusterOwner: a,
                operatorIds: OURS_4.to_vec(),
            },
        )
        .await;
    wait_for(&mut rx, &mut seen, "A's liquidation", |c| {
        c.stop_liquidated == 4 && c.unsubscribe == 1
    })
    .await;
    {
        let st = store.snapshot().state;
        assert_eq!(st.own_active_validators().count(), 0);
        assert_eq!(
            st.validators.len(),
            4,
            "liquidated validators stay registered"
        );
    }

    // Reactivation starts A's two again and rejoins the subnet.
    chain
        .send(
            a,
            reactivateCall {
                operatorIds: OURS_4.to_vec(),
            },
        )
        .await;
    wait_for(&mut rx, &mut seen, "A's reactivation", |c| {
        c.start == 7 && c.subscribe == 2
    })
    .await;

    stop_tx.send(true).expect("stop");
    let result = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the sync stops")
        .expect("task");
    result.expect("stopped cleanly");
    seen.extend(drain(&mut rx));
    assert_eq!(
        count(&seen),
        Counts {
            subscribe: 2,
            unsubscribe: 1,
            start: 7,
            stop_removed: 1,
            stop_liquidated: 4,
            exit: 0,
            fee: 0
        },
        "exactly these committee changes, none twice"
    );
    let st = store.snapshot().state;
    assert_eq!(st.own_active_validators().count(), 2);
    assert_eq!(st.malformed_total, 0);
}

/// 10,000 synthetic `ValidatorAdded` events (half in committees of ours, so half need an
/// RSA decryption as well as the BLS check), synced from the dev node; prints the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes about a minute; run with --ignored to measure the sync rate"]
async fn sync_10k_events_rate() {
    require_dev_node!();
    const EVENTS: usize = 10_000;
    const OWNERS: usize = 8;
    let node = DevNode::start().await;
    let chain = Chain::deploy(&node).await;
    let key = our_key();
    register_operators(&chain, OUR_ID, &key, &[2, 3, 4, 5]).await;
    let gen_started = Instant::now();
    let regs = parallel_registrations(&chain, OUR_ID, &key, EVENTS, OWNERS);
    eprintln!(
        "generated {EVENTS} registrations in {:?}",
        gen_started.elapsed()
    );
    let send_started = Instant::now();
    for owner_regs in &regs {
        send_registrations(&chain, owner_regs, 100).await;
    }
    let head = chain.head().await;
    eprintln!(
        "sent them in {:?} ({} blocks)",
        send_started.elapsed(),
        head - chain.deploy_block + 1
    );

    let store = Arc::new(MemoryRegistryStore::new());
    let (tx, mut rx) = mpsc::channel(EVENTS * 2);
    let mut cfg = config(&chain, vec![node.http_url()]);
    cfg.initial_range = 1_000;
    cfg.max_range = 10_000;
    let mut sync =
        ContractSync::new(cfg, store.clone(), Some(key.clone()), Some(tx)).expect("sync");
    let started = Instant::now();
    sync.sync_history().await.expect("history");
    let elapsed = started.elapsed();
    let stats = sync.stats();
    let events = stats.events_applied + stats.events_malformed;
    eprintln!(
        "RESULT: synced {events} events ({} ValidatorAdded, {} malformed) over {} blocks in {:.2} s: {:.0} events/s; {stats:?}",
        EVENTS,
        stats.events_malformed,
        head - chain.deploy_block + 1,
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(stats.events_malformed, 0);
    assert_eq!(store.snapshot().state.validators.len(), EVENTS);
    assert_eq!(count(&drain(&mut rx)).start, EVENTS / 2);
}

/// A provider that refuses wide `eth_getLogs` ranges: the sync halves its range until the
/// provider answers and still applies every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getlogs_range_adapts_to_provider_limits() {
    require_dev_node!();
    let node = DevNode::start().await;
    let chain = Chain::deploy(&node).await;
    let key = our_key();
    register_operators(&chain, OUR_ID, &key, &[2, 3, 4, 5]).await;
    let mut reg = Registrar::new(OUR_ID, key.clone(), 5);
    let regs: Vec<_> = (0..12)
        .map(|_| reg.register(chain.accounts[1], &OURS_4, Shares::Valid))
        .collect();
    send_registrations(&chain, &regs, 1).await;
    chain.mine(40).await;
    let head = chain.head().await;
    let (proxy, refused) = range_limiting_proxy(node.http_url(), 5).await;
    let store = Arc::new(MemoryRegistryStore::new());
    let mut cfg = config(&chain, vec![proxy]);
    cfg.initial_range = 64;
    cfg.max_range = 64;
    let mut sync = ContractSync::new(cfg, store.clone(), Some(key.clone()), None).expect("sync");
    assert_eq!(sync.sync_history().await.expect("history"), Some(head));
    let stats = sync.stats();
    assert!(
        stats.range_shrinks >= 4,
        "64 -> 32 -> 16 -> 8 -> 4: {stats:?}"
    );
    assert!(refused.load(Ordering::Relaxed) >= 4);
    assert!(
        sync.range() <= 5,
        "the range stays within the provider's limit"
    );
    assert_eq!(stats.events_applied, 5 + 12);
    assert_eq!(stats.events_malformed, 0);
    assert_eq!(store.snapshot().state.validators.len(), 12);
}
