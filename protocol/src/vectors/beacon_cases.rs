//! Vector cases of the beacon duty/data types (`beacon.*`, `consensusdataproposer.*`,
//! `ssz.*`, `validatorconsensusdata.*`; `duty.*` is in `types_cases`).
//!
//! Besides what each Go test checks, every consensus value that is expected to be valid also
//! has its `DataSSZ` decoded into the beacon object and encoded back byte for byte, so that
//! the beacon containers themselves are checked against the vectors.

use serde_json::Value;
use ssz::{Decode, Encode};
use ssz_types::VariableList;
use tree_hash::TreeHash;

use super::json::{as_array, as_b64, as_fixed, as_u64, field, u64_field};
use super::{CaseContext, CaseFn, expect_code};
use crate::Error;
use crate::beacon::deposit::deposit_data_and_signing_root;
use crate::beacon::{DataVersion, Proposal, ValidatorConsensusData, ValidatorDuty};
use crate::signing::DOMAIN_DEPOSIT;
use crate::types::BeaconRole;

/// `(prefix, runner)` for the beacon-type cases of the `types` module.
pub const CASES: &[(&str, CaseFn)] = &[
    ("beacon.DepositDataSpecTest", deposit_data),
    ("consensusdataproposer.ProposerSpecTest", proposer),
    ("ssz.SSZSpecTest", ssz_withdrawals),
    (
        "validatorconsensusdata.EncodingTest",
        consensus_data_encoding,
    ),
    (
        "validatorconsensusdata.ValidatorConsensusDataTest",
        consensus_data_validation,
    ),
];

/// `ExpectedErrorCode`, 0 when absent.
fn expected_code(v: &Value) -> Result<u64, String> {
    v.get("ExpectedErrorCode").map_or(Ok(0), as_u64)
}

fn hex_root(v: &Value, name: &str) -> Result<[u8; 32], String> {
    as_fixed::<32>(field(v, name)?)
}

/// Reads a `ValidatorDuty` from the Go JSON.
pub fn validator_duty_from_json(v: &Value) -> Result<ValidatorDuty, String> {
    let indices = as_array(field(v, "ValidatorSyncCommitteeIndices")?)?
        .iter()
        .map(as_u64)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ValidatorDuty {
        role: u64_field(v, "Type")?,
        pubkey: as_fixed::<48>(field(v, "PubKey")?)?,
        slot: u64_field(v, "Slot")?,
        validator_index: u64_field(v, "ValidatorIndex")?,
        committee_index: u64_field(v, "CommitteeIndex")?,
        committee_length: u64_field(v, "CommitteeLength")?,
        committees_at_slot: u64_field(v, "CommitteesAtSlot")?,
        validator_committee_index: u64_field(v, "ValidatorCommitteeIndex")?,
        validator_sync_committee_indices: VariableList::new(indices)
            .map_err(|e| format!("ValidatorSyncCommitteeIndices: {e:?}"))?,
    })
}

/// Reads a `ValidatorConsensusData` from the Go JSON (`Version` is the go-eth2-client name).
pub fn validator_consensus_data_from_json(v: &Value) -> Result<ValidatorConsensusData, String> {
    let duty = validator_duty_from_json(field(v, "Duty")?)?;
    let version = match field(v, "Version")? {
        Value::String(name) => DataVersion::from_name(name)
            .map(DataVersion::to_u64)
            .ok_or_else(|| format!("unknown version name {name:?}"))?,
        other => as_u64(other)?,
    };
    let data = as_b64(field(v, "DataSSZ")?)?;
    ValidatorConsensusData::new(duty, version, data).map_err(|e| e.to_string())
}

/// Decodes `DataSSZ` as the duty role's beacon object and checks that it encodes back to the
/// same bytes.
fn inner_round_trip(cd: &ValidatorConsensusData) -> Result<(), String> {
    let err = |e: Error| format!("DataSSZ: {e}");
    let encoded = match cd.duty.beacon_role() {
        Some(BeaconRole::Aggregator) => cd.aggregate_and_proof().map_err(err)?.to_ssz(),
        Some(BeaconRole::Proposer) => cd.proposal().map_err(err)?.to_ssz(),
        Some(BeaconRole::SyncCommitteeContribution) => cd
            .sync_committee_contributions()
            .map_err(err)?
            .as_ssz_bytes(),
        _ => return Ok(()),
    };
    if encoded[..] != cd.data_ssz[..] {
        return Err(format!(
            "DataSSZ re-encodes to {} bytes differing from the {} given",
            encoded.len(),
            cd.data_ssz.len()
        ));
    }
    Ok(())
}

/// Deposit data signing root for a validator key, withdrawal credentials and fork version.
fn deposit_data(v: &Value, _: &CaseContext) -> Result<(), String> {
    let pubkey = as_fixed::<48>(field(v, "ValidatorPK")?)?;
    let credentials = as_fixed::<32>(field(v, "WithdrawalCredentials")?)?;
    let fork = as_fixed::<4>(field(v, "ForkVersion")?)?;
    if let Some(domain) = v.get("Domain") {
        let domain = as_fixed::<4>(domain)?;
        if domain != DOMAIN_DEPOSIT {
            return Err(format!(
                "domain {} is not the deposit domain",
                hex::encode(domain)
            ));
        }
    }
    let expected = hex_root(v, "ExpectedSigningRoot")?;
    let (data, root) = deposit_data_and_signing_root(pubkey, credentials, fork);
    if root != expected {
        return Err(format!(
            "signing root {} != expected {}",
            hex::encode(root),
            hex::encode(expected)
        ));
    }
    let bytes = data.as_ssz_bytes();
    let back = crate::beacon::phase0::DepositData::from_ssz_bytes(&bytes)
        .map_err(|e| format!("DepositData round trip: {e:?}"))?;
    if back != data || bytes.len() != 48 + 32 + 8 + 96 {
        return Err("DepositData does not round-trip".into());
    }
    Ok(())
}

