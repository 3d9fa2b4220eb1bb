//! The node's health, as the Go node's `GET /v1/node/health` reports it: p2p (connected
//! peers and inbound connections above a floor), the beacon node (the client's last sync
//! probe), the execution node (a live `eth_syncing` / `eth_blockNumber` probe) and the event
//! syncer (contract sync's committed block against the execution head). `GET /health` answers
//! `200` when every configured component is good and `500` with `{"errors": [...]}` otherwise,
//! as the Go node's metrics-port health handler.
//!
//! The judgments are pure functions over probe results ([`judge_p2p`], [`judge_beacon`],
//! [`judge_execution`], [`judge_event_syncer`]); [`HealthSources::report`] gathers the
//! probes, at most once per [`HEALTH_CACHE`] however many requests come in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};
use ssv_beacon_api::client::BeaconClient;
use ssv_beacon_api::health::NodeHealth;
use ssv_eth_sync::probe::{ExecutionStatus, ProbeError, probe_execution_node};
use ssv_netio::{NetworkHandle, PeerInfo};
use ssv_storage::Store;

/// Connected peers below which p2p is unhealthy (the Go node's `healthyPeerCount`).
pub const HEALTHY_PEERS_MIN: usize = 20;
/// Inbound connections below which p2p is unhealthy: the port is likely not reachable (the Go
/// node's `healthyInbounds`).
pub const HEALTHY_INBOUND_MIN: usize = 4;
/// How long a health report is reused. Each report probes every execution endpoint; without
/// this a client polling `/health` in a loop would turn into load on the execution node.
pub const HEALTH_CACHE: Duration = Duration::from_secs(1);
/// Timeout of one execution endpoint probe and of each network query. Too small and a busy
/// execution node reads as down; too large and `/health` hangs that long when it is down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Blocks contract sync may be behind `head - follow_distance` and still be healthy. It
/// polls the head every few seconds (4 s by default) and a mainnet block comes every 12 s, so
/// a healthy sync is 0 to 2 blocks behind; 16 blocks (over 3 minutes of mainnet blocks) is a
/// stuck or failing sync. Too small and a slow poll flaps the check.
pub const EVENT_SYNC_LAG_BLOCKS_MAX: u64 = 16;

/// One component's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Healthy.
    Good,
    /// Unhealthy, and why.
    Bad(String),
    /// Not part of this node (no execution endpoint configured: the registry comes from the
    /// database only).
    Disabled,
}

impl Check {
    fn bad(why: impl Into<String>) -> Check {
        Check::Bad(why.into())
    }
}

impl Serialize for Check {
    /// As the Go node's `healthStatus`: `"good"` or `"bad: <why>"`; `"disabled"` is ours.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Check::Good => s.serialize_str("good"),
            Check::Bad(why) => s.serialize_str(&format!("bad: {why}")),
            Check::Disabled => s.serialize_str("disabled"),
        }
    }
}

/// The numbers behind the p2p verdict (the Go node's `advanced` object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Advanced {
    /// Connected peers.
    pub peers: usize,
    /// Inbound connections.
    pub inbound_conns: usize,
    /// Outbound connections.
    pub outbound_conns: usize,
    /// The p2p listen addresses (`tcp://ip:port`, `udp://ip:port`).
    pub p2p_listen_addresses: Vec<String>,
}

/// The Go node's `healthCheckJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// Peers and inbound connections.
    pub p2p: Check,
    /// The beacon node(s).
    pub beacon_node: Check,
    /// The execution node(s).
    pub execution_node: Check,
    /// Contract sync.
    pub event_syncer: Check,
    /// The numbers behind `p2p`.
    pub advanced: Advanced,
}

impl HealthReport {
    /// Every unhealthy component, as `"<component>: <why>"` (empty when healthy).
    pub fn errors(&self) -> Vec<String> {
        [
            ("p2p", &self.p2p),
            ("beacon_node", &self.beacon_node),
            ("execution_node", &self.execution_node),
            ("event_syncer", &self.event_syncer),
        ]
        .into_iter()
        .filter_map(|(name, c)| match c {
            Check::Bad(why) => Some(format!("{name}: {why}")),
            Check::Good | Check::Disabled => None,
        })
        .collect()
    }
}

/// The peer floor of the p2p check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerFloor {
    /// Fewest connected peers.
    pub peers: usize,
    /// Fewest inbound connections.
    pub inbound: usize,
}

