//! The configuration of `ssv-node start`: a TOML file, with command-line flags overriding the
//! common settings. Every field is checked at load time so that a broken config stops the node
//! with one clear line before anything starts.
//!
//! ```toml
//! data_dir = "/var/lib/ssv"
//! network = "hoodi"                      # mainnet | holesky | hoodi | local
//! beacon_nodes = ["http://127.0.0.1:5052"]
//! shards = 2                             # glommio shards (data-plane cores)
//! metrics_addr = "127.0.0.1:15000"       # optional: /metrics and /health
//! api_addr = "127.0.0.1:16000"           # the node API (the default); "off" disables it
//!
//! [operator]
//! id = 42                                # optional; otherwise looked up by public key
//! keystore_file = "encrypted_private_key.json"
//! password_file = "password"
//! # key_file = "operator.pem"            # a plain PEM key instead (devnets)
//!
//! # Several operator IDs in one process: `[[operators]]` entries instead of `[operator]`
//! # (each with the same fields; IDs found by public key when not given).
//! # [[operators]]
//! # keystore_file = "op-a.json"
//! # password_file = "op-a.password"
//! # [[operators]]
//! # id = 43
//! # key_file = "op-b.pem"
//!
//! [p2p]
//! ip = "0.0.0.0"
//! tcp_port = 13001
//! udp_port = 12001
//! quic_port = 13001                      # optional
//! bootnodes = ["enr:-..."]
//! max_peers = 60
//!
//! [eth1]                                 # optional: contract sync (operators and exporters)
//! endpoints = ["http://127.0.0.1:8545"]
//! # contract = "0x..."                   # required on network = "local"
//!
//! [exporter]                             # optional: exporter mode (no duties, no operator key;
//! retention_slots = 50400                # with [eth1] it follows the contract's registry)
//!                                        # decided history kept (default about a week)
//! [log]                                  # optional
//! format = "console"                     # console | json
//! file = "/var/log/ssv/node.log"         # default: stderr
//! max_size_mb = 100                      # rotate at this size
//! keep_files = 5                         # rotated files kept
//!
//! [doppelganger]                         # optional; off unless enabled
//! enabled = true                         # sign nothing for a validator until liveness shows no
//! detection_epochs = 2                   # other instance for this many epochs (1..=32)
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use ssv_protocol::types::{DomainType, network_preset};

use crate::runtime::doppelganger::{DETECTION_EPOCHS_DEFAULT, DETECTION_EPOCHS_MAX};

/// Default of `slashing_history_epochs` (about 27 hours of mainnet epochs).
pub const SLASHING_HISTORY_EPOCHS_DEFAULT: u64 = 256;
/// Fewest epochs of full history kept (the current and previous epochs must stay exact).
pub const SLASHING_HISTORY_EPOCHS_MIN: u64 = 4;
/// Most epochs of full history kept (about a year).
pub const SLASHING_HISTORY_EPOCHS_MAX: u64 = 82_125;
/// Largest config file read (a config is a few hundred bytes; this bounds a wrong path).
pub const CONFIG_BYTES_MAX: usize = 1 << 20;
/// Most beacon node URLs.
pub const BEACON_NODES_MAX: usize = 16;
/// Most bootnodes.
pub const BOOTNODES_MAX: usize = 64;
/// Most shards.
pub const SHARDS_MAX: usize = 256;
/// Default of `exporter.retention_slots`: about a week of mainnet slots.
pub const EXPORTER_RETENTION_SLOTS_DEFAULT: u64 = 50_400;
/// Fewest slots of decided history an exporter keeps (two epochs: the API must answer for
/// the current and previous epoch).
pub const EXPORTER_RETENTION_SLOTS_MIN: u64 = 64;
/// Default address of the node API (loopback: it lists peers and validators, so it is not
/// exposed unless the operator says so; port 16000 as the Go node's documented `SSVAPIPort`).
pub const API_ADDR_DEFAULT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 16000);

/// Domain type of a local devnet (`network = "local"`): not any public network's.
pub const LOCAL_DOMAIN: DomainType = DomainType([0x00, 0x00, 0x31, 0x37]);

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is larger than [`CONFIG_BYTES_MAX`].
    #[error("config {0} is larger than {CONFIG_BYTES_MAX} bytes")]
    TooLarge(PathBuf),
    /// The file is not valid TOML or has unknown / mistyped fields.
    #[error("parsing config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (with line and column).
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("config: {0}")]
    Invalid(String),
}

/// A network the node can join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A public SSV network by preset name (`mainnet`, `holesky`, `hoodi`).
    Public(&'static str),
    /// A local devnet ([`LOCAL_DOMAIN`]; fork data from the beacon node).
    Local,
}

impl Network {
    /// Parses a network name.
    pub fn parse(name: &str) -> Result<Self, ConfigError> {
        if name == "local" {
            return Ok(Network::Local);
        }
        network_preset(name)
            .map(|p| Network::Public(p.name))
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "unknown network {name:?} (mainnet, holesky, hoodi or local)"
                ))
            })
    }

    /// The SSV domain type of the network.
    pub fn domain(&self) -> DomainType {
        match self {
            Network::Local => LOCAL_DOMAIN,
            Network::Public(name) => network_preset(name).map_or(LOCAL_DOMAIN, |p| p.domain),
        }
    }

    /// The network's name.
    pub fn name(&self) -> &'static str {
        match self {
            Network::Local => "local",
            Network::Public(name) => name,
        }
    }
}

