//! One validator duty of each role built so far, end to end through the runners of a
//! 4-operator committee in one process: the runners (`RunnerOptions::NODE`), QBFT, real BLS
//! (share signing, reconstruction and verification with `ssv-crypto-pipeline`), RSA faked.
//! A duty is measured from its start to the submission by every operator, so a figure is
//! four operators' work; divide by four for one node's cost of the duty.
//!
//! - `roles/aggregator`: selection proof, QBFT on a phase 0 aggregate, aggregate-and-proof
//!   signature.
//! - `roles/sync_committee_contribution`: selection proofs of three subcommittees, QBFT on
//!   three contributions, three contribution-and-proof signatures.
//! - `roles/voluntary_exit`: one pre-consensus round, no QBFT (the cheapest role, for scale).
//! - `roles/proposer_deneb_full`: RANDAO reveal, QBFT on the spec's Deneb testing block
//!   contents (six blobs, ~0.8 MB of value: the encoding, hashing and block-root work of a full
//!   block), block signature, submission of the signed block contents.
//! - `roles/proposer_electra_blinded`: the same with the spec's Electra block blinded (what a
//!   node proposing through MEV-boost decides on).
//!
//! `cargo bench -p ssv-benches --bench roles`

use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use ssv_crypto_pipeline::threshold::{LagrangeCache, reconstruct_signature, split_secret_key};
use ssv_crypto_pipeline::{SecretKey, Signature};
use ssv_protocol::Error;
use ssv_protocol::beacon::altair::SyncCommitteeContribution;
use ssv_protocol::beacon::consensus_data::{
    Contribution, Contributions, DataVersion, Proposal, ValidatorDuty,
};
use ssv_protocol::beacon::phase0;
use ssv_protocol::beacon_vote::{AttestationData, Checkpoint};
use ssv_protocol::chain::ChainSpec;
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::message::{RsaSignature, SignedSsvMessage};
use ssv_protocol::qbft::{Config, Env, OperatorSigner, SignatureVerifier, ValueCheck};
use ssv_protocol::runner::voluntary_exit::exit_object;
use ssv_protocol::runner::{
    AggregatorDomains, AggregatorRunner, BeaconDataRequest, BlockSlashing, ContributionDomains,
    ProposerDomains, ProposerRunner, ReconstructFailure, RunnerOptions, RunnerShare,
    SigningOnlyRole, SigningOnlyRunner, SyncCommitteeContributionRunner, ValidatorAction,
};
use ssv_protocol::types::{BeaconRole, CommitteeMember, CommitteeOperator, DomainType, OperatorId};
use ssz::Encode;

const OPERATORS: u64 = 4;
const SLOT: u64 = 64;

struct FixedSigner(OperatorId);

impl OperatorSigner for FixedSigner {
    fn operator_id(&self) -> OperatorId {
        self.0
    }
    fn sign_ssv_message(&self, _encoded: &[u8]) -> Result<RsaSignature, Error> {
        Ok([self.0 as u8; 256])
    }
}

struct AcceptAll;

impl SignatureVerifier for AcceptAll {
    fn verify(&self, _: &CommitteeOperator, _: &[u8], _: &RsaSignature) -> bool {
        true
    }
}

impl ValueCheck for AcceptAll {
    fn check_value(&self, _: &[u8]) -> Result<(), Error> {
        Ok(())
    }
}

fn member(id: OperatorId) -> CommitteeMember {
    let ids: Vec<OperatorId> = (1..=OPERATORS).collect();
    CommitteeMember {
        operator_id: id,
        committee_id: CommitteeId::from_operators(&ids),
        rsa_public_key_pem: Vec::new(),
        faulty_nodes: 1,
        committee: ids
            .iter()
            .map(|o| CommitteeOperator {
                operator_id: *o,
                rsa_public_key_pem: Vec::new(),
            })
            .collect(),
        domain: DomainType([0, 0, 3, 1]),
    }
}

/// The validator's key, its shares, and what the runners know of it.
struct Keys {
    validator: ssv_crypto_pipeline::PublicKey,
    shares: BTreeMap<OperatorId, SecretKey>,
    share: RunnerShare,
}

