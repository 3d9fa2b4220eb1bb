//! Beacon-node health, as the client judges it from `GET /eth/v1/node/syncing`, and the
//! pure rules built on it: which node a request goes to first, and which head events are
//! new. [`crate::client::BeaconClient`] probes every configured node and keeps one
//! [`NodeHealth`] per node; nothing here does IO.

use std::collections::VecDeque;

use crate::types::{HeadEvent, Syncing};

/// Largest sync distance, in slots, of a healthy beacon node: the Go node's default
/// (`BEACON_SYNC_DISTANCE_TOLERANCE`, 4). Too small and a node a slot or two behind after a
/// late block flaps between healthy and not (its requests move for nothing); too large and a
/// node that many slots behind keeps serving stale attestation data and duties.
pub const SYNC_DISTANCE_TOLERANCE: u64 = 4;

/// Head events remembered to drop the copies other nodes send of the same head. The same
/// head reaches the client from every node within a slot; 64 distinct heads are two epochs
/// on mainnet, far longer than any node takes to send its copy.
pub const HEAD_DEDUP_MAX: usize = 64;

/// What the last probe found of one beacon node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeHealth {
    /// Not probed yet.
    Unknown,
    /// Answered; within [`SYNC_DISTANCE_TOLERANCE`] of the chain's head, its head not
    /// optimistic, its execution client online.
    Healthy(Syncing),
    /// Answered, but must not serve duties while another node can: `why` says what is
    /// wrong (too far behind, optimistic head, execution client offline).
    Unhealthy {
        /// What it answered.
        status: Syncing,
        /// Why that is not healthy.
        why: &'static str,
    },
    /// Did not answer the probe (transport error, timeout, 5xx, malformed answer).
    Unreachable(String),
}

impl NodeHealth {
    /// Judges a node's `syncing` answer. As the Go node does, a node that says it is
    /// syncing but is within [`SYNC_DISTANCE_TOLERANCE`] is healthy (beacon nodes report
    /// `is_syncing` for a moment after a late block); unlike it, a node that says it is *not*
    /// syncing while its distance is past the tolerance is not, since its head is that stale
    /// whatever it claims.
    pub fn judge(status: Syncing) -> NodeHealth {
        let why = if status.sync_distance > SYNC_DISTANCE_TOLERANCE {
            Some(if status.is_syncing {
                "syncing, further behind than the tolerance"
            } else {
                "further behind than the tolerance"
            })
        } else if status.is_optimistic {
            Some("optimistic head (its execution client has not validated it)")
        } else if status.el_offline {
            Some("execution client offline")
        } else {
            None
        };
        match why {
            None => NodeHealth::Healthy(status),
            Some(why) => NodeHealth::Unhealthy { status, why },
        }
    }

    /// Whether requests should go to this node first.
    pub fn is_healthy(&self) -> bool {
        matches!(self, NodeHealth::Healthy(_))
    }

    /// Order of preference: healthy, not probed yet, answering but unhealthy (a lagging node
    /// that answers beats one that does not, when no node is healthy), unreachable.
    pub fn rank(&self) -> u8 {
        match self {
            NodeHealth::Healthy(_) => 0,
            NodeHealth::Unknown => 1,
            NodeHealth::Unhealthy { .. } => 2,
            NodeHealth::Unreachable(_) => 3,
        }
    }
}

/// The order in which one request tries the nodes: by [`NodeHealth::rank`], and within a
/// rank starting at `preferred` (the node that answered last) and going round the configured
/// order. Every node is in it once, so a request still reaches every node when none is
/// healthy.
pub fn attempt_order(health: &[NodeHealth], preferred: usize) -> Vec<usize> {
    let n = health.len();
    assert!(n > 0, "a client has at least one node");
    let preferred = preferred % n;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (health[i].rank(), (i + n - preferred) % n));
    debug_assert_eq!(order.len(), n);
    order
}

/// The node that should be preferred after a probe: `preferred` while it is healthy (no
/// flapping between healthy nodes), otherwise the first healthy node after it in the
/// configured order, otherwise `preferred` unchanged (nothing better to move to).
pub fn preferred_after_probe(health: &[NodeHealth], preferred: usize) -> usize {
    let n = health.len();
    assert!(n > 0, "a client has at least one node");
    let preferred = preferred % n;
    (0..n)
        .map(|k| (preferred + k) % n)
        .find(|&i| health[i].is_healthy())
        .unwrap_or(preferred)
}

/// Drops head events already seen (same slot and block root) from another node, remembering
/// the last [`HEAD_DEDUP_MAX`] distinct heads.
#[derive(Debug, Default)]
pub struct HeadDedup {
    seen: VecDeque<(u64, [u8; 32])>,
}

