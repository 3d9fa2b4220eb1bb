//! Every ssv-spec v1.2.2 `types` vector passes through the runner, and none is skipped: the
//! number of outcomes equals the number of `.json` files in the folder.

#![cfg(feature = "spec-vectors")]

use std::path::PathBuf;

use ssv_protocol::vectors::run_module;

fn vectors_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/ssv-spec-v1.2.2")
}

#[test]
fn every_types_vector_passes() {
    let root = vectors_root();
    let dir = root.join("types").join("tests");
    let files = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert!(files > 0, "no vectors in {}", dir.display());

    let report = run_module(&root, "types").expect("types module runs");
    let failures: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.file)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} types vectors failed:\n{}",
        failures.len(),
        report.outcomes.len(),
        failures.join("\n")
    );
    assert_eq!(report.outcomes.len(), files, "every file has an outcome");
    assert_eq!(report.passed(), files);
}

#[test]
fn a_corrupted_expected_root_is_caught() {
    // The runner must actually compare roots: a copy of a proposer vector with one bit of its
    // expected block root flipped has to fail.
    let root = vectors_root();
    let name =
        "consensusdataproposer.ProposerSpecTest_consensus_data_versioned_block_validation.json";
    let text = std::fs::read_to_string(root.join("types/tests").join(name)).expect("vector");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let blk_root = json["ExpectedBlkRoot"]
        .as_str()
        .expect("hex root")
        .to_string();
    let flipped = format!(
        "{}{}",
        if blk_root.starts_with('0') { '1' } else { '0' },
        &blk_root[1..]
    );
    json["ExpectedBlkRoot"] = serde_json::Value::String(flipped);

    let tmp = std::env::temp_dir().join(format!("ssv-types-vectors-{}", std::process::id()));
    let tests = tmp.join("types/tests");
    std::fs::create_dir_all(&tests).expect("temp dir");
    std::fs::write(tests.join(name), json.to_string()).expect("write");
    let report = run_module(&tmp, "types").expect("runs");
    std::fs::remove_dir_all(&tmp).ok();
    assert_eq!(report.outcomes.len(), 1);
    assert_eq!(report.failed(), 1, "a wrong expected root must fail");
}
