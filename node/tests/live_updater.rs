//! The live registry's updater on its own (no processes): a committee of ours that appears in
//! the store while the node runs — contract sync stored its validators — is picked up on the
//! next contract event: the new validators are bumped in slashing protection before they
//! run, the new committee's subnet is subscribed (netio updates the ENR on a subscription),
//! and the published registry runs them beside the committee it had.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssv_beacon_api::client::BeaconClient;
use ssv_netio::{DetachedEvent, NetworkHandle};
use ssv_node::{LiveRegistry, Metrics, Registry, RegistryUpdater, StoppedValidators};
use ssv_protocol::chain::{ChainSpec, SlotClock};
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::types::DomainType;
use ssv_storage::{AttestationToSign, Store, StoreConfig, WriteOp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committee_added_while_running_gets_its_subnet_and_runs() {
    // 8 operators, 1,001 validators: committees [1,2,3,4], [5,6,7,8], [1,2,3,5]; operator 1
    // is in the first and the third.
    let setup = ssv_devnet::Setup::generate(8, 1001, 4, 1).unwrap();
    let third = setup
        .committees
        .iter()
        .position(|c| c == &[1, 2, 3, 5])
        .expect("committee [1, 2, 3, 5]");
    let first_subnet = CommitteeId::from_operators(&setup.committees[0]).subnet();
    let third_subnet = CommitteeId::from_operators(&setup.committees[third]).subnet();
    assert_ne!(first_subnet, third_subnet, "the test needs two subnets");
    let late: HashSet<[u8; 48]> = setup
        .validators
        .iter()
        .filter(|v| v.committee == third)
        .map(|v| v.pubkey)
        .collect();
    assert!(!late.is_empty());
    let (later, now): (Vec<WriteOp>, Vec<WriteOp>) =
        setup.store_ops(1).unwrap().into_iter().partition(
            |op| matches!(op, WriteOp::PutShare(s) if late.contains(&s.validator_pubkey)),
        );
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(StoreConfig::new(dir.path().join("db"), [7; 32])).unwrap());
    store.write(now).unwrap();
    let key = Arc::new(
        ssv_crypto_pipeline::OperatorSecretKey::from_pem(&setup.operators[0].key.to_pem().unwrap())
            .unwrap(),
    );
    let domain = DomainType::SPEC_TESTING;
    let ours = Arc::new(ssv_node::OurOperators::single(1, key.clone()));
    let registry = Registry::load(&store, &ours, domain).unwrap();
    let before = registry.validator_count();
    assert_eq!(
        registry.active_subnets().into_iter().collect::<Vec<_>>(),
        vec![first_subnet]
    );
    let live = Arc::new(LiveRegistry::new(Arc::new(registry)));
    let (network, detached) = NetworkHandle::detached(64);
    let chain = ChainSpec::MAINNET;
    // Genesis 100 slots ago: slot 100, epoch 3.
    let clock =
        SlotClock::from_genesis_ms(SlotClock::now_ms() - 100 * chain.slot_ms(), chain).unwrap();
    let (events, rx) = tokio::sync::mpsc::channel(16);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let updater = RegistryUpdater {
        live: live.clone(),
        store: store.clone(),
        ours: ours.clone(),
        domain,
        // Nothing listens there: the status check fails (logged) and changes nothing, and
        // every stored validator already has its index.
        client: Arc::new(BeaconClient::new(vec!["http://127.0.0.1:9".into()]).unwrap()),
        stopped: Arc::new(StoppedValidators::default()),
        shards: Vec::new(),
        network,
        clock,
        metrics: Arc::new(Metrics::default()),
    };
    let task = tokio::spawn(updater.run(Some(rx), stop_rx));

    // Contract sync stores the third committee's validators, then sends its events.
    store.write(later).unwrap();
    events
        .send(ssv_eth_sync::DataPlaneEvent::FeeRecipientUpdated {
            owner: ssv_eth_sync::Address::ZERO,
            recipient: ssv_eth_sync::Address::ZERO,
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut subscribed = Vec::new();
    loop {
        for ev in detached.drain() {
            if let DetachedEvent::Subscribed(s, true) = ev {
                subscribed.push(s.index() as u64);
            }
        }
        let now = live.current();
        if now.validator_count() == before + late.len() && subscribed.contains(&third_subnet) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not applied in 30 s: {} validators (want {}), subscribed {subscribed:?}",
            now.validator_count(),
            before + late.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = live.current();
    assert_eq!(now.active_subnets().into_iter().collect::<Vec<_>>(), {
        let mut s = vec![first_subnet, third_subnet];
        s.sort_unstable();
        s
    });
    assert!(
        now.shares().filter(|s| late.contains(&s.pubkey)).count() == late.len(),
        "every new validator runs"
    );
    // Bumped before it runs: nothing at or below the current epoch is signed for it.
    let epoch = clock.spec().epoch_of(clock.current_slot().unwrap());
    let pubkey = *late.iter().next().unwrap();
    let verdict = store
        .attestation_violations(&[AttestationToSign {
            pubkey,
            source_epoch: epoch - 1,
            target_epoch: epoch,
            signing_root: [1; 32],
        }])
        .unwrap();
    assert!(verdict[0].is_some(), "an added validator was not bumped");
    task.abort();
}
