//! The committee role of the runner suite: `tests.MsgProcessingSpecTest` /
//! `tests.MultiMsgProcessingSpecTest` subtests of role 0 and `committee.*` tests, run on the
//! node's [`CommitteeRunner`] in ssv-spec's environment ([`RunnerOptions::SPEC`]).
//!
//! The harness plays the Go harness's parts: the committee around the runner (ssv-spec
//! `Committee.StartDuty` / `ProcessMessage`: message checks, RSA verification, routing by
//! slot), the key manager (BLS share signing, reconstruction, verification), the mock beacon
//! node (attestation data, submissions), and compares errors, broadcasts, submitted roots and
//! the post-state with the vectors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use serde_json::Value;
use ssz::{Decode, Encode};
use ssz_types::BitList;
use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

use super::super::json::{as_array, as_b64, as_fixed, as_u64, field, u64_field};
use super::super::qbft_cases::{
    FixtureVerifier, compare_controllers, compare_states, controller_from_json, instance_from_json,
};
use super::super::types_cases::{LooseSignedSsvMessage, committee_member_from_json};
use super::basic_cases::check_code;
use super::harness::{
    AcceptAll, KeySigner, check_partial_outputs, check_submitted, checked_signed_message,
    container, container_signatures, describe, state_comparison,
};
use super::keys::TestKeys;
use super::{SsvContext, SubOutcome, bls, expected_code, name_of};
use crate::beacon::phase0;
use crate::beacon_vote::{AttestationData, BeaconVote, Checkpoint};
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{MsgType, RunnerRole, SignedSsvMessage};
use crate::partial_sig::{BlsSignature, PartialSigMsgType, PartialSignatureMessages};
use crate::qbft::{self, Config, Env};
use crate::runner::{
    AttestationSlashing, CommitteeDuty, CommitteeRunner, DutyKind, ReconstructFailure,
    RestoredSlot, RunnerAction, RunnerOptions, SignItem, ValidatorDuty,
};
use crate::signing::{DOMAIN_BEACON_ATTESTER, DOMAIN_SYNC_COMMITTEE, compute_domain};
use crate::types::{BlsPublicKey, CommitteeMember, Epoch, OperatorId, Root, Slot, ValidatorIndex};

/// The block root of the mock beacon node (1..10 repeated).
const MOCK_ROOT: [u8; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1,
    2,
];
/// Electra's first epoch in the harness's fork schedule (`now_test_network`).
const ELECTRA_EPOCH: Epoch = 232_000;
const SLOTS_PER_EPOCH: u64 = 32;

/// The mock beacon node's vote: source epoch 0, target epoch 1, both on the mock root.
fn mock_vote() -> BeaconVote {
    BeaconVote {
        block_root: MOCK_ROOT,
        source: Checkpoint {
            epoch: 0,
            root: MOCK_ROOT,
        },
        target: Checkpoint {
            epoch: 1,
            root: MOCK_ROOT,
        },
    }
}

/// The harness's QBFT configuration: operator 1 leads every round, cut-off round 15.
pub(super) fn spec_config() -> Config {
    fn leader(_: &qbft::State, _: crate::types::Round) -> OperatorId {
        1
    }
    Config {
        proposer: leader,
        cut_off_round: 15,
        verify_all_signatures: true,
    }
}

/// One validator's share, as the runner's `Share` map gives it.
#[derive(Debug, Clone)]
struct ShareInfo {
    validator_pk: BlsPublicKey,
    /// Operator 1's share public key.
    share_pk: BlsPublicKey,
    /// Every operator's share public key.
    committee: BTreeMap<OperatorId, BlsPublicKey>,
}

fn share_from_json(v: &Value) -> Result<ShareInfo, String> {
    let committee = as_array(field(v, "Committee")?)?
        .iter()
        .map(|m| {
            Ok((
                u64_field(m, "Signer")?,
                as_fixed::<48>(field(m, "SharePubKey")?)?,
            ))
        })
        .collect::<Result<_, String>>()?;
    Ok(ShareInfo {
        validator_pk: as_fixed::<48>(field(v, "ValidatorPubKey")?)?,
        share_pk: as_fixed::<48>(field(v, "SharePubKey")?)?,
        committee,
    })
}