fn keys() -> Keys {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let sk = SecretKey::random(&mut rng);
    let ids: Vec<OperatorId> = (1..=OPERATORS).collect();
    let shares: BTreeMap<OperatorId, SecretKey> = split_secret_key(&sk, 3, &ids, &mut rng)
        .expect("split")
        .into_iter()
        .collect();
    let share = RunnerShare {
        validator_index: 9,
        validator_pk: sk.public_key().to_bytes(),
        committee: shares
            .iter()
            .map(|(id, s)| (*id, s.public_key().to_bytes()))
            .collect(),
    };
    Keys {
        validator: sk.public_key(),
        shares,
        share,
    }
}

fn duty(role: BeaconRole, pubkey: [u8; 48]) -> ValidatorDuty {
    ValidatorDuty {
        role: role.to_u64(),
        pubkey,
        slot: SLOT,
        validator_index: 9,
        committee_index: 3,
        // Under 32 members every member aggregates (`is_aggregator`), so the aggregator duty
        // runs to its submission.
        committee_length: 16,
        committees_at_slot: 36,
        validator_committee_index: 11,
        validator_sync_committee_indices: vec![0, 1, 2].try_into().expect("three indices"),
    }
}

fn vote_data() -> AttestationData {
    let root = [7; 32];
    AttestationData {
        slot: SLOT,
        index: 3,
        beacon_block_root: root,
        source: Checkpoint { epoch: 1, root },
        target: Checkpoint { epoch: 2, root },
    }
}

fn aggregate() -> Vec<u8> {
    phase0::AggregateAndProof {
        aggregator_index: 9,
        aggregate: phase0::Attestation {
            aggregation_bits: ssz_types::BitList::with_capacity(128).expect("bits"),
            data: vote_data(),
            signature: [0; 96],
        },
        selection_proof: [0; 96],
    }
    .as_ssz_bytes()
}

fn contributions(proofs: &[([u8; 96], u64)]) -> Vec<u8> {
    let list: Vec<Contribution> = proofs
        .iter()
        .map(|(proof, subnet)| Contribution {
            selection_proof_sig: *proof,
            contribution: SyncCommitteeContribution {
                slot: SLOT,
                beacon_block_root: [7; 32],
                subcommittee_index: *subnet,
                aggregation_bits: ssz_types::BitVector::new(),
                signature: [0; 96],
            },
        })
        .collect();
    let list: Contributions = list.try_into().expect("fits");
    list.as_ssz_bytes()
}

/// The spec's testing block of `fork` (the types suite's "valid {fork} block" vector): its
/// data version and `DataSSZ`, blinded on request.
fn testing_block(fork: &str, blind: bool) -> (u64, Vec<u8>) {
    use base64::Engine as _;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../testdata/ssv-spec-v1.2.2/types/tests/validatorconsensusdata.ValidatorConsensusDataTest_validatorconsensusdata_valid_{fork}_block.json"
    ));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("block vector")).expect("json");
    let ssz = base64::engine::general_purpose::STANDARD
        .decode(json["ConsensusData"]["DataSSZ"].as_str().expect("DataSSZ"))
        .expect("base64");
    let version = DataVersion::from_name(fork).expect("fork").to_u64();
    if !blind {
        return (version, ssz);
    }
    let blinded = match Proposal::from_ssz(version, &ssz).expect("block") {
        Proposal::Deneb(c) => c.block.to_blinded().as_ssz_bytes(),
        Proposal::Electra(c) => c.block.to_blinded().as_ssz_bytes(),
        Proposal::Fulu(c) => c.block.to_blinded().as_ssz_bytes(),
        Proposal::Capella(b) => b.to_blinded().as_ssz_bytes(),
        _ => panic!("a full block"),
    };
    (version, blinded)
}

/// Slashing protection that allows every block (its cost is the storage benches').
struct NoRecords;

impl BlockSlashing for NoRecords {
    fn check(&self, _: &[u8; 48], _: u64) -> Result<(), String> {
        Ok(())
    }
}

/// A runner of any of the benched roles.
enum Runner {
    Proposer(Box<ProposerRunner>, (u64, Vec<u8>)),
    Aggregator(Box<AggregatorRunner>),
    Contribution(Box<SyncCommitteeContributionRunner>),
    Exit(Box<SigningOnlyRunner>),
}

