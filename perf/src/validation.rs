//! `ssv-perf validation`: gossip messages fully validated per second on one core, through
//! the node's own validator (`ssv_protocol::validation::MessageValidator` over the node's
//! `NodeView`: registry index, duty store, operator RSA keys), single-threaded and pinned.
//!
//! Four kinds of traffic, each beside the RSA-verify floor measured in the same run:
//! - **valid**: the messages of a committee's slot, in the proportions a slot has them — the
//!   leader's proposal, every member's prepare, commit and post-consensus partial signatures
//!   — for committees of 4 and of 13 operators (real RSA-2048 signatures);
//! - **garbage**: the same messages with one field broken (signers unsorted or zero, a
//!   signer outside the committee, another domain, round 0, an unknown QBFT type, a
//!   mismatched identifier, a partial-signature type of another role, a partial of another
//!   signer): full-size messages, refused before any signature check;
//! - **bad RSA**: well-formed messages with one bit of the signature flipped (everything
//!   checked, then the signature fails);
//! - **replay**: the valid messages again from the same peer (duplicates of what the signer
//!   already sent in that round or slot).
//!
//! stdout carries only the JSON (`--json`) or the table.

use std::sync::Arc;

use anyhow::{Context, bail};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use ssv_crypto_pipeline::{OperatorKeyCache, OperatorPublicKey, OperatorSecretKey};
use ssv_node::{DutyStore, NetworkIndex, NodeView};
use ssv_protocol::chain::{ChainSpec, SlotClock};
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::message::{MessageId, MsgType, SignedSsvMessage, SsvMessage};
use ssv_protocol::partial_sig::{
    PartialSigMsgType, PartialSignatureMessage, PartialSignatureMessages,
};
use ssv_protocol::qbft::{Message as QbftMessage, MessageType, hash_data_root};
use ssv_protocol::types::{DomainType, OperatorId};
use ssv_protocol::validation::{Config, MessageValidator, Verdict};

use crate::crypto::{pin_current_thread, thread_cpu_s};

const DOMAIN: DomainType = DomainType([0, 0, 0x31, 0x38]);
const CHAIN: ChainSpec = ChainSpec::MAINNET;
/// The slot of every message (epoch 10).
const SLOT: u64 = 320;
/// Operators in the pool committees are drawn from.
const OPERATORS: u64 = 40;

/// Arguments of `ssv-perf validation`.
#[derive(clap::Args, Debug, Clone)]
pub struct ValidationArgs {
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Core to pin the measuring thread to.
    #[arg(long, default_value_t = 1)]
    pub core: usize,
    /// Do not pin.
    #[arg(long)]
    pub no_pin: bool,
    /// Committees of 4 operators (one slot's messages each).
    #[arg(long, default_value_t = 240)]
    pub committees_4: usize,
    /// Committees of 13 operators.
    #[arg(long, default_value_t = 24)]
    pub committees_13: usize,
    /// Validators per committee (post-consensus partial signatures per message: one
    /// attestation each, plus a sync-committee message for one in ten).
    #[arg(long, default_value_t = 10)]
    pub validators_per_committee: usize,
    /// Measurement rounds (each over every message, the median kept).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct ValidationReport {
    /// Valid messages validated (and accepted) per second of one core.
    pub valid_per_core_per_s: f64,
    /// Broken messages refused per second.
    pub garbage_per_core_per_s: f64,
    /// Messages with a bad RSA signature refused per second.
    pub bad_rsa_per_core_per_s: f64,
    /// Replays refused per second.
    pub replay_per_core_per_s: f64,
    /// RSA-2048 signature verifications per second (the floor of a valid message's cost).
    pub rsa_verify_floor_per_core_per_s: f64,
    /// Valid messages per round, and how many of them carry several signatures.
    pub valid_messages: usize,
    /// Broken messages per round.
    pub garbage_messages: usize,
    /// Mean encoded size of a valid message, bytes.
    pub mean_message_bytes: f64,
    /// Whether the thread was pinned.
    pub pinned: bool,
    /// Whether the targets of the validation issue are met (≥ 25,000 valid and ≥ 500,000
    /// garbage messages per second per core).
    pub targets_met: bool,
}

struct Committee {
    operators: Vec<OperatorId>,
    id: MessageId,
    subnet: u64,
    validators: Vec<u64>,
}

