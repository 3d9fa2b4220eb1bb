//! The committee runner driven end to end in memory: n runners exchange their broadcasts
//! through a seeded, reordering queue; the harness plays the caller (BLS replaced by a keyed
//! hash, so that "verification" can tell a good partial from a corrupted one).
//!
//! Checked: every validator duty completes on every honest runner, with all honest runners
//! agreeing on the vote and the roots; a silent operator (the first leader) and a corrupting
//! operator do not stop the others; duties started at different times (messages before the
//! duty) still complete; malformed partials are refused with the right error code.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::{HashMap, HashSet, VecDeque};

use sha2::{Digest, Sha256};
use ssv_protocol::Error;
use ssv_protocol::beacon_vote::{BeaconVote, Checkpoint};
use ssv_protocol::chain::ChainSpec;
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::error_code::ErrorCode;
use ssv_protocol::message::{MsgType, RsaSignature, SignedSsvMessage, SsvMessage};
use ssv_protocol::partial_sig::{
    BlsSignature, PartialSigMsgType, PartialSignatureMessage, PartialSignatureMessages,
};
use ssv_protocol::qbft::{Config, Env, OperatorSigner, SignatureVerifier};
use ssv_protocol::runner::{
    BeaconVoteCheck, CommitteeDuty, CommitteeRunner, DutyKind, Processed, ReconstructFailure,
    RunnerAction, ValidatorDuty,
};
use ssv_protocol::types::{CommitteeMember, CommitteeOperator, DomainType, OperatorId, Root};

fn fake_rsa(id: OperatorId, msg: &[u8]) -> RsaSignature {
    let d: [u8; 32] = Sha256::new()
        .chain_update(id.to_le_bytes())
        .chain_update(msg)
        .finalize()
        .into();
    let mut s = [0u8; 256];
    for c in s.chunks_mut(32) {
        c.copy_from_slice(&d);
    }
    s
}

struct Signer(OperatorId);
impl OperatorSigner for Signer {
    fn operator_id(&self) -> OperatorId {
        self.0
    }
    fn sign_ssv_message(&self, m: &[u8]) -> Result<RsaSignature, Error> {
        Ok(fake_rsa(self.0, m))
    }
}
struct Verifier;
impl SignatureVerifier for Verifier {
    fn verify(&self, op: &CommitteeOperator, m: &[u8], s: &RsaSignature) -> bool {
        fake_rsa(op.operator_id, m) == *s
    }
}

