//! Operator keystore: EIP-2335 spec vectors, a keystore written by the Go SSV tooling, round
//! trips, and hostile or broken files. Test data and its provenance: `testdata/keystore/`.
//!
//! The spec vectors use the full-cost KDFs (pbkdf2 c = 2^18, scrypt n = 2^18 with 256 MiB);
//! dependencies are optimised even in debug builds, so each takes well under a second in CI's
//! `cargo test --release`. Every other test uses a low KDF cost.

use proptest::prelude::*;
use serde_json::{Value, json};
use ssv_crypto_pipeline::keystore::{
    CIPHERTEXT_BYTES_MAX, KEYSTORE_JSON_BYTES_MAX, Kdf, PBKDF2_C_DEFAULT, PBKDF2_C_MAX,
    decrypt_keystore_secret, decrypt_operator_key, encrypt_keystore_secret, encrypt_operator_key,
    encrypt_operator_key_with, keystore_public_key,
};
use ssv_crypto_pipeline::{CryptoError, OperatorPublicKey, OperatorSecretKey};
use std::sync::OnceLock;

const EIP_PASSWORD: &str = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑";
const EIP_SECRET: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";

fn testdata(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/keystore/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// One RSA key for the whole file (generation takes tens of milliseconds).
fn key() -> &'static OperatorSecretKey {
    static KEY: OnceLock<OperatorSecretKey> = OnceLock::new();
    KEY.get_or_init(|| OperatorSecretKey::generate().expect("RSA key generation"))
}

/// A cheap keystore (pbkdf2 c = 1) of a short secret, for the corruption tests.
fn cheap_keystore() -> Value {
    let json = encrypt_keystore_secret(b"secret bytes", "password", Kdf::Pbkdf2 { c: 1 }, None)
        .expect("encrypt");
    serde_json::from_str(&json).expect("our own JSON parses")
}

/// A named change to a keystore's JSON.
type Mutation = Box<dyn Fn(&mut Value)>;

