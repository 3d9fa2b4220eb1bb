//! The validator roles' runners of one shard: one runner per (validator, role) of the
//! shard's committees, made on the validator's first duty or first message, living on the
//! shard's core like the committee runners: proposer, aggregator, sync-committee
//! contribution, registration and exit, each an `ssv_protocol::runner::ValidatorRunner`
//! driven through the role-neutral [`ValidatorAction`] interface.
//!
//! ```text
//! duty (scheduler) ─► runner ─► Sign ─► crypto pool: slashing protection (blocks), share sig
//!                       ▲   └──► Reconstruct ─► crypto pool: reconstruct + verify
//!   gossip (checked) ───┤   └──► FetchBeaconData ─► control plane: produce block v3
//!   results (events) ───┘   └──► Submit ─► control plane: publish block v2
//! ```
//!
//! Safety: the block signature is checked against and recorded in slashing protection (by
//! the pubkey of our share, never the duty's) before the share signs it, in one durable
//! commit; the consensus value check refuses a block slot that our records already hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ssv_protocol::Error as ProtocolError;
use ssv_protocol::beacon::consensus_data::DataVersion;
use ssv_protocol::error_code::ErrorCode;
use ssv_protocol::message::{MsgType, RunnerRole, SignedSsvMessage};
use ssv_protocol::partial_sig::{BlsSignature, PartialSigMsgType, PartialSignatureMessages};
use ssv_protocol::qbft::Message as QbftMessage;
use ssv_protocol::qbft::{Config as QbftConfig, Env, ValueCheck};
pub use ssv_protocol::runner::ValidatorStart;
use ssv_protocol::runner::{
    BeaconDataRequest, BeaconObject, BlockSlashing, Phase, ReconstructFailure, RunnerKey,
    RunnerOptions, RunnerShare, ValidatorAction, ValidatorRunner,
};
use ssv_protocol::types::{BlsPublicKey, OperatorId, Root, Slot};
use ssv_protocol::validation::Validated;
use ssv_storage::{BlockToSign, Store};

use super::metrics::{Metrics, Queue, RoundChange, Stage};
use super::registry::{CommitteeInfo, ValidatorShare};
use super::shard::{
    RsaSigner, SLASHING_COMMIT_TIMEOUT, Services, ShardEvent, Submission, Verifier, arm_timer,
    by_root, publish, reconstruct_same_root, round_timer, wrong_key,
};
use crate::config::Fault;

/// A log line of a validator duty with the duty's fields (`slot`, `validator`, `committee`,
/// `role`) from [`ValidatorRunners::duty_fields`], then the line's own fields and message.
macro_rules! duty_event {
    ($level:ident, $f:expr, $key:expr, $($rest:tt)+) => {
        tracing::$level!(
            slot = $f.slot,
            validator = $f.validator,
            committee = $f.committee,
            role = ?key_role(&$key),
            $($rest)+
        )
    };
}

/// Duties after which a runner's round timers are forgotten.
const TIMERS_KEPT_SLOTS: u64 = 8;
/// Messages a runner keeps for a later phase of its duty, or for its next duty (the newest
/// are kept). Operators move through a duty a few milliseconds apart: a peer's RANDAO partial
/// can arrive before our scheduler starts the duty, the leader's proposal before our own
/// pre-consensus quorum, a peer's block partial before our decision. The Go node keeps such
/// messages in its runner queue until the runner's state takes them; so does this.
const EARLY_MESSAGES_MAX: usize = 128;
/// Bytes of message data a runner keeps that way (a proposal carries its block, blobs
/// included).
const EARLY_BYTES_MAX: usize = 16 << 20;

/// Bytes a message keeps (its data and the full value a proposal carries).
fn message_bytes(m: &SignedSsvMessage) -> usize {
    m.ssv_message.data.len() + m.full_data.len()
}

fn early_bytes<'a>(kept: impl IntoIterator<Item = &'a SignedSsvMessage>) -> usize {
    kept.into_iter().map(message_bytes).sum()
}

struct RunnerState {
    committee: usize,
    info: Arc<CommitteeInfo>,
    share: Arc<ValidatorShare>,
    runner: ValidatorRunner,
    /// Latest armed round per slot (older timers are stale).
    timers: HashMap<Slot, u64>,
    started: Option<(Slot, Instant)>,
    /// When the duty entered its current phase, and when it was decided (for the stage
    /// durations).
    phase_since: Option<Instant>,
    decided_at: Option<Instant>,
    /// Messages that arrived before the runner could take them, replayed when its phase or
    /// duty changes.
    early: Vec<Validated>,
}

