//! One data-plane shard: a glommio executor owning the committees of its subnets.
//!
//! ```text
//! ShardQueue (gossip) ──► checks: SSZ, structure, domain, committee, signers, RSA ──► runner
//! events (bounded): duties from the scheduler, round timers, crypto results ──────► runner
//! runner actions ──► publish (netio) │ sign / reconstruct (rayon crypto pool) │ submit (control plane)
//! ```
//!
//! Everything a committee owns (its [`CommitteeRunner`], timers, validation state) lives on
//! this one core; the only shared things are read-only (registry, caches) or channels.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use futures::{FutureExt, pin_mut, select_biased};
use ssv_crypto_pipeline::{
    CryptoError, HashToG2Cache, LagrangeCache, OperatorSecretKey, Partial, SecretKey, Signature,
    ValidatorPartials, reconstruct_and_verify,
};
use ssv_netio::{InboundMessage, NetworkHandle, PeerId, ShardQueue, Subnet, ValidationResult};
use ssv_protocol::Error as ProtocolError;
use ssv_protocol::beacon_vote::BeaconVote;
use ssv_protocol::error_code::ErrorCode;
use ssv_protocol::message::{RsaSignature, RunnerRole, SignedSsvMessage};
use ssv_protocol::partial_sig::BlsSignature;
use ssv_protocol::qbft::{Config as QbftConfig, Env, OperatorSigner, SignatureVerifier};
use ssv_protocol::runner::{
    AttestationSlashing, BeaconVoteCheck, CommitteeDuty, CommitteeRunner, DutyKind,
    ReconstructFailure, RunnerAction, RunnerKey, SignItem, ValidatorDuty,
};
use ssv_protocol::types::{CommitteeOperator, OperatorId, Root, Slot};
use ssv_protocol::validation::{Config as ValidationConfig, MessageValidator, Verdict};
use ssv_storage::{AttestationToSign, DecidedRecord, Store, WriteOp};

use super::doppelganger::Doppelganger;
use super::metrics::{Metrics, Queue, RoundChange, Stage};
use super::network_view::{DutyStore, NodeView};
use super::registry::{CommitteeInfo, LiveRegistry, Registry, StoppedValidators, ValidatorShare};
use super::validator_runners::ValidatorRunners;
use crate::config::Fault;
use ssv_beacon_api::types::{SingleAttestation, SyncCommitteeMessage};
use ssv_protocol::chain::SlotClock;

/// Capacity of each shard's event channel (duties, timers, crypto results).
pub const SHARD_EVENTS_MAX: usize = 4096;
/// Most runners of one committee on a node: one per member of ours (13 members at most).
const LOCAL_MEMBERS_MAX: usize = 13;
/// Most loopback deliveries one runner call may cause (each of at most 12 other members of
/// ours answers each message with at most a few messages of its own; far above that is a
/// loop).
const LOOPBACK_PER_CALL_MAX: usize = 4096;
/// Capacity of the channel of submissions to the control plane.
pub const SUBMISSIONS_MAX: usize = 4096;

/// Something for a shard to do besides gossip.
#[derive(Debug)]
pub enum ShardEvent {
    /// Start a committee duty.
    Duty {
        /// Committee (index into the registry).
        committee: usize,
        /// The duty.
        duty: CommitteeDuty,
        /// Our vote (from our beacon node).
        vote: BeaconVote,
    },
    /// A QBFT round timer expired.
    Timer {
        /// Committee.
        committee: usize,
        /// Slot (height).
        slot: Slot,
        /// Round the timer guarded.
        round: u64,
    },
    /// Our partial signatures are ready.
    Signed {
        /// Committee.
        committee: usize,
        /// Slot.
        slot: Slot,
        /// Signatures of the allowed items.
        signatures: Vec<(SignItem, BlsSignature)>,
    },
    /// Reconstruction and verification of a quorum batch finished.
    Reconstructed {
        /// Committee.
        committee: usize,
        /// Slot.
        slot: Slot,
        /// Signing root of the batch.
        root: Root,
        /// Decided vote.
        vote: BeaconVote,
        /// Per item: the verified signature or why not.
        verdicts: Vec<(ValidatorDuty, Result<BlsSignature, ReconstructFailure>)>,
    },
    /// Start a validator duty (proposal, aggregation) of one of the shard's validators.
    ValidatorDuty(super::validator_runners::ValidatorStart),
    /// A validator runner's round timer expired.
    ValidatorTimer {
        /// The runner.
        key: RunnerKey,
        /// Slot (height).
        slot: Slot,
        /// Round the timer guarded.
        round: u64,
    },
    /// A validator runner's partial signature is ready (`None`: not signed, see the log).
    ValidatorSigned {
        /// The runner.
        key: RunnerKey,
        /// The root signed.
        root: Root,
        /// Our partial signature.
        signature: Option<BlsSignature>,
    },
    /// A validator runner's reconstruction finished.
    ValidatorReconstructed {
        /// The runner.
        key: RunnerKey,
        /// The signing root.
        root: Root,
        /// The verified signature or why not.
        verdict: Result<BlsSignature, ReconstructFailure>,
    },
    /// The beacon node's data for a validator runner: fork name and SSZ (a block, an
    /// aggregate and proof), or why there is none.
    BeaconData {
        /// The runner.
        key: RunnerKey,
        /// The data.
        data: Result<(String, Vec<u8>), String>,
    },
    /// The beacon node's contributions for a contribution runner (`None`: the validator
    /// aggregates none of its subcommittees), or why there are none.
    Contributions {
        /// The runner.
        key: RunnerKey,
        /// Data version and SSZ of the contributions list.
        data: Result<Option<(u64, Vec<u8>)>, String>,
    },
    /// The registry changed (contract sync, beacon status): start the runners of new
    /// committees and validators of this shard, drop those of removed ones.
    Registry(Arc<Registry>),
    /// Stop the shard.
    Shutdown,
}

/// What the shards hand to the control plane for the beacon node.
#[derive(Debug)]
pub enum Submission {
    /// Attestations (one slot, one committee).
    Attestations(Vec<SingleAttestation>),
    /// Sync-committee messages.
    SyncMessages(Vec<SyncCommitteeMessage>),
    /// A signed block (full or blinded).
    Block(Box<ssv_protocol::beacon::consensus_data::SignedProposal>),
    /// A signed contribution and proof.
    Contribution(Box<ssv_protocol::beacon::altair::SignedContributionAndProof>),
    /// Fetch the contributions of the subcommittees whose selection proof makes the
    /// validator an aggregator (at two thirds of the slot); the answer goes to `reply` as
    /// [`ShardEvent::Contributions`].
    FetchContributions {
        /// The contribution runner.
        key: RunnerKey,
        /// Duty slot.
        slot: Slot,
        /// Each reconstructed selection proof with its subcommittee.
        candidates: Vec<(BlsSignature, u64)>,
        /// The shard's event channel.
        reply: async_channel::Sender<ShardEvent>,
    },
    /// A signed voluntary exit.
    Exit(ssv_protocol::beacon::phase0::SignedVoluntaryExit),
    /// A signed builder registration.
    Registration(ssv_protocol::beacon::builder::SignedValidatorRegistration),
    /// A signed aggregate and proof.
    Aggregate(Box<ssv_protocol::beacon::consensus_data::SignedAggregateAndProofData>),
    /// Fetch the aggregate to propose (at two thirds of the slot); the answer goes to `reply`
    /// as [`ShardEvent::BeaconData`].
    FetchAggregate {
        /// The aggregator runner.
        key: RunnerKey,
        /// Duty slot.
        slot: Slot,
        /// The validator's beacon committee.
        committee_index: u64,
        /// The aggregator.
        validator_index: u64,
        /// Its reconstructed selection proof.
        selection_proof: BlsSignature,
        /// The shard's event channel.
        reply: async_channel::Sender<ShardEvent>,
    },
    /// Fetch the block to propose; the answer goes to `reply` as [`ShardEvent::BeaconData`].
    FetchBlock {
        /// The proposer runner.
        key: RunnerKey,
        /// Duty slot.
        slot: Slot,
        /// The reconstructed RANDAO reveal.
        randao_reveal: BlsSignature,
        /// The shard's event channel.
        reply: async_channel::Sender<ShardEvent>,
    },
}

