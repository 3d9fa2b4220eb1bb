//! Beacon API JSON types for the endpoints the node's duties need (ethereum/beacon-APIs),
//! shared by the client and the simulator. Integers are decimal strings and byte fields
//! `0x`-prefixed hex, as the API specifies.

use serde::{Deserialize, Serialize};

pub use ssv_protocol::beacon_vote::{AttestationData, Checkpoint};
pub use ssv_protocol::json as quoted;
use ssv_protocol::json::{hex_bytes, hex_vec, u64_str, u64_vec_str};

/// `{"data": T}`, the envelope of most responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

/// `GET /eth/v1/beacon/genesis`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Unix seconds of slot 0.
    #[serde(with = "u64_str")]
    pub genesis_time: u64,
    /// Root of the genesis validators.
    #[serde(with = "hex_bytes")]
    pub genesis_validators_root: [u8; 32],
    /// Genesis fork version.
    #[serde(with = "hex_bytes")]
    pub genesis_fork_version: [u8; 4],
}

/// `GET /eth/v1/beacon/states/{state_id}/fork`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    /// Previous fork version.
    #[serde(with = "hex_bytes")]
    pub previous_version: [u8; 4],
    /// Current fork version.
    #[serde(with = "hex_bytes")]
    pub current_version: [u8; 4],
    /// Epoch of the current fork.
    #[serde(with = "u64_str")]
    pub epoch: u64,
}

/// `GET /eth/v1/node/syncing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Syncing {
    /// Head slot.
    #[serde(with = "u64_str")]
    pub head_slot: u64,
    /// Slots behind the wall clock.
    #[serde(with = "u64_str")]
    pub sync_distance: u64,
    /// Whether the node is syncing.
    pub is_syncing: bool,
    /// Whether the head is optimistic.
    #[serde(default)]
    pub is_optimistic: bool,
    /// Whether the execution client is offline.
    #[serde(default)]
    pub el_offline: bool,
}

/// One entry of `POST /eth/v1/validator/duties/attester/{epoch}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttesterDuty {
    /// Validator public key.
    #[serde(with = "hex_bytes")]
    pub pubkey: [u8; 48],
    /// Validator index.
    #[serde(with = "u64_str")]
    pub validator_index: u64,
    /// Committee index.
    #[serde(with = "u64_str")]
    pub committee_index: u64,
    /// Committee length.
    #[serde(with = "u64_str")]
    pub committee_length: u64,
    /// Committees at the slot.
    #[serde(with = "u64_str")]
    pub committees_at_slot: u64,
    /// Position of the validator in its committee.
    #[serde(with = "u64_str")]
    pub validator_committee_index: u64,
    /// Slot to attest at.
    #[serde(with = "u64_str")]
    pub slot: u64,
}

/// Response of the attester-duties endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttesterDuties {
    /// Block root the duties depend on.
    #[serde(with = "hex_bytes")]
    pub dependent_root: [u8; 32],
    /// Whether the head is optimistic.
    #[serde(default)]
    pub execution_optimistic: bool,
    /// The duties.
    pub data: Vec<AttesterDuty>,
}

/// One entry of `POST /eth/v1/validator/duties/sync/{epoch}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDuty {
    /// Validator public key.
    #[serde(with = "hex_bytes")]
    pub pubkey: [u8; 48],
    /// Validator index.
    #[serde(with = "u64_str")]
    pub validator_index: u64,
    /// Positions in the sync committee.
    #[serde(with = "u64_vec_str")]
    pub validator_sync_committee_indices: Vec<u64>,
}

/// An Electra `SingleAttestation`, as `POST /eth/v2/beacon/pool/attestations` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SingleAttestation {
    /// Committee index.
    #[serde(with = "u64_str")]
    pub committee_index: u64,
    /// Attesting validator.
    #[serde(with = "u64_str")]
    pub attester_index: u64,
    /// What is attested.
    pub data: AttestationData,
    /// BLS signature.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 96],
}

