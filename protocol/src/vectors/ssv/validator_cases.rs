//! The validator roles of the runner suite (proposer, aggregator, sync-committee
//! contribution, and the signing-only validator registration and voluntary exit):
//! `tests.*` message-processing subtests and `newduty` subtests. The harness plays ssv-spec's `Validator` around the runner (message
//! checks, RSA verification, routing by role and partial-signature type), the key manager and
//! the mock beacon node.

use std::collections::BTreeMap;

use serde_json::Value;
use ssz::Encode;

use super::super::beacon_cases::validator_duty_from_json;
use super::super::json::{as_array, as_b64, as_fixed, as_hex, field, u64_field};
use super::super::qbft_cases::FixtureVerifier;
use super::super::qbft_cases::{
    compare_controllers, compare_states, controller_from_json, instance_from_json,
};
use super::super::rsa::OperatorKey;
use super::super::types_cases::LooseSignedSsvMessage;
use super::basic_cases::check_code;
use super::harness::{
    AcceptAll, BlsVerifier, KeySigner, check_partial_output_roots, check_partial_outputs,
    check_submitted, checked_signed_message, container, container_signatures, describe, non_empty,
    state_comparison,
};
use super::keys::TestKeys;
use super::{SsvContext, bls, expected_code};
use crate::committee::CommitteeId;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::{MessageId, MsgType, RunnerRole, SignedSsvMessage};
use crate::partial_sig::{BlsSignature, PartialSignatureMessage, PartialSignatureMessages};
use crate::qbft::{self, Env};
use crate::runner::validator_registration::{DEFAULT_GAS_LIMIT, registration_object};
use crate::runner::voluntary_exit::exit_object;
use crate::runner::{
    AggregatorDomains, AggregatorRunner, BeaconDataRequest, ContributionDomains, ProposerDomains,
    ProposerRunner, ReconstructFailure, RunnerOptions, RunnerShare, SigningObject, SigningOnlyRole,
    SigningOnlyRunner, SyncCommitteeContributionRunner, ValidatorAction,
};
use crate::signing::{
    DOMAIN_AGGREGATE_AND_PROOF, DOMAIN_APPLICATION_BUILDER, DOMAIN_BEACON_PROPOSER,
    DOMAIN_CONTRIBUTION_AND_PROOF, DOMAIN_RANDAO, DOMAIN_SELECTION_PROOF,
    DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, DOMAIN_VOLUNTARY_EXIT, Domain, compute_domain,
};
use crate::types::{
    BlsPublicKey, CommitteeMember, CommitteeOperator, DomainType, OperatorId, Root,
};

/// `now_test_network`: genesis time and seconds per epoch (12 s × 32).
const GENESIS_TIME: u64 = 1_616_508_000;
const EPOCH_SECONDS: u64 = 384;
const SLOTS_PER_EPOCH: u64 = 32;

/// The validator roles the harness can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    SigningOnly(SigningOnlyRole),
    Aggregator,
    Contribution,
    Proposer,
}

fn built(role: RunnerRole) -> Option<Role> {
    match role {
        RunnerRole::ValidatorRegistration => {
            Some(Role::SigningOnly(SigningOnlyRole::ValidatorRegistration))
        }
        RunnerRole::VoluntaryExit => Some(Role::SigningOnly(SigningOnlyRole::VoluntaryExit)),
        RunnerRole::Aggregator => Some(Role::Aggregator),
        RunnerRole::SyncCommitteeContribution => Some(Role::Contribution),
        RunnerRole::Proposer => Some(Role::Proposer),
        RunnerRole::Committee => None,
    }
}

/// A runner of one of those roles.
enum RoleRunner {
    SigningOnly(Box<SigningOnlyRunner>),
    Aggregator(Box<AggregatorRunner>),
    Contribution(Box<SyncCommitteeContributionRunner>),
    Proposer(Box<ProposerRunner>),
}

impl RoleRunner {
    fn base(&self) -> &crate::runner::BaseRunner {
        match self {
            RoleRunner::SigningOnly(r) => r.base(),
            RoleRunner::Aggregator(r) => r.base(),
            RoleRunner::Contribution(r) => r.base(),
            RoleRunner::Proposer(r) => r.base(),
        }
    }

    fn signing_only_role(&self) -> SigningOnlyRole {
        match self.base().role {
            RunnerRole::ValidatorRegistration => SigningOnlyRole::ValidatorRegistration,
            _ => SigningOnlyRole::VoluntaryExit,
        }
    }
}

/// The harness's fork schedule (`now_test_network`, `VersionBySlot`): the data version of a
/// slot, go-eth2-client numbering.
fn version_by_slot(slot: u64) -> u64 {
    match slot / SLOTS_PER_EPOCH {
        e if e < 74_240 => 1,
        e if e < 144_896 => 2,
        e if e < 162_304 => 3,
        e if e < 231_680 => 4,
        e if e < 232_000 => 5,
        e if e < 242_000 => 6,
        _ => 7,
    }
}

