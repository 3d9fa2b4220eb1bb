//! A beacon-chain simulator: serves the Beacon API endpoints that committee duties use, on
//! loopback, advancing slots on its own clock; assigns attester and sync-committee duties with
//! a mainnet-like distribution; and verifies every submitted signature against the
//! validator's full public key, counting valid, invalid, late and missing submissions.
//!
//! It is what `ssv-node devnet` runs instead of a real beacon node, and is usable on its own as
//! `ssv-node beacon-sim`.
//!
//! One chain can be served on several listeners: [`BeaconSim::lagging`] gives a view of it as
//! a beacon node that lags behind (it says it is syncing, serves attestation data and head
//! events of a stale head), and every listener counts the requests it received by kind
//! ([`ListenerRequests`]), so a test can tell which beacon node the operator nodes used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::beacon_objects::{self, h};
use crate::sim_signing::{
    self as signing, domain as compute_domain, signing_root as compute_signing_root,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use ssv_crypto_pipeline::{PublicKey, SecretKey, Signature};
use ssv_protocol::beacon::consensus_data::{DataVersion, Proposal, SignedProposal};
use ssv_protocol::beacon::{altair, electra};
use ssv_protocol::chain::{ChainSpec, SlotClock};
use tokio::sync::broadcast;
use tree_hash::TreeHash;

use ssv_beacon_api::types::{
    ApiError, AttestationData, AttesterDuties, AttesterDuty, BlockRoot, Checkpoint, Data, Fork,
    Genesis, HeadEvent, ProposerDuties, ProposerDuty, SingleAttestation, Spec,
    SyncCommitteeMessage, SyncDuty, Syncing, ValidatorEntry, ValidatorInfo,
};

/// `SLOTS_PER_EPOCH` the simulator serves (mainnet's, from [`ChainSpec::MAINNET`]).
pub const SLOTS_PER_EPOCH: u64 = ChainSpec::MAINNET.slots_per_epoch();
/// Mainnet's sync-committee size.
pub const SYNC_COMMITTEE_SIZE: usize = 512;
/// `EPOCHS_PER_SYNC_COMMITTEE_PERIOD` the simulator serves (mainnet's).
pub const EPOCHS_PER_SYNC_COMMITTEE_PERIOD: u64 =
    ChainSpec::MAINNET.epochs_per_sync_committee_period();
/// Mainnet's `TARGET_COMMITTEE_SIZE`: committees per slot are sized around it.
pub const TARGET_COMMITTEE_SIZE: u64 = 128;
/// Mainnet's `MAX_COMMITTEES_PER_SLOT`.
pub const MAX_COMMITTEES_PER_SLOT: u64 = 64;
/// Head events buffered per subscriber; a subscriber further behind loses the oldest (it
/// reads the current slot from the next event anyway).
pub const HEAD_EVENTS_MAX: usize = 64;
/// Fork version the simulator reports (an Electra-era devnet version of our own).
pub const SIM_FORK_VERSION: [u8; 4] = [0x60, 0x00, 0x00, 0x38];
/// The fork version before [`SimConfig::fork_epoch`].
pub const SIM_PRE_FORK_VERSION: [u8; 4] = [0x50, 0x00, 0x00, 0x38];
/// The Capella fork version the simulator's spec reports (`CAPELLA_FORK_VERSION`): exits are
/// signed under it (EIP-7044), not under the current fork's.
pub const SIM_CAPELLA_VERSION: [u8; 4] = [0x30, 0x00, 0x00, 0x38];

/// One validator the simulated chain knows.
#[derive(Debug, Clone)]
pub struct SimValidator {
    /// Beacon index.
    pub index: u64,
    /// Full (not shared) public key.
    pub pubkey: [u8; 48],
    /// Its secret key when the simulator may know it (a devnet's own validators): the
    /// simulator then computes selection proofs to know which attesters aggregate. Without
    /// it an attester's aggregation is expected only when every member of its committee
    /// aggregates (committees under 32).
    pub secret: Option<SecretKey>,
}

/// A way the simulated beacon node lies or misbehaves (`--beacon-fault`), to prove that the
/// nodes' own records decide what they sign. Genuine duties and data stay the simulator's
/// truth for counting; only what it *serves* is faulty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimFault {
    /// Every fourth validator's attester duty is listed again three slots away, in the same
    /// epoch, with another pubkey.
    DuplicateDutyFakePubkey,
    /// Every fourth validator's attester duty is listed again three slots away, in the same
    /// epoch (a second, different attestation data for the same target).
    DuplicateDuty,
    /// Attestation data of odd slots names the next epoch as its target.
    FutureTarget,
    /// Attestation data of even slots comes as a 4 GiB response body.
    HugeBody,
    /// Attestation data of every third slot, and the first duties request of each epoch,
    /// answer only after [`SLOW_DELAY`] (past the client's request timeout).
    Slow,
    /// `/eth/v1/config/spec` says `SECONDS_PER_SLOT` 0 (and `SLOT_DURATION_MS` 0).
    SpecZero,
}

/// How long [`SimFault::Slow`] holds a response.
pub const SLOW_DELAY: Duration = Duration::from_secs(5);
/// Size [`SimFault::HugeBody`] declares (and streams, 1 MiB at a time).
pub const HUGE_BODY_BYTES: u64 = 4 << 30;
/// At most this many slashable pairs are kept as examples in the stats.
pub const SLASHABLE_EXAMPLES_MAX: usize = 16;

/// Configuration of the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Validators of the chain.
    pub validators: Vec<SimValidator>,
    /// Duration of a slot. Mainnet is 12 s; devnets run faster.
    pub slot_duration: Duration,
    /// Genesis time in milliseconds since the Unix epoch; slot 0 starts then.
    pub genesis_time_ms: u64,
    /// Sync-committee members drawn from the validators: at most [`SYNC_COMMITTEE_SIZE`].
    /// Mainnet has 512 of ~1M validators; a devnet draws a larger share so that the path is
    /// exercised (`None`: one in eight validators, at least one).
    pub sync_committee_size: Option<usize>,
    /// A submission later than this after its slot's start counts as late.
    pub late_after: Duration,
    /// Seed of the duty shuffle.
    pub seed: u64,
    /// The first slot whose duties are counted (expected, missed). Slot `first_slot` starts
    /// at the configured start time; earlier slots lie in the past. Epoch 0 cannot be
    /// attested to (its source and target epochs are equal), so this defaults to the first
    /// slot of epoch 1.
    pub first_slot: u64,
    /// The last slot whose duties and submissions are counted (`None`: no end). Later slots
    /// are still served, so nodes keep running, but change no counter: a run of S slots
    /// reports exactly those S slots. Submissions are counted by the slot they name, and only
    /// when it lies in `first_slot..=last_slot`.
    pub last_slot: Option<u64>,
    /// A fault to serve (`None`: an honest beacon node).
    pub fault: Option<SimFault>,
    /// A reorg the simulated chain goes through at this slot (`None`: none): from then on the
    /// proposers of the rest of its epoch are drawn again (their duties' dependent root
    /// changes, as when the last block of the previous epoch is replaced), so a node must
    /// fetch the epoch's proposer duties again to propose with the right validators.
    pub reorg_at: Option<u64>,
    /// The epoch of a fork the simulated chain goes through (`None`: none): before it the
    /// simulator's fork version is [`SIM_PRE_FORK_VERSION`], from it [`SIM_FORK_VERSION`];
    /// every signature is checked with the domain of its own epoch.
    pub fork_epoch: Option<u64>,
    /// Validators whose owner requested an exit (the nodes act on these at start-up): each
    /// is expected to exit once in the run.
    pub exit_requests: Vec<u64>,
    /// Validators of the whole simulated network, ours among them: each slot's proposer is a
    /// seeded draw from this many, and is one of ours when the draw falls on one (mainnet-like
    /// by default, [`MAINNET_VALIDATORS`]; the number of our validators makes every slot's
    /// proposer one of ours).
    pub network_validators: u64,
    /// Validators another instance runs (`--live-elsewhere`): the liveness endpoint reports
    /// them live in every epoch, their duties are not expected of the devnet's nodes, and
    /// anything the nodes submit for them (or a RANDAO reveal they send for one) is counted
    /// in [`SimStats::live_elsewhere_submissions`].
    pub live_elsewhere: Vec<u64>,
    /// Validators whose deposit the chain processes only at a chain slot: until then the
    /// `validators` endpoint does not know them (no index: pending deposit).
    pub deposits_at: HashMap<u64, u64>,
    /// Validators that exit at a chain slot: from then on their status is
    /// `exited_unslashed`.
    pub exits_at: HashMap<u64, u64>,
}

/// Slots between two builder registrations of a validator (ten epochs, as the Go node).
pub const REGISTRATION_PERIOD_SLOTS: u64 = 10 * SLOTS_PER_EPOCH;

/// The network size the simulator assumes by default for proposer draws.
pub const MAINNET_VALIDATORS: u64 = 1_000_000;

impl SimConfig {
    /// A config starting `start_delay` from now.
    pub fn new(
        validators: Vec<SimValidator>,
        slot_duration: Duration,
        start_delay: Duration,
    ) -> Self {
        let now_ms = SlotClock::now_ms();
        let first_slot = SLOTS_PER_EPOCH;
        let start_ms = now_ms + start_delay.as_millis() as u64;
        SimConfig {
            validators,
            slot_duration,
            // Whole seconds: the Beacon API's genesis time is in seconds.
            genesis_time_ms: start_ms
                .saturating_sub(first_slot * slot_duration.as_millis().max(1) as u64)
                .div_ceil(1000)
                * 1000,
            sync_committee_size: None,
            late_after: slot_duration * 2,
            seed: 1,
            first_slot,
            last_slot: None,
            fault: None,
            network_validators: MAINNET_VALIDATORS,
            exit_requests: Vec::new(),
            fork_epoch: None,
            reorg_at: None,
            live_elsewhere: Vec::new(),
            deposits_at: HashMap::new(),
            exits_at: HashMap::new(),
        }
    }
}

/// The genesis validators root the simulator serves for `seed` (it depends on nothing else,
/// so stores keyed by it can be prepared before the simulator is built).
pub fn genesis_validators_root(seed: u64) -> [u8; 32] {
    h(&[b"ssv-node beacon-sim genesis", &seed.to_le_bytes()])
}

/// The submission kinds counted per slot (see [`SimStats::counters`]).
#[derive(Debug, Clone, Copy)]
enum Tally {
    Attestation,
    SyncMessage,
    Proposal,
    Aggregation,
    Contribution,
}

impl SimStats {
    /// The (valid, invalid, late) counters of a kind.
    fn counters(&mut self, kind: Tally) -> (&mut u64, &mut u64, &mut u64) {
        match kind {
            Tally::Attestation => (
                &mut self.attestations_valid,
                &mut self.attestations_invalid,
                &mut self.attestations_late,
            ),
            Tally::SyncMessage => (
                &mut self.sync_messages_valid,
                &mut self.sync_messages_invalid,
                &mut self.sync_messages_late,
            ),
            Tally::Proposal => (
                &mut self.proposals_valid,
                &mut self.proposals_invalid,
                &mut self.proposals_late,
            ),
            Tally::Aggregation => (
                &mut self.aggregations_valid,
                &mut self.aggregations_invalid,
                &mut self.aggregations_late,
            ),
            Tally::Contribution => (
                &mut self.contributions_valid,
                &mut self.contributions_invalid,
                &mut self.contributions_late,
            ),
        }
    }
}

