//! Records the compiler and flags this binary was built with: the perf gate's instruction
//! counts depend on them, so its baseline names them (a toolchain bump is then reported as an
//! environment change, not as a regression).

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown rustc".to_string());
    // Flags arrive separated by 0x1f; spaces read better in a report.
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .unwrap_or_default()
        .replace('\u{1f}', " ");
    let build = if flags.is_empty() {
        version
    } else {
        format!("{version}, RUSTFLAGS {flags}")
    };
    println!("cargo:rustc-env=SSV_PERF_BUILD={build}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
}
