//! `ssv-node slashing-protection import / export` over every EIP-3076 vector: each step's
//! interchange is imported through the command (a step that must fail exits non-zero and
//! changes nothing), the database is exported, the export is imported into a fresh node and
//! exported again: the two exports are equal and hold, per validator, the highest block slot
//! and attestation epochs of everything imported (the minified merge).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn ssv_node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ssv-node"))
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/slashing-interchange")
}

/// A node config of a local network whose data dir is `dir/data` (the key file is only named:
/// the slashing-protection commands do not read it).
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("ssv.toml");
    std::fs::write(
        &path,
        "data_dir = \"data\"\nnetwork = \"local\"\nbeacon_nodes = [\"http://127.0.0.1:5052\"]\n\
         [operator]\nkey_file = \"operator.pem\"\n",
    )
    .expect("write config");
    path
}

fn import(cfg: &Path, file: &Path, gvr: &str) -> bool {
    let out = ssv_node()
        .args(["slashing-protection", "import", "--config"])
        .arg(cfg)
        .arg(file)
        .args(["--genesis-validators-root", gvr])
        .output()
        .expect("run ssv-node");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "one error line: {err}");
    }
    out.status.success()
}

fn export(cfg: &Path, file: &Path, gvr: &str) -> Value {
    let out = ssv_node()
        .args(["slashing-protection", "export", "--config"])
        .arg(cfg)
        .arg(file)
        .args(["--genesis-validators-root", gvr])
        .output()
        .expect("run ssv-node");
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(file).expect("export file")).expect("export is JSON")
}

fn num(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .expect("decimal string")
}

/// Per validator: (highest block slot, highest source, highest target).
type Maxima = BTreeMap<String, (Option<u64>, Option<u64>, Option<u64>)>;

fn maxima(doc: &Value, into: &mut Maxima) {
    for rec in doc["data"].as_array().expect("data") {
        let e = into
            .entry(rec["pubkey"].as_str().expect("pubkey").to_lowercase())
            .or_default();
        for b in rec["signed_blocks"].as_array().expect("blocks") {
            e.0 = e.0.max(Some(num(&b["slot"])));
        }
        for a in rec["signed_attestations"].as_array().expect("attestations") {
            e.1 = e.1.max(Some(num(&a["source_epoch"])));
            e.2 = e.2.max(Some(num(&a["target_epoch"])));
        }
    }
}

#[test]
fn every_vector_round_trips_through_the_cli() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("vectors folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "schema.json")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the vendored vectors are there");
    let (mut imports, mut refusals) = (0, 0);
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let test: Value =
            serde_json::from_slice(&std::fs::read(file).expect("read")).expect("json");
        let gvr = test["genesis_validators_root"]
            .as_str()
            .expect("gvr")
            .to_owned();
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = config(dir.path());
        let mut expected = Maxima::new();
        for (i, step) in test["steps"].as_array().expect("steps").iter().enumerate() {
            let doc = dir.path().join(format!("step{i}.json"));
            std::fs::write(&doc, step["interchange"].to_string()).expect("write step");
            let ok = import(&cfg, &doc, &gvr);
            assert_eq!(
                ok,
                step["should_succeed"].as_bool().expect("should_succeed"),
                "{name} step {i}"
            );
            if ok {
                imports += 1;
                maxima(&step["interchange"], &mut expected);
            } else {
                refusals += 1;
            }
        }
        if expected.is_empty() {
            continue;
        }
        let first = export(&cfg, &dir.path().join("export1.json"), &gvr);
        let mut got = Maxima::new();
        maxima(&first, &mut got);
        // Validators with no block or attestation in the input have nothing to keep.
        expected.retain(|_, m| m.0.is_some() || m.1.is_some());
        assert_eq!(got, expected, "{name}: export holds the imported maxima");
        // Into a fresh node and out again: the same document.
        let dir2 = tempfile::tempdir().expect("temp dir");
        let cfg2 = config(dir2.path());
        assert!(
            import(&cfg2, &dir.path().join("export1.json"), &gvr),
            "{name}: the export imports"
        );
        let second = export(&cfg2, &dir2.path().join("export2.json"), &gvr);
        assert_eq!(first, second, "{name}: export → import → export is stable");
    }
    assert!(
        imports > 30 && refusals >= 1,
        "{imports} imports, {refusals} refusals"
    );
}

#[test]
fn export_refuses_to_overwrite_and_needs_a_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = config(dir.path());
    let out = ssv_node()
        .args(["slashing-protection", "export", "--config"])
        .arg(&cfg)
        .arg(dir.path().join("out.json"))
        .args([
            "--genesis-validators-root",
            &format!("0x{}", "00".repeat(32)),
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
}
