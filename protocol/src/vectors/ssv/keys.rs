//! The Go harness's fixed key material (`testing-keys.json`): every BLS secret key of the key
//! sets by size and of the 500 validators by index, found by public key as the Go key manager
//! finds them, and the operators' RSA keys of each key-set size.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::super::json::{as_u64, field};
use super::super::rsa::OperatorKey;
use super::bls;

/// One key set (`BySize[n]`).
pub struct KeySet {
    /// Operators (and shares) in the set.
    pub size: usize,
    /// Quorum.
    pub threshold: usize,
    /// The validator's public key.
    pub validator_pk: [u8; 48],
    /// Share secret keys by operator.
    pub shares: BTreeMap<u64, [u8; 32]>,
    /// Operators' RSA keys.
    pub operators: BTreeMap<u64, OperatorKey>,
}

/// All keys of the harness.
pub struct TestKeys {
    /// Key sets by committee size (4, 7, 10, 13).
    pub by_size: BTreeMap<usize, KeySet>,
    /// Every BLS secret key, by its public key.
    pub secret_by_public: HashMap<[u8; 48], [u8; 32]>,
    /// Validator public keys by validator index (`ByValidatorIndex`).
    pub validator_pk_by_index: BTreeMap<u64, [u8; 48]>,
}

fn hex32(v: &Value) -> Result<[u8; 32], String> {
    let s = v.as_str().ok_or("expected a hex string")?;
    hex::decode(s)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "expected 32 bytes".to_string())
}

fn hex48(v: &Value) -> Result<[u8; 48], String> {
    let s = v.as_str().ok_or("expected a hex string")?;
    hex::decode(s)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "expected 48 bytes".to_string())
}

fn id_map<'a>(v: &'a Value, name: &str) -> Result<Vec<(u64, &'a Value)>, String> {
    field(v, name)?
        .as_object()
        .ok_or_else(|| format!("{name}: expected an object"))?
        .iter()
        .map(|(k, v)| {
            Ok((
                k.parse::<u64>()
                    .map_err(|e| format!("{name} key {k}: {e}"))?,
                v,
            ))
        })
        .collect()
}

impl TestKeys {
    /// Reads `testing-keys.json`.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let mut keys = TestKeys {
            by_size: BTreeMap::new(),
            secret_by_public: HashMap::new(),
            validator_pk_by_index: BTreeMap::new(),
        };
        for (size, set) in id_map(v, "BySize")? {
            let mut shares = BTreeMap::new();
            for (op, sk) in id_map(set, "Shares")? {
                let sk = hex32(sk)?;
                keys.secret_by_public.insert(bls::public_key(&sk)?, sk);
                shares.insert(op, sk);
            }
            let mut operators = BTreeMap::new();
            for (op, pem_hex) in id_map(set, "OperatorKeys")? {
                let pem = hex::decode(pem_hex.as_str().ok_or("OperatorKeys: hex")?)
                    .map_err(|e| format!("OperatorKeys {op}: {e}"))?;
                operators.insert(op, OperatorKey::from_pem(&pem)?);
            }
            let validator_sk = hex32(field(set, "ValidatorSK")?)?;
            let validator_pk = bls::public_key(&validator_sk)?;
            keys.secret_by_public.insert(validator_pk, validator_sk);
            keys.by_size.insert(
                size as usize,
                KeySet {
                    size: size as usize,
                    threshold: as_u64(field(set, "Threshold")?)? as usize,
                    validator_pk,
                    shares,
                    operators,
                },
            );
        }
        for (index, set) in id_map(v, "ByValidatorIndex")? {
            for (_, sk) in id_map(set, "Shares")? {
                let sk = hex32(sk)?;
                keys.secret_by_public.insert(bls::public_key(&sk)?, sk);
            }
            keys.validator_pk_by_index
                .insert(index, hex48(field(set, "ValidatorPK")?)?);
        }
        Ok(keys)
    }

    /// The key set of a committee size (anything but 7, 10, 13 means 4, as in the harness).
    pub fn set_for(&self, committee_size: usize) -> Result<&KeySet, String> {
        let size = if matches!(committee_size, 7 | 10 | 13) {
            committee_size
        } else {
            4
        };
        self.by_size
            .get(&size)
            .ok_or_else(|| format!("no key set of size {size}"))
    }
}
