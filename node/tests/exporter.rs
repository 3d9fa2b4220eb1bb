//! Exporter mode end to end: `ssv-node devnet --exporter` runs four operators, an exporter
//! (`ssv-node start` with `exporter = true`) and an `ssv-node bootnode` process for
//! discovery. While it runs, a WebSocket client follows the exporter's `/stream` and the
//! decided query API is asked; afterwards every committee instance the operators decided
//! (their `decided` log lines, and the last one in their own stores) must be in the
//! exporter's store with the same value root, slot by slot, and the API and the stream must
//! have returned exactly the stored participants.
//!
//! About 35 s: 6 s start delay, 10 slots of 1.5 s, 2 settle slots, shutdown.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDir;
use futures::StreamExt as _;
use ssv_storage::{Store, StoreConfig};

const VALIDATORS: usize = 8;
const SLOTS: u64 = 10;

/// (identifier hex, slot) → root hex, from `decided` lines of `prefix` in a node log.
type Decideds = BTreeMap<(String, u64), (String, Vec<u64>)>;

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let rest = &line[at..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ' ']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn signers(line: &str) -> Vec<u64> {
    let Some(at) = line.find("signers=[") else {
        return Vec::new();
    };
    let rest = &line[at + "signers=[".len()..];
    let end = rest.find(']').unwrap_or(0);
    rest[..end]
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn decided_lines(log: &Path, marker: &str) -> Decideds {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.contains(marker)) {
        let (Some(slot), Some(id), Some(root)) = (
            field(line, "slot"),
            field(line, "identifier"),
            field(line, "root"),
        ) else {
            panic!("malformed decided line: {line}");
        };
        let slot: u64 = slot.parse().expect("slot");
        let prev = out.insert((id.to_owned(), slot), (root.to_owned(), signers(line)));
        assert!(prev.is_none(), "{marker}: two lines for {id} at {slot}");
    }
    out
}

