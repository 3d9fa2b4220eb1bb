//! `ssv-perf`: the crypto summary, the validators-per-host capacity benchmark and the
//! perf-regression gate. Each subcommand lives in its own module.

use clap::{Parser, Subcommand};

mod capacity;
mod crypto;
mod gate;
mod registry;
mod validation;

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
    /// Validators per host: one node under test, the harness playing the other operators and
    /// the beacon node; slots back to back.
    Capacity(capacity::CapacityArgs),
    /// The other operators' node of `capacity --peer-process` (started by it).
    #[command(hide = true)]
    CapacityPeer(capacity::PeerArgs),
    /// Gossip messages fully validated per second on one core (valid, garbage, bad RSA,
    /// replays), beside the RSA-verify floor.
    Validation(validation::ValidationArgs),
    /// The live registry's rebuild at scale: load, rebuild unchanged, rebuild after churn.
    Registry(registry::RegistryArgs),
    /// Perf-regression gate: instruction counts of a fixed workload under valgrind, compared
    /// with the committed baseline (`--update` rewrites it).
    Gate(gate::GateArgs),
    /// One part of the gate's fixed workload (what the gate runs under valgrind).
    GateWorkload(gate::WorkloadArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The node's log, off unless `RUST_LOG` asks for it (the figures go to stdout).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    match cli.command {
        Command::Crypto(args) => crypto::main(args),
        Command::Capacity(args) => capacity::main(args),
        Command::CapacityPeer(args) => capacity::peer_main(args),
        Command::Validation(args) => validation::main(args),
        Command::Registry(args) => registry::main(args),
        Command::Gate(args) => gate::main(args),
        Command::GateWorkload(args) => gate::workload_main(args),
    }
}
