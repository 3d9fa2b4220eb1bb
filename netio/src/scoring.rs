//! Peer scoring: thresholds, peer score parameters and topic score parameters, ported from the
//! Go node (`network/topics/params/{peer_score,topic_score,message_rate,helpers}.go`), plus
//! the application score that our own validation results feed.
//!
//! Every topic gets its parameters from the expected message rate of the committees on it
//! ([`expected_message_rate`]); with no known committees the rate is 0 and the derived
//! parameters fall back to the Go node's defaults (cap 1, threshold 1).

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use libp2p::gossipsub::{PeerScoreParams, PeerScoreThresholds, TopicScoreParams};
use ssv_protocol::chain::ChainSpec;

/// Below this score no gossip (IHAVE/IWANT) is exchanged with the peer.
pub const GOSSIP_THRESHOLD: f64 = -4000.0;
/// Below this score we do not publish to the peer (flood publish skips it).
pub const PUBLISH_THRESHOLD: f64 = -8000.0;
/// Below this score every RPC of the peer is ignored; our gater also disconnects and bans it.
pub const GRAYLIST_THRESHOLD: f64 = -16000.0;
/// Peer exchange from a pruning peer is accepted only above this score.
pub const ACCEPT_PX_THRESHOLD: f64 = 100.0;
/// Median mesh score below which opportunistic grafting kicks in.
pub const OPPORTUNISTIC_GRAFT_THRESHOLD: f64 = 5.0;

/// Cap of the positive topic contribution.
pub const TOPIC_SCORE_CAP: f64 = 32.72;
/// Slot length of Ethereum mainnet (the Go node's scoring parameters assume mainnet timing).
pub const SLOT_DURATION: Duration = ChainSpec::MAINNET.slot_duration();
/// Slots per epoch (mainnet's).
pub const SLOTS_PER_EPOCH: u32 = ChainSpec::MAINNET.slots_per_epoch() as u32;
/// One epoch (384 s): the Go node's decay interval and time unit for decays.
pub const ONE_EPOCH: Duration = Duration::from_secs(
    ChainSpec::MAINNET.slot_duration().as_secs() * ChainSpec::MAINNET.slots_per_epoch(),
);
/// Counters decay to zero once below this value.
pub const DECAY_TO_ZERO: f64 = 0.01;
/// Scores of disconnected peers are kept this long (100 epochs), so reconnecting does not
/// launder a bad score.
pub const RETAIN_SCORE: Duration = Duration::from_secs(100 * 32 * 12);
/// More peers than this on one IP start to cost P6.
pub const IP_COLOCATION_FACTOR_THRESHOLD: f64 = 10.0;
/// P6 weight.
pub const IP_COLOCATION_FACTOR_WEIGHT: f64 = -TOPIC_SCORE_CAP;
/// Behaviour penalties (P7) count only above this many.
pub const BEHAVIOUR_PENALTY_THRESHOLD: f64 = 6.0;

/// Weight of the application-specific score (P5). The Go node sets 0 and relies on P4 alone;
/// we feed validation results into P5 as well so that a peer whose messages our shards reject
/// is graylisted even on topics without score parameters. See [`AppScore`].
pub const APP_SPECIFIC_WEIGHT: f64 = 1.0;

