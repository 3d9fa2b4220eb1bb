//! The QBFT value of a validator duty (aggregator, proposer, sync-committee contribution):
//! ssv-spec v1.2.2 `types/consensus_data.go`.
//!
//! ```text
//! ValidatorDuty          = { Type: u64, PubKey: [48]byte, Slot: u64, ValidatorIndex: u64,
//!                            CommitteeIndex: u64, CommitteeLength: u64, CommitteesAtSlot: u64,
//!                            ValidatorCommitteeIndex: u64,
//!                            ValidatorSyncCommitteeIndices: List[u64, 13] }
//! ValidatorConsensusData = { Duty: ValidatorDuty, Version: u64 (DataVersion),
//!                            DataSSZ: List[u8, 8388608] }
//! ```
//!
//! `DataSSZ` is opaque on the wire; [`ValidatorConsensusData::validate`] decodes it into the
//! object the duty role and data version call for, as the spec's `Validate()` does.

use ssz::{Decode, Encode};
use ssz_derive::{Decode, Encode};
use ssz_types::VariableList;
use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

use super::altair::SyncCommitteeContribution;
use super::{BlsSignature, Root, capella, deneb, electra, fulu, phase0};
use crate::error::Error;
use crate::limits::{CONSENSUS_DATA_SSZ_MAX, ConsensusDataSszMax};
use crate::types::{BeaconRole, BlsPublicKey, Slot, ValidatorIndex};

/// Maximum number of sync-committee indices of one validator (and of contributions in one
/// consensus value), as ssv-spec declares it.
pub const VALIDATOR_SYNC_COMMITTEE_INDICES_MAX: usize = 13;
/// 13, as a type.
pub type ValidatorSyncCommitteeIndicesMax = ssz_types::typenum::U13;

/// The fork of a versioned beacon object (go-eth2-client `spec.DataVersion`; 0 is
/// "unknown" and has no variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataVersion {
    /// Phase 0.
    Phase0,
    /// Altair.
    Altair,
    /// Bellatrix.
    Bellatrix,
    /// Capella.
    Capella,
    /// Deneb.
    Deneb,
    /// Electra.
    Electra,
    /// Fulu.
    Fulu,
}

impl DataVersion {
    /// Every version, in wire order.
    pub const ALL: [DataVersion; 7] = [
        DataVersion::Phase0,
        DataVersion::Altair,
        DataVersion::Bellatrix,
        DataVersion::Capella,
        DataVersion::Deneb,
        DataVersion::Electra,
        DataVersion::Fulu,
    ];

    /// The wire value.
    pub const fn to_u64(self) -> u64 {
        match self {
            DataVersion::Phase0 => 1,
            DataVersion::Altair => 2,
            DataVersion::Bellatrix => 3,
            DataVersion::Capella => 4,
            DataVersion::Deneb => 5,
            DataVersion::Electra => 6,
            DataVersion::Fulu => 7,
        }
    }

    /// Parses the wire value; `None` for 0 ("unknown") and versions this crate does not know.
    pub fn from_u64(value: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.to_u64() == value)
    }

    /// The lower-case name go-eth2-client uses in JSON (`"capella"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DataVersion::Phase0 => "phase0",
            DataVersion::Altair => "altair",
            DataVersion::Bellatrix => "bellatrix",
            DataVersion::Capella => "capella",
            DataVersion::Deneb => "deneb",
            DataVersion::Electra => "electra",
            DataVersion::Fulu => "fulu",
        }
    }

    /// Parses a JSON name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// A validator's beacon duty as the beacon node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ValidatorDuty {
    /// Raw [`BeaconRole`] value (kept raw so that an unknown role decodes and is then rejected
    /// by [`ValidatorConsensusData::validate`], as the spec does).
    pub role: u64,
    /// Validator public key.
    pub pubkey: BlsPublicKey,
    /// Duty slot.
    pub slot: Slot,
    /// Validator index.
    pub validator_index: ValidatorIndex,
    /// Attestation committee index.
    pub committee_index: u64,
    /// Attestation committee length.
    pub committee_length: u64,
    /// Number of committees at the slot.
    pub committees_at_slot: u64,
    /// The validator's index within its committee.
    pub validator_committee_index: u64,
    /// The validator's sync-committee indices.
    pub validator_sync_committee_indices: VariableList<u64, ValidatorSyncCommitteeIndicesMax>,
}

