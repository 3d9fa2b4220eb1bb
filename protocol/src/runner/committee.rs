//! The committee runner (ssv-spec role `Committee`) as a sans-IO state machine.
//!
//! One runner per committee drives every attester and sync-committee duty of the committee's
//! validators, one slot at a time:
//!
//! ```text
//! start_duty(slot, duties, vote) ─► QBFT on the BeaconVote (height = slot)
//!        decided ─► RunnerAction::Sign { one signing root per duty kind, one item per duty }
//!   signed(...)   ─► one PartialSignatureMessages per committee and slot, broadcast
//!   partials of all operators ─► container per (validator, signing root)
//!        quorum ─► RunnerAction::Reconstruct { partials of each validator }  (caller reconstructs
//!                  and verifies in one same-root batch, then reports back)
//!   reconstructed(...) ─► done, or the culprits' partials are dropped and the runner waits for more
//! ```
//!
//! Like [`crate::qbft`], nothing here reads a clock or touches a socket: the node feeds
//! messages, timer expiries and crypto results in, and carries out the [`RunnerAction`]s.
//! BLS work (signing with shares, reconstruction, verification) is the caller's, so this crate
//! stays free of curve code; the runner keeps the protocol rules: which roots are valid for
//! which validator, who may sign, when a quorum is reached, what is done.
//!
//! Since Electra every attester of a slot signs the same `AttestationData` (index 0), and
//! every sync-committee member signs the same block root, so a slot has at most two signing
//! roots and the caller can verify a whole slot in two same-root batches.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use ssz::{Decode, Encode};
use tree_hash::TreeHash;

use super::base::{BaseRunner, Phase, RunnerState};
use super::collector::PartialSigCollector;
use crate::beacon_vote::BeaconVote;
use crate::chain::ChainSpec;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::RunnerRole;
use crate::message::{MessageId, MsgType, SignedSsvMessage, SsvMessage};
use crate::partial_sig::{
    BlsSignature, PartialSigMsgType, PartialSignatureMessage, PartialSignatureMessages,
};
use crate::qbft::{self, Action, Config, Controller, Env, ValueCheck};
use crate::signing::{Domain, compute_signing_root};
use crate::types::{
    BlsPublicKey, CommitteeMember, Epoch, OperatorId, Root, Round, Slot, ValidatorIndex, quorum,
};

/// Slots whose duties a runner keeps (the current one and a few late ones: partial signatures
/// may still complete a slot after the next has begun). Older slots are dropped.
pub const SLOTS_KEPT: usize = 4;
/// Messages buffered per runner that arrived before their slot's duty started here, or that
/// QBFT refused as retryable (a vote before its proposal). Beyond this the oldest go.
pub const PENDING_MESSAGES_MAX: usize = 512;
/// How many slots ahead of the newest started duty a message may be and still be buffered.
pub const FUTURE_SLOTS_MAX: u64 = 2;
/// Most validator duties in one committee duty (every validator of a committee attests and
/// may be in the sync committee).
pub const DUTIES_PER_SLOT_MAX: usize = 2 * crate::limits::PARTIAL_SIGNATURES_MAX;

/// What a validator does in a committee duty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DutyKind {
    /// Attest (all attesters of a slot sign the same data since Electra).
    Attester {
        /// The beacon committee the validator is in (goes into the `SingleAttestation`).
        committee_index: u64,
        /// Number of beacon committees at the slot.
        committees_at_slot: u64,
        /// The validator's position in its beacon committee.
        validator_committee_index: u64,
    },
    /// Sign the head block root as a sync-committee member.
    SyncCommittee,
}

impl DutyKind {
    fn is_attester(&self) -> bool {
        matches!(self, DutyKind::Attester { .. })
    }
}

/// One validator's duty within a committee duty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorDuty {
    /// What to do.
    pub kind: DutyKind,
    /// Beacon index of the validator.
    pub validator_index: ValidatorIndex,
    /// Its public key.
    pub pubkey: BlsPublicKey,
}

/// A committee's duties at one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitteeDuty {
    /// The slot.
    pub slot: Slot,
    /// One entry per validator and duty kind.
    pub duties: Vec<ValidatorDuty>,
    /// `DOMAIN_BEACON_ATTESTER` domain of the slot's epoch.
    pub attester_domain: Domain,
    /// `DOMAIN_SYNC_COMMITTEE` domain of the slot's epoch.
    pub sync_domain: Domain,
    /// The slot is before Electra: attestation data carries each attester's committee index
    /// (one signing root per beacon committee); from Electra on the index is 0 (EIP-7549) and
    /// every attester of the slot signs the same root.
    pub pre_electra: bool,
}

/// One signature this operator must produce with its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignItem {
    /// The duty.
    pub duty: ValidatorDuty,
    /// What to sign.
    pub signing_root: Root,
}

/// A validator whose partial signatures reached a quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumItem {
    /// The duty.
    pub duty: ValidatorDuty,
    /// A quorum of partial signatures from distinct operators, ascending by operator.
    pub partials: Vec<(OperatorId, BlsSignature)>,
}

/// Why a reconstructed signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconstructFailure {
    /// These operators' partials do not verify against their share keys.
    InvalidPartials(Vec<OperatorId>),
    /// Every partial verified but the combination did not: the share keys do not match the
    /// validator key. Nothing more can be done for this duty.
    Mismatch,
}

/// What the runner asks its caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerAction {
    /// Send this message to the committee's subnet. Our own messages are already processed.
    Broadcast(SignedSsvMessage),
    /// Arm the QBFT round timer of `slot`: call [`CommitteeRunner::on_timeout`] after `after`.
    SetTimer {
        /// The slot (QBFT height).
        slot: Slot,
        /// The round the timer guards.
        round: Round,
        /// How long from now.
        after: Duration,
    },
    /// Consensus decided `vote` for `slot` (store it; the signing request follows).
    Decided {
        /// The slot.
        slot: Slot,
        /// The decided vote.
        vote: BeaconVote,
        /// The aggregated commit proving it.
        proof: SignedSsvMessage,
    },
    /// Check slashing protection for the attesters, sign every item with our share, and
    /// hand the signatures to [`CommitteeRunner::signed`].
    Sign {
        /// The slot.
        slot: Slot,
        /// The decided vote (source and target epochs for slashing protection).
        vote: BeaconVote,
        /// The signatures to make.
        items: Vec<SignItem>,
    },
    /// Reconstruct and verify these validators' signatures over `signing_root`, then report
    /// with [`CommitteeRunner::reconstructed`].
    Reconstruct {
        /// The slot.
        slot: Slot,
        /// The common signing root.
        signing_root: Root,
        /// The decided vote (to build the attestation).
        vote: BeaconVote,
        /// The validators at quorum.
        items: Vec<QuorumItem>,
    },
}