/// Four operators' runners exchanging messages in memory until each has submitted.
fn run_duty(keys: &Keys, make: &dyn Fn(&Keys, OperatorId) -> Runner) -> usize {
    let cache = LagrangeCache::new();
    let mut runners: Vec<Runner> = (1..=OPERATORS).map(|id| make(keys, id)).collect();
    let mut queue: VecDeque<(usize, Vec<ValidatorAction>)> = VecDeque::new();
    for (i, r) in runners.iter_mut().enumerate() {
        let mut out = Vec::new();
        let d = |role| duty(role, keys.share.validator_pk);
        match r {
            Runner::Proposer(r, (version, block)) => {
                let block = Proposal::from_ssz(*version, block).expect("block");
                let duty = ValidatorDuty {
                    slot: block.slot(),
                    validator_index: block.proposer_index(),
                    ..d(BeaconRole::Proposer)
                };
                r.start_duty(
                    duty,
                    ProposerDomains {
                        randao: [2; 32],
                        proposer: [3; 32],
                    },
                    block.slot() / 32,
                    &mut out,
                )
                .expect("start")
            }
            Runner::Aggregator(r) => r
                .start_duty(
                    d(BeaconRole::Aggregator),
                    AggregatorDomains {
                        selection_proof: [5; 32],
                        aggregate_and_proof: [6; 32],
                    },
                    SLOT / 32,
                    &mut out,
                )
                .expect("start"),
            Runner::Contribution(r) => r
                .start_duty(
                    d(BeaconRole::SyncCommitteeContribution),
                    vec![0, 1, 2],
                    ContributionDomains {
                        selection_proof: [8; 32],
                        contribution_and_proof: [9; 32],
                    },
                    &mut out,
                )
                .expect("start"),
            Runner::Exit(r) => r
                .start_duty(
                    SLOT,
                    exit_object(&ChainSpec::MAINNET, SLOT, 9),
                    [4; 32],
                    &mut out,
                )
                .expect("start"),
        }
        queue.push_back((i, out));
    }
    let mut submitted = 0;
    while let Some((i, actions)) = queue.pop_front() {
        let id = i as u64 + 1;
        let signer = FixedSigner(id);
        let env = Env {
            signer: &signer,
            verifier: &AcceptAll,
            value_check: &AcceptAll,
        };
        for action in actions {
            let mut out = Vec::new();
            match action {
                ValidatorAction::Broadcast(m) => {
                    for (j, runner) in runners.iter_mut().enumerate() {
                        if j != i {
                            deliver(runner, j as u64 + 1, m.clone(), &mut queue);
                        }
                    }
                }
                ValidatorAction::Sign { signing_root, .. } => {
                    let sig = keys.shares[&id].sign(&signing_root).to_bytes();
                    match &mut runners[i] {
                        Runner::Proposer(r, _) => r.signed(env, sig, &mut out),
                        Runner::Aggregator(r) => r.signed(env, sig, &mut out),
                        Runner::Contribution(r) => r.signed(env, signing_root, sig, &mut out),
                        Runner::Exit(r) => r.signed(env, sig, &mut out),
                    }
                    .expect("signed");
                }
                ValidatorAction::Reconstruct {
                    signing_root,
                    partials,
                    ..
                } => {
                    let parsed: Vec<(OperatorId, Signature)> = partials
                        .iter()
                        .map(|(o, s)| (*o, Signature::from_bytes(s).expect("partial")))
                        .collect();
                    let verdict = reconstruct_signature(&parsed, &cache)
                        .ok()
                        .filter(|s| s.verify(&keys.validator, &signing_root).is_ok())
                        .map(|s| s.to_bytes())
                        .ok_or(ReconstructFailure::Mismatch);
                    match &mut runners[i] {
                        Runner::Proposer(r, _) => r.reconstructed(signing_root, verdict, &mut out),
                        Runner::Aggregator(r) => r.reconstructed(signing_root, verdict, &mut out),
                        Runner::Contribution(r) => r.reconstructed(signing_root, verdict, &mut out),
                        Runner::Exit(r) => r.reconstructed(verdict, &mut out),
                    }
                }
                ValidatorAction::FetchBeaconData(BeaconDataRequest::AggregateAndProof {
                    ..
                }) => {
                    if let Runner::Aggregator(r) = &mut runners[i] {
                        r.beacon_data(env, 1, aggregate(), &mut out)
                            .expect("decide");
                    }
                }
                ValidatorAction::FetchBeaconData(BeaconDataRequest::Block { .. }) => {
                    if let Runner::Proposer(r, (version, block)) = &mut runners[i] {
                        r.beacon_data(env, *version, block.clone(), &mut out)
                            .expect("decide");
                    }
                }
                ValidatorAction::FetchBeaconData(
                    BeaconDataRequest::SyncCommitteeContributions { candidates, .. },
                ) => {
                    if let Runner::Contribution(r) = &mut runners[i] {
                        r.beacon_data(env, Some((3, contributions(&candidates))), &mut out)
                            .expect("decide");
                    }
                }
                ValidatorAction::Submit(object) => {
                    black_box(object.root());
                    submitted += 1;
                }
                ValidatorAction::SetTimer { .. } => {}
            }
            if !out.is_empty() {
                queue.push_back((i, out));
            }
        }
    }
    submitted
}