/// Counters of what the simulator received.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SimStats {
    /// Current slot.
    pub slot: u64,
    /// Attester duties whose slot has been reached.
    pub attestations_expected: u64,
    /// Valid attestations (first one per duty).
    pub attestations_valid: u64,
    /// Attestations with a bad signature, wrong data or no matching duty.
    pub attestations_invalid: u64,
    /// Valid attestations received after the lateness threshold.
    pub attestations_late: u64,
    /// Sync-committee duties (validator, slot) whose slot has been reached.
    pub sync_messages_expected: u64,
    /// Valid sync-committee messages.
    pub sync_messages_valid: u64,
    /// Invalid sync-committee messages.
    pub sync_messages_invalid: u64,
    /// Valid sync-committee messages received late.
    pub sync_messages_late: u64,
    /// Proposals (slots whose proposer is one of our validators) that have been reached.
    #[serde(default)]
    pub proposals_expected: u64,
    /// Valid signed blocks (the block the simulator produced for the slot, signed by its
    /// proposer under the proposer domain).
    #[serde(default)]
    pub proposals_valid: u64,
    /// Blocks with a bad signature, another block than the one produced, or no duty.
    #[serde(default)]
    pub proposals_invalid: u64,
    /// Valid blocks received after the lateness threshold.
    #[serde(default)]
    pub proposals_late: u64,
    /// Aggregations expected (attesters whose selection proof makes them aggregators) whose
    /// slot has been reached.
    #[serde(default)]
    pub aggregations_expected: u64,
    /// Valid signed aggregates and proofs.
    #[serde(default)]
    pub aggregations_valid: u64,
    /// Aggregates with a bad signature or proof, another aggregate than the one served, or
    /// from a validator that does not aggregate.
    #[serde(default)]
    pub aggregations_invalid: u64,
    /// Valid aggregates received late.
    #[serde(default)]
    pub aggregations_late: u64,
    /// Beacon-committee subscriptions received that match an attester duty.
    #[serde(default)]
    pub beacon_subscriptions: u64,
    /// Sync-committee subscriptions received of sync-committee members.
    #[serde(default)]
    pub sync_subscriptions: u64,
    /// Fee recipients received (`prepare_beacon_proposer`) of known validators.
    #[serde(default)]
    pub fee_recipients_prepared: u64,
    /// Subscriptions or preparations naming an unknown validator or no matching duty.
    #[serde(default)]
    pub preparations_invalid: u64,
    /// Voluntary exits expected (the validators with an exit request), from the first
    /// counted slot on.
    #[serde(default)]
    pub exits_expected: u64,
    /// Validators with a valid signed exit.
    #[serde(default)]
    pub exits_valid: u64,
    /// Exits with a bad signature or of a validator with no exit request.
    #[serde(default)]
    pub exits_invalid: u64,
    /// Contributions expected (a sync-committee member's subcommittee whose selection proof
    /// makes it an aggregator) whose slot has been reached.
    #[serde(default)]
    pub contributions_expected: u64,
    /// Valid signed contributions and proofs.
    #[serde(default)]
    pub contributions_valid: u64,
    /// Contributions with a bad signature or proof, another contribution than the one
    /// served, or from a member that does not aggregate.
    #[serde(default)]
    pub contributions_invalid: u64,
    /// Valid contributions received late.
    #[serde(default)]
    pub contributions_late: u64,
    /// Builder registrations expected (each validator once every ten epochs, in the slot
    /// matching its index) whose slot has been reached.
    #[serde(default)]
    pub registrations_expected: u64,
    /// Valid registrations.
    #[serde(default)]
    pub registrations_valid: u64,
    /// Registrations with a bad signature or of no expected slot.
    #[serde(default)]
    pub registrations_invalid: u64,
    /// Valid registrations received late.
    #[serde(default)]
    pub registrations_late: u64,
    /// Latency from slot start to a valid submission, in milliseconds, one per valid
    /// submission (attestations, sync messages, blocks, aggregates and registrations).
    pub latencies_ms: Vec<u64>,
    /// Latest slot whose submissions are complete when counted (`slot - 2`).
    pub settled_slot: Option<u64>,
    /// Duties of settled slots with no valid submission.
    pub missed: u64,
    /// Distinct correctly signed attestations received (any slot, any data): the ledger the
    /// slashing check runs over.
    pub attestations_signed: u64,
    /// Correctly signed attestations that form a slashable pair (double vote or surround
    /// vote, EIP-3076 rules) with one received earlier for the same validator, and correctly
    /// signed blocks that differ from one signed earlier for the same validator and slot
    /// (double proposal). Must be 0.
    pub slashable_submissions: u64,
    /// The first few slashable pairs, in words.
    pub slashable_examples: Vec<String>,
    /// Duties of the validators live elsewhere in the counted slots (attestations, sync
    /// messages, proposals, aggregations, contributions): not expected of the nodes.
    pub live_elsewhere_duties: u64,
    /// Submissions naming a validator live elsewhere, any slot, valid or not (attestations,
    /// sync messages, blocks and the RANDAO reveals of block requests, aggregates,
    /// contributions). Must be 0 with doppelganger protection on.
    pub live_elsewhere_submissions: u64,
    /// The first few of those, in words.
    pub live_elsewhere_examples: Vec<String>,
    /// `POST /eth/v1/validator/liveness/{epoch}` requests answered.
    pub liveness_requests: u64,
}

struct Inner {
    cfg: SimConfig,
    by_index: HashMap<u64, SimValidator>,
    pubkeys: HashMap<u64, PublicKey>,
    live_elsewhere: HashSet<u64>,
    domain_builder: [u8; 32],
    domain_exit: [u8; 32],
    genesis_validators_root: [u8; 32],
    state: Mutex<SimState>,
    head_tx: broadcast::Sender<HeadEvent>,
}

#[derive(Default)]
struct SimState {
    /// Duties per epoch, computed on demand.
    duties: HashMap<u64, Vec<AttesterDuty>>,
    /// (slot, validator) of attestations accepted.
    attested: HashSet<(u64, u64)>,
    /// (slot, validator) of sync messages accepted.
    synced: HashSet<(u64, u64)>,
    stats: SimStats,
    /// Highest slot whose expected counts were added.
    counted_through: Option<u64>,
    /// Every correctly signed attestation per validator: (source, target, data root).
    signed: HashMap<u64, Vec<(u64, u64, [u8; 32])>>,
    /// Epochs whose first duties request [`SimFault::Slow`] has delayed.
    slowed_epochs: HashSet<u64>,
    /// Root of the block produced for each slot.
    produced: HashMap<u64, [u8; 32]>,
    /// Slots with a valid block accepted.
    proposed: HashSet<u64>,
    /// Every correctly signed block per (validator, slot): its root.
    signed_blocks: HashMap<(u64, u64), [u8; 32]>,
    /// Per epoch: whether each attester aggregates (`None`: cannot be told).
    aggregators: HashMap<u64, HashMap<u64, Option<bool>>>,
    /// Root of the aggregate served per (slot, committee index).
    aggregates: HashMap<(u64, u64), [u8; 32]>,
    /// (slot, validator) of aggregates accepted.
    aggregated: HashSet<(u64, u64)>,
    /// (slot, validator) of registrations accepted.
    registered: HashSet<(u64, u64)>,
    /// Root of the contribution served per (slot, subcommittee).
    contributions: HashMap<(u64, u64), [u8; 32]>,
    /// (slot, validator, subcommittee) of contributions accepted.
    contributed: HashSet<(u64, u64, u64)>,
    /// Validators with a valid exit.
    exited: HashSet<u64>,
    /// Every fee recipient prepared per validator, with when (Unix ms).
    fee_recipients: HashMap<u64, Vec<(u64, [u8; 20])>>,
    /// (epoch, validator) seen live: a correctly signed attestation, block or aggregate.
    seen_live: HashSet<(u64, u64)>,
}

/// Who submitted what, per validator (the live-registry run's evidence).
#[derive(Debug, Clone, Default)]
pub struct SubmissionRecord {
    /// (slot, validator) of valid attestations.
    pub attested: HashSet<(u64, u64)>,
    /// (slot, validator) of valid sync-committee messages.
    pub synced: HashSet<(u64, u64)>,
    /// Validators with a valid voluntary exit.
    pub exited: HashSet<u64>,
    /// Fee recipients prepared per validator, with when (Unix ms).
    pub fee_recipients: HashMap<u64, Vec<(u64, [u8; 20])>>,
}

/// Requests one listener of the simulator received, by kind (`/sim/` requests are not
/// counted).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ListenerRequests {
    /// `GET /eth/v1/node/syncing`: health probes.
    pub syncing: u64,
    /// `GET /eth/v1/events`: head-event subscriptions.
    pub head_subscriptions: u64,
    /// What duties need: duties, attestation data, block roots, blocks, aggregates,
    /// contributions, every submission, subscription and fee-recipient preparation.
    pub duties: u64,
    /// The rest of the Beacon API: genesis, spec, fork, fork schedule, validators.
    pub other: u64,
}

/// What one listener serves: the chain as it is, or as a beacon node `lag_slots` behind.
#[derive(Default)]
struct View {
    /// Slots this listener's beacon node lags behind the chain (0: in sync).
    lag_slots: u64,
    syncing: AtomicU64,
    head_subscriptions: AtomicU64,
    duties: AtomicU64,
    other: AtomicU64,
}