/// Where the operator's RSA key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorKey {
    /// A PEM file (plain; for devnets and tests).
    Plain(PathBuf),
    /// An encrypted keystore (the Go node's `encrypted_private_key.json`) and its password.
    Keystore {
        /// The keystore JSON.
        keystore: PathBuf,
        /// A file holding the password (trailing newline stripped).
        password: PathBuf,
    },
}

/// One operator this node hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Its operator ID, when given; otherwise looked up by public key in storage.
    pub id: Option<u64>,
    /// Its RSA key.
    pub key: OperatorKey,
}

/// Most operators one node hosts (`[[operators]]` entries).
pub const OPERATORS_MAX: usize = 64;

/// Faults a devnet can inject into one operator to test the others (never set on a real
/// network: `start` refuses it unless `network = "local"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Sign post-consensus partial signatures with a wrong key (they fail verification).
    CorruptPartials,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the database and the network key.
    pub data_dir: PathBuf,
    /// The network.
    pub network: Network,
    /// Beacon node URLs, tried in order.
    pub beacon_nodes: Vec<String>,
    /// Number of glommio shards.
    pub shards: usize,
    /// Pin shard k to CPU k (mod the CPU count).
    pub pin_shards: bool,
    /// Where to serve `/metrics` and `/health`.
    pub metrics_addr: Option<SocketAddr>,
    /// Where to serve `/debug/pprof/profile` (a CPU profile on demand).
    pub pprof_addr: Option<SocketAddr>,
    /// Where to serve the node API (`None`: off).
    pub api_addr: Option<SocketAddr>,
    /// Whether `api_addr` was configured (a failure to bind it stops the node) rather than
    /// the default (a failure is logged: another node on the host may hold the port).
    pub api_addr_explicit: bool,
    /// Log format and destination.
    pub log: crate::logging::LogConfig,
    /// OTLP/HTTP endpoint for duty traces (`None`: tracing off).
    pub otlp_endpoint: Option<String>,
    /// The operators this node hosts: `[operator]` or the `[[operators]]` entries (empty
    /// only in exporter mode, which signs nothing).
    pub operators: Vec<OperatorConfig>,
    /// p2p settings.
    pub p2p: P2pConfig,
    /// Crypto pool threads (0: one per core).
    pub crypto_threads: usize,
    /// Epochs of slashing-protection records kept in full; older ones are pruned each
    /// epoch into the per-validator watermark (which still refuses everything at or below
    /// them).
    pub slashing_history_epochs: u64,
    /// A fault to inject (local networks only).
    pub fault: Option<Fault>,
    /// Contract sync (execution-layer endpoints; an exporter's follows every committee and
    /// decrypts nothing); `None`: run from the database as it is.
    pub eth1: Option<Eth1Config>,
    /// Doppelganger protection: the not-live epochs each validator waits for before it is
    /// signed for (`None`: protection off, the default).
    pub doppelganger_epochs: Option<u64>,
    /// Exporter mode (`--exporter`, `exporter = true` or an `[exporter]` section): every
    /// subnet, no duties, decided history stored and served (`None`: an operator node).
    pub exporter: Option<ExporterConfig>,
}

/// Exporter-mode settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExporterConfig {
    /// Slots of decided history kept; older rows are pruned once an epoch.
    pub retention_slots: u64,
}

/// Contract sync settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eth1Config {
    /// Execution JSON-RPC endpoints, in order of preference.
    pub endpoints: Vec<String>,
    /// SSVNetwork contract address (`0x…`); required on a local network, else the preset's.
    pub contract: Option<String>,
    /// First block to read; else the preset's deployment block (0 on a local network).
    pub start_block: Option<u64>,
    /// Blocks to stay behind the head.
    pub follow_distance: Option<u64>,
    /// Head poll interval on HTTP endpoints in milliseconds (default 4,000; 100..=60,000).
    pub poll_interval_ms: Option<u64>,
}

/// p2p settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2pConfig {
    /// Address to listen on and advertise.
    pub ip: Ipv4Addr,
    /// libp2p TCP port.
    pub tcp_port: u16,
    /// discv5 UDP port.
    pub udp_port: u16,
    /// libp2p QUIC port (`None`: QUIC off).
    pub quic_port: Option<u16>,
    /// Bootnode ENRs (text form, `enr:-...`).
    pub bootnodes: Vec<String>,
    /// Most connected peers.
    pub max_peers: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    network: Option<String>,
    #[serde(default)]
    beacon_nodes: Vec<String>,
    shards: Option<usize>,
    pin_shards: Option<bool>,
    metrics_addr: Option<SocketAddr>,
    pprof_addr: Option<SocketAddr>,
    api_addr: Option<String>,
    crypto_threads: Option<usize>,
    slashing_history_epochs: Option<u64>,
    fault: Option<Fault>,
    operator: Option<RawOperator>,
    operators: Option<Vec<RawOperator>>,
    #[serde(default)]
    p2p: RawP2p,
    eth1: Option<RawEth1>,
    doppelganger: Option<RawDoppelganger>,
    exporter: Option<RawExporter>,
    #[serde(default)]
    log: RawLog,
    otlp_endpoint: Option<String>,
}

