//! What the committee and validator cases of the runner suite share: the Go harness's doubles
//! (operator signer, value check, BLS partial verifier) and the comparisons of outputs,
//! submissions and collected partial signatures.

use std::collections::BTreeMap;

use serde_json::Value;
use tree_hash::TreeHash;

use super::super::json::{as_array, as_fixed};
use super::super::rsa::OperatorKey;
use super::super::types_cases::{LooseSignedSsvMessage, partial_sig_messages_from_json};
use super::{SsvContext, bls};
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{RsaSignature, SignedSsvMessage};
use crate::partial_sig::{BlsSignature, PartialSignatureMessage, PartialSignatureMessages};
use crate::qbft::{OperatorSigner, SignatureVerifier, ValueCheck};
use crate::runner::PartialSigVerifier;
use crate::types::{BlsPublicKey, CommitteeMember, OperatorId, Root};

/// Partials by validator, root and operator (a container's `Signatures`).
pub type Signatures = BTreeMap<u64, BTreeMap<Root, BTreeMap<OperatorId, BlsSignature>>>;

/// Signs with an operator's RSA key of the key set.
pub struct KeySigner<'a> {
    /// The operator.
    pub id: OperatorId,
    /// Its key.
    pub key: &'a OperatorKey,
}

impl OperatorSigner for KeySigner<'_> {
    fn operator_id(&self) -> OperatorId {
        self.id
    }
    fn sign_ssv_message(&self, encoded: &[u8]) -> Result<RsaSignature, Error> {
        self.key
            .sign(encoded)
            .map_err(|e| Error::spec(ErrorCode::MessageSignatureInvalid, e))
    }
}

/// The node's own outer value check has no part in the vectors: the runners' spec checks
/// are the harness's `*ValueCheckF`.
pub struct AcceptAll;

impl ValueCheck for AcceptAll {
    fn check_value(&self, _value: &[u8]) -> Result<(), Error> {
        Ok(())
    }
}

/// The key manager's BLS check of one partial (`verifyBeaconPartialSignature`).
pub struct BlsVerifier;

impl PartialSigVerifier for BlsVerifier {
    fn verify(&self, share: &BlsPublicKey, root: &Root, signature: &BlsSignature) -> bool {
        bls::verify(share, root, signature)
    }
}

