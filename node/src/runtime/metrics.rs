//! Node counters, shared by the shards and the control plane, served as Prometheus text on
//! `/metrics` (with `/health`) when `metrics_addr` is set.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use ssv_protocol::validation::{Rule, Verdict};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident),* $(,)?) => {
        /// Monotonic counters of the node.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
            /// Messages gossip validation refused, by rule.
            pub validation: RuleCounters,
        }

        impl Metrics {
            /// Prometheus text exposition of every counter.
            pub fn render(&self) -> String {
                let mut out = String::new();
                self.validation.render(&mut out);
                $(
                    let _ = writeln!(out, "# HELP ssv_{} {}", stringify!($name), concat!($($doc),*).trim());
                    let _ = writeln!(out, "# TYPE ssv_{} counter", stringify!($name));
                    let _ = writeln!(out, "ssv_{} {}", stringify!($name), self.$name.load(Ordering::Relaxed));
                )*
                out
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
    /// Inbound gossip dropped from full shard queues (in messages or bytes).
    p2p_queue_dropped,
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

    fn render(&self, out: &mut String) {
        for (verdict, name) in [
            (Verdict::Ignore, "ssv_p2p_message_validations_ignored_total"),
            (
                Verdict::Reject,
                "ssv_p2p_message_validations_rejected_total",
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} Messages that failed gossip validation, by rule."
            );
            let _ = writeln!(out, "# TYPE {name} counter");
            for (rule, n) in Rule::ALL.iter().zip(&self.0) {
                let n = n.load(Ordering::Relaxed);
                if rule.verdict() == verdict && n > 0 {
                    let _ = writeln!(
                        out,
                        "{name}{{ssv_p2p_message_validation_discard_reason=\"{}\"}} {n}",
                        rule.text()
                    );
                }
            }
        }
    }
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Serves `/metrics` and `/health` on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let router = Router::new()
        .route("/metrics", get(render))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("metrics server stopped: {e}");
        }
    });
    Ok(local)
}

async fn render(State(m): State<Arc<Metrics>>) -> String {
    m.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter() {
        let m = Metrics::default();
        Metrics::add(&m.decided, 3);
        let text = m.render();
        assert!(text.contains("ssv_decided 3"));
        assert!(text.contains("# TYPE ssv_messages_in counter"));
        assert_eq!(text.matches("# TYPE").count(), 32 + 2);
        m.validation.record(Rule::SignatureVerification);
        assert!(m.render().contains(
            "ssv_p2p_message_validations_rejected_total{ssv_p2p_message_validation_discard_reason=\"signature verification\"} 1"
        ));
    }
}