/// Sum of all topic weights.
pub const TOTAL_TOPICS_WEIGHT: f64 = 4.0;
/// P1: most score from time in mesh.
pub const MAX_TIME_IN_MESH_SCORE: f64 = 10.0;
/// P1: time-in-mesh quantum, seconds.
pub const TIME_IN_MESH_QUANTUM_SECS: u64 = 12;
/// P1: time-in-mesh cap, seconds.
pub const TIME_IN_MESH_QUANTUM_CAP_SECS: u64 = 3600;
/// P2: first deliveries decay over this many epochs.
pub const FIRST_DELIVERY_DECAY_EPOCHS: u32 = 4;
/// P2: most score from first deliveries.
pub const MAX_FIRST_DELIVERY_SCORE: f64 = 80.0;
/// P3: mesh deliveries decay over this many epochs.
pub const MESH_DELIVERY_DECAY_EPOCHS: u32 = 16;
/// P3: a mesh peer must deliver at least this fraction of the expected messages.
pub const MESH_DELIVERY_DAMPENING_FACTOR: f64 = 1.0 / 50.0;
/// P3: cap as a multiple of the threshold.
pub const MESH_DELIVERY_CAP_FACTOR: f64 = 16.0;
/// P3 is disabled in the Go node (weight 0) until message rates are accurate.
pub const MESH_SCORING_ENABLED: bool = false;
/// P4: invalid deliveries decay over this many epochs.
pub const INVALID_MESSAGE_DECAY_EPOCHS: u32 = 100;
/// P4: this many invalid messages take a peer to the graylist threshold on their own
/// (more precisely: strictly more than this many).
pub const MAX_INVALID_MESSAGES_ALLOWED: f64 = 20.0;
/// Gossip degree D, used for the P2 cap.
pub const GOSSIP_D: usize = 8;

/// The thresholds of the Go node.
pub fn peer_score_thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        accept_px_threshold: ACCEPT_PX_THRESHOLD,
        opportunistic_graft_threshold: OPPORTUNISTIC_GRAFT_THRESHOLD,
    }
}

/// Decay factor per `interval` so that a counter reaches [`DECAY_TO_ZERO`] after `total`.
pub fn score_decay(total: Duration, interval: Duration) -> f64 {
    // Integer division of the durations, as Go's `float64(total / interval)`.
    let ticks = (total.as_nanos() / interval.as_nanos().max(1)).max(1) as f64;
    DECAY_TO_ZERO.powf(1.0 / ticks)
}

/// Limit a decaying counter converges to with `rate` additions per interval.
pub fn decay_convergence(decay: f64, rate: f64) -> f64 {
    assert!(decay < 1.0, "a decay factor must be below 1");
    rate / (1.0 - decay)
}

/// The converged value after one more decay step.
pub fn decay_threshold(decay: f64, rate: f64) -> f64 {
    decay_convergence(decay, rate) * decay
}

/// Peer score parameters. `seen_ttl` is the gossipsub seen-messages TTL; `ip_whitelist` lists
/// addresses exempt from the IP colocation penalty (P6), e.g. loopback in local test networks.
pub fn peer_score_params(ip_whitelist: HashSet<IpAddr>) -> PeerScoreParams {
    // P7: tolerate about 10 penalties per epoch, and hit the gossip threshold at the limit.
    let behaviour_penalty_decay = score_decay(ONE_EPOCH * 10, ONE_EPOCH);
    let target = decay_convergence(behaviour_penalty_decay, 10.0) - BEHAVIOUR_PENALTY_THRESHOLD;
    let behaviour_penalty_weight = GOSSIP_THRESHOLD / (target * target);
    PeerScoreParams {
        topics: Default::default(),
        topic_score_cap: TOPIC_SCORE_CAP,
        app_specific_weight: APP_SPECIFIC_WEIGHT,
        ip_colocation_factor_weight: IP_COLOCATION_FACTOR_WEIGHT,
        ip_colocation_factor_threshold: IP_COLOCATION_FACTOR_THRESHOLD,
        ip_colocation_factor_whitelist: ip_whitelist,
        behaviour_penalty_weight,
        behaviour_penalty_threshold: BEHAVIOUR_PENALTY_THRESHOLD,
        behaviour_penalty_decay,
        decay_interval: ONE_EPOCH,
        decay_to_zero: DECAY_TO_ZERO,
        retain_score: RETAIN_SCORE,
        ..PeerScoreParams::default()
    }
}

/// Size and load of one committee on a topic, for [`expected_message_rate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitteeLoad {
    /// Operators in the committee (4, 7, 10 or 13).
    pub operators: usize,
    /// Validators the committee runs.
    pub validators: usize,
}