impl ValidatorDuty {
    /// The duty role, if known.
    pub fn beacon_role(&self) -> Option<BeaconRole> {
        BeaconRole::from_u64(self.role)
    }
}

/// A sync-committee contribution with the selection proof of the aggregator.
///
/// Fixed-size (256 bytes), but the Go codec of a list of them (`Contributions`) writes an
/// offset per item as if they were variable-size; declaring it variable-size here makes
/// `VariableList<Contribution, _>` produce the same bytes. Hashing is unaffected.
#[derive(Debug, Clone, PartialEq, Eq, TreeHash)]
pub struct Contribution {
    /// Selection proof (signature of the slot and subcommittee).
    pub selection_proof_sig: BlsSignature,
    /// The contribution.
    pub contribution: SyncCommitteeContribution,
}

/// Encoded size of a [`Contribution`].
pub const CONTRIBUTION_SIZE: usize = 96 + 8 + 32 + 8 + 16 + 96;

impl Encode for Contribution {
    fn is_ssz_fixed_len() -> bool {
        false
    }
    fn ssz_bytes_len(&self) -> usize {
        CONTRIBUTION_SIZE
    }
    fn ssz_append(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.selection_proof_sig);
        self.contribution.ssz_append(buf);
    }
}

impl Decode for Contribution {
    fn is_ssz_fixed_len() -> bool {
        false
    }
    fn from_ssz_bytes(bytes: &[u8]) -> Result<Self, ssz::DecodeError> {
        if bytes.len() != CONTRIBUTION_SIZE {
            return Err(ssz::DecodeError::InvalidByteLength {
                len: bytes.len(),
                expected: CONTRIBUTION_SIZE,
            });
        }
        let (sig, rest) = bytes.split_at(96);
        Ok(Contribution {
            selection_proof_sig: BlsSignature::from_ssz_bytes(sig)?,
            contribution: SyncCommitteeContribution::from_ssz_bytes(rest)?,
        })
    }
}

/// The contributions of one sync-committee-contribution duty (one per subcommittee index of
/// the validator).
pub type Contributions = VariableList<Contribution, ValidatorSyncCommitteeIndicesMax>;

/// A decoded proposer value: a full block (with blobs from Deneb on) or a blinded block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// Capella block.
    Capella(Box<capella::BeaconBlock>),
    /// Capella blinded block.
    CapellaBlinded(Box<capella::BlindedBeaconBlock>),
    /// Deneb block contents.
    Deneb(Box<deneb::BlockContents>),
    /// Deneb blinded block.
    DenebBlinded(Box<deneb::BlindedBeaconBlock>),
    /// Electra block contents.
    Electra(Box<electra::BlockContents>),
    /// Electra blinded block.
    ElectraBlinded(Box<electra::BlindedBeaconBlock>),
    /// Fulu block contents.
    Fulu(Box<fulu::BlockContents>),
    /// Fulu blinded block (an Electra blinded block).
    FuluBlinded(Box<electra::BlindedBeaconBlock>),
}

impl Proposal {
    /// Decodes `DataSSZ` of `version` as the spec's `GetBlockData` does: as a blinded block
    /// first, then as a full block (block contents from Deneb on).
    pub fn from_ssz(version: u64, bytes: &[u8]) -> Result<Self, Error> {
        fn either<B, F>(
            bytes: &[u8],
            blinded: impl FnOnce(B) -> Proposal,
            full: impl FnOnce(F) -> Proposal,
        ) -> Result<Proposal, Error>
        where
            B: Decode,
            F: Decode,
        {
            let blinded_err = match B::from_ssz_bytes(bytes) {
                Ok(b) => return Ok(blinded(b)),
                Err(e) => e,
            };
            match F::from_ssz_bytes(bytes) {
                Ok(f) => Ok(full(f)),
                Err(full_err) => Err(Error::Decode(format!(
                    "block: blinded: {blinded_err:?}; full: {full_err:?}"
                ))),
            }
        }
        match DataVersion::from_u64(version) {
            Some(DataVersion::Capella) => either(
                bytes,
                |b| Proposal::CapellaBlinded(Box::new(b)),
                |f| Proposal::Capella(Box::new(f)),
            ),
            Some(DataVersion::Deneb) => either(
                bytes,
                |b| Proposal::DenebBlinded(Box::new(b)),
                |f| Proposal::Deneb(Box::new(f)),
            ),
            Some(DataVersion::Electra) => either(
                bytes,
                |b| Proposal::ElectraBlinded(Box::new(b)),
                |f| Proposal::Electra(Box::new(f)),
            ),
            Some(DataVersion::Fulu) => either(
                bytes,
                |b| Proposal::FuluBlinded(Box::new(b)),
                |f| Proposal::Fulu(Box::new(f)),
            ),
            _ => Err(Error::UnknownDataVersion(version)),
        }
    }

