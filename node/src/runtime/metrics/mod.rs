//! The node's metrics, served as Prometheus text on `/metrics` (with `/health`) when
//! `metrics_addr` is set.
//!
//! Names follow the Go node (v2.3.7): its OpenTelemetry instruments (`ssv.runner.consensus.duration`,
//! unit `s`, attribute `ssv.runner.role`) as its OTel Prometheus exporter shows them (dots to
//! underscores, the unit appended, `_total` on counters, attributes as labels:
//! `ssv_runner_consensus_duration_seconds_bucket{ssv_runner_role="COMMITTEE",le="0.1"}`). Every
//! metric is one row of [`table::TABLE`] (name, type, unit, help, attributes, where it comes
//! from); [`Metrics::render`] walks that table, so a row without a value cannot exist.
//!
//! The hot path (shards, crypto pool) only does relaxed atomic adds: counters are
//! `AtomicU64`s, histograms are striped per thread ([`histogram`]). The control plane (network
//! poll, submitter) sets gauges. Rendering sums the stripes.

pub mod histogram;
pub mod process;
pub mod table;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use ssv_protocol::message::RunnerRole;
use ssv_protocol::validation::{Rule, Verdict};

pub use histogram::Histogram;
use table::{Def, Id, TABLE};

/// Shards whose CPU time and queue depth are kept (the node's own limit on shards).
pub const SHARDS_MAX: usize = 256;

/// Subnets (gossip topics) whose peer counts are kept.
pub const SUBNETS: usize = ssv_netio::SUBNET_COUNT;

/// Beacon-node request series (server, method, route, error status) kept; requests of further
/// series are not recorded (the routes are a bounded set, so only many servers or odd
/// statuses reach it).
pub const CL_SERIES_MAX: usize = 1024;

/// A beacon-node request series: server, method, route, error status (`None`: success).
type ClKey = (String, &'static str, String, Option<u16>);

/// QBFT rounds told apart in `ssv_runner_duty_duration_seconds`; a duty decided in a later
/// round is recorded under this one (round 12 is already minutes of timeouts, past any duty's
/// deadline).
pub const ROUNDS_KEPT: usize = 12;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// Plain counters of the node (each a row of [`table::TABLE`]).
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        /// One of the plain [`Counters`].
        #[allow(non_camel_case_types, missing_docs)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter {
            $($name,)*
        }

        impl Counter {
            /// Every plain counter.
            pub const ALL: &'static [Counter] = &[$(Counter::$name,)*];
        }

        impl Counters {
            /// The counter `c`.
            pub fn get(&self, c: Counter) -> &AtomicU64 {
                match c {
                    $(Counter::$name => &self.$name,)*
                }
            }
        }
    };
}

counters! {
    /// Gossip messages taken off the shard queues.
    messages_in,
    /// Messages accepted (forwarded).
    messages_accepted,
    /// Messages rejected (malformed, bad signature, not a member): the sender is penalised.
    messages_rejected,
    /// Messages ignored (late, duplicate, unknown committee).
    messages_ignored,
    /// Messages we published.
    messages_published,
    /// Publishes the network refused.
    publish_errors,
    /// Committee duties started.
    duties_started,
    /// Consensus instances decided.
    decided,
    /// Partial signatures we produced.
    partials_signed,
    /// Attestations refused by slashing protection.
    slashing_refusals,
    /// Partial signatures found invalid (culprits named in the log).
    bad_partials,
    /// Reconstructed signatures verified.
    signatures_reconstructed,
    /// Attestations submitted to the beacon node.
    attestations_submitted,
    /// Sync-committee messages submitted to the beacon node.
    sync_messages_submitted,
    /// Blocks published through the beacon node.
    blocks_submitted,
    /// Aggregates and proofs published through the beacon node.
    aggregates_submitted,
    /// Builder registrations submitted through the beacon node.
    registrations_submitted,
    /// Sync-committee contributions and proofs published through the beacon node.
    contributions_submitted,
    /// Voluntary exits submitted through the beacon node.
    exits_submitted,
    /// Submissions the beacon node refused or that failed.
    submission_errors,
    /// Slots whose duties could not be scheduled (beacon node errors).
    slots_skipped,
    /// Duties from the beacon node dropped because they disagree with our registry (another
    /// pubkey for the index, an index listed twice in an epoch, a slot outside the epoch).
    beacon_duties_refused,
    /// Attestation data from the beacon node refused (wrong slot, target epoch not the
    /// slot's, source not before target).
    beacon_data_refused,
    /// Signatures refused by doppelganger protection: the validator is still in detection
    /// (or was seen live elsewhere).
    doppelganger_refused,
    /// Signatures refused because slashing protection did not answer within its deadline
    /// or failed (disk error).
    slashing_unavailable,
    /// Slashing-protection records pruned.
    slashing_pruned,
    /// Registry changes applied to the running data plane (contract events, beacon
    /// statuses).
    registry_updates,
    /// Validators started while the node runs (added, re-added, reactivated).
    validators_added_live,
    /// Validators stopped while the node runs (removed, liquidated, exited on the beacon
    /// chain).
    validators_removed_live,
    /// Beacon nodes a health probe found unhealthy (syncing or further behind than the
    /// tolerance, optimistic, execution client offline) or unreachable, one per node and probe.
    beacon_nodes_unhealthy,
    /// Inbound gossip dropped unvalidated because its peer was over its rate limit.
    p2p_rate_limited,
}

