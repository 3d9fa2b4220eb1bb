//! Vector cases of the SSV wire types (`signedssvmsg.*`, `ssvmsg.*`, `partialsigmessage.*`,
//! `maxmsgsize.*`, `committeemember.*`, `encryption.*`, `duty.*`), and the JSON readers of
//! those types that other case files share.

use serde_json::Value;
use ssz::{Decode, Encode};
use tree_hash::TreeHash;

use super::json::{as_array, as_b64, as_fixed, as_hex, as_u64, field, u64_field};
use super::{CaseContext, CaseFn, expect_code};
use crate::Error;
use crate::beacon_vote::{BeaconVote, Checkpoint};
use crate::committee::CommitteeId;
use crate::message::{MessageId, SignedSsvMessage, SsvMessage, validate_signed_parts};
use crate::partial_sig::{
    PartialSignatureMessage, PartialSignatureMessages, validate_partial_signers,
};
use crate::qbft;
use crate::types::{BeaconRole, CommitteeMember, CommitteeOperator, DomainType};

/// `(prefix, runner)` for the wire-type cases of the `types` module.
pub const CASES: &[(&str, CaseFn)] = &[
    ("signedssvmsg.EncodingTest", signed_ssv_msg_encoding),
    (
        "signedssvmsg.SignedSSVMessageTest",
        signed_ssv_msg_validation,
    ),
    ("ssvmsg.EncodingTest", ssv_msg_encoding),
    ("ssvmsg.SSVMessageTest", ssv_msg_belongs),
    ("partialsigmessage.EncodingTest", partial_sig_encoding),
    ("partialsigmessage.MsgSpecTest", partial_sig_validation),
    ("maxmsgsize.StructureSizeTest", structure_size),
    ("committeemember.CommitteeMemberTest", committee_member),
    ("encryption.EncryptionSpecTest", encryption),
    ("duty.DutySpecTest", duty_role_mapping),
];

/// The validator public key of ssv-spec's testing share set (`testingutils`), the duty
/// executor of every validator message ID in the vectors. It is also `PrivateKeys.ValidatorPK`
/// of the QBFT vectors.
const SPEC_TESTING_VALIDATOR_PK: &str = "8e80066551a81b318258709edaf7dd1f63cd686a0e4db8b29bbb7acfe65608677af5a527d9448ee47835485e02b50bc0";

fn expected_root(v: &Value) -> Result<[u8; 32], String> {
    as_fixed::<32>(field(v, "ExpectedRoot")?)
}

/// Reads an `SSVMessage` from the Go JSON.
pub fn ssv_message_from_json(v: &Value) -> Result<SsvMessage, String> {
    let msg_id = MessageId::from_slice(&as_hex(field(v, "MsgID")?)?).map_err(|e| e.to_string())?;
    let data = as_b64(field(v, "Data")?)?;
    Ok(SsvMessage {
        msg_type: u64_field(v, "MsgType")?,
        msg_id,
        data: data.try_into().map_err(|e| format!("data: {e:?}"))?,
    })
}

/// The parts of a `SignedSSVMessage` as the Go JSON has them, before the strict type's
/// length rules apply.
pub struct LooseSignedSsvMessage {
    /// Signatures of any length.
    pub signatures: Vec<Vec<u8>>,
    /// Signers.
    pub operator_ids: Vec<u64>,
    /// The message, if present.
    pub ssv_message: Option<SsvMessage>,
    /// Full data.
    pub full_data: Vec<u8>,
}

