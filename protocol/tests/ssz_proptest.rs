//! Property tests of the SSZ wire types: random values round-trip byte for byte, and decoding
//! random or mutated bytes returns a typed error instead of panicking.

use proptest::prelude::*;
use ssz::Decode;
use ssz_types::VariableList;
use tree_hash::TreeHash;

use ssv_protocol::beacon::{
    AggregateAndProofData, Contributions, Proposal, ValidatorConsensusData, ValidatorDuty,
};
use ssv_protocol::message::{MessageId, SignedSsvMessage, SsvMessage};
use ssv_protocol::partial_sig::{PartialSignatureMessage, PartialSignatureMessages};
use ssv_protocol::qbft;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

fn array<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    prop::collection::vec(any::<u8>(), N).prop_map(|v| v.try_into().expect("N bytes"))
}

fn ssv_message() -> impl Strategy<Value = SsvMessage> {
    (any::<u64>(), array::<56>(), bytes(2048)).prop_map(|(msg_type, id, data)| SsvMessage {
        msg_type,
        msg_id: MessageId::from_slice(&id).expect("56 bytes"),
        data: VariableList::new(data).expect("under the limit"),
    })
}

fn signed_ssv_message() -> impl Strategy<Value = SignedSsvMessage> {
    (
        prop::collection::vec(array::<256>(), 0..=13),
        prop::collection::vec(any::<u64>(), 0..=13),
        ssv_message(),
        bytes(4096),
    )
        .prop_map(|(sigs, ids, msg, full)| {
            SignedSsvMessage::new(sigs, ids, msg, full).expect("under the limits")
        })
}

fn qbft_message() -> impl Strategy<Value = qbft::Message> {
    (
        (any::<u64>(), any::<u64>(), any::<u64>(), bytes(56)),
        (array::<32>(), any::<u64>()),
        prop::collection::vec(bytes(512), 0..=4),
        prop::collection::vec(bytes(512), 0..=4),
    )
        .prop_map(
            |((msg_type, height, round, id), (root, data_round), rc, prep)| qbft::Message {
                msg_type,
                height,
                round,
                identifier: VariableList::new(id).expect("56 bytes max"),
                root,
                data_round,
                round_change_justification: VariableList::new(
                    rc.into_iter()
                        .map(|j| VariableList::new(j).expect("small"))
                        .collect(),
                )
                .expect("4 of 13"),
                prepare_justification: VariableList::new(
                    prep.into_iter()
                        .map(|j| VariableList::new(j).expect("small"))
                        .collect(),
                )
                .expect("4 of 13"),
            },
        )
}

fn partial_signature_messages() -> impl Strategy<Value = PartialSignatureMessages> {
    let one = (array::<96>(), array::<32>(), any::<u64>(), any::<u64>()).prop_map(
        |(partial_signature, signing_root, signer, validator_index)| PartialSignatureMessage {
            partial_signature,
            signing_root,
            signer,
            validator_index,
        },
    );
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(one, 0..=40),
    )
        .prop_map(|(msg_type, slot, messages)| PartialSignatureMessages {
            msg_type,
            slot,
            messages: VariableList::new(messages).expect("under the limit"),
        })
}

fn validator_consensus_data() -> impl Strategy<Value = ValidatorConsensusData> {
    (
        (any::<u64>(), array::<48>(), any::<u64>(), any::<u64>()),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
        prop::collection::vec(any::<u64>(), 0..=13),
        any::<u64>(),
        bytes(4096),
    )
        .prop_map(|(a, b, indices, version, data)| {
            let duty = ValidatorDuty {
                role: a.0,
                pubkey: a.1,
                slot: a.2,
                validator_index: a.3,
                committee_index: b.0,
                committee_length: b.1,
                committees_at_slot: b.2,
                validator_committee_index: b.3,
                validator_sync_committee_indices: VariableList::new(indices).expect("13 max"),
            };
            ValidatorConsensusData::new(duty, version, data).expect("under the limit")
        })
}

