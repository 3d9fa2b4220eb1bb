//! EIP-3076 slashing-protection interchange format (version 5): parsing, import plan, export.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::records::{Root, ValidatorPubkey};

/// The only interchange format version defined by EIP-3076.
pub const INTERCHANGE_FORMAT_VERSION: &str = "5";
/// Largest interchange document accepted (bytes). A complete history of 100,000 validators
/// over a year is well below this; larger inputs are refused before parsing.
pub const INTERCHANGE_BYTES_MAX: usize = 1 << 30;

/// A whole interchange document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interchange {
    /// Format version and network.
    pub metadata: InterchangeMetadata,
    /// One entry per validator (a validator may appear more than once).
    pub data: Vec<InterchangeRecord>,
}

/// Interchange metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeMetadata {
    /// Always `"5"`.
    pub interchange_format_version: String,
    /// `0x`-prefixed hex of the network's genesis validators root.
    pub genesis_validators_root: String,
}

/// Signed messages of one validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeRecord {
    /// `0x`-prefixed hex BLS public key.
    pub pubkey: String,
    /// Signed blocks.
    pub signed_blocks: Vec<InterchangeBlock>,
    /// Signed attestations.
    pub signed_attestations: Vec<InterchangeAttestation>,
}

/// A signed block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeBlock {
    /// Decimal slot.
    pub slot: String,
    /// Optional `0x` hex signing root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<String>,
}

/// A signed attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeAttestation {
    /// Decimal source epoch.
    pub source_epoch: String,
    /// Decimal target epoch.
    pub target_epoch: String,
    /// Optional `0x` hex signing root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<String>,
}

/// What an import does to one validator, after parsing and validating the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImportEntry {
    pub(crate) pubkey: ValidatorPubkey,
    pub(crate) max_block_slot: Option<u64>,
    /// (highest source, highest target) over the record's attestations.
    pub(crate) max_source_target: Option<(u64, u64)>,
}

/// Counts of one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    /// Validator records merged.
    pub validators: usize,
    /// Blocks read from the document.
    pub blocks: usize,
    /// Attestations read from the document.
    pub attestations: usize,
}

fn bad(msg: impl Into<String>) -> StorageError {
    StorageError::Interchange(msg.into())
}

fn parse_u64(field: &str, v: &str) -> Result<u64> {
    // EIP-3076: decimal strings without sign or leading "+".
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("{field} {v:?} is not a decimal u64")));
    }
    v.parse()
        .map_err(|_| bad(format!("{field} {v:?} does not fit in u64")))
}

fn parse_hex<const N: usize>(field: &str, v: &str) -> Result<[u8; N]> {
    let digits = v
        .strip_prefix("0x")
        .ok_or_else(|| bad(format!("{field} {v:?} lacks the 0x prefix")))?;
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out)
        .map_err(|e| bad(format!("{field} {v:?} is not {N} bytes of hex: {e}")))?;
    Ok(out)
}

/// Formats bytes as `0x` hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