/// `POST /eth/v1/beacon/pool/sync_committees` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCommitteeMessage {
    /// Slot.
    #[serde(with = "u64_str")]
    pub slot: u64,
    /// Head block root signed.
    #[serde(with = "hex_bytes")]
    pub beacon_block_root: [u8; 32],
    /// Validator index.
    #[serde(with = "u64_str")]
    pub validator_index: u64,
    /// BLS signature.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 96],
}

/// `GET /eth/v1/beacon/blocks/{block_id}/root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRoot {
    /// Root.
    #[serde(with = "hex_bytes")]
    pub root: [u8; 32],
}

/// A `head` event of `GET /eth/v1/events?topics=head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadEvent {
    /// Head slot.
    #[serde(with = "u64_str")]
    pub slot: u64,
    /// Head block root.
    #[serde(with = "hex_bytes")]
    pub block: [u8; 32],
    /// Head state root.
    #[serde(with = "hex_bytes")]
    pub state: [u8; 32],
    /// Whether this head starts an epoch.
    pub epoch_transition: bool,
    /// The block root the head epoch's proposer duties depend on: when it changes (a
    /// reorg), the epoch's proposer duties must be fetched again.
    #[serde(
        default,
        with = "ssv_protocol::json::opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub current_duty_dependent_root: Option<[u8; 32]>,
    /// The block root the head epoch's attester duties depend on: when it changes (a
    /// reorg), the epoch's attester duties must be fetched again.
    #[serde(
        default,
        with = "ssv_protocol::json::opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_duty_dependent_root: Option<[u8; 32]>,
}

/// The part of `GET /eth/v1/config/spec` the node reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Spec {
    /// Seconds per slot (a devnet may run faster: see `SLOT_DURATION_MS`).
    #[serde(with = "u64_str")]
    pub seconds_per_slot: u64,
    /// Slots per epoch.
    #[serde(with = "u64_str")]
    pub slots_per_epoch: u64,
    /// Slot duration in milliseconds (newer clients; the simulator always sets it).
    #[serde(
        default,
        with = "ssv_protocol::json::opt_u64_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub slot_duration_ms: Option<u64>,
    /// Epochs per sync-committee period.
    #[serde(with = "u64_str")]
    pub epochs_per_sync_committee_period: u64,
    /// The Capella fork version: voluntary exits are signed under it (EIP-7044).
    #[serde(
        default,
        with = "ssv_protocol::json::opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub capella_fork_version: Option<[u8; 4]>,
}

/// One validator of `POST /eth/v1/beacon/states/{state_id}/validators`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorEntry {
    /// Index.
    #[serde(with = "u64_str")]
    pub index: u64,
    /// Status (`active_ongoing`, ...).
    pub status: String,
    /// Details.
    pub validator: ValidatorInfo,
}

/// The validator part of a [`ValidatorEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorInfo {
    /// Public key.
    #[serde(with = "hex_bytes")]
    pub pubkey: [u8; 48],
}

/// A Beacon API error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// HTTP status.
    pub code: u16,
    /// What went wrong.
    pub message: String,
}

/// A proposer duty (`GET /eth/v1/validator/duties/proposer/{epoch}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposerDuty {
    /// The proposer's public key.
    #[serde(with = "hex_bytes")]
    pub pubkey: [u8; 48],
    /// Its index.
    #[serde(with = "u64_str")]
    pub validator_index: u64,
    /// The slot it proposes in.
    #[serde(with = "u64_str")]
    pub slot: u64,
}

/// The proposer duties of one epoch, with the root they depend on (a change of it means the
/// duties must be fetched again).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProposerDuties {
    /// Block root the duties were computed from.
    #[serde(with = "hex_bytes")]
    pub dependent_root: [u8; 32],
    /// Whether the beacon node's head is optimistic.
    #[serde(default)]
    pub execution_optimistic: bool,
    /// The epoch's duties (one per slot network-wide; ours are a few of them).
    pub data: Vec<ProposerDuty>,
}