impl View {
    fn count(&self, path: &str) {
        let counter = if path == "/eth/v1/node/syncing" {
            &self.syncing
        } else if path == "/eth/v1/events" {
            &self.head_subscriptions
        } else if path.starts_with("/sim/") {
            return;
        } else if path == "/eth/v1/beacon/genesis"
            || path.starts_with("/eth/v1/config/")
            || (path.starts_with("/eth/v1/beacon/states/")
                && (path.ends_with("/fork") || path.ends_with("/validators")))
        {
            &self.other
        } else {
            &self.duties
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running simulator (one view of its chain: see [`BeaconSim::lagging`]).
#[derive(Clone)]
pub struct BeaconSim {
    inner: Arc<Inner>,
    view: Arc<View>,
}

impl BeaconSim {
    /// Builds the simulator (validators' keys are parsed once here).
    pub fn new(cfg: SimConfig) -> anyhow::Result<Self> {
        if let Some(last) = cfg.last_slot
            && last < cfg.first_slot
        {
            anyhow::bail!(
                "last counted slot {last} is before the first counted slot {}",
                cfg.first_slot
            );
        }
        let mut pubkeys = HashMap::new();
        let mut by_index = HashMap::new();
        for v in &cfg.validators {
            let pk = PublicKey::from_bytes(&v.pubkey)
                .map_err(|e| anyhow::anyhow!("validator {} public key: {e}", v.index))?;
            pubkeys.insert(v.index, pk);
            by_index.insert(v.index, v.clone());
        }
        let gvr = genesis_validators_root(cfg.seed);
        let (head_tx, _) = broadcast::channel(HEAD_EVENTS_MAX);
        Ok(BeaconSim {
            inner: Arc::new(Inner {
                domain_exit: compute_domain(signing::VOLUNTARY_EXIT, SIM_CAPELLA_VERSION, gvr),
                domain_builder: compute_domain(
                    signing::APPLICATION_BUILDER,
                    SIM_FORK_VERSION,
                    [0; 32],
                ),
                genesis_validators_root: gvr,
                live_elsewhere: cfg.live_elsewhere.iter().copied().collect(),
                cfg,
                by_index,
                pubkeys,
                state: Mutex::new(SimState::default()),
                head_tx,
            }),
            view: Arc::new(View::default()),
        })
    }

    /// The same chain as served by a beacon node `lag_slots` behind it: its `syncing` says
    /// so (`is_syncing`, `sync_distance` = `lag_slots`), its attestation data is that of its
    /// stale head ([`BeaconSim::stale_attestation_data`]: an attestation signed over it is
    /// counted invalid), and its head events are those of `lag_slots` ago. Everything else
    /// is served from the chain as it is, and submissions are counted as on any listener.
    /// Serve it with [`BeaconSim::serve_view`]; its requests are counted apart.
    pub fn lagging(&self, lag_slots: u64) -> BeaconSim {
        BeaconSim {
            inner: self.inner.clone(),
            view: Arc::new(View {
                lag_slots,
                ..View::default()
            }),
        }
    }

    /// The requests this view's listener received, by kind.
    pub fn requests(&self) -> ListenerRequests {
        let v = &self.view;
        ListenerRequests {
            syncing: v.syncing.load(Ordering::Relaxed),
            head_subscriptions: v.head_subscriptions.load(Ordering::Relaxed),
            duties: v.duties.load(Ordering::Relaxed),
            other: v.other.load(Ordering::Relaxed),
        }
    }

    /// The fork version at `epoch`: [`SIM_PRE_FORK_VERSION`] before the configured fork
    /// epoch, [`SIM_FORK_VERSION`] from it (and always, without a fork epoch).
    pub fn version_at(&self, epoch: u64) -> [u8; 4] {
        match self.inner.cfg.fork_epoch {
            Some(f) if epoch < f => SIM_PRE_FORK_VERSION,
            _ => SIM_FORK_VERSION,
        }
    }

    /// The signing domain of `kind` at `epoch` (the simulator's own implementation).
    fn domain(&self, kind: [u8; 4], epoch: u64) -> [u8; 32] {
        compute_domain(
            kind,
            self.version_at(epoch),
            self.inner.genesis_validators_root,
        )
    }

    /// The fork schedule the simulator serves.
    pub fn fork_schedule(&self) -> Vec<Fork> {
        match self.inner.cfg.fork_epoch {
            Some(f) => vec![
                Fork {
                    previous_version: SIM_PRE_FORK_VERSION,
                    current_version: SIM_PRE_FORK_VERSION,
                    epoch: 0,
                },
                Fork {
                    previous_version: SIM_PRE_FORK_VERSION,
                    current_version: SIM_FORK_VERSION,
                    epoch: f,
                },
            ],
            None => vec![Fork {
                previous_version: SIM_FORK_VERSION,
                current_version: SIM_FORK_VERSION,
                epoch: 0,
            }],
        }
    }

    /// The genesis the simulator serves.
    pub fn genesis(&self) -> Genesis {
        Genesis {
            genesis_time: self.inner.cfg.genesis_time_ms / 1000,
            genesis_validators_root: self.inner.genesis_validators_root,
            genesis_fork_version: SIM_FORK_VERSION,
        }
    }

    fn slot_ms(&self) -> u64 {
        self.inner.cfg.slot_duration.as_millis().max(1) as u64
    }

    /// The current slot by the simulator's clock (`None` before genesis).
    pub fn current_slot(&self) -> Option<u64> {
        let now = SlotClock::now_ms();
        (now >= self.inner.cfg.genesis_time_ms)
            .then(|| (now - self.inner.cfg.genesis_time_ms) / self.slot_ms())
    }

    fn slot_start_ms(&self, slot: u64) -> u64 {
        self.inner.cfg.genesis_time_ms + slot * self.slot_ms()
    }

    fn block_root(slot: u64) -> [u8; 32] {
        h(&[b"block", &slot.to_le_bytes()])
    }

    /// The attestation data of a slot: head is the slot's block, source the previous epoch's
    /// boundary, target this epoch's boundary.
    pub fn attestation_data(&self, slot: u64) -> AttestationData {
        let epoch = slot / SLOTS_PER_EPOCH;
        let source_epoch = epoch.saturating_sub(1);
        AttestationData {
            slot,
            index: 0,
            beacon_block_root: Self::block_root(slot),
            source: Checkpoint {
                epoch: source_epoch,
                root: Self::block_root(source_epoch * SLOTS_PER_EPOCH),
            },
            target: Checkpoint {
                epoch,
                root: Self::block_root(epoch * SLOTS_PER_EPOCH),
            },
        }
    }

    /// The attestation data a beacon node `lag` slots behind serves for `slot`: its head is
    /// the block of `slot - lag`, its source the checkpoint it had then, and its target, in a
    /// later epoch than its head, is that stale head. It has the shape nodes check (the
    /// slot's own, target epoch the slot's, source before target) but is not the chain's.
    pub fn stale_attestation_data(&self, slot: u64, lag: u64) -> AttestationData {
        let head = slot.saturating_sub(lag);
        let epoch = slot / SLOTS_PER_EPOCH;
        let mut data = self.attestation_data(head);
        data.slot = slot;
        if data.target.epoch < epoch {
            data.target = Checkpoint {
                epoch,
                root: Self::block_root(head),
            };
        }
        debug_assert!(data.source.epoch <= data.target.epoch);
        data
    }

    /// The head event of the block at `slot`.
    fn head_event(&self, slot: u64) -> HeadEvent {
        HeadEvent {
            slot,
            block: Self::block_root(slot),
            state: h(&[b"state", &slot.to_le_bytes()]),
            epoch_transition: slot.is_multiple_of(SLOTS_PER_EPOCH),
            current_duty_dependent_root: Some(self.dependent_root(slot / SLOTS_PER_EPOCH)),
            previous_duty_dependent_root: Some(
                self.attester_dependent_root(slot / SLOTS_PER_EPOCH),
            ),
        }
    }

    /// Attester duties of an epoch: every validator once, at a slot and committee drawn by a
    /// seeded shuffle, committees per slot sized as mainnet sizes them.
    pub fn attester_duties(&self, epoch: u64) -> Vec<AttesterDuty> {
        let mut st = self.inner.state.lock();
        self.duties_locked(&mut st, epoch).clone()
    }

    fn duties_locked<'a>(&self, st: &'a mut SimState, epoch: u64) -> &'a Vec<AttesterDuty> {
        st.duties.entry(epoch).or_insert_with(|| {
            let mut vals: Vec<&SimValidator> = self.inner.cfg.validators.iter().collect();
            vals.sort_by_key(|v| {
                h(&[
                    &self.inner.cfg.seed.to_le_bytes(),
                    &epoch.to_le_bytes(),
                    &v.index.to_le_bytes(),
                ])
            });
            let n = vals.len() as u64;
            let committees_at_slot =
                (n / SLOTS_PER_EPOCH / TARGET_COMMITTEE_SIZE).clamp(1, MAX_COMMITTEES_PER_SLOT);
            let committee_count = committees_at_slot * SLOTS_PER_EPOCH;
            // Split the shuffled list into `committee_count` contiguous committees.
            let mut duties = Vec::with_capacity(vals.len());
            for c in 0..committee_count {
                let start = (n * c / committee_count) as usize;
                let end = (n * (c + 1) / committee_count) as usize;
                let slot = epoch * SLOTS_PER_EPOCH + c / committees_at_slot;
                for (pos, v) in vals[start..end].iter().enumerate() {
                    duties.push(AttesterDuty {
                        pubkey: v.pubkey,
                        validator_index: v.index,
                        committee_index: c % committees_at_slot,
                        committee_length: (end - start) as u64,
                        committees_at_slot,
                        validator_committee_index: pos as u64,
                        slot,
                    });
                }
            }
            duties
        })
    }

    /// The sync committee of a period: a seeded draw of validators.
    pub fn sync_committee(&self, period: u64) -> Vec<u64> {
        let n = self.inner.cfg.validators.len();
        let size = self
            .inner
            .cfg
            .sync_committee_size
            .unwrap_or((n / 8).max(1))
            .min(SYNC_COMMITTEE_SIZE)
            .min(n);
        let mut idx: Vec<u64> = self.inner.cfg.validators.iter().map(|v| v.index).collect();
        idx.sort_by_key(|i| {
            h(&[
                b"sync",
                &self.inner.cfg.seed.to_le_bytes(),
                &period.to_le_bytes(),
                &i.to_le_bytes(),
            ])
        });
        idx.truncate(size);
        idx
    }

    /// Sync duties of `indices` for the period of `epoch`.
    pub fn sync_duties(&self, epoch: u64, indices: &[u64]) -> Vec<SyncDuty> {
        let committee = self.sync_committee(epoch / EPOCHS_PER_SYNC_COMMITTEE_PERIOD);
        indices
            .iter()
            .filter_map(|i| {
                let pos = committee.iter().position(|m| m == i)?;
                let v = self.inner.by_index.get(i)?;
                Some(SyncDuty {
                    pubkey: v.pubkey,
                    validator_index: *i,
                    validator_sync_committee_indices: vec![pos as u64],
                })
            })
            .collect()
    }

    /// Whether submissions and duties of `slot` are counted.
    fn counted(&self, slot: u64) -> bool {
        slot >= self.inner.cfg.first_slot && self.inner.cfg.last_slot.is_none_or(|l| slot <= l)
    }

    /// Adds expected-duty counts for every counted slot up to `slot` and settles missed duties
    /// of counted slots at least two slots old. Calls may come out of order (the clock task
    /// and `stats` race), so each slot is counted and settled at most once.
    fn account_through(&self, st: &mut SimState, slot: u64) {
        st.stats.slot = st.stats.slot.max(slot);
        let first = self.inner.cfg.first_slot;
        if slot < first {
            return;
        }
        let last = self.inner.cfg.last_slot.unwrap_or(u64::MAX);
        let through = slot.min(last);
        let from = st.counted_through.map_or(first, |s| s + 1);
        for s in from..=through {
            if s == first {
                st.stats.exits_expected += self.inner.cfg.exit_requests.len() as u64;
            }
            let epoch = s / SLOTS_PER_EPOCH;
            // Duties of validators live elsewhere are the other instance's, not the nodes'.
            let mut elsewhere = 0u64;
            let mut ours = |i: u64| {
                let e = self.is_live_elsewhere(i);
                elsewhere += u64::from(e);
                !e
            };
            let attesters: Vec<u64> = self
                .duties_locked(st, epoch)
                .iter()
                .filter(|d| d.slot == s)
                .map(|d| d.validator_index)
                .collect();
            st.stats.attestations_expected +=
                attesters.into_iter().filter(|i| ours(*i)).count() as u64;
            st.stats.sync_messages_expected += self
                .sync_committee(epoch / EPOCHS_PER_SYNC_COMMITTEE_PERIOD)
                .into_iter()
                .filter(|i| ours(*i))
                .count() as u64;
            st.stats.proposals_expected +=
                u64::from(self.proposer(s).is_some_and(|p| ours(p.index)));
            let aggregating = self.aggregators_of_slot(st, s);
            st.stats.aggregations_expected +=
                aggregating.into_iter().filter(|i| ours(*i)).count() as u64;
            // Registrations are signed during detection (see the node's doppelganger module).
            st.stats.registrations_expected += self.registering(s).count() as u64;
            st.stats.contributions_expected += self
                .contributing(s)
                .into_iter()
                .filter(|(i, _)| ours(*i))
                .count() as u64;
            st.stats.live_elsewhere_duties += elsewhere;
        }
        if from <= through {
            st.counted_through = Some(through);
        }
        if let Some(settle) = slot
            .checked_sub(2)
            .map(|s| s.min(last))
            .filter(|s| *s >= first)
        {
            let from = st.stats.settled_slot.map_or(first, |s| s + 1);
            for s in from..=settle {
                let epoch = s / SLOTS_PER_EPOCH;
                let att_missed = self
                    .duties_locked(st, epoch)
                    .iter()
                    .filter(|d| d.slot == s)
                    .map(|d| (s, d.validator_index))
                    .collect::<Vec<_>>();
                let missed_att = att_missed
                    .iter()
                    .filter(|k| !self.is_live_elsewhere(k.1) && !st.attested.contains(k))
                    .count();
                let sync = self.sync_committee(epoch / EPOCHS_PER_SYNC_COMMITTEE_PERIOD);
                let missed_sync = sync
                    .iter()
                    .filter(|i| !self.is_live_elsewhere(**i) && !st.synced.contains(&(s, **i)))
                    .count();
                let missed_block = self
                    .proposer(s)
                    .is_some_and(|p| !self.is_live_elsewhere(p.index))
                    && !st.proposed.contains(&s);
                let missed_agg = self
                    .aggregators_of_slot(st, s)
                    .into_iter()
                    .filter(|i| !self.is_live_elsewhere(*i) && !st.aggregated.contains(&(s, *i)))
                    .count();
                st.stats.missed +=
                    (missed_att + missed_sync + missed_agg) as u64 + u64::from(missed_block);
            }
            if from <= settle {
                st.stats.settled_slot = Some(settle);
            }
        }
    }

    /// The slots in `first..=last` of validator `v`'s attester duties.
    pub fn attester_slots(&self, v: u64, first: u64, last: u64) -> Vec<u64> {
        let mut st = self.inner.state.lock();
        let mut out = Vec::new();
        for epoch in first / SLOTS_PER_EPOCH..=last / SLOTS_PER_EPOCH {
            out.extend(
                self.duties_locked(&mut st, epoch)
                    .iter()
                    .filter(|d| d.validator_index == v && (first..=last).contains(&d.slot))
                    .map(|d| d.slot),
            );
        }
        out
    }

    /// Every valid submission so far, per validator and slot.
    pub fn submissions(&self) -> SubmissionRecord {
        let st = self.inner.state.lock();
        SubmissionRecord {
            attested: st.attested.clone(),
            synced: st.synced.clone(),
            exited: st.exited.clone(),
            fee_recipients: st.fee_recipients.clone(),
        }
    }

    /// Whether another instance runs validator `index` (`--live-elsewhere`).
    pub fn is_live_elsewhere(&self, index: u64) -> bool {
        self.inner.live_elsewhere.contains(&index)
    }

    /// Whether the simulated beacon node saw `index` live in `epoch`: live elsewhere, or a
    /// correctly signed attestation, block or aggregate of it for that epoch.
    pub fn is_live(&self, epoch: u64, index: u64) -> bool {
        self.is_live_elsewhere(index) || self.inner.state.lock().seen_live.contains(&(epoch, index))
    }

    /// Counts a submission naming `index` when that validator is live elsewhere.
    fn note_live_elsewhere(&self, index: u64, what: impl FnOnce() -> String) {
        if !self.is_live_elsewhere(index) {
            return;
        }
        let what = what();
        tracing::error!(
            validator = index,
            "submitted for a validator live elsewhere: {what}"
        );
        let mut st = self.inner.state.lock();
        st.stats.live_elsewhere_submissions += 1;
        if st.stats.live_elsewhere_examples.len() < SLASHABLE_EXAMPLES_MAX {
            st.stats
                .live_elsewhere_examples
                .push(format!("validator {index}: {what}"));
        }
    }

    /// Records that `index` was seen live in `epoch`.
    fn saw_live(&self, epoch: u64, index: u64) {
        self.inner.state.lock().seen_live.insert((epoch, index));
    }

    /// Answers a liveness request (`POST /eth/v1/validator/liveness/{epoch}`).
    pub fn liveness(
        &self,
        epoch: u64,
        indices: &[u64],
    ) -> Vec<ssv_beacon_api::types::ValidatorLiveness> {
        self.inner.state.lock().stats.liveness_requests += 1;
        indices
            .iter()
            .map(|&index| ssv_beacon_api::types::ValidatorLiveness {
                index,
                is_live: self.is_live(epoch, index),
            })
            .collect()
    }

    /// The counters now.
    pub fn stats(&self) -> SimStats {
        let mut st = self.inner.state.lock();
        if let Some(slot) = self.current_slot() {
            self.account_through(&mut st, slot);
        }
        st.stats.clone()
    }

    /// Records a correctly signed attestation in the slashing ledger; counts it when it
    /// forms a slashable pair with an earlier one of the same validator.
    fn ledger(&self, a: &SingleAttestation) {
        let root = a.data.tree_hash_root().0;
        let (s, t) = (a.data.source.epoch, a.data.target.epoch);
        let mut st = self.inner.state.lock();
        let recs = st.signed.entry(a.attester_index).or_default();
        if recs.iter().any(|r| r.2 == root) {
            return; // the same attestation again (every operator submits it)
        }
        let conflict = recs.iter().find_map(|&(es, et, er)| {
            if et == t && er != root {
                Some(format!("double vote for target {t}"))
            } else if (es < s && t < et) || (s < es && et < t) {
                Some(format!("surround vote ({s}, {t}) vs ({es}, {et})"))
            } else {
                None
            }
        });
        recs.push((s, t, root));
        st.stats.attestations_signed += 1;
        if let Some(what) = conflict {
            st.stats.slashable_submissions += 1;
            tracing::error!(
                validator = a.attester_index,
                slot = a.data.slot,
                "SLASHABLE attestation submitted: {what}"
            );
            if st.stats.slashable_examples.len() < SLASHABLE_EXAMPLES_MAX {
                st.stats.slashable_examples.push(format!(
                    "validator {} at slot {}: {what}",
                    a.attester_index, a.data.slot
                ));
            }
        }
    }

    /// Counts one submission naming `slot` (only in the counted window): invalid, or valid
    /// the first time `first` says so (a duplicate of a valid one is harmless and not counted
    /// again), late past the threshold, its latency recorded.
    fn tally(
        &self,
        kind: Tally,
        slot: u64,
        received_ms: u64,
        verdict: Result<(), String>,
        first: impl FnOnce(&mut SimState) -> bool,
    ) -> Result<(), String> {
        if !self.counted(slot) {
            return verdict;
        }
        let mut st = self.inner.state.lock();
        if verdict.is_err() {
            *st.stats.counters(kind).1 += 1;
            return verdict;
        }
        if !first(&mut st) {
            return Ok(());
        }
        let latency = received_ms.saturating_sub(self.slot_start_ms(slot));
        let late = latency > self.inner.cfg.late_after.as_millis() as u64;
        let (valid, _, late_count) = st.stats.counters(kind);
        *valid += 1;
        if late {
            *late_count += 1;
        }
        st.stats.latencies_ms.push(latency);
        Ok(())
    }

    /// Checks and records one attestation; `Err` says why it was rejected.
    pub fn submit_attestation(&self, a: &SingleAttestation) -> Result<(), String> {
        let received_ms = SlotClock::now_ms();
        // Whatever the duty and the data: a correctly signed attestation could reach the
        // chain, so it goes into the slashing ledger.
        let root = compute_signing_root(
            a.data.tree_hash_root().0,
            self.domain(signing::BEACON_ATTESTER, a.data.target.epoch),
        );
        self.note_live_elsewhere(a.attester_index, || {
            format!("attestation at slot {}", a.data.slot)
        });
        let signed = self.verify(a.attester_index, &root, &a.signature);
        if signed.is_ok() {
            self.ledger(a);
            self.saw_live(a.data.slot / SLOTS_PER_EPOCH, a.attester_index);
        }
        let verdict = signed.and_then(|()| self.check_attestation(a));
        self.tally(
            Tally::Attestation,
            a.data.slot,
            received_ms,
            verdict,
            |st| st.attested.insert((a.data.slot, a.attester_index)),
        )
    }

    /// The duty and data checks of an attestation whose signature verified.
    fn check_attestation(&self, a: &SingleAttestation) -> Result<(), String> {
        let slot = a.data.slot;
        let duty = {
            let mut st = self.inner.state.lock();
            self.duties_locked(&mut st, slot / SLOTS_PER_EPOCH)
                .iter()
                .find(|d| d.validator_index == a.attester_index && d.slot == slot)
                .cloned()
        };
        let duty = duty
            .ok_or_else(|| format!("validator {} has no duty at slot {slot}", a.attester_index))?;
        if duty.committee_index != a.committee_index {
            return Err(format!(
                "committee index {} != duty's {}",
                a.committee_index, duty.committee_index
            ));
        }
        if a.data != self.attestation_data(slot) {
            return Err("attestation data differs from the chain's".into());
        }
        Ok(())
    }

    fn verify(&self, index: u64, root: &[u8; 32], sig: &[u8; 96]) -> Result<(), String> {
        let pk = self
            .inner
            .pubkeys
            .get(&index)
            .ok_or_else(|| format!("unknown validator {index}"))?;
        let sig = Signature::from_bytes(sig).map_err(|e| format!("signature: {e}"))?;
        sig.verify(pk, root)
            .map_err(|e| format!("signature of validator {index}: {e}"))
    }

    /// Checks and records one sync-committee message.
    pub fn submit_sync_message(&self, m: &SyncCommitteeMessage) -> Result<(), String> {
        let received_ms = SlotClock::now_ms();
        self.note_live_elsewhere(m.validator_index, || {
            format!("sync-committee message at slot {}", m.slot)
        });
        let verdict = (|| {
            let period = m.slot / SLOTS_PER_EPOCH / EPOCHS_PER_SYNC_COMMITTEE_PERIOD;
            if !self.sync_committee(period).contains(&m.validator_index) {
                return Err(format!(
                    "validator {} is not in the sync committee",
                    m.validator_index
                ));
            }
            if m.beacon_block_root != Self::block_root(m.slot) {
                return Err("block root differs from the chain's".into());
            }
            let root = compute_signing_root(
                m.beacon_block_root,
                self.domain(signing::SYNC_COMMITTEE, m.slot / SLOTS_PER_EPOCH),
            );
            self.verify(m.validator_index, &root, &m.signature)
        })();
        self.tally(Tally::SyncMessage, m.slot, received_ms, verdict, |st| {
            st.synced.insert((m.slot, m.validator_index))
        })
    }

    /// The selection proof of validator `v` for `slot` (its full-key signature of the slot),
    /// when the simulator knows its key.
    fn selection_proof(&self, v: &SimValidator, slot: u64) -> Option<[u8; 96]> {
        let root = compute_signing_root(
            signing::u64_root(slot),
            self.domain(signing::SELECTION_PROOF, slot / SLOTS_PER_EPOCH),
        );
        v.secret.as_ref().map(|sk| sk.sign(&root).to_bytes())
    }

    /// Whether the attester of `duty` aggregates (`None`: its key is unknown and its
    /// committee is large enough that not everyone does).
    fn aggregates(&self, duty: &AttesterDuty) -> Option<bool> {
        if duty.committee_length
            / ssv_protocol::runner::aggregator::TARGET_AGGREGATORS_PER_COMMITTEE
            <= 1
        {
            return Some(true);
        }
        let v = self.inner.by_index.get(&duty.validator_index)?;
        let proof = self.selection_proof(v, duty.slot)?;
        Some(ssv_protocol::runner::is_aggregator(
            duty.committee_length,
            &proof,
        ))
    }

    /// The attesters of `slot` known to aggregate.
    fn aggregators_of_slot(&self, st: &mut SimState, slot: u64) -> Vec<u64> {
        let epoch = slot / SLOTS_PER_EPOCH;
        if !st.aggregators.contains_key(&epoch) {
            let duties = self.duties_locked(st, epoch).clone();
            let known = duties
                .iter()
                .map(|d| (d.validator_index, self.aggregates(d)))
                .collect();
            st.aggregators.insert(epoch, known);
        }
        let duties = self.duties_locked(st, epoch).clone();
        let known = &st.aggregators[&epoch];
        duties
            .iter()
            .filter(|d| d.slot == slot && known.get(&d.validator_index) == Some(&Some(true)))
            .map(|d| d.validator_index)
            .collect()
    }

    /// The aggregate of committee `committee_index` at `slot` (`GET
    /// /eth/v2/validator/aggregate_attestation`): every member's bit, over the chain's data.
    pub fn aggregate_attestation(
        &self,
        slot: u64,
        data_root: &[u8; 32],
        committee_index: u64,
    ) -> Result<electra::Attestation, String> {
        let data = self.attestation_data(slot);
        if data.tree_hash_root().0 != *data_root {
            return Err("no aggregate for that attestation data".into());
        }
        let length = {
            let mut st = self.inner.state.lock();
            self.duties_locked(&mut st, slot / SLOTS_PER_EPOCH)
                .iter()
                .find(|d| d.slot == slot && d.committee_index == committee_index)
                .map(|d| d.committee_length)
        }
        .ok_or_else(|| format!("no committee {committee_index} at slot {slot}"))?;
        let aggregate = beacon_objects::committee_aggregate(data, committee_index, length)?;
        self.inner
            .state
            .lock()
            .aggregates
            .insert((slot, committee_index), aggregate.tree_hash_root().0);
        Ok(aggregate)
    }

    /// Checks and records one published aggregate and proof.
    pub fn submit_aggregate(&self, a: &electra::SignedAggregateAndProof) -> Result<(), String> {
        let received_ms = SlotClock::now_ms();
        let m = &a.message;
        let slot = m.aggregate.data.slot;
        let index = m.aggregator_index;
        self.note_live_elsewhere(index, || format!("aggregate at slot {slot}"));
        let verdict = (|| {
            let sel_root = compute_signing_root(
                signing::u64_root(slot),
                self.domain(signing::SELECTION_PROOF, slot / SLOTS_PER_EPOCH),
            );
            self.verify(index, &sel_root, &m.selection_proof)
                .map_err(|e| format!("selection proof: {e}"))?;
            let root = compute_signing_root(
                m.tree_hash_root().0,
                self.domain(signing::AGGREGATE_AND_PROOF, slot / SLOTS_PER_EPOCH),
            );
            self.verify(index, &root, &a.signature)?;
            let duty = {
                let mut st = self.inner.state.lock();
                self.duties_locked(&mut st, slot / SLOTS_PER_EPOCH)
                    .iter()
                    .find(|d| d.validator_index == index && d.slot == slot)
                    .cloned()
            }
            .ok_or_else(|| format!("validator {index} has no duty at slot {slot}"))?;
            if !ssv_protocol::runner::is_aggregator(duty.committee_length, &m.selection_proof) {
                return Err(format!(
                    "validator {index} does not aggregate at slot {slot}"
                ));
            }
            let served = self
                .inner
                .state
                .lock()
                .aggregates
                .get(&(slot, duty.committee_index))
                .copied();
            if served != Some(m.aggregate.tree_hash_root().0) {
                return Err("not the aggregate served for the committee".into());
            }
            Ok(())
        })();
        if verdict.is_ok() {
            self.saw_live(slot / SLOTS_PER_EPOCH, index);
        }
        self.tally(Tally::Aggregation, slot, received_ms, verdict, |st| {
            st.aggregated.insert((slot, index))
        })
    }

    /// The root a sync-committee selection proof signs.
    fn sync_selection_root(&self, slot: u64, subcommittee_index: u64) -> [u8; 32] {
        let data = ssv_protocol::beacon::altair::SyncAggregatorSelectionData {
            slot,
            subcommittee_index,
        };
        compute_signing_root(
            data.tree_hash_root().0,
            self.domain(
                signing::SYNC_COMMITTEE_SELECTION_PROOF,
                slot / SLOTS_PER_EPOCH,
            ),
        )
    }

    /// The (member, subcommittee) pairs of `slot` known to contribute: sync-committee
    /// members whose selection proof of their subcommittee makes them aggregators.
    fn contributing(&self, slot: u64) -> Vec<(u64, u64)> {
        let epoch = slot / SLOTS_PER_EPOCH;
        let committee = self.sync_committee(epoch / EPOCHS_PER_SYNC_COMMITTEE_PERIOD);
        committee
            .iter()
            .enumerate()
            .filter_map(|(pos, i)| {
                let sub = pos as u64 / ssv_protocol::beacon::SYNC_SUBCOMMITTEE_SIZE as u64;
                let v = self.inner.by_index.get(i)?;
                let root = self.sync_selection_root(slot, sub);
                let proof = v.secret.as_ref()?.sign(&root).to_bytes();
                ssv_protocol::runner::is_sync_committee_aggregator(&proof).then_some((*i, sub))
            })
            .collect()
    }

    /// The contribution of subcommittee `subcommittee_index` at `slot` (`GET
    /// /eth/v1/validator/sync_committee_contribution`): every member's bit, over the slot's
    /// block.
    pub fn sync_contribution(
        &self,
        slot: u64,
        subcommittee_index: u64,
        block_root: &[u8; 32],
    ) -> Result<altair::SyncCommitteeContribution, String> {
        if *block_root != Self::block_root(slot) {
            return Err("no contribution for that block".into());
        }
        let per = ssv_protocol::beacon::SYNC_SUBCOMMITTEE_SIZE;
        let committee =
            self.sync_committee(slot / SLOTS_PER_EPOCH / EPOCHS_PER_SYNC_COMMITTEE_PERIOD);
        let c = beacon_objects::subcommittee_contribution(
            slot,
            *block_root,
            subcommittee_index,
            (0..committee.len())
                .filter(|pos| pos / per == subcommittee_index as usize)
                .map(|pos| pos % per),
        )?;
        self.inner
            .state
            .lock()
            .contributions
            .insert((slot, subcommittee_index), c.tree_hash_root().0);
        Ok(c)
    }

    /// Checks and records one published contribution and proof.
    pub fn submit_contribution(
        &self,
        c: &altair::SignedContributionAndProof,
    ) -> Result<(), String> {
        let received_ms = SlotClock::now_ms();
        let m = &c.message;
        let (slot, sub, index) = (
            m.contribution.slot,
            m.contribution.subcommittee_index,
            m.aggregator_index,
        );
        self.note_live_elsewhere(index, || format!("contribution at slot {slot}"));
        let verdict = (|| {
            self.verify(
                index,
                &self.sync_selection_root(slot, sub),
                &m.selection_proof,
            )
            .map_err(|e| format!("selection proof: {e}"))?;
            let root = compute_signing_root(
                m.tree_hash_root().0,
                self.domain(signing::CONTRIBUTION_AND_PROOF, slot / SLOTS_PER_EPOCH),
            );
            self.verify(index, &root, &c.signature)?;
            let committee =
                self.sync_committee(slot / SLOTS_PER_EPOCH / EPOCHS_PER_SYNC_COMMITTEE_PERIOD);
            let member = committee.iter().enumerate().any(|(pos, i)| {
                *i == index
                    && pos as u64 / ssv_protocol::beacon::SYNC_SUBCOMMITTEE_SIZE as u64 == sub
            });
            if !member {
                return Err(format!("validator {index} is not in subcommittee {sub}"));
            }
            if !ssv_protocol::runner::is_sync_committee_aggregator(&m.selection_proof) {
                return Err(format!(
                    "validator {index} does not aggregate subcommittee {sub}"
                ));
            }
            let served = self
                .inner
                .state
                .lock()
                .contributions
                .get(&(slot, sub))
                .copied();
            if served != Some(m.contribution.tree_hash_root().0) {
                return Err("not the contribution served for the subcommittee".into());
            }
            Ok(())
        })();
        self.tally(Tally::Contribution, slot, received_ms, verdict, |st| {
            st.contributed.insert((slot, index, sub))
        })
    }

    /// Checks and records one voluntary exit: of a validator with an exit request, signed
    /// under the Capella fork's exit domain (EIP-7044).
    pub fn submit_exit(
        &self,
        e: &ssv_protocol::beacon::phase0::SignedVoluntaryExit,
    ) -> Result<(), String> {
        let index = e.message.validator_index;
        let root = compute_signing_root(e.message.tree_hash_root().0, self.inner.domain_exit);
        let verdict = self.verify(index, &root, &e.signature).and_then(|()| {
            if self.inner.cfg.exit_requests.contains(&index) {
                Ok(())
            } else {
                Err(format!("validator {index} has no exit request"))
            }
        });
        let mut st = self.inner.state.lock();
        match verdict {
            Err(e) => {
                st.stats.exits_invalid += 1;
                Err(e)
            }
            Ok(()) => {
                if st.exited.insert(index) {
                    st.stats.exits_valid += 1;
                }
                Ok(())
            }
        }
    }

    /// Records beacon-committee subscriptions: each must match an attester duty.
    pub fn subscribe_committees(
        &self,
        subs: &[ssv_beacon_api::types::BeaconCommitteeSubscription],
    ) {
        let mut st = self.inner.state.lock();
        for sub in subs {
            let ok = self
                .duties_locked(&mut st, sub.slot / SLOTS_PER_EPOCH)
                .iter()
                .any(|d| {
                    d.validator_index == sub.validator_index
                        && d.slot == sub.slot
                        && d.committee_index == sub.committee_index
                        && d.committees_at_slot == sub.committees_at_slot
                });
            if ok {
                st.stats.beacon_subscriptions += 1;
            } else {
                st.stats.preparations_invalid += 1;
            }
        }
    }

    /// Records sync-committee subscriptions: each of a member, with its own indices.
    pub fn subscribe_sync(&self, subs: &[ssv_beacon_api::types::SyncCommitteeSubscription]) {
        let slot = self.current_slot().unwrap_or(0);
        let committee =
            self.sync_committee(slot / SLOTS_PER_EPOCH / EPOCHS_PER_SYNC_COMMITTEE_PERIOD);
        let mut st = self.inner.state.lock();
        for sub in subs {
            let ok = sub
                .sync_committee_indices
                .iter()
                .all(|i| committee.get(*i as usize) == Some(&sub.validator_index));
            if ok {
                st.stats.sync_subscriptions += 1;
            } else {
                st.stats.preparations_invalid += 1;
            }
        }
    }

    /// Records fee recipients: each of a known validator.
    pub fn prepare_proposers(&self, preps: &[ssv_beacon_api::types::ProposerPreparation]) {
        let mut st = self.inner.state.lock();
        let now = SlotClock::now_ms();
        for p in preps {
            if self.inner.by_index.contains_key(&p.validator_index) {
                st.stats.fee_recipients_prepared += 1;
                st.fee_recipients
                    .entry(p.validator_index)
                    .or_default()
                    .push((now, p.fee_recipient));
            } else {
                st.stats.preparations_invalid += 1;
            }
        }
    }

    /// The validators whose builder registration falls in `slot` (index and slot equal
    /// modulo [`REGISTRATION_PERIOD_SLOTS`]).
    fn registering(&self, slot: u64) -> impl Iterator<Item = u64> + '_ {
        self.inner
            .cfg
            .validators
            .iter()
            .map(|v| v.index)
            .filter(move |i| i % REGISTRATION_PERIOD_SLOTS == slot % REGISTRATION_PERIOD_SLOTS)
    }

