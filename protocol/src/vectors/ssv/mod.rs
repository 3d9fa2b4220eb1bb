//! The runner suite of ssv-spec (`ssv` module): every test type of the suite is dispatched,
//! every subtest is one outcome, and a subtest nothing here can run is a failure (never a
//! skip). See `testdata/ssv-spec-v1.2.2/ssv/SOURCE.md` for the format and the
//! fixed environment of the Go harness that these cases reproduce.

pub mod bls;
pub mod keys;
pub mod suite;

mod basic_cases;
mod committee_cases;
mod harness;
mod validator_cases;

use std::path::Path;

use serde_json::Value;

use super::json::{as_array, field, u64_field};
use super::{FileOutcome, Report};
use crate::message::RunnerRole;
use keys::TestKeys;
use suite::Suite;

/// What every case of the suite may need.
pub struct SsvContext {
    /// The suite's files.
    pub suite: Suite,
    /// The harness's keys.
    pub keys: TestKeys,
    /// The mock beacon node's block of each fork.
    pub blocks: validator_cases::MockBlocks,
}

/// One subtest's verdict.
pub struct SubOutcome {
    /// Subtest name (the file's `Name`, then the subtest's).
    pub name: String,
    /// The role it exercises (`None`: role-independent, e.g. the signature container).
    pub role: Option<RunnerRole>,
    /// `Err(reason)` when it failed.
    pub result: Result<(), String>,
}

type SsvCaseFn = fn(&Value, &SsvContext) -> Vec<SubOutcome>;

/// `(test type prefix, runner)`.
const CASES: &[(&str, SsvCaseFn)] = &[
    (
        "partialsigcontainer.PartialSigContainerTest",
        basic_cases::partial_sig_container,
    ),
    (
        "runnerconstruction.RunnerConstructionSpecTest",
        basic_cases::runner_construction,
    ),
    ("valcheck.SpecTest", basic_cases::valcheck_single),
    ("valcheck.MultiSpecTest", basic_cases::valcheck_multi),
    ("tests.MultiMsgProcessingSpecTest", msg_processing_multi),
    ("tests.MsgProcessingSpecTest", msg_processing_single),
    ("committee.MultiCommitteeSpecTest", committee_multi),
    ("committee.CommitteeSpecTest", committee_single),
    ("newduty.MultiStartNewRunnerDutySpecTest", new_duty_multi),
    (
        "synccommitteeaggregator.SyncCommitteeAggregatorProofSpecTest",
        sync_aggregator_proof,
    ),
];

/// The display name of a role in the summary.
pub fn role_name(role: Option<RunnerRole>) -> &'static str {
    match role {
        None => "role-independent",
        Some(RunnerRole::Committee) => "committee",
        Some(RunnerRole::Aggregator) => "aggregator",
        Some(RunnerRole::Proposer) => "proposer",
        Some(RunnerRole::SyncCommitteeContribution) => "sync committee contribution",
        Some(RunnerRole::ValidatorRegistration) => "validator registration",
        Some(RunnerRole::VoluntaryExit) => "voluntary exit",
    }
}

/// The role of a subtest from its runner, its `RunnerRole` field, or its file's type.
fn role_of(v: &Value, test_type: &str) -> Option<RunnerRole> {
    if test_type.starts_with("committee.") {
        return Some(RunnerRole::Committee);
    }
    if test_type.starts_with("synccommitteeaggregator.") {
        return Some(RunnerRole::SyncCommitteeContribution);
    }
    let raw = v
        .get("Runner")
        .and_then(|r| r.get("BaseRunner"))
        .and_then(|b| b.get("RunnerRoleType"))
        .or_else(|| v.get("RunnerRole"))?;
    RunnerRole::from_i32(i32::try_from(super::json::as_u64(raw).ok()?).ok()?)
}

