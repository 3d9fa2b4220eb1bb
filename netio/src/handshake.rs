//! The `/ssv/info/0.0.1` handshake: both sides exchange a signed node-info record and drop the
//! connection when the other node belongs to another network (domain type).
//!
//! Wire format, as the Go node (`network/records/node_info.go`, `network/streams`): the
//! requester writes one libp2p signed envelope (RFC 0002, domain `"ssv"`, payload type
//! `"ssv/nodeinfo"`) and closes its write side; the responder reads to EOF, answers with its
//! own envelope and closes. The payload is JSON `{"Entries":["", "<network id>", "<metadata
//! json>"]}`, where the network ID is `"0x"` + hex of the domain type; the first entry is a
//! deprecated fork version and stays empty.

use std::io;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::core::SignedEnvelope;
use libp2p::identity::{Keypair, PublicKey};
use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};

use crate::error::NetioError;

/// The handshake protocol ID.
pub const NODE_INFO_PROTOCOL: &str = "/ssv/info/0.0.1";
/// Signature domain of the envelope.
pub const ENVELOPE_DOMAIN: &str = "ssv";
/// Payload type of the envelope.
pub const NODE_INFO_CODEC: &[u8] = b"ssv/nodeinfo";
/// Largest handshake message we read. A node info record is a few hundred bytes; anything near
/// this bound is hostile.
pub const HANDSHAKE_MAX_SIZE: usize = 16 * 1024;
/// Time allowed for a handshake exchange before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Node metadata (Go `records.NodeMetadata`); JSON field names as Go writes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeMetadata {
    /// Node software version.
    pub node_version: String,
    /// Execution client "name/version".
    pub execution_node: String,
    /// Consensus client "name/version".
    pub consensus_node: String,
    /// Subscribed subnets, hex of the 16-byte bitvector.
    pub subnets: String,
    /// Whether the node uses committee subnets (always true since Alan).
    pub committee_subnets: bool,
}

/// What a node tells its peers about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// `"0x"` + hex of the domain type.
    pub network_id: String,
    /// Optional metadata.
    pub metadata: Option<NodeMetadata>,
}

#[derive(Serialize, Deserialize)]
struct Serializable {
    #[serde(rename = "Entries")]
    entries: Vec<String>,
}

impl NodeInfo {
    /// The JSON payload.
    pub fn marshal_record(&self) -> Vec<u8> {
        let mut entries = vec![String::new(), self.network_id.clone()];
        if let Some(meta) = &self.metadata {
            entries.push(serde_json::to_string(meta).expect("metadata serialises"));
        }
        serde_json::to_vec(&Serializable { entries }).expect("entries serialise")
    }

    /// Parses the JSON payload; the network ID entry is required.
    pub fn unmarshal_record(data: &[u8]) -> Result<Self, NetioError> {
        let ser: Serializable = serde_json::from_slice(data)
            .map_err(|e| NetioError::Handshake(format!("payload is not node info JSON: {e}")))?;
        let network_id = ser
            .entries
            .get(1)
            .ok_or_else(|| NetioError::Handshake("node info lacks the network ID".into()))?
            .clone();
        let metadata = match ser.entries.get(2) {
            None => None,
            Some(raw) => Some(
                serde_json::from_str(raw)
                    .map_err(|e| NetioError::Handshake(format!("bad metadata: {e}")))?,
            ),
        };
        Ok(NodeInfo {
            network_id,
            metadata,
        })
    }

    /// Signs the record into an envelope and encodes it.
    pub fn seal(&self, key: &Keypair) -> Result<Vec<u8>, NetioError> {
        let envelope = SignedEnvelope::new(
            key,
            ENVELOPE_DOMAIN.to_string(),
            NODE_INFO_CODEC.to_vec(),
            self.marshal_record(),
        )
        .map_err(|e| NetioError::Handshake(format!("signing failed: {e}")))?;
        Ok(envelope.into_protobuf_encoding())
    }

