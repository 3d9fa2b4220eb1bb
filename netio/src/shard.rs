//! Delivery of inbound gossip to the shards.
//!
//! Every subnet belongs to exactly one shard ([`shard_for`]), and since a committee's messages
//! all travel on its subnet, all state of a committee lives on one core. Each shard has one
//! bounded queue ([`ShardQueue`]) filled by the network thread and drained by the shard (a
//! glommio executor pinned to a core; the queue is an `async-channel`, which any executor can
//! await).
//!
//! **Policy when a queue is full: drop the oldest.** The network thread pops the oldest queued
//! message, reports it to gossipsub as `Ignore` (no penalty for the sender, and gossipsub frees
//! it from its cache), counts it in the shard's `dropped` counter, and queues the new message.
//! Consensus values fresh messages over stale ones, and the network thread never waits on a
//! shard, so one stalled shard cannot hold back the others or the swarm.
//!
//! Queues are bounded in bytes as well as in messages ([`SHARD_QUEUE_BYTES_MAX`] by default):
//! a gossip message may carry up to ~9.5 MB of full data, so a count bound alone would let a
//! flood of fat messages hold gigabytes. The same drop-oldest policy makes room; a message
//! larger than the whole byte bound is dropped itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use libp2p::PeerId;
use libp2p::gossipsub::MessageId;

use crate::error::NetioError;
use crate::spec::Subnet;

/// Default capacity of each shard queue, sized for the burst at a slot start. Back of the
/// envelope for 100,000 validators in committees of 4 (100 validators each, 1,000 committees)
/// on 2 shards, all of a slot's messages from the other operators arriving at once: ~960
/// active committees × 3 operators × ~3.25 messages (proposal 1 in 4, prepare, commit,
/// post-consensus partials) ≈ 9,400; every attester's selection-proof round, 3,125 × 3
/// partials ≈ 9,400; aggregations and contributions ≈ 3,000; ~22,000 a slot, ~11,000 a shard.
/// 32,768 holds three such bursts (or 13-operator committees' one) per shard; at ~1 KB a
/// message that is ~32 MB, under [`SHARD_QUEUE_BYTES_MAX`]. Too small and the burst drops the
/// oldest messages (counted in `ShardStats::dropped`), i.e. duties are missed below the CPU
/// limit.
pub const SHARD_QUEUE_MAX: usize = 32 * 1024;
/// Default byte bound of each shard queue: room for a burst of ordinary traffic (about 1 KB a
/// message) and several full blocks, far below what 8192 messages of ~9.5 MB could take.
pub const SHARD_QUEUE_BYTES_MAX: usize = 64 << 20;
/// Most shards.
pub const SHARDS_MAX: usize = 256;

/// The shard owning `subnet` when there are `shard_count` shards. Pure; `shard_count` ≥ 1.
pub fn shard_for(subnet: Subnet, shard_count: usize) -> usize {
    assert!(shard_count > 0, "shard_count must be at least 1");
    subnet.index() % shard_count
}

/// One gossip message waiting for validation by its shard. The shard must report a result for
/// it (through `NetworkHandle::report_validation`); until then gossipsub does not forward it.
#[derive(Debug)]
pub struct InboundMessage {
    /// The subnet (topic) it arrived on.
    pub subnet: Subnet,
    /// Gossip message ID, to report the validation result.
    pub id: MessageId,
    /// The peer that forwarded it to us, to report the validation result.
    pub propagation_source: PeerId,
    /// The author, when the message carries one.
    pub author: Option<PeerId>,
    /// The message data (an encoded SignedSSVMessage).
    pub data: Vec<u8>,
    /// When the network thread received it.
    pub received_at: Instant,
}

/// Counters of one shard queue.
#[derive(Debug, Default)]
pub struct ShardCounters {
    /// Messages queued for the shard.
    pub delivered: AtomicU64,
    /// Messages dropped because the queue was full (oldest first).
    pub dropped: AtomicU64,
    /// Bytes of message data waiting in the queue.
    pub queued_bytes: AtomicU64,
}

/// A snapshot of one shard's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Messages queued for the shard.
    pub delivered: u64,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
    /// Messages currently waiting in the queue.
    pub queued: usize,
    /// Bytes of message data waiting in the queue.
    pub queued_bytes: u64,
}

