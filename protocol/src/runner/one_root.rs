//! What the aggregator and the proposer share: a validator role with consensus that signs one
//! root before consensus (the aggregator's selection proof, the proposer's RANDAO reveal) and
//! one root after it (the decided aggregate, the decided block).
//!
//! ```text
//! start ─► Sign(pre root)
//!   pre-consensus partials, quorum ─► Reconstruct ─► Reconstructed::Pre(signature): the role
//!     fetches its beacon data and starts QBFT on it
//!   decided ─► the role names its post root ─► Sign(post root)
//!   post-consensus partials, quorum ─► Reconstruct ─► Reconstructed::Post(signature, value):
//!     the role submits and the duty is finished
//! ```
//!
//! The role keeps what is its own (its roots, what it fetches and submits); this keeps the
//! rest: the duty, the two roots, our partials, the collectors and the reconstruction in
//! flight.

use std::collections::VecDeque;
use std::sync::Arc;

use super::base::{BaseRunner, Phase, accept_partials, own_partials};
use super::committee::{ReconstructFailure, RunnerOptions};
use super::signing_only::{PartialSigVerifier, RunnerShare, ValidatorAction};
use super::value_check::{BlockSlashing, DutyValueCheck};
use crate::beacon::consensus_data::{ValidatorConsensusData, ValidatorDuty};
use crate::chain::ChainSpec;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{MessageId, RunnerRole, SignedSsvMessage};
use crate::partial_sig::{BlsSignature, PartialSigMsgType, PartialSignatureMessages};
use crate::qbft::{Config, Controller, Env};
use crate::types::{BeaconRole, CommitteeMember, Epoch, Root, Slot, quorum};

/// A reconstructed and verified validator signature, for the role to act on.
#[derive(Debug)]
pub(crate) enum Reconstructed {
    /// The pre-consensus signature (selection proof, RANDAO reveal).
    Pre(BlsSignature),
    /// The post-consensus signature and the decided value it signs.
    Post(BlsSignature, Vec<u8>),
}

/// The shared state. See the module docs.
pub(crate) struct OneRoot {
    pub(crate) base: BaseRunner,
    pub(crate) share: RunnerShare,
    pub(crate) msg_id: MessageId,
    pub(crate) options: RunnerOptions,
    pub(crate) chain: ChainSpec,
    pub(crate) duty: Option<ValidatorDuty>,
    pub(crate) current_epoch: Epoch,
    pub(crate) pre_root: Option<Root>,
    pub(crate) post_root: Option<Root>,
    pre_kind: PartialSigMsgType,
    quorum: usize,
    in_flight: Option<Root>,
    pub(crate) loopback: VecDeque<SignedSsvMessage>,
    duplicates: Option<Arc<dyn PartialSigVerifier + Send + Sync>>,
}

impl OneRoot {
    /// The state of `role`'s runner for the validator of `share`, run by `member`'s operator;
    /// its pre-consensus partials are of type `pre_kind`.
    pub(crate) fn new(
        role: RunnerRole,
        pre_kind: PartialSigMsgType,
        member: CommitteeMember,
        share: RunnerShare,
        config: Config,
        chain: ChainSpec,
        options: RunnerOptions,
    ) -> Self {
        let msg_id = MessageId::for_validator(member.domain, role, &share.validator_pk);
        let controller = Controller::new(msg_id.0.to_vec(), member.clone(), config);
        OneRoot {
            base: BaseRunner::new(role, Some(controller)),
            quorum: quorum(member.committee.len()),
            share,
            msg_id,
            options,
            chain,
            duty: None,
            current_epoch: 0,
            pre_root: None,
            post_root: None,
            pre_kind,
            in_flight: None,
            loopback: VecDeque::new(),
            duplicates: None,
        }
    }

    pub(crate) fn set_duplicate_check(
        &mut self,
        verifier: Arc<dyn PartialSigVerifier + Send + Sync>,
    ) {
        self.duplicates = Some(verifier);
    }

    /// The core and our own QBFT messages' queue when they are applied locally.
    pub(crate) fn parts(&mut self) -> (&mut BaseRunner, Option<&mut VecDeque<SignedSsvMessage>>) {
        (
            &mut self.base,
            self.options.loopback.then_some(&mut self.loopback),
        )
    }

    /// The role's value check (ssv-spec `*ValueCheckF`).
    pub(crate) fn value_check(
        &self,
        role: BeaconRole,
        blocks: Option<Arc<dyn BlockSlashing + Send + Sync>>,
    ) -> DutyValueCheck {
        DutyValueCheck {
            role,
            validator_pk: self.share.validator_pk,
            validator_index: self.share.validator_index,
            chain: self.chain,
            current_epoch: self.current_epoch,
            blocks,
        }
    }