/// The block root of the mock beacon node (1..10 repeated).
const MOCK_ROOT: [u8; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1,
    2,
];

/// The mock beacon node's aggregate (ssv-spec `TestingAggregateAndProofV`): aggregator 1, an
/// empty 128-bit aggregation list, zero signatures, the testing attestation data of the
/// version's duty slot; the Electra shape for Electra only, the phase 0 shape otherwise.
fn mock_aggregate(version: u64) -> Result<Vec<u8>, String> {
    use crate::beacon::{electra, phase0};
    let electra_version = version == 6;
    let data = crate::beacon_vote::AttestationData {
        slot: if electra_version {
            232_000 * SLOTS_PER_EPOCH + 12
        } else {
            12
        },
        index: if electra_version { 0 } else { 3 },
        beacon_block_root: MOCK_ROOT,
        source: crate::beacon_vote::Checkpoint {
            epoch: 0,
            root: MOCK_ROOT,
        },
        target: crate::beacon_vote::Checkpoint {
            epoch: 1,
            root: MOCK_ROOT,
        },
    };
    fn bits<N: ssz_types::typenum::Unsigned + Clone>(
        n: usize,
    ) -> Result<ssz_types::BitList<N>, String> {
        ssz_types::BitList::with_capacity(n).map_err(|e| format!("{e:?}"))
    }
    Ok(if electra_version {
        electra::AggregateAndProof {
            aggregator_index: 1,
            aggregate: electra::Attestation {
                aggregation_bits: bits(128)?,
                data,
                signature: [0; 96],
                committee_bits: ssz_types::BitVector::new(),
            },
            selection_proof: [0; 96],
        }
        .as_ssz_bytes()
    } else {
        phase0::AggregateAndProof {
            aggregator_index: 1,
            aggregate: phase0::Attestation {
                aggregation_bits: bits(128)?,
                data,
                signature: [0; 96],
            },
            selection_proof: [0; 96],
        }
        .as_ssz_bytes()
    })
}

fn contribution_domains() -> ContributionDomains {
    ContributionDomains {
        selection_proof: compute_domain(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, [0; 4], [0; 32]),
        contribution_and_proof: compute_domain(DOMAIN_CONTRIBUTION_AND_PROOF, [0; 4], [0; 32]),
    }
}

/// The mock beacon node's contributions (ssv-spec `TestingContributionsData`): subcommittees
/// 0, 1 and 2 at the testing duty slot over the testing block root, no participants, zero
/// signatures, each with the fixed selection proof the Go fixture signed with the testing
/// validator key; reported as Bellatrix data (version 3).
fn mock_contributions() -> Result<Vec<u8>, String> {
    use crate::beacon::altair::SyncCommitteeContribution;
    use crate::beacon::consensus_data::Contribution;
    const PROOFS: [&str; 3] = [
        "b18833bb7549ec33e8ac414ba002fd45bb094ca300bd24596f04a434a89beea462401da7c6b92fb3991bd17163eb603604a40e8dd6781266c990023446776ff42a9313df26a0a34184a590e57fa4003d610c2fa214db4e7dec468592010298bc",
        "9094342c95146554df849dc20f7425fca692dacee7cb45258ddd264a8e5929861469fda3d1567b9521cba83188ffd61a0dbe6d7180c7a96f5810d18db305e9143772b766d368aa96d3751f98d0ce2db9f9e6f26325702088d87f0de500c67c68",
        "a7f88ce43eff3aa8cdd2e3957c5bead4e21353fbecac6079a5398d03019bc45ff7c951785172deee70e9bc5abbc8ca6a0f0441e9d4cc9da74c31121357f7d7c7de9533f6f457da493e3314e22d554ab76613e469b050e246aff539a33807197c",
    ];
    let mut list = Vec::new();
    for (i, proof) in PROOFS.iter().enumerate() {
        list.push(Contribution {
            selection_proof_sig: hex::decode(proof)
                .map_err(|e| e.to_string())?
                .try_into()
                .map_err(|_| "96 bytes".to_string())?,
            contribution: SyncCommitteeContribution {
                slot: 12,
                beacon_block_root: MOCK_ROOT,
                subcommittee_index: i as u64,
                aggregation_bits: ssz_types::BitVector::new(),
                signature: [0; 96],
            },
        });
    }
    let list: crate::beacon::consensus_data::Contributions =
        list.try_into().map_err(|e| format!("{e:?}"))?;
    Ok(list.as_ssz_bytes())
}

/// The mock beacon node's block of each fork (ssv-spec `TestingBeaconBlockV`: always a full
/// block, block contents from Deneb on). The types suite beside the runner suite carries each
/// as the `DataSSZ` of its `validatorconsensusdata` "valid {fork} block" test
/// (`TestProposerConsensusDataV`), which is where the harness takes it from.
pub struct MockBlocks(BTreeMap<u64, Result<Vec<u8>, String>>);

