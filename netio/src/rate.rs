//! Per-peer rate limits on inbound gossip, ahead of validation: a token bucket per peer, in
//! messages and in bytes. A peer over its budget has its messages dropped unvalidated and
//! reported `Ignore` (no score penalty: an honest peer relaying a burst is not punished, and
//! gossipsub takes the message from another peer). What the limits protect is the shards'
//! time and the queues' memory: one peer cannot take more than its share of them.
//!
//! The limits (ours; the Go node has none of its own beyond gossipsub's): **2,000 messages/s
//! with bursts of 10,000**, and **16 MiB/s with bursts of 64 MiB**. A mainnet node sees a few
//! thousand messages a second across all its peers, most under 1 KB, and gossipsub delivers
//! each message from the first peer only; a block with blobs is about 1 MB and a handful
//! arrive per slot. So no honest peer comes near either budget, while one peer cannot push a
//! shard past a few thousand validations a second or fill its queue with fat messages faster
//! than the byte bound drains.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;

/// Sustained messages per second per peer.
pub const PEER_MESSAGES_PER_S: f64 = 2_000.0;
/// Burst of messages per peer.
pub const PEER_MESSAGES_BURST: f64 = 10_000.0;
/// Sustained bytes per second per peer.
pub const PEER_BYTES_PER_S: f64 = 16.0 * 1024.0 * 1024.0;
/// Burst of bytes per peer.
pub const PEER_BYTES_BURST: f64 = 64.0 * 1024.0 * 1024.0;

/// One peer's budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerRateLimits {
    /// Sustained messages per second.
    pub messages_per_s: f64,
    /// Burst of messages.
    pub messages_burst: f64,
    /// Sustained bytes per second.
    pub bytes_per_s: f64,
    /// Burst of bytes.
    pub bytes_burst: f64,
}

impl Default for PeerRateLimits {
    fn default() -> Self {
        PeerRateLimits {
            messages_per_s: PEER_MESSAGES_PER_S,
            messages_burst: PEER_MESSAGES_BURST,
            bytes_per_s: PEER_BYTES_PER_S,
            bytes_burst: PEER_BYTES_BURST,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    messages: f64,
    bytes: f64,
    at: Instant,
}

/// Token buckets of every peer.
#[derive(Debug)]
pub struct PeerRates {
    limits: PeerRateLimits,
    buckets: HashMap<PeerId, Bucket>,
    /// Messages dropped over a budget.
    pub limited: u64,
}

impl PeerRates {
    /// Buckets of `limits`.
    pub fn new(limits: PeerRateLimits) -> Self {
        PeerRates {
            limits,
            buckets: HashMap::new(),
            limited: 0,
        }
    }

    /// Whether `peer` may have a message of `bytes` validated at `now` (and takes it from its
    /// budget if so).
    pub fn allow(&mut self, peer: PeerId, bytes: usize, now: Instant) -> bool {
        let l = self.limits;
        let b = self.buckets.entry(peer).or_insert(Bucket {
            messages: l.messages_burst,
            bytes: l.bytes_burst,
            at: now,
        });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.at = now;
        b.messages = (b.messages + dt * l.messages_per_s).min(l.messages_burst);
        b.bytes = (b.bytes + dt * l.bytes_per_s).min(l.bytes_burst);
        let size = bytes as f64;
        if b.messages >= 1.0 && b.bytes >= size {
            b.messages -= 1.0;
            b.bytes -= size;
            true
        } else {
            self.limited += 1;
            false
        }
    }

    /// Forgets a disconnected peer.
    pub fn remove(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
    }

    /// Peers tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flooding_peer_is_limited_and_refills() {
        let mut r = PeerRates::new(PeerRateLimits::default());
        let p = PeerId::random();
        let t = Instant::now();
        let allowed = (0..20_000).filter(|_| r.allow(p, 100, t)).count();
        assert_eq!(allowed, PEER_MESSAGES_BURST as usize);
        assert_eq!(r.limited, 10_000);
        // Another peer has its own budget.
        assert!(r.allow(PeerId::random(), 100, t));
        // A second later, 2,000 more.
        let later = t + Duration::from_secs(1);
        let allowed = (0..5_000).filter(|_| r.allow(p, 100, later)).count();
        assert_eq!(allowed, PEER_MESSAGES_PER_S as usize);
    }

    #[test]
    fn fat_messages_spend_the_byte_budget() {
        let mut r = PeerRates::new(PeerRateLimits::default());
        let p = PeerId::random();
        let t = Instant::now();
        let fat = 8 << 20;
        let allowed = (0..20).filter(|_| r.allow(p, fat, t)).count();
        assert_eq!(allowed, 8, "64 MiB of burst holds eight 8 MiB messages");
        assert!(!r.allow(p, 100, t), "the byte budget is spent");
        assert!(
            r.allow(p, 100, t + Duration::from_millis(10)),
            "10 ms refill 160 KiB"
        );
    }
}