    /// The fork.
    pub fn version(&self) -> DataVersion {
        match self {
            Proposal::Capella(_) | Proposal::CapellaBlinded(_) => DataVersion::Capella,
            Proposal::Deneb(_) | Proposal::DenebBlinded(_) => DataVersion::Deneb,
            Proposal::Electra(_) | Proposal::ElectraBlinded(_) => DataVersion::Electra,
            Proposal::Fulu(_) | Proposal::FuluBlinded(_) => DataVersion::Fulu,
        }
    }

    /// Whether this is a blinded block.
    pub fn is_blinded(&self) -> bool {
        matches!(
            self,
            Proposal::CapellaBlinded(_)
                | Proposal::DenebBlinded(_)
                | Proposal::ElectraBlinded(_)
                | Proposal::FuluBlinded(_)
        )
    }

    /// The block's slot.
    pub fn slot(&self) -> Slot {
        match self {
            Proposal::Capella(b) => b.slot,
            Proposal::CapellaBlinded(b) => b.slot,
            Proposal::Deneb(c) => c.block.slot,
            Proposal::DenebBlinded(b) => b.slot,
            Proposal::Electra(c) => c.block.slot,
            Proposal::ElectraBlinded(b) | Proposal::FuluBlinded(b) => b.slot,
            Proposal::Fulu(c) => c.block.slot,
        }
    }

    /// The block's proposer.
    pub fn proposer_index(&self) -> ValidatorIndex {
        match self {
            Proposal::Capella(b) => b.proposer_index,
            Proposal::CapellaBlinded(b) => b.proposer_index,
            Proposal::Deneb(c) => c.block.proposer_index,
            Proposal::DenebBlinded(b) => b.proposer_index,
            Proposal::Electra(c) => c.block.proposer_index,
            Proposal::ElectraBlinded(b) | Proposal::FuluBlinded(b) => b.proposer_index,
            Proposal::Fulu(c) => c.block.proposer_index,
        }
    }

    /// The signed form the beacon node takes, with the validator's `signature`.
    pub fn signed(self, signature: BlsSignature) -> SignedProposal {
        SignedProposal {
            proposal: self,
            signature,
        }
    }

    /// Hash-tree-root of the (blinded) block: what the proposer signs, and equal for a block
    /// and its blinded form.
    pub fn block_root(&self) -> Root {
        match self {
            Proposal::Capella(b) => b.tree_hash_root().0,
            Proposal::CapellaBlinded(b) => b.tree_hash_root().0,
            Proposal::Deneb(c) => c.block.tree_hash_root().0,
            Proposal::DenebBlinded(b) => b.tree_hash_root().0,
            Proposal::Electra(c) => c.block.tree_hash_root().0,
            Proposal::ElectraBlinded(b) | Proposal::FuluBlinded(b) => b.tree_hash_root().0,
            Proposal::Fulu(c) => c.block.tree_hash_root().0,
        }
    }

    /// Encodes back to the `DataSSZ` form.
    pub fn to_ssz(&self) -> Vec<u8> {
        match self {
            Proposal::Capella(b) => b.as_ssz_bytes(),
            Proposal::CapellaBlinded(b) => b.as_ssz_bytes(),
            Proposal::Deneb(c) => c.as_ssz_bytes(),
            Proposal::DenebBlinded(b) => b.as_ssz_bytes(),
            Proposal::Electra(c) => c.as_ssz_bytes(),
            Proposal::ElectraBlinded(b) | Proposal::FuluBlinded(b) => b.as_ssz_bytes(),
            Proposal::Fulu(c) => c.as_ssz_bytes(),
        }
    }
}

/// A proposal with the validator's block signature: what `POST /eth/v2/beacon/blocks` (full)
/// or `POST /eth/v2/beacon/blinded_blocks` (blinded) takes — a `SignedBeaconBlock` for Capella,
/// `SignedBlockContents` (the signed block with its KZG proofs and blobs) from Deneb on, a
/// `SignedBlindedBeaconBlock` for a blinded block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedProposal {
    /// The block.
    pub proposal: Proposal,
    /// The validator's signature of its root under `DOMAIN_BEACON_PROPOSER`.
    pub signature: BlsSignature,
}

