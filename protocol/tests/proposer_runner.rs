//! The proposer runner as the node runs it (loopback, hardened checks), four operators in
//! memory: the harness plays the caller (signing, reconstruction, the beacon node) and relays
//! every broadcast to the other runners. The blocks are the spec's testing blocks of each fork
//! (the types suite's "valid {fork} block" vectors), full and blinded.
//!
//! Checked: every operator submits the same signed block, signed over the block's root under
//! the proposer domain; a beacon node that returns a block for another slot or another
//! proposer is refused before consensus; an operator whose slashing records refuse the slot
//! never signs the block, and the other three still complete.

#![cfg(feature = "spec-vectors")]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use ssv_protocol::Error;
use ssv_protocol::beacon::consensus_data::{DataVersion, Proposal, ValidatorConsensusData};
use ssv_protocol::chain::ChainSpec;
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::message::RsaSignature;
use ssv_protocol::partial_sig::BlsSignature;
use ssv_protocol::qbft::{Config, Env, OperatorSigner, SignatureVerifier, ValueCheck};
use ssv_protocol::runner::{
    BeaconDataRequest, BeaconObject, BlockSlashing, Phase, ProposerDomains, ProposerRunner,
    RunnerOptions, RunnerShare, ValidatorAction,
};
use ssv_protocol::signing::compute_signing_root;
use ssv_protocol::types::{
    BlsPublicKey, CommitteeMember, CommitteeOperator, DomainType, OperatorId, Root, Slot,
};

struct Signer(OperatorId);
impl OperatorSigner for Signer {
    fn operator_id(&self) -> OperatorId {
        self.0
    }
    fn sign_ssv_message(&self, m: &[u8]) -> Result<RsaSignature, Error> {
        let d: [u8; 32] = Sha256::digest(m).into();
        let mut s = [self.0 as u8; 256];
        s[..32].copy_from_slice(&d);
        Ok(s)
    }
}
struct AnyRsa;
impl SignatureVerifier for AnyRsa {
    fn verify(&self, _: &CommitteeOperator, _: &[u8], _: &RsaSignature) -> bool {
        true
    }
}
impl ValueCheck for AnyRsa {
    fn check_value(&self, _: &[u8]) -> Result<(), Error> {
        Ok(())
    }
}

/// Slashing records that refuse some slots.
struct Refuse(Vec<Slot>);
impl BlockSlashing for Refuse {
    fn check(&self, _: &BlsPublicKey, slot: Slot) -> Result<(), String> {
        if self.0.contains(&slot) {
            Err(format!("a block at slot {slot} was already signed"))
        } else {
            Ok(())
        }
    }
}

const DOMAINS: ProposerDomains = ProposerDomains {
    randao: [2; 32],
    proposer: [3; 32],
};

fn member(me: OperatorId) -> CommitteeMember {
    let ids: Vec<u64> = vec![1, 2, 3, 4];
    CommitteeMember {
        operator_id: me,
        committee_id: CommitteeId::from_operators(&ids),
        rsa_public_key_pem: vec![],
        faulty_nodes: 1,
        committee: ids
            .iter()
            .map(|&i| CommitteeOperator {
                operator_id: i,
                rsa_public_key_pem: vec![],
            })
            .collect(),
        domain: DomainType::SPEC_TESTING,
    }
}

/// The spec's testing block of `fork` (its `DataSSZ`) and the duty that goes with it.
fn testing_block(fork: &str) -> (u64, Vec<u8>, ValidatorConsensusData) {
    use base64::Engine as _;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../testdata/ssv-spec-v1.2.2/types/tests/validatorconsensusdata.ValidatorConsensusDataTest_validatorconsensusdata_valid_{fork}_block.json"
    ));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let ssz = base64::engine::general_purpose::STANDARD
        .decode(v["ConsensusData"]["DataSSZ"].as_str().unwrap())
        .unwrap();
    let version = DataVersion::from_name(fork).unwrap().to_u64();
    let proposal = Proposal::from_ssz(version, &ssz).unwrap();
    // The duty of the block's slot and proposer (the node checks both).
    let duty = ssv_protocol::beacon::consensus_data::ValidatorDuty {
        role: ssv_protocol::types::BeaconRole::Proposer.to_u64(),
        pubkey: [9; 48],
        slot: proposal.slot(),
        validator_index: proposal.proposer_index(),
        committee_index: 0,
        committee_length: 0,
        committees_at_slot: 0,
        validator_committee_index: 0,
        validator_sync_committee_indices: Vec::new().try_into().unwrap(),
    };
    let cd = ValidatorConsensusData::new(duty, version, ssz.clone()).unwrap();
    (version, ssz, cd)
}

