//! The proposer role (ssv-spec `ProposerRunner`) on the runner core:
//!
//! ```text
//! start_duty ─► Sign(RANDAO reveal: the duty's epoch under DOMAIN_RANDAO)
//!   pre-consensus (RANDAO) partials, quorum ─► Reconstruct ─► FetchBeaconData(Block, reveal)
//!   beacon_data(version, block) ─► QBFT on ValidatorConsensusData
//!   decided ─► Sign(block root under DOMAIN_BEACON_PROPOSER)
//!   post-consensus partials, quorum ─► Reconstruct ─► Submit(signed block)
//! ```
//!
//! Capella, Deneb, Electra and Fulu blocks, full (with blobs and KZG proofs from Deneb on) or
//! blinded (the payload left to the builder): the shape follows the data version of the value
//! and which of the two decodes ([`Proposal::from_ssz`]). The value check is ssv-spec's
//! `ProposerValueCheckF`, with the block's slot put to slashing protection
//! ([`BlockSlashing`]): no operator helps decide a block its own records say may not be
//! signed. Sans-IO: the caller signs, reconstructs, verifies, fetches and submits; QBFT runs
//! inside.
//!
//! With [`RunnerOptions::hardened`] (the node), the beacon node's block is checked before it is
//! proposed: it must decode for the version given, be for the duty's slot and name this
//! validator as its proposer. A lying beacon node then costs the block, never a signature on
//! something else.

use std::sync::Arc;

use tree_hash::TreeHash;

use super::committee::{ReconstructFailure, RunnerOptions};
use super::consensus_role::ConsensusRole;
use super::one_root::{OneRoot, Reconstructed};
use super::signing_only::{BeaconDataRequest, BeaconObject, RunnerShare, ValidatorAction};
use super::value_check::{BlockSlashing, DutyValueCheck};
use crate::beacon::consensus_data::{Proposal, ValidatorConsensusData, ValidatorDuty};
use crate::chain::ChainSpec;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::RunnerRole;
use crate::partial_sig::{BlsSignature, PartialSigMsgType};
use crate::qbft::{Config, Env};
use crate::signing::{Domain, compute_signing_root};
use crate::types::{BeaconRole, CommitteeMember, Epoch, Root, Slot};

/// The signing domains of a proposer duty (from the fork schedule at the duty's epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposerDomains {
    /// `DOMAIN_RANDAO`.
    pub randao: Domain,
    /// `DOMAIN_BEACON_PROPOSER`.
    pub proposer: Domain,
}

/// The proposer runner of one validator. See the module docs.
pub struct ProposerRunner {
    core: OneRoot,
    domains: Option<ProposerDomains>,
    blocks: Arc<dyn BlockSlashing + Send + Sync>,
}

impl std::fmt::Debug for ProposerRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProposerRunner")
            .field("validator", &self.core.share.validator_index)
            .field("phase", &self.core.base.phase())
            .finish_non_exhaustive()
    }
}

impl ProposerRunner {
    /// A proposer runner for the validator of `share`, run by `member`'s operator; `blocks`
    /// answers the value check's slashing question.
    pub fn new(
        member: CommitteeMember,
        share: RunnerShare,
        config: Config,
        chain: ChainSpec,
        options: RunnerOptions,
        blocks: Arc<dyn BlockSlashing + Send + Sync>,
    ) -> Self {
        ProposerRunner {
            core: OneRoot::new(
                RunnerRole::Proposer,
                PartialSigMsgType::RandaoPartialSig,
                member,
                share,
                config,
                chain,
                options,
            ),
            domains: None,
            blocks,
        }
    }

    fn randao_root(&self, slot: Slot, domains: ProposerDomains) -> Root {
        let epoch = self.core.chain.epoch_of(slot);
        compute_signing_root(epoch.tree_hash_root().0, domains.randao)
    }

    /// When `signing_root` is the decided block's signing root: the block's slot, for
    /// slashing protection to check and record before the caller signs it (the RANDAO reveal,
    /// the other thing this runner asks to sign, is not slashable).
    pub fn block_to_sign(&self, signing_root: &Root) -> Option<Slot> {
        if self.core.post_root.as_ref() != Some(signing_root) {
            return None;
        }
        let cd = self.core.decided_data().ok().flatten()?;
        cd.proposal().ok().map(|p| p.slot())
    }