/// The value check's view of block slashing protection: our records, from a snapshot.
struct StoreBlocks(Arc<Store>);

impl BlockSlashing for StoreBlocks {
    fn check(&self, pubkey: &BlsPublicKey, slot: Slot) -> Result<(), String> {
        match self.0.block_slot_violation(pubkey, slot) {
            Ok(None) => Ok(()),
            Ok(Some(v)) => Err(v.to_string()),
            Err(e) => Err(format!("slashing protection unreadable: {e}")),
        }
    }
}

/// The `Env` value check of the validator roles is their own ([`ConsensusRole`] replaces
/// it); this one refuses, so that a path that forgot to replace it cannot decide anything.
///
/// [`ConsensusRole`]: ssv_protocol::runner
struct RoleCheckOnly;

impl ValueCheck for RoleCheckOnly {
    fn check_value(&self, _: &[u8]) -> Result<(), ProtocolError> {
        Err(ProtocolError::Decode(
            "no role value check in this environment".into(),
        ))
    }
}

/// The validator runners of one shard.
pub struct ValidatorRunners {
    services: Arc<Services>,
    events_tx: async_channel::Sender<ShardEvent>,
    /// Our validators in this shard's committees: committee and share.
    by_pubkey: HashMap<BlsPublicKey, (usize, Arc<CommitteeInfo>, Arc<ValidatorShare>)>,
    runners: HashMap<RunnerKey, RunnerState>,
    blocks: Arc<dyn BlockSlashing + Send + Sync>,
    /// Share signatures (of anything but a block) gathered until the shard flushes.
    pending_sign: Vec<(RunnerKey, Arc<ValidatorShare>, Root)>,
    /// Reconstructions gathered until the shard flushes.
    pending_reconstruct: Vec<PendingReconstruct>,
}

/// A reconstruction one runner asked for.
struct PendingReconstruct {
    key: RunnerKey,
    share: Arc<ValidatorShare>,
    root: Root,
    partials: Vec<(OperatorId, BlsSignature)>,
}

impl ValidatorRunners {
    /// The runners of the validators of `committees` (index into the registry, info).
    pub fn new(
        services: Arc<Services>,
        events_tx: async_channel::Sender<ShardEvent>,
        committees: impl Iterator<Item = (usize, Arc<CommitteeInfo>)>,
    ) -> Self {
        let mut by_pubkey = HashMap::new();
        for (i, info) in committees {
            for share in info.validators.values() {
                by_pubkey.insert(share.pubkey, (i, info.clone(), share.clone()));
            }
        }
        ValidatorRunners {
            blocks: Arc::new(StoreBlocks(services.store.clone())),
            services,
            events_tx,
            by_pubkey,
            runners: HashMap::new(),
            pending_sign: Vec::new(),
            pending_reconstruct: Vec::new(),
        }
    }