/// A committee instance (role 0 in bytes 4..8 of the identifier).
fn is_committee(id: &str) -> bool {
    id.get(8..16) == Some("00000000")
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_stores_serves_and_streams_what_the_operators_decided() {
    let tmp = TestDir::new("exporter");
    let data = tmp.0.join("data");
    let json = tmp.0.join("summary.json");
    let out_path = tmp.0.join("devnet.out");
    let err_path = tmp.0.join("devnet.err");
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_ssv-node"))
        .arg("devnet")
        .args(["--operators", "4", "--validators", &VALIDATORS.to_string()])
        .args(["--slots", &SLOTS.to_string(), "--slot-ms", "1500"])
        .arg("--exporter")
        .arg("--data-dir")
        .arg(&data)
        .arg("--json-summary")
        .arg(&json)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::from(
            std::fs::File::create(&out_path).expect("stdout file"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(&err_path).expect("stderr file"),
        ))
        .spawn()
        .expect("start ssv-node devnet");

    // The exporter logs its API address once it runs.
    let exporter_log = data.join("exporter/node.log");
    let api = wait_for(
        "the exporter's API address",
        Duration::from_secs(60),
        || {
            let text = std::fs::read_to_string(&exporter_log).ok()?;
            let at = text.find("exporter API on http://")? + "exporter API on http://".len();
            Some(
                text[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect(),
            )
        },
    );

    // The stream client, connected before the first counted slot (the start delay is 6 s).
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{api}/stream"))
        .await
        .expect("WebSocket handshake with /stream");
    let streamed = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut ws = ws;
        while let Some(Ok(msg)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                got.push(serde_json::from_str::<serde_json::Value>(&t).expect("stream JSON"));
            }
        }
        got
    });

    // Queried while the devnet runs: once six committee instances are decided.
    let live = tokio::task::spawn_blocking({
        let log = exporter_log.clone();
        move || {
            wait_for(
                "six decided committee instances",
                Duration::from_secs(60),
                || {
                    let n = decided_lines(&log, "exporter: decided")
                        .keys()
                        .filter(|(id, _)| is_committee(id))
                        .count();
                    (n >= 6).then(String::new)
                },
            );
            decided_lines(&log, "exporter: decided")
        }
    })
    .await
    .expect("wait task");
    let slots: Vec<u64> = live
        .keys()
        .filter(|(id, _)| is_committee(id))
        .map(|(_, s)| *s)
        .collect();
    let (from, to) = (slots[0], slots[slots.len() - 1]);
    assert!(from < to);
    let http = reqwest::Client::new();
    let all: serde_json::Value = http
        .get(format!(
            "http://{api}/v1/exporter/decideds?from={from}&to={to}&roles=ATTESTER"
        ))
        .send()
        .await
        .expect("GET decideds")
        .json()
        .await
        .expect("decideds JSON");
    let entries = all["data"].as_array().expect("data array");
    assert_eq!(
        entries.len(),
        slots.len() * VALIDATORS,
        "one entry per validator of the committee per decided slot: {all}"
    );
    let mut by_slot: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for e in entries {
        let slot = e["slot"].as_u64().expect("slot");
        let (_, (_, want)) = live
            .iter()
            .find(|((id, s), _)| is_committee(id) && *s == slot)
            .unwrap_or_else(|| panic!("API slot {slot} not decided: {e}"));
        let got: Vec<u64> =
            serde_json::from_value(e["message"]["Signers"].clone()).expect("Signers");
        assert_eq!(&got, want, "signers of slot {slot}");
        assert_eq!(e["role"], "ATTESTER");
        by_slot
            .entry(slot)
            .or_default()
            .insert(e["public_key"].as_str().expect("public_key").to_owned());
    }
    assert!(
        by_slot.values().all(|v| v.len() == VALIDATORS),
        "{by_slot:?}"
    );
    // One validator by public key (POST, JSON body) and by index: one entry per slot.
    let pubkey = entries[0]["public_key"]
        .as_str()
        .expect("public_key")
        .to_owned();
    let one: serde_json::Value = http
        .post(format!("http://{api}/v1/exporter/decideds"))
        .json(&serde_json::json!({"from": from, "to": to, "roles": ["ATTESTER"], "pubkeys": [pubkey]}))
        .send()
        .await
        .expect("POST decideds")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        one["data"].as_array().map(Vec::len),
        Some(slots.len()),
        "{one}"
    );
    assert!(
        one["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|e| e["public_key"] == pubkey.as_str())
    );
    let by_index: serde_json::Value = http
        .get(format!(
            "http://{api}/v1/exporter/decideds?from={from}&to={to}&roles=SYNC_COMMITTEE&indices=3"
        ))
        .send()
        .await
        .expect("GET by index")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        by_index["data"].as_array().map(Vec::len),
        Some(slots.len()),
        "{by_index}"
    );
    // Bad requests are refused with 400, never answered with a guess.
    for bad in [
        format!("from={to}&to={from}&roles=ATTESTER"),
        format!("from={from}&to={to}"),
        format!("from={from}&to={to}&roles=BOGUS"),
        format!("from={from}&to={to}&roles=ATTESTER&pubkeys=abcd"),
    ] {
        let status = http
            .get(format!("http://{api}/v1/exporter/decideds?{bad}"))
            .send()
            .await
            .expect("GET")
            .status();
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{bad}");
    }

    // The devnet ends on its own and passes.
    let status = tokio::task::spawn_blocking(move || devnet.wait())
        .await
        .expect("wait task")
        .expect("devnet exit");
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        status.success() && stdout.contains("PASS"),
        "devnet failed ({status})\n{stdout}\n{stderr}"
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary")).expect("JSON");
    let first = summary["first_slot"].as_u64().expect("first_slot");
    let counted = first..=first + SLOTS - 1;

    // Discovery ran through the `ssv-node bootnode` process: the ENR the operators were given
    // is the one it logged (from its persistent key) and served at /p2p.
    assert!(
        stderr.contains("discovery through ssv-node bootnode process"),
        "{stderr}"
    );
    let boot_log =
        std::fs::read_to_string(data.join("bootnode/bootnode.log")).expect("bootnode log");
    let enr = boot_log
        .lines()
        .find(|l| l.starts_with("enr:"))
        .expect("the bootnode printed its ENR");
    let op_config = std::fs::read_to_string(data.join("op1/config.toml")).expect("op1 config");
    assert!(op_config.contains(enr), "op1 is not configured with {enr}");
    assert!(boot_log.contains("bootnode ENR on http://"), "{boot_log}");
    assert!(data.join("bootnode/network.key").exists());

    // Operators' decided instances, from their logs: they agree with one another.
    let mut ops: BTreeMap<(String, u64), String> = BTreeMap::new();
    let mut ops_all: BTreeMap<(String, u64), String> = BTreeMap::new();
    for id in 1..=4 {
        for ((ident, slot), (root, _)) in
            decided_lines(&data.join(format!("op{id}/node.log")), "shard: decided")
        {
            ops_all.insert((ident.clone(), slot), root.clone());
            if !counted.contains(&slot) {
                continue;
            }
            if let Some(other) = ops.insert((ident.clone(), slot), root.clone()) {
                assert_eq!(other, root, "operators disagree on {ident} at {slot}");
            }
        }
    }
    assert!(
        ops.len() >= SLOTS as usize / 2,
        "operators decided {} committee instances in {SLOTS} slots",
        ops.len()
    );

    // The exporter's store (opened now that it stopped), compared slot by slot.
    let gvr = ssv_devnet::sim::genesis_validators_root(1);
    let mut cfg = StoreConfig::new(data.join("exporter/db"), gvr);
    cfg.decided_history = true;
    let store = Store::open(cfg).expect("open the exporter's store");
    let stored: BTreeMap<(String, u64), ssv_storage::DecidedRecord> = store
        .decided_history_all(0, u64::MAX, 100_000, |_| true)
        .expect("read decided history")
        .records
        .into_iter()
        .map(|r| ((hex::encode(r.identifier), r.height), r))
        .collect();
    for ((ident, slot), root) in &ops {
        let r = stored
            .get(&(ident.clone(), *slot))
            .unwrap_or_else(|| panic!("the exporter did not store {ident} at slot {slot}"));
        assert_eq!(
            &hex::encode(r.value_root),
            root,
            "root of {ident} at {slot}"
        );
        assert!(
            r.signers.len() >= 3 && r.signers.iter().all(|s| (1..=4).contains(s)),
            "{r:?}"
        );
        // The stored message is the aggregated commit, one RSA signature per signer.
        let msg =
            ssv_protocol::message::SignedSsvMessage::from_ssz(&r.message).expect("stored SSZ");
        assert_eq!(msg.operator_ids.to_vec(), r.signers);
        assert_eq!(msg.signatures.len(), r.signers.len());
        let q = ssv_protocol::qbft::Message::from_ssz(&msg.ssv_message.data).expect("commit");
        assert_eq!((q.height, q.root), (*slot, r.value_root));
    }
    // Nothing decided by the committee that the operators did not decide.
    for (ident, slot) in stored.keys().filter(|(id, _)| is_committee(id)) {
        if counted.contains(slot) {
            assert!(
                ops.contains_key(&(ident.clone(), *slot)),
                "{ident} at {slot} only on the exporter"
            );
        }
    }
    // The operators' own stores: their highest decided instance is the exporter's record.
    drop(store);
    for id in 1..=4 {
        let op =
            Store::open(StoreConfig::new(data.join(format!("op{id}/db")), gvr)).expect("op store");
        let ident = ops.keys().next().expect("an instance").0.clone();
        let key: [u8; 56] = hex::decode(&ident)
            .expect("hex")
            .try_into()
            .expect("56 bytes");
        let highest = op
            .highest_decided(&key)
            .expect("read")
            .expect("a decided instance");
        let signed =
            ssv_protocol::message::SignedSsvMessage::from_ssz(&highest.message).expect("SSZ");
        let q = ssv_protocol::qbft::Message::from_ssz(&signed.ssv_message.data).expect("commit");
        assert_eq!(
            ops_all.get(&(ident.clone(), highest.height)),
            Some(&hex::encode(q.root)),
            "op{id}"
        );
        assert_eq!(
            stored.get(&(ident, highest.height)).map(|r| r.value_root),
            Some(q.root),
            "op{id}'s last decided instance is the exporter's"
        );
    }

    // The stream delivered every committee instance as it was decided, in Go's shape.
    let streamed = tokio::time::timeout(Duration::from_secs(10), streamed)
        .await
        .expect("the stream closes when the exporter stops")
        .expect("stream task");
    let mut stream_slots: BTreeMap<u64, usize> = BTreeMap::new();
    for m in &streamed {
        assert_eq!(m["type"], "decided", "{m}");
        let d = &m["data"][0];
        if d["Role"] != "ATTESTER" {
            continue;
        }
        let slot = d["Slot"].as_u64().expect("Slot");
        assert_eq!(m["filter"]["from"], slot);
        assert_eq!(m["filter"]["publicKey"], d["ValidatorPK"]);
        let ident = stored
            .keys()
            .find(|(id, s)| is_committee(id) && *s == slot)
            .unwrap_or_else(|| panic!("streamed slot {slot} not stored"));
        let want = &stored[ident].signers;
        let got: Vec<u64> = serde_json::from_value(d["Signers"].clone()).expect("Signers");
        assert_eq!(&got, want, "streamed signers of slot {slot}");
        *stream_slots.entry(slot).or_default() += 1;
    }
    for (ident, slot) in stored
        .keys()
        .filter(|(id, s)| is_committee(id) && counted.contains(s))
    {
        assert_eq!(
            stream_slots.get(slot),
            Some(&VALIDATORS),
            "{ident} at {slot}: one stream message per validator"
        );
    }
}
