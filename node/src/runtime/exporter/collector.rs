//! Sans-IO: which instances a stream of validated gossip messages decided.
//!
//! An instance (QBFT identifier, height) is decided when commit messages of one round and one
//! value root carry signatures of a quorum of its committee — whether they came one by one or
//! already aggregated (a decided message with several signers). The decided message is the
//! spec's aggregated commit: the commit `SSVMessage` with every signer's RSA signature, in
//! ascending operator order. Each instance is reported once; later commits (more signers) are
//! not reported again.
//!
//! Messages reach the collector only after gossip validation ([`Validated`]): every RSA
//! signature is verified and every signer is a member of the message's committee, so a quorum
//! here is a quorum of real committee members.

use std::collections::{BTreeMap, HashMap, HashSet};

use ssv_protocol::message::{RsaSignature, SignedSsvMessage, SsvMessage};
use ssv_protocol::qbft::{Message as QbftMessage, MessageType};
use ssv_protocol::types::{OperatorId, quorum};
use ssv_protocol::validation::{Body, Validated};
use ssv_storage::DecidedRecord;

/// Heights behind the newest one whose votes are still collected. A duty's commits arrive
/// within its slot (at most a few slots late); older votes can no longer make news.
pub const HEIGHTS_KEPT: u64 = 64;
/// Most instances (identifier, height, round, root) collected at once; a new one beyond it
/// is dropped (counted in [`DecidedCollector::dropped`]). At a few thousand committees per
/// slot over [`HEIGHTS_KEPT`] slots this is ample; it bounds memory against a flood of
/// distinct (validated) instances.
pub const INSTANCES_MAX: usize = 262_144;

type Identifier = [u8; 56];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Vote {
    identifier: Identifier,
    height: u64,
    round: u64,
    root: [u8; 32],
}

#[derive(Debug)]
struct Votes {
    message: SsvMessage,
    signatures: BTreeMap<OperatorId, RsaSignature>,
}

/// Collects commits per instance until a quorum; see the module docs.
#[derive(Debug, Default)]
pub struct DecidedCollector {
    votes: HashMap<Vote, Votes>,
    decided: HashSet<(Identifier, u64)>,
    newest: u64,
    /// Instances not collected because [`INSTANCES_MAX`] were held.
    pub dropped: u64,
}

impl DecidedCollector {
    /// Takes one validated message of a committee of `committee_size` operators; returns the
    /// decided record when this message completed a quorum.
    pub fn on_message(&mut self, msg: &Validated, committee_size: usize) -> Option<DecidedRecord> {
        let Body::Consensus(q) = msg.body() else {
            return None;
        };
        self.on_commit(msg.message(), q, committee_size)
    }

    /// [`DecidedCollector::on_message`] on a message's parts: `signed` carries `q` (checked
    /// by gossip validation: signatures verified, signers in the committee).
    fn on_commit(
        &mut self,
        signed: &SignedSsvMessage,
        q: &QbftMessage,
        committee_size: usize,
    ) -> Option<DecidedRecord> {
        if q.kind() != Some(MessageType::Commit) || committee_size == 0 {
            return None;
        }
        let identifier: Identifier = signed.ssv_message.msg_id.0;
        let vote = Vote {
            identifier,
            height: q.height,
            round: q.round,
            root: q.root,
        };
        if self.decided.contains(&(identifier, q.height))
            || q.height.saturating_add(HEIGHTS_KEPT) < self.newest
        {
            return None;
        }
        if q.height > self.newest {
            self.newest = q.height;
            self.prune();
        }
        if !self.votes.contains_key(&vote) && self.votes.len() >= INSTANCES_MAX {
            self.dropped += 1;
            return None;
        }
        let entry = self.votes.entry(vote).or_insert_with(|| Votes {
            message: signed.ssv_message.clone(),
            signatures: BTreeMap::new(),
        });
        for (i, signer) in signed.operator_ids.iter().enumerate() {
            if let Some(sig) = signed.signature(i) {
                entry.signatures.entry(*signer).or_insert(*sig);
            }
        }
        if entry.signatures.len() < quorum(committee_size) {
            return None;
        }
        let votes = self.votes.remove(&vote)?;
        self.decided.insert((identifier, q.height));
        let record = decided_record(vote, votes, q);
        if record.is_none() {
            tracing::warn!(height = q.height, "decided instance not encodable: skipped");
        }
        record
    }

    /// Drops the votes and decided marks of heights out of the window.
    fn prune(&mut self) {
        let floor = self.newest.saturating_sub(HEIGHTS_KEPT);
        self.votes.retain(|v, _| v.height >= floor);
        self.decided.retain(|(_, h)| *h >= floor);
    }
}

