//! Mirrors blst's own build-time choice of arithmetic path (see blst's `build.rs`), so that
//! `cpu_path()` can report which one is compiled in. Both build scripts run on the same host
//! with the same flags, so they reach the same decision.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let portable = env::var_os("CARGO_FEATURE_BLST_PORTABLE").is_some();
    let force_adx = env::var_os("CARGO_FEATURE_BLST_FORCE_ADX").is_some();
    let mode = if portable {
        "portable"
    } else if arch != "x86_64" {
        "other"
    } else if force_adx || target_env == "sgx" {
        "adx"
    } else if env::var("CARGO_ENCODED_RUSTFLAGS")
        .unwrap_or_default()
        .contains("target-cpu=")
    {
        let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
        let features: Vec<&str> = features.split(',').collect();
        if !features.contains(&"ssse3") {
            "portable"
        } else if features.contains(&"adx") {
            "adx"
        } else {
            "runtime"
        }
    } else {
        host_adx()
    };
    println!("cargo:rustc-env=SSV_BLST_BUILD_MODE={mode}");
}

#[cfg(target_arch = "x86_64")]
fn host_adx() -> &'static str {
    if std::is_x86_feature_detected!("adx") {
        "adx"
    } else {
        "runtime"
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn host_adx() -> &'static str {
    "runtime"
}
