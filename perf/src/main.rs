//! `ssv-perf`: the crypto summary, the validators-per-host capacity benchmark and the
//! perf-regression gate. Each subcommand lives in its own module.

use clap::{Parser, Subcommand};

mod crypto;

#[derive(Parser)]
#[command(
    name = "ssv-perf",
    about = "Benchmarks and performance gates of the SSV node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signature costs (BLS, batches, threshold, RSA) as one summary.
    Crypto(crypto::CryptoArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crypto(args) => crypto::main(args),
    }
}