/// Runs every decoder of this crate over `bytes`; none may panic.
fn decode_everything(bytes: &[u8]) {
    let _ = SignedSsvMessage::from_ssz(bytes).map(|m| m.validate());
    let _ = SsvMessage::from_ssz_bytes(bytes);
    let _ = qbft::Message::from_ssz(bytes).map(|m| m.validate());
    let _ = PartialSignatureMessages::from_ssz(bytes).map(|m| m.validate());
    let _ = ValidatorConsensusData::from_ssz(bytes).map(|cd| cd.validate());
    let _ = Contributions::from_ssz_bytes(bytes);
    for version in 0..=8 {
        let _ = Proposal::from_ssz(version, bytes);
        let _ = AggregateAndProofData::from_ssz(version, bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn signed_ssv_message_round_trips(m in signed_ssv_message()) {
        let bytes = m.to_ssz();
        let back = SignedSsvMessage::from_ssz(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_ssz(), bytes);
        prop_assert_eq!(back.tree_hash_root(), m.tree_hash_root());
    }

    #[test]
    fn qbft_message_round_trips(m in qbft_message()) {
        let bytes = m.to_ssz();
        let back = qbft::Message::from_ssz(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_ssz(), bytes);
    }

    #[test]
    fn partial_signature_messages_round_trip(m in partial_signature_messages()) {
        let bytes = m.to_ssz();
        let back = PartialSignatureMessages::from_ssz(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_ssz(), bytes);
    }

    #[test]
    fn validator_consensus_data_round_trips(cd in validator_consensus_data()) {
        let bytes = cd.to_ssz();
        let back = ValidatorConsensusData::from_ssz(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &cd);
        prop_assert_eq!(back.to_ssz(), bytes);
        prop_assert_eq!(back.root(), cd.root());
        // Whatever DataSSZ holds, validation is a verdict, not a panic.
        let _ = cd.validate();
    }

    #[test]
    fn random_bytes_never_panic(b in bytes(4096)) {
        decode_everything(&b);
    }

    #[test]
    fn mutated_encodings_never_panic(
        m in signed_ssv_message(),
        cd in validator_consensus_data(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        for mut bytes in [m.to_ssz(), cd.to_ssz()] {
            for (at, value) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            decode_everything(&bytes);
            let keep = cut.index(bytes.len() + 1);
            decode_everything(&bytes[..keep]);
        }
    }
}

/// Real blocks from the spec vectors, with random bytes overwritten or cut off, through the
/// beacon decoders (offsets, lists and bitfields deep inside a block).
#[cfg(feature = "spec-vectors")]
mod beacon_blocks {
    use super::*;
    use ssv_protocol::vectors::json::as_b64;

    fn data_ssz(file: &str) -> Vec<u8> {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/ssv-spec-v1.2.2/types/tests")
            .join(file);
        let text = std::fs::read_to_string(&path).expect("vector file");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        as_b64(&json["ConsensusData"]["DataSSZ"]).expect("base64")
    }

    fn blocks() -> Vec<(u64, Vec<u8>)> {
        [
            (4, "capella_block"),
            (4, "capella_blinded_block"),
            (6, "electra_blinded_block"),
        ]
        .into_iter()
        .map(|(version, name)| {
            let file = format!(
                "validatorconsensusdata.ValidatorConsensusDataTest_validatorconsensusdata_valid_{name}.json"
            );
            (version, data_ssz(&file))
        })
        .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn mutated_blocks_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            for (version, original) in blocks() {
                let decoded = Proposal::from_ssz(version, &original).expect("vector block");
                prop_assert_eq!(decoded.to_ssz(), original.clone());
                let mut bytes = original;
                for (at, value) in &edits {
                    let i = at.index(bytes.len());
                    bytes[i] = *value;
                }
                if let Ok(p) = Proposal::from_ssz(version, &bytes) {
                    // Whatever decodes must encode back to the same bytes (SSZ is canonical).
                    prop_assert_eq!(p.to_ssz(), bytes.clone());
                    let _ = p.block_root();
                }
                let keep = cut.index(bytes.len() + 1);
                let _ = Proposal::from_ssz(version, &bytes[..keep]);
            }
        }
    }
}
