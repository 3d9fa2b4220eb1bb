//! An exporter that follows the SSV contract (`ssv-node devnet --execution-endpoint URL
//! --live-registry --exporter`): the exporter's registry comes from contract sync against a
//! real dev node (hardhat), as the operators' does, without an operator key. It starts with
//! the first owner's validators; the devnet's live-registry driver adds four validators of a
//! second owner while everything runs (then removes, liquidates, reactivates). The exporter
//! must rebuild its registry from the store it syncs and serve, on its decided API, the
//! committee instances decided for the added validators: an exporter that kept the registry
//! it loaded at start does not know them ("validator not found by index"), and the query
//! stays empty.
//!
//! About 60 s: hardhat, contract deployment and registration, 38 slots of 1 s.

mod common;
#[path = "../../testdata/eth/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDir;
use harness::DevNode;

/// The devnet's validators; the last four ([`LATE`]) are added while it runs.
const VALIDATORS: u64 = 12;
/// Beacon indices of the validators the live-registry driver adds (`ssv_devnet::live::LATE`
/// last ones; the simulator's index is the set-up's).
const LATE: [u64; 4] = [8, 9, 10, 11];

fn log_api_addr(log: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let marker = "exporter API on http://";
    let at = text.find(marker)? + marker.len();
    Some(
        text[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_following_the_contract_serves_decideds_of_validators_added_while_it_runs() {
    require_dev_node!();
    let node = DevNode::start().await;
    let dir = TestDir::new("exporter-live");
    let data = dir.0.join("devnet");
    let summary = dir.0.join("summary.json");
    let out_path = dir.0.join("devnet.out");
    let err_path = dir.0.join("devnet.err");
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_ssv-node"))
        .arg("devnet")
        .args(["--operators", "4", "--validators", &VALIDATORS.to_string()])
        .args(["--slots", "38", "--slot-ms", "1000"])
        .args(["--live-registry", "--exporter"])
        .arg("--execution-endpoint")
        .arg(node.http_url())
        .arg("--data-dir")
        .arg(&data)
        .arg("--json-summary")
        .arg(&summary)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::from(
            std::fs::File::create(&out_path).expect("stdout file"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(&err_path).expect("stderr file"),
        ))
        .spawn()
        .expect("start ssv-node devnet");
    let show = || {
        format!(
            "devnet stderr:\n{}\nexporter log tail:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default(),
            std::fs::read_to_string(data.join("exporter/node.log"))
                .unwrap_or_default()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    };

    let exporter_log = data.join("exporter/node.log");
    let deadline = Instant::now() + Duration::from_secs(90);
    let api = loop {
        if let Some(a) = log_api_addr(&exporter_log) {
            break a;
        }
        assert!(
            devnet.try_wait().expect("devnet status").is_none(),
            "the devnet ended before the exporter served its API\n{}",
            show()
        );
        assert!(
            Instant::now() < deadline,
            "no exporter API address\n{}",
            show()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // While the devnet runs: the added validators' committee instances, by their indices.
    let http = reqwest::Client::new();
    let indices = LATE.map(|i| i.to_string()).join(",");
    let url = format!(
        "http://{api}/v1/exporter/decideds?from=0&to=100000&roles=ATTESTER&indices={indices}"
    );
    let mut last = serde_json::Value::Null;
    let served: BTreeSet<String> = loop {
        if devnet.try_wait().expect("devnet status").is_some() {
            break BTreeSet::new();
        }
        if let Ok(r) = http.get(&url).send().await
            && let Ok(v) = r.json::<serde_json::Value>().await
        {
            let keys: BTreeSet<String> = v["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["public_key"].as_str().map(str::to_owned))
                .collect();
            last = v;
            if keys.len() == LATE.len() {
                break keys;
            }
        }
        if Instant::now() >= deadline {
            break BTreeSet::new();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let status = tokio::task::spawn_blocking(move || devnet.wait())
        .await
        .expect("wait task")
        .expect("devnet exit status");
    assert_eq!(
        served.len(),
        LATE.len(),
        "the exporter served no decided instance for some added validator; last answer: \
         {last}\n{}",
        show()
    );
    assert!(status.success(), "devnet failed\n{}", show());

    // The devnet's own verdict: the registry changes reached the operators as well.
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary written"))
            .expect("summary JSON");
    assert_eq!(s["live"]["failures"], serde_json::json!([]), "{}", show());

    // The exporter started before the added validators existed (contract sync's history
    // ends `follow_distance` blocks behind the head, so it may hold none of them yet) and
    // rebuilt its registry while it ran, without a restart: to the 12 validators after the
    // addition, then to 10 after validators 0 and 1 were removed (their messages refused).
    let log = std::fs::read_to_string(&exporter_log).expect("exporter log");
    let counts = |marker: &str| -> Vec<u64> {
        log.lines()
            .filter(|l| l.contains(marker))
            .filter_map(|l| {
                let at = l.find(" validators=")? + " validators=".len();
                l[at..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .collect()
    };
    let loaded = counts("exporter registry loaded");
    assert_eq!(loaded.len(), 1, "one start\n{}", show());
    assert!(
        loaded[0] < VALIDATORS,
        "the exporter starts before the added validators exist: {loaded:?}"
    );
    let rebuilt = counts("exporter registry rebuilt");
    let added = rebuilt
        .iter()
        .position(|n| *n == VALIDATORS)
        .unwrap_or_else(|| panic!("no rebuild with the added validators: {rebuilt:?}"));
    assert!(
        rebuilt[added..].contains(&(VALIDATORS - 2)),
        "no rebuild without the removed validators: {rebuilt:?}"
    );
}
