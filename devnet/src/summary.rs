//! The devnet's result: per-operator lines, the simulator's counts and the nodes' own
//! counters (read from their `/metrics`), as a table and as JSON.

use super::*;

/// One operator's line of the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatorSummary {
    /// Operator ID.
    pub id: u64,
    /// How its process ended.
    pub status: String,
    /// Whether that is how a node of a good run ends (stopped with status 0 on SIGTERM, or
    /// killed on purpose).
    pub clean: bool,
    /// Its log.
    pub log: PathBuf,
}

/// What the lagging beacon node of `--lagging-beacon-node` was asked (its requests are read
/// when the nodes are stopped).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LaggingNodeReport {
    /// Its URL (first in every node's `beacon_nodes`).
    pub url: String,
    /// Slots it lags behind the chain (what its `syncing` says).
    pub sync_distance: u64,
    /// `syncing` requests it answered: the nodes' health probes.
    pub syncing_requests: u64,
    /// Head-event subscriptions it received (every node subscribes to every beacon node).
    pub head_subscriptions: u64,
    /// Duty requests it received (duties, attestation data, blocks, aggregates,
    /// contributions, submissions, subscriptions). Must be 0: a healthy node was configured.
    pub duty_requests: u64,
    /// Other Beacon API requests it received (genesis, spec, fork, validators). Must be 0:
    /// the nodes probe before they ask anything.
    pub other_requests: u64,
}