/// A block produced by `GET /eth/v3/validator/blocks/{slot}` in SSZ: the fork it belongs to
/// (`Eth-Consensus-Version`), whether it is blinded (`Eth-Execution-Payload-Blinded`), and
/// its bytes (block contents from Deneb on for a full block; a blinded block otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedBlock {
    /// Fork name (`"electra"`, ...).
    pub version: String,
    /// Blinded (the payload is the builder's).
    pub blinded: bool,
    /// SSZ bytes.
    pub ssz: Vec<u8>,
}

/// An Electra attestation as the API writes it (`GET /eth/v2/validator/aggregate_attestation`):
/// bitfields as the hex of their SSZ bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationElectra {
    /// Participants (SSZ bitlist bytes).
    #[serde(with = "hex_vec")]
    pub aggregation_bits: Vec<u8>,
    /// The vote.
    pub data: AttestationData,
    /// Aggregate signature.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 96],
    /// Committees taking part (SSZ bitvector bytes).
    #[serde(with = "hex_vec")]
    pub committee_bits: Vec<u8>,
}

impl AttestationElectra {
    /// The SSZ container (bitfields checked against their bounds).
    pub fn to_container(&self) -> Result<ssv_protocol::beacon::electra::Attestation, String> {
        use ssz::Decode as _;
        Ok(ssv_protocol::beacon::electra::Attestation {
            aggregation_bits: ssz_types::BitList::from_ssz_bytes(&self.aggregation_bits)
                .map_err(|e| format!("aggregation_bits: {e:?}"))?,
            data: self.data,
            signature: self.signature,
            committee_bits: ssz_types::BitVector::from_ssz_bytes(&self.committee_bits)
                .map_err(|e| format!("committee_bits: {e:?}"))?,
        })
    }

    /// From the SSZ container.
    pub fn from_container(a: &ssv_protocol::beacon::electra::Attestation) -> Self {
        use ssz::Encode as _;
        AttestationElectra {
            aggregation_bits: a.aggregation_bits.as_ssz_bytes(),
            data: a.data,
            signature: a.signature,
            committee_bits: a.committee_bits.as_ssz_bytes(),
        }
    }
}

/// An Electra aggregate and proof as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateAndProofElectra {
    /// The aggregator.
    #[serde(with = "u64_str")]
    pub aggregator_index: u64,
    /// The aggregate.
    pub aggregate: AttestationElectra,
    /// The aggregator's selection proof.
    #[serde(with = "hex_bytes")]
    pub selection_proof: [u8; 96],
}

/// `POST /eth/v2/validator/aggregate_and_proofs` (Electra): one signed aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAggregateAndProofElectra {
    /// The aggregate and proof.
    pub message: AggregateAndProofElectra,
    /// The aggregator's signature of it.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 96],
}

impl SignedAggregateAndProofElectra {
    /// From the SSZ container.
    pub fn from_container(s: &ssv_protocol::beacon::electra::SignedAggregateAndProof) -> Self {
        SignedAggregateAndProofElectra {
            message: AggregateAndProofElectra {
                aggregator_index: s.message.aggregator_index,
                aggregate: AttestationElectra::from_container(&s.message.aggregate),
                selection_proof: s.message.selection_proof,
            },
            signature: s.signature,
        }
    }

    /// The SSZ container.
    pub fn to_container(
        &self,
    ) -> Result<ssv_protocol::beacon::electra::SignedAggregateAndProof, String> {
        Ok(ssv_protocol::beacon::electra::SignedAggregateAndProof {
            message: ssv_protocol::beacon::electra::AggregateAndProof {
                aggregator_index: self.message.aggregator_index,
                aggregate: self.message.aggregate.to_container()?,
                selection_proof: self.message.selection_proof,
            },
            signature: self.signature,
        })
    }
}

/// A builder registration as the API writes it (`POST /eth/v1/validator/register_validator`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorRegistrationJson {
    /// Where execution rewards go.
    #[serde(with = "hex_bytes")]
    pub fee_recipient: [u8; 20],
    /// Preferred gas limit.
    #[serde(with = "u64_str")]
    pub gas_limit: u64,
    /// Unix seconds.
    #[serde(with = "u64_str")]
    pub timestamp: u64,
    /// The validator.
    #[serde(with = "hex_bytes")]
    pub pubkey: [u8; 48],
}

