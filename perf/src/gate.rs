//! `ssv-perf gate`: the perf-regression gate that CI runs.
//!
//! Each part of a fixed, deterministic workload ([`workload`]) runs under
//! `valgrind --tool=callgrind` in its own process (`ssv-perf gate-workload --part NAME`,
//! the gate re-running its own executable). Collection is off at start
//! (`--collect-atstart=no`) and toggled on for the duration of the part's one measured
//! function (`--toggle-collect=*gate_measured_<part>*`), so the count is the instructions
//! (Ir) of the measured work only: process start-up, fixture building (key generation,
//! message encoding) and the result checks are not in it, and no fixed cost has to be
//! subtracted. The counts are compared with the committed baseline (`perf/gate/baseline.json`);
//! a part that grew by more than the threshold (3 % by default) fails the gate.
//!
//! The baseline also records what the counts depend on besides our code: the valgrind
//! version, blst's arithmetic path as seen under valgrind ([`ssv_crypto_pipeline::cpu_path`]),
//! the build profile and the compiler (with RUSTFLAGS, recorded by `build.rs`). When one of those differs the gate says so and exits with
//! [`EXIT_ENV_MISMATCH`] instead of reporting a false regression; `--update` on that
//! machine makes a new baseline.
//!
//! `--update` (the deliberate, documented command) rewrites the baseline from the current
//! measurement.

pub mod workload;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use serde_json::{Value, json};

use workload::Part;

/// Default threshold: a part more than this many percent above its baseline fails the gate.
pub const THRESHOLD_PCT_DEFAULT: f64 = 3.0;
/// A part this many percent below its baseline is reported as "faster: consider --update".
pub const FASTER_NOTE_PCT: f64 = 3.0;
/// Two runs of one part may differ by at most this much (percent) before the gate warns that
/// the workload is not deterministic.
pub const SPREAD_WARN_PCT: f64 = 0.1;
/// Version of the baseline file layout.
pub const BASELINE_FORMAT: u64 = 1;
/// Most runs per part accepted by `--runs` (each run is a full valgrind run).
pub const RUNS_MAX: usize = 10;
/// Exit code of a regression (a part grew, a part has no baseline, a baselined part was not
/// measured).
pub const EXIT_REGRESSION: i32 = 1;
/// Exit code when the baseline was measured in another environment (valgrind version, blst
/// path, profile, compiler): counts are not comparable.
pub const EXIT_ENV_MISMATCH: i32 = 2;

/// The committed baseline, found from the crate's source directory so that the gate works
/// from any working directory of the checkout it was built from.
const BASELINE_DEFAULT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/gate/baseline.json");

/// Arguments of `ssv-perf gate`.
#[derive(clap::Args, Debug)]
pub struct GateArgs {
    /// Baseline file (JSON).
    #[arg(long, default_value = BASELINE_DEFAULT)]
    pub baseline: PathBuf,
    /// A part more than this many percent above its baseline fails the gate.
    #[arg(long, default_value_t = THRESHOLD_PCT_DEFAULT)]
    pub threshold_pct: f64,
    /// Rewrite the baseline with the current measurement instead of comparing.
    #[arg(long)]
    pub update: bool,
    /// Measure each part this many times (the smallest count is used; the spread is shown).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Only these parts (repeatable); default: all. Parts left out are not judged.
    #[arg(long = "part", value_enum)]
    pub parts: Vec<Part>,
    /// Valgrind runs at the same time (instruction counts do not depend on it).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// The valgrind executable.
    #[arg(long, default_value = "valgrind")]
    pub valgrind: String,
}

/// Arguments of `ssv-perf gate-workload` (what the gate runs under valgrind).
#[derive(clap::Args, Debug)]
pub struct WorkloadArgs {
    /// The part to run.
    #[arg(long, value_enum)]
    pub part: Part,
}

/// `ssv-perf gate-workload`: runs one part once and prints its report as one JSON line.
pub fn workload_main(args: WorkloadArgs) -> anyhow::Result<()> {
    let r = workload::run(args.part)?;
    println!(
        "{}",
        json!({
            "part": r.part,
            "cpu_path": r.cpu_path,
            "checksum": r.checksum,
            "items": r.items,
        })
    );
    Ok(())
}

