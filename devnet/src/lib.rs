//! `ssv-node devnet`: the whole system on one machine in one command.
//!
//! The devnet generates operator RSA keys and validator BLS keys, splits every validator key
//! into threshold shares for committees of `--committee-size` operators and seeds each
//! operator's MDBX store with what contract sync would have stored for it: every operator,
//! the committees, and one share record per validator of its committees, carrying its own
//! share RSA-encrypted as in the `ValidatorAdded` `shares` payload. It then starts the
//! beacon-chain simulator ([`sim`], in this process), an `ssv-node bootnode` child process
//! ([`bootnode_proc`]) for discovery, optionally an exporter (`--exporter`), and
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
//! DIR/bootnode/              the bootnode's key and log (bootnode.log)
//! DIR/exporter/              with --exporter: its config, store (every committee: seeded, or
//!                            by contract sync with --execution-endpoint) and log
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
use std::time::{Duration, Instant};

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

use ssv_eth_sync::shares::{
    ENCRYPTED_SHARE_LEN, expected_shares_len, share_plaintext, sign_owner_nonce, split_shares,
};
use ssv_protocol::chain::SlotClock;

pub mod beacon_objects;
pub mod bootnode_proc;
pub mod chain;
pub mod hostile;
pub mod live;
pub mod process;
pub mod setup;
pub mod sim;
pub mod sim_signing;
pub mod summary;

use process::NodeState;
pub use process::{Nodes, log_tail};
use setup::prepare_operator;
pub use setup::{
    NodeEth1Section, OperatorKeys, Setup, ValidatorKeys, committee_count, committees, node_config,
    node_config_doppelganger, node_config_eth1, start_delay,
};
pub use sim::SimFault;
use sim::{
    BeaconSim, EPOCHS_PER_SYNC_COMMITTEE_PERIOD, SLOTS_PER_EPOCH, SimConfig, SimStats,
    SimValidator, genesis_validators_root,
};
use summary::node_counters;
pub use summary::{
    LaggingNodeReport, OperatorSummary, Summary, api_url, metrics_url, parse_counters, percentile,
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
/// Most glommio shards per node (`--shards-per-node`; the nodes share this machine's cores).
pub const SHARDS_PER_NODE_MAX: u64 = 64;
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
/// Peak RSS a node may reach under `--hostile-peer` (an idle devnet node takes about 100 MB;
/// the shard queues are bounded at 64 MiB each and fat messages are dropped before them
/// once their sender is over its byte budget).
pub const HOSTILE_RSS_MAX_MB: u64 = 768;
/// The devnet nodes' domain (`ssv-node`'s local network).
pub const DEVNET_DOMAIN: ssv_netio::DomainType = ssv_netio::DomainType([0x00, 0x00, 0x31, 0x37]);
/// How far behind the chain `--lagging-beacon-node` lags, in slots: four times the nodes'
/// tolerance ([`ssv_beacon_api::health::SYNC_DISTANCE_TOLERANCE`]), and less than the slots
/// before the first counted one (the chain starts at slot 32), so its stale head is a real
/// block of the chain.
pub const LAGGING_SYNC_DISTANCE: u64 = 16;
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
    /// Make the simulated beacon node lie or misbehave. The run then passes when no
    /// slashable attestation was submitted (the simulator checks every correctly signed one)
    /// and every node is still running — for `spec-zero`, when every node refused to start
    /// with a clear line; missed duties are expected and allowed.
    #[arg(long, value_enum)]
    pub beacon_fault: Option<SimFault>,
    /// Restart `--kill-operator` this many milliseconds after it was killed, from its own
    /// data directory (its log continues in the same file).
    #[arg(long, requires = "kill_operator",
          value_parser = clap::value_parser!(u64).range(0..=START_DELAY_MAX.as_millis() as u64))]
    pub restart_after_ms: Option<u64>,
    /// The `ssv-node` binary the nodes run (default: this one), to run the harness against
    /// another build.
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    /// Make the simulated chain reorganise at this chain slot: the proposers of the rest of
    /// its epoch are drawn again, and the nodes must fetch the epoch's proposer duties again
    /// (their dependent root changes in the head events).
    #[arg(long)]
    pub reorg_at_slot: Option<u64>,
    /// Make the simulated chain go through a fork (a new fork version, so new signing
    /// domains) at this epoch. Counting starts at epoch 1 (slot 32): a run crosses the fork
    /// when `--slots` reaches past `32 * (fork_epoch - 1)` (e.g. `--fork-epoch 2 --slots 40`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub fork_epoch: Option<u64>,
    /// Raise the simulator's duty rates so that a short run sees every duty type: every
    /// slot's proposer is one of the devnet's validators (mainnet-like otherwise: one
    /// proposer per slot among a million validators).
    #[arg(long)]
    pub all_duties: bool,
    /// Add a hostile peer on the committees' subnets that floods them from the first counted
    /// slot (junk, replays with fresh full data, bad signatures, 4 MiB messages), and an
    /// observer that counts any of its messages an honest node relays. The run then passes
    /// only if every duty is still valid, nothing of the attacker's was relayed, the attacker
    /// ends graylisted (no peer left) and every node's peak RSS stays under
    /// [`HOSTILE_RSS_MAX_MB`].
    #[arg(long)]
    pub hostile_peer: bool,
    /// With --execution-endpoint: change the registry while the nodes run (validators
    /// added by a second owner, removed, an exit requested, a fee recipient updated, a
    /// cluster liquidated and reactivated; see `ssv_devnet::live`) and check from the
    /// simulator's record that each change took effect in its first eligible slot, with no
    /// restart.
    #[arg(long)]
    pub live_registry: bool,
    /// Turn doppelganger protection on in every node, with [`DEVNET_DOPPELGANGER_EPOCHS`]
    /// detection epoch: the nodes sign nothing in epoch 0 and, from the first counted slot
    /// (epoch 1, once epoch 0's liveness is checked), sign for every validator not live
    /// elsewhere.
    #[arg(long)]
    pub doppelganger: bool,
    /// The first N validators (indices 0..N) are live elsewhere: the simulator reports them
    /// live in every epoch and does not expect their duties of the nodes; any submission for
    /// one of them fails the run. With `--doppelganger` none may be made.
    #[arg(long, default_value_t = 0)]
    pub live_elsewhere: u64,
    /// Serve the simulated chain on a second listener as a beacon node that lags
    /// [`LAGGING_SYNC_DISTANCE`] slots behind (it says it is syncing; its attestation data and
    /// head events are those of its stale head), listed *first* in every node's
    /// `beacon_nodes`, the in-sync listener second. The run then also requires that the nodes
    /// probed the lagging node and sent it no request but probes and head-event
    /// subscriptions.
    #[arg(long)]
    pub lagging_beacon_node: bool,
    /// Run an exporter (`ssv-node start` in exporter mode, `DIR/exporter/`) beside the
    /// operators: it validates and stores every decided instance and serves them on its API
    /// (the address is in its log); it must still be running at the end. With
    /// `--execution-endpoint` it follows the contract by contract sync, as the operators do
    /// (with `--live-registry`, the registry changes reach it while it runs).
    #[arg(long)]
    pub exporter: bool,
    /// One `ssv-node start` process hosts operators 1 and 2 (two `[[operators]]` entries,
    /// `DIR/op1/`); the other operators run alone. Every duty must still be valid, and the
    /// shared process decides as both operators.
    #[arg(long)]
    pub host_two_operators: bool,
}

