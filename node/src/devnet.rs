//! `ssv-node devnet`: the whole system on one machine in one command.
//!
//! The devnet generates operator RSA keys and validator BLS keys, splits every validator key
//! into threshold shares for committees of `--committee-size` operators and seeds each
//! operator's MDBX store with what contract sync would have stored for it: every operator,
//! the committees, and one share record per validator of its committees, carrying its own
//! share RSA-encrypted as in the `ValidatorAdded` `shares` payload. It then starts, in this
//! process, the beacon-chain simulator ([`crate::beacon::sim`]) and a discv5 bootnode, and
//! starts N `ssv-node start --config op<ID>/config.toml` child processes exactly as a user
//! would. The nodes find each other through the bootnode, run committee duties over real
//! libp2p on loopback and submit to the simulator, which verifies every signature against the
//! validator's full public key. After S slots (plus two for the last ones to settle) the
//! nodes get SIGTERM, and the devnet prints a table and optionally a JSON summary.
//!
//! Layout of the data directory:
//!
//! ```text
//! DIR/op<ID>/operator.pem   the operator's RSA key (plain PEM)
//! DIR/op<ID>/config.toml    its `ssv-node start` config
//! DIR/op<ID>/db/            its MDBX store, seeded before it starts
//! DIR/op<ID>/node.log       its stdout and stderr
//! ```
//!
//! Committees: validators are spread round-robin over `ceil(V / 500)` committees
//! ([`VALIDATORS_PER_COMMITTEE`]), bounded by the number of distinct committees N operators
//! can form. Committees are distinct K-subsets of the operators: first the consecutive groups
//! `1..=K`, `K+1..=2K`, …, then further subsets in lexicographic order.
//!
//! Exit status: 0 when every expected attestation and sync-committee message of the S slots
//! was submitted valid and nothing was invalid or missed; otherwise non-zero with a one-line
//! reason. No child process outlives the devnet: on Ctrl-C or when a node exits early the
//! others get SIGTERM (then SIGKILL after [`NODE_STOP_TIMEOUT`]), a panic kills them
//! ([`Nodes`] kills in `Drop`), and if the devnet itself is killed the kernel sends them
//! SIGTERM (`PR_SET_PDEATHSIG`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::Address;
use anyhow::{Context, bail, ensure};
use rand::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest as _, Sha256};
use ssv_crypto_pipeline::threshold::split_secret_key;
use ssv_crypto_pipeline::{OperatorSecretKey, SecretKey};
use ssv_storage::{
    CommitteeRecord, OperatorRecord, ShareRecord, Store, StoreConfig, WriteOp, committee_id,
};

use crate::beacon::sim::{
    BeaconSim, EPOCHS_PER_SYNC_COMMITTEE_PERIOD, SLOTS_PER_EPOCH, SimConfig, SimStats,
    SimValidator, genesis_validators_root,
};
use crate::eth::shares::{
    ENCRYPTED_SHARE_LEN, expected_shares_len, share_plaintext, sign_owner_nonce, split_shares,
};

/// Most operators (each is a process; far more than a 2-core machine runs usefully).
pub const OPERATORS_MAX: u64 = 64;
/// Most validators (set-up signs and encrypts `V × K` shares up front).
pub const VALIDATORS_MAX: u64 = 100_000;
/// Most slots of one run.
pub const SLOTS_MAX: u64 = 100_000;
/// Shortest slot. Below this a committee round (QBFT, partial signatures, submission) cannot
/// finish within its slot on loopback and every duty would count as late.
pub const SLOT_MS_MIN: u64 = 200;
/// Longest slot (mainnet is 12,000 ms).
pub const SLOT_MS_MAX: u64 = 60_000;
/// Default slot duration: above the QBFT quick round timeout
/// ([`ssv_protocol::qbft::QUICK_TIMEOUT`], 2 s) with room for the round change, so that a
/// slot whose round-1 leader is down (`--kill-operator`) still decides within the slot; a
/// run of 16 slots takes under a minute.
pub const SLOT_MS_DEFAULT: u64 = 2_500;
/// Committee sizes SSV allows (3f + 1 for f = 1..=4).
pub const COMMITTEE_SIZES: [u64; 4] = [4, 7, 10, 13];
/// Validators per committee the devnet aims for: V validators use `ceil(V / 500)`
/// committees (bounded by how many distinct committees the operators can form).
pub const VALIDATORS_PER_COMMITTEE: u64 = 500;
/// Most committees (`VALIDATORS_MAX / VALIDATORS_PER_COMMITTEE`).
pub const COMMITTEES_MAX: usize = (VALIDATORS_MAX / VALIDATORS_PER_COMMITTEE) as usize;
/// Most glommio shards per node.
pub const SHARDS_PER_NODE_MAX: u64 = crate::config::SHARDS_MAX as u64;
/// Time between starting the nodes and the first counted slot: the nodes open their stores,
/// decrypt their shares, fetch the chain's genesis and duties and find each other through
/// the bootnode. Too short: the first slots' duties are missed.
pub const START_DELAY: Duration = Duration::from_secs(6);
/// Extra start-up time per validator share, divided by the number of cores: every node
/// RSA-decrypts each of its shares and parses the committee's share keys before it runs
/// (measured about 1.75 ms of CPU per share on a loaded 2-core machine: 4 nodes of 4,000
/// validators were ready after 14 s). Too small: the first slots of large runs are missed.
pub const START_DELAY_PER_SHARE: Duration = Duration::from_millis(2);
/// Longest start delay (`--start-delay-ms` and the computed one).
pub const START_DELAY_MAX: Duration = Duration::from_secs(600);
/// Slots waited after the last counted slot: the simulator settles slot `s` (counts its
/// missing duties) when slot `s + 2` starts.
pub const SETTLE_SLOTS: u64 = 2;
/// Margin after the settle slot starts before the counters are read.
pub const SETTLE_MARGIN: Duration = Duration::from_millis(200);
/// How long the nodes get to exit after SIGTERM before they are killed.
pub const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the child processes are checked while waiting.
pub const CHILD_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Lines of a node's log shown when it exits early.
pub const LOG_TAIL_LINES: usize = 20;
/// Bytes read from the end of a log to find its tail.
pub const LOG_TAIL_BYTES_MAX: u64 = 16 * 1024;
/// Bytes read from the start of a log to find the node's metrics address.
pub const LOG_HEAD_BYTES_MAX: u64 = 256 * 1024;
/// Timeout of reading one node's `/metrics`.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(2);

/// The arguments of `ssv-node devnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArgs {
    /// An Ethereum JSON-RPC endpoint with an unlocked account (a dev node such as hardhat):
    /// the devnet deploys the SSVNetwork-events test contract there, registers operators and
    /// validators by transactions, and the nodes learn them by contract sync instead of from
    /// seeded databases.
    #[arg(long)]
    pub execution_endpoint: Option<String>,
    /// Number of operators (node processes); IDs are 1..=N.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=OPERATORS_MAX))]
    pub operators: u64,
    /// Number of validators (beacon indices 0..V), spread round-robin over ceil(V / 500)
    /// committees (at most as many as the operators can form).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=VALIDATORS_MAX))]
    pub validators: u64,
    /// Number of counted slots.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=SLOTS_MAX))]
    pub slots: u64,
    /// Slot duration in milliseconds.
    #[arg(long, default_value_t = SLOT_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(SLOT_MS_MIN..=SLOT_MS_MAX))]
    pub slot_ms: u64,
    /// Operators per committee: 4, 7, 10 or 13 (at most --operators).
    #[arg(long, default_value_t = 4, value_parser = parse_committee_size)]
    pub committee_size: u64,
    /// Write a JSON summary of the run to this file.
    #[arg(long)]
    pub json_summary: Option<PathBuf>,
    /// Directory for keys, configs, stores and logs (created; must be empty). Always kept.
    /// Default: a new temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the temporary data directory after a successful run (a failed run always keeps
    /// it, for its logs).
    #[arg(long)]
    pub keep_data: bool,
    /// Operator to SIGKILL during the run (with --kill-at-slot).
    #[arg(long, requires = "kill_at_slot")]
    pub kill_operator: Option<u64>,
    /// Counted slot (0-based) at whose start --kill-operator is killed.
    #[arg(long, requires = "kill_operator")]
    pub kill_at_slot: Option<u64>,
    /// Operator that signs its post-consensus partial signatures with a wrong key
    /// (`fault = "corrupt-partials"`); the others must discard them.
    #[arg(long)]
    pub faulty_operator: Option<u64>,
    /// glommio shards per node.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=SHARDS_PER_NODE_MAX))]
    pub shards_per_node: u64,
    /// Seed of the validator keys, the share polynomials and the simulator's duty shuffle.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time from starting the nodes to the first counted slot, in milliseconds. Default:
    /// 6 s plus 2 ms per validator share divided by the number of cores.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=START_DELAY_MAX.as_millis() as u64))]
    pub start_delay_ms: Option<u64>,
}