impl MockBlocks {
    /// Reads the four forks' blocks from `root/types/tests/` (an unreadable one is an error
    /// for the subtests that need it, not for the others).
    pub fn load(root: &std::path::Path) -> Self {
        let mut blocks = BTreeMap::new();
        for fork in ["capella", "deneb", "electra", "fulu"] {
            let path = root.join("types").join("tests").join(format!(
                "validatorconsensusdata.ValidatorConsensusDataTest_validatorconsensusdata_valid_{fork}_block.json"
            ));
            let block = std::fs::read(&path)
                .map_err(|e| format!("{}: {e}", path.display()))
                .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
                .and_then(|v| {
                    let cd = field(&v, "ConsensusData")?;
                    as_b64(field(cd, "DataSSZ")?)
                });
            if let Some(version) = crate::beacon::DataVersion::from_name(fork) {
                blocks.insert(version.to_u64(), block);
            }
        }
        MockBlocks(blocks)
    }

    fn get(&self, version: u64) -> Result<Vec<u8>, Error> {
        match self.0.get(&version) {
            Some(Ok(b)) => Ok(b.clone()),
            Some(Err(e)) => Err(Error::Decode(format!("mock beacon block: {e}"))),
            None => Err(Error::Decode(format!("unsupported version {version}"))),
        }
    }
}

fn proposer_domains() -> ProposerDomains {
    ProposerDomains {
        randao: compute_domain(DOMAIN_RANDAO, [0; 4], [0; 32]),
        proposer: compute_domain(DOMAIN_BEACON_PROPOSER, [0; 4], [0; 32]),
    }
}

fn aggregator_domains() -> AggregatorDomains {
    AggregatorDomains {
        selection_proof: compute_domain(DOMAIN_SELECTION_PROOF, [0; 4], [0; 32]),
        aggregate_and_proof: compute_domain(DOMAIN_AGGREGATE_AND_PROOF, [0; 4], [0; 32]),
    }
}

/// The one share of a validator runner's `Share` map.
struct Share {
    validator_index: u64,
    validator_pk: BlsPublicKey,
    share_pk: BlsPublicKey,
    committee: BTreeMap<OperatorId, BlsPublicKey>,
    fee_recipient: [u8; 20],
}

fn share_from_runner(base: &Value) -> Result<Share, String> {
    let map = field(base, "Share")?
        .as_object()
        .ok_or("Share: expected an object")?;
    let [(vi, s)] = map.iter().collect::<Vec<_>>()[..] else {
        return Err(format!("{} shares, expected one", map.len()));
    };
    let committee = as_array(field(s, "Committee")?)?
        .iter()
        .map(|m| {
            Ok((
                u64_field(m, "Signer")?,
                as_fixed::<48>(field(m, "SharePubKey")?)?,
            ))
        })
        .collect::<Result<_, String>>()?;
    Ok(Share {
        validator_index: vi.parse().map_err(|e| format!("share key {vi}: {e}"))?,
        validator_pk: as_fixed::<48>(field(s, "ValidatorPubKey")?)?,
        share_pk: as_fixed::<48>(field(s, "SharePubKey")?)?,
        committee,
        fee_recipient: as_hex(field(s, "FeeRecipientAddress")?)?
            .try_into()
            .map_err(|_| "fee recipient: 20 bytes".to_string())?,
    })
}

/// The committee of the Go harness's validator: operator 1 of the key set of the share's
/// committee size, every operator with its RSA public key.
fn member_for(keys: &TestKeys, share: &Share) -> Result<CommitteeMember, String> {
    use base64::Engine as _;
    let set = keys.set_for(share.committee.len())?;
    // Go's `pem.EncodeToMemory`: 64-character lines.
    let pem = |k: &OperatorKey| {
        let body = base64::engine::general_purpose::STANDARD
            .encode(super::super::rsa::pkcs1_to_spki(&k.public_der()));
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        format!(
            "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
            lines.join("\n")
        )
        .into_bytes()
    };
    let committee: Vec<CommitteeOperator> = set
        .operators
        .iter()
        .map(|(id, k)| CommitteeOperator {
            operator_id: *id,
            rsa_public_key_pem: pem(k),
        })
        .collect();
    let ids: Vec<OperatorId> = committee.iter().map(|o| o.operator_id).collect();
    Ok(CommitteeMember {
        operator_id: 1,
        committee_id: CommitteeId::from_operators(&ids),
        rsa_public_key_pem: committee
            .first()
            .map(|o| o.rsa_public_key_pem.clone())
            .unwrap_or_default(),
        faulty_nodes: (ids.len() as u64).saturating_sub(1) / 3,
        committee,
        domain: DomainType([0, 0, 3, 1]),
    })
}

/// What the duty signs and under which domain (the harness's fixed domains).
fn object_for(
    role: SigningOnlyRole,
    share: &Share,
    slot: u64,
    validator_index: u64,
) -> (SigningObject, Domain) {
    let epoch = slot / SLOTS_PER_EPOCH;
    match role {
        SigningOnlyRole::VoluntaryExit => (
            exit_object(&crate::chain::ChainSpec::MAINNET, slot, validator_index),
            compute_domain(DOMAIN_VOLUNTARY_EXIT, [0; 4], [0; 32]),
        ),
        SigningOnlyRole::ValidatorRegistration => (
            registration_object(
                share.fee_recipient,
                DEFAULT_GAS_LIMIT,
                GENESIS_TIME + epoch * EPOCH_SECONDS,
                share.validator_pk,
            ),
            compute_domain(DOMAIN_APPLICATION_BUILDER, [0; 4], [0; 32]),
        ),
    }
}

