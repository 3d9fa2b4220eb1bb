//! Connection gater: a `NetworkBehaviour` with no protocol of its own that refuses connections
//! from graylisted or recently dropped peers, caps connections per remote IP and the number of
//! peers (the Go node's `ConnectionGater`, `network/peers/connections/conn_gater.go`).
//!
//! The swarm loop decides who gets banned (graylist score, failed handshake, trimming) and for
//! how long; the gater enforces it on every inbound and outbound connection attempt.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use libp2p::core::Endpoint;
use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

use crate::error::NetioError;

/// Most bans remembered at once; beyond it the ban closest to expiry is forgotten first.
pub const BANNED_PEERS_MAX: usize = 4096;
/// How long a graylisted peer is refused.
pub const GRAYLIST_BAN: Duration = Duration::from_secs(60 * 60);
/// How long a peer of another network (failed handshake) is refused.
pub const HANDSHAKE_BAN: Duration = Duration::from_secs(30 * 60);
/// How long a peer we dropped for other reasons (trimming, handshake timeout) is refused:
/// the Go node's "trimmed recently" backoff.
pub const TRIM_BACKOFF: Duration = Duration::from_secs(60);

/// Why a peer is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanReason {
    /// Score below the graylist threshold.
    Graylisted,
    /// Handshake failed or showed another network.
    Handshake,
    /// We dropped the peer recently (trimming, timeout); back off before reconnecting.
    Backoff,
}

/// Limits the gater enforces.
#[derive(Clone, Copy, Debug)]
pub struct GaterLimits {
    /// Most distinct connected peers; connections beyond it are refused.
    pub max_peers: usize,
    /// Most established connections from one remote IP address.
    pub max_connections_per_ip: usize,
}

/// The gater behaviour.
#[derive(Debug)]
pub struct Gater {
    limits: GaterLimits,
    bans: HashMap<PeerId, (Instant, BanReason)>,
    conns_per_peer: HashMap<PeerId, usize>,
    conns_per_ip: HashMap<IpAddr, usize>,
    conn_ip: HashMap<ConnectionId, IpAddr>,
}

fn multiaddr_ip(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

fn denied(reason: impl Into<String>) -> ConnectionDenied {
    ConnectionDenied::new(NetioError::Gated(reason.into()))
}

impl Gater {
    /// A gater with these limits and no bans.
    pub fn new(limits: GaterLimits) -> Self {
        Self {
            limits,
            bans: HashMap::new(),
            conns_per_peer: HashMap::new(),
            conns_per_ip: HashMap::new(),
            conn_ip: HashMap::new(),
        }
    }

    /// Refuses `peer` for `duration` from `now`. A longer existing ban is kept.
    pub fn ban(&mut self, peer: PeerId, duration: Duration, reason: BanReason, now: Instant) {
        let until = now + duration;
        if let Some((existing, _)) = self.bans.get(&peer)
            && *existing >= until
        {
            return;
        }
        if self.bans.len() >= BANNED_PEERS_MAX && !self.bans.contains_key(&peer) {
            self.bans.retain(|_, (t, _)| *t > now);
            if self.bans.len() >= BANNED_PEERS_MAX
                && let Some(oldest) = self
                    .bans
                    .iter()
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(p, _)| *p)
            {
                self.bans.remove(&oldest);
            }
        }
        self.bans.insert(peer, (until, reason));
    }

    /// The active ban of `peer`, if any.
    pub fn ban_of(&self, peer: &PeerId, now: Instant) -> Option<BanReason> {
        self.bans
            .get(peer)
            .filter(|(until, _)| *until > now)
            .map(|(_, r)| *r)
    }

    /// Drops expired bans.
    pub fn expire_bans(&mut self, now: Instant) {
        self.bans.retain(|_, (t, _)| *t > now);
    }

    /// Distinct connected peers.
    pub fn connected_peers(&self) -> usize {
        self.conns_per_peer.len()
    }

    /// Connected peers.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.conns_per_peer.keys()
    }

    /// Whether `peer` has at least one connection.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.conns_per_peer.contains_key(peer)
    }

    /// Whether the peer limit is reached.
    pub fn at_peer_limit(&self) -> bool {
        self.conns_per_peer.len() >= self.limits.max_peers
    }

    fn check_ip(&self, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        if let Some(ip) = multiaddr_ip(remote)
            && self.conns_per_ip.get(&ip).copied().unwrap_or(0)
                >= self.limits.max_connections_per_ip
        {
            return Err(denied(format!("too many connections from {ip}")));
        }
        Ok(())
    }

    fn check_peer(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if let Some(reason) = self.ban_of(peer, Instant::now()) {
            return Err(denied(format!("peer {peer} is banned ({reason:?})")));
        }
        if !self.is_connected(peer) && self.at_peer_limit() {
            return Err(denied("peer limit reached"));
        }
        Ok(())
    }
}