    /// Checks and records one builder registration: signed by the validator under the
    /// builder domain, with the start of an epoch holding the validator's registration slot as
    /// its timestamp.
    pub fn submit_registration(
        &self,
        r: &ssv_protocol::beacon::builder::SignedValidatorRegistration,
    ) -> Result<(), String> {
        let received_ms = SlotClock::now_ms();
        let m = &r.message;
        let v = self
            .inner
            .cfg
            .validators
            .iter()
            .find(|v| v.pubkey == m.pubkey)
            .ok_or("unknown validator")?
            .clone();
        let root = compute_signing_root(m.tree_hash_root().0, self.inner.domain_builder);
        self.verify(v.index, &root, &r.signature)?;
        // The epoch whose start the timestamp is, then the validator's slot in it.
        let epoch_ms = self.slot_ms() * SLOTS_PER_EPOCH;
        let x = (m.timestamp * 1000).saturating_sub(self.inner.cfg.genesis_time_ms);
        let epoch = [x / epoch_ms, x / epoch_ms + 1]
            .into_iter()
            .find(|e| self.slot_start_ms(e * SLOTS_PER_EPOCH) / 1000 == m.timestamp)
            .ok_or_else(|| format!("timestamp {} is no epoch's start", m.timestamp))?;
        let slot = (epoch * SLOTS_PER_EPOCH..(epoch + 1) * SLOTS_PER_EPOCH)
            .find(|s| s % REGISTRATION_PERIOD_SLOTS == v.index % REGISTRATION_PERIOD_SLOTS)
            .ok_or_else(|| {
                format!(
                    "validator {} registers in no slot of epoch {epoch}",
                    v.index
                )
            })?;
        if !self.counted(slot) {
            return Ok(());
        }
        let mut st = self.inner.state.lock();
        if !st.registered.insert((slot, v.index)) {
            return Ok(());
        }
        st.stats.registrations_valid += 1;
        let latency = received_ms.saturating_sub(self.slot_start_ms(slot));
        if latency > self.inner.cfg.late_after.as_millis() as u64 {
            st.stats.registrations_late += 1;
        }
        st.stats.latencies_ms.push(latency);
        Ok(())
    }

