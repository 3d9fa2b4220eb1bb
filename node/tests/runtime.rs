//! The data plane without processes: four operators' [`Shard`]s, each over its own
//! [`Services`] (a detached network handle that records publishes and verdicts, a store in a
//! temporary directory, a one-thread crypto pool), wired to each other by this test instead of
//! libp2p. The committee duty runs end to end (QBFT, partial signatures, reconstruction,
//! submission), and hostile gossip gets the verdicts the shard promises.

// Operators are addressed by position while other operators' shards are borrowed mutably.
#![allow(clippy::needless_range_loop)]
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use ssv_crypto_pipeline::threshold::split_secret_key;
use ssv_crypto_pipeline::{
    HashToG2Cache, LagrangeCache, OperatorKeyCache, OperatorPublicKey, OperatorSecretKey,
    PublicKey, SecretKey, Signature,
};
use ssv_netio::{
    DetachedEvent, DetachedNetwork, InboundMessage, MessageId, NetworkHandle, PeerId, Subnet,
    ValidationResult,
};
use ssv_protocol::beacon_vote::{BeaconVote, Checkpoint};
use ssv_protocol::chain::{ChainSpec, SlotClock};
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::message::MsgType;
use ssv_protocol::runner::{CommitteeDuty, DutyKind, ValidatorDuty};
use ssv_protocol::signing::compute_signing_root;
use ssv_protocol::types::{CommitteeMember, CommitteeOperator, DomainType, OperatorId, quorum};
use ssv_storage::{Store, StoreConfig};
use tree_hash::TreeHash as _;

use ssv_node::{
    CommitteeInfo, Doppelganger, LiveRegistry, Metrics, NetworkIndex, Registry, SHARD_EVENTS_MAX,
    SUBMISSIONS_MAX, Services, Shard, ShardEvent, Submission, ValidatorShare, crypto_pool,
};

const DOMAIN: DomainType = DomainType::SPEC_TESTING;
const OPERATORS: [OperatorId; 4] = [1, 2, 3, 4];
const VALIDATORS: u64 = 6;
/// Validators `0..SYNC_MEMBERS` are also in the sync committee.
const SYNC_MEMBERS: u64 = 2;
/// The slot the duties run at (the clock is set so that it is the current one).
const SLOT: u64 = 3 * 32 + 5;
const ATTESTER_DOMAIN: [u8; 32] = [0xa1; 32];
const SYNC_DOMAIN: [u8; 32] = [0x5c; 32];
/// Longest an end-to-end duty may take in this test (it takes milliseconds).
const DEADLINE: Duration = Duration::from_secs(20);

/// One node of the test committee (usually one operator; several when it hosts several of
/// the committee's operator IDs).
struct Operator {
    /// The committee's operators this node hosts (ascending; the first names it).
    ids: Vec<OperatorId>,
    shard: Shard,
    services: Arc<Services>,
    events: async_channel::Receiver<ShardEvent>,
    submissions: async_channel::Receiver<Submission>,
    network: DetachedNetwork,
    /// Verdicts this operator's shard reported, in order.
    verdicts: Vec<ValidationResult>,
    _dir: tempfile::TempDir,
}

/// Four operators, one committee, [`VALIDATORS`] validators.
struct Cluster {
    ops: Vec<Operator>,
    validator_keys: Vec<PublicKey>,
    subnet: Subnet,
    /// Every message published so far, by its publisher.
    published: Vec<(OperatorId, Vec<u8>)>,
}

fn vote() -> BeaconVote {
    BeaconVote {
        block_root: [0xbb; 32],
        source: Checkpoint {
            epoch: 2,
            root: [0x22; 32],
        },
        target: Checkpoint {
            epoch: 3,
            root: [0x33; 32],
        },
    }
}

fn duty() -> CommitteeDuty {
    let mut duties = Vec::new();
    for v in 0..VALIDATORS {
        let pubkey = validator_secret(v).public_key().to_bytes();
        duties.push(ValidatorDuty {
            kind: DutyKind::Attester {
                committee_index: v % 2,
                committees_at_slot: 2,
                validator_committee_index: v,
            },
            validator_index: v,
            pubkey,
        });
        if v < SYNC_MEMBERS {
            duties.push(ValidatorDuty {
                kind: DutyKind::SyncCommittee,
                validator_index: v,
                pubkey,
            });
        }
    }
    CommitteeDuty {
        slot: SLOT,
        duties,
        attester_domain: ATTESTER_DOMAIN,
        sync_domain: SYNC_DOMAIN,
        pre_electra: false,
    }
}

