//! The network service: the libp2p swarm and discv5 on their own OS thread with a one-thread
//! tokio runtime, talking to the rest of the node through bounded channels.
//!
//! ```text
//!  shards (glommio) ──NetworkHandle: publish / report / subscribe (bounded command queue)──►┐
//!        ▲                                                                                   │
//!        └──── ShardQueue k (bounded, drop-oldest) ◄── network thread: swarm + discv5 ◄──────┘
//! ```

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use discv5::{Discv5, Enr};
use futures::StreamExt;
use futures::channel::oneshot;
use libp2p::gossipsub::{
    self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode,
    WhitelistSubscriptionFilter,
};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, noise, tcp, yamux};

use crate::discovery::{
    DISCOVERED_QUEUE_MAX, DiscoveredPeer, DiscoveryTargets, LocalRecord, accept_record,
    enr_multiaddr, free_udp_port, run_discovery, start_discv5,
};
use crate::error::NetioError;
use crate::gater::{BanReason, GRAYLIST_BAN, Gater, GaterLimits, HANDSHAKE_BAN, TRIM_BACKOFF};
use crate::handshake::{
    HANDSHAKE_TIMEOUT, HandshakeCodec, NODE_INFO_PROTOCOL, NodeInfo, NodeMetadata,
};
use crate::keys::NetworkKey;
use crate::msg_id::message_id;
use crate::rate::{PeerRateLimits, PeerRates};
use crate::scoring::{
    APP_SCORE_DECAY_INTERVAL, AppScore, GRAYLIST_THRESHOLD, ValidationResult, peer_score_params,
    peer_score_thresholds, topic_score_params,
};
use crate::shard::{
    InboundMessage, RouteOutcome, SHARD_QUEUE_BYTES_MAX, SHARD_QUEUE_MAX, ShardQueue, ShardRouter,
    ShardStats,
};
use crate::spec::{
    DEFAULT_TCP_PORT, DEFAULT_UDP_PORT, DomainType, GOSSIP_MAX_SIZE, SUBNET_COUNT, Subnet,
    subnet_from_topic, topic_name,
};
use crate::subnets::Subnets;

/// Gossipsub mesh degree D (Go `gsD`).
pub const MESH_D: usize = 8;
/// Mesh low watermark (Go `gsDlo`).
pub const MESH_D_LO: usize = 6;
/// Mesh high watermark (Go `gsDhi`).
pub const MESH_D_HI: usize = 12;
/// Heartbeat interval (Go `HeartbeatInterval`); also our maintenance tick.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(700);
/// Message cache windows kept for IWANT (Go `gsMcacheLen`).
pub const HISTORY_LENGTH: usize = 6;
/// Message cache windows gossiped about (Go `gsMcacheGossip`).
pub const HISTORY_GOSSIP: usize = 4;
/// Most IHAVE messages accepted from a peer per heartbeat (Go `gsMaxIHaveMessages`).
pub const MAX_IHAVE_MESSAGES: usize = 10;
/// Seen-messages TTL: 550 heartbeats, about 6.4 minutes (Go `msgIDCacheTTL`). Too short and
/// late duplicates are delivered again.
pub const SEEN_TTL: Duration = Duration::from_millis(700 * 550);
/// Capacity of the command queue from handles to the network thread. When full, async callers
/// wait and `try_*` callers get `CommandQueueFull` (a shard's publish is then lost and counted
/// in `publish_errors`). Sized for a slot-start burst: every inbound message gets a validation
/// report (~22,000 at 100,000 validators, see [`crate::shard::SHARD_QUEUE_MAX`]) and our publishes add
/// ~7,000 (three per active committee, one per selection round); 65,536 holds two such slots
/// while the network thread is starved of CPU. A command holds at most one message (~1 KB
/// typically), so a full queue is ~64 MB.
pub const COMMAND_QUEUE_MAX: usize = 64 * 1024;
/// Commands handled per wake-up before the loop polls the swarm again.
pub const COMMAND_BATCH_MAX: usize = 512;
/// Capacity of the event queue to the application; when full, new events are dropped and
/// counted in [`NetworkStats::dropped_events`].
pub const EVENT_QUEUE_MAX: usize = 1024;
/// Most discovered peer IDs remembered for statistics.
pub const DISCOVERED_PEERS_MAX: usize = 16 * 1024;
/// Subscribed subnets with fewer connected topic peers than this make discovery look for
/// records sharing them.
pub const SUBNET_PEERS_MIN: usize = 3;
/// Idle connections are closed after this long.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the network thread waits for its listeners to come up.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Configuration of a network node.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The network key; when `None`, it is loaded from (or created in) `data_dir`.
    pub key: Option<NetworkKey>,
    /// Directory holding `network.key`; when both this and `key` are `None`, a fresh key is
    /// generated and not persisted.
    pub data_dir: Option<PathBuf>,
    /// IPv4 address to listen on and to advertise in the ENR.
    pub ip: Ipv4Addr,
    /// libp2p TCP port (0: any free port).
    pub tcp_port: u16,
    /// discv5 UDP port (0: any free port).
    pub udp_port: u16,
    /// libp2p QUIC port (`Some(0)`: any free port; `None`: QUIC off).
    pub quic_port: Option<u16>,
    /// Dial discovered peers over QUIC when they advertise it (TCP otherwise).
    pub dial_quic: bool,
    /// Our network.
    pub domain_type: DomainType,
    /// The next fork's domain type, advertised so peers can prepare.
    pub next_domain_type: Option<DomainType>,
    /// Bootnode records.
    pub bootnodes: Vec<Enr>,
    /// Subnets to subscribe at start.
    pub subnets: Subnets,
    /// Most connected peers (Go `MaxPeers`, default 60).
    pub max_peers: usize,
    /// Below this many peers, peers sharing none of our subnets are dialed too.
    pub min_peers: usize,
    /// Most connections from one IP (loopback networks need more than the default).
    pub max_connections_per_ip: usize,
    /// Addresses exempt from the IP colocation score penalty (P6).
    pub ip_colocation_whitelist: HashSet<IpAddr>,
    /// Number of shards the inbound messages are spread over.
    pub shard_count: usize,
    /// Capacity of each shard queue.
    pub shard_queue_capacity: usize,
    /// Bytes of message data each shard queue holds at most.
    pub shard_queue_bytes: usize,
    /// Each peer's inbound budget (see [`crate::rate`]).
    pub peer_rate_limits: PeerRateLimits,
    /// Interval between discovery queries while peers are wanted.
    pub discovery_interval: Duration,
    /// Version string for identify and the handshake.
    pub node_version: String,
}

