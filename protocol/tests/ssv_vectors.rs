//! The spec's runner suite (`ssv` module) over the vendored archive: every subtest has an
//! outcome (nothing skipped) and every one of them passes, for each of the six roles and the
//! role-independent types. A vector changed in three places (an output signature, an error
//! code, a post-state field) must fail in each.

#![cfg(feature = "spec-vectors")]

use std::path::{Path, PathBuf};

use ssv_protocol::vectors::run_module;
use ssv_protocol::vectors::ssv::suite::Suite;

fn vectors_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/ssv-spec-v1.2.2")
}

/// Subtests of the suite (`SOURCE.md`: 1,236) plus five more outcomes in each of the three
/// runner-construction files (one outcome per role instead of one per file).
const OUTCOMES: usize = 1_236 + 3 * 5;

#[test]
fn every_role_and_the_role_independent_types_pass() {
    let report = run_module(&vectors_root(), "ssv").expect("the suite runs");
    assert_eq!(
        report.outcomes.len(),
        OUTCOMES,
        "every subtest has an outcome"
    );
    let failures: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.file)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} subtests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let per_role = report.per_role();
    for (role, passed) in [
        ("committee", 554),
        ("proposer", 343),
        ("aggregator", 183),
        ("sync committee contribution", 97),
        ("validator registration", 35),
        ("voluntary exit", 35),
        ("role-independent", 4),
    ] {
        assert_eq!(
            per_role.get(role).copied(),
            Some((passed, 0)),
            "{role}: (passed, failed)"
        );
    }
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join("ssv").join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn changed_outputs_codes_and_post_states_are_caught() {
    let root = vectors_root();
    let suite = Suite::open(&root).expect("suite");
    let name = "tests/committee.MultiCommitteeSpecTest_decided.json";
    let mut json: serde_json::Value =
        serde_json::from_slice(&suite.read(name).expect("vector")).expect("json");
    // Subtest 0: one output signature changed (a valid signature of another message).
    let other = json["Tests"][1]["OutputMessages"][0]["Messages"][0]["PartialSignature"].clone();
    json["Tests"][0]["OutputMessages"][0]["Messages"][0]["PartialSignature"] = other;
    // Subtest 2: an error expected where there is none.
    json["Tests"][2]["ExpectedErrorCode"] = serde_json::json!(22);
    let tmp = std::env::temp_dir().join(format!("ssv-runner-vectors-{}", std::process::id()));
    std::fs::remove_dir_all(&tmp).ok();
    write(&tmp, name, json.to_string().as_bytes());
    for rel in suite
        .files_under("state_comparison/committee_MultiCommitteeSpecTest/decided/")
        .expect("state files")
    {
        let mut bytes = suite.read(&rel).expect("state file");
        // Subtest 4's post-state: its slot-12 runner's duty marked finished.
        if rel.ends_with(&format!(
            "{}.json",
            json["Tests"][4]["Name"].as_str().expect("name")
        )) {
            let mut state: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            let runners = state["Runners"].as_object_mut().expect("runners");
            for r in runners.values_mut() {
                r["BaseRunner"]["State"]["Finished"] = serde_json::json!(true);
            }
            bytes = state.to_string().into_bytes();
        }
        write(&tmp, &rel, &bytes);
    }
    std::fs::copy(
        root.join("ssv/testing-keys.json"),
        tmp.join("ssv/testing-keys.json"),
    )
    .expect("keys");
    let report = run_module(&tmp, "ssv").expect("runs");
    std::fs::remove_dir_all(&tmp).ok();
    assert_eq!(report.outcomes.len(), 12);
    let failed: Vec<usize> = report
        .outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.result.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, vec![0, 2, 4], "{:#?}", report.outcomes);
}

/// The proposer's submitted block root is checked (a changed `BeaconBroadcastedRoots` fails),
/// and without the types suite's blocks the proposer subtests that fetch a block fail (never
/// pass by skipping) while the other roles still pass.
#[test]
fn proposer_submissions_are_checked_and_a_missing_mock_block_fails() {
    let root = vectors_root();
    let suite = Suite::open(&root).expect("suite");
    let name = "tests/tests.MultiMsgProcessingSpecTest_full_happy_flow.json";
    let mut json: serde_json::Value =
        serde_json::from_slice(&suite.read(name).expect("vector")).expect("json");
    let tests = json["Tests"].as_array().expect("tests");
    let deneb = tests
        .iter()
        .position(|t| t["Name"] == "proposer (deneb)")
        .expect("a deneb proposer subtest");
    json["Tests"][deneb]["BeaconBroadcastedRoots"] = serde_json::json!([hex_of(&[7u8; 32])]);
    let tmp = std::env::temp_dir().join(format!("ssv-proposer-vectors-{}", std::process::id()));
    std::fs::remove_dir_all(&tmp).ok();
    write(&tmp, name, json.to_string().as_bytes());
    for rel in suite
        .files_under("state_comparison/tests_MultiMsgProcessingSpecTest/full_happy_flow/")
        .expect("state files")
    {
        write(&tmp, &rel, &suite.read(&rel).expect("state file"));
    }
    std::fs::copy(
        root.join("ssv/testing-keys.json"),
        tmp.join("ssv/testing-keys.json"),
    )
    .expect("keys");
    // First without the types suite: every full-flow proposer subtest fails on its block.
    let report = run_module(&tmp, "ssv").expect("runs");
    for o in &report.outcomes {
        let proposer = o.role.as_deref() == Some("proposer");
        match &o.result {
            Err(_) if proposer => {}
            Ok(()) if proposer => panic!("{} passed without its block", o.file),
            Err(e) => panic!("{}: {e}", o.file),
            Ok(()) => {}
        }
    }
    // Then with it: only the changed subtest fails.
    let types = "types/tests";
    std::fs::create_dir_all(tmp.join(types)).expect("types dir");
    for fork in ["capella", "deneb", "electra", "fulu"] {
        let file = format!(
            "validatorconsensusdata.ValidatorConsensusDataTest_validatorconsensusdata_valid_{fork}_block.json"
        );
        std::fs::copy(root.join(types).join(&file), tmp.join(types).join(&file))
            .expect("block vector");
    }
    let report = run_module(&tmp, "ssv").expect("runs");
    std::fs::remove_dir_all(&tmp).ok();
    let failed: Vec<usize> = report
        .outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.result.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, vec![deneb], "{:#?}", report.outcomes);
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