impl Interchange {
    /// Parses a JSON document (bounded by [`INTERCHANGE_BYTES_MAX`]).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > INTERCHANGE_BYTES_MAX {
            return Err(bad(format!(
                "document of {} bytes is too large",
                bytes.len()
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| bad(format!("malformed JSON: {e}")))
    }

    /// Reads and parses a document file (refused unread beyond the size limit).
    pub fn read_file(path: &std::path::Path) -> Result<Self> {
        let io = |source| StorageError::Io {
            path: path.to_owned(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > INTERCHANGE_BYTES_MAX as u64 {
            return Err(bad(format!("{} is {len} bytes, too large", path.display())));
        }
        Self::from_json(&std::fs::read(path).map_err(io)?)
    }

    /// Writes the document to a new file (an existing one is never overwritten) and syncs it.
    pub fn write_new_file(&self, path: &std::path::Path) -> Result<()> {
        use std::io::Write as _;
        let io = |source| StorageError::Io {
            path: path.to_owned(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        f.write_all(self.to_json().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Serializes as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("interchange types always serialize")
    }

    /// Validates the document against `genesis_validators_root` and reduces each record to
    /// what a minified import needs. Fails (and nothing is imported) when any field is
    /// malformed or the document belongs to another network.
    pub(crate) fn plan(
        &self,
        genesis_validators_root: &Root,
    ) -> Result<(Vec<ImportEntry>, ImportSummary)> {
        if self.metadata.interchange_format_version != INTERCHANGE_FORMAT_VERSION {
            return Err(bad(format!(
                "interchange_format_version {:?}, only {INTERCHANGE_FORMAT_VERSION:?} is supported",
                self.metadata.interchange_format_version
            )));
        }
        let root: Root = parse_hex(
            "genesis_validators_root",
            &self.metadata.genesis_validators_root,
        )?;
        if &root != genesis_validators_root {
            return Err(bad(format!(
                "genesis_validators_root {} is not this network's {}",
                self.metadata.genesis_validators_root,
                to_hex(genesis_validators_root)
            )));
        }
        let mut summary = ImportSummary::default();
        let mut entries = Vec::with_capacity(self.data.len());
        for record in &self.data {
            let pubkey: ValidatorPubkey = parse_hex("pubkey", &record.pubkey)?;
            let mut max_block_slot: Option<u64> = None;
            for block in &record.signed_blocks {
                let slot = parse_u64("slot", &block.slot)?;
                if let Some(root) = &block.signing_root {
                    parse_hex::<32>("signing_root", root)?;
                }
                max_block_slot = Some(max_block_slot.map_or(slot, |m| m.max(slot)));
                summary.blocks += 1;
            }
            let mut max_source_target: Option<(u64, u64)> = None;
            for att in &record.signed_attestations {
                let s = parse_u64("source_epoch", &att.source_epoch)?;
                let t = parse_u64("target_epoch", &att.target_epoch)?;
                if let Some(root) = &att.signing_root {
                    parse_hex::<32>("signing_root", root)?;
                }
                max_source_target = Some(match max_source_target {
                    None => (s, t),
                    Some((ms, mt)) => (ms.max(s), mt.max(t)),
                });
                summary.attestations += 1;
            }
            entries.push(ImportEntry {
                pubkey,
                max_block_slot,
                max_source_target,
            });
            summary.validators += 1;
        }
        Ok((entries, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(root: &str) -> String {
        format!(
            r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"{root}"}},
            "data":[{{"pubkey":"0x{pk}","signed_blocks":[{{"slot":"7"}},{{"slot":"3","signing_root":"0x{r}"}}],
            "signed_attestations":[{{"source_epoch":"1","target_epoch":"9"}},{{"source_epoch":"4","target_epoch":"5"}}]}}]}}"#,
            pk = "aa".repeat(48),
            r = "11".repeat(32)
        )
    }

    #[test]
    fn plan_takes_maxima_and_checks_network() {
        let root = [0u8; 32];
        let i = Interchange::from_json(doc(&to_hex(&root)).as_bytes()).unwrap();
        let (entries, summary) = i.plan(&root).unwrap();
        assert_eq!(
            summary,
            ImportSummary {
                validators: 1,
                blocks: 2,
                attestations: 2
            }
        );
        assert_eq!(entries[0].max_block_slot, Some(7));
        assert_eq!(entries[0].max_source_target, Some((4, 9)));
        assert!(i.plan(&[1u8; 32]).is_err());
    }

    #[test]
    fn malformed_documents_are_errors() {
        let root = [0u8; 32];
        for text in [
            "".to_string(),
            "{}".to_string(),
            doc("0x00").replace("\"7\"", "\"-7\""),
            doc(&to_hex(&root)).replace("\"7\"", "\"0x7\""),
            doc(&to_hex(&root)).replace("\"5\"", "\"4\""),
            doc(&to_hex(&root)).replace(&"aa".repeat(48), "aa"),
            doc(&to_hex(&root)).replace("\"9\"", "\"99999999999999999999999\""),
        ] {
            let parsed = Interchange::from_json(text.as_bytes());
            assert!(
                parsed.and_then(|i| i.plan(&root)).is_err(),
                "accepted: {text}"
            );
        }
    }
}
