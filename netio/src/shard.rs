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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use libp2p::PeerId;
use libp2p::gossipsub::MessageId;

use crate::error::NetioError;
use crate::spec::Subnet;

/// Default capacity of each shard queue. At ~15 messages per committee duty and a few thousand
/// committees per slot on a busy node, this holds a few seconds of traffic for one shard.
pub const SHARD_QUEUE_MAX: usize = 8192;
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
        self.rx.recv().await.ok()
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Option<InboundMessage> {
        self.rx.try_recv().ok()
    }

    /// Counters of this shard.
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            queued: self.rx.len(),
        }
    }
}

/// Outcome of routing one message.
#[derive(Debug)]
pub enum RouteOutcome {
    /// Queued without loss.
    Queued,
    /// Queued after evicting this older message, which the caller must report as `Ignore`.
    QueuedEvicting(Box<InboundMessage>),
    /// The shard's queue is closed: the message (and any evicted one) comes back to the caller,
    /// which must report them as `Ignore`.
    Closed(Box<InboundMessage>, Option<Box<InboundMessage>>),
}

/// The sending side, owned by the network thread.
#[derive(Debug)]
pub struct ShardRouter {
    senders: Vec<async_channel::Sender<InboundMessage>>,
    // Receiver clones used only to evict the oldest message when a queue is full.
    evictors: Vec<async_channel::Receiver<InboundMessage>>,
    counters: Vec<Arc<ShardCounters>>,
}

impl ShardRouter {
    /// Creates `shard_count` queues of `capacity` messages each.
    pub fn new(
        shard_count: usize,
        capacity: usize,
    ) -> Result<(ShardRouter, Vec<ShardQueue>), NetioError> {
        if shard_count == 0 {
            return Err(NetioError::ZeroShards);
        }
        if shard_count > SHARDS_MAX || capacity == 0 {
            return Err(NetioError::Config(format!(
                "shards must be 1..={SHARDS_MAX} and queue capacity ≥ 1 (got {shard_count}, {capacity})"
            )));
        }
        let mut router = ShardRouter {
            senders: vec![],
            evictors: vec![],
            counters: vec![],
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

    /// Queues `msg` on its shard, evicting the oldest message when the queue is full. Never
    /// blocks.
    pub fn route(&self, msg: InboundMessage) -> RouteOutcome {
        let shard = shard_for(msg.subnet, self.senders.len());
        let tx = &self.senders[shard];
        let counters = &self.counters[shard];
        match tx.try_send(msg) {
            Ok(()) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                RouteOutcome::Queued
            }
            Err(async_channel::TrySendError::Closed(msg)) => {
                RouteOutcome::Closed(Box::new(msg), None)
            }
            Err(async_channel::TrySendError::Full(msg)) => {
                let evicted = self.evictors[shard].try_recv().ok();
                if evicted.is_some() {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                match tx.try_send(msg) {
                    Ok(()) => {
                        counters.delivered.fetch_add(1, Ordering::Relaxed);
                        match evicted {
                            Some(old) => RouteOutcome::QueuedEvicting(Box::new(old)),
                            None => RouteOutcome::Queued,
                        }
                    }
                    // Only the network thread sends and it holds a receiver, so the channel
                    // cannot close and an eviction always makes room; this branch is for
                    // completeness and hands both messages back.
                    Err(e) => {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                        RouteOutcome::Closed(Box::new(e.into_inner()), evicted.map(Box::new))
                    }
                }
            }
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
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(subnet: usize, tag: u8) -> InboundMessage {
        InboundMessage {
            subnet: Subnet::new(subnet).unwrap(),
            id: MessageId::new(&[tag]),
            propagation_source: PeerId::random(),
            author: None,
            data: vec![tag],
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
        let (router, queues) = ShardRouter::new(2, 2).unwrap();
        // Subnets 0 and 2 go to shard 0.
        assert!(matches!(router.route(msg(0, 1)), RouteOutcome::Queued));
        assert!(matches!(router.route(msg(2, 2)), RouteOutcome::Queued));
        match router.route(msg(0, 3)) {
            RouteOutcome::QueuedEvicting(old) => assert_eq!(old.data, vec![1]),
            other => panic!("expected eviction, got {other:?}"),
        }
        // Shard 1 is unaffected.
        assert!(matches!(router.route(msg(1, 9)), RouteOutcome::Queued));
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
            ShardRouter::new(0, 1),
            Err(NetioError::ZeroShards)
        ));
        assert!(ShardRouter::new(1, 0).is_err());
        assert!(ShardRouter::new(SHARDS_MAX + 1, 1).is_err());
    }
}
