//! The roles with a pre-consensus phase only: validator registration and voluntary exit
//! (ssv-spec `ValidatorRegistrationRunner`, `VoluntaryExitRunner`). Nothing is agreed on with
//! QBFT: every operator signs the same object (fixed by the duty), and a quorum of partial
//! signatures is reconstructed and submitted.
//!
//! ```text
//! start_duty(slot, object, domain) ─► ValidatorAction::Sign { signing root }
//!   signed(signature) ─► Broadcast (our pre-consensus partial)
//!   partials of all operators ─► collector, quorum ─► Reconstruct
//!   reconstructed(Ok(signature)) ─► Submit(signed object), finished
//! ```
//!
//! Sans-IO like the committee runner: the caller signs, reconstructs, verifies and submits.
//! The object of each role and its signing domain are in [`super::voluntary_exit`] and
//! [`super::validator_registration`].

use std::collections::BTreeMap;

use ssz::Encode;
use tree_hash::TreeHash;

use super::base::{BaseRunner, collect_partials};
use super::committee::{ReconstructFailure, RunnerOptions};
use crate::beacon::builder::{SignedValidatorRegistration, ValidatorRegistration};
use crate::beacon::phase0::{SignedVoluntaryExit, VoluntaryExit};
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{MessageId, MsgType, RunnerRole, SignedSsvMessage, SsvMessage};
use crate::partial_sig::{
    BlsSignature, PartialSigMsgType, PartialSignatureMessage, PartialSignatureMessages,
};
use crate::qbft::Env;
use crate::signing::{Domain, compute_signing_root};
use crate::types::{BlsPublicKey, CommitteeMember, OperatorId, Root, Slot, ValidatorIndex, quorum};

/// The two roles this runner serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningOnlyRole {
    /// Builder registration (fee recipient, gas limit) for MEV-boost relays.
    ValidatorRegistration,
    /// A voluntary exit.
    VoluntaryExit,
}

impl SigningOnlyRole {
    /// The runner role.
    pub fn runner_role(self) -> RunnerRole {
        match self {
            SigningOnlyRole::ValidatorRegistration => RunnerRole::ValidatorRegistration,
            SigningOnlyRole::VoluntaryExit => RunnerRole::VoluntaryExit,
        }
    }

    /// The type of its partial-signature messages.
    pub fn partial_type(self) -> PartialSigMsgType {
        match self {
            SigningOnlyRole::ValidatorRegistration => {
                PartialSigMsgType::ValidatorRegistrationPartialSig
            }
            SigningOnlyRole::VoluntaryExit => PartialSigMsgType::VoluntaryExitPartialSig,
        }
    }

    fn no_consensus(self) -> Error {
        match self {
            SigningOnlyRole::ValidatorRegistration => Error::spec(
                ErrorCode::ValidatorRegistrationNoConsensusPhase,
                "no consensus phase for validator registration",
            ),
            SigningOnlyRole::VoluntaryExit => Error::spec(
                ErrorCode::ValidatorExitNoConsensusPhase,
                "no consensus phase for voluntary exit",
            ),
        }
    }

    fn no_post_consensus(self) -> Error {
        match self {
            SigningOnlyRole::ValidatorRegistration => Error::spec(
                ErrorCode::ValidatorRegistrationNoPostConsensusPhase,
                "no post consensus phase for validator registration",
            ),
            SigningOnlyRole::VoluntaryExit => Error::spec(
                ErrorCode::ValidatorExitNoPostConsensusPhase,
                "no post consensus phase for voluntary exit",
            ),
        }
    }
}

/// The validator a runner signs for: the parts of its share the runners use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerShare {
    /// Beacon index.
    pub validator_index: ValidatorIndex,
    /// The validator's public key.
    pub validator_pk: BlsPublicKey,
    /// Every operator's share public key.
    pub committee: BTreeMap<OperatorId, BlsPublicKey>,
}

/// What a signing-only duty signs, fixed at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningObject {
    /// A voluntary exit.
    VoluntaryExit(VoluntaryExit),
    /// A builder registration.
    ValidatorRegistration(ValidatorRegistration),
}

impl SigningObject {
    /// Its hash-tree-root.
    pub fn root(&self) -> Root {
        match self {
            SigningObject::VoluntaryExit(e) => e.tree_hash_root().0,
            SigningObject::ValidatorRegistration(r) => r.tree_hash_root().0,
        }
    }

    fn signed(&self, signature: BlsSignature) -> BeaconObject {
        match self {
            SigningObject::VoluntaryExit(e) => BeaconObject::VoluntaryExit(SignedVoluntaryExit {
                message: e.clone(),
                signature,
            }),
            SigningObject::ValidatorRegistration(r) => {
                BeaconObject::ValidatorRegistration(SignedValidatorRegistration {
                    message: r.clone(),
                    signature,
                })
            }
        }
    }
}