    /// The registry changed: `committees` are now this shard's. Runners of validators no
    /// longer among them are dropped (with their timers and kept messages); the others take
    /// the new share (fee recipient, exit request) from their next duty on.
    pub fn update(&mut self, committees: impl Iterator<Item = (usize, Arc<CommitteeInfo>)>) {
        self.by_pubkey.clear();
        for (i, info) in committees {
            for share in info.validators.values() {
                // A committee holding several of our operator IDs runs each validator role
                // once, as the lowest of them (its member's partials and the others' reach
                // the quorum; a second runner would only add a signature).
                match self.by_pubkey.entry(share.pubkey) {
                    std::collections::hash_map::Entry::Occupied(mut e)
                        if e.get().1.member.operator_id > info.member.operator_id =>
                    {
                        e.insert((i, info.clone(), share.clone()));
                    }
                    std::collections::hash_map::Entry::Occupied(_) => {}
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert((i, info.clone(), share.clone()));
                    }
                }
            }
        }
        let by_pubkey = &self.by_pubkey;
        self.runners.retain(|key, state| {
            let RunnerKey::Validator(pubkey, _) = key else {
                return false;
            };
            match by_pubkey.get(pubkey) {
                // Same validator in the same committee with the same share keys.
                Some((committee, info, share))
                    if *committee == state.committee
                        && share.share_pubkey_bytes == state.share.share_pubkey_bytes =>
                {
                    state.info = info.clone();
                    state.share = share.clone();
                    true
                }
                _ => false,
            }
        });
        self.pending_sign
            .retain(|(_, share, _)| by_pubkey.contains_key(&share.pubkey));
        self.pending_reconstruct
            .retain(|p| by_pubkey.contains_key(&p.share.pubkey));
    }

    /// The committee running `pubkey`, when it is one of this shard's validators.
    pub fn committee_of(&self, pubkey: &BlsPublicKey) -> Option<&Arc<CommitteeInfo>> {
        self.by_pubkey.get(pubkey).map(|(_, info, _)| info)
    }

    /// The runner of `key`, made on first use; `None` for a validator not in this shard or a
    /// role not run here yet.
    fn runner(&mut self, key: RunnerKey) -> Option<&mut RunnerState> {
        let RunnerKey::Validator(pubkey, role) = key else {
            return None;
        };
        if !self.runners.contains_key(&key) {
            let (committee, info, share) = self.by_pubkey.get(&pubkey)?.clone();
            let runner_share = RunnerShare {
                validator_index: share.index,
                validator_pk: share.pubkey,
                committee: share
                    .share_pubkeys
                    .iter()
                    .map(|(op, pk)| (*op, pk.to_bytes()))
                    .collect(),
            };
            let config = QbftConfig {
                // Inbound messages' signatures are verified before the runner sees them.
                verify_all_signatures: false,
                ..QbftConfig::default()
            };
            let mut runner = ValidatorRunner::new(
                role,
                info.member.clone(),
                runner_share,
                config,
                *self.services.clock.spec(),
                RunnerOptions::NODE,
                self.blocks.clone(),
            )?;
            runner.set_current_epoch(self.current_epoch());
            self.runners.insert(
                key,
                RunnerState {
                    committee,
                    info,
                    share,
                    runner,
                    timers: HashMap::new(),
                    started: None,
                    phase_since: None,
                    decided_at: None,
                    early: Vec::new(),
                },
            );
        }
        self.runners.get_mut(&key)
    }

    /// Hands the gathered crypto work to the pool: every share signature in one job, the
    /// reconstructions of each signing root in one job (one same-root batch: the selection
    /// proofs of a slot all sign the slot). The shard calls it when it has nothing else
    /// queued.
    pub fn flush(&mut self) {
        let services = &self.services;
        if !self.pending_sign.is_empty() {
            let jobs = std::mem::take(&mut self.pending_sign);
            let tx = self.events_tx.clone();
            let svc = services.clone();
            services.pool.spawn(move || {
                for (key, share, root) in jobs {
                    let signature = sign_one(&svc, key_role(&key), &share, &root, None);
                    let _ = tx.send_blocking(ShardEvent::ValidatorSigned {
                        key,
                        root,
                        signature,
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
                    let root = group[0].root;
                    let verdicts = reconstruct_group(&svc, &root, &group);
                    for (j, verdict) in group.into_iter().zip(verdicts) {
                        let _ = tx.send_blocking(ShardEvent::ValidatorReconstructed {
                            key: j.key,
                            root,
                            verdict,
                        });
                    }
                });
            }
        }
    }

    /// Crypto items gathered and not yet handed to the pool.
    pub fn pending_len(&self) -> usize {
        self.pending_sign.len() + self.pending_reconstruct.len()
    }

    fn flush_if_full(&mut self) {
        if self.pending_len() >= super::shard::FLUSH_ITEMS_MAX {
            self.flush();
        }
    }

    fn current_epoch(&self) -> u64 {
        let clock = &self.services.clock;
        self.services
            .current_slot()
            .map_or(0, |s| clock.spec().epoch_of(s))
    }

    /// Runs `f` on the runner of `key` with the node's environment, then applies what it
    /// asked for.
    fn with_runner(
        &mut self,
        key: RunnerKey,
        f: impl FnOnce(
            &mut ValidatorRunner,
            Env<'_>,
            &mut Vec<ValidatorAction>,
        ) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let services = self.services.clone();
        let epoch = self.current_epoch();
        let Some(state) = self.runner(key) else {
            return Err(ProtocolError::Decode(
                "no runner for this validator and role".into(),
            ));
        };
        let registry = services.registry.current();
        // The validator's committee signs as its own member (one node hosts several
        // operator IDs).
        let our_id = state.info.member.operator_id;
        let Some(rsa_key) = services.operator_keys.get(our_id) else {
            return Err(ProtocolError::Decode(format!(
                "no RSA key for our operator {our_id}"
            )));
        };
        let signer = RsaSigner {
            id: our_id,
            key: rsa_key,
        };
        // Log lines of this runner's work carry the operator it runs as.
        let _span = tracing::info_span!("validator", operator = our_id).entered();
        let verifier = Verifier(&registry.operator_keys);
        let env = Env {
            signer: &signer,
            verifier: &verifier,
            value_check: &RoleCheckOnly,
        };
        let mut out = Vec::new();
        state.runner.set_current_epoch(epoch);
        let before = progress(state.runner.base());
        let result = f(&mut state.runner, env, &mut out);
        let after = progress(state.runner.base());
        let moved = after != before;
        if moved && let Some(role) = key_role(&key) {
            record_progress(&services.metrics, role, before.1, after, state);
        }
        for action in out {
            self.apply(key, action);
        }
        if moved {
            self.replay_early(key);
        }
        result
    }

    /// Starts a validator duty of one of this shard's validators.
    pub fn start(&mut self, duty: ValidatorStart) {
        let (pubkey, slot, role) = duty.target();
        let key = RunnerKey::Validator(pubkey, role);
        let epoch = self
            .current_epoch()
            .max(self.services.clock.spec().epoch_of(slot));
        Metrics::add(&self.services.metrics.duties_started, 1);
        if let Some(state) = self.runner(key) {
            let now = Instant::now();
            state.started = Some((slot, now));
            state.phase_since = Some(now);
            state.decided_at = None;
            state.timers.retain(|s, _| *s + TIMERS_KEPT_SLOTS > slot);
        }
        let result = self.with_runner(key, |runner, _env, out| runner.start(duty, epoch, out));
        if let Err(e) = result {
            tracing::warn!(slot, ?role, "cannot start validator duty: {e}");
        }
    }

    /// A gossip message of one of this shard's validator runners whose outer structure, signers
    /// and operator signatures the shard has checked.
    pub fn on_message(&mut self, key: RunnerKey, msg: Validated) -> Result<(), ProtocolError> {
        let (slot, kind) = message_slot(msg.message())?;
        let now = self.services.current_slot().unwrap_or(0);
        let state = self
            .runner(key)
            .ok_or_else(|| ProtocolError::Decode("no runner for this validator and role".into()))?;
        let base = state.runner.base();
        let later = keep_for_later(
            slot,
            kind,
            base.state.as_ref().map(|s| s.slot),
            base.phase(),
        );
        if later {
            // Only for a duty that can be starting now: a message for a slot further ahead
            // is no early arrival (and a committee member could fill memory with them).
            if slot > now + 1 {
                return Err(ProtocolError::spec(
                    ErrorCode::FutureMessage,
                    format!("message for slot {slot}, {now} now: too far ahead to keep"),
                ));
            }
            let size = message_bytes(msg.message());
            let mut dropped = 0;
            while !state.early.is_empty()
                && (state.early.len() >= EARLY_MESSAGES_MAX
                    || early_bytes(state.early.iter().map(Validated::message)) + size
                        > EARLY_BYTES_MAX)
            {
                state.early.remove(0);
                dropped += 1;
            }
            state.early.push(msg);
            if dropped > 0 {
                self.services
                    .metrics
                    .record_dropped(Queue::EarlyMessages, dropped);
            }
            return Ok(());
        }
        self.with_runner(key, |runner, env, out| {
            runner.process_message(env, msg.into_message(), out)
        })
    }

    /// Replays the kept messages of `key` that its runner can now take (after its phase or
    /// duty changed); the others stay kept, those of past duties are dropped.
    fn replay_early(&mut self, key: RunnerKey) {
        let Some(state) = self.runners.get_mut(&key) else {
            return;
        };
        let duty_slot = state.runner.base().state.as_ref().map(|s| s.slot);
        let kept = std::mem::take(&mut state.early);
        for msg in kept {
            let stale = match (message_slot(msg.message()), duty_slot) {
                (Ok((slot, _)), Some(d)) => slot < d,
                (Err(_), _) => true,
                (Ok(_), None) => false,
            };
            if stale {
                continue;
            }
            if let Err(e) = self.on_message(key, msg) {
                let f = self.duty_fields(&key);
                duty_event!(debug, f, key, "kept message refused on replay: {e}");
            }
        }
    }

    /// A round timer expired.
    pub fn on_timer(&mut self, key: RunnerKey, slot: Slot, round: u64) {
        let current = self
            .runners
            .get(&key)
            .and_then(|s| s.timers.get(&slot).copied());
        if current != Some(round) {
            return;
        }
        self.services
            .metrics
            .record_round_change(RoundChange::Timeout);
        let _ = self.with_runner(key, |runner, env, out| runner.on_timeout(env, slot, out));
    }

    /// Our partial signature over `root` (`None`: not signed, see the log).
    pub fn on_signed(&mut self, key: RunnerKey, root: Root, signature: Option<BlsSignature>) {
        let Some(signature) = signature else {
            return;
        };
        Metrics::add(&self.services.metrics.partials_signed, 1);
        let f = self.duty_fields(&key);
        match self.with_runner(key, |runner, env, out| {
            runner.signed(env, root, signature, out)
        }) {
            Ok(()) => {}
            // The others' partials completed the duty while ours was being made.
            Err(e) if e.code() == ErrorCode::NoRunningDuty => {
                duty_event!(
                    debug,
                    f,
                    key,
                    "our partial signature after the duty completed: {e}"
                );
            }
            Err(e) => {
                duty_event!(warn, f, key, "our validator-duty partial signature: {e}")
            }
        }
    }

    /// The verdict of a reconstruction over `root`.
    pub fn on_reconstructed(
        &mut self,
        key: RunnerKey,
        root: Root,
        verdict: Result<BlsSignature, ReconstructFailure>,
    ) {
        let metrics = self.services.metrics.clone();
        if verdict.is_ok()
            && let Some(state) = self.runners.get(&key)
            && state.runner.block_to_sign(&root).is_some()
        {
            // A quorum of our committee signed the block: the live instance is this cluster
            // (the Go node's `ReportQuorum` after the proposer's reconstruction).
            self.services.doppelganger.report_quorum(state.share.index);
        }
        let f = self.duty_fields(&key);
        match &verdict {
            Ok(_) => Metrics::add(&metrics.signatures_reconstructed, 1),
            Err(ReconstructFailure::InvalidPartials(ops)) => {
                Metrics::add(&metrics.bad_partials, ops.len() as u64);
                for op in ops {
                    duty_event!(
                        warn,
                        f,
                        key,
                        "invalid partial signatures from operator {op}: dropped, waiting for \
                         another operator's"
                    );
                }
            }
            Err(ReconstructFailure::Mismatch) => duty_event!(
                error,
                f,
                key,
                "reconstructed signature does not verify although every partial does: share \
                 keys do not match the validator key"
            ),
        }
        let _ = self.with_runner(key, |runner, _env, out| {
            runner.reconstructed(root, verdict, out);
            Ok(())
        });
    }

    /// The beacon node's data for a runner (fork name and SSZ: a block to propose, an
    /// aggregate and proof), or why there is none.
    pub fn on_beacon_data(&mut self, key: RunnerKey, data: Result<(String, Vec<u8>), String>) {
        let (version, ssz) = match data {
            Ok(d) => d,
            Err(e) => {
                let f = self.duty_fields(&key);
                duty_event!(error, f, key, "no beacon data for the duty: {e}");
                return;
            }
        };
        let Some(v) = DataVersion::from_name(&version) else {
            Metrics::add(&self.services.metrics.beacon_data_refused, 1);
            let f = self.duty_fields(&key);
            duty_event!(
                error,
                f,
                key,
                version,
                "beacon data of an unknown fork: refused"
            );
            return;
        };
        let result = self.with_runner(key, |runner, env, out| {
            runner.beacon_data(env, v.to_u64(), ssz, out)
        });
        if let Err(e) = result {
            Metrics::add(&self.services.metrics.beacon_data_refused, 1);
            let f = self.duty_fields(&key);
            duty_event!(error, f, key, "beacon data for the duty refused: {e}");
        }
    }

    /// The beacon node's contributions for a contribution runner: `None` when no selection
    /// proof made the validator an aggregator (the duty is done).
    pub fn on_contributions(
        &mut self,
        key: RunnerKey,
        data: Result<Option<(u64, Vec<u8>)>, String>,
    ) {
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                let f = self.duty_fields(&key);
                duty_event!(error, f, key, "no sync-committee contributions: {e}");
                return;
            }
        };
        let result = self.with_runner(key, |runner, env, out| runner.contributions(env, data, out));
        if let Err(e) = result {
            Metrics::add(&self.services.metrics.beacon_data_refused, 1);
            let f = self.duty_fields(&key);
            duty_event!(error, f, key, "contributions refused: {e}");
        }
    }

    fn apply(&mut self, key: RunnerKey, action: ValidatorAction) {
        let services = self.services.clone();
        let Some(state) = self.runners.get_mut(&key) else {
            return;
        };
        match action {
            ValidatorAction::Broadcast(msg) => publish(&services, state.info.subnet, &msg),
            ValidatorAction::SetTimer { slot, round, after } => {
                state.timers.insert(slot, round);
                let after = match key {
                    RunnerKey::Validator(_, role) => round_timer(&services, role, slot, round),
                    RunnerKey::Committee(_) => after,
                };
                arm_timer(
                    &self.events_tx,
                    after,
                    ShardEvent::ValidatorTimer { key, slot, round },
                );
            }
            ValidatorAction::Sign { signing_root, .. } => {
                let share = state.share.clone();
                match state.runner.block_to_sign(&signing_root) {
                    // A block: its own job (a durable slashing-protection commit first).
                    Some(block_slot) => {
                        let tx = self.events_tx.clone();
                        let svc = services.clone();
                        services.pool.spawn(move || {
                            let signature = sign_one(
                                &svc,
                                Some(RunnerRole::Proposer),
                                &share,
                                &signing_root,
                                Some(block_slot),
                            );
                            let _ = tx.send_blocking(ShardEvent::ValidatorSigned {
                                key,
                                root: signing_root,
                                signature,
                            });
                        });
                    }
                    None => {
                        self.pending_sign.push((key, share, signing_root));
                        self.flush_if_full();
                    }
                }
            }
            ValidatorAction::Reconstruct {
                signing_root,
                partials,
                ..
            } => {
                self.pending_reconstruct.push(PendingReconstruct {
                    key,
                    share: state.share.clone(),
                    root: signing_root,
                    partials,
                });
                self.flush_if_full();
            }
            ValidatorAction::FetchBeaconData(BeaconDataRequest::Block {
                slot,
                randao_reveal,
                ..
            }) => {
                let request = Submission::FetchBlock {
                    key,
                    slot,
                    randao_reveal,
                    reply: self.events_tx.clone(),
                };
                if services.submissions.try_send(request).is_err() {
                    Metrics::add(&services.metrics.submission_errors, 1);
                    services.metrics.record_dropped(Queue::Submissions, 1);
                    tracing::error!(slot, "control-plane queue full: block request dropped");
                }
            }
            ValidatorAction::FetchBeaconData(BeaconDataRequest::AggregateAndProof {
                slot,
                committee_index,
                validator_index,
                selection_proof,
                ..
            }) => {
                let request = Submission::FetchAggregate {
                    key,
                    slot,
                    committee_index,
                    validator_index,
                    selection_proof,
                    reply: self.events_tx.clone(),
                };
                if services.submissions.try_send(request).is_err() {
                    Metrics::add(&services.metrics.submission_errors, 1);
                    services.metrics.record_dropped(Queue::Submissions, 1);
                    tracing::error!(slot, "control-plane queue full: aggregate request dropped");
                }
            }
            ValidatorAction::FetchBeaconData(BeaconDataRequest::SyncCommitteeContributions {
                slot,
                candidates,
            }) => {
                let request = Submission::FetchContributions {
                    key,
                    slot,
                    candidates,
                    reply: self.events_tx.clone(),
                };
                if services.submissions.try_send(request).is_err() {
                    Metrics::add(&services.metrics.submission_errors, 1);
                    services.metrics.record_dropped(Queue::Submissions, 1);
                    tracing::error!(
                        slot,
                        "control-plane queue full: contributions request dropped"
                    );
                }
            }
            ValidatorAction::Submit(object) => {
                if let Some((slot, t)) = state.started {
                    tracing::info!(
                        slot,
                        validator = state.share.index,
                        committee = state.committee,
                        role = ?key_role(&key),
                        "validator duty complete in {:?}",
                        t.elapsed()
                    );
                }
                let submission = match object {
                    BeaconObject::Proposal(p) => Submission::Block(p),
                    BeaconObject::AggregateAndProof(a) => Submission::Aggregate(Box::new(a)),
                    BeaconObject::ValidatorRegistration(r) => Submission::Registration(r),
                    BeaconObject::VoluntaryExit(e) => Submission::Exit(e),
                    BeaconObject::ContributionAndProof(c) => Submission::Contribution(c),
                };
                if services.submissions.try_send(submission).is_err() {
                    Metrics::add(&services.metrics.submission_errors, 1);
                    services.metrics.record_dropped(Queue::Submissions, 1);
                    tracing::error!("submission queue full: dropping a submission");
                }
            }
        }
    }
}