/// The blinded form of a full block's `DataSSZ`.
fn blinded(version: u64, ssz: &[u8]) -> Vec<u8> {
    use ssz::Encode;
    match Proposal::from_ssz(version, ssz).unwrap() {
        Proposal::Capella(b) => b.to_blinded().as_ssz_bytes(),
        Proposal::Deneb(c) => c.block.to_blinded().as_ssz_bytes(),
        Proposal::Electra(c) => c.block.to_blinded().as_ssz_bytes(),
        Proposal::Fulu(c) => c.block.to_blinded().as_ssz_bytes(),
        other => panic!("not a full block: {other:?}"),
    }
}

/// What the fake beacon node answers to a block request.
#[derive(Clone)]
enum BeaconNode {
    Honest(Vec<u8>),
    Lying(Vec<u8>),
}

struct Operator {
    runner: ProposerRunner,
    signer: Signer,
    beacon: BeaconNode,
    version: u64,
    submitted: Vec<(Root, BeaconObject)>,
    signed_roots: Vec<Root>,
    errors: Vec<Error>,
}

fn partial(op: OperatorId, root: &Root) -> BlsSignature {
    let d: [u8; 32] = Sha256::new()
        .chain_update(op.to_le_bytes())
        .chain_update(root)
        .finalize()
        .into();
    let mut s = [0u8; 96];
    s[..32].copy_from_slice(&d);
    s
}

/// Four operators; `refusing` are those whose slashing records refuse the block's slot.
struct Net {
    ops: BTreeMap<OperatorId, Operator>,
    queue: VecDeque<(OperatorId, ValidatorAction)>,
    /// An operator whose partial signatures are garbage.
    corrupt: Option<OperatorId>,
    /// Reconstructions wait until nothing else is queued (as when the crypto pool is busy:
    /// every partial has arrived by the time the verdict comes).
    slow_reconstruction: bool,
}

impl Net {
    fn new(version: u64, block: &[u8], cd: &ValidatorConsensusData, refusing: &[u64]) -> Self {
        let share = RunnerShare {
            validator_index: cd.duty.validator_index,
            validator_pk: cd.duty.pubkey,
            committee: (1..=4).map(|i| (i, [i as u8; 48])).collect(),
        };
        let mut ops = BTreeMap::new();
        for id in 1..=4u64 {
            let slots = if refusing.contains(&id) {
                vec![cd.duty.slot]
            } else {
                vec![]
            };
            let mut runner = ProposerRunner::new(
                member(id),
                share.clone(),
                Config::default(),
                ChainSpec::MAINNET,
                RunnerOptions::NODE,
                Arc::new(Refuse(slots)),
            );
            runner.set_current_epoch(ChainSpec::MAINNET.epoch_of(cd.duty.slot));
            ops.insert(
                id,
                Operator {
                    runner,
                    signer: Signer(id),
                    beacon: BeaconNode::Honest(block.to_vec()),
                    version,
                    submitted: Vec::new(),
                    signed_roots: Vec::new(),
                    errors: Vec::new(),
                },
            );
        }
        Net {
            ops,
            queue: VecDeque::new(),
            corrupt: None,
            slow_reconstruction: false,
        }
    }

    fn start(&mut self, cd: &ValidatorConsensusData) {
        let epoch = ChainSpec::MAINNET.epoch_of(cd.duty.slot);
        for (id, op) in &mut self.ops {
            let mut out = Vec::new();
            op.runner
                .start_duty(cd.duty.clone(), DOMAINS, epoch, &mut out)
                .unwrap();
            self.queue.extend(out.into_iter().map(|a| (*id, a)));
        }
    }