/// What became of one inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Applied to the runner's state.
    Applied,
    /// Kept to be applied later (its duty has not started here yet, or QBFT wants it after
    /// a message it has not seen yet).
    Buffered,
}

/// The roots each validator may sign at a slot, once decided.
#[derive(Debug, Clone)]
struct Roots {
    vote: BeaconVote,
    /// The signing root of each validator duty, by (validator, is attester).
    expected: HashMap<(ValidatorIndex, bool), Root>,
}

impl Roots {
    /// The duty `(validator, root)` belongs to, if the root is the one expected of it.
    fn duty_of(&self, validator: ValidatorIndex, root: &Root) -> Option<bool> {
        [true, false]
            .into_iter()
            .find(|kind| self.expected.get(&(validator, *kind)) == Some(root))
    }
}

/// How a runner behaves where the node and ssv-spec's test environment differ.
///
/// The spec's runner (and its vectors) never sees its own broadcasts unless they come back
/// as inputs, refuses messages for slots without a runner instead of keeping them, and
/// stores any partial signature it is sent (unknown validators and wrong roots included),
/// verifying partials only when a reconstruction fails. The node runs hardened: its own
/// messages are applied as they are sent (gossip does not deliver a node its own messages),
/// messages that arrive before their duty starts or their proposal are kept and retried,
/// and a partial-signature message with a root or validator the duty does not expect is
/// refused whole (so a hostile operator cannot fill containers) and its sender's later
/// partials of the slot are refused once one failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerOptions {
    /// Apply our own QBFT messages and partial signatures as we send them.
    pub loopback: bool,
    /// The node's hardening (see above); `false` is ssv-spec's behaviour, code for code.
    pub hardened: bool,
}

impl RunnerOptions {
    /// What the node runs.
    pub const NODE: RunnerOptions = RunnerOptions {
        loopback: true,
        hardened: true,
    };
    /// ssv-spec's test environment.
    pub const SPEC: RunnerOptions = RunnerOptions {
        loopback: false,
        hardened: false,
    };
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self::NODE
    }
}

/// Where a validator's reconstruction stands (its partials are in the duty's collector).
#[derive(Debug, Default)]
struct Status {
    /// Quorum handed to the caller, waiting for the verdict.
    in_flight: bool,
    /// Verified and done.
    done: bool,
    /// Cannot complete (share keys do not match).
    failed: bool,
}

#[derive(Debug)]
struct SlotState {
    /// The role-neutral core: this slot's QBFT controller, and the duty's state (the
    /// post-consensus collector, the decided value, finished).
    base: BaseRunner,
    duty: CommitteeDuty,
    /// Our own beacon node's vote (the expected source and target).
    ours: BeaconVote,
    /// Pubkeys of the duty's attesters (what the value check asks slashing protection).
    attesters: Vec<BlsPublicKey>,
    /// Duties by (validator, is attester).
    by_validator: HashMap<(ValidatorIndex, bool), ValidatorDuty>,
    roots: Option<Roots>,
    /// Post-consensus partial messages that arrived before the decision.
    early_partials: Vec<PartialSignatureMessages>,
    status: HashMap<(ValidatorIndex, Root), Status>,
    /// Operators who sent their post-consensus partials for this slot.
    partial_senders: HashSet<OperatorId>,
    /// Operators whose partials failed verification at this slot.
    culprits: HashSet<OperatorId>,
    signed: bool,
}

impl SlotState {
    fn finished(&self) -> bool {
        self.base.state.as_ref().is_some_and(|s| s.finished)
    }

    fn collector(&self) -> Option<&PartialSigCollector> {
        self.base.state.as_ref().map(|s| &s.post_consensus)
    }
}

/// The value check of a slot around the caller's `outer` one (fields of its `SlotState`,
/// borrowed apart from its controller).
fn slot_value_check<'a>(
    outer: &'a dyn ValueCheck,
    duty: &CommitteeDuty,
    ours: BeaconVote,
    attesters: &'a [BlsPublicKey],
    slashing: Option<&'a (dyn AttestationSlashing + Send + Sync)>,
) -> SlotValueCheck<'a> {
    SlotValueCheck {
        spec: BeaconVoteValueCheck {
            slot: duty.slot,
            expected_source: ours.source.epoch,
            expected_target: ours.target.epoch,
            attester_domain: duty.attester_domain,
            keys: attesters,
            slashing: slashing.map(|s| s as &dyn AttestationSlashing),
        },
        outer,
    }
}

/// A slot's duty as ssv-spec's runner state describes it (see
/// [`CommitteeRunner::restore_slot`]).
#[derive(Debug, Clone)]
pub struct RestoredSlot {
    /// The duty.
    pub duty: CommitteeDuty,
    /// Our beacon node's vote (the value check's expected epochs).
    pub ours: BeaconVote,
    /// The slot's QBFT controller.
    pub controller: Controller,
    /// `State.DecidedValue`: the decided vote, SSZ (`None`: not decided here).
    pub decided_value: Option<Vec<u8>>,
    /// `State.PostConsensusContainer`: every partial collected.
    pub post_consensus: Vec<PartialSignatureMessage>,
    /// `State.Finished`.
    pub finished: bool,
    /// The height of `State.RunningInstance` in the controller (`None`: no instance).
    pub running_height: Option<Slot>,
}

/// A slot's state in ssv-spec's terms.
#[derive(Debug)]
pub struct SlotView<'a> {
    /// The duty.
    pub duty: &'a CommitteeDuty,
    /// The slot's QBFT controller (`QBFTController`; `RunningInstance` is its instance of
    /// the slot).
    pub controller: &'a Controller,
    /// `State.DecidedValue`.
    pub decided_value: Option<Vec<u8>>,
    /// `State.Finished`.
    pub finished: bool,
    /// Where the duty stands.
    pub phase: Phase,
    /// `State.RunningInstance`.
    pub running_instance: Option<&'a qbft::Instance>,
    /// `State.PostConsensusContainer.Signatures`: validator → root → operator → partial.
    pub post_consensus:
        BTreeMap<ValidatorIndex, BTreeMap<Root, BTreeMap<OperatorId, BlsSignature>>>,
}

