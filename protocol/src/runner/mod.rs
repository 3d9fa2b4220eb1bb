//! Duty runners: sans-IO state machines that take a duty from its start to the signatures
//! that go to the beacon node.
//!
//! One file a role. Today: the committee role ([`committee`]: attester and sync-committee
//! messages of every validator of a committee, one QBFT instance a slot). Shared by every
//! role: [`collector`] (partial signatures, quorum per validator and root) and [`key`]
//! (which runner a message belongs to, and the spec's rule on a runner's shares). The other
//! roles (proposer, aggregator, sync-committee contribution, validator registration,
//! voluntary exit) join this folder.

pub mod aggregator;
pub mod base;
pub mod collector;
pub mod committee;
mod consensus_role;
pub mod key;
mod one_root;
pub mod proposer;
pub mod signing_only;
pub mod sync_committee_contribution;
pub mod validator;
pub mod validator_registration;
pub mod value_check;
pub mod voluntary_exit;

pub use aggregator::{AggregatorDomains, AggregatorRunner, is_aggregator};
pub use base::{
    BaseRunner, Phase, RunnerState, check_validator_partials, collect_resolving_duplicates,
};
pub use collector::{Added, PartialSigCollector};
pub use committee::*;
pub use key::{RunnerKey, check_share_count};
pub use proposer::{ProposerDomains, ProposerRunner};
pub use signing_only::{
    BeaconDataRequest, BeaconObject, PartialSigVerifier, RunnerShare, SigningObject,
    SigningOnlyRole, SigningOnlyRunner, ValidatorAction,
};
pub use sync_committee_contribution::{
    ContributionDomains, SyncCommitteeContributionRunner, is_sync_committee_aggregator,
};
pub use validator::{ValidatorRunner, ValidatorStart};
pub use value_check::{BlockSlashing, DutyValueCheck};
