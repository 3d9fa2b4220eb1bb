//! OpenTelemetry traces of committee duties, exported over OTLP/HTTP with JSON encoding (a
//! `POST {endpoint}/v1/traces` of an `ExportTraceServiceRequest`), when `otlp_endpoint` (or
//! `--otlp-endpoint`, or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`) is set. Off by default,
//! and then nothing is created: [`DutyTrace::start`] returns `None` after one atomic load.
//!
//! One trace per committee duty (slot, committee):
//!
//! ```text
//! duty (slot, role, committee)
//! ├── consensus
//! │   └── qbft.round (round = 1, 2, …; one span per round)
//! ├── post_consensus        (from the decision to the reconstructed signatures)
//! └── submission            (the beacon node's answer to the attestations; by the submitter)
//! ```
//!
//! The shards and the submitter only push finished spans into a bounded queue
//! ([`SPAN_QUEUE_MAX`], drop newest when full, counted); a tokio task batches them and posts.
//! The OpenTelemetry SDK crates were not used: they bring their own runtime plumbing and
//! protobuf stack for what is, here, a handful of spans per slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::{Value, json};

/// Finished spans waiting for export. When full, new spans are dropped (and counted in
/// [`OtlpExporter::dropped`]): tracing must never hold back a duty. 8,192 spans are minutes
/// of duties of hundreds of committees at a 1 s export interval.
pub const SPAN_QUEUE_MAX: usize = 8192;
/// Spans per export request.
pub const EXPORT_BATCH_MAX: usize = 512;
/// How often queued spans are exported.
pub const EXPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Timeout of one export request.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Duties whose submission span is still expected (the submitter looks them up by slot and
/// first attester). Older entries are evicted first; 4,096 is several slots of hundreds of
/// committees.
pub const PENDING_SUBMISSIONS_MAX: usize = 4096;

/// A trace ID.
pub type TraceId = [u8; 16];
/// A span ID.
pub type SpanId = [u8; 8];

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// Its trace.
    pub trace_id: TraceId,
    /// Its ID.
    pub span_id: SpanId,
    /// Its parent (`None`: the root).
    pub parent: Option<SpanId>,
    /// Name.
    pub name: &'static str,
    /// Start, Unix nanoseconds.
    pub start_ns: u64,
    /// End, Unix nanoseconds.
    pub end_ns: u64,
    /// Attributes (integers and strings).
    pub attributes: Vec<(&'static str, Attr)>,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// An integer.
    Int(u64),
    /// A string.
    Str(String),
}

/// The exporter's queue and counters.
pub struct OtlpExporter {
    tx: async_channel::Sender<SpanRecord>,
    /// Spans dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Spans exported.
    pub exported: AtomicU64,
    /// Export requests that failed.
    pub failed: AtomicU64,
    next_id: AtomicU64,
    pending: Mutex<PendingSubmissions>,
}

#[derive(Default)]
struct PendingSubmissions {
    by_key: HashMap<(u64, u64), (TraceId, SpanId)>,
    order: std::collections::VecDeque<(u64, u64)>,
}

static EXPORTER: OnceLock<Arc<OtlpExporter>> = OnceLock::new();

/// The installed exporter, if tracing is on.
pub fn exporter() -> Option<&'static Arc<OtlpExporter>> {
    EXPORTER.get()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// SplitMix64: distinct IDs from a counter seeded with the time and the process ID.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl OtlpExporter {
    fn new(tx: async_channel::Sender<SpanRecord>) -> Self {
        let seed = now_ns() ^ (u64::from(std::process::id()) << 32);
        OtlpExporter {
            tx,
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            next_id: AtomicU64::new(seed),
            pending: Mutex::new(PendingSubmissions::default()),
        }
    }

    fn span_id(&self) -> SpanId {
        // Never zero: an all-zero span ID is invalid in OTLP.
        let id = mix(self.next_id.fetch_add(1, Ordering::Relaxed)).max(1);
        id.to_be_bytes()
    }

    fn trace_id(&self) -> TraceId {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&self.span_id());
        t[8..].copy_from_slice(&self.span_id());
        t
    }

    fn emit(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn expect_submission(&self, key: (u64, u64), ctx: (TraceId, SpanId)) {
        let mut p = self.pending.lock();
        if p.by_key.insert(key, ctx).is_none() {
            p.order.push_back(key);
        }
        while p.order.len() > PENDING_SUBMISSIONS_MAX {
            if let Some(old) = p.order.pop_front() {
                p.by_key.remove(&old);
            }
        }
    }

    fn take_submission(&self, key: (u64, u64)) -> Option<(TraceId, SpanId)> {
        let mut p = self.pending.lock();
        let ctx = p.by_key.remove(&key)?;
        p.order.retain(|k| *k != key);
        Some(ctx)
    }
}

