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

use tree_hash::TreeHash;

use super::base::{BaseRunner, Routed, accept_partials, own_partials, route_validator_message};
use super::committee::{ReconstructFailure, RunnerOptions};
use crate::beacon::builder::{SignedValidatorRegistration, ValidatorRegistration};
use crate::beacon::phase0::{SignedVoluntaryExit, VoluntaryExit};
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{MessageId, RunnerRole, SignedSsvMessage};
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
    /// `POST /eth/v2/validator/aggregate_and_proofs`.
    AggregateAndProof(crate::beacon::consensus_data::SignedAggregateAndProofData),
    /// `POST /eth/v1/validator/contribution_and_proofs`.
    ContributionAndProof(Box<crate::beacon::altair::SignedContributionAndProof>),
    /// `POST /eth/v2/beacon/blocks` or `/eth/v2/beacon/blinded_blocks`.
    Proposal(Box<crate::beacon::consensus_data::SignedProposal>),
}

impl BeaconObject {
    /// Its hash-tree-root.
    pub fn root(&self) -> Root {
        match self {
            BeaconObject::VoluntaryExit(e) => e.tree_hash_root().0,
            BeaconObject::ValidatorRegistration(r) => r.tree_hash_root().0,
            BeaconObject::AggregateAndProof(a) => a.root(),
            BeaconObject::ContributionAndProof(c) => c.tree_hash_root().0,
            BeaconObject::Proposal(p) => p.root(),
        }
    }
}

/// Beacon data a runner needs in the middle of a duty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeaconDataRequest {
    /// The aggregate to propose (`GET /eth/v2/validator/aggregate_attestation` after the
    /// selection proof made the validator an aggregator): answer with `beacon_data`.
    AggregateAndProof {
        /// Duty slot.
        slot: Slot,
        /// The beacon committee.
        committee_index: u64,
        /// Its length.
        committee_length: u64,
        /// The aggregator.
        validator_index: ValidatorIndex,
        /// The reconstructed selection proof.
        selection_proof: BlsSignature,
    },
    /// The sync-committee contributions to propose (`GET
    /// /eth/v1/validator/sync_committee_contribution` for each subcommittee whose selection
    /// proof makes the validator an aggregator; the beacon node's side decides which):
    /// answer with `beacon_data`, `None` when it aggregates none.
    SyncCommitteeContributions {
        /// Duty slot.
        slot: Slot,
        /// The reconstructed selection proofs, each with its subcommittee.
        candidates: Vec<(BlsSignature, u64)>,
    },
    /// The block to propose (`GET /eth/v3/validator/blocks/{slot}` with the RANDAO reveal;
    /// full or blinded, as the beacon node and its builder choose): answer with
    /// `beacon_data`.
    Block {
        /// Duty slot.
        slot: Slot,
        /// The proposer.
        validator_index: ValidatorIndex,
        /// The reconstructed RANDAO reveal.
        randao_reveal: BlsSignature,
    },
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
    /// Fetch beacon data; answer with the runner's `beacon_data`.
    FetchBeaconData(BeaconDataRequest),
    /// Arm the QBFT round timer; call the runner's `on_timeout` after `after`.
    SetTimer {
        /// The QBFT height (duty slot).
        slot: Slot,
        /// The round the timer guards.
        round: crate::types::Round,
        /// How long from now.
        after: std::time::Duration,
    },
}

/// Verifies one operator's partial signature against its share key. The runners are free of
/// curve code; this is how the caller lends it for the one check ssv-spec makes on arrival —
/// a second partial of an operator for the same validator and root replaces the first only if
/// the first is invalid and the second valid (`resolveDuplicateSignature`).
pub trait PartialSigVerifier {
    /// Whether `signature` is `share`'s signature of `root`.
    fn verify(&self, share: &BlsPublicKey, root: &Root, signature: &BlsSignature) -> bool;
}