/// The duty fields every duty log line carries: the slot of the running duty (or the
/// latest started), the validator's beacon index and its committee.
#[derive(Debug, Clone, Copy, Default)]
struct DutyFields {
    slot: Option<Slot>,
    validator: Option<u64>,
    committee: Option<usize>,
}

impl ValidatorRunners {
    fn duty_fields(&self, key: &RunnerKey) -> DutyFields {
        let Some(state) = self.runners.get(key) else {
            return DutyFields::default();
        };
        DutyFields {
            slot: state
                .runner
                .base()
                .state
                .as_ref()
                .map(|s| s.slot)
                .or(state.started.map(|(s, _)| s)),
            validator: Some(state.share.index),
            committee: Some(state.committee),
        }
    }
}

/// The role of a validator runner's key.
fn key_role(key: &RunnerKey) -> Option<RunnerRole> {
    match key {
        RunnerKey::Validator(_, role) => Some(*role),
        RunnerKey::Committee(_) => None,
    }
}

/// What a message is for, to keep it until its runner can take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Pre-consensus partial signatures.
    Pre,
    /// A QBFT message.
    Consensus,
    /// Post-consensus partial signatures.
    Post,
}

/// Whether a message for `slot` waits for its runner (whose duty is at `duty_slot`, in
/// `phase`) rather than being processed now: one for a later duty, or for a later phase of
/// the current one (a consensus message before our pre-consensus quorum, a post-consensus
/// partial before our decision).
fn keep_for_later(slot: Slot, kind: Kind, duty_slot: Option<Slot>, phase: Phase) -> bool {
    match duty_slot {
        None => true,
        Some(d) if slot > d => true,
        Some(d) if slot == d => matches!(
            (kind, phase),
            (Kind::Consensus, Phase::PreConsensus)
                | (Kind::Post, Phase::PreConsensus | Phase::Consensus)
        ),
        Some(_) => false,
    }
}