/// The result of a run (the `--json-summary` file).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Counted slots.
    pub slots: u64,
    /// Slot duration.
    pub slot_ms: u64,
    /// First counted slot of the chain.
    pub first_slot: u64,
    /// Genesis of the simulated chain, in milliseconds since the Unix epoch: slot `s` starts
    /// at `genesis_ms + s * slot_ms` (what a scraper of the nodes' `/metrics` needs to pick
    /// the counted slots' window).
    pub genesis_ms: u64,
    /// Operators.
    pub operators: u64,
    /// Validators.
    pub validators: u64,
    /// Committees.
    pub committees: usize,
    /// Operators per committee.
    pub committee_size: u64,
    /// Attester duties in the counted slots.
    pub attestations_expected: u64,
    /// Valid attestations of those duties.
    pub attestations_valid: u64,
    /// Invalid attestations naming a counted slot.
    pub attestations_invalid: u64,
    /// Valid attestations later than two slots after their slot's start.
    pub attestations_late: u64,
    /// Sync-committee duties in the counted slots.
    pub sync_messages_expected: u64,
    /// Valid sync-committee messages of those duties.
    pub sync_messages_valid: u64,
    /// Invalid sync-committee messages naming a counted slot.
    pub sync_messages_invalid: u64,
    /// Valid sync-committee messages received late.
    pub sync_messages_late: u64,
    /// Proposals of our validators in the counted slots.
    pub proposals_expected: u64,
    /// Valid signed blocks of those proposals.
    pub proposals_valid: u64,
    /// Invalid blocks naming a counted slot.
    pub proposals_invalid: u64,
    /// Valid blocks received late.
    pub proposals_late: u64,
    /// Aggregations expected in the counted slots (attesters whose selection proof makes
    /// them aggregators).
    pub aggregations_expected: u64,
    /// Valid signed aggregates and proofs of those.
    pub aggregations_valid: u64,
    /// Invalid aggregates naming a counted slot.
    pub aggregations_invalid: u64,
    /// Valid aggregates received late.
    pub aggregations_late: u64,
    /// Beacon-committee subscriptions the simulator received that match a duty.
    pub beacon_subscriptions: u64,
    /// Sync-committee subscriptions of members.
    pub sync_subscriptions: u64,
    /// Fee recipients prepared (`prepare_beacon_proposer`) for known validators.
    pub fee_recipients_prepared: u64,
    /// Subscriptions or preparations naming an unknown validator or no matching duty.
    pub preparations_invalid: u64,
    /// Voluntary exits expected (validators with an exit request).
    pub exits_expected: u64,
    /// Validators with a valid signed exit.
    pub exits_valid: u64,
    /// Invalid exits.
    pub exits_invalid: u64,
    /// Sync-committee contributions expected in the counted slots.
    pub contributions_expected: u64,
    /// Valid contributions and proofs of those.
    pub contributions_valid: u64,
    /// Invalid contributions.
    pub contributions_invalid: u64,
    /// Valid contributions received late.
    pub contributions_late: u64,
    /// Builder registrations expected in the counted slots.
    pub registrations_expected: u64,
    /// Valid registrations of those.
    pub registrations_valid: u64,
    /// Invalid registrations.
    pub registrations_invalid: u64,
    /// Valid registrations received late.
    pub registrations_late: u64,
    /// Duties of every type (attestations, sync messages, proposals, aggregations,
    /// contributions, registrations, exits) with no valid submission.
    pub missed: u64,
    /// Median latency from slot start to a valid submission.
    pub duty_latency_ms_p50: u64,
    /// 99th percentile of that latency.
    pub duty_latency_ms_p99: u64,
    /// Largest latency.
    pub duty_latency_ms_max: u64,
    /// Attestations the nodes' slashing protection refused (their `ssv_slashing_refusals_total`).
    pub slashing_refusals: u64,
    /// Duties from the beacon node the nodes dropped as disagreeing with their registry.
    pub beacon_duties_refused: u64,
    /// Attestation data from the beacon node the nodes refused.
    pub beacon_data_refused: u64,
    /// The nodes' counters (their `/metrics`), summed over the nodes alive at the end and
    /// read before they are stopped; empty when none could be read.
    pub node_counters: BTreeMap<String, u64>,
    /// The simulated beacon node's fault (`--beacon-fault`).
    pub beacon_fault: Option<SimFault>,
    /// Correctly signed attestations the simulator received that form a slashable pair with
    /// an earlier one (any slot, any data). Must be 0.
    pub slashable_submissions: u64,
    /// The first few slashable pairs, in words.
    pub slashable_examples: Vec<String>,
    /// Distinct correctly signed attestations the simulator received.
    pub attestations_signed: u64,
    /// The operator restarted after its kill.
    pub restarted_operator: Option<u64>,
    /// Nodes that refused to start with [`crate::SPEC_REFUSAL_LINE`] (`spec-zero`).
    pub refused_to_start: u64,
    /// Seconds from starting the nodes to reading their counters.
    pub node_seconds: f64,
    /// The operator killed during the run.
    pub killed_operator: Option<u64>,
    /// The counted slot (0-based) it was killed at.
    pub kill_at_slot: Option<u64>,
    /// The operator sending corrupted partial signatures.
    pub faulty_operator: Option<u64>,
    /// How each node ended and where its log is.
    pub operator_exits: Vec<OperatorSummary>,
    /// The hostile peer's attack and its outcome (`--hostile-peer`).
    pub hostile: Option<crate::hostile::HostileReport>,
    /// Registry changes while the nodes ran and what the beacon node saw
    /// (`--live-registry`).
    pub live: Option<crate::live::LiveReport>,
    /// The lagging beacon node and what it was asked (`--lagging-beacon-node`).
    pub lagging_beacon_node: Option<LaggingNodeReport>,
    /// Each node's peak resident set size, MB (read before the nodes stop).
    pub node_peak_rss_mb: Vec<u64>,
    /// Whether the nodes ran with doppelganger protection (`--doppelganger`).
    pub doppelganger: bool,
    /// Validators live elsewhere (`--live-elsewhere`): their duties are not the nodes'.
    pub live_elsewhere: Vec<u64>,
    /// Their duties in the counted slots (the simulator's `live_elsewhere_duties`).
    pub live_elsewhere_duties: u64,
    /// Submissions the nodes made for them, any slot (must be 0).
    pub live_elsewhere_submissions: u64,
    /// The first few of those, in words.
    pub live_elsewhere_examples: Vec<String>,
    /// Liveness requests the simulator answered.
    pub liveness_requests: u64,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Whether the run passed (see [`Summary::failure`]).
    pub passed: bool,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// Nearest-rank percentile `p` (0..=100) of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p.min(100) as usize * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

impl Summary {
    /// The summary of a `spec-zero` run: no slot ran, every node was to refuse to start.
    pub(crate) fn spec_refusal(
        args: &DevnetArgs,
        dir: &Path,
        committees: usize,
        first: u64,
        nodes: &Nodes,
        refused: u64,
    ) -> Summary {
        let mut s = Summary {
            slots: args.slots,
            slot_ms: args.slot_ms,
            first_slot: first,
            operators: args.operators,
            validators: args.validators,
            committees,
            committee_size: args.committee_size,
            beacon_fault: args.beacon_fault,
            refused_to_start: refused,
            operator_exits: nodes.exits(),
            data_dir: dir.to_owned(),
            ..Summary::default()
        };
        s.failure = s.failure();
        s.passed = s.failure.is_none();
        s
    }