/// `exporter = true` or an `[exporter]` section.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawExporter {
    Flag(bool),
    Section(RawExporterSection),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExporterSection {
    #[serde(default = "yes")]
    enabled: bool,
    retention_slots: Option<u64>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<crate::logging::LogFormat>,
    file: Option<PathBuf>,
    max_size_mb: Option<u64>,
    keep_files: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoppelganger {
    #[serde(default)]
    enabled: bool,
    detection_epochs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEth1 {
    #[serde(default)]
    endpoints: Vec<String>,
    contract: Option<String>,
    start_block: Option<u64>,
    follow_distance: Option<u64>,
    poll_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    id: Option<u64>,
    key_file: Option<PathBuf>,
    keystore_file: Option<PathBuf>,
    password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawP2p {
    ip: Option<Ipv4Addr>,
    tcp_port: Option<u16>,
    udp_port: Option<u16>,
    quic_port: Option<u16>,
    #[serde(default)]
    bootnodes: Vec<String>,
    max_peers: Option<usize>,
}

/// Command-line overrides of the common settings (`None`: keep the file's value).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--network`.
    pub network: Option<String>,
    /// `--beacon-node` (repeatable; replaces the file's list).
    pub beacon_nodes: Vec<String>,
    /// `--shards`.
    pub shards: Option<usize>,
    /// `--metrics-addr`.
    pub metrics_addr: Option<SocketAddr>,
    /// `--pprof-addr`.
    pub pprof_addr: Option<SocketAddr>,
    /// `--api-addr` (an address or `off`).
    pub api_addr: Option<String>,
    /// `--log-format`.
    pub log_format: Option<crate::logging::LogFormat>,
    /// `--log-file`.
    pub log_file: Option<PathBuf>,
    /// `--otlp-endpoint`.
    pub otlp_endpoint: Option<String>,
    /// `--tcp-port`.
    pub tcp_port: Option<u16>,
    /// `--udp-port`.
    pub udp_port: Option<u16>,
    /// `--bootnode` (repeatable; replaces the file's list).
    pub bootnodes: Vec<String>,
    /// `--exporter`: exporter mode even when the file does not say so.
    pub exporter: bool,
}

impl Config {
    /// Reads, parses and validates `path`, then applies `overrides`. Relative paths in the
    /// file are taken relative to the file's directory.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        if meta.len() > CONFIG_BYTES_MAX as u64 {
            return Err(ConfigError::TooLarge(path.to_owned()));
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base, overrides).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text; relative paths are resolved against `base`.
    pub fn from_toml(text: &str, base: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let data_dir = overrides
            .data_dir
            .clone()
            .or(raw.data_dir.map(resolve))
            .ok_or_else(|| ConfigError::Invalid("data_dir is required".into()))?;
        let network = Network::parse(
            overrides
                .network
                .as_deref()
                .or(raw.network.as_deref())
                .ok_or_else(|| ConfigError::Invalid("network is required".into()))?,
        )?;
        let beacon_nodes = if overrides.beacon_nodes.is_empty() {
            raw.beacon_nodes
        } else {
            overrides.beacon_nodes.clone()
        };
        if beacon_nodes.is_empty() || beacon_nodes.len() > BEACON_NODES_MAX {
            return Err(ConfigError::Invalid(format!(
                "beacon_nodes: 1 to {BEACON_NODES_MAX} URLs required, {} given",
                beacon_nodes.len()
            )));
        }
        for url in &beacon_nodes {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "beacon node {url:?} is not an http(s) URL"
                )));
            }
        }
        let shards = overrides.shards.or(raw.shards).unwrap_or(1);
        if shards == 0 || shards > SHARDS_MAX {
            return Err(ConfigError::Invalid(format!(
                "shards must be 1..={SHARDS_MAX}, got {shards}"
            )));
        }
        let exporter = match (&raw.exporter, overrides.exporter) {
            (None | Some(RawExporter::Flag(false)), false) => None,
            (None | Some(RawExporter::Flag(_)), _) => Some(ExporterConfig {
                retention_slots: EXPORTER_RETENTION_SLOTS_DEFAULT,
            }),
            (Some(RawExporter::Section(sec)), flag) => {
                if sec.enabled || flag {
                    let retention_slots = sec
                        .retention_slots
                        .unwrap_or(EXPORTER_RETENTION_SLOTS_DEFAULT);
                    if retention_slots < EXPORTER_RETENTION_SLOTS_MIN {
                        return Err(ConfigError::Invalid(format!(
                            "exporter.retention_slots must be ≥ {EXPORTER_RETENTION_SLOTS_MIN}, \
                             got {retention_slots}"
                        )));
                    }
                    Some(ExporterConfig { retention_slots })
                } else {
                    None
                }
            }
        };
        if exporter.is_some() {
            if raw.doppelganger.as_ref().is_some_and(|d| d.enabled) {
                return Err(ConfigError::Invalid(
                    "doppelganger protection has no meaning on an exporter (it signs nothing)"
                        .into(),
                ));
            }
            if raw.fault.is_some() {
                return Err(ConfigError::Invalid(
                    "fault injection has no meaning on an exporter (it signs nothing)".into(),
                ));
            }
        }
        let entries: Vec<(String, RawOperator)> = match (raw.operator, raw.operators) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "[operator] and [[operators]] are exclusive: list every operator as an \
                     [[operators]] entry"
                        .into(),
                ));
            }
            (Some(one), None) => vec![("operator".to_string(), one)],
            (None, Some(list)) if list.is_empty() => {
                return Err(ConfigError::Invalid("[[operators]] has no entry".into()));
            }
            (None, Some(list)) => list
                .into_iter()
                .enumerate()
                .map(|(i, o)| (format!("operators[{i}]"), o))
                .collect(),
            (None, None) if exporter.is_some() => Vec::new(),
            (None, None) => vec![("operator".to_string(), RawOperator::default())],
        };
        if entries.len() > OPERATORS_MAX {
            return Err(ConfigError::Invalid(format!(
                "{} [[operators]] entries, at most {OPERATORS_MAX}",
                entries.len()
            )));
        }
        let mut operators: Vec<OperatorConfig> = Vec::with_capacity(entries.len());
        for (at, o) in entries {
            if exporter.is_some()
                && o.key_file.is_none()
                && o.keystore_file.is_none()
                && o.password_file.is_none()
            {
                // An exporter signs nothing and needs no key.
                continue;
            }
            let key = match (o.key_file, o.keystore_file, o.password_file) {
                (Some(k), None, None) => OperatorKey::Plain(resolve(k)),
                (None, Some(ks), Some(pw)) => OperatorKey::Keystore {
                    keystore: resolve(ks),
                    password: resolve(pw),
                },
                (None, Some(_), None) => {
                    return Err(ConfigError::Invalid(format!(
                        "{at}.keystore_file needs {at}.password_file"
                    )));
                }
                (None, None, _) => {
                    return Err(ConfigError::Invalid(format!(
                        "operator key missing: set {at}.keystore_file and \
                         {at}.password_file (or {at}.key_file for a plain PEM key)"
                    )));
                }
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "{at}.key_file and {at}.keystore_file are exclusive"
                    )));
                }
            };
            if o.id == Some(0) {
                return Err(ConfigError::Invalid(format!(
                    "{at}.id is 0: operator IDs start at 1"
                )));
            }
            if let Some(id) = o.id
                && operators.iter().any(|p| p.id == Some(id))
            {
                return Err(ConfigError::Invalid(format!(
                    "{at}: operator id {id} is configured twice"
                )));
            }
            let file = match &key {
                OperatorKey::Plain(p) => p,
                OperatorKey::Keystore { keystore, .. } => keystore,
            };
            if operators.iter().any(|p| match &p.key {
                OperatorKey::Plain(q) => q == file,
                OperatorKey::Keystore { keystore, .. } => keystore == file,
            }) {
                return Err(ConfigError::Invalid(format!(
                    "{at}: key {} is configured twice",
                    file.display()
                )));
            }
            operators.push(OperatorConfig { id: o.id, key });
        }
        if raw.fault.is_some() && network != Network::Local {
            return Err(ConfigError::Invalid(
                "fault injection is only allowed on network = \"local\"".into(),
            ));
        }
        let bootnodes = if overrides.bootnodes.is_empty() {
            raw.p2p.bootnodes
        } else {
            overrides.bootnodes.clone()
        };
        if bootnodes.len() > BOOTNODES_MAX {
            return Err(ConfigError::Invalid(format!(
                "at most {BOOTNODES_MAX} bootnodes"
            )));
        }
        let eth1 = match raw.eth1 {
            None => None,
            Some(e) => {
                if e.endpoints.is_empty() || e.endpoints.len() > BEACON_NODES_MAX {
                    return Err(ConfigError::Invalid(format!(
                        "eth1.endpoints: 1 to {BEACON_NODES_MAX} URLs required"
                    )));
                }
                if let Some(c) = &e.contract
                    && !(c.len() == 42
                        && c.starts_with("0x")
                        && c[2..].chars().all(|ch| ch.is_ascii_hexdigit()))
                {
                    return Err(ConfigError::Invalid(format!(
                        "eth1.contract {c:?} is not a 0x-prefixed 20-byte address"
                    )));
                }
                if network == Network::Local && e.contract.is_none() {
                    return Err(ConfigError::Invalid(
                        "eth1.contract is required on network = \"local\"".into(),
                    ));
                }
                if let Some(ms) = e.poll_interval_ms
                    && !(100..=60_000).contains(&ms)
                {
                    return Err(ConfigError::Invalid(format!(
                        "eth1.poll_interval_ms {ms} is outside 100..=60000"
                    )));
                }
                Some(Eth1Config {
                    endpoints: e.endpoints,
                    contract: e.contract,
                    start_block: e.start_block,
                    follow_distance: e.follow_distance,
                    poll_interval_ms: e.poll_interval_ms,
                })
            }
        };
        let slashing_history_epochs = raw
            .slashing_history_epochs
            .unwrap_or(SLASHING_HISTORY_EPOCHS_DEFAULT);
        if !(SLASHING_HISTORY_EPOCHS_MIN..=SLASHING_HISTORY_EPOCHS_MAX)
            .contains(&slashing_history_epochs)
        {
            return Err(ConfigError::Invalid(format!(
                "slashing_history_epochs must be {SLASHING_HISTORY_EPOCHS_MIN}..=\
                 {SLASHING_HISTORY_EPOCHS_MAX}, got {slashing_history_epochs}"
            )));
        }
        let doppelganger_epochs = match raw.doppelganger {
            None
            | Some(RawDoppelganger {
                enabled: false,
                detection_epochs: None,
            }) => None,
            Some(RawDoppelganger {
                enabled: false,
                detection_epochs: Some(_),
            }) => {
                return Err(ConfigError::Invalid(
                    "doppelganger.detection_epochs is set but doppelganger.enabled is not true"
                        .into(),
                ));
            }
            Some(RawDoppelganger {
                enabled: true,
                detection_epochs,
            }) => {
                let epochs = detection_epochs.unwrap_or(DETECTION_EPOCHS_DEFAULT);
                if !(1..=DETECTION_EPOCHS_MAX).contains(&epochs) {
                    return Err(ConfigError::Invalid(format!(
                        "doppelganger.detection_epochs must be 1..={DETECTION_EPOCHS_MAX}, \
                         got {epochs}"
                    )));
                }
                Some(epochs)
            }
        };
        let (api_addr, api_addr_explicit) =
            match overrides.api_addr.as_deref().or(raw.api_addr.as_deref()) {
                None => (Some(API_ADDR_DEFAULT), false),
                Some(a) => (parse_api_addr(a)?, true),
            };
        let log = {
            use crate::logging::{
                LOG_FILE_BYTES_DEFAULT, LOG_FILE_BYTES_MIN, LOG_FILES_KEPT_DEFAULT,
                LOG_FILES_KEPT_MAX, LogConfig,
            };
            let max_bytes = match raw.log.max_size_mb {
                None => LOG_FILE_BYTES_DEFAULT,
                Some(mb) => mb.checked_mul(1024 * 1024).ok_or_else(|| {
                    ConfigError::Invalid(format!("log.max_size_mb {mb} is too large"))
                })?,
            };
            if max_bytes < LOG_FILE_BYTES_MIN {
                return Err(ConfigError::Invalid("log.max_size_mb must be ≥ 1".into()));
            }
            let keep = raw.log.keep_files.unwrap_or(LOG_FILES_KEPT_DEFAULT);
            if keep > LOG_FILES_KEPT_MAX {
                return Err(ConfigError::Invalid(format!(
                    "log.keep_files must be ≤ {LOG_FILES_KEPT_MAX}"
                )));
            }
            LogConfig {
                format: overrides.log_format.or(raw.log.format).unwrap_or_default(),
                file: overrides.log_file.clone().or(raw.log.file),
                max_bytes,
                keep,
            }
        };
        let max_peers = raw.p2p.max_peers.unwrap_or(60);
        if max_peers == 0 {
            return Err(ConfigError::Invalid("p2p.max_peers must be ≥ 1".into()));
        }
        Ok(Config {
            data_dir,
            network,
            beacon_nodes,
            shards,
            pin_shards: raw.pin_shards.unwrap_or(true),
            metrics_addr: overrides.metrics_addr.or(raw.metrics_addr),
            pprof_addr: overrides.pprof_addr.or(raw.pprof_addr),
            api_addr,
            api_addr_explicit,
            log,
            // The standard OpenTelemetry variable last: a flag or the file wins.
            otlp_endpoint: overrides
                .otlp_endpoint
                .clone()
                .or(raw.otlp_endpoint)
                .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
                .filter(|e| !e.is_empty()),
            operators,
            p2p: P2pConfig {
                ip: raw.p2p.ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
                tcp_port: overrides.tcp_port.or(raw.p2p.tcp_port).unwrap_or(13001),
                udp_port: overrides.udp_port.or(raw.p2p.udp_port).unwrap_or(12001),
                quic_port: raw.p2p.quic_port,
                bootnodes,
                max_peers,
            },
            crypto_threads: raw.crypto_threads.unwrap_or(0),
            slashing_history_epochs,
            fault: raw.fault,
            eth1,
            doppelganger_epochs,
            exporter,
        })
    }
}