/// The beacon roles of the submission metrics (the spec's `BeaconRole`).
pub use ssv_protocol::types::BeaconRole;

/// Every beacon role, in the order of the metric arrays (the wire value's).
const BEACON_ROLES: [BeaconRole; 7] = [
    BeaconRole::Attester,
    BeaconRole::Aggregator,
    BeaconRole::Proposer,
    BeaconRole::SyncCommittee,
    BeaconRole::SyncCommitteeContribution,
    BeaconRole::ValidatorRegistration,
    BeaconRole::VoluntaryExit,
];

/// The Go node's `ssv.beacon.role` value (`BeaconRole.String()`).
fn beacon_role_label(role: BeaconRole) -> &'static str {
    match role {
        BeaconRole::Attester => "ATTESTER",
        BeaconRole::Aggregator => "AGGREGATOR",
        BeaconRole::Proposer => "PROPOSER",
        BeaconRole::SyncCommittee => "SYNC_COMMITTEE",
        BeaconRole::SyncCommitteeContribution => "SYNC_COMMITTEE_CONTRIBUTION",
        BeaconRole::ValidatorRegistration => "VALIDATOR_REGISTRATION",
        BeaconRole::VoluntaryExit => "VOLUNTARY_EXIT",
    }
}

/// A beacon role's slot in the metric arrays.
fn beacon_role_index(role: BeaconRole) -> usize {
    role.to_u64() as usize
}

/// The Go node's `ssv.runner.role` value (`FormatRunnerRole`: the role's name without
/// `_RUNNER`).
pub fn runner_role_label(role: RunnerRole) -> &'static str {
    match role {
        RunnerRole::Committee => "COMMITTEE",
        RunnerRole::Aggregator => "AGGREGATOR",
        RunnerRole::Proposer => "PROPOSER",
        RunnerRole::SyncCommitteeContribution => "SYNC_COMMITTEE_CONTRIBUTION",
        RunnerRole::ValidatorRegistration => "VALIDATOR_REGISTRATION",
        RunnerRole::VoluntaryExit => "VOLUNTARY_EXIT",
    }
}

fn role_index(role: RunnerRole) -> usize {
    match role {
        RunnerRole::Committee => 0,
        RunnerRole::Aggregator => 1,
        RunnerRole::Proposer => 2,
        RunnerRole::SyncCommitteeContribution => 3,
        RunnerRole::ValidatorRegistration => 4,
        RunnerRole::VoluntaryExit => 5,
    }
}

const ROLES: [RunnerRole; 6] = [
    RunnerRole::Committee,
    RunnerRole::Aggregator,
    RunnerRole::Proposer,
    RunnerRole::SyncCommitteeContribution,
    RunnerRole::ValidatorRegistration,
    RunnerRole::VoluntaryExit,
];

/// A duty's stage, for the runner duration histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Collecting pre-consensus partial signatures (`ssv.runner.pre_consensus.duration`).
    PreConsensus,
    /// QBFT until decided (`ssv.runner.consensus.duration`).
    Consensus,
    /// Decided until every post-consensus signature is reconstructed
    /// (`ssv.runner.post_consensus.duration`).
    PostConsensus,
}

/// Why a QBFT round changed (`ssv.validator.duty.round.change_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundChange {
    /// The round timer expired.
    Timeout,
    /// A partial quorum of round changes for a higher round.
    PartialQuorum,
    /// A justified round change quorum.
    Justified,
}

impl RoundChange {
    const ALL: [RoundChange; 3] = [
        RoundChange::Timeout,
        RoundChange::PartialQuorum,
        RoundChange::Justified,
    ];

    fn label(self) -> &'static str {
        match self {
            RoundChange::Timeout => "timeout",
            RoundChange::PartialQuorum => "partial-quorum",
            RoundChange::Justified => "justified",
        }
    }
}

