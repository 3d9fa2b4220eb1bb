//! Messages of one kind received by an instance, by round (ssv-spec `MsgContainer`).

use std::collections::BTreeMap;

use super::ProcessingMessage;
use crate::types::{OperatorId, Root, Round};

/// Messages by round, in arrival order within a round.
///
/// Bounded by construction: an instance adds at most one message per signer set and round
/// (the committee has at most 13 members) and rounds stop at the cut-off round; decided
/// messages are added only when they have more signers than what is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgContainer {
    /// Messages by round.
    pub msgs: BTreeMap<Round, Vec<ProcessingMessage>>,
}

impl MsgContainer {
    /// Every message, by round then arrival.
    pub fn all_messages(&self) -> impl Iterator<Item = &ProcessingMessage> {
        self.msgs.values().flatten()
    }

    /// The messages of one round.
    pub fn messages_for_round(&self, round: Round) -> &[ProcessingMessage] {
        self.msgs.get(&round).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Adds `msg` unless a message with exactly the same signers is stored for its round;
    /// says whether it was added.
    pub fn add_first_msg_for_signer_and_round(&mut self, msg: &ProcessingMessage) -> bool {
        let round = msg.qbft.round;
        let list = self.msgs.entry(round).or_default();
        if list.iter().any(|m| m.matched_signers(msg.signers())) {
            return false;
        }
        list.push(msg.clone());
        true
    }

    /// Adds `msg` whatever its signers.
    pub fn add_msg(&mut self, msg: &ProcessingMessage) {
        self.msgs
            .entry(msg.qbft.round)
            .or_default()
            .push(msg.clone());
    }

    /// The largest set of messages of `round` with root `root` whose signers do not overlap,
    /// built greedily from each starting message, and their signers (ssv-spec
    /// `LongestUniqueSignersForRoundAndRoot`).
    pub fn longest_unique_signers_for_round_and_root(
        &self,
        round: Round,
        root: &Root,
    ) -> (Vec<OperatorId>, Vec<&ProcessingMessage>) {
        let mut best_signers: Vec<OperatorId> = Vec::new();
        let mut best_msgs: Vec<&ProcessingMessage> = Vec::new();
        let list = self.messages_for_round(round);
        for (i, m) in list.iter().enumerate() {
            if &m.qbft.root != root {
                continue;
            }
            let mut signers: Vec<OperatorId> = m.signers().to_vec();
            let mut msgs = vec![m];
            for m2 in &list[i + 1..] {
                if &m2.qbft.root != root {
                    continue;
                }
                if !m2.common_signers(&signers) {
                    signers.extend_from_slice(m2.signers());
                    msgs.push(m2);
                }
            }
            if best_signers.len() < signers.len() {
                best_signers = signers;
                best_msgs = msgs;
            }
        }
        (best_signers, best_msgs)
    }
}

/// Distinct signers over `msgs`.
pub(crate) fn unique_signer_count<'a>(
    msgs: impl IntoIterator<Item = &'a ProcessingMessage>,
) -> usize {
    let mut seen: Vec<OperatorId> = Vec::with_capacity(crate::limits::COMMITTEE_SIZE_MAX);
    for m in msgs {
        for s in m.signers() {
            if !seen.contains(s) {
                seen.push(*s);
            }
        }
    }
    seen.len()
}