/// Detection epochs of the nodes under `--doppelganger`: the chain starts at genesis and the
/// count at epoch 1, so one epoch (epoch 0, checked at the first slot of epoch 1) is what
/// lets every validator not live elsewhere sign in every counted slot; more would keep them
/// in detection into the counted slots, and their duties would count as missed.
pub const DEVNET_DOPPELGANGER_EPOCHS: u64 = 1;

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
        ensure!(
            self.live_elsewhere < self.validators,
            "--live-elsewhere {} leaves no validator for the nodes (--validators {})",
            self.live_elsewhere,
            self.validators
        );
        if self.host_two_operators {
            ensure!(
                self.execution_endpoint.is_none(),
                "--host-two-operators runs from seeded databases: contract sync keeps one \
                 operator's shares, so it cannot be combined with --execution-endpoint"
            );
            for (flag, id) in [
                ("--kill-operator", self.kill_operator),
                ("--faulty-operator", self.faulty_operator),
            ] {
                ensure!(
                    id != Some(2),
                    "{flag} 2: with --host-two-operators operator 2 runs in operator 1's \
                     process (name operator 1)"
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
        if self.live_registry {
            ensure!(
                self.execution_endpoint.is_some(),
                "--live-registry changes the registry through the contract: it needs \
                 --execution-endpoint"
            );
            ensure!(
                self.validators >= live::VALIDATORS_MIN && self.validators <= 500,
                "--live-registry needs {}..=500 validators (one committee), got {}",
                live::VALIDATORS_MIN,
                self.validators
            );
            ensure!(
                self.slots >= live::SLOTS_MIN,
                "--live-registry needs at least {} slots, got {}",
                live::SLOTS_MIN,
                self.slots
            );
        }
        Ok(())
    }
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
                SlotClock::now_ms()
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
        let f = c.len() - ssv_protocol::types::quorum(c.len());
        if members > f {
            eprintln!(
                "devnet: warning: committee {c:?} has {members} killed or faulty operators and \
                 tolerates {f}; its duties after the kill will be missed"
            );
        }
    }
}

