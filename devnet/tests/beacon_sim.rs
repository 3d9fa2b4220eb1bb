//! The beacon client against the beacon simulator: duties, attestation data, head events, and
//! submissions that the simulator verifies against the validators' full public keys.

use std::time::Duration;

use futures::StreamExt;
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

async fn start(
    slot_ms: u64,
) -> (
    BeaconSim,
    BeaconClient,
    Vec<SecretKey>,
    tokio::sync::oneshot::Sender<()>,
) {
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
    let sim = BeaconSim::new(cfg).expect("valid keys");
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
    let mut events = client.head_events().await.expect("subscribe");
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
