//! Every rule of the Go node's message validation (ssv v2.3.7, `message/validation/errors.go`)
//! with its verdict: one table, the single source of truth for what a broken rule does to the
//! message and to the peer that sent it.
//!
//! - [`Verdict::Ignore`]: the message is dropped and not relayed; the sender is not
//!   penalised (it may be honest and only late, early, or ahead of our view of the registry).
//! - [`Verdict::Reject`]: the message is dropped and not relayed, and gossipsub counts an
//!   invalid message delivery against the peer that sent it (P4 of its peer score), which
//!   graylists a peer that keeps sending them.

use std::fmt;

/// What a broken rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Drop, no penalty.
    Ignore,
    /// Drop and penalise the sender.
    Reject,
}

macro_rules! rules {
    ($($(#[$doc:meta])* $name:ident => $verdict:ident, $text:literal;)*) => {
        /// A validation rule (one per Go error).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Rule {
            $($(#[$doc])* $name,)*
        }

        impl Rule {
            /// Every rule, in table order.
            pub const ALL: &'static [Rule] = &[$(Rule::$name,)*];

            /// What breaking it does.
            pub const fn verdict(self) -> Verdict {
                match self {
                    $(Rule::$name => Verdict::$verdict,)*
                }
            }

            /// The Go node's error text.
            pub const fn text(self) -> &'static str {
                match self {
                    $(Rule::$name => $text,)*
                }
            }
        }
    };
}

rules! {
    // Ignored.
    /// The message ID's domain is not our network's.
    WrongDomain => Ignore, "wrong domain";
    /// A validator role's message for a validator we do not know (yet).
    UnknownValidator => Ignore, "unknown validator";
    /// The validator's cluster is liquidated.
    ValidatorLiquidated => Ignore, "validator is liquidated";
    /// The validator is not active on the beacon chain (pending, exited, slashed).
    ValidatorNotAttesting => Ignore, "validator is not attesting";
    /// Sent before its slot starts (beyond the 50 ms clock tolerance).
    EarlySlotMessage => Ignore, "message was sent before slot starts";
    /// Sent after its role's time-to-live (34 slots committee and aggregator, 3 else).
    LateSlotMessage => Ignore, "current time is above duty's start +34(committee and aggregator) or +3(else) slots";
    /// The signer already sent messages of a later slot for this validator role.
    SlotAlreadyAdvanced => Ignore, "signer has already advanced to a later slot";
    /// The signer already sent messages of a later round of this slot.
    RoundAlreadyAdvanced => Ignore, "signer has already advanced to a later round";
    /// A decided message with this exact signer set was already seen.
    DecidedWithSameSigners => Ignore, "decided with same number of signers";
    /// The pubsub payload exceeds the largest encodable message.
    PubSubDataTooBig => Ignore, "pub-sub message data too big";
    /// Received on a topic that is not its committee's.
    IncorrectTopic => Ignore, "incorrect topic";
    /// A committee message of a committee we do not know (yet).
    NonExistentCommitteeId => Ignore, "committee ID doesn't exist";
    /// A round beyond the role's last (12 committee and aggregator, 6 proposer and
    /// contribution).
    RoundTooHigh => Ignore, "round is too high for this role";
    /// A partial signature of a validator index that is not the message's validator.
    ValidatorIndexMismatch => Ignore, "partial signature validator index not found";
    /// More duties of this runner in an epoch than the beacon chain can give it.
    TooManyDutiesPerEpoch => Ignore, "too many duties per epoch";
    /// A proposer or contribution message without a matching beacon duty.
    NoDuty => Ignore, "no duty for this epoch";
    /// A round too far ahead of the round the slot's time allows.
    EstimatedRoundNotInAllowedSpread => Ignore, "message round is too far from estimated";
    /// A signer that is not a registered operator.
    UnknownOperator => Ignore, "operator is unknown";

    // Rejected.
    /// The SSV message carries no data.
    EmptyData => Reject, "empty data";
    /// The QBFT message's identifier is not the SSV message's ID.
    MismatchedIdentifier => Reject, "identifier mismatch";
    /// An operator signature does not verify.
    SignatureVerification => Reject, "signature verification";
    /// The pubsub payload is empty.
    PubSubMessageHasNoData => Reject, "pub-sub message has no data";
    /// The payload is not a `SignedSSVMessage`.
    MalformedPubSubMessage => Reject, "pub-sub message is malformed";
    /// The SSV message data exceeds its type's maximum.
    SsvDataTooBig => Reject, "ssv message data too big";
    /// The message ID's role is unknown.
    InvalidRole => Reject, "invalid role";
    /// A consensus message of a role without consensus (registration, exit).
    UnexpectedConsensusMessage => Reject, "unexpected consensus message for this role";
    /// No signer.
    NoSigners => Reject, "no signers";
    /// A signature that is not 256 bytes.
    WrongRsaSignatureSize => Reject, "wrong RSA signature size";
    /// Operator ID 0 among the signers.
    ZeroSigner => Reject, "zero signer ID";
    /// A signer outside the message's committee.
    SignerNotInCommittee => Reject, "signer is not in committee";
    /// A signer listed twice.
    DuplicatedSigner => Reject, "signer is duplicated";
    /// A proposal not signed by the round's leader.
    SignerNotLeader => Reject, "signer is not leader";
    /// Signers not in ascending order.
    SignersNotSorted => Reject, "signers are not sorted";
    /// A partial signature whose signer is not the message's signer.
    InconsistentSigners => Reject, "signer is not expected";
    /// The full data does not hash to the QBFT message's root.
    InvalidHash => Reject, "root doesn't match full data hash";
    /// The message data does not decode as its type.
    UndecodableMessageData => Reject, "message data could not be decoded";
    /// The node's internal event type on the wire.
    EventMessage => Reject, "unexpected event message";
    /// An unknown SSV message type.
    UnknownSsvMessageType => Reject, "unknown SSV message type";
    /// An unknown QBFT message type.
    UnknownQbftMessageType => Reject, "unknown QBFT message type";
    /// An unknown partial-signature type.
    InvalidPartialSignatureType => Reject, "unknown partial signature message type";
    /// A partial-signature type the role does not sign.
    PartialSignatureTypeRoleMismatch => Reject, "partial signature type and role don't match";
    /// Several signers on anything but a decided (aggregated commit) message.
    NonDecidedWithMultipleSigners => Reject, "non-decided with multiple signers";
    /// A decided message with fewer signers than a quorum.
    DecidedNotEnoughSigners => Reject, "not enough signers in decided message";
    /// A second proposal of the same round with other full data.
    DifferentProposalData => Reject, "different proposal data";
    /// Prepare justifications that do not decode.
    MalformedPrepareJustifications => Reject, "malformed prepare justifications";
    /// Prepare justifications on a message other than a proposal.
    UnexpectedPrepareJustifications => Reject, "prepare justifications unexpected for this message type";
    /// Round-change justifications that do not decode.
    MalformedRoundChangeJustifications => Reject, "malformed round change justifications";
    /// Round-change justifications on a prepare or commit.
    UnexpectedRoundChangeJustifications => Reject, "round change justifications unexpected for this message type";
    /// A partial-signature message with no signature.
    NoPartialSignatureMessages => Reject, "no partial signature messages";
    /// A committee with no validator.
    NoValidators => Reject, "no validators for this committee ID";
    /// No signature.
    NoSignatures => Reject, "no signatures";
    /// As many signers as signatures, or not.
    SignersAndSignaturesWithDifferentLength => Reject, "signature and operator ID length mismatch";
    /// A partial-signature message with several signers.
    PartialSigOneSigner => Reject, "partial signature message must have only one signer";
    /// Full data on a prepare or a single-signer commit.
    PrepareOrCommitWithFullData => Reject, "prepare or commit with full data";
    /// Full data on a partial-signature message.
    FullDataNotInConsensusMessage => Reject, "full data not in consensus message";
    /// A committee partial-signature message with three signatures of one validator.
    TripleValidatorIndexInPartialSignatures => Reject, "triple validator index in partial signatures";
    /// Round 0.
    ZeroRound => Reject, "zero round";
    /// A second message of one type from a signer in one round.
    DuplicatedMessage => Reject, "message is duplicated";
    /// A second pre- or post-consensus partial-signature message from a signer in one slot.
    InvalidPartialSignatureTypeCount => Reject, "sent more partial signature messages of a certain type than allowed";
    /// More partial signatures than the role can have.
    TooManyPartialSignatureMessages => Reject, "too many partial signature messages";
}

impl Rule {
    /// Whether breaking it penalises the sender.
    pub const fn penalises(self) -> bool {
        matches!(self.verdict(), Verdict::Reject)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// A broken rule with what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// What the message had, or why (empty when the rule says it all).
    pub detail: String,
}

impl Violation {
    /// A violation of `rule` with `detail`.
    pub fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Violation {
            rule,
            detail: detail.into(),
        }
    }

    /// What it does.
    pub fn verdict(&self) -> Verdict {
        self.rule.verdict()
    }
}

impl From<Rule> for Violation {
    fn from(rule: Rule) -> Self {
        Violation {
            rule,
            detail: String::new(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.rule)
        } else {
            write!(f, "{}: {}", self.rule, self.detail)
        }
    }
}

impl std::error::Error for Violation {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `errors.go` has 20 ignored and 45 rejected errors; the ones that cannot occur
    /// here are listed in the module docs (`super`), the others are all in the table.
    #[test]
    fn the_table_holds_every_applicable_go_error() {
        let ignored = Rule::ALL
            .iter()
            .filter(|r| r.verdict() == Verdict::Ignore)
            .count();
        let rejected = Rule::ALL.len() - ignored;
        // Not applicable: ErrNoShareMetadata, ErrOperatorValidation (ignored);
        // ErrNilSignedSSVMessage, ErrNilSSVMessage, ErrFullDataHash (rejected).
        assert_eq!(ignored, 20 - 2);
        assert_eq!(rejected, 45 - 3);
        let texts: std::collections::HashSet<&str> = Rule::ALL.iter().map(|r| r.text()).collect();
        assert_eq!(texts.len(), Rule::ALL.len(), "texts are distinct");
    }
}
