//! The role-neutral runner core (ssv-spec `ssv/runner.go`, `ssv/runner_state.go`): one duty at
//! a time through explicit phases, on one QBFT controller that carries on from duty to duty.
//!
//! ```text
//!  Idle ─start─► PreConsensus ─quorum of pre-consensus partials─► Consensus ─decided─►
//!                 (RANDAO, selection proofs; roles without it      PostConsensus ─quorum,
//!                  start in Consensus; registration and exit       reconstructed─► Finished
//!                  finish after PreConsensus)
//! ```
//!
//! A role's runner owns a [`BaseRunner`] and adds what is its own: the value it proposes, its
//! value check, the roots it signs and the beacon objects it submits. The base keeps the
//! rules every role shares, with the spec's error codes: when a duty may start
//! (`DutyAlreadyPassed`), when a consensus message is still wanted
//! (`SkipConsensusMessageAsConsensusHasFinished`), that a decision is for the running
//! instance (`DecidedWrongInstance`), when partial signatures are acceptable (`NoRunningDuty`,
//! `NoDecidedValue`, `NoRunningConsensusInstance`, `ConsensusInstanceNotDecided`, slot
//! checks), and how partials are collected ([`PartialSigCollector`], quorum per validator and
//! root).

use std::collections::{BTreeMap, VecDeque};

use super::collector::{Added, PartialSigCollector};
use super::signing_only::{PartialSigVerifier, RunnerShare, ValidatorAction};
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{MessageId, MsgType, RunnerRole, SignedSsvMessage, SsvMessage};
use crate::partial_sig::{
    BlsSignature, PartialSigMsgType, PartialSignatureMessage, PartialSignatureMessages,
};
use crate::qbft::{self, Action, Controller, Env, Instance};
use crate::types::{BlsPublicKey, OperatorId, Root, Slot};

/// Where a duty stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No duty.
    Idle,
    /// Collecting pre-consensus partial signatures.
    PreConsensus,
    /// QBFT on the duty's value is running.
    Consensus,
    /// Decided; collecting post-consensus partial signatures.
    PostConsensus,
    /// Everything submitted.
    Finished,
}

/// One duty's state (ssv-spec `State`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerState {
    /// The duty's slot (the QBFT height of its instance).
    pub slot: Slot,
    /// The height of the duty's QBFT instance once started (ssv-spec `RunningInstance`).
    pub running_height: Option<Slot>,
    /// Pre-consensus partial signatures.
    pub pre_consensus: PartialSigCollector,
    /// Post-consensus partial signatures.
    pub post_consensus: PartialSigCollector,
    /// The decided value as the runner accepted it (after its value check), SSZ.
    pub decided_value: Option<Vec<u8>>,
    /// Everything the duty had to submit was submitted.
    pub finished: bool,
}

impl RunnerState {
    /// A duty's state at its start.
    pub fn new(slot: Slot, quorum: usize) -> Self {
        RunnerState {
            slot,
            running_height: None,
            pre_consensus: PartialSigCollector::new(quorum),
            post_consensus: PartialSigCollector::new(quorum),
            decided_value: None,
            finished: false,
        }
    }
}

/// The core every role's runner is built on (ssv-spec `BaseRunner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRunner {
    /// The role.
    pub role: RunnerRole,
    /// The QBFT controller (height = the last started or decided duty's slot); `None` for
    /// the roles without consensus (validator registration, voluntary exit).
    pub controller: Option<Controller>,
    /// The current duty, if any.
    pub state: Option<RunnerState>,
}

impl BaseRunner {
    /// A runner with no duty yet (`controller: None` for the roles without consensus).
    pub fn new(role: RunnerRole, controller: Option<Controller>) -> Self {
        BaseRunner {
            role,
            controller,
            state: None,
        }
    }

    /// The QBFT instance of the current duty.
    pub fn running_instance(&self) -> Option<&Instance> {
        let height = self.state.as_ref()?.running_height?;
        self.controller.as_ref()?.instance_for_height(height)
    }

    /// Where the current duty stands.
    pub fn phase(&self) -> Phase {
        match &self.state {
            None => Phase::Idle,
            Some(s) if s.finished => Phase::Finished,
            Some(s) if s.decided_value.is_some() => Phase::PostConsensus,
            Some(_) if self.running_instance().is_some() => Phase::Consensus,
            Some(_) => Phase::PreConsensus,
        }
    }