fn validator_secret(v: u64) -> SecretKey {
    let mut ikm = [7u8; 32];
    ikm[..8].copy_from_slice(&v.to_le_bytes());
    SecretKey::from_ikm(&ikm)
}

impl Cluster {
    fn new() -> Cluster {
        Self::with_faults(&[])
    }

    /// A cluster whose stores refuse every commit (a failing disk) at the operators in
    /// `failing_disks`.
    fn with_faults(failing_disks: &[OperatorId]) -> Cluster {
        Self::build(failing_disks, &[], &OPERATORS.map(|o| vec![o]))
    }

    /// A cluster whose operators in `protected` run doppelganger protection (one detection
    /// epoch) with every validator tracked and still in detection.
    fn with_doppelganger(protected: &[OperatorId]) -> Cluster {
        Self::build(&[], protected, &OPERATORS.map(|o| vec![o]))
    }

    /// Nodes hosting `nodes` (each a list of the committee's operator IDs; an ID in none is
    /// silent).
    fn build(
        failing_disks: &[OperatorId],
        protected: &[OperatorId],
        nodes: &[Vec<OperatorId>],
    ) -> Cluster {
        let keys: BTreeMap<OperatorId, Arc<OperatorSecretKey>> = OPERATORS
            .iter()
            .map(|&id| {
                (
                    id,
                    Arc::new(OperatorSecretKey::generate().expect("rsa key")),
                )
            })
            .collect();
        let pems: BTreeMap<OperatorId, String> = keys
            .iter()
            .map(|(id, k)| (*id, k.public_key().to_base64_pem()))
            .collect();
        let operator_keys = Arc::new(OperatorKeyCache::new());
        for (id, pem) in &pems {
            operator_keys.insert(
                *id,
                Arc::new(OperatorPublicKey::from_base64_pem(pem).expect("our pem")),
            );
        }
        let committee_id = CommitteeId::from_operators(&OPERATORS);
        let subnet = Subnet::new(committee_id.subnet() as usize).expect("subnet in range");
        // Shares of every validator for every operator.
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let mut shares: Vec<HashMap<OperatorId, SecretKey>> = Vec::new();
        let mut validator_keys = Vec::new();
        for v in 0..VALIDATORS {
            let sk = validator_secret(v);
            validator_keys.push(sk.public_key());
            let split = split_secret_key(&sk, quorum(OPERATORS.len()), &OPERATORS, &mut rng)
                .expect("split");
            shares.push(split.into_iter().collect());
        }
        let pool = Arc::new(crypto_pool(1).expect("pool"));
        let spec = ChainSpec::MAINNET
            .with_slot_duration(Duration::from_secs(4))
            .expect("4 s slots");
        // SLOT started a moment ago.
        let clock =
            SlotClock::from_genesis_ms(SlotClock::now_ms() - SLOT * spec.slot_ms() - 10, spec)
                .expect("clock");
        let mut ops = Vec::new();
        for ids in nodes {
            let id = ids[0];
            let member_of = |id: OperatorId| CommitteeMember {
                operator_id: id,
                committee_id,
                rsa_public_key_pem: pems[&id].as_bytes().to_vec(),
                faulty_nodes: 1,
                committee: OPERATORS
                    .iter()
                    .map(|o| CommitteeOperator {
                        operator_id: *o,
                        rsa_public_key_pem: pems[o].as_bytes().to_vec(),
                    })
                    .collect(),
                domain: DOMAIN,
            };
            let validators_of = |id: OperatorId| -> HashMap<u64, Arc<ValidatorShare>> {
                (0..VALIDATORS)
                    .map(|v| {
                        let s = &shares[v as usize];
                        let share = ValidatorShare {
                            index: v,
                            pubkey: validator_keys[v as usize].to_bytes(),
                            public_key: validator_keys[v as usize],
                            secret_share: s[&id].clone(),
                            fee_recipient: [0; 20],
                            exit_requested: None,
                            owner: [0; 20],
                            share_pubkey_bytes: Vec::new(),
                            share_pubkeys: s.iter().map(|(o, k)| (*o, k.public_key())).collect(),
                        };
                        (v, Arc::new(share))
                    })
                    .collect()
            };
            // One committee entry per operator of ours in it.
            let committees: Vec<Arc<CommitteeInfo>> = ids
                .iter()
                .map(|&id| {
                    Arc::new(CommitteeInfo {
                        id: committee_id.0,
                        operators: OPERATORS.to_vec(),
                        subnet: subnet.index() as u64,
                        member: member_of(id),
                        validators: validators_of(id),
                    })
                })
                .collect();
            let registry = Arc::new(Registry {
                operator_id: id,
                operator_keys: operator_keys.clone(),
                network: Arc::new(NetworkIndex::of_committees(&committees)),
                committees,
                committee_of: (0..VALIDATORS).map(|v| (v, 0)).collect(),
                skipped: Vec::new(),
            });
            let dir = tempfile::tempdir().expect("temp dir");
            let mut store_config = StoreConfig::new(dir.path().join("db"), [7; 32]);
            if failing_disks.contains(&id) {
                store_config.commit_fault = Some(Arc::new(AtomicBool::new(true)));
            }
            let store = Arc::new(Store::open(store_config).expect("store"));
            let (network, detached) = NetworkHandle::detached(4096);
            let (sub_tx, sub_rx) = async_channel::bounded(SUBMISSIONS_MAX);
            let services = Arc::new(Services {
                registry: Arc::new(LiveRegistry::new(registry)),
                operator_keys: Arc::new(
                    ssv_node::OurOperators::new(ids.iter().map(|i| (*i, keys[i].clone())))
                        .expect("distinct operators"),
                ),
                published: Default::default(),
                network,
                store,
                pool: pool.clone(),
                hash_cache: Arc::new(HashToG2Cache::new()),
                lagrange: Arc::new(LagrangeCache::new()),
                submissions: sub_tx,
                metrics: Arc::new(Metrics::default()),
                clock,
                fault: None,
                domain: DOMAIN,
                duties: Default::default(),
                stopped: Default::default(),
                doppelganger: if protected.contains(&id) {
                    let d = Doppelganger::new(1);
                    assert_eq!(d.track(0..VALIDATORS), (VALIDATORS as usize, 0));
                    Arc::new(d)
                } else {
                    Default::default()
                },
                clock_offset_ms: Default::default(),
            });
            let (ev_tx, ev_rx) = async_channel::bounded(SHARD_EVENTS_MAX);
            let shard = Shard::new(0, 1, services.clone(), ev_tx);
            assert_eq!(shard.committee_count(), ids.len());
            ops.push(Operator {
                ids: ids.clone(),
                shard,
                services,
                events: ev_rx,
                submissions: sub_rx,
                network: detached,
                verdicts: Vec::new(),
                _dir: dir,
            });
        }
        Cluster {
            ops,
            validator_keys,
            subnet,
            published: Vec::new(),
        }
    }