    /// Why the run failed (`None`: every expected duty valid, nothing invalid or missed,
    /// every node stopped cleanly).
    pub fn failure(&self) -> Option<String> {
        if self.slashable_submissions > 0 {
            return Some(format!(
                "{} SLASHABLE attestations submitted ({})",
                self.slashable_submissions,
                self.slashable_examples.join("; ")
            ));
        }
        if self.live_elsewhere_submissions > 0 {
            return Some(format!(
                "{} submissions for validators live elsewhere{} ({})",
                self.live_elsewhere_submissions,
                if self.doppelganger {
                    ""
                } else {
                    " (doppelganger protection is off: --doppelganger)"
                },
                self.live_elsewhere_examples.join("; ")
            ));
        }
        if let Some(fault) = self.beacon_fault {
            // Against a lying beacon node duties may be missed; what counts is that nothing
            // slashable was signed and the nodes stayed up (or refused to start).
            if fault == SimFault::SpecZero {
                return (self.refused_to_start < self.operators).then(|| {
                    format!(
                        "{} of {} nodes refused SECONDS_PER_SLOT 0 with a clear line",
                        self.refused_to_start, self.operators
                    )
                });
            }
            return self
                .operator_exits
                .iter()
                .find(|o| !o.clean)
                .map(|o| format!("operator {} {}", o.id, o.status));
        }
        if self.attestations_invalid > 0
            || self.sync_messages_invalid > 0
            || self.proposals_invalid > 0
            || self.aggregations_invalid > 0
            || self.registrations_invalid > 0
            || self.contributions_invalid > 0
            || self.exits_invalid > 0
        {
            return Some(format!(
                "{} invalid attestations, {} invalid sync-committee messages, {} invalid \
                 blocks, {} invalid aggregates, {} invalid contributions, {} invalid \
                 registrations and {} invalid exits",
                self.attestations_invalid,
                self.sync_messages_invalid,
                self.proposals_invalid,
                self.aggregations_invalid,
                self.contributions_invalid,
                self.registrations_invalid,
                self.exits_invalid
            ));
        }
        if let Some(live) = &self.live {
            // The simulator expects every set-up validator's duties from the start; which
            // ones the nodes must do follows the registry changes: the live report says.
            if let Some(f) = live.failures.first() {
                return Some(format!(
                    "live registry: {f} ({} findings)",
                    live.failures.len()
                ));
            }
            return self
                .operator_exits
                .iter()
                .find(|o| !o.clean)
                .map(|o| format!("operator {} {}", o.id, o.status));
        }
        if self.missed > 0 {
            return Some(format!("{} duties missed", self.missed));
        }
        if self.attestations_valid < self.attestations_expected {
            return Some(format!(
                "{} of {} expected attestations valid",
                self.attestations_valid, self.attestations_expected
            ));
        }
        if self.sync_messages_valid < self.sync_messages_expected {
            return Some(format!(
                "{} of {} expected sync-committee messages valid",
                self.sync_messages_valid, self.sync_messages_expected
            ));
        }
        if self.proposals_valid < self.proposals_expected {
            return Some(format!(
                "{} of {} expected blocks valid",
                self.proposals_valid, self.proposals_expected
            ));
        }
        if self.aggregations_valid < self.aggregations_expected {
            return Some(format!(
                "{} of {} expected aggregates valid",
                self.aggregations_valid, self.aggregations_expected
            ));
        }
        if self.contributions_valid < self.contributions_expected {
            return Some(format!(
                "{} of {} expected contributions valid",
                self.contributions_valid, self.contributions_expected
            ));
        }
        if self.exits_valid < self.exits_expected {
            return Some(format!(
                "{} of {} expected exits valid",
                self.exits_valid, self.exits_expected
            ));
        }
        if self.registrations_valid < self.registrations_expected {
            return Some(format!(
                "{} of {} expected registrations valid",
                self.registrations_valid, self.registrations_expected
            ));
        }
        if self.attestations_expected + self.sync_messages_expected == 0 {
            return Some("no duties fell in the counted slots".into());
        }
        if let Some(l) = &self.lagging_beacon_node {
            if l.syncing_requests == 0 {
                return Some("the nodes never probed the lagging beacon node".into());
            }
            if l.duty_requests + l.other_requests > 0 {
                return Some(format!(
                    "the lagging beacon node was asked {} duty and {} other requests while a \
                     healthy one was configured",
                    l.duty_requests, l.other_requests
                ));
            }
        }
        if let Some(h) = &self.hostile {
            if h.published == 0 {
                return Some("the hostile peer published nothing".into());
            }
            if h.observed == 0 {
                return Some("the observer received nothing from the nodes".into());
            }
            if h.relayed > 0 {
                return Some(format!(
                    "{} of the hostile peer's messages were relayed by honest nodes",
                    h.relayed
                ));
            }
            if h.attacker_peers_at_end > 0 {
                return Some(format!(
                    "the hostile peer is still connected to {} peers (not graylisted)",
                    h.attacker_peers_at_end
                ));
            }
            if let Some(rss) = self.node_peak_rss_mb.iter().max()
                && *rss > crate::HOSTILE_RSS_MAX_MB
            {
                return Some(format!(
                    "a node's peak RSS reached {rss} MB under the flood (bound {} MB)",
                    crate::HOSTILE_RSS_MAX_MB
                ));
            }
        }
        self.operator_exits
            .iter()
            .find(|o| !o.clean)
            .map(|o| format!("operator {} {}", o.id, o.status))
    }