/// The bounded queues whose drops `ssv_queue_dropped_total` counts (each drops the newest
/// item when full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Inbound gossip, network thread to a shard (`netio` shard queues, in messages or bytes).
    ShardGossip,
    /// Network events to the node (`netio` event queue).
    NetworkEvents,
    /// Duties and results to a shard (`SHARD_EVENTS_MAX`).
    ShardEvents,
    /// Submissions, shards to the submitter (`SUBMISSIONS_MAX`).
    Submissions,
    /// Messages a validator runner keeps until it can take them (`EARLY_MESSAGES_MAX`).
    EarlyMessages,
    /// Decided records to the store's writer (`ssv_storage` write queue).
    StoreWrites,
}

impl Queue {
    /// Every queue.
    pub const ALL: [Queue; 6] = [
        Queue::ShardGossip,
        Queue::NetworkEvents,
        Queue::ShardEvents,
        Queue::Submissions,
        Queue::EarlyMessages,
        Queue::StoreWrites,
    ];

    /// The `ssv.queue.name` value.
    pub fn label(self) -> &'static str {
        match self {
            Queue::ShardGossip => "shard_gossip",
            Queue::NetworkEvents => "network_events",
            Queue::ShardEvents => "shard_events",
            Queue::Submissions => "submissions",
            Queue::EarlyMessages => "early_messages",
            Queue::StoreWrites => "store_writes",
        }
    }
}

/// The Go node's validator status categories (`ssv.validator.status`), in gauge order.
pub const VALIDATOR_STATUSES: [&str; 8] = [
    "active",
    "slashed",
    "exiting",
    "not_activated",
    "pending",
    "no_index",
    "not_found",
    "unknown",
];

/// The category of a Beacon API validator status (`active_ongoing`, `pending_queued`, …).
pub fn validator_status_category(beacon_status: &str) -> &'static str {
    match beacon_status {
        "active_ongoing" => "active",
        "active_slashed" | "exited_slashed" => "slashed",
        "active_exiting" | "exited_unslashed" | "withdrawal_possible" | "withdrawal_done" => {
            "exiting"
        }
        "pending_initialized" => "not_activated",
        "pending_queued" => "pending",
        _ => "unknown",
    }
}

/// `n` atomics, for arrays past the sizes `Default` covers.
fn atomics<T: Default, const N: usize>() -> Box<[T; N]> {
    let v: Vec<T> = (0..N).map(|_| T::default()).collect();
    v.into_boxed_slice()
        .try_into()
        .unwrap_or_else(|_| unreachable!("the vector has N elements"))
}

/// The Go node's `ssv.runner.submissions` gauge: per beacon role, the submissions of the
/// last finished epoch (recorded when a submission of a later epoch comes, as its
/// `EpochMetricRecorder`). Only the submitter touches it.
#[derive(Debug, Default)]
struct EpochSubmissions {
    /// Per role: the epoch being counted and its count so far.
    open: [(u64, i64); 7],
}

