//! The envelope of every SSV gossip message: `SignedSSVMessage` ⊃ `SSVMessage` ⊃ `MessageID`.
//!
//! Byte layouts follow ssv-spec v1.2.2 exactly (`types/messages.go`, `types/signed_ssv_msg.go`):
//!
//! ```text
//! MessageID        = domain (4) ‖ role (u32 LE, 4) ‖ duty executor id (48, right-aligned)
//! SSVMessage       = { MsgType: u64, MsgID: [56]byte, Data: List[u8, 722412] }
//! SignedSSVMessage = { Signatures: List[List[u8, 256], 13], OperatorIDs: List[u64, 13],
//!                      SSVMessage: SSVMessage, FullData: List[u8, 8388836] }
//! ```
//!
//! The Go types tag `Signatures` as `ssz-size:"?,256"`, but the generated codec encodes each
//! signature as a variable-size item (with an offset) and hashes it as a byte list: we do the
//! same to stay byte-compatible, and [`SignedSsvMessage::from_ssz`] requires every signature
//! to be exactly 256 bytes.

use ssz::{Decode, Encode};
use ssz_derive::{Decode, Encode};
use ssz_types::VariableList;
use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

use crate::error::Error;
use crate::limits::{
    CommitteeMax, FullDataMax, MESSAGE_ID_SIZE, RSA_SIGNATURE_SIZE, RsaSignatureLen,
    SIGNED_SSV_MESSAGE_MAX, SsvMessageDataMax,
};
use crate::types::{BlsPublicKey, DomainType, OperatorId};

/// What an `SSVMessage` carries in `Data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsgType {
    /// A QBFT consensus message (`qbft::Message`).
    Consensus,
    /// A `PartialSignatureMessages` (pre- or post-consensus partial signatures).
    PartialSignature,
}

impl MsgType {
    /// The wire value (u64).
    pub const fn to_u64(self) -> u64 {
        match self {
            MsgType::Consensus => 0,
            MsgType::PartialSignature => 1,
        }
    }

    /// Parses the wire value; `None` for a type this protocol version does not know.
    pub const fn from_u64(value: u64) -> Option<Self> {
        match value {
            0 => Some(MsgType::Consensus),
            1 => Some(MsgType::PartialSignature),
            _ => None,
        }
    }
}

/// The duty a runner performs (ssv-spec `RunnerRole`, an int32 on the wire of `MessageID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunnerRole {
    /// Committee duties: attestations and sync-committee messages of all of a committee's
    /// validators, agreed once per committee and slot.
    Committee,
    /// Aggregation of attestations.
    Aggregator,
    /// Block proposal.
    Proposer,
    /// Sync-committee contribution.
    SyncCommitteeContribution,
    /// Validator registration (MEV-boost).
    ValidatorRegistration,
    /// Voluntary exit.
    VoluntaryExit,
}

impl RunnerRole {
    /// Every role, in wire order.
    pub const ALL: [RunnerRole; 6] = [
        RunnerRole::Committee,
        RunnerRole::Aggregator,
        RunnerRole::Proposer,
        RunnerRole::SyncCommitteeContribution,
        RunnerRole::ValidatorRegistration,
        RunnerRole::VoluntaryExit,
    ];

    /// The wire value.
    pub const fn to_i32(self) -> i32 {
        match self {
            RunnerRole::Committee => 0,
            RunnerRole::Aggregator => 1,
            RunnerRole::Proposer => 2,
            RunnerRole::SyncCommitteeContribution => 3,
            RunnerRole::ValidatorRegistration => 4,
            RunnerRole::VoluntaryExit => 5,
        }
    }

    /// Parses the wire value; `None` for an unknown role.
    pub fn from_i32(value: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.to_i32() == value)
    }
}

/// `RunnerRole` as ssv-spec encodes an unknown role (-1).
pub const RUNNER_ROLE_UNKNOWN: i32 = -1;

/// Identifies the duty a message belongs to: `domain ‖ role ‖ duty executor id`. The duty
/// executor is a validator public key (48 bytes) or a committee ID (32 bytes, left-padded
/// with zeros to 48).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; MESSAGE_ID_SIZE]);

const DOMAIN_END: usize = 4;
const ROLE_END: usize = 8;
const DUTY_EXECUTOR_ID_SIZE: usize = MESSAGE_ID_SIZE - ROLE_END;