/// What the counts depend on besides our code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// `valgrind --version`.
    pub valgrind: String,
    /// blst's path as the workload saw it under valgrind.
    pub cpu_path: String,
    /// `release` or `debug` (debug assertions on).
    pub profile: String,
    /// The compiler (and RUSTFLAGS, if any) this binary was built with: codegen decides the
    /// counts as much as our code does.
    pub compiler: String,
}

/// One part's measured count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartCount {
    /// Instructions executed in the measured function.
    pub ir: u64,
    /// Units of work (messages, signatures), for the per-item figure.
    pub items: u64,
}

/// A baseline, or the current measurement in the same shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurement {
    /// Where it was measured.
    pub env: Environment,
    /// Counts by part name.
    pub parts: BTreeMap<String, PartCount>,
}

impl Measurement {
    /// The baseline file's JSON.
    pub fn to_json(&self) -> Value {
        let parts: serde_json::Map<String, Value> = self
            .parts
            .iter()
            .map(|(k, c)| (k.clone(), json!({ "ir": c.ir, "items": c.items })))
            .collect();
        json!({
            "format": BASELINE_FORMAT,
            "updated_with": "cargo build --release -p ssv-perf && target/release/ssv-perf gate --update",
            "valgrind": self.env.valgrind,
            "cpu_path": self.env.cpu_path,
            "profile": self.env.profile,
            "compiler": self.env.compiler,
            "parts": parts,
        })
    }

    /// Parses a baseline file's JSON; every field is checked.
    pub fn from_json(v: &Value) -> anyhow::Result<Self> {
        let format = v.get("format").and_then(Value::as_u64);
        anyhow::ensure!(
            format == Some(BASELINE_FORMAT),
            "baseline format {format:?}, expected {BASELINE_FORMAT}"
        );
        let text = |k: &str| -> anyhow::Result<String> {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .with_context(|| format!("baseline: missing string field {k:?}"))
        };
        let env = Environment {
            valgrind: text("valgrind")?,
            cpu_path: text("cpu_path")?,
            profile: text("profile")?,
            compiler: text("compiler")?,
        };
        let mut parts = BTreeMap::new();
        let obj = v
            .get("parts")
            .and_then(Value::as_object)
            .context("baseline: missing object \"parts\"")?;
        for (name, p) in obj {
            let num = |k: &str| {
                p.get(k)
                    .and_then(Value::as_u64)
                    .with_context(|| format!("baseline: part {name}: missing integer {k:?}"))
            };
            parts.insert(
                name.clone(),
                PartCount {
                    ir: num("ir")?,
                    items: num("items")?,
                },
            );
        }
        Ok(Self { env, parts })
    }
}

/// What became of one part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Within the threshold.
    Ok,
    /// Grew by more than the threshold: fails the gate.
    Slower,
    /// Shrank by more than [`FASTER_NOTE_PCT`]: passes, with a note to update the baseline.
    Faster,
    /// Measured, but not in the baseline: fails (run `--update` deliberately).
    New,
    /// In the baseline, but not measured: fails (the gate lost a part).
    Missing,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Part name.
    pub part: String,
    /// Baseline count, if any.
    pub baseline: Option<u64>,
    /// Current count, if measured.
    pub current: Option<u64>,
    /// `100 · (current − baseline) / baseline`, when both exist.
    pub change_pct: Option<f64>,
    /// The judgement.
    pub verdict: Verdict,
}

/// The whole judgement.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// One row per part, baseline parts first in name order, then new parts.
    pub rows: Vec<Row>,
    /// Environment fields that differ, as `field: baseline → current`.
    pub env_mismatch: Vec<String>,
}

impl Comparison {
    /// The process exit code: 0 pass, [`EXIT_ENV_MISMATCH`], or [`EXIT_REGRESSION`].
    pub fn exit_code(&self) -> i32 {
        if !self.env_mismatch.is_empty() {
            EXIT_ENV_MISMATCH
        } else if self
            .rows
            .iter()
            .any(|r| matches!(r.verdict, Verdict::Slower | Verdict::New | Verdict::Missing))
        {
            EXIT_REGRESSION
        } else {
            0
        }
    }
}