fn parse_committee_size(s: &str) -> Result<u64, String> {
    let k: u64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if COMMITTEE_SIZES.contains(&k) {
        Ok(k)
    } else {
        Err(format!(
            "{k} is not a committee size SSV allows (4, 7, 10 or 13)"
        ))
    }
}

impl DevnetArgs {
    /// Checks what clap cannot check field by field.
    pub fn validate(&self) -> anyhow::Result<()> {
        let n = self.operators;
        ensure!(
            COMMITTEE_SIZES.contains(&self.committee_size),
            "--committee-size must be 4, 7, 10 or 13, got {}",
            self.committee_size
        );
        ensure!(
            n >= self.committee_size,
            "--committee-size {} needs at least {} operators, got --operators {n}",
            self.committee_size,
            self.committee_size
        );
        for (flag, id) in [
            ("--kill-operator", self.kill_operator),
            ("--faulty-operator", self.faulty_operator),
        ] {
            if let Some(id) = id {
                ensure!(
                    (1..=n).contains(&id),
                    "{flag} {id} is not an operator (IDs are 1..={n})"
                );
            }
        }
        match (self.kill_operator, self.kill_at_slot) {
            (Some(_), Some(k)) => ensure!(
                k < self.slots,
                "--kill-at-slot {k} is past the last slot ({} slots, 0-based)",
                self.slots
            ),
            (None, None) => {}
            _ => bail!("--kill-operator and --kill-at-slot go together"),
        }
        Ok(())
    }
}

/// One operator's keys.
pub struct OperatorKeys {
    /// Operator ID (1-based).
    pub id: u64,
    /// RSA key.
    pub key: OperatorSecretKey,
}

/// One validator and its `ValidatorAdded` `shares` payload.
pub struct ValidatorKeys {
    /// Beacon index.
    pub index: u64,
    /// The full validator key (only the simulator's public key and the tests use it).
    pub secret: SecretKey,
    /// Its public key.
    pub pubkey: [u8; 48],
    /// Position of its committee in [`Setup::committees`].
    pub committee: usize,
    /// `owner signature ‖ share public keys ‖ encrypted shares`, operators in the order of
    /// the committee (ascending IDs).
    pub shares: Vec<u8>,
}

/// Everything generated before any node starts.
pub struct Setup {
    /// Operators, ID `i + 1` at position `i`.
    pub operators: Vec<OperatorKeys>,
    /// Committees, each its operator IDs ascending.
    pub committees: Vec<Vec<u64>>,
    /// Validators, index `i` at position `i`.
    pub validators: Vec<ValidatorKeys>,
    /// The account that "registered" every validator (nonce = validator index).
    pub owner: Address,
}

/// The default start delay for `shares` validator shares over all nodes on `cores` cores:
/// [`START_DELAY`] plus [`START_DELAY_PER_SHARE`] per share per core, at most
/// [`START_DELAY_MAX`].
pub fn start_delay(shares: u64, cores: u64) -> Duration {
    let extra = START_DELAY_PER_SHARE.saturating_mul(u32::try_from(shares).unwrap_or(u32::MAX))
        / u32::try_from(cores.max(1)).unwrap_or(u32::MAX);
    (START_DELAY + extra).min(START_DELAY_MAX)
}

/// `C(n, k)`, saturating at `cap`.
fn binomial_capped(n: u64, k: u64, cap: u64) -> u64 {
    let mut c: u128 = 1;
    for i in 0..k.min(n) {
        c = c * u128::from(n - i) / u128::from(i + 1);
        if c >= u128::from(cap) {
            return cap;
        }
    }
    if k > n { 0 } else { c as u64 }
}

/// How many committees `validators` validators are spread over: `ceil(V / 500)`, bounded by
/// the number of distinct committees of `size` among `operators` and by [`COMMITTEES_MAX`].
pub fn committee_count(validators: u64, operators: u64, size: u64) -> usize {
    let wanted = validators.div_ceil(VALIDATORS_PER_COMMITTEE).max(1);
    let available = binomial_capped(operators, size, COMMITTEES_MAX as u64);
    wanted.min(available).min(COMMITTEES_MAX as u64) as usize
}

/// `count` distinct committees of `size` operators out of IDs `1..=operators`: first the
/// consecutive groups, then other subsets in lexicographic order. Fewer when fewer exist.
pub fn committees(operators: u64, size: u64, count: usize) -> Vec<Vec<u64>> {
    let count = count.min(COMMITTEES_MAX);
    let mut out: Vec<Vec<u64>> = (0..operators / size.max(1))
        .map(|g| (g * size + 1..=(g + 1) * size).collect())
        .take(count)
        .collect();
    if out.len() >= count || size == 0 || size > operators {
        return out;
    }
    // Lexicographic K-subsets of 1..=N, skipping the consecutive groups already taken.
    let k = size as usize;
    let mut cur: Vec<u64> = (1..=size).collect();
    loop {
        if !out.contains(&cur) {
            out.push(cur.clone());
            if out.len() >= count {
                return out;
            }
        }
        // Advance to the next subset: the rightmost element that can grow grows, the ones
        // after it follow consecutively.
        let Some(i) = (0..k)
            .rev()
            .find(|&i| cur[i] < operators - (k - 1 - i) as u64)
        else {
            return out;
        };
        cur[i] += 1;
        for j in i + 1..k {
            cur[j] = cur[j - 1] + 1;
        }
    }
}

/// The quorum of a committee of `size` operators (`2f + 1` for `size = 3f + 1`).
pub fn quorum(size: u64) -> usize {
    let f = (size.saturating_sub(1)) / 3;
    (2 * f + 1) as usize
}

impl Setup {
    /// Generates `operators` RSA keys, `validators` BLS keys (from `seed`) and their shares
    /// for committees of `committee_size`.
    pub fn generate(
        operators: u64,
        validators: u64,
        committee_size: u64,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let owner = Address::from_slice(
            &Sha256::digest([b"ssv-node devnet owner".as_slice(), &seed.to_le_bytes()].concat())
                [..20],
        );
        Self::generate_for_owner(operators, validators, committee_size, seed, owner)
    }