    /// The proposer of `slot` when it is one of our validators: a seeded draw from
    /// [`SimConfig::network_validators`].
    pub fn proposer(&self, slot: u64) -> Option<&SimValidator> {
        self.proposer_as_seen(slot, true)
    }

    /// Whether `slot` lies after the reorg, in its epoch (its proposer is drawn again).
    fn reorged(&self, slot: u64) -> bool {
        self.inner
            .cfg
            .reorg_at
            .is_some_and(|r| slot > r && slot / SLOTS_PER_EPOCH == r / SLOTS_PER_EPOCH)
    }

    /// The proposer of `slot` before (`after_reorg` false) or after the reorg.
    fn proposer_as_seen(&self, slot: u64, after_reorg: bool) -> Option<&SimValidator> {
        let ours = &self.inner.cfg.validators;
        let n = self
            .inner
            .cfg
            .network_validators
            .max(ours.len() as u64)
            .max(1);
        let salt: &[u8] = if after_reorg && self.reorged(slot) {
            b"proposer after the reorg"
        } else {
            b"proposer"
        };
        let d = h(&[
            salt,
            &self.inner.cfg.seed.to_le_bytes(),
            &slot.to_le_bytes(),
        ]);
        let draw = u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8])) % n;
        ours.get(usize::try_from(draw).ok()?)
    }

    /// Whether the chain has gone through its reorg by now.
    fn reorg_happened(&self) -> bool {
        match (self.inner.cfg.reorg_at, self.current_slot()) {
            (Some(r), Some(now)) => now >= r,
            _ => false,
        }
    }

    /// The root the proposer duties of `epoch` depend on, as the chain stands now.
    fn dependent_root(&self, epoch: u64) -> [u8; 32] {
        let first = epoch * SLOTS_PER_EPOCH;
        match self.inner.cfg.reorg_at {
            Some(r) if r / SLOTS_PER_EPOCH == epoch && self.reorg_happened() => {
                h(&[b"dependent root after the reorg", &epoch.to_le_bytes()])
            }
            _ => Self::block_root(first.saturating_sub(1)),
        }
    }

    /// The root the attester duties of `epoch` depend on (the block before the previous
    /// epoch: the proposer duties' dependent root of the epoch before, reorg included).
    fn attester_dependent_root(&self, epoch: u64) -> [u8; 32] {
        self.dependent_root(epoch.saturating_sub(1))
    }

    /// The proposer duties of `epoch` (ours: the simulator knows no other validator), as
    /// the chain stands now (before its reorg, the proposers it will replace).
    pub fn proposer_duties(&self, epoch: u64) -> ProposerDuties {
        let first = epoch * SLOTS_PER_EPOCH;
        let after = self.reorg_happened();
        ProposerDuties {
            dependent_root: self.dependent_root(epoch),
            execution_optimistic: false,
            data: (first..first + SLOTS_PER_EPOCH)
                .filter_map(|slot| {
                    self.proposer_as_seen(slot, after).map(|v| ProposerDuty {
                        pubkey: v.pubkey,
                        validator_index: v.index,
                        slot,
                    })
                })
                .collect(),
        }
    }

    /// Whether the proposer of a slot gets blinded blocks (half of the validators, as if
    /// registered with a builder).
    fn blinded_for(index: u64) -> bool {
        index % 2 == 1
    }

    /// `produce block v3`: an Electra block of the simulator's making for the slot's
    /// proposer, after checking its RANDAO reveal; full (block contents without blobs) or
    /// blinded. Returns whether it is blinded and its SSZ.
    pub fn produce_block(
        &self,
        slot: u64,
        randao_reveal: &[u8; 96],
        graffiti: [u8; 32],
    ) -> Result<(bool, Vec<u8>), String> {
        let v = self
            .proposer(slot)
            .ok_or_else(|| format!("no validator of ours proposes at slot {slot}"))?;
        self.note_live_elsewhere(v.index, || format!("RANDAO reveal for slot {slot}"));
        let epoch = slot / SLOTS_PER_EPOCH;
        let randao_root = compute_signing_root(
            signing::u64_root(epoch),
            self.domain(signing::RANDAO, epoch),
        );
        self.verify(v.index, &randao_root, randao_reveal)
            .map_err(|e| format!("RANDAO reveal: {e}"))?;
        let block = beacon_objects::electra_block(beacon_objects::BlockInputs {
            slot,
            proposer_index: v.index,
            parent_root: Self::block_root(slot.saturating_sub(1)),
            randao_reveal: *randao_reveal,
            graffiti,
            fee_recipient: v.pubkey[..20].try_into().unwrap_or([0; 20]),
            timestamp: self.slot_start_ms(slot) / 1000,
            transactions: (0..slot % 7)
                .map(|i| h(&[b"tx", &slot.to_le_bytes(), &i.to_le_bytes()]).to_vec())
                .collect(),
        });
        self.inner
            .state
            .lock()
            .produced
            .insert(slot, block.tree_hash_root().0);
        let blinded = Self::blinded_for(v.index);
        Ok((blinded, beacon_objects::block_ssz(block, blinded)))
    }

    /// Checks and records one published block (`version` from `Eth-Consensus-Version`).
    pub fn submit_block(&self, version: &str, blinded: bool, body: &[u8]) -> Result<(), String> {
        let received_ms = SlotClock::now_ms();
        let v = DataVersion::from_name(&version.to_ascii_lowercase())
            .filter(|v| *v == DataVersion::Electra)
            .ok_or_else(|| format!("the simulator serves Electra blocks, not {version:?}"))?;
        let signed = SignedProposal::from_ssz(v.to_u64(), blinded, body)
            .map_err(|e| format!("signed block: {e}"))?;
        let (slot, index) = (signed.proposal.slot(), signed.proposal.proposer_index());
        let root = signed.proposal.block_root();
        let signing_root = compute_signing_root(
            root,
            self.domain(signing::BEACON_PROPOSER, slot / SLOTS_PER_EPOCH),
        );
        self.note_live_elsewhere(index, || format!("block at slot {slot}"));
        let signed_ok = self.verify(index, &signing_root, &signed.signature);
        if signed_ok.is_ok() {
            self.block_ledger(index, slot, root);
            self.saw_live(slot / SLOTS_PER_EPOCH, index);
        }
        let verdict = signed_ok.and_then(|()| {
            match self.proposer(slot) {
                Some(p) if p.index == index => {}
                _ => return Err(format!("validator {index} does not propose at slot {slot}")),
            }
            if matches!(
                signed.proposal,
                Proposal::Electra(_) | Proposal::ElectraBlinded(_)
            ) && self.inner.state.lock().produced.get(&slot) != Some(&root)
            {
                return Err("not the block produced for the slot".into());
            }
            Ok(())
        });
        self.tally(Tally::Proposal, slot, received_ms, verdict, |st| {
            st.proposed.insert(slot)
        })
    }

    /// Records a correctly signed block; a second, different one of the same validator and
    /// slot is a double proposal.
    fn block_ledger(&self, index: u64, slot: u64, root: [u8; 32]) {
        let mut st = self.inner.state.lock();
        let previous = *st.signed_blocks.entry((index, slot)).or_insert(root);
        if previous != root {
            st.stats.slashable_submissions += 1;
            tracing::error!(
                validator = index,
                slot,
                "SLASHABLE block submitted: double proposal"
            );
            if st.stats.slashable_examples.len() < SLASHABLE_EXAMPLES_MAX {
                st.stats
                    .slashable_examples
                    .push(format!("validator {index} at slot {slot}: double proposal"));
            }
        }
    }

    /// Runs the slot clock: emits a head event at every slot start until the task is dropped.
    pub async fn run_clock(self) {
        loop {
            let now = SlotClock::now_ms();
            let next_slot = self.current_slot().map_or(0, |s| s + 1);
            let wait = self.slot_start_ms(next_slot).saturating_sub(now);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let slot = next_slot;
            {
                let mut st = self.inner.state.lock();
                self.account_through(&mut st, slot);
            }
            let _ = self.inner.head_tx.send(self.head_event(slot));
        }
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/eth/v1/beacon/genesis", get(genesis))
            .route("/eth/v1/config/spec", get(spec))
            .route("/eth/v1/config/fork_schedule", get(fork_schedule))
            .route("/eth/v1/beacon/states/{state}/fork", get(fork))
            .route("/eth/v1/node/syncing", get(syncing))
            .route(
                "/eth/v1/validator/duties/attester/{epoch}",
                post(attester_duties),
            )
            .route("/eth/v1/validator/duties/sync/{epoch}", post(sync_duties))
            .route("/eth/v1/validator/liveness/{epoch}", post(liveness))
            .route("/eth/v1/validator/attestation_data", get(attestation_data))
            .route("/eth/v1/beacon/blocks/{block}/root", get(block_root))
            .route("/eth/v1/beacon/states/{state}/validators", post(validators))
            .route("/eth/v2/beacon/pool/attestations", post(pool_attestations))
            .route("/eth/v1/beacon/pool/sync_committees", post(pool_sync))
            .route("/eth/v1/beacon/pool/voluntary_exits", post(pool_exits))
            .route(
                "/eth/v1/validator/beacon_committee_subscriptions",
                post(committee_subscriptions),
            )
            .route(
                "/eth/v1/validator/sync_committee_subscriptions",
                post(sync_subscriptions),
            )
            .route(
                "/eth/v1/validator/prepare_beacon_proposer",
                post(prepare_beacon_proposer),
            )
            .route(
                "/eth/v1/validator/duties/proposer/{epoch}",
                get(proposer_duties),
            )
            .route("/eth/v3/validator/blocks/{slot}", get(produce_block))
            .route(
                "/eth/v2/validator/aggregate_attestation",
                get(aggregate_attestation),
            )
            .route(
                "/eth/v2/validator/aggregate_and_proofs",
                post(publish_aggregates),
            )
            .route(
                "/eth/v1/validator/register_validator",
                post(register_validator),
            )
            .route(
                "/eth/v1/validator/sync_committee_contribution",
                get(sync_committee_contribution),
            )
            .route(
                "/eth/v1/validator/contribution_and_proofs",
                post(publish_contributions),
            )
            .route("/eth/v2/beacon/blocks", post(publish_block))
            .route("/eth/v2/beacon/blinded_blocks", post(publish_blinded_block))
            .route("/eth/v1/events", get(events))
            .route("/sim/v1/stats", get(stats))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                count_request,
            ))
            .with_state(self.clone())
    }

    /// Binds `addr`, serves the API and runs the clock until `shutdown` resolves.
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        self.serve_listener(listener, shutdown)
    }

    /// Serves the API on a bound `listener` and runs the clock until `shutdown` resolves
    /// (for callers that must know the address before the simulator is built).
    pub fn serve_listener(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<SocketAddr> {
        let local = listener.local_addr()?;
        let clock = tokio::spawn(self.clone().run_clock());
        let router = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await;
            clock.abort();
        });
        Ok(local)
    }

    /// Serves this view's API on a bound `listener` until `shutdown` resolves, without a
    /// clock of its own: a second listener of a chain that [`BeaconSim::serve_listener`]
    /// already runs (e.g. a [`BeaconSim::lagging`] view of it).
    pub fn serve_view(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<SocketAddr> {
        let local = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(local)
    }
}

