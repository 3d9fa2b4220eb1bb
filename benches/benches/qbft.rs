//! QBFT benchmark: one controller (operator 1, the round-1 leader) runs a full happy-path
//! instance — start, proposal, a prepare from every member, a commit from every member —
//! for committees of 4 and 13. Throughput is messages processed per second.
//!
//! RSA is excluded: the signer returns a fixed signature and the verifier accepts everything,
//! so what is measured is decoding, validation, containers, quorum counting, creating and
//! encoding this operator's own prepare and commit, and aggregating the decided commit.
//! Fixtures are deterministic (messages built once, outside the measurement).
//!
//! `cargo bench -p ssv-benches --bench qbft`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ssv_protocol::Error;
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::message::{MessageId, RsaSignature, SignedSsvMessage};
use ssv_protocol::qbft::{
    self, Action, Config, Controller, Env, OperatorSigner, SignatureVerifier, State, ValueCheck,
};
use ssv_protocol::types::{CommitteeMember, CommitteeOperator, DomainType, OperatorId};

const HEIGHT: u64 = 0;

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

struct AnyValue;

impl ValueCheck for AnyValue {
    fn check_value(&self, _: &[u8]) -> Result<(), Error> {
        Ok(())
    }
}

fn member(n: u64, id: OperatorId) -> CommitteeMember {
    let ids: Vec<OperatorId> = (1..=n).collect();
    CommitteeMember {
        operator_id: id,
        committee_id: CommitteeId::from_operators(&ids),
        rsa_public_key_pem: Vec::new(),
        faulty_nodes: (n - 1) / 3,
        committee: ids
            .iter()
            .map(|&operator_id| CommitteeOperator {
                operator_id,
                rsa_public_key_pem: Vec::new(),
            })
            .collect(),
        domain: DomainType::SPEC_TESTING,
    }
}

/// The messages one operator receives in a happy round: the leader's proposal, then every
/// member's prepare, then every member's commit (its own included, as the network loops them
/// back). The value is an attestation-sized `BeaconVote` (112 bytes).
fn happy_round(n: u64, identifier: &[u8]) -> Vec<SignedSsvMessage> {
    let value = vec![0x5a; 112];
    let root = qbft::hash_data_root(&value);
    let state_of = |id| State::new(member(n, id), identifier.to_vec(), HEIGHT);
    let mut msgs = vec![
        qbft::create_proposal(&state_of(1), &FixedSigner(1), &value, &[], &[]).expect("proposal"),
    ];
    for id in 1..=n {
        msgs.push(qbft::create_prepare(&state_of(id), &FixedSigner(id), 1, root).expect("prepare"));
    }
    for id in 1..=n {
        msgs.push(qbft::create_commit(&state_of(id), &FixedSigner(id), root).expect("commit"));
    }
    msgs
}

fn happy_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("qbft/happy_round");
    for n in [4u64, 13] {
        let identifier =
            MessageId::for_committee(DomainType::SPEC_TESTING, &CommitteeId::from_operators(&[1]))
                .0
                .to_vec();
        let msgs = happy_round(n, &identifier);
        let template = Controller::new(identifier.clone(), member(n, 1), Config::default());
        let signer = FixedSigner(1);
        let env = Env {
            signer: &signer,
            verifier: &AcceptAll,
            value_check: &AnyValue,
        };
        group.throughput(Throughput::Elements(msgs.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            let mut actions: Vec<Action> = Vec::with_capacity(64);
            b.iter(|| {
                let mut controller = template.clone();
                actions.clear();
                controller
                    .start_new_instance(env, HEIGHT, vec![0x5a; 112], &mut actions)
                    .expect("start");
                let mut decided = 0;
                for m in &msgs {
                    // Commits after the quorum are refused (instance decided): that is part of
                    // the round's work too.
                    if let Ok(Some(_)) = controller.process_msg(env, m.clone(), &mut actions) {
                        decided += 1;
                    }
                }
                assert_eq!(decided, 1, "the instance decides exactly once");
                black_box(actions.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, happy_path);
criterion_main!(benches);
