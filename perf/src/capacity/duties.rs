//! The validator duties of a capacity run (proposals, aggregations, sync-committee
//! contributions, builder registrations) at mainnet rates, the other operators' messages
//! for them, and the beacon node's answers to the node's fetches.
//!
//! Rates, for our `V` validators in a network of `N` (`--network-validators`):
//!
//! - one proposer per slot network-wide: the proposer of a slot is drawn from `0..N` and is
//!   ours when it is below `V`, so we propose `V / N` per slot;
//! - every attester runs the aggregator's selection-proof round (as the Go node does) and
//!   aggregates when `is_aggregator` says so: 16 / (committee length) of them, the length
//!   being mainnet's for `N` (`N / 32` validators per slot in `clamp(N / 4096, 1, 64)`
//!   committees);
//! - every sync-committee member runs the contribution selection round each slot for its
//!   subcommittee, contributing when `is_sync_committee_aggregator` says so (one in 8);
//! - each validator registers once every 10 epochs, in the slot where
//!   `index % 320 == slot % 320`.
//!
//! The other operators are played in memory before the measured window: for each duty the
//! whole committee's runners (`ValidatorRunner`, the node's own state machines) run to the
//! end, exchanging messages; what the other operators broadcast (RSA-signed with their real
//! keys, BLS partials with their shares) is what the harness publishes during the window,
//! and our operator's submission (its signature reconstructed and verified against the
//! validator's key) is what the node must submit, root for root.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ssv_crypto_pipeline::threshold::reconstruct_signature;
use ssv_crypto_pipeline::{HashToG2Cache, LagrangeCache, Signature};
use ssv_node::{RsaSigner, Submission};
use ssv_protocol::Error as ProtocolError;
use ssv_protocol::beacon::consensus_data::{
    Contribution, Contributions, DataVersion, ValidatorDuty,
};
use ssv_protocol::beacon::{SYNC_SUBCOMMITTEE_SIZE, electra};
use ssv_protocol::message::{RsaSignature, SignedSsvMessage};
use ssv_protocol::qbft::{
    Config as QbftConfig, Env, OperatorSigner, SignatureVerifier, ValueCheck,
};
use ssv_protocol::runner::validator_registration::{DEFAULT_GAS_LIMIT, registration_object};
use ssv_protocol::runner::{
    AggregatorDomains, BeaconDataRequest, BlockSlashing, ContributionDomains, ProposerDomains,
    ReconstructFailure, RunnerOptions, RunnerShare, ValidatorAction, ValidatorRunner,
    ValidatorStart, is_sync_committee_aggregator,
};
use ssv_protocol::types::{BeaconRole, CommitteeOperator, OperatorId, Root};
use ssz::Encode as _;

use super::{CHAIN, Fixture, SLOTS_PER_EPOCH, h64, root_of, vote_for};

/// Each validator registers once in this many slots (10 epochs, as the Go node).
pub const REGISTRATION_PERIOD_SLOTS: u64 = 10 * SLOTS_PER_EPOCH;
/// Mainnet's `SYNC_COMMITTEE_SIZE`.
const SYNC_COMMITTEE_SIZE: u64 = 512;
/// Transactions of a full block's payload, and their size: about 100 KB of payload, a
/// mainnet block's typical size.
const BLOCK_TRANSACTIONS: usize = 200;
const TRANSACTION_BYTES: usize = 500;
/// The graffiti of the benchmark's blocks.
const GRAFFITI: [u8; 32] = *b"ssv-perf capacity\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// The duty types of a capacity run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DutyType {
    /// Attestations (committee duty).
    Attestation,
    /// Sync-committee messages (committee duty).
    SyncMessage,
    /// Block proposals.
    Proposal,
    /// Aggregate and proofs.
    Aggregation,
    /// Sync-committee contribution and proofs.
    Contribution,
    /// Builder registrations.
    Registration,
}