// Ethereum figures the Go node assumes (`message_rate.go`).
const ETHEREUM_VALIDATORS: f64 = 1_000_000.0;
const SYNC_COMMITTEE_SIZE: f64 = 512.0;
const ESTIMATED_ATTESTATION_COMMITTEE_SIZE: f64 = ETHEREUM_VALIDATORS / 2048.0;
const AGGREGATOR_PROBABILITY: f64 = 16.0 / ESTIMATED_ATTESTATION_COMMITTEE_SIZE;
const PROPOSAL_PROBABILITY: f64 = 1.0 / ETHEREUM_VALIDATORS;
const SYNC_COMMITTEE_PROBABILITY: f64 = SYNC_COMMITTEE_SIZE / ETHEREUM_VALIDATORS;
const SYNC_COMMITTEE_AGG_PROB: f64 =
    SYNC_COMMITTEE_PROBABILITY * 16.0 / (SYNC_COMMITTEE_SIZE / 4.0);
/// Beyond this many validators a committee is assumed to have a duty every slot.
const MAX_VALIDATORS_PER_COMMITTEE: usize = 560;
const SLOTS_PER_EPOCH_F: f64 = SLOTS_PER_EPOCH as f64;

fn consensus_messages(n: usize) -> f64 {
    // 1 proposal + n prepares + n commits + 2 decided (average).
    (1 + n + n + 2) as f64
}

fn duty_with_pre_consensus(n: usize) -> f64 {
    n as f64 + consensus_messages(n) + n as f64
}

fn duty_without_pre_consensus(n: usize) -> f64 {
    consensus_messages(n) + n as f64
}

fn attestation_duties_per_epoch(validators: usize) -> f64 {
    if validators >= MAX_VALIDATORS_PER_COMMITTEE {
        return SLOTS_PER_EPOCH_F;
    }
    let none_on_slot = ((SLOTS_PER_EPOCH_F - 1.0) / SLOTS_PER_EPOCH_F).powf(validators as f64);
    SLOTS_PER_EPOCH_F * (1.0 - none_on_slot)
}

fn sync_only_duties_per_epoch(validators: usize) -> f64 {
    if validators >= MAX_VALIDATORS_PER_COMMITTEE {
        return 0.0;
    }
    let none_in_sync = (1.0 - SYNC_COMMITTEE_PROBABILITY).powf(validators as f64);
    (1.0 - none_in_sync) * (SLOTS_PER_EPOCH_F - attestation_duties_per_epoch(validators))
}

/// Expected messages per second on a topic carrying these committees (Go's
/// `calculateMessageRateForTopic`).
pub fn expected_message_rate(committees: &[CommitteeLoad]) -> f64 {
    let mut per_epoch = 0.0;
    for c in committees {
        let (n, v) = (c.operators, c.validators as f64);
        per_epoch += attestation_duties_per_epoch(c.validators) * duty_without_pre_consensus(n);
        per_epoch += sync_only_duties_per_epoch(c.validators) * duty_without_pre_consensus(n);
        per_epoch += v * AGGREGATOR_PROBABILITY * duty_with_pre_consensus(n);
        per_epoch += v * SLOTS_PER_EPOCH_F * PROPOSAL_PROBABILITY * duty_with_pre_consensus(n);
        per_epoch += v * SLOTS_PER_EPOCH_F * SYNC_COMMITTEE_AGG_PROB * duty_with_pre_consensus(n);
    }
    per_epoch / ONE_EPOCH.as_secs_f64()
}