/// A signed builder registration as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedValidatorRegistrationJson {
    /// The registration.
    pub message: ValidatorRegistrationJson,
    /// The validator's signature (builder domain).
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 96],
}

impl SignedValidatorRegistrationJson {
    /// From the SSZ container.
    pub fn from_container(r: &ssv_protocol::beacon::builder::SignedValidatorRegistration) -> Self {
        SignedValidatorRegistrationJson {
            message: ValidatorRegistrationJson {
                fee_recipient: r.message.fee_recipient,
                gas_limit: r.message.gas_limit,
                timestamp: r.message.timestamp,
                pubkey: r.message.pubkey,
            },
            signature: r.signature,
        }
    }

    /// The SSZ container.
    pub fn to_container(&self) -> ssv_protocol::beacon::builder::SignedValidatorRegistration {
        ssv_protocol::beacon::builder::SignedValidatorRegistration {
            message: ssv_protocol::beacon::builder::ValidatorRegistration {
                fee_recipient: self.message.fee_recipient,
                gas_limit: self.message.gas_limit,
                timestamp: self.message.timestamp,
                pubkey: self.message.pubkey,
            },
            signature: self.signature,
        }
    }
}

/// A sync-committee contribution as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCommitteeContributionJson {
    /// Slot.
    #[serde(with = "u64_str")]
    pub slot: u64,
    /// The block root the members signed.
    #[serde(with = "hex_bytes")]
    pub beacon_block_root: [u8; 32],
    /// The subcommittee.
    #[serde(with = "u64_str")]
    pub subcommittee_index: u64,
    /// Participants (SSZ bitvector bytes).
    #[serde(with = "hex_vec")]
    pub aggregation_bits: Vec<u8>,
    /// Aggregate signature.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 96],
}

impl SyncCommitteeContributionJson {
    /// The SSZ container.
    pub fn to_container(
        &self,
    ) -> Result<ssv_protocol::beacon::altair::SyncCommitteeContribution, String> {
        use ssz::Decode as _;
        Ok(ssv_protocol::beacon::altair::SyncCommitteeContribution {
            slot: self.slot,
            beacon_block_root: self.beacon_block_root,
            subcommittee_index: self.subcommittee_index,
            aggregation_bits: ssz_types::BitVector::from_ssz_bytes(&self.aggregation_bits)
                .map_err(|e| format!("aggregation_bits: {e:?}"))?,
            signature: self.signature,
        })
    }

    /// From the SSZ container.
    pub fn from_container(c: &ssv_protocol::beacon::altair::SyncCommitteeContribution) -> Self {
        use ssz::Encode as _;
        SyncCommitteeContributionJson {
            slot: c.slot,
            beacon_block_root: c.beacon_block_root,
            subcommittee_index: c.subcommittee_index,
            aggregation_bits: c.aggregation_bits.as_ssz_bytes(),
            signature: c.signature,
        }
    }
}

/// A contribution and proof as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContributionAndProofJson {
    /// The aggregator.
    #[serde(with = "u64_str")]
    pub aggregator_index: u64,
    /// The contribution.
    pub contribution: SyncCommitteeContributionJson,
    /// The aggregator's selection proof.
    #[serde(with = "hex_bytes")]
    pub selection_proof: [u8; 96],
}

/// `POST /eth/v1/validator/contribution_and_proofs`: one signed contribution and proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedContributionAndProofJson {
    /// The contribution and proof.
    pub message: ContributionAndProofJson,
    /// The aggregator's signature of it.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 96],
}

impl SignedContributionAndProofJson {
    /// From the SSZ container.
    pub fn from_container(s: &ssv_protocol::beacon::altair::SignedContributionAndProof) -> Self {
        SignedContributionAndProofJson {
            message: ContributionAndProofJson {
                aggregator_index: s.message.aggregator_index,
                contribution: SyncCommitteeContributionJson::from_container(
                    &s.message.contribution,
                ),
                selection_proof: s.message.selection_proof,
            },
            signature: s.signature,
        }
    }

