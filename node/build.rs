//! Records the commit the binary is built from (`ssv-node --version`): `git rev-parse HEAD`
//! when the source is a git checkout, else the `SSV_NODE_COMMIT` environment variable (a
//! tarball build can set it), else "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SSV_NODE_COMMIT");
    let from_env = std::env::var("SSV_NODE_COMMIT")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let commit = from_env
        .clone()
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    if from_env.is_none() {
        // Rebuild when HEAD moves (a commit, a checkout): HEAD and the branch it points at.
        for path in [
            git(&["rev-parse", "--git-path", "HEAD"]),
            git(&["rev-parse", "--git-path", "logs/HEAD"]),
        ]
        .into_iter()
        .flatten()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let dirty =
        from_env.is_none() && git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
    println!(
        "cargo:rustc-env=SSV_NODE_COMMIT={commit}{}",
        if dirty { "-dirty" } else { "" }
    );
}
