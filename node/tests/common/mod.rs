//! Helpers shared by the integration tests that run `ssv-node devnet`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

/// A directory removed when the test passes and kept (with its logs) when it fails.
pub struct TestDir(pub PathBuf);

impl TestDir {
    /// A new directory under the system temp dir, named after the test.
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "ssv-devnet-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} for its logs", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A process's status, stdout and stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `ssv-node devnet ARGS --execution-endpoint URL` with its data and JSON summary in
/// `dir` (`dir/devnet`, `dir/summary.json`), off the async runtime; returns the process's
/// output and, when it wrote one, the summary.
pub async fn devnet_on_chain(
    url: String,
    args: &[&str],
    dir: &std::path::Path,
) -> (Output, Option<serde_json::Value>) {
    let data = dir.join("devnet");
    let summary = dir.join("summary.json");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking({
        let summary = summary.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_ssv-node"))
                .arg("devnet")
                .args(&args)
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
    let s = std::fs::read_to_string(&summary)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    (out, s)
}