fn decrypt_value(v: &Value) -> Result<Vec<u8>, CryptoError> {
    decrypt_keystore_secret(v.to_string().as_bytes(), "password").map(|s| s.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Spec vectors and a real Go-written file.

#[test]
fn eip2335_pbkdf2_vector_decrypts_to_its_secret() {
    let json = testdata("eip2335-pbkdf2.json");
    let secret = decrypt_keystore_secret(&json, EIP_PASSWORD).expect("vector decrypts");
    assert_eq!(hex::encode(&*secret), EIP_SECRET);
    assert_eq!(
        decrypt_keystore_secret(&json, "testpassword").unwrap_err(),
        CryptoError::WrongPassword
    );
}

#[test]
fn eip2335_scrypt_vector_decrypts_to_its_secret() {
    let json = testdata("eip2335-scrypt.json");
    let secret = decrypt_keystore_secret(&json, EIP_PASSWORD).expect("vector decrypts");
    assert_eq!(hex::encode(&*secret), EIP_SECRET);
}

#[test]
fn go_written_operator_keystore_decrypts_to_the_registered_key() {
    let json = testdata("ssv-dkg-operator10.json");
    let password = String::from_utf8(testdata("ssv-dkg-operator10.password")).unwrap();
    let registered = String::from_utf8(testdata("ssv-dkg-operator10.pubkey")).unwrap();
    let registered = OperatorPublicKey::from_base64_pem(registered.trim()).unwrap();

    let key = decrypt_operator_key(&json, &password).expect("Go keystore decrypts");
    assert_eq!(key.public_key().spki_der(), registered.spki_der());
    // The file predates the Go node's pubKey field.
    assert!(keystore_public_key(&json).unwrap().is_none());
    // A password file's trailing newline is a control code and normalised away, as in Go.
    let again = decrypt_operator_key(&json, &format!("{password}\n")).unwrap();
    assert_eq!(again.public_key().spki_der(), registered.spki_der());
    // The secret is the PEM text the Go node writes, byte for byte what we write back.
    let secret = decrypt_keystore_secret(&json, &password).unwrap();
    assert_eq!(std::str::from_utf8(&secret).unwrap(), key.to_pem().unwrap());

    assert_eq!(
        decrypt_operator_key(&json, "gJbOQTpn4xdeQk6").unwrap_err(),
        CryptoError::WrongPassword
    );
}

// ---------------------------------------------------------------------------------------------
// Writing.

#[test]
fn operator_key_round_trip_in_the_go_layout() {
    let key = key();
    let text = encrypt_operator_key(key, "correct horse battery staple\n").unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();

    // The Go node's layout: three modules at the top level plus pubKey, keys sorted.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["checksum", "cipher", "kdf", "pubKey"]);
    assert!(text.starts_with("{\"checksum\":{\"function\":\"sha256\",\"message\":\""));
    assert_eq!(v["kdf"]["function"], "pbkdf2");
    assert_eq!(v["kdf"]["message"], "");
    assert_eq!(
        v["kdf"]["params"],
        json!({
            "c": PBKDF2_C_DEFAULT,
            "dklen": 32,
            "prf": "hmac-sha256",
            "salt": v["kdf"]["params"]["salt"].clone(),
        })
    );
    assert_eq!(PBKDF2_C_DEFAULT, 262_144);
    assert_eq!(v["kdf"]["params"]["salt"].as_str().unwrap().len(), 64);
    assert_eq!(v["cipher"]["function"], "aes-128-ctr");
    assert_eq!(v["cipher"]["params"]["iv"].as_str().unwrap().len(), 32);
    assert_eq!(v["checksum"]["params"], json!({}));
    assert_eq!(v["pubKey"], key.public_key().to_base64_pem());
    // The ciphertext is as long as the PEM text.
    assert_eq!(
        v["cipher"]["message"].as_str().unwrap().len(),
        2 * key.to_pem().unwrap().len()
    );

    let back = decrypt_operator_key(text.as_bytes(), "correct horse battery staple").unwrap();
    assert_eq!(back.to_pem().unwrap(), key.to_pem().unwrap());
    let pk = keystore_public_key(text.as_bytes()).unwrap().unwrap();
    assert_eq!(pk.spki_der(), key.public_key().spki_der());
    assert_eq!(
        decrypt_operator_key(text.as_bytes(), "correct horse battery stapl").unwrap_err(),
        CryptoError::WrongPassword
    );
}

#[test]
fn salt_and_iv_are_fresh_for_every_file() {
    let a = encrypt_operator_key_with(key(), "pw", Kdf::Pbkdf2 { c: 2 }).unwrap();
    let b = encrypt_operator_key_with(key(), "pw", Kdf::Pbkdf2 { c: 2 }).unwrap();
    let (a, b): (Value, Value) = (
        serde_json::from_str(&a).unwrap(),
        serde_json::from_str(&b).unwrap(),
    );
    assert_ne!(a["kdf"]["params"]["salt"], b["kdf"]["params"]["salt"]);
    assert_ne!(a["cipher"]["params"]["iv"], b["cipher"]["params"]["iv"]);
    assert_ne!(a["cipher"]["message"], b["cipher"]["message"]);
}

#[test]
fn scrypt_keystores_round_trip_and_the_eip_layout_is_read() {
    let text = encrypt_operator_key_with(
        key(),
        "pw",
        Kdf::Scrypt {
            n: 1 << 10,
            r: 8,
            p: 1,
        },
    )
    .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["kdf"]["params"],
        json!({"dklen": 32, "n": 1024, "p": 1, "r": 8,
               "salt": v["kdf"]["params"]["salt"].clone()})
    );
    let back = decrypt_operator_key(text.as_bytes(), "pw").unwrap();
    assert_eq!(back.public_key().spki_der(), key().public_key().spki_der());

    // The same modules under "crypto", as EIP-2335 nests them.
    let eip = json!({
        "crypto": {"kdf": v["kdf"], "checksum": v["checksum"], "cipher": v["cipher"]},
        "path": "", "uuid": "00000000-0000-4000-8000-000000000000", "version": 4,
    });
    let back = decrypt_operator_key(eip.to_string().as_bytes(), "pw").unwrap();
    assert_eq!(back.public_key().spki_der(), key().public_key().spki_der());

    // Both layouts at once is ambiguous.
    let mut both = eip.clone();
    both["kdf"] = v["kdf"].clone();
    assert!(matches!(
        decrypt_operator_key(both.to_string().as_bytes(), "pw"),
        Err(CryptoError::InvalidKeystore(_))
    ));
}

#[test]
fn a_pubkey_that_names_another_key_is_refused() {
    let mut v: Value = serde_json::from_str(
        &encrypt_operator_key_with(key(), "pw", Kdf::Pbkdf2 { c: 1 }).unwrap(),
    )
    .unwrap();
    let other = OperatorSecretKey::generate().unwrap();
    v["pubKey"] = Value::String(other.public_key().to_base64_pem());
    assert_eq!(
        decrypt_operator_key(v.to_string().as_bytes(), "pw").unwrap_err(),
        CryptoError::KeystorePublicKeyMismatch
    );
    v["pubKey"] = Value::String("bm90IGEga2V5".into());
    assert!(matches!(
        decrypt_operator_key(v.to_string().as_bytes(), "pw"),
        Err(CryptoError::InvalidKeystore(_))
    ));
}

#[test]
fn a_secret_that_is_not_a_pem_key_is_an_rsa_key_error() {
    let text = encrypt_keystore_secret(b"hello", "pw", Kdf::Pbkdf2 { c: 1 }, None).unwrap();
    assert!(matches!(
        decrypt_operator_key(text.as_bytes(), "pw"),
        Err(CryptoError::InvalidRsaKey(_))
    ));
    let text = encrypt_keystore_secret(&[0xff, 0xfe], "pw", Kdf::Pbkdf2 { c: 1 }, None).unwrap();
    assert!(matches!(
        decrypt_operator_key(text.as_bytes(), "pw"),
        Err(CryptoError::InvalidRsaKey(_))
    ));
}

#[test]
fn unusable_passwords_and_kdf_costs_are_refused_when_writing() {
    for pw in ["", "   ", "\n", "\u{7f}\u{1b}"] {
        assert_eq!(
            encrypt_operator_key_with(key(), pw, Kdf::Pbkdf2 { c: 1 }).unwrap_err(),
            CryptoError::InvalidPassword("empty"),
            "{pw:?}"
        );
    }
    assert!(matches!(
        encrypt_operator_key_with(
            key(),
            "pw",
            Kdf::Pbkdf2 {
                c: PBKDF2_C_MAX + 1
            }
        ),
        Err(CryptoError::KeystoreLimit(_))
    ));
    assert!(matches!(
        encrypt_operator_key_with(key(), "pw", Kdf::Pbkdf2 { c: 0 }),
        Err(CryptoError::InvalidKeystore(_))
    ));
    assert!(matches!(
        encrypt_operator_key_with(
            key(),
            "pw",
            Kdf::Scrypt {
                n: 1 << 20,
                r: 8,
                p: 1
            }
        ),
        Err(CryptoError::KeystoreLimit(_))
    ));
    assert!(matches!(
        encrypt_operator_key_with(
            key(),
            "pw",
            Kdf::Scrypt {
                n: 1000,
                r: 8,
                p: 1
            }
        ),
        Err(CryptoError::InvalidKeystore(_))
    ));
    assert!(matches!(
        encrypt_keystore_secret(
            &vec![1u8; CIPHERTEXT_BYTES_MAX + 1],
            "pw",
            Kdf::Pbkdf2 { c: 1 },
            None
        ),
        Err(CryptoError::KeystoreLimit(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Broken and hostile files: every one is a typed error, returned before any costly work.

#[test]
fn malformed_files_are_invalid_keystores() {
    for text in [
        "",
        "null",
        "[]",
        "42",
        "{}",
        "{\"crypto\":{}}",
        "not json at all",
        "{\"kdf\":",
    ] {
        assert!(
            matches!(
                decrypt_keystore_secret(text.as_bytes(), "password"),
                Err(CryptoError::InvalidKeystore(_))
            ),
            "{text:?}"
        );
    }

    let good = cheap_keystore();
    assert_eq!(decrypt_value(&good).unwrap(), b"secret bytes");
    let text = good.to_string();
    // Truncated anywhere: never a panic, always an error.
    for cut in 0..text.len() {
        assert!(decrypt_keystore_secret(&text.as_bytes()[..cut], "password").is_err());
    }

    let cases: Vec<(&str, Mutation)> = vec![
        (
            "no kdf",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("kdf");
            }),
        ),
        (
            "no cipher",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("cipher");
            }),
        ),
        (
            "no checksum",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("checksum");
            }),
        ),
        (
            "kdf argon2",
            Box::new(|v| v["kdf"]["function"] = json!("argon2id")),
        ),
        (
            "prf sha512",
            Box::new(|v| v["kdf"]["params"]["prf"] = json!("hmac-sha512")),
        ),
        (
            "no prf",
            Box::new(|v| {
                v["kdf"]["params"].as_object_mut().unwrap().remove("prf");
            }),
        ),
        (
            "no salt",
            Box::new(|v| {
                v["kdf"]["params"].as_object_mut().unwrap().remove("salt");
            }),
        ),
        (
            "no c",
            Box::new(|v| {
                v["kdf"]["params"].as_object_mut().unwrap().remove("c");
            }),
        ),
        ("c zero", Box::new(|v| v["kdf"]["params"]["c"] = json!(0))),
        (
            "c negative",
            Box::new(|v| v["kdf"]["params"]["c"] = json!(-1)),
        ),
        (
            "c float",
            Box::new(|v| v["kdf"]["params"]["c"] = json!(1.5)),
        ),
        (
            "c string",
            Box::new(|v| v["kdf"]["params"]["c"] = json!("1")),
        ),
        (
            "dklen 16",
            Box::new(|v| v["kdf"]["params"]["dklen"] = json!(16)),
        ),
        (
            "salt odd hex",
            Box::new(|v| v["kdf"]["params"]["salt"] = json!("abc")),
        ),
        (
            "salt not hex",
            Box::new(|v| v["kdf"]["params"]["salt"] = json!("zz")),
        ),
        (
            "cipher gcm",
            Box::new(|v| v["cipher"]["function"] = json!("aes-256-gcm")),
        ),
        (
            "cipher xor",
            Box::new(|v| v["cipher"]["function"] = json!("xor")),
        ),
        ("no iv", Box::new(|v| v["cipher"]["params"] = json!({}))),
        (
            "iv short",
            Box::new(|v| v["cipher"]["params"]["iv"] = json!("00112233")),
        ),
        (
            "iv not hex",
            Box::new(|v| v["cipher"]["params"]["iv"] = json!("x".repeat(32))),
        ),
        (
            "ciphertext empty",
            Box::new(|v| v["cipher"]["message"] = json!("")),
        ),
        (
            "ciphertext odd",
            Box::new(|v| {
                let m = v["cipher"]["message"].as_str().unwrap().to_owned();
                v["cipher"]["message"] = json!(&m[..m.len() - 1]);
            }),
        ),
        (
            "checksum keccak",
            Box::new(|v| v["checksum"]["function"] = json!("keccak256")),
        ),
        (
            "checksum short",
            Box::new(|v| v["checksum"]["message"] = json!("00")),
        ),
        (
            "scrypt n not pow2",
            Box::new(|v| {
                v["kdf"] = json!({"function": "scrypt", "message": "",
                "params": {"dklen": 32, "n": 1000, "r": 8, "p": 1, "salt": "00"}});
            }),
        ),
        (
            "scrypt r zero",
            Box::new(|v| {
                v["kdf"] = json!({"function": "scrypt", "message": "",
                "params": {"dklen": 32, "n": 1024, "r": 0, "p": 1, "salt": "00"}});
            }),
        ),
        (
            "scrypt no p",
            Box::new(|v| {
                v["kdf"] = json!({"function": "scrypt", "message": "",
                "params": {"dklen": 32, "n": 1024, "r": 8, "salt": "00"}});
            }),
        ),
    ];
    for (name, mutate) in cases {
        let mut v = good.clone();
        mutate(&mut v);
        assert!(
            matches!(decrypt_value(&v), Err(CryptoError::InvalidKeystore(_))),
            "{name}: {:?}",
            decrypt_value(&v)
        );
    }
}

