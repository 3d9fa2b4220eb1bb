//! Runs the EIP-3076 slashing-protection interchange vectors in a folder.
//!
//! `cargo run --release -p ssv-storage --bin eip3076-vectors -- --vectors DIR`
//!
//! Prints one line per failing file and ends with `N passed, M failed`; exits non-zero when
//! any file failed (or the folder cannot be read).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--vectors" => dir = args.next().map(PathBuf::from),
            other => {
                eprintln!("unknown argument {other:?}; usage: eip3076-vectors --vectors DIR");
                return ExitCode::from(2);
            }
        }
    }
    let Some(dir) = dir else {
        eprintln!("usage: eip3076-vectors --vectors DIR");
        return ExitCode::from(2);
    };
    let report = match ssv_storage::vectors::run_dir(&dir) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("cannot read {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    for (file, reason) in &report.failed {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        println!("FAIL {name}: {reason}");
    }
    println!("{} passed, {} failed", report.passed, report.failed.len());
    if report.failed.is_empty() && report.passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
