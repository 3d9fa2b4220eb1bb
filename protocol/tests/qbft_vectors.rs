//! The ssv-spec v1.2.2 `qbft` vectors through the runner: every file has an outcome (none is
//! skipped) and every one passes.

#![cfg(feature = "spec-vectors")]

use std::path::PathBuf;

use ssv_protocol::vectors::{CaseContext, cases_for_module, run_module};

fn vectors_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/ssv-spec-v1.2.2")
}

#[test]
fn qbft_vectors_pass() {
    let root = vectors_root();
    let dir = root.join("qbft").join("tests");
    let files = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(files, 173, "the vendored qbft folder holds 173 vectors");

    let report = run_module(&root, "qbft").expect("qbft module runs");
    assert_eq!(report.outcomes.len(), files, "every file has an outcome");
    let failures: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.file)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(report.passed(), files);
}

/// Runs one case on a modified copy of a vector.
fn run_mutated(file: &str, mutate: impl FnOnce(&mut serde_json::Value)) -> Result<(), String> {
    let root = vectors_root();
    let text = std::fs::read_to_string(root.join("qbft/tests").join(file)).expect("vector");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    mutate(&mut json);
    let stem = file.trim_end_matches(".json").to_string();
    let prefix = stem.split('_').next().expect("prefix").to_string();
    let (_, run) = cases_for_module("qbft")
        .expect("qbft cases")
        .iter()
        .flat_map(|t| t.iter())
        .find(|(p, _)| *p == prefix)
        .expect("case for prefix");
    run(
        &json,
        &CaseContext {
            root,
            module: "qbft".into(),
            file_stem: stem,
        },
    )
}

#[test]
fn the_runner_catches_wrong_outputs_and_codes() {
    let happy = "tests.MsgProcessingSpecTest_qbft_message_processing_happy_flow.json";
    assert!(run_mutated(happy, |_| {}).is_ok());
    // A different expected output message.
    assert!(
        run_mutated(happy, |j| {
            let out = &mut j["OutputMessages"][1]["SSVMessage"]["MsgType"];
            *out = serde_json::json!(1);
        })
        .is_err()
    );
    // An error expected where there is none.
    assert!(run_mutated(happy, |j| j["ExpectedErrorCode"] = serde_json::json!(60)).is_err());
    // A timer expectation that does not hold.
    assert!(
        run_mutated(happy, |j| {
            j["ExpectedTimerState"] = serde_json::json!({"Timeouts": 1, "Round": 2});
        })
        .is_err()
    );
    // One input fewer: no decision, so the post-state comparison fails.
    assert!(
        run_mutated(happy, |j| {
            j["InputMessages"].as_array_mut().expect("inputs").pop();
        })
        .is_err()
    );
}