/// A `{"Signatures": {vi: {root: {op: sig}}}}` container of a state as partial-signature
/// entries.
pub fn container(state: &Value, name: &str) -> Result<Vec<PartialSignatureMessage>, String> {
    let mut out = Vec::new();
    if let Some(sigs) = state
        .get(name)
        .and_then(|c| c.get("Signatures"))
        .and_then(Value::as_object)
    {
        for (vi, roots) in sigs {
            let vi: u64 = vi.parse().map_err(|e| format!("{vi}: {e}"))?;
            for (root, ops) in roots.as_object().into_iter().flatten() {
                let root = as_fixed::<32>(&Value::String(root.clone()))?;
                for (op, sig) in ops.as_object().into_iter().flatten() {
                    out.push(PartialSignatureMessage {
                        partial_signature: as_fixed::<96>(sig)?,
                        signing_root: root,
                        signer: op.parse().map_err(|e| format!("{op}: {e}"))?,
                        validator_index: vi,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A state's container as [`Signatures`].
pub fn container_signatures(state: &Value, name: &str) -> Result<Signatures, String> {
    let mut out = Signatures::new();
    for m in container(state, name)? {
        out.entry(m.validator_index)
            .or_default()
            .entry(m.signing_root)
            .or_default()
            .insert(m.signer, m.partial_signature);
    }
    Ok(out)
}

/// Ours, without empty entries (a removed partial leaves its map behind).
pub fn non_empty(signatures: &Signatures) -> Signatures {
    let mut s = signatures.clone();
    s.retain(|_, roots| {
        roots.retain(|_, ops| !ops.is_empty());
        !roots.is_empty()
    });
    s
}

/// A short account of a container (validators, roots, operators), for failure messages.
pub fn describe(s: &Signatures) -> String {
    s.iter()
        .map(|(v, roots)| {
            let roots: Vec<String> = roots
                .iter()
                .map(|(root, ops)| {
                    format!(
                        "{}…{:?}",
                        hex::encode(&root[..3]),
                        ops.keys().collect::<Vec<_>>()
                    )
                })
                .collect();
            format!("{v}: {roots:?}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Two partial-signature messages match as the Go harness compares them: same type, slot and
/// multiset of entry roots (the signatures included).
pub fn same_message(a: &PartialSignatureMessages, b: &PartialSignatureMessages) -> bool {
    a.msg_type == b.msg_type && a.slot == b.slot && entry_roots(a) == entry_roots(b)
}

/// The newduty harness's laxer comparison: in order, the same multiset of entry roots (type
/// and slot are not compared; some vectors' expected messages carry the testing duty's slot
/// while their entries sign the duty's own).
pub fn check_partial_output_roots(
    v: &Value,
    actual: &[PartialSignatureMessages],
) -> Result<(), String> {
    let expected = as_array(v.get("OutputMessages").unwrap_or(&Value::Null))?
        .iter()
        .map(partial_sig_messages_from_json)
        .collect::<Result<Vec<_>, _>>()?;
    if actual.len() != expected.len() {
        return Err(format!(
            "{} partial-signature broadcasts, expected {}",
            actual.len(),
            expected.len()
        ));
    }
    for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
        if entry_roots(a) != entry_roots(e) {
            return Err(format!("broadcast {i} differs from the expected one"));
        }
    }
    Ok(())
}

fn entry_roots(p: &PartialSignatureMessages) -> Vec<Root> {
    let mut r: Vec<Root> = p.messages.iter().map(|m| m.tree_hash_root().0).collect();
    r.sort_unstable();
    r
}

/// Our partial-signature broadcasts against `OutputMessages`, in order or as a one-to-one
/// pairing in any order.
pub fn check_partial_outputs(
    v: &Value,
    actual: &[PartialSignatureMessages],
    in_order: bool,
) -> Result<(), String> {
    let expected = as_array(v.get("OutputMessages").unwrap_or(&Value::Null))?
        .iter()
        .map(partial_sig_messages_from_json)
        .collect::<Result<Vec<_>, _>>()?;
    if actual.len() != expected.len() {
        return Err(format!(
            "{} partial-signature broadcasts, expected {}",
            actual.len(),
            expected.len()
        ));
    }
    if in_order {
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            if !same_message(a, e) {
                return Err(format!("broadcast {i} differs from the expected one"));
            }
        }
    } else {
        let mut unused: Vec<&PartialSignatureMessages> = actual.iter().collect();
        for (i, e) in expected.iter().enumerate() {
            let Some(k) = unused.iter().position(|a| same_message(a, e)) else {
                return Err(format!("expected broadcast {i} was not sent"));
            };
            unused.remove(k);
        }
    }
    Ok(())
}

/// Our submissions against `BeaconBroadcastedRoots`, as multisets.
pub fn check_submitted(v: &Value, submitted: &[Root]) -> Result<(), String> {
    let mut want: Vec<String> = as_array(v.get("BeaconBroadcastedRoots").unwrap_or(&Value::Null))?
        .iter()
        .map(|r| {
            r.as_str()
                .unwrap_or_default()
                .trim_start_matches("0x")
                .to_string()
        })
        .collect();
    let mut got: Vec<String> = submitted.iter().map(hex::encode).collect();
    want.sort();
    got.sort();
    if want != got {
        return Err(format!("submitted roots {got:?}, expected {want:?}"));
    }
    Ok(())
}

/// The state-comparison file of a subtest (`SOURCE.md`: the folder of the test type, the
/// top-level name with `_` for spaces, the subtest name as it is).
pub fn state_comparison(
    ctx: &SsvContext,
    dir: &str,
    top: Option<&str>,
    name: &str,
) -> Result<Value, String> {
    let rel = match top {
        Some(top) => format!(
            "state_comparison/{dir}/{}/{name}.json",
            top.replace(' ', "_")
        ),
        None => format!("state_comparison/{dir}/{name}.json"),
    };
    ctx.suite.json(&rel)
}

/// The first checks of ssv-spec's `Committee.ProcessMessage` and `Validator.ProcessMessage`:
/// the message's structure, then every operator signature against `member`'s committee
/// (`SSVMessageHasInvalidSignature` for a bad or unknown signer).
pub fn checked_signed_message(
    loose: LooseSignedSsvMessage,
    member: &CommitteeMember,
    verifier: &dyn SignatureVerifier,
) -> Result<SignedSsvMessage, Error> {
    loose.validate()?;
    let msg = loose.into_strict().map_err(|e| {
        Error::spec(
            ErrorCode::SSVMessageHasInvalidSignature,
            format!("SignedSSVMessage has an invalid signature: {e}"),
        )
    })?;
    let encoded = ssz::Encode::as_ssz_bytes(&msg.ssv_message);
    for (i, op) in msg.operator_ids.iter().enumerate() {
        let valid = member
            .committee
            .iter()
            .find(|o| o.operator_id == *op)
            .zip(msg.signature(i))
            .is_some_and(|(o, sig)| verifier.verify(o, &encoded, sig));
        if !valid {
            return Err(Error::spec(
                ErrorCode::SSVMessageHasInvalidSignature,
                "SignedSSVMessage has an invalid signature",
            ));
        }
    }
    Ok(msg)
}
