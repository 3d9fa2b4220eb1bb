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
        if q.kind() != Some(MessageType::Commit) || committee_size == 0 {
            return None;
        }
        let signed = msg.message();
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
