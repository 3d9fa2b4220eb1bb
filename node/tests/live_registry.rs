//! Live registry changes (`ssv-node devnet --execution-endpoint URL --live-registry`): a
//! devnet whose registry comes from a real dev node (hardhat) by contract sync, in which
//! validators are added by a second owner, removed, one exit is requested, a fee recipient
//! is updated and a cluster is liquidated and reactivated while the nodes run. The devnet's
//! live report (see `ssv_devnet::live`) checks the simulator's submission record slot by
//! slot: each change takes effect in its first eligible slot after it became final for the
//! nodes, a removed or liquidated validator signs nothing after that point, and the other
//! validators miss nothing. Nothing restarts (each node's log has one start).

#[path = "../../testdata/eth/harness.rs"]
mod harness;

use std::process::Command;

use harness::DevNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_changes_reach_the_running_nodes_in_their_first_eligible_slot() {
    require_dev_node!();
    let node = DevNode::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("devnet");
    let summary = dir.path().join("summary.json");
    let url = node.http_url();
    let out = tokio::task::spawn_blocking({
        let data = data.clone();
        let summary = summary.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_ssv-node"))
                .args([
                    "devnet",
                    "--operators",
                    "4",
                    "--validators",
                    "12",
                    "--slots",
                    "20",
                    "--slot-ms",
                    "1000",
                    "--live-registry",
                ])
                .arg("--execution-endpoint")
                .arg(&url)
                .arg("--data-dir")
                .arg(&data)
                .arg("--json-summary")
                .arg(&summary)
                .env_remove("RUST_BACKTRACE")
                .output()
                .expect("run ssv-node devnet")
        }
    })
    .await
    .expect("devnet task");
    let show = format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{show}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("json");
    let live = &s["live"];
    assert_eq!(live["failures"], serde_json::json!([]), "{show}");
    let events = live["events"].as_array().expect("events");
    let names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "added",
            "removed",
            "exit requested",
            "fee recipient",
            "liquidated",
            "reactivated"
        ],
        "{show}"
    );
    assert_eq!(s["attestations_invalid"], 0, "{show}");
    assert_eq!(s["sync_messages_invalid"], 0, "{show}");
    assert_eq!(s["slashable_submissions"], 0, "{show}");
    for id in 1..=4 {
        let log = std::fs::read_to_string(data.join(format!("op{id}/node.log"))).expect("log");
        assert_eq!(
            log.matches("node running").count(),
            1,
            "operator {id} restarted:\n{log}"
        );
        assert!(
            log.contains("registry updated"),
            "operator {id} applied no registry change:\n{log}"
        );
    }
}