/// Counts every request by kind on its listener's view.
async fn count_request(
    State(sim): State<BeaconSim>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    sim.view.count(req.uri().path());
    next.run(req).await
}

fn api_error(code: StatusCode, message: impl Into<String>) -> Response {
    (
        code,
        Json(ApiError {
            code: code.as_u16(),
            message: message.into(),
        }),
    )
        .into_response()
}

async fn genesis(State(sim): State<BeaconSim>) -> Json<Data<Genesis>> {
    Json(Data {
        data: sim.genesis(),
    })
}

async fn spec(State(sim): State<BeaconSim>) -> Json<Data<Spec>> {
    let ms = sim.slot_ms();
    let zero = sim.inner.cfg.fault == Some(SimFault::SpecZero);
    Json(Data {
        data: Spec {
            seconds_per_slot: if zero { 0 } else { ms.div_ceil(1000) },
            slots_per_epoch: SLOTS_PER_EPOCH,
            slot_duration_ms: Some(if zero { 0 } else { ms }),
            epochs_per_sync_committee_period: EPOCHS_PER_SYNC_COMMITTEE_PERIOD,
            capella_fork_version: Some(SIM_CAPELLA_VERSION),
        },
    })
}

async fn fork(State(sim): State<BeaconSim>) -> Json<Data<Fork>> {
    let epoch = sim.current_slot().unwrap_or(0) / SLOTS_PER_EPOCH;
    let forks = sim.fork_schedule();
    let current = forks
        .iter()
        .rev()
        .find(|f| f.epoch <= epoch)
        .cloned()
        .unwrap_or_else(|| forks[0].clone());
    Json(Data { data: current })
}

async fn fork_schedule(State(sim): State<BeaconSim>) -> Json<Data<Vec<Fork>>> {
    Json(Data {
        data: sim.fork_schedule(),
    })
}

async fn syncing(State(sim): State<BeaconSim>) -> Json<Data<Syncing>> {
    let now = sim.current_slot().unwrap_or(0);
    let head_slot = now.saturating_sub(sim.view.lag_slots);
    Json(Data {
        data: Syncing {
            head_slot,
            sync_distance: now - head_slot,
            is_syncing: head_slot < now,
            is_optimistic: false,
            el_offline: false,
        },
    })
}

fn parse_indices(body: &[String]) -> Result<Vec<u64>, String> {
    body.iter()
        .map(|s| s.parse::<u64>().map_err(|_| format!("bad index {s:?}")))
        .collect()
}

/// `POST /eth/v1/validator/liveness/{epoch}`: one entry per index asked; an epoch after the
/// current one is refused (nothing can have been seen of it).
async fn liveness(
    State(sim): State<BeaconSim>,
    Path(epoch): Path<u64>,
    Json(body): Json<Vec<String>>,
) -> Response {
    let indices = match parse_indices(&body) {
        Ok(i) => i,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, e),
    };
    let current = sim.current_slot().unwrap_or(0) / SLOTS_PER_EPOCH;
    if epoch > current {
        return api_error(
            StatusCode::BAD_REQUEST,
            format!("epoch {epoch} is after the current epoch {current}"),
        );
    }
    Json(Data {
        data: sim.liveness(epoch, &indices),
    })
    .into_response()
}

async fn attester_duties(
    State(sim): State<BeaconSim>,
    Path(epoch): Path<u64>,
    Json(body): Json<Vec<String>>,
) -> Response {
    let indices: HashSet<u64> = match parse_indices(&body) {
        Ok(v) => v.into_iter().collect(),
        Err(e) => return api_error(StatusCode::BAD_REQUEST, e),
    };
    let mut data: Vec<AttesterDuty> = sim
        .attester_duties(epoch)
        .into_iter()
        .filter(|d| indices.contains(&d.validator_index))
        .collect();
    match sim.inner.cfg.fault {
        Some(f @ (SimFault::DuplicateDuty | SimFault::DuplicateDutyFakePubkey)) => {
            let dups: Vec<AttesterDuty> = data
                .iter()
                .filter(|d| d.validator_index % 4 == 0)
                .map(|d| {
                    let mut dup = d.clone();
                    dup.slot = if d.slot % SLOTS_PER_EPOCH + 3 < SLOTS_PER_EPOCH {
                        d.slot + 3
                    } else {
                        d.slot - 3
                    };
                    if f == SimFault::DuplicateDutyFakePubkey {
                        dup.pubkey = fake_pubkey(d.validator_index);
                    }
                    dup
                })
                .collect();
            data.extend(dups);
        }
        Some(SimFault::Slow) => {
            let first = sim.inner.state.lock().slowed_epochs.insert(epoch);
            if first {
                tokio::time::sleep(SLOW_DELAY).await;
            }
        }
        _ => {}
    }
    Json(AttesterDuties {
        dependent_root: sim.attester_dependent_root(epoch),
        execution_optimistic: false,
        data,
    })
    .into_response()
}

async fn sync_duties(
    State(sim): State<BeaconSim>,
    Path(epoch): Path<u64>,
    Json(body): Json<Vec<String>>,
) -> Response {
    match parse_indices(&body) {
        Ok(indices) => Json(Data {
            data: sim.sync_duties(epoch, &indices),
        })
        .into_response(),
        Err(e) => api_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn attestation_data(
    State(sim): State<BeaconSim>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(slot) = q.get("slot").and_then(|s| s.parse::<u64>().ok()) else {
        return api_error(StatusCode::BAD_REQUEST, "slot is required");
    };
    if sim.current_slot().is_none_or(|now| slot > now) {
        return api_error(
            StatusCode::BAD_REQUEST,
            format!("slot {slot} is in the future"),
        );
    }
    let mut data = sim.stale_attestation_data(slot, sim.view.lag_slots);
    match sim.inner.cfg.fault {
        Some(SimFault::FutureTarget) if slot % 2 == 1 => {
            data.target.epoch += 1;
            data.target.root = BeaconSim::block_root(data.target.epoch * SLOTS_PER_EPOCH);
        }
        Some(SimFault::HugeBody) if slot % 2 == 0 => return huge_body(),
        Some(SimFault::Slow) if slot % 3 == 0 => tokio::time::sleep(SLOW_DELAY).await,
        _ => {}
    }
    Json(Data { data }).into_response()
}

/// A response declaring [`HUGE_BODY_BYTES`] and streaming spaces towards it.
fn huge_body() -> Response {
    let chunk = axum::body::Bytes::from(vec![b' '; 1 << 20]);
    let chunks = (HUGE_BODY_BYTES >> 20) as usize;
    let stream = futures::stream::iter(
        std::iter::repeat_n(chunk, chunks).map(Ok::<_, std::convert::Infallible>),
    );
    Response::builder()
        .header("content-type", "application/json")
        .header("content-length", HUGE_BODY_BYTES.to_string())
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A pubkey that is nobody's (for [`SimFault::DuplicateDutyFakePubkey`]).
fn fake_pubkey(index: u64) -> [u8; 48] {
    let a = h(&[b"fake pubkey", &index.to_le_bytes()]);
    let b = h(&[b"fake pubkey 2", &index.to_le_bytes()]);
    let mut out = [0u8; 48];
    out[..32].copy_from_slice(&a);
    out[32..].copy_from_slice(&b[..16]);
    out
}

async fn block_root(State(sim): State<BeaconSim>, Path(block): Path<String>) -> Response {
    let slot = match block.as_str() {
        "head" => sim.current_slot().unwrap_or(0),
        s => match s.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    format!("unsupported block id {s:?}"),
                );
            }
        },
    };
    Json(Data {
        data: BlockRoot {
            root: BeaconSim::block_root(slot),
        },
    })
    .into_response()
}