    /// Decodes and verifies an envelope; returns the record and the key that signed it.
    pub fn consume(bytes: &[u8]) -> Result<(NodeInfo, PublicKey), NetioError> {
        let envelope = SignedEnvelope::from_protobuf_encoding(bytes)
            .map_err(|e| NetioError::Handshake(format!("bad envelope: {e}")))?;
        let (payload, key) = envelope
            .payload_and_signing_key(ENVELOPE_DOMAIN.to_string(), NODE_INFO_CODEC)
            .map_err(|e| NetioError::Handshake(format!("envelope rejected: {e}")))?;
        Ok((NodeInfo::unmarshal_record(payload)?, key.clone()))
    }

    /// Decodes an envelope from `peer` and checks it was signed by that peer's key.
    pub fn consume_from(bytes: &[u8], peer: &PeerId) -> Result<NodeInfo, NetioError> {
        let (info, key) = Self::consume(bytes)?;
        if key.to_peer_id() != *peer {
            return Err(NetioError::Handshake(
                "envelope signed by another key".into(),
            ));
        }
        Ok(info)
    }
}

/// Request-response codec of the handshake: raw bytes to EOF, bounded by
/// [`HANDSHAKE_MAX_SIZE`]. The request-response behaviour closes the write side after each
/// message, which is the EOF the Go node waits for.
#[derive(Clone, Copy, Debug, Default)]
pub struct HandshakeCodec;

async fn read_bounded<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut *io)
        .take(HANDSHAKE_MAX_SIZE as u64 + 1)
        .read_to_end(&mut buf)
        .await?;
    if buf.len() > HANDSHAKE_MAX_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "handshake message too large",
        ));
    }
    Ok(buf)
}

impl libp2p::request_response::Codec for HandshakeCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bounded(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bounded(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> NodeInfo {
        NodeInfo {
            network_id: "0x00000001".into(),
            metadata: Some(NodeMetadata {
                node_version: "v0.1.0".into(),
                subnets: "ff".repeat(16),
                committee_subnets: true,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn payload_layout_matches_go() {
        let json = String::from_utf8(info().marshal_record()).unwrap();
        assert!(json.starts_with(r#"{"Entries":["","0x00000001","{\"NodeVersion\":\"v0.1.0\","#));
        let bare = NodeInfo {
            network_id: "0x00000503".into(),
            metadata: None,
        };
        assert_eq!(bare.marshal_record(), br#"{"Entries":["","0x00000503"]}"#);
        // A Go record with extra metadata fields still parses.
        let go = br#"{"Entries":["","0x00000001","{\"NodeVersion\":\"v2.3.0\",\"Extra\":1}"]}"#;
        let parsed = NodeInfo::unmarshal_record(go).unwrap();
        assert_eq!(parsed.metadata.unwrap().node_version, "v2.3.0");
    }

    #[test]
    fn seal_consume_round_trip_and_signer_check() {
        let key = Keypair::generate_secp256k1();
        let sealed = info().seal(&key).unwrap();
        let got = NodeInfo::consume_from(&sealed, &key.public().to_peer_id()).unwrap();
        assert_eq!(got, info());
        let other = Keypair::generate_secp256k1().public().to_peer_id();
        assert!(NodeInfo::consume_from(&sealed, &other).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"\x00\x01\x02", &[0xff; 64]] {
            assert!(NodeInfo::consume(bad).is_err());
        }
        assert!(NodeInfo::unmarshal_record(br#"{"Entries":[""]}"#).is_err());
        assert!(NodeInfo::unmarshal_record(b"[]").is_err());
        // A tampered payload fails the signature check.
        let key = Keypair::generate_secp256k1();
        let mut sealed = info().seal(&key).unwrap();
        let pos = sealed.windows(10).position(|w| w == b"0x00000001").unwrap();
        sealed[pos + 9] = b'2';
        assert!(NodeInfo::consume(&sealed).is_err());
    }
}
