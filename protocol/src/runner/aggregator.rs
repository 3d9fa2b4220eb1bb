//! The aggregator role (ssv-spec `AggregatorRunner`) on the runner core:
//!
//! ```text
//! start_duty ─► Sign(selection proof: the slot under DOMAIN_SELECTION_PROOF)
//!   pre-consensus partials, quorum ─► Reconstruct ─► FetchBeaconData(aggregate, with the proof)
//!   beacon_data(version, AggregateAndProof) ─► QBFT on ValidatorConsensusData
//!   decided ─► Sign(AggregateAndProof under DOMAIN_AGGREGATE_AND_PROOF)
//!   post-consensus partials, quorum ─► Reconstruct ─► Submit(SignedAggregateAndProof)
//! ```
//!
//! Phase 0 to Deneb aggregates and Electra/Fulu ones (committee bits) alike: the shape follows
//! the data version of the value. Sans-IO: the caller signs, reconstructs, verifies, fetches and
//! submits; QBFT runs inside.

use std::collections::VecDeque;

use tree_hash::TreeHash;

use super::base::{BaseRunner, Phase, accept_partials, own_partials};
use super::committee::{ReconstructFailure, RunnerOptions};
use super::consensus_role::ConsensusRole;
use super::signing_only::{
    BeaconDataRequest, BeaconObject, PartialSigVerifier, RunnerShare, ValidatorAction,
};
use super::value_check::DutyValueCheck;
use crate::beacon::consensus_data::{ValidatorConsensusData, ValidatorDuty};
use crate::chain::ChainSpec;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{MessageId, RunnerRole, SignedSsvMessage};
use crate::partial_sig::{BlsSignature, PartialSigMsgType, PartialSignatureMessages};
use crate::qbft::{Config, Controller, Env};
use crate::signing::{Domain, compute_signing_root};
use crate::types::{BeaconRole, CommitteeMember, Epoch, Root, Slot, quorum};

/// The signing domains of an aggregator duty (from the fork schedule at the duty's epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatorDomains {
    /// `DOMAIN_SELECTION_PROOF`.
    pub selection_proof: Domain,
    /// `DOMAIN_AGGREGATE_AND_PROOF`.
    pub aggregate_and_proof: Domain,
}

/// The aggregator runner of one validator. See the module docs.
pub struct AggregatorRunner {
    base: BaseRunner,
    share: RunnerShare,
    msg_id: MessageId,
    options: RunnerOptions,
    quorum: usize,
    chain: ChainSpec,
    duty: Option<ValidatorDuty>,
    domains: Option<AggregatorDomains>,
    current_epoch: Epoch,
    pre_root: Option<Root>,
    post_root: Option<Root>,
    in_flight: Option<Root>,
    loopback: VecDeque<SignedSsvMessage>,
    duplicates: Option<std::sync::Arc<dyn PartialSigVerifier + Send + Sync>>,
}

impl std::fmt::Debug for AggregatorRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregatorRunner")
            .field("validator", &self.share.validator_index)
            .field("phase", &self.base.phase())
            .finish_non_exhaustive()
    }
}

impl AggregatorRunner {
    /// An aggregator runner for the validator of `share`, run by `member`'s operator.
    pub fn new(
        member: CommitteeMember,
        share: RunnerShare,
        config: Config,
        chain: ChainSpec,
        options: RunnerOptions,
    ) -> Self {
        let msg_id =
            MessageId::for_validator(member.domain, RunnerRole::Aggregator, &share.validator_pk);
        let controller = Controller::new(msg_id.0.to_vec(), member.clone(), config);
        AggregatorRunner {
            base: BaseRunner::new(RunnerRole::Aggregator, Some(controller)),
            quorum: quorum(member.committee.len()),
            share,
            msg_id,
            options,
            chain,
            duty: None,
            domains: None,
            current_epoch: 0,
            pre_root: None,
            post_root: None,
            in_flight: None,
            loopback: VecDeque::new(),
            duplicates: None,
        }
    }

