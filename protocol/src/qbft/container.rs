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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageId, MsgType, SignedSsvMessage, SsvMessage};
    use crate::qbft::{Message, MessageType};
    use ssz::Encode;
    use ssz_types::VariableList;

    fn msg(round: Round, root: u8, signers: &[OperatorId]) -> ProcessingMessage {
        let q = Message {
            msg_type: MessageType::Commit.to_u64(),
            height: 0,
            round,
            identifier: VariableList::new(vec![1, 2, 3, 4]).expect("fits"),
            root: [root; 32],
            data_round: 0,
            round_change_justification: VariableList::empty(),
            prepare_justification: VariableList::empty(),
        };
        let ssv = SsvMessage::new(MsgType::Consensus, MessageId([0; 56]), q.as_ssz_bytes())
            .expect("fits");
        let signed = SignedSsvMessage::new(
            vec![[7u8; 256]; signers.len()],
            signers.to_vec(),
            ssv,
            Vec::new(),
        )
        .expect("fits");
        ProcessingMessage::new(signed).expect("decodes")
    }

    #[test]
    fn first_message_per_signer_set_and_round() {
        let mut c = MsgContainer::default();
        assert!(c.add_first_msg_for_signer_and_round(&msg(1, 1, &[1])));
        assert!(!c.add_first_msg_for_signer_and_round(&msg(1, 2, &[1])));
        assert!(c.add_first_msg_for_signer_and_round(&msg(2, 1, &[1])));
        // A different signer set (even overlapping) is another entry.
        assert!(c.add_first_msg_for_signer_and_round(&msg(1, 1, &[1, 2])));
        assert_eq!(c.messages_for_round(1).len(), 2);
        assert_eq!(c.all_messages().count(), 3);
    }

    #[test]
    fn longest_unique_signers_skips_overlaps_and_other_roots() {
        let mut c = MsgContainer::default();
        c.add_msg(&msg(1, 1, &[1, 2]));
        c.add_msg(&msg(1, 1, &[2, 3]));
        c.add_msg(&msg(1, 9, &[4]));
        c.add_msg(&msg(1, 1, &[3]));
        c.add_msg(&msg(1, 1, &[4]));
        let (signers, msgs) = c.longest_unique_signers_for_round_and_root(1, &[1; 32]);
        // From [1,2]: + [3] + [4] = 4 signers; from [2,3]: + [4] = 3.
        assert_eq!(signers, vec![1, 2, 3, 4]);
        assert_eq!(msgs.len(), 3);
        assert_eq!(unique_signer_count(c.messages_for_round(1)), 4);
        let (none, _) = c.longest_unique_signers_for_round_and_root(2, &[1; 32]);
        assert!(none.is_empty());
    }
}
