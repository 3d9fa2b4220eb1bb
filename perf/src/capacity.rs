//! `ssv-perf capacity`: how many validators one host carries without missing duties.
//!
//! One operator node under test runs the real data plane — glommio shards with the committee
//! runners, inbound checks (SSZ, structure, membership, RSA), QBFT, the rayon crypto pool
//! (slashing protection in MDBX, share signing, reconstruction and same-root batch
//! verification) — exactly as `ssv-node start` wires it (`ssv_node::runtime`). The harness
//! plays everything else:
//!
//! - the other operators of every committee: before the measured window it prepares their
//!   QBFT proposal / prepare / commit messages and their post-consensus partial signatures for
//!   every slot, with real RSA and BLS signatures from their keys, and during the window
//!   publishes them from a second libp2p node on loopback, so they reach the node under test
//!   through gossipsub and the network layer's shard queues;
//! - the beacon node: duties as on mainnet (each validator attests once per epoch at a
//!   pseudo-random slot; sync-committee membership at the mainnet rate of 512 in about a
//!   million; proposals, aggregations, contributions and builder registrations at the rates
//!   of [`duties`]), the duty start of each slot, the blocks, aggregates and contributions
//!   the node fetches, and the submission endpoint, whose signatures are verified against the
//!   validators' full public keys after the window.
//!
//! `--committee-only` schedules the committee duties alone (attestations and sync-committee
//! messages), as the benchmark did before the other roles existed.
//!
//! Slots run back to back: slot `s + 1` starts when every duty of slot `s` is submitted (or
//! its deadline passed), so a run of a few slots takes seconds. Latency is measured per
//! validator duty from the slot's duty start to the node's submission.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::SeedableRng;
use rayon::prelude::*;
use ssv_crypto_pipeline::{
    HashToG2Cache, LagrangeCache, OperatorKeyCache, OperatorPublicKey, OperatorSecretKey,
    PublicKey, SecretKey, Signature, SignatureSet, split_secret_key, verify_sets,
};
use ssv_netio::{Network, NetworkConfig, Subnet, Subnets, ValidationResult};
use ssv_node::{
    CommitteeInfo, LiveRegistry, Metrics, NetworkIndex, OurOperators, Registry, RsaSigner,
    SUBMISSIONS_MAX, Services, ShardEvent, Shards, SlotClock, Submission, ValidatorShare,
    crypto_pool, shard_of, spawn_shards,
};
use ssv_protocol::beacon_vote::{BeaconVote, Checkpoint};
use ssv_protocol::chain::ChainSpec;
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::message::{MessageId, MsgType, SignedSsvMessage, SsvMessage};
use ssv_protocol::partial_sig::{
    PartialSigMsgType, PartialSignatureMessage, PartialSignatureMessages,
};
use ssv_protocol::qbft::{
    OperatorSigner, State, create_commit, create_prepare, create_proposal, hash_data_root,
    round_robin_proposer,
};
use ssv_protocol::runner::{CommitteeDuty, DutyKind, ValidatorDuty};
use ssv_protocol::signing::compute_signing_root;
use ssv_protocol::types::{CommitteeMember, CommitteeOperator, DomainType, OperatorId, quorum};
use ssv_storage::{Store, StoreConfig};
use tree_hash::TreeHash;

mod duties;
use duties::{Beacon, DutyType, Rates};

/// The simulated chain: mainnet's constants.
const CHAIN: ChainSpec = ChainSpec::MAINNET;
/// Slots per epoch.
const SLOTS_PER_EPOCH: u64 = CHAIN.slots_per_epoch();
/// One validator in this many is in the sync committee (mainnet: 512 of ~1,000,000).
pub const SYNC_COMMITTEE_ONE_IN: u64 = 2000;
/// The first simulated slot (epoch 10).
const FIRST_SLOT: u64 = 10 * SLOTS_PER_EPOCH;
/// Our operator ID.
const OUR_ID: OperatorId = 1;
/// A duty not submitted this long after its slot started is missed.
pub const DUTY_DEADLINE: Duration = Duration::from_secs(8);
/// The p99 latency target of `--find-max`.
pub const P99_TARGET_MS: f64 = 2000.0;
/// How long the two nodes get to connect and form meshes.
const MESH_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest validator count a run accepts.
pub const VALIDATORS_MAX: usize = 200_000;
/// Upper bound of the `--find-max` search.
pub const FIND_MAX_CEILING: usize = 200_000;
/// Most validators the SSV contract lets one operator ID run.
pub const OPERATOR_VALIDATORS_MAX: usize = 3_000;
/// Domain type of the benchmark network.
const DOMAIN: DomainType = DomainType([0, 0, 0x31, 0x38]);

/// Arguments of `ssv-perf capacity`.
#[derive(clap::Args, Debug, Clone)]
pub struct CapacityArgs {
    /// Validators run by the node under test.
    #[arg(long, default_value_t = 10_000)]
    pub validators: usize,
    /// Operators per committee (4, 7, 10 or 13).
    #[arg(long, default_value_t = 4)]
    pub operators: usize,
    /// Slots to measure.
    #[arg(long, default_value_t = 8)]
    pub slots: u64,
    /// Average validators per committee (mainnet clusters hold a few to hundreds).
    #[arg(long, default_value_t = 20)]
    pub validators_per_committee: usize,
    /// Shards of the node under test (default: one per core).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Crypto pool threads of the node under test (default: one per core).
    #[arg(long)]
    pub crypto_threads: Option<usize>,
    /// Operator IDs of the node under test (one process hosting several identities, as a
    /// large operator runs them): each committee holds exactly one of them, the validators are
    /// spread evenly over them, and each may run at most 3,000 (the contract's cap). Without
    /// it the node runs one operator ID and the cap is not applied (the host's capacity).
    #[arg(long)]
    pub operator_ids: Option<usize>,
    /// Two of our operator IDs in every committee (needs `--operator-ids` ≥ 2 and
    /// `--committee-only`): the node runs the committee once per member of ours, each signing
    /// as itself, and hands our messages to our other member as a peer would.
    #[arg(long)]
    pub shared_committees: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Search for the largest validator count with no missed duty and p99 ≤ 2000 ms.
    #[arg(long)]
    pub find_max: bool,
    /// Write a CPU flamegraph (SVG) of the measured window.
    #[arg(long)]
    pub flamegraph: Option<PathBuf>,
    /// Seed of the keys and the duty assignment.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Validators of the whole network: sets the proposal rate (ours propose V / N per slot)
    /// and the beacon committees' length (the aggregator rate).
    #[arg(long, default_value_t = 1_000_000)]
    pub network_validators: u64,
    /// Committee duties only (attestations, sync-committee messages): no proposals,
    /// aggregations, contributions or registrations.
    #[arg(long)]
    pub committee_only: bool,
    /// Deliver the other operators' messages from a second process (this binary's
    /// `capacity-peer`) over libp2p on loopback, so the measured process holds only the node.
    #[arg(long)]
    pub peer_process: bool,
    /// Registry churn while the node runs: N validators removed (the first N) and N added (N
    /// more, in new committees) at the middle slot, applied as the live registry applies
    /// contract events (the removed stopped at once; the added RSA-decrypted, force-bumped in
    /// slashing protection, then the registry published to the shards). Starts at the slot
    /// before; the JSON's `churn` says how long it took. The added validators' attestations
    /// are not expected in the epoch they were added in (the bump), their sync messages are.
    #[arg(long, default_value_t = 0)]
    pub churn: usize,
}

/// What `--churn` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChurnReport {
    /// Validators added.
    pub added: usize,
    /// Validators removed.
    pub removed: usize,
    /// Slot (of the run, 0-based) from which the new registry's duties were sent.
    pub at_slot: usize,
    /// From the removal to the new registry in every shard.
    pub apply_ms: f64,
    /// RSA decryption of the added shares.
    pub decrypt_ms: f64,
    /// The slashing-protection bump of the added validators.
    pub bump_ms: f64,
}