    /// Delivers `data` from `from` to operator `to` (index) as gossip.
    fn deliver(&mut self, to: usize, data: Vec<u8>) {
        let msg = InboundMessage {
            subnet: self.subnet,
            id: MessageId::new(&data[..data.len().min(20)]),
            propagation_source: PeerId::random(),
            author: None,
            data,
            received_at: Instant::now(),
        };
        self.ops[to].shard.on_gossip(msg);
    }

    /// One pass: crypto results into each shard, a flush, and every publish delivered to the
    /// other operators (except to those in `muted`). Returns whether anything happened.
    fn step(&mut self, muted: &[OperatorId]) -> bool {
        let mut busy = false;
        for i in 0..self.ops.len() {
            while let Ok(ev) = self.ops[i].events.try_recv() {
                busy = true;
                self.ops[i].shard.on_event(ev);
            }
            self.ops[i].shard.flush();
            let from = self.ops[i].ids[0];
            for ev in self.ops[i].network.drain() {
                busy = true;
                match ev {
                    DetachedEvent::Published { data, .. } => {
                        self.published.push((from, data.clone()));
                        for j in 0..self.ops.len() {
                            if j != i && !muted.contains(&self.ops[j].ids[0]) {
                                self.deliver(j, data.clone());
                            }
                        }
                    }
                    DetachedEvent::Reported { result, .. } => self.ops[i].verdicts.push(result),
                    DetachedEvent::Subscribed(..) => {}
                }
            }
        }
        busy
    }