impl NetworkConfig {
    /// Production defaults for `domain_type` (Go node ports, 60 peers, one shard).
    pub fn new(domain_type: DomainType) -> Self {
        Self {
            key: None,
            data_dir: None,
            ip: Ipv4Addr::UNSPECIFIED,
            tcp_port: DEFAULT_TCP_PORT,
            udp_port: DEFAULT_UDP_PORT,
            quic_port: Some(DEFAULT_TCP_PORT),
            dial_quic: false,
            domain_type,
            next_domain_type: None,
            bootnodes: vec![],
            subnets: Subnets::NONE,
            max_peers: 60,
            min_peers: 10,
            max_connections_per_ip: 10,
            ip_colocation_whitelist: HashSet::new(),
            shard_count: 1,
            shard_queue_capacity: SHARD_QUEUE_MAX,
            shard_queue_bytes: SHARD_QUEUE_BYTES_MAX,
            peer_rate_limits: PeerRateLimits::default(),
            discovery_interval: Duration::from_secs(2),
            node_version: format!("ssv-node-rs/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// A node on 127.0.0.1 with free ports, loopback exempt from the colocation penalty and a
    /// high per-IP limit: for tests and local networks.
    pub fn loopback(domain_type: DomainType) -> Self {
        Self {
            ip: Ipv4Addr::LOCALHOST,
            tcp_port: 0,
            udp_port: 0,
            quic_port: Some(0),
            max_connections_per_ip: 1024,
            ip_colocation_whitelist: HashSet::from([IpAddr::V4(Ipv4Addr::LOCALHOST)]),
            discovery_interval: Duration::from_millis(500),
            ..Self::new(domain_type)
        }
    }
}

/// Something the application may want to know about peers.
#[derive(Clone, Debug, PartialEq)]
pub enum NetworkEvent {
    /// A peer passed the handshake.
    PeerConnected(PeerId),
    /// A verified peer's last connection closed.
    PeerDisconnected(PeerId),
    /// A peer failed the handshake (other network, bad record, timeout) and was dropped.
    HandshakeRejected {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A peer's score fell below the graylist threshold; it was dropped and banned.
    Graylisted {
        /// The peer.
        peer: PeerId,
        /// Its score.
        score: f64,
    },
    /// discv5 found a record of our network for the first time.
    Discovered(PeerId),
}

/// Most connections listed per peer in a [`PeerInfo`] (libp2p keeps one or two per peer; the
/// bound keeps a peer that opens many from growing an API answer without limit).
pub const PEER_CONNECTIONS_LISTED_MAX: usize = 8;

/// One open connection of a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConnection {
    /// The remote address of the connection.
    pub address: Multiaddr,
    /// Whether we dialed it (`false`: the peer dialed us).
    pub outbound: bool,
}

/// What the network thread knows of one connected peer (the node API's `/v1/node/peers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub id: PeerId,
    /// Its open connections (at most [`PEER_CONNECTIONS_LISTED_MAX`]).
    pub connections: Vec<PeerConnection>,
    /// Whether it passed the handshake.
    pub verified: bool,
    /// The subnets its handshake advertised (hex, as the Go node's metadata), if it sent any.
    pub subnets: Option<String>,
    /// The node version its handshake advertised, if it sent any.
    pub version: Option<String>,
}

/// A snapshot of the service.
#[derive(Clone, Debug, Default)]
pub struct NetworkStats {
    /// Peers with at least one connection.
    pub connected_peers: usize,
    /// Peers that passed the handshake.
    pub verified_peers: usize,
    /// Distinct peers of our network found through discv5.
    pub discovered_peers: usize,
    /// Our subscriptions.
    pub subscribed: Subnets,
    /// Messages published.
    pub published: u64,
    /// Publishes gossipsub refused.
    pub publish_errors: u64,
    /// Events dropped because the event queue was full.
    pub dropped_events: u64,
    /// Inbound messages dropped because their peer was over its rate limit.
    pub rate_limited: u64,
    /// Per-shard delivery counters.
    pub shards: Vec<ShardStats>,
}

enum Command {
    Publish {
        subnet: Subnet,
        data: Vec<u8>,
        reply: Option<oneshot::Sender<Result<MessageId, NetioError>>>,
    },
    Report {
        id: MessageId,
        source: PeerId,
        result: ValidationResult,
    },
    Subscribe(Subnet, oneshot::Sender<()>),
    Unsubscribe(Subnet, oneshot::Sender<()>),
    SetTopicRate(Subnet, f64),
    Dial(Enr),
    PeerScore(PeerId, oneshot::Sender<Option<f64>>),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    PeerInfos(oneshot::Sender<Vec<PeerInfo>>),
    PeersByTopic(oneshot::Sender<Vec<(String, Vec<PeerId>)>>),
    TopicPeers(Subnet, oneshot::Sender<usize>),
    Stats(oneshot::Sender<NetworkStats>),
    LocalEnr(oneshot::Sender<Enr>),
    Shutdown,
}

/// A cheap, cloneable, `Send` handle to the network thread; usable from any executor (tokio,
/// glommio, plain threads with a blocking `block_on`).
#[derive(Clone)]
pub struct NetworkHandle {
    tx: async_channel::Sender<Command>,
    peer_id: PeerId,
    listen_addrs: Arc<Vec<Multiaddr>>,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("peer_id", &self.peer_id)
            .finish()
    }
}

/// What a data plane asked of a [`NetworkHandle::detached`] handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetachedEvent {
    /// A publish on a subnet.
    Published {
        /// The subnet.
        subnet: Subnet,
        /// The encoded message.
        data: Vec<u8>,
    },
    /// A validation verdict on a delivered message.
    Reported {
        /// The gossip message ID.
        id: MessageId,
        /// The peer it came from.
        source: PeerId,
        /// The verdict.
        result: ValidationResult,
    },
    /// A subscription change.
    Subscribed(Subnet, bool),
}