/// Arguments of the hidden `ssv-perf capacity-peer` (started by `capacity --peer-process`).
#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// The node's ENR.
    #[arg(long)]
    pub bootnode: String,
    /// File of prepared messages (written by the parent).
    #[arg(long)]
    pub messages: PathBuf,
    /// Subnets to join, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub subnets: Vec<usize>,
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Validators.
    pub validators: usize,
    /// Committees.
    pub committees: usize,
    /// Operators per committee.
    pub operators: usize,
    /// Slots measured.
    pub slots: u64,
    /// Whether only committee duties ran.
    pub committee_only: bool,
    /// Validators of the network (the rates of proposals and aggregations).
    pub network_validators: u64,
    /// Duties expected, every type (each submission the beacon node should get).
    pub duties_expected: u64,
    /// Duties submitted with a valid signature.
    pub duties_valid: u64,
    /// Submissions with an invalid signature.
    pub duties_invalid: u64,
    /// Duties not submitted (valid) within the deadline.
    pub missed: u64,
    /// Duty start → submission, median.
    pub duty_latency_ms_p50: f64,
    /// Duty start → submission, 99th percentile.
    pub duty_latency_ms_p99: f64,
    /// Duty start → submission, maximum.
    pub duty_latency_ms_max: f64,
    /// Process CPU time (user + system) per slot during the window. It includes the
    /// harness's own libp2p node and message publishing (about one gossip hop's decode).
    pub cpu_seconds_per_slot: f64,
    /// CPU seconds per slot of the node's shard threads.
    pub cpu_seconds_per_slot_shards: f64,
    /// CPU seconds per slot of the node's crypto pool.
    pub cpu_seconds_per_slot_crypto: f64,
    /// Wall time of the measured window per slot.
    pub wall_seconds_per_slot: f64,
    /// Peak resident set size of the process.
    pub peak_rss_mb: f64,
    /// Gossip messages the node received / published in the window.
    pub messages_in: u64,
    /// Messages the node published.
    pub messages_published: u64,
    /// Publishes the node's network refused (e.g. a full send queue): lost messages.
    pub publish_errors: u64,
    /// Messages the node published, by type (`proposal`, `prepare`, `commit`,
    /// `round_change`, `partial_signature`, `other`).
    pub messages_published_by_type: BTreeMap<String, u64>,
    /// Committee-slots with at least one duty (the committee runner's instances).
    pub active_committee_slots: u64,
    /// Messages the node published per active committee-slot, by type (the validator roles'
    /// messages, e.g. selection proofs, included).
    pub messages_published_per_committee_slot: BTreeMap<String, f64>,
    /// Inbound messages the node's shard queues dropped (full queue: the oldest goes).
    pub shard_queue_dropped: u64,
    /// Operator IDs the node under test hosts.
    pub operator_ids: usize,
    /// Selection-proof rounds run (every attester's aggregator round and every sync
    /// member's contribution round, whether or not it then aggregates).
    pub selection_rounds: u64,
    /// Per duty type.
    pub duty_types: Vec<TypeReport>,
    /// Which blst code path ran.
    pub cpu_path: String,
    /// The registry churn (`--churn`).
    pub churn: Option<ChurnReport>,
}

/// One duty type's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TypeReport {
    /// The type.
    pub duty_type: DutyType,
    /// Submissions expected.
    pub expected: u64,
    /// Submitted valid.
    pub valid: u64,
    /// Submitted but not the expected signed object.
    pub invalid: u64,
    /// Not submitted valid within the deadline.
    pub missed: u64,
    /// Slot start → submission, median.
    pub latency_ms_p50: f64,
    /// Slot start → submission, 99th percentile.
    pub latency_ms_p99: f64,
}

fn h64(parts: &[u64]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p.to_le_bytes());
    }
    let d = hasher.finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

fn root_of(tag: u64, x: u64) -> [u8; 32] {
    let mut r = [0u8; 32];
    for (i, chunk) in r.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&h64(&[tag, x, i as u64]).to_le_bytes());
    }
    r
}

/// The attester slot of validator `v` in `epoch`.
fn attester_slot(seed: u64, v: u64, epoch: u64) -> u64 {
    epoch * SLOTS_PER_EPOCH + h64(&[seed, v, epoch]) % SLOTS_PER_EPOCH
}

fn is_sync_member(v: u64) -> bool {
    v.is_multiple_of(SYNC_COMMITTEE_ONE_IN)
}

fn vote_for(slot: u64) -> BeaconVote {
    let epoch = slot / SLOTS_PER_EPOCH;
    BeaconVote {
        block_root: root_of(1, slot),
        source: Checkpoint {
            epoch: epoch - 1,
            root: root_of(2, epoch - 1),
        },
        target: Checkpoint {
            epoch,
            root: root_of(2, epoch),
        },
    }
}

/// Combinations of `k` out of `1..=m` (ascending), the first `count` of them.
fn combinations(m: u64, k: usize, count: usize) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    let mut idx: Vec<u64> = (0..k as u64).collect();
    while out.len() < count {
        out.push(idx.iter().map(|i| i + 2).collect());
        // next combination of k from 0..m
        let mut i = k;
        loop {
            if i == 0 {
                return out;
            }
            i -= 1;
            if idx[i] < m - (k - i) as u64 {
                idx[i] += 1;
                for j in i + 1..k {
                    idx[j] = idx[j - 1] + 1;
                }
                break;
            }
        }
    }
    out
}

struct Committee {
    operators: Vec<OperatorId>,
    /// Our operator IDs among them (ascending; `member` is the first's view).
    ours: Vec<OperatorId>,
    member: CommitteeMember,
    subnet: u64,
    msg_id: MessageId,
    /// Validator indices.
    validators: Vec<u64>,
}

struct Fixture {
    keys: HashMap<OperatorId, Arc<OperatorSecretKey>>,
    pems: HashMap<OperatorId, String>,
    committees: Vec<Committee>,
    /// Per validator: full key, shares by operator.
    validator_pk: Vec<PublicKey>,
    shares: Vec<HashMap<OperatorId, SecretKey>>,
    share_pks: Vec<HashMap<OperatorId, PublicKey>>,
    attester_domain: [u8; 32],
    sync_domain: [u8; 32],
}

