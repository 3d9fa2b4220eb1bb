//! The state of one QBFT instance (ssv-spec `qbft.State`), field for field, so that it can be
//! compared with the spec's post-states.

use super::{FIRST_HEIGHT, FIRST_ROUND, MsgContainer, NO_ROUND, ProcessingMessage};
use crate::types::{CommitteeMember, Height, OperatorId, Round};

/// One instance's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// This operator's view of the committee.
    pub committee_member: CommitteeMember,
    /// The instance identifier (a `MessageID`, 56 bytes on every real network).
    pub id: Vec<u8>,
    /// Current round.
    pub round: Round,
    /// The height.
    pub height: Height,
    /// Round of the last prepare quorum ([`NO_ROUND`] if none).
    pub last_prepared_round: Round,
    /// Value of the last prepare quorum (empty if none).
    pub last_prepared_value: Vec<u8>,
    /// The proposal accepted in the current round, if any.
    pub proposal_accepted_for_current_round: Option<ProcessingMessage>,
    /// Whether the instance decided.
    pub decided: bool,
    /// The decided value (empty until decided).
    pub decided_value: Vec<u8>,
    /// Accepted proposals.
    pub propose_container: MsgContainer,
    /// Prepares.
    pub prepare_container: MsgContainer,
    /// Commits (and decided messages).
    pub commit_container: MsgContainer,
    /// Round changes.
    pub round_change_container: MsgContainer,
}

impl State {
    /// A fresh state at `height`, round 1.
    pub fn new(committee_member: CommitteeMember, id: Vec<u8>, height: Height) -> Self {
        State {
            committee_member,
            id,
            round: FIRST_ROUND,
            height,
            last_prepared_round: NO_ROUND,
            last_prepared_value: Vec::new(),
            proposal_accepted_for_current_round: None,
            decided: false,
            decided_value: Vec::new(),
            propose_container: MsgContainer::default(),
            prepare_container: MsgContainer::default(),
            commit_container: MsgContainer::default(),
            round_change_container: MsgContainer::default(),
        }
    }

    /// Whether `count` distinct signers make a quorum (2f + 1).
    pub fn has_quorum(&self, count: usize) -> bool {
        self.committee_member.has_quorum(count)
    }

    /// Whether `count` distinct signers make a partial quorum (f + 1).
    pub fn has_partial_quorum(&self, count: usize) -> bool {
        self.committee_member.has_partial_quorum(count)
    }
}

/// The round-robin leader: `committee[(height % n + round - 1) % n]` (height 0 starts at
/// index 0), as ssv-spec `RoundRobinProposer`.
///
/// # Panics
/// If the committee is empty (a programmer error: an instance always has a committee).
pub fn round_robin_proposer(state: &State, round: Round) -> OperatorId {
    let committee = &state.committee_member.committee;
    assert!(!committee.is_empty(), "a QBFT committee has members");
    let n = committee.len() as u64;
    let first_round_index = if state.height == FIRST_HEIGHT {
        0
    } else {
        state.height % n
    };
    // `round % n + n - FIRST_ROUND` stays in range for any round (round 0 included).
    let index = (first_round_index + round % n + n - FIRST_ROUND) % n;
    committee[index as usize].operator_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committee::CommitteeId;
    use crate::types::{CommitteeOperator, DomainType};

    fn state(n: u64, height: Height) -> State {
        let member = CommitteeMember {
            operator_id: 1,
            committee_id: CommitteeId::default(),
            rsa_public_key_pem: Vec::new(),
            faulty_nodes: (n - 1) / 3,
            committee: (1..=n)
                .map(|operator_id| CommitteeOperator {
                    operator_id,
                    rsa_public_key_pem: Vec::new(),
                })
                .collect(),
            domain: DomainType::SPEC_TESTING,
        };
        State::new(member, vec![1, 2, 3, 4], height)
    }

    #[test]
    fn round_robin_rotates_with_height_and_round() {
        let s = state(4, 0);
        assert_eq!(
            [1, 2, 3, 4, 5].map(|r| round_robin_proposer(&s, r)),
            [1, 2, 3, 4, 1]
        );
        let s = state(4, 6);
        // height 6: first-round index 6 % 4 = 2, so operator 3 leads round 1.
        assert_eq!(round_robin_proposer(&s, 1), 3);
        assert_eq!(round_robin_proposer(&s, 3), 1);
        // Round 0 does not exist, but must not panic or overflow.
        let _ = round_robin_proposer(&s, 0);
        let _ = round_robin_proposer(&s, u64::MAX);
    }

    #[test]
    fn quorums_follow_the_committee_size() {
        for (n, q, p) in [(4, 3, 2), (7, 5, 3), (10, 7, 4), (13, 9, 5)] {
            let s = state(n, 0);
            assert!(s.has_quorum(q) && !s.has_quorum(q - 1));
            assert!(s.has_partial_quorum(p) && !s.has_partial_quorum(p - 1));
        }
    }
}
