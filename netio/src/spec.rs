//! Constants of the SSV network that this crate speaks: subnets and topic names, domain types,
//! ports, the discovery protocol identity and the largest gossip message the Go node accepts.
//!
//! Sources: the Go node (ssvlabs/ssv v2.x) `network/commons`, `networkconfig/*.go`,
//! `message/validation/const.go`. Subnet count, topic names and domain types come from the
//! protocol crate; this module adds the typed [`Subnet`] and the transport limits.

use crate::error::NetioError;

/// Number of gossip subnets (the protocol crate's `committee::SUBNET_COUNT`, as a `usize`).
pub const SUBNET_COUNT: usize = ssv_protocol::committee::SUBNET_COUNT as usize;

pub use ssv_protocol::committee::TOPIC_PREFIX;
pub use ssv_protocol::types::DomainType;

/// One of the [`SUBNET_COUNT`] gossip subnets. The value is always `< SUBNET_COUNT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet(u8);

impl Subnet {
    /// Checks the bound and wraps the index.
    pub fn new(index: usize) -> Result<Self, NetioError> {
        if index < SUBNET_COUNT {
            // The bound above keeps the index below 128, so it fits in a u8.
            Ok(Self(index as u8))
        } else {
            Err(NetioError::SubnetOutOfRange(index))
        }
    }

    /// The subnet index, `0..SUBNET_COUNT`.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// All subnets in ascending order.
    pub fn all() -> impl Iterator<Item = Subnet> {
        // SUBNET_COUNT is 128, so every index fits in a u8.
        (0..SUBNET_COUNT as u8).map(Subnet)
    }

