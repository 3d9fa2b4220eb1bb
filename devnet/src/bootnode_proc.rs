//! The devnet's discovery: an `ssv-node bootnode` child process (as an operator would run
//! one), its ENR read from its stdout line and checked against what it serves at `/p2p`.
//!
//! ```text
//! DIR/bootnode/network.key   its persistent discv5 key
//! DIR/bootnode/bootnode.log  its stdout (the ENR line) and stderr
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long the bootnode gets to print its ENR and HTTP address.
pub const BOOTNODE_START_TIMEOUT: Duration = Duration::from_secs(15);
/// Poll interval while waiting for it.
const POLL: Duration = Duration::from_millis(50);

/// A running `ssv-node bootnode`; SIGTERM (then SIGKILL) when dropped.
pub struct BootnodeProcess {
    child: Child,
    enr: String,
    http: String,
    log: PathBuf,
}

impl BootnodeProcess {
    /// Starts `exe bootnode` with its key in `dir`, waits for its ENR and checks that its
    /// `/p2p` endpoint serves the same one.
    pub async fn start(exe: &Path, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join("bootnode.log");
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = file.try_clone().context("duplicating a log handle")?;
        let mut cmd = Command::new(exe);
        cmd.arg("bootnode")
            .arg("--data-dir")
            .arg(dir)
            .args(["--ip", "127.0.0.1", "--udp-port", "0"])
            .args(["--http-addr", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err);
        crate::process::die_with_devnet(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} bootnode", exe.display()))?;
        let mut proc = BootnodeProcess {
            child,
            enr: String::new(),
            http: String::new(),
            log,
        };
        let deadline = Instant::now() + BOOTNODE_START_TIMEOUT;
        loop {
            if let Some(status) = proc.child.try_wait().context("waiting on the bootnode")? {
                bail!(
                    "the bootnode exited ({status}); last lines of {}:\n{}",
                    proc.log.display(),
                    crate::log_tail(&proc.log)
                );
            }
            let text = std::fs::read_to_string(&proc.log).unwrap_or_default();
            let enr = text.lines().find(|l| l.starts_with("enr:"));
            let http = text.find("bootnode ENR on http://").map(|at| {
                text[at + "bootnode ENR on ".len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect::<String>()
            });
            if let (Some(enr), Some(http)) = (enr, http) {
                proc.enr = enr.trim().to_owned();
                proc.http = http;
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "the bootnode printed no ENR within {BOOTNODE_START_TIMEOUT:?}; {}:\n{}",
                    proc.log.display(),
                    crate::log_tail(&proc.log)
                );
            }
            tokio::time::sleep(POLL).await;
        }
        let served = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .context("HTTP client")?
            .get(&proc.http)
            .send()
            .await
            .with_context(|| format!("GET {}", proc.http))?
            .text()
            .await
            .context("reading the bootnode's /p2p")?;
        if served.trim() != proc.enr {
            bail!(
                "the bootnode serves {:?} at {} but printed {:?}",
                served.trim(),
                proc.http,
                proc.enr
            );
        }
        Ok(proc)
    }

    /// Its ENR (text form).
    pub fn enr(&self) -> &str {
        &self.enr
    }

    /// Where it serves its ENR.
    pub fn http_url(&self) -> &str {
        &self.http
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BootnodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped,
            // so its PID is still ours.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(POLL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
