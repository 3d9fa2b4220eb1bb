//! `ssv-node devnet --execution-endpoint`: the registry reaches the nodes through a real
//! Ethereum dev node (hardhat, installed by `testdata/eth/setup.sh`) and contract sync into
//! each node's MDBX store, instead of seeded databases; every duty must still be done.

mod common;
#[path = "../../testdata/eth/harness.rs"]
mod harness;

use common::{TestDir, devnet_on_chain, show};
use harness::DevNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_learns_its_registry_by_contract_sync() {
    require_dev_node!();
    let node = DevNode::start().await;
    let dir = TestDir::new("devnet-eth");
    let (out, s) = devnet_on_chain(
        node.http_url(),
        &["--operators", "4", "--validators", "24", "--slots", "4"],
        &dir.0,
    )
    .await;
    let show = show(&out);
    assert!(out.status.success(), "{show}");
    let s = s.expect("summary");
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
        let log =
            std::fs::read_to_string(dir.0.join(format!("devnet/op{id}/node.log"))).expect("log");
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
