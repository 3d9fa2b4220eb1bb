//! Integration tests of the network layer on loopback: scoring and graylisting, the domain
//! handshake, and shard isolation. Every wait is bounded; each test takes a few seconds.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ssv_netio::{
    DomainType, Network, NetworkConfig, NetworkEvent, PeerId, Subnet, Subnets, ValidationResult,
};

/// Upper bound of every wait in these tests; generous so a loaded CI machine does not flake.
const WAIT: Duration = Duration::from_secs(30);

fn subnet(i: usize) -> Subnet {
    Subnet::new(i).unwrap()
}

fn start(domain: DomainType, subnets: &[usize], shards: usize, queue: usize) -> Network {
    let mut cfg = NetworkConfig::loopback(domain);
    cfg.subnets = Subnets::from_iter(subnets.iter().map(|&i| subnet(i)));
    cfg.shard_count = shards;
    cfg.shard_queue_capacity = queue;
    // No bootnodes here: peers are dialed explicitly; discovery is exercised by the example.
    Network::start(cfg).expect("node starts")
}

/// Polls `cond` every 50 ms until it holds or `WAIT` passes.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for an event matching `pred` on `net`, skipping others.
async fn wait_event(
    net: &Network,
    what: &str,
    pred: impl Fn(&NetworkEvent) -> bool,
) -> NetworkEvent {
    let fut = async {
        loop {
            let ev = net.events.recv().await.expect("event stream open");
            if pred(&ev) {
                return ev;
            }
        }
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn connect_on(a: &Network, b: &Network, s: Subnet) {
    a.handle.dial(b.enr.clone()).await.unwrap();
    eventually("both sides to see each other on the topic", || async {
        a.handle.topic_peers(s).await.unwrap() >= 1 && b.handle.topic_peers(s).await.unwrap() >= 1
    })
    .await;
}

fn connected(peers: &[PeerId], p: &PeerId) -> bool {
    peers.contains(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_get_sender_scored_down_and_graylisted() {
    let a = start(DomainType::MAINNET, &[5], 1, 1024);
    let b = start(DomainType::MAINNET, &[5], 1, 1024);
    let b_id = b.handle.peer_id();
    connect_on(&a, &b, subnet(5)).await;

    // A's shard: a stand-in for message validation that rejects anything starting with "bad".
    let accepted = Arc::new(AtomicUsize::new(0));
    let (queue, handle, acc) = (a.shards[0].clone(), a.handle.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Some(msg) = queue.recv().await {
            let result = if msg.data.starts_with(b"bad") {
                ValidationResult::Reject
            } else {
                acc.fetch_add(1, Ordering::Relaxed);
                ValidationResult::Accept
            };
            if handle.report_validation(&msg, result).await.is_err() {
                break;
            }
        }
    });

    // Good messages first: they are delivered and do not hurt B.
    for i in 0..5 {
        b.handle
            .publish(subnet(5), format!("good-{i}").into_bytes())
            .await
            .unwrap();
    }
    eventually("good messages accepted", || async {
        accepted.load(Ordering::Relaxed) == 5
    })
    .await;
    let score = a
        .handle
        .peer_score(b_id)
        .await
        .unwrap()
        .expect("B is scored");
    assert!(
        score >= 0.0,
        "a well-behaved peer keeps a non-negative score, got {score}"
    );

    // Then invalid ones until A graylists B (P4: -40 n², P5: -500 n; about 18 suffice).
    for i in 0..40 {
        // Publishing may start failing once A has dropped B; that is the point.
        let _ = b
            .handle
            .publish(subnet(5), format!("bad-{i}").into_bytes())
            .await;
    }
    let ev = wait_event(
        &a,
        "graylisting of B",
        |e| matches!(e, NetworkEvent::Graylisted { peer, .. } if *peer == b_id),
    )
    .await;
    let NetworkEvent::Graylisted { score, .. } = ev else {
        unreachable!()
    };
    assert!(
        score < ssv_netio::scoring::GRAYLIST_THRESHOLD,
        "score {score}"
    );
    eventually("B disconnected", || async {
        !connected(&a.handle.connected_peers().await.unwrap(), &b_id)
    })
    .await;

    // B cannot come back: the gater refuses it.
    b.handle.dial(a.enr.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!connected(
        &a.handle.connected_peers().await.unwrap(),
        &b_id
    ));
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        5,
        "no invalid message was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_of_another_domain_is_refused_at_handshake() {
    let a = start(DomainType::MAINNET, &[1], 1, 64);
    let same = start(DomainType::MAINNET, &[1], 1, 64);
    let other = start(DomainType::HOLESKY, &[1], 1, 64);
    let (same_id, other_id) = (same.handle.peer_id(), other.handle.peer_id());

    // Control: a peer of our network passes.
    same.handle.dial(a.enr.clone()).await.unwrap();
    wait_event(&a, "handshake with same-network peer", |e| {
        *e == NetworkEvent::PeerConnected(same_id)
    })
    .await;

    other.handle.dial(a.enr.clone()).await.unwrap();
    let ev = wait_event(
        &a,
        "rejection of the other network",
        |e| matches!(e, NetworkEvent::HandshakeRejected { peer, .. } if *peer == other_id),
    )
    .await;
    let NetworkEvent::HandshakeRejected { reason, .. } = ev else {
        unreachable!()
    };
    assert!(
        reason.contains("0x00000001") && reason.contains("0x00000502"),
        "{reason}"
    );
    // The other side rejects us too.
    wait_event(&other, "rejection by the other network", |e| {
        matches!(e, NetworkEvent::HandshakeRejected { peer, .. } if *peer == a.handle.peer_id())
    })
    .await;
    eventually("other-network peer disconnected", || async {
        !connected(&a.handle.connected_peers().await.unwrap(), &other_id)
    })
    .await;

    // Redialing is refused by the gater, and the peer never counts as connected.
    other.handle.dial(a.enr.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!connected(
        &a.handle.connected_peers().await.unwrap(),
        &other_id
    ));
    while let Ok(ev) = a.events.try_recv() {
        assert_ne!(ev, NetworkEvent::PeerConnected(other_id));
    }
    assert!(connected(
        &a.handle.connected_peers().await.unwrap(),
        &same_id
    ));
}

#[test]
fn stalled_shard_does_not_stall_the_others() {
    const QUEUE: usize = 16;
    const PER_SUBNET: usize = 100;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Subnet 0 belongs to shard 0 (never drained), subnet 1 to shard 1.
    let a = start(DomainType::MAINNET, &[0, 1], 2, QUEUE);
    let b = start(DomainType::MAINNET, &[0, 1], 1, 1024);
    assert_eq!(ssv_netio::shard_for(subnet(0), 2), 0);
    assert_eq!(ssv_netio::shard_for(subnet(1), 2), 1);
    rt.block_on(async {
        connect_on(&a, &b, subnet(0)).await;
        connect_on(&a, &b, subnet(1)).await;
    });

    // Shard 1 runs on a glommio executor, as in the node; shard 0's queue is held, never read.
    let _stalled = a.shards[0].clone();
    let (queue, handle) = (a.shards[1].clone(), a.handle.clone());
    let drained = Arc::new(AtomicUsize::new(0));
    let counter = drained.clone();
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("shard-1")
        .spawn(move || async move {
            while let Some(msg) = queue.recv().await {
                assert_eq!(msg.subnet.index(), 1);
                if handle
                    .report_validation(&msg, ValidationResult::Accept)
                    .await
                    .is_err()
                {
                    break;
                }
                if counter.fetch_add(1, Ordering::Relaxed) + 1 == PER_SUBNET {
                    break;
                }
            }
        })
        .expect("glommio executor starts");

    rt.block_on(async {
        // Interleave the subnets, and wait for shard 1 to take each of its messages before
        // sending the next: shard 1 must keep making progress while shard 0 is full. (Waiting
        // keeps the test independent of how fast this machine schedules the executor.)
        for i in 0..PER_SUBNET {
            for s in [0, 1] {
                b.handle
                    .publish(subnet(s), format!("m-{s}-{i}").into_bytes())
                    .await
                    .unwrap();
            }
            eventually("shard 1 to take the next message", || async {
                drained.load(Ordering::Relaxed) > i
            })
            .await;
        }
        eventually("shard 0 to see every message", || async {
            a.handle.stats().await.unwrap().shards[0].delivered == PER_SUBNET as u64
        })
        .await;
    });
    executor.join().unwrap();
    let stats = rt.block_on(a.handle.stats()).unwrap();
    assert_eq!(stats.shards[0].queued, QUEUE);
    assert_eq!(stats.shards[0].dropped, (PER_SUBNET - QUEUE) as u64);
    assert_eq!(stats.shards[1].delivered, PER_SUBNET as u64);
    assert_eq!(stats.shards[1].dropped, 0);
    // The oldest were dropped: what remains in shard 0 is the newest QUEUE messages.
    let first_left = a.shards[0].try_recv().unwrap();
    assert_eq!(
        first_left.data,
        format!("m-0-{}", PER_SUBNET - QUEUE).into_bytes()
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_update_the_enr() {
    use ssv_netio::discovery::SsvRecord;
    let a = start(DomainType::MAINNET, &[3], 1, 64);
    let subnets_of = |enr: &ssv_netio::Enr| SsvRecord::read(enr).unwrap().subnets.unwrap();
    let first = a.handle.local_enr().await.unwrap();
    assert_eq!(subnets_of(&first), Subnets::from_iter([subnet(3)]));
    assert_eq!(
        SsvRecord::read(&first).unwrap().domain_type,
        Some(DomainType::MAINNET)
    );

    a.handle.subscribe(subnet(100)).await.unwrap();
    let second = a.handle.local_enr().await.unwrap();
    assert_eq!(
        subnets_of(&second),
        Subnets::from_iter([subnet(3), subnet(100)])
    );
    assert!(
        second.seq() > first.seq(),
        "the record is re-signed with a higher sequence"
    );

    a.handle.unsubscribe(subnet(3)).await.unwrap();
    let third = a.handle.local_enr().await.unwrap();
    assert_eq!(subnets_of(&third), Subnets::from_iter([subnet(100)]));
    assert!(third.seq() > second.seq());
    assert_eq!(
        a.handle.stats().await.unwrap().subscribed,
        subnets_of(&third)
    );
    // Subscribing twice changes nothing.
    a.handle.subscribe(subnet(100)).await.unwrap();
    assert_eq!(a.handle.local_enr().await.unwrap().seq(), third.seq());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_infos_and_peers_by_topic_describe_a_connected_peer() {
    let a = start(DomainType::MAINNET, &[3], 1, 64);
    let b = start(DomainType::MAINNET, &[3, 9], 1, 64);
    let (a_id, b_id) = (a.handle.peer_id(), b.handle.peer_id());
    connect_on(&a, &b, subnet(3)).await;
    // The handshake's metadata arrives with (or just after) the topic subscription.
    eventually("A to know B's handshake", || async {
        a.handle
            .peer_infos()
            .await
            .unwrap()
            .iter()
            .any(|p| p.id == b_id && p.verified && p.subnets.is_some())
    })
    .await;
    let infos = a.handle.peer_infos().await.unwrap();
    assert_eq!(infos.len(), 1, "{infos:?}");
    let p = &infos[0];
    assert_eq!(p.id, b_id);
    assert_eq!(
        p.subnets.as_deref(),
        Some(Subnets::from_iter([subnet(3), subnet(9)]).to_hex().as_str())
    );
    assert!(
        p.version
            .as_deref()
            .is_some_and(|v| v.starts_with("ssv-node-rs/")),
        "{p:?}"
    );
    // A dialed B: A's side of the connection is outbound, B's is inbound.
    assert!(!p.connections.is_empty());
    assert!(p.connections.iter().all(|c| c.outbound), "{p:?}");
    let b_side = b.handle.peer_infos().await.unwrap();
    let q = b_side.iter().find(|q| q.id == a_id).expect("B lists A");
    assert!(q.connections.iter().all(|c| !c.outbound), "{q:?}");
    assert!(
        q.connections[0]
            .address
            .to_string()
            .starts_with("/ip4/127.0.0.1/tcp/"),
        "{q:?}"
    );

    let by_topic = a.handle.peers_by_topic().await.unwrap();
    let topic = ssv_netio::topic_name(subnet(3));
    let peers = &by_topic
        .iter()
        .find(|(t, _)| *t == topic)
        .unwrap_or_else(|| panic!("{topic} in {by_topic:?}"))
        .1;
    assert_eq!(peers, &vec![b_id]);
    let names: Vec<&String> = by_topic.iter().map(|(t, _)| t).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "topics in order");

    // Once B is gone, A lists no peer.
    drop(b);
    eventually("A to forget B", || async {
        a.handle.peer_infos().await.unwrap().is_empty()
    })
    .await;
}
