//! Serde helpers for the JSON encoding of the consensus specs and the Beacon API: integers
//! as decimal strings, byte arrays as `0x`-prefixed hex. The beacon types that have a JSON
//! form ([`crate::beacon_vote::AttestationData`], [`crate::beacon_vote::Checkpoint`]) use
//! them, and so does every Beacon API type of `ssv-beacon-api`: one encoding, one place.

/// A `u64` as a decimal string (accepts a bare number too).
pub mod u64_str {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as a decimal string.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Parses a decimal string or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            S(String),
            N(u64),
        }
        match Either::deserialize(d)? {
            Either::S(s) => s.parse().map_err(serde::de::Error::custom),
            Either::N(n) => Ok(n),
        }
    }
}

/// A list of `u64` as decimal strings.
pub mod u64_vec_str {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as decimal strings.
    pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|n| n.to_string()))
    }

    /// Parses decimal strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let v: Vec<String> = Vec::deserialize(d)?;
        v.iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

/// A fixed-size byte array as `0x`-prefixed hex.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `0x` hex.
    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }

    /// Parses `0x` hex of exactly N bytes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let bytes =
            hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|b: Vec<u8>| serde::de::Error::custom(format!("{} bytes, want {N}", b.len())))
    }
}

/// An optional fixed-size byte array as `0x`-prefixed hex (absent or `null`: `None`).
pub mod opt_hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `0x` hex, or `null`.
    pub fn serialize<S: Serializer, const N: usize>(
        v: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::hex_bytes::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    /// Parses `0x` hex of exactly N bytes, or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bytes =
            hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map(Some)
            .map_err(|b: Vec<u8>| serde::de::Error::custom(format!("{} bytes, want {N}", b.len())))
    }
}

/// A byte string of any length as `0x`-prefixed hex (bitfields, as the Beacon API writes
/// them: their SSZ bytes).
pub mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `0x` hex.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }

    /// Parses `0x` hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

/// An optional `u64` as a decimal string (absent or `null`: `None`).
pub mod opt_u64_str {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as a decimal string, or `null`.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_str(&n.to_string()),
            None => s.serialize_none(),
        }
    }

    /// Parses a decimal string or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let v: Option<String> = Option::deserialize(d)?;
        v.map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}