    /// ssv-spec `baseStartNewDuty` (the duty must be above the controller's height), then a
    /// request for our partial over `pre_root`.
    pub(crate) fn start(
        &mut self,
        duty: ValidatorDuty,
        pre_root: Root,
        current_epoch: Epoch,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.base.should_process_duty(duty.slot)?;
        self.base.setup_for_new_duty(duty.slot, self.quorum);
        self.pre_root = Some(pre_root);
        self.post_root = None;
        self.in_flight = None;
        self.current_epoch = current_epoch;
        let slot = duty.slot;
        self.duty = Some(duty);
        out.push(ValidatorAction::Sign {
            slot,
            validator_index: self.share.validator_index,
            signing_root: pre_root,
        });
        Ok(())
    }

    /// The duty of a restored state (the runner suite's vectors) with its roots.
    pub(crate) fn restore(
        &mut self,
        duty: ValidatorDuty,
        pre_root: Root,
        post_root: Option<Root>,
        current_epoch: Epoch,
    ) {
        self.pre_root = Some(pre_root);
        self.post_root = post_root;
        self.duty = Some(duty);
        self.current_epoch = current_epoch;
    }

    /// The decided value of the current duty, if any.
    pub(crate) fn decided_data(&self) -> Result<Option<ValidatorConsensusData>, Error> {
        match self
            .base
            .state
            .as_ref()
            .and_then(|s| s.decided_value.as_ref())
        {
            Some(v) => ValidatorConsensusData::from_ssz(v).map(Some),
            None => Ok(None),
        }
    }

    /// Our partial for the last [`ValidatorAction::Sign`] (the pre root before the decision,
    /// the post root after): broadcast, and with loopback collected.
    pub(crate) fn signed(
        &mut self,
        env: Env<'_>,
        signature: BlsSignature,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let slot = self
            .base
            .state
            .as_ref()
            .map(|s| s.slot)
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no running duty"))?;
        let (kind, root) = match (self.base.phase(), self.post_root, self.pre_root) {
            (Phase::PostConsensus | Phase::Finished, Some(post), _) => {
                (PartialSigMsgType::PostConsensus, post)
            }
            (_, _, Some(pre)) => (self.pre_kind, pre),
            _ => return Err(Error::spec(ErrorCode::NoRunningDuty, "nothing to sign")),
        };
        let (psm, msg) = own_partials(
            env,
            self.msg_id,
            kind,
            slot,
            self.share.validator_index,
            vec![(root, signature)],
        )?;
        out.push(ValidatorAction::Broadcast(msg));
        if self.options.loopback {
            self.take_partials(&psm, kind == PartialSigMsgType::PostConsensus, out)?;
        }
        Ok(())
    }

    /// The value was decided and the role signs `post_root` for it.
    pub(crate) fn sign_post(
        &mut self,
        slot: Slot,
        post_root: Root,
        out: &mut Vec<ValidatorAction>,
    ) {
        self.post_root = Some(post_root);
        out.push(ValidatorAction::Sign {
            slot,
            validator_index: self.share.validator_index,
            signing_root: post_root,
        });
    }

    /// Pre- or post-consensus partials of another operator (or ours, looped back).
    pub(crate) fn take_partials(
        &mut self,
        psm: &PartialSignatureMessages,
        post: bool,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let expected: Vec<Root> = if post { self.post_root } else { self.pre_root }
            .into_iter()
            .collect();
        let reached = accept_partials(
            &mut self.base,
            &self.share,
            psm,
            post,
            &expected,
            self.duplicates.as_deref(),
        )?;
        if !reached.is_empty() {
            self.request_reconstruct(post, out);
        }
        Ok(())
    }

    fn request_reconstruct(&mut self, post: bool, out: &mut Vec<ValidatorAction>) {
        let (Some(state), Some(root)) = (
            self.base.state.as_ref(),
            if post { self.post_root } else { self.pre_root },
        ) else {
            return;
        };
        if self.in_flight == Some(root) {
            return;
        }
        let collector = if post {
            &state.post_consensus
        } else {
            &state.pre_consensus
        };
        let partials = collector
            .quorum_partials(self.share.validator_index, &root)
            .unwrap_or_default();
        self.in_flight = Some(root);
        out.push(ValidatorAction::Reconstruct {
            slot: state.slot,
            validator_index: self.share.validator_index,
            signing_root: root,
            partials,
        });
    }

    /// The verdict of a [`ValidatorAction::Reconstruct`] over `signing_root`: invalid partials
    /// leave the collector (and a quorum still there is reconstructed again); a valid
    /// signature goes to the role. A post-consensus signature
    /// marks the duty finished.
    pub(crate) fn reconstructed(
        &mut self,
        signing_root: Root,
        verdict: Result<BlsSignature, ReconstructFailure>,
        out: &mut Vec<ValidatorAction>,
    ) -> Option<Reconstructed> {
        if self.in_flight == Some(signing_root) {
            self.in_flight = None;
        }
        let post = Some(signing_root) == self.post_root;
        let vi = self.share.validator_index;
        let state = self.base.state.as_mut()?;
        match verdict {
            Err(ReconstructFailure::InvalidPartials(ops)) => {
                let collector = if post {
                    &mut state.post_consensus
                } else {
                    &mut state.pre_consensus
                };
                for op in ops {
                    collector.remove(vi, op, &signing_root);
                }
                // Partials that arrived while the reconstruction was in flight may still make
                // a quorum without the culprits'.
                if collector.quorum_partials(vi, &signing_root).is_some() {
                    self.request_reconstruct(post, out);
                }
                None
            }
            Err(ReconstructFailure::Mismatch) => None,
            Ok(signature) if post => {
                let value = state.decided_value.clone()?;
                state.finished = true;
                Some(Reconstructed::Post(signature, value))
            }
            Ok(signature) if Some(signing_root) == self.pre_root => {
                Some(Reconstructed::Pre(signature))
            }
            Ok(_) => None,
        }
    }