fn decided_record(vote: Vote, votes: Votes, q: &QbftMessage) -> Option<DecidedRecord> {
    let (signers, signatures): (Vec<OperatorId>, Vec<RsaSignature>) =
        votes.signatures.into_iter().unzip();
    let aggregated =
        SignedSsvMessage::new(signatures, signers.clone(), votes.message, vec![]).ok()?;
    Some(DecidedRecord {
        identifier: vote.identifier,
        height: q.height,
        round: q.round,
        signers,
        value_root: vote.root,
        message: aggregated.to_ssz(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssv_protocol::message::{MessageId, MsgType};
    use ssz::Encode as _;
    use ssz_types::VariableList;

    fn commit(
        id: u8,
        height: u64,
        round: u64,
        root: u8,
        signers: &[u64],
    ) -> (SignedSsvMessage, QbftMessage) {
        let mut identifier = [0u8; 56];
        identifier[55] = id;
        let q = QbftMessage {
            msg_type: MessageType::Commit.to_u64(),
            height,
            round,
            identifier: VariableList::new(identifier.to_vec()).expect("fits"),
            root: [root; 32],
            data_round: 0,
            round_change_justification: VariableList::empty(),
            prepare_justification: VariableList::empty(),
        };
        let ssv = SsvMessage::new(MsgType::Consensus, MessageId(identifier), q.as_ssz_bytes())
            .expect("fits");
        let sigs = signers.iter().map(|s| [*s as u8; 256]).collect();
        let signed = SignedSsvMessage::new(sigs, signers.to_vec(), ssv, Vec::new()).expect("fits");
        (signed, q)
    }

    fn feed(c: &mut DecidedCollector, m: (SignedSsvMessage, QbftMessage)) -> Option<DecidedRecord> {
        c.on_commit(&m.0, &m.1, 4)
    }

    #[test]
    fn a_quorum_of_distinct_signers_of_one_round_and_root_decides_once() {
        let mut c = DecidedCollector::default();
        assert!(feed(&mut c, commit(1, 10, 1, 0xaa, &[2])).is_none());
        // A repeated signer, another root and another round do not add up.
        assert!(feed(&mut c, commit(1, 10, 1, 0xaa, &[2])).is_none());
        assert!(feed(&mut c, commit(1, 10, 1, 0xbb, &[3])).is_none());
        assert!(feed(&mut c, commit(1, 10, 2, 0xaa, &[4])).is_none());
        assert!(feed(&mut c, commit(1, 10, 1, 0xaa, &[1])).is_none());
        let d = feed(&mut c, commit(1, 10, 1, 0xaa, &[4])).expect("3 of 4 decide");
        assert_eq!((d.height, d.round, d.value_root), (10, 1, [0xaa; 32]));
        assert_eq!(d.signers, vec![1, 2, 4]);
        // The stored message is the aggregated commit: signatures in signer order.
        let m = SignedSsvMessage::from_ssz(&d.message).expect("SSZ");
        assert_eq!(m.operator_ids.to_vec(), vec![1, 2, 4]);
        assert_eq!(m.signature(1).map(|s| s[0]), Some(2));
        assert_eq!(
            QbftMessage::from_ssz(&m.ssv_message.data)
                .expect("qbft")
                .root,
            [0xaa; 32]
        );
        // Later commits of the instance (a fourth signer, another round) are not news.
        assert!(feed(&mut c, commit(1, 10, 1, 0xaa, &[3])).is_none());
        assert!(feed(&mut c, commit(1, 10, 2, 0xaa, &[1, 3, 4])).is_none());
        // Another identifier at the same height is its own instance.
        assert!(feed(&mut c, commit(2, 10, 1, 0xaa, &[1, 2])).is_none());
    }

    #[test]
    fn an_aggregated_commit_decides_at_once_and_other_types_are_ignored() {
        let mut c = DecidedCollector::default();
        let d = feed(&mut c, commit(1, 5, 3, 1, &[1, 3, 4])).expect("aggregated quorum");
        assert_eq!((d.round, d.signers.clone()), (3, vec![1, 3, 4]));
        let (signed, mut q) = commit(1, 6, 1, 1, &[1, 2, 3]);
        q.msg_type = MessageType::Prepare.to_u64();
        assert!(
            c.on_commit(&signed, &q, 4).is_none(),
            "a prepare quorum is not a decision"
        );
        let (signed, q) = commit(1, 7, 1, 1, &[1, 2, 3]);
        assert!(c.on_commit(&signed, &q, 0).is_none(), "unknown committee");
        // A committee of 7 needs 5.
        let (signed, q) = commit(3, 7, 1, 1, &[1, 2, 3, 4]);
        assert!(c.on_commit(&signed, &q, 7).is_none());
        let (signed, q) = commit(3, 7, 1, 1, &[5]);
        assert!(c.on_commit(&signed, &q, 7).is_some());
    }

    #[test]
    fn old_heights_are_dropped_and_memory_stays_bounded() {
        let mut c = DecidedCollector::default();
        assert!(feed(&mut c, commit(1, 100, 1, 1, &[1])).is_none());
        assert!(feed(&mut c, commit(1, 100 + HEIGHTS_KEPT + 1, 1, 1, &[1])).is_none());
        // Height 100 fell out of the window: its vote is gone and new ones are ignored.
        assert_eq!(c.votes.len(), 1);
        assert!(feed(&mut c, commit(1, 100, 1, 1, &[2, 3])).is_none());
        // The instance bound: a new instance beyond it is dropped and counted.
        let mut c = DecidedCollector::default();
        for i in 0..INSTANCES_MAX as u64 {
            c.votes.insert(
                Vote {
                    identifier: [9; 56],
                    height: 0,
                    round: i,
                    root: [0; 32],
                },
                Votes {
                    message: commit(9, 0, i, 0, &[1]).0.ssv_message,
                    signatures: BTreeMap::new(),
                },
            );
        }
        assert!(feed(&mut c, commit(1, 0, 1, 1, &[1, 2, 3])).is_none());
        assert_eq!(c.dropped, 1);
    }
}