/// The messages of one committee's slot, unsigned: (signer(s), SSV message, full data).
fn slot_messages(c: &Committee) -> anyhow::Result<Vec<(Vec<OperatorId>, SsvMessage, Vec<u8>)>> {
    let value = vec![0x5a; 112]; // a BeaconVote's size
    let root = hash_data_root(&value);
    let n = c.operators.len() as u64;
    let leader = c.operators[(SLOT % n) as usize];
    let qbft = |kind: MessageType| QbftMessage {
        msg_type: kind.to_u64(),
        height: SLOT,
        round: 1,
        identifier: c.id.0.to_vec().try_into().unwrap_or_default(),
        root,
        data_round: 0,
        round_change_justification: Default::default(),
        prepare_justification: Default::default(),
    };
    let consensus = |kind: MessageType| -> anyhow::Result<SsvMessage> {
        Ok(SsvMessage::new(
            MsgType::Consensus,
            c.id,
            qbft(kind).to_ssz(),
        )?)
    };
    let mut out = vec![(vec![leader], consensus(MessageType::Proposal)?, value)];
    for &op in &c.operators {
        out.push((vec![op], consensus(MessageType::Prepare)?, Vec::new()));
    }
    for &op in &c.operators {
        out.push((vec![op], consensus(MessageType::Commit)?, Vec::new()));
    }
    for &op in &c.operators {
        let mut partials = Vec::new();
        for (i, &v) in c.validators.iter().enumerate() {
            let count = if i % 10 == 0 { 2 } else { 1 };
            for k in 0..count {
                partials.push(PartialSignatureMessage {
                    partial_signature: [(v + k) as u8; 96],
                    signing_root: [k as u8; 32],
                    signer: op,
                    validator_index: v,
                });
            }
        }
        let psm = PartialSignatureMessages::new(PartialSigMsgType::PostConsensus, SLOT, partials)?;
        out.push((
            vec![op],
            SsvMessage::new(MsgType::PartialSignature, c.id, psm.to_ssz())?,
            Vec::new(),
        ));
    }
    Ok(out)
}

/// One field broken, before any signature check (the `k`-th kind of breakage).
fn break_one(m: &SignedSsvMessage, k: usize, committee: &Committee) -> SignedSsvMessage {
    let mut b = m.clone();
    let is_consensus = b.ssv_message.kind() == Some(MsgType::Consensus);
    match k % 6 {
        0 => {
            b.ssv_message.msg_id.0[..4].copy_from_slice(&DomainType::MAINNET.0);
        }
        1 => {
            // A signer outside the committee.
            let outsider = (1..=OPERATORS + 13)
                .find(|o| !committee.operators.contains(o))
                .unwrap_or(OPERATORS + 13);
            b.operator_ids = vec![outsider].try_into().unwrap_or_default();
        }
        2 => {
            b.operator_ids = vec![0].try_into().unwrap_or_default();
        }
        3 if is_consensus => {
            if let Ok(mut q) = QbftMessage::from_ssz(&b.ssv_message.data) {
                q.round = 0;
                b.ssv_message.data = q.to_ssz().try_into().unwrap_or_default();
            }
        }
        4 if is_consensus => {
            if let Ok(mut q) = QbftMessage::from_ssz(&b.ssv_message.data) {
                q.identifier[55] ^= 1;
                b.ssv_message.data = q.to_ssz().try_into().unwrap_or_default();
            }
        }
        _ if is_consensus => {
            if let Ok(mut q) = QbftMessage::from_ssz(&b.ssv_message.data) {
                q.msg_type = 9;
                b.ssv_message.data = q.to_ssz().try_into().unwrap_or_default();
            }
        }
        3 | 4 => {
            if let Ok(mut p) = PartialSignatureMessages::from_ssz(&b.ssv_message.data) {
                p.msg_type = PartialSigMsgType::RandaoPartialSig.to_u64();
                b.ssv_message.data = p.to_ssz().try_into().unwrap_or_default();
            }
        }
        _ => {
            if let Ok(mut p) = PartialSignatureMessages::from_ssz(&b.ssv_message.data) {
                if let Some(first) = p.messages.first_mut() {
                    first.signer = first.signer.wrapping_add(1);
                }
                b.ssv_message.data = p.to_ssz().try_into().unwrap_or_default();
            }
        }
    }
    b
}

