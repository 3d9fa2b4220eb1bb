//! THE table of the node's metrics: one row per metric with its OpenTelemetry name (dotted,
//! as the Go node declares it), type, unit, help, attributes and origin. `/metrics` renders
//! the rows in this order under their Prometheus names ([`Def::prometheus_name`]: the Go node's
//! OTel Prometheus exporter translation). Rows whose origin is a Go file carry the Go node's
//! name, unit and attributes; the others are this node's own, under the same conventions
//! (`observability/CONVENTIONS.md`).

use super::{Counter, Stage};
use ssv_protocol::validation::Verdict;

/// An instrument type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic (`Int64Counter`): `_total`.
    Counter,
    /// Last value (`Int64Gauge`).
    Gauge,
    /// `Float64Histogram`: `_bucket`, `_sum`, `_count`.
    Histogram,
}

impl Kind {
    /// The `# TYPE` word.
    pub fn prometheus_type(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Where a row's values live in [`super::Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    /// A plain counter.
    Counter(Counter),
    /// Gossip messages refused, by rule, of one verdict.
    ValidationRefused(Verdict),
    /// Gossip validation time.
    ValidationDuration,
    /// A runner stage's duration, by role.
    RunnerStage(Stage),
    /// A duty's duration, by role and round.
    RunnerDuty,
    /// Last finished epoch's submissions, by beacon role.
    Submissions,
    /// Failed submissions, by beacon role.
    SubmissionsFailed,
    /// Duties scheduled, by role.
    SchedulerExecutions,
    /// Delay of a duty's start past its slot's start, by role.
    SlotTickerDelay,
    /// QBFT round changes, by reason.
    RoundsChanged,
    /// Connected peers.
    PeersConnected,
    /// Peers per subscribed topic.
    PeersPerTopic,
    /// Gossip waiting per shard queue.
    InboxSize,
    /// Drops per bounded queue.
    QueueDropped,
    /// CPU time per shard thread.
    ShardCpu,
    /// Beacon node request durations.
    ClRequestDuration,
    /// Our validators by beacon status.
    ValidatorsPerStatus,
    /// Validators in doppelganger detection (unsafe) and out of it (safe).
    DoppelgangerState,
    /// Contract events applied.
    EventsProcessed,
    /// Contract events recorded as malformed.
    EventsFailed,
    /// Last block the contract sync committed.
    LastProcessedBlock,
    /// Process CPU time.
    ProcessCpu,
    /// Process resident memory.
    ProcessResidentMemory,
    /// Process start time.
    ProcessStartTime,
}

/// One metric.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// The OpenTelemetry instrument name (dotted).
    pub name: &'static str,
    /// Instrument type.
    pub kind: Kind,
    /// UCUM unit as given to `WithUnit` (`s`, `By`; `{thing}` annotations add no suffix).
    pub unit: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// Attribute keys (dotted), in label order.
    pub labels: &'static [&'static str],
    /// Where the Go node declares it (file under the Go repository), or where ours comes from.
    /// Data for readers of the table (and its tests), not rendered.
    #[allow(dead_code)]
    pub origin: &'static str,
    /// Where the value lives.
    pub id: Id,
}

impl Def {
    /// The name on `/metrics`: dots to underscores, the unit's suffix, `_total` on counters
    /// (as the OTel Prometheus exporter writes it).
    pub fn prometheus_name(&self) -> String {
        let mut n = self.name.replace('.', "_");
        let suffix = match self.unit {
            "s" => "_seconds",
            "By" => "_bytes",
            "ms" => "_milliseconds",
            _ => "",
        };
        if !n.ends_with(suffix) {
            n.push_str(suffix);
        }
        if self.kind == Kind::Counter {
            n.push_str("_total");
        }
        n
    }

    /// The label names (attribute keys, dots to underscores).
    pub fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.replace('.', "_")).collect()
    }
}

const RUNNER: &str = "protocol/v2/ssv/runner/observability.go";
const OURS: &str = "this node";

macro_rules! plain {
    ($field:ident, $name:literal, $unit:literal, $help:literal) => {
        plain!($field, $name, $unit, $help, OURS)
    };
    ($field:ident, $name:literal, $unit:literal, $help:literal, $origin:expr) => {
        Def {
            name: $name,
            kind: Kind::Counter,
            unit: $unit,
            help: $help,
            labels: &[],
            origin: $origin,
            id: Id::Counter(Counter::$field),
        }
    };
}