/// Topic score parameters for a subnet topic with `expected_msg_rate` messages per second
/// (Go's `TopicParams(NewSubnetTopicOpts(...))`).
pub fn topic_score_params(expected_msg_rate: f64) -> TopicScoreParams {
    let topic_weight = TOTAL_TOPICS_WEIGHT / crate::spec::SUBNET_COUNT as f64;
    let expected_per_interval = expected_msg_rate.max(0.0) * ONE_EPOCH.as_secs_f64();

    // P1
    let time_in_mesh_cap = (TIME_IN_MESH_QUANTUM_CAP_SECS / TIME_IN_MESH_QUANTUM_SECS) as f64;

    // P2
    let first_decay = score_decay(ONE_EPOCH * FIRST_DELIVERY_DECAY_EPOCHS, ONE_EPOCH);
    let first_cap = if expected_per_interval > 0.0 {
        decay_convergence(first_decay, 2.0 * expected_per_interval / GOSSIP_D as f64)
    } else {
        1.0
    };

    // P3
    let mesh_decay = score_decay(ONE_EPOCH * MESH_DELIVERY_DECAY_EPOCHS, ONE_EPOCH);
    let mesh_threshold = if expected_per_interval > 0.0 {
        decay_threshold(
            mesh_decay,
            expected_per_interval * MESH_DELIVERY_DAMPENING_FACTOR,
        )
    } else {
        1.0
    };
    let max_score = (MAX_TIME_IN_MESH_SCORE + MAX_FIRST_DELIVERY_SCORE) * TOTAL_TOPICS_WEIGHT;
    let mesh_weight = if MESH_SCORING_ENABLED {
        -(max_score / (topic_weight * mesh_threshold * mesh_threshold))
    } else {
        0.0
    };

    // P4
    let invalid_decay = score_decay(ONE_EPOCH * INVALID_MESSAGE_DECAY_EPOCHS, ONE_EPOCH);
    let invalid_weight = GRAYLIST_THRESHOLD
        / (topic_weight * MAX_INVALID_MESSAGES_ALLOWED * MAX_INVALID_MESSAGES_ALLOWED);

    let sanitize = |v: f64, default: f64| if v.is_finite() { v } else { default };
    TopicScoreParams {
        topic_weight,
        time_in_mesh_weight: sanitize(MAX_TIME_IN_MESH_SCORE / time_in_mesh_cap, 0.0),
        time_in_mesh_quantum: Duration::from_secs(TIME_IN_MESH_QUANTUM_SECS),
        time_in_mesh_cap: sanitize(time_in_mesh_cap, 1.0),
        first_message_deliveries_weight: sanitize(MAX_FIRST_DELIVERY_SCORE / first_cap, 0.0),
        first_message_deliveries_decay: sanitize(first_decay, 0.001),
        first_message_deliveries_cap: sanitize(first_cap, 1.0),
        mesh_message_deliveries_weight: sanitize(mesh_weight, 0.0),
        mesh_message_deliveries_decay: sanitize(mesh_decay, 0.001),
        mesh_message_deliveries_cap: sanitize(mesh_threshold * MESH_DELIVERY_CAP_FACTOR, 1.0),
        mesh_message_deliveries_threshold: sanitize(mesh_threshold, 1.0),
        mesh_message_deliveries_window: Duration::from_secs(2),
        mesh_message_deliveries_activation: ONE_EPOCH * 3,
        mesh_failure_penalty_weight: sanitize(mesh_weight, 0.0),
        mesh_failure_penalty_decay: sanitize(mesh_decay, 0.001),
        invalid_message_deliveries_weight: sanitize(invalid_weight, -0.1),
        invalid_message_deliveries_decay: sanitize(invalid_decay, 0.001),
    }
}

/// Outcome of our validation of one gossip message, reported by a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValidationResult {
    /// Valid: forward it and credit the sender.
    Accept,
    /// Invalid (bad encoding, bad signature, wrong topic...): drop it and penalise the sender
    /// (P4 and P5).
    Reject,
    /// Not useful but not malicious (late, duplicate, queue full): drop it, no penalty.
    Ignore,
}

/// Application score added per accepted message (P5).
pub const APP_SCORE_ACCEPT_DELTA: f64 = 0.5;
/// Application score added per rejected message (P5). 32 rejections reach the graylist
/// threshold through P5 alone; P4 adds `-40 * n^2` on top for topics with parameters.
pub const APP_SCORE_REJECT_DELTA: f64 = -500.0;
/// Highest application score: good behaviour cannot buy more than a topic's worth of credit.
pub const APP_SCORE_MAX: f64 = 100.0;
/// Lowest application score (twice the graylist threshold): bounds how long recovery takes.
pub const APP_SCORE_MIN: f64 = 2.0 * GRAYLIST_THRESHOLD;
/// The application score is multiplied by this once per [`APP_SCORE_DECAY_INTERVAL`], so a
/// peer recovers from the floor to above the graylist threshold in about 5 minutes.
pub const APP_SCORE_DECAY: f64 = 0.9;
/// How often the application score decays.
pub const APP_SCORE_DECAY_INTERVAL: Duration = SLOT_DURATION;