/// Every metric of the node.
#[derive(Debug)]
pub struct Metrics {
    /// The plain counters (`Metrics::add(&metrics.decided, 1)` through `Deref`).
    pub counters: Counters,
    /// Messages gossip validation refused, by rule.
    pub validation: RuleCounters,
    /// Gossip validation time.
    pub validation_duration: Histogram,
    /// Per runner role and stage.
    stages: [[Histogram; 3]; 6],
    /// Per runner role and decided round (0: no consensus).
    duty: Box<[[Histogram; ROUNDS_KEPT + 1]; 6]>,
    /// Per runner role: duties the scheduler handed to the shards.
    scheduled: [AtomicU64; 6],
    /// Per runner role: delay of the duty's start past its slot's start.
    slot_delay: [Histogram; 6],
    /// Per round-change reason.
    rounds_changed: [AtomicU64; 3],
    /// Per beacon role: failed submissions.
    submissions_failed: [AtomicU64; 7],
    /// Per beacon role: the last finished epoch's submissions (-1: none recorded yet).
    submissions_gauge: [AtomicI64; 7],
    submissions_open: parking_lot::Mutex<EpochSubmissions>,
    /// Connected peers (-1: not polled yet).
    pub peers_connected: AtomicI64,
    /// Per subnet: peers in the topic's mesh (-1: not subscribed).
    peers_per_subnet: Box<[AtomicI64; SUBNETS]>,
    /// Per shard: gossip messages waiting in the shard's queue.
    inbox: Box<[AtomicI64; SHARDS_MAX]>,
    /// Per shard: CPU time of the shard thread, in nanoseconds.
    shard_cpu_ns: Box<[AtomicU64; SHARDS_MAX]>,
    /// Shards that reported (one more than the highest index seen).
    shards: AtomicUsize,
    /// Per queue: items dropped because it was full.
    dropped: [AtomicU64; 6],
    /// Doppelganger protection: validators safe to sign for, and still in detection (-1:
    /// protection not running).
    doppelganger: [AtomicI64; 2],
    /// The contract sync's counters, once it runs (nodes with `eth1` configured).
    pub event_sync: std::sync::OnceLock<Arc<ssv_eth_sync::SyncCounters>>,
    /// Our validators per status category (-1: never counted).
    validators_per_status: [AtomicI64; 8],
    /// Beacon-node request durations by series (control plane only: a lock is fine).
    cl_requests: parking_lot::Mutex<std::collections::BTreeMap<ClKey, Box<Histogram>>>,
    /// The operator ID of the process, when the node runs one operator. The Go node has no
    /// operator attribute on its metrics; this leaves room for one when a process runs
    /// several operators.
    pub operator_id: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let gauges = |v: i64| {
            let b: Box<[AtomicI64; SUBNETS]> = atomics();
            for g in b.iter() {
                g.store(v, Ordering::Relaxed);
            }
            b
        };
        Metrics {
            counters: Counters::default(),
            validation: RuleCounters::default(),
            validation_duration: Histogram::default(),
            stages: Default::default(),
            duty: {
                let v: Vec<[Histogram; ROUNDS_KEPT + 1]> =
                    (0..6).map(|_| Default::default()).collect();
                v.into_boxed_slice()
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("six roles"))
            },
            scheduled: Default::default(),
            slot_delay: Default::default(),
            rounds_changed: Default::default(),
            submissions_failed: Default::default(),
            submissions_gauge: std::array::from_fn(|_| AtomicI64::new(-1)),
            submissions_open: Default::default(),
            peers_connected: AtomicI64::new(-1),
            peers_per_subnet: gauges(-1),
            inbox: atomics(),
            shard_cpu_ns: atomics(),
            shards: AtomicUsize::new(0),
            dropped: Default::default(),
            cl_requests: Default::default(),
            validators_per_status: std::array::from_fn(|_| AtomicI64::new(-1)),
            event_sync: std::sync::OnceLock::new(),
            doppelganger: [AtomicI64::new(-1), AtomicI64::new(-1)],
            operator_id: AtomicU64::new(0),
        }
    }
}

impl std::ops::Deref for Metrics {
    type Target = Counters;
    fn deref(&self) -> &Counters {
        &self.counters
    }
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Records how long `role`'s duty spent in `stage`.
    #[inline]
    pub fn record_stage(&self, role: RunnerRole, stage: Stage, d: Duration) {
        self.stages[role_index(role)][stage as usize].observe(d);
    }

    /// Records a finished duty of `role`, decided in `round` (0: a role without consensus),
    /// that took `d` from its start.
    #[inline]
    pub fn record_duty(&self, role: RunnerRole, round: u64, d: Duration) {
        let r = (round as usize).min(ROUNDS_KEPT);
        self.duty[role_index(role)][r].observe(d);
    }

    /// Duties of `role` finished so far (any round).
    pub fn duties_done(&self, role: RunnerRole) -> u64 {
        self.duty[role_index(role)]
            .iter()
            .map(Histogram::count)
            .sum()
    }

    /// Observations of `role` in `stage` so far.
    pub fn stage_count(&self, role: RunnerRole, stage: Stage) -> u64 {
        self.stages[role_index(role)][stage as usize].count()
    }

    /// Records a duty the scheduler handed to a shard, `delay` after its slot started.
    pub fn record_scheduled(&self, role: RunnerRole, delay: Duration) {
        let i = role_index(role);
        self.scheduled[i].fetch_add(1, Ordering::Relaxed);
        self.slot_delay[i].observe(delay);
    }

