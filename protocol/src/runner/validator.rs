//! One validator's runner of any validator role behind one interface: what the node's shards
//! hold per (validator, role), and what harnesses that play a whole committee in one process
//! (the capacity benchmark, the role benches) drive. The roles share their signatures; this
//! enum dispatches, and [`ValidatorStart`] says which duty a runner starts.

use std::sync::Arc;

use super::{
    AggregatorDomains, AggregatorRunner, BaseRunner, BlockSlashing, ContributionDomains,
    ProposerDomains, ProposerRunner, ReconstructFailure, RunnerOptions, RunnerShare, SigningObject,
    SigningOnlyRole, SigningOnlyRunner, SyncCommitteeContributionRunner, ValidatorAction,
};
use crate::Error;
use crate::beacon::consensus_data::ValidatorDuty;
use crate::chain::ChainSpec;
use crate::message::{RunnerRole, SignedSsvMessage};
use crate::partial_sig::BlsSignature;
use crate::qbft::{Config, Env};
use crate::signing::Domain;
use crate::types::{BlsPublicKey, CommitteeMember, Epoch, Root, Slot};

/// A validator duty for a runner to start.
#[derive(Debug, Clone)]
pub enum ValidatorStart {
    /// Propose a block.
    Proposal {
        /// The duty.
        duty: ValidatorDuty,
        /// Its signing domains.
        domains: ProposerDomains,
    },
    /// Aggregate the attestations of the validator's beacon committee, if its selection proof
    /// makes it an aggregator.
    Aggregation {
        /// The duty (the attester duty's committee fields).
        duty: ValidatorDuty,
        /// Its signing domains.
        domains: AggregatorDomains,
    },
    /// Contribute the sync-committee messages of the validator's subcommittees, for those
    /// whose selection proof makes it an aggregator.
    Contribution {
        /// The duty (with the validator's sync-committee indices).
        duty: ValidatorDuty,
        /// The subcommittee of each index, in the same order.
        subnets: Vec<u64>,
        /// Its signing domains.
        domains: ContributionDomains,
    },
    /// Exit the validator (its owner asked for it).
    Exit {
        /// The validator.
        pubkey: BlsPublicKey,
        /// The duty's slot.
        slot: Slot,
        /// The exit to sign.
        object: SigningObject,
        /// The exit domain (Capella's fork version, EIP-7044).
        domain: Domain,
    },
    /// Register the validator with the builder network (fee recipient, gas limit).
    Registration {
        /// The validator.
        pubkey: BlsPublicKey,
        /// The duty's slot.
        slot: Slot,
        /// The registration to sign.
        object: SigningObject,
        /// The builder domain.
        domain: Domain,
    },
}

impl ValidatorStart {
    /// The validator, the duty's slot and the role that runs it.
    pub fn target(&self) -> (BlsPublicKey, Slot, RunnerRole) {
        match self {
            ValidatorStart::Proposal { duty, .. } => (duty.pubkey, duty.slot, RunnerRole::Proposer),
            ValidatorStart::Aggregation { duty, .. } => {
                (duty.pubkey, duty.slot, RunnerRole::Aggregator)
            }
            ValidatorStart::Registration { pubkey, slot, .. } => {
                (*pubkey, *slot, RunnerRole::ValidatorRegistration)
            }
            ValidatorStart::Exit { pubkey, slot, .. } => {
                (*pubkey, *slot, RunnerRole::VoluntaryExit)
            }
            ValidatorStart::Contribution { duty, .. } => (
                duty.pubkey,
                duty.slot,
                RunnerRole::SyncCommitteeContribution,
            ),
        }
    }
}

/// A validator's runner of one role.
pub enum ValidatorRunner {
    /// Block proposals.
    Proposer(Box<ProposerRunner>),
    /// Aggregations.
    Aggregator(Box<AggregatorRunner>),
    /// Validator registration (and voluntary exit): pre-consensus only.
    SigningOnly(Box<SigningOnlyRunner>),
    /// Sync-committee contributions.
    Contribution(Box<SyncCommitteeContributionRunner>),
}

/// Calls the same method on whichever runner with consensus it is (the roles share their
/// signatures); `$other` for the signing-only runner.
macro_rules! each {
    ($runner:expr, $r:ident => $body:expr, $o:ident => $other:expr) => {
        match $runner {
            ValidatorRunner::Proposer($r) => $body,
            ValidatorRunner::Aggregator($r) => $body,
            ValidatorRunner::Contribution($r) => $body,
            ValidatorRunner::SigningOnly($o) => $other,
        }
    };
}

