//! OTLP traces from running nodes: a devnet whose nodes get `OTEL_EXPORTER_OTLP_ENDPOINT`
//! pointing at a receiver in this test (an axum server taking `POST /v1/traces`). Every
//! committee duty with attestations must arrive as one trace: a `duty` root, `consensus`
//! with its `qbft.round` spans, `post_consensus` and `submission`, all children of the root
//! (rounds of `consensus`), all with the root's trace ID.
//!
//! About 30 s (6 s start delay, 10 slots of 1 s, shutdown).

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::TestDir;
use serde_json::Value;

type Spans = Arc<Mutex<Vec<Value>>>;

async fn receive(State(spans): State<Spans>, Json(body): Json<Value>) -> &'static str {
    let mut out = spans.lock().expect("lock");
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
        }
    }
    "{}"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duty_traces_reach_an_otlp_receiver_with_the_duty_tree() {
    let spans: Spans = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = TestDir::new("otlp");
    let data = dir.0.join("devnet");
    let endpoint = format!("http://{addr}");
    let data_arg = data.clone();
    // The devnet runs on a blocking thread: the receiver keeps serving on this runtime.
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ssv-node"))
            .args([
                "devnet",
                "--operators",
                "4",
                // Enough validators that some attest within the 10 counted slots.
                "--validators",
                "32",
                "--slots",
                "10",
                "--slot-ms",
                "1000",
                "--data-dir",
            ])
            .arg(&data_arg)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run ssv-node devnet")
    })
    .await
    .expect("devnet thread");
    let log = data.join("op1").join("node.log");
    assert!(
        status.success(),
        "devnet {status}:\n{}",
        ssv_devnet::log_tail(&log)
    );

    let spans = spans.lock().expect("lock").clone();
    assert!(!spans.is_empty(), "no span received");
    let mut by_trace: HashMap<String, Vec<&Value>> = HashMap::new();
    for s in &spans {
        let t = s["traceId"].as_str().expect("traceId");
        assert_eq!(t.len(), 32, "{s}");
        by_trace.entry(t.to_owned()).or_default().push(s);
    }
    let name = |s: &Value| s["name"].as_str().unwrap_or("").to_owned();
    let mut complete = 0;
    for (trace, spans) in &by_trace {
        let ids: HashMap<&str, &Value> = spans
            .iter()
            .map(|s| (s["spanId"].as_str().expect("spanId"), *s))
            .collect();
        assert_eq!(ids.len(), spans.len(), "distinct span IDs in {trace}");
        let roots: Vec<&&Value> = spans
            .iter()
            .filter(|s| s.get("parentSpanId").is_none())
            .collect();
        // A trace may arrive in pieces across export batches; check each whole one.
        let [root] = roots.as_slice() else { continue };
        assert_eq!(name(root), "duty", "{root}");
        let root_id = root["spanId"].as_str().expect("id");
        let parent_of = |s: &Value| s["parentSpanId"].as_str().unwrap_or("").to_owned();
        let children =
            |n: &str| -> Vec<&Value> { spans.iter().copied().filter(|s| name(s) == n).collect() };
        for s in spans.iter().filter(|s| s.get("parentSpanId").is_some()) {
            assert!(
                ids.contains_key(parent_of(s).as_str()),
                "parent of {s} not in its trace"
            );
        }
        let (consensus, post, submission, rounds) = (
            children("consensus"),
            children("post_consensus"),
            children("submission"),
            children("qbft.round"),
        );
        if consensus.len() != 1 || post.len() != 1 || submission.len() != 1 || rounds.is_empty() {
            continue;
        }
        for s in [consensus[0], post[0], submission[0]] {
            assert_eq!(parent_of(s), root_id, "{s}");
        }
        let consensus_id = consensus[0]["spanId"].as_str().expect("id");
        for r in &rounds {
            assert_eq!(parent_of(r), consensus_id, "{r}");
        }
        let t = |s: &Value, k: &str| -> u64 {
            s[k].as_str().and_then(|x| x.parse().ok()).expect("time")
        };
        assert!(t(consensus[0], "endTimeUnixNano") <= t(post[0], "startTimeUnixNano") + 1);
        assert!(t(root, "startTimeUnixNano") <= t(consensus[0], "startTimeUnixNano"));
        complete += 1;
    }
    assert!(
        complete > 0,
        "no trace with duty, consensus, qbft.round, post_consensus and submission among {} \
         traces ({} spans)",
        by_trace.len(),
        spans.len()
    );
}