fn shares_from_json(v: &Value) -> Result<BTreeMap<ValidatorIndex, ShareInfo>, String> {
    let mut out = BTreeMap::new();
    if let Some(map) = v.as_object() {
        for (k, s) in map {
            let vi: ValidatorIndex = k.parse().map_err(|e| format!("share key {k}: {e}"))?;
            out.insert(vi, share_from_json(s)?);
        }
    }
    Ok(out)
}

/// What the Go duty JSON says of one validator duty that our duty type does not keep.
#[derive(Debug, Clone, Copy)]
struct DutyExtra {
    committee_length: u64,
    validator_committee_index: u64,
    committee_index: u64,
}

/// A `CommitteeDuty` of the Go JSON: our duty (attester and sync-committee duties; the spec
/// signs nothing for other types) and, per (validator, is attester), what submission needs.
fn duty_from_json(
    v: &Value,
) -> Result<(CommitteeDuty, HashMap<(ValidatorIndex, bool), DutyExtra>), String> {
    let slot = u64_field(v, "Slot")?;
    let epoch = slot / SLOTS_PER_EPOCH;
    let mut duties = Vec::new();
    let mut extra = HashMap::new();
    for d in as_array(v.get("ValidatorDuties").unwrap_or(&Value::Null))? {
        let kind = match u64_field(d, "Type")? {
            0 => DutyKind::Attester {
                committee_index: u64_field(d, "CommitteeIndex")?,
                committees_at_slot: u64_field(d, "CommitteesAtSlot")?,
                validator_committee_index: u64_field(d, "ValidatorCommitteeIndex")?,
            },
            3 => DutyKind::SyncCommittee,
            _ => continue,
        };
        let validator_index = u64_field(d, "ValidatorIndex")?;
        extra.insert(
            (validator_index, matches!(kind, DutyKind::Attester { .. })),
            DutyExtra {
                committee_length: u64_field(d, "CommitteeLength")?,
                validator_committee_index: u64_field(d, "ValidatorCommitteeIndex")?,
                committee_index: u64_field(d, "CommitteeIndex")?,
            },
        );
        duties.push(ValidatorDuty {
            kind,
            validator_index,
            pubkey: as_fixed::<48>(field(d, "PubKey")?)?,
        });
    }
    Ok((
        CommitteeDuty {
            slot,
            duties,
            attester_domain: compute_domain(DOMAIN_BEACON_ATTESTER, [0; 4], [0; 32]),
            sync_domain: compute_domain(DOMAIN_SYNC_COMMITTEE, [0; 4], [0; 32]),
            pre_electra: epoch < ELECTRA_EPOCH,
        },
        extra,
    ))
}

/// The Go test key manager's slashing answer over the runner's validators: slashable when the
/// slot is listed for the validator's share key.
#[derive(Default)]
struct KeyManagerSlashing {
    /// The share key of each duty's validator key (duties may name a validator key other
    /// than the share's: the Go key manager is asked by share key).
    share_of: Mutex<HashMap<BlsPublicKey, BlsPublicKey>>,
    slashable: Mutex<HashMap<BlsPublicKey, HashSet<Slot>>>,
}

impl AttestationSlashing for KeyManagerSlashing {
    fn check(
        &self,
        pubkeys: &[BlsPublicKey],
        slot: Slot,
        _source: Epoch,
        _target: Epoch,
        _signing_root: &Root,
    ) -> Result<(), String> {
        let slashable = self.slashable.lock().map_err(|_| "poisoned".to_string())?;
        let share_of = self.share_of.lock().map_err(|_| "poisoned".to_string())?;
        for pk in pubkeys {
            let share = share_of.get(pk).unwrap_or(pk);
            if slashable.get(share).is_some_and(|s| s.contains(&slot)) {
                return Err(format!("slot {slot} is slashable"));
            }
        }
        Ok(())
    }
}

/// Electra's attestation as the beacon node receives it.
#[derive(TreeHash)]
struct SingleAttestation {
    committee_index: u64,
    attester_index: u64,
    data: AttestationData,
    signature: BlsSignature,
}

/// A sync-committee message.
#[derive(TreeHash)]
struct SyncCommitteeMessage {
    slot: u64,
    beacon_block_root: Root,
    validator_index: u64,
    signature: BlsSignature,
}