/// Judges `current` against `baseline`. `only` restricts the judgement to those parts (the
/// others are neither measured nor missing); empty means all.
pub fn compare(
    baseline: &Measurement,
    current: &Measurement,
    threshold_pct: f64,
    only: &[String],
) -> Comparison {
    let mut env_mismatch = Vec::new();
    let (b, c) = (&baseline.env, &current.env);
    for (field, bv, cv) in [
        ("valgrind", &b.valgrind, &c.valgrind),
        ("cpu_path", &b.cpu_path, &c.cpu_path),
        ("profile", &b.profile, &c.profile),
        ("compiler", &b.compiler, &c.compiler),
    ] {
        if bv != cv {
            env_mismatch.push(format!("{field}: baseline {bv:?}, now {cv:?}"));
        }
    }
    let judged = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let mut rows = Vec::new();
    for (name, base) in &baseline.parts {
        if !judged(name) {
            continue;
        }
        let row = match current.parts.get(name) {
            None => Row {
                part: name.clone(),
                baseline: Some(base.ir),
                current: None,
                change_pct: None,
                verdict: Verdict::Missing,
            },
            Some(cur) => {
                let change = if base.ir == 0 {
                    if cur.ir == 0 { 0.0 } else { f64::INFINITY }
                } else {
                    100.0 * (cur.ir as f64 - base.ir as f64) / base.ir as f64
                };
                let verdict = if change > threshold_pct {
                    Verdict::Slower
                } else if change < -FASTER_NOTE_PCT {
                    Verdict::Faster
                } else {
                    Verdict::Ok
                };
                Row {
                    part: name.clone(),
                    baseline: Some(base.ir),
                    current: Some(cur.ir),
                    change_pct: Some(change),
                    verdict,
                }
            }
        };
        rows.push(row);
    }
    for (name, cur) in &current.parts {
        if judged(name) && !baseline.parts.contains_key(name) {
            rows.push(Row {
                part: name.clone(),
                baseline: None,
                current: Some(cur.ir),
                change_pct: None,
                verdict: Verdict::New,
            });
        }
    }
    Comparison { rows, env_mismatch }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The human report: a table, then one line per finding, then the verdict.
pub fn render(cmp: &Comparison, threshold_pct: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:>16} {:>16} {:>9}  verdict",
        "part", "baseline Ir", "current Ir", "change"
    );
    for r in &cmp.rows {
        let opt = |v: Option<u64>| v.map(grouped).unwrap_or_else(|| "-".into());
        let change = r
            .change_pct
            .map(|c| format!("{c:+.2} %"))
            .unwrap_or_else(|| "-".into());
        let verdict = match r.verdict {
            Verdict::Ok => "ok",
            Verdict::Slower => "SLOWER",
            Verdict::Faster => "faster",
            Verdict::New => "NEW",
            Verdict::Missing => "MISSING",
        };
        let _ = writeln!(
            s,
            "{:<16} {:>16} {:>16} {:>9}  {verdict}",
            r.part,
            opt(r.baseline),
            opt(r.current),
            change
        );
    }
    for m in &cmp.env_mismatch {
        let _ = writeln!(s, "environment differs from the baseline's: {m}");
    }
    if !cmp.env_mismatch.is_empty() {
        let _ = writeln!(
            s,
            "counts are not comparable across these; no regression judged. On this machine, \
             make a new baseline with `ssv-perf gate --update` (and commit it) if this is the \
             environment CI runs in."
        );
    }
    for r in &cmp.rows {
        match r.verdict {
            Verdict::Slower => {
                let _ = writeln!(
                    s,
                    "REGRESSION: {} grew by {:.2} % (threshold {threshold_pct} %)",
                    r.part,
                    r.change_pct.unwrap_or(f64::NAN)
                );
            }
            Verdict::Faster => {
                let _ = writeln!(
                    s,
                    "faster: {} shrank by {:.2} %: consider --update",
                    r.part,
                    -r.change_pct.unwrap_or(f64::NAN)
                );
            }
            Verdict::New => {
                let _ = writeln!(
                    s,
                    "NEW: {} has no baseline: run `ssv-perf gate --update` deliberately",
                    r.part
                );
            }
            Verdict::Missing => {
                let _ = writeln!(
                    s,
                    "MISSING: {} is in the baseline but was not measured",
                    r.part
                );
            }
            Verdict::Ok => {}
        }
    }
    let _ = writeln!(
        s,
        "{}",
        match cmp.exit_code() {
            0 => "perf gate: pass",
            EXIT_ENV_MISMATCH => "perf gate: ENVIRONMENT MISMATCH",
            _ => "perf gate: FAIL",
        }
    );
    s
}

