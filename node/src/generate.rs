//! `ssv-node generate-config`: a commented TOML config that `ssv-node start` accepts (the Go
//! node's `generate-config`, which writes its YAML), and `ssv-node export-public-key`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

/// The arguments of `ssv-node generate-config`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateConfigArgs {
    /// Where to write the config (never overwritten); `-` writes it to stdout.
    #[arg(long)]
    pub out: PathBuf,
    /// Data directory (database, network key).
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Network: mainnet, holesky, hoodi or local.
    #[arg(long, default_value = "hoodi")]
    pub network: String,
    /// Beacon node URL (repeatable).
    #[arg(long = "beacon-node", default_value = "http://127.0.0.1:5052")]
    pub beacon_nodes: Vec<String>,
    /// Execution JSON-RPC endpoint for contract sync (repeatable; none: no `[eth1]`).
    #[arg(long = "eth1-endpoint")]
    pub eth1_endpoints: Vec<String>,
    /// The operator's encrypted keystore (`encrypted_private_key.json`).
    #[arg(long, default_value = "encrypted_private_key.json")]
    pub keystore_file: PathBuf,
    /// The keystore's password file.
    #[arg(long, default_value = "password")]
    pub password_file: PathBuf,
    /// Write an exporter's config instead (no operator key, every subnet, the API on).
    #[arg(long)]
    pub exporter: bool,
    /// Metrics address.
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub metrics_addr: SocketAddr,
    /// API address (exporter queries and stream).
    #[arg(long, default_value = "127.0.0.1:16000")]
    pub api_addr: SocketAddr,
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// The config text for `args`.
pub fn config_text(args: &GenerateConfigArgs) -> String {
    let mut t = String::new();
    t.push_str("# ssv-node configuration (ssv-node generate-config). Flags of `ssv-node start`\n");
    t.push_str("# override the common settings. Relative paths are relative to this file.\n\n");
    t.push_str("# Database and network key.\n");
    t.push_str(&format!(
        "data_dir = {}\n",
        quoted(&args.data_dir.to_string_lossy())
    ));
    t.push_str("# mainnet | holesky | hoodi | local\n");
    t.push_str(&format!("network = {}\n", quoted(&args.network)));
    t.push_str("# Beacon node URLs, tried in order (1 to 16).\n");
    t.push_str(&format!("beacon_nodes = {}\n", list(&args.beacon_nodes)));
    t.push_str("# Data-plane shards (glommio executors, one core each).\n");
    t.push_str("shards = 1\n");
    t.push_str("# /metrics and /health.\n");
    t.push_str(&format!(
        "metrics_addr = {}\n",
        quoted(&args.metrics_addr.to_string())
    ));
    t.push_str("# HTTP API (the exporter's /v1/exporter/decideds and /stream).\n");
    t.push_str(&format!(
        "api_addr = {}\n",
        quoted(&args.api_addr.to_string())
    ));
    t.push_str("# Epochs of slashing-protection history kept in full (4 to 82125).\n");
    t.push_str("slashing_history_epochs = 256\n\n");
    if args.exporter {
        t.push_str("# Exporter mode: every subnet, no duties, no operator key; decided\n");
        t.push_str("# instances stored and served on api_addr.\n");
        t.push_str("[exporter]\n");
        t.push_str("# Slots of decided history kept (at least 64).\n");
        t.push_str("retention_slots = 50400\n\n");
    } else {
        t.push_str("[operator]\n");
        t.push_str("# id = 42                     # otherwise looked up by public key\n");
        t.push_str(&format!(
            "keystore_file = {}\n",
            quoted(&args.keystore_file.to_string_lossy())
        ));
        t.push_str(&format!(
            "password_file = {}\n",
            quoted(&args.password_file.to_string_lossy())
        ));
        t.push_str("# key_file = \"operator.pem\"  # a plain PEM key instead (devnets)\n\n");
    }
    t.push_str("[p2p]\n");
    t.push_str("ip = \"0.0.0.0\"\n");
    t.push_str("tcp_port = 13001\n");
    t.push_str("udp_port = 12001\n");
    t.push_str("# quic_port = 13001\n");
    t.push_str("# bootnodes = [\"enr:-...\"]    # default: the network's\n");
    t.push_str(&format!(
        "max_peers = {}\n",
        if args.exporter { 150 } else { 60 }
    ));
    if !args.eth1_endpoints.is_empty() {
        t.push_str("\n# Contract sync from the execution layer (an exporter follows the registry).\n[eth1]\n");
        t.push_str(&format!("endpoints = {}\n", list(&args.eth1_endpoints)));
        t.push_str("# contract = \"0x...\"           # required on network = \"local\"\n");
    } else {
        t.push_str("\n# [eth1]                       # contract sync (operators and exporters)\n");
        t.push_str("# endpoints = [\"http://127.0.0.1:8545\"]\n");
    }
    t.push_str("\n# [doppelganger]               # opt-in (operators)\n");
    t.push_str("# enabled = true\n# detection_epochs = 2\n");
    t
}