/// Median of the rate over `rounds` runs of `f` (which validates `n` messages).
fn rate(rounds: usize, n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let t = thread_cpu_s();
        f()?;
        let dt = (thread_cpu_s() - t).max(1e-9);
        rates.push(n as f64 / dt);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    Ok(rates[rates.len() / 2])
}

/// Entry point of `ssv-perf validation`.
pub fn main(args: ValidationArgs) -> anyhow::Result<()> {
    // Keys and messages, on every core, before pinning.
    let keys: Vec<(OperatorId, Arc<OperatorSecretKey>)> = (1..=OPERATORS + 13)
        .into_par_iter()
        .map(|id| Ok((id, Arc::new(OperatorSecretKey::generate()?))))
        .collect::<Result<_, ssv_crypto_pipeline::CryptoError>>()?;
    let key_cache = OperatorKeyCache::new();
    for (id, k) in &keys {
        key_cache.insert(
            *id,
            Arc::new(OperatorPublicKey::from_base64_pem(
                &k.public_key().to_base64_pem(),
            )?),
        );
    }
    let secret = |id: OperatorId| keys.iter().find(|(i, _)| *i == id).map(|(_, k)| k.clone());
    let mut committees = Vec::new();
    let mut index = NetworkIndex::default();
    let mut next_validator = 0u64;
    let sizes = std::iter::repeat_n(4usize, args.committees_4)
        .chain(std::iter::repeat_n(13usize, args.committees_13));
    let mut used = std::collections::HashSet::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for (c, size) in sizes.enumerate() {
        // A distinct operator set per committee (distinct committee IDs).
        let mut operators: Vec<OperatorId> = Vec::new();
        for attempt in 0.. {
            if attempt == 1000 {
                bail!("committee {c}: no distinct operator set left");
            }
            let mut set: Vec<OperatorId> = (1..=OPERATORS + 13).collect();
            set.shuffle(&mut rng);
            set.truncate(size);
            set.sort_unstable();
            if used.insert(set.clone()) {
                operators = set;
                break;
            }
        }
        let validators: Vec<u64> = (0..args.validators_per_committee as u64)
            .map(|i| next_validator + i)
            .collect();
        next_validator += validators.len() as u64;
        let pubkeys: Vec<([u8; 48], u64)> = validators
            .iter()
            .map(|v| {
                let mut pk = [0u8; 48];
                pk[..8].copy_from_slice(&v.to_le_bytes());
                (pk, *v)
            })
            .collect();
        index.insert_committee(operators.clone(), &pubkeys);
        let cid = CommitteeId::from_operators(&operators);
        committees.push(Committee {
            id: MessageId::for_committee(DOMAIN, &cid),
            subnet: cid.subnet(),
            operators,
            validators,
        });
    }
    let unsigned: Vec<(usize, Vec<OperatorId>, SsvMessage, Vec<u8>)> = committees
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            slot_messages(c).map(|ms| {
                ms.into_iter()
                    .map(|(s, m, f)| (ci, s, m, f))
                    .collect::<Vec<_>>()
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let valid: Vec<(usize, SignedSsvMessage)> = unsigned
        .into_par_iter()
        .map(|(ci, signers, ssv, full)| {
            let encoded = ssz::Encode::as_ssz_bytes(&ssv);
            let sigs = signers
                .iter()
                .map(|s| -> anyhow::Result<[u8; 256]> {
                    let k = secret(*s).context("key")?;
                    let sig = k.sign(&encoded)?;
                    sig.try_into()
                        .map_err(|_| anyhow::anyhow!("RSA signature of the wrong size"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((ci, SignedSsvMessage::new(sigs, signers, ssv, full)?))
        })
        .collect::<anyhow::Result<_>>()?;
    let valid_bytes: Vec<(u64, Vec<u8>)> = valid
        .iter()
        .map(|(ci, m)| (committees[*ci].subnet, m.to_ssz()))
        .collect();
    let garbage: Vec<(u64, Vec<u8>)> = valid
        .iter()
        .enumerate()
        .map(|(k, (ci, m))| {
            (
                committees[*ci].subnet,
                break_one(m, k, &committees[*ci]).to_ssz(),
            )
        })
        .collect();
    let bad_rsa: Vec<(u64, Vec<u8>)> = valid
        .iter()
        .map(|(ci, m)| {
            let mut b = m.clone();
            if let Some(sig) = b.signatures.get_mut(0)
                && let Some(byte) = sig.get_mut(100)
            {
                *byte ^= 0x01;
            }
            (committees[*ci].subnet, b.to_ssz())
        })
        .collect();
    let encoded: Vec<(OperatorId, Vec<u8>, [u8; 256])> = valid
        .iter()
        .map(|(_, m)| {
            (
                m.operator_ids[0],
                ssz::Encode::as_ssz_bytes(&m.ssv_message),
                m.signature(0).copied().unwrap_or([0; 256]),
            )
        })
        .collect();

    let pinned = !args.no_pin && pin_current_thread(args.core).is_ok();
    let duties = DutyStore::default();
    let view = NodeView {
        index: &index,
        duties: &duties,
        keys: &key_cache,
        slots_per_epoch: CHAIN.slots_per_epoch(),
    };
    // The messages arrive 1 s into their slot.
    let now = SlotClock::now_ms();
    let config = Config {
        domain: DOMAIN,
        chain: CHAIN,
        genesis_ms: now - SLOT * CHAIN.slot_ms() - 1000,
    };
    let n = valid_bytes.len();
    let mut replayed = MessageValidator::<u32>::new(config);
    let valid_rate = rate(args.rounds, n, || {
        let mut v = MessageValidator::<u32>::new(config);
        for (subnet, m) in &valid_bytes {
            if let Err(e) = v.validate(&view, 0, m, Some(*subnet), now) {
                bail!("a valid message was refused: {e}");
            }
        }
        replayed = v;
        Ok(())
    })?;
    let replay_rate = rate(args.rounds, n, || {
        for (subnet, m) in &valid_bytes {
            if replayed.validate(&view, 0, m, Some(*subnet), now).is_ok() {
                bail!("a replay was accepted");
            }
        }
        Ok(())
    })?;
    let garbage_rounds = args.rounds * 20;
    let garbage_rate = rate(garbage_rounds, garbage.len(), || {
        let mut v = MessageValidator::<u32>::new(config);
        for (subnet, m) in &garbage {
            match v.validate(&view, 0, m, Some(*subnet), now) {
                Ok(_) => bail!("a broken message was accepted"),
                Err(e) if e.rule == ssv_protocol::validation::Rule::SignatureVerification => {
                    bail!("a broken message reached the signature check: {e}")
                }
                Err(_) => {}
            }
        }
        Ok(())
    })?;
    let bad_rsa_rate = rate(args.rounds, bad_rsa.len(), || {
        let mut v = MessageValidator::<u32>::new(config);
        for (subnet, m) in &bad_rsa {
            match v.validate(&view, 0, m, Some(*subnet), now) {
                Err(e) if e.verdict() == Verdict::Reject => {}
                other => bail!("a bad signature was not rejected: {:?}", other.err()),
            }
        }
        Ok(())
    })?;
    let floor = rate(args.rounds, encoded.len(), || {
        for (op, m, sig) in &encoded {
            if key_cache.verify(*op, m, sig).is_err() {
                bail!("a valid signature failed");
            }
        }
        Ok(())
    })?;
    let report = ValidationReport {
        valid_per_core_per_s: valid_rate,
        garbage_per_core_per_s: garbage_rate,
        bad_rsa_per_core_per_s: bad_rsa_rate,
        replay_per_core_per_s: replay_rate,
        rsa_verify_floor_per_core_per_s: floor,
        valid_messages: n,
        garbage_messages: garbage.len(),
        mean_message_bytes: valid_bytes.iter().map(|(_, m)| m.len()).sum::<usize>() as f64
            / n.max(1) as f64,
        pinned,
        targets_met: valid_rate >= 25_000.0 && garbage_rate >= 500_000.0,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "messages validated per second on one core ({} valid messages of {:.0} bytes on average, {}pinned):\n\
             valid   {:>10.0}\n\
             garbage {:>10.0}\n\
             bad RSA {:>10.0}\n\
             replay  {:>10.0}\n\
             RSA-verify floor {:.0}/s; targets (25,000 valid, 500,000 garbage) {}",
            report.valid_messages,
            report.mean_message_bytes,
            if pinned { "" } else { "not " },
            report.valid_per_core_per_s,
            report.garbage_per_core_per_s,
            report.bad_rsa_per_core_per_s,
            report.replay_per_core_per_s,
            report.rsa_verify_floor_per_core_per_s,
            if report.targets_met { "met" } else { "NOT met" }
        );
    }
    Ok(())
}