async fn validators(State(sim): State<BeaconSim>, Json(body): Json<serde_json::Value>) -> Response {
    let ids: Vec<String> = body
        .get("ids")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let want: Vec<&SimValidator> = sim
        .inner
        .cfg
        .validators
        .iter()
        .filter(|v| {
            ids.is_empty()
                || ids.iter().any(|id| {
                    *id == v.index.to_string() || *id == format!("0x{}", hex::encode(v.pubkey))
                })
        })
        .collect();
    let now = sim.current_slot().unwrap_or(0);
    let cfg = &sim.inner.cfg;
    let data: Vec<ValidatorEntry> = want
        .into_iter()
        .filter(|v| cfg.deposits_at.get(&v.index).is_none_or(|at| now >= *at))
        .map(|v| ValidatorEntry {
            index: v.index,
            status: if cfg.exits_at.get(&v.index).is_some_and(|at| now >= *at) {
                "exited_unslashed".into()
            } else {
                "active_ongoing".into()
            },
            validator: ValidatorInfo { pubkey: v.pubkey },
        })
        .collect();
    Json(Data { data }).into_response()
}

async fn pool_attestations(
    State(sim): State<BeaconSim>,
    Json(body): Json<Vec<SingleAttestation>>,
) -> Response {
    let failures: Vec<String> = body
        .iter()
        .enumerate()
        .filter_map(|(i, a)| sim.submit_attestation(a).err().map(|e| format!("{i}: {e}")))
        .collect();
    if failures.is_empty() {
        StatusCode::OK.into_response()
    } else {
        api_error(StatusCode::BAD_REQUEST, failures.join("; "))
    }
}

async fn pool_sync(
    State(sim): State<BeaconSim>,
    Json(body): Json<Vec<SyncCommitteeMessage>>,
) -> Response {
    let failures: Vec<String> = body
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            sim.submit_sync_message(m)
                .err()
                .map(|e| format!("{i}: {e}"))
        })
        .collect();
    if failures.is_empty() {
        StatusCode::OK.into_response()
    } else {
        api_error(StatusCode::BAD_REQUEST, failures.join("; "))
    }
}

async fn proposer_duties(State(sim): State<BeaconSim>, Path(epoch): Path<u64>) -> Response {
    Json(sim.proposer_duties(epoch)).into_response()
}

fn hex_param<const N: usize>(q: &BTreeMap<String, String>, name: &str) -> Result<[u8; N], String> {
    let v = q.get(name).ok_or_else(|| format!("{name} missing"))?;
    hex::decode(v.trim_start_matches("0x"))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("{name}: {N} hex bytes expected"))
}

async fn produce_block(
    State(sim): State<BeaconSim>,
    Path(slot): Path<u64>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let params = hex_param::<96>(&q, "randao_reveal").and_then(|r| {
        let graffiti = match q.get("graffiti") {
            Some(_) => hex_param::<32>(&q, "graffiti")?,
            None => [0; 32],
        };
        Ok((r, graffiti))
    });
    let produced = params.and_then(|(randao, graffiti)| sim.produce_block(slot, &randao, graffiti));
    match produced {
        Ok((blinded, ssz)) => (
            [
                ("content-type", "application/octet-stream"),
                ("eth-consensus-version", "electra"),
                (
                    "eth-execution-payload-blinded",
                    if blinded { "true" } else { "false" },
                ),
            ],
            ssz,
        )
            .into_response(),
        Err(e) => api_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn publish(
    sim: &BeaconSim,
    blinded: bool,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Response {
    let version = headers
        .get("eth-consensus-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match sim.submit_block(version, blinded, body) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => api_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn publish_block(
    State(sim): State<BeaconSim>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    publish(&sim, false, &headers, &body).await
}

async fn publish_blinded_block(
    State(sim): State<BeaconSim>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    publish(&sim, true, &headers, &body).await
}

async fn aggregate_attestation(
    State(sim): State<BeaconSim>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let num = |name: &str| -> Result<u64, String> {
        q.get(name)
            .ok_or_else(|| format!("{name} missing"))?
            .parse()
            .map_err(|_| format!("{name}: a number expected"))
    };
    let result = (|| {
        let root = hex_param::<32>(&q, "attestation_data_root")?;
        sim.aggregate_attestation(num("slot")?, &root, num("committee_index")?)
    })();
    match result {
        Ok(a) => Json(serde_json::json!({
            "version": "electra",
            "data": ssv_beacon_api::types::AttestationElectra::from_container(&a),
        }))
        .into_response(),
        Err(e) => api_error(StatusCode::NOT_FOUND, e),
    }
}

async fn publish_aggregates(
    State(sim): State<BeaconSim>,
    Json(body): Json<Vec<ssv_beacon_api::types::SignedAggregateAndProofElectra>>,
) -> Response {
    let failures: Vec<String> = body
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            a.to_container()
                .and_then(|c| sim.submit_aggregate(&c))
                .err()
                .map(|e| format!("{i}: {e}"))
        })
        .collect();
    if failures.is_empty() {
        StatusCode::OK.into_response()
    } else {
        api_error(StatusCode::BAD_REQUEST, failures.join("; "))
    }
}

async fn register_validator(
    State(sim): State<BeaconSim>,
    Json(body): Json<Vec<ssv_beacon_api::types::SignedValidatorRegistrationJson>>,
) -> Response {
    let mut failures = Vec::new();
    for (i, r) in body.iter().enumerate() {
        if let Err(e) = sim.submit_registration(&r.to_container()) {
            failures.push(format!("{i}: {e}"));
            let mut st = sim.inner.state.lock();
            st.stats.registrations_invalid += 1;
        }
    }
    if failures.is_empty() {
        StatusCode::OK.into_response()
    } else {
        api_error(StatusCode::BAD_REQUEST, failures.join("; "))
    }
}

async fn sync_committee_contribution(
    State(sim): State<BeaconSim>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let num = |name: &str| -> Result<u64, String> {
        q.get(name)
            .ok_or_else(|| format!("{name} missing"))?
            .parse()
            .map_err(|_| format!("{name}: a number expected"))
    };
    let result = (|| {
        let root = hex_param::<32>(&q, "beacon_block_root")?;
        sim.sync_contribution(num("slot")?, num("subcommittee_index")?, &root)
    })();
    match result {
        Ok(c) => Json(Data {
            data: ssv_beacon_api::types::SyncCommitteeContributionJson::from_container(&c),
        })
        .into_response(),
        Err(e) => api_error(StatusCode::NOT_FOUND, e),
    }
}

async fn publish_contributions(
    State(sim): State<BeaconSim>,
    Json(body): Json<Vec<ssv_beacon_api::types::SignedContributionAndProofJson>>,
) -> Response {
    let failures: Vec<String> = body
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            c.to_container()
                .and_then(|c| sim.submit_contribution(&c))
                .err()
                .map(|e| format!("{i}: {e}"))
        })
        .collect();
    if failures.is_empty() {
        StatusCode::OK.into_response()
    } else {
        api_error(StatusCode::BAD_REQUEST, failures.join("; "))
    }
}

async fn pool_exits(
    State(sim): State<BeaconSim>,
    Json(body): Json<ssv_beacon_api::types::SignedVoluntaryExitJson>,
) -> Response {
    match sim.submit_exit(&body.to_container()) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => api_error(StatusCode::BAD_REQUEST, e),
    }
}

async fn committee_subscriptions(
    State(sim): State<BeaconSim>,
    Json(body): Json<Vec<ssv_beacon_api::types::BeaconCommitteeSubscription>>,
) -> Response {
    sim.subscribe_committees(&body);
    StatusCode::OK.into_response()
}

async fn sync_subscriptions(
    State(sim): State<BeaconSim>,
    Json(body): Json<Vec<ssv_beacon_api::types::SyncCommitteeSubscription>>,
) -> Response {
    sim.subscribe_sync(&body);
    StatusCode::OK.into_response()
}

async fn prepare_beacon_proposer(
    State(sim): State<BeaconSim>,
    Json(body): Json<Vec<ssv_beacon_api::types::ProposerPreparation>>,
) -> Response {
    sim.prepare_proposers(&body);
    StatusCode::OK.into_response()
}