/// `ssv-node generate-config`.
pub fn generate_config(args: &GenerateConfigArgs) -> anyhow::Result<()> {
    let text = config_text(args);
    // Checked before writing: the file must be one `start` accepts.
    crate::config::Config::from_toml(
        &text,
        std::path::Path::new("."),
        &crate::config::Overrides::default(),
    )
    .context("the generated config does not load (a bug or a bad flag value)")?;
    if args.out.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.out)
        .with_context(|| {
            format!(
                "creating {} (an existing file is never overwritten)",
                args.out.display()
            )
        })?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("config written to {}", args.out.display());
    Ok(())
}

/// `ssv-node export-public-key`: the operator's public key as the SSV contract registers it
/// (base64 of the PEM), from a plain PEM key or an encrypted keystore.
pub fn export_public_key(key: PathBuf, password_file: Option<PathBuf>) -> anyhow::Result<()> {
    let source = match password_file {
        Some(password) => crate::config::OperatorKey::Keystore {
            keystore: key,
            password,
        },
        None => crate::config::OperatorKey::Plain(key),
    };
    let secret = crate::runtime::load_operator_key(&source)?;
    println!("{}", secret.public_key().to_base64_pem());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Network, OperatorKey, Overrides};
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: GenerateConfigArgs,
    }

    fn args(extra: &[&str]) -> GenerateConfigArgs {
        let mut argv = vec!["x", "--out", "-"];
        argv.extend_from_slice(extra);
        Wrap::parse_from(argv).args
    }

    #[test]
    fn operator_config_parses_as_written() {
        let a = args(&[
            "--network",
            "hoodi",
            "--beacon-node",
            "http://a:5052",
            "--beacon-node",
            "http://b:5052",
            "--eth1-endpoint",
            "ws://e:8546",
        ]);
        let text = config_text(&a);
        assert!(
            text.lines().filter(|l| l.starts_with('#')).count() > 10,
            "commented"
        );
        let c = Config::from_toml(
            &text,
            std::path::Path::new("/etc/ssv"),
            &Overrides::default(),
        )
        .expect("generated config loads");
        assert_eq!(c.network, Network::Public("hoodi"));
        assert_eq!(c.beacon_nodes, vec!["http://a:5052", "http://b:5052"]);
        assert_eq!(
            c.operators.iter().map(|o| &o.key).collect::<Vec<_>>(),
            vec![&OperatorKey::Keystore {
                keystore: "/etc/ssv/encrypted_private_key.json".into(),
                password: "/etc/ssv/password".into(),
            }]
        );
        assert_eq!(c.eth1.expect("eth1").endpoints, vec!["ws://e:8546"]);
        assert!(c.exporter.is_none());
        assert_eq!(c.data_dir, std::path::PathBuf::from("/etc/ssv/./data"));
    }

    #[test]
    fn exporter_config_needs_no_key() {
        let text = config_text(&args(&["--exporter", "--network", "mainnet"]));
        let c = Config::from_toml(&text, std::path::Path::new("/x"), &Overrides::default())
            .expect("exporter config loads");
        assert!(c.operators.is_empty());
        assert_eq!(c.exporter.expect("exporter").retention_slots, 50_400);
        assert_eq!(c.p2p.max_peers, 150);
        assert!(c.api_addr.is_some());
        // With execution endpoints an exporter follows the contract.
        let text = config_text(&args(&[
            "--exporter",
            "--network",
            "mainnet",
            "--eth1-endpoint",
            "http://127.0.0.1:8545",
        ]));
        let c = Config::from_toml(&text, std::path::Path::new("/x"), &Overrides::default())
            .expect("exporter config with [eth1] loads");
        assert!(c.exporter.is_some());
        assert_eq!(
            c.eth1.map(|e| e.endpoints),
            Some(vec!["http://127.0.0.1:8545".to_owned()])
        );
    }

    #[test]
    fn a_bad_value_is_refused_before_writing() {
        let mut a = args(&[]);
        a.network = "goerli".into();
        a.out = std::env::temp_dir().join(format!("ssv-gen-{}.toml", std::process::id()));
        let err = generate_config(&a).unwrap_err();
        assert!(format!("{err:#}").contains("unknown network"), "{err:#}");
        assert!(!a.out.exists());
    }
}