    /// [`Setup::generate`] with the validators registered by `owner` (nonce = index).
    pub fn generate_for_owner(
        operators: u64,
        validators: u64,
        committee_size: u64,
        seed: u64,
        owner: Address,
    ) -> anyhow::Result<Self> {
        ensure!(
            (1..=OPERATORS_MAX).contains(&operators),
            "1..={OPERATORS_MAX} operators"
        );
        ensure!(
            (1..=VALIDATORS_MAX).contains(&validators),
            "1..={VALIDATORS_MAX} validators"
        );
        ensure!(
            COMMITTEE_SIZES.contains(&committee_size) && committee_size <= operators,
            "committee size {committee_size} with {operators} operators"
        );
        let operators: Vec<OperatorKeys> = (1..=operators)
            .map(|id| {
                OperatorSecretKey::generate()
                    .map(|key| OperatorKeys { id, key })
                    .with_context(|| format!("generating the RSA key of operator {id}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let count = committee_count(validators, operators.len() as u64, committee_size);
        let committees = committees(operators.len() as u64, committee_size, count);
        ensure!(!committees.is_empty(), "no committee could be formed");
        let threshold = quorum(committee_size);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(validators as usize);
        for index in 0..validators {
            let mut ikm = [0u8; 32];
            rng.fill_bytes(&mut ikm);
            let secret = SecretKey::from_ikm(&ikm);
            let committee = (index % committees.len() as u64) as usize;
            let ids = &committees[committee];
            let shares = split_secret_key(&secret, threshold, ids, &mut rng)
                .with_context(|| format!("splitting validator {index}"))?;
            let mut payload = Vec::with_capacity(expected_shares_len(ids.len()));
            payload.extend_from_slice(&sign_owner_nonce(&secret, owner, index));
            for (_, share) in &shares {
                payload.extend_from_slice(&share.public_key().to_bytes());
            }
            for (id, share) in &shares {
                let op = &operators[(*id - 1) as usize];
                let enc = op
                    .key
                    .public_key()
                    .encrypt(share_plaintext(share).as_bytes())
                    .with_context(|| format!("encrypting validator {index}'s share to {id}"))?;
                ensure!(
                    enc.len() == ENCRYPTED_SHARE_LEN,
                    "operator {id}'s key gives {}-byte ciphertexts, not {ENCRYPTED_SHARE_LEN}",
                    enc.len()
                );
                payload.extend_from_slice(&enc);
            }
            out.push(ValidatorKeys {
                index,
                pubkey: secret.public_key().to_bytes(),
                secret,
                committee,
                shares: payload,
            });
        }
        Ok(Setup {
            operators,
            committees,
            validators: out,
            owner,
        })
    }

    /// The store writes of operator `id`: every operator, its committees, and one share per
    /// validator of its committees with its own encrypted share taken from the `shares`
    /// payload as contract sync takes it.
    pub fn store_ops(&self, id: u64) -> anyhow::Result<Vec<WriteOp>> {
        let mut ops = Vec::new();
        for op in &self.operators {
            ops.push(WriteOp::PutOperator(OperatorRecord {
                id: op.id,
                public_key: op.key.public_key().to_base64_pem().into_bytes(),
                owner: self.owner.0.0,
            }));
        }
        for (c, ids) in self.committees.iter().enumerate() {
            let Some(pos) = ids.iter().position(|o| *o == id) else {
                continue;
            };
            ops.push(WriteOp::PutCommittee(
                CommitteeRecord::new(ids.clone()).context("committee record")?,
            ));
            let cid = committee_id(ids).context("committee id")?;
            for v in self.validators.iter().filter(|v| v.committee == c) {
                let split = split_shares(&v.shares, ids.len())
                    .map_err(|e| anyhow::anyhow!("validator {} shares: {e}", v.index))?;
                let share_pubkeys = split
                    .share_pubkeys
                    .iter()
                    .map(|pk| <[u8; 48]>::try_from(*pk))
                    .collect::<Result<Vec<_>, _>>()
                    .context("share public key length")?;
                ops.push(WriteOp::PutShare(ShareRecord {
                    validator_pubkey: v.pubkey,
                    validator_index: Some(v.index),
                    committee_id: cid,
                    operator_ids: ids.clone(),
                    share_pubkeys,
                    encrypted_share: split.encrypted[pos].to_vec(),
                    secret_share: None,
                    owner: self.owner.0.0,
                    liquidated: false,
                }));
            }
        }
        Ok(ops)
    }

    /// The simulator's view of the validators.
    pub fn sim_validators(&self) -> Vec<SimValidator> {
        self.validators
            .iter()
            .map(|v| SimValidator {
                index: v.index,
                pubkey: v.pubkey,
            })
            .collect()
    }
}

/// What goes into one node's `config.toml`.
#[derive(Debug, serde::Serialize)]
struct NodeConfigFile {
    data_dir: PathBuf,
    network: &'static str,
    beacon_nodes: Vec<String>,
    shards: u64,
    pin_shards: bool,
    metrics_addr: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<&'static str>,
    operator: NodeOperatorSection,
    p2p: NodeP2pSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    eth1: Option<NodeEth1Section>,
}

/// The `[eth1]` section of a node config (`--execution-endpoint`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeEth1Section {
    /// The execution endpoint.
    pub endpoints: Vec<String>,
    /// The test contract.
    pub contract: String,
    /// Its deployment block.
    pub start_block: u64,
    /// 0: a dev node does not reorg.
    pub follow_distance: u64,
}

#[derive(Debug, serde::Serialize)]
struct NodeOperatorSection {
    id: u64,
    key_file: PathBuf,
}

#[derive(Debug, serde::Serialize)]
struct NodeP2pSection {
    ip: Ipv4Addr,
    tcp_port: u16,
    udp_port: u16,
    bootnodes: Vec<String>,
}

/// The `ssv-node start` config of operator `id` whose directory is `dir`: network `local`,
/// the simulator as beacon node, loopback with any free ports (p2p and metrics), the
/// bootnode, and the fault for the faulty operator only. Shards are not pinned: several nodes share the cores.
pub fn node_config(
    dir: &Path,
    id: u64,
    beacon_url: &str,
    bootnode_enr: &str,
    shards: u64,
    faulty: bool,
) -> anyhow::Result<String> {
    let file = NodeConfigFile {
        data_dir: dir.to_owned(),
        network: "local",
        beacon_nodes: vec![beacon_url.to_owned()],
        shards,
        pin_shards: false,
        // Any free port: the node logs the address it got, and the devnet reads it there.
        metrics_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        fault: faulty.then_some("corrupt-partials"),
        operator: NodeOperatorSection {
            id,
            key_file: dir.join("operator.pem"),
        },
        p2p: NodeP2pSection {
            ip: Ipv4Addr::LOCALHOST,
            tcp_port: 0,
            udp_port: 0,
            bootnodes: vec![bootnode_enr.to_owned()],
        },
        eth1: None,
    };
    toml::to_string(&file).context("encoding a node config")
}

/// [`node_config`] plus an `[eth1]` section: the node learns its registry by contract sync.
pub fn node_config_eth1(base: &str, eth1: &NodeEth1Section) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Only<'a> {
        eth1: &'a NodeEth1Section,
    }
    Ok(format!(
        "{base}\n{}",
        toml::to_string(&Only { eth1 }).context("encoding the eth1 section")?
    ))
}

/// Writes operator `id`'s directory: key, seeded store, config. Returns the config path.
fn prepare_operator(
    setup: &Setup,
    dir: &Path,
    id: u64,
    gvr: [u8; 32],
    config_text: &str,
    seed_store: bool,
) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let op = &setup.operators[(id - 1) as usize];
    let pem = op.key.to_pem().context("encoding an operator key")?;
    let key_path = dir.join("operator.pem");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .with_context(|| format!("creating {}", key_path.display()))?;
    std::io::Write::write_all(&mut f, pem.as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    if seed_store {
        let store = Store::open(StoreConfig::new(dir.join("db"), gvr))
            .with_context(|| format!("opening the store of operator {id}"))?;
        store
            .write(setup.store_ops(id)?)
            .with_context(|| format!("seeding the store of operator {id}"))?;
        drop(store);
    }
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config_text)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(config_path)
}

/// How a node's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// Still running.
    Running,
    /// Killed by the devnet at this counted slot (`--kill-operator`).
    Killed {
        /// The relative slot.
        slot: u64,
    },
    /// Exited on its own before it was asked to stop.
    ExitedEarly(String),
    /// Stopped after SIGTERM with this status.
    Stopped(String),
    /// Did not stop within [`NODE_STOP_TIMEOUT`] and was killed.
    Hung,
}

impl NodeState {
    fn describe(&self) -> String {
        match self {
            NodeState::Running => "running".into(),
            NodeState::Killed { slot } => format!("killed (SIGKILL) at slot {slot}"),
            NodeState::ExitedEarly(s) => format!("exited early: {s}"),
            NodeState::Stopped(s) => format!("stopped on SIGTERM: {s}"),
            NodeState::Hung => format!(
                "did not stop within {} s of SIGTERM; killed",
                NODE_STOP_TIMEOUT.as_secs()
            ),
        }
    }