    /// Resolves an operator's second partial for the same root as ssv-spec does.
    pub fn with_duplicate_check(
        mut self,
        verifier: std::sync::Arc<dyn PartialSigVerifier + Send + Sync>,
    ) -> Self {
        self.duplicates = Some(verifier);
        self
    }

    /// The current wall-clock epoch, for the value check (a duty more than one epoch ahead
    /// of it is refused); the caller keeps it current.
    pub fn set_current_epoch(&mut self, epoch: Epoch) {
        self.current_epoch = epoch;
    }

    /// The role-neutral core.
    pub fn base(&self) -> &BaseRunner {
        &self.base
    }

    /// The core, to restore a runner's state (the runner suite's vectors).
    pub fn base_mut(&mut self) -> &mut BaseRunner {
        &mut self.base
    }

    /// The runner's message ID.
    pub fn message_id(&self) -> &MessageId {
        &self.msg_id
    }

    fn value_check(&self) -> DutyValueCheck<'static> {
        DutyValueCheck {
            role: BeaconRole::Aggregator,
            validator_pk: self.share.validator_pk,
            validator_index: self.share.validator_index,
            chain: self.chain,
            current_epoch: self.current_epoch,
            blocks: None,
        }
    }

    /// Sets the duty a restored state belongs to (the runner suite's vectors): the duty, its
    /// domains and, when decided, the decided value.
    pub fn restore_duty(
        &mut self,
        duty: ValidatorDuty,
        domains: AggregatorDomains,
        current_epoch: Epoch,
    ) -> Result<(), Error> {
        self.pre_root = Some(compute_signing_root(
            duty.slot.tree_hash_root().0,
            domains.selection_proof,
        ));
        self.post_root = match self
            .base
            .state
            .as_ref()
            .and_then(|s| s.decided_value.as_ref())
        {
            Some(v) => Some(compute_signing_root(
                ValidatorConsensusData::from_ssz(v)?
                    .aggregate_and_proof()?
                    .root(),
                domains.aggregate_and_proof,
            )),
            None => None,
        };
        self.duty = Some(duty);
        self.domains = Some(domains);
        self.current_epoch = current_epoch;
        Ok(())
    }

    /// Starts a duty (ssv-spec `baseStartNewDuty`: the duty must be above the controller's
    /// height): asks for our selection-proof partial.
    pub fn start_duty(
        &mut self,
        duty: ValidatorDuty,
        domains: AggregatorDomains,
        current_epoch: Epoch,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.base.should_process_duty(duty.slot)?;
        self.base.setup_for_new_duty(duty.slot, self.quorum);
        let root = compute_signing_root(duty.slot.tree_hash_root().0, domains.selection_proof);
        self.pre_root = Some(root);
        self.post_root = None;
        self.in_flight = None;
        self.current_epoch = current_epoch;
        self.domains = Some(domains);
        let slot = duty.slot;
        self.duty = Some(duty);
        out.push(ValidatorAction::Sign {
            slot,
            validator_index: self.share.validator_index,
            signing_root: root,
        });
        Ok(())
    }

    /// Our partial for the last [`ValidatorAction::Sign`] (selection proof before the
    /// decision, the aggregate after): broadcast, and with loopback collected.
    pub fn signed(
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
            (_, _, Some(pre)) => (PartialSigMsgType::SelectionProofPartialSig, pre),
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

    /// Processes a message of this runner whose outer structure and operator signatures the
    /// caller has checked.
    pub fn process_message(
        &mut self,
        env: Env<'_>,
        msg: SignedSsvMessage,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.route(env, msg, out)
    }

    fn on_decided_value(
        &mut self,
        value: Vec<u8>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let cd = ValidatorConsensusData::from_ssz(&value)?;
        let domain = self
            .domains
            .map(|d| d.aggregate_and_proof)
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no duty"))?;
        let root = compute_signing_root(cd.aggregate_and_proof()?.root(), domain);
        self.post_root = Some(root);
        out.push(ValidatorAction::Sign {
            slot: cd.duty.slot,
            validator_index: self.share.validator_index,
            signing_root: root,
        });
        Ok(())
    }

    fn take_partials(
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

    /// The verdict of a [`ValidatorAction::Reconstruct`] over `signing_root`.
    pub fn reconstructed(
        &mut self,
        signing_root: Root,
        verdict: Result<BlsSignature, ReconstructFailure>,
        out: &mut Vec<ValidatorAction>,
    ) {
        if self.in_flight == Some(signing_root) {
            self.in_flight = None;
        }
        let post = Some(signing_root) == self.post_root;
        let vi = self.share.validator_index;
        let Some(state) = self.base.state.as_mut() else {
            return;
        };
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
            }
            Err(ReconstructFailure::Mismatch) => {}
            Ok(signature) if post => {
                let Some(value) = state.decided_value.as_ref() else {
                    return;
                };
                let Ok(aggregate) =
                    ValidatorConsensusData::from_ssz(value).and_then(|cd| cd.aggregate_and_proof())
                else {
                    return;
                };
                out.push(ValidatorAction::Submit(BeaconObject::AggregateAndProof(
                    aggregate.signed(signature),
                )));
                state.finished = true;
            }
            Ok(selection_proof) => {
                let Some(duty) = &self.duty else {
                    return;
                };
                out.push(ValidatorAction::FetchBeaconData(
                    BeaconDataRequest::AggregateAndProof {
                        slot: duty.slot,
                        committee_index: duty.committee_index,
                        committee_length: duty.committee_length,
                        validator_index: duty.validator_index,
                        selection_proof,
                    },
                ));
            }
        }
    }

    /// The beacon node's aggregate for a [`BeaconDataRequest::AggregateAndProof`]: starts QBFT
    /// on it (ssv-spec `decide`: the value check first).
    pub fn beacon_data(
        &mut self,
        env: Env<'_>,
        version: u64,
        aggregate_and_proof_ssz: Vec<u8>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let duty = self
            .duty
            .clone()
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no duty"))?;
        let slot = duty.slot;
        let value = ValidatorConsensusData::new(duty, version, aggregate_and_proof_ssz)?.to_ssz();
        self.start_consensus(env, slot, value, out)
    }

    /// The round timer of the running instance expired (dropped when the duty is not
    /// running, as the Go node does).
    pub fn on_timeout(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.timeout(env, slot, out)
    }
}