/// Everything one committee run produced.
struct Run<'k> {
    keys: &'k TestKeys,
    member: CommitteeMember,
    shares: BTreeMap<ValidatorIndex, ShareInfo>,
    runner: CommitteeRunner,
    slashing: std::sync::Arc<KeyManagerSlashing>,
    signer: KeySigner<'k>,
    verifier: FixtureVerifier,
    /// Per slot: submission extras of each duty.
    extras: HashMap<Slot, HashMap<(ValidatorIndex, bool), DutyExtra>>,
    /// Slots whose runner the Go harness registered without a state (`DontStartDuty` with a
    /// runner that never started a duty).
    stateless: HashSet<Slot>,
    broadcasts: Vec<SignedSsvMessage>,
    submitted: Vec<Root>,
    last_error: Option<Error>,
}

impl<'k> Run<'k> {
    fn new(
        keys: &'k TestKeys,
        member: CommitteeMember,
        shares: BTreeMap<ValidatorIndex, ShareInfo>,
    ) -> Result<Self, String> {
        let set = keys.set_for(member.committee.len())?;
        let key = set
            .operators
            .get(&member.operator_id)
            .ok_or("no RSA key for the operator")?;
        let slashing = std::sync::Arc::new(KeyManagerSlashing::default());
        let runner = CommitteeRunner::new(member.clone(), spec_config())
            .with_options(RunnerOptions::SPEC)
            .with_slashing(slashing.clone());
        Ok(Run {
            keys,
            signer: KeySigner {
                id: member.operator_id,
                key,
            },
            member,
            shares,
            runner,
            slashing,
            verifier: FixtureVerifier::default(),
            extras: HashMap::new(),
            stateless: HashSet::new(),
            broadcasts: Vec::new(),
            submitted: Vec::new(),
            last_error: None,
        })
    }

    /// Tells the key-manager double which share key each duty's validator key stands for.
    fn register_duty(&self, duty: &CommitteeDuty) {
        if let Ok(mut map) = self.slashing.share_of.lock() {
            for d in &duty.duties {
                if let Some(share) = self.shares.get(&d.validator_index) {
                    map.insert(d.pubkey, share.share_pk);
                }
            }
        }
    }

    fn record(&mut self, result: Result<(), Error>) {
        if let Err(e) = result {
            self.last_error = Some(e);
        }
    }

    /// ssv-spec `Committee.StartDuty`.
    fn start_duty(&mut self, duty_json: &Value) -> Result<(), String> {
        let (mut duty, extra) = duty_from_json(duty_json)?;
        let any = !as_array(duty_json.get("ValidatorDuties").unwrap_or(&Value::Null))?.is_empty();
        let result = if !any {
            Err(Error::spec(ErrorCode::NoBeaconDuties, "no beacon duties"))
        } else if self.runner.has_slot(duty.slot) {
            Err(Error::Decode(format!(
                "CommitteeRunner for slot {} already exists",
                duty.slot
            )))
        } else {
            duty.duties
                .retain(|d| self.shares.contains_key(&d.validator_index));
            if duty.duties.is_empty() {
                Err(Error::spec(
                    ErrorCode::NoValidatorShares,
                    "no shares for duty's validators",
                ))
            } else {
                self.extras.insert(duty.slot, extra);
                self.register_duty(&duty);
                let mut out = Vec::new();
                let env = Env {
                    signer: &self.signer,
                    verifier: &self.verifier,
                    value_check: &AcceptAll,
                };
                let r = self.runner.start_duty(env, duty, mock_vote(), &mut out);
                let handled = self.handle(out);
                r.and(handled)
            }
        };
        self.record(result);
        Ok(())
    }

    /// Restores a slot from a runner's JSON (`DontStartDuty` with a loaded state).
    fn restore(&mut self, runner_json: &Value, duty_json: &Value) -> Result<(), String> {
        let base = field(runner_json, "BaseRunner")?;
        let state = field(base, "State")?;
        let (duty, extra) = match state.get("CommitteeDuty") {
            Some(d) if !d.is_null() => duty_from_json(d)?,
            _ => duty_from_json(duty_json)?,
        };
        self.extras.insert(duty.slot, extra);
        self.register_duty(&duty);
        let controller = controller_from_json(field(base, "QBFTController")?, spec_config())?;
        let decided = as_b64(state.get("DecidedValue").unwrap_or(&Value::Null))?;
        let post = container(state, "PostConsensusContainer")?;
        self.runner
            .restore_slot(RestoredSlot {
                duty,
                ours: mock_vote(),
                controller,
                decided_value: (!decided.is_empty()).then_some(decided),
                post_consensus: post,
                finished: state
                    .get("Finished")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                running_height: match state.get("RunningInstance") {
                    Some(i) if !i.is_null() => Some(u64_field(field(i, "State")?, "Height")?),
                    _ => None,
                },
            })
            .map_err(|e| format!("restore: {e}"))
    }