    /// Whether this is how a node of a good run ends.
    fn is_clean(&self) -> bool {
        match self {
            NodeState::Killed { .. } => true,
            NodeState::Stopped(s) => s == "exit status 0",
            _ => false,
        }
    }
}

fn describe_status(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

/// One operator node process.
struct NodeProcess {
    id: u64,
    child: Child,
    log: PathBuf,
    state: NodeState,
}

/// The node processes. Dropping it kills (SIGKILL) and reaps every one still running, so no
/// error path or panic leaves a node behind.
pub struct Nodes {
    procs: Vec<NodeProcess>,
}

impl Nodes {
    /// Starts `exe start --config <config>` for each `(id, config, log)`; the node's stdout
    /// and stderr go to `log`.
    fn spawn(exe: &Path, nodes: &[(u64, PathBuf, PathBuf)]) -> anyhow::Result<Self> {
        let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
        let mut out = Nodes { procs: Vec::new() };
        for (id, config, log) in nodes {
            let file = std::fs::File::create(log)
                .with_context(|| format!("creating {}", log.display()))?;
            let err = file.try_clone().context("duplicating a log handle")?;
            let mut cmd = Command::new(exe);
            cmd.arg("start")
                .arg("--config")
                .arg(config)
                .env("RUST_LOG", &rust_log)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(err);
            // SAFETY: the closure runs in the forked child before exec and only calls
            // prctl(2), which is async-signal-safe and touches no memory of ours.
            unsafe {
                cmd.pre_exec(|| {
                    // If the devnet dies without cleaning up (SIGKILL), the kernel sends the
                    // node SIGTERM. The signal is tied to the spawning thread, which is the
                    // thread running the devnet's main future for the whole run.
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .with_context(|| format!("starting {} start", exe.display()))?;
            out.procs.push(NodeProcess {
                id: *id,
                child,
                log: log.clone(),
                state: NodeState::Running,
            });
        }
        Ok(out)
    }

    /// Running nodes.
    fn alive(&self) -> usize {
        self.procs
            .iter()
            .filter(|p| p.state == NodeState::Running)
            .count()
    }

    /// Records nodes that exited on their own; an error names the first with its log tail.
    fn check(&mut self) -> anyhow::Result<()> {
        for p in &mut self.procs {
            if p.state != NodeState::Running {
                continue;
            }
            if let Some(status) = p.child.try_wait().context("waiting on a node")? {
                p.state = NodeState::ExitedEarly(describe_status(status));
                bail!(
                    "operator {} {}; last lines of {}:\n{}",
                    p.id,
                    p.state.describe(),
                    p.log.display(),
                    log_tail(&p.log)
                );
            }
        }
        Ok(())
    }

    /// SIGKILLs operator `id`.
    fn kill(&mut self, id: u64, slot: u64) -> anyhow::Result<()> {
        let p = self
            .procs
            .iter_mut()
            .find(|p| p.id == id)
            .with_context(|| format!("no operator {id}"))?;
        if p.state == NodeState::Running {
            p.child
                .kill()
                .with_context(|| format!("killing operator {id}"))?;
            let _ = p.child.wait();
            p.state = NodeState::Killed { slot };
        }
        Ok(())
    }

    /// Sends SIGTERM to every running node and waits up to [`NODE_STOP_TIMEOUT`] for them;
    /// the ones still running then are killed.
    async fn stop(&mut self) {
        for p in &self.procs {
            if p.state == NodeState::Running {
                // A child not yet reaped keeps its PID, so the signal cannot reach another
                // process.
                let pid = p.child.id() as libc::pid_t;
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + NODE_STOP_TIMEOUT;
        loop {
            for p in &mut self.procs {
                if p.state == NodeState::Running
                    && let Ok(Some(status)) = p.child.try_wait()
                {
                    p.state = NodeState::Stopped(describe_status(status));
                }
            }
            if self.alive() == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(CHILD_POLL_INTERVAL).await;
        }
        for p in &mut self.procs {
            if p.state == NodeState::Running {
                let _ = p.child.kill();
                let _ = p.child.wait();
                p.state = NodeState::Hung;
            }
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if p.state == NodeState::Running {
                let _ = p.child.kill();
                let _ = p.child.wait();
                p.state = NodeState::Hung;
            }
        }
    }
}

/// The last [`LOG_TAIL_LINES`] lines of a log (indented), or why it could not be read.
pub fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES_MAX)))?;
        let mut buf = Vec::new();
        f.take(LOG_TAIL_BYTES_MAX).read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            if tail.is_empty() {
                "    (empty)".into()
            } else {
                tail.iter().map(|l| format!("    {l}\n")).collect()
            }
        }
        Err(e) => format!("    (cannot read: {e})"),
    }
}

/// One operator's line of the summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatorSummary {
    /// Operator ID.
    pub id: u64,
    /// How its process ended.
    pub status: String,
    /// Whether that is how a node of a good run ends (stopped with status 0 on SIGTERM, or
    /// killed on purpose).
    pub clean: bool,
    /// Its log.
    pub log: PathBuf,
}

/// The result of a run (the `--json-summary` file).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Counted slots.
    pub slots: u64,
    /// Slot duration.
    pub slot_ms: u64,
    /// First counted slot of the chain.
    pub first_slot: u64,
    /// Operators.
    pub operators: u64,
    /// Validators.
    pub validators: u64,
    /// Committees.
    pub committees: usize,
    /// Operators per committee.
    pub committee_size: u64,
    /// Attester duties in the counted slots.
    pub attestations_expected: u64,
    /// Valid attestations of those duties.
    pub attestations_valid: u64,
    /// Invalid attestations naming a counted slot.
    pub attestations_invalid: u64,
    /// Valid attestations later than two slots after their slot's start.
    pub attestations_late: u64,
    /// Sync-committee duties in the counted slots.
    pub sync_messages_expected: u64,
    /// Valid sync-committee messages of those duties.
    pub sync_messages_valid: u64,
    /// Invalid sync-committee messages naming a counted slot.
    pub sync_messages_invalid: u64,
    /// Valid sync-committee messages received late.
    pub sync_messages_late: u64,
    /// Duties (attestations and sync messages) with no valid submission.
    pub missed: u64,
    /// Median latency from slot start to a valid submission.
    pub duty_latency_ms_p50: u64,
    /// 99th percentile of that latency.
    pub duty_latency_ms_p99: u64,
    /// Largest latency.
    pub duty_latency_ms_max: u64,
    /// The nodes' counters (their `/metrics`), summed over the nodes alive at the end and
    /// read before they are stopped; empty when none could be read.
    pub node_counters: BTreeMap<String, u64>,
    /// Seconds from starting the nodes to reading their counters.
    pub node_seconds: f64,
    /// The operator killed during the run.
    pub killed_operator: Option<u64>,
    /// The counted slot (0-based) it was killed at.
    pub kill_at_slot: Option<u64>,
    /// The operator sending corrupted partial signatures.
    pub faulty_operator: Option<u64>,
    /// How each node ended and where its log is.
    pub operator_exits: Vec<OperatorSummary>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Whether the run passed (see [`Summary::failure`]).
    pub passed: bool,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// Nearest-rank percentile `p` (0..=100) of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p.min(100) as usize * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

impl Summary {
    /// Why the run failed (`None`: every expected duty valid, nothing invalid or missed,
    /// every node stopped cleanly).
    pub fn failure(&self) -> Option<String> {
        if self.attestations_invalid > 0 || self.sync_messages_invalid > 0 {
            return Some(format!(
                "{} invalid attestations and {} invalid sync-committee messages",
                self.attestations_invalid, self.sync_messages_invalid
            ));
        }
        if self.missed > 0 {
            return Some(format!("{} duties missed", self.missed));
        }
        if self.attestations_valid < self.attestations_expected {
            return Some(format!(
                "{} of {} expected attestations valid",
                self.attestations_valid, self.attestations_expected
            ));
        }
        if self.sync_messages_valid < self.sync_messages_expected {
            return Some(format!(
                "{} of {} expected sync-committee messages valid",
                self.sync_messages_valid, self.sync_messages_expected
            ));
        }
        if self.attestations_expected + self.sync_messages_expected == 0 {
            return Some("no duties fell in the counted slots".into());
        }
        self.operator_exits
            .iter()
            .find(|o| !o.clean)
            .map(|o| format!("operator {} {}", o.id, o.status))
    }

