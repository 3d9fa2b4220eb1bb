//! Beacon API JSON types for the endpoints the node's duties need (ethereum/beacon-APIs),
//! shared by the client and the simulator. Integers are decimal strings and byte fields
//! `0x`-prefixed hex, as the API specifies.

use serde::{Deserialize, Serialize};

/// Serde helpers for the Beacon API's quoted integers and hex bytes.
pub mod quoted {
    use serde::{Deserialize, Deserializer, Serializer};

    /// A `u64` as a decimal string (accepts a bare number too).
    pub mod u64_str {
        use super::*;

        /// Serializes as a decimal string.
        pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&v.to_string())
        }

        /// Parses a decimal string or a number.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Either {
                S(String),
                N(u64),
            }
            match Either::deserialize(d)? {
                Either::S(s) => s.parse().map_err(serde::de::Error::custom),
                Either::N(n) => Ok(n),
            }
        }
    }

    /// A list of `u64` as decimal strings.
    pub mod u64_vec_str {
        use super::*;

        /// Serializes as decimal strings.
        pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|n| n.to_string()))
        }

        /// Parses decimal strings.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
            let v: Vec<String> = Vec::deserialize(d)?;
            v.iter()
                .map(|s| s.parse().map_err(serde::de::Error::custom))
                .collect()
        }
    }

    /// A fixed-size byte array as `0x`-prefixed hex.
    pub mod hex_bytes {
        use super::*;

        /// Serializes as `0x` hex.
        pub fn serialize<S: Serializer, const N: usize>(
            v: &[u8; N],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.serialize_str(&format!("0x{}", hex::encode(v)))
        }

        /// Parses `0x` hex of exactly N bytes.
        pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
            d: D,
        ) -> Result<[u8; N], D::Error> {
            let s = String::deserialize(d)?;
            let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(&s))
                .map_err(serde::de::Error::custom)?;
            bytes.try_into().map_err(|b: Vec<u8>| {
                serde::de::Error::custom(format!("{} bytes, want {N}", b.len()))
            })
        }
    }
}

use quoted::{hex_bytes, u64_str, u64_vec_str};

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

/// A checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epoch.
    #[serde(with = "u64_str")]
    pub epoch: u64,
    /// Root.
    #[serde(with = "hex_bytes")]
    pub root: [u8; 32],
}

/// `GET /eth/v1/validator/attestation_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationData {
    /// Slot.
    #[serde(with = "u64_str")]
    pub slot: u64,
    /// Committee index (0 since Electra).
    #[serde(with = "u64_str")]
    pub index: u64,
    /// Head block root.
    #[serde(with = "hex_bytes")]
    pub beacon_block_root: [u8; 32],
    /// Source checkpoint.
    pub source: Checkpoint,
    /// Target checkpoint.
    pub target: Checkpoint,
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
    #[serde(default, with = "opt_u64_str", skip_serializing_if = "Option::is_none")]
    pub slot_duration_ms: Option<u64>,
    /// Epochs per sync-committee period.
    #[serde(with = "u64_str")]
    pub epochs_per_sync_committee_period: u64,
}

/// An optional quoted u64.
mod opt_u64_str {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_str(&n.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let v: Option<String> = Option::deserialize(d)?;
        v.map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
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