impl MessageId {
    /// Builds an ID from its parts; `duty_executor_id` is right-aligned in its 48 bytes.
    ///
    /// # Panics
    /// If `duty_executor_id` is longer than 48 bytes (a programmer error: callers pass a
    /// validator public key or a committee ID).
    pub fn new(domain: DomainType, role: RunnerRole, duty_executor_id: &[u8]) -> Self {
        assert!(
            duty_executor_id.len() <= DUTY_EXECUTOR_ID_SIZE,
            "duty executor id too long"
        );
        let mut id = [0u8; MESSAGE_ID_SIZE];
        id[..DOMAIN_END].copy_from_slice(&domain.0);
        id[DOMAIN_END..ROLE_END].copy_from_slice(&role.to_i32().to_le_bytes());
        let start = MESSAGE_ID_SIZE - duty_executor_id.len();
        id[start..].copy_from_slice(duty_executor_id);
        MessageId(id)
    }

    /// The ID of a validator duty (proposer, aggregator, ...).
    pub fn for_validator(domain: DomainType, role: RunnerRole, validator: &BlsPublicKey) -> Self {
        Self::new(domain, role, validator)
    }

    /// The ID of a committee duty (role `Committee`).
    pub fn for_committee(domain: DomainType, committee: &crate::committee::CommitteeId) -> Self {
        Self::new(domain, RunnerRole::Committee, &committee.0)
    }

    /// Parses 56 bytes; any other length is an error.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; MESSAGE_ID_SIZE] = bytes.try_into().map_err(|_| {
            Error::Decode(format!("message id of {} bytes, expected 56", bytes.len()))
        })?;
        Ok(MessageId(arr))
    }

    /// The domain part.
    pub fn domain(&self) -> DomainType {
        let mut d = [0u8; 4];
        d.copy_from_slice(&self.0[..DOMAIN_END]);
        DomainType(d)
    }

    /// The raw role value (use [`RunnerRole::from_i32`] to interpret it).
    pub fn role_raw(&self) -> i32 {
        let mut r = [0u8; 4];
        r.copy_from_slice(&self.0[DOMAIN_END..ROLE_END]);
        i32::from_le_bytes(r)
    }

    /// The role, if known.
    pub fn role(&self) -> Option<RunnerRole> {
        RunnerRole::from_i32(self.role_raw())
    }

    /// The 48-byte duty executor id (a validator public key, or a zero-padded committee ID).
    pub fn duty_executor_id(&self) -> &[u8; DUTY_EXECUTOR_ID_SIZE] {
        self.0[ROLE_END..]
            .try_into()
            .expect("slice of a fixed-size array has the fixed length")
    }

    /// Whether this message belongs to the given validator (its duty executor id is the
    /// validator's public key); domain and role are not considered, as in ssv-spec.
    pub fn belongs_to_validator(&self, validator: &BlsPublicKey) -> bool {
        self.duty_executor_id() == validator
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({})", hex::encode(self.0))
    }
}

impl Encode for MessageId {
    fn is_ssz_fixed_len() -> bool {
        true
    }
    fn ssz_fixed_len() -> usize {
        MESSAGE_ID_SIZE
    }
    fn ssz_bytes_len(&self) -> usize {
        MESSAGE_ID_SIZE
    }
    fn ssz_append(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.0);
    }
}

impl Decode for MessageId {
    fn is_ssz_fixed_len() -> bool {
        true
    }
    fn ssz_fixed_len() -> usize {
        MESSAGE_ID_SIZE
    }
    fn from_ssz_bytes(bytes: &[u8]) -> Result<Self, ssz::DecodeError> {
        <[u8; MESSAGE_ID_SIZE]>::from_ssz_bytes(bytes).map(MessageId)
    }
}

impl TreeHash for MessageId {
    fn tree_hash_type() -> tree_hash::TreeHashType {
        <[u8; MESSAGE_ID_SIZE]>::tree_hash_type()
    }
    fn tree_hash_packed_encoding(&self) -> tree_hash::PackedEncoding {
        self.0.tree_hash_packed_encoding()
    }
    fn tree_hash_packing_factor() -> usize {
        <[u8; MESSAGE_ID_SIZE]>::tree_hash_packing_factor()
    }
    fn tree_hash_root(&self) -> tree_hash::Hash256 {
        self.0.tree_hash_root()
    }
}

/// The signed payload of a gossip message. Its SSZ encoding is written by hand (the derived
/// one appends the data byte by byte; this one copies it: every operator signature is over
/// this encoding, so every validation and every signature encodes it).
#[derive(Debug, Clone, PartialEq, Eq, Decode, TreeHash)]
pub struct SsvMessage {
    /// Raw [`MsgType`] value.
    pub msg_type: u64,
    /// Which duty this message is about.
    pub msg_id: MessageId,
    /// The SSZ-encoded inner message.
    pub data: VariableList<u8, SsvMessageDataMax>,
}