struct Run<'k> {
    keys: &'k TestKeys,
    blocks: &'k MockBlocks,
    share: Share,
    member: CommitteeMember,
    runner: RoleRunner,
    signer: KeySigner<'k>,
    verifier: FixtureVerifier,
    broadcasts: Vec<SignedSsvMessage>,
    submitted: Vec<Root>,
    last_error: Option<Error>,
    /// `ProofRootsMap` of the sync-committee aggregator proof tests.
    aggregator_proofs: Option<BTreeMap<String, bool>>,
}

impl<'k> Run<'k> {
    fn new(ctx: &'k SsvContext, role: Role, base: &Value) -> Result<Self, String> {
        let keys = &ctx.keys;
        let share = share_from_runner(base)?;
        // The runner's own committee view when it has a controller (the Go harness's PEM
        // spelling of the operators' keys); the key set's otherwise.
        let member = match base
            .get("QBFTController")
            .and_then(|c| c.get("CommitteeMember"))
        {
            Some(m) if !m.is_null() => super::super::types_cases::committee_member_from_json(m)?,
            _ => member_for(keys, &share)?,
        };
        let key = keys
            .set_for(share.committee.len())?
            .operators
            .get(&1)
            .ok_or("no RSA key of operator 1")?;
        let runner_share = RunnerShare {
            validator_index: share.validator_index,
            validator_pk: share.validator_pk,
            committee: share.committee.clone(),
        };
        let runner = match role {
            Role::SigningOnly(role) => RoleRunner::SigningOnly(Box::new(
                SigningOnlyRunner::new(role, member.clone(), runner_share, RunnerOptions::SPEC)
                    .with_duplicate_check(std::sync::Arc::new(BlsVerifier)),
            )),
            Role::Aggregator => {
                let mut r = AggregatorRunner::new(
                    member.clone(),
                    runner_share,
                    super::committee_cases::spec_config(),
                    crate::chain::ChainSpec::MAINNET,
                    RunnerOptions::SPEC,
                )
                .with_duplicate_check(std::sync::Arc::new(BlsVerifier));
                r.set_current_epoch(super::basic_cases::harness_current_epoch());
                // The runner's controller as the vector has it, with or without a duty.
                if let Some(c) = vector_controller(base)? {
                    r.base_mut().controller = Some(c);
                }
                RoleRunner::Aggregator(Box::new(r))
            }
            Role::Contribution => {
                let mut r = SyncCommitteeContributionRunner::new(
                    member.clone(),
                    runner_share,
                    super::committee_cases::spec_config(),
                    crate::chain::ChainSpec::MAINNET,
                    RunnerOptions::SPEC,
                )
                .with_duplicate_check(std::sync::Arc::new(BlsVerifier));
                r.set_current_epoch(super::basic_cases::harness_current_epoch());
                if let Some(c) = vector_controller(base)? {
                    r.base_mut().controller = Some(c);
                }
                RoleRunner::Contribution(Box::new(r))
            }
            Role::Proposer => {
                let mut r = ProposerRunner::new(
                    member.clone(),
                    runner_share,
                    super::committee_cases::spec_config(),
                    crate::chain::ChainSpec::MAINNET,
                    RunnerOptions::SPEC,
                    std::sync::Arc::new(super::basic_cases::NeverSlashable),
                )
                .with_duplicate_check(std::sync::Arc::new(BlsVerifier));
                r.set_current_epoch(super::basic_cases::harness_current_epoch());
                if let Some(c) = vector_controller(base)? {
                    r.base_mut().controller = Some(c);
                }
                RoleRunner::Proposer(Box::new(r))
            }
        };
        Ok(Run {
            keys,
            blocks: &ctx.blocks,
            share,
            member,
            runner,
            signer: KeySigner { id: 1, key },
            verifier: FixtureVerifier::default(),
            broadcasts: Vec::new(),
            submitted: Vec::new(),
            last_error: None,
            aggregator_proofs: None,
        })
    }

    /// The mock beacon node's `IsSyncCommitteeAggregator`: the proof's entry in the test's
    /// `ProofRootsMap` when it has one (absent: not an aggregator), else always.
    fn is_aggregator(&self, proof: &BlsSignature) -> bool {
        match &self.aggregator_proofs {
            None => true,
            Some(map) => map.get(&hex::encode(proof)).copied().unwrap_or(false),
        }
    }

    fn record(&mut self, result: Result<(), Error>) {
        if let Err(e) = result {
            self.last_error = Some(e);
        }
    }