    /// The final table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\ndevnet: {} operators, {} validators in {} committee(s) of {}, {} slots of {} ms \
             (chain slots {}..={})",
            self.operators,
            self.validators,
            self.committees,
            self.committee_size,
            self.slots,
            self.slot_ms,
            self.first_slot,
            self.first_slot + self.slots - 1
        );
        let _ = writeln!(
            s,
            "\n{:<16}{:>10}{:>10}{:>10}{:>8}{:>10}",
            "duty", "expected", "valid", "invalid", "late", "missed"
        );
        for (name, exp, valid, invalid, late) in [
            (
                "attestations",
                self.attestations_expected,
                self.attestations_valid,
                self.attestations_invalid,
                self.attestations_late,
            ),
            (
                "sync messages",
                self.sync_messages_expected,
                self.sync_messages_valid,
                self.sync_messages_invalid,
                self.sync_messages_late,
            ),
            (
                "proposals",
                self.proposals_expected,
                self.proposals_valid,
                self.proposals_invalid,
                self.proposals_late,
            ),
            (
                "aggregations",
                self.aggregations_expected,
                self.aggregations_valid,
                self.aggregations_invalid,
                self.aggregations_late,
            ),
            (
                "contributions",
                self.contributions_expected,
                self.contributions_valid,
                self.contributions_invalid,
                self.contributions_late,
            ),
            (
                "registrations",
                self.registrations_expected,
                self.registrations_valid,
                self.registrations_invalid,
                self.registrations_late,
            ),
            (
                "exits",
                self.exits_expected,
                self.exits_valid,
                self.exits_invalid,
                0,
            ),
        ] {
            let _ = writeln!(
                s,
                "{name:<16}{exp:>10}{valid:>10}{invalid:>10}{late:>8}{:>10}",
                exp.saturating_sub(valid)
            );
        }
        let _ = writeln!(
            s,
            "\nlatency, slot start -> valid submission: p50 {} ms, p99 {} ms, max {} ms",
            self.duty_latency_ms_p50, self.duty_latency_ms_p99, self.duty_latency_ms_max
        );
        if !self.live_elsewhere.is_empty() {
            let _ = writeln!(
                s,
                "live elsewhere: validators {:?}, {} of their duties in the counted slots, {} \
                 submissions for them (doppelganger protection {}; {} liveness requests)",
                self.live_elsewhere,
                self.live_elsewhere_duties,
                self.live_elsewhere_submissions,
                if self.doppelganger { "on" } else { "off" },
                self.liveness_requests
            );
        }
        if let Some(h) = &self.hostile {
            let _ = writeln!(
                s,
                "hostile peer: {} messages published ({} refused: no peer left), {} relayed by \
                 honest nodes (of {} the observer got from them), connected to {} peers at the \
                 end; nodes' peak RSS {:?} MB",
                h.published,
                h.refused,
                h.relayed,
                h.observed,
                h.attacker_peers_at_end,
                self.node_peak_rss_mb
            );
        }
        if let Some(l) = &self.lagging_beacon_node {
            let _ = writeln!(
                s,
                "lagging beacon node {} ({} slots behind, listed first): {} health probes, {} \
                 head-event subscriptions, {} duty requests, {} other requests",
                l.url,
                l.sync_distance,
                l.syncing_requests,
                l.head_subscriptions,
                l.duty_requests,
                l.other_requests
            );
        }
        let rate = |name: &str| {
            self.node_counters
                .get(name)
                .map(|v| *v as f64 / self.node_seconds.max(1e-3))
        };
        if let (Some(msgs), Some(sigs)) = (
            rate("ssv_p2p_messages_in_total"),
            rate("ssv_signatures_reconstructed_total"),
        ) {
            let _ = writeln!(
                s,
                "nodes, all together over {:.0} s: {msgs:.0} gossip messages/s in, \
                 {sigs:.0} signatures/s reconstructed and verified",
                self.node_seconds
            );
        }
        if let Some(fault) = self.beacon_fault {
            let _ = writeln!(
                s,
                "beacon fault {fault:?}: slashable submissions {} (of {} signed), slashing \
                 refusals {}, beacon duties refused {}, beacon data refused {}, nodes refusing \
                 to start {}",
                self.slashable_submissions,
                self.attestations_signed,
                self.slashing_refusals,
                self.beacon_duties_refused,
                self.beacon_data_refused,
                self.refused_to_start
            );
        }
        let _ = writeln!(s, "\n{:<10}{:<48}log", "operator", "status");
        for o in &self.operator_exits {
            let mut status = o.status.clone();
            if self.faulty_operator == Some(o.id) {
                status.push_str(" [faulty]");
            }
            let _ = writeln!(s, "{:<10}{:<48}{}", o.id, status, o.log.display());
        }
        if let Some(live) = &self.live {
            let _ = writeln!(s, "\nlive registry changes:\n{live}");
        }
        let _ = match self.failure() {
            None if self.live.is_some() => writeln!(
                s,
                "\nPASS: each registry change took effect in its first eligible slot; removed \
                 and liquidated validators signed nothing after it; untouched validators missed \
                 nothing; no restart"
            ),
            None => match self.beacon_fault {
                Some(SimFault::SpecZero) => writeln!(
                    s,
                    "\nPASS: every node refused SECONDS_PER_SLOT 0 with a clear line"
                ),
                Some(_) => writeln!(
                    s,
                    "\nPASS: no slashable attestation submitted; every node stayed up"
                ),
                None => writeln!(
                    s,
                    "\nPASS: every expected duty submitted valid; none invalid, none missed"
                ),
            },
            Some(why) => writeln!(s, "\nFAIL: {why}"),
        };
        s
    }
}