fn deliver(
    runner: &mut Runner,
    id: OperatorId,
    msg: SignedSsvMessage,
    queue: &mut VecDeque<(usize, Vec<ValidatorAction>)>,
) {
    let signer = FixedSigner(id);
    let env = Env {
        signer: &signer,
        verifier: &AcceptAll,
        value_check: &AcceptAll,
    };
    let mut out = Vec::new();
    // Refusals (a late partial after the quorum, our own decided relay) are the normal fate
    // of some messages; the duty's completion is what is checked.
    let _ = match runner {
        Runner::Proposer(r, _) => r.process_message(env, msg, &mut out),
        Runner::Aggregator(r) => r.process_message(env, msg, &mut out),
        Runner::Contribution(r) => r.process_message(env, msg, &mut out),
        Runner::Exit(r) => r.process_message(&msg, &mut out),
    };
    if !out.is_empty() {
        queue.push_back((id as usize - 1, out));
    }
}

fn roles(c: &mut Criterion) {
    let keys = keys();
    let config = Config {
        verify_all_signatures: false,
        ..Config::default()
    };
    let mut group = c.benchmark_group("roles");
    group.sample_size(20);
    let aggregator = |k: &Keys, id| {
        Runner::Aggregator(Box::new(AggregatorRunner::new(
            member(id),
            k.share.clone(),
            config,
            ChainSpec::MAINNET,
            RunnerOptions::NODE,
        )))
    };
    let contribution = |k: &Keys, id| {
        let mut r = SyncCommitteeContributionRunner::new(
            member(id),
            k.share.clone(),
            config,
            ChainSpec::MAINNET,
            RunnerOptions::NODE,
        );
        r.set_current_epoch(SLOT / 32);
        Runner::Contribution(Box::new(r))
    };
    let exit = |k: &Keys, id| {
        Runner::Exit(Box::new(SigningOnlyRunner::new(
            SigningOnlyRole::VoluntaryExit,
            member(id),
            k.share.clone(),
            RunnerOptions::NODE,
        )))
    };
    let proposer = |block: (u64, Vec<u8>)| {
        move |k: &Keys, id| {
            let parsed = Proposal::from_ssz(block.0, &block.1).expect("block");
            // The validator is the block's proposer (the node checks it).
            let share = RunnerShare {
                validator_index: parsed.proposer_index(),
                ..k.share.clone()
            };
            let mut r = ProposerRunner::new(
                member(id),
                share,
                config,
                ChainSpec::MAINNET,
                RunnerOptions::NODE,
                std::sync::Arc::new(NoRecords),
            );
            r.set_current_epoch(parsed.slot() / 32);
            Runner::Proposer(Box::new(r), block.clone())
        }
    };
    let deneb_full = proposer(testing_block("deneb", false));
    let electra_blinded = proposer(testing_block("electra", true));
    // Each operator submits once per object: 4 for the block, the aggregate and the exit, 12
    // for the three contributions.
    assert_eq!(
        run_duty(&keys, &deneb_full),
        4,
        "full proposer duty completes"
    );
    assert_eq!(
        run_duty(&keys, &electra_blinded),
        4,
        "blinded proposer duty completes"
    );
    assert_eq!(run_duty(&keys, &aggregator), 4, "aggregator duty completes");
    assert_eq!(
        run_duty(&keys, &contribution),
        12,
        "contribution duty completes"
    );
    assert_eq!(run_duty(&keys, &exit), 4, "exit duty completes");
    group.bench_function("proposer_deneb_full", |b| {
        b.iter(|| run_duty(&keys, &deneb_full))
    });
    group.bench_function("proposer_electra_blinded", |b| {
        b.iter(|| run_duty(&keys, &electra_blinded))
    });
    group.bench_function("aggregator", |b| b.iter(|| run_duty(&keys, &aggregator)));
    group.bench_function("sync_committee_contribution", |b| {
        b.iter(|| run_duty(&keys, &contribution))
    });
    group.bench_function("voluntary_exit", |b| b.iter(|| run_duty(&keys, &exit)));
    group.finish();
}

criterion_group!(benches, roles);
criterion_main!(benches);