/// `valgrind --version`, e.g. `valgrind-3.19.0`.
fn valgrind_version(valgrind: &str) -> anyhow::Result<String> {
    let out = Command::new(valgrind)
        .arg("--version")
        .output()
        .with_context(|| format!("running `{valgrind} --version` (is valgrind installed?)"))?;
    anyhow::ensure!(out.status.success(), "`{valgrind} --version` failed");
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `program` itself if it names a path, else its first match on `PATH` (the workload runs
/// with an empty environment, so the lookup happens here).
fn find_program(program: &str) -> anyhow::Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .with_context(|| format!("{program} not found on PATH"))
}

/// The total of a callgrind output file (`totals:` or `summary:` line, first event = Ir).
pub fn parse_callgrind_total(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with("totals:"))
        .or_else(|| text.lines().find(|l| l.starts_with("summary:")))?;
    line.split_once(':')?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Names of the functions in a callgrind output file that contain `needle`. The toggle
/// pattern must match exactly one: collection flips on entry to and exit from every matching
/// function, so a closure or generic instance named after the measured function would switch
/// counting off while it runs.
pub fn functions_matching(text: &str, needle: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("fn=").or_else(|| l.strip_prefix("cfn=")))
        .filter_map(|rest| rest.split_once(") ").map(|(_, name)| name))
        .filter(|name| name.contains(needle))
        .map(str::to_string)
        .collect()
}

/// One callgrind run of one part.
struct Run {
    ir: u64,
    items: u64,
    cpu_path: String,
    wall_s: f64,
}

/// Name of the link to our executable in the gate's scratch directory: the workload always
/// starts as `./<this>`, whatever the checkout's or target directory's path.
const WORKLOAD_LINK: &str = "w";

/// Runs one part under callgrind. The workload's environment is emptied and it is started
/// through a fixed relative path: the client's initial stack holds its argv and environment,
/// so their size moves every stack address, and glibc's `memcpy`/`memmove` pick their paths
/// by alignment. Measured here: one 40-byte environment variable more moved `batch_verify` by
/// 8,140 Ir (0.005 %). Emptied, the count no longer depends on the caller's shell, CI's
/// variables or where the binary lies.
fn run_part(valgrind: &Path, dir: &Path, part: Part, run: usize) -> anyhow::Result<Run> {
    let out_file = dir.join(format!("callgrind.{}.{run}.out", part.name()));
    let start = std::time::Instant::now();
    let out = Command::new(valgrind)
        .env_clear()
        .current_dir(dir)
        .arg("--tool=callgrind")
        .arg("-q")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={}", part.toggle_pattern()))
        .arg("--cache-sim=no")
        .arg("--branch-sim=no")
        .arg("--dump-instr=no")
        .arg("--dump-line=no")
        .arg(format!("./{WORKLOAD_LINK}"))
        .arg("gate-workload")
        .arg("--part")
        .arg(part.name())
        .output()
        .with_context(|| format!("running {} on part {}", valgrind.display(), part.name()))?;
    let wall_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "part {} failed under valgrind ({}):\n{}{}",
        part.name(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("part {}: no JSON report on stdout: {stdout}", part.name()))?;
    let text = std::fs::read_to_string(&out_file)
        .with_context(|| format!("reading {}", out_file.display()))?;
    let needle = format!("{}{}", workload::MEASURED_PREFIX, part.name());
    let matching = functions_matching(&text, &needle);
    anyhow::ensure!(
        matching.len() == 1,
        "part {}: the toggle pattern must match exactly one function, it matched {matching:?} \
         (keep closures out of the measured function)",
        part.name()
    );
    let ir = parse_callgrind_total(&text)
        .with_context(|| format!("no total in {}", out_file.display()))?;
    anyhow::ensure!(
        ir > 0,
        "part {}: no instruction counted: the measured function `{}` was never entered \
         (inlined or renamed?)",
        part.name(),
        part.toggle_pattern()
    );
    Ok(Run {
        ir,
        items: report.get("items").and_then(Value::as_u64).unwrap_or(0),
        cpu_path: report
            .get("cpu_path")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string(),
        wall_s,
    })
}