/// A signed object for the beacon node (or, for registrations, the builder network through
/// it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeaconObject {
    /// `POST /eth/v1/beacon/pool/voluntary_exits`.
    VoluntaryExit(SignedVoluntaryExit),
    /// `POST /eth/v1/validator/register_validator`.
    ValidatorRegistration(SignedValidatorRegistration),
}

impl BeaconObject {
    /// Its hash-tree-root.
    pub fn root(&self) -> Root {
        match self {
            BeaconObject::VoluntaryExit(e) => e.tree_hash_root().0,
            BeaconObject::ValidatorRegistration(r) => r.tree_hash_root().0,
        }
    }
}

/// What a validator-role runner asks its caller to do (role-neutral: the roles with
/// consensus add theirs to it as they land).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidatorAction {
    /// Send this message to the validator's subnet.
    Broadcast(SignedSsvMessage),
    /// Sign `signing_root` with our share of the validator; report with `signed`.
    Sign {
        /// The duty's slot.
        slot: Slot,
        /// The validator.
        validator_index: ValidatorIndex,
        /// The root to sign (object root and domain combined).
        signing_root: Root,
    },
    /// Reconstruct the validator's signature over `signing_root` from these partials and
    /// verify it; report with `reconstructed`.
    Reconstruct {
        /// The duty's slot.
        slot: Slot,
        /// The validator.
        validator_index: ValidatorIndex,
        /// The common signing root.
        signing_root: Root,
        /// Every partial collected, ascending by operator.
        partials: Vec<(OperatorId, BlsSignature)>,
    },
    /// Submit this signed object.
    Submit(BeaconObject),
}

/// The runner of a signing-only role for one validator. See the module docs.
#[derive(Debug, Clone)]
pub struct SigningOnlyRunner {
    role: SigningOnlyRole,
    base: BaseRunner,
    member: CommitteeMember,
    share: RunnerShare,
    msg_id: MessageId,
    options: RunnerOptions,
    quorum: usize,
    object: Option<SigningObject>,
    signing_root: Option<Root>,
    in_flight: bool,
}

impl SigningOnlyRunner {
    /// A runner of `role` for the validator of `share`, run by `member`'s operator.
    pub fn new(
        role: SigningOnlyRole,
        member: CommitteeMember,
        share: RunnerShare,
        options: RunnerOptions,
    ) -> Self {
        let msg_id = MessageId::for_validator(member.domain, role.runner_role(), &share.validator_pk);
        let quorum = quorum(member.committee.len());
        SigningOnlyRunner {
            role,
            base: BaseRunner::new(role.runner_role(), None),
            member,
            share,
            msg_id,
            options,
            quorum,
            object: None,
            signing_root: None,
            in_flight: false,
        }
    }

    /// The runner's message ID.
    pub fn message_id(&self) -> &MessageId {
        &self.msg_id
    }

    /// The role-neutral core (phase, pre-consensus partials, finished).
    pub fn base(&self) -> &BaseRunner {
        &self.base
    }

    /// The validator.
    pub fn share(&self) -> &RunnerShare {
        &self.share
    }

    /// Starts a duty at `slot` signing `object` under `domain` (ssv-spec
    /// `baseStartNewNonBeaconDuty`: the duty must be after the previous one).
    pub fn start_duty(
        &mut self,
        slot: Slot,
        object: SigningObject,
        domain: Domain,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.base.should_process_non_beacon_duty(slot)?;
        self.base.setup_for_new_duty(slot, self.quorum);
        let signing_root = compute_signing_root(object.root(), domain);
        self.object = Some(object);
        self.signing_root = Some(signing_root);
        self.in_flight = false;
        out.push(ValidatorAction::Sign {
            slot,
            validator_index: self.share.validator_index,
            signing_root,
        });
        Ok(())
    }

    /// Restores a duty from ssv-spec's runner state (the runner suite's vectors).
    pub fn restore(
        &mut self,
        slot: Slot,
        object: SigningObject,
        domain: Domain,
        pre_consensus: &[PartialSignatureMessage],
        finished: bool,
    ) {
        self.base.setup_for_new_duty(slot, self.quorum);
        if let Some(state) = self.base.state.as_mut() {
            for m in pre_consensus {
                state.pre_consensus.add(m);
            }
            state.finished = finished;
        }
        self.signing_root = Some(compute_signing_root(object.root(), domain));
        self.object = Some(object);
    }