/// Counters of one runner (exported as metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunnerStats {
    /// Duties started.
    pub duties_started: u64,
    /// Slots decided.
    pub decided: u64,
    /// Validator signatures verified (done).
    pub signatures_done: u64,
    /// Partials dropped because they failed verification.
    pub bad_partials: u64,
    /// Buffered messages dropped (buffer full or slot pruned).
    pub buffered_dropped: u64,
}

/// The committee runner of one committee. See the module docs.
pub struct CommitteeRunner {
    member: CommitteeMember,
    msg_id: MessageId,
    qbft_config: Config,
    quorum: usize,
    slots: BTreeMap<Slot, SlotState>,
    pending: Vec<(Slot, SignedSsvMessage)>,
    highest_started: Option<Slot>,
    replaying: bool,
    loopback: VecDeque<SignedSsvMessage>,
    looping: bool,
    qbft_out: Vec<Action>,
    stats: RunnerStats,
    slashing: Option<std::sync::Arc<dyn AttestationSlashing + Send + Sync>>,
    options: RunnerOptions,
    /// The first error of a decision made while processing the current message (a decided
    /// value that fails the value check), returned by that message's processing.
    decide_error: Option<Error>,
}

impl std::fmt::Debug for CommitteeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitteeRunner")
            .field("operator", &self.member.operator_id)
            .field("slots", &self.slots.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The committee runner's value check (ssv-spec `BeaconVoteValueCheckF` without the
/// slashing part, which the node adds with its storage): a decodable vote, source before
/// target, target no further than one epoch after the slot's.
#[derive(Debug, Clone, Copy)]
pub struct BeaconVoteCheck {
    /// The duty's slot.
    pub slot: Slot,
    /// The chain's constants (the slot's epoch).
    pub chain: ChainSpec,
}

impl ValueCheck for BeaconVoteCheck {
    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        let vote = BeaconVote::from_ssz(value)
            .map_err(|e| Error::spec(ErrorCode::DecodeBeaconVote, e.to_string()))?;
        let epoch: Epoch = self.chain.epoch_of(self.slot);
        if vote.target.epoch > epoch + 1 {
            return Err(Error::spec(
                ErrorCode::DutyEpochTooFarFuture,
                format!(
                    "attestation data target epoch {} is into far future",
                    vote.target.epoch
                ),
            ));
        }
        vote.validate()
    }
}

/// What the committee runner asks of slashing protection before it lets QBFT accept a value
/// (ssv-spec's `IsAttestationSlashable` in `BeaconVoteValueCheckF`): the node answers from
/// its own records, without recording anything.
pub trait AttestationSlashing {
    /// `Err` (with a reason) when signing the attestation of `slot` with these epochs and this
    /// signing root would be slashable for any of `pubkeys`, or when the records cannot say.
    fn check(
        &self,
        pubkeys: &[BlsPublicKey],
        slot: Slot,
        source: Epoch,
        target: Epoch,
        signing_root: &Root,
    ) -> Result<(), String>;
}

/// ssv-spec's `BeaconVoteValueCheckF`, check for check and code for code: the vote decodes
/// (`DecodeBeaconVote`), its source is before its target (`AttestationSourceNotLessThanTarget`),
/// both equal the expected epochs — our own beacon node's (`CheckpointMismatch`) — and
/// signing it is not slashable for any of `keys` (`SlashableAttestation`), so that honest
/// operators do not decide a value they would then refuse to sign.
#[derive(Clone, Copy)]
pub struct BeaconVoteValueCheck<'a> {
    /// The duty's slot.
    pub slot: Slot,
    /// The source epoch our beacon node gave.
    pub expected_source: Epoch,
    /// The target epoch our beacon node gave.
    pub expected_target: Epoch,
    /// `DOMAIN_BEACON_ATTESTER` of the slot (the signing root slashing protection sees).
    pub attester_domain: Domain,
    /// The keys slashing protection is asked about (the duty's attesters).
    pub keys: &'a [BlsPublicKey],
    /// Slashing protection; `None` skips that part.
    pub slashing: Option<&'a dyn AttestationSlashing>,
}

impl std::fmt::Debug for BeaconVoteValueCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeaconVoteValueCheck")
            .field("slot", &self.slot)
            .field("expected_source", &self.expected_source)
            .field("expected_target", &self.expected_target)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl ValueCheck for BeaconVoteValueCheck<'_> {
    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        let vote = BeaconVote::from_ssz(value).map_err(|e| {
            Error::spec(
                ErrorCode::DecodeBeaconVote,
                format!("failed decoding beacon vote: {e}"),
            )
        })?;
        if vote.source.epoch >= vote.target.epoch {
            return Err(Error::spec(
                ErrorCode::AttestationSourceNotLessThanTarget,
                "attestation data source >= target",
            ));
        }
        if vote.source.epoch != self.expected_source {
            return Err(Error::spec(
                ErrorCode::CheckpointMismatch,
                format!(
                    "attestation data source checkpoint {} does not match expected {}",
                    vote.source.epoch, self.expected_source
                ),
            ));
        }
        if vote.target.epoch != self.expected_target {
            return Err(Error::spec(
                ErrorCode::CheckpointMismatch,
                format!(
                    "attestation data target checkpoint {} does not match expected {}",
                    vote.target.epoch, self.expected_target
                ),
            ));
        }
        if let Some(slashing) = self.slashing
            && !self.keys.is_empty()
        {
            let root = compute_signing_root(
                vote.attestation_data(self.slot).tree_hash_root().0,
                self.attester_domain,
            );
            slashing
                .check(
                    self.keys,
                    self.slot,
                    vote.source.epoch,
                    vote.target.epoch,
                    &root,
                )
                .map_err(|why| {
                    Error::spec(
                        ErrorCode::SlashableAttestation,
                        format!("slashable attestation: {why}"),
                    )
                })?;
        }
        Ok(())
    }
}

/// The value check of one slot: ssv-spec's [`BeaconVoteValueCheck`] with the duty's attesters
/// and our own vote's epochs, then the caller's own check (the node's [`BeaconVoteCheck`]).
struct SlotValueCheck<'a> {
    spec: BeaconVoteValueCheck<'a>,
    outer: &'a dyn ValueCheck,
}

