//! ssv-spec v1.2.2 fixtures: share keys reconstruct to the validator key, operator RSA keys
//! parse and sign, and the encryption vectors round-trip.

use std::path::PathBuf;

use serde_json::Value;
use ssv_crypto_pipeline::{
    LagrangeCache, OperatorId, OperatorPublicKey, OperatorSecretKey, PublicKey, SecretKey,
    Signature, reconstruct_public_key, reconstruct_secret_key, reconstruct_signature,
};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/ssv-spec-v1.2.2")
}

fn load(rel: &str) -> Value {
    let path = vectors().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn find_private_keys(v: &Value) -> Option<&Value> {
    match v {
        Value::Object(m) => m
            .get("PrivateKeys")
            .or_else(|| m.values().find_map(find_private_keys)),
        Value::Array(a) => a.iter().find_map(find_private_keys),
        _ => None,
    }
}

const HAPPY_FLOWS: [(&str, usize, usize); 3] = [
    (
        "qbft/tests/tests.MsgProcessingSpecTest_qbft_message_processing_happy_flow.json",
        4,
        3,
    ),
    (
        "qbft/tests/tests.MsgProcessingSpecTest_qbft_message_processing_happy_flow_ten_operators.json",
        10,
        7,
    ),
    (
        "qbft/tests/tests.MsgProcessingSpecTest_qbft_message_processing_happy_flow_thirteen_operators.json",
        13,
        9,
    ),
];

#[test]
fn spec_shares_reconstruct_to_the_validator_key() {
    let cache = LagrangeCache::new();
    for (file, n, t) in HAPPY_FLOWS {
        let v = load(file);
        let pk = find_private_keys(&v).expect("fixture has PrivateKeys");
        assert_eq!(pk["ShareCount"].as_u64(), Some(n as u64), "{file}");
        assert_eq!(pk["Threshold"].as_u64(), Some(t as u64), "{file}");
        let vsk_hex = pk["ValidatorSK"].as_str().expect("ValidatorSK");
        let vsk = SecretKey::from_bytes(&hex::decode(vsk_hex).expect("hex")).expect("validator sk");
        let vpk = PublicKey::from_bytes(
            &hex::decode(pk["ValidatorPK"].as_str().expect("pk")).expect("hex"),
        )
        .expect("validator pk");
        assert_eq!(
            vsk.public_key(),
            vpk,
            "{file}: ValidatorSK matches ValidatorPK"
        );
        let mut shares: Vec<(OperatorId, SecretKey)> = pk["Shares"]
            .as_object()
            .expect("Shares object")
            .iter()
            .map(|(id, h)| {
                let id: OperatorId = id.parse().expect("numeric operator ID");
                let sk =
                    SecretKey::from_bytes(&hex::decode(h.as_str().expect("hex str")).expect("hex"))
                        .expect("share sk");
                (id, sk)
            })
            .collect();
        shares.sort_by_key(|(id, _)| *id);
        assert_eq!(shares.len(), n);
        let root = [0x5au8; 32];
        // Several t-subsets: the first t, the last t, and every other one from the end.
        let subsets: Vec<Vec<usize>> = vec![
            (0..t).collect(),
            (n - t..n).collect(),
            (0..n).rev().step_by(1).take(t).collect(),
            (0..n)
                .filter(|i| i % 2 == 0)
                .chain((0..n).filter(|i| i % 2 == 1))
                .take(t)
                .collect(),
        ];
        for subset in subsets {
            let sub: Vec<(OperatorId, SecretKey)> =
                subset.iter().map(|&i| shares[i].clone()).collect();
            let sk = reconstruct_secret_key(&sub, &cache).expect("reconstruct sk");
            assert_eq!(sk.to_bytes(), vsk.to_bytes(), "{file}: subset {subset:?}");
            let pks: Vec<(OperatorId, PublicKey)> =
                sub.iter().map(|(id, s)| (*id, s.public_key())).collect();
            assert_eq!(
                reconstruct_public_key(&pks, &cache).expect("reconstruct pk"),
                vpk
            );
            let partials: Vec<(OperatorId, Signature)> =
                sub.iter().map(|(id, s)| (*id, s.sign(&root))).collect();
            let sig = reconstruct_signature(&partials, &cache).expect("reconstruct sig");
            sig.verify(&vpk, &root)
                .expect("reconstructed signature verifies");
            assert_eq!(sig, vsk.sign(&root));
        }
        // t - 1 shares do not give the key.
        let few: Vec<(OperatorId, SecretKey)> = shares[..t - 1].to_vec();
        let wrong = reconstruct_secret_key(&few, &cache).expect("interpolation still runs");
        assert_ne!(wrong.to_bytes(), vsk.to_bytes());

        // Operator RSA keys: hex of PEM "RSA PRIVATE KEY"; each signs and verifies.
        for (id, h) in pk["OperatorKeys"].as_object().expect("OperatorKeys") {
            let sk =
                OperatorSecretKey::from_hex_pem(h.as_str().expect("hex")).expect("operator key");
            let sig = sk.sign(id.as_bytes()).expect("sign");
            let public = OperatorPublicKey::from_base64_pem(&sk.public_key().to_base64_pem())
                .expect("public roundtrip");
            public.verify(id.as_bytes(), &sig).expect("verify");
            let pem = sk.to_pem().expect("pem");
            assert_eq!(
                OperatorSecretKey::from_pem(&pem)
                    .expect("reparse")
                    .sign(b"x"),
                sk.sign(b"x")
            );
        }
    }
}

#[test]
fn spec_encryption_vectors_roundtrip() {
    for file in [
        "types/tests/encryption.EncryptionSpecTest_encryption_bls_secret_key_encryption.json",
        "types/tests/encryption.EncryptionSpecTest_encryption_simple_encryption.json",
    ] {
        let v = load(file);
        let sk =
            OperatorSecretKey::from_base64_pem(v["SKPem"].as_str().expect("SKPem")).expect("sk");
        let pk =
            OperatorPublicKey::from_base64_pem(v["PKPem"].as_str().expect("PKPem")).expect("pk");
        assert_eq!(
            sk.public_key().spki_der(),
            pk.spki_der(),
            "{file}: key pair matches"
        );
        // The registry format we write is the one the spec reads.
        assert_eq!(
            pk.to_base64_pem(),
            v["PKPem"].as_str().expect("PKPem"),
            "{file}"
        );
        use base64::Engine as _;
        let plain = base64::engine::general_purpose::STANDARD
            .decode(v["PlainText"].as_str().expect("PlainText"))
            .expect("base64");
        let ct = pk.encrypt(&plain).expect("encrypt");
        assert_eq!(ct.len(), 256);
        assert_eq!(sk.decrypt(&ct).expect("decrypt"), plain, "{file}");
        let sig = sk.sign(&plain).expect("sign");
        pk.verify(&plain, &sig).expect("verify");
    }
}
