//! What identifies a runner, role-neutrally: the node holds every role's runners in one map
//! keyed by [`RunnerKey`], and routes a message to its runner from the message ID alone.

use crate::committee::CommitteeId;
use crate::message::{MessageId, RunnerRole};
use crate::types::BlsPublicKey;

/// The runner a message or duty belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunnerKey {
    /// The committee runner of a committee (attester and sync-committee duties of every
    /// validator the committee runs).
    Committee(CommitteeId),
    /// A validator's runner of one of the five other roles.
    Validator(BlsPublicKey, RunnerRole),
}

impl RunnerKey {
    /// The runner a message ID names; `None` for an unknown role. The committee ID sits in
    /// the last 32 of the 48 executor bytes (left-padded with zeros); a committee message
    /// whose padding is not zero names no committee.
    pub fn from_message_id(id: &MessageId) -> Option<Self> {
        let executor = id.duty_executor_id();
        match id.role()? {
            RunnerRole::Committee => {
                let (pad, committee) = executor.split_at(16);
                if pad.iter().any(|b| *b != 0) {
                    return None;
                }
                let mut c = [0u8; 32];
                c.copy_from_slice(committee);
                Some(RunnerKey::Committee(CommitteeId(c)))
            }
            role => Some(RunnerKey::Validator(*executor, role)),
        }
    }

    /// The role.
    pub fn role(&self) -> RunnerRole {
        match self {
            RunnerKey::Committee(_) => RunnerRole::Committee,
            RunnerKey::Validator(_, role) => *role,
        }
    }
}

/// ssv-spec's rule on the shares a runner is built over (`NewCommitteeRunner`: at least one;
/// the five validator roles: exactly one, the validator's own). The error texts are the
/// spec's.
pub fn check_share_count(role: RunnerRole, shares: usize) -> Result<(), &'static str> {
    match role {
        RunnerRole::Committee if shares == 0 => Err("no shares"),
        RunnerRole::Committee => Ok(()),
        _ if shares != 1 => Err("must have one share"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::DomainType;

    #[test]
    fn message_ids_name_their_runner() {
        let domain = DomainType([0, 0, 3, 1]);
        let committee = CommitteeId::from_operators(&[1, 2, 3, 4]);
        let id = MessageId::for_committee(domain, &committee);
        assert_eq!(
            RunnerKey::from_message_id(&id),
            Some(RunnerKey::Committee(committee))
        );
        let pk = [7u8; 48];
        for role in RunnerRole::ALL.into_iter().skip(1) {
            let id = MessageId::for_validator(domain, role, &pk);
            let key = RunnerKey::from_message_id(&id).expect("known role");
            assert_eq!(key, RunnerKey::Validator(pk, role));
            assert_eq!(key.role(), role);
        }
        // A committee role over a 48-byte executor is not a committee.
        let id = MessageId::new(domain, RunnerRole::Committee, &pk);
        assert_eq!(RunnerKey::from_message_id(&id), None);
    }

    #[test]
    fn share_counts_follow_the_spec() {
        assert_eq!(
            check_share_count(RunnerRole::Committee, 0),
            Err("no shares")
        );
        assert_eq!(check_share_count(RunnerRole::Committee, 30), Ok(()));
        assert_eq!(check_share_count(RunnerRole::Proposer, 1), Ok(()));
        assert_eq!(
            check_share_count(RunnerRole::Proposer, 2),
            Err("must have one share")
        );
        assert_eq!(
            check_share_count(RunnerRole::VoluntaryExit, 0),
            Err("must have one share")
        );
    }
}
