//! A hostile peer for the devnet (`--hostile-peer`), and an honest observer that tells
//! whether any of its messages were relayed.
//!
//! The attacker joins the committees' subnets like any node, captures the committees' real
//! messages, and once [`AttackHandle::start`] is called publishes, every [`ROUND`]:
//! - junk: random bytes;
//! - replays with fresh full data: a captured prepare, commit or partial-signature message
//!   carrying 256 KiB of new full data (RSA still valid: the full data is not signed);
//! - bad signatures: a captured message with one signature bit flipped;
//! - fat messages: a captured message carrying 4 MiB of full data.
//!
//! The observer is a second peer of the devnet that validates nothing and relays nothing; it
//! counts the attacker's messages it receives from anyone but the attacker, i.e. the ones an
//! honest node relayed. Every one of them breaks a rule, so the count must stay 0, and the
//! honest nodes' peer scoring must graylist the attacker.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use ssv_netio::{
    DomainType, Enr, Network, NetworkConfig, PeerId, Subnet, Subnets, ValidationResult,
};

/// How often the attacker publishes a batch.
pub const ROUND: Duration = Duration::from_millis(250);
/// Messages of each kind per batch.
const PER_KIND: usize = 2;

/// What the attack did and what came of it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HostileReport {
    /// Messages the attacker published.
    pub published: u64,
    /// Publishes refused (no peer left on the topic: graylisted everywhere).
    pub refused: u64,
    /// The attacker's messages the observer received from an honest node.
    pub relayed: u64,
    /// Messages the observer received from honest nodes (it must be in their meshes for
    /// `relayed` to mean anything).
    pub observed: u64,
    /// Nodes still connected to the attacker at the end (the observer not counted).
    pub attacker_peers_at_end: usize,
}

struct Shared {
    captured: Mutex<Vec<(Subnet, Vec<u8>)>>,
    /// SHA-256 of every message the attacker published.
    sent: Mutex<HashSet<[u8; 32]>>,
    relayed: AtomicU64,
    observed: AtomicU64,
    published: AtomicU64,
    refused: AtomicU64,
    stop: AtomicBool,
    attacking: AtomicBool,
}

/// Starts the attack.
pub struct AttackHandle(Arc<Shared>);

impl AttackHandle {
    /// Starts publishing.
    pub fn start(&self) {
        self.0.attacking.store(true, Ordering::Relaxed);
    }
}