/// The "BLS partial signature" of operator `op` for `validator` over `root`.
fn fake_partial(op: OperatorId, validator: u64, root: &Root) -> BlsSignature {
    let d: [u8; 32] = Sha256::new()
        .chain_update(b"partial")
        .chain_update(op.to_le_bytes())
        .chain_update(validator.to_le_bytes())
        .chain_update(root)
        .finalize()
        .into();
    let mut s = [0u8; 96];
    for c in s.chunks_mut(32) {
        c.copy_from_slice(&d);
    }
    s
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Honest,
    Silent,
    CorruptPartials,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn member(n: u64, me: OperatorId) -> CommitteeMember {
    let ids: Vec<u64> = (1..=n).collect();
    CommitteeMember {
        operator_id: me,
        committee_id: CommitteeId::from_operators(&ids),
        rsa_public_key_pem: vec![],
        faulty_nodes: (n - 1) / 3,
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

fn duty(slot: u64, validators: u64) -> CommitteeDuty {
    let mut duties = Vec::new();
    for v in 0..validators {
        let mut pubkey = [0u8; 48];
        pubkey[..8].copy_from_slice(&v.to_le_bytes());
        duties.push(ValidatorDuty {
            kind: DutyKind::Attester {
                committee_index: v % 3,
                committees_at_slot: 3,
                validator_committee_index: v,
            },
            validator_index: v,
            pubkey,
        });
        if v % 3 == 0 {
            duties.push(ValidatorDuty {
                kind: DutyKind::SyncCommittee,
                validator_index: v,
                pubkey,
            });
        }
    }
    CommitteeDuty {
        slot,
        duties,
        attester_domain: [1; 32],
        sync_domain: [7; 32],
        pre_electra: false,
    }
}

fn vote(slot: u64) -> BeaconVote {
    let epoch = slot / 32;
    BeaconVote {
        block_root: [slot as u8; 32],
        source: Checkpoint {
            epoch: epoch.saturating_sub(1),
            root: [1; 32],
        },
        target: Checkpoint {
            epoch: epoch.max(1),
            root: [2; 32],
        },
    }
}

struct Node {
    runner: CommitteeRunner,
    signer: Signer,
    fault: Fault,
    /// (slot, validator, root) verified.
    done: HashSet<(u64, u64, Root)>,
    decided: HashMap<u64, BeaconVote>,
    timers: Vec<u64>,
}

struct Net {
    nodes: Vec<Node>,
    /// (to, message)
    queue: VecDeque<(usize, SignedSsvMessage)>,
    rng: Rng,
    culprits_named: HashSet<OperatorId>,
}

impl Net {
    fn new(n: u64, faults: &[Fault], seed: u64) -> Self {
        let nodes = (1..=n)
            .map(|id| Node {
                runner: CommitteeRunner::new(
                    member(n, id),
                    Config {
                        verify_all_signatures: true,
                        ..Config::default()
                    },
                ),
                signer: Signer(id),
                fault: faults
                    .get(id as usize - 1)
                    .copied()
                    .unwrap_or(Fault::Honest),
                done: HashSet::new(),
                decided: HashMap::new(),
                timers: vec![],
            })
            .collect();
        Net {
            nodes,
            queue: VecDeque::new(),
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            culprits_named: HashSet::new(),
        }
    }

    fn start(&mut self, i: usize, slot: u64, validators: u64) {
        if self.nodes[i].fault == Fault::Silent {
            return;
        }
        let mut out = vec![];
        let check = BeaconVoteCheck {
            slot,
            chain: ChainSpec::MAINNET,
        };
        let node = &mut self.nodes[i];
        let env = Env {
            signer: &node.signer,
            verifier: &Verifier,
            value_check: &check,
        };
        node.runner
            .start_duty(env, duty(slot, validators), vote(slot), &mut out)
            .unwrap();
        self.handle(i, slot, out);
    }

    fn handle(&mut self, i: usize, slot: u64, actions: Vec<RunnerAction>) {
        let mut work: VecDeque<RunnerAction> = actions.into();
        while let Some(a) = work.pop_front() {
            let mut out = vec![];
            match a {
                RunnerAction::Broadcast(m) => {
                    for j in 0..self.nodes.len() {
                        if j != i {
                            self.queue.push_back((j, m.clone()));
                        }
                    }
                }
                RunnerAction::SetTimer { slot, .. } => self.nodes[i].timers.push(slot),
                RunnerAction::Decided { slot, vote, .. } => {
                    self.nodes[i].decided.insert(slot, vote);
                }
                RunnerAction::Sign { slot, items, .. } => {
                    let node = &mut self.nodes[i];
                    let me = node.signer.0;
                    let sigs = items
                        .into_iter()
                        .map(|it| {
                            let mut s = fake_partial(me, it.duty.validator_index, &it.signing_root);
                            if node.fault == Fault::CorruptPartials {
                                s[0] ^= 0xff;
                            }
                            (it, s)
                        })
                        .collect();
                    let check = BeaconVoteCheck {
                        slot,
                        chain: ChainSpec::MAINNET,
                    };
                    let env = Env {
                        signer: &node.signer,
                        verifier: &Verifier,
                        value_check: &check,
                    };
                    node.runner.signed(env, slot, sigs, &mut out).unwrap();
                }
                RunnerAction::Reconstruct {
                    slot,
                    signing_root,
                    items,
                    ..
                } => {
                    let quorum = 2 * ((self.nodes.len() as u64 - 1) / 3) as usize + 1;
                    let mut verdicts = vec![];
                    for it in items {
                        assert!(it.partials.len() >= quorum, "reconstruct below quorum");
                        let bad: Vec<OperatorId> = it
                            .partials
                            .iter()
                            .filter(|(op, s)| {
                                *s != fake_partial(*op, it.duty.validator_index, &signing_root)
                            })
                            .map(|(op, _)| *op)
                            .collect();
                        if bad.is_empty() {
                            assert!(
                                self.nodes[i].done.insert((
                                    slot,
                                    it.duty.validator_index,
                                    signing_root
                                )),
                                "validator {} submitted twice",
                                it.duty.validator_index
                            );
                            verdicts.push((it.duty.validator_index, Ok(())));
                        } else {
                            self.culprits_named.extend(bad.iter().copied());
                            verdicts.push((
                                it.duty.validator_index,
                                Err(ReconstructFailure::InvalidPartials(bad)),
                            ));
                        }
                    }
                    self.nodes[i]
                        .runner
                        .reconstructed(slot, signing_root, verdicts, &mut out);
                }
            }
            let _ = slot;
            work.extend(out);
        }
    }

    /// Delivers queued messages in a shuffled order; fires timers when the queue runs dry.
    fn run(&mut self, slot: u64) {
        let mut idle_rounds = 0;
        loop {
            if self.queue.is_empty() {
                // Fire every armed timer once (a round timeout).
                let mut fired = false;
                for i in 0..self.nodes.len() {
                    let mut timers = std::mem::take(&mut self.nodes[i].timers);
                    timers.sort_unstable();
                    timers.dedup();
                    if self.nodes[i].fault == Fault::Silent {
                        continue;
                    }
                    for t in timers {
                        fired = true;
                        let mut out = vec![];
                        let check = BeaconVoteCheck {
                            slot,
                            chain: ChainSpec::MAINNET,
                        };
                        let node = &mut self.nodes[i];
                        let env = Env {
                            signer: &node.signer,
                            verifier: &Verifier,
                            value_check: &check,
                        };
                        let _ = node.runner.on_timeout(env, t, &mut out);
                        self.handle(i, t, out);
                    }
                }
                if !fired || self.queue.is_empty() {
                    idle_rounds += 1;
                    if idle_rounds > 20 {
                        return;
                    }
                }
                if self.queue.is_empty() {
                    continue;
                }
            }
            let k = (self.rng.next() % self.queue.len() as u64) as usize;
            let (to, msg) = self.queue.remove(k).unwrap();
            if self.nodes[to].fault == Fault::Silent {
                continue;
            }
            let mut out = vec![];
            let check = BeaconVoteCheck {
                slot,
                chain: ChainSpec::MAINNET,
            };
            let node = &mut self.nodes[to];
            let env = Env {
                signer: &node.signer,
                verifier: &Verifier,
                value_check: &check,
            };
            let r = node.runner.process_message(env, msg, &mut out);
            if std::env::var_os("RUNNER_TRACE").is_some() {
                let kinds: Vec<String> = out
                    .iter()
                    .map(|a| format!("{a:?}").chars().take(40).collect())
                    .collect();
                eprintln!("to {} -> {r:?}, {kinds:?}", to + 1);
            }
            self.handle(to, slot, out);
        }
    }

    fn assert_complete(&self, slot: u64, validators: u64) {
        let d = duty(slot, validators);
        for node in &self.nodes {
            if node.fault != Fault::Honest {
                continue;
            }
            assert!(
                node.runner.is_complete(slot),
                "operator {} did not complete slot {slot}",
                node.signer.0
            );
            let done = node.done.iter().filter(|(s, _, _)| *s == slot).count();
            assert_eq!(done, d.duties.len(), "operator {}", node.signer.0);
            assert_eq!(node.decided.get(&slot), Some(&vote(slot)));
        }
    }
}

#[test]
fn honest_committees_complete_every_duty() {
    for n in [4u64, 7, 10, 13] {
        for seed in 1..=3 {
            let mut net = Net::new(n, &[], seed);
            for slot in [64u64, 65, 66] {
                for i in 0..n as usize {
                    net.start(i, slot, 10);
                }
                net.run(slot);
                net.assert_complete(slot, 10);
            }
            assert!(net.culprits_named.is_empty());
        }
    }
}

#[test]
fn silent_first_leader_is_survived_by_a_round_change() {
    // Every operator in turn is silent, the first leader of the slot among them.
    for silent in 1..=4u64 {
        let mut faults = vec![Fault::Honest; 4];
        faults[silent as usize - 1] = Fault::Silent;
        let mut net = Net::new(4, &faults, silent);
        for i in 0..4 {
            net.start(i, 100, 5);
        }
        net.run(100);
        net.assert_complete(100, 5);
    }
}

#[test]
fn a_slot_changing_rounds_survives_the_next_slot_start() {
    // Each operator in turn is silent; slot 101 starts before slot 100 can decide, so slot
    // 100 (whose first leader may be the silent one) finishes its round change while 101 runs.
    for silent in 1..=4u64 {
        let mut faults = vec![Fault::Honest; 4];
        faults[silent as usize - 1] = Fault::Silent;
        let mut net = Net::new(4, &faults, 40 + silent);
        for i in 0..4 {
            net.start(i, 100, 5);
        }
        for i in 0..4 {
            net.start(i, 101, 5);
        }
        net.run(101);
        net.assert_complete(100, 5);
        net.assert_complete(101, 5);
    }
}

#[test]
fn corrupt_partials_are_named_and_never_submitted() {
    for bad in 1..=4u64 {
        for seed in 1..=4 {
            let mut faults = vec![Fault::Honest; 4];
            faults[bad as usize - 1] = Fault::CorruptPartials;
            let mut net = Net::new(4, &faults, seed * 10 + bad);
            for i in 0..4 {
                net.start(i, 200, 8);
            }
            net.run(200);
            net.assert_complete(200, 8);
            assert!(
                net.culprits_named.iter().all(|&c| c == bad),
                "{:?}",
                net.culprits_named
            );
        }
    }
}

#[test]
fn duties_started_late_still_complete() {
    for seed in 1..=5 {
        let mut net = Net::new(7, &[], seed);
        // Operators 1..4 start, messages flow, then the rest start.
        for i in 0..4 {
            net.start(i, 300, 6);
        }
        // Deliver some messages before the late starters begin.
        for _ in 0..10 {
            if let Some((to, m)) = net.queue.pop_front() {
                let mut out = vec![];
                let check = BeaconVoteCheck {
                    slot: 300,
                    chain: ChainSpec::MAINNET,
                };
                let node = &mut net.nodes[to];
                let env = Env {
                    signer: &node.signer,
                    verifier: &Verifier,
                    value_check: &check,
                };
                let _ = node.runner.process_message(env, m, &mut out);
                net.handle(to, 300, out);
            }
        }
        for i in 4..7 {
            net.start(i, 300, 6);
        }
        net.run(300);
        net.assert_complete(300, 6);
    }
}

fn partial_msg(
    runner: &CommitteeRunner,
    from: OperatorId,
    slot: u64,
    msgs: Vec<PartialSignatureMessage>,
) -> SignedSsvMessage {
    let psm = PartialSignatureMessages::new(PartialSigMsgType::PostConsensus, slot, msgs).unwrap();
    let ssv = SsvMessage::new(
        MsgType::PartialSignature,
        *runner.message_id(),
        psm.to_ssz(),
    )
    .unwrap();
    let sig = fake_rsa(from, &ssz::Encode::as_ssz_bytes(&ssv));
    SignedSsvMessage::new(vec![sig], vec![from], ssv, vec![]).unwrap()
}

#[test]
fn malformed_partials_are_refused_with_codes() {
    let mut net = Net::new(4, &[], 7);
    for i in 0..4 {
        net.start(i, 400, 3);
    }
    net.run(400);
    net.assert_complete(400, 3);
    // Slot 400 is complete: duplicates, impostors and malformed messages are refused.
    let check = BeaconVoteCheck {
        slot: 400,
        chain: ChainSpec::MAINNET,
    };
    let signer = Signer(1);
    let env = Env {
        signer: &signer,
        verifier: &Verifier,
        value_check: &check,
    };
    let mut out = vec![];
    let good_root = {
        // Recompute the attester root the runner uses via the done set of node 1.
        *net.nodes[1]
            .done
            .iter()
            .find(|(s, v, _)| *s == 400 && *v == 1)
            .map(|(_, _, r)| r)
            .unwrap()
    };
    let runner = &mut net.nodes[0].runner;
    let m = |v: u64, root: Root, signer: u64| PartialSignatureMessage {
        partial_signature: [0; 96],
        signing_root: root,
        signer,
        validator_index: v,
    };
    let code = |r: Result<Processed, Error>| r.unwrap_err().code();
    // Operator 2 already sent its partials for slot 400.
    let msg = partial_msg(runner, 2, 400, vec![m(1, good_root, 2)]);
    assert_eq!(
        code(runner.process_message(env, msg, &mut out)),
        ErrorCode::NonUniqueSigner
    );
    // Signer inside differs from the message signer.
    let msg = partial_msg(runner, 3, 400, vec![m(1, good_root, 2)]);
    assert_eq!(
        code(runner.process_message(env, msg, &mut out)),
        ErrorCode::PartialSigInconsistentSigner
    );
    // Not a member.
    let msg = partial_msg(runner, 9, 400, vec![m(1, good_root, 9)]);
    assert_eq!(
        code(runner.process_message(env, msg, &mut out)),
        ErrorCode::SignerIsNotInCommittee
    );
    // A slot with no duty here.
    let msg = partial_msg(runner, 3, 399, vec![m(1, good_root, 3)]);
    assert_eq!(
        code(runner.process_message(env, msg, &mut out)),
        ErrorCode::NoRunnerForSlot
    );
    // Wrong type of message id.
    let psm = PartialSignatureMessages::new(
        PartialSigMsgType::RandaoPartialSig,
        400,
        vec![m(1, good_root, 3)],
    )
    .unwrap();
    let ssv = SsvMessage::new(
        MsgType::PartialSignature,
        *runner.message_id(),
        psm.to_ssz(),
    )
    .unwrap();
    let sig = fake_rsa(3, &ssz::Encode::as_ssz_bytes(&ssv));
    let msg = SignedSsvMessage::new(vec![sig], vec![3], ssv, vec![]).unwrap();
    assert_eq!(
        code(runner.process_message(env, msg, &mut out)),
        ErrorCode::MessageTypeInvalid
    );
    // Garbage data.
    let ssv = SsvMessage::new(
        MsgType::PartialSignature,
        *runner.message_id(),
        vec![1, 2, 3],
    )
    .unwrap();
    let msg = SignedSsvMessage::new(vec![[0; 256]], vec![3], ssv, vec![]).unwrap();
    assert_eq!(
        code(runner.process_message(env, msg, &mut out)),
        ErrorCode::UnmarshalSSZ
    );
    assert!(
        out.is_empty(),
        "refused messages produce no action: {out:?}"
    );
}

#[test]
fn wrong_roots_and_unknown_validators_are_refused() {
    let mut net = Net::new(
        4,
        &[Fault::Honest, Fault::Honest, Fault::Honest, Fault::Silent],
        3,
    );
    for i in 0..4 {
        net.start(i, 500, 3);
    }
    net.run(500);
    net.assert_complete(500, 3);
    // Operator 4 was silent: its partials for slot 500 are still welcome, if well-formed.
    let root = *net.nodes[0]
        .done
        .iter()
        .find(|(s, v, _)| *s == 500 && *v == 2)
        .map(|(_, _, r)| r)
        .unwrap();
    let signer = Signer(1);
    let check = BeaconVoteCheck {
        slot: 500,
        chain: ChainSpec::MAINNET,
    };
    let env = Env {
        signer: &signer,
        verifier: &Verifier,
        value_check: &check,
    };
    let runner = &mut net.nodes[0].runner;
    let mut out = vec![];
    let bad_root = partial_msg(
        runner,
        4,
        500,
        vec![PartialSignatureMessage {
            partial_signature: [0; 96],
            signing_root: [0xee; 32],
            signer: 4,
            validator_index: 2,
        }],
    );
    assert_eq!(
        runner
            .process_message(env, bad_root, &mut out)
            .unwrap_err()
            .code(),
        ErrorCode::WrongSigningRoot
    );
    let unknown = partial_msg(
        runner,
        4,
        500,
        vec![PartialSignatureMessage {
            partial_signature: [0; 96],
            signing_root: root,
            signer: 4,
            validator_index: 77,
        }],
    );
    assert_eq!(
        runner
            .process_message(env, unknown, &mut out)
            .unwrap_err()
            .code(),
        ErrorCode::UnknownValidatorIndex
    );
    // A well-formed late message is applied (the duty is already done: no new action),
    // and a partial in it for a validator outside our duty is passed over, not held against
    // the rest (registries differ for a moment while a contract change reaches each
    // operator).
    let late = partial_msg(
        runner,
        4,
        500,
        vec![
            PartialSignatureMessage {
                partial_signature: [0; 96],
                signing_root: root,
                signer: 4,
                validator_index: 77,
            },
            PartialSignatureMessage {
                partial_signature: [0; 96],
                signing_root: root,
                signer: 4,
                validator_index: 2,
            },
        ],
    );
    assert_eq!(
        runner.process_message(env, late, &mut out).unwrap(),
        Processed::Applied
    );
    assert!(out.is_empty());
}

/// A finished duty's round timer is dropped (the Go node's `HasRunningDuty`): a decided,
/// complete slot sends no round change however often its timer fires, while a slot that is
/// still running does.
#[test]
fn no_round_change_after_a_duty_completes() {
    let mut net = Net::new(4, &[], 7);
    let slot = 64u64;
    for i in 0..4 {
        net.start(i, slot, 10);
    }
    net.run(slot);
    net.assert_complete(slot, 10);
    let check = BeaconVoteCheck {
        slot,
        chain: ChainSpec::MAINNET,
    };
    for node in &mut net.nodes {
        let env = Env {
            signer: &node.signer,
            verifier: &Verifier,
            value_check: &check,
        };
        for _ in 0..5 {
            let mut out = vec![];
            node.runner.on_timeout(env, slot, &mut out).unwrap();
            assert!(
                out.is_empty(),
                "a finished duty acted on a timeout: {out:?}"
            );
        }
    }
    // The next slot has started but not decided: its timeout changes round.
    let next = slot + 1;
    let node = &mut net.nodes[0];
    let env = Env {
        signer: &node.signer,
        verifier: &Verifier,
        value_check: &BeaconVoteCheck {
            slot: next,
            chain: ChainSpec::MAINNET,
        },
    };
    let mut out = vec![];
    node.runner
        .start_duty(env, duty(next, 10), vote(next), &mut out)
        .unwrap();
    let mut out = vec![];
    node.runner.on_timeout(env, next, &mut out).unwrap();
    assert!(
        out.iter().any(|a| matches!(a, RunnerAction::Broadcast(_))),
        "a running duty's timeout must send a round change"
    );
}