    /// ssv-spec `Committee.ProcessMessage`, then the runner.
    fn process(&mut self, msg_json: &Value, decided_slashable: bool) -> Result<(), String> {
        let loose = LooseSignedSsvMessage::from_json(msg_json)?;
        let result = self.committee_checks(loose);
        let result = match result {
            Err(e) => Err(e),
            Ok(None) => Ok(()),
            Ok(Some(msg)) => {
                let proposal_height = proposal_height(&msg);
                let mut out = Vec::new();
                let env = Env {
                    signer: &self.signer,
                    verifier: &self.verifier,
                    value_check: &AcceptAll,
                };
                let r = self.runner.process_message(env, msg, &mut out).map(drop);
                let handled = self.handle(out);
                if decided_slashable && let Some(h) = proposal_height {
                    let shares: Vec<BlsPublicKey> =
                        self.shares.values().map(|s| s.share_pk).collect();
                    if let Ok(mut m) = self.slashing.slashable.lock() {
                        for s in shares {
                            m.entry(s).or_default().insert(h);
                        }
                    }
                }
                r.and(handled)
            }
        };
        self.record(result);
        Ok(())
    }

    /// The checks of ssv-spec's `Committee.ProcessMessage` before its runner: `Ok(None)` for
    /// a message the committee ignores (pre-consensus partial signatures).
    fn committee_checks(
        &self,
        loose: LooseSignedSsvMessage,
    ) -> Result<Option<SignedSsvMessage>, Error> {
        let msg = checked_signed_message(loose, &self.member, &self.verifier)?;
        if msg.ssv_message.msg_id.0[24..56] != self.member.committee_id.0 {
            return Err(Error::spec(
                ErrorCode::MessageIDCommitteeIDMismatch,
                "msg ID doesn't match committee ID",
            ));
        }
        if msg.ssv_message.data.is_empty() {
            return Err(Error::Decode("msg data is invalid".into()));
        }
        match msg.ssv_message.kind() {
            Some(MsgType::Consensus) => {
                let q = qbft::Message::from_ssz_bytes(&msg.ssv_message.data)
                    .map_err(|e| Error::Decode(format!("{e:?}")))?;
                q.validate()?;
                if self.stateless.contains(&q.height) {
                    // A runner without a state hands the message to its fresh controller,
                    // which has no instance: a future message.
                    return Err(Error::spec(
                        ErrorCode::FutureMessage,
                        "future msg from height, could not process",
                    ));
                }
                if !self.runner.has_slot(q.height) {
                    return Err(Error::spec(
                        ErrorCode::NoRunnerForSlot,
                        "no runner found for message's slot",
                    ));
                }
                Ok(Some(msg))
            }
            Some(MsgType::PartialSignature) => {
                let psm = PartialSignatureMessages::from_ssz(&msg.ssv_message.data)
                    .map_err(|e| Error::Decode(e.to_string()))?;
                if msg.operator_ids.len() != 1 {
                    return Err(Error::Decode(
                        "PartialSignatureMessage has more than 1 signer".into(),
                    ));
                }
                psm.validate()?;
                if psm.signer() != Some(msg.operator_ids[0]) {
                    return Err(Error::spec(
                        ErrorCode::PartialSigInconsistentSigner,
                        "inconsistent signers",
                    ));
                }
                if psm.kind() != Some(PartialSigMsgType::PostConsensus) {
                    return Ok(None);
                }
                if self.stateless.contains(&psm.slot) {
                    return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
                }
                if !self.runner.has_slot(psm.slot) {
                    return Err(Error::spec(
                        ErrorCode::NoRunnerForSlot,
                        "no runner found for message's slot",
                    ));
                }
                Ok(Some(msg))
            }
            None => Err(Error::Decode("unknown msg".into())),
        }
    }