async fn events(
    State(sim): State<BeaconSim>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if q.get("topics")
        .is_none_or(|t| !t.split(',').any(|t| t == "head"))
    {
        return api_error(StatusCode::BAD_REQUEST, "only the head topic is served");
    }
    let rx = sim.inner.head_tx.subscribe();
    let stream = futures::stream::unfold(rx, move |mut rx| {
        let sim = sim.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        // A lagging view sends the head it has: the chain's of `lag_slots` ago.
                        let ev = match sim.view.lag_slots {
                            0 => ev,
                            lag => sim.head_event(ev.slot.saturating_sub(lag)),
                        };
                        let data = serde_json::to_string(&ev).unwrap_or_default();
                        return Some((
                            Ok::<_, std::convert::Infallible>(
                                Event::default().event("head").data(data),
                            ),
                            rx,
                        ));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn stats(State(sim): State<BeaconSim>) -> Json<SimStats> {
    Json(sim.stats())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssv_crypto_pipeline::SecretKey;

    const SLOT_MS: u64 = 100;

    /// A simulator whose genesis lies `slots_ago` slots in the past, counting slots 32..=35.
    fn sim_in_the_past(slots_ago: u64) -> (BeaconSim, Vec<SecretKey>) {
        sim_in_the_past_with(slots_ago, |_| {})
    }

    /// [`sim_in_the_past`] with `f` applied to the config.
    fn sim_in_the_past_with(
        slots_ago: u64,
        f: impl FnOnce(&mut SimConfig),
    ) -> (BeaconSim, Vec<SecretKey>) {
        let sks: Vec<SecretKey> = (0..64u8)
            .map(|i| SecretKey::from_ikm(&[i + 1; 32]))
            .collect();
        let validators = sks
            .iter()
            .enumerate()
            .map(|(i, sk)| SimValidator {
                index: i as u64,
                pubkey: sk.public_key().to_bytes(),
                secret: Some(sk.clone()),
            })
            .collect();
        let mut cfg = SimConfig::new(validators, Duration::from_millis(SLOT_MS), Duration::ZERO);
        cfg.genesis_time_ms = SlotClock::now_ms() - slots_ago * SLOT_MS;
        cfg.last_slot = Some(SLOTS_PER_EPOCH + 3);
        f(&mut cfg);
        (BeaconSim::new(cfg).expect("valid keys"), sks)
    }

    fn attestation(sim: &BeaconSim, sks: &[SecretKey], d: &AttesterDuty) -> SingleAttestation {
        let data = sim.attestation_data(d.slot);
        let root = compute_signing_root(
            data.tree_hash_root().0,
            sim.domain(signing::BEACON_ATTESTER, data.target.epoch),
        );
        SingleAttestation {
            committee_index: d.committee_index,
            attester_index: d.validator_index,
            data,
            signature: sks[d.validator_index as usize].sign(&root).to_bytes(),
        }
    }

    #[test]
    fn a_lagging_view_serves_a_stale_head_and_counts_apart() {
        let (sim, _) = sim_in_the_past(50);
        let lagging = sim.lagging(16);
        assert_eq!(sim.stale_attestation_data(45, 0), sim.attestation_data(45));
        for slot in [40, 45, 60, 70] {
            let stale = lagging.stale_attestation_data(slot, 16);
            assert_eq!(stale.slot, slot);
            assert_eq!(
                stale.target.epoch,
                slot / SLOTS_PER_EPOCH,
                "the shape nodes check"
            );
            assert!(stale.source.epoch < stale.target.epoch);
            assert_ne!(stale, sim.attestation_data(slot), "not the chain's");
            assert_eq!(
                stale.beacon_block_root,
                BeaconSim::block_root(slot - 16),
                "its head is 16 slots old"
            );
        }
        // Each listener counts its own requests, by kind.
        for path in [
            "/eth/v1/node/syncing",
            "/eth/v1/events",
            "/eth/v1/beacon/genesis",
            "/eth/v1/config/spec",
            "/eth/v1/beacon/states/head/fork",
            "/eth/v1/beacon/states/head/validators",
            "/eth/v1/validator/attestation_data",
            "/eth/v1/validator/duties/attester/2",
            "/eth/v2/beacon/pool/attestations",
            "/eth/v3/validator/blocks/40",
            "/sim/v1/stats",
        ] {
            lagging.view.count(path);
        }
        assert_eq!(
            lagging.requests(),
            ListenerRequests {
                syncing: 1,
                head_subscriptions: 1,
                duties: 4,
                other: 4,
            }
        );
        assert_eq!(sim.requests(), ListenerRequests::default());
    }

    #[test]
    fn only_slots_in_the_window_are_counted() {
        let (sim, sks) = sim_in_the_past(50);
        let window = SLOTS_PER_EPOCH..=SLOTS_PER_EPOCH + 3;
        let duties = sim.attester_duties(1);
        let in_window = duties.iter().filter(|d| window.contains(&d.slot)).count() as u64;
        let sync = sim.sync_committee(0).len() as u64;
        assert!(in_window > 0);

        let s = sim.stats();
        assert_eq!(s.attestations_expected, in_window);
        assert_eq!(s.sync_messages_expected, 4 * sync);
        // Committees under 32 members: every attester also aggregates.
        assert_eq!(s.aggregations_expected, in_window);
        assert_eq!(
            s.missed,
            2 * in_window + 4 * sync + s.proposals_expected,
            "nothing was submitted"
        );
        assert_eq!(s.settled_slot, Some(SLOTS_PER_EPOCH + 3));
        // Counting again (the clock task and `stats` race) changes nothing.
        assert_eq!(sim.stats(), s);

        // A valid attestation of a slot after the window is accepted but not counted.
        let after = duties
            .iter()
            .find(|d| d.slot > *window.end())
            .expect("a duty after the window");
        sim.submit_attestation(&attestation(&sim, &sks, after))
            .expect("valid");
        // One inside the window is counted (late: it comes long after its slot).
        let inside = duties
            .iter()
            .find(|d| window.contains(&d.slot))
            .expect("a duty in the window");
        sim.submit_attestation(&attestation(&sim, &sks, inside))
            .expect("valid");
        let s = sim.stats();
        assert_eq!(s.attestations_valid, 1);
        assert_eq!(s.attestations_late, 1);
        assert_eq!(s.latencies_ms.len(), 1);
        assert_eq!(s.attestations_invalid, 0);
    }

    /// Validators live elsewhere are reported live in every epoch, their duties are not
    /// expected of the nodes, and any submission for them is counted; the others are live
    /// in an epoch once the simulator has a correctly signed attestation of theirs.
    #[test]
    fn validators_live_elsewhere_are_reported_and_not_expected() {
        const ELSEWHERE: u64 = 8;
        let (plain, _) = sim_in_the_past(50);
        let (sim, sks) = sim_in_the_past_with(50, |c| c.live_elsewhere = (0..ELSEWHERE).collect());
        let all = plain.stats();
        let s = sim.stats();
        let window = SLOTS_PER_EPOCH..=SLOTS_PER_EPOCH + 3;
        let duties = sim.attester_duties(1);
        let (elsewhere, ours): (Vec<&AttesterDuty>, Vec<&AttesterDuty>) = duties
            .iter()
            .filter(|d| window.contains(&d.slot))
            .partition(|d| d.validator_index < ELSEWHERE);
        assert!(
            !elsewhere.is_empty() && !ours.is_empty(),
            "seed 1 gives both"
        );
        assert_eq!(s.attestations_expected, ours.len() as u64);
        let sync_elsewhere = sim
            .sync_committee(0)
            .iter()
            .filter(|i| **i < ELSEWHERE)
            .count() as u64;
        assert_eq!(
            s.sync_messages_expected,
            all.sync_messages_expected - 4 * sync_elsewhere
        );
        // Their duties are the ones no longer expected or missed (contributions are never
        // counted as missed).
        assert!(s.live_elsewhere_duties >= elsewhere.len() as u64);
        assert_eq!(
            all.missed - s.missed + (all.contributions_expected - s.contributions_expected),
            s.live_elsewhere_duties
        );

        // Liveness: live elsewhere always; ours once attested.
        let mine = ours[0];
        let live = |e: u64, i: u64| sim.liveness(e, &[i])[0].is_live;
        assert!(live(0, 0) && live(1, ELSEWHERE - 1));
        assert!(!live(1, mine.validator_index));
        sim.submit_attestation(&attestation(&sim, &sks, mine))
            .expect("valid");
        assert!(live(1, mine.validator_index) && !live(0, mine.validator_index));
        assert_eq!(sim.stats().live_elsewhere_submissions, 0);
        // A submission for one of them is counted, valid or not.
        let _ = sim.submit_attestation(&attestation(&sim, &sks, elsewhere[0]));
        let s = sim.stats();
        assert_eq!(s.live_elsewhere_submissions, 1);
        assert!(
            s.live_elsewhere_examples[0].contains("attestation"),
            "{s:?}"
        );
        assert_eq!(s.liveness_requests, 5);
    }

    #[test]
    fn a_window_ending_before_it_starts_is_refused() {
        let mut cfg = SimConfig::new(Vec::new(), Duration::from_millis(SLOT_MS), Duration::ZERO);
        cfg.last_slot = Some(cfg.first_slot - 1);
        assert!(BeaconSim::new(cfg).is_err());
    }

    #[test]
    fn genesis_root_depends_on_the_seed_only() {
        let cfg = SimConfig::new(Vec::new(), Duration::from_millis(SLOT_MS), Duration::ZERO);
        let sim = BeaconSim::new(cfg).expect("no validators");
        assert_eq!(
            sim.genesis().genesis_validators_root,
            genesis_validators_root(1)
        );
        assert_ne!(genesis_validators_root(1), genesis_validators_root(2));
    }

    /// The ledger finds double and surround votes among correctly signed submissions,
    /// whatever their duty or data; the same attestation again and badly signed ones do not
    /// count.
    #[test]
    fn the_ledger_counts_slashable_pairs() {
        let (sim, sks) = sim_in_the_past(50);
        let sign = |v: usize, slot: u64, s: u64, t: u64, head: u8| {
            let mut data = sim.attestation_data(slot);
            data.beacon_block_root = [head; 32];
            data.source.epoch = s;
            data.target.epoch = t;
            let root = compute_signing_root(
                data.tree_hash_root().0,
                sim.domain(signing::BEACON_ATTESTER, data.target.epoch),
            );
            SingleAttestation {
                committee_index: 0,
                attester_index: v as u64,
                data,
                signature: sks[v].sign(&root).to_bytes(),
            }
        };
        let slot = SLOTS_PER_EPOCH + 1;
        let first = sign(3, slot, 0, 1, 1);
        let _ = sim.submit_attestation(&first);
        let _ = sim.submit_attestation(&first);
        assert_eq!(
            sim.stats().slashable_submissions,
            0,
            "the same attestation twice"
        );
        let mut forged = sign(3, slot, 0, 1, 2);
        forged.signature = sks[4].sign(&[9; 32]).to_bytes();
        let _ = sim.submit_attestation(&forged);
        assert_eq!(sim.stats().slashable_submissions, 0, "not validly signed");
        let _ = sim.submit_attestation(&sign(3, slot + 3, 0, 1, 2));
        assert_eq!(sim.stats().slashable_submissions, 1, "double vote");
        let _ = sim.submit_attestation(&sign(5, slot, 2, 3, 1));
        let _ = sim.submit_attestation(&sign(5, slot, 1, 4, 1));
        let s = sim.stats();
        assert_eq!(s.slashable_submissions, 2, "surround vote");
        assert_eq!(s.attestations_signed, 4);
        assert_eq!(s.slashable_examples.len(), 2);
    }

    /// A simulator like [`sim_in_the_past`] whose every slot's proposer is one of its
    /// validators.
    fn proposing_sim() -> (BeaconSim, Vec<SecretKey>) {
        let (sim, sks) = sim_in_the_past(50);
        let mut cfg = sim.inner.cfg.clone();
        cfg.network_validators = 64;
        (BeaconSim::new(cfg).expect("valid keys"), sks)
    }

    /// A block produced for the slot's proposer (RANDAO reveal checked), signed by it, is
    /// valid once; a block of another making, a wrong signature or a wrong RANDAO reveal are
    /// not; two different correctly signed blocks of a slot are a double proposal.
    #[test]
    fn blocks_are_checked_against_the_one_produced() {
        use ssz::Decode as _;
        let (sim, sks) = proposing_sim();
        let slot = SLOTS_PER_EPOCH + 1;
        let proposer = sim.proposer(slot).expect("a proposer").index;
        let sk = &sks[proposer as usize];
        let randao = |sk: &SecretKey| {
            let root = compute_signing_root(signing::u64_root(1), sim.domain(signing::RANDAO, 1));
            sk.sign(&root).to_bytes()
        };
        let other = &sks[((proposer + 1) % 64) as usize];
        assert!(sim.produce_block(slot, &randao(other), [0; 32]).is_err());
        let (blinded, ssz) = sim
            .produce_block(slot, &randao(sk), [7; 32])
            .expect("produced");
        let proposal = Proposal::from_ssz(DataVersion::Electra.to_u64(), &ssz).expect("block");
        assert_eq!(proposal.is_blinded(), blinded);
        let sign = |p: &Proposal, sk: &SecretKey| {
            let root = compute_signing_root(
                p.block_root(),
                sim.domain(signing::BEACON_PROPOSER, slot / SLOTS_PER_EPOCH),
            );
            p.clone().signed(sk.sign(&root).to_bytes()).to_ssz()
        };
        // Signed by another key: invalid, not recorded.
        assert!(
            sim.submit_block("electra", blinded, &sign(&proposal, other))
                .is_err()
        );
        // Another block (other graffiti), correctly signed: invalid and recorded.
        let mut changed = electra::BeaconBlock::from_ssz_bytes(&match &proposal {
            Proposal::Electra(c) => {
                use ssz::Encode as _;
                c.block.as_ssz_bytes()
            }
            Proposal::ElectraBlinded(b) => {
                // A blinded block's own fields are enough to tell it apart.
                let mut b = (**b).clone();
                b.body.graffiti = [9; 32];
                let p = Proposal::ElectraBlinded(Box::new(b));
                assert!(sim.submit_block("electra", true, &sign(&p, sk)).is_err());
                // The produced one is then a second, different block of the slot.
                sim.submit_block("electra", true, &sign(&proposal, sk))
                    .expect("the produced block");
                let s = sim.stats();
                assert_eq!((s.proposals_valid, s.proposals_invalid), (1, 2));
                assert_eq!(s.slashable_submissions, 1, "double proposal");
                return;
            }
            _ => panic!("an Electra block"),
        })
        .expect("block");
        changed.body.graffiti = [9; 32];
        let p = Proposal::Electra(Box::new(electra::BlockContents {
            block: changed,
            kzg_proofs: Default::default(),
            blobs: Default::default(),
        }));
        assert!(sim.submit_block("electra", false, &sign(&p, sk)).is_err());
        sim.submit_block("electra", false, &sign(&proposal, sk))
            .expect("the produced block");
        let s = sim.stats();
        assert_eq!((s.proposals_valid, s.proposals_invalid), (1, 2));
        assert_eq!(s.slashable_submissions, 1, "double proposal");
    }

    /// An aggregate served for a committee, with a valid selection proof and signature, is
    /// valid; a wrong selection proof or another aggregate is not.
    #[test]
    fn aggregates_are_checked() {
        let (sim, sks) = sim_in_the_past(50);
        let d = sim
            .attester_duties(1)
            .into_iter()
            .find(|d| d.slot == SLOTS_PER_EPOCH + 2)
            .expect("a duty in the window");
        let sk = &sks[d.validator_index as usize];
        let data_root = sim.attestation_data(d.slot).tree_hash_root().0;
        let aggregate = sim
            .aggregate_attestation(d.slot, &data_root, d.committee_index)
            .expect("served");
        assert!(
            sim.aggregate_attestation(d.slot, &[0; 32], d.committee_index)
                .is_err()
        );
        let proof = |sk: &SecretKey| {
            let root = compute_signing_root(
                signing::u64_root(d.slot),
                sim.domain(signing::SELECTION_PROOF, d.slot / SLOTS_PER_EPOCH),
            );
            sk.sign(&root).to_bytes()
        };
        let sign = |message: electra::AggregateAndProof, sk: &SecretKey| {
            let root = compute_signing_root(
                message.tree_hash_root().0,
                sim.domain(signing::AGGREGATE_AND_PROOF, d.slot / SLOTS_PER_EPOCH),
            );
            electra::SignedAggregateAndProof {
                signature: sk.sign(&root).to_bytes(),
                message,
            }
        };
        let good = electra::AggregateAndProof {
            aggregator_index: d.validator_index,
            aggregate: aggregate.clone(),
            selection_proof: proof(sk),
        };
        let other = &sks[((d.validator_index + 1) % 64) as usize];
        let mut bad_proof = good.clone();
        bad_proof.selection_proof = proof(other);
        assert!(sim.submit_aggregate(&sign(bad_proof, sk)).is_err());
        let mut bad_aggregate = good.clone();
        bad_aggregate.aggregate.signature = [1; 96];
        assert!(sim.submit_aggregate(&sign(bad_aggregate, sk)).is_err());
        sim.submit_aggregate(&sign(good, sk)).expect("valid");
        let s = sim.stats();
        assert_eq!((s.aggregations_valid, s.aggregations_invalid), (1, 2));
    }
}