/// Bytes of an `SSVMessage`'s fixed part: type, ID and the data's offset.
const SSV_MESSAGE_FIXED_PART: usize = 8 + MESSAGE_ID_SIZE + 4;

impl Encode for SsvMessage {
    fn is_ssz_fixed_len() -> bool {
        false
    }
    fn ssz_bytes_len(&self) -> usize {
        SSV_MESSAGE_FIXED_PART + self.data.len()
    }
    fn ssz_append(&self, buf: &mut Vec<u8>) {
        buf.reserve(self.ssz_bytes_len());
        buf.extend_from_slice(&self.msg_type.to_le_bytes());
        buf.extend_from_slice(&self.msg_id.0);
        buf.extend_from_slice(&(SSV_MESSAGE_FIXED_PART as u32).to_le_bytes());
        buf.extend_from_slice(&self.data);
    }
}

impl SsvMessage {
    /// Builds a message; fails if `data` is over [`crate::limits::SSV_MESSAGE_DATA_MAX`].
    pub fn new(msg_type: MsgType, msg_id: MessageId, data: Vec<u8>) -> Result<Self, Error> {
        Ok(SsvMessage {
            msg_type: msg_type.to_u64(),
            msg_id,
            data: VariableList::new(data)
                .map_err(|e| Error::Decode(format!("SSVMessage data: {e:?}")))?,
        })
    }

    /// The message type, if known.
    pub fn kind(&self) -> Option<MsgType> {
        MsgType::from_u64(self.msg_type)
    }

    /// Structural rules: a known message type and non-empty data.
    pub fn validate(&self) -> Result<(), Error> {
        if self.kind().is_none() {
            return Err(Error::UnknownMsgType(self.msg_type));
        }
        if self.data.is_empty() {
            return Err(Error::EmptyData);
        }
        Ok(())
    }
}

/// An operator's RSA-2048 PKCS#1 v1.5 signature over sha256 of the SSZ `SSVMessage`.
pub type RsaSignature = [u8; RSA_SIGNATURE_SIZE];

/// What travels on gossip: an `SSVMessage` with one operator signature per signer (one for
/// most messages; a quorum for decided/aggregated commits), and optionally the full value
/// whose root the QBFT message carries.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SignedSsvMessage {
    /// One RSA signature per operator in `operator_ids`, same order (each 256 bytes once
    /// decoded through [`SignedSsvMessage::from_ssz`]).
    pub signatures: VariableList<VariableList<u8, RsaSignatureLen>, CommitteeMax>,
    /// Signers.
    pub operator_ids: VariableList<OperatorId, CommitteeMax>,
    /// The signed message.
    pub ssv_message: SsvMessage,
    /// The full proposed value (proposals and round changes carry it), else empty.
    pub full_data: VariableList<u8, FullDataMax>,
}

impl SignedSsvMessage {
    /// Decodes gossip bytes. Never panics; rejects input over the wire limit before decoding,
    /// and every list is checked against its limit before it is allocated.
    pub fn from_ssz(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > SIGNED_SSV_MESSAGE_MAX {
            return Err(Error::Decode(format!(
                "{} bytes exceed the SignedSSVMessage maximum of {SIGNED_SSV_MESSAGE_MAX}",
                bytes.len()
            )));
        }
        let msg = Self::from_ssz_bytes(bytes).map_err(Error::from)?;
        if let Some(bad) = msg
            .signatures
            .iter()
            .find(|s| s.len() != RSA_SIGNATURE_SIZE)
        {
            return Err(Error::Decode(format!(
                "signature of {} bytes, expected 256",
                bad.len()
            )));
        }
        Ok(msg)
    }

    /// The `i`-th signature as a fixed array (every signature has 256 bytes after
    /// [`SignedSsvMessage::from_ssz`] or [`SignedSsvMessage::new`]).
    pub fn signature(&self, i: usize) -> Option<&RsaSignature> {
        self.signatures
            .get(i)
            .and_then(|s| s.as_ref().try_into().ok())
    }

    /// Encodes to SSZ.
    pub fn to_ssz(&self) -> Vec<u8> {
        self.as_ssz_bytes()
    }

