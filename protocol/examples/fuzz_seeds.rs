//! Writes every `SignedSSVMessage` found in the ssv-spec vectors as a raw SSZ file: the seed
//! corpus of the `signed_ssv_message` fuzz target.
//!
//! `cargo run -p ssv-protocol --example fuzz_seeds -- --vectors testdata/ssv-spec-v1.2.2 --out fuzz/corpus/signed_ssv_message`

use std::path::{Path, PathBuf};

use serde_json::Value;
use ssv_protocol::vectors::json::as_b64;
use ssv_protocol::vectors::types_cases::signed_ssv_message_from_json;

fn collect(v: &Value, out: &mut Vec<Vec<u8>>) {
    match v {
        Value::Object(map) => {
            if map.contains_key("Signatures")
                && map.contains_key("SSVMessage")
                && let Ok(m) = signed_ssv_message_from_json(v)
            {
                out.push(m.to_ssz());
            }
            map.values().for_each(|x| collect(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| collect(x, out)),
        _ => {}
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let vectors = arg("--vectors").ok_or("--vectors DIR required")?;
    let out_dir = PathBuf::from(arg("--out").ok_or("--out DIR required")?);
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    json_files(Path::new(&vectors), &mut files);
    let mut seeds = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        collect(&v, &mut seeds);
        // Encoding vectors carry the bytes themselves.
        if f.to_string_lossy().contains("signedssvmsg.EncodingTest")
            && let Some(Ok(b)) = v.get("Data").map(as_b64)
        {
            seeds.push(b);
        }
    }
    seeds.sort();
    seeds.dedup();
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(out_dir.join(format!("seed-{i:05}")), s).map_err(|e| e.to_string())?;
    }
    println!("wrote {} seeds to {}", seeds.len(), out_dir.display());
    Ok(())
}