impl ValueCheck for SlotValueCheck<'_> {
    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        self.spec.check_value(value)?;
        self.outer.check_value(value)
    }
}

/// The signing roots a decided vote gives to each duty of `duty`.
fn roots_for(vote: BeaconVote, duty: &CommitteeDuty) -> Roots {
    // hash_tree_root of a Bytes32 is the bytes themselves.
    let sync = compute_signing_root(vote.block_root, duty.sync_domain);
    let mut by_index: HashMap<u64, Root> = HashMap::new();
    let mut attester_root = |index: u64| {
        *by_index.entry(index).or_insert_with(|| {
            let mut data = vote.attestation_data(duty.slot);
            data.index = index;
            compute_signing_root(data.tree_hash_root().0, duty.attester_domain)
        })
    };
    let expected = duty
        .duties
        .iter()
        .map(|d| {
            let root = match d.kind {
                DutyKind::Attester {
                    committee_index, ..
                } if duty.pre_electra => attester_root(committee_index),
                DutyKind::Attester { .. } => attester_root(0),
                DutyKind::SyncCommittee => sync,
            };
            ((d.validator_index, d.kind.is_attester()), root)
        })
        .collect();
    Roots { vote, expected }
}

impl CommitteeRunner {
    /// A runner for the committee `member` belongs to.
    pub fn new(member: CommitteeMember, config: Config) -> Self {
        let msg_id = MessageId::for_committee(member.domain, &member.committee_id);
        let quorum = quorum(member.committee.len());
        CommitteeRunner {
            member,
            msg_id,
            qbft_config: config,
            quorum,
            slots: BTreeMap::new(),
            pending: Vec::new(),
            highest_started: None,
            replaying: false,
            loopback: VecDeque::new(),
            looping: false,
            qbft_out: Vec::new(),
            stats: RunnerStats::default(),
            slashing: None,
            options: RunnerOptions::NODE,
            decide_error: None,
        }
    }

    /// Runs with `options` instead of the node's.
    pub fn with_options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// Lets the value check ask slashing protection (the node's records) whether a proposed
    /// vote would be slashable for any attester of the slot's duty.
    pub fn with_slashing(
        mut self,
        slashing: std::sync::Arc<dyn AttestationSlashing + Send + Sync>,
    ) -> Self {
        self.slashing = Some(slashing);
        self
    }

    /// The committee's message ID (`MessageID` of role committee).
    pub fn message_id(&self) -> &MessageId {
        &self.msg_id
    }

    /// The committee member (this operator's view).
    pub fn member(&self) -> &CommitteeMember {
        &self.member
    }

    /// Counters.
    pub fn stats(&self) -> RunnerStats {
        self.stats
    }

