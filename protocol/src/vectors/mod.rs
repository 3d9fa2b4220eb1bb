//! The ssv-spec conformance-vector runner: discovers every file under `DIR/<module>/tests`,
//! dispatches on the test-type prefix (the file name up to the first `_`), and fails on an
//! unknown prefix so that no vector is silently skipped.
//!
//! Each module has a case table (`types_cases::CASES`, `qbft_cases::CASES`); adding a module is
//! adding a table to [`cases_for_module`].

pub mod beacon_cases;
pub mod json;
pub mod qbft_cases;
pub mod rsa;
pub mod ssv;
pub mod types_cases;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// A test case runner: takes the parsed JSON of one file and the vectors root (for files a
/// case refers to, such as QBFT state comparisons), and says why it failed, if it did.
pub type CaseFn = fn(&Value, &CaseContext) -> Result<(), String>;

/// What a case may need besides its own JSON.
#[derive(Debug, Clone)]
pub struct CaseContext {
    /// The vectors root (laid out like `ssv-spec-v1.2.2`).
    pub root: PathBuf,
    /// The module being run.
    pub module: String,
    /// The file's name without `.json`.
    pub file_stem: String,
}

/// The case tables of a module: `(prefix, runner)`; a module may have several tables.
pub fn cases_for_module(module: &str) -> Option<&'static [&'static [(&'static str, CaseFn)]]> {
    match module {
        "types" => Some(&[types_cases::CASES, beacon_cases::CASES]),
        "qbft" => Some(&[qbft_cases::CASES]),
        // The runner suite has its own dispatch (one outcome per subtest): `ssv::run`.
        _ => None,
    }
}

/// The modules the runner knows (`all` on the command line means every one).
pub const MODULES: &[&str] = &["types", "qbft", "ssv"];

/// Result of one file.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// File name.
    pub file: String,
    /// Test-type prefix.
    pub test_type: String,
    /// The duty role a runner-suite subtest exercises (`None` outside the `ssv` module).
    pub role: Option<String>,
    /// `Err(reason)` if the file failed.
    pub result: Result<(), String>,
}

/// Results of a module run.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// One outcome per file, in file-name order.
    pub outcomes: Vec<FileOutcome>,
}

impl Report {
    /// Files that passed.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_ok()).count()
    }

    /// Files that failed.
    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }

    /// `(passed, failed)` per test type.
    pub fn per_type(&self) -> BTreeMap<String, (usize, usize)> {
        self.count_by(|o| Some(o.test_type.clone()))
    }

    /// `(passed, failed)` per role (runner-suite outcomes only).
    pub fn per_role(&self) -> BTreeMap<String, (usize, usize)> {
        self.count_by(|o| o.role.clone())
    }

    fn count_by(
        &self,
        key: impl Fn(&FileOutcome) -> Option<String>,
    ) -> BTreeMap<String, (usize, usize)> {
        let mut m: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for o in &self.outcomes {
            let Some(k) = key(o) else { continue };
            let e = m.entry(k).or_default();
            if o.result.is_ok() {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        m
    }
}

/// Runs every file of `root/<module>/tests`. Errors only if the module is unknown or the
/// folder cannot be listed; a file that cannot be read or parsed is a failed file.
pub fn run_module(root: &Path, module: &str) -> Result<Report, String> {
    if module == "ssv" {
        return ssv::run(root);
    }
    let cases = cases_for_module(module)
        .ok_or_else(|| format!("unknown module {module:?}; known: {}", MODULES.join(", ")))?;
    let dir = root.join(module).join("tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut report = Report::default();
    for path in files {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = file.trim_end_matches(".json").to_string();
        let test_type = stem.split('_').next().unwrap_or_default().to_string();
        let ctx = CaseContext {
            root: root.to_path_buf(),
            module: module.to_string(),
            file_stem: stem,
        };
        let case = cases
            .iter()
            .flat_map(|t| t.iter())
            .find(|(prefix, _)| *prefix == test_type);
        let result = match case {
            None => Err(format!("unknown test type {test_type:?}")),
            Some((_, run)) => std::fs::read(&path)
                .map_err(|e| format!("read: {e}"))
                .and_then(|bytes| {
                    serde_json::from_slice::<Value>(&bytes).map_err(|e| format!("json: {e}"))
                })
                .and_then(|json| run(&json, &ctx)),
        };
        report.outcomes.push(FileOutcome {
            file,
            test_type,
            role: None,
            result,
        });
    }
    Ok(report)
}

/// Checks an outcome against an `ExpectedErrorCode` (0 or absent: success expected).
pub fn expect_code(result: Result<(), crate::Error>, expected: u64) -> Result<(), String> {
    match (result, expected) {
        (Ok(()), 0) => Ok(()),
        (Ok(()), code) => Err(format!("expected error code {code}, got success")),
        (Err(e), 0) => Err(format!(
            "expected success, got error {} ({e})",
            e.code().as_u16()
        )),
        (Err(e), code) if u64::from(e.code().as_u16()) == code => Ok(()),
        (Err(e), code) => Err(format!(
            "expected error code {code}, got {} ({e})",
            e.code().as_u16()
        )),
    }
}
