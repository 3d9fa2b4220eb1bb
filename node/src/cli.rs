//! The `ssv-node` command line (`main.rs` only calls [`main`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ssv_crypto_pipeline::OperatorSecretKey;

/// `ssv-node --version`: the crate version and the commit it was built from (`build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SSV_NODE_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(name = "ssv-node", version = VERSION, about = "SSV operator node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator node: `ssv-node start --config ssv.toml` (flags override the file).
    Start(Box<StartArgs>),
    /// Import or export the slashing-protection history of the node's database as an
    /// EIP-3076 interchange document (complete format), to move validators between nodes
    /// with their history. Run it while the node is stopped.
    SlashingProtection {
        #[command(subcommand)]
        action: SlashingAction,
    },
    /// Run a local devnet: a simulated beacon chain, N operator nodes (`ssv-node start`
    /// processes) over libp2p on loopback and V generated validators, for S slots; prints a
    /// line per slot and a final table, exits non-zero unless every duty was done.
    Devnet(Box<ssv_devnet::DevnetArgs>),
    /// Write a new RSA-2048 operator key: the private key to `--out` (plain PEM, or with
    /// `--password-file` the Go node's encrypted keystore JSON), the public key (base64 of a
    /// PEM, as the SSV contract registers it) to stdout and `--out`.pub.
    Keygen {
        /// Where to write the private key (created with mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Encrypt the key with the password in this file (EIP-2335 modules, as the Go
        /// node's `generate-operator-keys --password-file` writes it).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Serve a simulated beacon chain (the Beacon API endpoints committee duties use) that
    /// verifies every submitted signature against the validators' full public keys.
    BeaconSim(Box<ssv_devnet::BeaconSimArgs>),
    /// Run a discovery-only bootnode (the Go node's `start-boot-node`): discv5 with a
    /// persistent key in `--data-dir`; prints its ENR and serves it at `/p2p`.
    Bootnode(crate::bootnode::BootnodeArgs),
    /// Write a commented sample config that `ssv-node start` accepts.
    GenerateConfig(Box<crate::generate::GenerateConfigArgs>),
    /// Print the operator's public key as the SSV contract registers it (base64 of the
    /// PEM), from a plain PEM key or, with `--password-file`, an encrypted keystore.
    ExportPublicKey {
        /// The private key: a PEM file, or the keystore JSON with `--password-file`.
        #[arg(long)]
        key: PathBuf,
        /// The keystore's password file.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SlashingAction {
    /// Merge an interchange document into the database (EIP-3076 minified merge: every
    /// validator's history collapses to its highest block slot and attestation epochs, so
    /// nothing at or below them is signed here). All or nothing; a document of another
    /// network is refused.
    Import {
        /// The node's config (its `data_dir` holds the database).
        #[arg(long)]
        config: PathBuf,
        /// The interchange JSON file.
        file: PathBuf,
        /// The network's genesis validators root (`0x` + 64 hex digits); needed on a local
        /// network, taken from the preset on mainnet, holesky and hoodi. A document of
        /// another network is refused.
        #[arg(long)]
        genesis_validators_root: Option<String>,
    },
    /// Write the database's complete history as an interchange document.
    Export {
        /// The node's config (its `data_dir` holds the database).
        #[arg(long)]
        config: PathBuf,
        /// Where to write the JSON (never overwritten).
        file: PathBuf,
        /// The network's genesis validators root (`0x` + 64 hex digits); needed on a local
        /// network, taken from the preset on mainnet, holesky and hoodi.
        #[arg(long)]
        genesis_validators_root: Option<String>,
    },
}

fn parse_root(text: &str) -> anyhow::Result<[u8; 32]> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(digits).with_context(|| format!("{text:?} is not hex"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("{text:?} is {} bytes, not 32", b.len()))
}

fn slashing_protection(action: SlashingAction) -> anyhow::Result<()> {
    use ssv_storage::{ExportForm, Interchange, Store, StoreConfig};
    // The database and the genesis validators root of the node's network.
    let open =
        |config: &std::path::Path, flag: &Option<String>| -> anyhow::Result<(PathBuf, [u8; 32])> {
            let cfg = crate::config::Config::load(config, &crate::config::Overrides::default())?;
            let gvr = match (flag, &cfg.network) {
                (Some(text), _) => parse_root(text)?,
                (None, crate::config::Network::Public(name)) => {
                    ssv_protocol::types::network_preset(name)
                        .map(|p| p.genesis_validators_root)
                        .with_context(|| format!("no preset for {name}"))?
                }
                (None, crate::config::Network::Local) => {
                    bail!("a local network needs --genesis-validators-root (the beacon chain's)")
                }
            };
            Ok((cfg.data_dir.join("db"), gvr))
        };
    match action {
        SlashingAction::Import {
            config,
            file,
            genesis_validators_root,
        } => {
            let (db, gvr) = open(&config, &genesis_validators_root)?;
            let doc = Interchange::read_file(&file)?;
            let store = Store::open(StoreConfig::new(&db, gvr))
                .with_context(|| format!("opening {}", db.display()))?;
            let summary = store.import_interchange(&doc)?;
            println!(
                "imported {} validators ({} blocks, {} attestations) into {}",
                summary.validators,
                summary.blocks,
                summary.attestations,
                db.display()
            );
            Ok(())
        }
        SlashingAction::Export {
            config,
            file,
            genesis_validators_root,
        } => {
            let (db, gvr) = open(&config, &genesis_validators_root)?;
            if !ssv_storage::db::data_file(&db).exists() {
                bail!("no database at {}", db.display());
            }
            let store = Store::open(StoreConfig::new(&db, gvr))
                .with_context(|| format!("opening {}", db.display()))?;
            let doc = store.export_interchange(ExportForm::Complete)?;
            doc.write_new_file(&file).with_context(|| {
                format!(
                    "writing {} (an existing file is never overwritten)",
                    file.display()
                )
            })?;
            println!(
                "exported {} validators to {}",
                doc.data.len(),
                file.display()
            );
            Ok(())
        }
    }
}

#[derive(clap::Args)]
struct StartArgs {
    /// The TOML config file (see `node/src/config.rs` or the README for its fields).
    #[arg(long)]
    config: PathBuf,
    /// Data directory (database, network key).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Network: mainnet, holesky, hoodi or local.
    #[arg(long)]
    network: Option<String>,
    /// Beacon node URL (repeatable; replaces the config's list).
    #[arg(long = "beacon-node")]
    beacon_nodes: Vec<String>,
    /// Number of data-plane shards (glommio executors).
    #[arg(long)]
    shards: Option<usize>,
    /// Serve `/metrics` and `/health` on this address.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Serve CPU profiles (`/debug/pprof/profile?seconds=N`, flamegraph SVG) on this address.
    #[arg(long)]
    pprof_addr: Option<SocketAddr>,
    /// libp2p TCP port.
    #[arg(long)]
    tcp_port: Option<u16>,
    /// discv5 UDP port.
    #[arg(long)]
    udp_port: Option<u16>,
    /// Bootnode ENR (repeatable; replaces the config's list).
    #[arg(long = "bootnode")]
    bootnodes: Vec<String>,
    /// Exporter mode: subscribe to every subnet, run no duties (no operator key needed),
    /// store every decided instance and serve them on `--api-addr`.
    #[arg(long)]
    exporter: bool,
    /// Serve the HTTP API (the exporter's `/v1/exporter/decideds` and `/stream`) here.
    #[arg(long)]
    api_addr: Option<SocketAddr>,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn start(args: StartArgs) -> anyhow::Result<()> {
    init_tracing();
    let overrides = crate::config::Overrides {
        data_dir: args.data_dir,
        network: args.network,
        beacon_nodes: args.beacon_nodes,
        shards: args.shards,
        metrics_addr: args.metrics_addr,
        pprof_addr: args.pprof_addr,
        tcp_port: args.tcp_port,
        udp_port: args.udp_port,
        bootnodes: args.bootnodes,
        exporter: args.exporter,
        api_addr: args.api_addr,
    };
    let config = crate::config::Config::load(&args.config, &overrides)?;
    crate::runtime::start(config)
}

fn keygen(out: PathBuf, password_file: Option<PathBuf>) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = OperatorSecretKey::generate().context("generating an RSA-2048 key")?;
    let pem = match &password_file {
        None => key.to_pem().context("encoding the key")?,
        Some(path) => {
            let password = std::fs::read_to_string(path)
                .with_context(|| format!("reading the password file {}", path.display()))?;
            ssv_crypto_pipeline::keystore::encrypt_operator_key(&key, &password)
                .map_err(|e| anyhow::anyhow!("encrypting the key: {e}"))?
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&out)
        .with_context(|| {
            format!(
                "creating {} (an existing key is never overwritten)",
                out.display()
            )
        })?;
    f.write_all(pem.as_bytes())?;
    let public = key.public_key().to_base64_pem();
    let pub_path = out.with_extension("pub");
    std::fs::write(&pub_path, format!("{public}\n"))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    println!("{public}");
    eprintln!(
        "private key: {}\npublic key:  {}",
        out.display(),
        pub_path.display()
    );
    Ok(())
}

/// The `ssv-node` command line: parses the arguments, runs the subcommand, prints an error as
/// one line and returns the exit status.
pub fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line with the whole cause chain; no backtrace for an operator's mistake.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devnet(args) => ssv_devnet::run(*args),
        Command::Start(args) => start(*args),
        Command::Keygen { out, password_file } => keygen(out, password_file),
        Command::BeaconSim(args) => ssv_devnet::run_beacon_sim(*args),
        Command::SlashingProtection { action } => slashing_protection(action),
        Command::Bootnode(args) => {
            init_tracing();
            crate::bootnode::run(args)
        }
        Command::GenerateConfig(args) => crate::generate::generate_config(&args),
        Command::ExportPublicKey { key, password_file } => {
            crate::generate::export_public_key(key, password_file)
        }
    }
}
