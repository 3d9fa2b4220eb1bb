//! discv5 discovery with the SSV ENR entries, subnet-aware peer search, and the bootnode.
//!
//! ENR entries (Go `network/records/entries.go`): `domaintype` and `next_domaintype` are 4-byte
//! RLP strings, `subnets` is the 16-byte bitvector of [`Subnets`]. discv5 runs with the SSV
//! protocol ID `ssvdv5`. A node accepts a discovered record when its `domaintype` or
//! `next_domaintype` equals ours and it advertises a TCP port; it prefers records that share
//! the subnets we are short of peers on ([`DiscoveryTargets`]).

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use discv5::{ConfigBuilder, Discv5, Enr, ListenConfig, ProtocolIdentity};
use enr::{CombinedKey, EnrPublicKey, NodeId};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::error::NetioError;
use crate::keys::NetworkKey;
use crate::spec::{DISCOVERY_PROTOCOL_ID, DISCOVERY_PROTOCOL_VERSION, DomainType};
use crate::subnets::Subnets;

/// ENR key of the domain type.
pub const ENR_KEY_DOMAIN_TYPE: &str = "domaintype";
/// ENR key of the next (upcoming fork) domain type.
pub const ENR_KEY_NEXT_DOMAIN_TYPE: &str = "next_domaintype";
/// ENR key of the subnets bitvector.
pub const ENR_KEY_SUBNETS: &str = "subnets";
/// ENR key of the QUIC port (as Ethereum consensus clients use it).
pub const ENR_KEY_QUIC: &str = "quic";

/// Most records one discovery query returns.
pub const DISCOVERY_QUERY_PEERS_MAX: usize = 16;
/// Longest pause between discovery queries when they stop finding new records.
pub const DISCOVERY_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Most node IDs remembered to tell new records from known ones.
pub const DISCOVERY_KNOWN_MAX: usize = 16 * 1024;
/// Capacity of the queue of discovered records towards the swarm loop; when full, new records
/// are dropped (the next query finds them again).
pub const DISCOVERED_QUEUE_MAX: usize = 256;

/// The SSV discv5 protocol identity.
pub fn protocol_identity() -> ProtocolIdentity {
    ProtocolIdentity {
        protocol_id: DISCOVERY_PROTOCOL_ID,
        protocol_version: DISCOVERY_PROTOCOL_VERSION,
    }
}

/// What to put in our ENR.
#[derive(Clone, Debug)]
pub struct LocalRecord {
    /// Advertised IPv4 address.
    pub ip: Ipv4Addr,
    /// discv5 UDP port.
    pub udp_port: u16,
    /// libp2p TCP port; `None` for a bootnode.
    pub tcp_port: Option<u16>,
    /// libp2p QUIC port, if QUIC listens.
    pub quic_port: Option<u16>,
    /// Our domain type; `None` for a bootnode.
    pub domain_type: Option<DomainType>,
    /// Domain type of the next fork, if one is scheduled.
    pub next_domain_type: Option<DomainType>,
    /// Subscribed subnets; `None` for a bootnode.
    pub subnets: Option<Subnets>,
}

/// Builds and signs our ENR.
pub fn build_enr(key: &CombinedKey, rec: &LocalRecord) -> Result<Enr, NetioError> {
    let mut b = Enr::builder();
    b.ip4(rec.ip).udp4(rec.udp_port);
    if let Some(tcp) = rec.tcp_port {
        b.tcp4(tcp);
    }
    if let Some(quic) = rec.quic_port {
        b.add_value(ENR_KEY_QUIC, &quic);
    }
    if let Some(d) = rec.domain_type {
        b.add_value(ENR_KEY_DOMAIN_TYPE, &d.0);
    }
    if let Some(d) = rec.next_domain_type {
        b.add_value(ENR_KEY_NEXT_DOMAIN_TYPE, &d.0);
    }
    if let Some(s) = rec.subnets {
        b.add_value(ENR_KEY_SUBNETS, &s.to_enr_bytes());
    }
    b.build(key).map_err(|e| NetioError::Enr(e.to_string()))
}

/// Decodes an RLP byte string of at most 55 bytes and checks nothing trails it.
fn rlp_short_bytes(raw: &[u8]) -> Option<&[u8]> {
    let (&first, rest) = raw.split_first()?;
    match first {
        0x00..=0x7f if rest.is_empty() => Some(&raw[..1]),
        0x80..=0xb7 => {
            let len = usize::from(first - 0x80);
            (rest.len() == len).then_some(rest)
        }
        _ => None,
    }
}