/// Every metric of the node.
pub const TABLE: &[Def] = &[
    // --- The Go node's instruments -------------------------------------------------------
    Def {
        name: "ssv.runner.pre_consensus.duration",
        kind: Kind::Histogram,
        unit: "s",
        help: "pre consensus duration",
        labels: &["ssv.runner.role"],
        origin: RUNNER,
        id: Id::RunnerStage(Stage::PreConsensus),
    },
    Def {
        name: "ssv.runner.consensus.duration",
        kind: Kind::Histogram,
        unit: "s",
        help: "consensus duration",
        labels: &["ssv.runner.role"],
        origin: RUNNER,
        id: Id::RunnerStage(Stage::Consensus),
    },
    Def {
        name: "ssv.runner.post_consensus.duration",
        kind: Kind::Histogram,
        unit: "s",
        help: "post consensus duration",
        labels: &["ssv.runner.role"],
        origin: RUNNER,
        id: Id::RunnerStage(Stage::PostConsensus),
    },
    Def {
        name: "ssv.runner.duty.duration",
        kind: Kind::Histogram,
        unit: "s",
        help: "duty duration",
        labels: &["ssv.runner.role", "ssv.validator.duty.round"],
        origin: RUNNER,
        id: Id::RunnerDuty,
    },
    Def {
        name: "ssv.runner.submissions",
        kind: Kind::Gauge,
        unit: "{submission}",
        help: "number of duty submissions",
        labels: &["ssv.beacon.role"],
        origin: RUNNER,
        id: Id::Submissions,
    },
    Def {
        name: "ssv.runner.submissions.failed",
        kind: Kind::Counter,
        unit: "{submission}",
        help: "total number of failed duty submissions",
        labels: &["ssv.beacon.role"],
        origin: RUNNER,
        id: Id::SubmissionsFailed,
    },
    Def {
        name: "ssv.duty.scheduler.executions",
        kind: Kind::Counter,
        unit: "{duty}",
        help: "total number of duties scheduled for execution",
        labels: &["ssv.runner.role"],
        origin: "operator/duties/observability.go",
        id: Id::SchedulerExecutions,
    },
    Def {
        name: "ssv.duty.scheduler.slot_ticker_delay.duration",
        kind: Kind::Histogram,
        unit: "s",
        help: "delay of the slot ticker in seconds",
        labels: &["ssv.runner.role"],
        origin: "operator/duties/observability.go",
        id: Id::SlotTickerDelay,
    },
    Def {
        name: "ssv.validator.duty.rounds_changed",
        kind: Kind::Counter,
        unit: "{change}",
        help: "number of round changes with their reasons",
        labels: &["ssv.validator.duty.round.change_reason"],
        origin: "protocol/v2/qbft/instance/observability.go",
        id: Id::RoundsChanged,
    },
    plain!(
        messages_accepted,
        "ssv.p2p.message.validations.accepted",
        "{message_validation}",
        "total number of messages successfully validated and accepted",
        "message/validation/observability.go"
    ),
    Def {
        name: "ssv.p2p.message.validations.ignored",
        kind: Kind::Counter,
        unit: "{message_validation}",
        help: "total number of messages that failed validation and were ignored",
        labels: &["ssv.p2p.message.validation.discard_reason"],
        origin: "message/validation/observability.go",
        id: Id::ValidationRefused(Verdict::Ignore),
    },
    Def {
        name: "ssv.p2p.message.validations.rejected",
        kind: Kind::Counter,
        unit: "{message_validation}",
        help: "total number of messages that failed validation and were rejected",
        labels: &["ssv.p2p.message.validation.discard_reason"],
        origin: "message/validation/observability.go",
        id: Id::ValidationRefused(Verdict::Reject),
    },
    Def {
        name: "ssv.p2p.message.validations.duration",
        kind: Kind::Histogram,
        unit: "s",
        help: "message validation duration",
        labels: &[],
        origin: "message/validation/observability.go",
        id: Id::ValidationDuration,
    },
    plain!(
        messages_in,
        "ssv.p2p.messages.in",
        "{message}",
        "total number of inbound messages",
        "network/topics/observability.go"
    ),
    plain!(
        messages_published,
        "ssv.p2p.messages.out",
        "{message}",
        "total number of outbound(broadcasted) messages",
        "network/topics/observability.go"
    ),
    Def {
        name: "ssv.p2p.peers.connected",
        kind: Kind::Gauge,
        unit: "{peer}",
        help: "number of connected peers",
        labels: &[],
        origin: "network/p2p/observability.go",
        id: Id::PeersConnected,
    },
    Def {
        name: "ssv.p2p.peers.per_topic",
        kind: Kind::Gauge,
        unit: "{peer}",
        help: "number of connected peers per topic",
        labels: &["ssv.p2p.topic.name"],
        origin: "network/p2p/observability.go",
        id: Id::PeersPerTopic,
    },
    Def {
        name: "ssv.queue.inbox_size",
        kind: Kind::Gauge,
        unit: "{size}",
        help: "the latest observed inbox size (for some queue)",
        labels: &["queue_type", "queue_id"],
        origin: "protocol/v2/ssv/queue/observability.go",
        id: Id::InboxSize,
    },
    Def {
        name: "ssv.cl.request.duration",
        kind: Kind::Histogram,
        unit: "s",
        help: "consensus client request duration in seconds",
        labels: &[
            "server.address",
            "http.request.method",
            "http.route_name",
            "http.response.error_status_code",
        ],
        origin: "beacon/goclient/observability.go",
        id: Id::ClRequestDuration,
    },
    Def {
        name: "ssv.validator.validators.per_status",
        kind: Kind::Gauge,
        unit: "",
        help: "total number of validators by status",
        labels: &["ssv.validator.status"],
        origin: "operator/validator/observability.go",
        id: Id::ValidatorsPerStatus,
    },
    Def {
        name: "ssv.doppelganger.validators.state",
        kind: Kind::Gauge,
        unit: "{validator}",
        help: "Tracks the current number of validators in Doppelganger state, categorized by safety",
        labels: &["ssv.doppelganger.validators.unsafe"],
        origin: "doppelganger/observability.go",
        id: Id::DoppelgangerState,
    },
    Def {
        name: "ssv.event_syncer.handler.events_processed",
        kind: Kind::Counter,
        unit: "{event}",
        help: "total number of successfully processed events(logs)",
        labels: &[],
        origin: "eth/eventhandler/observability.go",
        id: Id::EventsProcessed,
    },
    Def {
        name: "ssv.event_syncer.handler.events_failed",
        kind: Kind::Counter,
        unit: "{event}",
        help: "total number of failures during event(log) processing",
        labels: &[],
        origin: "eth/eventhandler/observability.go",
        id: Id::EventsFailed,
    },
    Def {
        name: "ssv.event_syncer.handler.last_processed_block",
        kind: Kind::Gauge,
        unit: "{block_number}",
        help: "last processed block by event handler",
        labels: &[],
        origin: "eth/eventhandler/observability.go",
        id: Id::LastProcessedBlock,
    },
    // --- Process (client_golang's process collector, which the Go node serves) ----------
    Def {
        name: "process.cpu",
        kind: Kind::Counter,
        unit: "s",
        help: "Total user and system CPU time spent in seconds.",
        labels: &[],
        origin: "prometheus/client_golang process collector",
        id: Id::ProcessCpu,
    },
    Def {
        name: "process.resident_memory",
        kind: Kind::Gauge,
        unit: "By",
        help: "Resident memory size in bytes.",
        labels: &[],
        origin: "prometheus/client_golang process collector",
        id: Id::ProcessResidentMemory,
    },
    Def {
        name: "process.start_time",
        kind: Kind::Gauge,
        unit: "s",
        help: "Start time of the process since unix epoch in seconds.",
        labels: &[],
        origin: "prometheus/client_golang process collector",
        id: Id::ProcessStartTime,
    },
    // --- This node's own ------------------------------------------------------------------
    Def {
        name: "ssv.shard.cpu",
        kind: Kind::Counter,
        unit: "s",
        help: "CPU time of each shard thread (CLOCK_THREAD_CPUTIME_ID, sampled every second).",
        labels: &["ssv.shard"],
        origin: OURS,
        id: Id::ShardCpu,
    },
    Def {
        name: "ssv.queue.dropped",
        kind: Kind::Counter,
        unit: "{message}",
        help: "Items a full bounded queue dropped, by queue.",
        labels: &["ssv.queue.name"],
        origin: OURS,
        id: Id::QueueDropped,
    },
    plain!(
        messages_rejected,
        "ssv.messages_rejected",
        "{message}",
        "Messages rejected (malformed, bad signature, not a member): the sender is penalised."
    ),
    plain!(
        messages_ignored,
        "ssv.messages_ignored",
        "{message}",
        "Messages ignored (late, duplicate, unknown committee)."
    ),
    plain!(
        publish_errors,
        "ssv.publish_errors",
        "{message}",
        "Publishes the network refused."
    ),
    plain!(
        duties_started,
        "ssv.duties_started",
        "{duty}",
        "Duties started (committee and validator runners)."
    ),
    plain!(
        decided,
        "ssv.decided",
        "{instance}",
        "Consensus instances decided."
    ),
    plain!(
        partials_signed,
        "ssv.partials_signed",
        "{signature}",
        "Partial signatures we produced."
    ),
    plain!(
        slashing_refusals,
        "ssv.slashing_refusals",
        "{signature}",
        "Signatures refused by slashing protection."
    ),
    plain!(
        bad_partials,
        "ssv.bad_partials",
        "{signature}",
        "Partial signatures found invalid (culprits named in the log)."
    ),
    plain!(
        signatures_reconstructed,
        "ssv.signatures_reconstructed",
        "{signature}",
        "Reconstructed signatures verified."
    ),
    plain!(
        attestations_submitted,
        "ssv.attestations_submitted",
        "{attestation}",
        "Attestations submitted to the beacon node."
    ),
    plain!(
        sync_messages_submitted,
        "ssv.sync_messages_submitted",
        "{message}",
        "Sync-committee messages submitted to the beacon node."
    ),
    plain!(
        blocks_submitted,
        "ssv.blocks_submitted",
        "{block}",
        "Blocks published through the beacon node."
    ),
    plain!(
        aggregates_submitted,
        "ssv.aggregates_submitted",
        "{aggregate}",
        "Aggregates and proofs published through the beacon node."
    ),
    plain!(
        registrations_submitted,
        "ssv.registrations_submitted",
        "{registration}",
        "Builder registrations submitted through the beacon node."
    ),
    plain!(
        contributions_submitted,
        "ssv.contributions_submitted",
        "{contribution}",
        "Sync-committee contributions and proofs published through the beacon node."
    ),
    plain!(
        exits_submitted,
        "ssv.exits_submitted",
        "{exit}",
        "Voluntary exits submitted through the beacon node."
    ),
    plain!(
        submission_errors,
        "ssv.submission_errors",
        "{submission}",
        "Submissions the beacon node refused or that failed."
    ),
    plain!(
        slots_skipped,
        "ssv.slots_skipped",
        "{slot}",
        "Slots whose duties could not be scheduled (beacon node errors, full shard queue)."
    ),
    plain!(
        beacon_duties_refused,
        "ssv.beacon_duties_refused",
        "{duty}",
        "Duties from the beacon node dropped because they disagree with our registry."
    ),
    plain!(
        beacon_data_refused,
        "ssv.beacon_data_refused",
        "{response}",
        "Attestation data and other duty data from the beacon node refused."
    ),
    plain!(
        doppelganger_refused,
        "ssv.doppelganger_refused",
        "{signature}",
        "Signatures refused by doppelganger protection."
    ),
    plain!(
        slashing_unavailable,
        "ssv.slashing_unavailable",
        "{signature}",
        "Signatures refused because slashing protection did not answer in time or failed."
    ),
    plain!(
        slashing_pruned,
        "ssv.slashing_pruned",
        "{record}",
        "Slashing-protection records pruned."
    ),
    plain!(
        registry_updates,
        "ssv.registry_updates",
        "{update}",
        "Registry changes applied to the running data plane."
    ),
    plain!(
        validators_added_live,
        "ssv.validators_added_live",
        "{validator}",
        "Validators started while the node runs (added, re-added, reactivated)."
    ),
    plain!(
        validators_removed_live,
        "ssv.validators_removed_live",
        "{validator}",
        "Validators stopped while the node runs (removed, liquidated, exited)."
    ),
    plain!(
        beacon_nodes_unhealthy,
        "ssv.beacon_nodes_unhealthy",
        "{probe}",
        "Beacon node health probes that found a node unhealthy or unreachable."
    ),
    plain!(
        p2p_rate_limited,
        "ssv.p2p.rate_limited",
        "{message}",
        "Inbound gossip dropped unvalidated because its peer was over its rate limit."
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_follow_the_conventions() {
        let mut seen = HashSet::new();
        for d in TABLE {
            assert!(seen.insert(d.prometheus_name()), "{} twice", d.name);
            assert!(
                d.name.starts_with("ssv.") || d.name.starts_with("process."),
                "{}",
                d.name
            );
            assert_eq!(d.name, d.name.to_lowercase());
            assert!(!d.name.ends_with(".total") && !d.name.ends_with(".count"));
            for l in d.labels {
                assert_eq!(*l, l.to_lowercase());
            }
        }
    }

    #[test]
    fn every_plain_counter_has_one_row() {
        for c in Counter::ALL {
            let rows = TABLE.iter().filter(|d| d.id == Id::Counter(*c)).count();
            assert_eq!(rows, 1, "{c:?}");
        }
    }

    #[test]
    fn translation_matches_the_otel_exporter() {
        let name = |n: &str| {
            TABLE
                .iter()
                .find(|d| d.name == n)
                .expect("row")
                .prometheus_name()
        };
        assert_eq!(
            name("ssv.runner.consensus.duration"),
            "ssv_runner_consensus_duration_seconds"
        );
        assert_eq!(
            name("ssv.runner.submissions.failed"),
            "ssv_runner_submissions_failed_total"
        );
        assert_eq!(name("ssv.p2p.peers.per_topic"), "ssv_p2p_peers_per_topic");
        assert_eq!(name("process.cpu"), "process_cpu_seconds_total");
        assert_eq!(
            name("process.resident_memory"),
            "process_resident_memory_bytes"
        );
    }
}