/// The slot (QBFT height) a message is for and its kind.
fn message_slot(msg: &SignedSsvMessage) -> Result<(Slot, Kind), ProtocolError> {
    match msg.ssv_message.kind() {
        Some(MsgType::Consensus) => {
            let m = QbftMessage::from_ssz(&msg.ssv_message.data)?;
            Ok((m.height, Kind::Consensus))
        }
        Some(MsgType::PartialSignature) => {
            let psm = PartialSignatureMessages::from_ssz(&msg.ssv_message.data)?;
            let kind = if psm.msg_type == PartialSigMsgType::PostConsensus.to_u64() {
                Kind::Post
            } else {
                Kind::Pre
            };
            Ok((psm.slot, kind))
        }
        None => Err(ProtocolError::Decode("unknown message type".into())),
    }
}

/// Records the stage durations of a runner whose duty moved from phase `before` to `after`
/// (the Go runners' `recordPreConsensusDuration`, `recordConsensusDuration`,
/// `recordPostConsensusDuration` and `recordTotalDutyDuration`).
fn record_progress(
    metrics: &Metrics,
    role: RunnerRole,
    before: Phase,
    after: (Option<Slot>, Phase),
    state: &mut RunnerState,
) {
    let Some((slot, started)) = state.started else {
        return;
    };
    if after.0 != Some(slot) {
        return;
    }
    let now = Instant::now();
    let since = state.phase_since.unwrap_or(started);
    match (before, after.1) {
        (Phase::PreConsensus, Phase::Consensus | Phase::Finished) => {
            metrics.record_stage(
                role,
                Stage::PreConsensus,
                now.saturating_duration_since(since),
            );
        }
        (Phase::Consensus, Phase::PostConsensus | Phase::Finished) => {
            metrics.record_stage(role, Stage::Consensus, now.saturating_duration_since(since));
            state.decided_at = Some(now);
        }
        _ => {}
    }
    if after.1 == Phase::Finished && before != Phase::Finished {
        let round = state
            .runner
            .base()
            .running_instance()
            .map_or(0, |i| i.state.round);
        match state.decided_at {
            Some(decided) => {
                super::shard::record_completion(metrics, role, round, started, decided)
            }
            None => metrics.record_duty(role, 0, now.saturating_duration_since(started)),
        }
    }
    state.phase_since = Some(now);
}