    /// Carries out the runner's actions as the Go harness's doubles would.
    fn handle(&mut self, actions: Vec<RunnerAction>) -> Result<(), Error> {
        let mut work: std::collections::VecDeque<RunnerAction> = actions.into();
        let mut first_error: Option<Error> = None;
        while let Some(action) = work.pop_front() {
            let mut out = Vec::new();
            match action {
                RunnerAction::Broadcast(m) => self.broadcasts.push(m),
                RunnerAction::SetTimer { .. } | RunnerAction::Decided { .. } => {}
                RunnerAction::Sign { slot, items, .. } => {
                    let mut sigs: Vec<(SignItem, BlsSignature)> = Vec::new();
                    for item in items {
                        let share = self
                            .shares
                            .get(&item.duty.validator_index)
                            .map(|s| s.share_pk)
                            .and_then(|pk| self.keys.secret_by_public.get(&pk));
                        let Some(sk) = share else {
                            return Err(Error::Decode(format!(
                                "no share key of validator {}",
                                item.duty.validator_index
                            )));
                        };
                        let sig = bls::sign(sk, &item.signing_root).map_err(Error::Decode)?;
                        sigs.push((item, sig));
                    }
                    let env = Env {
                        signer: &self.signer,
                        verifier: &self.verifier,
                        value_check: &AcceptAll,
                    };
                    self.runner.signed(env, slot, sigs, &mut out)?;
                }
                RunnerAction::Reconstruct {
                    slot,
                    signing_root,
                    vote,
                    items,
                } => {
                    let mut verdicts = Vec::new();
                    for item in items {
                        let v = item.duty.validator_index;
                        let verdict =
                            self.reconstruct(slot, signing_root, vote, &item.duty, &item.partials);
                        if verdict.is_err() {
                            first_error.get_or_insert(Error::spec(
                                ErrorCode::ReconstructSignature,
                                "got post-consensus quorum but it has invalid signatures",
                            ));
                        }
                        verdicts.push((v, verdict));
                    }
                    self.runner
                        .reconstructed(slot, signing_root, verdicts, &mut out);
                }
            }
            work.extend(out);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Reconstructs, verifies and submits one validator's signature (the spec's
    /// `ReconstructBeaconSig`, then `FallBackAndVerifyEachSignature` on failure).
    fn reconstruct(
        &mut self,
        slot: Slot,
        root: Root,
        vote: BeaconVote,
        duty: &ValidatorDuty,
        partials: &[(OperatorId, BlsSignature)],
    ) -> Result<(), ReconstructFailure> {
        let share = self.shares.get(&duty.validator_index);
        let sig = bls::reconstruct(partials).ok();
        let valid =
            sig.is_some_and(|sig| share.is_some_and(|s| bls::verify(&s.validator_pk, &root, &sig)));
        let (true, Some(sig)) = (valid, sig) else {
            let bad: Vec<OperatorId> = partials
                .iter()
                .filter(|(op, partial)| {
                    !share
                        .and_then(|s| s.committee.get(op))
                        .is_some_and(|pk| bls::verify(pk, &root, partial))
                })
                .map(|(op, _)| *op)
                .collect();
            return Err(if bad.is_empty() {
                ReconstructFailure::Mismatch
            } else {
                ReconstructFailure::InvalidPartials(bad)
            });
        };
        let is_attester = matches!(duty.kind, DutyKind::Attester { .. });
        let extra = self
            .extras
            .get(&slot)
            .and_then(|e| e.get(&(duty.validator_index, is_attester)))
            .copied();
        let pre_electra = slot / SLOTS_PER_EPOCH < ELECTRA_EPOCH;
        let submitted = match (duty.kind, extra) {
            (DutyKind::SyncCommittee, _) => {
                SyncCommitteeMessage {
                    slot,
                    beacon_block_root: vote.block_root,
                    validator_index: duty.validator_index,
                    signature: sig,
                }
                .tree_hash_root()
                .0
            }
            (DutyKind::Attester { .. }, Some(extra)) if pre_electra => {
                let mut data = vote.attestation_data(slot);
                data.index = extra.committee_index;
                let mut bits = BitList::with_capacity(extra.committee_length as usize)
                    .map_err(|_| ReconstructFailure::Mismatch)?;
                bits.set(extra.validator_committee_index as usize, true)
                    .map_err(|_| ReconstructFailure::Mismatch)?;
                phase0::Attestation {
                    aggregation_bits: bits,
                    data,
                    signature: sig,
                }
                .tree_hash_root()
                .0
            }
            (DutyKind::Attester { .. }, Some(extra)) => {
                SingleAttestation {
                    committee_index: extra.committee_index,
                    attester_index: duty.validator_index,
                    data: vote.attestation_data(slot),
                    signature: sig,
                }
                .tree_hash_root()
                .0
            }
            (DutyKind::Attester { .. }, None) => return Err(ReconstructFailure::Mismatch),
        };
        self.submitted.push(submitted);
        Ok(())
    }
}

/// The height of a QBFT proposal message (the Go harness marks its slot slashable after it
/// when `DecidedSlashable`).
fn proposal_height(msg: &SignedSsvMessage) -> Option<Slot> {
    if msg.ssv_message.kind() != Some(MsgType::Consensus) {
        return None;
    }
    let q = qbft::Message::from_ssz_bytes(&msg.ssv_message.data).ok()?;
    (q.kind() == Some(qbft::MessageType::Proposal)).then_some(q.height)
}

/// Our partial-signature broadcasts (each RSA-verified).
fn partial_outputs(run: &Run<'_>) -> Result<Vec<PartialSignatureMessages>, String> {
    let mut out = Vec::new();
    for m in &run.broadcasts {
        let encoded = m.ssv_message.as_ssz_bytes();
        for (i, op) in m.operator_ids.iter().enumerate() {
            let ok = run
                .member
                .committee
                .iter()
                .find(|o| o.operator_id == *op)
                .zip(m.signature(i))
                .is_some_and(|(o, sig)| {
                    qbft::SignatureVerifier::verify(&run.verifier, o, &encoded, sig)
                });
            if !ok {
                return Err(format!(
                    "broadcast signature of operator {op} does not verify"
                ));
            }
        }
        if m.ssv_message.kind() == Some(MsgType::PartialSignature) {
            out.push(
                PartialSignatureMessages::from_ssz(&m.ssv_message.data)
                    .map_err(|e| format!("our broadcast: {e}"))?,
            );
        }
    }
    Ok(out)
}

fn check_outputs(v: &Value, run: &Run<'_>, in_order: bool) -> Result<(), String> {
    check_partial_outputs(v, &partial_outputs(run)?, in_order)?;
    check_submitted(v, &run.submitted)
}

/// Compares a runner's JSON (`{"BaseRunner": ...}`) with our slot `slot`.
fn compare_runner(expected: &Value, run: &Run<'_>, slot: Slot, at: &str) -> Result<(), String> {
    let base = field(expected, "BaseRunner")?;
    let state = base.get("State").unwrap_or(&Value::Null);
    let view = run.runner.slot_view(slot);
    let Some(view) = view else {
        if state.is_null() {
            return Ok(());
        }
        return Err(format!(
            "{at}: no runner for slot {slot}, expected one with a state"
        ));
    };
    if state.is_null() {
        return Err(format!("{at}: slot {slot} has a duty, expected no state"));
    }
    // QBFTController
    let want = controller_from_json(field(base, "QBFTController")?, spec_config())?;
    compare_controllers(view.controller, &want, 0)
        .map_err(|e| format!("{at}: QBFTController: {e}"))?;
    // RunningInstance
    match state.get("RunningInstance") {
        None | Some(Value::Null) => {
            if view.running_instance.is_some() {
                return Err(format!("{at}: a running instance, expected none"));
            }
        }
        Some(inst) => {
            let want = instance_from_json(inst, spec_config())?;
            let got = view
                .running_instance
                .ok_or_else(|| format!("{at}: no running instance"))?;
            compare_states(&got.state, &want.state, &format!("{at}: RunningInstance"))?;
            if got.start_value != want.start_value {
                return Err(format!("{at}: RunningInstance start value differs"));
            }
        }
    }
    let decided = as_b64(state.get("DecidedValue").unwrap_or(&Value::Null))?;
    if view.decided_value.clone().unwrap_or_default() != decided {
        return Err(format!(
            "{at}: DecidedValue {} != expected {}",
            hex::encode(view.decided_value.unwrap_or_default()),
            hex::encode(decided)
        ));
    }
    let finished = state
        .get("Finished")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if view.finished != finished {
        return Err(format!(
            "{at}: Finished {}, expected {finished}",
            view.finished
        ));
    }
    // PostConsensusContainer.Signatures
    let want_sigs = container_signatures(state, "PostConsensusContainer")?;
    if view.post_consensus != want_sigs {
        return Err(format!(
            "{at}: PostConsensusContainer {} != expected {}",
            describe(&view.post_consensus),
            describe(&want_sigs)
        ));
    }
    // CommitteeDuty (slot and validator duties as the runner holds them)
    if let Some(d) = state.get("CommitteeDuty").filter(|d| !d.is_null()) {
        let (want, _) = duty_from_json(d)?;
        if want.slot != view.duty.slot || want.duties != view.duty.duties {
            return Err(format!("{at}: CommitteeDuty differs"));
        }
    }
    Ok(())
}

/// One `MsgProcessingSpecTest` of the committee role.
fn msg_processing(v: &Value, ctx: &SsvContext, dir: &str, top: Option<&str>) -> Result<(), String> {
    let runner_json = field(v, "Runner")?;
    let base = field(runner_json, "BaseRunner")?;
    let member =
        committee_member_from_json(field(field(base, "QBFTController")?, "CommitteeMember")?)?;
    let shares = shares_from_json(field(base, "Share")?)?;
    let mut run = Run::new(&ctx.keys, member, shares)?;
    let duty_json = field(v, "CommitteeDuty")?;
    let slot = u64_field(duty_json, "Slot")?;
    let dont_start = v
        .get("DontStartDuty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if dont_start {
        if field(base, "State")?.is_null() {
            run.stateless.insert(slot);
        } else {
            run.restore(runner_json, duty_json)?;
        }
    } else {
        run.start_duty(duty_json)?;
    }
    let slashable = v
        .get("DecidedSlashable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for m in as_array(field(v, "Messages")?)? {
        run.process(m, slashable)?;
    }
    check_code(run.last_error.take().map_or(Ok(()), Err), expected_code(v)?)?;
    check_outputs(v, &run, true)?;
    let name = name_of(v);
    let expected = state_comparison(ctx, dir, top, &name)?;
    compare_runner(&expected, &run, slot, "post-state")
}

/// `tests.MultiMsgProcessingSpecTest` / `tests.MsgProcessingSpecTest` subtests of role 0 (the
/// other roles run in `validator_cases`).
pub fn msg_processing_case(v: &Value, ctx: &SsvContext, top: Option<&str>) -> Result<(), String> {
    let dir = if top.is_some() {
        "tests_MultiMsgProcessingSpecTest"
    } else {
        "tests_MsgProcessingSpecTest"
    };
    msg_processing(v, ctx, dir, top)
}

/// A `committee.CommitteeSpecTest` / `MultiCommitteeSpecTest` test.
pub fn committee_case(v: &Value, ctx: &SsvContext, top: Option<&str>) -> Result<(), String> {
    let committee = field(v, "Committee")?;
    let member = committee_member_from_json(field(committee, "CommitteeMember")?)?;
    let shares = shares_from_json(field(committee, "Share")?)?;
    let mut run = Run::new(&ctx.keys, member, shares)?;
    if let Some(runners) = committee.get("Runners").and_then(Value::as_object) {
        for (slot, r) in runners {
            let slot: Slot = slot
                .parse()
                .map_err(|e| format!("runner slot {slot}: {e}"))?;
            let state = field(field(r, "BaseRunner")?, "State")?;
            if !state.is_null() {
                let duty = state.get("CommitteeDuty").cloned().unwrap_or(Value::Null);
                run.restore(r, &duty)?;
            } else {
                return Err(format!("a loaded runner of slot {slot} without a state"));
            }
        }
    }
    for input in as_array(field(v, "Input")?)? {
        if input.get("SSVMessage").is_some() {
            run.process(input, false)?;
        } else if input.get("ValidatorDuties").is_some() {
            run.start_duty(input)?;
        } else {
            return Err("an input that is neither a committee duty nor a message".into());
        }
    }
    check_code(run.last_error.take().map_or(Ok(()), Err), expected_code(v)?)?;
    check_outputs(v, &run, false)?;
    let dir = if top.is_some() {
        "committee_MultiCommitteeSpecTest"
    } else {
        "committee_CommitteeSpecTest"
    };
    let expected = state_comparison(ctx, dir, top, &name_of(v))?;
    let runners = expected
        .get("Runners")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut expected_slots = HashSet::new();
    for (slot, r) in &runners {
        let slot: Slot = slot
            .parse()
            .map_err(|e| format!("runner slot {slot}: {e}"))?;
        expected_slots.insert(slot);
        compare_runner(r, &run, slot, &format!("runner of slot {slot}"))?;
    }
    for slot in run.runner.active_slots() {
        if !expected_slots.contains(&slot) {
            return Err(format!("a runner for slot {slot}, expected none"));
        }
    }
    Ok(())
}

/// One `newduty.MultiStartNewRunnerDutySpecTest` subtest of the committee role: a runner
/// loaded from the vector starts a new duty itself (ssv-spec's runner-level `StartNewDuty`, its
/// QBFT controller carrying on).
fn new_duty(v: &Value, ctx: &SsvContext, top: &str) -> Result<(), String> {
    let runner_json = field(v, "Runner")?;
    let base = field(runner_json, "BaseRunner")?;
    let member =
        committee_member_from_json(field(field(base, "QBFTController")?, "CommitteeMember")?)?;
    let shares = shares_from_json(field(base, "Share")?)?;
    let mut run = Run::new(&ctx.keys, member, shares)?;
    let duty_json = field(v, "CommitteeDuty")?;
    let (duty, extra) = duty_from_json(duty_json)?;
    let state = field(base, "State")?;
    let from = if state.is_null() {
        let controller = field(base, "QBFTController")?;
        if u64_field(controller, "Height")? != 0
            || !as_array(controller.get("StoredInstances").unwrap_or(&Value::Null))?.is_empty()
        {
            return Err("a runner without a state but with QBFT history".into());
        }
        None
    } else {
        let d = state.get("CommitteeDuty").cloned().unwrap_or(Value::Null);
        run.restore(runner_json, &d)?;
        Some(u64_field(&d, "Slot")?)
    };
    run.extras.insert(duty.slot, extra);
    run.register_duty(&duty);
    let new_slot = duty.slot;
    let mut out = Vec::new();
    let env = Env {
        signer: &run.signer,
        verifier: &run.verifier,
        value_check: &AcceptAll,
    };
    let result = match from {
        Some(from) => run
            .runner
            .start_duty_on(from, env, duty, mock_vote(), &mut out),
        None => run.runner.start_duty(env, duty, mock_vote(), &mut out),
    };
    let handled = run.handle(out);
    let result = result.and(handled);
    let failed = result.is_err();
    run.record(result);
    check_code(run.last_error.take().map_or(Ok(()), Err), expected_code(v)?)?;
    check_outputs(v, &run, true)?;
    let slot = match (failed, from) {
        (true, Some(from)) => from,
        _ => new_slot,
    };
    let expected = state_comparison(
        ctx,
        "newduty_MultiStartNewRunnerDutySpecTest",
        Some(top),
        &name_of(v),
    )?;
    compare_runner(&expected, &run, slot, "post-state")
}

/// A `newduty.MultiStartNewRunnerDutySpecTest` subtest (the committee's here, the other roles'
/// in `validator_cases`).
pub fn new_duty_subtest(v: &Value, ctx: &SsvContext, top: &str) -> SubOutcome {
    let role = v
        .get("Runner")
        .and_then(|r| r.get("BaseRunner"))
        .and_then(|b| b.get("RunnerRoleType"))
        .and_then(|r| as_u64(r).ok())
        .and_then(|r| RunnerRole::from_i32(r as i32));
    let result = match role {
        Some(RunnerRole::Committee) => new_duty(v, ctx, top),
        Some(other) => super::validator_cases::new_duty(v, ctx, other, top).unwrap_or_else(|| {
            Err(format!(
                "no validator runner for the {} role",
                super::role_name(Some(other))
            ))
        }),
        None => Err("unknown runner role".into()),
    };
    SubOutcome {
        name: format!("{top} / {}", name_of(v)),
        role,
        result,
    }
}

/// Dispatches one subtest of a message-processing file by role.
pub fn run_subtest(v: &Value, ctx: &SsvContext, top: Option<&str>) -> SubOutcome {
    let role = v
        .get("Runner")
        .and_then(|r| r.get("BaseRunner"))
        .and_then(|b| b.get("RunnerRoleType"))
        .and_then(|r| as_u64(r).ok())
        .and_then(|r| RunnerRole::from_i32(r as i32));
    let name = match top {
        Some(t) => format!("{t} / {}", name_of(v)),
        None => name_of(v),
    };
    let result = match role {
        Some(RunnerRole::Committee) => msg_processing_case(v, ctx, top),
        Some(other) => {
            super::validator_cases::msg_processing(v, ctx, other, top).unwrap_or_else(|| {
                Err(format!(
                    "no validator runner for the {} role",
                    super::role_name(Some(other))
                ))
            })
        }
        None => Err("unknown runner role".into()),
    };
    SubOutcome { name, role, result }
}
