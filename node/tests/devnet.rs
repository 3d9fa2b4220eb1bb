//! `ssv-node devnet` end to end: the real binary starts the beacon simulator and four
//! `ssv-node start` processes talking libp2p on loopback, and must complete every duty with
//! one operator killed mid-run, with one operator sending corrupted partial signatures, with
//! a hostile peer flooding the committee's subnet, and with doppelganger protection against
//! validators live elsewhere.
//!
//! Each test takes 20 to 60 s (6 s start delay, 5 to 40 slots of 1 to 7 s, 2 settle slots,
//! shutdown).

mod common;

use std::path::Path;

use common::{TestDir, show};
use std::process::{Command, Output};

fn devnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssv-node"))
        .arg("devnet")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run ssv-node devnet")
}

fn summary(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("summary written");
    serde_json::from_str(&text).expect("summary is JSON")
}

fn u(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Every expected duty valid, none invalid or missed, and duties actually happened.
fn assert_all_duties_done(s: &serde_json::Value, slots: u64) {
    assert_eq!(u(s, "slots"), slots);
    assert_eq!(u(s, "missed"), 0, "{s:#}");
    assert_eq!(u(s, "attestations_invalid"), 0, "{s:#}");
    assert_eq!(u(s, "sync_messages_invalid"), 0, "{s:#}");
    assert!(u(s, "attestations_expected") > 0, "{s:#}");
    assert!(u(s, "sync_messages_expected") > 0, "{s:#}");
    assert_eq!(
        u(s, "attestations_valid"),
        u(s, "attestations_expected"),
        "{s:#}"
    );
    assert_eq!(
        u(s, "sync_messages_valid"),
        u(s, "sync_messages_expected"),
        "{s:#}"
    );
    assert_eq!(u(s, "proposals_invalid"), 0, "{s:#}");
    assert_eq!(u(s, "aggregations_invalid"), 0, "{s:#}");
    assert_eq!(u(s, "registrations_invalid"), 0, "{s:#}");
    assert_eq!(u(s, "contributions_invalid"), 0, "{s:#}");
    assert_eq!(u(s, "exits_invalid"), 0, "{s:#}");
    assert_eq!(u(s, "exits_valid"), u(s, "exits_expected"), "{s:#}");
    assert_eq!(
        u(s, "contributions_valid"),
        u(s, "contributions_expected"),
        "{s:#}"
    );
    assert_eq!(
        u(s, "registrations_valid"),
        u(s, "registrations_expected"),
        "{s:#}"
    );
    assert_eq!(
        u(s, "aggregations_valid"),
        u(s, "aggregations_expected"),
        "{s:#}"
    );
    assert_eq!(u(s, "proposals_valid"), u(s, "proposals_expected"), "{s:#}");
    assert!(u(s, "duty_latency_ms_p50") <= u(s, "duty_latency_ms_p99"));
}

#[test]
fn one_operator_killed_mid_run_every_duty_still_done() {
    let tmp = TestDir::new("kill");
    let data = tmp.0.join("data");
    let json = tmp.0.join("summary.json");
    let out = devnet(&[
        "--operators",
        "4",
        "--validators",
        "32",
        "--slots",
        "5",
        // Contributions (and aggregates) start consensus at two thirds of the slot, and a
        // sync-committee member's next contribution duty starts at the next slot: when the
        // dead operator leads round 1, the round change (QBFT quick timeout, 2 s) must end
        // within the last third of the slot, as on mainnet (12 s slots).
        "--slot-ms",
        "7000",
        "--kill-operator",
        "4",
        "--kill-at-slot",
        "1",
        "--all-duties",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--json-summary",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let s = summary(&json);
    assert_all_duties_done(&s, 5);
    assert!(u(&s, "proposals_expected") > 0, "{s:#}");
    assert!(u(&s, "aggregations_expected") > 0, "{s:#}");
    assert_eq!(u(&s, "killed_operator"), 4);
    let exits = s["operator_exits"].as_array().expect("operator_exits");
    assert_eq!(exits.len(), 4);
    for e in exits {
        let status = e["status"].as_str().expect("status");
        if e["id"] == 4 {
            assert!(status.starts_with("killed"), "{status}");
        } else {
            assert!(status.ends_with("exit status 0"), "{status}");
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("killed operator 4"), "{}", show(&out));
    assert!(stdout.contains("PASS"), "{}", show(&out));
}

#[test]
fn corrupted_partials_are_caught_and_the_culprit_named() {
    let tmp = TestDir::new("faulty");
    let data = tmp.0.join("data");
    let json = tmp.0.join("summary.json");
    let out = devnet(&[
        "--operators",
        "4",
        "--validators",
        "32",
        "--slots",
        "6",
        "--slot-ms",
        "1500",
        "--all-duties",
        "--faulty-operator",
        "2",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--keep-data",
        "--json-summary",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let s = summary(&json);
    assert_all_duties_done(&s, 6);
    assert!(u(&s, "proposals_expected") > 0, "{s:#}");
    assert!(u(&s, "aggregations_expected") > 0, "{s:#}");
    assert_eq!(u(&s, "faulty_operator"), 2);
    for id in [1, 3, 4] {
        let log = std::fs::read_to_string(data.join(format!("op{id}/node.log")))
            .expect("honest operator's log");
        assert!(
            log.contains("invalid partial signatures from operator 2"),
            "operator {id} did not name operator 2:\n{log}"
        );
        assert!(
            !log.contains("invalid partial signatures from operator 1")
                && !log.contains("invalid partial signatures from operator 3")
                && !log.contains("invalid partial signatures from operator 4"),
            "operator {id} blamed an honest operator:\n{log}"
        );
    }
}

/// A hostile peer on the committee's subnet floods it (junk, replays of real messages with
/// fresh full data, bad signatures, 4 MiB messages) from the first slot: every duty stays
/// valid, none of its messages is relayed by an honest node, every node graylists it, and
/// the nodes' memory stays bounded.
#[test]
fn a_flooding_peer_is_graylisted_and_nothing_of_it_relayed() {
    let tmp = TestDir::new("flood");
    let data = tmp.0.join("data");
    let json = tmp.0.join("summary.json");
    let out = devnet(&[
        "--operators",
        "4",
        "--validators",
        "32",
        "--slots",
        "8",
        "--slot-ms",
        "2000",
        "--all-duties",
        "--hostile-peer",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--keep-data",
        "--json-summary",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let s = summary(&json);
    assert_all_duties_done(&s, 8);
    let h = &s["hostile"];
    assert!(u(h, "published") > 100, "{s:#}");
    assert!(u(h, "observed") > 0, "{s:#}");
    assert_eq!(u(h, "relayed"), 0, "{s:#}");
    assert_eq!(u(h, "attacker_peers_at_end"), 0, "{s:#}");
    for (i, rss) in s["node_peak_rss_mb"]
        .as_array()
        .expect("peak RSS per node")
        .iter()
        .enumerate()
    {
        let rss = rss.as_u64().expect("MB");
        assert!(rss > 0 && rss <= 768, "node {}: peak RSS {rss} MB", i + 1);
    }
    for id in 1..=4 {
        let log =
            std::fs::read_to_string(data.join(format!("op{id}/node.log"))).expect("operator's log");
        assert!(
            log.contains("graylisting peer"),
            "operator {id} did not graylist the flooding peer"
        );
    }
}

/// Doppelganger protection on every node, and validators 0 and 1 live elsewhere (the
/// simulator's liveness endpoint reports them live in every epoch): nothing is ever submitted
/// for them — no attestation, sync message, RANDAO reveal, block, aggregate or contribution,
/// in any slot, epoch 0 included — while every other validator, in detection through epoch 0
/// (one detection epoch, checked at the first slot of epoch 1), has every duty of every
/// counted slot valid. Seed 3 makes validator 1 one of the two sync-committee members, so
/// the run covers sync messages and contributions of a validator live elsewhere; each of
/// the two attests once in epoch 1 (the 32 counted slots). About 40 s.
#[test]
fn doppelganger_protection_never_signs_for_a_validator_live_elsewhere() {
    let tmp = TestDir::new("doppelganger");
    let data = tmp.0.join("data");
    let json = tmp.0.join("summary.json");
    let out = devnet(&[
        "--operators",
        "4",
        "--validators",
        "16",
        "--seed",
        "3",
        "--slots",
        "32",
        "--slot-ms",
        "1000",
        "--all-duties",
        "--doppelganger",
        "--live-elsewhere",
        "2",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--keep-data",
        "--json-summary",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let s = summary(&json);
    assert_all_duties_done(&s, 32);
    assert!(s["doppelganger"].as_bool().expect("doppelganger"), "{s:#}");
    assert_eq!(u(&s, "live_elsewhere_submissions"), 0, "{s:#}");
    // Their 32 sync duties (validator 1), one attestation each, and more.
    assert!(u(&s, "live_elsewhere_duties") >= 34, "{s:#}");
    for kind in ["proposals", "aggregations", "contributions", "exits"] {
        assert!(u(&s, &format!("{kind}_expected")) > 0, "{kind}: {s:#}");
    }
    // Every node asked, and refused signatures (epoch 0 for all, then validators 0 and 1).
    assert!(u(&s, "liveness_requests") >= 4, "{s:#}");
    assert!(
        u(&s["node_counters"], "ssv_doppelganger_refused_total") > 0,
        "{s:#}"
    );
    for id in 1..=4 {
        let log =
            std::fs::read_to_string(data.join(format!("op{id}/node.log"))).expect("operator's log");
        assert!(
            log.contains(
                "doppelganger: liveness checked epoch=0 asked=16 answered=16 live=2 now_safe=14"
            ),
            "operator {id} did not release the 14 others after epoch 0"
        );
    }
}

#[test]
fn bad_arguments_fail_fast_with_a_reason() {
    for (args, want) in [
        (
            &["--operators", "3", "--validators", "1", "--slots", "1"][..],
            "at least 4 operators",
        ),
        (
            &[
                "--operators",
                "4",
                "--validators",
                "1",
                "--slots",
                "1",
                "--committee-size",
                "5",
            ][..],
            "not a committee size",
        ),
        (
            &["--operators", "4", "--validators", "0", "--slots", "1"][..],
            "--validators",
        ),
        (
            &[
                "--operators",
                "4",
                "--validators",
                "1",
                "--slots",
                "2",
                "--kill-operator",
                "2",
            ][..],
            "--kill-at-slot",
        ),
    ] {
        let out = devnet(args);
        assert!(!out.status.success(), "{args:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {}", show(&out));
    }
}

/// Every duty type, a fork on the way (epoch 2, at the run's slot 33 of 40) and then a reorg
/// (chain slot 66): the nodes switch signing domains at the fork epoch from the beacon node's
/// fork schedule (the simulator checks each signature with the domain of its own epoch), and
/// fetch the epoch's proposer duties again when the head's dependent root changes (the
/// proposers of slots 67..71 are drawn again: without the refetch they are missed).
#[test]
fn every_duty_type_valid_across_a_fork_and_a_reorg() {
    let tmp = TestDir::new("fork");
    let json = tmp.0.join("summary.json");
    let out = devnet(&[
        "--operators",
        "4",
        "--validators",
        "64",
        "--slots",
        "40",
        "--slot-ms",
        "1500",
        "--all-duties",
        "--fork-epoch",
        "2",
        "--reorg-at-slot",
        "66",
        "--data-dir",
        tmp.0.join("data").to_str().expect("utf-8 path"),
        "--json-summary",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let s = summary(&json);
    assert_all_duties_done(&s, 40);
    let log = std::fs::read_to_string(tmp.0.join("data/op1/node.log")).expect("operator 1's log");
    assert!(
        log.contains("dependent root changed (reorg): fetched again"),
        "no proposer-duty refetch after the reorg"
    );
    // The next epoch's attester duties depend on the replaced block too (Go's scheduler
    // fetches them again on a change of the head's current dependent root).
    assert!(
        log.contains("attester duties' dependent root changed (reorg): fetching them again"),
        "no attester-duty refetch after the reorg"
    );
    // The beacon node was told the subnets and fee recipients the duties need.
    assert_eq!(u(&s, "preparations_invalid"), 0, "{s:#}");
    for what in [
        "beacon_subscriptions",
        "sync_subscriptions",
        "fee_recipients_prepared",
    ] {
        assert!(u(&s, what) > 0, "{what}: {s:#}");
    }
    for kind in [
        "proposals",
        "aggregations",
        "contributions",
        "registrations",
        "exits",
    ] {
        assert!(u(&s, &format!("{kind}_expected")) > 0, "{kind}: {s:#}");
    }
}

/// `--host-two-operators`: one `ssv-node start` process hosts operators 1 and 2 (two
/// `[[operators]]` entries), operators 3 and 4 run alone. Every duty is valid, the shared
/// process decides every committee duty as both operators (its log names each), and no
/// process of operator 2's own ran. Slots are long enough for a round change: the validator
/// roles run as the lowest hosted member only (README), so when operator 2 leads round 1 of a
/// validator duty the others change round.
#[test]
fn one_process_hosting_two_operators_does_every_duty() {
    let tmp = TestDir::new("host-two");
    let data = tmp.0.join("data");
    let json = tmp.0.join("summary.json");
    let out = devnet(&[
        "--operators",
        "4",
        "--validators",
        "32",
        "--slots",
        "3",
        "--slot-ms",
        "7000",
        "--all-duties",
        "--host-two-operators",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--keep-data",
        "--json-summary",
        json.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let s = summary(&json);
    assert_all_duties_done(&s, 3);
    assert!(u(&s, "proposals_expected") > 0, "{s:#}");
    let exits = s["operator_exits"].as_array().expect("operator_exits");
    let ids: Vec<u64> = exits
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![1, 3, 4], "{s:#}");
    assert!(
        !data.join("op2").exists(),
        "operator 2 has no process of its own"
    );
    let config = std::fs::read_to_string(data.join("op1/config.toml")).expect("config");
    assert_eq!(config.matches("[[operators]]").count(), 2, "{config}");
    let log = std::fs::read_to_string(data.join("op1/node.log")).expect("shared log");
    assert!(
        log.contains("operators=[1, 2]"),
        "the registry line names both operators"
    );
    // Each exit started once although two of the process's operators hold the validator.
    assert_eq!(
        log.matches("exit requested: signing it").count() as u64,
        u(&s, "exits_expected"),
        "{s:#}"
    );
    assert!(
        !log.contains("DutyAlreadyPassed"),
        "a validator duty started twice"
    );
    for id in [1, 2] {
        // One line per decided committee duty, in the span of the operator it ran as.
        let decided = log
            .lines()
            .filter(|l| {
                l.contains(&format!("committee{{operator={id}}}")) && l.contains(" decided ")
            })
            .count();
        assert!(
            decided >= 3,
            "operator {id} decided {decided} committee duties"
        );
    }
}