fn build_fixture(args: &CapacityArgs, validators: usize) -> anyhow::Result<Fixture> {
    let k = args.operators;
    if ![4, 7, 10, 13].contains(&k) {
        bail!("--operators must be 4, 7, 10 or 13");
    }
    if validators == 0 || validators > VALIDATORS_MAX {
        bail!("--validators must be 1..={VALIDATORS_MAX}");
    }
    let committees_n = validators.div_ceil(args.validators_per_committee.max(1));
    let shared = args.shared_committees;
    if shared && (args.operator_ids.unwrap_or(1) < 2 || !args.committee_only) {
        bail!(
            "--shared-committees needs --operator-ids 2 or more and --committee-only (the \
             validator roles run as one member of ours per validator)"
        );
    }
    // Members that are not ours.
    let others_n = if shared { k - 2 } else { k - 1 };
    // Smallest pool of other operators with enough distinct committees.
    let mut m = others_n as u64;
    loop {
        let c = combinations(m, others_n, committees_n).len();
        if c >= committees_n {
            break;
        }
        m += 1;
    }
    // Ours are 1..=K; the others' pool follows them.
    let ours_n = args.operator_ids.unwrap_or(1);
    if ours_n == 0 || ours_n > committees_n {
        bail!("--operator-ids must be 1..=committees ({committees_n})");
    }
    let others_offset = ours_n as u64 - 1;
    let ids: Vec<OperatorId> = (OUR_ID..OUR_ID + ours_n as u64)
        .chain(2 + others_offset..=m + 1 + others_offset)
        .collect();
    let keys: Vec<(OperatorId, Arc<OperatorSecretKey>)> = ids
        .par_iter()
        .map(|&id| Ok((id, Arc::new(OperatorSecretKey::generate()?))))
        .collect::<Result<_, ssv_crypto_pipeline::CryptoError>>()?;
    let keys: HashMap<_, _> = keys.into_iter().collect();
    let pems: HashMap<OperatorId, String> = keys
        .iter()
        .map(|(id, k)| (*id, k.public_key().to_base64_pem()))
        .collect();
    let mut committees: Vec<Committee> = combinations(m, others_n, committees_n)
        .into_iter()
        .enumerate()
        .map(|(ci, others)| {
            // Committee `ci` is run by our operator `ci mod K` (and the next one, shared).
            let mut our_ids = vec![OUR_ID + (ci % ours_n) as u64];
            if shared {
                our_ids.push(OUR_ID + ((ci + 1) % ours_n) as u64);
                our_ids.sort_unstable();
            }
            let ours = our_ids[0];
            let mut operators = our_ids.clone();
            operators.extend(others.into_iter().map(|o| o + others_offset));
            let committee_id = CommitteeId::from_operators(&operators);
            let member = CommitteeMember {
                operator_id: ours,
                committee_id,
                rsa_public_key_pem: pems[&ours].as_bytes().to_vec(),
                faulty_nodes: (k as u64 - 1) / 3,
                committee: operators
                    .iter()
                    .map(|o| CommitteeOperator {
                        operator_id: *o,
                        rsa_public_key_pem: pems[o].as_bytes().to_vec(),
                    })
                    .collect(),
                domain: DOMAIN,
            };
            Committee {
                subnet: committee_id.subnet(),
                msg_id: MessageId::for_committee(DOMAIN, &committee_id),
                operators,
                ours: our_ids,
                member,
                validators: Vec::new(),
            }
        })
        .collect();
    for v in 0..validators {
        let c = v % committees.len();
        committees[c].validators.push(v as u64);
    }
    if args.operator_ids.is_some() {
        let mut per_operator: HashMap<OperatorId, usize> = HashMap::new();
        for c in &committees {
            for id in &c.ours {
                *per_operator.entry(*id).or_default() += c.validators.len();
            }
        }
        if let Some((id, n)) = per_operator
            .iter()
            .find(|(_, n)| **n > OPERATOR_VALIDATORS_MAX)
        {
            bail!(
                "operator {id} would run {n} validators, over the contract's \
                 {OPERATOR_VALIDATORS_MAX}: use more --operator-ids (at least {})",
                validators.div_ceil(OPERATOR_VALIDATORS_MAX)
            );
        }
    }
    let committee_of: Vec<usize> = (0..validators).map(|v| v % committees.len()).collect();
    let per_validator: Vec<_> = (0..validators)
        .into_par_iter()
        .map(|v| -> anyhow::Result<_> {
            let mut ikm = [0u8; 32];
            ikm[..8].copy_from_slice(&args.seed.to_le_bytes());
            ikm[8..16].copy_from_slice(&(v as u64).to_le_bytes());
            let sk = SecretKey::from_ikm(&ikm);
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(h64(&[args.seed, v as u64]));
            let ops = &committees[committee_of[v]].operators;
            let shares = split_secret_key(&sk, quorum(k), ops, &mut rng)?;
            let share_pks: HashMap<_, _> =
                shares.iter().map(|(o, s)| (*o, s.public_key())).collect();
            Ok((sk.public_key(), shares.into_iter().collect(), share_pks))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut validator_pk = Vec::with_capacity(validators);
    let mut shares = Vec::with_capacity(validators);
    let mut share_pks = Vec::with_capacity(validators);
    for (pk, s, spk) in per_validator {
        validator_pk.push(pk);
        shares.push(s);
        share_pks.push(spk);
    }
    Ok(Fixture {
        keys,
        pems,
        committees,
        validator_pk,
        shares,
        share_pks,
        attester_domain: root_of(3, 1),
        sync_domain: root_of(3, 2),
    })
}

/// Duties of slot `slot`, per committee (only committees with duties).
fn slot_duties(
    seed: u64,
    fx: &Fixture,
    rates: Rates,
    slot: u64,
    present: &dyn Fn(u64) -> bool,
) -> Vec<(usize, Vec<ValidatorDuty>)> {
    let epoch = slot / SLOTS_PER_EPOCH;
    let mut out = Vec::new();
    for (ci, c) in fx.committees.iter().enumerate() {
        let mut duties = Vec::new();
        for &v in c.validators.iter().filter(|v| present(**v)) {
            let pubkey = fx.validator_pk[v as usize].to_bytes();
            if attester_slot(seed, v, epoch) == slot {
                let (committee_index, position) = duties::attester_position(seed, v, epoch, rates);
                duties.push(ValidatorDuty {
                    kind: DutyKind::Attester {
                        committee_index,
                        committees_at_slot: rates.committees_at_slot(),
                        validator_committee_index: position,
                    },
                    validator_index: v,
                    pubkey,
                });
            }
            if is_sync_member(v) {
                duties.push(ValidatorDuty {
                    kind: DutyKind::SyncCommittee,
                    validator_index: v,
                    pubkey,
                });
            }
        }
        if !duties.is_empty() {
            out.push((ci, duties));
        }
    }
    out
}

/// The other operators' messages of one committee at one slot (QBFT round 1 happy path and
/// their post-consensus partial signatures), encoded.
fn others_messages(
    fx: &Fixture,
    c: &Committee,
    slot: u64,
    duties: &[ValidatorDuty],
    hash_cache: &HashToG2Cache,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let vote = vote_for(slot);
    let value = vote.to_ssz();
    let root = hash_data_root(&value);
    let state = State::new(c.member.clone(), c.msg_id.0.to_vec(), slot);
    let leader = round_robin_proposer(&state, 1);
    let att_root = compute_signing_root(
        vote.attestation_data(slot).tree_hash_root().0,
        fx.attester_domain,
    );
    let sync_root = compute_signing_root(vote.block_root, fx.sync_domain);
    let mut out = Vec::new();
    for &op in c.operators.iter().filter(|o| !c.ours.contains(o)) {
        let signer = RsaSigner {
            id: op,
            key: &fx.keys[&op],
        };
        let mut st = state.clone();
        st.committee_member.operator_id = op;
        if op == leader {
            out.push(create_proposal(&st, &signer, &value, &[], &[])?.to_ssz());
        }
        out.push(create_prepare(&st, &signer, 1, root)?.to_ssz());
        out.push(create_commit(&st, &signer, root)?.to_ssz());
        let messages = duties
            .iter()
            .map(|d| {
                let signing_root = match d.kind {
                    DutyKind::Attester { .. } => att_root,
                    DutyKind::SyncCommittee => sync_root,
                };
                let share = &fx.shares[d.validator_index as usize][&op];
                PartialSignatureMessage {
                    partial_signature: hash_cache.sign(share, &signing_root).to_bytes(),
                    signing_root,
                    signer: op,
                    validator_index: d.validator_index,
                }
            })
            .collect();
        let psm = PartialSignatureMessages::new(PartialSigMsgType::PostConsensus, slot, messages)?;
        let ssv = SsvMessage::new(MsgType::PartialSignature, c.msg_id, psm.to_ssz())?;
        let sig = signer.sign_ssv_message(&ssz::Encode::as_ssz_bytes(&ssv))?;
        out.push(SignedSsvMessage::new(vec![sig], vec![op], ssv, Vec::new())?.to_ssz());
    }
    Ok(out)
}

struct PreparedSlot {
    slot: u64,
    /// Committee duties sent but not expected (validator, sync): a validator stopped while
    /// the slot runs, or an attester added in this epoch (bumped).
    not_expected: HashSet<(u64, bool)>,
    duties: Vec<(usize, Vec<ValidatorDuty>)>,
    /// The validator duties to start: committee and start.
    starts: Vec<(usize, ssv_protocol::runner::ValidatorStart)>,
    /// (subnet, encoded message)
    messages: Vec<(u64, Vec<u8>)>,
    /// Submissions expected (committee duties and validator duties).
    expected: u64,
    /// The validator duties' expected objects: root (signature included) and type.
    expected_objects: HashMap<[u8; 32], DutyType>,
    /// Selection-proof rounds started.
    selection_rounds: u64,
}

fn thread_cpu_by_group() -> HashMap<&'static str, f64> {
    let mut out = HashMap::new();
    let tick = 100.0; // USER_HZ on Linux
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the ")" of comm: state is field 3; utime 14, stime 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(u), Some(s)) = (f.get(11), f.get(12)) else {
            continue;
        };
        let secs = (u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0)) / tick;
        let group = if comm.starts_with("ssv-shard") {
            "shards"
        } else if comm.starts_with("ssv-crypto") {
            "crypto"
        } else {
            "other"
        };
        *out.entry(group).or_insert(0.0) += secs;
    }
    out
}

fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn peak_rss_mb() -> f64 {
    // SAFETY: as above.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    ru.ru_maxrss as f64 / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the benchmark once at `validators`.
pub fn run_once(args: &CapacityArgs, validators: usize) -> anyhow::Result<Report> {
    let setup_started = Instant::now();
    let churn = args.churn;
    if churn > 0 && (churn > validators || args.slots < 2) {
        bail!("--churn N needs N <= --validators and at least 2 slots");
    }
    if churn > 0 && args.operator_ids.is_some_and(|k| k > 1) {
        bail!("--churn runs with one operator ID (its shares are decrypted with one key)");
    }
    // With churn: validators 0..churn leave, validators..validators+churn join (their own
    // committees, after the others in the fixture) at the middle slot.
    let total = validators + churn;
    let churn_at = args.slots.max(1) as usize / 2;
    let fx = build_fixture(args, total)?;
    let removed = |v: u64| churn > 0 && (v as usize) < churn;
    let added = |v: u64| churn > 0 && (v as usize) >= validators;
    let present = |v: u64, k: usize| {
        if k < churn_at || churn == 0 {
            !added(v)
        } else {
            !removed(v)
        }
    };
    // The added shares as contract sync stores them: encrypted to our key.
    let encrypted: Vec<(u64, Vec<u8>)> = (validators..total)
        .into_par_iter()
        .map(|v| {
            let ours = fx.committees[v % fx.committees.len()].member.operator_id;
            let share = &fx.shares[v][&ours];
            let enc = fx.keys[&ours]
                .public_key()
                .encrypt(ssv_eth_sync::shares::share_plaintext(share).as_bytes())
                .map_err(|e| anyhow::anyhow!("encrypting a share: {e}"))?;
            Ok((v as u64, enc))
        })
        .collect::<anyhow::Result<_>>()?;
    let hash_cache = HashToG2Cache::new();
    let lagrange = LagrangeCache::new();
    let rates = Rates {
        network_validators: args.network_validators.max(1),
    };
    let beacon = Arc::new(Beacon {
        rates,
        index_of: fx
            .validator_pk
            .iter()
            .enumerate()
            .map(|(v, pk)| (pk.to_bytes(), v as u64))
            .collect(),
    });
    let committee_of: Vec<usize> = {
        let mut of = vec![0; total];
        for (ci, c) in fx.committees.iter().enumerate() {
            for &v in &c.validators {
                of[v as usize] = ci;
            }
        }
        of
    };
    let slots: Vec<u64> = (FIRST_SLOT..FIRST_SLOT + args.slots.max(1)).collect();
    let mut prepared = Vec::new();
    for (k, &slot) in slots.iter().enumerate() {
        let duties = slot_duties(args.seed, &fx, rates, slot, &|v| present(v, k));
        // Stopped while this slot runs (the churn starts the slot before), or bumped.
        let not_expected: HashSet<(u64, bool)> = duties
            .iter()
            .flat_map(|(_, d)| d.iter())
            .filter(|d| {
                let sync = d.kind == DutyKind::SyncCommittee;
                (k + 1 == churn_at && removed(d.validator_index))
                    || (k >= churn_at && added(d.validator_index) && !sync)
            })
            .map(|d| (d.validator_index, d.kind == DutyKind::SyncCommittee))
            .collect();
        let msgs: Vec<Vec<(u64, Vec<u8>)>> = duties
            .par_iter()
            .map(|(ci, d)| {
                let c = &fx.committees[*ci];
                others_messages(&fx, c, slot, d, &hash_cache)
                    .map(|ms| ms.into_iter().map(|m| (c.subnet, m)).collect())
            })
            .collect::<anyhow::Result<_>>()?;
        let mut expected: u64 =
            duties.iter().map(|(_, d)| d.len() as u64).sum::<u64>() - not_expected.len() as u64;
        let validator_duties = if args.committee_only {
            Vec::new()
        } else {
            // Only validators present throughout the slot and not new (the churn's added
            // validators run committee duties only in this benchmark).
            duties::slot_duties(args.seed, &fx, rates, slot, &committee_of)
                .into_iter()
                .filter(|(_, v, _, _)| {
                    present(*v, k) && !added(*v) && !(k + 1 == churn_at && removed(*v))
                })
                .collect()
        };
        let played: Vec<duties::Played> = validator_duties
            .par_iter()
            .map(|(ci, v, _, start)| {
                duties::play(&fx, *ci, *v, start, &beacon, &hash_cache, &lagrange)
            })
            .collect::<anyhow::Result<_>>()?;
        let mut messages: Vec<(u64, Vec<u8>)> = msgs.into_iter().flatten().collect();
        let mut expected_objects = HashMap::new();
        let mut selection_rounds = 0;
        for ((ci, _, t, _), p) in validator_duties.iter().zip(played) {
            let subnet = fx.committees[*ci].subnet;
            messages.extend(p.messages.into_iter().map(|m| (subnet, m)));
            if matches!(t, DutyType::Aggregation | DutyType::Contribution) {
                selection_rounds += 1;
            }
            if let Some(root) = p.expected {
                expected_objects.insert(root, *t);
                expected += 1;
            }
        }
        prepared.push(PreparedSlot {
            slot,
            not_expected,
            duties,
            starts: validator_duties
                .into_iter()
                .map(|(ci, _, _, start)| (ci, start))
                .collect(),
            messages,
            expected,
            expected_objects,
            selection_rounds,
        });
    }
    eprintln!(
        "capacity: {validators} validators in {} committees of {}; {} slots prepared in {:.1} s",
        fx.committees.len(),
        args.operators,
        prepared.len(),
        setup_started.elapsed().as_secs_f64()
    );

    // The node under test.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let shards = args.shards.unwrap_or(cpus).max(1);
    let dir = tempfile::tempdir().context("temp dir")?;
    let store = Arc::new(Store::open(StoreConfig::new(
        dir.path().join("db"),
        [7; 32],
    ))?);
    let operator_keys = Arc::new(OperatorKeyCache::new());
    for (id, pem) in &fx.pems {
        operator_keys.insert(*id, Arc::new(OperatorPublicKey::from_base64_pem(pem)?));
    }
    let mut committees = Vec::new();
    let mut committee_of = HashMap::new();
    // The registry's committees of each fixture committee: one per member of ours.
    let mut runs_of: Vec<Vec<usize>> = Vec::with_capacity(fx.committees.len());
    for c in &fx.committees {
        let mut runs = Vec::new();
        for &our in &c.ours {
            let mut vals = HashMap::new();
            for &v in c.validators.iter().filter(|v| present(**v, 0)) {
                let vi = v as usize;
                vals.insert(
                    v,
                    Arc::new(ValidatorShare {
                        index: v,
                        pubkey: fx.validator_pk[vi].to_bytes(),
                        public_key: fx.validator_pk[vi],
                        secret_share: fx.shares[vi][&our].clone(),
                        fee_recipient: [0; 20],
                        exit_requested: None,
                        owner: [0; 20],
                        share_pubkey_bytes: Vec::new(),
                        share_pubkeys: fx.share_pks[vi].iter().map(|(o, p)| (*o, *p)).collect(),
                    }),
                );
                committee_of.entry(v).or_insert(committees.len());
            }
            let mut member = c.member.clone();
            member.operator_id = our;
            member.rsa_public_key_pem = fx.pems[&our].as_bytes().to_vec();
            runs.push(committees.len());
            committees.push(Arc::new(CommitteeInfo {
                id: c.member.committee_id.0,
                operators: c.operators.clone(),
                subnet: c.subnet,
                member,
                validators: vals,
            }));
        }
        runs_of.push(runs);
    }
    let registry = Arc::new(Registry {
        operator_id: OUR_ID,
        operator_keys,
        network: Arc::new(NetworkIndex::of_committees(&committees)),
        committees,
        committee_of,
        skipped: Vec::new(),
    });
    let mut subnets = Subnets::NONE;
    for c in &fx.committees {
        subnets.insert(Subnet::new(c.subnet as usize)?);
    }
    let mut cfg_a = NetworkConfig::loopback(DOMAIN);
    cfg_a.subnets = subnets;
    cfg_a.shard_count = shards;
    cfg_a.min_peers = 1;
    // The harness's one peer carries every other operator's traffic, which a real network
    // spreads over many peers: no per-peer budget for it.
    cfg_a.peer_rate_limits = ssv_netio::rate::PeerRateLimits {
        messages_per_s: 1e12,
        messages_burst: 1e12,
        bytes_per_s: 1e15,
        bytes_burst: 1e15,
    };
    let mut node = Network::start(cfg_a)?;
    let mut peer = if args.peer_process {
        HarnessPeer::spawn_child(&node, subnets, &prepared, dir.path())?
    } else {
        HarnessPeer::in_process(&node, subnets)?
    };
    // Wait until the peer is in the node's mesh of every subnet.
    let mesh_deadline = Instant::now() + MESH_TIMEOUT;
    loop {
        let node_ready = futures::executor::block_on(async {
            for s in subnets.iter() {
                if node.handle.topic_peers(s).await.unwrap_or(0) == 0 {
                    return false;
                }
            }
            true
        });
        if node_ready && peer.ready(subnets)? {
            break;
        }
        if Instant::now() > mesh_deadline {
            bail!("the harness peer did not join the node's subnets within {MESH_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let pool = Arc::new(crypto_pool(args.crypto_threads.unwrap_or(cpus))?);
    let metrics = Arc::new(Metrics::default());
    let (sub_tx, sub_rx) = async_channel::bounded::<Submission>(SUBMISSIONS_MAX);
    let services = Arc::new(Services {
        registry: Arc::new(LiveRegistry::new(registry.clone())),
        operator_keys: Arc::new(OurOperators::new(
            fx.committees
                .iter()
                .flat_map(|c| c.ours.iter().copied())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|id| (id, fx.keys[&id].clone())),
        )?),
        published: Default::default(),
        network: node.handle.clone(),
        store: store.clone(),
        pool,
        hash_cache: Arc::new(HashToG2Cache::new()),
        lagrange: Arc::new(LagrangeCache::new()),
        submissions: sub_tx,
        metrics: metrics.clone(),
        // The first slot starts now; the data plane's clock is moved to each slot's start
        // as the harness starts it (slots run back to back, faster than the chain's).
        clock: SlotClock::from_genesis_ms(
            SlotClock::now_ms() - FIRST_SLOT * CHAIN.slot_ms(),
            CHAIN,
        )?,
        fault: None,
        domain: DOMAIN,
        duties: Default::default(),
        stopped: Default::default(),
        // Doppelganger protection off: the harness measures signing.
        doppelganger: Default::default(),
        clock_offset_ms: Default::default(),
    });
    // The beacon duties gossip validation checks messages against: every slot's proposer,
    // the sync committee's members among ours.
    let epoch = FIRST_SLOT / SLOTS_PER_EPOCH;
    for e in epoch..=(FIRST_SLOT + args.slots.max(1)) / SLOTS_PER_EPOCH {
        services.duties.set_proposers(
            e,
            (e * SLOTS_PER_EPOCH..(e + 1) * SLOTS_PER_EPOCH)
                .map(|s| (s, rates.proposer(args.seed, s))),
        );
    }
    services.duties.set_sync_members(
        CHAIN.sync_period_of(epoch),
        (0..total as u64).filter(|v| is_sync_member(*v)),
    );
    let Shards {
        events: shard_txs,
        handles,
    } = spawn_shards(&services, std::mem::take(&mut node.shards), true)?;
    // Submissions with their arrival time; the node's fetches are answered at once.
    let (arr_tx, arr_rx) = crossbeam_channel::unbounded::<(Instant, Submission)>();
    let beacon_node = beacon.clone();
    let collector = std::thread::Builder::new()
        .name("harness-beacon".into())
        .spawn(move || {
            while let Ok(s) = sub_rx.recv_blocking() {
                let Some(s) = beacon_node.answer(s) else {
                    continue;
                };
                if arr_tx.send((Instant::now(), s)).is_err() {
                    break;
                }
            }
        })?;

    // The measured window.
    let profiler = match &args.flamegraph {
        Some(_) => Some(
            pprof::ProfilerGuardBuilder::default()
                .frequency(997)
                .blocklist(&["libc", "libgcc", "pthread", "vdso"])
                .build()?,
        ),
        None => None,
    };
    let cpu0 = process_cpu_seconds();
    let threads0 = thread_cpu_by_group();
    let window = Instant::now();
    let mut latencies = Vec::new();
    let mut type_latencies: HashMap<DutyType, Vec<f64>> = HashMap::new();
    let mut received: Vec<(u64, Submission)> = Vec::new();
    // Validator-duty objects submitted: matching an expected root, or not.
    let mut objects_valid: HashMap<[u8; 32], DutyType> = HashMap::new();
    let mut objects_invalid: HashMap<DutyType, u64> = HashMap::new();
    let mut expected_total = 0u64;
    let mut expected_keys: HashSet<(u64, u64, bool)> = HashSet::new();
    // Committee duties submitted so far (slot, validator, sync).
    let mut submitted_keys: HashSet<(u64, u64, bool)> = HashSet::new();
    // The churn's inputs, owned by its thread: the added validators' shares as stored
    // (encrypted), the removed ones' keys, the registry to change.
    let mut churn_input = (churn > 0).then(|| {
        let added_meta: Vec<AddedShare> = encrypted
            .iter()
            .map(|(v, enc)| {
                let vi = *v as usize;
                AddedShare {
                    index: *v,
                    committee: fx
                        .committees
                        .iter()
                        .position(|c| c.validators.contains(v))
                        .unwrap_or(0),
                    public_key: fx.validator_pk[vi],
                    share_pubkeys: fx.share_pks[vi].iter().map(|(o, p)| (*o, *p)).collect(),
                    our_share_pk: fx.share_pks[vi][&OUR_ID].to_bytes(),
                    encrypted: enc.clone(),
                }
            })
            .collect();
        let removed_keys: Vec<[u8; 48]> =
            (0..churn).map(|v| fx.validator_pk[v].to_bytes()).collect();
        (added_meta, removed_keys)
    });
    let mut churn_thread = None;
    for (slot_no, p) in prepared.iter().enumerate() {
        expected_total += p.expected;
        if slot_no + 1 == churn_at
            && let Some((added_meta, removed_keys)) = churn_input.take()
        {
            let services = services.clone();
            let shard_txs = shard_txs.clone();
            let key = fx.keys[&OUR_ID].clone();
            let slot = prepared[churn_at].slot;
            churn_thread = Some(std::thread::spawn(move || {
                apply_churn(&services, &shard_txs, &key, added_meta, &removed_keys, slot)
            }));
        }
        if slot_no == churn_at
            && let Some(t) = churn_thread.as_ref()
        {
            // The first eligible slot is the one after the change is in the shards.
            while !t.is_finished() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let t0 = Instant::now();
        let slot_start = services.clock.genesis_ms() + p.slot * CHAIN.slot_ms();
        services.clock_offset_ms.store(
            slot_start as i64 - SlotClock::now_ms() as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        for (ci, duties) in &p.duties {
            for d in duties {
                let sync = d.kind == DutyKind::SyncCommittee;
                if !p.not_expected.contains(&(d.validator_index, sync)) {
                    expected_keys.insert((p.slot, d.validator_index, sync));
                }
            }
            let duty = CommitteeDuty {
                slot: p.slot,
                duties: duties.clone(),
                attester_domain: fx.attester_domain,
                sync_domain: fx.sync_domain,
                pre_electra: false,
            };
            for &run in &runs_of[*ci] {
                shard_txs[shard_of(&registry.committees[run], shard_txs.len())]
                    .send_blocking(ShardEvent::Duty {
                        committee: run,
                        duty: duty.clone(),
                        vote: vote_for(p.slot),
                    })
                    .map_err(|_| anyhow::anyhow!("shard stopped"))?;
            }
        }
        for (ci, start) in &p.starts {
            shard_txs[shard_of(&registry.committees[runs_of[*ci][0]], shard_txs.len())]
                .send_blocking(ShardEvent::ValidatorDuty(start.clone()))
                .map_err(|_| anyhow::anyhow!("shard stopped"))?;
        }
        peer.publish_slot(slot_no, p)?;
        let mut got = 0u64;
        let deadline = t0 + DUTY_DEADLINE;
        while got < p.expected {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match arr_rx.recv_timeout(deadline - now) {
                Ok((at, s)) => {
                    let ms = at.saturating_duration_since(t0).as_secs_f64() * 1000.0;
                    // Type, submissions, and how many of them this slot expects.
                    // Only expected duties of this slot count towards it (a submission of a
                    // validator stopped or bumped mid-run must not end the slot's wait).
                    // A duty counts (and has its latency) at its first submission: with
                    // `--shared-committees` each of our members submits it.
                    let mut first = |key: (u64, u64, bool)| -> (u64, u64) {
                        if !submitted_keys.insert(key) {
                            return (0, 0);
                        }
                        (
                            1,
                            u64::from(key.0 == p.slot && expected_keys.contains(&key)),
                        )
                    };
                    let sum = |v: Vec<(u64, u64)>| {
                        v.into_iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
                    };
                    let (t, n, this_slot) = match &s {
                        Submission::Attestations(a) => {
                            let (n, here) = sum(a
                                .iter()
                                .map(|a| first((a.data.slot, a.attester_index, false)))
                                .collect());
                            (DutyType::Attestation, n, here)
                        }
                        Submission::SyncMessages(m) => {
                            let (n, here) = sum(m
                                .iter()
                                .map(|m| first((m.slot, m.validator_index, true)))
                                .collect());
                            (DutyType::SyncMessage, n, here)
                        }
                        other => match duties::submitted(other) {
                            Some((t, root)) => {
                                // An expected object of this slot, or a late one of an
                                // earlier slot (valid, its latency from this slot's start,
                                // but not this slot's).
                                let here = p.expected_objects.get(&root) == Some(&t);
                                let known = here
                                    || prepared
                                        .iter()
                                        .any(|q| q.expected_objects.get(&root) == Some(&t));
                                if !known {
                                    *objects_invalid.entry(t).or_default() += 1;
                                    continue;
                                }
                                if objects_valid.insert(root, t).is_some() {
                                    continue;
                                }
                                (t, 1, u64::from(here))
                            }
                            None => continue,
                        },
                    };
                    got += this_slot;
                    latencies.extend(std::iter::repeat_n(ms, n as usize));
                    type_latencies
                        .entry(t)
                        .or_default()
                        .extend(std::iter::repeat_n(ms, n as usize));
                    if matches!(t, DutyType::Attestation | DutyType::SyncMessage) {
                        received.push((p.slot, s));
                    }
                }
                Err(_) => break,
            }
        }
    }
    let wall = window.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu0;
    let churn_report = match churn_thread {
        Some(t) => {
            let (apply_ms, decrypt_ms, bump_ms) = t
                .join()
                .map_err(|_| anyhow::anyhow!("the churn thread panicked"))??;
            Some(ChurnReport {
                added: churn,
                removed: churn,
                at_slot: churn_at,
                apply_ms,
                decrypt_ms,
                bump_ms,
            })
        }
        None => None,
    };
    let threads1 = thread_cpu_by_group();
    if let (Some(guard), Some(path)) = (profiler, &args.flamegraph) {
        let report = guard.report().build()?;
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        report.flamegraph(f)?;
        eprintln!("capacity: flamegraph written to {}", path.display());
    }
    let published = services.published.snapshot();
    let shard_queue_dropped: u64 = futures::executor::block_on(node.handle.stats())
        .map(|st| st.shards.iter().map(|s| s.dropped).sum())
        .context("the node's network stats")?;
    // Stop the node.
    for tx in &shard_txs {
        let _ = tx.send_blocking(ShardEvent::Shutdown);
    }
    for h in handles {
        let _ = h.join();
    }
    drop(services);
    drop(node);
    peer.stop();
    let _ = collector.join();

    // The beacon node's verification, outside the window.
    let mut sets = Vec::new();
    let mut keys = Vec::new();
    // Each submission is checked against its own slot's vote (a late one can arrive while
    // the harness waits for the next slot).
    for (_, s) in &received {
        match s {
            Submission::Attestations(atts) => {
                for a in atts {
                    let slot = &a.data.slot;
                    let vote = vote_for(*slot);
                    let root = compute_signing_root(
                        vote.attestation_data(*slot).tree_hash_root().0,
                        fx.attester_domain,
                    );
                    keys.push((*slot, a.attester_index, false));
                    sets.push((a.attester_index, root, a.signature));
                }
            }
            Submission::SyncMessages(msgs) => {
                for m in msgs {
                    let slot = &m.slot;
                    let root = compute_signing_root(vote_for(*slot).block_root, fx.sync_domain);
                    keys.push((*slot, m.validator_index, true));
                    sets.push((m.validator_index, root, m.signature));
                }
            }
            _ => {}
        }
    }
    let signature_sets: Vec<Option<SignatureSet>> = sets
        .iter()
        .map(|(v, root, sig)| {
            Some(SignatureSet {
                public_key: *fx.validator_pk.get(*v as usize)?,
                root: *root,
                signature: Signature::from_bytes(sig).ok()?,
            })
        })
        .collect();
    let parseable: Vec<SignatureSet> = signature_sets.iter().flatten().copied().collect();
    let verdicts = verify_sets(&parseable);
    let mut verdict_iter = verdicts.into_iter();
    let mut valid: HashSet<(u64, u64, bool)> = HashSet::new();
    let mut invalid_committee = [0u64; 2];
    for (k, s) in keys.iter().zip(&signature_sets) {
        let ok = s.is_some() && verdict_iter.next().is_some_and(|r| r.is_ok());
        if ok && expected_keys.contains(k) {
            valid.insert(*k);
        } else if !ok {
            invalid_committee[usize::from(k.2)] += 1;
            eprintln!("capacity: invalid submission {k:?}");
        }
    }
    for k in expected_keys.difference(&valid) {
        eprintln!("capacity: missed {k:?}");
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let duty_types: Vec<TypeReport> = DutyType::ALL
        .iter()
        .map(|&t| {
            let (expected, ok, bad) = match t {
                DutyType::Attestation | DutyType::SyncMessage => {
                    let sync = t == DutyType::SyncMessage;
                    (
                        expected_keys.iter().filter(|k| k.2 == sync).count() as u64,
                        valid.iter().filter(|k| k.2 == sync).count() as u64,
                        invalid_committee[usize::from(sync)],
                    )
                }
                _ => (
                    prepared
                        .iter()
                        .map(|p| p.expected_objects.values().filter(|x| **x == t).count() as u64)
                        .sum(),
                    objects_valid.values().filter(|x| **x == t).count() as u64,
                    objects_invalid.get(&t).copied().unwrap_or(0),
                ),
            };
            let mut lat = type_latencies.remove(&t).unwrap_or_default();
            lat.sort_by(|a, b| a.total_cmp(b));
            TypeReport {
                duty_type: t,
                expected,
                valid: ok,
                invalid: bad,
                missed: expected.saturating_sub(ok),
                latency_ms_p50: percentile(&lat, 0.50),
                latency_ms_p99: percentile(&lat, 0.99),
            }
        })
        .collect();
    let active_committee_slots: u64 = prepared.iter().map(|p| p.duties.len() as u64).sum();
    let valid_total: u64 = duty_types.iter().map(|t| t.valid).sum();
    let invalid_total: u64 = duty_types.iter().map(|t| t.invalid).sum();
    let n = prepared.len() as f64;
    let group = |g: &str| {
        (threads1.get(g).copied().unwrap_or(0.0) - threads0.get(g).copied().unwrap_or(0.0)) / n
    };
    Ok(Report {
        validators,
        committees: fx.committees.len(),
        operators: args.operators,
        slots: prepared.len() as u64,
        committee_only: args.committee_only,
        network_validators: rates.network_validators,
        duties_expected: expected_total,
        duties_valid: valid_total,
        duties_invalid: invalid_total,
        missed: expected_total.saturating_sub(valid_total),
        duty_latency_ms_p50: percentile(&latencies, 0.50),
        duty_latency_ms_p99: percentile(&latencies, 0.99),
        duty_latency_ms_max: latencies.last().copied().unwrap_or(0.0),
        cpu_seconds_per_slot: cpu / n,
        cpu_seconds_per_slot_shards: group("shards"),
        cpu_seconds_per_slot_crypto: group("crypto"),
        wall_seconds_per_slot: wall / n,
        peak_rss_mb: peak_rss_mb(),
        messages_in: metrics
            .messages_in
            .load(std::sync::atomic::Ordering::Relaxed),
        messages_published: metrics
            .messages_published
            .load(std::sync::atomic::Ordering::Relaxed),
        publish_errors: metrics
            .publish_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        selection_rounds: prepared.iter().map(|p| p.selection_rounds).sum(),
        messages_published_by_type: published.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        active_committee_slots,
        messages_published_per_committee_slot: published
            .iter()
            .map(|(t, n)| {
                (
                    t.to_string(),
                    *n as f64 / active_committee_slots.max(1) as f64,
                )
            })
            .collect(),
        shard_queue_dropped,
        operator_ids: args.operator_ids.unwrap_or(1),
        duty_types,
        cpu_path: ssv_crypto_pipeline::cpu_path(),
        churn: churn_report,
    })
}

/// One validator `--churn` adds.
struct AddedShare {
    index: u64,
    committee: usize,
    public_key: PublicKey,
    share_pubkeys: std::collections::BTreeMap<OperatorId, PublicKey>,
    our_share_pk: [u8; 48],
    encrypted: Vec<u8>,
}

/// What the live registry does for a batch of removals and additions (contract events):
/// stops the removed at once, decrypts the added shares (on the global rayon pool, as
/// `Registry::refresh` does), bumps them in slashing protection (forced, one commit),
/// publishes the new registry and hands it to every shard. Returns (total, decryption, bump)
/// milliseconds.
fn apply_churn(
    services: &Services,
    shards: &[async_channel::Sender<ShardEvent>],
    key: &OperatorSecretKey,
    added: Vec<AddedShare>,
    removed: &[[u8; 48]],
    slot: u64,
) -> anyhow::Result<(f64, f64, f64)> {
    let t = Instant::now();
    for pk in removed {
        services.stopped.stop(*pk);
    }
    let d = Instant::now();
    let secrets: Vec<SecretKey> = added
        .par_iter()
        .map(|a| {
            ssv_crypto_pipeline::share::decrypt_share(key, &a.encrypted, &a.our_share_pk)
                .map_err(|e| anyhow::anyhow!("decrypting validator {}'s share: {e}", a.index))
        })
        .collect::<anyhow::Result<_>>()?;
    let decrypt_ms = d.elapsed().as_secs_f64() * 1000.0;
    let b = Instant::now();
    let pubkeys: Vec<[u8; 48]> = added.iter().map(|a| a.public_key.to_bytes()).collect();
    services
        .store
        .bump_slashing_protection_forced(&pubkeys, slot / SLOTS_PER_EPOCH, slot)?;
    let bump_ms = b.elapsed().as_secs_f64() * 1000.0;
    let prev = services.registry.current();
    let removed: HashSet<[u8; 48]> = removed.iter().copied().collect();
    let mut by_committee: HashMap<usize, Vec<(AddedShare, SecretKey)>> = HashMap::new();
    for (a, s) in added.into_iter().zip(secrets) {
        by_committee.entry(a.committee).or_default().push((a, s));
    }
    let mut committee_of = HashMap::new();
    let committees: Vec<Arc<CommitteeInfo>> = prev
        .committees
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            let mut validators = c.validators.clone();
            validators.retain(|_, v| !removed.contains(&v.pubkey));
            for (a, secret) in by_committee.remove(&ci).unwrap_or_default() {
                validators.insert(
                    a.index,
                    Arc::new(ValidatorShare {
                        index: a.index,
                        pubkey: a.public_key.to_bytes(),
                        public_key: a.public_key,
                        secret_share: secret,
                        fee_recipient: [0; 20],
                        exit_requested: None,
                        owner: [0; 20],
                        share_pubkey_bytes: Vec::new(),
                        share_pubkeys: a.share_pubkeys,
                    }),
                );
            }
            for i in validators.keys() {
                committee_of.insert(*i, ci);
            }
            Arc::new(CommitteeInfo {
                id: c.id,
                operators: c.operators.clone(),
                subnet: c.subnet,
                member: c.member.clone(),
                validators,
            })
        })
        .collect();
    let next = Arc::new(Registry {
        operator_id: prev.operator_id,
        operator_keys: prev.operator_keys.clone(),
        network: Arc::new(NetworkIndex::of_committees(&committees)),
        committees,
        committee_of,
        skipped: Vec::new(),
    });
    services.registry.publish(next.clone());
    for tx in shards {
        tx.send_blocking(ShardEvent::Registry(next.clone()))
            .map_err(|_| anyhow::anyhow!("a shard stopped"))?;
    }
    Ok((t.elapsed().as_secs_f64() * 1000.0, decrypt_ms, bump_ms))
}

/// Publishes one message, waiting for room in the network's command queue; gossipsub's
/// refusal of a duplicate is not an error.
fn publish_one(handle: &ssv_netio::NetworkHandle, subnet: u64, msg: &[u8]) -> anyhow::Result<()> {
    let s = Subnet::new(subnet as usize)?;
    let deadline = Instant::now() + PUBLISH_RETRY_FOR;
    loop {
        match futures::executor::block_on(handle.publish(s, msg.to_vec())) {
            Ok(_) => return Ok(()),
            Err(e) if e.to_string().contains("Duplicate") => return Ok(()),
            // The connection's send queue is full: the peer is still reading the burst.
            Err(e) if e.to_string().contains("AllQueuesFull") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How long the harness retries a publish refused because the send queue is full.
const PUBLISH_RETRY_FOR: Duration = Duration::from_secs(10);

/// Starts a loopback node that accepts everything it is sent (the other operators' node).
fn start_peer_network(
    bootnode: ssv_netio::Enr,
    subnets: Subnets,
) -> anyhow::Result<(Network, std::thread::JoinHandle<()>)> {
    let mut cfg = NetworkConfig::loopback(DOMAIN);
    cfg.subnets = subnets;
    cfg.min_peers = 1;
    cfg.bootnodes = vec![bootnode];
    let net = Network::start(cfg)?;
    let handle = net.handle.clone();
    let queue = net.shards[0].clone();
    let drain = std::thread::Builder::new()
        .name("harness-drain".into())
        .spawn(move || {
            futures::executor::block_on(async move {
                while let Some(m) = queue.recv().await {
                    let _ = handle.try_report_validation(&m, ValidationResult::Accept);
                }
            })
        })?;
    Ok((net, drain))
}

fn peer_joined(net: &Network, subnets: Subnets) -> bool {
    futures::executor::block_on(async {
        for s in subnets.iter() {
            if net.handle.topic_peers(s).await.unwrap_or(0) == 0 {
                return false;
            }
        }
        true
    })
}

/// The node of the other operators: in this process or a child process.
enum HarnessPeer {
    InProcess {
        net: Network,
        drain: std::thread::JoinHandle<()>,
    },
    Child {
        child: std::process::Child,
        stdin: std::process::ChildStdin,
        lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
        ready: bool,
    },
}

impl HarnessPeer {
    fn in_process(node: &Network, subnets: Subnets) -> anyhow::Result<Self> {
        let (net, drain) = start_peer_network(node.enr.clone(), subnets)?;
        Ok(HarnessPeer::InProcess { net, drain })
    }

    fn spawn_child(
        node: &Network,
        subnets: Subnets,
        prepared: &[PreparedSlot],
        dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        use std::io::{BufRead as _, Write as _};
        let path = dir.join("peer-messages.bin");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        f.write_all(&(prepared.len() as u32).to_le_bytes())?;
        for p in prepared {
            f.write_all(&(p.messages.len() as u32).to_le_bytes())?;
            for (subnet, m) in &p.messages {
                f.write_all(&[*subnet as u8])?;
                f.write_all(&(m.len() as u32).to_le_bytes())?;
                f.write_all(m)?;
            }
        }
        f.flush()?;
        drop(f);
        let list: Vec<String> = subnets.iter().map(|s| s.index().to_string()).collect();
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("capacity-peer")
            .arg("--bootnode")
            .arg(node.enr.to_base64())
            .arg("--messages")
            .arg(&path)
            .arg("--subnets")
            .arg(list.join(","))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the capacity-peer process")?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = child.stdout.take().context("child stdout")?;
        Ok(HarnessPeer::Child {
            child,
            stdin,
            lines: std::io::BufReader::new(stdout).lines(),
            ready: false,
        })
    }

    fn ready(&mut self, subnets: Subnets) -> anyhow::Result<bool> {
        match self {
            HarnessPeer::InProcess { net, .. } => Ok(peer_joined(net, subnets)),
            HarnessPeer::Child { lines, ready, .. } => {
                if !*ready {
                    // The child prints "ready" once it is in the mesh of every subnet.
                    match lines.next() {
                        Some(Ok(l)) if l.trim() == "ready" => *ready = true,
                        Some(Ok(l)) => bail!("capacity-peer said {l:?}"),
                        _ => bail!("capacity-peer exited before it was ready"),
                    }
                }
                Ok(true)
            }
        }
    }

    fn publish_slot(&mut self, k: usize, p: &PreparedSlot) -> anyhow::Result<()> {
        use std::io::Write as _;
        match self {
            HarnessPeer::InProcess { net, .. } => {
                for (subnet, msg) in &p.messages {
                    publish_one(&net.handle, *subnet, msg)?;
                }
                Ok(())
            }
            HarnessPeer::Child { stdin, .. } => {
                writeln!(stdin, "publish {k}")?;
                stdin.flush()?;
                Ok(())
            }
        }
    }

    fn stop(self) {
        use std::io::Write as _;
        match self {
            HarnessPeer::InProcess { net, drain } => {
                drop(net);
                let _ = drain.join();
            }
            HarnessPeer::Child {
                mut child,
                mut stdin,
                ..
            } => {
                let _ = writeln!(stdin, "quit");
                drop(stdin);
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Entry point of the hidden `ssv-perf capacity-peer`: joins the node's subnets, says
/// `ready`, then publishes slot k's messages on each `publish k` line of stdin.
pub fn peer_main(args: PeerArgs) -> anyhow::Result<()> {
    use std::io::{BufRead as _, Read as _};
    let mut bytes = Vec::new();
    std::fs::File::open(&args.messages)?.read_to_end(&mut bytes)?;
    let mut at = 0usize;
    let mut take = |n: usize| -> anyhow::Result<&[u8]> {
        let s = bytes.get(at..at + n).context("truncated messages file")?;
        at += n;
        Ok(s)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as usize;
    let slots = u32_at(take(4)?);
    let mut per_slot: Vec<Vec<(u64, Vec<u8>)>> = Vec::with_capacity(slots);
    for _ in 0..slots {
        let n = u32_at(take(4)?);
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let subnet = take(1)?[0] as u64;
            let len = u32_at(take(4)?);
            v.push((subnet, take(len)?.to_vec()));
        }
        per_slot.push(v);
    }
    let mut subnets = Subnets::NONE;
    for s in &args.subnets {
        subnets.insert(Subnet::new(*s)?);
    }
    let enr: ssv_netio::Enr = args
        .bootnode
        .parse()
        .map_err(|e| anyhow::anyhow!("bootnode ENR: {e}"))?;
    let (net, drain) = start_peer_network(enr, subnets)?;
    let deadline = Instant::now() + MESH_TIMEOUT;
    while !peer_joined(&net, subnets) {
        if Instant::now() > deadline {
            bail!("did not join the node's subnets within {MESH_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut parts = line.split_whitespace();
        match (
            parts.next(),
            parts.next().and_then(|k| k.parse::<usize>().ok()),
        ) {
            (Some("publish"), Some(k)) => {
                for (subnet, msg) in per_slot.get(k).context("no such slot")? {
                    publish_one(&net.handle, *subnet, msg)?;
                }
            }
            (Some("quit"), _) => break,
            _ => bail!("unknown command {line:?}"),
        }
    }
    drop(net);
    let _ = drain.join();
    Ok(())
}

fn passes(r: &Report) -> bool {
    r.missed == 0 && r.duties_invalid == 0 && r.duty_latency_ms_p99 <= P99_TARGET_MS
}

fn print_report(r: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!(
            "validators {} ({} committees of {}), {} slots: duties {}/{} valid, {} invalid, {} missed\n\
             latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms\n\
             cpu {:.3} s/slot (shards {:.3}, crypto pool {:.3}), wall {:.3} s/slot, peak RSS {:.0} MB, blst path {}",
            r.validators,
            r.committees,
            r.operators,
            r.slots,
            r.duties_valid,
            r.duties_expected,
            r.duties_invalid,
            r.missed,
            r.duty_latency_ms_p50,
            r.duty_latency_ms_p99,
            r.duty_latency_ms_max,
            r.cpu_seconds_per_slot,
            r.cpu_seconds_per_slot_shards,
            r.cpu_seconds_per_slot_crypto,
            r.wall_seconds_per_slot,
            r.peak_rss_mb,
            r.cpu_path
        );
        println!(
            "{:<14} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
            "duty type", "expected", "valid", "invalid", "missed", "p50 ms", "p99 ms"
        );
        for t in &r.duty_types {
            println!(
                "{:<14} {:>8} {:>8} {:>8} {:>8} {:>9.0} {:>9.0}",
                t.duty_type.name(),
                t.expected,
                t.valid,
                t.invalid,
                t.missed,
                t.latency_ms_p50,
                t.latency_ms_p99
            );
        }
        println!(
            "operator IDs {}; published per committee-slot: {}; shard queue drops {}, publish errors {}",
            r.operator_ids,
            r.messages_published_per_committee_slot
                .iter()
                .map(|(t, n)| format!("{t} {n:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.shard_queue_dropped,
            r.publish_errors
        );
        println!(
            "selection-proof rounds: {} (network of {} validators{})",
            r.selection_rounds,
            r.network_validators,
            if r.committee_only {
                ", committee duties only"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Entry point of `ssv-perf capacity`.
pub fn main(args: CapacityArgs) -> anyhow::Result<()> {
    if !args.find_max {
        let r = run_once(&args, args.validators)?;
        print_report(&r, args.json)?;
        if !passes(&r) {
            bail!(
                "missed {} duties, {} invalid, p99 {:.0} ms (target: 0, 0, ≤ {P99_TARGET_MS} ms)",
                r.missed,
                r.duties_invalid,
                r.duty_latency_ms_p99
            );
        }
        return Ok(());
    }
    // Double until a run fails, then bisect to within 5 %. With `--operator-ids K`, a count
    // that K IDs cannot carry under the contract's cap runs with as many IDs as it needs.
    let run_once = |args: &CapacityArgs, v: usize| {
        let mut a = args.clone();
        if let Some(k) = a.operator_ids {
            let per_validator = if a.shared_committees { 2 } else { 1 };
            a.operator_ids = Some(k.max((v * per_validator).div_ceil(OPERATOR_VALIDATORS_MAX)));
        }
        run_once(&a, v)
    };
    let mut good = 0usize;
    let mut bad = None;
    let mut v = args.validators.clamp(500, FIND_MAX_CEILING);
    while bad.is_none() && v <= FIND_MAX_CEILING {
        let r = run_once(&args, v)?;
        eprintln!(
            "capacity: {v} validators: missed {}, invalid {}, p99 {:.0} ms → {}",
            r.missed,
            r.duties_invalid,
            r.duty_latency_ms_p99,
            if passes(&r) { "ok" } else { "fails" }
        );
        if passes(&r) {
            good = v;
            v *= 2;
        } else {
            bad = Some(v);
        }
    }
    if let Some(mut hi) = bad {
        let mut lo = good;
        while hi - lo > (hi / 20).max(100) {
            let mid = (lo + hi) / 2;
            let r = run_once(&args, mid)?;
            eprintln!(
                "capacity: {mid} validators: missed {}, p99 {:.0} ms → {}",
                r.missed,
                r.duty_latency_ms_p99,
                if passes(&r) { "ok" } else { "fails" }
            );
            if passes(&r) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        good = lo;
    }
    println!("validators_per_host: {good}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_distinct_and_sized() {
        let c = combinations(5, 3, 100);
        assert_eq!(c.len(), 10);
        let set: HashSet<_> = c.iter().collect();
        assert_eq!(set.len(), 10);
        assert!(
            c.iter()
                .all(|x| x.len() == 3 && x.iter().all(|o| (2..=6).contains(o)))
        );
    }

    #[test]
    fn every_validator_attests_once_per_epoch() {
        for v in 0..200 {
            let s = attester_slot(1, v, 10);
            assert_eq!(s / SLOTS_PER_EPOCH, 10);
        }
    }

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
