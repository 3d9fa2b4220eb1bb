//! QBFT (Istanbul BFT) as ssv-spec v1.2.2 runs it, as sans-IO state machines.
//!
//! - [`Message`] is the wire message (SSZ, inside `SSVMessage.Data`).
//! - [`Instance`] runs one height: proposal → prepare → commit, with round changes, the
//!   f+1 round-change jump, proposal justification and the cut-off round.
//! - [`Controller`] runs successive heights of one identifier (a duty executor and role):
//!   it starts instances, routes messages to them, accepts decided (aggregated commit)
//!   messages for any height, and refuses future and late messages.
//!
//! Nothing here reads a clock, opens a socket or starts a thread. Inputs are a signed message,
//! a round timeout or a start with a value; outputs are [`Action`]s (messages to broadcast,
//! a decided value, a timer to set) appended to a caller-owned `Vec`, so a shard can reuse one
//! buffer for every instance it runs.
//!
//! Cryptography comes from the caller through [`Env`]: an [`OperatorSigner`] signs the
//! messages this operator creates (RSA PKCS#1 v1.5 over sha256 of the SSZ `SSVMessage`, as
//! the spec does), a [`SignatureVerifier`] checks operator signatures, and a [`ValueCheck`]
//! judges proposed values (the duty runner knows what a valid value is).

mod container;
mod controller;
mod instance;
mod message;
mod processing;
mod state;

pub use container::MsgContainer;
pub use controller::{Controller, HISTORICAL_INSTANCE_CAPACITY, is_decided_msg, validate_decided};
pub use instance::{
    Instance, create_commit, create_prepare, create_proposal, create_round_change, sign_message,
};
pub use message::{Message, MessageType, PrepareJustification, RoundChangeJustification};
pub use processing::{ProcessingMessage, hash_data_root};
pub use state::{State, round_robin_proposer};

use std::time::Duration;

use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{RsaSignature, SignedSsvMessage};
use crate::types::{CommitteeOperator, Height, OperatorId, Round};

/// The round every instance starts in.
pub const FIRST_ROUND: Round = 1;
/// "Not prepared": the `DataRound` of a round change without a prepared value.
pub const NO_ROUND: Round = 0;
/// The first height of a controller.
pub const FIRST_HEIGHT: Height = 0;
/// The round at which an instance stops processing messages and timeouts (ssv-spec's
/// `CutOffRound`, 15 in its test configuration). Too small and slow committees can never
/// decide after a few failed leaders; too large and a stuck instance keeps emitting round
/// changes long after its duty is worthless.
pub const CUT_OFF_ROUND_DEFAULT: Round = 15;
/// Rounds up to this one time out quickly ([`QUICK_TIMEOUT`]); later ones slowly.
pub const QUICK_TIMEOUT_THRESHOLD: Round = 8;
/// Timeout of rounds `1..=QUICK_TIMEOUT_THRESHOLD`. Too small and rounds expire before a
/// proposal can cross the network, so no round ever decides.
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of rounds after [`QUICK_TIMEOUT_THRESHOLD`]: gives a committee that lost many
/// rounds time to re-synchronise.
pub const SLOW_TIMEOUT: Duration = Duration::from_secs(120);

/// How long round `round` lasts before the caller must feed [`Instance::upon_round_timeout`].
pub const fn round_timeout(round: Round) -> Duration {
    if round <= QUICK_TIMEOUT_THRESHOLD {
        QUICK_TIMEOUT
    } else {
        SLOW_TIMEOUT
    }
}

