//! `ssv-node devnet --execution-endpoint`: the registry reaches the nodes through a real
//! Ethereum dev node (hardhat, installed by `testdata/eth/setup.sh`) and contract sync into
//! each node's MDBX store, instead of seeded databases; every duty must still be done.

#[path = "../../testdata/eth/harness.rs"]
mod harness;

use std::process::Command;

use harness::DevNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_learns_its_registry_by_contract_sync() {
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
                    "24",
                    "--slots",
                    "4",
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
    assert_eq!(s["missed"], 0, "{show}");
    assert_eq!(s["attestations_invalid"], 0, "{show}");
    assert_eq!(
        s["attestations_valid"], s["attestations_expected"],
        "{show}"
    );
    assert_eq!(
        s["sync_messages_valid"], s["sync_messages_expected"],
        "{show}"
    );
    // The nodes' stores were filled by contract sync, not seeded: each log says so.
    for id in 1..=4 {
        let log = std::fs::read_to_string(data.join(format!("op{id}/node.log"))).expect("log");
        assert!(
            log.contains("contract history synced"),
            "operator {id} did not sync the contract:\n{log}"
        );
        assert!(
            log.contains("validators=24"),
            "operator {id} does not run the 24 registered validators:\n{log}"
        );
    }
}