/// The OTLP/HTTP JSON body of `spans` (`ExportTraceServiceRequest`).
pub fn export_request(spans: &[SpanRecord]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let attributes: Vec<Value> = s
                .attributes
                .iter()
                .map(|(k, v)| match v {
                    // OTLP JSON carries 64-bit integers as strings.
                    Attr::Int(i) => json!({"key": k, "value": {"intValue": i.to_string()}}),
                    Attr::Str(x) => json!({"key": k, "value": {"stringValue": x}}),
                })
                .collect();
            let mut span = json!({
                "traceId": hex::encode(s.trace_id),
                "spanId": hex::encode(s.span_id),
                "name": s.name,
                "kind": 1,
                "startTimeUnixNano": s.start_ns.to_string(),
                "endTimeUnixNano": s.end_ns.to_string(),
                "attributes": attributes,
            });
            if let Some(p) = s.parent {
                span["parentSpanId"] = json!(hex::encode(p));
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "ssv-node"}},
                {"key": "service.version", "value": {"stringValue": env!("CARGO_PKG_VERSION")}},
            ]},
            "scopeSpans": [{
                "scope": {"name": "ssv-node.duty"},
                "spans": spans,
            }],
        }],
    })
}

/// Turns tracing on: spans go to `{endpoint}/v1/traces` from a task on the current tokio
/// runtime. A second call keeps the first exporter.
pub fn install(endpoint: &str) -> anyhow::Result<()> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        anyhow::bail!("otlp_endpoint {endpoint:?} is not an http(s) URL");
    }
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("OTLP HTTP client: {e}"))?;
    let (tx, rx) = async_channel::bounded(SPAN_QUEUE_MAX);
    let exporter = Arc::new(OtlpExporter::new(tx));
    if EXPORTER.set(exporter.clone()).is_err() {
        return Ok(());
    }
    tokio::spawn(export_loop(rx, client, url, exporter));
    Ok(())
}