    /// A duty is started and not finished (ssv-spec `hasRunningDuty`).
    pub fn has_running_duty(&self) -> bool {
        self.state.as_ref().is_some_and(|s| !s.finished)
    }

    /// ssv-spec `ShouldProcessDuty`: a duty must be above the controller's height (except at
    /// the first height).
    pub fn should_process_duty(&self, slot: Slot) -> Result<(), Error> {
        let height = self.controller.as_ref().map_or(0, |c| c.height);
        if height >= slot && height != 0 {
            return Err(Error::spec(
                ErrorCode::DutyAlreadyPassed,
                format!("duty for slot {slot} already passed. Current height is {height}"),
            ));
        }
        Ok(())
    }

    /// ssv-spec `ShouldProcessNonBeaconDuty` (roles without consensus): a duty must be after
    /// the previous one.
    pub fn should_process_non_beacon_duty(&self, slot: Slot) -> Result<(), Error> {
        match &self.state {
            Some(s) if s.slot >= slot => Err(Error::spec(
                ErrorCode::DutyAlreadyPassed,
                format!(
                    "duty for slot {slot} already passed. Current slot is {}",
                    s.slot
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A fresh state for a duty at `slot` (ssv-spec `baseSetupForNewDuty`).
    pub fn setup_for_new_duty(&mut self, slot: Slot, quorum: usize) {
        self.state = Some(RunnerState::new(slot, quorum));
    }

    /// Starts QBFT on `value` at the duty's slot (ssv-spec `decide`): the value check (its
    /// error code kept), then a new instance; instances of other heights stop.
    pub fn decide(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        value: Vec<u8>,
        out: &mut Vec<Action>,
    ) -> Result<(), Error> {
        env.value_check
            .check_value(&value)
            .map_err(|e| Error::spec(e.code(), format!("input data invalid: {e}")))?;
        self.controller
            .as_mut()
            .ok_or_else(|| {
                Error::spec(ErrorCode::StartInstance, "the role has no consensus phase")
            })?
            .start_new_instance(env, slot, value, out)?;
        if let Some(state) = self.state.as_mut() {
            state.running_height = Some(slot);
        }
        Ok(())
    }

    /// Before a consensus message goes to QBFT (ssv-spec `baseConsensusMsgProcessing`): a
    /// running duty whose instance has decided takes no more.
    pub fn check_consensus_wanted(&self) -> Result<(), Error> {
        if self.has_running_duty() && self.running_instance().is_some_and(|i| i.state.decided) {
            return Err(Error::spec(
                ErrorCode::SkipConsensusMessageAsConsensusHasFinished,
                "not processing consensus message since consensus has already finished",
            ));
        }
        Ok(())
    }

    /// After QBFT processed a message that decided an instance (ssv-spec
    /// `didDecideCorrectly`): the decision must be the running instance's.
    pub fn check_decided_instance(&self, decided: &SignedSsvMessage) -> Result<(), Error> {
        let msg = qbft::Message::from_ssz(&decided.ssv_message.data)?;
        match self.running_instance() {
            Some(i) if i.height() == msg.height => Ok(()),
            _ => Err(Error::spec(
                ErrorCode::DecidedWrongInstance,
                "decided wrong instance",
            )),
        }
    }

    /// Whether post-consensus partials are acceptable now (ssv-spec
    /// `ValidatePostConsensusMsg`, without the signer's membership, which the caller checks).
    pub fn validate_post_consensus(&self, psm: &PartialSignatureMessages) -> Result<(), Error> {
        let Some(state) = self.state.as_ref().filter(|s| !s.finished) else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        if state.decided_value.is_none() {
            return Err(Error::spec(ErrorCode::NoDecidedValue, "no decided value"));
        }
        let Some(instance) = self.running_instance() else {
            return Err(Error::spec(
                ErrorCode::NoRunningConsensusInstance,
                "no running consensus instance",
            ));
        };
        if !instance.state.decided {
            return Err(Error::spec(
                ErrorCode::ConsensusInstanceNotDecided,
                "consensus instance not decided",
            ));
        }
        validate_slot(psm, state.slot)
    }

    /// Whether pre-consensus partials are acceptable now (ssv-spec
    /// `ValidatePreConsensusMsg`).
    pub fn validate_pre_consensus(&self, psm: &PartialSignatureMessages) -> Result<(), Error> {
        let Some(state) = self.state.as_ref().filter(|s| !s.finished) else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        validate_slot(psm, state.slot)
    }
}

/// The partials of a message must be for the duty's slot.
fn validate_slot(psm: &PartialSignatureMessages, slot: Slot) -> Result<(), Error> {
    psm.validate()?;
    if psm.slot < slot {
        return Err(Error::spec(
            ErrorCode::PartialSigMessageInvalidSlot,
            "invalid partial sig slot",
        ));
    }
    if psm.slot > slot {
        return Err(Error::spec(
            ErrorCode::PartialSigMessageFutureSlot,
            "future partial sig slot",
        ));
    }
    Ok(())
}

/// A validator runner's message, by what it is for.
#[derive(Debug)]
pub enum Routed {
    /// A QBFT message.
    Consensus(SignedSsvMessage),
    /// Pre-consensus partial signatures (any type but post-consensus).
    PreConsensus(PartialSignatureMessages),
    /// Post-consensus partial signatures.
    PostConsensus(PartialSignatureMessages),
}

/// Routes a message of the runner of `msg_id` (ssv-spec `Validator.ProcessMessage` after its
/// checks: consensus, or partial signatures by type).
pub fn route_validator_message(msg_id: &MessageId, msg: SignedSsvMessage) -> Result<Routed, Error> {
    if msg.ssv_message.msg_id != *msg_id {
        return Err(Error::spec(
            ErrorCode::MessageIdentifierInvalid,
            "message is not for this runner",
        ));
    }
    match msg.ssv_message.kind() {
        Some(MsgType::Consensus) => Ok(Routed::Consensus(msg)),
        Some(MsgType::PartialSignature) => {
            let psm = PartialSignatureMessages::from_ssz(&msg.ssv_message.data)?;
            Ok(if psm.kind() == Some(PartialSigMsgType::PostConsensus) {
                Routed::PostConsensus(psm)
            } else {
                Routed::PreConsensus(psm)
            })
        }
        None => Err(Error::spec(
            ErrorCode::MessageTypeInvalid,
            "unknown message type",
        )),
    }
}

/// Hands QBFT's actions to a validator runner's caller: broadcasts (queued on `loopback` too
/// when the node applies its own messages) and round timers; decisions are read from the
/// controller's return value instead.
pub fn drain_qbft(
    actions: Vec<Action>,
    loopback: Option<&mut VecDeque<SignedSsvMessage>>,
    out: &mut Vec<ValidatorAction>,
) {
    let mut loopback = loopback;
    for action in actions {
        match action {
            Action::Broadcast(m) => {
                if let Some(queue) = loopback.as_deref_mut() {
                    queue.push_back(m.clone());
                }
                out.push(ValidatorAction::Broadcast(m));
            }
            Action::SetTimer {
                height,
                round,
                after,
            } => out.push(ValidatorAction::SetTimer {
                slot: height,
                round,
                after,
            }),
            Action::Decided { .. } => {}
        }
    }
}

impl BaseRunner {
    /// ssv-spec `baseConsensusMsgProcessing` for a validator role, with `env.value_check` the
    /// role's check: the message goes to QBFT unless consensus already decided; the first
    /// decision of the running instance is checked again and becomes the duty's decided value,
    /// which is returned.
    pub fn process_validator_consensus(
        &mut self,
        env: Env<'_>,
        msg: SignedSsvMessage,
        loopback: Option<&mut VecDeque<SignedSsvMessage>>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.check_consensus_wanted()?;
        let mut actions = Vec::new();
        let controller = self
            .controller
            .as_mut()
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningConsensusInstance, "no controller"))?;
        let decided = controller.process_msg(env, msg, &mut actions);
        drain_qbft(actions, loopback, out);
        let Some(decided) = decided? else {
            return Ok(None);
        };
        if !self.has_running_duty() {
            return Ok(None);
        }
        self.check_decided_instance(&decided)?;
        let value = decided.full_data.to_vec();
        env.value_check
            .check_value(&value)
            .map_err(|e| Error::spec(e.code(), format!("decided value is invalid: {e}")))?;
        if let Some(state) = self.state.as_mut() {
            state.decided_value = Some(value.clone());
        }
        Ok(Some(value))
    }

    /// The round timer of the running instance expired: dropped when the duty is not running
    /// (the Go node's `HasRunningDuty`), else QBFT changes round.
    pub fn validator_timeout(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        loopback: Option<&mut VecDeque<SignedSsvMessage>>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        if !self.has_running_duty() {
            return Ok(());
        }
        let mut actions = Vec::new();
        let result = match self.controller.as_mut() {
            Some(c) => c.upon_round_timeout(env, slot, &mut actions),
            None => Ok(()),
        };
        drain_qbft(actions, loopback, out);
        result
    }
}

/// Accepts a validator runner's partial signatures of one phase: the phase's acceptance rule
/// (ssv-spec `ValidatePreConsensusMsg` / `ValidatePostConsensusMsg`), the partial checks
/// against the phase's `expected` roots, then the collector (duplicates resolved with
/// `verifier`); returns the roots that reached their quorum with this message.
pub fn accept_partials(
    base: &mut BaseRunner,
    share: &RunnerShare,
    psm: &PartialSignatureMessages,
    post: bool,
    expected: &[Root],
    verifier: Option<&(dyn PartialSigVerifier + Send + Sync)>,
) -> Result<Vec<Root>, Error> {
    if post {
        base.validate_post_consensus(psm)?;
    } else {
        base.validate_pre_consensus(psm)?;
    }
    check_validator_partials(share, psm, expected)?;
    let Some(state) = base.state.as_mut() else {
        return Ok(Vec::new());
    };
    let collector = if post {
        &mut state.post_consensus
    } else {
        &mut state.pre_consensus
    };
    Ok(collect_resolving_duplicates(
        collector,
        psm,
        &share.committee,
        verifier,
    ))
}

/// Our partial signatures of a validator as the message the committee receives: the
/// `PartialSignatureMessages` (to apply locally, with loopback) and the signed SSV message to
/// broadcast.
pub fn own_partials(
    env: Env<'_>,
    msg_id: MessageId,
    kind: PartialSigMsgType,
    slot: Slot,
    validator_index: u64,
    signed: Vec<(Root, BlsSignature)>,
) -> Result<(PartialSignatureMessages, SignedSsvMessage), Error> {
    let signer = env.signer.operator_id();
    let messages = signed
        .into_iter()
        .map(
            |(signing_root, partial_signature)| PartialSignatureMessage {
                partial_signature,
                signing_root,
                signer,
                validator_index,
            },
        )
        .collect();
    let psm = PartialSignatureMessages::new(kind, slot, messages)?;
    let ssv = SsvMessage::new(MsgType::PartialSignature, msg_id, psm.to_ssz())?;
    let rsa = env
        .signer
        .sign_ssv_message(&ssz::Encode::as_ssz_bytes(&ssv))?;
    let msg = SignedSsvMessage::new(vec![rsa], vec![signer], ssv, Vec::new())?;
    Ok((psm, msg))
}

/// The checks a validator runner makes on the partials of a message (ssv-spec
/// `validatePartialSigMsgForSlot`'s signer rule, `validateValidatorIndexInPartialSigMsg` and
/// `verifyExpectedRoot`): the signer is in the validator's committee, every partial is for
/// the validator, and the roots are the expected ones (count first, then the sorted roots).
pub fn check_validator_partials(
    share: &RunnerShare,
    psm: &PartialSignatureMessages,
    expected: &[Root],
) -> Result<(), Error> {
    let signer = psm.signer().unwrap_or(0);
    if !share.committee.contains_key(&signer) {
        return Err(Error::Decode("unknown signer".into()));
    }
    if psm
        .messages
        .iter()
        .any(|m| m.validator_index != share.validator_index)
    {
        return Err(Error::spec(
            ErrorCode::UnknownValidatorIndex,
            "unknown validator index",
        ));
    }
    if psm.messages.len() != expected.len() {
        return Err(Error::spec(
            ErrorCode::WrongRootsCount,
            "wrong expected roots count",
        ));
    }
    let mut want = expected.to_vec();
    want.sort_unstable();
    let mut got: Vec<Root> = psm.messages.iter().map(|m| m.signing_root).collect();
    got.sort_unstable();
    if want != got {
        return Err(Error::spec(
            ErrorCode::WrongSigningRoot,
            "wrong signing root",
        ));
    }
    Ok(())
}

/// Adds a message's partials to `collector` and says whether a `(validator, root)` reached
/// its quorum. A second partial of an operator for the same validator and root replaces the
/// first only if the first is invalid and the second valid (ssv-spec
/// `resolveDuplicateSignature`) when `verifier` is given; without one the first stays.
pub fn collect_resolving_duplicates(
    collector: &mut PartialSigCollector,
    psm: &PartialSignatureMessages,
    committee: &BTreeMap<OperatorId, BlsPublicKey>,
    verifier: Option<&(dyn PartialSigVerifier + Send + Sync)>,
) -> Vec<Root> {
    let mut reached = Vec::new();
    for m in psm.messages.iter() {
        let old = collector
            .partials(m.validator_index, &m.signing_root)
            .and_then(|p| p.get(&m.signer))
            .copied();
        if let (Some(old), Some(verifier), Some(share)) = (old, verifier, committee.get(&m.signer))
        {
            if verifier.verify(share, &m.signing_root, &old) {
                continue;
            }
            collector.remove(m.validator_index, m.signer, &m.signing_root);
            if !verifier.verify(share, &m.signing_root, &m.partial_signature) {
                continue;
            }
        }
        if collector.add(m) == Added::ReachedQuorum {
            reached.push(m.signing_root);
        }
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partial_sig::{PartialSigMsgType, PartialSignatureMessage};
    use crate::qbft::Config;
    use crate::types::{CommitteeMember, CommitteeOperator, DomainType};

    fn member() -> CommitteeMember {
        CommitteeMember {
            operator_id: 1,
            committee_id: crate::committee::CommitteeId::from_operators(&[1, 2, 3, 4]),
            rsa_public_key_pem: Vec::new(),
            faulty_nodes: 1,
            committee: (1..=4)
                .map(|id| CommitteeOperator {
                    operator_id: id,
                    rsa_public_key_pem: Vec::new(),
                })
                .collect(),
            domain: DomainType([0, 0, 3, 1]),
        }
    }

    fn runner() -> BaseRunner {
        BaseRunner::new(
            RunnerRole::Committee,
            Some(Controller::new(vec![0; 56], member(), Config::default())),
        )
    }

    fn psm(slot: Slot) -> PartialSignatureMessages {
        PartialSignatureMessages::new(
            PartialSigMsgType::PostConsensus,
            slot,
            vec![PartialSignatureMessage {
                partial_signature: [1; 96],
                signing_root: [2; 32],
                signer: 1,
                validator_index: 7,
            }],
        )
        .expect("one message")
    }

    fn code(r: Result<(), Error>) -> Option<u16> {
        r.err().map(|e| e.code().as_u16())
    }

    #[test]
    fn phases_and_post_consensus_checks_follow_the_spec() {
        let mut r = runner();
        assert_eq!(r.phase(), Phase::Idle);
        assert_eq!(code(r.validate_post_consensus(&psm(12))), Some(4));
        r.setup_for_new_duty(12, 3);
        assert_eq!(r.phase(), Phase::PreConsensus);
        assert_eq!(code(r.validate_post_consensus(&psm(12))), Some(45));
        r.state.as_mut().expect("state").decided_value = Some(vec![1]);
        assert_eq!(r.phase(), Phase::PostConsensus);
        // Decided value but no instance at the height.
        assert_eq!(code(r.validate_post_consensus(&psm(12))), Some(46));
        r.state.as_mut().expect("state").finished = true;
        assert_eq!(r.phase(), Phase::Finished);
        assert_eq!(code(r.validate_post_consensus(&psm(12))), Some(4));
    }

    #[test]
    fn duties_must_move_forward() {
        let mut r = runner();
        assert!(r.should_process_duty(0).is_ok(), "the first height");
        if let Some(c) = r.controller.as_mut() {
            c.height = 12;
        }
        assert_eq!(code(r.should_process_duty(12)), Some(42));
        assert_eq!(code(r.should_process_duty(11)), Some(42));
        assert!(r.should_process_duty(13).is_ok());
        r.setup_for_new_duty(12, 3);
        assert_eq!(code(r.should_process_non_beacon_duty(12)), Some(42));
        assert!(r.should_process_non_beacon_duty(13).is_ok());
    }

    #[test]
    fn partials_reach_quorum_once() {
        let mut c = PartialSigCollector::new(2);
        let mut m = psm(12);
        let committee = BTreeMap::new();
        assert!(collect_resolving_duplicates(&mut c, &m, &committee, None).is_empty());
        m.messages[0].signer = 2;
        assert_eq!(
            collect_resolving_duplicates(&mut c, &m, &committee, None),
            vec![[2; 32]]
        );
        m.messages[0].signer = 3;
        assert!(
            collect_resolving_duplicates(&mut c, &m, &committee, None).is_empty(),
            "already at quorum"
        );
    }
}