    /// Drops the events and publishes pending now (for tests that inspect verdicts only).
    fn verdicts_of(&mut self, i: usize) -> Vec<ValidationResult> {
        for ev in self.ops[i].network.drain() {
            if let DetachedEvent::Reported { result, .. } = ev {
                self.ops[i].verdicts.push(result);
            }
        }
        std::mem::take(&mut self.ops[i].verdicts)
    }

    fn start_duty(&mut self, who: &[OperatorId]) {
        self.start(who, duty(), vote());
    }

    fn start(&mut self, who: &[OperatorId], duty: CommitteeDuty, vote: BeaconVote) {
        for op in self.ops.iter_mut() {
            if who.contains(&op.ids[0]) {
                // Every committee entry of the node (one per operator of ours).
                for committee in 0..op.ids.len() {
                    assert!(op.shard.on_event(ShardEvent::Duty {
                        committee,
                        duty: duty.clone(),
                        vote,
                    }));
                }
            }
        }
    }

    /// Runs for `span`, collecting submissions.
    async fn run_for(&mut self, span: Duration) -> HashMap<OperatorId, Submitted> {
        let until = Instant::now() + span;
        let mut got: HashMap<OperatorId, Submitted> = HashMap::new();
        while Instant::now() < until {
            let busy = self.step(&[]);
            self.collect(&mut got);
            if !busy {
                glommio::timer::sleep(Duration::from_millis(2)).await;
            }
        }
        got
    }

    fn collect(&self, got: &mut HashMap<OperatorId, Submitted>) {
        for (i, op) in self.ops.iter().enumerate() {
            while let Ok(s) = op.submissions.try_recv() {
                let entry = got.entry(self.ops[i].ids[0]).or_default();
                match s {
                    Submission::Attestations(a) => entry.attestations.extend(a),
                    Submission::SyncMessages(m) => entry.sync.extend(m),
                    // These runs schedule committee duties only.
                    _ => {}
                }
            }
        }
    }

    /// Partial-signature messages published by `op` so far.
    fn partials_published_by(&self, op: OperatorId) -> usize {
        self.published
            .iter()
            .filter(|(from, data)| {
                *from == op
                    && ssv_protocol::message::SignedSsvMessage::from_ssz(data)
                        .is_ok_and(|m| m.ssv_message.msg_type == MsgType::PartialSignature.to_u64())
            })
            .count()
    }