fn read_domain(enr: &Enr, key: &str) -> Result<Option<DomainType>, NetioError> {
    match enr.get_raw_rlp(key) {
        None => Ok(None),
        Some(raw) => {
            let bytes = rlp_short_bytes(raw)
                .ok_or_else(|| NetioError::InvalidEnr(format!("{key} is not an RLP string")))?;
            let arr: [u8; 4] = bytes
                .try_into()
                .map_err(|_| NetioError::InvalidEnr(format!("{key} is not 4 bytes")))?;
            Ok(Some(DomainType(arr)))
        }
    }
}

/// The SSV fields of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SsvRecord {
    /// `domaintype`.
    pub domain_type: Option<DomainType>,
    /// `next_domaintype`.
    pub next_domain_type: Option<DomainType>,
    /// `subnets`.
    pub subnets: Option<Subnets>,
}

impl SsvRecord {
    /// Reads the SSV entries; malformed entries are errors, absent ones are `None`.
    pub fn read(enr: &Enr) -> Result<Self, NetioError> {
        let subnets = match enr.get_raw_rlp(ENR_KEY_SUBNETS) {
            None => None,
            Some(raw) => Some(
                rlp_short_bytes(raw)
                    .and_then(Subnets::from_enr_bytes)
                    .ok_or_else(|| NetioError::InvalidEnr("subnets is not 16 bytes".into()))?,
            ),
        };
        Ok(Self {
            domain_type: read_domain(enr, ENR_KEY_DOMAIN_TYPE)?,
            next_domain_type: read_domain(enr, ENR_KEY_NEXT_DOMAIN_TYPE)?,
            subnets,
        })
    }

    /// Whether the record belongs to our network (current or next domain type).
    pub fn matches_domain(&self, ours: DomainType) -> bool {
        self.domain_type == Some(ours) || self.next_domain_type == Some(ours)
    }
}

/// The libp2p peer ID of a record's secp256k1 key.
pub fn enr_peer_id(enr: &Enr) -> Result<PeerId, NetioError> {
    let encoded = enr.public_key().encode();
    let pk = libp2p::identity::secp256k1::PublicKey::try_from_bytes(&encoded)
        .map_err(|e| NetioError::InvalidEnr(format!("not a secp256k1 key: {e}")))?;
    Ok(libp2p::identity::PublicKey::from(pk).to_peer_id())
}

/// Dial address of a record: TCP, or QUIC when `prefer_quic` and the record has a QUIC port.
pub fn enr_multiaddr(enr: &Enr, prefer_quic: bool) -> Option<Multiaddr> {
    let ip = enr.ip4()?;
    if prefer_quic && let Some(Ok(port)) = enr.get_decodable::<u16>(ENR_KEY_QUIC) {
        return Some(
            Multiaddr::empty()
                .with(Protocol::Ip4(ip))
                .with(Protocol::Udp(port))
                .with(Protocol::QuicV1),
        );
    }
    let port = enr.tcp4()?;
    Some(
        Multiaddr::empty()
            .with(Protocol::Ip4(ip))
            .with(Protocol::Tcp(port)),
    )
}

/// A record that passed the domain filter, ready to dial.
#[derive(Clone, Debug)]
pub struct DiscoveredPeer {
    /// The record.
    pub enr: Enr,
    /// Its peer ID.
    pub peer_id: PeerId,
    /// Its subnets (empty when absent).
    pub subnets: Subnets,
}

/// Checks a discovered record: our domain, a valid key, a dial address.
pub fn accept_record(enr: &Enr, ours: DomainType) -> Option<DiscoveredPeer> {
    let rec = SsvRecord::read(enr).ok()?;
    if !rec.matches_domain(ours) {
        return None;
    }
    enr.tcp4()?;
    let peer_id = enr_peer_id(enr).ok()?;
    Some(DiscoveredPeer {
        enr: enr.clone(),
        peer_id,
        subnets: rec.subnets.unwrap_or_default(),
    })
}

/// What the swarm loop wants discovery to look for, updated every maintenance tick.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscoveryTargets {
    /// Our subnets that have too few peers: prefer records sharing them.
    pub needy: Subnets,
    /// Whether we are below the peer target at all (search even without needy subnets).
    pub want_peers: bool,
}

/// discv5 configuration for SSV.
pub fn discv5_config(ip: Ipv4Addr, udp_port: u16) -> discv5::Config {
    ConfigBuilder::new(ListenConfig::Ipv4 { ip, port: udp_port })
        .protocol_identity(protocol_identity())
        .request_timeout(Duration::from_secs(2))
        .query_timeout(Duration::from_secs(10))
        .build()
}