#[test]
fn tampered_ciphertext_or_checksum_reads_as_a_wrong_password() {
    let good = cheap_keystore();
    let m = good["cipher"]["message"].as_str().unwrap().to_owned();

    let mut truncated = good.clone();
    truncated["cipher"]["message"] = json!(&m[..m.len() - 2]);
    assert_eq!(
        decrypt_value(&truncated).unwrap_err(),
        CryptoError::WrongPassword
    );

    let mut flipped = good.clone();
    let mut bytes = hex::decode(&m).unwrap();
    bytes[0] ^= 1;
    flipped["cipher"]["message"] = json!(hex::encode(bytes));
    assert_eq!(
        decrypt_value(&flipped).unwrap_err(),
        CryptoError::WrongPassword
    );

    let mut checksum = good.clone();
    checksum["checksum"]["message"] = json!("00".repeat(32));
    assert_eq!(
        decrypt_value(&checksum).unwrap_err(),
        CryptoError::WrongPassword
    );

    let mut iv = good.clone();
    iv["cipher"]["params"]["iv"] = json!("00".repeat(16));
    // The IV is not covered by the EIP-2335 checksum: the file decrypts to other bytes.
    assert_ne!(decrypt_value(&iv).unwrap(), b"secret bytes");

    assert!(matches!(
        decrypt_keystore_secret(good.to_string().as_bytes(), " \n"),
        Err(CryptoError::InvalidPassword(_))
    ));
}