    /// Counts a QBFT round change.
    pub fn record_round_change(&self, why: RoundChange) {
        self.rounds_changed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records `n` successful submissions of `role` for a duty of `epoch` (the Go node's
    /// per-epoch gauge: the counts of roles whose epoch ended are published).
    pub fn record_submitted(&self, role: BeaconRole, epoch: u64, n: u64) {
        let mut open = self.submissions_open.lock();
        for (i, (e, count)) in open.open.iter_mut().enumerate() {
            if *e != 0 && *e < epoch {
                self.submissions_gauge[i].store(*count, Ordering::Relaxed);
                *e = epoch;
                *count = 0;
            }
        }
        let (e, count) = &mut open.open[beacon_role_index(role)];
        *e = (*e).max(epoch);
        *count += i64::try_from(n).unwrap_or(i64::MAX);
    }

    /// Counts a failed submission of `role`.
    pub fn record_submission_failed(&self, role: BeaconRole) {
        self.submissions_failed[beacon_role_index(role)].fetch_add(1, Ordering::Relaxed);
        Metrics::add(&self.counters.submission_errors, 1);
    }

    /// Counts `n` items `queue` dropped because it was full.
    pub fn record_dropped(&self, queue: Queue, n: u64) {
        self.dropped[queue as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the drop count of a queue counted elsewhere (the network's queues).
    pub fn set_dropped(&self, queue: Queue, total: u64) {
        self.dropped[queue as usize].store(total, Ordering::Relaxed);
    }

    /// Items `queue` dropped so far.
    pub fn dropped(&self, queue: Queue) -> u64 {
        self.dropped[queue as usize].load(Ordering::Relaxed)
    }

    /// Sets the peers in `subnet`'s topic (`None`: not subscribed).
    pub fn set_topic_peers(&self, subnet: usize, peers: Option<usize>) {
        if let Some(g) = self.peers_per_subnet.get(subnet) {
            g.store(peers.map_or(-1, |p| p as i64), Ordering::Relaxed);
        }
    }

    /// Sets the gossip messages waiting in `shard`'s queue.
    pub fn set_inbox(&self, shard: usize, queued: usize) {
        if let Some(g) = self.inbox.get(shard) {
            g.store(queued as i64, Ordering::Relaxed);
            self.shards.fetch_max(shard + 1, Ordering::Relaxed);
        }
    }

    /// Sets `shard`'s thread CPU time (called by the shard thread itself).
    pub fn set_shard_cpu(&self, shard: usize, cpu: Duration) {
        if let Some(g) = self.shard_cpu_ns.get(shard) {
            g.store(
                u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            self.shards.fetch_max(shard + 1, Ordering::Relaxed);
        }
    }

    /// Sets the count of our validators per status category (those of
    /// [`VALIDATOR_STATUSES`]; categories not named are set to 0, as the Go node records
    /// each).
    pub fn set_validator_statuses(&self, counts: &[(&str, u64)]) {
        for (i, cat) in VALIDATOR_STATUSES.iter().enumerate() {
            let n: u64 = counts
                .iter()
                .filter(|(c, _)| c == cat)
                .map(|(_, n)| n)
                .sum();
            self.validators_per_status[i].store(n as i64, Ordering::Relaxed);
        }
    }

    /// Sets the validators doppelganger protection holds safe and those still in detection.
    pub fn set_doppelganger(&self, safe: usize, detecting: usize) {
        self.doppelganger[0].store(safe as i64, Ordering::Relaxed);
        self.doppelganger[1].store(detecting as i64, Ordering::Relaxed);
    }

    /// Prometheus text exposition (format 0.0.4) of every row of [`TABLE`].
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 << 10);
        for def in TABLE {
            let name = def.prometheus_name();
            let _ = writeln!(out, "# HELP {name} {}", def.help);
            let _ = writeln!(out, "# TYPE {name} {}", def.kind.prometheus_type());
            self.samples(def, &name, &mut out);
        }
        out
    }

    /// The sample lines of one row.
    fn samples(&self, def: &Def, name: &str, out: &mut String) {
        let label = def.label_names();
        let l0 = label.first().map_or("", String::as_str);
        let l1 = label.get(1).map_or("", String::as_str);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        match def.id {
            Id::Counter(c) => {
                let _ = writeln!(out, "{name} {}", load(self.counters.get(c)));
            }
            Id::ValidationRefused(verdict) => self.validation.render(out, name, l0, verdict),
            Id::ValidationDuration => self.validation_duration.render(out, name, ""),
            Id::RunnerStage(stage) => {
                for role in ROLES {
                    let h = &self.stages[role_index(role)][stage as usize];
                    if h.count() > 0 {
                        let labels = format!("{l0}=\"{}\",", runner_role_label(role));
                        h.render(out, name, &labels);
                    }
                }
            }
            Id::RunnerDuty => {
                for role in ROLES {
                    for (round, h) in self.duty[role_index(role)].iter().enumerate() {
                        if h.count() > 0 {
                            let labels =
                                format!("{l0}=\"{}\",{l1}=\"{round}\",", runner_role_label(role));
                            h.render(out, name, &labels);
                        }
                    }
                }
            }
            Id::Submissions => {
                for role in BEACON_ROLES {
                    let v = self.submissions_gauge[beacon_role_index(role)].load(Ordering::Relaxed);
                    if v >= 0 {
                        let _ = writeln!(out, "{name}{{{l0}=\"{}\"}} {v}", beacon_role_label(role));
                    }
                }
            }
            Id::SubmissionsFailed => {
                for role in BEACON_ROLES {
                    let v = load(&self.submissions_failed[beacon_role_index(role)]);
                    let _ = writeln!(out, "{name}{{{l0}=\"{}\"}} {v}", beacon_role_label(role));
                }
            }
            Id::SchedulerExecutions => {
                for role in ROLES {
                    let v = load(&self.scheduled[role_index(role)]);
                    let _ = writeln!(out, "{name}{{{l0}=\"{}\"}} {v}", runner_role_label(role));
                }
            }
            Id::SlotTickerDelay => {
                for role in ROLES {
                    let h = &self.slot_delay[role_index(role)];
                    if h.count() > 0 {
                        let labels = format!("{l0}=\"{}\",", runner_role_label(role));
                        h.render(out, name, &labels);
                    }
                }
            }
            Id::RoundsChanged => {
                for why in RoundChange::ALL {
                    let v = load(&self.rounds_changed[why as usize]);
                    let _ = writeln!(out, "{name}{{{l0}=\"{}\"}} {v}", why.label());
                }
            }
            Id::PeersConnected => {
                let v = self.peers_connected.load(Ordering::Relaxed);
                if v >= 0 {
                    let _ = writeln!(out, "{name} {v}");
                }
            }
            Id::PeersPerTopic => {
                for (i, g) in self.peers_per_subnet.iter().enumerate() {
                    let v = g.load(Ordering::Relaxed);
                    if let (true, Ok(subnet)) = (v >= 0, ssv_netio::Subnet::new(i)) {
                        let topic = ssv_netio::topic_name(subnet);
                        let _ = writeln!(out, "{name}{{{l0}=\"{topic}\"}} {v}");
                    }
                }
            }
            Id::InboxSize => {
                let n = self.shards.load(Ordering::Relaxed).min(SHARDS_MAX);
                for (i, g) in self.inbox.iter().take(n).enumerate() {
                    let v = g.load(Ordering::Relaxed);
                    let _ = writeln!(out, "{name}{{{l0}=\"shard\",{l1}=\"{i}\"}} {v}");
                }
            }
            Id::QueueDropped => {
                for q in Queue::ALL {
                    let v = self.dropped(q);
                    let _ = writeln!(out, "{name}{{{l0}=\"{}\"}} {v}", q.label());
                }
            }
            Id::ShardCpu => {
                let n = self.shards.load(Ordering::Relaxed).min(SHARDS_MAX);
                for (i, g) in self.shard_cpu_ns.iter().take(n).enumerate() {
                    let secs = g.load(Ordering::Relaxed) as f64 / 1e9;
                    let _ = writeln!(out, "{name}{{{l0}=\"{i}\"}} {secs}");
                }
            }
            Id::ValidatorsPerStatus => {
                for (cat, g) in VALIDATOR_STATUSES.iter().zip(&self.validators_per_status) {
                    let v = g.load(Ordering::Relaxed);
                    if v >= 0 {
                        let _ = writeln!(out, "{name}{{{l0}=\"{cat}\"}} {v}");
                    }
                }
            }
            Id::DoppelgangerState => {
                for (unsafe_, g) in ["false", "true"].iter().zip(&self.doppelganger) {
                    let v = g.load(Ordering::Relaxed);
                    if v >= 0 {
                        let _ = writeln!(out, "{name}{{{l0}=\"{unsafe_}\"}} {v}");
                    }
                }
            }
            Id::EventsProcessed | Id::EventsFailed | Id::LastProcessedBlock => {
                if let Some(c) = self.event_sync.get() {
                    let v = match def.id {
                        Id::EventsProcessed => load(&c.events_applied),
                        Id::EventsFailed => load(&c.events_malformed),
                        _ => load(&c.last_block),
                    };
                    let _ = writeln!(out, "{name} {v}");
                }
            }
            Id::ClRequestDuration => {
                let l2 = label.get(2).map_or("", String::as_str);
                let l3 = label.get(3).map_or("", String::as_str);
                for ((server, method, route, error), h) in self.cl_requests.lock().iter() {
                    let mut labels = format!(
                        "{l0}=\"{}\",{l1}=\"{method}\",{l2}=\"{}\",",
                        escape(server),
                        escape(route)
                    );
                    if let Some(code) = error {
                        let _ = write!(labels, "{l3}=\"{code}\",");
                    }
                    h.render(out, name, &labels);
                }
            }
            Id::ProcessCpu | Id::ProcessResidentMemory | Id::ProcessStartTime => {
                match process::process_stat() {
                    Ok(s) => {
                        let v = match def.id {
                            Id::ProcessCpu => s.cpu_seconds,
                            Id::ProcessResidentMemory => s.resident_bytes as f64,
                            _ => s.start_time_seconds,
                        };
                        let _ = writeln!(out, "{name} {v}");
                    }
                    Err(e) => tracing::debug!("{name}: {e}"),
                }
            }
        }
    }
}

/// A label value as the text format writes it (`\`, `"` and newlines escaped).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl ssv_beacon_api::RequestObserver for Metrics {
    fn observe(&self, server: &str, method: &str, route: &str, took: Duration, error: Option<u16>) {
        let method = if method == "POST" { "POST" } else { "GET" };
        let mut map = self.cl_requests.lock();
        let key = (server.to_owned(), method, route.to_owned(), error);
        if let Some(h) = map.get(&key) {
            h.observe(took);
        } else if map.len() < CL_SERIES_MAX {
            let h = Box::<Histogram>::default();
            h.observe(took);
            map.insert(key, h);
        }
    }
}

/// Messages refused by gossip validation, one counter per rule, rendered under the Go
/// node's names: `ssv_p2p_message_validations_{ignored,rejected}_total` with the rule's text
/// as `ssv_p2p_message_validation_discard_reason`.
#[derive(Debug)]
pub struct RuleCounters(Vec<AtomicU64>);

impl Default for RuleCounters {
    fn default() -> Self {
        RuleCounters(Rule::ALL.iter().map(|_| AtomicU64::new(0)).collect())
    }
}

impl RuleCounters {
    /// Counts one message refused under `rule`.
    pub fn record(&self, rule: Rule) {
        if let Some(i) = Rule::ALL.iter().position(|r| *r == rule) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages refused under `rule`.
    pub fn get(&self, rule: Rule) -> u64 {
        Rule::ALL
            .iter()
            .position(|r| *r == rule)
            .map_or(0, |i| self.0[i].load(Ordering::Relaxed))
    }

    fn render(&self, out: &mut String, name: &str, label: &str, verdict: Verdict) {
        for (rule, n) in Rule::ALL.iter().zip(&self.0) {
            let n = n.load(Ordering::Relaxed);
            if rule.verdict() == verdict && n > 0 {
                let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", rule.text());
            }
        }
    }
}

/// The health probes `/health` on the metrics port answers from, set once the network is up
/// (until then `/health` answers 500: the node is starting).
pub type HealthSlot = Arc<std::sync::OnceLock<Arc<super::health::HealthSources>>>;

/// Serves `/metrics` and `/health` on `addr` until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: HealthSlot,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let router = Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
        .route(
            "/health",
            get(move || {
                let health = health.clone();
                async move {
                    use axum::response::IntoResponse as _;
                    match health.get() {
                        Some(sources) => super::api::health_response(sources).await,
                        None => (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(serde_json::json!({ "errors": ["node is starting"] })),
                        )
                            .into_response(),
                    }
                }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("metrics server stopped: {e}");
        }
    });
    Ok(local)
}

async fn render(
    State(m): State<Arc<Metrics>>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}

#[cfg(test)]
mod exposition;

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> Metrics {
        let m = Metrics::default();
        Metrics::add(&m.decided, 3);
        m.validation.record(Rule::SignatureVerification);
        m.validation.record(Rule::LateSlotMessage);
        m.validation_duration.observe(Duration::from_micros(40));
        m.record_stage(
            RunnerRole::Committee,
            Stage::Consensus,
            Duration::from_millis(120),
        );
        m.record_stage(
            RunnerRole::Proposer,
            Stage::PreConsensus,
            Duration::from_millis(7),
        );
        m.record_stage(
            RunnerRole::Committee,
            Stage::PostConsensus,
            Duration::from_millis(60),
        );
        m.record_duty(RunnerRole::Committee, 1, Duration::from_millis(900));
        m.record_duty(RunnerRole::Committee, 40, Duration::from_secs(30));
        m.record_scheduled(RunnerRole::Aggregator, Duration::from_millis(3));
        m.record_round_change(RoundChange::Timeout);
        m.record_submitted(BeaconRole::Attester, 1, 5);
        m.record_submitted(BeaconRole::Attester, 2, 2);
        m.record_submission_failed(BeaconRole::Proposer);
        m.peers_connected.store(7, Ordering::Relaxed);
        m.set_topic_peers(3, Some(4));
        m.set_inbox(1, 9);
        m.set_shard_cpu(0, Duration::from_millis(1500));
        m.record_dropped(Queue::Submissions, 2);
        m.set_validator_statuses(&[("active", 6), ("no_index", 1), ("active", 1)]);
        let sync = Arc::new(ssv_eth_sync::SyncCounters::default());
        sync.events_applied.store(12, Ordering::Relaxed);
        sync.last_block.store(99, Ordering::Relaxed);
        let _ = m.event_sync.set(sync);
        m.set_doppelganger(5, 3);
        use ssv_beacon_api::RequestObserver as _;
        let route = "/eth/v1/validator/duties/attester/{id}";
        m.observe(
            "127.0.0.1:5052",
            "POST",
            route,
            Duration::from_millis(30),
            None,
        );
        m.observe(
            "127.0.0.1:5052",
            "POST",
            route,
            Duration::from_millis(3),
            Some(503),
        );
        m.observe("h\"x", "GET", "/a\nb", Duration::from_millis(3), None);
        m
    }

    #[test]
    fn every_row_renders_with_its_type_and_translated_name() {
        let text = busy().render();
        for def in TABLE {
            let name = def.prometheus_name();
            assert!(
                text.contains(&format!("# TYPE {name} {}\n", def.kind.prometheus_type())),
                "{name}"
            );
            let has_sample = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .any(|l| l.starts_with(name.as_str()));
            assert!(has_sample, "{name} has no sample");
        }
        assert_eq!(text.matches("# TYPE").count(), TABLE.len());
        assert!(text.contains("ssv_decided_total 3\n"));
        assert!(text.contains(
            "ssv_p2p_message_validations_rejected_total{ssv_p2p_message_validation_discard_reason=\"signature verification\"} 1"
        ));
        assert!(text.contains(
            "ssv_runner_consensus_duration_seconds_bucket{ssv_runner_role=\"COMMITTEE\",le=\"0.25\"} 1"
        ));
        assert!(text.contains(
            "ssv_runner_duty_duration_seconds_count{ssv_runner_role=\"COMMITTEE\",ssv_validator_duty_round=\"12\"} 1"
        ));
        assert!(text.contains("ssv_runner_submissions{ssv_beacon_role=\"ATTESTER\"} 5\n"));
        assert!(
            text.contains("ssv_runner_submissions_failed_total{ssv_beacon_role=\"PROPOSER\"} 1\n")
        );
        assert!(text.contains("ssv_p2p_peers_per_topic{ssv_p2p_topic_name=\"ssv.v2.3\"} 4\n"));
        assert!(text.contains("ssv_queue_inbox_size{queue_type=\"shard\",queue_id=\"1\"} 9\n"));
        assert!(text.contains("ssv_shard_cpu_seconds_total{ssv_shard=\"0\"} 1.5\n"));
        assert!(text.contains("ssv_queue_dropped_total{ssv_queue_name=\"submissions\"} 2\n"));
        assert!(text.contains("ssv_submission_errors_total 1\n"));
        assert!(text.contains("ssv_event_syncer_handler_events_processed_total 12\n"));
        assert!(text.contains(
            "ssv_doppelganger_validators_state{ssv_doppelganger_validators_unsafe=\"true\"} 3\n"
        ));
        assert!(text.contains("ssv_event_syncer_handler_last_processed_block 99\n"));
        assert!(text.contains("\nprocess_cpu_seconds_total "));
        assert!(
            text.contains(
                "ssv_validator_validators_per_status{ssv_validator_status=\"active\"} 7\n"
            )
        );
        assert!(
            text.contains(
                "ssv_validator_validators_per_status{ssv_validator_status=\"slashed\"} 0\n"
            )
        );
        assert!(text.contains(
            "ssv_cl_request_duration_seconds_count{server_address=\"127.0.0.1:5052\",\
             http_request_method=\"POST\",http_route_name=\"/eth/v1/validator/duties/attester/{id}\",\
             http_response_error_status_code=\"503\"} 1\n"
        ));
        assert!(text.contains(
            "server_address=\"h\\\"x\",http_request_method=\"GET\",http_route_name=\"/a\\nb\""
        ));
    }

    #[test]
    fn exposition_parses_strictly_and_histograms_hold() {
        let text = busy().render();
        let families = exposition::parse(&text).expect("valid exposition");
        assert_eq!(families.len(), TABLE.len());
        for def in TABLE {
            let f = &families[&def.prometheus_name()];
            assert_eq!(f.kind, def.kind.prometheus_type(), "{}", def.name);
            for s in &f.samples {
                for (k, _) in &s.labels {
                    let known =
                        def.label_names().contains(k) || (k == "le" && f.kind == "histogram");
                    assert!(known, "{}: label {k} not in the table", def.name);
                }
            }
        }
        let checked = exposition::check_histograms(&families).expect("histogram invariants");
        assert!(checked >= 6, "{checked} histogram series checked");
    }

    #[test]
    fn epoch_gauge_publishes_finished_epochs_only() {
        let m = Metrics::default();
        m.record_submitted(BeaconRole::Attester, 5, 3);
        m.record_submitted(BeaconRole::Attester, 5, 4);
        assert!(!m.render().contains("ssv_runner_submissions{"));
        m.record_submitted(BeaconRole::Proposer, 6, 1);
        let text = m.render();
        assert!(text.contains("ssv_runner_submissions{ssv_beacon_role=\"ATTESTER\"} 7\n"));
        assert!(!text.contains("ssv_runner_submissions{ssv_beacon_role=\"PROPOSER\"}"));
    }
}
