//! The error type of this crate. Every variant maps to an ssv-spec error code (see
//! [`Error::code`]), which is what the spec vectors check, and documents its effect on the
//! sending peer's score where it is a message-validation outcome.

use crate::error_code::ErrorCode;
use crate::types::OperatorId;

/// Errors of the wire types and protocol state machines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bytes that are not valid SSZ for the expected type, or exceed a declared limit.
    /// Peer scoring: reject (the sender produced malformed bytes).
    #[error("malformed SSZ: {0}")]
    Decode(String),
    /// A `SignedSSVMessage` without signatures. Peer scoring: reject.
    #[error("no signatures")]
    NoSignatures,
    /// A signature of zero length. Peer scoring: reject.
    #[error("empty signature")]
    EmptySignature,
    /// A `SignedSSVMessage` without signers. Peer scoring: reject.
    #[error("no signers")]
    NoSigners,
    /// The same operator listed twice as a signer. Peer scoring: reject.
    #[error("non-unique signer {0}")]
    NonUniqueSigner(OperatorId),
    /// Operator ID 0 as a signer. Peer scoring: reject.
    #[error("signer ID 0 not allowed")]
    ZeroSigner,
    /// Different numbers of signatures and signers. Peer scoring: reject.
    #[error("{signatures} signatures for {signers} signers")]
    SignatureCountMismatch {
        /// Number of signatures.
        signatures: usize,
        /// Number of signers.
        signers: usize,
    },
    /// A `SignedSSVMessage` without its `SSVMessage`. Peer scoring: reject.
    #[error("nil SSVMessage")]
    NilSsvMessage,
    /// An `SSVMessage` of a type this protocol version does not know. Peer scoring: reject.
    #[error("unknown message type {0}")]
    UnknownMsgType(u64),
    /// An `SSVMessage` with empty data. Peer scoring: reject.
    #[error("empty message data")]
    EmptyData,
    /// A `PartialSignatureMessages` with no message. Peer scoring: reject.
    #[error("no partial signature messages")]
    NoPartialSigMessages,
    /// Partial signatures from different signers in one container. Peer scoring: reject.
    #[error("inconsistent signers")]
    InconsistentSigners,
    /// Attestation source epoch not lower than target epoch. Peer scoring: reject.
    #[error("attestation source epoch {source_epoch} not less than target epoch {target_epoch}")]
    AttestationSourceNotLessThanTarget {
        /// Source epoch.
        source_epoch: u64,
        /// Target epoch.
        target_epoch: u64,
    },
    /// A validator registration has no consensus value. Peer scoring: reject.
    #[error("validator registration has no consensus data")]
    ValidatorRegistrationNoConsensusData,
    /// A voluntary exit has no consensus value. Peer scoring: reject.
    #[error("voluntary exit has no consensus data")]
    VoluntaryExitNoConsensusData,
    /// A duty role with no validator consensus value (or unknown). Peer scoring: reject.
    #[error("unknown duty role {0}")]
    UnknownDutyRole(u64),
    /// A data version with no block/aggregate shape here (spec code 13). Peer scoring: reject.
    #[error("unknown data version {0}")]
    UnknownDataVersion(u64),
    /// Any other rule of the spec, named by its code.
    #[error("{code:?}: {reason}")]
    Spec {
        /// The spec error code.
        code: ErrorCode,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Spec`].
    pub fn spec(code: ErrorCode, reason: impl Into<String>) -> Self {
        Error::Spec {
            code,
            reason: reason.into(),
        }
    }

    /// The ssv-spec error code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Decode(_) => ErrorCode::UnmarshalSSZ,
            Error::NoSignatures => ErrorCode::NoSignatures,
            Error::EmptySignature => ErrorCode::EmptySignature,
            Error::NoSigners => ErrorCode::NoSigners,
            Error::NonUniqueSigner(_) => ErrorCode::NonUniqueSigner,
            Error::ZeroSigner => ErrorCode::ZeroSignerNotAllowed,
            Error::SignatureCountMismatch { .. } => ErrorCode::IncorrectNumberOfSignatures,
            Error::NilSsvMessage => ErrorCode::NilSSVMessage,
            Error::UnknownMsgType(_) => ErrorCode::MessageTypeInvalid,
            Error::EmptyData => ErrorCode::UnmarshalSSZ,
            Error::NoPartialSigMessages => ErrorCode::NoPartialSigMessages,
            Error::InconsistentSigners => ErrorCode::InconsistentSigners,
            Error::AttestationSourceNotLessThanTarget { .. } => {
                ErrorCode::AttestationSourceNotLessThanTarget
            }
            Error::ValidatorRegistrationNoConsensusData => {
                ErrorCode::ValidatorRegistrationNoConsensusData
            }
            Error::VoluntaryExitNoConsensusData => ErrorCode::ValidatorExitNoConsensusData,
            Error::UnknownDutyRole(_) => ErrorCode::UnknownDutyRoleData,
            Error::UnknownDataVersion(_) => ErrorCode::UnknownBlockVersion,
            Error::Spec { code, .. } => *code,
        }
    }
}

impl From<ssz::DecodeError> for Error {
    fn from(e: ssz::DecodeError) -> Self {
        Error::Decode(format!("{e:?}"))
    }
}
