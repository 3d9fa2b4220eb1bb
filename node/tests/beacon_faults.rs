//! The hostile-beacon harness: `ssv-node devnet --beacon-fault MODE` serves four real nodes a
//! lying or misbehaving beacon node, and the simulator checks every correctly signed
//! attestation it receives for slashable pairs (double and surround votes). Every mode must
//! end with no slashable submission and every node still running (`spec-zero`: every node
//! refusing to start with a clear line); the kill-and-restart run must do the same with the
//! restarted node refusing the lies from its own records.
//!
//! Each run is `--operators 4 --validators 64 --slots 12` (about 45 s; `spec-zero` a few).
//!
//! A lagging beacon node listed first, with a healthy one second (`--lagging-beacon-node`):
//! every duty of every type is done through the healthy one, and the lagging one is probed
//! and subscribed to but asked nothing else (about 35 s).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{TestDir, show};

use serde_json::Value;

/// One devnet at a time: the runs share this machine's two cores with nothing else.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the devnet against `mode` (plus `extra` flags); returns the summary and the data dir.
fn run(mode: &str, extra: &[&str], dir: &TestDir) -> (Value, PathBuf) {
    let mut args = vec![
        "--validators",
        "64",
        "--slots",
        "12",
        "--beacon-fault",
        mode,
    ];
    args.extend_from_slice(extra);
    devnet(mode, &args, dir)
}

/// Runs `ssv-node devnet --operators 4` with `args`; asserts it passed with nothing
/// slashable and returns the summary and the data dir.
fn devnet(name: &str, args: &[&str], dir: &TestDir) -> (Value, PathBuf) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let summary = dir.0.join("summary.json");
    let data = dir.0.join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_ssv-node"))
        .args(["devnet", "--operators", "4"])
        .args(args)
        .arg("--json-summary")
        .arg(&summary)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run ssv-node devnet");
    assert!(out.status.success(), "{name}: {}", show(&out));
    let text = std::fs::read_to_string(&summary).expect("summary written");
    let s: Value = serde_json::from_str(&text).expect("summary is JSON");
    assert_eq!(s["slashable_submissions"], 0, "{name}: {}", show(&out));
    assert_eq!(s["passed"], true, "{name}: {}", show(&out));
    (s, data)
}

fn all_stopped_cleanly(s: &Value) {
    for o in s["operator_exits"].as_array().expect("exits") {
        assert_eq!(o["clean"], true, "{o}");
    }
}

