//! The sync-committee contribution role (ssv-spec `SyncCommitteeAggregatorRunner`) on the
//! runner core:
//!
//! ```text
//! start_duty ─► Sign × n (selection proof of each subcommittee the validator is in)
//!   pre-consensus partials, quorum ─► Reconstruct × n
//!   all verified ─► FetchBeaconData(contributions for the proofs that make it an aggregator)
//!   beacon_data(version, contributions) ─► QBFT on ValidatorConsensusData   (none: finished)
//!   decided ─► Sign × m (each ContributionAndProof)
//!   post-consensus partials, quorum ─► Reconstruct × m ─► Submit × m (SignedContributionAndProof)
//! ```
//!
//! Several roots a phase: every message carries one partial per root, and the phase moves on
//! once every root of the batch that reached its quorum is reconstructed.

use std::collections::BTreeMap;

use tree_hash::TreeHash;

use super::base::{BaseRunner, Phase, accept_partials, own_partials};
use super::committee::{ReconstructFailure, RunnerOptions};
use super::consensus_role::ConsensusRole;
use super::signing_only::{
    BeaconDataRequest, BeaconObject, PartialSigVerifier, RunnerShare, ValidatorAction,
};
use super::value_check::DutyValueCheck;
use crate::beacon::altair::{
    ContributionAndProof, SignedContributionAndProof, SyncAggregatorSelectionData,
};
use crate::beacon::consensus_data::{ValidatorConsensusData, ValidatorDuty};
use crate::chain::ChainSpec;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{MessageId, RunnerRole, SignedSsvMessage};
use crate::partial_sig::{BlsSignature, PartialSigMsgType, PartialSignatureMessages};
use crate::qbft::{Config, Controller, Env};
use crate::signing::{Domain, compute_signing_root};
use crate::types::{BeaconRole, CommitteeMember, Epoch, Root, Slot, quorum};

/// The consensus specs' `is_sync_committee_aggregator`: `bytes_to_uint64(hash(proof)[0:8])
/// % max(1, SYNC_COMMITTEE_SIZE / SYNC_COMMITTEE_SUBNET_COUNT /
/// TARGET_AGGREGATORS_PER_SYNC_SUBCOMMITTEE) == 0` (mainnet: one in eight).
pub fn is_sync_committee_aggregator(proof: &BlsSignature) -> bool {
    use sha2::Digest as _;
    const MODULO: u64 = crate::beacon::SYNC_SUBCOMMITTEE_SIZE as u64 / 16;
    let h = sha2::Sha256::digest(proof);
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[..8]);
    u64::from_le_bytes(first) % MODULO.max(1) == 0
}

/// The signing domains of a contribution duty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContributionDomains {
    /// `DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF`.
    pub selection_proof: Domain,
    /// `DOMAIN_CONTRIBUTION_AND_PROOF`.
    pub contribution_and_proof: Domain,
}

/// A reconstruction batch: the roots that reached their quorum together, and the verdicts so
/// far.
#[derive(Debug, Default)]
struct Batch {
    post: bool,
    roots: Vec<Root>,
    verdicts: BTreeMap<Root, Result<BlsSignature, ()>>,
}

/// The sync-committee contribution runner of one validator. See the module docs.
pub struct SyncCommitteeContributionRunner {
    base: BaseRunner,
    share: RunnerShare,
    msg_id: MessageId,
    options: RunnerOptions,
    quorum: usize,
    chain: ChainSpec,
    duty: Option<ValidatorDuty>,
    subnets: Vec<u64>,
    domains: Option<ContributionDomains>,
    current_epoch: Epoch,
    pre_roots: Vec<Root>,
    post_roots: Vec<Root>,
    /// Our signatures of the roots being signed, by root, until all are there.
    signing: BTreeMap<Root, Option<BlsSignature>>,
    batch: Option<Batch>,
    /// Verified validator signatures of the current phase's roots, kept across batches (a
    /// batch that names a culprit leaves its good roots here while the bad ones wait for
    /// another operator's partial).
    verified: BTreeMap<Root, BlsSignature>,
    loopback: std::collections::VecDeque<SignedSsvMessage>,
    duplicates: Option<std::sync::Arc<dyn PartialSigVerifier + Send + Sync>>,
}

impl std::fmt::Debug for SyncCommitteeContributionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncCommitteeContributionRunner")
            .field("validator", &self.share.validator_index)
            .field("phase", &self.base.phase())
            .finish_non_exhaustive()
    }
}