impl DutyType {
    /// Every type, in report order.
    pub const ALL: [DutyType; 6] = [
        DutyType::Attestation,
        DutyType::SyncMessage,
        DutyType::Proposal,
        DutyType::Aggregation,
        DutyType::Contribution,
        DutyType::Registration,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            DutyType::Attestation => "attestations",
            DutyType::SyncMessage => "sync_messages",
            DutyType::Proposal => "proposals",
            DutyType::Aggregation => "aggregations",
            DutyType::Contribution => "contributions",
            DutyType::Registration => "registrations",
        }
    }
}

/// The chain parameters that set the duty rates.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Validators of the whole network (`N`).
    pub network_validators: u64,
}

impl Rates {
    /// Beacon committees per slot (consensus spec `get_committee_count_per_slot`).
    pub fn committees_at_slot(&self) -> u64 {
        (self.network_validators / SLOTS_PER_EPOCH / 128).clamp(1, 64)
    }

    /// Members of a beacon committee.
    pub fn committee_length(&self) -> u64 {
        (self.network_validators / SLOTS_PER_EPOCH / self.committees_at_slot()).max(1)
    }

    /// The proposer of `slot` network-wide.
    pub fn proposer(&self, seed: u64, slot: u64) -> u64 {
        h64(&[seed, slot, 0x70]) % self.network_validators.max(1)
    }

    /// The proposer of `slot` when it is one of our `validators` (indices below it).
    fn proposer_at(&self, seed: u64, slot: u64, validators: u64) -> Option<u64> {
        let p = self.proposer(seed, slot);
        (p < validators).then_some(p)
    }
}

/// The benchmark chain's signing domains of the validator duties (distinct, arbitrary: the
/// node takes them from the duty).
fn domains(tag: u64) -> [u8; 32] {
    root_of(4, tag)
}

/// The validator duties of `slot`: the committee, the validator and the start.
pub fn slot_duties(
    seed: u64,
    fx: &Fixture,
    rates: Rates,
    slot: u64,
    committee_of: &[usize],
) -> Vec<(usize, u64, DutyType, ValidatorStart)> {
    let validators = fx.validator_pk.len() as u64;
    let epoch = slot / SLOTS_PER_EPOCH;
    let mut out = Vec::new();
    let duty = |role: BeaconRole, v: u64| ValidatorDuty {
        role: role.to_u64(),
        pubkey: fx.validator_pk[v as usize].to_bytes(),
        slot,
        validator_index: v,
        committee_index: 0,
        committee_length: 0,
        committees_at_slot: 0,
        validator_committee_index: 0,
        validator_sync_committee_indices: Default::default(),
    };
    if let Some(v) = rates.proposer_at(seed, slot, validators) {
        out.push((
            committee_of[v as usize],
            v,
            DutyType::Proposal,
            ValidatorStart::Proposal {
                duty: duty(BeaconRole::Proposer, v),
                domains: ProposerDomains {
                    randao: domains(1),
                    proposer: domains(2),
                },
            },
        ));
    }
    for v in 0..validators {
        let ci = committee_of[v as usize];
        if super::attester_slot(seed, v, epoch) == slot {
            let (index, position) = attester_position(seed, v, epoch, rates);
            out.push((
                ci,
                v,
                DutyType::Aggregation,
                ValidatorStart::Aggregation {
                    duty: ValidatorDuty {
                        committee_index: index,
                        committee_length: rates.committee_length(),
                        committees_at_slot: rates.committees_at_slot(),
                        validator_committee_index: position,
                        ..duty(BeaconRole::Aggregator, v)
                    },
                    domains: AggregatorDomains {
                        selection_proof: domains(3),
                        aggregate_and_proof: domains(4),
                    },
                },
            ));
        }
        if super::is_sync_member(v) {
            let index = h64(&[seed, v, 0x5c]) % SYNC_COMMITTEE_SIZE;
            let Ok(indices) = vec![index].try_into() else {
                continue;
            };
            out.push((
                ci,
                v,
                DutyType::Contribution,
                ValidatorStart::Contribution {
                    duty: ValidatorDuty {
                        validator_sync_committee_indices: indices,
                        ..duty(BeaconRole::SyncCommitteeContribution, v)
                    },
                    subnets: vec![index / SYNC_SUBCOMMITTEE_SIZE as u64],
                    domains: ContributionDomains {
                        selection_proof: domains(5),
                        contribution_and_proof: domains(6),
                    },
                },
            ));
        }
        if v % REGISTRATION_PERIOD_SLOTS == slot % REGISTRATION_PERIOD_SLOTS {
            let pubkey = fx.validator_pk[v as usize].to_bytes();
            out.push((
                ci,
                v,
                DutyType::Registration,
                ValidatorStart::Registration {
                    pubkey,
                    slot,
                    object: registration_object(
                        pubkey[..20].try_into().unwrap_or([0; 20]),
                        DEFAULT_GAS_LIMIT,
                        epoch * SLOTS_PER_EPOCH * CHAIN.slot_ms() / 1000,
                        pubkey,
                    ),
                    domain: domains(7),
                },
            ));
        }
    }
    out
}