    /// The final table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\ndevnet: {} operators, {} validators in {} committee(s) of {}, {} slots of {} ms \
             (chain slots {}..={})",
            self.operators,
            self.validators,
            self.committees,
            self.committee_size,
            self.slots,
            self.slot_ms,
            self.first_slot,
            self.first_slot + self.slots - 1
        );
        let _ = writeln!(
            s,
            "\n{:<16}{:>10}{:>10}{:>10}{:>8}{:>10}",
            "duty", "expected", "valid", "invalid", "late", "missed"
        );
        for (name, exp, valid, invalid, late) in [
            (
                "attestations",
                self.attestations_expected,
                self.attestations_valid,
                self.attestations_invalid,
                self.attestations_late,
            ),
            (
                "sync messages",
                self.sync_messages_expected,
                self.sync_messages_valid,
                self.sync_messages_invalid,
                self.sync_messages_late,
            ),
        ] {
            let _ = writeln!(
                s,
                "{name:<16}{exp:>10}{valid:>10}{invalid:>10}{late:>8}{:>10}",
                exp.saturating_sub(valid)
            );
        }
        let _ = writeln!(
            s,
            "\nlatency, slot start -> valid submission: p50 {} ms, p99 {} ms, max {} ms",
            self.duty_latency_ms_p50, self.duty_latency_ms_p99, self.duty_latency_ms_max
        );
        let rate = |name: &str| {
            self.node_counters
                .get(name)
                .map(|v| *v as f64 / self.node_seconds.max(1e-3))
        };
        if let (Some(msgs), Some(sigs)) = (
            rate("ssv_messages_in"),
            rate("ssv_signatures_reconstructed"),
        ) {
            let _ = writeln!(
                s,
                "nodes, all together over {:.0} s: {msgs:.0} gossip messages/s in, \
                 {sigs:.0} signatures/s reconstructed and verified",
                self.node_seconds
            );
        }
        let _ = writeln!(s, "\n{:<10}{:<48}log", "operator", "status");
        for o in &self.operator_exits {
            let mut status = o.status.clone();
            if self.faulty_operator == Some(o.id) {
                status.push_str(" [faulty]");
            }
            let _ = writeln!(s, "{:<10}{:<48}{}", o.id, status, o.log.display());
        }
        let _ = match self.failure() {
            None => writeln!(
                s,
                "\nPASS: every expected duty submitted valid; none invalid, none missed"
            ),
            Some(why) => writeln!(s, "\nFAIL: {why}"),
        };
        s
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The data directory: given (must be empty) or a new temporary one.
fn data_dir(args: &DevnetArgs) -> anyhow::Result<(PathBuf, bool)> {
    match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut entries =
                std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
            ensure!(
                entries.next().is_none(),
                "--data-dir {} is not empty (a devnet seeds fresh stores)",
                dir.display()
            );
            Ok((
                std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
                false,
            ))
        }
        None => {
            let dir = std::env::temp_dir().join(format!(
                "ssv-devnet-{}-{}",
                std::process::id(),
                now_ms()
            ));
            std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Ok((dir, true))
        }
    }
}

/// Warns when the killed and the faulty operator sit in one committee that tolerates fewer
/// bad members: its duties cannot all be done, and the run will fail by design.
fn warn_beyond_fault_tolerance(args: &DevnetArgs, committees: &[Vec<u64>]) {
    let mut bad: Vec<u64> = [args.kill_operator, args.faulty_operator]
        .into_iter()
        .flatten()
        .collect();
    bad.dedup();
    for c in committees {
        let members = bad.iter().filter(|o| c.contains(o)).count();
        let f = c.len() - quorum(c.len() as u64);
        if members > f {
            eprintln!(
                "devnet: warning: committee {c:?} has {members} killed or faulty operators and \
                 tolerates {f}; its duties after the kill will be missed"
            );
        }
    }
}

/// The URL of a node's `/metrics`, from the line its log starts with
/// (`metrics on http://ADDR/metrics`).
fn metrics_url(log: &Path) -> Option<String> {
    let mut head = Vec::new();
    std::fs::File::open(log)
        .ok()?
        .take(LOG_HEAD_BYTES_MAX)
        .read_to_end(&mut head)
        .ok()?;
    let text = String::from_utf8_lossy(&head);
    let at = text.find("metrics on http://")? + "metrics on ".len();
    let url: String = text[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    url.ends_with("/metrics").then_some(url)
}

/// Counters of a Prometheus text exposition (`name value` lines; others are skipped).
pub fn parse_counters(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The counters of every running node, summed (what could not be read is left out).
async fn node_counters(nodes: &Nodes) -> BTreeMap<String, u64> {
    let Ok(client) = reqwest::Client::builder().timeout(METRICS_TIMEOUT).build() else {
        return BTreeMap::new();
    };
    let mut sum = BTreeMap::new();
    for p in nodes.procs.iter().filter(|p| p.state == NodeState::Running) {
        let Some(url) = metrics_url(&p.log) else {
            continue;
        };
        let Ok(resp) = client.get(&url).send().await else {
            continue;
        };
        let Ok(text) = resp.text().await else {
            continue;
        };
        for (k, v) in parse_counters(&text) {
            *sum.entry(k).or_insert(0u64) += v;
        }
    }
    sum
}

/// Attestation and sync duties of chain slots `first..=last`.
fn expected_through(sim: &BeaconSim, first: u64, last: u64) -> (u64, u64) {
    let mut att = 0;
    let mut sync = 0;
    let mut epoch = first / SLOTS_PER_EPOCH;
    while epoch * SLOTS_PER_EPOCH <= last {
        att += sim
            .attester_duties(epoch)
            .iter()
            .filter(|d| (first..=last).contains(&d.slot))
            .count() as u64;
        let slots_in =
            (epoch * SLOTS_PER_EPOCH).max(first)..=((epoch + 1) * SLOTS_PER_EPOCH - 1).min(last);
        let n = slots_in.end() + 1 - slots_in.start();
        sync += n * sim
            .sync_committee(epoch / EPOCHS_PER_SYNC_COMMITTEE_PERIOD)
            .len() as u64;
        epoch += 1;
    }
    (att, sync)
}

/// Waits until `target_ms` (Unix time), checking the nodes and Ctrl-C meanwhile.
async fn wait_until(target_ms: u64, nodes: &mut Nodes, stop: &AtomicBool) -> anyhow::Result<()> {
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted (Ctrl-C); the nodes were stopped");
        }
        nodes.check()?;
        let now = now_ms();
        if now >= target_ms {
            return Ok(());
        }
        let wait = Duration::from_millis(target_ms - now).min(CHILD_POLL_INTERVAL);
        tokio::time::sleep(wait).await;
    }
}