    /// The SSZ container.
    pub fn to_container(
        &self,
    ) -> Result<ssv_protocol::beacon::altair::SignedContributionAndProof, String> {
        Ok(ssv_protocol::beacon::altair::SignedContributionAndProof {
            message: ssv_protocol::beacon::altair::ContributionAndProof {
                aggregator_index: self.message.aggregator_index,
                contribution: self.message.contribution.to_container()?,
                selection_proof: self.message.selection_proof,
            },
            signature: self.signature,
        })
    }
}

/// A signed voluntary exit as the API writes it (`POST /eth/v1/beacon/pool/voluntary_exits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVoluntaryExitJson {
    /// The exit.
    pub message: VoluntaryExitJson,
    /// The validator's signature (Capella exit domain).
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 96],
}

/// A voluntary exit as the API writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoluntaryExitJson {
    /// Earliest exit epoch.
    #[serde(with = "u64_str")]
    pub epoch: u64,
    /// The validator.
    #[serde(with = "u64_str")]
    pub validator_index: u64,
}

impl SignedVoluntaryExitJson {
    /// From the SSZ container.
    pub fn from_container(e: &ssv_protocol::beacon::phase0::SignedVoluntaryExit) -> Self {
        SignedVoluntaryExitJson {
            message: VoluntaryExitJson {
                epoch: e.message.epoch,
                validator_index: e.message.validator_index,
            },
            signature: e.signature,
        }
    }

    /// The SSZ container.
    pub fn to_container(&self) -> ssv_protocol::beacon::phase0::SignedVoluntaryExit {
        ssv_protocol::beacon::phase0::SignedVoluntaryExit {
            message: ssv_protocol::beacon::phase0::VoluntaryExit {
                epoch: self.message.epoch,
                validator_index: self.message.validator_index,
            },
            signature: self.signature,
        }
    }
}

/// `POST /eth/v1/validator/prepare_beacon_proposer`: a validator's fee recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposerPreparation {
    /// The validator.
    #[serde(with = "u64_str")]
    pub validator_index: u64,
    /// Its fee recipient.
    #[serde(with = "hex_bytes")]
    pub fee_recipient: [u8; 20],
}

/// `POST /eth/v1/validator/beacon_committee_subscriptions`: one attester's committee, so the
/// beacon node joins its subnet (and aggregates it when `is_aggregator`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconCommitteeSubscription {
    /// The attester.
    #[serde(with = "u64_str")]
    pub validator_index: u64,
    /// Its committee.
    #[serde(with = "u64_str")]
    pub committee_index: u64,
    /// Committees in the slot.
    #[serde(with = "u64_str")]
    pub committees_at_slot: u64,
    /// The duty's slot.
    #[serde(with = "u64_str")]
    pub slot: u64,
    /// Whether the validator may aggregate (an SSV node cannot tell before the threshold
    /// selection proof, so it says yes, as the Go node does).
    pub is_aggregator: bool,
}

/// `POST /eth/v1/validator/sync_committee_subscriptions`: a sync-committee member's subnets
/// until the end of its period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCommitteeSubscription {
    /// The member.
    #[serde(with = "u64_str")]
    pub validator_index: u64,
    /// Its sync-committee indices.
    #[serde(with = "u64_vec_str")]
    pub sync_committee_indices: Vec<u64>,
    /// First epoch it is no longer a member.
    #[serde(with = "u64_str")]
    pub until_epoch: u64,
}

/// One entry of `POST /eth/v1/validator/liveness/{epoch}`: whether the beacon node has seen
/// the validator live (attesting, proposing, aggregating, ...) in the epoch. Best effort and
/// subjective (the node's own view of the network), which is all doppelganger protection
/// needs: a `true` means "do not sign yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorLiveness {
    /// The validator.
    #[serde(with = "u64_str")]
    pub index: u64,
    /// Whether it was seen live in the epoch asked about.
    pub is_live: bool,
}