    /// The validator.
    pub fn share(&self) -> &RunnerShare {
        &self.core.share
    }

    /// Sets the duty a restored state belongs to (the runner suite's vectors): the duty, its
    /// domains and, when decided, the decided block.
    pub fn restore_duty(
        &mut self,
        duty: ValidatorDuty,
        domains: ProposerDomains,
        current_epoch: Epoch,
    ) -> Result<(), Error> {
        let pre = self.randao_root(duty.slot, domains);
        let post = match self.core.decided_data()? {
            Some(cd) => Some(compute_signing_root(
                cd.proposal()?.block_root(),
                domains.proposer,
            )),
            None => None,
        };
        self.core.restore(duty, pre, post, current_epoch);
        self.domains = Some(domains);
        Ok(())
    }

    /// Starts a duty (ssv-spec `baseStartNewDuty`: the duty must be above the controller's
    /// height): asks for our RANDAO-reveal partial.
    pub fn start_duty(
        &mut self,
        duty: ValidatorDuty,
        domains: ProposerDomains,
        current_epoch: Epoch,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let root = self.randao_root(duty.slot, domains);
        self.core.start(duty, root, current_epoch, out)?;
        self.domains = Some(domains);
        Ok(())
    }

    /// The verdict of a [`ValidatorAction::Reconstruct`] over `signing_root`.
    pub fn reconstructed(
        &mut self,
        signing_root: Root,
        verdict: Result<BlsSignature, ReconstructFailure>,
        out: &mut Vec<ValidatorAction>,
    ) {
        match self.core.reconstructed(signing_root, verdict, out) {
            Some(Reconstructed::Post(signature, value)) => {
                if let Ok(proposal) =
                    ValidatorConsensusData::from_ssz(&value).and_then(|cd| cd.proposal())
                {
                    out.push(ValidatorAction::Submit(BeaconObject::Proposal(Box::new(
                        proposal.signed(signature),
                    ))));
                }
            }
            Some(Reconstructed::Pre(randao_reveal)) => {
                let Some(duty) = &self.core.duty else {
                    return;
                };
                out.push(ValidatorAction::FetchBeaconData(BeaconDataRequest::Block {
                    slot: duty.slot,
                    validator_index: duty.validator_index,
                    randao_reveal,
                }));
            }
            None => {}
        }
    }

    /// The beacon node's block for a [`BeaconDataRequest::Block`] (`DataSSZ` of `version`: a
    /// block, block contents, or a blinded block): starts QBFT on it (ssv-spec `decide`: the
    /// value check first).
    pub fn beacon_data(
        &mut self,
        env: Env<'_>,
        version: u64,
        block_ssz: Vec<u8>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        if self.core.options.hardened {
            self.check_block(version, &block_ssz)?;
        }
        let (slot, value) = self.core.consensus_value(version, block_ssz)?;
        self.start_consensus(env, slot, value, out)
    }

    /// The node's checks of its beacon node's block (see the module docs).
    fn check_block(&self, version: u64, block_ssz: &[u8]) -> Result<(), Error> {
        let duty = self
            .core
            .duty
            .as_ref()
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no duty"))?;
        let block = Proposal::from_ssz(version, block_ssz)?;
        if block.slot() != duty.slot {
            return Err(Error::Decode(format!(
                "beacon node block is for slot {}, the duty for slot {}",
                block.slot(),
                duty.slot
            )));
        }
        if block.proposer_index() != duty.validator_index {
            return Err(Error::Decode(format!(
                "beacon node block names proposer {}, the duty validator {}",
                block.proposer_index(),
                duty.validator_index
            )));
        }
        Ok(())
    }
}

impl ProposerRunner {
    /// The role's value check (ssv-spec's).
    fn role_value_check(&self) -> DutyValueCheck {
        self.core
            .value_check(BeaconRole::Proposer, Some(self.blocks.clone()))
    }

    /// The decided value passed the value check: sign it.
    fn role_on_decided(
        &mut self,
        value: Vec<u8>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let cd = ValidatorConsensusData::from_ssz(&value)?;
        let domain = self
            .domains
            .map(|d| d.proposer)
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no duty"))?;
        let root = compute_signing_root(cd.proposal()?.block_root(), domain);
        self.core.sign_post(cd.duty.slot, root, out);
        Ok(())
    }
}

super::one_root::one_root_role!(ProposerRunner);