    /// Runs until every operator in `who` has submitted every attestation and sync message
    /// of the duty; returns what each submitted.
    async fn run_until_submitted(
        &mut self,
        who: &[OperatorId],
        muted: &[OperatorId],
    ) -> HashMap<OperatorId, Submitted> {
        let deadline = Instant::now() + DEADLINE;
        let mut got: HashMap<OperatorId, Submitted> = HashMap::new();
        loop {
            let busy = self.step(muted);
            self.collect(&mut got);
            // A node submits each duty once per operator of ours in the committee.
            let done = who.iter().all(|id| {
                let members = self
                    .ops
                    .iter()
                    .find(|o| o.ids[0] == *id)
                    .map_or(1, |o| o.ids.len());
                got.get(id).is_some_and(|s| {
                    s.attestations.len() == members * VALIDATORS as usize
                        && s.sync.len() == members * SYNC_MEMBERS as usize
                })
            });
            if done {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "duty not complete within {DEADLINE:?}: {:?}",
                got.iter()
                    .map(|(k, v)| (*k, v.attestations.len(), v.sync.len()))
                    .collect::<Vec<_>>()
            );
            if !busy {
                // The crypto pool is working or a round timer runs: let it.
                glommio::timer::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

#[derive(Debug, Default)]
struct Submitted {
    attestations: Vec<ssv_beacon_api::types::SingleAttestation>,
    sync: Vec<ssv_beacon_api::types::SyncCommitteeMessage>,
}

/// Runs `f` on a glommio executor (round timers are glommio tasks).
fn on_executor<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("runtime-test")
        .spawn(f)
        .expect("glommio executor")
        .join()
        .expect("test executor panicked");
}

fn check_signatures(c: &Cluster, s: &Submitted) {
    let data_root = vote().attestation_data(SLOT).tree_hash_root().0;
    let att_root = compute_signing_root(data_root, ATTESTER_DOMAIN);
    let sync_root = compute_signing_root(vote().block_root, SYNC_DOMAIN);
    let mut seen: Vec<u64> = s.attestations.iter().map(|a| a.attester_index).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..VALIDATORS).collect::<Vec<_>>());
    for a in &s.attestations {
        assert_eq!(a.data, vote().attestation_data(SLOT));
        assert_eq!(a.committee_index, a.attester_index % 2);
        Signature::from_bytes(&a.signature)
            .expect("signature decodes")
            .verify(&c.validator_keys[a.attester_index as usize], &att_root)
            .expect("the validator's attestation signature verifies");
    }
    for m in &s.sync {
        assert_eq!((m.slot, m.beacon_block_root), (SLOT, vote().block_root));
        Signature::from_bytes(&m.signature)
            .expect("signature decodes")
            .verify(&c.validator_keys[m.validator_index as usize], &sync_root)
            .expect("the validator's sync signature verifies");
    }
}

/// All four operators: every attestation and sync message is submitted by each, with the
/// validator's full signature; no honest message is rejected; one decision and one partial
/// per validator duty at each operator.
#[test]
fn four_operators_complete_a_committee_duty() {
    on_executor(|| async {
        let mut c = Cluster::new();
        c.start_duty(&OPERATORS);
        let got = c.run_until_submitted(&OPERATORS, &[]).await;
        for id in OPERATORS {
            check_signatures(&c, &got[&id]);
        }
        for op in &c.ops {
            // Honest traffic is never rejected (a message that arrives after its instance
            // decided may be ignored: nothing is left for it to do).
            assert!(!op.verdicts.is_empty());
            assert!(
                op.verdicts.iter().all(|v| *v != ValidationResult::Reject),
                "operator {}: {:?}\n{}",
                op.ids[0],
                op.verdicts,
                op.services
                    .metrics
                    .render()
                    .lines()
                    .filter(|l| l.starts_with("ssv_p2p_message_validations_"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            let m = &op.services.metrics;
            assert_eq!(m.decided.load(Relaxed), 1);
            assert_eq!(
                m.partials_signed.load(Relaxed),
                VALIDATORS + SYNC_MEMBERS,
                "one partial per validator duty"
            );
            assert_eq!(m.bad_partials.load(Relaxed), 0);
            assert!(m.signatures_reconstructed.load(Relaxed) >= VALIDATORS + SYNC_MEMBERS);
        }
    });
}

/// One node hosts operators 1 and 2 of the committee, operator 3 runs alone, operator 4 is
/// silent. The quorum (3) needs both of the node's members, so each member's messages must
/// reach the other inside the node (gossipsub never delivers a node's own messages) and count
/// as a peer's would; each member signs as itself, in messages of its own that operator 3
/// RSA-verifies. Fails if the node runs the committee once, or without the loopback.
#[test]
fn one_node_hosting_two_operators_of_a_committee_completes_the_duty() {
    on_executor(|| async {
        let mut c = Cluster::build(&[], &[], &[vec![1, 2], vec![3]]);
        c.start_duty(&[1, 3]);
        let got = c.run_until_submitted(&[1, 3], &[]).await;
        check_signatures(&c, &got[&3]);
        // The node's two members each submit every duty, with the same (unique) signature.
        let node = &got[&1];
        let mut first = Submitted::default();
        let mut by_index: HashMap<u64, Vec<[u8; 96]>> = HashMap::new();
        for a in &node.attestations {
            by_index
                .entry(a.attester_index)
                .or_default()
                .push(a.signature);
            if by_index[&a.attester_index].len() == 1 {
                first.attestations.push(a.clone());
            }
        }
        assert!(by_index.values().all(|s| s.len() == 2 && s[0] == s[1]));
        for m in &node.sync {
            if !first
                .sync
                .iter()
                .any(|f| f.validator_index == m.validator_index)
            {
                first.sync.push(m.clone());
            }
        }
        check_signatures(&c, &first);
        // Each member signed its own messages: single-signer messages as 1 and as 2.
        let signers: std::collections::BTreeSet<OperatorId> = c
            .published
            .iter()
            .filter(|(from, _)| *from == 1)
            .filter_map(|(_, data)| ssv_protocol::message::SignedSsvMessage::from_ssz(data).ok())
            .filter(|m| m.operator_ids.len() == 1)
            .map(|m| m.operator_ids[0])
            .collect();
        assert_eq!(signers.into_iter().collect::<Vec<_>>(), vec![1, 2]);
        // Operator 3 verified them (RSA with each member's own key) and rejected none.
        let three = &c.ops[1];
        assert!(!three.verdicts.is_empty());
        assert!(
            three
                .verdicts
                .iter()
                .all(|v| *v != ValidationResult::Reject)
        );
        assert_eq!(c.ops[0].services.metrics.decided.load(Relaxed), 2);
        assert_eq!(three.services.metrics.decided.load(Relaxed), 1);
    });
}

/// One operator silent (f = 1): the other three still complete the duty.
#[test]
fn three_of_four_complete_without_the_fourth() {
    on_executor(|| async {
        let mut c = Cluster::new();
        let live = [1, 2, 3];
        c.start_duty(&live);
        let got = c.run_until_submitted(&live, &[4]).await;
        for id in live {
            check_signatures(&c, &got[&id]);
        }
    });
}

/// Hostile or foreign gossip gets the verdict the shard promises, and none of it reaches
/// the runner: undecodable bytes and a forged operator signature are rejected, a message of
/// another domain is ignored (the Go node's verdicts).
#[test]
fn hostile_gossip_gets_its_verdict() {
    on_executor(|| async {
        let mut c = Cluster::new();
        c.start_duty(&OPERATORS);
        // Let the duty start so that real messages exist to tamper with.
        for _ in 0..50 {
            c.step(&[]);
            if c.published.len() >= 4 {
                break;
            }
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        let (from, genuine) = c
            .published
            .iter()
            .find(|(from, _)| *from != 1)
            .cloned()
            .expect("some operator published");
        let _ = c.verdicts_of(0);

        // Undecodable.
        c.deliver(0, vec![0xff; 40]);
        // A forged operator signature (a flipped bit keeps it decodable).
        let signed = ssv_protocol::message::SignedSsvMessage::from_ssz(&genuine).expect("decodes");
        let mut forged = signed.clone();
        if let Some(sig) = forged.signatures.get_mut(0)
            && let Some(b) = sig.get_mut(17)
        {
            *b ^= 0x40;
        }
        c.deliver(0, forged.to_ssz());
        // Another network's domain.
        let mut foreign = signed.clone();
        foreign.ssv_message.msg_id.0[..4].copy_from_slice(&DomainType::MAINNET.0);
        c.deliver(0, foreign.to_ssz());
        let verdicts = c.verdicts_of(0);
        assert_eq!(
            verdicts,
            vec![
                ValidationResult::Reject,
                ValidationResult::Reject,
                ValidationResult::Ignore
            ],
            "(a message from operator {from} tampered with)"
        );
        // The genuine one is still fine (a duplicate the runner has applied: not a reject).
        c.deliver(0, genuine);
        assert_ne!(c.verdicts_of(0), vec![ValidationResult::Reject]);
    });
}

/// A validator removed on-chain while the node runs (contract sync's `StopValidator`) is
/// never signed for again: no operator publishes a partial signature for it and no
/// attestation of it is submitted, while every other validator's duty completes.
#[test]
fn a_validator_stopped_on_chain_is_never_signed_for() {
    on_executor(|| async {
        const STOPPED: u64 = 3;
        let mut c = Cluster::new();
        let pubkey = c.validator_keys[STOPPED as usize].to_bytes();
        for op in &c.ops {
            assert!(op.services.stopped.stop(pubkey));
        }
        let mut d = duty();
        d.duties
            .retain(|v| matches!(v.kind, DutyKind::Attester { .. }));
        c.start(&OPERATORS, d, vote());
        let got = c.run_for(Duration::from_millis(2000)).await;
        for id in OPERATORS {
            let mut seen: Vec<u64> = got[&id]
                .attestations
                .iter()
                .map(|a| a.attester_index)
                .collect();
            seen.sort_unstable();
            let expected: Vec<u64> = (0..VALIDATORS).filter(|v| *v != STOPPED).collect();
            assert_eq!(seen, expected, "operator {id}");
        }
        for (from, data) in &c.published {
            let m = ssv_protocol::message::SignedSsvMessage::from_ssz(data).expect("decodes");
            if m.ssv_message.msg_type != MsgType::PartialSignature.to_u64() {
                continue;
            }
            let psm =
                ssv_protocol::partial_sig::PartialSignatureMessages::from_ssz(&m.ssv_message.data)
                    .expect("partials decode");
            assert!(
                psm.messages.iter().all(|p| p.validator_index != STOPPED),
                "operator {from} signed for the stopped validator"
            );
        }
    });
}

/// The validators partial signatures `op` published name.
fn validators_signed_by(c: &Cluster, op: OperatorId) -> Vec<u64> {
    let mut out = Vec::new();
    for (from, data) in &c.published {
        let m = ssv_protocol::message::SignedSsvMessage::from_ssz(data).expect("decodes");
        if *from != op || m.ssv_message.msg_type != MsgType::PartialSignature.to_u64() {
            continue;
        }
        let psm =
            ssv_protocol::partial_sig::PartialSignatureMessages::from_ssz(&m.ssv_message.data)
                .expect("partials decode");
        out.extend(psm.messages.iter().map(|p| p.validator_index));
    }
    out
}

/// Doppelganger protection on at every operator, one validator (an attester and a
/// sync-committee member) still in detection: no operator signs a partial for it, so no
/// attestation or sync message of it exists, while every other validator's duties complete.
#[test]
fn a_validator_in_doppelganger_detection_is_never_signed_for() {
    on_executor(|| async {
        const DETECTING: u64 = 1;
        const { assert!(DETECTING < SYNC_MEMBERS) };
        let mut c = Cluster::with_doppelganger(&OPERATORS);
        for op in &c.ops {
            for v in (0..VALIDATORS).filter(|v| *v != DETECTING) {
                op.services.doppelganger.report_quorum(v);
            }
            assert_eq!(
                op.services.doppelganger.counts(),
                (VALIDATORS as usize - 1, 1)
            );
        }
        c.start_duty(&OPERATORS);
        let got = c.run_for(Duration::from_millis(2000)).await;
        for (i, id) in OPERATORS.into_iter().enumerate() {
            let mut att: Vec<u64> = got[&id]
                .attestations
                .iter()
                .map(|a| a.attester_index)
                .collect();
            att.sort_unstable();
            let expected: Vec<u64> = (0..VALIDATORS).filter(|v| *v != DETECTING).collect();
            assert_eq!(att, expected, "operator {id}");
            let sync: Vec<u64> = got[&id].sync.iter().map(|m| m.validator_index).collect();
            let expected: Vec<u64> = (0..SYNC_MEMBERS).filter(|v| *v != DETECTING).collect();
            assert_eq!(sync, expected, "operator {id}");
            assert!(
                !validators_signed_by(&c, id).contains(&DETECTING),
                "operator {id} signed for the validator in detection"
            );
            // Its attestation and its sync message were refused.
            assert_eq!(
                c.ops[i].services.metrics.doppelganger_refused.load(Relaxed),
                2,
                "operator {id}"
            );
            assert!(!c.ops[i].services.doppelganger.can_sign(DETECTING));
        }
    });
}

/// One operator restarts with doppelganger protection (every validator in detection) while
/// the other three sign: it signs nothing itself, yet the quorum of its committee's partials
/// it reconstructs proves the live instance is this cluster, and every attester is safe to
/// sign afterwards (the Go node's `ReportQuorum`).
#[test]
fn a_quorum_of_the_committee_ends_doppelganger_detection() {
    on_executor(|| async {
        let mut c = Cluster::with_doppelganger(&[4]);
        let d = c.ops[3].services.doppelganger.clone();
        assert_eq!(d.counts(), (0, VALIDATORS as usize));
        c.start_duty(&OPERATORS);
        let got = c.run_until_submitted(&OPERATORS, &[]).await;
        check_signatures(&c, &got[&4]);
        assert!(
            validators_signed_by(&c, 4).is_empty(),
            "operator 4 signed in detection"
        );
        assert_eq!(
            c.ops[3].services.metrics.doppelganger_refused.load(Relaxed),
            VALIDATORS + SYNC_MEMBERS
        );
        assert_eq!(d.counts(), (VALIDATORS as usize, 0));
        assert!((0..VALIDATORS).all(|v| d.can_sign(v)));
    });
}

/// The beacon node lists a validator with a pubkey that is not our share's for that index:
/// nothing is signed (or recorded) for it, everything else is.
#[test]
fn a_duty_naming_a_foreign_pubkey_is_not_signed() {
    on_executor(|| async {
        let mut c = Cluster::new();
        let mut d = duty();
        d.duties
            .retain(|v| v.validator_index != 0 || !matches!(v.kind, DutyKind::SyncCommittee));
        for v in &mut d.duties {
            if v.validator_index == 0 {
                v.pubkey = validator_secret(99).public_key().to_bytes();
            }
        }
        c.start(&OPERATORS, d, vote());
        let got = c.run_for(Duration::from_millis(1500)).await;
        for id in OPERATORS {
            let s = &got[&id];
            let mut signed: Vec<u64> = s.attestations.iter().map(|a| a.attester_index).collect();
            signed.sort_unstable();
            assert_eq!(signed, (1..VALIDATORS).collect::<Vec<_>>(), "operator {id}");
        }
        for op in &c.ops {
            assert_eq!(op.services.metrics.beacon_duties_refused.load(Relaxed), 1);
        }
    });
}

/// A second duty in the same epoch with other attestation data (a lying or confused beacon
/// node): every operator's value check finds the second vote for the same target slashable
/// in its records, so the slot never decides, no partial signature for it leaves any node
/// and nothing is submitted.
#[test]
fn a_second_vote_for_the_same_target_is_never_signed() {
    on_executor(|| async {
        let mut c = Cluster::new();
        c.start_duty(&OPERATORS);
        c.run_until_submitted(&OPERATORS, &[]).await;
        let partials_before: Vec<usize> = OPERATORS
            .iter()
            .map(|&o| c.partials_published_by(o))
            .collect();
        let mut other = vote();
        other.block_root = [0xcc; 32];
        let mut d = duty();
        d.slot = SLOT + 1;
        c.start(&OPERATORS, d, other);
        let got = c.run_for(Duration::from_millis(1500)).await;
        assert!(
            got.values().all(|s| s.attestations.is_empty()),
            "a slashable attestation was submitted: {got:?}"
        );
        for (i, &o) in OPERATORS.iter().enumerate() {
            let m = &c.ops[i].services.metrics;
            // The value check refuses the slashable vote before QBFT decides it (ssv-spec's
            // BeaconVoteValueCheckF), so nothing reaches signing at all.
            assert_eq!(
                m.decided.load(Relaxed),
                1,
                "operator {o}: the second slot undecided"
            );
            assert_eq!(
                c.partials_published_by(o),
                partials_before[i],
                "operator {o}"
            );
        }
    });
}

/// A node whose disk refuses commits (fsync failing) publishes no partial signature at all
/// (slashing protection cannot record, so nothing is signed and the refusals are counted);
/// the other three complete the duty without it.
#[test]
fn a_failing_disk_publishes_no_partial_signature() {
    on_executor(|| async {
        let mut c = Cluster::with_faults(&[4]);
        let mut d = duty();
        d.duties
            .retain(|v| matches!(v.kind, DutyKind::Attester { .. }));
        c.start(&OPERATORS, d, vote());
        let got = c.run_for(Duration::from_millis(2000)).await;
        assert_eq!(c.partials_published_by(4), 0);
        // (Operator 4 may still submit what the other three's quorum reconstructs: that
        // signature exists without it.)
        for id in [1, 2, 3] {
            assert_eq!(
                got[&id].attestations.len(),
                VALIDATORS as usize,
                "operator {id}"
            );
        }
        assert_eq!(
            c.ops[3].services.metrics.slashing_unavailable.load(Relaxed),
            VALIDATORS
        );
    });
}