impl PeerFloor {
    /// The Go node's floor ([`HEALTHY_PEERS_MIN`], [`HEALTHY_INBOUND_MIN`]).
    pub const GO: PeerFloor = PeerFloor {
        peers: HEALTHY_PEERS_MIN,
        inbound: HEALTHY_INBOUND_MIN,
    };
    /// A loopback network (a devnet of a few nodes that all dial each other): one peer.
    pub const LOOPBACK: PeerFloor = PeerFloor {
        peers: 1,
        inbound: 0,
    };
}

/// The Go node's p2p rule: no peers, fewer than the floor, too few inbound connections.
pub fn judge_p2p(peers: usize, inbound: usize, floor: PeerFloor) -> Check {
    if peers == 0 {
        Check::bad("no peers are connected")
    } else if peers < floor.peers {
        Check::bad("not enough connected peers")
    } else if inbound < floor.inbound {
        Check::bad("not enough inbound connections, port is likely not reachable")
    } else {
        Check::Good
    }
}

/// Counts connected (handshaken) peers and inbound and outbound connections.
pub fn count_peers(peers: &[PeerInfo]) -> (usize, usize, usize) {
    let connected = peers.iter().filter(|p| p.verified).count();
    let inbound = peers
        .iter()
        .flat_map(|p| p.connections.iter())
        .filter(|c| !c.outbound)
        .count();
    let outbound = peers
        .iter()
        .flat_map(|p| p.connections.iter())
        .filter(|c| c.outbound)
        .count();
    (connected, inbound, outbound)
}

/// Good when at least one beacon node was found healthy by the last probe (duties go to
/// it); otherwise every node's state, in configured order.
pub fn judge_beacon(urls: &[String], health: &[NodeHealth]) -> Check {
    if health.iter().any(NodeHealth::is_healthy) {
        return Check::Good;
    }
    if health.is_empty() {
        return Check::bad("no beacon node configured");
    }
    let each: Vec<String> = health
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let url = urls
                .get(i)
                .map(|u| ssv_eth_sync::sync::redact(u))
                .unwrap_or_else(|| format!("#{i}"));
            match h {
                NodeHealth::Healthy(_) => format!("{url}: healthy"),
                NodeHealth::Unknown => format!("{url}: not probed yet"),
                NodeHealth::Unhealthy { status, why } => format!(
                    "{url}: {why} (head slot {}, sync distance {})",
                    status.head_slot, status.sync_distance
                ),
                NodeHealth::Unreachable(e) => format!("{url}: unreachable ({e})"),
            }
        })
        .collect();
    Check::Bad(each.join("; "))
}

/// Good when at least one execution endpoint answered and is not syncing; the highest head
/// among those is returned for the event-syncer check.
pub fn judge_execution(probes: &[Result<ExecutionStatus, ProbeError>]) -> (Check, Option<u64>) {
    let head = probes
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .filter(|s| !s.syncing)
        .map(|s| s.head)
        .max();
    if head.is_some() {
        return (Check::Good, head);
    }
    if probes.is_empty() {
        return (Check::Disabled, None);
    }
    let each: Vec<String> = probes
        .iter()
        .map(|p| match p {
            Ok(s) => format!("syncing (head block {})", s.head),
            Err(e) => e.to_string(),
        })
        .collect();
    (Check::Bad(each.join("; ")), None)
}

/// Good when contract sync has committed up to within [`EVENT_SYNC_LAG_BLOCKS_MAX`] of
/// `head - follow_distance`.
pub fn judge_event_syncer(cursor: Option<u64>, head: Option<u64>, follow_distance: u64) -> Check {
    let Some(head) = head else {
        return Check::bad("no healthy execution node to compare with");
    };
    let Some(cursor) = cursor else {
        return Check::bad("no block synced yet");
    };
    let target = head.saturating_sub(follow_distance);
    let behind = target.saturating_sub(cursor);
    if behind > EVENT_SYNC_LAG_BLOCKS_MAX {
        Check::Bad(format!(
            "syncing is behind: block {cursor} committed, head {head} (follow distance \
             {follow_distance}), {behind} blocks behind"
        ))
    } else {
        Check::Good
    }
}

/// Contract sync's endpoints and follow distance, for the execution and event-syncer probes.
#[derive(Debug, Clone)]
pub struct Eth1Probe {
    /// Execution endpoints (probed in order, each within [`PROBE_TIMEOUT`]).
    pub endpoints: Vec<String>,
    /// Blocks contract sync stays behind the head.
    pub follow_distance: u64,
}