/// The runner of a signing-only role for one validator. See the module docs.
#[derive(Clone)]
pub struct SigningOnlyRunner {
    role: SigningOnlyRole,
    base: BaseRunner,
    share: RunnerShare,
    msg_id: MessageId,
    options: RunnerOptions,
    quorum: usize,
    object: Option<SigningObject>,
    signing_root: Option<Root>,
    in_flight: bool,
    duplicates: Option<std::sync::Arc<dyn PartialSigVerifier + Send + Sync>>,
}

impl std::fmt::Debug for SigningOnlyRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningOnlyRunner")
            .field("role", &self.role)
            .field("validator", &self.share.validator_index)
            .field("phase", &self.base.phase())
            .finish_non_exhaustive()
    }
}

impl SigningOnlyRunner {
    /// A runner of `role` for the validator of `share`, run by `member`'s operator.
    pub fn new(
        role: SigningOnlyRole,
        member: CommitteeMember,
        share: RunnerShare,
        options: RunnerOptions,
    ) -> Self {
        let msg_id =
            MessageId::for_validator(member.domain, role.runner_role(), &share.validator_pk);
        let quorum = quorum(member.committee.len());
        SigningOnlyRunner {
            role,
            base: BaseRunner::new(role.runner_role(), None),
            share,
            msg_id,
            options,
            quorum,
            object: None,
            signing_root: None,
            in_flight: false,
            duplicates: None,
        }
    }

    /// Resolves an operator's second partial for the same root as ssv-spec does (keep the
    /// valid one) instead of keeping the first.
    pub fn with_duplicate_check(
        mut self,
        verifier: std::sync::Arc<dyn PartialSigVerifier + Send + Sync>,
    ) -> Self {
        self.duplicates = Some(verifier);
        self
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
        let (psm, msg) = own_partials(
            env,
            self.msg_id,
            self.role.partial_type(),
            state.slot,
            self.share.validator_index,
            vec![(signing_root, signature)],
        )?;
        out.push(ValidatorAction::Broadcast(msg));
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
        match route_validator_message(&self.msg_id, msg.clone())? {
            Routed::Consensus(_) => Err(self.role.no_consensus()),
            Routed::PostConsensus(_) => Err(self.role.no_post_consensus()),
            Routed::PreConsensus(psm) => self.process_pre_consensus(&psm, out),
        }
    }

    /// ssv-spec `basePreConsensusMsgProcessing` with `ValidatePreConsensusMsg`.
    fn process_pre_consensus(
        &mut self,
        psm: &PartialSignatureMessages,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let Some(signing_root) = self.signing_root else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        let reached = !accept_partials(
            &mut self.base,
            &self.share,
            psm,
            false,
            &[signing_root],
            self.duplicates.as_deref(),
        )?
        .is_empty();
        let Some(state) = self.base.state.as_ref() else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        if !reached || self.in_flight {
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
                let vi = self.share.validator_index;
                for op in ops {
                    state.pre_consensus.remove(vi, op, &signing_root);
                }
                // Partials that arrived while the reconstruction was in flight may still make
                // a quorum without the culprits'.
                if let Some(partials) = state.pre_consensus.quorum_partials(vi, &signing_root) {
                    self.in_flight = true;
                    out.push(ValidatorAction::Reconstruct {
                        slot: state.slot,
                        validator_index: vi,
                        signing_root,
                        partials,
                    });
                }
            }
            Err(ReconstructFailure::Mismatch) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MsgType, RsaSignature, SsvMessage};
    use crate::qbft::{OperatorSigner, SignatureVerifier, ValueCheck};
    use crate::types::{CommitteeOperator, DomainType};

    struct Signer;
    impl OperatorSigner for Signer {
        fn operator_id(&self) -> OperatorId {
            1
        }
        fn sign_ssv_message(&self, _: &[u8]) -> Result<RsaSignature, Error> {
            Ok([1; 256])
        }
    }
    struct Verifier;
    impl SignatureVerifier for Verifier {
        fn verify(&self, _: &CommitteeOperator, _: &[u8], _: &RsaSignature) -> bool {
            true
        }
    }
    struct Any;
    impl ValueCheck for Any {
        fn check_value(&self, _: &[u8]) -> Result<(), Error> {
            Ok(())
        }
    }