/// Runs the counted slots (killing `--kill-operator` on time and printing a line per slot),
/// then waits until the last one is settled. Fails when a node exits on its own or on Ctrl-C.
async fn run_slots(
    args: &DevnetArgs,
    sim: &BeaconSim,
    nodes: &mut Nodes,
    (first, genesis_ms): (u64, u64),
    interrupted: &AtomicBool,
) -> anyhow::Result<()> {
    let n = args.operators;
    let last = first + args.slots - 1;
    let slot_start = |s: u64| genesis_ms + s * args.slot_ms;
    for rel in 0..args.slots {
        let slot = first + rel;
        wait_until(slot_start(slot), nodes, interrupted).await?;
        if args.kill_at_slot == Some(rel)
            && let Some(id) = args.kill_operator
        {
            nodes.kill(id, rel)?;
            println!("slot {slot:>5} ({rel}): killed operator {id} (SIGKILL)");
        }
        wait_until(slot_start(slot + 1), nodes, interrupted).await?;
        let s = sim.stats();
        let (att_exp, sync_exp) = expected_through(sim, first, slot);
        println!(
            "slot {slot:>5} ({}/{}): attestations {}/{} valid, sync {}/{} valid, invalid {}, \
             missed {}, operators alive {}/{n}",
            rel + 1,
            args.slots,
            s.attestations_valid,
            att_exp,
            s.sync_messages_valid,
            sync_exp,
            s.attestations_invalid + s.sync_messages_invalid,
            s.missed,
            nodes.alive()
        );
    }
    wait_until(
        slot_start(last + 1 + SETTLE_SLOTS) + SETTLE_MARGIN.as_millis() as u64,
        nodes,
        interrupted,
    )
    .await
}

/// Runs the devnet; the error (a one-line reason) makes the command exit non-zero.
pub fn run(args: DevnetArgs) -> anyhow::Result<()> {
    args.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the devnet runtime")?;
    // `block_on` runs the future on this thread, so the nodes spawned from it keep their
    // parent-death signal for the whole run.
    let (dir, temporary) = data_dir(&args)?;
    let result = rt.block_on(run_in(&args, &dir));
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("devnet: data and logs kept in {}", dir.display());
            return Err(e);
        }
    };
    if let Some(path) = &args.json_summary {
        let json = serde_json::to_string_pretty(&summary).context("encoding the summary")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", summary.table());
    if summary.passed && temporary && !args.keep_data {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => println!(
                "data directory {} removed (--keep-data keeps it)",
                dir.display()
            ),
            Err(e) => eprintln!("devnet: could not remove {}: {e}", dir.display()),
        }
    } else {
        println!("data and logs: {}", dir.display());
    }
    match summary.failure() {
        None => Ok(()),
        Some(why) => bail!(
            "devnet failed: {why} (logs in {})",
            summary.data_dir.display()
        ),
    }
}