impl SignedProposal {
    /// Hash-tree-root of the signed container (of the signed block contents for a full block
    /// from Deneb on).
    pub fn root(&self) -> Root {
        let signed_block = container_root(&[
            self.proposal.block_root(),
            self.signature.tree_hash_root().0,
        ]);
        let contents = |proofs: tree_hash::Hash256, blobs: tree_hash::Hash256| {
            container_root(&[signed_block, proofs.0, blobs.0])
        };
        match &self.proposal {
            Proposal::Deneb(c) => contents(c.kzg_proofs.tree_hash_root(), blobs_root(&c.blobs)),
            Proposal::Electra(c) => contents(c.kzg_proofs.tree_hash_root(), blobs_root(&c.blobs)),
            Proposal::Fulu(c) => contents(c.kzg_proofs.tree_hash_root(), blobs_root(&c.blobs)),
            _ => signed_block,
        }
    }
}

impl SignedProposal {
    /// The SSZ body of the publish request: `SignedBeaconBlock` (Capella),
    /// `SignedBlockContents` (a full block from Deneb on) or `SignedBlindedBeaconBlock`.
    pub fn to_ssz(&self) -> Vec<u8> {
        let signed = |message: Vec<u8>| {
            let mut out = Vec::with_capacity(SIGNED_FIXED + message.len());
            out.extend_from_slice(&(SIGNED_FIXED as u32).to_le_bytes());
            out.extend_from_slice(&self.signature);
            out.extend_from_slice(&message);
            out
        };
        let contents = |block: Vec<u8>, proofs: Vec<u8>, blobs: Vec<u8>| {
            let sb = signed(block);
            let o1 = CONTENTS_FIXED;
            let o2 = o1 + sb.len();
            let o3 = o2 + proofs.len();
            let mut out = Vec::with_capacity(o3 + blobs.len());
            for o in [o1, o2, o3] {
                out.extend_from_slice(&(o as u32).to_le_bytes());
            }
            out.extend_from_slice(&sb);
            out.extend_from_slice(&proofs);
            out.extend_from_slice(&blobs);
            out
        };
        match &self.proposal {
            Proposal::Deneb(c) => contents(
                c.block.as_ssz_bytes(),
                c.kzg_proofs.as_ssz_bytes(),
                c.blobs.as_ssz_bytes(),
            ),
            Proposal::Electra(c) => contents(
                c.block.as_ssz_bytes(),
                c.kzg_proofs.as_ssz_bytes(),
                c.blobs.as_ssz_bytes(),
            ),
            Proposal::Fulu(c) => contents(
                c.block.as_ssz_bytes(),
                c.kzg_proofs.as_ssz_bytes(),
                c.blobs.as_ssz_bytes(),
            ),
            other => signed(other.to_ssz()),
        }
    }