/// How long from `now_ms` until round `round` of the instance of the slot starting at
/// `slot_start_ms` times out, for a runner of `role` — the Go node's round timer
/// (`roundtimer.RoundTimeout`, ssv v2.3.7): committee instances time out at a third of the slot
/// plus the rounds' timeouts so far (2 s each up to [`QUICK_TIMEOUT_THRESHOLD`], 120 s after),
/// aggregator and contribution instances the same from two thirds of the slot, the other roles
/// [`round_timeout`] after the round started. Relative to the slot, a duty that started late
/// (a loaded node) keeps the time its committee has, rather than changing round while the
/// other operators still wait for its messages. A deadline already past gives zero.
pub fn round_timeout_for(
    role: crate::message::RunnerRole,
    slot_start_ms: u64,
    slot_ms: u64,
    round: Round,
    now_ms: u64,
) -> Duration {
    use crate::message::RunnerRole;
    let base_ms = match role {
        RunnerRole::Committee => slot_ms / 3,
        RunnerRole::Aggregator | RunnerRole::SyncCommitteeContribution => slot_ms / 3 * 2,
        RunnerRole::Proposer | RunnerRole::ValidatorRegistration | RunnerRole::VoluntaryExit => {
            return round_timeout(round);
        }
    };
    let quick_ms = QUICK_TIMEOUT.as_millis() as u64;
    let slow_ms = SLOW_TIMEOUT.as_millis() as u64;
    let rounds_ms = if round <= QUICK_TIMEOUT_THRESHOLD {
        round.saturating_mul(quick_ms)
    } else {
        (QUICK_TIMEOUT_THRESHOLD * quick_ms)
            .saturating_add((round - QUICK_TIMEOUT_THRESHOLD).saturating_mul(slow_ms))
    };
    let deadline_ms = slot_start_ms
        .saturating_add(base_ms)
        .saturating_add(rounds_ms);
    Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// What the state machines ask their caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this message to the committee (and process it locally: the spec's network loops
    /// an operator's own messages back to it).
    Broadcast(SignedSsvMessage),
    /// (Re)arm the round timer: call `upon_round_timeout` for `height` after `after`,
    /// replacing any timer set before for that instance.
    SetTimer {
        /// Height of the instance.
        height: Height,
        /// The round the timer guards.
        round: Round,
        /// How long from now.
        after: Duration,
    },
    /// An instance decided (first time only).
    Decided {
        /// Height of the instance.
        height: Height,
        /// Round in which the commit quorum formed.
        round: Round,
        /// The decided full value.
        value: Vec<u8>,
        /// The aggregated commit (a quorum of signers) proving it.
        aggregated_commit: SignedSsvMessage,
    },
}

/// Signs the messages this operator creates.
pub trait OperatorSigner {
    /// This operator's ID.
    fn operator_id(&self) -> OperatorId;
    /// RSA PKCS#1 v1.5 signature over sha256 of `encoded_ssv_message` (the SSZ `SSVMessage`).
    fn sign_ssv_message(&self, encoded_ssv_message: &[u8]) -> Result<RsaSignature, Error>;
}

/// Verifies operator signatures.
pub trait SignatureVerifier {
    /// Whether `signature` is `operator`'s RSA PKCS#1 v1.5 signature over sha256 of
    /// `encoded_ssv_message`.
    fn verify(
        &self,
        operator: &CommitteeOperator,
        encoded_ssv_message: &[u8],
        signature: &RsaSignature,
    ) -> bool;
}

/// Judges a proposed value (ssv-spec `ProposedValueCheckF`).
pub trait ValueCheck {
    /// `Ok` if this operator would sign `value`.
    fn check_value(&self, value: &[u8]) -> Result<(), Error>;
}

/// What the state machines need from outside for one call.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Signs this operator's messages.
    pub signer: &'a dyn OperatorSigner,
    /// Verifies other operators' signatures.
    pub verifier: &'a dyn SignatureVerifier,
    /// Judges proposed values.
    pub value_check: &'a dyn ValueCheck,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("operator", &self.signer.operator_id())
            .finish_non_exhaustive()
    }
}

/// Picks the leader of a round.
pub type ProposerFn = fn(&State, Round) -> OperatorId;

