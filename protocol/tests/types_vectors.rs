//! Every ssv-spec v1.2.2 `types` vector passes through the runner, and none is skipped: the
//! number of outcomes equals the number of `.json` files in the folder.

#![cfg(feature = "spec-vectors")]

use std::path::PathBuf;

use ssv_protocol::vectors::run_module;

fn vectors_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/ssv-spec-v1.2.2")
}

#[test]
fn every_types_vector_passes() {
    let root = vectors_root();
    let dir = root.join("types").join("tests");
    let files = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert!(files > 0, "no vectors in {}", dir.display());

    let report = run_module(&root, "types").expect("types module runs");
    let failures: Vec<String> = report
        .outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.file)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} types vectors failed:\n{}",
        failures.len(),
        report.outcomes.len(),
        failures.join("\n")
    );
    assert_eq!(report.outcomes.len(), files, "every file has an outcome");
    assert_eq!(report.passed(), files);
}

#[test]
fn a_corrupted_expected_root_is_caught() {
    // The runner must actually compare roots: a copy of a proposer vector with one bit of its
    // expected block root flipped has to fail.
    let root = vectors_root();
    let name =
        "consensusdataproposer.ProposerSpecTest_consensus_data_versioned_block_validation.json";
    let text = std::fs::read_to_string(root.join("types/tests").join(name)).expect("vector");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let blk_root = json["ExpectedBlkRoot"]
        .as_str()
        .expect("hex root")
        .to_string();
    let flipped = format!(
        "{}{}",
        if blk_root.starts_with('0') { '1' } else { '0' },
        &blk_root[1..]
    );
    json["ExpectedBlkRoot"] = serde_json::Value::String(flipped);

    let tmp = std::env::temp_dir().join(format!("ssv-types-vectors-{}", std::process::id()));
    let tests = tmp.join("types/tests");
    std::fs::create_dir_all(&tests).expect("temp dir");
    std::fs::write(tests.join(name), json.to_string()).expect("write");
    let report = run_module(&tmp, "types").expect("runs");
    std::fs::remove_dir_all(&tmp).ok();
    assert_eq!(report.outcomes.len(), 1);
    assert_eq!(report.failed(), 1, "a wrong expected root must fail");
}

#[test]
fn blinded_forms_of_vector_blocks_keep_their_roots() {
    use ssv_protocol::beacon::{Proposal, ValidatorConsensusData};
    use ssz::Encode;

    // The full blocks of the validation vectors, blinded here: a blinded block must have the
    // root of its full block (what the proposer signs either way), and must decode back as
    // the blinded form of its fork.
    let root = vectors_root();
    for fork in ["capella", "deneb", "electra", "fulu"] {
        let name = format!(
            "validatorconsensusdata.ValidatorConsensusDataTest_validatorconsensusdata_valid_{fork}_block.json"
        );
        let text = std::fs::read_to_string(root.join("types/tests").join(&name)).expect("vector");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        let cd = ssv_protocol::vectors::beacon_cases::validator_consensus_data_from_json(
            &json["ConsensusData"],
        )
        .expect("consensus data");
        let full = cd.proposal().expect("full block");
        assert!(!full.is_blinded(), "{fork}");
        let blinded_bytes = match &full {
            Proposal::Capella(b) => b.to_blinded().as_ssz_bytes(),
            Proposal::Deneb(c) => c.block.to_blinded().as_ssz_bytes(),
            Proposal::Electra(c) => c.block.to_blinded().as_ssz_bytes(),
            Proposal::Fulu(c) => c.block.to_blinded().as_ssz_bytes(),
            other => panic!("{fork}: unexpected {other:?}"),
        };
        let blinded_cd =
            ValidatorConsensusData::new(cd.duty.clone(), cd.version, blinded_bytes).expect("fits");
        let blinded = blinded_cd.proposal().expect("blinded block decodes");
        assert!(blinded.is_blinded(), "{fork}");
        assert_eq!(blinded.version(), full.version());
        assert_eq!(blinded.block_root(), full.block_root(), "{fork}");
        assert_eq!(blinded.slot(), full.slot());
        blinded_cd
            .validate()
            .expect("a blinded block is a valid proposal");
    }
}