    fn handle(&mut self, actions: Vec<ValidatorAction>) -> Result<(), Error> {
        let mut work: std::collections::VecDeque<ValidatorAction> = actions.into();
        let mut error = None;
        while let Some(action) = work.pop_front() {
            let mut out = Vec::new();
            match action {
                ValidatorAction::Broadcast(m) => self.broadcasts.push(m),
                ValidatorAction::Submit(object) => self.submitted.push(object.root()),
                ValidatorAction::Sign { signing_root, .. } => {
                    let sk = self
                        .keys
                        .secret_by_public
                        .get(&self.share.share_pk)
                        .ok_or_else(|| Error::Decode("no share key".into()))?;
                    let sig = bls::sign(sk, &signing_root).map_err(Error::Decode)?;
                    let env = Env {
                        signer: &self.signer,
                        verifier: &self.verifier,
                        value_check: &AcceptAll,
                    };
                    match &mut self.runner {
                        RoleRunner::SigningOnly(r) => r.signed(env, sig, &mut out)?,
                        RoleRunner::Aggregator(r) => r.signed(env, sig, &mut out)?,
                        RoleRunner::Proposer(r) => r.signed(env, sig, &mut out)?,
                        RoleRunner::Contribution(r) => {
                            r.signed(env, signing_root, sig, &mut out)?
                        }
                    }
                }
                ValidatorAction::SetTimer { .. } => {}
                ValidatorAction::FetchBeaconData(BeaconDataRequest::AggregateAndProof {
                    slot,
                    ..
                }) => {
                    let version = version_by_slot(slot);
                    let data = mock_aggregate(version).map_err(Error::Decode)?;
                    let env = Env {
                        signer: &self.signer,
                        verifier: &self.verifier,
                        value_check: &AcceptAll,
                    };
                    if let RoleRunner::Aggregator(r) = &mut self.runner {
                        r.beacon_data(env, version, data, &mut out)?;
                    }
                }
                ValidatorAction::FetchBeaconData(BeaconDataRequest::Block { slot, .. }) => {
                    let version = version_by_slot(slot);
                    let block = self.blocks.get(version)?;
                    let env = Env {
                        signer: &self.signer,
                        verifier: &self.verifier,
                        value_check: &AcceptAll,
                    };
                    if let RoleRunner::Proposer(r) = &mut self.runner {
                        r.beacon_data(env, version, block, &mut out)?;
                    }
                }
                ValidatorAction::FetchBeaconData(
                    BeaconDataRequest::SyncCommitteeContributions { candidates, .. },
                ) => {
                    let any = candidates
                        .iter()
                        .any(|(proof, _)| self.is_aggregator(proof));
                    let data = if any {
                        Some((3, mock_contributions().map_err(Error::Decode)?))
                    } else {
                        None
                    };
                    let env = Env {
                        signer: &self.signer,
                        verifier: &self.verifier,
                        value_check: &AcceptAll,
                    };
                    if let RoleRunner::Contribution(r) = &mut self.runner {
                        r.beacon_data(env, data, &mut out)?;
                    }
                }
                ValidatorAction::Reconstruct {
                    signing_root,
                    partials,
                    ..
                } => {
                    let verdict = self.reconstruct(&signing_root, &partials);
                    if verdict.is_err() {
                        error.get_or_insert(Error::spec(
                            ErrorCode::ReconstructSignature,
                            "got a quorum but it has invalid signatures",
                        ));
                    }
                    match &mut self.runner {
                        RoleRunner::SigningOnly(r) => r.reconstructed(verdict, &mut out),
                        RoleRunner::Aggregator(r) => {
                            r.reconstructed(signing_root, verdict, &mut out)
                        }
                        RoleRunner::Contribution(r) => {
                            r.reconstructed(signing_root, verdict, &mut out)
                        }
                        RoleRunner::Proposer(r) => r.reconstructed(signing_root, verdict, &mut out),
                    }
                }
            }
            work.extend(out);
        }
        error.map_or(Ok(()), Err)
    }

    fn reconstruct(
        &self,
        root: &Root,
        partials: &[(OperatorId, BlsSignature)],
    ) -> Result<BlsSignature, ReconstructFailure> {
        if let Ok(sig) = bls::reconstruct(partials)
            && bls::verify(&self.share.validator_pk, root, &sig)
        {
            return Ok(sig);
        }
        let bad: Vec<OperatorId> = partials
            .iter()
            .filter(|(op, p)| {
                !self
                    .share
                    .committee
                    .get(op)
                    .is_some_and(|pk| bls::verify(pk, root, p))
            })
            .map(|(op, _)| *op)
            .collect();
        Err(if bad.is_empty() {
            ReconstructFailure::Mismatch
        } else {
            ReconstructFailure::InvalidPartials(bad)
        })
    }