    /// Runs until nothing is left to do.
    fn run(&mut self) {
        let mut steps = 0;
        while let Some((id, action)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "no progress");
            if self.slow_reconstruction
                && matches!(action, ValidatorAction::Reconstruct { .. })
                && self
                    .queue
                    .iter()
                    .any(|(_, a)| !matches!(a, ValidatorAction::Reconstruct { .. }))
            {
                self.queue.push_back((id, action));
                continue;
            }
            let mut out = Vec::new();
            let op = self.ops.get_mut(&id).unwrap();
            let env = Env {
                signer: &op.signer,
                verifier: &AnyRsa,
                value_check: &AnyRsa,
            };
            let result = match action {
                ValidatorAction::Broadcast(msg) => {
                    for (other, o) in self.ops.iter_mut() {
                        if *other == id {
                            continue;
                        }
                        let env = Env {
                            signer: &o.signer,
                            verifier: &AnyRsa,
                            value_check: &AnyRsa,
                        };
                        let mut out = Vec::new();
                        if let Err(e) = o.runner.process_message(env, msg.clone(), &mut out) {
                            o.errors.push(e);
                        }
                        self.queue.extend(out.into_iter().map(|a| (*other, a)));
                    }
                    Ok(())
                }
                ValidatorAction::Sign { signing_root, .. } => {
                    op.signed_roots.push(signing_root);
                    let sig = if self.corrupt == Some(id) {
                        [0xEE; 96]
                    } else {
                        partial(id, &signing_root)
                    };
                    op.runner.signed(env, sig, &mut out)
                }
                ValidatorAction::Reconstruct {
                    signing_root,
                    partials,
                    ..
                } => {
                    assert!(partials.len() >= 3, "a quorum of partials");
                    let bad: Vec<OperatorId> = partials
                        .iter()
                        .filter(|(signer, sig)| *sig != partial(*signer, &signing_root))
                        .map(|(signer, _)| *signer)
                        .collect();
                    let verdict = if bad.is_empty() {
                        Ok([0xAB; 96])
                    } else {
                        Err(ssv_protocol::runner::ReconstructFailure::InvalidPartials(
                            bad,
                        ))
                    };
                    op.runner.reconstructed(signing_root, verdict, &mut out);
                    Ok(())
                }
                ValidatorAction::FetchBeaconData(BeaconDataRequest::Block {
                    randao_reveal,
                    ..
                }) => {
                    assert_eq!(randao_reveal, [0xAB; 96]);
                    let block = match &op.beacon {
                        BeaconNode::Honest(b) | BeaconNode::Lying(b) => b.clone(),
                    };
                    op.runner.beacon_data(env, op.version, block, &mut out)
                }
                ValidatorAction::Submit(object) => {
                    op.submitted.push((object.root(), object));
                    Ok(())
                }
                ValidatorAction::SetTimer { .. } | ValidatorAction::FetchBeaconData(_) => Ok(()),
            };
            if let Err(e) = result {
                self.ops.get_mut(&id).unwrap().errors.push(e);
            }
            self.queue.extend(out.into_iter().map(|a| (id, a)));
        }
    }
}

#[test]
fn every_fork_full_and_blinded_is_proposed_signed_and_submitted_alike() {
    for fork in ["capella", "deneb", "electra", "fulu"] {
        let (version, full, cd) = testing_block(fork);
        let full_root = cd.proposal().unwrap().block_root();
        for (kind, block) in [("full", full.clone()), ("blinded", blinded(version, &full))] {
            let proposal = Proposal::from_ssz(version, &block).unwrap();
            assert_eq!(proposal.is_blinded(), kind == "blinded", "{fork} {kind}");
            assert_eq!(
                proposal.block_root(),
                full_root,
                "{fork}: blinded root = full root"
            );
            let mut net = Net::new(version, &block, &cd, &[]);
            net.start(&cd);
            net.run();
            let post_root = compute_signing_root(full_root, DOMAINS.proposer);
            let mut roots = Vec::new();
            for (id, op) in &net.ops {
                assert_eq!(
                    op.runner.base().phase(),
                    Phase::Finished,
                    "{fork} {kind} op {id}"
                );
                assert!(
                    op.signed_roots.contains(&post_root),
                    "{fork} {kind} op {id}"
                );
                let [(root, BeaconObject::Proposal(signed))] = &op.submitted[..] else {
                    panic!(
                        "{fork} {kind} op {id}: one signed block, got {:?}",
                        op.submitted.len()
                    );
                };
                assert_eq!(
                    signed.proposal.to_ssz(),
                    block,
                    "{fork} {kind}: the block proposed"
                );
                assert_eq!(signed.signature, [0xAB; 96]);
                roots.push(*root);
            }
            roots.dedup();
            assert_eq!(
                roots.len(),
                1,
                "{fork} {kind}: every operator submits the same block"
            );
        }
    }
}