/// Three `signedssvmsg` tests of `types/spectest/all_tests.go` are missing from the vendored
/// snapshot (`valid`, `nil ssvmessage`, `zero signer`). They are built here as the Go
/// generator builds them (operator 1 of the 4-operator key set signs; its public key is given
/// as base64 of a PEM block) and run through the same case function as the files; a wrong key
/// must fail the RSA check.
#[test]
fn the_signed_ssv_message_tests_missing_from_the_snapshot() {
    use base64::Engine as _;
    use ssv_protocol::vectors::CaseContext;
    use ssv_protocol::vectors::rsa::OperatorKey;
    use ssv_protocol::vectors::types_cases::signed_ssv_msg_validation;

    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let keys: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors_root().join("ssv/testing-keys.json")).expect("keys"),
    )
    .expect("json");
    let operator = |id: &str| {
        let pem = hex::decode(
            keys["BySize"]["4"]["OperatorKeys"][id]
                .as_str()
                .expect("hex"),
        )
        .expect("hex");
        OperatorKey::from_pem(&pem).expect("rsa key")
    };
    let pem_b64 = |key: &OperatorKey| {
        let body = base64::engine::general_purpose::STANDARD.encode(key.public_der());
        b64(
            format!("-----BEGIN RSA PUBLIC KEY-----\n{body}\n-----END RSA PUBLIC KEY-----\n")
                .as_bytes(),
        )
    };
    // A randao partial-signature message of the aggregator role, as the Go test's
    // `SSVMsgAggregator(nil, PreConsensusRandaoMsg(...))` (its content is not what is tested).
    let mut msg_id = vec![0u8, 0, 3, 1, 1, 0, 0, 0];
    msg_id.extend(
        hex::decode(keys["BySize"]["4"]["ValidatorPK"].as_str().expect("pk")).expect("hex"),
    );
    let data = vec![1u8; 40];
    let ssv = ssv_protocol::message::SsvMessage::new(
        ssv_protocol::message::MsgType::PartialSignature,
        ssv_protocol::message::MessageId::from_slice(&msg_id).expect("id"),
        data.clone(),
    )
    .expect("message");
    let encoded = ssz::Encode::as_ssz_bytes(&ssv);
    let one = operator("1");
    let signature = one.sign(&encoded).expect("sign");
    let ssv_json =
        serde_json::json!({"MsgType": 1, "MsgID": hex::encode(&msg_id), "Data": b64(&data)});
    let ctx = CaseContext {
        root: vectors_root(),
        module: "types".into(),
        file_stem: "built".into(),
    };
    let case = |signer: u64, ssv: serde_json::Value, code: u64, key: Option<&OperatorKey>| {
        serde_json::json!({
            "Messages": [{"Signatures": [b64(&signature)], "OperatorIDs": [signer], "SSVMessage": ssv, "FullData": null}],
            "ExpectedErrorCode": code,
            "RSAPublicKey": key.map(|k| vec![pem_b64(k)]),
        })
    };
    signed_ssv_msg_validation(&case(1, ssv_json.clone(), 0, Some(&one)), &ctx).expect("valid");
    signed_ssv_msg_validation(&case(1, serde_json::Value::Null, 16, None), &ctx)
        .expect("nil ssvmessage");
    signed_ssv_msg_validation(&case(0, ssv_json.clone(), 19, None), &ctx).expect("zero signer");
    // Operator 2's key does not verify operator 1's signature.
    assert!(
        signed_ssv_msg_validation(&case(1, ssv_json, 0, Some(&operator("2"))), &ctx).is_err(),
        "a signature checked against another operator's key must fail"
    );
}