/// Attestation and sync duties of chain slots `first..=last` expected of the nodes (not
/// those of validators live elsewhere).
fn expected_through(sim: &BeaconSim, first: u64, last: u64) -> (u64, u64) {
    let mut att = 0;
    let mut sync = 0;
    let mut epoch = first / SLOTS_PER_EPOCH;
    while epoch * SLOTS_PER_EPOCH <= last {
        att += sim
            .attester_duties(epoch)
            .iter()
            .filter(|d| {
                (first..=last).contains(&d.slot) && !sim.is_live_elsewhere(d.validator_index)
            })
            .count() as u64;
        let slots_in =
            (epoch * SLOTS_PER_EPOCH).max(first)..=((epoch + 1) * SLOTS_PER_EPOCH - 1).min(last);
        let n = slots_in.end() + 1 - slots_in.start();
        sync += n * sim
            .sync_committee(epoch / EPOCHS_PER_SYNC_COMMITTEE_PERIOD)
            .iter()
            .filter(|i| !sim.is_live_elsewhere(**i))
            .count() as u64;
        epoch += 1;
    }
    (att, sync)
}

/// How long `spec-zero` nodes get to refuse to start.
pub const SPEC_REFUSAL_TIMEOUT: Duration = Duration::from_secs(60);
/// What a node's log says when it refuses the beacon node's chain spec.
pub const SPEC_REFUSAL_LINE: &str = "the beacon node's chain spec";

/// Waits until every node has exited (at most `timeout`), and returns how many exited
/// non-zero with [`SPEC_REFUSAL_LINE`] in their log; a node still running then is an error.
async fn await_refusals(
    nodes: &mut Nodes,
    timeout: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + timeout;
    while nodes.alive() > 0 {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted (Ctrl-C); the nodes were stopped");
        }
        if Instant::now() > deadline {
            nodes.stop().await;
            bail!("nodes still running {timeout:?} after being served SECONDS_PER_SLOT 0");
        }
        let _ = nodes.check();
        tokio::time::sleep(CHILD_POLL_INTERVAL).await;
    }
    Ok(nodes
        .procs
        .iter()
        .filter(|p| {
            matches!(p.state, NodeState::ExitedEarly(_))
                && std::fs::read_to_string(&p.log).is_ok_and(|l| l.contains(SPEC_REFUSAL_LINE))
        })
        .count() as u64)
}

/// Waits until `target_ms` (Unix time), checking the nodes and Ctrl-C meanwhile.
async fn wait_until(target_ms: u64, nodes: &mut Nodes, stop: &AtomicBool) -> anyhow::Result<()> {
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted (Ctrl-C); the nodes were stopped");
        }
        nodes.check()?;
        let now = SlotClock::now_ms();
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
    // Node processes: operator 2 runs in operator 1's under --host-two-operators.
    let n = args.operators - u64::from(args.host_two_operators);
    let last = first + args.slots - 1;
    let slot_start = |s: u64| genesis_ms + s * args.slot_ms;
    let mut restart_at: Option<(u64, u64)> = None;
    for rel in 0..args.slots {
        let slot = first + rel;
        wait_until(slot_start(slot), nodes, interrupted).await?;
        if args.kill_at_slot == Some(rel)
            && let Some(id) = args.kill_operator
        {
            nodes.kill(id, rel)?;
            println!("slot {slot:>5} ({rel}): killed operator {id} (SIGKILL)");
            if let Some(ms) = args.restart_after_ms {
                restart_at = Some((id, SlotClock::now_ms() + ms));
            }
        }
        // Wait for the slot's end, restarting the killed operator on time.
        if let Some((id, at)) = restart_at
            && at < slot_start(slot + 1)
        {
            wait_until(at, nodes, interrupted).await?;
            nodes.restart(id)?;
            println!("slot {slot:>5} ({rel}): restarted operator {id} from its data directory");
            restart_at = None;
        }
        wait_until(slot_start(slot + 1), nodes, interrupted).await?;
        let s = sim.stats();
        let (att_exp, sync_exp) = expected_through(sim, first, slot);
        println!(
            "slot {slot:>5} ({}/{}): attestations {}/{} valid, sync {}/{} valid, invalid {}, \
             missed {}, node processes alive {}/{n}",
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

/// The arguments of `ssv-node beacon-sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct BeaconSimArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:5052")]
    pub listen: SocketAddr,
    /// JSON file of the validators: `[{"index": "0", "pubkey": "0x…"}, …]`.
    #[arg(long)]
    pub validators_file: PathBuf,
    /// Slot duration in milliseconds (mainnet: 12000).
    #[arg(long, default_value_t = 12_000,
          value_parser = clap::value_parser!(u64).range(SLOT_MS_MIN..=SLOT_MS_MAX))]
    pub slot_ms: u64,
    /// Print the counters every this many slots.
    #[arg(long, default_value_t = 1)]
    pub stats_every: u64,
}

