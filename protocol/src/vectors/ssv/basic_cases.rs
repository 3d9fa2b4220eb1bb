//! The role-independent and single-function types of the runner suite: the partial-signature
//! container, runner construction, and the consensus value checks.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::super::json::{as_array, as_b64, as_u64, field, u64_field};
use super::super::types_cases::partial_sig_message_from_json;
use super::{SsvContext, SubOutcome, bls, expected_code, name_of, role_name};
use crate::chain::ChainSpec;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::RunnerRole;
use crate::qbft::ValueCheck;
use crate::runner::{
    AttestationSlashing, BeaconVoteValueCheck, BlockSlashing, DutyValueCheck, PartialSigCollector,
    check_share_count,
};
use crate::types::{BeaconRole, BlsPublicKey, Epoch, Root, Slot};

fn one(v: &Value, role: Option<RunnerRole>, result: Result<(), String>) -> Vec<SubOutcome> {
    vec![SubOutcome {
        name: name_of(v),
        role,
        result,
    }]
}

/// Compares an outcome with an expected code, as the Go `AssertErrorCode` does.
pub fn check_code(result: Result<(), Error>, expected: u64) -> Result<(), String> {
    super::super::expect_code(result, expected)
}

/// `partialsigcontainer.PartialSigContainerTest`: add every message to a collector; for each
/// validator, with the root of its last message, the quorum flag, then reconstruct (every
/// partial present) and verify against `ValidatorPubKey`.
pub fn partial_sig_container(v: &Value, _ctx: &SsvContext) -> Vec<SubOutcome> {
    one(v, None, partial_sig_container_inner(v))
}

fn partial_sig_container_inner(v: &Value) -> Result<(), String> {
    let quorum = u64_field(v, "Quorum")? as usize;
    let pubkey = as_b64(field(v, "ValidatorPubKey")?)?;
    let expected = expected_code(v)?;
    let expected_result = as_b64(v.get("ExpectedResult").unwrap_or(&Value::Null))?;
    let expected_quorum = field(v, "ExpectedQuorum")?
        .as_bool()
        .ok_or("ExpectedQuorum: bool")?;
    let mut collector = PartialSigCollector::new(quorum);
    let mut last_root: BTreeMap<u64, Root> = BTreeMap::new();
    for m in as_array(field(v, "SignatureMsgs")?)? {
        let m = partial_sig_message_from_json(m)?;
        collector.add(&m);
        last_root.insert(m.validator_index, m.signing_root);
    }
    for (validator, root) in last_root {
        if collector.has_quorum(validator, &root) != expected_quorum {
            return Err(format!(
                "validator {validator}: quorum {} != expected {expected_quorum}",
                !expected_quorum
            ));
        }
        let partials: Vec<(u64, [u8; 96])> = collector
            .partials(validator, &root)
            .map(|m| m.iter().map(|(o, s)| (*o, *s)).collect())
            .unwrap_or_default();
        let result = bls::reconstruct(&partials)
            .map_err(|e| Error::Decode(format!("failed to reconstruct signatures: {e}")))
            .and_then(|sig| {
                if bls::verify(&pubkey, &root, &sig) {
                    Ok(sig)
                } else {
                    Err(Error::spec(
                        ErrorCode::ReconstructSignature,
                        "failed to verify reconstruct signature",
                    ))
                }
            });
        let (outcome, sig) = match result {
            Ok(sig) => (Ok(()), sig.to_vec()),
            Err(e) => (Err(e), Vec::new()),
        };
        check_code(outcome, expected)?;
        if sig != expected_result {
            return Err(format!(
                "validator {validator}: result {} != expected {}",
                hex::encode(&sig),
                hex::encode(&expected_result)
            ));
        }
    }
    Ok(())
}