/// The beacon committee of attester `v` in `epoch` and its position in it.
pub fn attester_position(seed: u64, v: u64, epoch: u64, rates: Rates) -> (u64, u64) {
    let r = h64(&[seed, v, epoch, 0xa7]);
    (
        r % rates.committees_at_slot(),
        (r >> 8) % rates.committee_length(),
    )
}

/// The beacon node of the run: its answers to the node's fetches, the same for the node under
/// test and for the committee played in memory.
pub struct Beacon {
    /// Chain parameters.
    pub rates: Rates,
    /// Our validators' indices by public key.
    pub index_of: HashMap<[u8; 48], u64>,
}

impl Beacon {
    /// The block of `slot` for `proposer` with its RANDAO reveal: full (about 100 KB of
    /// transactions) in even slots, blinded (as a builder's) in odd ones.
    pub fn block(&self, slot: u64, proposer: u64, randao_reveal: [u8; 96]) -> (String, Vec<u8>) {
        let s = slot.to_le_bytes();
        let block =
            ssv_devnet::beacon_objects::electra_block(ssv_devnet::beacon_objects::BlockInputs {
                slot,
                proposer_index: proposer,
                parent_root: root_of(1, slot - 1),
                randao_reveal,
                graffiti: GRAFFITI,
                fee_recipient: [0x11; 20],
                timestamp: slot * CHAIN.slot_ms() / 1000,
                transactions: (0..BLOCK_TRANSACTIONS)
                    .map(|i| {
                        let mut tx = vec![0u8; TRANSACTION_BYTES];
                        tx[..8].copy_from_slice(&s);
                        tx[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                        tx
                    })
                    .collect(),
            });
        let ssz = ssv_devnet::beacon_objects::block_ssz(block, slot % 2 == 1);
        (DataVersion::Electra.name().to_string(), ssz)
    }

    /// The aggregate and proof of `aggregator` (committee `committee_index`) at `slot`.
    pub fn aggregate(
        &self,
        slot: u64,
        committee_index: u64,
        aggregator: u64,
        selection_proof: [u8; 96],
    ) -> Result<(String, Vec<u8>), String> {
        let aggregate = ssv_devnet::beacon_objects::committee_aggregate(
            vote_for(slot).attestation_data(slot),
            committee_index,
            self.rates.committee_length(),
        )?;
        let ap = electra::AggregateAndProof {
            aggregator_index: aggregator,
            aggregate,
            selection_proof,
        };
        Ok((DataVersion::Electra.name().to_string(), ap.as_ssz_bytes()))
    }

    /// The contributions of the subcommittees whose selection proof makes the member an
    /// aggregator (`None`: none does).
    pub fn contributions(
        &self,
        slot: u64,
        candidates: &[([u8; 96], u64)],
    ) -> Result<Option<(u64, Vec<u8>)>, String> {
        let mut list = Vec::new();
        for (proof, subnet) in candidates {
            if !is_sync_committee_aggregator(proof) {
                continue;
            }
            list.push(Contribution {
                selection_proof_sig: *proof,
                contribution: ssv_devnet::beacon_objects::subcommittee_contribution(
                    slot,
                    vote_for(slot).block_root,
                    *subnet,
                    0..SYNC_SUBCOMMITTEE_SIZE,
                )?,
            });
        }
        if list.is_empty() {
            return Ok(None);
        }
        let list: Contributions = list.try_into().map_err(|e| format!("{e:?}"))?;
        Ok(Some((DataVersion::Electra.to_u64(), list.as_ssz_bytes())))
    }

    /// Answers a fetch of the node under test on its reply channel; hands back anything
    /// else (a submission).
    pub fn answer(&self, s: Submission) -> Option<Submission> {
        let (reply, event) = match s {
            Submission::FetchBlock {
                key,
                slot,
                randao_reveal,
                reply,
            } => {
                let ssv_protocol::runner::RunnerKey::Validator(pubkey, _) = key else {
                    return None;
                };
                let data = match self.index_of.get(&pubkey) {
                    Some(&v) => Ok(self.block(slot, v, randao_reveal)),
                    None => Err("not one of our validators".to_string()),
                };
                (reply, ssv_node::ShardEvent::BeaconData { key, data })
            }
            Submission::FetchAggregate {
                key,
                slot,
                committee_index,
                validator_index,
                selection_proof,
                reply,
            } => {
                let data = self.aggregate(slot, committee_index, validator_index, selection_proof);
                (reply, ssv_node::ShardEvent::BeaconData { key, data })
            }
            Submission::FetchContributions {
                key,
                slot,
                candidates,
                reply,
            } => {
                let data = self.contributions(slot, &candidates);
                (reply, ssv_node::ShardEvent::Contributions { key, data })
            }
            other => return Some(other),
        };
        if reply.send_blocking(event).is_err() {
            eprintln!("capacity: a shard stopped before its beacon data arrived");
        }
        None
    }
}

/// A submission of the node as the beacon object it carries: its type and root (over the
/// signature too). `None` for the committee duties' submissions.
pub fn submitted(s: &Submission) -> Option<(DutyType, Root)> {
    Some(match s {
        Submission::Block(p) => (DutyType::Proposal, p.root()),
        Submission::Aggregate(a) => (DutyType::Aggregation, a.root()),
        Submission::Contribution(c) => (
            DutyType::Contribution,
            tree_hash::TreeHash::tree_hash_root(&**c).0,
        ),
        Submission::Registration(r) => (
            DutyType::Registration,
            tree_hash::TreeHash::tree_hash_root(r).0,
        ),
        Submission::Exit(_)
        | Submission::Attestations(_)
        | Submission::SyncMessages(_)
        | Submission::FetchBlock { .. }
        | Submission::FetchAggregate { .. }
        | Submission::FetchContributions { .. } => return None,
    })
}

/// What playing one duty in memory gave.
pub struct Played {
    /// The other operators' messages, encoded, in the order they sent them.
    pub messages: Vec<Vec<u8>>,
    /// The root of the object our operator submits (`None`: the duty ends without one, e.g.
    /// a selection proof that does not make the validator an aggregator).
    pub expected: Option<Root>,
}

/// The played operators trust each other (the node under test checks everything it gets).
struct Trusting;

impl SignatureVerifier for Trusting {
    fn verify(&self, _: &CommitteeOperator, _: &[u8], _: &RsaSignature) -> bool {
        true
    }
}

impl ValueCheck for Trusting {
    fn check_value(&self, _: &[u8]) -> Result<(), ProtocolError> {
        Ok(())
    }
}

impl BlockSlashing for Trusting {
    fn check(&self, _: &[u8; 48], _: u64) -> Result<(), String> {
        Ok(())
    }
}

/// Runs one validator duty through the whole committee of `committee` in memory.
pub fn play(
    fx: &Fixture,
    committee: usize,
    v: u64,
    start: &ValidatorStart,
    beacon: &Beacon,
    hash_cache: &HashToG2Cache,
    lagrange: &LagrangeCache,
) -> anyhow::Result<Played> {
    let c = &fx.committees[committee];
    // The node's operator in this committee (one node hosts several operator IDs).
    let ours = c.member.operator_id;
    let vi = v as usize;
    let (_, slot, role) = start.target();
    let share = RunnerShare {
        validator_index: v,
        validator_pk: fx.validator_pk[vi].to_bytes(),
        committee: fx.share_pks[vi]
            .iter()
            .map(|(o, pk)| (*o, pk.to_bytes()))
            .collect(),
    };
    let config = QbftConfig {
        verify_all_signatures: false,
        ..QbftConfig::default()
    };
    let ops = &c.operators;
    let mut runners = Vec::with_capacity(ops.len());
    for &op in ops {
        let mut member = c.member.clone();
        member.operator_id = op;
        let runner = ValidatorRunner::new(
            role,
            member,
            share.clone(),
            config,
            CHAIN,
            RunnerOptions::NODE,
            Arc::new(Trusting),
        )
        .ok_or_else(|| anyhow::anyhow!("{role:?} is not a validator role"))?;
        let mut runner = runner;
        runner.set_current_epoch(slot / SLOTS_PER_EPOCH);
        runners.push(runner);
    }
    // Our operator's messages are never published (the node under test sends its own), but
    // its signature travels inside the others' decided messages: every operator signs for
    // real.
    let signers: Vec<OwnedRsaSigner> = ops
        .iter()
        .map(|&op| OwnedRsaSigner(op, fx.keys[&op].clone()))
        .collect();
    let epoch = slot / SLOTS_PER_EPOCH;
    let mut played = Played {
        messages: Vec::new(),
        expected: None,
    };
    // Actions to apply per operator, and messages each has yet to take (a message its runner
    // refused is kept and offered again after the runner moves on, as the node keeps early
    // messages).
    let mut actions: VecDeque<(usize, ValidatorAction)> = VecDeque::new();
    let mut inbox: Vec<Vec<SignedSsvMessage>> = vec![Vec::new(); ops.len()];
    for (i, r) in runners.iter_mut().enumerate() {
        let mut out = Vec::new();
        r.start(start.clone(), epoch, &mut out)?;
        actions.extend(out.into_iter().map(|a| (i, a)));
    }
    loop {
        let mut progressed = false;
        while let Some((i, action)) = actions.pop_front() {
            progressed = true;
            let env = Env {
                signer: &signers[i],
                verifier: &Trusting,
                value_check: &Trusting,
            };
            let op = ops[i];
            let mut out = Vec::new();
            match action {
                ValidatorAction::Broadcast(m) => {
                    if op != ours {
                        played.messages.push(m.to_ssz());
                    }
                    for (j, inbox) in inbox.iter_mut().enumerate() {
                        if j != i {
                            inbox.push(m.clone());
                        }
                    }
                }
                ValidatorAction::Sign { signing_root, .. } => {
                    let sig = hash_cache.sign(&fx.shares[vi][&op], &signing_root);
                    runners[i].signed(env, signing_root, sig.to_bytes(), &mut out)?;
                }
                ValidatorAction::Reconstruct {
                    signing_root,
                    partials,
                    ..
                } => {
                    let parsed: Vec<(OperatorId, Signature)> = partials
                        .iter()
                        .filter_map(|(o, s)| Some((*o, Signature::from_bytes(s).ok()?)))
                        .collect();
                    let reconstructed = reconstruct_signature(&parsed, lagrange).ok();
                    // Only our operator's signature becomes an expected submission: it alone
                    // is verified against the validator's key.
                    let verdict = reconstructed
                        .filter(|s| {
                            op != ours || s.verify(&fx.validator_pk[vi], &signing_root).is_ok()
                        })
                        .map(|s| s.to_bytes())
                        .ok_or(ReconstructFailure::Mismatch);
                    runners[i].reconstructed(signing_root, verdict, &mut out);
                }
                ValidatorAction::FetchBeaconData(request) => match request {
                    BeaconDataRequest::Block {
                        slot,
                        validator_index,
                        randao_reveal,
                    } => {
                        let (version, ssz) = beacon.block(slot, validator_index, randao_reveal);
                        let version = DataVersion::from_name(&version)
                            .ok_or_else(|| anyhow::anyhow!("fork {version}"))?;
                        runners[i].beacon_data(env, version.to_u64(), ssz, &mut out)?;
                    }
                    BeaconDataRequest::AggregateAndProof {
                        slot,
                        committee_index,
                        validator_index,
                        selection_proof,
                        ..
                    } => {
                        let (_, ssz) = beacon
                            .aggregate(slot, committee_index, validator_index, selection_proof)
                            .map_err(anyhow::Error::msg)?;
                        runners[i].beacon_data(
                            env,
                            DataVersion::Electra.to_u64(),
                            ssz,
                            &mut out,
                        )?;
                    }
                    BeaconDataRequest::SyncCommitteeContributions { slot, candidates } => {
                        let data = beacon
                            .contributions(slot, &candidates)
                            .map_err(anyhow::Error::msg)?;
                        runners[i].contributions(env, data, &mut out)?;
                    }
                },
                ValidatorAction::Submit(object) => {
                    if op == ours {
                        played.expected = Some(object.root());
                    }
                }
                ValidatorAction::SetTimer { .. } => {}
            }
            actions.extend(out.into_iter().map(|a| (i, a)));
        }
        for (j, runner) in runners.iter_mut().enumerate() {
            let env = Env {
                signer: &signers[j],
                verifier: &Trusting,
                value_check: &Trusting,
            };
            let mut kept = Vec::new();
            for m in std::mem::take(&mut inbox[j]) {
                let mut out = Vec::new();
                match runner.process_message(env, m.clone(), &mut out) {
                    Ok(()) => {
                        progressed |= !out.is_empty();
                        actions.extend(out.into_iter().map(|a| (j, a)));
                    }
                    Err(_) => kept.push(m),
                }
            }
            inbox[j] = kept;
        }
        if !progressed && actions.is_empty() {
            break;
        }
    }
    Ok(played)
}

/// The RSA signer of another operator (owning its key, so the played committee can hold it).
struct OwnedRsaSigner(OperatorId, Arc<ssv_crypto_pipeline::OperatorSecretKey>);

impl OperatorSigner for OwnedRsaSigner {
    fn operator_id(&self) -> OperatorId {
        self.0
    }
    fn sign_ssv_message(&self, encoded: &[u8]) -> Result<RsaSignature, ProtocolError> {
        RsaSigner {
            id: self.0,
            key: &self.1,
        }
        .sign_ssv_message(encoded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_committees() {
        let r = Rates {
            network_validators: 1_000_000,
        };
        assert_eq!(r.committees_at_slot(), 64);
        assert_eq!(r.committee_length(), 488);
        let small = Rates {
            network_validators: 20_000,
        };
        assert_eq!(small.committees_at_slot(), 4);
        assert_eq!(small.committee_length(), 156);
    }

    #[test]
    fn proposals_at_the_network_rate() {
        let r = Rates {
            network_validators: 1_000,
        };
        let ours = (0..10_000)
            .filter(|s| r.proposer_at(1, *s, 100).is_some())
            .count();
        // 100 of 1000 validators: about one slot in ten.
        assert!((800..1200).contains(&ours), "{ours}");
    }
}