fn n(s: &Value, field: &str) -> u64 {
    s[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {s}"))
}

/// Duplicate duties (same pubkey, and with a fake pubkey), data for the next epoch's target,
/// a 4 GiB body and responses past the timeouts: nothing slashable, nobody down, and each lie
/// was seen and refused.
#[test]
fn lying_and_misbehaving_beacon_nodes() {
    for mode in ["duplicate-duty-fake-pubkey", "duplicate-duty"] {
        let dir = TestDir::new(mode);
        let (s, _) = run(mode, &[], &dir);
        all_stopped_cleanly(&s);
        assert!(n(&s, "beacon_duties_refused") > 0, "{mode}: {s}");
        assert_eq!(
            n(&s, "attestations_invalid"),
            0,
            "{mode}: nothing off-duty signed"
        );
    }
    let dir = TestDir::new("future-target");
    let (s, _) = run("future-target", &[], &dir);
    all_stopped_cleanly(&s);
    assert!(n(&s, "beacon_data_refused") > 0, "{s}");
    assert_eq!(
        n(&s, "attestations_invalid"),
        0,
        "no future-target data signed"
    );
    assert!(n(&s, "attestations_valid") > 0, "even slots still attested");

    for mode in ["huge-body", "slow"] {
        let dir = TestDir::new(mode);
        let (s, _) = run(mode, &[], &dir);
        all_stopped_cleanly(&s);
        assert!(
            n(&s, "attestations_valid") > 0,
            "{mode}: the slots without the fault were attested: {s}"
        );
    }
}

/// The lagging node (16 slots behind; it says it is syncing and serves stale attestation data
/// that the simulator would count invalid) is listed first in every node's `beacon_nodes`,
/// the in-sync one second: every duty of every type is valid, none missed, and the lagging
/// node got health probes and head-event subscriptions only — no duty request, nothing else.
#[test]
fn a_lagging_beacon_node_is_failed_over() {
    let dir = TestDir::new("lagging");
    let (s, data) = devnet(
        "lagging",
        &[
            "--validators",
            "32",
            "--slots",
            "8",
            "--slot-ms",
            "2000",
            "--all-duties",
            "--lagging-beacon-node",
        ],
        &dir,
    );
    all_stopped_cleanly(&s);
    assert_eq!(n(&s, "missed"), 0, "{s}");
    for duty in [
        "attestations",
        "sync_messages",
        "proposals",
        "aggregations",
        "contributions",
        "registrations",
        "exits",
    ] {
        assert_eq!(n(&s, &format!("{duty}_invalid")), 0, "{duty}: {s}");
        assert_eq!(
            n(&s, &format!("{duty}_valid")),
            n(&s, &format!("{duty}_expected")),
            "{duty}: {s}"
        );
    }
    assert!(n(&s, "proposals_expected") > 0, "{s}");
    let lagging = &s["lagging_beacon_node"];
    assert_eq!(n(lagging, "duty_requests"), 0, "{s}");
    assert_eq!(n(lagging, "other_requests"), 0, "{s}");
    // Every node probed it from the start (once a slot) and took its head events.
    assert!(n(lagging, "syncing_requests") >= 4 * 8, "{s}");
    assert!(n(lagging, "head_subscriptions") >= 4, "{s}");
    assert!(
        n(&s["node_counters"], "ssv_beacon_nodes_unhealthy_total") >= 4 * 8,
        "{s}"
    );
    let log = std::fs::read_to_string(data.join("op1").join("node.log")).expect("log");
    assert!(
        log.contains("beacon node unhealthy") && log.contains("sync_distance=16"),
        "the node says why it passes the first node over: {log}"
    );
}

#[test]
fn spec_zero_is_refused_at_start() {
    let dir = TestDir::new("spec-zero");
    let (s, data) = run("spec-zero", &[], &dir);
    assert_eq!(n(&s, "refused_to_start"), 4, "{s}");
    let log = std::fs::read_to_string(data.join("op1").join("node.log")).expect("log");
    assert!(
        log.contains("the beacon node's chain spec") && log.contains("slot duration"),
        "{log}"
    );
}

/// Operator 4 is killed (SIGKILL) in epoch 1 and restarted from its data directory in the
/// same epoch; the beacon node keeps listing duplicate duties. Nothing slashable, the
/// restarted node refuses the duplicates after its restart, and its slashing-protection
/// records of before the kill are still in its database.
#[test]
fn a_killed_and_restarted_node_keeps_refusing() {
    let dir = TestDir::new("restart");
    let (s, data) = run(
        "duplicate-duty",
        &[
            "--kill-operator",
            "4",
            "--kill-at-slot",
            "4",
            "--restart-after-ms",
            "2500",
        ],
        &dir,
    );
    assert_eq!(s["restarted_operator"], 4);
    let op4 = data.join("op4");
    let log = std::fs::read_to_string(op4.join("node.log")).expect("log");
    let after = log
        .rsplit_once("node running")
        .map(|(_, tail)| tail)
        .unwrap_or_default();
    assert!(
        log.matches("node running").count() >= 2,
        "started twice: {log}"
    );
    assert!(
        after.contains("attester duty from the beacon node refused"),
        "the restarted node refuses the duplicate duties: {after}"
    );
    // Its records survived the kill: export them and find attestations of epoch 1.
    let export = dir.0.join("op4-export.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ssv-node"))
        .args(["slashing-protection", "export", "--config"])
        .arg(op4.join("config.toml"))
        .arg(&export)
        .args(["--genesis-validators-root", &gvr_of(&log)])
        .output()
        .expect("export");
    assert!(out.status.success(), "{}", show(&out));
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&export).expect("export file")).expect("json");
    let targets: Vec<&str> = doc["data"]
        .as_array()
        .expect("data")
        .iter()
        .flat_map(|r| r["signed_attestations"].as_array().expect("attestations"))
        .filter_map(|a| a["target_epoch"].as_str())
        .collect();
    assert!(targets.contains(&"1"), "records of epoch 1: {targets:?}");
}

/// The genesis validators root a node logged at start (`gvr=…`).
fn gvr_of(log: &str) -> String {
    let at = log.find("gvr=").expect("the node logs its gvr") + 4;
    let hex: String = log[at..]
        .trim_start_matches('"')
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(hex.len(), 64, "{hex}");
    format!("0x{hex}")
}
