//! The numeric error codes of ssv-spec v1.2.2 (`types/error.go`, iota + 1), which the spec
//! vectors name in `ExpectedErrorCode`. Every error of this crate maps to one of them.

/// An ssv-spec error code. The discriminant is the number the vectors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// `UnmarshalSSZErrorCode` = 1
    UnmarshalSSZ = 1,
    /// `FutureMessageErrorCode` = 2
    FutureMessage = 2,
    /// `ZeroCommitMessagesErrorCode` = 3
    ZeroCommitMessages = 3,
    /// `NoRunningDutyErrorCode` = 4
    NoRunningDuty = 4,
    /// `CommitMessageInvalidErrorCode` = 5
    CommitMessageInvalid = 5,
    /// `CommitMessageTypeWrongErrorCode` = 6
    CommitMessageTypeWrong = 6,
    /// `WrongMessageHeightErrorCode` = 7
    WrongMessageHeight = 7,
    /// `SignerIsNotInCommitteeErrorCode` = 8
    SignerIsNotInCommittee = 8,
    /// `NonUniqueSignerErrorCode` = 9
    NonUniqueSigner = 9,
    /// `ValidatorRegistrationNoConsensusDataErrorCode` = 10
    ValidatorRegistrationNoConsensusData = 10,
    /// `ValidatorExitNoConsensusDataErrorCode` = 11
    ValidatorExitNoConsensusData = 11,
    /// `UnknownDutyRoleDataErrorCode` = 12
    UnknownDutyRoleData = 12,
    /// `UnknownBlockVersionErrorCode` = 13
    UnknownBlockVersion = 13,
    /// `IncorrectNumberOfSignaturesErrorCode` = 14
    IncorrectNumberOfSignatures = 14,
    /// `EmptySignatureErrorCode` = 15
    EmptySignature = 15,
    /// `NilSSVMessageErrorCode` = 16
    NilSSVMessage = 16,
    /// `NoSignaturesErrorCode` = 17
    NoSignatures = 17,
    /// `NoSignersErrorCode` = 18
    NoSigners = 18,
    /// `ZeroSignerNotAllowedErrorCode` = 19
    ZeroSignerNotAllowed = 19,
    /// `InconsistentSignersErrorCode` = 20
    InconsistentSigners = 20,
    /// `NoPartialSigMessagesErrorCode` = 21
    NoPartialSigMessages = 21,
    /// `NoRunnerForSlotErrorCode` = 22
    NoRunnerForSlot = 22,
    /// `SkipConsensusMessageAsInstanceIsDecidedErrorCode` = 23
    SkipConsensusMessageAsInstanceIsDecided = 23,
    /// `SkipConsensusMessageAsConsensusHasFinishedErrorCode` = 24
    SkipConsensusMessageAsConsensusHasFinished = 24,
    /// `DecodeBeaconVoteErrorCode` = 25
    DecodeBeaconVote = 25,
    /// `NoBeaconDutiesErrorCode` = 26
    NoBeaconDuties = 26,
    /// `NoValidatorSharesErrorCode` = 27
    NoValidatorShares = 27,
    /// `AttestationSourceNotLessThanTargetErrorCode` = 28
    AttestationSourceNotLessThanTarget = 28,
    /// `CheckpointMismatch` = 29
    CheckpointMismatch = 29,
    /// `MessageIDCommitteeIDMismatchErrorCode` = 30
    MessageIDCommitteeIDMismatch = 30,
    /// `MessageTypeInvalidErrorCode` = 31
    MessageTypeInvalid = 31,
    /// `MessageRoundInvalidErrorCode` = 32
    MessageRoundInvalid = 32,
    /// `MessageIdentifierInvalidErrorCode` = 33
    MessageIdentifierInvalid = 33,
    /// `ReconstructSignatureErrorCode` = 34
    ReconstructSignature = 34,
    /// `SlashableAttestationErrorCode` = 35
    SlashableAttestation = 35,
    /// `DecidedWrongInstanceErrorCode` = 36
    DecidedWrongInstance = 36,
    /// `ValidatorRegistrationNoConsensusPhaseErrorCode` = 37
    ValidatorRegistrationNoConsensusPhase = 37,
    /// `ValidatorRegistrationNoPostConsensusPhaseErrorCode` = 38
    ValidatorRegistrationNoPostConsensusPhase = 38,
    /// `ValidatorExitNoConsensusPhaseErrorCode` = 39
    ValidatorExitNoConsensusPhase = 39,
    /// `ValidatorExitNoPostConsensusPhaseErrorCode` = 40
    ValidatorExitNoPostConsensusPhase = 40,
    /// `SSVMessageHasInvalidSignatureErrorCode` = 41
    SSVMessageHasInvalidSignature = 41,
    /// `DutyAlreadyPassedErrorCode` = 42
    DutyAlreadyPassed = 42,
    /// `WrongSigningRootErrorCode` = 43
    WrongSigningRoot = 43,
    /// `PartialSigInconsistentSignerErrorCode` = 44
    PartialSigInconsistentSigner = 44,
    /// `NoDecidedValueErrorCode` = 45
    NoDecidedValue = 45,
    /// `NoRunningConsensusInstanceErrorCode` = 46
    NoRunningConsensusInstance = 46,
    /// `ConsensusInstanceNotDecidedErrorCode` = 47
    ConsensusInstanceNotDecided = 47,
    /// `PartialSigMessageInvalidSlotErrorCode` = 48
    PartialSigMessageInvalidSlot = 48,
    /// `PartialSigMessageFutureSlotErrorCode` = 49
    PartialSigMessageFutureSlot = 49,
    /// `UnknownValidatorIndexErrorCode` = 50
    UnknownValidatorIndex = 50,
    /// `WrongRootsCountErrorCode` = 51
    WrongRootsCount = 51,
    /// `DutyEpochTooFarFutureErrorCode` = 52
    DutyEpochTooFarFuture = 52,
    /// `WrongBeaconRoleTypeErrorCode` = 53
    WrongBeaconRoleType = 53,
    /// `WrongValidatorIndexErrorCode` = 54
    WrongValidatorIndex = 54,
    /// `WrongValidatorPubkeyErrorCode` = 55
    WrongValidatorPubkey = 55,
    /// `InstanceStoppedProcessingMessagesErrorCode` = 56
    InstanceStoppedProcessingMessages = 56,
    /// `WrongMessageRoundErrorCode` = 57
    WrongMessageRound = 57,
    /// `MessageAllowsOneSignerOnlyErrorCode` = 58
    MessageAllowsOneSignerOnly = 58,
    /// `NoProposalForCurrentRoundErrorCode` = 59
    NoProposalForCurrentRound = 59,
    /// `PastRoundErrorCode` = 60
    PastRound = 60,
    /// `ProposedDataMismatchErrorCode` = 61
    ProposedDataMismatch = 61,
    /// `RoundChangeNoQuorumErrorCode` = 62
    RoundChangeNoQuorum = 62,
    /// `ProposalInvalidErrorCode` = 63
    ProposalInvalid = 63,
    /// `RootHashInvalidErrorCode` = 64
    RootHashInvalid = 64,
    /// `MessageSignatureInvalidErrorCode` = 65
    MessageSignatureInvalid = 65,
    /// `QBFTValueInvalidErrorCode` = 66
    QBFTValueInvalid = 66,
    /// `PrepareMessageInvalidErrorCode` = 67
    PrepareMessageInvalid = 67,
    /// `JustificationsNoQuorumInvalidErrorCode` = 68
    JustificationsNoQuorumInvalid = 68,
    /// `ProposalLeaderInvalidErrorCode` = 69
    ProposalLeaderInvalid = 69,
    /// `InstanceAlreadyRunningErrorCode` = 70
    InstanceAlreadyRunning = 70,
    /// `StartInstanceErrorCode` = 71
    StartInstance = 71,
    /// `TimeoutInstanceErrorCode` = 72
    TimeoutInstance = 72,
}