#[test]
fn absurd_parameters_are_refused_before_any_derivation() {
    let good = cheap_keystore();
    let scrypt = |n: u64, r: u64, p: u64| {
        json!({"function": "scrypt", "message": "",
            "params": {"dklen": 32, "n": n, "r": r, "p": p, "salt": "00"}})
    };
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "c 2^40",
            Box::new(|v| v["kdf"]["params"]["c"] = json!(1u64 << 40)),
        ),
        (
            "c u64::MAX",
            Box::new(|v| v["kdf"]["params"]["c"] = json!(u64::MAX)),
        ),
        (
            "c just over",
            Box::new(|v| v["kdf"]["params"]["c"] = json!(PBKDF2_C_MAX as u64 + 1)),
        ),
        (
            "dklen 2^30",
            Box::new(|v| v["kdf"]["params"]["dklen"] = json!(1u64 << 30)),
        ),
        (
            "salt 1 MB",
            Box::new(|v| v["kdf"]["params"]["salt"] = json!("00".repeat(20_000))),
        ),
        (
            "ciphertext 20 KB",
            Box::new(|v| v["cipher"]["message"] = json!("00".repeat(20_000))),
        ),
        (
            "scrypt n 2^62",
            Box::new(move |v| v["kdf"] = scrypt(1 << 62, 8, 1)),
        ),
        (
            "scrypt n 2^21",
            Box::new(move |v| v["kdf"] = scrypt(1 << 21, 1, 1)),
        ),
        (
            "scrypt memory 1 GiB",
            Box::new(move |v| v["kdf"] = scrypt(1 << 20, 8, 1)),
        ),
        (
            "scrypt r huge",
            Box::new(move |v| v["kdf"] = scrypt(1024, 1 << 31, 1)),
        ),
        (
            "scrypt p huge",
            Box::new(move |v| v["kdf"] = scrypt(1024, 8, u64::MAX)),
        ),
        (
            "scrypt work",
            Box::new(move |v| v["kdf"] = scrypt(1 << 18, 8, 16)),
        ),
    ];
    for (name, mutate) in cases {
        let mut v = good.clone();
        mutate(&mut v);
        let started = std::time::Instant::now();
        let result = decrypt_value(&v);
        assert!(
            matches!(result, Err(CryptoError::KeystoreLimit(_))),
            "{name}: {result:?}"
        );
        // Refused by the bound check, not after running the KDF.
        assert!(
            started.elapsed().as_millis() < 500,
            "{name} took {:?}",
            started.elapsed()
        );
    }

    // A file over the size bound is refused before it is parsed.
    let mut big = good.to_string().into_bytes();
    big.resize(KEYSTORE_JSON_BYTES_MAX + 1, b' ');
    assert!(matches!(
        decrypt_keystore_secret(&big, "password"),
        Err(CryptoError::KeystoreLimit(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any single-byte change to a keystore file gives the secret or a typed error: never a
    /// panic, never a wrong secret without an error (the checksum covers the ciphertext, and
    /// the KDF inputs change the derived key).
    #[test]
    fn mutated_files_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        static TEXT: OnceLock<String> = OnceLock::new();
        let text = TEXT.get_or_init(|| cheap_keystore().to_string());
        let mut bytes = text.clone().into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(secret) = decrypt_keystore_secret(&bytes, "password") {
            // Some changes still decrypt (hex case, a longer dklen, whose PBKDF2 output starts
            // with the same 32 bytes); only an IV change can alter the output.
            let iv_start = text.find("\"iv\":\"").unwrap() + 6;
            if !(iv_start..iv_start + 32).contains(&i) {
                prop_assert_eq!(&**secret, b"secret bytes");
            }
        }
    }
}