    /// The subnet a committee's messages travel on: the committee ID (32 bytes, big-endian
    /// integer) modulo [`SUBNET_COUNT`], as Go's `commons.CommitteeSubnet`. Because 128 divides
    /// 256 this is the low 7 bits of the last byte.
    pub fn for_committee_id(committee_id: &[u8; 32]) -> Subnet {
        // subnet_of returns a value below 128.
        Subnet(ssv_protocol::committee::subnet_of(committee_id) as u8)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The gossipsub topic of a subnet: `ssv.v2.<subnet>` (the protocol crate's `topic_name`).
pub fn topic_name(subnet: Subnet) -> String {
    ssv_protocol::committee::topic_name(subnet.index() as u64)
}

/// Parses a topic name back to its subnet; `None` for anything but the canonical
/// `ssv.v2.<0..127>` (no sign, no leading zeros), which is all the Go node ever sends.
pub fn subnet_from_topic(topic: &str) -> Option<Subnet> {
    let n = ssv_protocol::committee::parse_topic(topic)?;
    let subnet = Subnet::new(usize::try_from(n).ok()?).ok()?;
    (topic_name(subnet) == topic).then_some(subnet)
}

/// Lowercase hex of `bytes`, no prefix.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// The handshake's network ID string of a domain: `"0x"` + lowercase hex of the four bytes, as
/// the Go handshaker writes it (`"0x" + hex.EncodeToString(domainType[:])`).
pub fn network_id(domain: DomainType) -> String {
    format!("0x{}", domain.to_hex())
}

/// Default libp2p TCP port of the Go node (`p2p.TcpPort`, 13001). QUIC listens on the same
/// number over UDP unless configured otherwise.
pub const DEFAULT_TCP_PORT: u16 = 13001;
/// Default discv5 UDP port of the Go node (`p2p.UdpPort`, 12001).
pub const DEFAULT_UDP_PORT: u16 = 12001;

/// discv5 protocol ID bytes of every SSV network (`DiscoveryProtocolID: "ssvdv5"`); a node using
/// the Ethereum default `discv5` cannot talk to SSV discovery.
pub const DISCOVERY_PROTOCOL_ID: [u8; 6] = *b"ssvdv5";
/// discv5 protocol version (go-ethereum's `discover/v5wire` version 1).
pub const DISCOVERY_PROTOCOL_VERSION: [u8; 2] = [0x00, 0x01];

// The largest gossip message, derived as the Go node does in `message/validation/const.go`
// (`MaxEncodedMsgSize`, passed to `pubsub.WithMaxMessageSize`). Every structure's bound N gets
// an SSZ encoding allowance of N / ENCODING_OVERHEAD_DIVISOR + 4.

/// Encoding allowance divisor (5%).
pub const ENCODING_OVERHEAD_DIVISOR: usize = 20;
/// RSA-2048 operator signature.
pub const RSA_SIGNATURE_SIZE: usize = 256;
/// Operator IDs are uint64.
pub const OPERATOR_ID_SIZE: usize = 8;
/// Most signers in one SignedSSVMessage (13 operators).
pub const MAX_SIGNATURES: usize = 13;
/// MessageID: domain (4) + role (4) + duty executor ID (48).
pub const IDENTIFIER_SIZE: usize = 56;
/// A 32-byte root.
pub const ROOT_SIZE: usize = 32;
/// A uint64 (type, height, round, slot, validator index fields).
pub const U64_SIZE: usize = 8;
/// Largest QBFT justification without nested justifications (Go: 3616 bytes).
pub const MAX_NO_JUSTIFICATION_SIZE: usize = 3616;
/// Largest QBFT justification with one level of justifications (Go: 50624 bytes).
pub const MAX_1_JUSTIFICATION_SIZE: usize = 50624;
/// qbft.Message: type, height, round, identifier, root, data round, and up to 13 of each
/// justification kind.
pub const MAX_CONSENSUS_MSG_SIZE: usize = U64_SIZE * 3
    + IDENTIFIER_SIZE
    + ROOT_SIZE
    + U64_SIZE
    + MAX_SIGNATURES * (MAX_NO_JUSTIFICATION_SIZE + MAX_1_JUSTIFICATION_SIZE);
/// Encoded consensus message bound.
pub const MAX_ENCODED_CONSENSUS_MSG_SIZE: usize =
    MAX_CONSENSUS_MSG_SIZE + MAX_CONSENSUS_MSG_SIZE / ENCODING_OVERHEAD_DIVISOR + 4;
/// One partial signature message: BLS signature (96), signing root, signer, validator index.
pub const PARTIAL_SIGNATURE_MSG_SIZE: usize = 96 + ROOT_SIZE + OPERATOR_ID_SIZE + U64_SIZE;
/// Most partial signatures in one PartialSignatureMessages.
pub const MAX_PARTIAL_SIGNATURE_MESSAGES: usize = 1000;
/// PartialSignatureMessages: type, slot, messages.
pub const MAX_PARTIAL_SIGNATURE_MSGS_SIZE: usize =
    U64_SIZE + U64_SIZE + MAX_PARTIAL_SIGNATURE_MESSAGES * PARTIAL_SIGNATURE_MSG_SIZE;
/// Encoded partial signature messages bound.
pub const MAX_ENCODED_PARTIAL_SIGNATURE_SIZE: usize = MAX_PARTIAL_SIGNATURE_MSGS_SIZE
    + MAX_PARTIAL_SIGNATURE_MSGS_SIZE / ENCODING_OVERHEAD_DIVISOR
    + 4;
/// The SSVMessage data bound: the larger of the two payload kinds.
pub const MAX_PAYLOAD_DATA_SIZE: usize =
    if MAX_ENCODED_CONSENSUS_MSG_SIZE > MAX_ENCODED_PARTIAL_SIGNATURE_SIZE {
        MAX_ENCODED_CONSENSUS_MSG_SIZE
    } else {
        MAX_ENCODED_PARTIAL_SIGNATURE_SIZE
    };
/// SignedSSVMessage FullData bound since Pectra (spectypes.SignedSSVMessage, 8388836 bytes).
pub const MAX_FULL_DATA_SIZE: usize = 8_388_836;
/// SignedSSVMessage bound: signatures, operator IDs, message type, identifier, data, full data.
pub const MAX_SIGNED_MSG_SIZE: usize = MAX_SIGNATURES * RSA_SIGNATURE_SIZE
    + MAX_SIGNATURES * OPERATOR_ID_SIZE
    + U64_SIZE
    + IDENTIFIER_SIZE
    + MAX_PAYLOAD_DATA_SIZE
    + MAX_FULL_DATA_SIZE;
/// The largest gossip message data we send or accept (Go: `validation.MaxEncodedMsgSize`,
/// 9,589,483 bytes). Too small and we drop valid proposals with full blocks that Go peers
/// forward; this is also gossipsub's max transmit size.
pub const GOSSIP_MAX_SIZE: usize =
    MAX_SIGNED_MSG_SIZE + MAX_SIGNED_MSG_SIZE / ENCODING_OVERHEAD_DIVISOR + 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_round_trip_for_every_subnet() {
        for subnet in Subnet::all() {
            let name = topic_name(subnet);
            assert_eq!(subnet_from_topic(&name), Some(subnet));
        }
        assert_eq!(topic_name(Subnet::new(47).unwrap()), "ssv.v2.47");
    }

    #[test]
    fn topic_parse_rejects_bad_names() {
        for bad in [
            "ssv.v2.128",
            "ssv.v2.",
            "ssv.v2.-1",
            "ssv.v2.01",
            "ssv.v2.1a",
            "ssv.v1.1",
            "bloxstaking.ssv.1",
            "ssv.v2.+1",
            "ssv.v2. 1",
            "ssv.v2.1000",
        ] {
            assert_eq!(subnet_from_topic(bad), None, "{bad}");
        }
        assert!(Subnet::new(128).is_err());
    }

    #[test]
    fn committee_subnet_is_big_endian_mod_128() {
        let mut id = [0u8; 32];
        id[31] = 0xff;
        id[30] = 0x12;
        assert_eq!(Subnet::for_committee_id(&id).index(), 0x7f);
        id[31] = 0x80;
        assert_eq!(Subnet::for_committee_id(&id).index(), 0);
    }

    #[test]
    fn network_id_matches_go_format() {
        assert_eq!(network_id(DomainType::MAINNET), "0x00000001");
        assert_eq!(network_id(DomainType::HOODI), "0x00000503");
    }

    #[test]
    fn max_message_size_matches_go_node() {
        // Worked out by hand from message/validation/const.go.
        assert_eq!(MAX_CONSENSUS_MSG_SIZE, 705_240);
        assert_eq!(MAX_ENCODED_CONSENSUS_MSG_SIZE, 740_506);
        assert_eq!(MAX_ENCODED_PARTIAL_SIGNATURE_SIZE, 151_220);
        assert_eq!(MAX_SIGNED_MSG_SIZE, 9_132_838);
        assert_eq!(GOSSIP_MAX_SIZE, 9_589_483);
        // Never below what the spec allows a SignedSSVMessage to be.
        const { assert!(GOSSIP_MAX_SIZE >= ssv_protocol::limits::SIGNED_SSV_MESSAGE_MAX) };
    }
}