    /// Decodes a publish request's SSZ body of `version` (full or `blinded`), the inverse of
    /// [`SignedProposal::to_ssz`].
    pub fn from_ssz(version: u64, blinded: bool, bytes: &[u8]) -> Result<Self, Error> {
        let bad = |what: &str| Error::Decode(format!("signed block: {what}"));
        let offset = |at: usize| -> Result<usize, Error> {
            let b = bytes.get(at..at + 4).ok_or_else(|| bad("short"))?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let split_signed = |b: &[u8]| -> Result<(BlsSignature, Vec<u8>), Error> {
            let head = b.get(..4).ok_or_else(|| bad("short"))?;
            if u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize != SIGNED_FIXED {
                return Err(bad("message offset"));
            }
            let sig: BlsSignature = b
                .get(4..SIGNED_FIXED)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| bad("short"))?;
            Ok((sig, b[SIGNED_FIXED..].to_vec()))
        };
        let version_kind =
            DataVersion::from_u64(version).ok_or(Error::UnknownDataVersion(version))?;
        let has_contents = !blinded && !matches!(version_kind, DataVersion::Capella);
        if !has_contents {
            let (signature, message) = split_signed(bytes)?;
            let proposal = Proposal::from_ssz(version, &message)?;
            if proposal.is_blinded() != blinded {
                return Err(bad("blinded or not, as the request said"));
            }
            return Ok(SignedProposal {
                proposal,
                signature,
            });
        }
        let (o1, o2, o3) = (offset(0)?, offset(4)?, offset(8)?);
        if o1 != CONTENTS_FIXED || o2 < o1 || o3 < o2 || o3 > bytes.len() {
            return Err(bad("contents offsets"));
        }
        let (signature, block) = split_signed(&bytes[o1..o2])?;
        let (proofs, blobs) = (&bytes[o2..o3], &bytes[o3..]);
        let err = |e: ssz::DecodeError| Error::Decode(format!("signed block contents: {e:?}"));
        let proposal = match version_kind {
            DataVersion::Deneb => Proposal::Deneb(Box::new(deneb::BlockContents {
                block: deneb::BeaconBlock::from_ssz_bytes(&block).map_err(err)?,
                kzg_proofs: Decode::from_ssz_bytes(proofs).map_err(err)?,
                blobs: Decode::from_ssz_bytes(blobs).map_err(err)?,
            })),
            DataVersion::Electra => Proposal::Electra(Box::new(electra::BlockContents {
                block: electra::BeaconBlock::from_ssz_bytes(&block).map_err(err)?,
                kzg_proofs: Decode::from_ssz_bytes(proofs).map_err(err)?,
                blobs: Decode::from_ssz_bytes(blobs).map_err(err)?,
            })),
            DataVersion::Fulu => Proposal::Fulu(Box::new(fulu::BlockContents {
                block: electra::BeaconBlock::from_ssz_bytes(&block).map_err(err)?,
                kzg_proofs: Decode::from_ssz_bytes(proofs).map_err(err)?,
                blobs: Decode::from_ssz_bytes(blobs).map_err(err)?,
            })),
            _ => return Err(Error::UnknownDataVersion(version)),
        };
        Ok(SignedProposal {
            proposal,
            signature,
        })
    }
}

/// Fixed part of a signed block (the message's offset and the signature).
const SIGNED_FIXED: usize = 4 + 96;
/// Fixed part of signed block contents (three offsets).
const CONTENTS_FIXED: usize = 12;

/// Hash-tree-root of a list of blobs, as its `TreeHash` gives it but with each blob's bytes
/// merkleized as whole chunks (the generic path packs a byte vector one byte at a time, which
/// made the blobs' root most of a full block's cost; `roles/proposer_deneb_full`).
fn blobs_root<N: ssz_types::typenum::Unsigned>(
    blobs: &VariableList<super::Blob, N>,
) -> tree_hash::Hash256 {
    let chunks_per_blob = super::BLOB_SIZE / 32;
    let roots: Vec<u8> = blobs
        .iter()
        .flat_map(|b| tree_hash::merkle_root(&b[..], chunks_per_blob).0)
        .collect();
    tree_hash::mix_in_length(&tree_hash::merkle_root(&roots, N::to_usize()), blobs.len())
}

/// Hash-tree-root of a container from its fields' roots.
fn container_root(fields: &[Root]) -> Root {
    let bytes: Vec<u8> = fields.iter().flatten().copied().collect();
    tree_hash::merkle_root(&bytes, fields.len()).0
}

/// A decoded aggregator value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateAndProofData {
    /// Phase 0 to Deneb.
    Phase0(Box<phase0::AggregateAndProof>),
    /// Electra and Fulu.
    Electra(Box<electra::AggregateAndProof>),
}

impl AggregateAndProofData {
    /// Decodes `DataSSZ` of `version`: the phase0 shape up to Deneb, the Electra shape after.
    pub fn from_ssz(version: u64, bytes: &[u8]) -> Result<Self, Error> {
        let decode_err = |e: ssz::DecodeError| Error::Decode(format!("aggregate and proof: {e:?}"));
        match DataVersion::from_u64(version) {
            Some(
                DataVersion::Phase0
                | DataVersion::Altair
                | DataVersion::Bellatrix
                | DataVersion::Capella
                | DataVersion::Deneb,
            ) => phase0::AggregateAndProof::from_ssz_bytes(bytes)
                .map(|a| AggregateAndProofData::Phase0(Box::new(a)))
                .map_err(decode_err),
            Some(DataVersion::Electra | DataVersion::Fulu) => {
                electra::AggregateAndProof::from_ssz_bytes(bytes)
                    .map(|a| AggregateAndProofData::Electra(Box::new(a)))
                    .map_err(decode_err)
            }
            None => Err(Error::UnknownDataVersion(version)),
        }
    }

