//! The beacon client against the beacon simulator: duties, attestation data, head events, and
//! submissions that the simulator verifies against the validators' full public keys; and the
//! client's health probes against a lagging listener of the same chain.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use ssv_beacon_api::NodeHealth;
use ssv_beacon_api::client::{BeaconClient, BeaconError};
use ssv_beacon_api::types::{SingleAttestation, SyncCommitteeMessage};
use ssv_crypto_pipeline::SecretKey;
use ssv_devnet::sim::{BeaconSim, SLOTS_PER_EPOCH, SimConfig, SimValidator};
use ssv_protocol::signing::{
    DOMAIN_BEACON_ATTESTER, DOMAIN_SYNC_COMMITTEE, compute_domain, compute_signing_root,
};
use tree_hash::TreeHash;

const VALIDATORS: u64 = 64;

fn keys() -> Vec<SecretKey> {
    (0..VALIDATORS)
        .map(|i| SecretKey::from_ikm(&[i as u8 + 1; 32]))
        .collect()
}

fn sim(slot_ms: u64) -> (BeaconSim, Vec<SecretKey>) {
    let sks = keys();
    let validators = sks
        .iter()
        .enumerate()
        .map(|(i, sk)| SimValidator {
            index: i as u64,
            pubkey: sk.public_key().to_bytes(),
            secret: Some(sk.clone()),
        })
        .collect();
    let cfg = SimConfig::new(
        validators,
        Duration::from_millis(slot_ms),
        Duration::from_millis(50),
    );
    (BeaconSim::new(cfg).expect("valid keys"), sks)
}

async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
}