impl NetworkBehaviour for Gater {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check_ip(remote)?;
        if self.at_peer_limit() {
            return Err(denied("peer limit reached"));
        }
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_ip(remote)?;
        self.check_peer(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.check_peer(&peer)?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_ip(remote)?;
        self.check_peer(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                *self.conns_per_peer.entry(e.peer_id).or_default() += 1;
                if let Some(ip) = multiaddr_ip(e.endpoint.get_remote_address()) {
                    *self.conns_per_ip.entry(ip).or_default() += 1;
                    self.conn_ip.insert(e.connection_id, ip);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => {
                if let Some(n) = self.conns_per_peer.get_mut(&peer_id) {
                    *n -= 1;
                    if *n == 0 {
                        self.conns_per_peer.remove(&peer_id);
                    }
                }
                if let Some(ip) = self.conn_ip.remove(&connection_id)
                    && let Some(n) = self.conns_per_ip.get_mut(&ip)
                {
                    *n -= 1;
                    if *n == 0 {
                        self.conns_per_ip.remove(&ip);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gater(max_peers: usize, per_ip: usize) -> Gater {
        Gater::new(GaterLimits {
            max_peers,
            max_connections_per_ip: per_ip,
        })
    }

    fn addr(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/1").parse().unwrap()
    }

    fn establish(g: &mut Gater, peer: PeerId, id: usize, ip: &str) {
        let remote = addr(ip);
        g.conns_per_peer
            .entry(peer)
            .and_modify(|n| *n += 1)
            .or_insert(1);
        let ipaddr = multiaddr_ip(&remote).unwrap();
        *g.conns_per_ip.entry(ipaddr).or_default() += 1;
        g.conn_ip.insert(ConnectionId::new_unchecked(id), ipaddr);
    }

    #[test]
    fn banned_peers_are_refused_until_expiry() {
        let mut g = gater(10, 10);
        let p = PeerId::random();
        let now = Instant::now();
        g.ban(p, Duration::from_secs(60), BanReason::Graylisted, now);
        assert!(g.check_peer(&p).is_err());
        assert_eq!(g.ban_of(&p, now + Duration::from_secs(61)), None);
        // A shorter ban does not shorten a longer one.
        g.ban(p, Duration::from_secs(1), BanReason::Backoff, now);
        assert_eq!(
            g.ban_of(&p, now + Duration::from_secs(30)),
            Some(BanReason::Graylisted)
        );
        assert!(g.check_peer(&PeerId::random()).is_ok());
    }

    #[test]
    fn per_ip_and_peer_limits() {
        let mut g = gater(2, 2);
        establish(&mut g, PeerId::random(), 1, "10.0.0.1");
        assert!(g.check_ip(&addr("10.0.0.1")).is_ok());
        let p2 = PeerId::random();
        establish(&mut g, p2, 2, "10.0.0.1");
        assert!(g.check_ip(&addr("10.0.0.1")).is_err());
        assert!(g.check_ip(&addr("10.0.0.2")).is_ok());
        // Two peers connected: a third is refused, an existing one may add a connection.
        assert!(g.check_peer(&PeerId::random()).is_err());
        assert!(g.check_peer(&p2).is_ok());
    }

    #[test]
    fn ban_table_is_bounded() {
        let mut g = gater(10, 10);
        let now = Instant::now();
        for i in 0..BANNED_PEERS_MAX + 10 {
            g.ban(
                PeerId::random(),
                Duration::from_secs(10 + i as u64),
                BanReason::Backoff,
                now,
            );
        }
        assert_eq!(g.bans.len(), BANNED_PEERS_MAX);
    }
}