impl HeadDedup {
    /// Whether `ev` is a head not seen before (and remembers it).
    pub fn first_time(&mut self, ev: &HeadEvent) -> bool {
        let key = (ev.slot, ev.block);
        if self.seen.contains(&key) {
            return false;
        }
        if self.seen.len() == HEAD_DEDUP_MAX {
            self.seen.pop_front();
        }
        self.seen.push_back(key);
        debug_assert!(self.seen.len() <= HEAD_DEDUP_MAX);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syncing(distance: u64, is_syncing: bool) -> Syncing {
        Syncing {
            head_slot: 100 - distance,
            sync_distance: distance,
            is_syncing,
            is_optimistic: false,
            el_offline: false,
        }
    }

    fn healthy() -> NodeHealth {
        NodeHealth::judge(syncing(0, false))
    }

    fn lagging() -> NodeHealth {
        NodeHealth::judge(syncing(32, true))
    }

    #[test]
    fn sync_distance_within_the_tolerance_is_healthy() {
        assert!(NodeHealth::judge(syncing(0, false)).is_healthy());
        assert!(NodeHealth::judge(syncing(SYNC_DISTANCE_TOLERANCE, false)).is_healthy());
        // Syncing for a moment, within the tolerance: healthy, as in the Go node.
        assert!(NodeHealth::judge(syncing(SYNC_DISTANCE_TOLERANCE, true)).is_healthy());
        for is_syncing in [true, false] {
            let h = NodeHealth::judge(syncing(SYNC_DISTANCE_TOLERANCE + 1, is_syncing));
            assert!(
                matches!(h, NodeHealth::Unhealthy { why, .. } if why.contains("behind")),
                "{h:?}"
            );
        }
    }

    #[test]
    fn optimistic_or_el_offline_is_unhealthy() {
        let mut s = syncing(0, false);
        s.is_optimistic = true;
        assert!(
            matches!(NodeHealth::judge(s.clone()), NodeHealth::Unhealthy { why, .. } if why.contains("optimistic"))
        );
        s.is_optimistic = false;
        s.el_offline = true;
        assert!(
            matches!(NodeHealth::judge(s), NodeHealth::Unhealthy { why, .. } if why.contains("offline"))
        );
    }

    #[test]
    fn a_lagging_first_node_is_tried_last() {
        let health = [lagging(), healthy()];
        assert_eq!(attempt_order(&health, 0), vec![1, 0]);
        assert_eq!(attempt_order(&health, 1), vec![1, 0]);
        // Once it recovers, the preferred node (the one that answered last) comes first.
        let health = [healthy(), healthy()];
        assert_eq!(attempt_order(&health, 1), vec![1, 0]);
        assert_eq!(attempt_order(&health, 0), vec![0, 1]);
    }

    #[test]
    fn the_order_ranks_healthy_unknown_lagging_unreachable() {
        let health = [
            NodeHealth::Unreachable("refused".into()),
            lagging(),
            NodeHealth::Unknown,
            healthy(),
            healthy(),
        ];
        assert_eq!(attempt_order(&health, 0), vec![3, 4, 2, 1, 0]);
        // Within a rank, round the configured order from the preferred node.
        assert_eq!(attempt_order(&health, 4), vec![4, 3, 2, 1, 0]);
    }

    #[test]
    fn with_no_healthy_node_every_node_is_still_tried() {
        let health = [
            lagging(),
            NodeHealth::Unreachable("timeout".into()),
            lagging(),
        ];
        let order = attempt_order(&health, 2);
        assert_eq!(order, vec![2, 0, 1]);
        assert_eq!(preferred_after_probe(&health, 2), 2);
    }

    #[test]
    fn a_lagging_preferred_node_does_not_stay_preferred() {
        let health = [lagging(), healthy(), healthy()];
        assert_eq!(preferred_after_probe(&health, 0), 1);
        // A healthy preferred node stays (no flapping between healthy nodes).
        assert_eq!(preferred_after_probe(&health, 2), 2);
        let health = [healthy(), lagging(), lagging()];
        assert_eq!(preferred_after_probe(&health, 1), 0);
    }

    #[test]
    fn head_copies_from_other_nodes_are_dropped() {
        let ev = |slot: u64, b: u8| HeadEvent {
            slot,
            block: [b; 32],
            state: [0; 32],
            epoch_transition: false,
            current_duty_dependent_root: None,
            previous_duty_dependent_root: None,
        };
        let mut d = HeadDedup::default();
        assert!(d.first_time(&ev(10, 1)));
        assert!(!d.first_time(&ev(10, 1)), "the second node's copy");
        assert!(
            d.first_time(&ev(10, 2)),
            "another block at the slot (a reorg)"
        );
        assert!(d.first_time(&ev(11, 1)));
        // Bounded: the oldest head is forgotten once HEAD_DEDUP_MAX newer ones were seen.
        for s in 0..HEAD_DEDUP_MAX as u64 {
            assert!(d.first_time(&ev(1000 + s, 0)));
        }
        assert!(d.seen.len() <= HEAD_DEDUP_MAX);
        assert!(d.first_time(&ev(10, 1)));
    }
}