/// `runnerconstruction.RunnerConstructionSpecTest`: for each role, building a runner over
/// `Shares` must fail with the expected text (a substring) or succeed. One outcome per role;
/// roles without a runner here fail.
pub fn runner_construction(v: &Value, _ctx: &SsvContext) -> Vec<SubOutcome> {
    let shares = match field(v, "Shares") {
        Ok(Value::Object(m)) => m.len(),
        Ok(Value::Null) => 0,
        Ok(_) | Err(_) => return one(v, None, Err("Shares: expected an object".into())),
    };
    let Some(role_errors) = v.get("RoleError").and_then(Value::as_object) else {
        return one(v, None, Err("RoleError: expected an object".into()));
    };
    role_errors
        .iter()
        .map(|(role, want)| {
            let role = role.parse::<i32>().ok().and_then(RunnerRole::from_i32);
            let name = format!("{} / {}", name_of(v), role_name(role));
            let want = want.as_str().unwrap_or_default();
            let result = match role {
                None => Err("unknown role".to_string()),
                Some(built) => match (check_share_count(built, shares), want) {
                    (Ok(()), "") => Ok(()),
                    (Ok(()), want) => Err(format!("built, expected error {want:?}")),
                    (Err(e), "") => Err(format!("expected success, got {e:?}")),
                    (Err(e), want) if e.contains(want) => Ok(()),
                    (Err(e), want) => Err(format!("error {e:?}, expected {want:?}")),
                },
            };
            SubOutcome { name, role, result }
        })
        .collect()
}

/// The Go test key manager's slashing answer: an attestation is slashable when its slot is in
/// the list of the key (keys are opaque lookup bytes here, see `SOURCE.md`).
pub struct SlashableSlots(pub HashMap<BlsPublicKey, Vec<Slot>>);

impl AttestationSlashing for SlashableSlots {
    fn check(
        &self,
        pubkeys: &[BlsPublicKey],
        slot: Slot,
        _source: Epoch,
        _target: Epoch,
        _signing_root: &Root,
    ) -> Result<(), String> {
        for pk in pubkeys {
            if self.0.get(pk).is_some_and(|slots| slots.contains(&slot)) {
                return Err(format!("slashable attestation at slot {slot}"));
            }
        }
        Ok(())
    }
}

/// A lookup key of any length (≤ 48 bytes) as the fixed key type, zero-padded.
pub fn opaque_key(bytes: &[u8]) -> Result<BlsPublicKey, String> {
    if bytes.len() > 48 {
        return Err(format!("key of {} bytes", bytes.len()));
    }
    let mut k = [0u8; 48];
    k[..bytes.len()].copy_from_slice(bytes);
    Ok(k)
}

/// Reads `SlashableSlots` (hex key → decimal-string slots, or null).
pub fn slashable_slots(v: &Value) -> Result<SlashableSlots, String> {
    let mut map = HashMap::new();
    if let Some(obj) = v.get("SlashableSlots").and_then(Value::as_object) {
        for (key, slots) in obj {
            let key = opaque_key(&hex::decode(key).map_err(|e| format!("slashable key: {e}"))?)?;
            let slots = as_array(slots)?
                .iter()
                .map(as_u64)
                .collect::<Result<Vec<_>, _>>()?;
            map.insert(key, slots);
        }
    }
    Ok(SlashableSlots(map))
}

/// The validator key of the harness's key sets (`TestingValidatorPubKey`).
const TESTING_VALIDATOR_PK: &str = "8e80066551a81b318258709edaf7dd1f63cd686a0e4db8b29bbb7acfe65608677af5a527d9448ee47835485e02b50bc0";

/// "Now" of the harness's value checks, fixed: 2026-01-01 on `now_test_network` (genesis
/// 1616508000, 12 s slots, 32 slots an epoch). The vectors need a now after their Fulu epoch
/// (242,000) and before their far-future slot's epoch (3,125,000); see `SOURCE.md`.
pub fn harness_current_epoch() -> u64 {
    const NOW: u64 = 1_767_225_600;
    (NOW - 1_616_508_000) / 384
}

/// The Go test key manager never finds a block slashable.
/// The Go test key manager's block answer (`IsBeaconBlockSlashable`): never slashable.
pub(super) struct NeverSlashable;