/// Shared, read-only (or internally synchronised) services of all shards.
pub struct Services {
    /// Who we are and whom we run (replaced as the registry changes).
    pub registry: Arc<LiveRegistry>,
    /// Our operators' RSA keys: one node hosts several operator IDs (the contract caps an
    /// operator at 3,000 validators); each committee signs as its own member
    /// (`CommitteeInfo::member`).
    pub operator_keys: Arc<OurOperators>,
    /// Messages we published, by type.
    pub published: PublishedCounts,
    /// The network.
    pub network: NetworkHandle,
    /// Storage (slashing protection, decided values).
    pub store: Arc<Store>,
    /// The crypto pool.
    pub pool: Arc<rayon::ThreadPool>,
    /// Hash-to-G2 per signing root.
    pub hash_cache: Arc<HashToG2Cache>,
    /// Lagrange coefficients per signer set.
    pub lagrange: Arc<LagrangeCache>,
    /// Submissions to the beacon node.
    pub submissions: async_channel::Sender<Submission>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The chain's slot clock.
    pub clock: SlotClock,
    /// Fault injection (local devnets only).
    pub fault: Option<Fault>,
    /// Our network's domain.
    pub domain: ssv_protocol::types::DomainType,
    /// Beacon duties gossip validation checks messages against (written by the scheduler).
    pub duties: Arc<DutyStore>,
    /// Validators removed or liquidated on-chain while the node runs: never signed for.
    pub stopped: Arc<StoppedValidators>,
    /// Doppelganger protection: validators not signed for until liveness shows no other
    /// instance (off by default: `Doppelganger::default()` signs everything).
    pub doppelganger: Arc<Doppelganger>,
    /// Added to the wall clock wherever the data plane reads the time (0 in the node; a
    /// harness that runs slots faster than the chain moves it slot by slot).
    pub clock_offset_ms: AtomicI64,
}

impl Services {
    /// The data plane's time, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        SlotClock::now_ms().saturating_add_signed(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// The data plane's current slot (`None` before genesis).
    pub fn current_slot(&self) -> Option<Slot> {
        self.clock.slot_at(self.now_ms())
    }
}

/// The consensus value check's view of slashing protection: our records, read from a
/// snapshot (nothing recorded; the signing path records).
struct StoreSlashing(Arc<Store>);

impl AttestationSlashing for StoreSlashing {
    fn check(
        &self,
        pubkeys: &[ssv_protocol::types::BlsPublicKey],
        _slot: u64,
        source: u64,
        target: u64,
        signing_root: &Root,
    ) -> Result<(), String> {
        let atts: Vec<AttestationToSign> = pubkeys
            .iter()
            .map(|pk| AttestationToSign {
                pubkey: *pk,
                source_epoch: source,
                target_epoch: target,
                signing_root: *signing_root,
            })
            .collect();
        let verdicts = self
            .0
            .attestation_violations(&atts)
            .map_err(|e| format!("slashing protection unreadable: {e}"))?;
        match verdicts
            .iter()
            .zip(pubkeys)
            .find_map(|(v, pk)| v.map(|v| (pk, v)))
        {
            None => Ok(()),
            Some((pk, v)) => Err(format!("validator 0x{}…: {v}", hex::encode(&pk[..6]))),
        }
    }
}

/// The RSA keys of the operator IDs this node hosts.
#[derive(Debug, Default)]
pub struct OurOperators {
    keys: std::collections::BTreeMap<OperatorId, Arc<OperatorSecretKey>>,
}

impl OurOperators {
    /// The operators `keys` (an ID given twice is refused: two keys cannot both be it).
    pub fn new(
        keys: impl IntoIterator<Item = (OperatorId, Arc<OperatorSecretKey>)>,
    ) -> anyhow::Result<Self> {
        let mut map = std::collections::BTreeMap::new();
        for (id, key) in keys {
            if map.insert(id, key).is_some() {
                anyhow::bail!("operator {id} is configured twice");
            }
        }
        Ok(OurOperators { keys: map })
    }

    /// One operator (the single-operator node).
    pub fn single(id: OperatorId, key: Arc<OperatorSecretKey>) -> Self {
        OurOperators {
            keys: std::iter::once((id, key)).collect(),
        }
    }

    /// The key of our operator `id`.
    pub fn get(&self, id: OperatorId) -> Option<&Arc<OperatorSecretKey>> {
        self.keys.get(&id)
    }

    /// Our operator IDs, ascending.
    pub fn ids(&self) -> impl Iterator<Item = OperatorId> + '_ {
        self.keys.keys().copied()
    }

    /// How many operators this node hosts.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it hosts none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Messages we published, by type (the capacity benchmark reports them per committee-slot).
#[derive(Debug, Default)]
pub struct PublishedCounts {
    /// QBFT proposals.
    pub proposal: AtomicU64,
    /// QBFT prepares.
    pub prepare: AtomicU64,
    /// QBFT commits.
    pub commit: AtomicU64,
    /// QBFT round changes.
    pub round_change: AtomicU64,
    /// Partial-signature messages (pre- and post-consensus).
    pub partial_signature: AtomicU64,
    /// Anything else (a consensus message too short to carry its type).
    pub other: AtomicU64,
}