/// Everything the health report reads.
pub struct HealthSources {
    /// The beacon client (its last probes: it probes every node once a slot).
    pub beacon: Arc<BeaconClient>,
    /// The network.
    pub network: NetworkHandle,
    /// The store (contract sync's cursor).
    pub store: Arc<Store>,
    /// Contract sync, when configured.
    pub eth1: Option<Eth1Probe>,
    /// The p2p floor.
    pub floor: PeerFloor,
    /// `tcp://ip:port` and `udp://ip:port` of the p2p listeners.
    pub listen_addresses: Vec<String>,
    cache: tokio::sync::Mutex<Option<(Instant, HealthReport)>>,
}

impl HealthSources {
    /// Sources with an empty report cache.
    pub fn new(
        beacon: Arc<BeaconClient>,
        network: NetworkHandle,
        store: Arc<Store>,
        eth1: Option<Eth1Probe>,
        floor: PeerFloor,
        listen_addresses: Vec<String>,
    ) -> Self {
        HealthSources {
            beacon,
            network,
            store,
            eth1,
            floor,
            listen_addresses,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The current report (probed at most once per [`HEALTH_CACHE`]; concurrent requests
    /// wait for the one probe in flight).
    pub async fn report(&self) -> HealthReport {
        let mut cache = self.cache.lock().await;
        if let Some((at, r)) = cache.as_ref()
            && at.elapsed() < HEALTH_CACHE
        {
            return r.clone();
        }
        let r = self.probe().await;
        *cache = Some((Instant::now(), r.clone()));
        r
    }

    async fn probe(&self) -> HealthReport {
        let peers = tokio::time::timeout(PROBE_TIMEOUT, self.network.peer_infos()).await;
        let (p2p, advanced) = match peers {
            Ok(Ok(peers)) => {
                let (connected, inbound, outbound) = count_peers(&peers);
                (
                    judge_p2p(connected, inbound, self.floor),
                    Advanced {
                        peers: connected,
                        inbound_conns: inbound,
                        outbound_conns: outbound,
                        p2p_listen_addresses: self.listen_addresses.clone(),
                    },
                )
            }
            Ok(Err(e)) => (Check::Bad(format!("network: {e}")), self.empty_advanced()),
            Err(_) => (
                Check::bad("the network thread did not answer"),
                self.empty_advanced(),
            ),
        };
        let beacon_node = judge_beacon(self.beacon.urls(), &self.beacon.health());
        let (execution_node, event_syncer) = match &self.eth1 {
            None => (Check::Disabled, Check::Disabled),
            Some(eth1) => {
                let mut probes = Vec::with_capacity(eth1.endpoints.len());
                for url in &eth1.endpoints {
                    probes.push(probe_execution_node(url, PROBE_TIMEOUT).await);
                }
                let (el, head) = judge_execution(&probes);
                let store = self.store.clone();
                let cursor = tokio::task::spawn_blocking(move || store.sync_cursor()).await;
                let syncer = match cursor {
                    Ok(Ok(cursor)) => judge_event_syncer(cursor, head, eth1.follow_distance),
                    Ok(Err(e)) => Check::Bad(format!("reading the sync cursor: {e}")),
                    Err(e) => Check::Bad(format!("reading the sync cursor: {e}")),
                };
                (el, syncer)
            }
        };
        HealthReport {
            p2p,
            beacon_node,
            execution_node,
            event_syncer,
            advanced,
        }
    }

    fn empty_advanced(&self) -> Advanced {
        Advanced {
            peers: 0,
            inbound_conns: 0,
            outbound_conns: 0,
            p2p_listen_addresses: self.listen_addresses.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssv_beacon_api::types::Syncing;
    use ssv_netio::{PeerConnection, PeerId};

    fn syncing(distance: u64) -> Syncing {
        Syncing {
            head_slot: 100,
            sync_distance: distance,
            is_syncing: distance > 0,
            is_optimistic: false,
            el_offline: false,
        }
    }

    #[test]
    fn p2p_rules_are_the_go_nodes() {
        let go = PeerFloor::GO;
        assert_eq!(
            judge_p2p(0, 0, go),
            Check::bad("no peers are connected"),
            "no peers"
        );
        assert_eq!(
            judge_p2p(19, 10, go),
            Check::bad("not enough connected peers")
        );
        assert_eq!(
            judge_p2p(20, 3, go),
            Check::bad("not enough inbound connections, port is likely not reachable")
        );
        assert_eq!(judge_p2p(20, 4, go), Check::Good);
        assert_eq!(judge_p2p(1, 0, PeerFloor::LOOPBACK), Check::Good);
        assert_eq!(
            judge_p2p(0, 0, PeerFloor::LOOPBACK),
            Check::bad("no peers are connected")
        );
    }

    #[test]
    fn peers_and_directions_are_counted() {
        let conn = |outbound| PeerConnection {
            address: "/ip4/127.0.0.1/tcp/1".parse().expect("multiaddr"),
            outbound,
        };
        let peers = vec![
            PeerInfo {
                id: PeerId::random(),
                connections: vec![conn(true), conn(false)],
                verified: true,
                subnets: None,
                version: None,
            },
            PeerInfo {
                id: PeerId::random(),
                connections: vec![conn(false)],
                verified: false,
                subnets: None,
                version: None,
            },
        ];
        assert_eq!(count_peers(&peers), (1, 2, 1));
    }

    #[test]
    fn beacon_is_good_when_one_node_is_healthy() {
        let urls = vec!["http://a:1/x".to_string(), "http://b:2".to_string()];
        let lagging = NodeHealth::judge(syncing(50));
        assert!(!lagging.is_healthy());
        assert_eq!(
            judge_beacon(&urls, &[lagging.clone(), NodeHealth::judge(syncing(0))]),
            Check::Good
        );
        let Check::Bad(why) =
            judge_beacon(&urls, &[lagging, NodeHealth::Unreachable("refused".into())])
        else {
            panic!("a lagging and an unreachable node are unhealthy");
        };
        assert!(why.contains("sync distance 50"), "{why}");
        assert!(why.contains("unreachable (refused)"), "{why}");
        assert!(!why.contains("/x"), "URLs are redacted: {why}");
        assert!(matches!(
            judge_beacon(&urls, &[NodeHealth::Unknown]),
            Check::Bad(_)
        ));
    }

    /// The beacon check over real probes of the devnet's simulator: a view of the chain 16
    /// slots behind is reported with its distance; with a healthy node beside it the check
    /// is good.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lagging_simulated_beacon_node_is_bad_unless_another_is_healthy() {
        use ssv_devnet::sim::{BeaconSim, SimConfig};
        let setup = ssv_devnet::Setup::generate(4, 4, 4, 1).expect("setup");
        let cfg = SimConfig::new(
            setup.sim_validators(),
            Duration::from_millis(500),
            Duration::ZERO,
        );
        let sim = BeaconSim::new(cfg).expect("simulator");
        let lagging = sim.lagging(16);
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let healthy = sim
            .serve_listener(bind().await.expect("bind"), std::future::pending())
            .expect("serve");
        let behind = lagging
            .serve_view(bind().await.expect("bind"), std::future::pending())
            .expect("serve");
        let urls = vec![format!("http://{behind}")];
        let client = BeaconClient::new(urls.clone()).expect("client");
        let probed = client.probe_health().await;
        let Check::Bad(why) = judge_beacon(&urls, &probed) else {
            panic!("a node 16 slots behind is unhealthy: {probed:?}");
        };
        assert!(why.contains("sync distance 16"), "{why}");
        let urls = vec![format!("http://{behind}"), format!("http://{healthy}")];
        let client = BeaconClient::new(urls.clone()).expect("client");
        let probed = client.probe_health().await;
        assert_eq!(judge_beacon(&urls, &probed), Check::Good, "{probed:?}");
    }

    /// A JSON-RPC execution node stand-in: `eth_syncing` answers `syncing`, `eth_blockNumber`
    /// answers `head`.
    async fn fake_execution_node(head: u64, syncing: bool) -> String {
        use axum::Json;
        use serde_json::{Value, json};
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |Json(req): Json<Value>| async move {
                let result = match req["method"].as_str() {
                    Some("eth_syncing") if syncing => json!({
                        "startingBlock": "0x0",
                        "currentBlock": format!("{head:#x}"),
                        "highestBlock": format!("{:#x}", head + 1000),
                    }),
                    Some("eth_syncing") => json!(false),
                    Some("eth_blockNumber") => json!(format!("{head:#x}")),
                    _ => Value::Null,
                };
                Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": result}))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// The whole report over a JSON-RPC execution node and a store: the event syncer is
    /// judged on the store's cursor against the node's head, and a syncing execution node is
    /// bad.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn report_probes_the_execution_node_and_the_sync_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(
            Store::open(ssv_storage::StoreConfig::new(
                dir.path().join("db"),
                [0; 32],
            ))
            .expect("store"),
        );
        let (network, far_end) = NetworkHandle::detached(16);
        tokio::spawn(async move {
            loop {
                far_end.drain();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let beacon =
            Arc::new(BeaconClient::new(vec!["http://127.0.0.1:9".into()]).expect("client"));
        let synced = fake_execution_node(100, false).await;
        let syncing = fake_execution_node(40, true).await;
        let sources = |endpoints: Vec<String>| {
            HealthSources::new(
                beacon.clone(),
                network.clone(),
                store.clone(),
                Some(Eth1Probe {
                    endpoints,
                    follow_distance: 8,
                }),
                PeerFloor::LOOPBACK,
                vec![],
            )
        };
        store
            .write(vec![ssv_storage::WriteOp::SetSyncCursor(50)])
            .expect("cursor");
        let r = sources(vec![synced.clone()]).report().await;
        assert_eq!(r.execution_node, Check::Good);
        assert!(
            matches!(&r.event_syncer, Check::Bad(w) if w.contains("42 blocks behind")),
            "{r:?}"
        );
        assert_eq!(r.p2p, Check::bad("no peers are connected"));
        store
            .write(vec![ssv_storage::WriteOp::SetSyncCursor(90)])
            .expect("cursor");
        let r = sources(vec![syncing.clone(), synced]).report().await;
        assert_eq!(
            (&r.execution_node, &r.event_syncer),
            (&Check::Good, &Check::Good)
        );
        let r = sources(vec![syncing]).report().await;
        assert!(
            matches!(&r.execution_node, Check::Bad(w) if w.contains("syncing")),
            "{r:?}"
        );
        assert!(matches!(r.event_syncer, Check::Bad(_)), "{r:?}");
        assert_eq!(r.errors().len(), 4, "{:?}", r.errors());
    }

    #[test]
    fn execution_needs_one_synced_endpoint() {
        let down = Err(ProbeError::Timeout {
            endpoint: "http://x".into(),
            timeout: PROBE_TIMEOUT,
        });
        let syncing = Ok(ExecutionStatus {
            head: 5,
            syncing: true,
        });
        let synced = Ok(ExecutionStatus {
            head: 9,
            syncing: false,
        });
        assert_eq!(judge_execution(&[]), (Check::Disabled, None));
        let (c, head) = judge_execution(&[down.clone(), syncing.clone()]);
        assert!(
            matches!(&c, Check::Bad(w) if w.contains("did not answer") && w.contains("syncing")),
            "{c:?}"
        );
        assert_eq!(head, None);
        assert_eq!(judge_execution(&[down, synced]), (Check::Good, Some(9)));
    }

    #[test]
    fn event_syncer_lag() {
        assert_eq!(judge_event_syncer(Some(90), Some(100), 10), Check::Good);
        assert_eq!(
            judge_event_syncer(Some(90 - EVENT_SYNC_LAG_BLOCKS_MAX), Some(100), 10),
            Check::Good
        );
        assert!(matches!(
            judge_event_syncer(Some(89 - EVENT_SYNC_LAG_BLOCKS_MAX), Some(100), 10),
            Check::Bad(_)
        ));
        assert!(matches!(
            judge_event_syncer(None, Some(100), 0),
            Check::Bad(_)
        ));
        assert!(matches!(
            judge_event_syncer(Some(1), None, 0),
            Check::Bad(_)
        ));
        // A cursor past the head (the execution node restarted from an older state) is not
        // behind.
        assert_eq!(judge_event_syncer(Some(200), Some(100), 0), Check::Good);
    }

    #[test]
    fn report_serializes_as_go_and_lists_errors() {
        let r = HealthReport {
            p2p: Check::bad("no peers are connected"),
            beacon_node: Check::Good,
            execution_node: Check::Disabled,
            event_syncer: Check::Disabled,
            advanced: Advanced {
                peers: 0,
                inbound_conns: 0,
                outbound_conns: 0,
                p2p_listen_addresses: vec!["tcp://127.0.0.1:13001".into()],
            },
        };
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["p2p"], "bad: no peers are connected");
        assert_eq!(v["beacon_node"], "good");
        assert_eq!(v["execution_node"], "disabled");
        assert_eq!(
            v["advanced"]["p2p_listen_addresses"][0],
            "tcp://127.0.0.1:13001"
        );
        assert_eq!(r.errors(), vec!["p2p: no peers are connected".to_string()]);
    }
}