impl LooseSignedSsvMessage {
    /// Reads the Go JSON.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let signatures = as_array(field(v, "Signatures")?)?
            .iter()
            .map(as_b64)
            .collect::<Result<Vec<_>, _>>()?;
        let operator_ids = as_array(field(v, "OperatorIDs")?)?
            .iter()
            .map(as_u64)
            .collect::<Result<_, _>>()?;
        let ssv_message = match v.get("SSVMessage") {
            None | Some(Value::Null) => None,
            Some(m) => Some(ssv_message_from_json(m)?),
        };
        let full_data = as_b64(v.get("FullData").unwrap_or(&Value::Null))?;
        Ok(LooseSignedSsvMessage {
            signatures,
            operator_ids,
            ssv_message,
            full_data,
        })
    }

    /// The spec's structural rules, run by the same code as [`SignedSsvMessage::validate`].
    pub fn validate(&self) -> Result<(), Error> {
        validate_signed_parts(
            self.signatures.iter().map(Vec::len),
            &self.operator_ids,
            self.ssv_message.as_ref(),
        )
    }

    /// Converts to the strict type (every signature 256 bytes).
    pub fn into_strict(self) -> Result<SignedSsvMessage, Error> {
        let signatures = self
            .signatures
            .into_iter()
            .map(|s| {
                <[u8; 256]>::try_from(s.as_slice())
                    .map_err(|_| Error::Decode(format!("signature of {} bytes", s.len())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ssv_message = self.ssv_message.ok_or(Error::NilSsvMessage)?;
        SignedSsvMessage::new(signatures, self.operator_ids, ssv_message, self.full_data)
    }
}

/// Reads a `SignedSSVMessage` from the Go JSON into the strict type.
pub fn signed_ssv_message_from_json(v: &Value) -> Result<SignedSsvMessage, String> {
    LooseSignedSsvMessage::from_json(v)?
        .into_strict()
        .map_err(|e| e.to_string())
}

/// Reads a `CommitteeMember` from the Go JSON.
pub fn committee_member_from_json(v: &Value) -> Result<CommitteeMember, String> {
    let committee = as_array(field(v, "Committee")?)?
        .iter()
        .map(|o| {
            Ok(CommitteeOperator {
                operator_id: u64_field(o, "OperatorID")?,
                rsa_public_key_pem: as_b64(field(o, "SSVOperatorPubKey")?)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(CommitteeMember {
        operator_id: u64_field(v, "OperatorID")?,
        committee_id: CommitteeId(as_fixed::<32>(field(v, "CommitteeID")?)?),
        rsa_public_key_pem: as_b64(field(v, "SSVOperatorPubKey")?)?,
        faulty_nodes: u64_field(v, "FaultyNodes")?,
        committee,
        domain: DomainType(as_fixed::<4>(field(v, "DomainType")?)?),
    })
}

/// Reads a `PartialSignatureMessage` from the Go JSON.
pub fn partial_sig_message_from_json(v: &Value) -> Result<PartialSignatureMessage, String> {
    Ok(PartialSignatureMessage {
        partial_signature: as_fixed::<96>(field(v, "PartialSignature")?)?,
        signing_root: as_fixed::<32>(field(v, "SigningRoot")?)?,
        signer: u64_field(v, "Signer")?,
        validator_index: u64_field(v, "ValidatorIndex")?,
    })
}

/// Reads a `PartialSignatureMessages` from the Go JSON.
pub fn partial_sig_messages_from_json(v: &Value) -> Result<PartialSignatureMessages, String> {
    let messages = as_array(field(v, "Messages")?)?
        .iter()
        .map(partial_sig_message_from_json)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PartialSignatureMessages {
        msg_type: u64_field(v, "Type")?,
        slot: u64_field(v, "Slot")?,
        messages: messages
            .try_into()
            .map_err(|e| format!("messages: {e:?}"))?,
    })
}

/// Reads a `qbft.Message` from the Go JSON.
pub fn qbft_message_from_json(v: &Value) -> Result<qbft::Message, String> {
    let list = |name: &str| -> Result<Vec<Vec<u8>>, String> {
        as_array(v.get(name).unwrap_or(&Value::Null))?
            .iter()
            .map(as_b64)
            .collect()
    };
    let rcj = list("RoundChangeJustification")?
        .into_iter()
        .map(|j| {
            j.try_into()
                .map_err(|e| format!("round change justification: {e:?}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let pj = list("PrepareJustification")?
        .into_iter()
        .map(|j| {
            j.try_into()
                .map_err(|e| format!("prepare justification: {e:?}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(qbft::Message {
        msg_type: u64_field(v, "MsgType")?,
        height: u64_field(v, "Height")?,
        round: u64_field(v, "Round")?,
        identifier: as_b64(field(v, "Identifier")?)?
            .try_into()
            .map_err(|e| format!("identifier: {e:?}"))?,
        root: as_fixed::<32>(field(v, "Root")?)?,
        data_round: u64_field(v, "DataRound")?,
        round_change_justification: rcj.try_into().map_err(|e| format!("rcj: {e:?}"))?,
        prepare_justification: pj.try_into().map_err(|e| format!("pj: {e:?}"))?,
    })
}

fn checkpoint_from_json(v: &Value) -> Result<Checkpoint, String> {
    Ok(Checkpoint {
        epoch: u64_field(v, "epoch")?,
        root: as_fixed::<32>(field(v, "root")?)?,
    })
}

/// Decodes, re-encodes and compares bytes, and returns the decoded value.
fn round_trip<T: Decode + Encode>(bytes: &[u8]) -> Result<T, String> {
    let value = T::from_ssz_bytes(bytes).map_err(|e| format!("decode: {e:?}"))?;
    if value.as_ssz_bytes() != bytes {
        return Err("re-encoding differs from the vector bytes".into());
    }
    Ok(value)
}

fn check_root(actual: [u8; 32], expected: [u8; 32]) -> Result<(), String> {
    if actual != expected {
        return Err(format!(
            "root {} != expected {}",
            hex::encode(actual),
            hex::encode(expected)
        ));
    }
    Ok(())
}

fn signed_ssv_msg_encoding(v: &Value, _: &CaseContext) -> Result<(), String> {
    let bytes = as_b64(field(v, "Data")?)?;
    let msg: SignedSsvMessage = round_trip(&bytes)?;
    msg.validate()
        .map_err(|e| format!("decoded message invalid: {e}"))?;
    let again = SignedSsvMessage::from_ssz(&bytes).map_err(|e| e.to_string())?;
    if again != msg {
        return Err("bounded decoder disagrees".into());
    }
    Ok(())
}

/// `signedssvmsg.SignedSSVMessageTest`: each message is validated, then (when the vector
/// gives `RSAPublicKey`, base64 of PEM public keys) its i-th signature is verified with the
/// i-th key over the SSZ encoding of its `SSVMessage`, as the Go test does.
pub fn signed_ssv_msg_validation(v: &Value, _: &CaseContext) -> Result<(), String> {
    let expected = u64_field(v, "ExpectedErrorCode")?;
    let keys = as_array(v.get("RSAPublicKey").unwrap_or(&Value::Null))?
        .iter()
        .map(|k| super::rsa::public_key_der_from_pem(&as_b64(k)?))
        .collect::<Result<Vec<_>, String>>()?;
    for m in as_array(field(v, "Messages")?)? {
        let loose = LooseSignedSsvMessage::from_json(m)?;
        let result = loose
            .validate()
            .and_then(|()| loose.into_strict())
            .and_then(|msg| {
                let encoded = msg.ssv_message.as_ssz_bytes();
                for (i, der) in keys.iter().enumerate() {
                    let valid = msg
                        .signature(i)
                        .is_some_and(|sig| super::rsa::verify(der, &encoded, sig));
                    if !valid {
                        return Err(Error::spec(
                            crate::error_code::ErrorCode::SSVMessageHasInvalidSignature,
                            format!("signature {i} does not verify with RSA key {i}"),
                        ));
                    }
                }
                Ok(())
            });
        expect_code(result, expected)?;
    }
    Ok(())
}

fn ssv_msg_encoding(v: &Value, _: &CaseContext) -> Result<(), String> {
    let msg: SsvMessage = round_trip(&as_b64(field(v, "Data")?)?)?;
    check_root(msg.tree_hash_root().0, expected_root(v)?)
}

fn ssv_msg_belongs(v: &Value, _: &CaseContext) -> Result<(), String> {
    let expected = field(v, "BelongsToValidator")?
        .as_bool()
        .ok_or("BelongsToValidator")?;
    let pk: [u8; 48] = hex::decode(SPEC_TESTING_VALIDATOR_PK)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("bad testing validator key")?;
    for id in as_array(field(v, "MessageIDs")?)? {
        let id = MessageId::from_slice(&as_hex(id)?).map_err(|e| e.to_string())?;
        if id.belongs_to_validator(&pk) != expected {
            return Err(format!(
                "{id:?}: belongs = {}, expected {expected}",
                !expected
            ));
        }
    }
    Ok(())
}

fn partial_sig_encoding(v: &Value, _: &CaseContext) -> Result<(), String> {
    let msg: PartialSignatureMessages = round_trip(&as_b64(field(v, "Data")?)?)?;
    check_root(msg.tree_hash_root().0, expected_root(v)?)
}

fn partial_sig_validation(v: &Value, _: &CaseContext) -> Result<(), String> {
    let expected = u64_field(v, "ExpectedErrorCode")?;
    let messages = as_array(field(v, "Messages")?)?;
    let encoded = as_array(v.get("EncodedMessages").unwrap_or(&Value::Null))?;
    let roots = as_array(v.get("ExpectedRoots").unwrap_or(&Value::Null))?;
    // The spec runs every container and fails on the first error.
    let mut result = Ok(());
    for (i, m) in messages.iter().enumerate() {
        // Signer rules first, over the raw JSON, so that a message the strict type cannot
        // hold (an empty signature) is judged as the spec judges it.
        let signers = as_array(field(m, "Messages")?)?
            .iter()
            .map(|p| u64_field(p, "Signer"))
            .collect::<Result<Vec<_>, _>>()?;
        if let Err(e) = validate_partial_signers(signers.into_iter()) {
            result = Err(e);
            break;
        }
        let strict = match partial_sig_messages_from_json(m) {
            Ok(s) => s,
            Err(e) => {
                result = Err(Error::Decode(e));
                break;
            }
        };
        strict
            .validate()
            .map_err(|e| format!("strict type disagrees: {e}"))?;
        if let Some(enc) = encoded.get(i)
            && strict.as_ssz_bytes() != as_b64(enc)?
        {
            return Err(format!("encoding of container {i} differs"));
        }
        if let Some(root) = roots.get(i) {
            check_root(strict.tree_hash_root().0, as_fixed::<32>(root)?)?;
        }
    }
    expect_code(result, expected)
}

/// Encodes the object of a structure-size test; its type is told by its fields.
fn encode_structure(o: &Value) -> Result<(&'static str, Vec<u8>), String> {
    let has = |k: &str| o.get(k).is_some();
    Ok(if has("PartialSignature") {
        (
            "PartialSignatureMessage",
            partial_sig_message_from_json(o)?.as_ssz_bytes(),
        )
    } else if has("Messages") && has("Slot") {
        (
            "PartialSignatureMessages",
            partial_sig_messages_from_json(o)?.as_ssz_bytes(),
        )
    } else if has("Signatures") {
        (
            "SignedSSVMessage",
            signed_ssv_message_from_json(o)?.as_ssz_bytes(),
        )
    } else if has("Height") {
        ("qbftMessage", qbft_message_from_json(o)?.as_ssz_bytes())
    } else if has("MsgID") {
        ("SSVMessage", ssv_message_from_json(o)?.as_ssz_bytes())
    } else if has("BlockRoot") {
        let vote = BeaconVote {
            block_root: as_fixed::<32>(field(o, "BlockRoot")?)?,
            source: checkpoint_from_json(field(o, "Source")?)?,
            target: checkpoint_from_json(field(o, "Target")?)?,
        };
        ("BeaconVote", vote.as_ssz_bytes())
    } else {
        return Err("unrecognised structure".into());
    })
}

/// The largest encoding of each type, from the limits.
fn max_size_of(type_name: &str) -> Option<usize> {
    use crate::limits::*;
    Some(match type_name {
        "PartialSignatureMessage" => 144,
        "PartialSignatureMessages" => 8 + 8 + 4 + PARTIAL_SIGNATURES_MAX * 144,
        "SSVMessage" => SSV_MESSAGE_MAX,
        "qbftMessage" => SSV_MESSAGE_DATA_MAX,
        "BeaconVote" => crate::beacon_vote::BEACON_VOTE_SIZE,
        "SignedSSVMessage" => SIGNED_SSV_MESSAGE_MAX,
        _ => return None,
    })
}

fn structure_size(v: &Value, _: &CaseContext) -> Result<(), String> {
    let expected = u64_field(v, "ExpectedEncodedLength")? as usize;
    let (type_name, bytes) = encode_structure(field(v, "Object")?)?;
    if bytes.len() != expected {
        return Err(format!(
            "{type_name} encodes to {} bytes, expected {expected}",
            bytes.len()
        ));
    }
    if field(v, "IsMaxSize")?.as_bool() == Some(true) {
        let max = max_size_of(type_name).ok_or("no max size known")?;
        if max != expected {
            return Err(format!("{type_name} max size {max} != vector's {expected}"));
        }
    }
    Ok(())
}

fn committee_member(v: &Value, _: &CaseContext) -> Result<(), String> {
    let member = committee_member_from_json(field(v, "CommitteeMember")?)?;
    let loose = LooseSignedSsvMessage::from_json(field(v, "Message")?)?;
    expect_code(loose.validate(), u64_field(v, "ExpectedErrorCode")?)?;
    let mut signers = loose.operator_ids.clone();
    signers.sort_unstable();
    signers.dedup();
    let has_quorum = member.has_quorum(signers.len());
    let full = member.committee.len() == signers.len();
    let want_quorum = field(v, "ExpectedHasQuorum")?
        .as_bool()
        .ok_or("ExpectedHasQuorum")?;
    let want_full = field(v, "ExpectedFullCommittee")?
        .as_bool()
        .ok_or("ExpectedFullCommittee")?;
    if has_quorum != want_quorum || full != want_full {
        return Err(format!(
            "quorum {has_quorum} (want {want_quorum}), full committee {full} (want {want_full})"
        ));
    }
    if CommitteeId::from_operators(
        &member
            .committee
            .iter()
            .map(|o| o.operator_id)
            .collect::<Vec<_>>(),
    ) != member.committee_id
    {
        return Err("committee ID is not sha256 of the sorted operator IDs".into());
    }
    Ok(())
}

fn encryption(v: &Value, _: &CaseContext) -> Result<(), String> {
    use super::rsa;
    let sk = rsa::OperatorKey::from_pem(&as_b64(field(v, "SKPem")?)?)?;
    let pk = rsa::public_key_der_from_pem(&as_b64(field(v, "PKPem")?)?)?;
    let plain = as_b64(field(v, "PlainText")?)?;
    let cipher = rsa::encrypt(&pk, &plain)?;
    if sk.decrypt(&cipher)? != plain {
        return Err("decrypt(encrypt(x)) != x".into());
    }
    // Sign/verify with the same pair, so a mismatched PEM pair is caught too.
    let sig = sk.sign(&plain)?;
    if !rsa::verify(&pk, &plain, &sig) {
        return Err("signature by SKPem does not verify under PKPem".into());
    }
    Ok(())
}

fn duty_role_mapping(v: &Value, _: &CaseContext) -> Result<(), String> {
    let beacon_role = u64_field(v, "BeaconRole")?;
    let expected = match field(v, "RunnerRole")? {
        Value::Number(n) => n.as_i64().ok_or("RunnerRole")?,
        other => return Err(format!("RunnerRole: {other}")),
    };
    let actual = BeaconRole::from_u64(beacon_role)
        .map(|r| i64::from(r.runner_role().to_i32()))
        .unwrap_or(i64::from(crate::message::RUNNER_ROLE_UNKNOWN));
    if actual != expected {
        return Err(format!(
            "beacon role {beacon_role} maps to {actual}, expected {expected}"
        ));
    }
    Ok(())
}