async fn start(
    slot_ms: u64,
) -> (
    BeaconSim,
    BeaconClient,
    Vec<SecretKey>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (sim, sks) = sim(slot_ms);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let addr = sim
        .clone()
        .serve("127.0.0.1:0".parse().expect("addr"), async move {
            let _ = rx.await;
        })
        .await
        .expect("bind loopback");
    // The first URL is dead: every request must fail over to the simulator.
    let client = BeaconClient::new(vec!["http://127.0.0.1:9".into(), format!("http://{addr}")])
        .expect("client");
    (sim, client, sks, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duties_data_and_verified_submissions() {
    let (sim, client, sks, _stop) = start(300).await;
    let genesis = client.genesis().await.expect("genesis");
    let fork = client.fork().await.expect("fork");
    let spec = client.spec().await.expect("spec");
    assert_eq!(spec.slots_per_epoch, SLOTS_PER_EPOCH);
    assert_eq!(spec.slot_duration_ms, Some(300));
    assert!(!client.syncing().await.expect("syncing").is_syncing);

    // The chain starts at the first slot of epoch 1 (epoch 0 cannot be attested to).
    let mut events = client.head_events();
    let mut first = events.next().await.expect("head event");
    while first.slot < SLOTS_PER_EPOCH {
        first = events.next().await.expect("head event");
    }
    let epoch = first.slot / SLOTS_PER_EPOCH;
    let all: Vec<u64> = (0..VALIDATORS).collect();
    let duties = client.attester_duties(epoch, &all).await.expect("duties");
    assert_eq!(
        duties.len() as u64,
        VALIDATORS,
        "every validator attests once per epoch"
    );
    let mut slots: Vec<u64> = duties.iter().map(|d| d.slot).collect();
    slots.sort_unstable();
    slots.dedup();
    assert!(
        slots.len() > 16,
        "duties spread over the epoch, got {} slots",
        slots.len()
    );

    // Attest for every duty up to the slot after the first head.
    let domain = compute_domain(
        DOMAIN_BEACON_ATTESTER,
        fork.current_version,
        genesis.genesis_validators_root,
    );
    let target_slot = first.slot + 1;
    while sim.current_slot().unwrap_or(0) < target_slot {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let due: Vec<_> = duties
        .iter()
        .filter(|d| d.slot <= target_slot)
        .cloned()
        .collect();
    let mut atts = Vec::new();
    for d in &due {
        let data = client
            .attestation_data(d.slot, d.committee_index)
            .await
            .expect("data");
        let root = compute_signing_root(data.tree_hash_root().0, domain);
        atts.push(SingleAttestation {
            committee_index: d.committee_index,
            attester_index: d.validator_index,
            data,
            signature: sks[d.validator_index as usize].sign(&root).to_bytes(),
        });
    }
    if !atts.is_empty() {
        client
            .submit_attestations(&atts)
            .await
            .expect("valid attestations accepted");
    }

    // A signature by the wrong key is rejected and counted invalid.
    let d = duties
        .iter()
        .find(|d| d.slot > target_slot)
        .expect("a later duty")
        .clone();
    while sim.current_slot().unwrap_or(0) < d.slot {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data = client
        .attestation_data(d.slot, d.committee_index)
        .await
        .expect("data");
    let root = compute_signing_root(data.tree_hash_root().0, domain);
    let wrong = (d.validator_index as usize + 1) % sks.len();
    let bad = SingleAttestation {
        committee_index: d.committee_index,
        attester_index: d.validator_index,
        data,
        signature: sks[wrong].sign(&root).to_bytes(),
    };
    let err = client
        .submit_attestations(&[bad])
        .await
        .expect_err("bad signature rejected");
    assert!(
        matches!(err, BeaconError::Rejected { status: 400, .. }),
        "{err}"
    );

    // Sync-committee messages of the current slot.
    let sync = client.sync_duties(epoch, &all).await.expect("sync duties");
    assert!(!sync.is_empty() && sync.len() < VALIDATORS as usize);
    let slot = sim.current_slot().expect("after genesis");
    let block = client
        .block_root(&slot.to_string())
        .await
        .expect("block root");
    let sdomain = compute_domain(
        DOMAIN_SYNC_COMMITTEE,
        fork.current_version,
        genesis.genesis_validators_root,
    );
    let msgs: Vec<_> = sync
        .iter()
        .map(|s| SyncCommitteeMessage {
            slot,
            beacon_block_root: block,
            validator_index: s.validator_index,
            signature: sks[s.validator_index as usize]
                .sign(&compute_signing_root(block, sdomain))
                .to_bytes(),
        })
        .collect();
    client
        .submit_sync_messages(&msgs)
        .await
        .expect("sync messages accepted");

    let stats = sim.stats();
    assert_eq!(stats.attestations_valid, atts.len() as u64);
    assert_eq!(stats.attestations_invalid, 1);
    assert_eq!(stats.sync_messages_valid, msgs.len() as u64);
    assert_eq!(stats.latencies_ms.len(), atts.len() + msgs.len());
}

#[tokio::test]
async fn unreachable_beacon_node_is_a_clear_error() {
    let client = BeaconClient::new(vec!["http://127.0.0.1:9".into()]).expect("client");
    let err = client
        .genesis()
        .await
        .expect_err("nothing listens on port 9");
    assert!(matches!(err, BeaconError::Unavailable { .. }), "{err}");
    assert!(BeaconClient::new(vec![]).is_err());
}

/// A lagging listener of the chain listed first, then two in-sync listeners: after one probe
/// the lagging one is known unhealthy, every request goes to an in-sync one (the lagging one
/// receives none), and head events come from all three with the in-sync copies merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_node_is_probed_and_passed_over() {
    let (sim, _) = sim(200);
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let healthy = sim
        .clone()
        .serve_listener(listener().await, async move {
            let _ = rx.await;
        })
        .expect("serve");
    let second = sim.lagging(0);
    let second_addr = second
        .clone()
        .serve_view(listener().await, std::future::pending())
        .expect("serve a second in-sync listener");
    let lagging = sim.lagging(16);
    let lagging_addr = lagging
        .clone()
        .serve_view(listener().await, std::future::pending())
        .expect("serve the lagging listener");
    let client = BeaconClient::new(vec![
        format!("http://{lagging_addr}"),
        format!("http://{healthy}"),
        format!("http://{second_addr}"),
    ])
    .expect("client");
    while sim.current_slot().unwrap_or(0) < SLOTS_PER_EPOCH {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_eq!(client.health(), vec![NodeHealth::Unknown; 3]);
    let found = client.probe_health().await;
    assert!(
        matches!(&found[0], NodeHealth::Unhealthy { status, .. } if status.is_syncing && status.sync_distance == 16),
        "{found:?}"
    );
    assert!(found[1].is_healthy() && found[2].is_healthy(), "{found:?}");
    assert_eq!(client.health(), found);
    assert_eq!(
        client.first_choice(),
        1,
        "the lagging first node is not preferred"
    );

    // Duty requests go to the in-sync nodes only, and their data is the chain's.
    let slot = sim.current_slot().expect("after genesis");
    let data = client.attestation_data(slot, 0).await.expect("data");
    assert_eq!(data, sim.attestation_data(slot));
    let epoch = slot / SLOTS_PER_EPOCH;
    client
        .attester_duties(epoch, &[0, 1, 2])
        .await
        .expect("duties");
    client.genesis().await.expect("genesis");
    let r = lagging.requests();
    assert_eq!((r.syncing, r.duties, r.other), (1, 0, 0), "{r:?}");
    assert_eq!(sim.requests().duties + second.requests().duties, 2);

    // Head events of all three: the lagging node's stale heads among them, no head twice.
    let mut events = client.head_events();
    let mut seen = HashSet::new();
    let mut stale = 0;
    let until = sim.current_slot().expect("after genesis") + 6;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await {
        assert!(
            seen.insert((ev.slot, ev.block)),
            "head {} delivered twice",
            ev.slot
        );
        if ev.slot + 16 <= sim.current_slot().unwrap_or(0) {
            stale += 1;
        }
        if ev.slot >= until {
            break;
        }
    }
    assert!(
        seen.iter().any(|(s, _)| *s >= until),
        "in-sync heads: {seen:?}"
    );
    assert!(stale > 0, "the lagging node's heads come too: {seen:?}");
    for view in [&sim, &second, &lagging] {
        assert_eq!(view.requests().head_subscriptions, 1);
    }
}