/// The far end of a [`NetworkHandle::detached`] handle: no libp2p behind it, every command
/// recorded for the test or harness that reads [`DetachedNetwork::drain`]; queries answer as
/// a network with no peers would.
#[derive(Debug)]
pub struct DetachedNetwork {
    rx: async_channel::Receiver<Command>,
}

impl DetachedNetwork {
    /// Everything asked since the last call, in order.
    pub fn drain(&self) -> Vec<DetachedEvent> {
        let mut out = Vec::new();
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Publish {
                    subnet,
                    data,
                    reply,
                } => {
                    if let Some(r) = reply {
                        let _ = r.send(Ok(MessageId::new(&message_id(&data, None))));
                    }
                    out.push(DetachedEvent::Published { subnet, data });
                }
                Command::Report { id, source, result } => {
                    out.push(DetachedEvent::Reported { id, source, result })
                }
                Command::Subscribe(s, r) => {
                    let _ = r.send(());
                    out.push(DetachedEvent::Subscribed(s, true));
                }
                Command::Unsubscribe(s, r) => {
                    let _ = r.send(());
                    out.push(DetachedEvent::Subscribed(s, false));
                }
                Command::PeerScore(_, r) => {
                    let _ = r.send(None);
                }
                Command::ConnectedPeers(r) => {
                    let _ = r.send(Vec::new());
                }
                Command::PeerInfos(r) => {
                    let _ = r.send(Vec::new());
                }
                Command::PeersByTopic(r) => {
                    let _ = r.send(Vec::new());
                }
                Command::TopicPeers(_, r) => {
                    let _ = r.send(0);
                }
                Command::Stats(r) => {
                    let _ = r.send(NetworkStats::default());
                }
                Command::LocalEnr(_)
                | Command::SetTopicRate(..)
                | Command::Dial(_)
                | Command::Shutdown => {}
            }
        }
        out
    }
}

impl NetworkHandle {
    /// A handle with no network behind it, for tests and harnesses that run a data plane
    /// without libp2p: what it is asked lands in the returned [`DetachedNetwork`] (at most
    /// `queue` commands between two drains; beyond that `try_publish` reports a full queue,
    /// as a busy network thread would).
    pub fn detached(queue: usize) -> (NetworkHandle, DetachedNetwork) {
        let (tx, rx) = async_channel::bounded(queue.max(1));
        (
            NetworkHandle {
                tx,
                peer_id: PeerId::random(),
                listen_addrs: Arc::new(Vec::new()),
            },
            DetachedNetwork { rx },
        )
    }

    /// Our peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Addresses the swarm listens on.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    async fn send(&self, cmd: Command) -> Result<(), NetioError> {
        self.tx
            .send(cmd)
            .await
            .map_err(|_| NetioError::ServiceStopped)
    }

    fn try_send(&self, cmd: Command) -> Result<(), NetioError> {
        self.tx.try_send(cmd).map_err(|e| match e {
            async_channel::TrySendError::Full(_) => NetioError::CommandQueueFull,
            async_channel::TrySendError::Closed(_) => NetioError::ServiceStopped,
        })
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetioError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| NetioError::ServiceStopped)
    }

    /// Publishes `data` on `subnet` and waits for gossipsub's verdict.
    pub async fn publish(&self, subnet: Subnet, data: Vec<u8>) -> Result<MessageId, NetioError> {
        check_size(&data)?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Publish {
            subnet,
            data,
            reply: Some(tx),
        })
        .await?;
        rx.await.map_err(|_| NetioError::ServiceStopped)?
    }

    /// Queues a publish without waiting; failures are counted in the stats.
    pub fn try_publish(&self, subnet: Subnet, data: Vec<u8>) -> Result<(), NetioError> {
        check_size(&data)?;
        self.try_send(Command::Publish {
            subnet,
            data,
            reply: None,
        })
    }

    /// Reports our validation of a delivered message: gossipsub forwards it only on `Accept`.
    pub async fn report_validation(
        &self,
        msg: &InboundMessage,
        result: ValidationResult,
    ) -> Result<(), NetioError> {
        self.send(Command::Report {
            id: msg.id.clone(),
            source: msg.propagation_source,
            result,
        })
        .await
    }

    /// Non-blocking [`Self::report_validation`].
    pub fn try_report_validation(
        &self,
        msg: &InboundMessage,
        result: ValidationResult,
    ) -> Result<(), NetioError> {
        self.try_send(Command::Report {
            id: msg.id.clone(),
            source: msg.propagation_source,
            result,
        })
    }

    /// Subscribes to a subnet and advertises it in our ENR.
    pub async fn subscribe(&self, subnet: Subnet) -> Result<(), NetioError> {
        self.ask(|tx| Command::Subscribe(subnet, tx)).await
    }

    /// Unsubscribes from a subnet and removes it from our ENR.
    pub async fn unsubscribe(&self, subnet: Subnet) -> Result<(), NetioError> {
        self.ask(|tx| Command::Unsubscribe(subnet, tx)).await
    }

    /// Sets a topic's expected message rate (messages per second), re-deriving its score
    /// parameters (see [`crate::scoring::expected_message_rate`]).
    pub async fn set_topic_message_rate(
        &self,
        subnet: Subnet,
        rate: f64,
    ) -> Result<(), NetioError> {
        self.send(Command::SetTopicRate(subnet, rate)).await
    }

    /// Dials the peer of a record (static peers, tests). Discovery dials on its own.
    pub async fn dial(&self, enr: Enr) -> Result<(), NetioError> {
        self.send(Command::Dial(enr)).await
    }

    /// A peer's gossipsub score.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetioError> {
        self.ask(|tx| Command::PeerScore(peer, tx)).await
    }

    /// Connected peers.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetioError> {
        self.ask(Command::ConnectedPeers).await
    }

    /// Every peer with an open connection: its connections, handshake state and the
    /// metadata its handshake advertised.
    pub async fn peer_infos(&self) -> Result<Vec<PeerInfo>, NetioError> {
        self.ask(Command::PeerInfos).await
    }

    /// Peers by gossipsub topic, for every topic a connected peer is subscribed to (topic
    /// names in order).
    pub async fn peers_by_topic(&self) -> Result<Vec<(String, Vec<PeerId>)>, NetioError> {
        self.ask(Command::PeersByTopic).await
    }

    /// Connected peers subscribed to a subnet.
    pub async fn topic_peers(&self, subnet: Subnet) -> Result<usize, NetioError> {
        self.ask(|tx| Command::TopicPeers(subnet, tx)).await
    }

    /// A snapshot of the counters.
    pub async fn stats(&self) -> Result<NetworkStats, NetioError> {
        self.ask(Command::Stats).await
    }

    /// Our current ENR (its sequence number grows with every subscription change).
    pub async fn local_enr(&self) -> Result<Enr, NetioError> {
        self.ask(Command::LocalEnr).await
    }
}