/// The attacker and the observer, running.
pub struct Hostile {
    attacker: Network,
    observer: Network,
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn start_network(domain: DomainType, bootnode: &Enr, subnets: Subnets) -> anyhow::Result<Network> {
    let mut cfg = NetworkConfig::loopback(domain);
    cfg.ip = Ipv4Addr::LOCALHOST;
    cfg.subnets = subnets;
    cfg.min_peers = 1;
    cfg.bootnodes = vec![bootnode.clone()];
    Ok(Network::start(cfg)?)
}

impl Hostile {
    /// Starts both peers on `subnets` of the devnet of `domain` (they find the nodes through
    /// `bootnode`). The attack starts with [`Hostile::attack_handle`].
    pub fn start(domain: DomainType, bootnode: &Enr, subnets: Subnets) -> anyhow::Result<Self> {
        let attacker = start_network(domain, bootnode, subnets)?;
        let observer = start_network(domain, bootnode, subnets)?;
        let shared = Arc::new(Shared {
            captured: Mutex::new(Vec::new()),
            sent: Mutex::new(HashSet::new()),
            relayed: AtomicU64::new(0),
            observed: AtomicU64::new(0),
            published: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            attacking: AtomicBool::new(false),
        });
        let mut threads = Vec::new();
        // The attacker's inbound messages: captured for replays, never relayed.
        for queue in attacker.shards.clone() {
            let handle = attacker.handle.clone();
            let s = shared.clone();
            threads.push(std::thread::spawn(move || {
                futures::executor::block_on(async {
                    while let Some(m) = queue.recv().await {
                        {
                            let mut c = s.captured.lock();
                            if c.len() < 256 {
                                c.push((m.subnet, m.data.clone()));
                            }
                        }
                        let _ = handle.try_report_validation(&m, ValidationResult::Ignore);
                    }
                })
            }));
        }
        let attacker_id = attacker.handle.peer_id();
        for queue in observer.shards.clone() {
            let handle = observer.handle.clone();
            let s = shared.clone();
            threads.push(std::thread::spawn(move || {
                futures::executor::block_on(async {
                    while let Some(m) = queue.recv().await {
                        if m.propagation_source != attacker_id {
                            s.observed.fetch_add(1, Ordering::Relaxed);
                            if s.sent.lock().contains(&digest(&m.data)) {
                                s.relayed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        let _ = handle.try_report_validation(&m, ValidationResult::Ignore);
                    }
                })
            }));
        }
        {
            let handle = attacker.handle.clone();
            let s = shared.clone();
            threads.push(std::thread::spawn(move || {
                attack_loop(&handle, &s, subnets)
            }));
        }
        Ok(Hostile {
            attacker,
            observer,
            shared,
            threads,
        })
    }

    /// What starts the attack (from another task).
    pub fn attack_handle(&self) -> AttackHandle {
        AttackHandle(self.shared.clone())
    }

    /// The attacker's peer ID.
    pub fn attacker_id(&self) -> PeerId {
        self.attacker.handle.peer_id()
    }

    /// Stops both peers and reports.
    pub async fn stop(self) -> HostileReport {
        self.shared.stop.store(true, Ordering::Relaxed);
        // The nodes only: the observer never penalises the attacker.
        let observer = self.observer.handle.peer_id();
        let peers = self
            .attacker
            .handle
            .connected_peers()
            .await
            .map_or(0, |p| p.iter().filter(|p| **p != observer).count());
        let report = HostileReport {
            published: self.shared.published.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            relayed: self.shared.relayed.load(Ordering::Relaxed),
            observed: self.shared.observed.load(Ordering::Relaxed),
            attacker_peers_at_end: peers,
        };
        drop(self.attacker);
        drop(self.observer);
        for t in self.threads {
            let _ = t.join();
        }
        report
    }
}

fn digest(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).into()
}

/// Deterministic filler bytes (xorshift).
fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A captured message with its full data replaced (`None` if it does not decode).
fn with_full_data(data: &[u8], full: Vec<u8>) -> Option<Vec<u8>> {
    let mut m = ssv_protocol::message::SignedSsvMessage::from_ssz(data).ok()?;
    m.full_data = full.try_into().ok()?;
    Some(m.to_ssz())
}

fn with_bad_signature(data: &[u8]) -> Option<Vec<u8>> {
    let mut m = ssv_protocol::message::SignedSsvMessage::from_ssz(data).ok()?;
    let sig = m.signatures.get_mut(0)?;
    *sig.get_mut(100)? ^= 0x01;
    Some(m.to_ssz())
}

fn attack_loop(handle: &ssv_netio::NetworkHandle, s: &Shared, subnets: Subnets) {
    let Some(first_subnet) = subnets.iter().next() else {
        return;
    };
    let mut round = 0u64;
    while !s.stop.load(Ordering::Relaxed) {
        std::thread::sleep(ROUND);
        if !s.attacking.load(Ordering::Relaxed) {
            continue;
        }
        round += 1;
        let captured: Vec<(Subnet, Vec<u8>)> = s.captured.lock().clone();
        let mut batch: Vec<(Subnet, Vec<u8>)> = Vec::new();
        for k in 0..PER_KIND as u64 {
            let seed = round * 16 + k;
            batch.push((first_subnet, filler(300 + (seed as usize % 1700), seed)));
            if captured.is_empty() {
                continue;
            }
            let (subnet, m) = &captured[(seed as usize) % captured.len()];
            if let Some(b) = with_full_data(m, filler(256 << 10, seed ^ 0xf00d)) {
                batch.push((*subnet, b));
            }
            if let Some(b) = with_bad_signature(m) {
                batch.push((*subnet, b));
            }
            if let Some(b) = with_full_data(m, filler(4 << 20, seed ^ 0xfa7)) {
                batch.push((*subnet, b));
            }
        }
        for (subnet, data) in batch {
            s.sent.lock().insert(digest(&data));
            match futures::executor::block_on(handle.publish(subnet, data)) {
                Ok(_) => s.published.fetch_add(1, Ordering::Relaxed),
                Err(_) => s.refused.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}