/// The URL of a node's `/metrics`, from the line its log starts with
/// (`metrics on http://ADDR/metrics`).
pub fn metrics_url(log: &Path) -> Option<String> {
    logged_url(log, "metrics on ").filter(|url| url.ends_with("/metrics"))
}

/// The base URL of a node's API (`http://ADDR`), from the line its log carries once the
/// network is up (`api on http://ADDR`); `None` until then. Each devnet node's log is
/// `<data dir>/op<ID>/node.log`.
pub fn api_url(log: &Path) -> Option<String> {
    logged_url(log, "api on ").filter(|url| url.len() > "http://".len())
}

/// The `http://…` URL that follows the first `prefix` in the head of a node's log (up to
/// whitespace or a JSON quote).
fn logged_url(log: &Path, prefix: &str) -> Option<String> {
    let mut head = Vec::new();
    std::fs::File::open(log)
        .ok()?
        .take(LOG_HEAD_BYTES_MAX)
        .read_to_end(&mut head)
        .ok()?;
    let text = String::from_utf8_lossy(&head);
    let at = text.find(&format!("{prefix}http://"))? + prefix.len();
    Some(
        text[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect(),
    )
}

/// Counters of a Prometheus text exposition (`name value` lines; others are skipped).
pub fn parse_counters(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The counters of every running node, summed (what could not be read is left out).
pub(crate) async fn node_counters(nodes: &Nodes) -> BTreeMap<String, u64> {
    let Ok(client) = reqwest::Client::builder().timeout(METRICS_TIMEOUT).build() else {
        return BTreeMap::new();
    };
    let mut sum = BTreeMap::new();
    for p in nodes.procs.iter().filter(|p| p.state == NodeState::Running) {
        let Some(url) = metrics_url(&p.log) else {
            continue;
        };
        let Ok(resp) = client.get(&url).send().await else {
            continue;
        };
        let Ok(text) = resp.text().await else {
            continue;
        };
        for (k, v) in parse_counters(&text) {
            *sum.entry(k).or_insert(0u64) += v;
        }
    }
    sum
}