impl ConsensusRole for AggregatorRunner {
    fn parts(&mut self) -> (&mut BaseRunner, Option<&mut VecDeque<SignedSsvMessage>>) {
        (
            &mut self.base,
            self.options.loopback.then_some(&mut self.loopback),
        )
    }

    fn msg_id(&self) -> &MessageId {
        &self.msg_id
    }

    fn value_check(&self) -> DutyValueCheck<'static> {
        AggregatorRunner::value_check(self)
    }

    fn on_decided(&mut self, value: Vec<u8>, out: &mut Vec<ValidatorAction>) -> Result<(), Error> {
        self.on_decided_value(value, out)
    }

    fn process_partials(
        &mut self,
        psm: &PartialSignatureMessages,
        post: bool,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.take_partials(psm, post, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::RsaSignature;
    use crate::qbft::{OperatorSigner, SignatureVerifier, ValueCheck};
    use crate::types::{CommitteeOperator, DomainType, OperatorId};

    struct Signer;
    impl OperatorSigner for Signer {
        fn operator_id(&self) -> OperatorId {
            1
        }
        fn sign_ssv_message(&self, _: &[u8]) -> Result<RsaSignature, Error> {
            Ok([1; 256])
        }
    }
    struct Any;
    impl SignatureVerifier for Any {
        fn verify(&self, _: &CommitteeOperator, _: &[u8], _: &RsaSignature) -> bool {
            true
        }
    }
    impl ValueCheck for Any {
        fn check_value(&self, _: &[u8]) -> Result<(), Error> {
            Ok(())
        }
    }

    fn runner() -> AggregatorRunner {
        let ids: Vec<OperatorId> = vec![1, 2, 3, 4];
        let member = CommitteeMember {
            operator_id: 1,
            committee_id: crate::committee::CommitteeId::from_operators(&ids),
            rsa_public_key_pem: Vec::new(),
            faulty_nodes: 1,
            committee: ids
                .iter()
                .map(|id| CommitteeOperator {
                    operator_id: *id,
                    rsa_public_key_pem: Vec::new(),
                })
                .collect(),
            domain: DomainType([0, 0, 3, 1]),
        };
        let share = RunnerShare {
            validator_index: 9,
            validator_pk: [9; 48],
            committee: ids.iter().map(|id| (*id, [*id as u8; 48])).collect(),
        };
        AggregatorRunner::new(
            member,
            share,
            Config::default(),
            ChainSpec::MAINNET,
            RunnerOptions::NODE,
        )
    }

    fn duty() -> ValidatorDuty {
        ValidatorDuty {
            role: BeaconRole::Aggregator.to_u64(),
            pubkey: [9; 48],
            slot: 64,
            validator_index: 9,
            committee_index: 3,
            committee_length: 128,
            committees_at_slot: 36,
            validator_committee_index: 11,
            validator_sync_committee_indices: Vec::new().try_into().expect("empty"),
        }
    }

    /// A round timeout changes round while consensus runs, and is dropped once the duty has
    /// finished (the Go node's `HasRunningDuty`) and before any duty.
    #[test]
    fn timeouts_change_rounds_only_while_the_duty_runs() {
        let env = Env {
            signer: &Signer,
            verifier: &Any,
            value_check: &Any,
        };
        let mut r = runner();
        let mut out = Vec::new();
        r.on_timeout(env, 64, &mut out).expect("no duty");
        assert!(out.is_empty(), "a timeout without a duty does nothing");
        let domains = AggregatorDomains {
            selection_proof: [5; 32],
            aggregate_and_proof: [6; 32],
        };
        r.start_duty(duty(), domains, 2, &mut out).expect("start");
        let Some(ValidatorAction::Sign { signing_root, .. }) = out.pop() else {
            panic!("a selection-proof signature request");
        };
        // The selection proof reconstructed (the caller's part), the aggregate fetched.
        r.reconstructed(signing_root, Ok([1; 96]), &mut out);
        assert!(matches!(
            out.pop(),
            Some(ValidatorAction::FetchBeaconData(
                BeaconDataRequest::AggregateAndProof { .. }
            ))
        ));
        let aggregate = crate::beacon::phase0::AggregateAndProof {
            aggregator_index: 9,
            aggregate: crate::beacon::phase0::Attestation {
                aggregation_bits: ssz_types::BitList::with_capacity(128).expect("bits"),
                data: crate::beacon_vote::BeaconVote::default().attestation_data(64),
                signature: [0; 96],
            },
            selection_proof: [1; 96],
        };
        r.beacon_data(env, 1, ssz::Encode::as_ssz_bytes(&aggregate), &mut out)
            .expect("consensus starts");
        assert_eq!(r.base().phase(), Phase::Consensus);
        out.clear();
        r.on_timeout(env, 64, &mut out).expect("timeout");
        assert!(
            out.iter()
                .any(|a| matches!(a, ValidatorAction::Broadcast(_))),
            "a running instance sends a round change"
        );
        if let Some(state) = r.base_mut().state.as_mut() {
            state.finished = true;
        }
        out.clear();
        r.on_timeout(env, 64, &mut out).expect("timeout");
        assert!(out.is_empty(), "a finished duty's timeout is dropped");
    }
}