impl PublishedCounts {
    /// Counts `msg` under its type: the QBFT type is the first field (u64) of the inner
    /// message's SSZ, so no decode.
    fn count(&self, msg: &SignedSsvMessage) {
        use ssv_protocol::message::MsgType;
        let m = &msg.ssv_message;
        let counter = if m.msg_type == MsgType::PartialSignature.to_u64() {
            &self.partial_signature
        } else {
            match m
                .data
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("an 8-byte slice is a u64")))
            {
                Some(0) => &self.proposal,
                Some(1) => &self.prepare,
                Some(2) => &self.commit,
                Some(3) => &self.round_change,
                _ => &self.other,
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(type, count)` of every type.
    pub fn snapshot(&self) -> [(&'static str, u64); 6] {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("proposal", l(&self.proposal)),
            ("prepare", l(&self.prepare)),
            ("commit", l(&self.commit)),
            ("round_change", l(&self.round_change)),
            ("partial_signature", l(&self.partial_signature)),
            ("other", l(&self.other)),
        ]
    }
}

/// Signs this operator's messages with its RSA key (PKCS#1 v1.5 over sha256 of the SSZ
/// `SSVMessage`, as the spec does).
pub struct RsaSigner<'a> {
    /// The operator.
    pub id: OperatorId,
    /// Its RSA-2048 key.
    pub key: &'a OperatorSecretKey,
}

impl OperatorSigner for RsaSigner<'_> {
    fn operator_id(&self) -> OperatorId {
        self.id
    }
    fn sign_ssv_message(&self, encoded: &[u8]) -> Result<RsaSignature, ProtocolError> {
        let sig = self
            .key
            .sign(encoded)
            .map_err(|e| ProtocolError::spec(ErrorCode::MessageSignatureInvalid, e.to_string()))?;
        sig.try_into().map_err(|_| {
            ProtocolError::spec(
                ErrorCode::MessageSignatureInvalid,
                "operator key does not make 256-byte signatures (RSA-2048 required)",
            )
        })
    }
}

/// Verifies operators' RSA signatures from the registry's key cache.
pub(super) struct Verifier<'a>(pub(super) &'a ssv_crypto_pipeline::OperatorKeyCache);

impl SignatureVerifier for Verifier<'_> {
    fn verify(&self, op: &CommitteeOperator, encoded: &[u8], sig: &RsaSignature) -> bool {
        self.0.verify(op.operator_id, encoded, sig).is_ok()
    }
}

struct CommitteeState {
    info: Arc<CommitteeInfo>,
    runner: CommitteeRunner,
    /// Latest armed round per slot (older timers are stale).
    timers: HashMap<Slot, u64>,
    /// When each slot's duty started here.
    started: HashMap<Slot, Instant>,
    /// When each slot's duty was decided here (removed when the duty completes, so that its
    /// post-consensus and duty durations are recorded once).
    decided_at: HashMap<Slot, Instant>,
    /// OTLP traces of running duties (empty, and never filled, when tracing is off).
    traces: HashMap<Slot, super::tracing_otlp::DutyTrace>,
}

/// Items gathered before a flush beyond which the shard flushes at once (bounds the work
/// one pool job carries and the latency a long burst could add).
pub const FLUSH_ITEMS_MAX: usize = 2048;

/// Signing requested by one committee's runner.
struct SignJob {
    committee: usize,
    info: Arc<CommitteeInfo>,
    slot: Slot,
    vote: BeaconVote,
    items: Vec<SignItem>,
}

/// Reconstruction requested by one committee's runner.
struct ReconstructJob {
    committee: usize,
    info: Arc<CommitteeInfo>,
    slot: Slot,
    root: Root,
    vote: BeaconVote,
    items: Vec<ssv_protocol::runner::QuorumItem>,
}

/// A shard's state; driven by [`run`].
pub struct Shard {
    index: usize,
    shard_count: usize,
    slashing: Arc<dyn AttestationSlashing + Send + Sync>,
    services: Arc<Services>,
    events_tx: async_channel::Sender<ShardEvent>,
    committees: HashMap<usize, CommitteeState>,
    /// The runner a message belongs to (its ID without the domain, checked first) → its
    /// committees: more than one when the committee holds several of our operator IDs (one
    /// runner per member of ours, ascending by operator). Keyed role-neutrally, so the other
    /// roles' runners join the same map.
    by_runner: HashMap<RunnerKey, Vec<usize>>,
    /// Our messages for our other members of the same committee (gossipsub never delivers a
    /// node's own messages to it), handled after the action that made them.
    loopback: std::collections::VecDeque<(usize, SignedSsvMessage)>,
    /// Whether `loopback` is being drained (a nested runner call leaves it to the outer one).
    draining_loopback: bool,
    actions: Vec<RunnerAction>,
    pending_sign: Vec<SignJob>,
    pending_reconstruct: Vec<ReconstructJob>,
    /// The validator roles' runners of the shard's validators.
    validators: ValidatorRunners,
    /// Gossip validation's rules and state (messages of a committee always reach the same
    /// shard, so its state is the shard's own).
    validation: MessageValidator<PeerId>,
}

impl Shard {
    /// A shard owning the registry's committees whose subnet maps to `index`.
    pub fn new(
        index: usize,
        shard_count: usize,
        services: Arc<Services>,
        events_tx: async_channel::Sender<ShardEvent>,
    ) -> Self {
        let slashing: Arc<dyn AttestationSlashing + Send + Sync> =
            Arc::new(StoreSlashing(services.store.clone()));
        let validators =
            ValidatorRunners::new(services.clone(), events_tx.clone(), std::iter::empty());
        let validation = MessageValidator::new(ValidationConfig {
            domain: services.domain,
            chain: *services.clock.spec(),
            genesis_ms: services.clock.genesis_ms(),
        });
        let registry = services.registry.current();
        let mut shard = Shard {
            index,
            shard_count,
            services,
            events_tx,
            validation,
            validators,
            committees: HashMap::new(),
            by_runner: HashMap::new(),
            loopback: std::collections::VecDeque::new(),
            draining_loopback: false,
            slashing,
            actions: Vec::new(),
            pending_sign: Vec::new(),
            pending_reconstruct: Vec::new(),
        };
        shard.on_registry(registry);
        shard
    }

    /// Takes the registry's committees that this shard owns: a new committee gets its
    /// runner, a known one the new view of its validators (a validator removed is no longer
    /// signed for: signing resolves shares from this view), and the validator runners follow.
    fn on_registry(&mut self, registry: Arc<Registry>) {
        for (i, info) in registry.committees.iter().enumerate() {
            if shard_of(info, self.shard_count) != self.index {
                continue;
            }
            if let Some(state) = self.committees.get_mut(&i) {
                state.info = info.clone();
                continue;
            }
            let runner = CommitteeRunner::new(
                info.member.clone(),
                QbftConfig {
                    // Every inbound message's signatures are verified before the runner
                    // sees it; justifications and decided messages are still verified.
                    verify_all_signatures: false,
                    ..QbftConfig::default()
                },
            )
            .with_slashing(self.slashing.clone());
            let ours = self
                .by_runner
                .entry(RunnerKey::Committee(info.member.committee_id))
                .or_default();
            ours.push(i);
            assert!(
                ours.len() <= LOCAL_MEMBERS_MAX,
                "a committee has at most 13 members"
            );
            self.committees.insert(
                i,
                CommitteeState {
                    info: info.clone(),
                    runner,
                    timers: HashMap::new(),
                    started: HashMap::new(),
                    decided_at: HashMap::new(),
                    traces: HashMap::new(),
                },
            );
        }
        self.validators
            .update(self.committees.iter().map(|(i, c)| (*i, c.info.clone())));
    }

    /// Committees this shard runs.
    pub fn committee_count(&self) -> usize {
        self.committees.len()
    }

    /// Handles one event; `false` on shutdown.
    pub fn on_event(&mut self, event: ShardEvent) -> bool {
        match event {
            ShardEvent::Shutdown => return false,
            ShardEvent::Registry(registry) => self.on_registry(registry),
            ShardEvent::Duty {
                committee,
                duty,
                vote,
            } => self.on_duty(committee, duty, vote),
            ShardEvent::Timer {
                committee,
                slot,
                round,
            } => self.on_timer(committee, slot, round),
            ShardEvent::Signed {
                committee,
                slot,
                signatures,
            } => self.on_signed(committee, slot, signatures),
            ShardEvent::Reconstructed {
                committee,
                slot,
                root,
                vote,
                verdicts,
            } => self.on_reconstructed(committee, slot, root, vote, verdicts),
            ShardEvent::ValidatorDuty(start) => self.validators.start(start),
            ShardEvent::ValidatorTimer { key, slot, round } => {
                self.validators.on_timer(key, slot, round);
            }
            ShardEvent::ValidatorSigned {
                key,
                root,
                signature,
            } => self.validators.on_signed(key, root, signature),
            ShardEvent::Contributions { key, data } => self.validators.on_contributions(key, data),
            ShardEvent::ValidatorReconstructed { key, root, verdict } => {
                self.validators.on_reconstructed(key, root, verdict);
            }
            ShardEvent::BeaconData { key, data } => self.validators.on_beacon_data(key, data),
        }
        true
    }

    fn with_runner(
        &mut self,
        committee: usize,
        f: impl FnOnce(&mut CommitteeRunner, Env<'_>, &mut Vec<RunnerAction>),
    ) {
        let services = self.services.clone();
        let Some(state) = self.committees.get_mut(&committee) else {
            return;
        };
        let registry = services.registry.current();
        // The committee signs as its own member: one node hosts several operator IDs.
        let our_id = state.info.member.operator_id;
        let Some(key) = services.operator_keys.get(our_id) else {
            tracing::error!(
                operator = our_id,
                "no RSA key for our member of this committee: not run"
            );
            return;
        };
        let signer = RsaSigner { id: our_id, key };
        // Every log line of this committee's work carries the operator it runs as (one node
        // hosts several); an entered span costs well under a microsecond.
        let _span = tracing::info_span!("committee", operator = our_id).entered();
        let verifier = Verifier(&registry.operator_keys);
        let check = BeaconVoteCheck {
            chain: *services.clock.spec(),
            slot: services.current_slot().unwrap_or(0),
        };
        let env = Env {
            signer: &signer,
            verifier: &verifier,
            value_check: &check,
        };
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        f(&mut state.runner, env, &mut actions);
        for action in actions.drain(..) {
            self.apply(committee, action);
        }
        self.actions = actions;
        drop(_span);
        self.drain_loopback();
    }

    /// Hands our members' messages to our other members of the same committee (bounded: each
    /// message is delivered once per other member, and a runner answers a message with at
    /// most a few of its own, so the queue empties).
    fn drain_loopback(&mut self) {
        if self.draining_loopback {
            return;
        }
        self.draining_loopback = true;
        let mut delivered = 0usize;
        while let Some((committee, msg)) = self.loopback.pop_front() {
            delivered += 1;
            debug_assert!(
                delivered <= LOOPBACK_PER_CALL_MAX,
                "loopback does not settle"
            );
            if delivered > LOOPBACK_PER_CALL_MAX {
                tracing::error!("loopback between our members does not settle: dropped");
                self.loopback.clear();
                break;
            }
            self.with_runner(committee, |runner, env, out| {
                if let Err(e) = runner.process_message(env, msg, out) {
                    tracing::debug!(code = ?e.code(), "our member refused our message: {e}");
                }
            });
        }
        self.draining_loopback = false;
    }

    fn on_duty(&mut self, committee: usize, duty: CommitteeDuty, vote: BeaconVote) {
        let slot = duty.slot;
        Metrics::add(&self.services.metrics.duties_started, 1);
        if let Some(state) = self.committees.get_mut(&committee) {
            state.started.insert(slot, Instant::now());
            state.started.retain(|s, _| *s + 8 > slot);
            state.decided_at.retain(|s, _| *s + 8 > slot);
            state.timers.retain(|s, _| *s + 8 > slot);
            // Traces of duties that never completed end with their slot's bookkeeping.
            let stale: Vec<Slot> = state
                .traces
                .keys()
                .copied()
                .filter(|s| *s + 8 <= slot)
                .collect();
            for s in stale {
                if let Some(t) = state.traces.remove(&s) {
                    t.finish();
                }
            }
            if let Some(t) =
                super::tracing_otlp::DutyTrace::start(slot, "committee", &state.info.id)
            {
                state.traces.insert(slot, t);
            }
        }
        let shard = self.index;
        let mut slashable = false;
        self.with_runner(committee, |runner, env, out| {
            if let Err(e) = runner.start_duty(env, duty.clone(), vote, out) {
                if e.code() == ErrorCode::SlashableAttestation {
                    slashable = true;
                } else {
                    tracing::warn!(
                        shard,
                        slot,
                        role = "committee",
                        committee,
                        "cannot start committee duty: {e}"
                    );
                }
            }
        });
        if !slashable {
            return;
        }
        // One attester that slashing protection refuses (a validator added or reactivated in
        // this epoch: bumped, as in Go it would not participate before the next epoch) must
        // not cost the others their duty: start it again without the refused attesters.
        let kept = self.attesters_allowed(duty, &vote);
        if kept.duties.is_empty() {
            return;
        }
        self.with_runner(committee, |runner, env, out| {
            if let Err(e) = runner.start_duty(env, kept, vote, out) {
                tracing::warn!(
                    shard,
                    slot,
                    role = "committee",
                    committee,
                    "cannot start committee duty: {e}"
                );
            }
        });
    }

    /// `duty` without the attesters that slashing protection refuses for `vote` (each
    /// checked alone; nothing is recorded).
    fn attesters_allowed(&self, mut duty: CommitteeDuty, vote: &BeaconVote) -> CommitteeDuty {
        let attesters: Vec<AttestationToSign> = duty
            .duties
            .iter()
            .filter(|d| matches!(d.kind, DutyKind::Attester { .. }))
            .map(|d| AttestationToSign {
                pubkey: d.pubkey,
                source_epoch: vote.source.epoch,
                target_epoch: vote.target.epoch,
                // Not compared: a validator with a record at this target is dropped (only a
                // repeat of the same vote would have been allowed).
                signing_root: [0; 32],
            })
            .collect();
        let verdicts = match self.services.store.attestation_violations(&attesters) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(slot = duty.slot, "slashing protection unreadable: {e}");
                duty.duties
                    .retain(|d| !matches!(d.kind, DutyKind::Attester { .. }));
                return duty;
            }
        };
        let refused: std::collections::HashSet<[u8; 48]> = attesters
            .iter()
            .zip(verdicts)
            .filter_map(|(a, v)| v.map(|_| a.pubkey))
            .collect();
        Metrics::add(
            &self.services.metrics.slashing_refusals,
            refused.len() as u64,
        );
        tracing::info!(
            slot = duty.slot,
            refused = refused.len(),
            "attesters refused by slashing protection (bumped: added or reactivated this \
             epoch) left out of the committee duty"
        );
        duty.duties.retain(|d| {
            !(matches!(d.kind, DutyKind::Attester { .. }) && refused.contains(&d.pubkey))
        });
        duty
    }

    fn on_timer(&mut self, committee: usize, slot: Slot, round: u64) {
        let current = self
            .committees
            .get(&committee)
            .and_then(|s| s.timers.get(&slot).copied());
        if current != Some(round) {
            return; // replaced by a later timer
        }
        self.services
            .metrics
            .record_round_change(RoundChange::Timeout);
        self.with_runner(committee, |runner, env, out| {
            if let Err(e) = runner.on_timeout(env, slot, out) {
                tracing::debug!(
                    slot,
                    role = "committee",
                    committee,
                    round,
                    "round timeout: {e}"
                );
            }
        });
    }

    fn on_signed(&mut self, committee: usize, slot: Slot, sigs: Vec<(SignItem, BlsSignature)>) {
        Metrics::add(&self.services.metrics.partials_signed, sigs.len() as u64);
        self.with_runner(committee, |runner, env, out| {
            if let Err(e) = runner.signed(env, slot, sigs, out) {
                tracing::warn!(
                    slot,
                    role = "committee",
                    committee,
                    "our partial signatures: {e}"
                );
            }
        });
    }

    fn on_reconstructed(
        &mut self,
        committee: usize,
        slot: Slot,
        root: Root,
        vote: BeaconVote,
        verdicts: Vec<(ValidatorDuty, Result<BlsSignature, ReconstructFailure>)>,
    ) {
        let metrics = self.services.metrics.clone();
        let mut attestations = Vec::new();
        let mut sync = Vec::new();
        let mut runner_verdicts = Vec::with_capacity(verdicts.len());
        for (duty, verdict) in verdicts {
            match verdict {
                Ok(sig) => {
                    Metrics::add(&metrics.signatures_reconstructed, 1);
                    runner_verdicts.push((duty.validator_index, Ok(())));
                    match duty.kind {
                        DutyKind::Attester {
                            committee_index, ..
                        } => {
                            // A quorum of our committee signed this attestation: the live
                            // instance is this cluster (the Go node's `ReportQuorum`, attester
                            // duties only).
                            self.services
                                .doppelganger
                                .report_quorum(duty.validator_index);
                            attestations.push(SingleAttestation {
                                committee_index,
                                attester_index: duty.validator_index,
                                data: vote.attestation_data(slot),
                                signature: sig,
                            });
                        }
                        DutyKind::SyncCommittee => sync.push(SyncCommitteeMessage {
                            slot,
                            beacon_block_root: vote.block_root,
                            validator_index: duty.validator_index,
                            signature: sig,
                        }),
                    }
                }
                Err(failure) => {
                    if let ReconstructFailure::InvalidPartials(ops) = &failure {
                        Metrics::add(&metrics.bad_partials, ops.len() as u64);
                        for op in ops {
                            tracing::warn!(
                                slot,
                                role = "committee",
                                committee,
                                validator = duty.validator_index,
                                "invalid partial signatures from operator {op}: dropped, \
                                 waiting for another operator's"
                            );
                        }
                    } else {
                        tracing::error!(
                            slot,
                            role = "committee",
                            committee,
                            validator = duty.validator_index,
                            "reconstructed signature does not verify although every partial \
                             does: share keys do not match the validator key"
                        );
                    }
                    runner_verdicts.push((duty.validator_index, Err(failure)));
                }
            }
        }
        if let Some(t) = self
            .committees
            .get_mut(&committee)
            .and_then(|s| s.traces.get_mut(&slot))
        {
            t.reconstructed(slot, attestations.first().map(|a| a.attester_index));
        }
        if !attestations.is_empty() {
            self.submit(Submission::Attestations(attestations));
        }
        if !sync.is_empty() {
            self.submit(Submission::SyncMessages(sync));
        }
        self.with_runner(committee, |runner, _env, out| {
            runner.reconstructed(slot, root, runner_verdicts, out);
        });
        if let Some(state) = self.committees.get_mut(&committee)
            && state.runner.is_complete(slot)
            && let Some(t) = state.traces.remove(&slot)
        {
            t.finish();
        }
        if let Some(state) = self.committees.get_mut(&committee)
            && state.runner.is_complete(slot)
            && let Some(decided) = state.decided_at.remove(&slot)
            && let Some(t) = state.started.get(&slot)
        {
            let round = state
                .runner
                .slot_view(slot)
                .and_then(|v| v.running_instance)
                .map_or(0, |i| i.state.round);
            record_completion(&metrics, RunnerRole::Committee, round, *t, decided);
            tracing::debug!(
                slot,
                role = "committee",
                committee,
                committee_id = hex::encode(&state.info.id[..4]),
                "committee duty complete in {:?}",
                t.elapsed()
            );
        }
    }

    fn submit(&self, s: Submission) {
        if self.services.submissions.try_send(s).is_err() {
            Metrics::add(&self.services.metrics.submission_errors, 1);
            self.services.metrics.record_dropped(Queue::Submissions, 1);
            tracing::error!("submission queue full: dropping a submission");
        }
    }

    fn apply(&mut self, committee: usize, action: RunnerAction) {
        let services = self.services.clone();
        let Some(state) = self.committees.get_mut(&committee) else {
            return;
        };
        match action {
            RunnerAction::Broadcast(msg) => {
                publish(&services, state.info.subnet, &msg);
                // Our other members of this committee get it here, as a peer would.
                if let Some(ours) = self
                    .by_runner
                    .get(&RunnerKey::Committee(state.info.member.committee_id))
                    .filter(|o| o.len() > 1)
                {
                    for &other in ours.iter().filter(|o| **o != committee) {
                        self.loopback.push_back((other, msg.clone()));
                    }
                }
            }
            RunnerAction::SetTimer { slot, round, .. } => {
                state.timers.insert(slot, round);
                if let Some(t) = state.traces.get_mut(&slot) {
                    t.round(round);
                }
                arm_timer(
                    &self.events_tx,
                    round_timer(&services, RunnerRole::Committee, slot, round),
                    ShardEvent::Timer {
                        committee,
                        slot,
                        round,
                    },
                );
            }
            RunnerAction::Decided { slot, vote, proof } => {
                Metrics::add(&services.metrics.decided, 1);
                let now = Instant::now();
                if let Some(t) = state.started.get(&slot) {
                    services.metrics.record_stage(
                        RunnerRole::Committee,
                        Stage::Consensus,
                        now.saturating_duration_since(*t),
                    );
                }
                state.decided_at.insert(slot, now);
                // One line per decided committee duty: what an exporter's record of the same
                // instance is checked against (identifier and QBFT value root).
                if let Ok(q) = ssv_protocol::qbft::Message::from_ssz(&proof.ssv_message.data) {
                    tracing::info!(
                        slot,
                        identifier = hex::encode(state.runner.message_id().0),
                        root = hex::encode(q.root),
                        "decided"
                    );
                }
                if let Some(t) = state.traces.get_mut(&slot) {
                    t.decided();
                }
                let record = DecidedRecord {
                    identifier: state.runner.message_id().0,
                    height: slot,
                    round: 0,
                    signers: proof.operator_ids.to_vec(),
                    value_root: {
                        use tree_hash::TreeHash as _;
                        vote.tree_hash_root().0
                    },
                    message: proof.to_ssz(),
                };
                // Not waited for: the decided record is for the exporter and restarts, and
                // slashing protection (the safety-relevant write) is checked before signing.
                if let Err(e) = services.store.try_submit(vec![WriteOp::PutDecided(record)]) {
                    if matches!(e, ssv_storage::StorageError::WriteQueueFull) {
                        services.metrics.record_dropped(Queue::StoreWrites, 1);
                    }
                    tracing::debug!(
                        slot,
                        role = "committee",
                        committee,
                        "decided record not stored: {e}"
                    );
                }
            }
            RunnerAction::Sign { slot, vote, items } => {
                self.pending_sign.push(SignJob {
                    committee,
                    info: state.info.clone(),
                    slot,
                    vote,
                    items,
                });
                if self.pending_len() >= FLUSH_ITEMS_MAX {
                    self.flush();
                }
            }
            RunnerAction::Reconstruct {
                slot,
                signing_root,
                vote,
                items,
            } => {
                self.pending_reconstruct.push(ReconstructJob {
                    committee,
                    info: state.info.clone(),
                    slot,
                    root: signing_root,
                    vote,
                    items,
                });
                if self.pending_len() >= FLUSH_ITEMS_MAX {
                    self.flush();
                }
            }
        }
    }

    fn pending_len(&self) -> usize {
        self.pending_sign
            .iter()
            .map(|j| j.items.len())
            .sum::<usize>()
            + self
                .pending_reconstruct
                .iter()
                .map(|j| j.items.len())
                .sum::<usize>()
    }

    /// Hands the crypto work gathered since the last flush to the pool: all signing of this
    /// burst in one job (one slashing-protection commit for every committee), all
    /// reconstructions of one signing root in one job (one same-root batch across
    /// committees: since Electra every committee of a slot signs the same attestation data).
    /// Called when the shard has nothing else queued, so batching adds no waiting.
    pub fn flush(&mut self) {
        self.validators.flush();
        let services = &self.services;
        if !self.pending_sign.is_empty() {
            let jobs = std::mem::take(&mut self.pending_sign);
            let tx = self.events_tx.clone();
            let svc = services.clone();
            services.pool.spawn(move || {
                for (job, signatures) in sign_jobs(&svc, &jobs).into_iter().enumerate() {
                    let j = &jobs[job];
                    let _ = tx.send_blocking(ShardEvent::Signed {
                        committee: j.committee,
                        slot: j.slot,
                        signatures,
                    });
                }
            });
        }
        if !self.pending_reconstruct.is_empty() {
            let jobs = std::mem::take(&mut self.pending_reconstruct);
            for group in by_root(jobs, |j| j.root) {
                let tx = self.events_tx.clone();
                let svc = services.clone();
                services.pool.spawn(move || {
                    let results = reconstruct_jobs(&svc, &group);
                    for (j, verdicts) in group.into_iter().zip(results) {
                        let _ = tx.send_blocking(ShardEvent::Reconstructed {
                            committee: j.committee,
                            slot: j.slot,
                            root: j.root,
                            vote: j.vote,
                            verdicts,
                        });
                    }
                });
            }
        }
    }

    /// Checks and applies one gossip message, then reports the verdict to the network.
    pub fn on_gossip(&mut self, msg: InboundMessage) {
        let metrics = self.services.metrics.clone();
        Metrics::add(&metrics.messages_in, 1);
        let verdict = self.check_and_apply(&msg);
        let counter = match verdict {
            ValidationResult::Accept => &metrics.messages_accepted,
            ValidationResult::Reject => &metrics.messages_rejected,
            ValidationResult::Ignore => &metrics.messages_ignored,
        };
        Metrics::add(counter, 1);
        if let Err(e) = self.services.network.try_report_validation(&msg, verdict) {
            tracing::debug!("validation report dropped: {e}");
        }
    }

    /// Validates one gossip message (every rule of the Go node, [`MessageValidator`]) and hands
    /// it to its runner when it is ours; another committee's valid message is relayed.
    fn check_and_apply(&mut self, msg: &InboundMessage) -> ValidationResult {
        let services = self.services.clone();
        let registry = services.registry.current();
        let view = NodeView {
            index: &registry.network,
            duties: &services.duties,
            keys: &registry.operator_keys,
            slots_per_epoch: services.clock.spec().slots_per_epoch(),
        };
        let t0 = Instant::now();
        let result = self.validation.validate(
            &view,
            msg.propagation_source,
            &msg.data,
            Some(msg.subnet.index() as u64),
            services.now_ms(),
        );
        services.metrics.validation_duration.observe(t0.elapsed());
        let validated = match result {
            Ok(v) => v,
            Err(violation) => {
                services.metrics.validation.record(violation.rule);
                tracing::debug!(
                    peer = %msg.propagation_source,
                    rule = ?violation.rule,
                    "message refused: {violation}"
                );
                return match violation.verdict() {
                    Verdict::Ignore => ValidationResult::Ignore,
                    Verdict::Reject => ValidationResult::Reject,
                };
            }
        };
        let Some(key) = RunnerKey::from_message_id(&validated.message().ssv_message.msg_id) else {
            return ValidationResult::Accept;
        };
        match key {
            RunnerKey::Validator(pubkey, _) => {
                if self.validators.committee_of(&pubkey).is_none() {
                    // Another committee's validator on our subnet, fully validated: relayed.
                    return ValidationResult::Accept;
                }
                match self.validators.on_message(key, validated) {
                    Ok(()) => ValidationResult::Accept,
                    Err(e) => {
                        tracing::debug!(code = ?e.code(), "validator runner refused a message: {e}");
                        runner_verdict(&e)
                    }
                }
            }
            RunnerKey::Committee(_) => {
                let Some(ours) = self.by_runner.get(&key).cloned() else {
                    // Another committee on our subnet, fully validated: relayed.
                    return ValidationResult::Accept;
                };
                // One runner per member of ours (usually one): each takes the message; the
                // verdict is the first's (they run the same rules on the same message).
                let msg = validated.into_message();
                let mut result = None;
                for committee in ours {
                    let mut verdict = ValidationResult::Accept;
                    self.with_runner(committee, |runner, env, out| {
                        if let Err(e) = runner.process_message(env, msg.clone(), out) {
                            verdict = runner_verdict(&e);
                            tracing::debug!(code = ?e.code(), "runner refused a message: {e}");
                        }
                    });
                    result.get_or_insert(verdict);
                }
                result.unwrap_or(ValidationResult::Accept)
            }
        }
    }
}

/// How long round `round` of `slot`'s instance of a `role` runner runs: the Go node's round
/// timer, relative to the slot ([`ssv_protocol::qbft::round_timeout_for`]), on the data
/// plane's clock.
pub(super) fn round_timer(
    services: &Services,
    role: RunnerRole,
    slot: Slot,
    round: u64,
) -> std::time::Duration {
    ssv_protocol::qbft::round_timeout_for(
        role,
        services.clock.slot_start_ms(slot),
        services.clock.spec().slot_ms(),
        round,
        services.now_ms(),
    )
}

/// Sends `event` to the shard after `after` (a QBFT round timer).
pub(super) fn arm_timer(
    events: &async_channel::Sender<ShardEvent>,
    after: std::time::Duration,
    event: ShardEvent,
) {
    let tx = events.clone();
    glommio::spawn_local(async move {
        glommio::timer::sleep(after).await;
        let _ = tx.send(event).await;
    })
    .detach();
}

/// Publishes one of our messages on a committee's subnet, counting it (or the refusal).
pub(super) fn publish(services: &Services, subnet: u64, msg: &SignedSsvMessage) {
    match Subnet::new(subnet as usize).map(|s| services.network.try_publish(s, msg.to_ssz())) {
        Ok(Ok(())) => {
            Metrics::add(&services.metrics.messages_published, 1);
            services.published.count(msg);
        }
        Ok(Err(e)) | Err(e) => {
            Metrics::add(&services.metrics.publish_errors, 1);
            tracing::warn!("publish: {e}");
        }
    }
}

/// How a runner refusal is reported to gossipsub. A partial for a validator outside our
/// duty is ignored, not rejected: gossip validation already checked the validator is the
/// committee's, and our duty can lag the sender's registry by a moment (a contract change
/// reaching each operator in turn).
fn runner_verdict(e: &ProtocolError) -> ValidationResult {
    match e.code() {
        ErrorCode::UnmarshalSSZ
        | ErrorCode::WrongSigningRoot
        | ErrorCode::PartialSigInconsistentSigner
        | ErrorCode::SignerIsNotInCommittee
        | ErrorCode::MessageSignatureInvalid
        | ErrorCode::MessageTypeInvalid
        | ErrorCode::MessageAllowsOneSignerOnly => ValidationResult::Reject,
        _ => ValidationResult::Ignore,
    }
}

/// The key a faulty devnet operator signs with instead of its share.
pub(super) fn wrong_key(share: &SecretKey) -> SecretKey {
    use sha2::{Digest, Sha256};
    SecretKey::from_ikm(&Sha256::digest(share.to_bytes()).into())
}

/// On the crypto pool: slashing protection for every attester of the batch (one durable
/// commit), then our partial signature for every allowed item. One result per job.
/// Longest wait for the slashing-protection commit of one signing burst: past it nothing of
/// the burst is signed (a stalled disk must not stall the crypto pool, and a duty signed
/// that late would be missed anyway).
pub const SLASHING_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn sign_jobs(services: &Services, jobs: &[SignJob]) -> Vec<Vec<(SignItem, BlsSignature)>> {
    // Every item is resolved to our share record first: slashing protection is keyed by the
    // validator pubkey *we* registered for that index, never by what the duty (the beacon
    // node) says. An item whose duty names another pubkey is not signed.
    let gate = services.doppelganger.gate();
    let shares: Vec<Vec<Option<&Arc<ValidatorShare>>>> = jobs
        .iter()
        .map(|j| {
            j.items
                .iter()
                .map(|i| {
                    let share = j.info.validators.get(&i.duty.validator_index)?;
                    if share.pubkey != i.duty.pubkey {
                        Metrics::add(&services.metrics.beacon_duties_refused, 1);
                        tracing::error!(
                            validator = i.duty.validator_index,
                            duty_pubkey = hex::encode(i.duty.pubkey),
                            "duty names another pubkey than our share of this index: not signed"
                        );
                        return None;
                    }
                    if services.stopped.is_stopped(&share.pubkey) {
                        tracing::debug!(
                            validator = i.duty.validator_index,
                            "removed or liquidated on-chain: not signed"
                        );
                        return None;
                    }
                    // Attestations and sync-committee messages alike (the Go node lets sync
                    // messages through; see the doppelganger module).
                    if !gate.can_sign(share.index) {
                        Metrics::add(&services.metrics.doppelganger_refused, 1);
                        tracing::debug!(
                            validator = i.duty.validator_index,
                            "doppelganger protection: still in detection, not signed"
                        );
                        return None;
                    }
                    Some(share)
                })
                .collect()
        })
        .collect();
    drop(gate);
    let attestations: Vec<AttestationToSign> = jobs
        .iter()
        .zip(&shares)
        .flat_map(|(j, shares)| {
            j.items
                .iter()
                .zip(shares)
                .filter(|(i, _)| matches!(i.duty.kind, DutyKind::Attester { .. }))
                .filter_map(|(i, share)| {
                    share.map(|share| AttestationToSign {
                        pubkey: share.pubkey,
                        source_epoch: j.vote.source.epoch,
                        target_epoch: j.vote.target.epoch,
                        signing_root: i.signing_root,
                    })
                })
        })
        .collect();
    let allowed: Vec<bool> = if attestations.is_empty() {
        Vec::new()
    } else {
        match services.store.check_and_record_within(
            &[],
            &attestations,
            Some(SLASHING_COMMIT_TIMEOUT),
        ) {
            Ok(v) => v
                .attestations
                .into_iter()
                .zip(&attestations)
                .map(|(r, a)| match r {
                    Ok(_) => true,
                    Err(violation) => {
                        Metrics::add(&services.metrics.slashing_refusals, 1);
                        tracing::warn!(
                            pubkey = hex::encode(&a.pubkey[..8]),
                            source = a.source_epoch,
                            target = a.target_epoch,
                            "slashing protection refused the attestation: {violation}"
                        );
                        false
                    }
                })
                .collect(),
            Err(e) => {
                Metrics::add(
                    &services.metrics.slashing_unavailable,
                    attestations.len() as u64,
                );
                tracing::error!(
                    count = attestations.len(),
                    "slashing protection unavailable, not attesting: {e}"
                );
                vec![false; attestations.len()]
            }
        }
    };
    let mut allowed = allowed.into_iter();
    let mut out = Vec::with_capacity(jobs.len());
    for (job, shares) in jobs.iter().zip(&shares) {
        let mut sigs = Vec::with_capacity(job.items.len());
        for (item, share) in job.items.iter().zip(shares) {
            let Some(share) = share else {
                continue;
            };
            if matches!(item.duty.kind, DutyKind::Attester { .. })
                && !allowed.next().unwrap_or(false)
            {
                continue;
            }
            let key = if services.fault == Some(Fault::CorruptPartials) {
                &wrong_key(&share.secret_share)
            } else {
                &share.secret_share
            };
            let sig = services.hash_cache.sign(key, &item.signing_root);
            sigs.push((*item, sig.to_bytes()));
        }
        out.push(sigs);
    }
    out
}

type Verdicts = Vec<(ValidatorDuty, Result<BlsSignature, ReconstructFailure>)>;

/// On the crypto pool: decompress partials, reconstruct each validator's signature and verify
/// all of them (every job has the same signing root) in one same-root batch; name culprits
/// when one fails. One result per job, one verdict per item.
fn reconstruct_jobs(services: &Services, jobs: &[ReconstructJob]) -> Vec<Verdicts> {
    let Some(root) = jobs.first().map(|j| j.root) else {
        return Vec::new();
    };
    let mut verdicts = reconstruct_same_root(
        services,
        &root,
        jobs.iter().flat_map(|j| {
            j.items.iter().map(|item| {
                (
                    j.info
                        .validators
                        .get(&item.duty.validator_index)
                        .map(|s| &**s),
                    item.partials.as_slice(),
                )
            })
        }),
    )
    .into_iter();
    jobs.iter()
        .map(|j| {
            j.items
                .iter()
                .map(|item| {
                    let v = verdicts.next().unwrap_or(Err(ReconstructFailure::Mismatch));
                    (item.duty, v)
                })
                .collect()
        })
        .collect()
}

/// `jobs` grouped by their signing root (one same-root batch each).
pub(super) fn by_root<T>(mut jobs: Vec<T>, root: impl Fn(&T) -> Root) -> Vec<Vec<T>> {
    jobs.sort_by_key(|j| root(j));
    let mut groups: Vec<Vec<T>> = Vec::new();
    for j in jobs {
        match groups.last_mut() {
            Some(g) if root(&g[0]) == root(&j) => g.push(j),
            _ => groups.push(vec![j]),
        }
    }
    groups
}

/// On the crypto pool: each validator's signature over `root` from its quorum of partials,
/// all verified in one same-root batch (partials verified one by one only to name a
/// culprit). A validator not ours (`None`) or a partial that is not a signature of a
/// committee member fails on its own.
pub(super) fn reconstruct_same_root<'a>(
    services: &Services,
    root: &Root,
    items: impl Iterator<Item = (Option<&'a ValidatorShare>, &'a [(OperatorId, BlsSignature)])>,
) -> Vec<Result<BlsSignature, ReconstructFailure>> {
    let mut verdicts: Vec<Option<Result<BlsSignature, ReconstructFailure>>> = Vec::new();
    let mut partials: Vec<Vec<Partial>> = Vec::new();
    let mut batch_of = Vec::new();
    let mut keys = Vec::new();
    for (k, (share, item_partials)) in items.enumerate() {
        verdicts.push(None);
        let Some(share) = share else {
            verdicts[k] = Some(Err(ReconstructFailure::Mismatch));
            continue;
        };
        let mut ps = Vec::with_capacity(item_partials.len());
        let mut bad = Vec::new();
        for (op, bytes) in item_partials {
            match (
                share.share_pubkeys.get(op),
                Signature::from_bytes(bytes).ok(),
            ) {
                (Some(pk), Some(sig)) => ps.push(Partial {
                    operator_id: *op,
                    share_public_key: *pk,
                    signature: sig,
                }),
                _ => bad.push(*op),
            }
        }
        if !bad.is_empty() {
            verdicts[k] = Some(Err(ReconstructFailure::InvalidPartials(bad)));
            continue;
        }
        batch_of.push(k);
        keys.push(share.public_key);
        partials.push(ps);
    }
    let validators: Vec<ValidatorPartials<'_>> = keys
        .iter()
        .zip(&partials)
        .map(|(pk, ps)| ValidatorPartials {
            validator_public_key: *pk,
            partials: ps,
        })
        .collect();
    let results = reconstruct_and_verify(root, &validators, &services.lagrange, None);
    for (&k, r) in batch_of.iter().zip(results) {
        verdicts[k] = Some(match r {
            Ok(sig) => Ok(sig.to_bytes()),
            Err(CryptoError::InvalidPartials(ops)) => Err(ReconstructFailure::InvalidPartials(ops)),
            Err(_) => Err(ReconstructFailure::Mismatch),
        });
    }
    verdicts
        .into_iter()
        .map(|v| v.unwrap_or(Err(ReconstructFailure::Mismatch)))
        .collect()
}

/// Runs a shard until shutdown: gossip from `queue`, everything else from `events`.
pub async fn run(mut shard: Shard, queue: ShardQueue, events: async_channel::Receiver<ShardEvent>) {
    tracing::info!(
        shard = shard.index,
        committees = shard.committee_count(),
        "shard running"
    );
    // The shard thread's CPU time, sampled by the thread itself (the clock is per thread).
    let metrics = shard.services.metrics.clone();
    let index = shard.index;
    let sample_cpu = move || {
        if let Some(t) = super::metrics::process::thread_cpu_time() {
            metrics.set_shard_cpu(index, t);
        }
    };
    sample_cpu();
    let sampler = sample_cpu.clone();
    let cpu_task = glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(SHARD_CPU_SAMPLE_PERIOD).await;
            sampler();
        }
    });
    loop {
        let ev = events.recv().fuse();
        let msg = queue.recv().fuse();
        pin_mut!(ev, msg);
        select_biased! {
            e = ev => match e {
                Ok(e) => if !shard.on_event(e) { break },
                Err(_) => break,
            },
            m = msg => match m {
                Some(m) => shard.on_gossip(m),
                None => break,
            },
        }
        if events.is_empty() && queue.stats().queued == 0 {
            shard.flush();
        }
    }
    drop(cpu_task);
    sample_cpu();
    tracing::info!(shard = shard.index, "shard stopped");
}

/// How often a shard samples its thread's CPU time for `ssv_shard_cpu_seconds_total`: a
/// scrape sees values at most this old (a shorter period costs a timer wake-up and a
/// `clock_gettime` per period).
const SHARD_CPU_SAMPLE_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Records a finished duty's post-consensus and whole durations (the Go runner's
/// `recordPostConsensusDuration` and `recordTotalDutyDuration`).
pub(super) fn record_completion(
    metrics: &Metrics,
    role: RunnerRole,
    round: u64,
    started: Instant,
    decided: Instant,
) {
    let now = Instant::now();
    metrics.record_stage(
        role,
        Stage::PostConsensus,
        now.saturating_duration_since(decided),
    );
    metrics.record_duty(role, round, now.saturating_duration_since(started));
}

/// The running shards: one event channel and one executor per shard.
pub struct Shards {
    /// Event channel of each shard.
    pub events: Vec<async_channel::Sender<ShardEvent>>,
    /// Executor of each shard (join after [`ShardEvent::Shutdown`]).
    pub handles: Vec<glommio::ExecutorJoinHandle<()>>,
}

/// The shard that owns `committee` (by its subnet) among `shards`.
pub fn shard_of(committee: &CommitteeInfo, shards: usize) -> usize {
    Subnet::new(committee.subnet as usize).map_or(0, |s| ssv_netio::shard_for(s, shards))
}

/// The rayon crypto pool (`threads` 0: one thread per core).
pub fn crypto_pool(threads: usize) -> anyhow::Result<rayon::ThreadPool> {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        threads
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ssv-crypto-{i}"))
        .build()
        .map_err(|e| anyhow::anyhow!("starting the crypto pool: {e}"))
}

/// Starts one glommio executor per network shard queue (pinned to core `k % cores` when
/// `pin`), each running a [`Shard`] over `services`.
pub fn spawn_shards(
    services: &Arc<Services>,
    queues: Vec<ShardQueue>,
    pin: bool,
) -> anyhow::Result<Shards> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = queues.len();
    let mut events = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for (k, queue) in queues.into_iter().enumerate() {
        let (tx, rx) = async_channel::bounded(SHARD_EVENTS_MAX);
        events.push(tx.clone());
        let placement = if pin {
            glommio::Placement::Fixed(k % cpus)
        } else {
            glommio::Placement::Unbound
        };
        let services = services.clone();
        let handle = glommio::LocalExecutorBuilder::new(placement)
            .name(&format!("ssv-shard-{k}"))
            .spawn(move || async move {
                let shard = Shard::new(k, n, services, tx);
                run(shard, queue, rx).await;
            })
            .map_err(|e| anyhow::anyhow!("starting shard {k}: {e}"))?;
        handles.push(handle);
    }
    Ok(Shards { events, handles })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssv_protocol::message::{MessageId, MsgType, SsvMessage};

    #[test]
    fn an_operator_configured_twice_is_refused() {
        let a = Arc::new(OperatorSecretKey::generate().expect("key"));
        let b = Arc::new(OperatorSecretKey::generate().expect("key"));
        let err = OurOperators::new([(7, a.clone()), (7, b.clone())]).expect_err("twice");
        assert!(err.to_string().contains("operator 7"), "{err}");
        let ours = OurOperators::new([(9, a), (7, b)]).expect("two operators");
        assert_eq!(ours.ids().collect::<Vec<_>>(), vec![7, 9]);
        assert!(ours.get(8).is_none());
        assert_eq!(ours.len(), 2);
    }

    fn message(msg_type: MsgType, data: &[u8]) -> SignedSsvMessage {
        let ssv = SsvMessage::new(msg_type, MessageId([1; 56]), data.to_vec()).expect("message");
        SignedSsvMessage::new(vec![[0; 256]], vec![1], ssv, Vec::new()).expect("signed")
    }

    #[test]
    fn published_messages_are_counted_by_type() {
        let c = PublishedCounts::default();
        for t in [0u64, 1, 1, 2, 3, 3, 3] {
            let mut data = t.to_le_bytes().to_vec();
            data.extend_from_slice(&[0; 40]);
            c.count(&message(MsgType::Consensus, &data));
        }
        c.count(&message(MsgType::PartialSignature, &[0; 48]));
        c.count(&message(MsgType::Consensus, &[2, 0]));
        let snapshot: HashMap<_, _> = c.snapshot().into_iter().collect();
        assert_eq!(snapshot["proposal"], 1);
        assert_eq!(snapshot["prepare"], 2);
        assert_eq!(snapshot["commit"], 1);
        assert_eq!(snapshot["round_change"], 3);
        assert_eq!(snapshot["partial_signature"], 1);
        assert_eq!(snapshot["other"], 1);
    }
}