impl ErrorCode {
    /// The number the spec vectors use for this code.
    pub const fn as_u16(self) -> u16 {
        self as u16
    }

    /// Looks a code up by its spec name (as in `error-codes.json`).
    pub fn from_spec_name(name: &str) -> Option<Self> {
        match name {
            "UnmarshalSSZErrorCode" => Some(Self::UnmarshalSSZ),
            "FutureMessageErrorCode" => Some(Self::FutureMessage),
            "ZeroCommitMessagesErrorCode" => Some(Self::ZeroCommitMessages),
            "NoRunningDutyErrorCode" => Some(Self::NoRunningDuty),
            "CommitMessageInvalidErrorCode" => Some(Self::CommitMessageInvalid),
            "CommitMessageTypeWrongErrorCode" => Some(Self::CommitMessageTypeWrong),
            "WrongMessageHeightErrorCode" => Some(Self::WrongMessageHeight),
            "SignerIsNotInCommitteeErrorCode" => Some(Self::SignerIsNotInCommittee),
            "NonUniqueSignerErrorCode" => Some(Self::NonUniqueSigner),
            "ValidatorRegistrationNoConsensusDataErrorCode" => {
                Some(Self::ValidatorRegistrationNoConsensusData)
            }
            "ValidatorExitNoConsensusDataErrorCode" => Some(Self::ValidatorExitNoConsensusData),
            "UnknownDutyRoleDataErrorCode" => Some(Self::UnknownDutyRoleData),
            "UnknownBlockVersionErrorCode" => Some(Self::UnknownBlockVersion),
            "IncorrectNumberOfSignaturesErrorCode" => Some(Self::IncorrectNumberOfSignatures),
            "EmptySignatureErrorCode" => Some(Self::EmptySignature),
            "NilSSVMessageErrorCode" => Some(Self::NilSSVMessage),
            "NoSignaturesErrorCode" => Some(Self::NoSignatures),
            "NoSignersErrorCode" => Some(Self::NoSigners),
            "ZeroSignerNotAllowedErrorCode" => Some(Self::ZeroSignerNotAllowed),
            "InconsistentSignersErrorCode" => Some(Self::InconsistentSigners),
            "NoPartialSigMessagesErrorCode" => Some(Self::NoPartialSigMessages),
            "NoRunnerForSlotErrorCode" => Some(Self::NoRunnerForSlot),
            "SkipConsensusMessageAsInstanceIsDecidedErrorCode" => {
                Some(Self::SkipConsensusMessageAsInstanceIsDecided)
            }
            "SkipConsensusMessageAsConsensusHasFinishedErrorCode" => {
                Some(Self::SkipConsensusMessageAsConsensusHasFinished)
            }
            "DecodeBeaconVoteErrorCode" => Some(Self::DecodeBeaconVote),
            "NoBeaconDutiesErrorCode" => Some(Self::NoBeaconDuties),
            "NoValidatorSharesErrorCode" => Some(Self::NoValidatorShares),
            "AttestationSourceNotLessThanTargetErrorCode" => {
                Some(Self::AttestationSourceNotLessThanTarget)
            }
            "CheckpointMismatch" => Some(Self::CheckpointMismatch),
            "MessageIDCommitteeIDMismatchErrorCode" => Some(Self::MessageIDCommitteeIDMismatch),
            "MessageTypeInvalidErrorCode" => Some(Self::MessageTypeInvalid),
            "MessageRoundInvalidErrorCode" => Some(Self::MessageRoundInvalid),
            "MessageIdentifierInvalidErrorCode" => Some(Self::MessageIdentifierInvalid),
            "ReconstructSignatureErrorCode" => Some(Self::ReconstructSignature),
            "SlashableAttestationErrorCode" => Some(Self::SlashableAttestation),
            "DecidedWrongInstanceErrorCode" => Some(Self::DecidedWrongInstance),
            "ValidatorRegistrationNoConsensusPhaseErrorCode" => {
                Some(Self::ValidatorRegistrationNoConsensusPhase)
            }
            "ValidatorRegistrationNoPostConsensusPhaseErrorCode" => {
                Some(Self::ValidatorRegistrationNoPostConsensusPhase)
            }
            "ValidatorExitNoConsensusPhaseErrorCode" => Some(Self::ValidatorExitNoConsensusPhase),
            "ValidatorExitNoPostConsensusPhaseErrorCode" => {
                Some(Self::ValidatorExitNoPostConsensusPhase)
            }
            "SSVMessageHasInvalidSignatureErrorCode" => Some(Self::SSVMessageHasInvalidSignature),
            "DutyAlreadyPassedErrorCode" => Some(Self::DutyAlreadyPassed),
            "WrongSigningRootErrorCode" => Some(Self::WrongSigningRoot),
            "PartialSigInconsistentSignerErrorCode" => Some(Self::PartialSigInconsistentSigner),
            "NoDecidedValueErrorCode" => Some(Self::NoDecidedValue),
            "NoRunningConsensusInstanceErrorCode" => Some(Self::NoRunningConsensusInstance),
            "ConsensusInstanceNotDecidedErrorCode" => Some(Self::ConsensusInstanceNotDecided),
            "PartialSigMessageInvalidSlotErrorCode" => Some(Self::PartialSigMessageInvalidSlot),
            "PartialSigMessageFutureSlotErrorCode" => Some(Self::PartialSigMessageFutureSlot),
            "UnknownValidatorIndexErrorCode" => Some(Self::UnknownValidatorIndex),
            "WrongRootsCountErrorCode" => Some(Self::WrongRootsCount),
            "DutyEpochTooFarFutureErrorCode" => Some(Self::DutyEpochTooFarFuture),
            "WrongBeaconRoleTypeErrorCode" => Some(Self::WrongBeaconRoleType),
            "WrongValidatorIndexErrorCode" => Some(Self::WrongValidatorIndex),
            "WrongValidatorPubkeyErrorCode" => Some(Self::WrongValidatorPubkey),
            "InstanceStoppedProcessingMessagesErrorCode" => {
                Some(Self::InstanceStoppedProcessingMessages)
            }
            "WrongMessageRoundErrorCode" => Some(Self::WrongMessageRound),
            "MessageAllowsOneSignerOnlyErrorCode" => Some(Self::MessageAllowsOneSignerOnly),
            "NoProposalForCurrentRoundErrorCode" => Some(Self::NoProposalForCurrentRound),
            "PastRoundErrorCode" => Some(Self::PastRound),
            "ProposedDataMismatchErrorCode" => Some(Self::ProposedDataMismatch),
            "RoundChangeNoQuorumErrorCode" => Some(Self::RoundChangeNoQuorum),
            "ProposalInvalidErrorCode" => Some(Self::ProposalInvalid),
            "RootHashInvalidErrorCode" => Some(Self::RootHashInvalid),
            "MessageSignatureInvalidErrorCode" => Some(Self::MessageSignatureInvalid),
            "QBFTValueInvalidErrorCode" => Some(Self::QBFTValueInvalid),
            "PrepareMessageInvalidErrorCode" => Some(Self::PrepareMessageInvalid),
            "JustificationsNoQuorumInvalidErrorCode" => Some(Self::JustificationsNoQuorumInvalid),
            "ProposalLeaderInvalidErrorCode" => Some(Self::ProposalLeaderInvalid),
            "InstanceAlreadyRunningErrorCode" => Some(Self::InstanceAlreadyRunning),
            "StartInstanceErrorCode" => Some(Self::StartInstance),
            "TimeoutInstanceErrorCode" => Some(Self::TimeoutInstance),
            _ => None,
        }
    }
}