impl ValidatorRunner {
    /// A runner of `role` for one validator (`share`) of the committee `member` belongs to;
    /// `None` for a role that is not a validator role. `blocks` is the proposer's view of
    /// block slashing protection.
    pub fn new(
        role: RunnerRole,
        member: CommitteeMember,
        share: RunnerShare,
        config: Config,
        chain: ChainSpec,
        options: RunnerOptions,
        blocks: Arc<dyn BlockSlashing + Send + Sync>,
    ) -> Option<Self> {
        let signing_only = |role| {
            ValidatorRunner::SigningOnly(Box::new(SigningOnlyRunner::new(
                role,
                member.clone(),
                share.clone(),
                options,
            )))
        };
        Some(match role {
            RunnerRole::Proposer => ValidatorRunner::Proposer(Box::new(ProposerRunner::new(
                member, share, config, chain, options, blocks,
            ))),
            RunnerRole::Aggregator => ValidatorRunner::Aggregator(Box::new(AggregatorRunner::new(
                member, share, config, chain, options,
            ))),
            RunnerRole::SyncCommitteeContribution => ValidatorRunner::Contribution(Box::new(
                SyncCommitteeContributionRunner::new(member, share, config, chain, options),
            )),
            RunnerRole::VoluntaryExit => signing_only(SigningOnlyRole::VoluntaryExit),
            RunnerRole::ValidatorRegistration => {
                signing_only(SigningOnlyRole::ValidatorRegistration)
            }
            _ => return None,
        })
    }

    /// Starts `duty` (`epoch`: the current epoch, for the roles that check it).
    pub fn start(
        &mut self,
        duty: ValidatorStart,
        epoch: Epoch,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        match (self, duty) {
            (ValidatorRunner::Proposer(r), ValidatorStart::Proposal { duty, domains }) => {
                r.start_duty(duty, domains, epoch, out)
            }
            (ValidatorRunner::Aggregator(r), ValidatorStart::Aggregation { duty, domains }) => {
                r.start_duty(duty, domains, epoch, out)
            }
            (
                ValidatorRunner::SigningOnly(r),
                ValidatorStart::Registration {
                    slot,
                    object,
                    domain,
                    ..
                }
                | ValidatorStart::Exit {
                    slot,
                    object,
                    domain,
                    ..
                },
            ) => r.start_duty(slot, object, domain, out),
            (
                ValidatorRunner::Contribution(r),
                ValidatorStart::Contribution {
                    duty,
                    subnets,
                    domains,
                },
            ) => r.start_duty(duty, subnets, domains, out),
            _ => Err(Error::Decode("duty of another role".into())),
        }
    }

    /// The role-neutral core.
    pub fn base(&self) -> &BaseRunner {
        each!(self, r => r.base(), o => o.base())
    }

    /// The current epoch (the roles with consensus check duty epochs against it).
    pub fn set_current_epoch(&mut self, epoch: Epoch) {
        each!(self, r => r.set_current_epoch(epoch), _o => ())
    }

    /// A message of the committee for this runner.
    pub fn process_message(
        &mut self,
        env: Env<'_>,
        msg: SignedSsvMessage,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        each!(self, r => r.process_message(env, msg, out), o => o.process_message(&msg, out))
    }

    /// Our partial signature over `root`.
    pub fn signed(
        &mut self,
        env: Env<'_>,
        root: Root,
        signature: BlsSignature,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        match self {
            ValidatorRunner::Proposer(r) => r.signed(env, signature, out),
            ValidatorRunner::Aggregator(r) => r.signed(env, signature, out),
            ValidatorRunner::Contribution(r) => r.signed(env, root, signature, out),
            ValidatorRunner::SigningOnly(o) => o.signed(env, signature, out),
        }
    }

    /// The verdict of a reconstruction over `root`.
    pub fn reconstructed(
        &mut self,
        root: Root,
        verdict: Result<BlsSignature, ReconstructFailure>,
        out: &mut Vec<ValidatorAction>,
    ) {
        each!(self, r => r.reconstructed(root, verdict, out), o => o.reconstructed(verdict, out))
    }

    /// A round timer of `slot` expired.
    pub fn on_timeout(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        each!(self, r => r.on_timeout(env, slot, out), _o => Ok(()))
    }

    /// The beacon node's data (data version and SSZ): a block, an aggregate and proof, or
    /// a contributions list.
    pub fn beacon_data(
        &mut self,
        env: Env<'_>,
        version: u64,
        ssz: Vec<u8>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        match self {
            ValidatorRunner::Proposer(r) => r.beacon_data(env, version, ssz, out),
            ValidatorRunner::Aggregator(r) => r.beacon_data(env, version, ssz, out),
            ValidatorRunner::Contribution(r) => r.beacon_data(env, Some((version, ssz)), out),
            ValidatorRunner::SigningOnly(_) => {
                Err(Error::Decode("no beacon data for this role".into()))
            }
        }
    }

    /// The beacon node's contributions (`None`: the validator aggregates none of its
    /// subcommittees, the duty is done).
    pub fn contributions(
        &mut self,
        env: Env<'_>,
        data: Option<(u64, Vec<u8>)>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        match self {
            ValidatorRunner::Contribution(r) => r.beacon_data(env, data, out),
            _ => Err(Error::Decode("contributions for another role".into())),
        }
    }

    /// The block slot when `root` is a decided block's signing root (slashable).
    pub fn block_to_sign(&self, root: &Root) -> Option<Slot> {
        match self {
            ValidatorRunner::Proposer(r) => r.block_to_sign(root),
            ValidatorRunner::Aggregator(_)
            | ValidatorRunner::Contribution(_)
            | ValidatorRunner::SigningOnly(_) => None,
        }
    }
}