    /// Our partial signature for a [`ValidatorAction::Sign`]: broadcast (and, with loopback,
    /// collected).
    pub fn signed(
        &mut self,
        env: Env<'_>,
        signature: BlsSignature,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let (Some(state), Some(signing_root)) = (self.base.state.as_ref(), self.signing_root)
        else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        let psm = PartialSignatureMessages::new(
            self.role.partial_type(),
            state.slot,
            vec![PartialSignatureMessage {
                partial_signature: signature,
                signing_root,
                signer: self.member.operator_id,
                validator_index: self.share.validator_index,
            }],
        )?;
        let ssv = SsvMessage::new(MsgType::PartialSignature, self.msg_id, psm.to_ssz())?;
        let rsa = env.signer.sign_ssv_message(&ssv.as_ssz_bytes())?;
        out.push(ValidatorAction::Broadcast(SignedSsvMessage::new(
            vec![rsa],
            vec![self.member.operator_id],
            ssv,
            Vec::new(),
        )?));
        if self.options.loopback {
            self.process_pre_consensus(&psm, out)?;
        }
        Ok(())
    }

    /// Processes a message of this runner whose outer structure and operator signatures the
    /// caller has checked.
    pub fn process_message(
        &mut self,
        msg: &SignedSsvMessage,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        if msg.ssv_message.msg_id != self.msg_id {
            return Err(Error::spec(
                ErrorCode::MessageIdentifierInvalid,
                "message is not for this runner",
            ));
        }
        match msg.ssv_message.kind() {
            Some(MsgType::Consensus) => Err(self.role.no_consensus()),
            Some(MsgType::PartialSignature) => {
                let psm = PartialSignatureMessages::from_ssz(&msg.ssv_message.data)?;
                if psm.kind() == Some(PartialSigMsgType::PostConsensus) {
                    return Err(self.role.no_post_consensus());
                }
                self.process_pre_consensus(&psm, out)
            }
            None => Err(Error::spec(ErrorCode::MessageTypeInvalid, "unknown message type")),
        }
    }

    /// ssv-spec `basePreConsensusMsgProcessing` with `ValidatePreConsensusMsg`.
    fn process_pre_consensus(
        &mut self,
        psm: &PartialSignatureMessages,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.base.validate_pre_consensus(psm)?;
        let signer = psm.signer().unwrap_or(0);
        if !self.share.committee.contains_key(&signer) {
            return Err(Error::Decode("unknown signer".into()));
        }
        if psm
            .messages
            .iter()
            .any(|m| m.validator_index != self.share.validator_index)
        {
            return Err(Error::spec(
                ErrorCode::UnknownValidatorIndex,
                "unknown validator index",
            ));
        }
        if psm.messages.len() != 1 {
            return Err(Error::spec(
                ErrorCode::WrongRootsCount,
                "wrong expected roots count",
            ));
        }
        let Some(signing_root) = self.signing_root else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        if psm.messages.iter().any(|m| m.signing_root != signing_root) {
            return Err(Error::spec(ErrorCode::WrongSigningRoot, "wrong signing root"));
        }
        let Some(state) = self.base.state.as_mut() else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        let reached = collect_partials(&mut state.pre_consensus, psm);
        if reached.is_empty() || self.in_flight {
            return Ok(());
        }
        let partials = state
            .pre_consensus
            .quorum_partials(self.share.validator_index, &signing_root)
            .unwrap_or_default();
        self.in_flight = true;
        out.push(ValidatorAction::Reconstruct {
            slot: state.slot,
            validator_index: self.share.validator_index,
            signing_root,
            partials,
        });
        Ok(())
    }

    /// The verdict of a [`ValidatorAction::Reconstruct`]: `Ok` with the verified signature
    /// submits the object and finishes the duty; invalid partials are dropped (the spec's
    /// `FallBackAndVerifyEachSignature`) and a later quorum retries.
    pub fn reconstructed(
        &mut self,
        verdict: Result<BlsSignature, ReconstructFailure>,
        out: &mut Vec<ValidatorAction>,
    ) {
        self.in_flight = false;
        let (Some(state), Some(signing_root)) = (self.base.state.as_mut(), self.signing_root)
        else {
            return;
        };
        match verdict {
            Ok(signature) => {
                if let Some(object) = &self.object {
                    out.push(ValidatorAction::Submit(object.signed(signature)));
                }
                state.finished = true;
            }
            Err(ReconstructFailure::InvalidPartials(ops)) => {
                for op in ops {
                    state
                        .pre_consensus
                        .remove(self.share.validator_index, op, &signing_root);
                }
            }
            Err(ReconstructFailure::Mismatch) => {}
        }
    }
}