    /// Builds a message from its parts, checking list limits.
    pub fn new(
        signatures: Vec<RsaSignature>,
        operator_ids: Vec<OperatorId>,
        ssv_message: SsvMessage,
        full_data: Vec<u8>,
    ) -> Result<Self, Error> {
        Ok(SignedSsvMessage {
            signatures: VariableList::new(
                signatures
                    .into_iter()
                    .map(|s| VariableList::new(s.to_vec()).expect("256 bytes fit a 256-byte list"))
                    .collect(),
            )
            .map_err(|e| Error::Decode(format!("signatures: {e:?}")))?,
            operator_ids: VariableList::new(operator_ids)
                .map_err(|e| Error::Decode(format!("operator ids: {e:?}")))?,
            ssv_message,
            full_data: VariableList::new(full_data)
                .map_err(|e| Error::Decode(format!("full data: {e:?}")))?,
        })
    }

    /// ssv-spec's `SignedSSVMessage.Validate`: signatures present, signers present, unique and
    /// non-zero, as many signatures as signers, and a valid `SSVMessage`.
    pub fn validate(&self) -> Result<(), Error> {
        validate_signed_parts(
            self.signatures.iter().map(|s| s.len()),
            &self.operator_ids,
            Some(&self.ssv_message),
        )
    }

    /// Whether `operator_id` is one of the signers.
    pub fn is_signed_by(&self, operator_id: OperatorId) -> bool {
        self.operator_ids.contains(&operator_id)
    }
}

/// The rules of [`SignedSsvMessage::validate`] over the parts of a message, so that a message
/// that could not be represented by the strict type (an empty signature, say) is judged by
/// the same code.
pub fn validate_signed_parts(
    signature_lens: impl ExactSizeIterator<Item = usize>,
    operator_ids: &[OperatorId],
    ssv_message: Option<&SsvMessage>,
) -> Result<(), Error> {
    let signature_count = signature_lens.len();
    if signature_count == 0 {
        return Err(Error::NoSignatures);
    }
    for len in signature_lens {
        if len == 0 {
            return Err(Error::EmptySignature);
        }
    }
    if operator_ids.is_empty() {
        return Err(Error::NoSigners);
    }
    for (i, signer) in operator_ids.iter().enumerate() {
        if operator_ids[..i].contains(signer) {
            return Err(Error::NonUniqueSigner(*signer));
        }
        if *signer == 0 {
            return Err(Error::ZeroSigner);
        }
    }
    if signature_count != operator_ids.len() {
        return Err(Error::SignatureCountMismatch {
            signatures: signature_count,
            signers: operator_ids.len(),
        });
    }
    match ssv_message {
        None => Err(Error::NilSsvMessage),
        Some(m) => m.validate(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written encoding is the derived one, byte for byte, and decodes back.
    #[test]
    fn ssv_message_encoding_is_the_derived_one() {
        #[derive(ssz_derive::Encode)]
        struct Derived {
            msg_type: u64,
            msg_id: MessageId,
            data: VariableList<u8, SsvMessageDataMax>,
        }
        for len in [0usize, 1, 57, 1000] {
            let m = SsvMessage::new(
                MsgType::PartialSignature,
                MessageId([len as u8; MESSAGE_ID_SIZE]),
                (0..len).map(|i| i as u8).collect(),
            )
            .expect("message");
            let derived = Derived {
                msg_type: m.msg_type,
                msg_id: m.msg_id,
                data: m.data.clone(),
            };
            assert_eq!(m.as_ssz_bytes(), derived.as_ssz_bytes());
            assert_eq!(
                SsvMessage::from_ssz_bytes(&m.as_ssz_bytes()).expect("decodes"),
                m
            );
        }
    }

    #[test]
    fn message_id_layout() {
        let pk = [7u8; 48];
        let id = MessageId::for_validator(DomainType::MAINNET, RunnerRole::Proposer, &pk);
        assert_eq!(&id.0[..4], &[0, 0, 0, 1]);
        assert_eq!(&id.0[4..8], &[2, 0, 0, 0]);
        assert_eq!(id.role(), Some(RunnerRole::Proposer));
        assert!(id.belongs_to_validator(&pk));
        let cid = crate::committee::CommitteeId([9u8; 32]);
        let id = MessageId::for_committee(DomainType::HOODI, &cid);
        assert_eq!(&id.0[8..24], &[0u8; 16]);
        assert_eq!(&id.0[24..], &[9u8; 32]);
        assert_eq!(id.role(), Some(RunnerRole::Committee));
    }

    #[test]
    fn oversized_input_is_rejected_before_decoding() {
        let bytes = vec![0u8; SIGNED_SSV_MESSAGE_MAX + 1];
        assert!(matches!(
            SignedSsvMessage::from_ssz(&bytes),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = SignedSsvMessage::from_ssz(&bytes);
        }
    }
}