/// A subtest's name (`Name`).
fn name_of(v: &Value) -> String {
    v.get("Name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_string()
}

fn msg_processing_multi(v: &Value, ctx: &SsvContext) -> Vec<SubOutcome> {
    let top = name_of(v);
    match as_array(v.get("Tests").unwrap_or(&Value::Null)) {
        Ok(tests) => tests
            .iter()
            .map(|t| committee_cases::run_subtest(t, ctx, Some(&top)))
            .collect(),
        Err(e) => vec![SubOutcome {
            name: top,
            role: None,
            result: Err(e),
        }],
    }
}

fn msg_processing_single(v: &Value, ctx: &SsvContext) -> Vec<SubOutcome> {
    vec![committee_cases::run_subtest(v, ctx, None)]
}

fn committee_multi(v: &Value, ctx: &SsvContext) -> Vec<SubOutcome> {
    let top = name_of(v);
    match as_array(v.get("Tests").unwrap_or(&Value::Null)) {
        Ok(tests) => tests
            .iter()
            .map(|t| SubOutcome {
                name: format!("{top} / {}", name_of(t)),
                role: Some(RunnerRole::Committee),
                result: committee_cases::committee_case(t, ctx, Some(&top)),
            })
            .collect(),
        Err(e) => vec![SubOutcome {
            name: top,
            role: Some(RunnerRole::Committee),
            result: Err(e),
        }],
    }
}

fn new_duty_multi(v: &Value, ctx: &SsvContext) -> Vec<SubOutcome> {
    let top = name_of(v);
    match as_array(v.get("Tests").unwrap_or(&Value::Null)) {
        Ok(tests) => tests
            .iter()
            .map(|t| committee_cases::new_duty_subtest(t, ctx, &top))
            .collect(),
        Err(e) => vec![SubOutcome {
            name: top,
            role: None,
            result: Err(e),
        }],
    }
}

fn committee_single(v: &Value, ctx: &SsvContext) -> Vec<SubOutcome> {
    vec![SubOutcome {
        name: name_of(v),
        role: Some(RunnerRole::Committee),
        result: committee_cases::committee_case(v, ctx, None),
    }]
}

fn sync_aggregator_proof(v: &Value, ctx: &SsvContext) -> Vec<SubOutcome> {
    vec![SubOutcome {
        name: name_of(v),
        role: Some(RunnerRole::SyncCommitteeContribution),
        result: validator_cases::sync_aggregator_proof(v, ctx),
    }]
}

/// Runs every file of the runner suite under `root` (`root/ssv/...`).
pub fn run(root: &Path) -> Result<Report, String> {
    let suite = Suite::open(root)?;
    let keys = TestKeys::from_json(
        &serde_json::from_slice(
            &std::fs::read(root.join("ssv").join("testing-keys.json"))
                .map_err(|e| format!("testing-keys.json: {e}"))?,
        )
        .map_err(|e| format!("testing-keys.json: {e}"))?,
    )?;
    let blocks = validator_cases::MockBlocks::load(root);
    let ctx = SsvContext {
        suite,
        keys,
        blocks,
    };
    let mut report = Report::default();
    for rel in ctx.suite.test_files()? {
        let file = rel.trim_start_matches("tests/").to_string();
        let test_type = file.split('_').next().unwrap_or_default().to_string();
        let outcomes = match CASES.iter().find(|(p, _)| *p == test_type) {
            None => vec![SubOutcome {
                name: file.clone(),
                role: None,
                result: Err(format!("unknown test type {test_type:?}")),
            }],
            Some((_, case)) => match ctx.suite.json(&rel) {
                Ok(json) => {
                    let mut out = case(&json, &ctx);
                    for o in &mut out {
                        if o.role.is_none() {
                            o.role = role_of(&json, &test_type);
                        }
                    }
                    out
                }
                Err(e) => vec![SubOutcome {
                    name: file.clone(),
                    role: None,
                    result: Err(e),
                }],
            },
        };
        for o in outcomes {
            report.outcomes.push(FileOutcome {
                file: format!("{file} :: {}", o.name),
                test_type: test_type.clone(),
                role: Some(role_name(o.role).to_string()),
                result: o.result,
            });
        }
    }
    Ok(report)
}

/// `ExpectedErrorCode` (absent: 0).
pub fn expected_code(v: &Value) -> Result<u64, String> {
    match v.get("ExpectedErrorCode") {
        None | Some(Value::Null) => Ok(0),
        Some(_) => u64_field(v, "ExpectedErrorCode"),
    }
}

/// `v[name]` as a string.
pub fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| format!("{name}: expected a string"))
}
