//! `ssv-node`: the SSV operator node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ssv_crypto_pipeline::OperatorSecretKey;
use ssv_node::beacon::sim::{BeaconSim, SimConfig, SimValidator};

#[derive(Parser)]
#[command(name = "ssv-node", version, about = "SSV operator node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator node: `ssv-node start --config ssv.toml` (flags override the file).
    Start(Box<StartArgs>),
    /// Run a local devnet: a simulated beacon chain, N operator nodes (`ssv-node start`
    /// processes) over libp2p on loopback and V generated validators, for S slots; prints a
    /// line per slot and a final table, exits non-zero unless every duty was done.
    Devnet(Box<ssv_node::devnet::DevnetArgs>),
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
    BeaconSim {
        /// Address to listen on (loopback by default).
        #[arg(long, default_value = "127.0.0.1:5052")]
        listen: SocketAddr,
        /// JSON file of the validators: `[{"index": "0", "pubkey": "0x…"}, …]`.
        #[arg(long)]
        validators_file: PathBuf,
        /// Slot duration in milliseconds (mainnet: 12000).
        #[arg(long, default_value_t = 12_000)]
        slot_ms: u64,
        /// Print the counters every this many slots.
        #[arg(long, default_value_t = 1)]
        stats_every: u64,
    },
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
    let overrides = ssv_node::config::Overrides {
        data_dir: args.data_dir,
        network: args.network,
        beacon_nodes: args.beacon_nodes,
        shards: args.shards,
        metrics_addr: args.metrics_addr,
        pprof_addr: args.pprof_addr,
        tcp_port: args.tcp_port,
        udp_port: args.udp_port,
        bootnodes: args.bootnodes,
    };
    let config = ssv_node::config::Config::load(&args.config, &overrides)?;
    ssv_node::runtime::start(config)
}

#[derive(serde::Deserialize)]
struct ValidatorLine {
    #[serde(with = "ssv_node::beacon::api::quoted::u64_str")]
    index: u64,
    #[serde(with = "ssv_node::beacon::api::quoted::hex_bytes")]
    pubkey: [u8; 48],
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

async fn beacon_sim(
    listen: SocketAddr,
    file: PathBuf,
    slot_ms: u64,
    every: u64,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let lines: Vec<ValidatorLine> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    if lines.is_empty() {
        bail!("{} lists no validators", file.display());
    }
    let validators = lines
        .into_iter()
        .map(|l| SimValidator {
            index: l.index,
            pubkey: l.pubkey,
        })
        .collect();
    let cfg = SimConfig::new(
        validators,
        Duration::from_millis(slot_ms.max(1)),
        Duration::from_millis(slot_ms),
    );
    let sim = BeaconSim::new(cfg)?;
    let addr = sim
        .clone()
        .serve(listen, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .with_context(|| format!("listening on {listen}"))?;
    eprintln!("beacon-sim: serving the Beacon API on http://{addr} (ctrl-c stops)");
    let mut last_printed = None;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(slot_ms.max(1))) => {}
        }
        let s = sim.stats();
        if last_printed.is_none_or(|p| s.slot >= p + every.max(1)) {
            last_printed = Some(s.slot);
            println!(
                "slot {:>6}  attestations {}/{} valid ({} invalid, {} late)  sync {}/{} valid  missed {}",
                s.slot,
                s.attestations_valid,
                s.attestations_expected,
                s.attestations_invalid,
                s.attestations_late,
                s.sync_messages_valid,
                s.sync_messages_expected,
                s.missed
            );
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
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
        Command::Devnet(args) => ssv_node::devnet::run(*args),
        Command::Start(args) => start(*args),
        Command::Keygen { out, password_file } => keygen(out, password_file),
        Command::BeaconSim {
            listen,
            validators_file,
            slot_ms,
            stats_every,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the control-plane runtime")?;
            rt.block_on(beacon_sim(listen, validators_file, slot_ms, stats_every))
        }
    }
}