    /// The QBFT value of the running duty over the role's beacon data.
    pub(crate) fn consensus_value(
        &self,
        version: u64,
        data_ssz: Vec<u8>,
    ) -> Result<(Slot, Vec<u8>), Error> {
        let duty = self
            .duty
            .clone()
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no duty"))?;
        let slot = duty.slot;
        Ok((
            slot,
            ValidatorConsensusData::new(duty, version, data_ssz)?.to_ssz(),
        ))
    }
}

/// The API and the [`ConsensusRole`](super::consensus_role::ConsensusRole) glue every one-root
/// role has, over its `core: OneRoot` field; the role writes `role_value_check` and
/// `role_on_decided` (what it checks and what it signs once decided).
macro_rules! one_root_role {
    ($runner:ty) => {
        impl $runner {
            /// Resolves an operator's second partial for the same root as ssv-spec does.
            pub fn with_duplicate_check(
                mut self,
                verifier: std::sync::Arc<dyn $crate::runner::PartialSigVerifier + Send + Sync>,
            ) -> Self {
                self.core.set_duplicate_check(verifier);
                self
            }

            /// The current wall-clock epoch, for the value check (a duty more than one epoch
            /// ahead of it is refused); the caller keeps it current.
            pub fn set_current_epoch(&mut self, epoch: $crate::types::Epoch) {
                self.core.current_epoch = epoch;
            }

            /// The role-neutral core.
            pub fn base(&self) -> &$crate::runner::BaseRunner {
                &self.core.base
            }

            /// The core, to restore a runner's state (the runner suite's vectors).
            pub fn base_mut(&mut self) -> &mut $crate::runner::BaseRunner {
                &mut self.core.base
            }

            /// The runner's message ID.
            pub fn message_id(&self) -> &$crate::message::MessageId {
                &self.core.msg_id
            }

            /// Our partial for the last [`ValidatorAction::Sign`](
            /// $crate::runner::ValidatorAction::Sign) (the pre-consensus root before the
            /// decision, the decided object's after): broadcast, and with loopback collected.
            pub fn signed(
                &mut self,
                env: $crate::qbft::Env<'_>,
                signature: $crate::partial_sig::BlsSignature,
                out: &mut Vec<$crate::runner::ValidatorAction>,
            ) -> Result<(), $crate::error::Error> {
                self.core.signed(env, signature, out)
            }

            /// Processes a message of this runner whose outer structure and operator
            /// signatures the caller has checked.
            pub fn process_message(
                &mut self,
                env: $crate::qbft::Env<'_>,
                msg: $crate::message::SignedSsvMessage,
                out: &mut Vec<$crate::runner::ValidatorAction>,
            ) -> Result<(), $crate::error::Error> {
                use $crate::runner::consensus_role::ConsensusRole as _;
                self.route(env, msg, out)
            }

            /// The round timer of the running instance expired (dropped when the duty is not
            /// running, as the Go node does).
            pub fn on_timeout(
                &mut self,
                env: $crate::qbft::Env<'_>,
                slot: $crate::types::Slot,
                out: &mut Vec<$crate::runner::ValidatorAction>,
            ) -> Result<(), $crate::error::Error> {
                use $crate::runner::consensus_role::ConsensusRole as _;
                self.timeout(env, slot, out)
            }
        }

        impl $crate::runner::consensus_role::ConsensusRole for $runner {
            fn parts(
                &mut self,
            ) -> (
                &mut $crate::runner::BaseRunner,
                Option<&mut std::collections::VecDeque<$crate::message::SignedSsvMessage>>,
            ) {
                self.core.parts()
            }

            fn msg_id(&self) -> &$crate::message::MessageId {
                &self.core.msg_id
            }

            fn value_check(&self) -> $crate::runner::DutyValueCheck {
                self.role_value_check()
            }

            fn on_decided(
                &mut self,
                value: Vec<u8>,
                out: &mut Vec<$crate::runner::ValidatorAction>,
            ) -> Result<(), $crate::error::Error> {
                self.role_on_decided(value, out)
            }

            fn process_partials(
                &mut self,
                psm: &$crate::partial_sig::PartialSignatureMessages,
                post: bool,
                out: &mut Vec<$crate::runner::ValidatorAction>,
            ) -> Result<(), $crate::error::Error> {
                self.core.take_partials(psm, post, out)
            }
        }
    };
}
pub(crate) use one_root_role;