/// `ssv-perf gate`.
pub fn main(args: GateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=RUNS_MAX).contains(&args.runs),
        "--runs must be 1..={RUNS_MAX}"
    );
    anyhow::ensure!(
        args.threshold_pct.is_finite() && args.threshold_pct >= 0.0,
        "--threshold-pct must be a non-negative number"
    );
    let parts: Vec<Part> = if args.parts.is_empty() {
        Part::ALL.to_vec()
    } else {
        args.parts.clone()
    };
    let valgrind = valgrind_version(&args.valgrind)?;
    let exe = std::env::current_exe().context("locating the ssv-perf executable")?;
    if cfg!(feature = "gate-slowdown") {
        println!(
            "note: this ssv-perf was built with the `gate-slowdown` feature (deliberately slowed)"
        );
    }
    let dir = std::env::temp_dir().join(format!("ssv-perf-gate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::os::unix::fs::symlink(&exe, dir.join(WORKLOAD_LINK))
        .with_context(|| format!("linking {} into {}", exe.display(), dir.display()))?;
    let valgrind_path = find_program(&args.valgrind)?;
    let jobs: Vec<(Part, usize)> = parts
        .iter()
        .flat_map(|&p| (0..args.runs).map(move |r| (p, r)))
        .collect();
    let workers = args.jobs.clamp(1, jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<anyhow::Result<Run>>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(part, run)) = jobs.get(i) else {
                        break;
                    };
                    let r = run_part(&valgrind_path, &dir, part, run);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let mut by_part: BTreeMap<&'static str, Vec<Run>> = BTreeMap::new();
    for ((part, _), slot) in jobs.iter().zip(results) {
        let r = slot
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .context("a valgrind run did not report")??;
        by_part.entry(part.name()).or_default().push(r);
    }
    let mut current = Measurement {
        env: Environment {
            valgrind,
            cpu_path: String::new(),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
            compiler: env!("SSV_PERF_BUILD").to_string(),
        },
        parts: BTreeMap::new(),
    };
    for (name, runs) in &by_part {
        let min = runs.iter().map(|r| r.ir).min().unwrap_or(0);
        let max = runs.iter().map(|r| r.ir).max().unwrap_or(0);
        let wall: f64 = runs.iter().map(|r| r.wall_s).sum::<f64>() / runs.len() as f64;
        let items = runs.first().map_or(0, |r| r.items);
        if runs.len() > 1 {
            let spread = 100.0 * (max - min) as f64 / min.max(1) as f64;
            println!(
                "{name}: {} runs, Ir {}..{} (spread {spread:.4} %), {wall:.1} s per run under valgrind{}",
                runs.len(),
                grouped(min),
                grouped(max),
                if spread > SPREAD_WARN_PCT {
                    " — WARNING: not deterministic"
                } else {
                    ""
                }
            );
        } else {
            println!("{name}: {wall:.1} s under valgrind");
        }
        for r in runs {
            if current.env.cpu_path.is_empty() {
                current.env.cpu_path = r.cpu_path.clone();
            }
            anyhow::ensure!(
                r.cpu_path == current.env.cpu_path,
                "parts saw different blst paths: {} / {}",
                r.cpu_path,
                current.env.cpu_path
            );
        }
        current
            .parts
            .insert(name.to_string(), PartCount { ir: min, items });
    }
    println!(
        "measured {} parts in {:.1} s (valgrind {}, blst {}, {} build, {})",
        by_part.len(),
        started.elapsed().as_secs_f64(),
        current.env.valgrind,
        current.env.cpu_path,
        current.env.profile,
        current.env.compiler
    );
    if args.update {
        let mut m = current;
        // A partial update keeps the other parts' baselines.
        if !args.parts.is_empty()
            && let Ok(text) = std::fs::read_to_string(&args.baseline)
        {
            let old = Measurement::from_json(&serde_json::from_str(&text)?)?;
            anyhow::ensure!(
                old.env == m.env,
                "a partial --update needs the same environment as the baseline; update all parts"
            );
            for (k, v) in old.parts {
                m.parts.entry(k).or_insert(v);
            }
        }
        let text = serde_json::to_string_pretty(&m.to_json())? + "\n";
        std::fs::write(&args.baseline, text)
            .with_context(|| format!("writing {}", args.baseline.display()))?;
        for (name, c) in &m.parts {
            println!(
                "{name:<16} {:>16} Ir  ({} per item)",
                grouped(c.ir),
                grouped(c.ir / c.items.max(1))
            );
        }
        println!("baseline written to {}", args.baseline.display());
        return Ok(());
    }
    let text = std::fs::read_to_string(&args.baseline).with_context(|| {
        format!(
            "reading the baseline {} (make one with `ssv-perf gate --update`)",
            args.baseline.display()
        )
    })?;
    let baseline = Measurement::from_json(
        &serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", args.baseline.display()))?,
    )?;
    let only: Vec<String> = args.parts.iter().map(|p| p.name().to_string()).collect();
    let cmp = compare(&baseline, &current, args.threshold_pct, &only);
    print!("{}", render(&cmp, args.threshold_pct));
    let code = cmp.exit_code();
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment {
            valgrind: "valgrind-3.19.0".into(),
            cpu_path: "x86_64 adx".into(),
            profile: "release".into(),
            compiler: "rustc 1.95.0".into(),
        }
    }

    fn m(parts: &[(&str, u64)]) -> Measurement {
        Measurement {
            env: env(),
            parts: parts
                .iter()
                .map(|&(n, ir)| (n.to_string(), PartCount { ir, items: 10 }))
                .collect(),
        }
    }

    fn verdicts(c: &Comparison) -> Vec<(&str, Verdict)> {
        c.rows
            .iter()
            .map(|r| (r.part.as_str(), r.verdict))
            .collect()
    }

    #[test]
    fn within_threshold_passes_and_above_fails() {
        let base = m(&[("a", 1_000_000), ("b", 1_000_000)]);
        // +3.0 % exactly is allowed, +3.01 % is not.
        let cur = m(&[("a", 1_030_000), ("b", 1_030_100)]);
        let c = compare(&base, &cur, 3.0, &[]);
        assert_eq!(
            verdicts(&c),
            vec![("a", Verdict::Ok), ("b", Verdict::Slower)]
        );
        assert_eq!(c.exit_code(), EXIT_REGRESSION);
        let report = render(&c, 3.0);
        assert!(report.contains("REGRESSION: b grew by 3.01 %"), "{report}");
        assert!(report.contains("perf gate: FAIL"));
        assert!(!report.contains("REGRESSION: a"));

        let same = compare(&base, &base, 3.0, &[]);
        assert_eq!(same.exit_code(), 0);
        assert!(render(&same, 3.0).contains("perf gate: pass"));
        // The threshold is the caller's.
        assert_eq!(compare(&base, &cur, 5.0, &[]).exit_code(), 0);
    }

    #[test]
    fn faster_passes_with_a_note() {
        let base = m(&[("a", 1_000_000)]);
        let cur = m(&[("a", 950_000)]);
        let c = compare(&base, &cur, 3.0, &[]);
        assert_eq!(verdicts(&c), vec![("a", Verdict::Faster)]);
        assert_eq!(c.exit_code(), 0);
        let report = render(&c, 3.0);
        assert!(
            report.contains("faster: a shrank by 5.00 %: consider --update"),
            "{report}"
        );
        assert!(report.contains("-5.00 %"));
    }

    #[test]
    fn missing_and_new_parts_fail() {
        let base = m(&[("a", 100), ("gone", 100)]);
        let cur = m(&[("a", 100), ("fresh", 100)]);
        let c = compare(&base, &cur, 3.0, &[]);
        assert_eq!(
            verdicts(&c),
            vec![
                ("a", Verdict::Ok),
                ("gone", Verdict::Missing),
                ("fresh", Verdict::New)
            ]
        );
        assert_eq!(c.exit_code(), EXIT_REGRESSION);
        let report = render(&c, 3.0);
        assert!(report.contains("MISSING: gone"));
        assert!(report.contains("NEW: fresh"));
        // With a part filter, parts outside it are neither missing nor new.
        let only = compare(&base, &cur, 3.0, &["a".to_string()]);
        assert_eq!(verdicts(&only), vec![("a", Verdict::Ok)]);
        assert_eq!(only.exit_code(), 0);
    }

    #[test]
    fn environment_mismatch_is_not_a_regression() {
        let base = m(&[("a", 100)]);
        let mut cur = m(&[("a", 200)]);
        cur.env.valgrind = "valgrind-3.22.0".into();
        cur.env.cpu_path = "portable".into();
        let c = compare(&base, &cur, 3.0, &[]);
        assert_eq!(c.exit_code(), EXIT_ENV_MISMATCH);
        assert_eq!(c.env_mismatch.len(), 2);
        let report = render(&c, 3.0);
        assert!(report.contains("valgrind: baseline \"valgrind-3.19.0\", now \"valgrind-3.22.0\""));
        assert!(report.contains("ENVIRONMENT MISMATCH"), "{report}");
        let mut debug = m(&[("a", 100)]);
        debug.env.profile = "debug".into();
        assert_eq!(
            compare(&base, &debug, 3.0, &[]).exit_code(),
            EXIT_ENV_MISMATCH
        );
        let mut toolchain = m(&[("a", 100)]);
        toolchain.env.compiler = "rustc 1.96.0".into();
        let c = compare(&base, &toolchain, 3.0, &[]);
        assert_eq!(c.exit_code(), EXIT_ENV_MISMATCH);
        assert!(
            c.env_mismatch[0].starts_with("compiler:"),
            "{:?}",
            c.env_mismatch
        );
    }

    #[test]
    fn baseline_json_round_trips_and_bad_files_are_errors() {
        let base = m(&[("a", 123_456_789), ("b", 1)]);
        let back = Measurement::from_json(&base.to_json()).expect("round trip");
        assert_eq!(back, base);
        let mut v = base.to_json();
        v["format"] = json!(99);
        assert!(Measurement::from_json(&v).is_err());
        let mut v = base.to_json();
        v["parts"]["a"]["ir"] = json!("many");
        assert!(Measurement::from_json(&v).is_err());
        let mut v = base.to_json();
        v.as_object_mut().expect("object").remove("cpu_path");
        assert!(Measurement::from_json(&v).is_err());
    }

    #[test]
    fn callgrind_totals_are_parsed() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=(1) x\n5 10\n\nsummary: 1234\ntotals: 1234\n";
        assert_eq!(parse_callgrind_total(text), Some(1234));
        assert_eq!(parse_callgrind_total("summary: 77\n"), Some(77));
        assert_eq!(parse_callgrind_total("events: Ir\n"), None);
        let text = "fn=(1) a::gate_measured_x\ncfn=(2) a::gate_measured_x::{{closure}}\n\
                    cfn=(3) blst_sign\nfn=(1)\ncfn=(2)\n";
        let found = functions_matching(text, "gate_measured_x");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.contains("a::gate_measured_x::{{closure}}"));
        assert!(functions_matching(text, "gate_measured_y").is_empty());
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(12), "12");
    }

    #[test]
    fn every_part_has_a_distinct_measured_function_pattern() {
        let patterns: std::collections::HashSet<String> =
            Part::ALL.iter().map(|p| p.toggle_pattern()).collect();
        assert_eq!(patterns.len(), Part::ALL.len());
        // No pattern is a prefix-match of another part's function name.
        for a in Part::ALL {
            for b in Part::ALL {
                if a != b {
                    assert!(!b.name().contains(a.name()));
                }
            }
        }
    }
}