async fn run_in(args: &DevnetArgs, dir: &Path) -> anyhow::Result<Summary> {
    let n = args.operators;
    let exe = std::env::current_exe().context("locating the ssv-node binary")?;
    let t0 = Instant::now();
    let chain = match &args.execution_endpoint {
        Some(url) => Some(crate::devnet_chain::DevChain::deploy(url).await?),
        None => None,
    };
    let setup = {
        let (n, v, k, seed) = (n, args.validators, args.committee_size, args.seed);
        let owner = chain.as_ref().map(|c| c.owner);
        tokio::task::spawn_blocking(move || match owner {
            Some(o) => Setup::generate_for_owner(n, v, k, seed, o),
            None => Setup::generate(n, v, k, seed),
        })
        .await
        .context("set-up task")??
    };
    let eth1 = match &chain {
        Some(c) => {
            let t = Instant::now();
            let last = c.register(&setup).await?;
            eprintln!(
                "devnet: contract {} at block {} on {}; {} operators and {} validators \
                 registered by block {last} in {:.1} s",
                c.contract,
                c.deploy_block,
                c.url,
                setup.operators.len(),
                setup.validators.len(),
                t.elapsed().as_secs_f64()
            );
            Some(NodeEth1Section {
                endpoints: vec![c.url.clone()],
                contract: c.contract.to_string(),
                start_block: c.deploy_block,
                follow_distance: 0,
            })
        }
        None => None,
    };
    eprintln!(
        "devnet: {n} operator keys, {} validators split into {} committee(s) of {} in {:.1} s",
        args.validators,
        setup.committees.len(),
        args.committee_size,
        t0.elapsed().as_secs_f64()
    );
    warn_beyond_fault_tolerance(args, &setup.committees);

    let bootnode =
        ssv_netio::Bootnode::start(ssv_netio::NetworkKey::generate(), Ipv4Addr::LOCALHOST, 0)
            .context("starting the bootnode")?;
    let enr = bootnode.enr().to_base64();

    // The simulator's listener comes first (the configs name its port); its chain starts
    // when the stores are seeded, the start delay after the nodes are started.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("binding the simulator's port")?;
    let sim_addr = listener.local_addr().context("simulator address")?;
    let beacon_url = format!("http://{sim_addr}");
    let gvr = genesis_validators_root(args.seed);
    let setup = Arc::new(setup);
    let mut nodes_to_start = Vec::new();
    for id in 1..=n {
        let op_dir = dir.join(format!("op{id}"));
        let text = node_config(
            &op_dir,
            id,
            &beacon_url,
            &enr,
            args.shards_per_node,
            args.faulty_operator == Some(id),
        )?;
        let text = match &eth1 {
            Some(e) => node_config_eth1(&text, e)?,
            None => text,
        };
        let s = Arc::clone(&setup);
        let d = op_dir.clone();
        let seed_store = eth1.is_none();
        let config = tokio::task::spawn_blocking(move || {
            prepare_operator(&s, &d, id, gvr, &text, seed_store)
        })
        .await
        .context("seeding task")??;
        nodes_to_start.push((id, config, op_dir.join("node.log")));
    }

    let delay = match args.start_delay_ms {
        Some(ms) => Duration::from_millis(ms),
        None => {
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get() as u64);
            start_delay(args.validators * args.committee_size, cores)
        }
    };
    let mut cfg = SimConfig::new(
        setup.sim_validators(),
        Duration::from_millis(args.slot_ms),
        delay,
    );
    cfg.seed = args.seed;
    let first = cfg.first_slot;
    let last = first + args.slots - 1;
    cfg.last_slot = Some(last);
    let genesis_ms = cfg.genesis_time_ms;
    let slot_start = |s: u64| genesis_ms + s * args.slot_ms;
    let sim = BeaconSim::new(cfg).context("building the simulator")?;
    let (stop_sim, stop_rx) = tokio::sync::oneshot::channel::<()>();
    sim.clone()
        .serve_listener(listener, async move {
            let _ = stop_rx.await;
        })
        .with_context(|| format!("serving the simulator on {sim_addr}"))?;

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
            }
        });
    }

    let mut nodes = Nodes::spawn(&exe, &nodes_to_start)?;
    let started = Instant::now();
    eprintln!(
        "devnet: beacon simulator on {beacon_url}, {n} nodes started (logs: {}/op<ID>/node.log); \
         first counted slot {first} in {:.1} s",
        dir.display(),
        slot_start(first).saturating_sub(now_ms()) as f64 / 1000.0
    );

    let ran = run_slots(args, &sim, &mut nodes, (first, genesis_ms), &interrupted).await;
    // On every path the nodes get SIGTERM and time to close their stores (on a panic, the
    // guard's Drop kills them instead).
    let stats: SimStats = sim.stats();
    let counters = node_counters(&nodes).await;
    let run_secs = started.elapsed().as_secs_f64();
    nodes.stop().await;
    let _ = stop_sim.send(());
    drop(bootnode);
    ran?;

    let (att_exp, sync_exp) = expected_through(&sim, first, last);
    ensure!(
        stats.settled_slot == Some(last)
            && stats.attestations_expected == att_exp
            && stats.sync_messages_expected == sync_exp,
        "the simulator's counters do not cover exactly slots {first}..={last} \
         (settled through {:?}, {} / {} expected, computed {att_exp} / {sync_exp})",
        stats.settled_slot,
        stats.attestations_expected,
        stats.sync_messages_expected
    );
    let mut lat = stats.latencies_ms.clone();
    lat.sort_unstable();
    let mut summary = Summary {
        slots: args.slots,
        slot_ms: args.slot_ms,
        first_slot: first,
        operators: n,
        validators: args.validators,
        committees: setup.committees.len(),
        committee_size: args.committee_size,
        attestations_expected: stats.attestations_expected,
        attestations_valid: stats.attestations_valid,
        attestations_invalid: stats.attestations_invalid,
        attestations_late: stats.attestations_late,
        sync_messages_expected: stats.sync_messages_expected,
        sync_messages_valid: stats.sync_messages_valid,
        sync_messages_invalid: stats.sync_messages_invalid,
        sync_messages_late: stats.sync_messages_late,
        missed: stats.missed,
        duty_latency_ms_p50: percentile(&lat, 50),
        duty_latency_ms_p99: percentile(&lat, 99),
        duty_latency_ms_max: lat.last().copied().unwrap_or(0),
        node_counters: counters,
        node_seconds: run_secs,
        killed_operator: args.kill_operator,
        kill_at_slot: args.kill_at_slot,
        faulty_operator: args.faulty_operator,
        operator_exits: nodes
            .procs
            .iter()
            .map(|p| OperatorSummary {
                id: p.id,
                status: p.state.describe(),
                clean: p.state.is_clean(),
                log: p.log.clone(),
            })
            .collect(),
        data_dir: dir.to_owned(),
        passed: false,
        failure: None,
    };
    debug_assert!(nodes.procs.iter().all(|p| p.state != NodeState::Running));
    summary.failure = summary.failure();
    summary.passed = summary.failure.is_none();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};
    use crate::eth::shares::decrypt_share;
    use ssv_crypto_pipeline::threshold::{LagrangeCache, reconstruct_signature};
    use std::collections::HashSet;

    #[test]
    fn committees_are_distinct_and_consecutive_first() {
        assert_eq!(committees(4, 4, 5), vec![vec![1, 2, 3, 4]]);
        let c = committees(8, 4, 3);
        assert_eq!(c[0], vec![1, 2, 3, 4]);
        assert_eq!(c[1], vec![5, 6, 7, 8]);
        assert_eq!(c[2], vec![1, 2, 3, 5]);
        let all = committees(7, 4, 100);
        assert_eq!(all.len(), 35, "C(7, 4)");
        let distinct: HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
        for c in &all {
            assert!(c.windows(2).all(|w| w[0] < w[1]) && c.len() == 4);
            assert!(c.iter().all(|o| (1..=7).contains(o)));
        }
        assert_eq!(committee_count(1, 4, 4), 1);
        assert_eq!(
            committee_count(501, 4, 4),
            1,
            "only one committee of 4 in 4"
        );
        assert_eq!(committee_count(501, 5, 4), 2);
        assert_eq!(committee_count(100_000, 13, 4), COMMITTEES_MAX);
        assert_eq!(start_delay(0, 2), START_DELAY);
        assert_eq!(
            start_delay(512, 2),
            START_DELAY + Duration::from_millis(512)
        );
        assert_eq!(start_delay(u64::MAX, 1), START_DELAY_MAX);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(13), 9);
    }

    #[test]
    fn seeded_shares_decrypt_and_reconstruct() {
        // 7 operators, committees of 4, 9 validators: one committee (9 ≤ 500).
        let setup = Setup::generate(7, 9, 4, 42).expect("set-up");
        assert_eq!(setup.committees, vec![vec![1, 2, 3, 4]]);
        let cache = LagrangeCache::new();
        let root = [7u8; 32];
        let mut seen = HashSet::new();
        // Each operator's store ops carry what it needs.
        let mut shares_by_op = std::collections::BTreeMap::new();
        for op in &setup.operators {
            let ops = setup.store_ops(op.id).expect("ops");
            let operators = ops
                .iter()
                .filter(|o| matches!(o, WriteOp::PutOperator(_)))
                .count();
            assert_eq!(operators, 7, "every operator is stored");
            let share_recs: Vec<&ShareRecord> = ops
                .iter()
                .filter_map(|o| match o {
                    WriteOp::PutShare(s) => Some(s),
                    _ => None,
                })
                .collect();
            if op.id > 4 {
                assert!(
                    share_recs.is_empty(),
                    "operator {} is in no committee",
                    op.id
                );
                continue;
            }
            assert_eq!(share_recs.len(), 9);
            for rec in share_recs {
                assert!(seen.insert((op.id, rec.validator_pubkey)));
                let pos = rec.operator_ids.iter().position(|o| *o == op.id).unwrap();
                let sk = decrypt_share(&op.key, &rec.encrypted_share, &rec.share_pubkeys[pos])
                    .expect("decrypts with the operator's key");
                shares_by_op.insert((rec.validator_index.unwrap(), op.id), sk);
            }
        }
        for v in &setup.validators {
            let pk = v.secret.public_key();
            // Every quorum (3 of 4) reconstructs a signature the validator key verifies.
            for skip in 1..=4u64 {
                let partials: Vec<_> = (1..=4u64)
                    .filter(|o| *o != skip)
                    .map(|o| (o, shares_by_op[&(v.index, o)].sign(&root)))
                    .collect();
                let sig = reconstruct_signature(&partials, &cache).expect("reconstruct");
                sig.verify(&pk, &root)
                    .expect("verifies under the validator key");
            }
            // Two shares are not enough.
            let two: Vec<_> = [1u64, 2]
                .iter()
                .map(|o| (*o, shares_by_op[&(v.index, *o)].sign(&root)))
                .collect();
            let sig = reconstruct_signature(&two, &cache).expect("combines");
            assert!(sig.verify(&pk, &root).is_err());
        }
    }

    #[test]
    fn every_validator_lands_in_exactly_one_committee() {
        // 1001 validators need 3 committees; 8 operators give two consecutive groups and one
        // more subset.
        let setup = Setup::generate(8, 1001, 4, 1).expect("set-up");
        assert_eq!(setup.committees.len(), 3);
        let mut per_validator = vec![0usize; 1001];
        let mut per_committee = vec![0usize; 3];
        for (c, ids) in setup.committees.iter().enumerate() {
            for v in setup.validators.iter().filter(|v| v.committee == c) {
                per_validator[v.index as usize] += 1;
                per_committee[c] += 1;
                assert_eq!(v.shares.len(), expected_shares_len(ids.len()));
            }
        }
        assert!(per_validator.iter().all(|n| *n == 1));
        assert_eq!(per_committee, vec![334, 334, 333], "round-robin");
        // Operator 1 is in committees 0 and 2: its store gets both.
        let ops = setup.store_ops(1).expect("ops");
        let committees = ops
            .iter()
            .filter(|o| matches!(o, WriteOp::PutCommittee(_)))
            .count();
        let shares = ops
            .iter()
            .filter(|o| matches!(o, WriteOp::PutShare(_)))
            .count();
        assert_eq!((committees, shares), (2, 334 + 333));
    }

    #[test]
    fn configs_parse_and_stores_open() {
        let dir = std::env::temp_dir().join(format!(
            "ssv-devnet-unit-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let setup = Setup::generate(4, 3, 4, 5).expect("set-up");
        let enr =
            ssv_netio::Bootnode::start(ssv_netio::NetworkKey::generate(), Ipv4Addr::LOCALHOST, 0)
                .expect("bootnode")
                .enr()
                .to_base64();
        let gvr = genesis_validators_root(5);
        for id in 1..=4 {
            let op_dir = dir.join(format!("op{id}"));
            let text = node_config(&op_dir, id, "http://127.0.0.1:5052", &enr, 2, id == 2)
                .expect("config text");
            let path = prepare_operator(&setup, &op_dir, id, gvr, &text, true).expect("prepared");
            let cfg = Config::load(&path, &Overrides::default()).expect("config loads");
            assert_eq!(cfg.data_dir, op_dir);
            assert_eq!(cfg.operator_id, Some(id));
            assert_eq!(cfg.shards, 2);
            assert!(!cfg.pin_shards);
            assert_eq!(cfg.p2p.ip, Ipv4Addr::LOCALHOST);
            assert_eq!((cfg.p2p.tcp_port, cfg.p2p.udp_port), (0, 0));
            assert_eq!(cfg.p2p.bootnodes, vec![enr.clone()]);
            assert_eq!(cfg.fault.is_some(), id == 2);
            let crate::config::OperatorKey::Plain(key_path) = &cfg.operator_key else {
                panic!("plain key expected");
            };
            let pem = std::fs::read_to_string(key_path).expect("key file");
            let key = OperatorSecretKey::from_pem(&pem).expect("key parses");
            assert_eq!(
                key.public_key().to_base64_pem(),
                setup.operators[(id - 1) as usize]
                    .key
                    .public_key()
                    .to_base64_pem()
            );
            // The store holds the committee and the three shares.
            let store = Store::open(StoreConfig::new(op_dir.join("db"), gvr)).expect("reopen");
            let map = store.load_committees().expect("committees");
            assert_eq!(map.committees.len(), 1);
            for v in &setup.validators {
                let rec = store.share(&v.pubkey).expect("read").expect("stored");
                assert_eq!(rec.validator_index, Some(v.index));
                assert!(rec.secret_share.is_none());
            }
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn bad_arguments_are_refused() {
        let good = DevnetArgs {
            execution_endpoint: None,
            operators: 4,
            validators: 8,
            slots: 4,
            slot_ms: 1000,
            committee_size: 4,
            json_summary: None,
            data_dir: None,
            keep_data: false,
            kill_operator: None,
            kill_at_slot: None,
            faulty_operator: None,
            shards_per_node: 1,
            seed: 1,
            start_delay_ms: None,
        };
        good.validate().expect("good");
        let cases = [
            (
                DevnetArgs {
                    operators: 3,
                    ..good.clone()
                },
                "at least 4 operators",
            ),
            (
                DevnetArgs {
                    kill_operator: Some(5),
                    kill_at_slot: Some(1),
                    ..good.clone()
                },
                "not an operator",
            ),
            (
                DevnetArgs {
                    kill_operator: Some(1),
                    kill_at_slot: Some(4),
                    ..good.clone()
                },
                "past the last slot",
            ),
            (
                DevnetArgs {
                    faulty_operator: Some(0),
                    ..good.clone()
                },
                "not an operator",
            ),
        ];
        for (args, want) in cases {
            let e = args.validate().expect_err(want).to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(parse_committee_size("5").is_err());
        assert!(parse_committee_size("x").is_err());
        assert_eq!(parse_committee_size("13"), Ok(13));
    }

    #[test]
    fn summary_verdicts() {
        let mut s = Summary {
            slots: 2,
            slot_ms: 1000,
            first_slot: 32,
            operators: 4,
            validators: 8,
            committees: 1,
            committee_size: 4,
            attestations_expected: 4,
            attestations_valid: 4,
            attestations_invalid: 0,
            attestations_late: 0,
            sync_messages_expected: 2,
            sync_messages_valid: 2,
            sync_messages_invalid: 0,
            sync_messages_late: 0,
            missed: 0,
            duty_latency_ms_p50: 1,
            duty_latency_ms_p99: 2,
            duty_latency_ms_max: 3,
            node_counters: BTreeMap::from([
                ("ssv_messages_in".to_string(), 100),
                ("ssv_signatures_reconstructed".to_string(), 10),
            ]),
            node_seconds: 10.0,
            killed_operator: Some(4),
            kill_at_slot: Some(1),
            faulty_operator: None,
            operator_exits: vec![
                OperatorSummary {
                    id: 1,
                    status: NodeState::Stopped("exit status 0".into()).describe(),
                    clean: true,
                    log: "op1/node.log".into(),
                },
                OperatorSummary {
                    id: 4,
                    status: NodeState::Killed { slot: 1 }.describe(),
                    clean: true,
                    log: "op4/node.log".into(),
                },
            ],
            data_dir: "d".into(),
            passed: true,
            failure: None,
        };
        assert_eq!(s.failure(), None);
        assert!(s.table().contains("PASS"));
        assert!(
            s.table()
                .contains("10 gossip messages/s in, 1 signatures/s reconstructed"),
            "{}",
            s.table()
        );
        s.sync_messages_valid = 1;
        assert!(s.failure().unwrap().contains("1 of 2"));
        s.sync_messages_valid = 2;
        s.missed = 1;
        assert!(s.failure().unwrap().contains("missed"));
        s.missed = 0;
        s.operator_exits[0].status = NodeState::Stopped("exit status 1".into()).describe();
        s.operator_exits[0].clean = false;
        assert!(s.failure().unwrap().contains("operator 1"));
        assert!(s.table().contains("FAIL"));
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[5], 99), 5);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&v, 100), 100);
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ssv-devnet-{name}-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// An executable shell script standing in for `ssv-node` (it ignores `start --config`).
    fn fake_node(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("fake-node");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn is_running(pid: u32) -> bool {
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    #[test]
    fn a_node_exiting_early_is_reported_with_its_log() {
        let dir = scratch_dir("early");
        let exe = fake_node(&dir, "echo \"bad config: no such key\" >&2; exit 3");
        let log = dir.join("node.log");
        let mut nodes =
            Nodes::spawn(&exe, &[(7, dir.join("config.toml"), log.clone())]).expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            match nodes.check() {
                Err(e) => break e.to_string(),
                Ok(()) if Instant::now() < deadline => std::thread::sleep(CHILD_POLL_INTERVAL),
                Ok(()) => panic!("the node did not exit"),
            }
        };
        assert!(
            err.contains("operator 7 exited early: exit status 3"),
            "{err}"
        );
        assert!(err.contains("bad config: no such key"), "{err}");
        assert_eq!(nodes.alive(), 0);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn dropping_the_nodes_kills_them_and_stop_sends_sigterm() {
        let dir = scratch_dir("guard");
        // Exits 0 on SIGTERM, like the node; otherwise runs until killed.
        let exe = fake_node(&dir, "trap 'exit 0' TERM\nwhile :; do sleep 0.1; done");
        let spec: Vec<_> = (1..=2)
            .map(|id| {
                (
                    id,
                    dir.join("config.toml"),
                    dir.join(format!("node{id}.log")),
                )
            })
            .collect();
        let nodes = Nodes::spawn(&exe, &spec).expect("spawn");
        let pids: Vec<u32> = nodes.procs.iter().map(|p| p.child.id()).collect();
        assert!(pids.iter().all(|p| is_running(*p)));
        drop(nodes);
        assert!(pids.iter().all(|p| !is_running(*p)), "killed and reaped");

        let mut nodes = Nodes::spawn(&exe, &spec).expect("spawn");
        nodes.kill(2, 0).expect("kill");
        // Give the shell time to install its trap.
        std::thread::sleep(Duration::from_millis(300));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(nodes.stop());
        assert_eq!(
            nodes.procs[0].state,
            NodeState::Stopped("exit status 0".into())
        );
        assert!(nodes.procs[0].state.is_clean() && nodes.procs[1].state.is_clean());
        assert_eq!(nodes.procs[1].state, NodeState::Killed { slot: 0 });
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn metrics_address_and_counters_are_read() {
        let dir = scratch_dir("metrics");
        let log = dir.join("node.log");
        std::fs::write(
            &log,
            "2026-11-21T14:04:59Z  INFO ssv_node::runtime: metrics on http://127.0.0.1:41234/metrics\n\
             later line\n",
        )
        .expect("log");
        assert_eq!(
            metrics_url(&log).as_deref(),
            Some("http://127.0.0.1:41234/metrics")
        );
        std::fs::write(&log, "no address here\n").expect("log");
        assert_eq!(metrics_url(&log), None);
        let c = parse_counters(
            "# HELP ssv_messages_in x\n# TYPE ssv_messages_in counter\nssv_messages_in 68\n\
             ssv_decided 7\nbroken line\nssv_bad nan\n",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c["ssv_messages_in"], 68);
        assert_eq!(c["ssv_decided"], 7);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let path = std::env::temp_dir().join(format!(
            "ssv-devnet-tail-{}-{}.log",
            std::process::id(),
            now_ms()
        ));
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).expect("write");
        let tail = log_tail(&path);
        assert_eq!(tail.lines().count(), LOG_TAIL_LINES);
        assert!(tail.ends_with("line 99\n") && !tail.contains("line 79\n"));
        std::fs::remove_file(&path).expect("cleanup");
        assert!(log_tail(&path).contains("cannot read"));
    }
}