/// Starts discv5 on the current tokio runtime with our record and the bootnodes.
pub async fn start_discv5(
    key: &NetworkKey,
    rec: &LocalRecord,
    bootnodes: &[Enr],
) -> Result<Discv5, NetioError> {
    let enr_key = key.enr_key();
    let enr = build_enr(&enr_key, rec)?;
    let mut discv5 = Discv5::new(enr, enr_key, discv5_config(rec.ip, rec.udp_port))
        .map_err(|e| NetioError::Discovery(e.to_string()))?;
    discv5
        .start()
        .await
        .map_err(|e| NetioError::Discovery(e.to_string()))?;
    for boot in bootnodes {
        discv5
            .add_enr(boot.clone())
            .map_err(|e| NetioError::Discovery(format!("bootnode rejected: {e}")))?;
    }
    Ok(discv5)
}

/// The discovery task: runs predicate queries while the swarm wants peers (every `interval`,
/// backing off when nothing new turns up), and forwards accepted records, also those discv5
/// reports on its own. Exits when the receiver is dropped.
pub async fn run_discovery(
    discv5: Arc<Discv5>,
    domain: DomainType,
    targets: Arc<Mutex<DiscoveryTargets>>,
    out: tokio::sync::mpsc::Sender<DiscoveredPeer>,
    interval: Duration,
) {
    let mut events = match discv5.event_stream().await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "discv5 event stream unavailable");
            return;
        }
    };
    // Query every `interval` while records keep turning up; when a query brings nothing new,
    // wait twice as long, up to DISCOVERY_BACKOFF_MAX, so a settled node stops spending CPU on
    // lookups (every record in a NODES response costs an ECDSA verification).
    let mut delay = interval;
    let mut known: HashSet<NodeId> = HashSet::new();
    let mut last_targets = (Subnets::NONE, false);
    let next = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(next);
    let forward = |enr: &Enr| -> bool {
        if let Some(peer) = accept_record(enr, domain) {
            match out.try_send(peer) {
                Ok(()) | Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        true
    };
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(discv5::Event::Discovered(enr)) | Some(discv5::Event::SessionEstablished(enr, _)) => {
                    if !forward(&enr) { return; }
                }
                Some(_) => {}
                None => return,
            },
            _ = &mut next => {
                if out.is_closed() { return; }
                let t = *targets.lock().expect("discovery targets lock");
                if (t.needy, t.want_peers) != last_targets {
                    last_targets = (t.needy, t.want_peers);
                    delay = interval;
                }
                next.as_mut().reset(tokio::time::Instant::now() + delay);
                if !t.want_peers && t.needy.is_empty() {
                    continue;
                }
                let needy = t.needy;
                let predicate = Box::new(move |enr: &Enr| match SsvRecord::read(enr) {
                    Ok(rec) if rec.matches_domain(domain) => {
                        needy.is_empty()
                            || !rec.subnets.unwrap_or_default().intersection(&needy).is_empty()
                    }
                    _ => false,
                });
                let query = discv5.find_node_predicate(NodeId::random(), predicate, DISCOVERY_QUERY_PEERS_MAX);
                match query.await {
                    Ok(found) => {
                        let mut fresh = false;
                        for enr in &found {
                            if known.len() < DISCOVERY_KNOWN_MAX {
                                fresh |= known.insert(enr.node_id());
                            }
                            if !forward(enr) { return; }
                        }
                        delay = if fresh { interval } else { (delay * 2).min(DISCOVERY_BACKOFF_MAX) };
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "discovery query failed");
                        delay = (delay * 2).min(DISCOVERY_BACKOFF_MAX);
                    }
                }
                next.as_mut().reset(tokio::time::Instant::now() + delay);
            }
        }
    }
}

/// A discovery-only node: discv5 with a plain record, no libp2p host. It runs on its own
/// thread with a one-thread tokio runtime and stops when dropped.
pub struct Bootnode {
    enr: Enr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Bootnode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootnode")
            .field("enr", &self.enr.to_base64())
            .finish()
    }
}