/// A proposer value: decode the consensus data, get its block, compare block and value
/// encodings and roots.
fn proposer(v: &Value, _: &CaseContext) -> Result<(), String> {
    let data_cd = as_b64(field(v, "DataCd")?)?;
    let cd = ValidatorConsensusData::from_ssz(&data_cd).map_err(|e| format!("DataCd: {e}"))?;
    let code = expected_code(v)?;
    let proposal = match cd.proposal() {
        Ok(p) if code == 0 => p,
        other => return expect_code(other.map(drop), code),
    };
    if v.get("Blinded").and_then(Value::as_bool) == Some(true) && !proposal.is_blinded() {
        return Err("expected a blinded block".into());
    }
    let blk_root = proposal.block_root();
    let expected_blk_root = hex_root(v, "ExpectedBlkRoot")?;
    if blk_root != expected_blk_root {
        return Err(format!(
            "block root {} != expected {}",
            hex::encode(blk_root),
            hex::encode(expected_blk_root)
        ));
    }
    if proposal.to_ssz() != as_b64(field(v, "DataBlk")?)? {
        return Err("block encoding differs from DataBlk".into());
    }
    let cd_root = cd.root();
    let expected_cd_root = hex_root(v, "ExpectedCdRoot")?;
    if cd_root != expected_cd_root {
        return Err(format!(
            "consensus data root {} != expected {}",
            hex::encode(cd_root),
            hex::encode(expected_cd_root)
        ));
    }
    if cd.to_ssz() != data_cd {
        return Err("consensus data does not re-encode to DataCd".into());
    }
    Ok(())
}

/// The withdrawals of a full block's payload: hash-tree-root against the expected root.
fn ssz_withdrawals(v: &Value, _: &CaseContext) -> Result<(), String> {
    let data = as_b64(field(v, "Data")?)?;
    let code = expected_code(v)?;
    let proposal = match ValidatorConsensusData::from_ssz(&data).and_then(|cd| cd.proposal()) {
        Ok(p) if code == 0 => p,
        other => return expect_code(other.map(drop), code),
    };
    let root = match &proposal {
        Proposal::Capella(b) => b.body.execution_payload.withdrawals.tree_hash_root(),
        Proposal::Deneb(c) => c.block.body.execution_payload.withdrawals.tree_hash_root(),
        Proposal::Electra(c) => c.block.body.execution_payload.withdrawals.tree_hash_root(),
        Proposal::Fulu(c) => c.block.body.execution_payload.withdrawals.tree_hash_root(),
        blinded => {
            return Err(format!(
                "a blinded {} block has no withdrawals",
                blinded.version().name()
            ));
        }
    };
    let expected = as_fixed::<32>(field(v, "ExpectedRoot")?)?;
    if root.0 != expected {
        return Err(format!(
            "withdrawals root {} != expected {}",
            hex::encode(root.0),
            hex::encode(expected)
        ));
    }
    Ok(())
}

/// Encoding of a `ValidatorConsensusData`: decode, re-encode, root; and the inner object.
fn consensus_data_encoding(v: &Value, _: &CaseContext) -> Result<(), String> {
    let data = as_b64(field(v, "Data")?)?;
    let cd = ValidatorConsensusData::from_ssz(&data).map_err(|e| format!("decode: {e}"))?;
    if cd.to_ssz() != data {
        return Err("does not re-encode to the same bytes".into());
    }
    let expected = as_fixed::<32>(field(v, "ExpectedRoot")?)?;
    if cd.root() != expected {
        return Err(format!(
            "root {} != expected {}",
            hex::encode(cd.root()),
            hex::encode(expected)
        ));
    }
    inner_round_trip(&cd)
}

/// `ValidatorConsensusData.Validate()` with the expected error code; a valid value must also
/// round-trip through its beacon object.
fn consensus_data_validation(v: &Value, _: &CaseContext) -> Result<(), String> {
    let cd = validator_consensus_data_from_json(field(v, "ConsensusData")?)?;
    let code = expected_code(v)?;
    expect_code(cd.validate(), code)?;
    let bytes = cd.to_ssz();
    let back = ValidatorConsensusData::from_ssz(&bytes).map_err(|e| format!("round trip: {e}"))?;
    if back != cd {
        return Err("consensus data does not round-trip".into());
    }
    if code == 0 {
        inner_round_trip(&cd)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::json::as_hex;
    use super::*;

    #[test]
    fn hex_and_base64_pubkeys_are_read() {
        let pk = "8e80066551a81b318258709edaf7dd1f63cd686a0e4db8b29bbb7acfe65608677af5a527d9448ee47835485e02b50bc0";
        let duty = serde_json::json!({
            "Type": 2, "PubKey": format!("0x{pk}"), "Slot": "12", "ValidatorIndex": "1",
            "CommitteeIndex": 3, "CommitteeLength": 128, "CommitteesAtSlot": 36,
            "ValidatorCommitteeIndex": 11, "ValidatorSyncCommitteeIndices": [0, 1]
        });
        let d = validator_duty_from_json(&duty).unwrap();
        assert_eq!(hex::encode(d.pubkey), pk);
        assert_eq!(d.slot, 12);
        assert_eq!(d.validator_sync_committee_indices.len(), 2);
        assert_eq!(as_hex(&serde_json::json!("0x0a")).unwrap(), vec![10]);
    }
}