/// `off` (or empty): no API; otherwise a socket address.
fn parse_api_addr(a: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match a.trim() {
        "" | "off" => Ok(None),
        a => a.parse().map(Some).map_err(|e| {
            ConfigError::Invalid(format!("api_addr {a:?} is not an address or \"off\": {e}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
data_dir = "data"
network = "local"
beacon_nodes = ["http://127.0.0.1:5052"]
shards = 2
[operator]
id = 3
key_file = "op.pem"
[p2p]
ip = "127.0.0.1"
tcp_port = 0
bootnodes = ["enr:-abc"]
"#;

    /// The config of a devnet node hosting operators 1 and 2 (`--host-two-operators`) loads
    /// as two operators with their IDs and key files.
    #[test]
    fn devnet_hosting_config_loads() {
        let dir = Path::new("/tmp/devnet/op1");
        let text =
            ssv_devnet::setup::node_config_hosting(dir, &[1, 2], &["http://b"], "enr:-x", 1, false)
                .expect("config text");
        let c = Config::from_toml(&text, dir, &Overrides::default()).expect("devnet config");
        assert_eq!(
            c.operators,
            vec![
                OperatorConfig {
                    id: Some(1),
                    key: OperatorKey::Plain(dir.join("operator.pem"))
                },
                OperatorConfig {
                    id: Some(2),
                    key: OperatorKey::Plain(dir.join("operator-2.pem"))
                },
            ]
        );
    }

    /// The configs `ssv-node devnet` writes for its nodes load here as the devnet means them
    /// (the devnet crate writes them without this parser: this is the contract between the two).
    #[test]
    fn devnet_node_configs_load() {
        let dir = Path::new("/tmp/devnet/op2");
        let text = ssv_devnet::node_config(
            dir,
            2,
            &["http://127.0.0.1:5052", "http://127.0.0.1:5053"],
            "enr:-xyz",
            3,
            true,
        )
        .expect("config text");
        let c = Config::from_toml(&text, dir, &Overrides::default()).expect("devnet config");
        assert_eq!(c.data_dir, dir);
        assert_eq!(c.network.domain(), LOCAL_DOMAIN);
        assert_eq!(
            c.operators,
            vec![OperatorConfig {
                id: Some(2),
                key: OperatorKey::Plain(dir.join("operator.pem"))
            }]
        );
        assert_eq!(
            c.beacon_nodes,
            vec![
                "http://127.0.0.1:5052".to_owned(),
                "http://127.0.0.1:5053".to_owned()
            ]
        );
        assert_eq!((c.shards, c.pin_shards), (3, false));
        assert_eq!(c.p2p.ip, Ipv4Addr::LOCALHOST);
        assert_eq!((c.p2p.tcp_port, c.p2p.udp_port), (0, 0));
        assert_eq!(c.p2p.bootnodes, vec!["enr:-xyz".to_owned()]);
        assert_eq!(c.fault, Some(Fault::CorruptPartials));
        assert!(c.metrics_addr.is_some());
        assert!(c.eth1.is_none());
        assert_eq!(c.doppelganger_epochs, None);
        let on = ssv_devnet::node_config_doppelganger(&text, 1).expect("doppelganger section");
        let c = Config::from_toml(&on, dir, &Overrides::default()).expect("with doppelganger");
        assert_eq!(c.doppelganger_epochs, Some(1));
        let eth1 = ssv_devnet::NodeEth1Section {
            endpoints: vec!["http://127.0.0.1:8545".into()],
            contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
            start_block: 7,
            follow_distance: 0,
            poll_interval_ms: Some(250),
        };
        let text = ssv_devnet::node_config_eth1(&text, &eth1).expect("eth1 section");
        let c = Config::from_toml(&text, dir, &Overrides::default()).expect("with eth1");
        let got = c.eth1.expect("eth1 section");
        assert_eq!(got.endpoints, eth1.endpoints);
        assert_eq!(got.contract.as_deref(), Some(eth1.contract.as_str()));
        assert_eq!((got.start_block, got.follow_distance), (Some(7), Some(0)));
        assert_eq!(got.poll_interval_ms, Some(250));
    }

    /// `[[operators]]`: several operators in one node, each a key (PEM or keystore) with an
    /// optional ID; the same ID or key twice, an empty list, or a list with `[operator]` are
    /// clear errors; several with `[eth1]` load (contract sync follows all of them).
    #[test]
    fn several_operators_load_and_duplicates_are_refused() {
        let base = "data_dir='d'\nnetwork='local'\nbeacon_nodes=['http://b']\n";
        let load = |extra: &str| {
            Config::from_toml(
                &format!("{base}{extra}"),
                Path::new("/x"),
                &Overrides::default(),
            )
        };
        let c = load(
            "[[operators]]\nkey_file='a.pem'\n\
             [[operators]]\nid=7\nkeystore_file='b.json'\npassword_file='b.pw'\n",
        )
        .expect("two operators");
        assert_eq!(
            c.operators,
            vec![
                OperatorConfig {
                    id: None,
                    key: OperatorKey::Plain("/x/a.pem".into())
                },
                OperatorConfig {
                    id: Some(7),
                    key: OperatorKey::Keystore {
                        keystore: "/x/b.json".into(),
                        password: "/x/b.pw".into()
                    }
                },
            ]
        );
        for (extra, want) in [
            (
                "[[operators]]\nid=3\nkey_file='a.pem'\n[[operators]]\nid=3\nkey_file='b.pem'\n",
                "operators[1]: operator id 3 is configured twice",
            ),
            (
                "[[operators]]\nkey_file='a.pem'\n[[operators]]\nkey_file='./a.pem'\n",
                "operators[1]: key /x/./a.pem is configured twice",
            ),
            (
                "[[operators]]\nkey_file='a.pem'\n[[operators]]\nkey_file='a.pem'\n",
                "is configured twice",
            ),
            ("operators = []\n", "[[operators]] has no entry"),
            (
                "[operator]\nkey_file='a.pem'\n[[operators]]\nkey_file='b.pem'\n",
                "exclusive",
            ),
            (
                "[[operators]]\nkey_file='a.pem'\n[[operators]]\nkeystore_file='b.json'\n",
                "operators[1].keystore_file needs operators[1].password_file",
            ),
            (
                "[[operators]]\nid=0\nkey_file='a.pem'\n",
                "operator IDs start at 1",
            ),
            ("[[operators]]\nid=2\n", "set operators[0].keystore_file"),
        ] {
            let err = load(extra).unwrap_err().to_string();
            assert!(err.contains(want), "{extra:?}: {err} lacks {want:?}");
        }
        // Several operators with contract sync: the sync follows all of them.
        let synced = load(
            "[[operators]]\nkey_file='a.pem'\n[[operators]]\nkey_file='b.pem'\n\
             [eth1]\nendpoints=['http://e']\ncontract='0x5FbDB2315678afecb367f032d93F642f64180aa3'\n",
        )
        .expect("two operators with [eth1]");
        assert_eq!(synced.operators.len(), 2);
        assert!(synced.eth1.is_some());
        // One `[[operators]]` entry is the `[operator]` form.
        let one = load("[[operators]]\nid=4\nkey_file='a.pem'\n").expect("one entry");
        let section = load("[operator]\nid=4\nkey_file='a.pem'\n").expect("section");
        assert_eq!(one.operators, section.operators);
    }

    #[test]
    fn good_config_loads_with_relative_paths_resolved() {
        let c = Config::from_toml(GOOD, Path::new("/etc/ssv"), &Overrides::default()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/etc/ssv/data"));
        assert_eq!(c.operators.len(), 1);
        assert_eq!(
            c.operators[0].key,
            OperatorKey::Plain("/etc/ssv/op.pem".into())
        );
        assert_eq!(c.network.domain(), LOCAL_DOMAIN);
        assert_eq!(c.shards, 2);
        assert_eq!(c.p2p.tcp_port, 0);
        assert_eq!(c.p2p.udp_port, 12001);
        assert_eq!(c.operators[0].id, Some(3));
        assert_eq!(
            c.doppelganger_epochs, None,
            "doppelganger protection is off by default"
        );
    }

    #[test]
    fn doppelganger_protection_is_opt_in_with_checked_epochs() {
        let load = |extra: &str| {
            Config::from_toml(
                &format!("{GOOD}{extra}"),
                Path::new("/x"),
                &Overrides::default(),
            )
        };
        let c = load("[doppelganger]\nenabled = true\n").expect("on");
        assert_eq!(c.doppelganger_epochs, Some(DETECTION_EPOCHS_DEFAULT));
        let c = load("[doppelganger]\nenabled = true\ndetection_epochs = 1\n").expect("1");
        assert_eq!(c.doppelganger_epochs, Some(1));
        let c = load("[doppelganger]\nenabled = false\n").expect("off");
        assert_eq!(c.doppelganger_epochs, None);
        for (extra, want) in [
            (
                "[doppelganger]\nenabled = true\ndetection_epochs = 0\n",
                "1..=32",
            ),
            (
                "[doppelganger]\nenabled = true\ndetection_epochs = 33\n",
                "1..=32",
            ),
            (
                "[doppelganger]\ndetection_epochs = 3\n",
                "enabled is not true",
            ),
            (
                "[doppelganger]\nenabled = true\nepochs = 3\n",
                "unknown field",
            ),
        ] {
            let err = load(extra).unwrap_err().to_string();
            assert!(err.contains(want), "{extra:?}: {err} lacks {want:?}");
        }
    }

    #[test]
    fn exporter_mode_needs_no_key_and_checks_its_settings() {
        let base = "data_dir='d'\nnetwork='local'\nbeacon_nodes=['http://b']\n";
        let load = |extra: &str, o: &Overrides| {
            Config::from_toml(&format!("{base}{extra}"), Path::new("/x"), o)
        };
        let o = Overrides::default();
        let c = load("exporter = true\napi_addr = '127.0.0.1:16000'\n", &o).expect("flag");
        assert!(c.operators.is_empty());
        assert_eq!(
            c.exporter.map(|e| e.retention_slots),
            Some(EXPORTER_RETENTION_SLOTS_DEFAULT)
        );
        assert_eq!(c.api_addr, Some("127.0.0.1:16000".parse().expect("addr")));
        let c = load("[exporter]\nretention_slots = 100\n", &o).expect("section");
        assert_eq!(c.exporter.map(|e| e.retention_slots), Some(100));
        // `--exporter` turns it on for a file that does not say so.
        let flag = Overrides {
            exporter: true,
            ..Default::default()
        };
        assert!(load("", &flag).expect("--exporter").exporter.is_some());
        // An exporter follows the contract as an operator does (no key needed for it).
        let c = load(
            "exporter = true\n[eth1]\nendpoints=['http://e']\ncontract='0x5FbDB2315678afecb367f032d93F642f64180aa3'\n",
            &o,
        )
        .expect("exporter with [eth1]");
        assert!(c.exporter.is_some() && c.operators.is_empty());
        assert_eq!(
            c.eth1.map(|e| e.endpoints),
            Some(vec!["http://e".to_owned()])
        );
        // Without exporter mode the key is still required.
        let err = load("exporter = false\n", &o).unwrap_err().to_string();
        assert!(err.contains("operator key missing"), "{err}");
        for (extra, want) in [
            ("[exporter]\nretention_slots = 10\n", "retention_slots"),
            (
                "exporter = true\n[doppelganger]\nenabled = true\n",
                "exporter",
            ),
            ("exporter = true\nfault = 'corrupt-partials'\n", "exporter"),
            ("[exporter]\nretention = 100\n", "parsing"),
        ] {
            let err = load(extra, &o).unwrap_err().to_string();
            assert!(err.contains(want), "{extra:?}: {err} lacks {want:?}");
        }
        // The devnet's exporter config is one this parser accepts as meant.
        let dir = Path::new("/tmp/devnet/exporter");
        let text =
            ssv_devnet::setup::node_config_exporter(dir, &["http://127.0.0.1:5052"], "enr:-x", 1)
                .expect("exporter config text");
        let c = Config::from_toml(&text, dir, &o).expect("devnet exporter config");
        assert!(c.exporter.is_some() && c.operators.is_empty());
        assert_eq!(c.p2p.bootnodes, vec!["enr:-x".to_owned()]);
        assert!(c.api_addr.is_some_and(|a| a.ip().is_loopback()));
    }

    #[test]
    fn overrides_win() {
        let o = Overrides {
            shards: Some(4),
            network: Some("hoodi".into()),
            beacon_nodes: vec!["https://bn".into()],
            ..Default::default()
        };
        let c = Config::from_toml(GOOD, Path::new("/x"), &o).unwrap();
        assert_eq!(c.shards, 4);
        assert_eq!(c.network, Network::Public("hoodi"));
        assert_eq!(c.beacon_nodes, vec!["https://bn".to_string()]);
    }

    #[test]
    fn log_section_and_flags() {
        use crate::logging::{LOG_FILE_BYTES_DEFAULT, LogFormat};
        let base = Path::new("/x");
        let c = Config::from_toml(GOOD, base, &Overrides::default()).unwrap();
        assert_eq!(c.log, crate::logging::LogConfig::default());
        assert_eq!(c.log.max_bytes, LOG_FILE_BYTES_DEFAULT);
        let file = format!(
            "{GOOD}\n[log]\nformat = \"json\"\nfile = \"/tmp/n.log\"\nmax_size_mb = 2\nkeep_files = 3\n"
        );
        let c = Config::from_toml(&file, base, &Overrides::default()).unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.file.as_deref(), Some(Path::new("/tmp/n.log")));
        assert_eq!((c.log.max_bytes, c.log.keep), (2 * 1024 * 1024, 3));
        let o = Overrides {
            log_format: Some(LogFormat::Console),
            log_file: Some("/tmp/o.log".into()),
            ..Default::default()
        };
        let c = Config::from_toml(&file, base, &o).unwrap();
        assert_eq!(c.log.format, LogFormat::Console);
        assert_eq!(c.log.file.as_deref(), Some(Path::new("/tmp/o.log")));
        for bad in ["max_size_mb = 0", "keep_files = 1000", "format = \"xml\""] {
            let f = format!("{GOOD}\n[log]\n{bad}\n");
            assert!(
                Config::from_toml(&f, base, &Overrides::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn api_addr_default_file_override_and_off() {
        let base = Path::new("/x");
        let c = Config::from_toml(GOOD, base, &Overrides::default()).unwrap();
        assert_eq!(c.api_addr, Some(API_ADDR_DEFAULT));
        assert!(!c.api_addr_explicit);
        assert!(c.api_addr.unwrap().ip().is_loopback());
        let file = format!("api_addr = \"127.0.0.1:1234\"\n{GOOD}");
        let c = Config::from_toml(&file, base, &Overrides::default()).unwrap();
        assert_eq!(c.api_addr, Some("127.0.0.1:1234".parse().unwrap()));
        assert!(c.api_addr_explicit);
        let off = Overrides {
            api_addr: Some("off".into()),
            ..Default::default()
        };
        let c = Config::from_toml(&file, base, &off).unwrap();
        assert_eq!(c.api_addr, None);
        let bad = Overrides {
            api_addr: Some("localhost".into()),
            ..Default::default()
        };
        let err = Config::from_toml(GOOD, base, &bad).unwrap_err().to_string();
        assert!(err.contains("api_addr"), "{err}");
    }

    #[test]
    fn broken_configs_give_clear_errors() {
        let base = Path::new("/x");
        let o = Overrides::default();
        let cases = [
            ("data_dir = 3", "parsing"),
            ("[operator]\nkey_file='k'", "data_dir is required"),
            (
                "data_dir='d'\nnetwork='goerli'\nbeacon_nodes=['http://b']\n[operator]\nkey_file='k'",
                "unknown network",
            ),
            (
                "data_dir='d'\nnetwork='local'\n[operator]\nkey_file='k'",
                "beacon_nodes",
            ),
            (
                "data_dir='d'\nnetwork='local'\nbeacon_nodes=['ftp://b']\n[operator]\nkey_file='k'",
                "not an http",
            ),
            (
                "data_dir='d'\nnetwork='local'\nbeacon_nodes=['http://b']",
                "operator key missing",
            ),
            (
                "data_dir='d'\nnetwork='local'\nbeacon_nodes=['http://b']\nshards=0\n[operator]\nkey_file='k'",
                "shards",
            ),
            (
                "data_dir='d'\nnetwork='hoodi'\nbeacon_nodes=['http://b']\nfault='corrupt-partials'\n[operator]\nkey_file='k'",
                "only allowed",
            ),
            (
                "data_dir='d'\nnetwork='local'\nbeacon_nodes=['http://b']\nunknown_field=1\n[operator]\nkey_file='k'",
                "unknown field",
            ),
            (
                "data_dir='d'\nnetwork='local'\nbeacon_nodes=['http://b']\n[operator]\nkeystore_file='k'",
                "password_file",
            ),
            (
                "data_dir='d'\nnetwork='local'\nbeacon_nodes=['http://b']\n[operator]\nkey_file='k'\n[eth1]\nendpoints=['http://e']",
                "eth1.contract is required",
            ),
            (
                "data_dir='d'\nnetwork='hoodi'\nbeacon_nodes=['http://b']\n[operator]\nkey_file='k'\n[eth1]\nendpoints=['http://e']\ncontract='0x12'",
                "not a 0x-prefixed",
            ),
            (
                "data_dir='d'\nnetwork='hoodi'\nbeacon_nodes=['http://b']\n[operator]\nkey_file='k'\n[eth1]",
                "eth1.endpoints",
            ),
        ];
        for (text, want) in cases {
            let err = Config::from_toml(text, base, &o).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err} lacks {want:?}");
        }
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err =
            Config::load(Path::new("/nonexistent/ssv.toml"), &Overrides::default()).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }
}