impl SyncCommitteeContributionRunner {
    /// A contribution runner for the validator of `share`, run by `member`'s operator.
    pub fn new(
        member: CommitteeMember,
        share: RunnerShare,
        config: Config,
        chain: ChainSpec,
        options: RunnerOptions,
    ) -> Self {
        let msg_id = MessageId::for_validator(
            member.domain,
            RunnerRole::SyncCommitteeContribution,
            &share.validator_pk,
        );
        let controller = Controller::new(msg_id.0.to_vec(), member.clone(), config);
        SyncCommitteeContributionRunner {
            base: BaseRunner::new(RunnerRole::SyncCommitteeContribution, Some(controller)),
            quorum: quorum(member.committee.len()),
            share,
            msg_id,
            options,
            chain,
            duty: None,
            subnets: Vec::new(),
            domains: None,
            current_epoch: 0,
            pre_roots: Vec::new(),
            post_roots: Vec::new(),
            signing: BTreeMap::new(),
            batch: None,
            verified: BTreeMap::new(),
            loopback: std::collections::VecDeque::new(),
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

    /// The current wall-clock epoch, for the value check.
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

    fn value_check(&self) -> DutyValueCheck {
        DutyValueCheck {
            role: BeaconRole::SyncCommitteeContribution,
            validator_pk: self.share.validator_pk,
            validator_index: self.share.validator_index,
            chain: self.chain,
            current_epoch: self.current_epoch,
            blocks: None,
        }
    }

    fn selection_roots(duty: &ValidatorDuty, subnets: &[u64], domain: Domain) -> Vec<Root> {
        subnets
            .iter()
            .map(|subnet| {
                compute_signing_root(
                    SyncAggregatorSelectionData {
                        slot: duty.slot,
                        subcommittee_index: *subnet,
                    }
                    .tree_hash_root()
                    .0,
                    domain,
                )
            })
            .collect()
    }

    /// The contribution-and-proof roots of a decided value.
    fn contribution_roots(&self, value: &[u8]) -> Result<Vec<(Root, ContributionAndProof)>, Error> {
        let domain = self
            .domains
            .map(|d| d.contribution_and_proof)
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no duty"))?;
        let cd = ValidatorConsensusData::from_ssz(value)?;
        Ok(cd
            .sync_committee_contributions()?
            .iter()
            .map(|c| {
                let cp = ContributionAndProof {
                    aggregator_index: self.share.validator_index,
                    contribution: c.contribution.clone(),
                    selection_proof: c.selection_proof_sig,
                };
                (compute_signing_root(cp.tree_hash_root().0, domain), cp)
            })
            .collect())
    }

    /// Sets the duty a restored state belongs to (the runner suite's vectors).
    pub fn restore_duty(
        &mut self,
        duty: ValidatorDuty,
        subnets: Vec<u64>,
        domains: ContributionDomains,
    ) -> Result<(), Error> {
        self.pre_roots = Self::selection_roots(&duty, &subnets, domains.selection_proof);
        self.domains = Some(domains);
        self.post_roots = match self
            .base
            .state
            .as_ref()
            .and_then(|s| s.decided_value.clone())
        {
            Some(v) => self
                .contribution_roots(&v)?
                .into_iter()
                .map(|(r, _)| r)
                .collect(),
            None => Vec::new(),
        };
        self.duty = Some(duty);
        self.subnets = subnets;
        Ok(())
    }

    /// Starts a duty: asks for our selection proof of each subcommittee (`subnets`, one per
    /// sync-committee index of the duty, as the beacon node maps them).
    pub fn start_duty(
        &mut self,
        duty: ValidatorDuty,
        subnets: Vec<u64>,
        domains: ContributionDomains,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.base.should_process_duty(duty.slot)?;
        self.base.setup_for_new_duty(duty.slot, self.quorum);
        self.pre_roots = Self::selection_roots(&duty, &subnets, domains.selection_proof);
        self.post_roots.clear();
        self.batch = None;
        self.verified.clear();
        self.domains = Some(domains);
        self.subnets = subnets;
        let slot = duty.slot;
        self.duty = Some(duty);
        self.request_signatures(slot, self.pre_roots.clone(), out);
        Ok(())
    }

    fn request_signatures(&mut self, slot: Slot, roots: Vec<Root>, out: &mut Vec<ValidatorAction>) {
        self.signing = roots.iter().map(|r| (*r, None)).collect();
        for signing_root in roots {
            out.push(ValidatorAction::Sign {
                slot,
                validator_index: self.share.validator_index,
                signing_root,
            });
        }
    }

    /// Our signature of one root of a [`ValidatorAction::Sign`]; once every root of the phase
    /// is signed, our partials are broadcast (and with loopback collected).
    pub fn signed(
        &mut self,
        env: Env<'_>,
        signing_root: Root,
        signature: BlsSignature,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let Some(slot) = self.base.state.as_ref().map(|s| s.slot) else {
            return Err(Error::spec(ErrorCode::NoRunningDuty, "no running duty"));
        };
        match self.signing.get_mut(&signing_root) {
            Some(entry) => *entry = Some(signature),
            None => {
                return Err(Error::spec(
                    ErrorCode::WrongSigningRoot,
                    "not asked to sign",
                ));
            }
        }
        if self.signing.values().any(Option::is_none) {
            return Ok(());
        }
        let post = matches!(self.base.phase(), Phase::PostConsensus | Phase::Finished);
        let (kind, order) = if post {
            (PartialSigMsgType::PostConsensus, self.post_roots.clone())
        } else {
            (
                PartialSigMsgType::ContributionProofs,
                self.pre_roots.clone(),
            )
        };
        let signed: Vec<(Root, BlsSignature)> = order
            .iter()
            .filter_map(|r| self.signing.get(r).copied().flatten().map(|s| (*r, s)))
            .collect();
        self.signing.clear();
        let (psm, msg) = own_partials(
            env,
            self.msg_id,
            kind,
            slot,
            self.share.validator_index,
            signed,
        )?;
        out.push(ValidatorAction::Broadcast(msg));
        if self.options.loopback {
            self.take_partials(&psm, post, out)?;
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
        let roots: Vec<Root> = self
            .contribution_roots(&value)?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        let slot = ValidatorConsensusData::from_ssz(&value)?.duty.slot;
        self.post_roots = roots.clone();
        self.request_signatures(slot, roots, out);
        Ok(())
    }

    fn take_partials(
        &mut self,
        psm: &PartialSignatureMessages,
        post: bool,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let expected = if post {
            self.post_roots.clone()
        } else {
            self.pre_roots.clone()
        };
        let reached = accept_partials(
            &mut self.base,
            &self.share,
            psm,
            post,
            &expected,
            self.duplicates.as_deref(),
        )?;
        self.request_reconstruct(post, reached, out);
        Ok(())
    }

    fn request_reconstruct(
        &mut self,
        post: bool,
        roots: Vec<Root>,
        out: &mut Vec<ValidatorAction>,
    ) {
        if roots.is_empty() || self.batch.is_some() {
            return;
        }
        let Some(state) = self.base.state.as_ref() else {
            return;
        };
        let collector = if post {
            &state.post_consensus
        } else {
            &state.pre_consensus
        };
        for root in &roots {
            out.push(ValidatorAction::Reconstruct {
                slot: state.slot,
                validator_index: self.share.validator_index,
                signing_root: *root,
                partials: collector
                    .quorum_partials(self.share.validator_index, root)
                    .unwrap_or_default(),
            });
        }
        self.batch = Some(Batch {
            post,
            roots,
            verdicts: BTreeMap::new(),
        });
    }

    /// The verdict of one [`ValidatorAction::Reconstruct`]. When the batch is complete and
    /// every root verified, the duty moves on (the contributions to fetch, or the submissions);
    /// invalid partials are dropped and a later quorum retries.
    pub fn reconstructed(
        &mut self,
        signing_root: Root,
        verdict: Result<BlsSignature, ReconstructFailure>,
        out: &mut Vec<ValidatorAction>,
    ) {
        let vi = self.share.validator_index;
        let Some(batch) = self.batch.as_mut() else {
            return;
        };
        if !batch.roots.contains(&signing_root) {
            return;
        }
        let post = batch.post;
        let verdict = match verdict {
            Ok(sig) => Ok(sig),
            Err(failure) => {
                if let (ReconstructFailure::InvalidPartials(ops), Some(state)) =
                    (failure, self.base.state.as_mut())
                {
                    let collector = if post {
                        &mut state.post_consensus
                    } else {
                        &mut state.pre_consensus
                    };
                    for op in ops {
                        collector.remove(vi, op, &signing_root);
                    }
                }
                Err(())
            }
        };
        batch.verdicts.insert(signing_root, verdict);
        if batch.verdicts.len() < batch.roots.len() {
            return;
        }
        let Some(batch) = self.batch.take() else {
            return;
        };
        let mut failed = Vec::new();
        for root in &batch.roots {
            match batch.verdicts.get(root) {
                Some(Ok(sig)) => {
                    self.verified.insert(*root, *sig);
                }
                _ => failed.push(*root),
            }
        }
        if !failed.is_empty() {
            // Roots still at quorum without the culprits' partials (some arrived while the
            // batch was in flight) are reconstructed again; the others wait for a partial.
            let again: Vec<Root> = match self.base.state.as_ref() {
                Some(state) => {
                    let collector = if post {
                        &state.post_consensus
                    } else {
                        &state.pre_consensus
                    };
                    failed
                        .into_iter()
                        .filter(|r| collector.quorum_partials(vi, r).is_some())
                        .collect()
                }
                None => Vec::new(),
            };
            self.request_reconstruct(post, again, out);
            return;
        }
        let expected = if post {
            &self.post_roots
        } else {
            &self.pre_roots
        };
        let Some(signatures) = expected
            .iter()
            .map(|r| self.verified.get(r).map(|sig| (*r, *sig)))
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        if post {
            self.submit(&signatures, out);
        } else {
            self.fetch_contributions(&signatures, out);
        }
    }

    /// The selection proofs of the batch, in its order, each with the subcommittee of the
    /// sync-committee index at the same position (ssv-spec pairs them so).
    fn fetch_contributions(
        &mut self,
        proofs: &[(Root, BlsSignature)],
        out: &mut Vec<ValidatorAction>,
    ) {
        let Some(duty) = &self.duty else {
            return;
        };
        let candidates = proofs
            .iter()
            .enumerate()
            .filter_map(|(i, (_, sig))| self.subnets.get(i).map(|subnet| (*sig, *subnet)))
            .collect();
        out.push(ValidatorAction::FetchBeaconData(
            BeaconDataRequest::SyncCommitteeContributions {
                slot: duty.slot,
                candidates,
            },
        ));
    }

    fn submit(&mut self, signatures: &[(Root, BlsSignature)], out: &mut Vec<ValidatorAction>) {
        let Some(value) = self
            .base
            .state
            .as_ref()
            .and_then(|s| s.decided_value.clone())
        else {
            return;
        };
        let Ok(contributions) = self.contribution_roots(&value) else {
            return;
        };
        for (root, signature) in signatures {
            if let Some((_, message)) = contributions.iter().find(|(r, _)| r == root) {
                out.push(ValidatorAction::Submit(BeaconObject::ContributionAndProof(
                    Box::new(SignedContributionAndProof {
                        message: message.clone(),
                        signature: *signature,
                    }),
                )));
            }
        }
        if let Some(state) = self.base.state.as_mut() {
            state.finished = true;
        }
    }

    /// The beacon node's answer to [`BeaconDataRequest::SyncCommitteeContributions`]:
    /// `None` when no proof made the validator an aggregator (the duty is done), else the
    /// contributions (SSZ) to start QBFT on.
    pub fn beacon_data(
        &mut self,
        env: Env<'_>,
        contributions: Option<(u64, Vec<u8>)>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let Some((version, data)) = contributions else {
            if let Some(state) = self.base.state.as_mut() {
                state.finished = true;
            }
            return Ok(());
        };
        let duty = self
            .duty
            .clone()
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no duty"))?;
        let slot = duty.slot;
        let value = ValidatorConsensusData::new(duty, version, data)?.to_ssz();
        self.start_consensus(env, slot, value, out)
    }

    /// The round timer of the running instance expired (dropped when the duty is not
    /// running).
    pub fn on_timeout(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        self.timeout(env, slot, out)
    }
}

impl ConsensusRole for SyncCommitteeContributionRunner {
    fn parts(
        &mut self,
    ) -> (
        &mut BaseRunner,
        Option<&mut std::collections::VecDeque<SignedSsvMessage>>,
    ) {
        (
            &mut self.base,
            self.options.loopback.then_some(&mut self.loopback),
        )
    }

    fn msg_id(&self) -> &MessageId {
        &self.msg_id
    }

    fn value_check(&self) -> DutyValueCheck {
        SyncCommitteeContributionRunner::value_check(self)
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

    /// Hand-computed: sha256 of 96 bytes 0x02 starts with 6463443705522100576
    /// (little-endian), a multiple of 8; of 0x00 and 0x01 bytes, remainders 6 and 3.
    #[test]
    fn sync_committee_aggregators_are_one_in_eight() {
        assert!(is_sync_committee_aggregator(&[2; 96]));
        assert!(!is_sync_committee_aggregator(&[0; 96]));
        assert!(!is_sync_committee_aggregator(&[1; 96]));
    }
}