    fn runner(options: RunnerOptions) -> SigningOnlyRunner {
        let committee: Vec<CommitteeOperator> = (1..=4)
            .map(|id| CommitteeOperator {
                operator_id: id,
                rsa_public_key_pem: Vec::new(),
            })
            .collect();
        let member = CommitteeMember {
            operator_id: 1,
            committee_id: crate::committee::CommitteeId::from_operators(&[1, 2, 3, 4]),
            rsa_public_key_pem: Vec::new(),
            faulty_nodes: 1,
            committee,
            domain: DomainType([0, 0, 3, 1]),
        };
        let share = RunnerShare {
            validator_index: 9,
            validator_pk: [9; 48],
            committee: (1..=4).map(|id| (id, [id as u8; 48])).collect(),
        };
        SigningOnlyRunner::new(SigningOnlyRole::VoluntaryExit, member, share, options)
    }

    fn partial(signer: OperatorId, slot: Slot, root: Root) -> SignedSsvMessage {
        let r = runner(RunnerOptions::NODE);
        let psm = PartialSignatureMessages::new(
            PartialSigMsgType::VoluntaryExitPartialSig,
            slot,
            vec![PartialSignatureMessage {
                partial_signature: [signer as u8; 96],
                signing_root: root,
                signer,
                validator_index: 9,
            }],
        )
        .expect("psm");
        let ssv =
            SsvMessage::new(MsgType::PartialSignature, *r.message_id(), psm.to_ssz()).expect("ssv");
        SignedSsvMessage::new(vec![[1; 256]], vec![signer], ssv, Vec::new()).expect("signed")
    }

    /// The node's runner collects its own partial as it sends it, and three operators'
    /// partials (ours included) complete the exit; a second exit at the same slot is refused
    /// (`DutyAlreadyPassed`), and partials after the duty finished are refused
    /// (`NoRunningDuty`).
    #[test]
    fn an_exit_completes_with_our_own_partial_and_two_more() {
        let mut r = runner(RunnerOptions::NODE);
        let mut out = Vec::new();
        let exit =
            super::super::voluntary_exit::exit_object(&crate::chain::ChainSpec::MAINNET, 64, 9);
        r.start_duty(64, exit.clone(), [4; 32], &mut out)
            .expect("start");
        let Some(ValidatorAction::Sign { signing_root, .. }) = out.pop() else {
            panic!("a signing request");
        };
        let env = Env {
            signer: &Signer,
            verifier: &Verifier,
            value_check: &Any,
        };
        r.signed(env, [1; 96], &mut out).expect("signed");
        assert!(matches!(out.pop(), Some(ValidatorAction::Broadcast(_))));
        r.process_message(&partial(2, 64, signing_root), &mut out)
            .expect("operator 2");
        assert!(out.is_empty(), "no quorum with two partials");
        // A wrong root and a wrong slot are refused with the spec's codes.
        let code = |res: Result<(), Error>| res.err().map(|e| e.code().as_u16());
        assert_eq!(
            code(r.process_message(&partial(3, 64, [0; 32]), &mut out)),
            Some(43)
        );
        assert_eq!(
            code(r.process_message(&partial(3, 65, signing_root), &mut out)),
            Some(49)
        );
        r.process_message(&partial(3, 64, signing_root), &mut out)
            .expect("operator 3");
        let Some(ValidatorAction::Reconstruct { partials, .. }) = out.pop() else {
            panic!("a reconstruction at quorum");
        };
        assert_eq!(
            partials.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        r.reconstructed(Ok([7; 96]), &mut out);
        let Some(ValidatorAction::Submit(BeaconObject::VoluntaryExit(signed))) = out.pop() else {
            panic!("a submission");
        };
        assert_eq!(signed.message.validator_index, 9);
        assert_eq!(r.base().phase(), super::super::base::Phase::Finished);
        assert_eq!(
            code(r.process_message(&partial(4, 64, signing_root), &mut out)),
            Some(4)
        );
        assert_eq!(code(r.start_duty(64, exit, [4; 32], &mut out)), Some(42));
    }
}
