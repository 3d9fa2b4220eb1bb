//! `ssv-perf`: capacity benchmark, crypto summary and the perf-regression gate.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("ssv-perf has no subcommands yet")
}
