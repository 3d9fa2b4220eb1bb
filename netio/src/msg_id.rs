//! Gossip message IDs, computed exactly as the Go node does (`network/topics/msg_id.go`).
//!
//! The ID is 12 bytes: xxhash64 of the message data, little-endian, followed by four zero
//! bytes (Go allocates `make([]byte, 12)` and writes the `uint64` into the first eight). Since
//! Alan, operators can publish byte-identical message bodies, so the whole `SignedSSVMessage`
//! (which includes the signer) is hashed. Messages with empty data, or without a valid author,
//! all share one fixed ID and are therefore deduplicated into a single delivery.

use libp2p::PeerId;
use xxhash_rust::xxh64::xxh64;

/// Length of a regular message ID.
pub const MSG_ID_LEN: usize = 12;
/// ID of messages with empty data (Go: `MsgIDEmptyMessage`).
pub const MSG_ID_EMPTY: &[u8] = b"invalid:empty";
/// ID of messages without a decodable author (Go: `MsgIDBadPeerID`).
pub const MSG_ID_BAD_PEER: &[u8] = b"invalid:peer_id_error";

/// The message ID of gossip data published by `source`.
pub fn message_id(data: &[u8], source: Option<&PeerId>) -> Vec<u8> {
    if data.is_empty() {
        return MSG_ID_EMPTY.to_vec();
    }
    if source.is_none() {
        return MSG_ID_BAD_PEER.to_vec();
    }
    let mut id = vec![0u8; MSG_ID_LEN];
    id[..8].copy_from_slice(&xxh64(data, 0).to_le_bytes());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_xxh64_le_padded_to_12() {
        let peer = PeerId::random();
        let id = message_id(b"hello", Some(&peer));
        assert_eq!(id.len(), MSG_ID_LEN);
        // xxh64("hello", seed 0) = 0x26c7827d889f6da3 (reference value of the xxHash spec).
        assert_eq!(&id[..8], &0x26c7_827d_889f_6da3u64.to_le_bytes());
        assert_eq!(&id[8..], &[0, 0, 0, 0]);
        // The author does not enter the hash.
        assert_eq!(id, message_id(b"hello", Some(&PeerId::random())));
    }

    #[test]
    fn degenerate_messages_get_fixed_ids() {
        assert_eq!(message_id(b"", Some(&PeerId::random())), MSG_ID_EMPTY);
        assert_eq!(message_id(b"x", None), MSG_ID_BAD_PEER);
    }
}