/// The receiving end of one shard's queue.
#[derive(Debug, Clone)]
pub struct ShardQueue {
    shard: usize,
    rx: async_channel::Receiver<InboundMessage>,
    counters: Arc<ShardCounters>,
}

impl ShardQueue {
    /// This shard's index.
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Waits for the next message; `None` once the network service has stopped.
    pub async fn recv(&self) -> Option<InboundMessage> {
        let m = self.rx.recv().await.ok()?;
        self.taken(&m);
        Some(m)
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Option<InboundMessage> {
        let m = self.rx.try_recv().ok()?;
        self.taken(&m);
        Some(m)
    }

    fn taken(&self, m: &InboundMessage) {
        self.counters
            .queued_bytes
            .fetch_sub(m.data.len() as u64, Ordering::Relaxed);
    }

    /// Counters of this shard.
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            queued: self.rx.len(),
            queued_bytes: self.counters.queued_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Outcome of routing one message: whether it was queued, and every message (older ones
/// evicted to make room, or the message itself) the caller must report as `Ignore`.
#[derive(Debug)]
pub struct RouteOutcome {
    /// The message is queued.
    pub queued: bool,
    /// Messages dropped: report each as `Ignore`.
    pub dropped: Vec<InboundMessage>,
}

/// The sending side, owned by the network thread.
#[derive(Debug)]
pub struct ShardRouter {
    senders: Vec<async_channel::Sender<InboundMessage>>,
    // Receiver clones used only to evict the oldest message when a queue is full.
    evictors: Vec<async_channel::Receiver<InboundMessage>>,
    counters: Vec<Arc<ShardCounters>>,
    bytes_max: u64,
}

impl ShardRouter {
    /// Creates `shard_count` queues of `capacity` messages and `bytes_max` bytes each.
    pub fn new(
        shard_count: usize,
        capacity: usize,
        bytes_max: usize,
    ) -> Result<(ShardRouter, Vec<ShardQueue>), NetioError> {
        if shard_count == 0 {
            return Err(NetioError::ZeroShards);
        }
        if shard_count > SHARDS_MAX || capacity == 0 || bytes_max == 0 {
            return Err(NetioError::Config(format!(
                "shards must be 1..={SHARDS_MAX} and queue capacity ≥ 1 (got {shard_count}, {capacity})"
            )));
        }
        let mut router = ShardRouter {
            senders: vec![],
            evictors: vec![],
            counters: vec![],
            bytes_max: bytes_max as u64,
        };
        let mut queues = Vec::with_capacity(shard_count);
        for shard in 0..shard_count {
            let (tx, rx) = async_channel::bounded(capacity);
            let counters = Arc::new(ShardCounters::default());
            router.senders.push(tx);
            router.evictors.push(rx.clone());
            router.counters.push(counters.clone());
            queues.push(ShardQueue {
                shard,
                rx,
                counters,
            });
        }
        Ok((router, queues))
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.senders.len()
    }

    /// Queues `msg` on its shard, evicting the oldest messages while the queue is full in
    /// messages or in bytes. Never blocks.
    pub fn route(&self, msg: InboundMessage) -> RouteOutcome {
        let shard = shard_for(msg.subnet, self.senders.len());
        let tx = &self.senders[shard];
        let counters = &self.counters[shard];
        let size = msg.data.len() as u64;
        let mut dropped = Vec::new();
        if size > self.bytes_max {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            dropped.push(msg);
            return RouteOutcome {
                queued: false,
                dropped,
            };
        }
        let evict = |dropped: &mut Vec<InboundMessage>| -> bool {
            match self.evictors[shard].try_recv() {
                Ok(old) => {
                    counters
                        .queued_bytes
                        .fetch_sub(old.data.len() as u64, Ordering::Relaxed);
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    dropped.push(old);
                    true
                }
                Err(_) => false,
            }
        };
        while counters.queued_bytes.load(Ordering::Relaxed) + size > self.bytes_max {
            if !evict(&mut dropped) {
                break;
            }
        }
        // Counted before it is sent, so the shard's subtraction never comes first.
        counters.queued_bytes.fetch_add(size, Ordering::Relaxed);
        let mut msg = msg;
        loop {
            match tx.try_send(msg) {
                Ok(()) => {
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                    return RouteOutcome {
                        queued: true,
                        dropped,
                    };
                }
                Err(async_channel::TrySendError::Full(m)) => {
                    msg = m;
                    // Only the network thread sends and it holds a receiver, so an eviction
                    // always makes room; if none is possible the message is dropped.
                    if !evict(&mut dropped) {
                        break;
                    }
                }
                Err(async_channel::TrySendError::Closed(m)) => {
                    msg = m;
                    break;
                }
            }
        }
        counters.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        counters.dropped.fetch_add(1, Ordering::Relaxed);
        dropped.push(msg);
        RouteOutcome {
            queued: false,
            dropped,
        }
    }

    /// Counters of every shard.
    pub fn stats(&self) -> Vec<ShardStats> {
        self.counters
            .iter()
            .zip(&self.senders)
            .map(|(c, tx)| ShardStats {
                delivered: c.delivered.load(Ordering::Relaxed),
                dropped: c.dropped.load(Ordering::Relaxed),
                queued: tx.len(),
                queued_bytes: c.queued_bytes.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(subnet: usize, tag: u8) -> InboundMessage {
        sized(subnet, tag, 1)
    }

    fn sized(subnet: usize, tag: u8, len: usize) -> InboundMessage {
        InboundMessage {
            subnet: Subnet::new(subnet).unwrap(),
            id: MessageId::new(&[tag]),
            propagation_source: PeerId::random(),
            author: None,
            data: vec![tag; len],
            received_at: Instant::now(),
        }
    }

    #[test]
    fn shard_for_is_pure_and_covers_all_shards() {
        for n in 1..=8 {
            let mut seen = vec![0; n];
            for s in Subnet::all() {
                let k = shard_for(s, n);
                assert_eq!(k, shard_for(s, n));
                seen[k] += 1;
            }
            assert!(seen.iter().all(|&c| c >= 128 / n));
        }
    }

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let (router, queues) = ShardRouter::new(2, 2, 1 << 20).unwrap();
        // Subnets 0 and 2 go to shard 0.
        assert!(router.route(msg(0, 1)).queued);
        assert!(router.route(msg(2, 2)).queued);
        let r = router.route(msg(0, 3));
        assert!(r.queued);
        assert_eq!(r.dropped.len(), 1);
        assert_eq!(r.dropped[0].data, vec![1]);
        // Shard 1 is unaffected.
        let r = router.route(msg(1, 9));
        assert!(r.queued && r.dropped.is_empty());
        let s = router.stats();
        assert_eq!((s[0].delivered, s[0].dropped, s[0].queued), (3, 1, 2));
        assert_eq!((s[1].delivered, s[1].dropped), (1, 0));
        assert_eq!(queues[0].try_recv().unwrap().data, vec![2]);
        assert_eq!(queues[0].try_recv().unwrap().data, vec![3]);
        assert_eq!(queues[1].stats().delivered, 1);
    }

    #[test]
    fn bad_shapes_are_rejected() {
        assert!(matches!(
            ShardRouter::new(0, 1, 1),
            Err(NetioError::ZeroShards)
        ));
        assert!(ShardRouter::new(1, 0, 1).is_err());
        assert!(ShardRouter::new(1, 1, 0).is_err());
        assert!(ShardRouter::new(SHARDS_MAX + 1, 1, 1).is_err());
    }

    /// Fat messages evict older ones by bytes; a message over the whole bound is dropped
    /// itself; the byte count follows what the shard takes.
    #[test]
    fn queues_are_bounded_in_bytes() {
        let (router, queues) = ShardRouter::new(1, 100, 1000).unwrap();
        for t in 0..4 {
            assert!(router.route(sized(0, t, 200)).queued);
        }
        assert_eq!(router.stats()[0].queued_bytes, 800);
        let r = router.route(sized(0, 9, 500));
        assert!(r.queued);
        assert_eq!(
            r.dropped.len(),
            2,
            "two 200-byte messages make room for 500"
        );
        assert_eq!(router.stats()[0].queued_bytes, 900);
        let r = router.route(sized(0, 10, 1001));
        assert!(!r.queued);
        assert_eq!(r.dropped.len(), 1);
        assert_eq!(r.dropped[0].data.len(), 1001);
        let first = queues[0].try_recv().unwrap();
        assert_eq!(first.data.len(), 200);
        assert_eq!(queues[0].stats().queued_bytes, 700);
        assert!(queues[0].stats().queued_bytes <= 1000);
    }
}