impl BlockSlashing for NeverSlashable {
    fn check(&self, _pubkey: &BlsPublicKey, _slot: Slot) -> Result<(), String> {
        Ok(())
    }
}

/// Operator 1's share secret of the 4-operator set: the Go test's default "share public key"
/// of the committee value check (an opaque key; see `SOURCE.md`).
const DEFAULT_VALCHECK_KEY: &str =
    "5f4711a796c1116b5118ec35279fb64d551d9b38813d2939954dd2df5160d3d9";

fn valcheck_one(v: &Value) -> Result<(), String> {
    let role =
        RunnerRole::from_i32(u64_field(v, "RunnerRole")? as i32).ok_or("unknown RunnerRole")?;
    let input = as_b64(field(v, "Input")?)?;
    let result = match role {
        RunnerRole::Committee => {
            let keys: Vec<BlsPublicKey> = match v.get("ShareValidatorsPK") {
                Some(Value::Array(list)) if !list.is_empty() => list
                    .iter()
                    .map(|k| opaque_key(&as_b64(k)?))
                    .collect::<Result<_, String>>()?,
                _ => vec![opaque_key(
                    &hex::decode(DEFAULT_VALCHECK_KEY).map_err(|e| e.to_string())?,
                )?],
            };
            let slashing = slashable_slots(v)?;
            let check = BeaconVoteValueCheck {
                slot: u64_field(v, "DutySlot")?,
                expected_source: u64_field(field(v, "ExpectedSource")?, "epoch")?,
                expected_target: u64_field(field(v, "ExpectedTarget")?, "epoch")?,
                attester_domain: [0; 32],
                keys: &keys,
                slashing: Some(&slashing),
            };
            check.check_value(&input)
        }
        RunnerRole::Proposer | RunnerRole::Aggregator | RunnerRole::SyncCommitteeContribution => {
            let beacon_role = match role {
                RunnerRole::Proposer => BeaconRole::Proposer,
                RunnerRole::Aggregator => BeaconRole::Aggregator,
                _ => BeaconRole::SyncCommitteeContribution,
            };
            let pk: BlsPublicKey = hex::decode(TESTING_VALIDATOR_PK)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or("testing validator key")?;
            DutyValueCheck {
                role: beacon_role,
                validator_pk: pk,
                validator_index: 1,
                chain: ChainSpec::MAINNET,
                current_epoch: harness_current_epoch(),
                blocks: Some(std::sync::Arc::new(NeverSlashable)),
            }
            .check_value(&input)
        }
        other => {
            return Err(format!(
                "the {} role has no consensus value check",
                role_name(Some(other))
            ));
        }
    };
    let any_error = v.get("AnyError").and_then(Value::as_bool).unwrap_or(false);
    if any_error {
        return match result {
            Err(_) => Ok(()),
            Ok(()) => Err("expected an error, got success".into()),
        };
    }
    check_code(result, expected_code(v)?)
}

fn valcheck_role(v: &Value) -> Option<RunnerRole> {
    v.get("RunnerRole")
        .and_then(|r| as_u64(r).ok())
        .and_then(|r| RunnerRole::from_i32(r as i32))
}

/// `valcheck.SpecTest`.
pub fn valcheck_single(v: &Value, _ctx: &SsvContext) -> Vec<SubOutcome> {
    one(v, valcheck_role(v), valcheck_one(v))
}

/// `valcheck.MultiSpecTest`.
pub fn valcheck_multi(v: &Value, _ctx: &SsvContext) -> Vec<SubOutcome> {
    let top = name_of(v);
    match as_array(v.get("Tests").unwrap_or(&Value::Null)) {
        Ok(tests) => tests
            .iter()
            .map(|t| SubOutcome {
                name: format!("{top} / {}", name_of(t)),
                role: valcheck_role(t),
                result: valcheck_one(t),
            })
            .collect(),
        Err(e) => one(v, None, Err(e)),
    }
}
