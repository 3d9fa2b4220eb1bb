//! `ssv-spec-vectors --vectors DIR --module types|qbft|ssv|all`: runs every ssv-spec
//! conformance vector of a module, prints one line per failing file (per failing subtest in
//! the runner suite, `ssv`), a count per test type (and per role for `ssv`), and ends with
//! `N passed, M failed`. Exits non-zero if anything failed.

use std::path::PathBuf;
use std::process::ExitCode;

use ssv_protocol::vectors::{MODULES, run_module};

const USAGE: &str = "usage: ssv-spec-vectors --vectors DIR [--module MODULE]...\n\
                     (modules: types, qbft, ssv; `all` or none given: every one)";

fn main() -> ExitCode {
    let mut dir: Option<PathBuf> = None;
    let mut modules: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--vectors" => dir = args.next().map(PathBuf::from),
            "--module" => match args.next() {
                Some(m) if m == "all" => modules.extend(MODULES.iter().map(|m| m.to_string())),
                Some(m) => modules.push(m),
                None => {}
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if modules.is_empty() {
        modules = MODULES.iter().map(|m| m.to_string()).collect();
    }
    let (mut passed, mut failed) = (0, 0);
    for module in &modules {
        let report = match run_module(&dir, module) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{module}: {e}");
                return ExitCode::from(2);
            }
        };
        for o in report.outcomes.iter().filter(|o| o.result.is_err()) {
            if let Err(reason) = &o.result {
                println!("FAIL {module}/{}: {reason}", o.file);
            }
        }
        for (test_type, (p, f)) in report.per_type() {
            println!("  {module} {test_type}: {p} passed, {f} failed");
        }
        for (role, (p, f)) in report.per_role() {
            println!("  {module} role {role}: {p} passed, {f} failed");
        }
        passed += report.passed();
        failed += report.failed();
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
