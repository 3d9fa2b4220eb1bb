//! The operator CLI commands beside `start`: `bootnode` (persistent key, ENR on stdout and at
//! `/p2p`), `generate-config`, `export-public-key` and `--version`.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestDir;

fn ssv_node() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ssv-node"));
    c.env_remove("RUST_BACKTRACE").env("NO_COLOR", "1");
    c
}

/// Starts a bootnode on `dir`, returns its printed ENR and what it serves at `/p2p`.
fn bootnode_once(dir: &std::path::Path) -> (String, String) {
    let mut child = ssv_node()
        .args(["bootnode", "--udp-port", "0", "--http-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the bootnode");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut enr = String::new();
    stdout.read_line(&mut enr).expect("ENR line");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut url = None;
    for line in (&mut stderr).lines() {
        let line = line.expect("log line");
        if let Some(at) = line.find("bootnode ENR on http://") {
            url = Some(line[at + "bootnode ENR on ".len()..].trim().to_owned());
            break;
        }
    }
    let url = url.expect("the HTTP address is logged");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let served = rt.block_on(async {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client")
            .get(&url)
            .send()
            .await
            .expect("GET /p2p")
            .text()
            .await
            .expect("body")
    });
    // SIGTERM: a clean stop.
    // SAFETY: kill(2) has no memory-safety preconditions; the child is ours and not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    assert!(status.success(), "bootnode exit {status}");
    (enr.trim().to_owned(), served.trim().to_owned())
}

#[test]
fn bootnode_keeps_its_key_and_serves_its_enr() {
    let tmp = TestDir::new("bootnode-cli");
    let dir = tmp.0.join("boot");
    let (enr1, served1) = bootnode_once(&dir);
    assert!(enr1.starts_with("enr:"), "{enr1}");
    assert_eq!(enr1, served1, "/p2p serves the printed ENR");
    let key = std::fs::read_to_string(dir.join("network.key")).expect("key persisted");
    let (enr2, served2) = bootnode_once(&dir);
    assert_eq!(enr2, served2);
    assert_eq!(
        std::fs::read_to_string(dir.join("network.key")).expect("key"),
        key,
        "the key is reused, not replaced"
    );
    let a: ssv_netio::Enr = enr1.parse().expect("ENR");
    let b: ssv_netio::Enr = enr2.parse().expect("ENR");
    assert_eq!(a.node_id(), b.node_id(), "same identity across restarts");
    // Another directory is another identity.
    let (enr3, _) = bootnode_once(&tmp.0.join("other"));
    let c: ssv_netio::Enr = enr3.parse().expect("ENR");
    assert_ne!(a.node_id(), c.node_id());
}

#[test]
fn export_public_key_matches_keygen_for_plain_and_encrypted_keys() {
    let tmp = TestDir::new("export-key");
    let pw = tmp.0.join("password");
    std::fs::write(&pw, "correct horse\n").expect("password");
    for encrypted in [false, true] {
        let key = tmp.0.join(format!("key-{encrypted}"));
        let mut keygen = ssv_node();
        keygen.arg("keygen").arg("--out").arg(&key);
        if encrypted {
            keygen.arg("--password-file").arg(&pw);
        }
        let out = keygen.output().expect("keygen");
        assert!(out.status.success(), "{}", common::show(&out));
        let mut export = ssv_node();
        export.arg("export-public-key").arg("--key").arg(&key);
        if encrypted {
            export.arg("--password-file").arg(&pw);
        }
        let got = export.output().expect("export-public-key");
        assert!(got.status.success(), "{}", common::show(&got));
        assert_eq!(got.stdout, out.stdout, "encrypted: {encrypted}");
        assert!(!got.stdout.is_empty());
    }
    // A wrong password is one clear error, not a key.
    std::fs::write(&pw, "wrong").expect("password");
    let out = ssv_node()
        .arg("export-public-key")
        .arg("--key")
        .arg(tmp.0.join("key-true"))
        .arg("--password-file")
        .arg(&pw)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
}

#[test]
fn generate_config_writes_once_and_version_names_the_commit() {
    let tmp = TestDir::new("generate-config");
    let cfg = tmp.0.join("ssv.toml");
    let run = || {
        ssv_node()
            .args([
                "generate-config",
                "--exporter",
                "--network",
                "local",
                "--out",
            ])
            .arg(&cfg)
            .output()
            .expect("generate-config")
    };
    let out = run();
    assert!(out.status.success(), "{}", common::show(&out));
    let text = std::fs::read_to_string(&cfg).expect("written");
    assert!(
        text.contains("[exporter]") && text.contains("api_addr"),
        "{text}"
    );
    // Never overwritten.
    let again = run();
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&cfg).expect("kept"), text);

    let v = ssv_node().arg("--version").output().expect("--version");
    let v = String::from_utf8_lossy(&v.stdout).trim().to_owned();
    assert!(
        v.starts_with(concat!("ssv-node ", env!("CARGO_PKG_VERSION"), " (commit ")),
        "{v}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match (std::env::var("SSV_NODE_COMMIT"), head) {
        (Ok(c), _) if !c.trim().is_empty() => assert!(v.contains(c.trim()), "{v}"),
        (_, Some(head)) => assert!(v.contains(&head), "{v} lacks HEAD {head}"),
        _ => assert!(v.contains("(commit unknown)"), "{v}"),
    }
}