fn check_size(data: &[u8]) -> Result<(), NetioError> {
    if data.len() > GOSSIP_MAX_SIZE {
        return Err(NetioError::MessageTooLarge {
            size: data.len(),
            max: GOSSIP_MAX_SIZE,
        });
    }
    Ok(())
}

/// A running network node: its handle, the shard queues and the event stream. Dropping it stops
/// the network thread.
pub struct Network {
    /// Handle to the network thread.
    pub handle: NetworkHandle,
    /// One queue per shard, in shard order; hand each to its shard.
    pub shards: Vec<ShardQueue>,
    /// Peer events.
    pub events: async_channel::Receiver<NetworkEvent>,
    /// Our ENR at start.
    pub enr: Enr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("peer_id", &self.handle.peer_id)
            .finish()
    }
}

impl Network {
    /// Starts the network thread and waits until it listens and discovery runs.
    pub fn start(config: NetworkConfig) -> Result<Network, NetioError> {
        let key = match (&config.key, &config.data_dir) {
            (Some(k), _) => k.clone(),
            (None, Some(dir)) => NetworkKey::load_or_generate(dir)?,
            (None, None) => NetworkKey::generate(),
        };
        if config.max_peers == 0 || config.max_connections_per_ip == 0 {
            return Err(NetioError::Config(
                "max_peers and max_connections_per_ip must be ≥ 1".into(),
            ));
        }
        let (router, shards) = ShardRouter::new(
            config.shard_count,
            config.shard_queue_capacity,
            config.shard_queue_bytes,
        )?;
        let (cmd_tx, cmd_rx) = async_channel::bounded(COMMAND_QUEUE_MAX);
        let (event_tx, event_rx) = async_channel::bounded(EVENT_QUEUE_MAX);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ssv-netio".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(NetioError::Transport(e.to_string())));
                        return;
                    }
                };
                rt.block_on(async move {
                    match Worker::start(config, key, router, event_tx).await {
                        Ok((worker, ready)) => {
                            let _ = ready_tx.send(Ok(ready));
                            worker.run(cmd_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| NetioError::Transport(e.to_string()))?;
        let (peer_id, enr, listen_addrs) = ready_rx
            .recv()
            .map_err(|_| NetioError::Transport("network thread died during start".into()))??;
        Ok(Network {
            handle: NetworkHandle {
                tx: cmd_tx,
                peer_id,
                listen_addrs: Arc::new(listen_addrs),
            },
            shards,
            events: event_rx,
            enr,
            thread: Some(thread),
        })
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Blocking send: the loop drains commands continuously, so this returns promptly.
        let _ = self.handle.tx.send_blocking(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Gossipsub = gossipsub::Behaviour<gossipsub::IdentityTransform, WhitelistSubscriptionFilter>;

#[derive(NetworkBehaviour)]
struct Behaviour {
    gater: Gater,
    gossipsub: Gossipsub,
    identify: identify::Behaviour,
    handshake: request_response::Behaviour<HandshakeCodec>,
}

fn gossipsub_config() -> Result<gossipsub::Config, NetioError> {
    gossipsub::ConfigBuilder::default()
        .mesh_n(MESH_D)
        .mesh_n_low(MESH_D_LO)
        .mesh_n_high(MESH_D_HI)
        .heartbeat_interval(HEARTBEAT_INTERVAL)
        .history_length(HISTORY_LENGTH)
        .history_gossip(HISTORY_GOSSIP)
        .max_ihave_messages_heartbeat(MAX_IHAVE_MESSAGES)
        .max_transmit_size(GOSSIP_MAX_SIZE)
        .duplicate_cache_time(SEEN_TTL)
        .validate_messages()
        // Go publishes with `From` and `Seqno` but no signature (StrictNoSign with an author):
        // check those fields when present, require none.
        .validation_mode(ValidationMode::Permissive)
        .message_id_fn(|m: &gossipsub::Message| {
            MessageId::new(&message_id(&m.data, m.source.as_ref()))
        })
        .build()
        .map_err(|e| NetioError::Gossipsub(e.to_string()))
}

fn build_gossipsub(key: &NetworkKey, cfg: &NetworkConfig) -> Result<Gossipsub, NetioError> {
    let topics = Subnet::all()
        .map(|s| IdentTopic::new(topic_name(s)).hash())
        .collect();
    let mut gs = gossipsub::Behaviour::new_with_subscription_filter(
        MessageAuthenticity::Author(key.peer_id()),
        gossipsub_config()?,
        WhitelistSubscriptionFilter(topics),
    )
    .map_err(|e| NetioError::Gossipsub(e.to_string()))?;
    let mut params = peer_score_params(cfg.ip_colocation_whitelist.clone());
    for s in Subnet::all() {
        params.topics.insert(
            IdentTopic::new(topic_name(s)).hash(),
            topic_score_params(0.0),
        );
    }
    gs.with_peer_score(params, peer_score_thresholds())
        .map_err(NetioError::Gossipsub)?;
    Ok(gs)
}

fn build_swarm(key: &NetworkKey, cfg: &NetworkConfig) -> Result<Swarm<Behaviour>, NetioError> {
    let gossipsub = build_gossipsub(key, cfg)?;
    let limits = GaterLimits {
        max_peers: cfg.max_peers,
        max_connections_per_ip: cfg.max_connections_per_ip,
    };
    let version = cfg.node_version.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key.libp2p_keypair())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetioError::Transport(e.to_string()))?
        .with_quic()
        .with_behaviour(move |kp| Behaviour {
            gater: Gater::new(limits),
            gossipsub,
            identify: identify::Behaviour::new(
                identify::Config::new("ipfs/0.1.0".into(), kp.public()).with_agent_version(version),
            ),
            handshake: request_response::Behaviour::new(
                [(
                    StreamProtocol::new(NODE_INFO_PROTOCOL),
                    ProtocolSupport::Full,
                )],
                request_response::Config::default().with_request_timeout(HANDSHAKE_TIMEOUT),
            ),
        })
        .map_err(|e| NetioError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

#[derive(Debug)]
struct PeerState {
    verified: bool,
    connected_at: Instant,
    /// Open connections (at most [`PEER_CONNECTIONS_LISTED_MAX`] remembered).
    connections: Vec<(libp2p::swarm::ConnectionId, PeerConnection)>,
    /// What its handshake advertised (subnets hex, node version).
    metadata: Option<NodeMetadata>,
}

struct Worker {
    swarm: Swarm<Behaviour>,
    // Derived once: deriving a public key is an elliptic-curve multiplication.
    keypair: libp2p::identity::Keypair,
    local_peer_id: PeerId,
    cfg: NetworkConfig,
    network_id: String,
    discv5: Arc<Discv5>,
    targets: Arc<Mutex<DiscoveryTargets>>,
    discovered_rx: tokio::sync::mpsc::Receiver<DiscoveredPeer>,
    router: ShardRouter,
    subscribed: Subnets,
    sealed_info: Vec<u8>,
    peers: HashMap<PeerId, PeerState>,
    // Peers that failed the handshake, disconnected at the next maintenance tick.
    rejected: HashSet<PeerId>,
    app_scores: HashMap<PeerId, AppScore>,
    rates: PeerRates,
    discovered: HashSet<PeerId>,
    events: async_channel::Sender<NetworkEvent>,
    dropped_events: Arc<AtomicU64>,
    published: u64,
    publish_errors: u64,
    last_app_decay: Instant,
}

type Ready = (PeerId, Enr, Vec<Multiaddr>);

impl Worker {
    async fn start(
        cfg: NetworkConfig,
        key: NetworkKey,
        router: ShardRouter,
        events: async_channel::Sender<NetworkEvent>,
    ) -> Result<(Worker, Ready), NetioError> {
        let mut swarm = build_swarm(&key, &cfg)?;
        let tcp_addr = Multiaddr::empty()
            .with(Protocol::Ip4(cfg.ip))
            .with(Protocol::Tcp(cfg.tcp_port));
        swarm
            .listen_on(tcp_addr)
            .map_err(|e| NetioError::Transport(e.to_string()))?;
        if let Some(port) = cfg.quic_port {
            let quic_addr = Multiaddr::empty()
                .with(Protocol::Ip4(cfg.ip))
                .with(Protocol::Udp(port))
                .with(Protocol::QuicV1);
            swarm
                .listen_on(quic_addr)
                .map_err(|e| NetioError::Transport(e.to_string()))?;
        }
        // Learn the bound ports (port 0 picks one) before writing them into the ENR.
        let (mut tcp_port, mut quic_port) = (None, None);
        let mut listen_addrs = vec![];
        let deadline = tokio::time::sleep(LISTEN_TIMEOUT);
        tokio::pin!(deadline);
        while tcp_port.is_none() || (cfg.quic_port.is_some() && quic_port.is_none()) {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        for p in address.iter() {
                            match p {
                                Protocol::Tcp(port) => tcp_port = Some(port),
                                Protocol::QuicV1 => {
                                    quic_port = address.iter().find_map(|p| match p {
                                        Protocol::Udp(port) => Some(port),
                                        _ => None,
                                    });
                                }
                                _ => {}
                            }
                        }
                        listen_addrs.push(address);
                    }
                    SwarmEvent::ListenerError { error, .. } => return Err(NetioError::Transport(error.to_string())),
                    SwarmEvent::ListenerClosed { reason: Err(error), .. } => return Err(NetioError::Transport(error.to_string())),
                    _ => {}
                },
                _ = &mut deadline => return Err(NetioError::Transport("listeners did not come up".into())),
            }
        }
        let udp_port = if cfg.udp_port == 0 {
            free_udp_port(cfg.ip)?
        } else {
            cfg.udp_port
        };
        let advertised_ip = if cfg.ip.is_unspecified() {
            Ipv4Addr::LOCALHOST
        } else {
            cfg.ip
        };
        let record = LocalRecord {
            ip: advertised_ip,
            udp_port,
            tcp_port,
            quic_port,
            domain_type: Some(cfg.domain_type),
            next_domain_type: cfg.next_domain_type,
            subnets: Some(cfg.subnets),
        };
        let discv5 = Arc::new(start_discv5(&key, &record, &cfg.bootnodes).await?);
        let targets = Arc::new(Mutex::new(DiscoveryTargets {
            needy: cfg.subnets,
            want_peers: true,
        }));
        let (disc_tx, discovered_rx) = tokio::sync::mpsc::channel(DISCOVERED_QUEUE_MAX);
        tokio::spawn(run_discovery(
            discv5.clone(),
            cfg.domain_type,
            targets.clone(),
            disc_tx,
            cfg.discovery_interval,
        ));
        let peer_id = key.peer_id();
        let mut worker = Worker {
            swarm,
            network_id: crate::spec::network_id(cfg.domain_type),
            keypair: key.libp2p_keypair(),
            local_peer_id: peer_id,
            discv5,
            targets,
            discovered_rx,
            router,
            subscribed: Subnets::NONE,
            sealed_info: vec![],
            peers: HashMap::new(),
            rejected: HashSet::new(),
            app_scores: HashMap::new(),
            rates: PeerRates::new(cfg.peer_rate_limits),
            discovered: HashSet::new(),
            events,
            dropped_events: Arc::new(AtomicU64::new(0)),
            published: 0,
            publish_errors: 0,
            last_app_decay: Instant::now(),
            cfg,
        };
        let initial = worker.cfg.subnets;
        for s in initial.iter() {
            worker.subscribe(s)?;
        }
        worker.reseal()?;
        let enr = worker.discv5.local_enr();
        Ok((worker, (peer_id, enr, listen_addrs)))
    }

    async fn run(mut self, commands: async_channel::Receiver<Command>) {
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = commands.recv() => {
                    let Ok(cmd) = cmd else { break };
                    if !self.on_command(cmd) { break; }
                    // Drain a bounded batch so a burst of reports costs one wake-up.
                    for _ in 0..COMMAND_BATCH_MAX {
                        match commands.try_recv() {
                            Ok(cmd) => if !self.on_command(cmd) { return; },
                            Err(_) => break,
                        }
                    }
                }
                Some(peer) = self.discovered_rx.recv() => self.on_discovered(peer),
                _ = tick.tick() => self.maintenance(),
            }
        }
    }

    fn emit(&self, event: NetworkEvent) {
        if self.events.try_send(event).is_err() {
            self.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn reseal(&mut self) -> Result<(), NetioError> {
        let info = NodeInfo {
            network_id: self.network_id.clone(),
            metadata: Some(NodeMetadata {
                node_version: self.cfg.node_version.clone(),
                subnets: self.subscribed.to_hex(),
                committee_subnets: true,
                ..Default::default()
            }),
        };
        self.sealed_info = info.seal(&self.keypair)?;
        Ok(())
    }

    fn update_enr_subnets(&mut self) -> Result<(), NetioError> {
        self.discv5
            .enr_insert(
                crate::discovery::ENR_KEY_SUBNETS,
                &self.subscribed.to_enr_bytes(),
            )
            .map_err(|e| NetioError::Enr(e.to_string()))?;
        self.reseal()
    }

    fn subscribe(&mut self, subnet: Subnet) -> Result<(), NetioError> {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&IdentTopic::new(topic_name(subnet)))
            .map_err(|e| NetioError::Gossipsub(e.to_string()))?;
        if self.subscribed.insert(subnet) {
            self.update_enr_subnets()?;
        }
        Ok(())
    }

    fn unsubscribe(&mut self, subnet: Subnet) -> Result<(), NetioError> {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .unsubscribe(&IdentTopic::new(topic_name(subnet)));
        if self.subscribed.remove(subnet) {
            self.update_enr_subnets()?;
        }
        Ok(())
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, result: ValidationResult) {
        let acceptance = match result {
            ValidationResult::Accept => MessageAcceptance::Accept,
            ValidationResult::Reject => MessageAcceptance::Reject,
            ValidationResult::Ignore => MessageAcceptance::Ignore,
        };
        let gs = &mut self.swarm.behaviour_mut().gossipsub;
        gs.report_message_validation_result(id, source, acceptance);
        if result != ValidationResult::Ignore {
            let score = self.app_scores.entry(*source).or_default().apply(result);
            gs.set_application_score(source, score);
        }
    }

    /// Returns false on shutdown.
    fn on_command(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Publish {
                subnet,
                data,
                reply,
            } => {
                let res = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(IdentTopic::new(topic_name(subnet)), data);
                // A message gossip already carried (QBFT relays the decided message it
                // learnt a decision from) is not a failure: the network has it.
                let duplicate = matches!(res, Err(gossipsub::PublishError::Duplicate));
                let res = res.map_err(|e| NetioError::Publish(e.to_string()));
                match &res {
                    Ok(_) => self.published += 1,
                    Err(_) if duplicate => {}
                    Err(e) => {
                        self.publish_errors += 1;
                        tracing::debug!(%subnet, error = %e, "publish failed");
                    }
                }
                if let Some(reply) = reply {
                    let _ = reply.send(res);
                }
            }
            Command::Report { id, source, result } => self.report(&id, &source, result),
            Command::Subscribe(s, reply) => {
                if let Err(e) = self.subscribe(s) {
                    tracing::warn!(subnet = %s, error = %e, "subscribe failed");
                }
                let _ = reply.send(());
            }
            Command::Unsubscribe(s, reply) => {
                if let Err(e) = self.unsubscribe(s) {
                    tracing::warn!(subnet = %s, error = %e, "unsubscribe failed");
                }
                let _ = reply.send(());
            }
            Command::SetTopicRate(s, rate) => {
                let topic = IdentTopic::new(topic_name(s));
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_topic_params(topic, topic_score_params(rate));
            }
            Command::Dial(enr) => {
                if let Some(peer) = accept_record(&enr, self.cfg.domain_type).or_else(|| {
                    // Static peers of another network are dialed anyway: the handshake decides.
                    let peer_id = crate::discovery::enr_peer_id(&enr).ok()?;
                    Some(DiscoveredPeer {
                        enr: enr.clone(),
                        peer_id,
                        subnets: Subnets::NONE,
                    })
                }) {
                    self.dial(&peer);
                }
            }
            Command::PeerScore(p, reply) => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&p));
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.behaviour().gater.peers().copied().collect());
            }
            Command::PeerInfos(reply) => {
                let mut infos: Vec<PeerInfo> = self
                    .peers
                    .iter()
                    .map(|(id, state)| PeerInfo {
                        id: *id,
                        connections: state.connections.iter().map(|(_, c)| c.clone()).collect(),
                        verified: state.verified,
                        subnets: state.metadata.as_ref().map(|m| m.subnets.clone()),
                        version: state.metadata.as_ref().map(|m| m.node_version.clone()),
                    })
                    .collect();
                infos.sort_by_key(|p| p.id.to_bytes());
                let _ = reply.send(infos);
            }
            Command::PeersByTopic(reply) => {
                let mut by_topic: std::collections::BTreeMap<String, Vec<PeerId>> =
                    std::collections::BTreeMap::new();
                for (peer, topics) in self.swarm.behaviour().gossipsub.all_peers() {
                    for t in topics {
                        by_topic.entry(t.to_string()).or_default().push(*peer);
                    }
                }
                let _ = reply.send(by_topic.into_iter().collect());
            }
            Command::TopicPeers(s, reply) => {
                let topic = IdentTopic::new(topic_name(s)).hash();
                let n = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&topic))
                    .count();
                let _ = reply.send(n);
            }
            Command::Stats(reply) => {
                let _ = reply.send(NetworkStats {
                    connected_peers: self.swarm.behaviour().gater.connected_peers(),
                    verified_peers: self.peers.values().filter(|p| p.verified).count(),
                    discovered_peers: self.discovered.len(),
                    subscribed: self.subscribed,
                    published: self.published,
                    publish_errors: self.publish_errors,
                    dropped_events: self.dropped_events.load(Ordering::Relaxed),
                    rate_limited: self.rates.limited,
                    shards: self.router.stats(),
                });
            }
            Command::LocalEnr(reply) => {
                let _ = reply.send(self.discv5.local_enr());
            }
            Command::Shutdown => return false,
        }
        true
    }

    fn dial(&mut self, peer: &DiscoveredPeer) {
        let Some(addr) = enr_multiaddr(&peer.enr, self.cfg.dial_quic) else {
            return;
        };
        let opts = DialOpts::peer_id(peer.peer_id)
            .addresses(vec![addr])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(peer = %peer.peer_id, error = %e, "dial refused");
        }
    }

    fn on_discovered(&mut self, peer: DiscoveredPeer) {
        if peer.peer_id == self.local_peer_id {
            return;
        }
        if self.discovered.len() < DISCOVERED_PEERS_MAX && self.discovered.insert(peer.peer_id) {
            self.emit(NetworkEvent::Discovered(peer.peer_id));
        }
        let gater = &self.swarm.behaviour().gater;
        if gater.is_connected(&peer.peer_id)
            || gater.ban_of(&peer.peer_id, Instant::now()).is_some()
            || gater.at_peer_limit()
        {
            return;
        }
        // Prefer peers sharing our subnets; anyone will do while we have few peers.
        let shares = !peer.subnets.intersection(&self.subscribed).is_empty();
        if !shares && gater.connected_peers() >= self.cfg.min_peers {
            return;
        }
        self.dial(&peer);
    }

    fn drop_peer(&mut self, peer: PeerId, ban: Duration, reason: BanReason) {
        self.swarm
            .behaviour_mut()
            .gater
            .ban(peer, ban, reason, Instant::now());
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn reject_handshake(&mut self, peer: PeerId, reason: String) {
        if self.rejected.contains(&peer) {
            return;
        }
        tracing::debug!(%peer, %reason, "handshake rejected");
        // Ban now, disconnect at the next tick: the in-flight exchange in the other direction
        // gets to finish, so the remote learns why and rejects us too.
        self.swarm.behaviour_mut().gater.ban(
            peer,
            HANDSHAKE_BAN,
            BanReason::Handshake,
            Instant::now(),
        );
        self.rejected.insert(peer);
        self.emit(NetworkEvent::HandshakeRejected { peer, reason });
    }

    fn on_node_info(&mut self, peer: PeerId, bytes: &[u8]) {
        match NodeInfo::consume_from(bytes, &peer) {
            Ok(info) if info.network_id == self.network_id => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.metadata = info.metadata;
                    if !state.verified {
                        state.verified = true;
                        self.emit(NetworkEvent::PeerConnected(peer));
                    }
                }
            }
            Ok(info) => self.reject_handshake(
                peer,
                format!(
                    "mismatching domain type (want {}, got {})",
                    self.network_id, info.network_id
                ),
            ),
            Err(e) => self.reject_handshake(peer, e.to_string()),
        }
    }

    fn on_message(
        &mut self,
        propagation_source: PeerId,
        id: MessageId,
        message: gossipsub::Message,
    ) {
        if self.rejected.contains(&propagation_source) {
            // A peer of another network, about to be disconnected: nothing it sends is ours.
            self.report(&id, &propagation_source, ValidationResult::Ignore);
            return;
        }
        let Some(subnet) = subnet_from_topic(message.topic.as_str()) else {
            // The subscription filter admits only subnet topics; anything else is invalid.
            self.report(&id, &propagation_source, ValidationResult::Reject);
            return;
        };
        if !self
            .rates
            .allow(propagation_source, message.data.len(), Instant::now())
        {
            tracing::trace!(peer = %propagation_source, "over its rate limit: dropped");
            self.report(&id, &propagation_source, ValidationResult::Ignore);
            return;
        }
        let msg = InboundMessage {
            subnet,
            id,
            propagation_source,
            author: message.source,
            data: message.data,
            received_at: Instant::now(),
        };
        let RouteOutcome { dropped, .. } = self.router.route(msg);
        for m in dropped {
            self.report(&m.id, &m.propagation_source, ValidationResult::Ignore);
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_message(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Handshake(ev)) => match ev {
                request_response::Event::Message { peer, message, .. } => match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        // Answer first, as the Go node does, then judge theirs.
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .handshake
                            .send_response(channel, self.sealed_info.clone());
                        self.on_node_info(peer, &request);
                    }
                    request_response::Message::Response { response, .. } => {
                        self.on_node_info(peer, &response)
                    }
                },
                request_response::Event::OutboundFailure { peer, error, .. } => {
                    let verified = self.peers.get(&peer).is_some_and(|p| p.verified);
                    let closed =
                        matches!(error, request_response::OutboundFailure::ConnectionClosed);
                    if !verified && !closed && self.peers.contains_key(&peer) {
                        self.reject_handshake(peer, format!("handshake failed: {error}"));
                    }
                }
                request_response::Event::InboundFailure { peer, error, .. } => {
                    tracing::debug!(%peer, %error, "inbound handshake failed");
                }
                request_response::Event::ResponseSent { .. } => {}
            },
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                let conn = PeerConnection {
                    address: endpoint.get_remote_address().clone(),
                    outbound: endpoint.is_dialer(),
                };
                if num_established.get() > 1 {
                    if let Some(state) = self.peers.get_mut(&peer_id)
                        && state.connections.len() < PEER_CONNECTIONS_LISTED_MAX
                    {
                        state.connections.push((connection_id, conn));
                    }
                    return;
                }
                self.peers.insert(
                    peer_id,
                    PeerState {
                        verified: false,
                        connected_at: Instant::now(),
                        connections: vec![(connection_id, conn)],
                        metadata: None,
                    },
                );
                // Both sides ask: a Go peer answers any number of requests, and whichever
                // exchange completes first verifies the peer.
                let sealed = self.sealed_info.clone();
                self.swarm
                    .behaviour_mut()
                    .handshake
                    .send_request(&peer_id, sealed);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } if num_established > 0 => {
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.connections.retain(|(id, _)| *id != connection_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.rates.remove(&peer_id);
                if let Some(state) = self.peers.remove(&peer_id)
                    && state.verified
                {
                    self.emit(NetworkEvent::PeerDisconnected(peer_id));
                }
            }
            _ => {}
        }
    }

    fn maintenance(&mut self) {
        let now = Instant::now();
        for peer in std::mem::take(&mut self.rejected) {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        // Graylist: drop and ban peers whose score fell below the threshold.
        let connected: Vec<PeerId> = self.swarm.behaviour().gater.peers().copied().collect();
        for peer in &connected {
            if let Some(score) = self.swarm.behaviour().gossipsub.peer_score(peer)
                && score < GRAYLIST_THRESHOLD
                && self.swarm.behaviour().gater.ban_of(peer, now) != Some(BanReason::Graylisted)
            {
                tracing::info!(%peer, score, "graylisting peer");
                self.drop_peer(*peer, GRAYLIST_BAN, BanReason::Graylisted);
                self.emit(NetworkEvent::Graylisted { peer: *peer, score });
            }
        }
        // Peers that never completed the handshake.
        let stale: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(p, s)| {
                !s.verified
                    && now.duration_since(s.connected_at) > HANDSHAKE_TIMEOUT * 2
                    && !self.rejected.contains(*p)
            })
            .map(|(p, _)| *p)
            .collect();
        for peer in stale {
            self.drop_peer(peer, TRIM_BACKOFF, BanReason::Backoff);
            self.emit(NetworkEvent::HandshakeRejected {
                peer,
                reason: "handshake timed out".into(),
            });
        }
        // Application score decay.
        if now.duration_since(self.last_app_decay) >= APP_SCORE_DECAY_INTERVAL {
            self.last_app_decay = now;
            let gs = &mut self.swarm.behaviour_mut().gossipsub;
            self.app_scores.retain(|peer, s| {
                let v = s.decay();
                gs.set_application_score(peer, v);
                v != 0.0
            });
        }
        self.swarm.behaviour_mut().gater.expire_bans(now);
        // Tell discovery what we are short of.
        let mut per_topic = [0usize; SUBNET_COUNT];
        for (_, topics) in self.swarm.behaviour().gossipsub.all_peers() {
            for t in topics {
                if let Some(s) = subnet_from_topic(t.as_str()) {
                    per_topic[s.index()] += 1;
                }
            }
        }
        let needy = Subnets::from_iter(
            self.subscribed
                .iter()
                .filter(|s| per_topic[s.index()] < SUBNET_PEERS_MIN),
        );
        let want_peers = self.swarm.behaviour().gater.connected_peers() < self.cfg.min_peers;
        *self.targets.lock().expect("discovery targets lock") =
            DiscoveryTargets { needy, want_peers };
    }
}
