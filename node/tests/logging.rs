//! `ssv-node start --log-format json --log-file PATH`: the node's lines land in the file as
//! JSON objects (nothing on stderr). The node is pointed at a beacon node that does not
//! exist, so it stays in its start-up loop logging `beacon node not ready` until stopped.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDir;

#[test]
fn json_lines_go_to_the_log_file() {
    let dir = TestDir::new("logging");
    let key = dir.0.join("op.pem");
    let out = Command::new(env!("CARGO_BIN_EXE_ssv-node"))
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .expect("keygen");
    assert!(out.status.success(), "{}", common::show(&out));
    // Port 9 on loopback: nothing listens; the node retries the beacon node forever.
    let config = format!(
        "data_dir = {:?}\nnetwork = \"local\"\nbeacon_nodes = [\"http://127.0.0.1:9\"]\n\
         api_addr = \"off\"\n[operator]\nid = 1\nkey_file = {:?}\n[p2p]\nip = \"127.0.0.1\"\n\
         tcp_port = 0\nudp_port = 0\n[log]\nmax_size_mb = 1\nkeep_files = 2\n",
        dir.0.join("data"),
        key
    );
    let config_path = dir.0.join("config.toml");
    std::fs::write(&config_path, config).expect("config");
    let log = dir.0.join("node.log");
    let mut node = Command::new(env!("CARGO_BIN_EXE_ssv-node"))
        .arg("start")
        .arg("--config")
        .arg(&config_path)
        .args(["--log-format", "json", "--log-file"])
        .arg(&log)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut found = None;
    while Instant::now() < deadline && found.is_none() {
        std::thread::sleep(Duration::from_millis(200));
        if node.try_wait().expect("poll").is_some() {
            break;
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        found = text
            .lines()
            .find(|l| l.contains("beacon node not ready"))
            .map(str::to_owned);
    }
    let _ = node.kill();
    let out = node.wait_with_output().expect("wait");
    let line = found.unwrap_or_else(|| panic!("no line in the log file; {}", common::show(&out)));
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(v["level"], "WARN", "{v}");
    assert!(v["timestamp"].is_string(), "{v}");
    assert!(
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("beacon node not ready")),
        "{v}"
    );
    for l in std::fs::read_to_string(&log).expect("log").lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