async fn export_loop(
    rx: async_channel::Receiver<SpanRecord>,
    client: reqwest::Client,
    url: String,
    exporter: Arc<OtlpExporter>,
) {
    let mut batch = Vec::with_capacity(EXPORT_BATCH_MAX);
    let mut ticks = tokio::time::interval(EXPORT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        while let Ok(span) = rx.try_recv() {
            batch.push(span);
            if batch.len() == EXPORT_BATCH_MAX {
                post(&client, &url, &exporter, &mut batch).await;
            }
        }
        if !batch.is_empty() {
            post(&client, &url, &exporter, &mut batch).await;
        }
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    exporter: &OtlpExporter,
    batch: &mut Vec<SpanRecord>,
) {
    let body = export_request(batch);
    let n = batch.len() as u64;
    batch.clear();
    match client.post(url).json(&body).send().await {
        Ok(r) if r.status().is_success() => {
            exporter.exported.fetch_add(n, Ordering::Relaxed);
        }
        Ok(r) => {
            // Counted; logged once per 100 failures so a collector that is down does not
            // flood the log.
            if exporter
                .failed
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(100)
            {
                tracing::warn!(status = %r.status(), "OTLP export refused: {n} spans lost");
            }
        }
        Err(e) => {
            if exporter
                .failed
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(100)
            {
                tracing::warn!("OTLP export failed ({e}): {n} spans lost");
            }
        }
    }
}

/// The spans of one committee duty being traced.
pub struct DutyTrace {
    exporter: &'static OtlpExporter,
    trace_id: TraceId,
    root: SpanId,
    root_start_ns: u64,
    attributes: Vec<(&'static str, Attr)>,
    consensus: Option<(SpanId, u64)>,
    round: Option<(SpanId, u64, u64)>,
    post: Option<(SpanId, u64)>,
}

impl DutyTrace {
    /// Starts the trace of a duty (its root and consensus spans), or `None` when tracing is
    /// off.
    pub fn start(slot: u64, role: &str, committee: &[u8]) -> Option<DutyTrace> {
        // First: with tracing off nothing below runs (not even the hex encoding).
        let exporter = exporter()?;
        let now = now_ns();
        Some(DutyTrace {
            exporter,
            trace_id: exporter.trace_id(),
            root: exporter.span_id(),
            root_start_ns: now,
            attributes: vec![
                ("slot", Attr::Int(slot)),
                ("role", Attr::Str(role.to_owned())),
                ("committee", Attr::Str(hex::encode(committee))),
            ],
            consensus: Some((exporter.span_id(), now)),
            round: None,
            post: None,
        })
    }

    fn emit(&self, id: SpanId, parent: SpanId, name: &'static str, start_ns: u64) {
        self.emit_with(id, parent, name, start_ns, Vec::new());
    }

    fn emit_with(
        &self,
        id: SpanId,
        parent: SpanId,
        name: &'static str,
        start_ns: u64,
        attributes: Vec<(&'static str, Attr)>,
    ) {
        self.exporter.emit(SpanRecord {
            trace_id: self.trace_id,
            span_id: id,
            parent: Some(parent),
            name,
            start_ns,
            end_ns: now_ns().max(start_ns),
            attributes,
        });
    }

    fn end_round(&mut self) {
        if let (Some((id, round, start)), Some((consensus, _))) =
            (self.round.take(), self.consensus)
        {
            self.emit_with(
                id,
                consensus,
                "qbft.round",
                start,
                vec![("round", Attr::Int(round))],
            );
        }
    }

    /// QBFT round `round` started (a timer for it was armed): the previous round's span ends.
    pub fn round(&mut self, round: u64) {
        if self.consensus.is_none() || self.round.is_some_and(|(_, r, _)| r == round) {
            return;
        }
        self.end_round();
        self.round = Some((self.exporter.span_id(), round, now_ns()));
    }

    /// The duty decided: consensus ends, post-consensus starts.
    pub fn decided(&mut self) {
        self.end_round();
        if let Some((id, start)) = self.consensus.take() {
            self.emit(id, self.root, "consensus", start);
            self.post = Some((self.exporter.span_id(), now_ns()));
        }
    }

    /// Signatures were reconstructed and handed to the submitter: post-consensus ends, and a
    /// submission span is expected for the attestations whose first attester is
    /// `first_attester`.
    pub fn reconstructed(&mut self, slot: u64, first_attester: Option<u64>) {
        if let Some((id, start)) = self.post.take() {
            self.emit(id, self.root, "post_consensus", start);
        }
        if let Some(a) = first_attester {
            self.exporter
                .expect_submission((slot, a), (self.trace_id, self.root));
        }
    }

    /// The duty is complete: the root span ends (spans still open end with it).
    pub fn finish(mut self) {
        self.end_round();
        if let Some((id, start)) = self.consensus.take() {
            self.emit(id, self.root, "consensus", start);
        }
        if let Some((id, start)) = self.post.take() {
            self.emit(id, self.root, "post_consensus", start);
        }
        self.exporter.emit(SpanRecord {
            trace_id: self.trace_id,
            span_id: self.root,
            parent: None,
            name: "duty",
            start_ns: self.root_start_ns,
            end_ns: now_ns().max(self.root_start_ns),
            attributes: std::mem::take(&mut self.attributes),
        });
    }
}

/// A submission being timed (see [`submission`]).
pub struct SubmissionSpan {
    exporter: &'static OtlpExporter,
    trace_id: TraceId,
    parent: SpanId,
    start_ns: u64,
}

/// The submission span of the duty whose attestations start with `first_attester` at
/// `slot`, if that duty is traced.
pub fn submission(slot: u64, first_attester: u64) -> Option<SubmissionSpan> {
    let exporter = exporter()?;
    let (trace_id, parent) = exporter.take_submission((slot, first_attester))?;
    Some(SubmissionSpan {
        exporter,
        trace_id,
        parent,
        start_ns: now_ns(),
    })
}

impl SubmissionSpan {
    /// The beacon node answered (`ok`) or failed.
    pub fn end(self, count: usize, ok: bool) {
        let id = self.exporter.span_id();
        self.exporter.emit(SpanRecord {
            trace_id: self.trace_id,
            span_id: id,
            parent: Some(self.parent),
            name: "submission",
            start_ns: self.start_ns,
            end_ns: now_ns().max(self.start_ns),
            attributes: vec![
                ("attestations", Attr::Int(count as u64)),
                ("ok", Attr::Str(ok.to_string())),
            ],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_means_no_trace_at_all() {
        // This test process never installs an exporter.
        assert!(exporter().is_none());
        assert!(DutyTrace::start(1, "committee", &[0xab]).is_none());
        assert!(submission(1, 2).is_none());
    }

    #[test]
    fn a_duty_yields_one_tree_and_an_otlp_body() {
        let (tx, rx) = async_channel::bounded(64);
        let exporter: &'static OtlpExporter = Box::leak(Box::new(OtlpExporter::new(tx)));
        let now = now_ns();
        let mut t = DutyTrace {
            exporter,
            trace_id: exporter.trace_id(),
            root: exporter.span_id(),
            root_start_ns: now,
            attributes: vec![("slot", Attr::Int(9))],
            consensus: Some((exporter.span_id(), now)),
            round: None,
            post: None,
        };
        t.round(1);
        t.round(1);
        t.round(2);
        t.decided();
        t.reconstructed(9, Some(4));
        let root = t.root;
        let trace = t.trace_id;
        t.finish();
        let (tid, parent) = exporter.take_submission((9, 4)).expect("expected");
        assert_eq!((tid, parent), (trace, root));
        assert!(exporter.take_submission((9, 4)).is_none(), "taken once");
        let spans: Vec<SpanRecord> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let names: Vec<&str> = spans.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "qbft.round",
                "qbft.round",
                "consensus",
                "post_consensus",
                "duty"
            ]
        );
        let consensus = spans[2].span_id;
        assert!(spans.iter().all(|s| s.trace_id == trace));
        assert_eq!(spans[0].parent, Some(consensus));
        assert_eq!(spans[1].attributes, vec![("round", Attr::Int(2))]);
        assert_eq!(spans[2].parent, Some(root));
        assert_eq!(spans[3].parent, Some(root));
        assert_eq!((spans[4].parent, spans[4].span_id), (None, root));
        assert!(spans.iter().all(|s| s.end_ns >= s.start_ns));
        let ids: std::collections::HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
        assert_eq!(ids.len(), spans.len(), "distinct span IDs");

        let body = export_request(&spans);
        let s = &body["resourceSpans"][0]["scopeSpans"][0]["spans"];
        assert_eq!(s.as_array().expect("spans").len(), 5);
        assert_eq!(s[4]["traceId"], hex::encode(trace));
        assert_eq!(s[4]["traceId"].as_str().expect("hex").len(), 32);
        assert!(s[4].get("parentSpanId").is_none());
        assert_eq!(s[0]["parentSpanId"], hex::encode(consensus));
        assert_eq!(s[4]["attributes"][0]["value"]["intValue"], "9");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (tx, _rx) = async_channel::bounded(1);
        let e = OtlpExporter::new(tx);
        let span = SpanRecord {
            trace_id: [1; 16],
            span_id: [1; 8],
            parent: None,
            name: "x",
            start_ns: 0,
            end_ns: 0,
            attributes: vec![],
        };
        e.emit(span.clone());
        e.emit(span);
        assert_eq!(e.dropped.load(Ordering::Relaxed), 1);
        for k in 0..(PENDING_SUBMISSIONS_MAX as u64 + 10) {
            e.expect_submission((k, 0), ([0; 16], [0; 8]));
        }
        assert!(e.take_submission((0, 0)).is_none(), "oldest evicted");
        assert!(
            e.take_submission((PENDING_SUBMISSIONS_MAX as u64 + 9, 0))
                .is_some()
        );
    }
}