    /// Slots with a duty in progress (started and not pruned).
    pub fn active_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.keys().copied()
    }

    /// Whether every validator duty of `slot` has a verified signature (or cannot get one).
    pub fn is_complete(&self, slot: Slot) -> bool {
        self.slots.get(&slot).is_some_and(|s| {
            s.finished()
                || s.roots.as_ref().is_some_and(|roots| {
                    roots.expected.iter().all(|(&(v, _), root)| {
                        s.status
                            .get(&(v, *root))
                            .is_some_and(|c| c.done || c.failed)
                    })
                })
        })
    }

    /// Whether `slot` has a duty here (started or restored, not pruned).
    pub fn has_slot(&self, slot: Slot) -> bool {
        self.slots.contains_key(&slot)
    }

    /// Starts the duty of a slot with this operator's vote (from its beacon node), on a
    /// runner of its own (a fresh QBFT controller): as ssv-spec's committee creates one
    /// runner per duty, a new slot's instance does not stop the previous slot's, which may
    /// still be changing rounds.
    pub fn start_duty(
        &mut self,
        env: Env<'_>,
        duty: CommitteeDuty,
        vote: BeaconVote,
        out: &mut Vec<RunnerAction>,
    ) -> Result<(), Error> {
        let slot = duty.slot;
        if duty.duties.is_empty() {
            return Err(Error::spec(ErrorCode::NoBeaconDuties, "no beacon duties"));
        }
        if duty.duties.len() > DUTIES_PER_SLOT_MAX {
            return Err(Error::spec(
                ErrorCode::NoBeaconDuties,
                format!(
                    "{} duties, more than {DUTIES_PER_SLOT_MAX}",
                    duty.duties.len()
                ),
            ));
        }
        if self.slots.contains_key(&slot) {
            return Err(Error::spec(
                ErrorCode::InstanceAlreadyRunning,
                format!("duty of slot {slot} already running"),
            ));
        }
        if self.options.hardened && self.highest_started.is_some_and(|h| slot <= h) {
            return Err(Error::spec(
                ErrorCode::DutyAlreadyPassed,
                format!("duty of slot {slot} is not after the last started one"),
            ));
        }
        let base = BaseRunner::new(
            RunnerRole::Committee,
            Some(Controller::new(
                self.msg_id.0.to_vec(),
                self.member.clone(),
                self.qbft_config,
            )),
        );
        self.start_on(env, base, duty, vote, out)
    }

    /// Starts `duty` on the runner of slot `from`, whose QBFT controller carries on (ssv-spec's
    /// runner-level `StartNewDuty`: the duty must be above the controller's height, else
    /// `DutyAlreadyPassed` and nothing changes; the earlier instance stops). The runner moves
    /// to the new duty's slot. The node starts every duty on its own runner
    /// ([`Self::start_duty`]); this is the spec's path for one runner's successive duties.
    pub fn start_duty_on(
        &mut self,
        from: Slot,
        env: Env<'_>,
        duty: CommitteeDuty,
        vote: BeaconVote,
        out: &mut Vec<RunnerAction>,
    ) -> Result<(), Error> {
        let previous = self.slots.get(&from).ok_or_else(|| {
            Error::spec(
                ErrorCode::NoRunnerForSlot,
                format!("no runner for slot {from}"),
            )
        })?;
        previous.base.should_process_duty(duty.slot)?;
        if duty.slot != from && self.slots.contains_key(&duty.slot) {
            return Err(Error::spec(
                ErrorCode::InstanceAlreadyRunning,
                format!("duty of slot {} already running", duty.slot),
            ));
        }
        let Some(previous) = self.slots.remove(&from) else {
            return Ok(());
        };
        let mut base = previous.base;
        base.state = None;
        self.start_on(env, base, duty, vote, out)
    }

    /// Starts `duty` on `base` (a runner without a running duty).
    fn start_on(
        &mut self,
        env: Env<'_>,
        mut base: BaseRunner,
        duty: CommitteeDuty,
        vote: BeaconVote,
        out: &mut Vec<RunnerAction>,
    ) -> Result<(), Error> {
        let slot = duty.slot;
        base.should_process_duty(slot)?;
        base.setup_for_new_duty(slot, self.quorum);
        let by_validator = duty
            .duties
            .iter()
            .map(|d| ((d.validator_index, d.kind.is_attester()), *d))
            .collect();
        self.qbft_out.clear();
        let mut qbft_out = std::mem::take(&mut self.qbft_out);
        let attesters: Vec<BlsPublicKey> = duty
            .duties
            .iter()
            .filter(|d| d.kind.is_attester())
            .map(|d| d.pubkey)
            .collect();
        let started = {
            let check = slot_value_check(
                env.value_check,
                &duty,
                vote,
                &attesters,
                self.slashing.as_deref(),
            );
            let env = Env {
                value_check: &check,
                ..env
            };
            base.decide(env, slot, vote.to_ssz(), &mut qbft_out)
        };
        if let Err(e) = started {
            self.qbft_out = qbft_out;
            return Err(e);
        }
        self.highest_started = Some(self.highest_started.map_or(slot, |h| h.max(slot)));
        self.stats.duties_started += 1;
        self.slots.insert(
            slot,
            SlotState {
                base,
                duty,
                ours: vote,
                attesters,
                by_validator,
                roots: None,
                early_partials: Vec::new(),
                status: HashMap::new(),
                partial_senders: HashSet::new(),
                culprits: HashSet::new(),
                signed: false,
            },
        );
        self.prune();
        self.drain_qbft(env, &mut qbft_out, out);
        self.qbft_out = qbft_out;
        self.flush_loopback(env, out);
        self.replay_pending(env, out);
        Ok(())
    }

    /// Puts back a slot's duty as ssv-spec's runner state describes it (its QBFT controller,
    /// decided value, collected post-consensus partials and whether it finished): how the
    /// runner suite's vectors start from a runner in the middle of a duty.
    pub fn restore_slot(&mut self, restored: RestoredSlot) -> Result<(), Error> {
        let RestoredSlot {
            duty,
            ours,
            controller,
            decided_value,
            post_consensus,
            finished,
            running_height,
        } = restored;
        let slot = duty.slot;
        let roots = match &decided_value {
            Some(v) => Some(roots_for(
                BeaconVote::from_ssz(v)
                    .map_err(|e| Error::spec(ErrorCode::DecodeBeaconVote, e.to_string()))?,
                &duty,
            )),
            None => None,
        };
        let mut state = RunnerState::new(slot, self.quorum);
        for m in &post_consensus {
            state.post_consensus.add(m);
        }
        state.decided_value = decided_value;
        state.finished = finished;
        state.running_height = running_height;
        let mut status: HashMap<(ValidatorIndex, Root), Status> = HashMap::new();
        if finished && let Some(roots) = &roots {
            for (&(v, _), root) in &roots.expected {
                status.entry((v, *root)).or_default().done = true;
            }
        }
        let attesters = duty
            .duties
            .iter()
            .filter(|d| d.kind.is_attester())
            .map(|d| d.pubkey)
            .collect();
        let by_validator = duty
            .duties
            .iter()
            .map(|d| ((d.validator_index, d.kind.is_attester()), *d))
            .collect();
        let mut base = BaseRunner::new(RunnerRole::Committee, Some(controller));
        base.state = Some(state);
        self.highest_started = Some(self.highest_started.map_or(slot, |h| h.max(slot)));
        self.slots.insert(
            slot,
            SlotState {
                base,
                duty,
                ours,
                attesters,
                by_validator,
                signed: roots.is_some(),
                roots,
                early_partials: Vec::new(),
                status,
                partial_senders: HashSet::new(),
                culprits: HashSet::new(),
            },
        );
        Ok(())
    }

    /// A slot's state in ssv-spec's terms (what the runner suite compares).
    pub fn slot_view(&self, slot: Slot) -> Option<SlotView<'_>> {
        let s = self.slots.get(&slot)?;
        let controller = s.base.controller.as_ref()?;
        let mut post_consensus = s
            .collector()
            .map(|c| c.signatures().clone())
            .unwrap_or_default();
        post_consensus.retain(|_, roots| {
            roots.retain(|_, ops| !ops.is_empty());
            !roots.is_empty()
        });
        let state = s.base.state.as_ref();
        Some(SlotView {
            duty: &s.duty,
            controller,
            decided_value: state.and_then(|st| st.decided_value.clone()),
            finished: s.finished(),
            post_consensus,
            phase: s.base.phase(),
            running_instance: s.base.running_instance(),
        })
    }

    /// Drops slots beyond [`SLOTS_KEPT`] and buffered messages of dropped slots.
    fn prune(&mut self) {
        while self.slots.len() > SLOTS_KEPT {
            self.slots.pop_first();
        }
        if let Some(&lowest) = self.slots.keys().next() {
            let before = self.pending.len();
            self.pending.retain(|(s, _)| *s >= lowest);
            self.stats.buffered_dropped += (before - self.pending.len()) as u64;
        }
    }

    fn buffer(&mut self, slot: Slot, msg: SignedSsvMessage) {
        if self.pending.len() >= PENDING_MESSAGES_MAX {
            self.pending.remove(0);
            self.stats.buffered_dropped += 1;
        }
        self.pending.push((slot, msg));
    }

    /// Retries buffered messages (after a duty start or a decision).
    fn replay_pending(&mut self, env: Env<'_>, out: &mut Vec<RunnerAction>) {
        if self.replaying {
            return;
        }
        self.replaying = true;
        // Each pass may make earlier-refused messages acceptable (a proposal unlocks the
        // prepares before it), so repeat while a pass made progress.
        loop {
            let pending = std::mem::take(&mut self.pending);
            let before = pending.len();
            for (_, msg) in pending {
                // Errors of replayed messages were judged when they first arrived.
                let _ = self.process_message(env, msg, out);
            }
            if self.pending.len() >= before || self.pending.is_empty() {
                break;
            }
        }
        self.replaying = false;
    }

    /// Processes an inbound message of this committee whose outer structure and operator
    /// signatures the caller has checked (`SignedSsvMessage::validate`, signers in the
    /// committee, RSA signatures).
    pub fn process_message(
        &mut self,
        env: Env<'_>,
        msg: SignedSsvMessage,
        out: &mut Vec<RunnerAction>,
    ) -> Result<Processed, Error> {
        if msg.ssv_message.msg_id != self.msg_id {
            return Err(Error::spec(
                ErrorCode::MessageIdentifierInvalid,
                "message is not for this committee",
            ));
        }
        match msg.ssv_message.kind() {
            Some(MsgType::Consensus) => self.process_consensus(env, msg, out),
            Some(MsgType::PartialSignature) => self.process_partials(env, msg, out),
            _ => Err(Error::spec(
                ErrorCode::MessageTypeInvalid,
                "unknown message type for the committee runner",
            )),
        }
    }

    /// A message for a slot with no duty here: refused when the slot is past (a duty we never
    /// started or already pruned: nothing would be signed) or too far ahead (`too_far`),
    /// otherwise kept until the duty starts.
    fn hold_unstarted(
        &mut self,
        slot: Slot,
        msg: SignedSsvMessage,
        too_far: ErrorCode,
    ) -> Result<Processed, Error> {
        match self.highest_started {
            Some(h) if slot <= h => Err(Error::spec(
                ErrorCode::NoRunnerForSlot,
                format!("no duty for slot {slot}"),
            )),
            Some(h) if slot > h + FUTURE_SLOTS_MAX => Err(Error::spec(
                too_far,
                format!("slot {slot} too far in the future"),
            )),
            _ => {
                self.buffer(slot, msg);
                Ok(Processed::Buffered)
            }
        }
    }

    fn process_consensus(
        &mut self,
        env: Env<'_>,
        msg: SignedSsvMessage,
        out: &mut Vec<RunnerAction>,
    ) -> Result<Processed, Error> {
        let qbft_msg = qbft::Message::from_ssz_bytes(&msg.ssv_message.data)
            .map_err(|e| Error::spec(ErrorCode::UnmarshalSSZ, format!("{e:?}")))?;
        let slot = qbft_msg.height;
        let Some(state) = self.slots.get(&slot) else {
            if !self.options.hardened {
                return Err(Error::spec(
                    ErrorCode::NoRunnerForSlot,
                    "no runner found for message's slot",
                ));
            }
            return self.hold_unstarted(slot, msg, ErrorCode::FutureMessage);
        };
        // Consensus has decided and the duty is still collecting signatures; a finished
        // duty's messages go on to QBFT (which refuses them as decided).
        state.base.check_consensus_wanted()?;
        self.decide_error = None;
        let mut qbft_out = std::mem::take(&mut self.qbft_out);
        qbft_out.clear();
        let result = self
            .with_slot_controller(env, slot, |c, env| {
                c.process_msg(env, msg.clone(), &mut qbft_out)
            })
            .unwrap_or_else(|| {
                Err(Error::spec(
                    ErrorCode::NoRunnerForSlot,
                    format!("no duty for slot {slot}"),
                ))
            });
        let processed = match result {
            Ok(_) => Ok(Processed::Applied),
            Err(e) if self.options.hardened && qbft::is_retryable(&e) => {
                self.buffer(slot, msg);
                Ok(Processed::Buffered)
            }
            Err(e) => Err(e),
        };
        self.drain_qbft(env, &mut qbft_out, out);
        self.qbft_out = qbft_out;
        self.flush_loopback(env, out);
        let processed = match (processed, self.decide_error.take()) {
            (Ok(_), Some(e)) => Err(e),
            (p, _) => p,
        };
        // An applied message may unlock buffered ones (a proposal the prepares before it, a
        // round change the votes of its round).
        if processed == Ok(Processed::Applied) && !self.pending.is_empty() {
            self.replay_pending(env, out);
        }
        processed
    }

    /// Processes our own QBFT broadcasts, in order (they may produce more).
    /// Runs `f` on the QBFT controller of `slot` with the slot's value check around the
    /// caller's (`None` when the slot has no duty here).
    fn with_slot_controller<R>(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        f: impl FnOnce(&mut Controller, Env<'_>) -> R,
    ) -> Option<R> {
        let state = self.slots.get_mut(&slot)?;
        let check = slot_value_check(
            env.value_check,
            &state.duty,
            state.ours,
            &state.attesters,
            self.slashing.as_deref(),
        );
        let env = Env {
            value_check: &check,
            ..env
        };
        let controller = state.base.controller.as_mut()?;
        Some(f(controller, env))
    }

    fn flush_loopback(&mut self, env: Env<'_>, out: &mut Vec<RunnerAction>) {
        if self.looping {
            return;
        }
        self.looping = true;
        while let Some(m) = self.loopback.pop_front() {
            // Our own messages are valid by construction; a refusal (e.g. the instance has
            // decided meanwhile) is not an error.
            let _ = self.process_consensus(env, m, out);
        }
        self.looping = false;
    }

    fn drain_qbft(
        &mut self,
        env: Env<'_>,
        qbft_out: &mut Vec<Action>,
        out: &mut Vec<RunnerAction>,
    ) {
        for action in qbft_out.drain(..) {
            match action {
                Action::Broadcast(m) => {
                    // The node applies its own messages as it sends them (gossip does not
                    // deliver them back); the spec's environment feeds them back as inputs.
                    if self.options.loopback {
                        self.loopback.push_back(m.clone());
                    }
                    out.push(RunnerAction::Broadcast(m));
                }
                Action::SetTimer {
                    height,
                    round,
                    after,
                } => out.push(RunnerAction::SetTimer {
                    slot: height,
                    round,
                    after,
                }),
                Action::Decided {
                    height,
                    value,
                    aggregated_commit,
                    ..
                } => self.on_decided(env, height, &value, aggregated_commit, out),
            }
        }
    }

    fn on_decided(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        value: &[u8],
        proof: SignedSsvMessage,
        out: &mut Vec<RunnerAction>,
    ) {
        let Some(state) = self.slots.get_mut(&slot) else {
            return;
        };
        if state.roots.is_some() {
            return;
        }
        // ssv-spec `validateDecidedConsensusData`: the decided value passes the value check
        // again (a decided message carries no proposal that was checked here), or nothing is
        // signed and the duty keeps no decided value.
        let check = slot_value_check(
            env.value_check,
            &state.duty,
            state.ours,
            &state.attesters,
            self.slashing.as_deref(),
        );
        if let Err(e) = check.check_value(value) {
            self.decide_error.get_or_insert(e);
            return;
        }
        let Ok(vote) = BeaconVote::from_ssz(value) else {
            return;
        };
        let roots = roots_for(vote, &state.duty);
        if let Some(st) = state.base.state.as_mut() {
            st.decided_value = Some(vote.to_ssz());
        }
        self.stats.decided += 1;
        out.push(RunnerAction::Decided { slot, vote, proof });
        let items = state
            .duty
            .duties
            .iter()
            .filter_map(|d| {
                roots
                    .expected
                    .get(&(d.validator_index, d.kind.is_attester()))
                    .map(|root| SignItem {
                        duty: *d,
                        signing_root: *root,
                    })
            })
            .collect();
        state.roots = Some(roots);
        out.push(RunnerAction::Sign { slot, vote, items });
        let early = std::mem::take(&mut state.early_partials);
        for m in early {
            let _ = self.apply_partials(slot, m, out);
        }
    }

    fn process_partials(
        &mut self,
        _env: Env<'_>,
        msg: SignedSsvMessage,
        out: &mut Vec<RunnerAction>,
    ) -> Result<Processed, Error> {
        if msg.operator_ids.len() != 1 {
            return Err(Error::spec(
                ErrorCode::MessageAllowsOneSignerOnly,
                "partial signature messages have one signer",
            ));
        }
        let sender = msg.operator_ids[0];
        let psm = PartialSignatureMessages::from_ssz(&msg.ssv_message.data)
            .map_err(|e| Error::spec(ErrorCode::UnmarshalSSZ, e.to_string()))?;
        psm.validate()?;
        if psm.kind() != Some(PartialSigMsgType::PostConsensus) {
            return Err(Error::spec(
                ErrorCode::MessageTypeInvalid,
                "the committee runner takes post-consensus partial signatures only",
            ));
        }
        if psm.signer() != Some(sender) {
            return Err(Error::spec(
                ErrorCode::PartialSigInconsistentSigner,
                "partial signer differs from the message signer",
            ));
        }
        if !self.member.is_member(sender) {
            return Err(Error::spec(
                ErrorCode::SignerIsNotInCommittee,
                format!("operator {sender} is not in the committee"),
            ));
        }
        let slot = psm.slot;
        if !self.slots.contains_key(&slot) {
            if !self.options.hardened {
                return Err(Error::spec(
                    ErrorCode::NoRunnerForSlot,
                    "no runner found for message's slot",
                ));
            }
            return self.hold_unstarted(slot, msg, ErrorCode::PartialSigMessageFutureSlot);
        }
        self.apply_partials(slot, psm, out)
    }

    /// Adds one operator's partials of a slot (decided or not yet).
    fn apply_partials(
        &mut self,
        slot: Slot,
        psm: PartialSignatureMessages,
        out: &mut Vec<RunnerAction>,
    ) -> Result<Processed, Error> {
        let hardened = self.options.hardened;
        let state = self.slots.get_mut(&slot).ok_or_else(|| {
            Error::spec(
                ErrorCode::NoRunnerForSlot,
                format!("no duty for slot {slot}"),
            )
        })?;
        let sender = psm.signer().unwrap_or(0);
        // ssv-spec `ValidatePostConsensusMsg` (the node keeps early partials instead).
        if !hardened {
            state.base.validate_post_consensus(&psm)?;
        }
        let Some(roots) = state.roots.as_ref() else {
            if !hardened {
                return Err(Error::spec(ErrorCode::NoDecidedValue, "no decided value"));
            }
            if state.early_partials.len() >= self.member.committee.len() * 2 {
                return Err(Error::spec(
                    ErrorCode::NoDecidedValue,
                    "too many partial messages before the decision",
                ));
            }
            state.early_partials.push(psm);
            return Ok(Processed::Buffered);
        };
        if hardened {
            if state.culprits.contains(&sender) {
                return Err(Error::spec(
                    ErrorCode::MessageSignatureInvalid,
                    format!("operator {sender} already sent invalid partials for slot {slot}"),
                ));
            }
            if !state.partial_senders.insert(sender) {
                return Err(Error::spec(
                    ErrorCode::NonUniqueSigner,
                    format!("operator {sender} already sent its partials for slot {slot}"),
                ));
            }
            // Check every message before applying any: a message with one bad root for a
            // validator of our duty is refused whole. A partial for a validator that is not
            // in our duty is passed over, not held against the rest: registries differ for
            // a moment while a contract change reaches each operator, and an attester that
            // slashing protection left out here (bumped) may still be in another
            // operator's duty.
            let mut usable = 0usize;
            for m in psm.messages.iter() {
                if roots.duty_of(m.validator_index, &m.signing_root).is_none() {
                    let known = state.by_validator.contains_key(&(m.validator_index, true))
                        || state.by_validator.contains_key(&(m.validator_index, false));
                    if !known {
                        continue;
                    }
                    state.partial_senders.remove(&sender);
                    return Err(Error::spec(
                        if known {
                            ErrorCode::WrongSigningRoot
                        } else {
                            ErrorCode::UnknownValidatorIndex
                        },
                        format!(
                            "partial for validator {} at slot {slot} with an unexpected root",
                            m.validator_index
                        ),
                    ));
                }
                usable += 1;
            }
            if usable == 0 {
                state.partial_senders.remove(&sender);
                return Err(Error::spec(
                    ErrorCode::UnknownValidatorIndex,
                    format!("no partial for a validator of our duty at slot {slot}"),
                ));
            }
        }
        let mut ready: Vec<(Root, ValidatorDuty)> = Vec::new();
        let Some(collector) = state.base.state.as_mut().map(|s| &mut s.post_consensus) else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        for m in psm.messages.iter() {
            let key = (m.validator_index, m.signing_root);
            let c = state.status.entry(key).or_default();
            if hardened && (c.done || c.failed) {
                continue;
            }
            // The first partial of an operator for a validator and root stays.
            collector.add(m);
            if c.done || c.in_flight || !collector.has_quorum(m.validator_index, &m.signing_root) {
                continue;
            }
            // Partials over roots no duty expects are kept (the spec's container keeps them)
            // but never reconstructed.
            if let Some(is_attester) = roots.duty_of(m.validator_index, &m.signing_root)
                && let Some(d) = state.by_validator.get(&(m.validator_index, is_attester))
            {
                c.in_flight = true;
                ready.push((m.signing_root, *d));
            }
        }
        emit_reconstruct(slot, state, ready, out);
        Ok(Processed::Applied)
    }

    /// Our signatures for a [`RunnerAction::Sign`] (only the items slashing protection
    /// allowed; an empty list is fine): builds, signs, broadcasts and applies our
    /// `PartialSignatureMessages`.
    pub fn signed(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        signatures: Vec<(SignItem, BlsSignature)>,
        out: &mut Vec<RunnerAction>,
    ) -> Result<(), Error> {
        let me = self.member.operator_id;
        let state = self.slots.get_mut(&slot).ok_or_else(|| {
            Error::spec(
                ErrorCode::NoRunnerForSlot,
                format!("no duty for slot {slot}"),
            )
        })?;
        if state.signed {
            return Err(Error::spec(
                ErrorCode::NonUniqueSigner,
                format!("slot {slot} already signed"),
            ));
        }
        state.signed = true;
        if signatures.is_empty() {
            return Ok(());
        }
        let messages = signatures
            .iter()
            .map(|(item, sig)| PartialSignatureMessage {
                partial_signature: *sig,
                signing_root: item.signing_root,
                signer: me,
                validator_index: item.duty.validator_index,
            })
            .collect();
        let psm = PartialSignatureMessages::new(PartialSigMsgType::PostConsensus, slot, messages)?;
        let ssv = SsvMessage::new(MsgType::PartialSignature, self.msg_id, psm.to_ssz())?;
        let signature = env.signer.sign_ssv_message(&ssv.as_ssz_bytes())?;
        let signed = SignedSsvMessage::new(vec![signature], vec![me], ssv, Vec::new())?;
        out.push(RunnerAction::Broadcast(signed));
        if !self.options.loopback {
            return Ok(());
        }
        self.apply_partials(slot, psm, out).map(|_| ())
    }

    /// The verdicts of a [`RunnerAction::Reconstruct`], one per item in its order:
    /// `Ok` when the reconstructed signature verified (the caller submits it).
    pub fn reconstructed(
        &mut self,
        slot: Slot,
        signing_root: Root,
        verdicts: Vec<(ValidatorIndex, Result<(), ReconstructFailure>)>,
        out: &mut Vec<RunnerAction>,
    ) {
        let hardened = self.options.hardened;
        let Some(state) = self.slots.get_mut(&slot) else {
            return;
        };
        let Some(roots) = state.roots.as_ref() else {
            return;
        };
        let Some(run) = state.base.state.as_mut() else {
            return;
        };
        for (validator, verdict) in verdicts {
            let Some(c) = state.status.get_mut(&(validator, signing_root)) else {
                continue;
            };
            c.in_flight = false;
            match verdict {
                Ok(()) => {
                    c.done = true;
                    self.stats.signatures_done += 1;
                }
                // The node gives up on a validator whose valid partials do not combine (its
                // shares do not match its key); the spec keeps waiting.
                Err(ReconstructFailure::Mismatch) => c.failed = hardened,
                Err(ReconstructFailure::InvalidPartials(ops)) => {
                    for op in ops {
                        if run.post_consensus.remove(validator, op, &signing_root) {
                            self.stats.bad_partials += 1;
                        }
                        if hardened {
                            state.culprits.insert(op);
                        }
                    }
                }
            }
        }
        // The node drops the culprits' partials everywhere in the slot (the spec only this
        // validator's); then quorums are checked again: partials that arrived while the
        // batch was in flight may complete one.
        let mut ready = Vec::new();
        for ((validator, root), c) in state.status.iter_mut() {
            if *root != signing_root {
                continue;
            }
            if hardened {
                for op in &state.culprits {
                    if run.post_consensus.remove(*validator, *op, root) {
                        self.stats.bad_partials += 1;
                    }
                }
            }
            if !c.done
                && !c.failed
                && !c.in_flight
                && run.post_consensus.has_quorum(*validator, root)
                && let Some(is_attester) = roots.duty_of(*validator, root)
                && let Some(d) = state.by_validator.get(&(*validator, is_attester))
            {
                c.in_flight = true;
                ready.push((signing_root, *d));
            }
        }
        run.finished = roots
            .expected
            .iter()
            .all(|(&(v, _), root)| state.status.get(&(v, *root)).is_some_and(|c| c.done));
        emit_reconstruct(slot, state, ready, out);
    }

    /// The round timer of `slot` expired. Dropped when the slot's duty has finished (every
    /// signature verified or impossible), as the Go node drops a timeout of a runner without
    /// a running duty (`HasRunningDuty` in `protocol/v2/ssv/validator/timer.go`): a decided
    /// instance would otherwise keep broadcasting a round change at every timeout.
    pub fn on_timeout(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        out: &mut Vec<RunnerAction>,
    ) -> Result<(), Error> {
        if self.is_complete(slot) {
            return Ok(());
        }
        let mut qbft_out = std::mem::take(&mut self.qbft_out);
        qbft_out.clear();
        let Some(r) = self.with_slot_controller(env, slot, |c, env| {
            c.upon_round_timeout(env, slot, &mut qbft_out)
        }) else {
            self.qbft_out = qbft_out;
            return Ok(());
        };
        self.drain_qbft(env, &mut qbft_out, out);
        self.qbft_out = qbft_out;
        self.flush_loopback(env, out);
        r
    }
}

/// Groups ready validators by root into `Reconstruct` actions.
fn emit_reconstruct(
    slot: Slot,
    state: &SlotState,
    ready: Vec<(Root, ValidatorDuty)>,
    out: &mut Vec<RunnerAction>,
) {
    let Some(roots) = state.roots.as_ref() else {
        return;
    };
    let mut by_root: BTreeMap<Root, Vec<QuorumItem>> = BTreeMap::new();
    let Some(collector) = state.collector() else {
        return;
    };
    for (root, duty) in ready {
        if let Some(partials) = collector.partials(duty.validator_index, &root) {
            by_root.entry(root).or_default().push(QuorumItem {
                duty,
                partials: partials.iter().map(|(o, s)| (*o, *s)).collect(),
            });
        }
    }
    for (signing_root, items) in by_root {
        out.push(RunnerAction::Reconstruct {
            slot,
            signing_root,
            vote: roots.vote,
            items,
        });
    }
}
