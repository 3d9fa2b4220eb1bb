//! `ssv-node`: the SSV operator node.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ssv-node", version, about = "SSV operator node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local devnet (not built yet; see README "What is not done yet").
    Devnet,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Devnet => {
            anyhow::bail!("the devnet is not built yet (issue: the node end to end)")
        }
    }
}