/// Where a runner stands: its duty's slot and phase.
fn progress(base: &ssv_protocol::runner::BaseRunner) -> (Option<Slot>, Phase) {
    (base.state.as_ref().map(|s| s.slot), base.phase())
}

/// Whether doppelganger protection holds back `role`'s signatures while the validator is in
/// detection: the duties the beacon chain sees as the validator's activity. Builder
/// registrations and voluntary exits are not slashable, not beacon duties, and an exit is
/// the owner's on-chain request signed once after start: they go on.
fn doppelganger_gated(role: Option<RunnerRole>) -> bool {
    match role {
        Some(RunnerRole::ValidatorRegistration | RunnerRole::VoluntaryExit) => false,
        Some(
            RunnerRole::Proposer
            | RunnerRole::Aggregator
            | RunnerRole::SyncCommitteeContribution
            | RunnerRole::Committee,
        )
        | None => true,
    }
}

/// On the crypto pool: our share's signature of `root` for a runner of `role`; for a block
/// (`block_slot`), only after slashing protection has checked and durably recorded it.
fn sign_one(
    services: &Services,
    role: Option<RunnerRole>,
    share: &ValidatorShare,
    root: &Root,
    block_slot: Option<Slot>,
) -> Option<BlsSignature> {
    if services.stopped.is_stopped(&share.pubkey) {
        tracing::warn!(
            validator = share.index,
            "removed or liquidated on-chain: not signed"
        );
        return None;
    }
    if doppelganger_gated(role) && !services.doppelganger.can_sign(share.index) {
        Metrics::add(&services.metrics.doppelganger_refused, 1);
        tracing::debug!(
            validator = share.index,
            ?role,
            "doppelganger protection: still in detection, not signed"
        );
        return None;
    }
    if let Some(slot) = block_slot {
        let block = BlockToSign {
            pubkey: share.pubkey,
            slot,
            signing_root: *root,
        };
        match services
            .store
            .check_and_record_within(&[block], &[], Some(SLASHING_COMMIT_TIMEOUT))
        {
            Ok(v) => match v.blocks.first() {
                Some(Ok(_)) => {}
                Some(Err(violation)) => {
                    Metrics::add(&services.metrics.slashing_refusals, 1);
                    tracing::warn!(
                        validator = share.index,
                        slot,
                        "slashing protection refused the block: {violation}"
                    );
                    return None;
                }
                None => return None,
            },
            Err(e) => {
                Metrics::add(&services.metrics.slashing_unavailable, 1);
                tracing::error!(
                    validator = share.index,
                    slot,
                    "slashing protection unavailable, not signing the block: {e}"
                );
                return None;
            }
        }
    }
    let key = if services.fault == Some(Fault::CorruptPartials) {
        &wrong_key(&share.secret_share)
    } else {
        &share.secret_share
    };
    Some(services.hash_cache.sign(key, root).to_bytes())
}

