//! The node processes: `ssv-node start` children, watched while they run, stopped with
//! SIGTERM (SIGKILL after a grace period, and in `Drop`).

use super::*;

/// How a node's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// Still running.
    Running,
    /// Killed by the devnet at this counted slot (`--kill-operator`).
    Killed {
        /// The relative slot.
        slot: u64,
    },
    /// Exited on its own before it was asked to stop.
    ExitedEarly(String),
    /// Stopped after SIGTERM with this status.
    Stopped(String),
    /// Did not stop within [`NODE_STOP_TIMEOUT`] and was killed.
    Hung,
}

impl NodeState {
    pub(crate) fn describe(&self) -> String {
        match self {
            NodeState::Running => "running".into(),
            NodeState::Killed { slot } => format!("killed (SIGKILL) at slot {slot}"),
            NodeState::ExitedEarly(s) => format!("exited early: {s}"),
            NodeState::Stopped(s) => format!("stopped on SIGTERM: {s}"),
            NodeState::Hung => format!(
                "did not stop within {} s of SIGTERM; killed",
                NODE_STOP_TIMEOUT.as_secs()
            ),
        }
    }

    /// Whether this is how a node of a good run ends.
    pub(crate) fn is_clean(&self) -> bool {
        match self {
            NodeState::Killed { .. } => true,
            NodeState::Stopped(s) => s == "exit status 0",
            _ => false,
        }
    }
}

pub(crate) fn describe_status(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

/// One operator node process.
pub(crate) struct NodeProcess {
    pub(crate) id: u64,
    pub(crate) child: Child,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) state: NodeState,
}

/// The node processes. Dropping it kills (SIGKILL) and reaps every one still running, so no
/// error path or panic leaves a node behind.
pub struct Nodes {
    pub(crate) procs: Vec<NodeProcess>,
    /// The binary the nodes run.
    pub(crate) exe: PathBuf,
}

/// Starts `exe start --config <config>` with stdout and stderr to `log` (appended to when
/// `append`).
fn spawn_node(exe: &Path, config: &Path, log: &Path, append: bool) -> anyhow::Result<Child> {
    let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .with_context(|| format!("creating {}", log.display()))?;
    let err = file.try_clone().context("duplicating a log handle")?;
    let mut cmd = Command::new(exe);
    cmd.arg("start")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", &rust_log)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err);
    die_with_devnet(&mut cmd);
    cmd.spawn()
        .with_context(|| format!("starting {} start", exe.display()))
}

/// Makes a child process get SIGTERM when the devnet dies without cleaning up (SIGKILL).
/// The signal is tied to the spawning thread, which is the thread running the devnet's main
/// future for the whole run.
pub(crate) fn die_with_devnet(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Nodes {
    /// Starts `exe start --config <config>` for each `(id, config, log)`; the node's stdout
    /// and stderr go to `log`.
    pub(crate) fn spawn(exe: &Path, nodes: &[(u64, PathBuf, PathBuf)]) -> anyhow::Result<Self> {
        let mut out = Nodes {
            procs: Vec::new(),
            exe: exe.to_owned(),
        };
        for (id, config, log) in nodes {
            let child = spawn_node(exe, config, log, false)?;
            out.procs.push(NodeProcess {
                id: *id,
                child,
                config: config.clone(),
                log: log.clone(),
                state: NodeState::Running,
            });
        }
        Ok(out)
    }

    /// Starts operator `id` again (after [`Nodes::kill`]) with its config; its log goes on
    /// in the same file.
    pub(crate) fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        let exe = self.exe.clone();
        let p = self
            .procs
            .iter_mut()
            .find(|p| p.id == id)
            .with_context(|| format!("no operator {id}"))?;
        if p.state == NodeState::Running {
            bail!("operator {id} is running");
        }
        let child = spawn_node(&exe, &p.config, &p.log, true)?;
        p.child = child;
        p.state = NodeState::Running;
        Ok(())
    }

    /// How each node ended (or stands) and where its log is.
    /// Each running node's peak resident set size (`VmHWM`), MB; 0 for one not readable.
    pub(crate) fn peak_rss_mb(&self) -> Vec<u64> {
        self.procs
            .iter()
            .map(|p| {
                std::fs::read_to_string(format!("/proc/{}/status", p.child.id()))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("VmHWM:"))
                            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    })
                    .map_or(0, |kb| kb / 1024)
            })
            .collect()
    }

    pub(crate) fn exits(&self) -> Vec<OperatorSummary> {
        self.procs
            .iter()
            .map(|p| OperatorSummary {
                id: p.id,
                status: p.state.describe(),
                clean: p.state.is_clean(),
                log: p.log.clone(),
            })
            .collect()
    }

    /// Running nodes.
    pub(crate) fn alive(&self) -> usize {
        self.procs
            .iter()
            .filter(|p| p.state == NodeState::Running)
            .count()
    }

    /// Records nodes that exited on their own; an error names the first with its log tail.
    pub(crate) fn check(&mut self) -> anyhow::Result<()> {
        for p in &mut self.procs {
            if p.state != NodeState::Running {
                continue;
            }
            if let Some(status) = p.child.try_wait().context("waiting on a node")? {
                p.state = NodeState::ExitedEarly(describe_status(status));
                bail!(
                    "operator {} {}; last lines of {}:\n{}",
                    p.id,
                    p.state.describe(),
                    p.log.display(),
                    log_tail(&p.log)
                );
            }
        }
        Ok(())
    }

    /// SIGKILLs operator `id`.
    pub(crate) fn kill(&mut self, id: u64, slot: u64) -> anyhow::Result<()> {
        let p = self
            .procs
            .iter_mut()
            .find(|p| p.id == id)
            .with_context(|| format!("no operator {id}"))?;
        if p.state == NodeState::Running {
            p.child
                .kill()
                .with_context(|| format!("killing operator {id}"))?;
            let _ = p.child.wait();
            p.state = NodeState::Killed { slot };
        }
        Ok(())
    }

    /// Sends SIGTERM to every running node and waits up to [`NODE_STOP_TIMEOUT`] for them;
    /// the ones still running then are killed.
    pub(crate) async fn stop(&mut self) {
        for p in &self.procs {
            if p.state == NodeState::Running {
                // A child not yet reaped keeps its PID, so the signal cannot reach another
                // process.
                let pid = p.child.id() as libc::pid_t;
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + NODE_STOP_TIMEOUT;
        loop {
            for p in &mut self.procs {
                if p.state == NodeState::Running
                    && let Ok(Some(status)) = p.child.try_wait()
                {
                    p.state = NodeState::Stopped(describe_status(status));
                }
            }
            if self.alive() == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(CHILD_POLL_INTERVAL).await;
        }
        for p in &mut self.procs {
            if p.state == NodeState::Running {
                let _ = p.child.kill();
                let _ = p.child.wait();
                p.state = NodeState::Hung;
            }
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if p.state == NodeState::Running {
                let _ = p.child.kill();
                let _ = p.child.wait();
                p.state = NodeState::Hung;
            }
        }
    }
}

/// The last [`LOG_TAIL_LINES`] lines of a log (indented), or why it could not be read.
pub fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES_MAX)))?;
        let mut buf = Vec::new();
        f.take(LOG_TAIL_BYTES_MAX).read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            if tail.is_empty() {
                "    (empty)".into()
            } else {
                tail.iter().map(|l| format!("    {l}\n")).collect()
            }
        }
        Err(e) => format!("    (cannot read: {e})"),
    }
}
