//! The node API of a running devnet node: `ssv-node devnet` starts four `ssv-node start`
//! processes, each with an API on a free loopback port (logged as `api on http://ADDR`);
//! while they run, operator 1's API must list its peers (the three others, connected over
//! libp2p), its topics, the devnet's validators (with the filters), and report healthy.
//!
//! About 30 s (6 s start delay, 16 slots of 1 s, shutdown).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDir;
use serde_json::Value;

/// `GET url` over plain HTTP/1.1: status and body.
fn get(base: &str, path: &str) -> std::io::Result<(u16, String)> {
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end: {raw:?}")))?;
    let status = head
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status: {head:?}")))?;
    Ok((status, body.to_owned()))
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn a_devnet_nodes_api_answers_with_its_peers_topics_validators_and_health() {
    let dir = TestDir::new("api");
    let data = dir.0.join("devnet");
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_ssv-node"))
        .args([
            "devnet",
            "--operators",
            "4",
            "--validators",
            "4",
            "--slots",
            "16",
            "--slot-ms",
            "1000",
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ssv-node devnet");
    let log = data.join("op1").join("node.log");

    // What must be seen while the nodes run; each is retried until it holds, since the
    // nodes connect to each other and probe their beacon node over the first seconds.
    let mut base = None;
    let mut peers_seen = false;
    let mut topics_seen = false;
    let mut validators_seen = false;
    let mut healthy = false;
    // `/health` on the metrics port answers from the same probes.
    let mut metrics_healthy = false;
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline
        && !(peers_seen && topics_seen && validators_seen && healthy && metrics_healthy)
    {
        if devnet.try_wait().expect("poll devnet").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        let Some(b) = base.clone().or_else(|| ssv_devnet::api_url(&log)) else {
            continue;
        };
        base = Some(b.clone());
        let Ok((code, body)) = get(&b, "/v1/node/identity") else {
            continue;
        };
        assert_eq!(code, 200, "{body}");
        let identity = json(&body);
        let own_id = identity["peer_id"].as_str().expect("peer_id").to_owned();
        assert!(own_id.starts_with("16Uiu2"), "{identity}");
        assert!(
            identity["addresses"][0]
                .as_str()
                .is_some_and(|a| a.starts_with("/ip4/127.0.0.1/tcp/")),
            "{identity}"
        );
        // The devnet's one committee is on one subnet.
        let subnets = identity["subnets"].as_str().expect("subnets");
        assert_eq!(subnets.len(), 32, "{identity}");
        assert!(subnets.chars().any(|c| c != '0'), "{identity}");

        let (code, body) = get(&b, "/v1/node/peers").expect("peers");
        assert_eq!(code, 200, "{body}");
        let peers = json(&body);
        let verified: Vec<&Value> = peers
            .as_array()
            .expect("array")
            .iter()
            .filter(|p| {
                p["version"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("ssv-node-rs/"))
            })
            .collect();
        if verified.len() >= 3 {
            peers_seen = true;
            for p in &verified {
                assert_eq!(p["connectedness"], "Connected", "{p}");
                assert_ne!(p["id"], own_id.as_str());
                let dir = p["connections"][0]["direction"]
                    .as_str()
                    .expect("direction");
                assert!(dir == "Inbound" || dir == "Outbound", "{p}");
                assert_eq!(p["subnets"], subnets, "same committee, same subnet: {p}");
            }
        }

        let (code, body) = get(&b, "/v1/node/topics").expect("topics");
        assert_eq!(code, 200, "{body}");
        let topics = json(&body);
        if let Some(t) = topics["peers_by_topic"]
            .as_array()
            .expect("array")
            .iter()
            .find(|t| !t["peers"].as_array().expect("peers").is_empty())
        {
            assert!(
                t["topic"].as_str().expect("topic").starts_with("ssv.v2."),
                "{t}"
            );
            topics_seen = !topics["all_peers"].as_array().expect("all").is_empty();
        }

        let (code, body) = get(&b, "/v1/validators").expect("validators");
        assert_eq!(code, 200, "{body}");
        let all = json(&body);
        let data = all["data"].as_array().expect("data");
        assert_eq!(data.len(), 4, "{all}");
        for v in data {
            assert_eq!(v["committee"], serde_json::json!([1, 2, 3, 4]), "{v}");
            assert_eq!(
                (v["quorum"].as_u64(), v["partial_quorum"].as_u64()),
                (Some(3), Some(2))
            );
        }
        let (_, body) = get(&b, "/v1/validators?operators=9").expect("filtered");
        assert_eq!(json(&body)["data"], serde_json::json!([]));
        let pk = data[2]["public_key"].as_str().expect("key");
        let (_, body) = get(&b, &format!("/v1/validators?pubkeys=0x{pk}")).expect("filtered");
        assert_eq!(json(&body)["data"][0]["public_key"], pk);
        let (code, body) = get(&b, "/v1/validators?indices=one").expect("bad");
        assert_eq!(code, 400, "{body}");
        assert_eq!(json(&body)["status"], "Bad Request");
        validators_seen = true;

        let (code, body) = get(&b, "/v1/node/health").expect("health");
        assert_eq!(code, 200, "{body}");
        let h = json(&body);
        // No execution endpoint in this devnet: contract sync is not part of the node.
        assert_eq!(h["execution_node"], "disabled", "{h}");
        assert_eq!(h["event_syncer"], "disabled", "{h}");
        let all_good = h["p2p"] == "good" && h["beacon_node"] == "good";
        let (code, body) = get(&b, "/health").expect("/health");
        if code == 200 {
            assert_eq!(body, "\n");
            healthy = healthy || all_good;
        } else {
            assert_eq!(code, 500, "{body}");
            last = body;
        }
        if let Some(m) = ssv_devnet::metrics_url(&log) {
            let m = m.trim_end_matches("/metrics");
            let (code, body) = get(m, "/health").expect("metrics /health");
            if code == 200 {
                assert_eq!(body, "\n");
                metrics_healthy = metrics_healthy || all_good;
            } else {
                assert_eq!(code, 500, "{body}");
                assert!(json(&body)["errors"].is_array(), "{body}");
            }
        }
    }
    let status = devnet.wait().expect("devnet ends");
    assert!(
        peers_seen && topics_seen && validators_seen && healthy && metrics_healthy,
        "peers {peers_seen} topics {topics_seen} validators {validators_seen} healthy \
         {healthy} metrics port healthy {metrics_healthy} (last /health: {last}); api \
         {base:?}; devnet {status}; log tail:\n{}",
        ssv_devnet::log_tail(&log)
    );
    assert!(status.success(), "devnet {status}");
}