/// `ssv-node beacon-sim`: serves the simulator until Ctrl-C, printing its counters.
pub fn run_beacon_sim(args: BeaconSimArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the simulator's runtime")?;
    rt.block_on(beacon_sim(args))
}

/// One entry of `--validators-file`.
#[derive(serde::Deserialize)]
struct ValidatorLine {
    #[serde(with = "ssv_protocol::json::u64_str")]
    index: u64,
    #[serde(with = "ssv_protocol::json::hex_bytes")]
    pubkey: [u8; 48],
}

async fn beacon_sim(args: BeaconSimArgs) -> anyhow::Result<()> {
    let BeaconSimArgs {
        listen,
        validators_file: file,
        slot_ms,
        stats_every: every,
    } = args;
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
            secret: None,
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
                "slot {:>6}  attestations {}/{} valid ({} invalid, {} late)  sync {}/{} valid  blocks {}/{} valid  missed {}",
                s.slot,
                s.attestations_valid,
                s.attestations_expected,
                s.attestations_invalid,
                s.attestations_late,
                s.sync_messages_valid,
                s.sync_messages_expected,
                s.proposals_valid,
                s.proposals_expected,
                s.missed
            );
        }
    }
    Ok(())
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
    let exe = match &args.node_binary {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("locating the ssv-node binary")?,
    };
    let t0 = Instant::now();
    let chain = match &args.execution_endpoint {
        Some(url) => Some(crate::chain::DevChain::deploy(url).await?),
        None => None,
    };
    let mut setup = {
        let (n, v, k, seed) = (n, args.validators, args.committee_size, args.seed);
        let owner = chain.as_ref().map(|c| c.owner);
        tokio::task::spawn_blocking(move || match owner {
            Some(o) => Setup::generate_for_owner(n, v, k, seed, o),
            None => Setup::generate(n, v, k, seed),
        })
        .await
        .context("set-up task")??
    };
    let owner2 = match (&chain, args.live_registry) {
        (Some(c), true) => Some(live::prepare(c, &mut setup).await?),
        _ => None,
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
                follow_distance: if args.live_registry {
                    live::FOLLOW_DISTANCE
                } else {
                    0
                },
                poll_interval_ms: args.live_registry.then_some(live::POLL_MS),
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

    // Discovery runs through an `ssv-node bootnode` process, as on a real network.
    let bootnode = bootnode_proc::BootnodeProcess::start(&exe, &dir.join("bootnode"))
        .await
        .context("starting the bootnode")?;
    let enr = bootnode.enr().to_owned();
    eprintln!(
        "devnet: discovery through ssv-node bootnode process {} (ENR served at {})",
        bootnode.pid(),
        bootnode.http_url()
    );

    // The simulator's listener comes first (the configs name its port); its chain starts
    // when the stores are seeded, the start delay after the nodes are started.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("binding the simulator's port")?;
    let sim_addr = listener.local_addr().context("simulator address")?;
    let beacon_url = format!("http://{sim_addr}");
    let lagging_listener = if args.lagging_beacon_node {
        Some(
            tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .await
                .context("binding the lagging beacon node's port")?,
        )
    } else {
        None
    };
    let lagging_url = match &lagging_listener {
        Some(l) => Some(format!(
            "http://{}",
            l.local_addr().context("lagging beacon node address")?
        )),
        None => None,
    };
    // The lagging node first: it must be failed over from, not merely never reached.
    let beacon_urls: Vec<&str> = lagging_url
        .as_deref()
        .into_iter()
        .chain([beacon_url.as_str()])
        .collect();
    let gvr = genesis_validators_root(args.seed);
    if args.all_duties {
        // Two exit requests (the last validators), as contract sync would have stored them.
        setup.exit_requests = (args.validators.saturating_sub(2)..args.validators).collect();
    }
    let setup = Arc::new(setup);
    let mut nodes_to_start = Vec::new();
    for id in 1..=n {
        // `--host-two-operators`: operator 2 runs in operator 1's process.
        let hosted: Vec<u64> = match (args.host_two_operators, id) {
            (true, 1) => vec![1, 2],
            (true, 2) => continue,
            _ => vec![id],
        };
        let op_dir = dir.join(format!("op{id}"));
        let text = setup::node_config_hosting(
            &op_dir,
            &hosted,
            &beacon_urls,
            &enr,
            args.shards_per_node,
            args.faulty_operator == Some(id),
        )?;
        let text = match &eth1 {
            Some(e) => node_config_eth1(&text, e)?,
            None => text,
        };
        let text = if args.doppelganger {
            node_config_doppelganger(&text, DEVNET_DOPPELGANGER_EPOCHS)?
        } else {
            text
        };
        let s = Arc::clone(&setup);
        let d = op_dir.clone();
        let seed_store = eth1.is_none();
        let config = tokio::task::spawn_blocking(move || {
            prepare_operator(&s, &d, &hosted, gvr, &text, seed_store)
        })
        .await
        .context("seeding task")??;
        nodes_to_start.push((id, config, op_dir.join("node.log")));
    }

    let exporter_to_start = if args.exporter {
        let ex_dir = dir.join("exporter");
        let text = setup::node_config_exporter(&ex_dir, &beacon_urls, &enr, args.shards_per_node)?;
        // On a chain the exporter learns the registry by contract sync, as the operators do
        // (and follows it while it runs); otherwise its store is seeded.
        let (text, seed_store) = match &eth1 {
            Some(e) => (node_config_eth1(&text, e)?, false),
            None => (text, true),
        };
        let s = Arc::clone(&setup);
        let d = ex_dir.clone();
        let config = tokio::task::spawn_blocking(move || {
            setup::prepare_exporter(&s, &d, gvr, &text, seed_store)
        })
        .await
        .context("exporter seeding task")??;
        Some((0, config, ex_dir.join("node.log")))
    } else {
        None
    };

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
    cfg.fault = args.beacon_fault;
    if args.all_duties {
        cfg.network_validators = args.validators;
        cfg.exit_requests = setup.exit_requests.clone();
    }
    cfg.fork_epoch = args.fork_epoch;
    cfg.reorg_at = args.reorg_at_slot;
    if args.live_registry {
        // Every validator syncs every slot: a per-slot record of who is run.
        cfg.sync_committee_size = Some(args.validators as usize);
        cfg.exit_requests = vec![live::EXITING];
        let deposit = cfg.first_slot + live::ADD_AT + live::DEPOSIT_DELAY_SLOTS;
        cfg.deposits_at = setup.late.iter().map(|v| (*v, deposit)).collect();
        cfg.exits_at = [(live::BEACON_EXITED, cfg.first_slot + live::BEACON_EXIT_AT)]
            .into_iter()
            .collect();
    }
    cfg.live_elsewhere = (0..args.live_elsewhere).collect();
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
    let (stop_lagging, stop_lagging_rx) = tokio::sync::oneshot::channel::<()>();
    let lagging = match lagging_listener {
        Some(l) => {
            let view = sim.lagging(LAGGING_SYNC_DISTANCE);
            view.clone()
                .serve_view(l, async move {
                    let _ = stop_lagging_rx.await;
                })
                .context("serving the lagging beacon node")?;
            Some(view)
        }
        None => None,
    };

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
    let mut exporter = match &exporter_to_start {
        Some(e) => {
            eprintln!("devnet: exporter started (log: {})", e.2.display());
            Some(Nodes::spawn(&exe, std::slice::from_ref(e))?)
        }
        None => None,
    };
    let started = Instant::now();
    let hostile = if args.hostile_peer {
        let mut subnets = ssv_netio::Subnets::NONE;
        for ops in &setup.committees {
            let subnet = ssv_protocol::committee::CommitteeId::from_operators(ops).subnet();
            subnets.insert(ssv_netio::Subnet::new(subnet as usize)?);
        }
        let boot: ssv_netio::Enr = bootnode
            .enr()
            .parse()
            .map_err(|e| anyhow::anyhow!("the bootnode's ENR: {e}"))?;
        let h = tokio::task::block_in_place(|| {
            crate::hostile::Hostile::start(DEVNET_DOMAIN, &boot, subnets)
        })
        .context("starting the hostile peer")?;
        eprintln!(
            "devnet: hostile peer {} joins the committees' subnets",
            h.attacker_id()
        );
        Some(h)
    } else {
        None
    };
    if let Some(url) = &lagging_url {
        eprintln!(
            "devnet: lagging beacon node ({LAGGING_SYNC_DISTANCE} slots behind) on {url}, \
             listed first in every node's beacon_nodes"
        );
    }
    eprintln!(
        "devnet: beacon simulator on {beacon_url}, {n} nodes started (logs: {}/op<ID>/node.log); \
         first counted slot {first} in {:.1} s",
        dir.display(),
        slot_start(first).saturating_sub(SlotClock::now_ms()) as f64 / 1000.0
    );

    if args.beacon_fault == Some(SimFault::SpecZero) {
        let refused = await_refusals(&mut nodes, SPEC_REFUSAL_TIMEOUT, &interrupted).await;
        let _ = stop_sim.send(());
        drop(bootnode);
        return Ok(Summary::spec_refusal(
            args,
            dir,
            setup.committees.len(),
            first,
            &nodes,
            refused?,
        ));
    }
    if let Some(h) = &hostile {
        // The attack starts with the first counted slot (after the nodes have connected).
        let wait = slot_start(first).saturating_sub(SlotClock::now_ms());
        let attack = h.attack_handle();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            attack.start();
        });
    }
    let live_done = Arc::new(AtomicBool::new(false));
    let driver = match (&chain, owner2) {
        (Some(c), Some(owner2)) => Some(tokio::spawn(
            live::Driver::new(
                c.clone(),
                setup.clone(),
                owner2,
                first,
                genesis_ms,
                args.slot_ms,
            )
            .run(live_done.clone()),
        )),
        _ => None,
    };
    let ran = run_slots(args, &sim, &mut nodes, (first, genesis_ms), &interrupted).await;
    live_done.store(true, Ordering::Relaxed);
    let live_events = match driver {
        Some(d) => Some(live::joined(d.await)),
        None => None,
    };
    let node_peak_rss_mb = nodes.peak_rss_mb();
    let hostile_report = match hostile {
        Some(h) => Some(h.stop().await),
        None => None,
    };
    // On every path the nodes get SIGTERM and time to close their stores (on a panic, the
    // guard's Drop kills them instead).
    let stats: SimStats = sim.stats();
    let counters = node_counters(&nodes).await;
    let run_secs = started.elapsed().as_secs_f64();
    let exporter_ran = exporter.as_mut().map(|x| x.check());
    // The operators stop first: the exporter then has seen every instance they decided.
    nodes.stop().await;
    if let Some(x) = &mut exporter {
        x.stop().await;
    }
    let _ = stop_sim.send(());
    let _ = stop_lagging.send(());
    drop(bootnode);
    ran?;
    if let Some(r) = exporter_ran {
        r.context("the exporter")?;
    }

    let live_report = match live_events {
        Some(events) => Some(live::LiveReport::check(
            events?,
            &sim.submissions(),
            args.validators,
            (first, last),
            &sim,
        )),
        None => None,
    };
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
        genesis_ms,
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
        proposals_expected: stats.proposals_expected,
        proposals_valid: stats.proposals_valid,
        proposals_invalid: stats.proposals_invalid,
        proposals_late: stats.proposals_late,
        aggregations_expected: stats.aggregations_expected,
        aggregations_valid: stats.aggregations_valid,
        aggregations_invalid: stats.aggregations_invalid,
        aggregations_late: stats.aggregations_late,
        beacon_subscriptions: stats.beacon_subscriptions,
        sync_subscriptions: stats.sync_subscriptions,
        fee_recipients_prepared: stats.fee_recipients_prepared,
        preparations_invalid: stats.preparations_invalid,
        exits_expected: stats.exits_expected,
        exits_valid: stats.exits_valid,
        exits_invalid: stats.exits_invalid,
        contributions_expected: stats.contributions_expected,
        contributions_valid: stats.contributions_valid,
        contributions_invalid: stats.contributions_invalid,
        contributions_late: stats.contributions_late,
        registrations_expected: stats.registrations_expected,
        registrations_valid: stats.registrations_valid,
        registrations_invalid: stats.registrations_invalid,
        registrations_late: stats.registrations_late,
        missed: stats.missed,
        duty_latency_ms_p50: percentile(&lat, 50),
        duty_latency_ms_p99: percentile(&lat, 99),
        duty_latency_ms_max: lat.last().copied().unwrap_or(0),
        slashing_refusals: counters
            .get("ssv_slashing_refusals_total")
            .copied()
            .unwrap_or(0),
        beacon_duties_refused: counters
            .get("ssv_beacon_duties_refused_total")
            .copied()
            .unwrap_or(0),
        beacon_data_refused: counters
            .get("ssv_beacon_data_refused_total")
            .copied()
            .unwrap_or(0),
        node_counters: counters,
        node_seconds: run_secs,
        beacon_fault: args.beacon_fault,
        slashable_submissions: stats.slashable_submissions,
        slashable_examples: stats.slashable_examples.clone(),
        attestations_signed: stats.attestations_signed,
        restarted_operator: args.restart_after_ms.and(args.kill_operator),
        refused_to_start: 0,
        killed_operator: args.kill_operator,
        kill_at_slot: args.kill_at_slot,
        faulty_operator: args.faulty_operator,
        operator_exits: nodes.exits(),
        hostile: hostile_report,
        live: live_report,
        lagging_beacon_node: lagging.zip(lagging_url).map(|(view, url)| {
            let r = view.requests();
            LaggingNodeReport {
                url,
                sync_distance: LAGGING_SYNC_DISTANCE,
                syncing_requests: r.syncing,
                head_subscriptions: r.head_subscriptions,
                duty_requests: r.duties,
                other_requests: r.other,
            }
        }),
        node_peak_rss_mb,
        doppelganger: args.doppelganger,
        live_elsewhere: (0..args.live_elsewhere).collect(),
        live_elsewhere_duties: stats.live_elsewhere_duties,
        live_elsewhere_submissions: stats.live_elsewhere_submissions,
        live_elsewhere_examples: stats.live_elsewhere_examples.clone(),
        liveness_requests: stats.liveness_requests,
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
    use crate::summary::metrics_url;
    use ssv_crypto_pipeline::threshold::{LagrangeCache, reconstruct_signature};
    use ssv_eth_sync::shares::decrypt_share;
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
            SlotClock::now_ms()
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
            let text = node_config(&op_dir, id, &["http://127.0.0.1:5052"], &enr, 2, id == 2)
                .expect("config text");
            let path =
                prepare_operator(&setup, &op_dir, &[id], gvr, &text, true).expect("prepared");
            // The node's own parser checks this text too (`ssv-node`'s config tests load
            // `node_config` output); here the fields the devnet relies on.
            let text = std::fs::read_to_string(&path).expect("config file");
            let cfg: toml::Table = text.parse().expect("config is TOML");
            assert_eq!(cfg["data_dir"].as_str(), op_dir.to_str());
            assert_eq!(cfg["operator"]["id"].as_integer(), Some(id as i64));
            assert_eq!(cfg["shards"].as_integer(), Some(2));
            assert_eq!(cfg["pin_shards"].as_bool(), Some(false));
            assert_eq!(cfg["p2p"]["ip"].as_str(), Some("127.0.0.1"));
            assert_eq!(cfg["p2p"]["tcp_port"].as_integer(), Some(0));
            assert_eq!(cfg["p2p"]["udp_port"].as_integer(), Some(0));
            assert_eq!(cfg["p2p"]["bootnodes"].as_array().map(|b| b.len()), Some(1));
            assert_eq!(cfg.contains_key("fault"), id == 2);
            let key_path = op_dir.join(cfg["operator"]["key_file"].as_str().expect("key_file"));
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
            beacon_fault: None,
            restart_after_ms: None,
            node_binary: None,
            all_duties: false,
            hostile_peer: false,
            live_registry: false,
            lagging_beacon_node: false,
            exporter: false,
            host_two_operators: false,
            fork_epoch: None,
            reorg_at_slot: None,
            doppelganger: false,
            live_elsewhere: 0,
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
            (
                DevnetArgs {
                    live_elsewhere: 8,
                    ..good.clone()
                },
                "leaves no validator",
            ),
            (
                DevnetArgs {
                    host_two_operators: true,
                    execution_endpoint: Some("http://127.0.0.1:8545".into()),
                    ..good.clone()
                },
                "--host-two-operators runs from seeded databases",
            ),
            (
                DevnetArgs {
                    host_two_operators: true,
                    faulty_operator: Some(2),
                    ..good.clone()
                },
                "operator 2 runs in operator 1's process",
            ),
        ];
        assert!(
            DevnetArgs {
                host_two_operators: true,
                ..good.clone()
            }
            .validate()
            .is_ok()
        );
        for (args, want) in cases {
            let e = args.validate().expect_err(want).to_string();
            assert!(e.contains(want), "{e}");
        }
        // An exporter follows the contract as the operators do.
        DevnetArgs {
            exporter: true,
            execution_endpoint: Some("http://127.0.0.1:8545".into()),
            ..good.clone()
        }
        .validate()
        .expect("--exporter with --execution-endpoint");
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
            sync_messages_expected: 2,
            sync_messages_valid: 2,
            duty_latency_ms_p50: 1,
            duty_latency_ms_p99: 2,
            duty_latency_ms_max: 3,
            node_counters: BTreeMap::from([
                ("ssv_p2p_messages_in_total".to_string(), 100),
                ("ssv_signatures_reconstructed_total".to_string(), 10),
            ]),
            node_seconds: 10.0,
            attestations_signed: 4,
            killed_operator: Some(4),
            kill_at_slot: Some(1),
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
            ..Summary::default()
        };
        assert_eq!(s.failure(), None);
        assert!(s.table().contains("PASS"));
        assert!(
            s.table()
                .contains("10 gossip messages/s in, 1 signatures/s reconstructed"),
            "{}",
            s.table()
        );
        // A lagging beacon node must have been probed and asked nothing else.
        s.lagging_beacon_node = Some(LaggingNodeReport {
            url: "http://127.0.0.1:1".into(),
            sync_distance: LAGGING_SYNC_DISTANCE,
            syncing_requests: 0,
            head_subscriptions: 4,
            ..LaggingNodeReport::default()
        });
        assert!(s.failure().unwrap().contains("never probed"));
        if let Some(l) = &mut s.lagging_beacon_node {
            l.syncing_requests = 40;
            l.duty_requests = 1;
        }
        assert!(s.failure().unwrap().contains("1 duty and 0 other"));
        if let Some(l) = &mut s.lagging_beacon_node {
            l.duty_requests = 0;
        }
        assert_eq!(s.failure(), None);
        assert!(s.table().contains("40 health probes"), "{}", s.table());
        s.lagging_beacon_node = None;
        s.sync_messages_valid = 1;
        assert!(s.failure().unwrap().contains("1 of 2"));
        s.sync_messages_valid = 2;
        s.missed = 1;
        assert!(s.failure().unwrap().contains("missed"));
        s.missed = 0;
        // Against a lying beacon node missed duties are allowed, a slashable one never.
        s.beacon_fault = Some(SimFault::DuplicateDuty);
        s.missed = 5;
        assert_eq!(s.failure(), None);
        s.slashable_submissions = 1;
        s.slashable_examples = vec!["validator 3 at slot 40: double vote for target 1".into()];
        assert!(s.failure().unwrap().contains("SLASHABLE"));
        s.slashable_submissions = 0;
        // A submission for a validator live elsewhere fails any run.
        s.live_elsewhere_submissions = 2;
        assert!(
            s.failure()
                .unwrap()
                .contains("2 submissions for validators live elsewhere")
        );
        assert!(s.failure().unwrap().contains("protection is off"));
        s.doppelganger = true;
        assert!(!s.failure().unwrap().contains("protection is off"));
        s.live_elsewhere_submissions = 0;
        s.beacon_fault = Some(SimFault::SpecZero);
        assert!(s.failure().unwrap().contains("0 of 4 nodes refused"));
        s.refused_to_start = 4;
        assert_eq!(s.failure(), None);
        s.beacon_fault = None;
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
            SlotClock::now_ms()
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
        assert_eq!(api_url(&log), None);
        std::fs::write(
            &log,
            "x\n2026-11-21T14:05:00Z  INFO ssv_node::runtime: api on http://127.0.0.1:40001\n",
        )
        .expect("log");
        assert_eq!(api_url(&log).as_deref(), Some("http://127.0.0.1:40001"));
        std::fs::write(&log, "{\"message\":\"api on http://127.0.0.1:40002\"}\n").expect("log");
        assert_eq!(api_url(&log).as_deref(), Some("http://127.0.0.1:40002"));
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
            SlotClock::now_ms()
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