impl Bootnode {
    /// Starts a bootnode on `ip:udp_port` (0 picks a free port).
    pub fn start(key: NetworkKey, ip: Ipv4Addr, udp_port: u16) -> Result<Bootnode, NetioError> {
        let udp_port = if udp_port == 0 {
            free_udp_port(ip)?
        } else {
            udp_port
        };
        let rec = LocalRecord {
            ip,
            udp_port,
            tcp_port: None,
            quic_port: None,
            domain_type: None,
            next_domain_type: None,
            subnets: None,
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ssv-bootnode".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(NetioError::Discovery(e.to_string())));
                        return;
                    }
                };
                rt.block_on(async move {
                    match start_discv5(&key, &rec, &[]).await {
                        Ok(discv5) => {
                            let _ = ready_tx.send(Ok(discv5.local_enr()));
                            let _ = stop_rx.await;
                            drop(discv5);
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| NetioError::Discovery(e.to_string()))?;
        let enr = ready_rx
            .recv()
            .map_err(|_| NetioError::Discovery("bootnode thread died".into()))??;
        Ok(Bootnode {
            enr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The bootnode's record, to hand to nodes.
    pub fn enr(&self) -> &Enr {
        &self.enr
    }
}

impl Drop for Bootnode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Finds a free UDP port by binding port 0 and releasing it. Racy by nature; only for tests,
/// examples and "pick any port" configurations.
pub fn free_udp_port(ip: Ipv4Addr) -> Result<u16, NetioError> {
    let sock = std::net::UdpSocket::bind(SocketAddr::from((ip, 0)))
        .map_err(|e| NetioError::Discovery(format!("cannot bind UDP on {ip}: {e}")))?;
    sock.local_addr()
        .map(|a| a.port())
        .map_err(|e| NetioError::Discovery(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Subnet;

    fn record(domain: DomainType, subnets: Subnets) -> (NetworkKey, Enr) {
        let key = NetworkKey::generate();
        let rec = LocalRecord {
            ip: Ipv4Addr::LOCALHOST,
            udp_port: 12001,
            tcp_port: Some(13001),
            quic_port: Some(13002),
            domain_type: Some(domain),
            next_domain_type: Some(DomainType::HOODI),
            subnets: Some(subnets),
        };
        let enr = build_enr(&key.enr_key(), &rec).unwrap();
        (key, enr)
    }

    #[test]
    fn ssv_entries_round_trip_through_base64() {
        let subnets = Subnets::from_iter([Subnet::new(3).unwrap(), Subnet::new(127).unwrap()]);
        let (key, enr) = record(DomainType::MAINNET, subnets);
        let parsed: Enr = enr.to_base64().parse().unwrap();
        let rec = SsvRecord::read(&parsed).unwrap();
        assert_eq!(rec.domain_type, Some(DomainType::MAINNET));
        assert_eq!(rec.next_domain_type, Some(DomainType::HOODI));
        assert_eq!(rec.subnets, Some(subnets));
        // The raw entries are RLP strings of 4 and 16 bytes, as go-ethereum writes []byte.
        assert_eq!(
            parsed.get_raw_rlp(ENR_KEY_DOMAIN_TYPE).unwrap(),
            &[0x84, 0, 0, 0, 1]
        );
        assert_eq!(parsed.get_raw_rlp(ENR_KEY_SUBNETS).unwrap()[0], 0x90);
        assert_eq!(enr_peer_id(&parsed).unwrap(), key.peer_id());
        assert_eq!(
            enr_multiaddr(&parsed, false).unwrap().to_string(),
            "/ip4/127.0.0.1/tcp/13001"
        );
        assert_eq!(
            enr_multiaddr(&parsed, true).unwrap().to_string(),
            "/ip4/127.0.0.1/udp/13002/quic-v1"
        );
    }

    #[test]
    fn domain_filter() {
        let (_, enr) = record(DomainType::MAINNET, Subnets::NONE);
        assert!(accept_record(&enr, DomainType::MAINNET).is_some());
        // Accepted through next_domaintype too.
        assert!(accept_record(&enr, DomainType::HOODI).is_some());
        assert!(accept_record(&enr, DomainType::HOLESKY).is_none());
    }

    #[test]
    fn malformed_entries_are_errors() {
        let key = NetworkKey::generate().enr_key();
        let mut b = Enr::builder();
        b.ip4(Ipv4Addr::LOCALHOST)
            .udp4(1)
            .add_value(ENR_KEY_DOMAIN_TYPE, &[1u8, 2, 3]);
        b.add_value(ENR_KEY_SUBNETS, &[0u8; 15]);
        let enr = b.build(&key).unwrap();
        assert!(SsvRecord::read(&enr).is_err());
        assert_eq!(rlp_short_bytes(&[0x83, 1, 2]), None);
        assert_eq!(rlp_short_bytes(&[0x05]), Some(&[0x05][..]));
        assert_eq!(rlp_short_bytes(&[]), None);
        assert_eq!(rlp_short_bytes(&[0xc0]), None);
    }
}