#[test]
fn a_block_for_another_slot_or_proposer_is_refused_before_consensus() {
    use ssz::Encode;
    let (version, full, cd) = testing_block("capella");
    let Proposal::Capella(block) = Proposal::from_ssz(version, &full).unwrap() else {
        panic!("capella");
    };
    let mut wrong_slot = block.clone();
    wrong_slot.slot += 1;
    let mut wrong_proposer = block.clone();
    wrong_proposer.proposer_index += 1;
    for (what, lie) in [
        ("slot", wrong_slot.as_ssz_bytes()),
        ("proposer", wrong_proposer.as_ssz_bytes()),
        ("bytes", vec![0xFF; 100]),
    ] {
        let mut net = Net::new(version, &full, &cd, &[]);
        for op in net.ops.values_mut() {
            op.beacon = BeaconNode::Lying(lie.clone());
        }
        net.start(&cd);
        net.run();
        for (id, op) in &net.ops {
            assert!(!op.errors.is_empty(), "{what}: op {id} refused the block");
            assert_eq!(
                op.runner.base().phase(),
                Phase::PreConsensus,
                "{what}: op {id} started no consensus"
            );
            assert!(op.submitted.is_empty(), "{what}: op {id}");
            assert_eq!(
                op.signed_roots.len(),
                1,
                "{what}: op {id} signed only its RANDAO"
            );
        }
    }
}

#[test]
fn an_operator_whose_records_refuse_the_slot_never_signs_the_block() {
    let (version, full, cd) = testing_block("deneb");
    let post_root = compute_signing_root(cd.proposal().unwrap().block_root(), DOMAINS.proposer);
    let mut net = Net::new(version, &full, &cd, &[3]);
    net.start(&cd);
    net.run();
    for (id, op) in &net.ops {
        if *id == 3 {
            assert!(
                !op.signed_roots.contains(&post_root),
                "op 3 signed the block"
            );
            assert!(op.submitted.is_empty());
        } else {
            assert_eq!(op.submitted.len(), 1, "op {id} completes without op 3");
        }
    }
}

/// The publish body of every fork, full and blinded, decodes back to the same signed block
/// (and root); a body of the other blindness or cut short is refused.
#[test]
fn signed_blocks_round_trip_through_their_publish_body() {
    use ssv_protocol::beacon::consensus_data::SignedProposal;
    for fork in ["capella", "deneb", "electra", "fulu"] {
        let (version, full, _) = testing_block(fork);
        for (blind, block) in [(false, full.clone()), (true, blinded(version, &full))] {
            let signed = Proposal::from_ssz(version, &block)
                .unwrap()
                .signed([0x5A; 96]);
            let body = signed.to_ssz();
            let back = SignedProposal::from_ssz(version, blind, &body).unwrap();
            assert_eq!(back, signed, "{fork} blinded={blind}");
            assert_eq!(back.root(), signed.root());
            assert!(
                SignedProposal::from_ssz(version, !blind, &body).is_err(),
                "{fork} blinded={blind}: read as the other kind"
            );
            assert!(SignedProposal::from_ssz(version, blind, &body[..body.len() / 2]).is_err());
        }
    }
}

/// An operator sending garbage partials (RANDAO and block) does not stop the other three:
/// its partials are dropped when reconstruction names it, and the quorum that the fourth
/// operator's partial completes (often while the first reconstruction was in flight) is
/// reconstructed again.
#[test]
fn a_corrupt_operator_does_not_stop_the_others() {
    let (version, full, cd) = testing_block("electra");
    let mut net = Net::new(version, &full, &cd, &[]);
    net.corrupt = Some(2);
    net.slow_reconstruction = true;
    net.start(&cd);
    net.run();
    for (id, op) in &net.ops {
        if *id == 2 {
            continue;
        }
        assert_eq!(op.runner.base().phase(), Phase::Finished, "op {id}");
        assert_eq!(op.submitted.len(), 1, "op {id}");
    }
}
