//! Live registry changes (`ssv-node devnet --execution-endpoint URL --live-registry`): a
//! devnet whose registry comes from a real dev node (hardhat) by contract sync, in which
//! validators are added by a second owner, removed, one exit is requested, a fee recipient
//! is updated and a cluster is liquidated and reactivated while the nodes run. The devnet's
//! live report (see `ssv_devnet::live`) checks the simulator's submission record slot by
//! slot: each change takes effect in its first eligible slot after it became final for the
//! nodes, a removed or liquidated validator signs nothing after that point, and the other
//! validators miss nothing. The added validators' deposits are processed a few slots late
//! (the nodes look their index up until the beacon node knows them), and one validator exits
//! on the beacon chain (the nodes stop it after their next status check). Nothing restarts
//! (each node's log has one start).

mod common;
#[path = "../../testdata/eth/harness.rs"]
mod harness;

use common::{TestDir, devnet_on_chain, show};
use harness::DevNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_changes_reach_the_running_nodes_in_their_first_eligible_slot() {
    require_dev_node!();
    let node = DevNode::start().await;
    let dir = TestDir::new("live-registry");
    let (out, s) = devnet_on_chain(
        node.http_url(),
        &[
            "--operators",
            "4",
            "--validators",
            "12",
            "--slots",
            "38",
            "--slot-ms",
            "1000",
            "--live-registry",
        ],
        &dir.0,
    )
    .await;
    let show = show(&out);
    assert!(out.status.success(), "{show}");
    let s = s.expect("summary");
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
            "reactivated",
            "beacon exit"
        ],
        "{show}"
    );
    assert_eq!(s["attestations_invalid"], 0, "{show}");
    assert_eq!(s["sync_messages_invalid"], 0, "{show}");
    assert_eq!(s["slashable_submissions"], 0, "{show}");
    for id in 1..=4 {
        let log =
            std::fs::read_to_string(dir.0.join(format!("devnet/op{id}/node.log"))).expect("log");
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