/// On the crypto pool: the validators' signatures over one `root`, each from its quorum of
/// partials, verified in one same-root batch.
fn reconstruct_group(
    services: &Services,
    root: &Root,
    group: &[PendingReconstruct],
) -> Vec<Result<BlsSignature, ReconstructFailure>> {
    reconstruct_same_root(
        services,
        root,
        group
            .iter()
            .map(|p| (Some(&*p.share), p.partials.as_slice())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages wait for a later duty or a later phase of the current one, never for a past
    /// duty or a phase already reached.
    #[test]
    fn messages_wait_only_for_what_is_still_to_come() {
        // No duty yet: everything waits.
        assert!(keep_for_later(10, Kind::Pre, None, Phase::Idle));
        // A later duty's messages wait; a past duty's do not.
        assert!(keep_for_later(11, Kind::Pre, Some(10), Phase::Finished));
        assert!(!keep_for_later(
            9,
            Kind::Consensus,
            Some(10),
            Phase::Consensus
        ));
        // The current duty: consensus before our quorum, post partials before our decision.
        assert!(keep_for_later(
            10,
            Kind::Consensus,
            Some(10),
            Phase::PreConsensus
        ));
        assert!(!keep_for_later(
            10,
            Kind::Consensus,
            Some(10),
            Phase::Consensus
        ));
        assert!(keep_for_later(
            10,
            Kind::Post,
            Some(10),
            Phase::PreConsensus
        ));
        assert!(keep_for_later(10, Kind::Post, Some(10), Phase::Consensus));
        assert!(!keep_for_later(
            10,
            Kind::Post,
            Some(10),
            Phase::PostConsensus
        ));
        assert!(!keep_for_later(
            10,
            Kind::Pre,
            Some(10),
            Phase::PreConsensus
        ));
        assert!(!keep_for_later(10, Kind::Pre, Some(10), Phase::Finished));
    }

    /// Doppelganger protection holds back every beacon duty, not registrations or exits.
    #[test]
    fn doppelganger_gates_the_beacon_duties() {
        for role in RunnerRole::ALL {
            let gated = !matches!(
                role,
                RunnerRole::ValidatorRegistration | RunnerRole::VoluntaryExit
            );
            assert_eq!(doppelganger_gated(Some(role)), gated, "{role:?}");
        }
        assert!(doppelganger_gated(None), "an unknown role is held back");
    }

    /// What is kept is bounded in bytes as well as in count.
    #[test]
    fn kept_bytes_are_counted() {
        let msg = |n: usize| SignedSsvMessage {
            operator_ids: Default::default(),
            signatures: Default::default(),
            ssv_message: ssv_protocol::message::SsvMessage {
                msg_type: 0,
                msg_id: ssv_protocol::message::MessageId([0; 56]),
                data: vec![0; n].try_into().expect("fits"),
            },
            full_data: Default::default(),
        };
        let mut proposal = msg(10);
        proposal.full_data = vec![0; 1000].try_into().expect("fits");
        assert_eq!(early_bytes(&[proposal, msg(20)]), 1030);
    }
}