/// Instance configuration (shared by every instance of a controller).
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Leader selection; [`round_robin_proposer`] on every real network.
    pub proposer: ProposerFn,
    /// See [`CUT_OFF_ROUND_DEFAULT`].
    pub cut_off_round: Round,
    /// Verify the operator signature of every message an instance processes. The spec leaves
    /// the outer signature to the message-validation stage and verifies only justifications
    /// and decided messages; a node whose validation already verified can turn this off.
    pub verify_all_signatures: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            proposer: round_robin_proposer,
            cut_off_round: CUT_OFF_ROUND_DEFAULT,
            verify_all_signatures: true,
        }
    }
}

/// Whether a message refused with `err` may succeed later and should be kept for another
/// try (ssv-spec leaves this to the node; the Go node retries these): a prepare or commit
/// that came before its round's proposal, or a vote for a round this instance has not
/// reached yet.
pub fn is_retryable(err: &Error) -> bool {
    matches!(
        err.code(),
        ErrorCode::NoProposalForCurrentRound | ErrorCode::WrongMessageRound
    )
}

/// Verifies every signature of `msg` against `committee` (ssv-spec `SignatureVerifier.Verify`).
pub fn verify_signed_message(
    verifier: &dyn SignatureVerifier,
    msg: &SignedSsvMessage,
    committee: &[CommitteeOperator],
) -> Result<(), Error> {
    use ssz::Encode as _;
    if msg.signatures.len() != msg.operator_ids.len() {
        return Err(Error::spec(
            ErrorCode::MessageSignatureInvalid,
            "msg signature invalid: signer and signature counts differ",
        ));
    }
    let encoded = msg.ssv_message.as_ssz_bytes();
    for (i, signer) in msg.operator_ids.iter().enumerate() {
        let operator = committee
            .iter()
            .find(|o| o.operator_id == *signer)
            .ok_or_else(|| {
                Error::spec(
                    ErrorCode::MessageSignatureInvalid,
                    format!("msg signature invalid: unknown signer {signer}"),
                )
            })?;
        let ok = msg
            .signature(i)
            .is_some_and(|sig| verifier.verify(operator, &encoded, sig));
        if !ok {
            return Err(Error::spec(
                ErrorCode::MessageSignatureInvalid,
                format!("msg signature invalid: signer {signer}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_timeouts_relative_to_the_slot_as_the_go_node() {
        use crate::message::RunnerRole;
        let start = 1_000_000;
        let slot = 12_000;
        // Committee, round 1: slot start + 4 s + 2 s; asked at the slot start + 4 s: 2 s.
        assert_eq!(
            round_timeout_for(RunnerRole::Committee, start, slot, 1, start + 4_000),
            Duration::from_secs(2)
        );
        // A duty that started 3 s late still times out at the slot's deadline.
        assert_eq!(
            round_timeout_for(RunnerRole::Committee, start, slot, 1, start + 7_000),
            Duration::ZERO
        );
        // Round 3 at two thirds (aggregator): 8 s + 6 s.
        assert_eq!(
            round_timeout_for(RunnerRole::Aggregator, start, slot, 3, start),
            Duration::from_secs(14)
        );
        assert_eq!(
            round_timeout_for(RunnerRole::SyncCommitteeContribution, start, slot, 1, start),
            Duration::from_secs(10)
        );
        // Past the quick rounds: 8 × 2 s + 120 s per slow round.
        assert_eq!(
            round_timeout_for(RunnerRole::Committee, start, slot, 10, start),
            Duration::from_millis(4_000 + 16_000 + 240_000)
        );
        // Other roles: relative to the round's start.
        assert_eq!(
            round_timeout_for(RunnerRole::Proposer, start, slot, 1, start + 50_000),
            QUICK_TIMEOUT
        );
        assert_eq!(
            round_timeout_for(RunnerRole::VoluntaryExit, start, slot, 9, start),
            SLOW_TIMEOUT
        );
    }

    #[test]
    fn round_timeouts() {
        assert_eq!(round_timeout(1), QUICK_TIMEOUT);
        assert_eq!(round_timeout(8), QUICK_TIMEOUT);
        assert_eq!(round_timeout(9), SLOW_TIMEOUT);
    }
}