    /// ssv-spec `Validator.ProcessMessage`, then the runner.
    fn process(&mut self, msg_json: &Value) -> Result<(), String> {
        let loose = LooseSignedSsvMessage::from_json(msg_json)?;
        let result = self.checks(loose).and_then(|msg| {
            let mut out = Vec::new();
            let env = Env {
                signer: &self.signer,
                verifier: &self.verifier,
                value_check: &AcceptAll,
            };
            let r = match &mut self.runner {
                RoleRunner::SigningOnly(r) => r.process_message(&msg, &mut out),
                RoleRunner::Aggregator(r) => r.process_message(env, msg, &mut out),
                RoleRunner::Contribution(r) => r.process_message(env, msg, &mut out),
                RoleRunner::Proposer(r) => r.process_message(env, msg, &mut out),
            };
            let handled = self.handle(out);
            r.and(handled)
        });
        self.record(result);
        Ok(())
    }

    fn checks(&self, loose: LooseSignedSsvMessage) -> Result<SignedSsvMessage, Error> {
        let msg = checked_signed_message(loose, &self.member, &self.verifier)?;
        let id: &MessageId = &msg.ssv_message.msg_id;
        if id.role() != Some(self.runner.base().role) {
            return Err(Error::Decode("could not get duty runner for msg ID".into()));
        }
        if !id.belongs_to_validator(&self.share.validator_pk) {
            return Err(Error::Decode("msg ID doesn't match validator ID".into()));
        }
        if msg.ssv_message.data.is_empty() {
            return Err(Error::Decode("msg data is invalid".into()));
        }
        match msg.ssv_message.kind() {
            Some(MsgType::Consensus) => {
                qbft::Message::from_ssz(&msg.ssv_message.data)?.validate()?;
            }
            Some(MsgType::PartialSignature) => {
                let psm = PartialSignatureMessages::from_ssz(&msg.ssv_message.data)?;
                if msg.operator_ids.len() != 1 {
                    return Err(Error::Decode(
                        "PartialSignatureMessage has more than 1 signer".into(),
                    ));
                }
                psm.validate()?;
                if psm.signer() != Some(msg.operator_ids[0]) {
                    return Err(Error::spec(
                        ErrorCode::PartialSigInconsistentSigner,
                        "inconsistent signers",
                    ));
                }
            }
            None => return Err(Error::Decode("unknown msg".into())),
        }
        Ok(msg)
    }

    /// Loads the runner's state from its JSON (`DontStartDuty` and `newduty`).
    fn restore(&mut self, state: &Value) -> Result<(), String> {
        let duty = field(state, "ValidatorDuty")?;
        let slot = u64_field(duty, "Slot")?;
        let finished = state
            .get("Finished")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let pre = container(state, "PreConsensusContainer")?;
        let quorum = crate::types::quorum(self.member.committee.len());
        let role = self.runner.signing_only_role();
        match &mut self.runner {
            RoleRunner::SigningOnly(r) => {
                let (object, domain) =
                    object_for(role, &self.share, slot, u64_field(duty, "ValidatorIndex")?);
                r.restore(slot, object, domain, &pre, finished);
            }
            RoleRunner::Contribution(r) => {
                r.base_mut().state = Some(restored_state(state, slot, quorum, &pre, finished)?);
                let duty = validator_duty_from_json(duty)?;
                let subnets = duty.validator_sync_committee_indices.to_vec();
                r.restore_duty(duty, subnets, contribution_domains())
                    .map_err(|e| format!("restore: {e}"))?;
            }
            RoleRunner::Aggregator(r) => {
                r.base_mut().state = Some(restored_state(state, slot, quorum, &pre, finished)?);
                r.restore_duty(
                    validator_duty_from_json(duty)?,
                    aggregator_domains(),
                    super::basic_cases::harness_current_epoch(),
                )
                .map_err(|e| format!("restore: {e}"))?;
            }
            RoleRunner::Proposer(r) => {
                r.base_mut().state = Some(restored_state(state, slot, quorum, &pre, finished)?);
                r.restore_duty(
                    validator_duty_from_json(duty)?,
                    proposer_domains(),
                    super::basic_cases::harness_current_epoch(),
                )
                .map_err(|e| format!("restore: {e}"))?;
            }
        }
        Ok(())
    }

    fn start(&mut self, duty: &Value) -> Result<(), String> {
        let slot = u64_field(duty, "Slot")?;
        let mut out = Vec::new();
        let role = self.runner.signing_only_role();
        let r = match &mut self.runner {
            RoleRunner::SigningOnly(r) => {
                let (object, domain) =
                    object_for(role, &self.share, slot, u64_field(duty, "ValidatorIndex")?);
                r.start_duty(slot, object, domain, &mut out)
            }
            RoleRunner::Aggregator(r) => r.start_duty(
                validator_duty_from_json(duty)?,
                aggregator_domains(),
                super::basic_cases::harness_current_epoch(),
                &mut out,
            ),
            RoleRunner::Contribution(r) => {
                let duty = validator_duty_from_json(duty)?;
                // The mock beacon node's subcommittee of a sync-committee index is the index.
                let subnets = duty.validator_sync_committee_indices.to_vec();
                r.start_duty(duty, subnets, contribution_domains(), &mut out)
            }
            RoleRunner::Proposer(r) => r.start_duty(
                validator_duty_from_json(duty)?,
                proposer_domains(),
                super::basic_cases::harness_current_epoch(),
                &mut out,
            ),
        };
        let handled = self.handle(out);
        self.record(r.and(handled));
        Ok(())
    }
}

