//! Committee identity and where its messages travel.
//!
//! `CommitteeID = sha256(operator IDs sorted ascending, each as u32 little-endian)`,
//! `subnet = CommitteeID as a big-endian integer mod 128`, topic `ssv.v2.<subnet>`.

use sha2::{Digest, Sha256};

use crate::types::OperatorId;

/// Number of gossip subnets.
pub const SUBNET_COUNT: u64 = 128;
/// Prefix of every SSV gossip topic (`ssv.v2.<subnet>`).
pub const TOPIC_PREFIX: &str = "ssv.v2.";

/// A committee's ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CommitteeId(pub [u8; 32]);

impl std::fmt::Debug for CommitteeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommitteeId({})", hex::encode(self.0))
    }
}

impl CommitteeId {
    /// The ID of the committee of these operators (any order; duplicates are the caller's
    /// error and change the ID).
    pub fn from_operators(operators: &[OperatorId]) -> Self {
        let mut sorted: Vec<OperatorId> = operators.to_vec();
        sorted.sort_unstable();
        let mut hasher = Sha256::new();
        for id in sorted {
            // Operator IDs are u32 in the contract; the spec hashes them as 4 bytes.
            hasher.update((id as u32).to_le_bytes());
        }
        CommitteeId(hasher.finalize().into())
    }

    /// The subnet this committee's messages travel on.
    pub fn subnet(&self) -> u64 {
        subnet_of(&self.0)
    }
}

/// `bytes` as a big-endian integer mod [`SUBNET_COUNT`]. Because 128 divides 256, only the
/// last byte matters: the result is its low 7 bits.
pub fn subnet_of(bytes: &[u8; 32]) -> u64 {
    u64::from(bytes[31]) % SUBNET_COUNT
}

/// The gossip topic of a subnet.
pub fn topic_name(subnet: u64) -> String {
    debug_assert!(subnet < SUBNET_COUNT, "subnet out of range");
    format!("{TOPIC_PREFIX}{subnet}")
}

/// Parses `ssv.v2.<subnet>`.
pub fn parse_topic(topic: &str) -> Option<u64> {
    let n: u64 = topic.strip_prefix(TOPIC_PREFIX)?.parse().ok()?;
    (n < SUBNET_COUNT).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committee_id_of_spec_committee() {
        // ssv-spec testing committee 1..4 (committeemember vectors carry its ID).
        let id = CommitteeId::from_operators(&[4, 2, 3, 1]);
        assert_eq!(
            hex::encode(id.0),
            "cf97adeedb59e05bfd73a2b4c2a8885708c4f4f70c84c64b27120e72ab733b72"
        );
    }

    #[test]
    fn subnet_is_big_endian_mod_128() {
        let mut b = [0u8; 32];
        b[31] = 0xff;
        b[0] = 0x80;
        assert_eq!(subnet_of(&b), 127);
        assert_eq!(topic_name(5), "ssv.v2.5");
        assert_eq!(parse_topic("ssv.v2.127"), Some(127));
        assert_eq!(parse_topic("ssv.v2.128"), None);
        assert_eq!(parse_topic("ssv.v1.3"), None);
    }
}