    /// Hash-tree-root: what the aggregator signs.
    pub fn root(&self) -> Root {
        match self {
            AggregateAndProofData::Phase0(a) => a.tree_hash_root().0,
            AggregateAndProofData::Electra(a) => a.tree_hash_root().0,
        }
    }

    /// Encodes back to the `DataSSZ` form.
    pub fn to_ssz(&self) -> Vec<u8> {
        match self {
            AggregateAndProofData::Phase0(a) => a.as_ssz_bytes(),
            AggregateAndProofData::Electra(a) => a.as_ssz_bytes(),
        }
    }

    /// With the aggregator's signature, what the beacon node takes.
    pub fn signed(&self, signature: BlsSignature) -> SignedAggregateAndProofData {
        match self {
            AggregateAndProofData::Phase0(a) => {
                SignedAggregateAndProofData::Phase0(Box::new(phase0::SignedAggregateAndProof {
                    message: (**a).clone(),
                    signature,
                }))
            }
            AggregateAndProofData::Electra(a) => {
                SignedAggregateAndProofData::Electra(Box::new(electra::SignedAggregateAndProof {
                    message: (**a).clone(),
                    signature,
                }))
            }
        }
    }
}

/// A signed aggregate and proof of either shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedAggregateAndProofData {
    /// Phase 0 to Deneb.
    Phase0(Box<phase0::SignedAggregateAndProof>),
    /// Electra and Fulu.
    Electra(Box<electra::SignedAggregateAndProof>),
}

impl SignedAggregateAndProofData {
    /// Hash-tree-root.
    pub fn root(&self) -> Root {
        match self {
            SignedAggregateAndProofData::Phase0(a) => a.tree_hash_root().0,
            SignedAggregateAndProofData::Electra(a) => a.tree_hash_root().0,
        }
    }
}

/// The value a validator duty's QBFT instance agrees on.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ValidatorConsensusData {
    /// The duty.
    pub duty: ValidatorDuty,
    /// Raw [`DataVersion`] of `data_ssz`.
    pub version: u64,
    /// The SSZ of the duty's beacon object.
    pub data_ssz: VariableList<u8, ConsensusDataSszMax>,
}

impl ValidatorConsensusData {
    /// Builds a value; fails if `data_ssz` is over [`CONSENSUS_DATA_SSZ_MAX`].
    pub fn new(duty: ValidatorDuty, version: u64, data_ssz: Vec<u8>) -> Result<Self, Error> {
        let len = data_ssz.len();
        Ok(ValidatorConsensusData {
            duty,
            version,
            data_ssz: VariableList::new(data_ssz).map_err(|_| {
                Error::Decode(format!(
                    "DataSSZ of {len} bytes over the maximum of {CONSENSUS_DATA_SSZ_MAX}"
                ))
            })?,
        })
    }

    /// Decodes SSZ; every list is checked against its limit before it is allocated.
    pub fn from_ssz(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_ssz_bytes(bytes).map_err(Error::from)
    }

    /// Encodes to SSZ.
    pub fn to_ssz(&self) -> Vec<u8> {
        self.as_ssz_bytes()
    }

    /// Hash-tree-root (the QBFT value root).
    pub fn root(&self) -> Root {
        self.tree_hash_root().0
    }

    /// The data version, if known.
    pub fn data_version(&self) -> Option<DataVersion> {
        DataVersion::from_u64(self.version)
    }

    /// `DataSSZ` as a proposer value (the spec's `GetBlockData`).
    pub fn proposal(&self) -> Result<Proposal, Error> {
        Proposal::from_ssz(self.version, &self.data_ssz)
    }

    /// `DataSSZ` as an aggregator value (the spec's `GetAggregateAndProof`).
    pub fn aggregate_and_proof(&self) -> Result<AggregateAndProofData, Error> {
        AggregateAndProofData::from_ssz(self.version, &self.data_ssz)
    }

    /// `DataSSZ` as sync-committee contributions (the spec's
    /// `GetSyncCommitteeContributions`; the version is not consulted).
    pub fn sync_committee_contributions(&self) -> Result<Contributions, Error> {
        Contributions::from_ssz_bytes(&self.data_ssz)
            .map_err(|e| Error::Decode(format!("sync committee contributions: {e:?}")))
    }