/// The runner's QBFT controller as the vector has it (`None`: the role has none).
fn vector_controller(base: &Value) -> Result<Option<crate::qbft::Controller>, String> {
    match base.get("QBFTController").filter(|c| !c.is_null()) {
        Some(c) => Ok(Some(controller_from_json(
            c,
            super::committee_cases::spec_config(),
        )?)),
        None => Ok(None),
    }
}

/// A runner state with consensus from its JSON.
fn restored_state(
    state: &Value,
    slot: u64,
    quorum: usize,
    pre: &[PartialSignatureMessage],
    finished: bool,
) -> Result<crate::runner::RunnerState, String> {
    let mut st = crate::runner::RunnerState::new(slot, quorum);
    for m in pre {
        st.pre_consensus.add(m);
    }
    for m in container(state, "PostConsensusContainer")? {
        st.post_consensus.add(&m);
    }
    let decided = as_b64(state.get("DecidedValue").unwrap_or(&Value::Null))?;
    st.decided_value = (!decided.is_empty()).then_some(decided);
    st.finished = finished;
    st.running_height = match state.get("RunningInstance") {
        Some(i) if !i.is_null() => Some(u64_field(field(i, "State")?, "Height")?),
        _ => None,
    };
    Ok(st)
}

fn partial_broadcasts(run: &Run<'_>) -> Result<Vec<PartialSignatureMessages>, String> {
    run.broadcasts
        .iter()
        .filter(|m| m.ssv_message.kind() == Some(MsgType::PartialSignature))
        .map(|m| PartialSignatureMessages::from_ssz(&m.ssv_message.data).map_err(|e| e.to_string()))
        .collect()
}

fn check_outputs(v: &Value, run: &Run<'_>) -> Result<(), String> {
    check_partial_outputs(v, &partial_broadcasts(run)?, true)?;
    check_submitted(v, &run.submitted)
}

fn compare_state(expected: &Value, run: &Run<'_>) -> Result<(), String> {
    compare_state_with(expected, run, true)
}

fn compare_state_with(
    expected: &Value,
    run: &Run<'_>,
    with_controller: bool,
) -> Result<(), String> {
    let state = field(field(expected, "BaseRunner")?, "State")?;
    let ours = run.runner.base().state.as_ref();
    let Some(ours) = ours else {
        return if state.is_null() {
            Ok(())
        } else {
            Err("post-state: no duty, expected one".into())
        };
    };
    if state.is_null() {
        return Err("post-state: a duty, expected none".into());
    }
    for (name, ours_sigs) in [
        ("PreConsensusContainer", ours.pre_consensus.signatures()),
        ("PostConsensusContainer", ours.post_consensus.signatures()),
    ] {
        let want = container_signatures(state, name)?;
        let got = non_empty(ours_sigs);
        if got != want {
            return Err(format!(
                "post-state: {name} {} != expected {}",
                describe(&got),
                describe(&want)
            ));
        }
    }
    let decided = as_b64(state.get("DecidedValue").unwrap_or(&Value::Null))?;
    if ours.decided_value.clone().unwrap_or_default() != decided {
        return Err("post-state: DecidedValue differs".into());
    }
    let base = run.runner.base();
    match state.get("RunningInstance") {
        None | Some(Value::Null) => {
            if base.running_instance().is_some() {
                return Err("post-state: a running instance, expected none".into());
            }
        }
        Some(inst) => {
            let want = instance_from_json(inst, super::committee_cases::spec_config())?;
            let got = base
                .running_instance()
                .ok_or("post-state: no running instance")?;
            compare_states(&got.state, &want.state, "post-state: RunningInstance")?;
            if got.start_value != want.start_value {
                return Err("post-state: RunningInstance start value differs".into());
            }
        }
    }
    if !with_controller {
        return compare_duty_tail(state, ours);
    }
    match (
        field(expected, "BaseRunner")?
            .get("QBFTController")
            .filter(|c| !c.is_null()),
        base.controller.as_ref(),
    ) {
        (None, None) => {}
        (Some(want), Some(got)) => {
            let want = controller_from_json(want, super::committee_cases::spec_config())?;
            compare_controllers(got, &want, 0).map_err(|e| format!("post-state: {e}"))?;
        }
        _ => return Err("post-state: QBFTController presence differs".into()),
    }
    compare_duty_tail(state, ours)
}

/// `Finished` and the duty's slot.
fn compare_duty_tail(state: &Value, ours: &crate::runner::RunnerState) -> Result<(), String> {
    let finished = state
        .get("Finished")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if ours.finished != finished {
        return Err(format!(
            "post-state: Finished {}, expected {finished}",
            ours.finished
        ));
    }
    let slot = u64_field(field(state, "ValidatorDuty")?, "Slot")?;
    if ours.slot != slot {
        return Err(format!(
            "post-state: duty slot {}, expected {slot}",
            ours.slot
        ));
    }
    Ok(())
}