/// Application-specific score bookkeeping for one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AppScore(pub f64);

impl AppScore {
    /// Applies one validation result; returns the new score.
    pub fn apply(&mut self, result: ValidationResult) -> f64 {
        let delta = match result {
            ValidationResult::Accept => APP_SCORE_ACCEPT_DELTA,
            ValidationResult::Reject => APP_SCORE_REJECT_DELTA,
            ValidationResult::Ignore => 0.0,
        };
        self.0 = (self.0 + delta).clamp(APP_SCORE_MIN, APP_SCORE_MAX);
        self.0
    }

    /// One decay step; returns the new score (snapped to 0 when tiny).
    pub fn decay(&mut self) -> f64 {
        self.0 *= APP_SCORE_DECAY;
        if self.0.abs() < DECAY_TO_ZERO {
            self.0 = 0.0;
        }
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_params_are_valid_for_libp2p() {
        peer_score_thresholds().validate().unwrap();
        let params = peer_score_params(HashSet::new());
        params.validate().unwrap();
        for rate in [0.0, 0.1, 1.0, 50.0, 600.0] {
            topic_score_params(rate).validate().unwrap();
        }
    }

    #[test]
    fn invalid_messages_reach_graylist_after_twenty() {
        let p = topic_score_params(0.0);
        let p4 = |n: f64| p.topic_weight * p.invalid_message_deliveries_weight * n * n;
        assert!((p4(20.0) - GRAYLIST_THRESHOLD).abs() < 1e-6);
        assert!(p4(21.0) < GRAYLIST_THRESHOLD);
        assert!(p4(19.0) > GRAYLIST_THRESHOLD);
    }

    #[test]
    fn behaviour_penalty_matches_go_derivation() {
        let params = peer_score_params(HashSet::new());
        // decay = 0.01^(1/10); convergence of 10/epoch minus threshold 6; weight = -4000/x^2.
        let decay = 0.01f64.powf(0.1);
        let x = 10.0 / (1.0 - decay) - 6.0;
        assert!((params.behaviour_penalty_decay - decay).abs() < 1e-12);
        assert!((params.behaviour_penalty_weight - (-4000.0 / (x * x))).abs() < 1e-9);
    }

    #[test]
    fn message_rate_grows_with_load() {
        let small = expected_message_rate(&[CommitteeLoad {
            operators: 4,
            validators: 1,
        }]);
        let big = expected_message_rate(&[CommitteeLoad {
            operators: 4,
            validators: 500,
        }]);
        assert!(small > 0.0 && big > small);
        assert_eq!(expected_message_rate(&[]), 0.0);
        // One validator, 4 operators: about one attestation duty per epoch of 4+3+4+... msgs.
        let one_duty = duty_without_pre_consensus(4) / ONE_EPOCH.as_secs_f64();
        // Aggregation and sync-committee duties add a few percent on top.
        assert!(
            small > one_duty && small < one_duty * 1.10,
            "{small} vs {one_duty}"
        );
    }

    #[test]
    fn app_score_is_bounded_and_decays() {
        let mut s = AppScore::default();
        for _ in 0..1000 {
            s.apply(ValidationResult::Reject);
        }
        assert_eq!(s.0, APP_SCORE_MIN);
        for _ in 0..100_000 {
            s.apply(ValidationResult::Accept);
        }
        assert_eq!(s.0, APP_SCORE_MAX);
        let before = s.0;
        assert!(s.decay() < before);
        s.apply(ValidationResult::Ignore);
        let mut n = 0;
        while s.decay() != 0.0 {
            n += 1;
            assert!(n < 1000);
        }
    }
}