    /// The spec's `Validate()`: `DataSSZ` must decode as the duty role's object;
    /// registrations, exits and unknown roles have no consensus data.
    pub fn validate(&self) -> Result<(), Error> {
        match self.duty.beacon_role() {
            Some(BeaconRole::Aggregator) => self.aggregate_and_proof().map(drop),
            Some(BeaconRole::Proposer) => self.proposal().map(drop),
            Some(BeaconRole::SyncCommitteeContribution) => {
                self.sync_committee_contributions().map(drop)
            }
            Some(BeaconRole::ValidatorRegistration) => {
                Err(Error::ValidatorRegistrationNoConsensusData)
            }
            Some(BeaconRole::VoluntaryExit) => Err(Error::VoluntaryExitNoConsensusData),
            Some(BeaconRole::Attester | BeaconRole::SyncCommittee) | None => {
                Err(Error::UnknownDutyRole(self.duty.role))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duty(role: BeaconRole) -> ValidatorDuty {
        ValidatorDuty {
            role: role.to_u64(),
            pubkey: [7; 48],
            slot: 12,
            validator_index: 1,
            committee_index: 3,
            committee_length: 128,
            committees_at_slot: 36,
            validator_committee_index: 11,
            validator_sync_committee_indices: VariableList::new(vec![0, 1, 2]).unwrap(),
        }
    }

    /// The chunked blob-list root equals the generic `TreeHash` one (0, 1 and 3 blobs of
    /// varied bytes).
    #[test]
    fn blobs_root_matches_the_generic_tree_hash() {
        use super::super::{Blob, DenebBlobCommitmentsMax};
        for n in [0usize, 1, 3] {
            let blobs: Vec<Blob> = (0..n)
                .map(|i| {
                    let bytes: Vec<u8> = (0..super::super::BLOB_SIZE)
                        .map(|j| (j * 31 + i * 7) as u8)
                        .collect();
                    Blob::new(bytes).unwrap()
                })
                .collect();
            let list: VariableList<Blob, DenebBlobCommitmentsMax> =
                VariableList::new(blobs).unwrap();
            assert_eq!(blobs_root(&list), list.tree_hash_root(), "{n} blobs");
        }
    }

    #[test]
    fn data_versions_round_trip() {
        for v in DataVersion::ALL {
            assert_eq!(DataVersion::from_u64(v.to_u64()), Some(v));
            assert_eq!(DataVersion::from_name(v.name()), Some(v));
        }
        assert_eq!(DataVersion::from_u64(0), None);
        assert_eq!(DataVersion::from_u64(8), None);
    }

    #[test]
    fn contributions_are_encoded_with_offsets() {
        let c = Contribution {
            selection_proof_sig: [1; 96],
            contribution: SyncCommitteeContribution {
                slot: 5,
                beacon_block_root: [2; 32],
                subcommittee_index: 1,
                aggregation_bits: ssz_types::BitVector::new(),
                signature: [3; 96],
            },
        };
        let list: Contributions = VariableList::new(vec![c.clone(), c]).unwrap();
        let bytes = list.as_ssz_bytes();
        assert_eq!(bytes.len(), 2 * (4 + CONTRIBUTION_SIZE));
        assert_eq!(&bytes[..4], &8u32.to_le_bytes());
        assert_eq!(Contributions::from_ssz_bytes(&bytes).unwrap(), list);
    }

    #[test]
    fn roles_without_consensus_data_are_rejected() {
        let cd = |role| ValidatorConsensusData::new(duty(role), 4, vec![0; 16]).unwrap();
        assert_eq!(
            cd(BeaconRole::ValidatorRegistration).validate(),
            Err(Error::ValidatorRegistrationNoConsensusData)
        );
        assert_eq!(
            cd(BeaconRole::VoluntaryExit).validate(),
            Err(Error::VoluntaryExitNoConsensusData)
        );
        assert_eq!(
            cd(BeaconRole::Attester).validate(),
            Err(Error::UnknownDutyRole(0))
        );
    }

    #[test]
    fn proposals_need_a_block_version() {
        let cd = ValidatorConsensusData::new(duty(BeaconRole::Proposer), 1, vec![]).unwrap();
        assert_eq!(cd.validate(), Err(Error::UnknownDataVersion(1)));
        let cd = ValidatorConsensusData::new(duty(BeaconRole::Proposer), 4, vec![]).unwrap();
        assert!(matches!(cd.validate(), Err(Error::Decode(_))));
    }
}