/// `synccommitteeaggregator.SyncCommitteeAggregatorProofSpecTest`: the contribution runner of
/// the 4-operator key set's validator runs the harness's fixed duty while the mock beacon
/// node answers "is aggregator" from `ProofRootsMap`; the error (`ExpectedError`, empty: none)
/// and the runner's `State` are compared.
pub fn sync_aggregator_proof(v: &Value, ctx: &SsvContext) -> Result<(), String> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let set = ctx.keys.set_for(4)?;
    let mut committee = Vec::new();
    let mut share_pk = Vec::new();
    for (op, sk) in &set.shares {
        let pk = bls::public_key(sk)?;
        if *op == 1 {
            share_pk = pk.to_vec();
        }
        committee.push(serde_json::json!({"Signer": op, "SharePubKey": b64(&pk)}));
    }
    let base = serde_json::json!({
        "Share": {"1": {
            "Committee": committee,
            "ValidatorPubKey": hex::encode(set.validator_pk),
            "SharePubKey": b64(&share_pk),
            "FeeRecipientAddress": hex::encode([0u8; 20]),
        }},
        "QBFTController": null,
        "State": null,
    });
    let mut run = Run::new(ctx, Role::Contribution, &base)?;
    let proofs = v.get("ProofRootsMap").and_then(Value::as_object).map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_bool().unwrap_or(false)))
            .collect()
    });
    run.aggregator_proofs = proofs;
    let duty = serde_json::json!({
        "Type": 4, "PubKey": format!("0x{}", hex::encode(set.validator_pk)), "Slot": "12",
        "ValidatorIndex": "1", "CommitteeIndex": 3, "CommitteeLength": 128,
        "CommitteesAtSlot": 36, "ValidatorCommitteeIndex": 11,
        "ValidatorSyncCommitteeIndices": [0, 1, 2],
    });
    run.start(&duty)?;
    for m in as_array(field(v, "Messages")?)? {
        run.process(m)?;
    }
    let expected_error = v.get("ExpectedError").and_then(Value::as_str).unwrap_or("");
    match (&run.last_error, expected_error) {
        (None, "") => {}
        (Some(e), "") => return Err(format!("expected no error, got {e}")),
        (None, want) => return Err(format!("expected error {want:?}, got none")),
        (Some(e), want) if e.to_string().contains(want) => {}
        (Some(e), want) => return Err(format!("expected error {want:?}, got {e}")),
    }
    let state = ctx.suite.json(&format!(
        "state_comparison/synccommitteeaggregator_SyncCommitteeAggregatorProofSpecTest/{}.json",
        super::name_of(v)
    ))?;
    compare_state_with(
        &serde_json::json!({"BaseRunner": {"State": state}}),
        &run,
        false,
    )
}

/// A message-processing subtest of a validator role; `None` for the committee role.
pub fn msg_processing(
    v: &Value,
    ctx: &SsvContext,
    role: RunnerRole,
    top: Option<&str>,
) -> Option<Result<(), String>> {
    let role = built(role)?;
    Some((|| {
        let base = field(field(v, "Runner")?, "BaseRunner")?;
        let mut run = Run::new(ctx, role, base)?;
        let state = field(base, "State")?;
        if !state.is_null() {
            run.restore(state)?;
        }
        let dont_start = v
            .get("DontStartDuty")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !dont_start {
            run.start(field(v, "ValidatorDuty")?)?;
        }
        for m in as_array(field(v, "Messages")?)? {
            run.process(m)?;
        }
        check_code(run.last_error.take().map_or(Ok(()), Err), expected_code(v)?)?;
        check_outputs(v, &run)?;
        let dir = if top.is_some() {
            "tests_MultiMsgProcessingSpecTest"
        } else {
            "tests_MsgProcessingSpecTest"
        };
        let expected = state_comparison(ctx, dir, top, &super::name_of(v))?;
        compare_state(&expected, &run)
    })())
}

/// A `newduty` subtest of a validator role; `None` for the committee role.
pub fn new_duty(
    v: &Value,
    ctx: &SsvContext,
    role: RunnerRole,
    top: &str,
) -> Option<Result<(), String>> {
    let role = built(role)?;
    Some((|| {
        let base = field(field(v, "Runner")?, "BaseRunner")?;
        let mut run = Run::new(ctx, role, base)?;
        let state = field(base, "State")?;
        if !state.is_null() {
            run.restore(state)?;
        }
        run.start(field(v, "ValidatorDuty")?)?;
        check_code(run.last_error.take().map_or(Ok(()), Err), expected_code(v)?)?;
        // The Go newduty harness compares outputs only when the runner broadcast something.
        if !run.broadcasts.is_empty() {
            check_partial_output_roots(v, &partial_broadcasts(&run)?)?;
        }
        let expected = state_comparison(
            ctx,
            "newduty_MultiStartNewRunnerDutySpecTest",
            Some(top),
            &super::name_of(v),
        )?;
        compare_state(&expected, &run)
    })())
}
