//! What the validator roles with consensus share beyond the core's steps (aggregator,
//! sync-committee contribution, and the proposer to come): routing a message to its phase,
//! applying our own QBFT messages, starting QBFT on the role's value, round timeouts. A role
//! says what is its own (its value check, what it signs once decided, how it takes partials)
//! and gets the rest.

use std::collections::VecDeque;

use super::base::{BaseRunner, Routed, drain_qbft, route_validator_message};
use super::signing_only::ValidatorAction;
use super::value_check::DutyValueCheck;
use crate::error::Error;
use crate::message::{MessageId, SignedSsvMessage};
use crate::partial_sig::PartialSignatureMessages;
use crate::qbft::Env;
use crate::types::Slot;

/// A validator role with a consensus phase. See the module docs.
pub(crate) trait ConsensusRole {
    /// The core, and the queue of our own QBFT messages when the node applies them.
    fn parts(&mut self) -> (&mut BaseRunner, Option<&mut VecDeque<SignedSsvMessage>>);

    /// The runner's message ID.
    fn msg_id(&self) -> &MessageId;

    /// The role's value check (spec `*ValueCheckF`).
    fn value_check(&self) -> DutyValueCheck;

    /// The decided value passed the value check: ask for what the role signs after consensus.
    fn on_decided(&mut self, value: Vec<u8>, out: &mut Vec<ValidatorAction>) -> Result<(), Error>;

    /// Pre- or post-consensus partial signatures.
    fn process_partials(
        &mut self,
        psm: &PartialSignatureMessages,
        post: bool,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error>;

    /// A message of this runner whose outer structure and operator signatures the caller has
    /// checked; then our own QBFT messages it led to.
    fn route(
        &mut self,
        env: Env<'_>,
        msg: SignedSsvMessage,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let result = match route_validator_message(self.msg_id(), msg)? {
            Routed::Consensus(m) => self.consensus(env, m, out),
            Routed::PreConsensus(psm) => self.process_partials(&psm, false, out),
            Routed::PostConsensus(psm) => self.process_partials(&psm, true, out),
        };
        self.flush(env, out);
        result
    }

    /// Applies our own QBFT messages (valid by construction: a refusal is not an error).
    fn flush(&mut self, env: Env<'_>, out: &mut Vec<ValidatorAction>) {
        while let Some(m) = self.parts().1.and_then(VecDeque::pop_front) {
            let _ = self.consensus(env, m, out);
        }
    }

    /// ssv-spec `baseConsensusMsgProcessing` with the role's check, then `on_decided`.
    fn consensus(
        &mut self,
        env: Env<'_>,
        msg: SignedSsvMessage,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let check = self.value_check();
        let env = Env {
            value_check: &check,
            ..env
        };
        let (base, loopback) = self.parts();
        match base.process_validator_consensus(env, msg, loopback, out)? {
            Some(value) => self.on_decided(value, out),
            None => Ok(()),
        }
    }

    /// Starts QBFT on the role's value (ssv-spec `decide`: the value check first).
    fn start_consensus(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        value: Vec<u8>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let check = self.value_check();
        let env = Env {
            value_check: &check,
            ..env
        };
        let mut actions = Vec::new();
        let (base, loopback) = self.parts();
        let result = base.decide(env, slot, value, &mut actions);
        drain_qbft(actions, loopback, out);
        self.flush(env, out);
        result
    }

    /// The round timer of the running instance expired (dropped when the duty is not
    /// running, as the Go node does).
    fn timeout(
        &mut self,
        env: Env<'_>,
        slot: Slot,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let check = self.value_check();
        let env = Env {
            value_check: &check,
            ..env
        };
        let (base, loopback) = self.parts();
        let result = base.validator_timeout(env, slot, loopback, out);
        self.flush(env, out);
        result
    }
}
