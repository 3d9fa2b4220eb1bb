//! One table test per rule: a message that passes, and one that breaks only that rule, with
//! the expected rule (and so verdict). RSA is played by a keyed hash (the RSA code itself is
//! tested in `ssv-crypto-pipeline` and through the node); everything else is the real rule.

use std::collections::HashSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::*;
use crate::message::{MessageId, SsvMessage};
use crate::partial_sig::PartialSignatureMessage;
use crate::qbft::{Message as QbftMessage, MessageType};

const SLOT_MS: u64 = 12_000;
const GENESIS_MS: u64 = 1_000_000_000_000;
const DOMAIN: DomainType = DomainType([0, 0, 0x31, 0x38]);
/// The slot every test message is for (epoch 10), and the time they arrive: 1 s into it.
const SLOT: Slot = 320;
const NOW: u64 = GENESIS_MS + SLOT * SLOT_MS + 1000;
const VALIDATOR: u64 = 10;
const PUBKEY: [u8; 48] = [0xab; 48];

fn config() -> Config {
    Config {
        domain: DOMAIN,
        chain: ChainSpec::MAINNET,
        genesis_ms: GENESIS_MS,
    }
}

struct Net {
    committee: CommitteeView,
    liquidated: bool,
    attesting: bool,
    proposer: Option<bool>,
    sync: bool,
    exits: u64,
    unknown_operators: HashSet<OperatorId>,
}

fn committee_id() -> [u8; 32] {
    crate::committee::CommitteeId::from_operators(&[1, 2, 3, 4]).0
}

impl Net {
    fn new() -> Self {
        Net {
            committee: CommitteeView {
                id: committee_id(),
                operators: vec![1, 2, 3, 4],
                validator_indices: Arc::from(vec![VALIDATOR, 11]),
            },
            liquidated: false,
            attesting: true,
            proposer: Some(true),
            sync: true,
            exits: 1,
            unknown_operators: HashSet::new(),
        }
    }
}

/// The test's "RSA": a keyed hash of the encoded SSV message.
fn sign(op: OperatorId, encoded: &[u8]) -> RsaSignature {
    let mut s = [0u8; 256];
    for (i, chunk) in s.chunks_mut(32).enumerate() {
        let d = Sha256::new()
            .chain_update(op.to_le_bytes())
            .chain_update([i as u8])
            .chain_update(encoded)
            .finalize();
        chunk.copy_from_slice(&d);
    }
    s
}

impl NetworkView for Net {
    fn operator_exists(&self, id: OperatorId) -> bool {
        !self.unknown_operators.contains(&id)
    }
    fn committee(&self, id: &[u8; 32]) -> Option<CommitteeView> {
        (*id == self.committee.id).then(|| self.committee.clone())
    }
    fn validator(&self, pubkey: &[u8; 48], _epoch: u64) -> Option<ValidatorView> {
        (*pubkey == PUBKEY).then(|| ValidatorView {
            committee: self.committee.clone(),
            index: VALIDATOR,
            liquidated: self.liquidated,
            attesting: self.attesting,
        })
    }
    fn proposer_duty(&self, _epoch: u64, slot: Slot, validator: u64) -> Option<bool> {
        self.proposer
            .map(|p| p && slot == SLOT && validator == VALIDATOR)
    }
    fn sync_committee_duty(&self, _period: u64, validator: u64) -> bool {
        self.sync && validator == VALIDATOR
    }
    fn voluntary_exit_duties(&self, _slot: Slot, _pubkey: &[u8; 48]) -> u64 {
        self.exits
    }
    fn verify_signature(&self, op: OperatorId, encoded: &[u8], sig: &RsaSignature) -> bool {
        sign(op, encoded) == *sig
    }
}

fn msg_id(role: RunnerRole) -> MessageId {
    match role {
        RunnerRole::Committee => MessageId::for_committee(
            DOMAIN,
            &crate::committee::CommitteeId::from_operators(&[1, 2, 3, 4]),
        ),
        r => MessageId::for_validator(DOMAIN, r, &PUBKEY),
    }
}

/// A message with these parts, signed by `signers` (the test's RSA).
fn signed(
    msg_type: MsgType,
    id: MessageId,
    data: Vec<u8>,
    signers: &[OperatorId],
    full_data: Vec<u8>,
) -> SignedSsvMessage {
    let ssv = SsvMessage::new(msg_type, id, data).expect("ssv message");
    let encoded = ssz::Encode::as_ssz_bytes(&ssv);
    SignedSsvMessage::new(
        signers.iter().map(|op| sign(*op, &encoded)).collect(),
        signers.to_vec(),
        ssv,
        full_data,
    )
    .expect("signed message")
}

struct Qbft {
    role: RunnerRole,
    kind: MessageType,
    height: u64,
    round: u64,
    signers: Vec<OperatorId>,
    full_data: Vec<u8>,
}

impl Qbft {
    fn new(kind: MessageType) -> Self {
        Qbft {
            role: RunnerRole::Committee,
            kind,
            height: SLOT,
            round: 1,
            // The round-1 leader of height 320 in a committee of 4: 320 % 4 = 0 → operator 1.
            signers: vec![1],
            full_data: if kind == MessageType::Proposal {
                b"value".to_vec()
            } else {
                Vec::new()
            },
        }
    }

    fn message(&self) -> QbftMessage {
        QbftMessage {
            msg_type: self.kind.to_u64(),
            height: self.height,
            round: self.round,
            identifier: msg_id(self.role).0.to_vec().try_into().expect("56 bytes"),
            root: crate::qbft::hash_data_root(b"value"),
            data_round: 0,
            round_change_justification: Default::default(),
            prepare_justification: Default::default(),
        }
    }

    fn signed_with(&self, m: &QbftMessage) -> SignedSsvMessage {
        signed(
            MsgType::Consensus,
            msg_id(self.role),
            m.to_ssz(),
            &self.signers,
            self.full_data.clone(),
        )
    }

    fn signed(&self) -> SignedSsvMessage {
        self.signed_with(&self.message())
    }
}

fn partial(
    role: RunnerRole,
    kind: PartialSigMsgType,
    slot: Slot,
    indices: &[u64],
) -> SignedSsvMessage {
    let messages = indices
        .iter()
        .map(|&i| PartialSignatureMessage {
            partial_signature: [7; 96],
            signing_root: [8; 32],
            signer: 2,
            validator_index: i,
        })
        .collect();
    let psm = PartialSignatureMessages::new(kind, slot, messages).expect("partials");
    signed(
        MsgType::PartialSignature,
        msg_id(role),
        psm.to_ssz(),
        &[2],
        Vec::new(),
    )
}

fn validator() -> MessageValidator<u8> {
    MessageValidator::new(config())
}

fn check(net: &Net, m: &SignedSsvMessage) -> Result<Validated, Violation> {
    validator().validate(
        net,
        1,
        &m.to_ssz(),
        Some(crate::committee::subnet_of(&committee_id())),
        NOW,
    )
}

#[track_caller]
fn passes(net: &Net, m: &SignedSsvMessage) {
    if let Err(v) = check(net, m) {
        panic!("expected to pass, broke: {v}");
    }
}

#[track_caller]
fn breaks(net: &Net, m: &SignedSsvMessage, rule: Rule) {
    match check(net, m) {
        Ok(_) => panic!("expected {rule:?}, passed"),
        Err(v) => assert_eq!(v.rule, rule, "{v}"),
    }
}

#[test]
fn valid_messages_of_every_role_pass() {
    let net = Net::new();
    for kind in [
        MessageType::Proposal,
        MessageType::Prepare,
        MessageType::Commit,
        MessageType::RoundChange,
    ] {
        passes(&net, &Qbft::new(kind).signed());
    }
    passes(
        &net,
        &partial(
            RunnerRole::Committee,
            PartialSigMsgType::PostConsensus,
            SLOT,
            &[10, 10, 11],
        ),
    );
    for (role, kind) in [
        (RunnerRole::Proposer, PartialSigMsgType::RandaoPartialSig),
        (
            RunnerRole::Aggregator,
            PartialSigMsgType::SelectionProofPartialSig,
        ),
        (
            RunnerRole::SyncCommitteeContribution,
            PartialSigMsgType::ContributionProofs,
        ),
        (
            RunnerRole::ValidatorRegistration,
            PartialSigMsgType::ValidatorRegistrationPartialSig,
        ),
        (
            RunnerRole::VoluntaryExit,
            PartialSigMsgType::VoluntaryExitPartialSig,
        ),
        (RunnerRole::Proposer, PartialSigMsgType::PostConsensus),
    ] {
        passes(&net, &partial(role, kind, SLOT, &[VALIDATOR]));
    }
    let mut q = Qbft::new(MessageType::Prepare);
    q.role = RunnerRole::Proposer;
    passes(&net, &q.signed());
}

#[test]
fn pubsub_payload_rules() {
    let net = Net::new();
    let mut v = validator();
    assert_eq!(
        v.validate(&net, 1, &[], None, NOW).unwrap_err().rule,
        Rule::PubSubMessageHasNoData
    );
    let big = vec![0u8; MAX_ENCODED_MSG_SIZE + 1];
    assert_eq!(
        v.validate(&net, 1, &big, None, NOW).unwrap_err().rule,
        Rule::PubSubDataTooBig
    );
    assert_eq!(
        v.validate(&net, 1, &[1, 2, 3], None, NOW).unwrap_err().rule,
        Rule::MalformedPubSubMessage
    );
}

#[test]
fn signer_rules() {
    let mut net = Net::new();
    let good = Qbft::new(MessageType::Prepare).signed();
    passes(&net, &good);

    let mut m = good.clone();
    m.operator_ids = Default::default();
    breaks(&net, &m, Rule::NoSigners);

    let mut m = good.clone();
    m.signatures = Default::default();
    breaks(&net, &m, Rule::NoSignatures);

    let mut m = good.clone();
    m.signatures = vec![vec![1u8; 100].try_into().expect("fits")]
        .try_into()
        .expect("one");
    breaks(&net, &m, Rule::WrongRsaSignatureSize);

    let mut q = Qbft::new(MessageType::Commit);
    q.signers = vec![3, 2, 1];
    breaks(&net, &q.signed(), Rule::SignersNotSorted);

    let mut m = good.clone();
    m.operator_ids = vec![1, 2].try_into().expect("two");
    breaks(&net, &m, Rule::SignersAndSignaturesWithDifferentLength);

    let mut q = Qbft::new(MessageType::Commit);
    q.signers = vec![0, 1, 2];
    breaks(&net, &q.signed(), Rule::ZeroSigner);

    let mut q = Qbft::new(MessageType::Commit);
    q.signers = vec![1, 1, 2];
    breaks(&net, &q.signed(), Rule::DuplicatedSigner);

    net.unknown_operators.insert(1);
    breaks(&net, &good, Rule::UnknownOperator);
    net.unknown_operators.clear();

    let mut q = Qbft::new(MessageType::Prepare);
    q.signers = vec![5];
    breaks(&net, &q.signed(), Rule::SignerNotInCommittee);

    let mut m = good.clone();
    m.signatures = vec![sign(2, b"other").to_vec().try_into().expect("256")]
        .try_into()
        .expect("one");
    breaks(&net, &m, Rule::SignatureVerification);
}

#[test]
fn ssv_message_rules() {
    let mut net = Net::new();
    let id = msg_id(RunnerRole::Committee);
    breaks(
        &net,
        &signed(MsgType::Consensus, id, Vec::new(), &[1], Vec::new()),
        Rule::EmptyData,
    );

    let mut m = Qbft::new(MessageType::Prepare).signed();
    m.ssv_message.msg_type = 200;
    breaks(&net, &m, Rule::EventMessage);
    m.ssv_message.msg_type = 7;
    breaks(&net, &m, Rule::UnknownSsvMessageType);

    let mut m = Qbft::new(MessageType::Prepare).signed();
    m.ssv_message.msg_id.0[0] = 9;
    breaks(&net, &m, Rule::WrongDomain);

    let mut m = Qbft::new(MessageType::Prepare).signed();
    m.ssv_message.msg_id.0[4] = 9;
    breaks(&net, &m, Rule::InvalidRole);

    let mut m = Qbft::new(MessageType::Prepare).signed();
    m.ssv_message.msg_id.0[55] ^= 1;
    breaks(&net, &m, Rule::NonExistentCommitteeId);

    net.committee.validator_indices = Arc::from(Vec::new());
    breaks(
        &net,
        &Qbft::new(MessageType::Prepare).signed(),
        Rule::NoValidators,
    );
    let mut net = Net::new();

    let m = partial(
        RunnerRole::Proposer,
        PartialSigMsgType::RandaoPartialSig,
        SLOT,
        &[VALIDATOR],
    );
    let mut unknown = m.clone();
    unknown.ssv_message.msg_id.0[10] ^= 1;
    breaks(&net, &unknown, Rule::UnknownValidator);
    net.liquidated = true;
    breaks(&net, &m, Rule::ValidatorLiquidated);
    net.liquidated = false;
    net.attesting = false;
    breaks(&net, &m, Rule::ValidatorNotAttesting);
    net.attesting = true;

    let good = Qbft::new(MessageType::Prepare).signed();
    let wrong_subnet = (crate::committee::subnet_of(&committee_id()) + 1) % 128;
    let v = validator()
        .validate(&net, 1, &good.to_ssz(), Some(wrong_subnet), NOW)
        .unwrap_err();
    assert_eq!(v.rule, Rule::IncorrectTopic);
}

#[test]
fn consensus_semantics_rules() {
    let net = Net::new();
    let mut q = Qbft::new(MessageType::Prepare);
    q.signers = vec![1, 2, 3];
    breaks(&net, &q.signed(), Rule::NonDecidedWithMultipleSigners);

    let mut q = Qbft::new(MessageType::Commit);
    q.signers = vec![1, 2];
    breaks(&net, &q.signed(), Rule::DecidedNotEnoughSigners);

    let mut q = Qbft::new(MessageType::Prepare);
    q.full_data = b"value".to_vec();
    breaks(&net, &q.signed(), Rule::PrepareOrCommitWithFullData);
    let mut q = Qbft::new(MessageType::Commit);
    q.full_data = b"value".to_vec();
    breaks(&net, &q.signed(), Rule::PrepareOrCommitWithFullData);

    let mut q = Qbft::new(MessageType::Proposal);
    q.full_data = b"other value".to_vec();
    breaks(&net, &q.signed(), Rule::InvalidHash);

    let q = Qbft::new(MessageType::Prepare);
    let mut m = q.message();
    m.msg_type = 9;
    breaks(&net, &q.signed_with(&m), Rule::UnknownQbftMessageType);

    let mut m = q.message();
    m.round = 0;
    breaks(&net, &q.signed_with(&m), Rule::ZeroRound);

    let mut r = Qbft::new(MessageType::Prepare);
    r.role = RunnerRole::ValidatorRegistration;
    breaks(&net, &r.signed(), Rule::UnexpectedConsensusMessage);

    let mut p = Qbft::new(MessageType::Prepare);
    p.role = RunnerRole::Proposer;
    let mut m = p.message();
    m.round = 7;
    breaks(&net, &p.signed_with(&m), Rule::RoundTooHigh);
    let mut m = q.message();
    m.round = 13;
    breaks(&net, &q.signed_with(&m), Rule::RoundTooHigh);

    let mut m = q.message();
    m.identifier[55] ^= 1;
    breaks(&net, &q.signed_with(&m), Rule::MismatchedIdentifier);

    let mut m = q.message();
    m.prepare_justification = vec![vec![1u8, 2, 3].try_into().expect("fits")]
        .try_into()
        .expect("one");
    breaks(
        &net,
        &q.signed_with(&m),
        Rule::MalformedPrepareJustifications,
    );
    let justification = Qbft::new(MessageType::Prepare).signed().to_ssz();
    let mut m = q.message();
    m.prepare_justification = vec![justification.clone().try_into().expect("fits")]
        .try_into()
        .expect("one");
    breaks(
        &net,
        &q.signed_with(&m),
        Rule::UnexpectedPrepareJustifications,
    );
    let mut m = q.message();
    m.round_change_justification = vec![vec![1u8].try_into().expect("fits")]
        .try_into()
        .expect("one");
    breaks(
        &net,
        &q.signed_with(&m),
        Rule::MalformedRoundChangeJustifications,
    );
    let mut m = q.message();
    m.round_change_justification = vec![justification.try_into().expect("fits")]
        .try_into()
        .expect("one");
    breaks(
        &net,
        &q.signed_with(&m),
        Rule::UnexpectedRoundChangeJustifications,
    );

    breaks(
        &net,
        &signed(
            MsgType::Consensus,
            msg_id(RunnerRole::Committee),
            vec![1, 2, 3],
            &[1],
            Vec::new(),
        ),
        Rule::UndecodableMessageData,
    );
}

#[test]
fn qbft_logic_rules() {
    let net = Net::new();
    let mut q = Qbft::new(MessageType::Proposal);
    q.signers = vec![2];
    breaks(&net, &q.signed(), Rule::SignerNotLeader);

    // Stateful rules: one validator, one peer, messages in sequence.
    let mut v = validator();
    let subnet = Some(crate::committee::subnet_of(&committee_id()));
    let mut run =
        |m: &SignedSsvMessage, now: u64| v.validate(&net, 1, &m.to_ssz(), subnet, now).map(drop);

    let prepare = Qbft::new(MessageType::Prepare);
    assert!(run(&prepare.signed(), NOW).is_ok());
    assert_eq!(
        run(&prepare.signed(), NOW).unwrap_err().rule,
        Rule::DuplicatedMessage
    );

    let mut later = Qbft::new(MessageType::RoundChange);
    later.round = 2;
    let now = NOW + 2500; // round 2 is estimated
    assert!(run(&later.signed(), now).is_ok());
    assert_eq!(
        run(&prepare.signed(), now).unwrap_err().rule,
        Rule::RoundAlreadyAdvanced
    );

    let mut p3 = Qbft::new(MessageType::Proposal);
    p3.round = 3;
    p3.signers = vec![3];
    let now = NOW + 4500;
    assert!(
        run(&p3.signed(), now).is_ok(),
        "round 3 proposal of its leader"
    );
    let mut other = Qbft::new(MessageType::Proposal);
    other.round = 3;
    other.signers = vec![3];
    other.full_data = b"value".to_vec();
    let mut m = other.message();
    m.root = crate::qbft::hash_data_root(b"value 2");
    other.full_data = b"value 2".to_vec();
    assert_eq!(
        run(&other.signed_with(&m), now).unwrap_err().rule,
        Rule::DifferentProposalData
    );

    let mut decided = Qbft::new(MessageType::Commit);
    decided.signers = vec![1, 2, 3];
    assert!(run(&decided.signed(), now).is_ok());
    assert_eq!(
        run(&decided.signed(), now).unwrap_err().rule,
        Rule::DecidedWithSameSigners
    );
    decided.signers = vec![1, 2, 4];
    assert!(run(&decided.signed(), now).is_ok(), "another signer set");

    let mut far = Qbft::new(MessageType::RoundChange);
    far.round = 3;
    far.signers = vec![4];
    assert_eq!(
        run(&far.signed(), NOW).unwrap_err().rule,
        Rule::EstimatedRoundNotInAllowedSpread
    );
}

#[test]
fn slot_rules() {
    let net = Net::new();
    let mut v = validator();
    let subnet = Some(crate::committee::subnet_of(&committee_id()));
    let mut run =
        |m: &SignedSsvMessage, now: u64| v.validate(&net, 1, &m.to_ssz(), subnet, now).map(drop);

    let slot_start = GENESIS_MS + SLOT * SLOT_MS;
    let early = slot_start - 100;
    assert_eq!(
        run(&Qbft::new(MessageType::Prepare).signed(), early)
            .unwrap_err()
            .rule,
        Rule::EarlySlotMessage
    );
    assert!(
        run(&Qbft::new(MessageType::Prepare).signed(), slot_start - 40).is_ok(),
        "within 50 ms"
    );

    // Proposer messages live 3 slots (+3 s), committee messages 34.
    let late = slot_start + 3 * SLOT_MS + 3000 + 100;
    let randao = partial(
        RunnerRole::Proposer,
        PartialSigMsgType::RandaoPartialSig,
        SLOT,
        &[VALIDATOR],
    );
    assert_eq!(run(&randao, late).unwrap_err().rule, Rule::LateSlotMessage);
    let post = partial(
        RunnerRole::Committee,
        PartialSigMsgType::PostConsensus,
        SLOT,
        &[VALIDATOR],
    );
    assert!(run(&post, late).is_ok());
    // Registrations never expire.
    let reg = partial(
        RunnerRole::ValidatorRegistration,
        PartialSigMsgType::ValidatorRegistrationPartialSig,
        SLOT,
        &[VALIDATOR],
    );
    assert!(run(&reg, late + 100 * SLOT_MS).is_ok());

    // A validator runner's signer moves forward only.
    let later = partial(
        RunnerRole::Aggregator,
        PartialSigMsgType::SelectionProofPartialSig,
        SLOT + 1,
        &[VALIDATOR],
    );
    assert!(run(&later, slot_start + SLOT_MS + 100).is_ok());
    let earlier = partial(
        RunnerRole::Aggregator,
        PartialSigMsgType::SelectionProofPartialSig,
        SLOT,
        &[VALIDATOR],
    );
    assert_eq!(
        run(&earlier, slot_start + SLOT_MS + 200).unwrap_err().rule,
        Rule::SlotAlreadyAdvanced
    );
}

#[test]
fn duty_rules() {
    let mut net = Net::new();
    net.proposer = Some(false);
    breaks(
        &net,
        &partial(
            RunnerRole::Proposer,
            PartialSigMsgType::RandaoPartialSig,
            SLOT,
            &[VALIDATOR],
        ),
        Rule::NoDuty,
    );
    net.proposer = Some(true);
    net.sync = false;
    breaks(
        &net,
        &partial(
            RunnerRole::SyncCommitteeContribution,
            PartialSigMsgType::ContributionProofs,
            SLOT,
            &[VALIDATOR],
        ),
        Rule::NoDuty,
    );
    net.sync = true;

    // Aggregator: two duties per epoch.
    let mut v = validator();
    let subnet = Some(crate::committee::subnet_of(&committee_id()));
    let slot_start = GENESIS_MS + SLOT * SLOT_MS;
    for (i, expect) in [(0, None), (1, None), (2, Some(Rule::TooManyDutiesPerEpoch))] {
        let m = partial(
            RunnerRole::Aggregator,
            PartialSigMsgType::SelectionProofPartialSig,
            SLOT + i,
            &[VALIDATOR],
        );
        let r = v.validate(&net, 1, &m.to_ssz(), subnet, slot_start + i * SLOT_MS + 100);
        assert_eq!(r.err().map(|e| e.rule), expect, "duty {i}");
    }
    // Exits: as many as the node knows of.
    net.exits = 0;
    breaks(
        &net,
        &partial(
            RunnerRole::VoluntaryExit,
            PartialSigMsgType::VoluntaryExitPartialSig,
            SLOT,
            &[VALIDATOR],
        ),
        Rule::TooManyDutiesPerEpoch,
    );
}

#[test]
fn partial_signature_rules() {
    let net = Net::new();
    let good = partial(
        RunnerRole::Committee,
        PartialSigMsgType::PostConsensus,
        SLOT,
        &[VALIDATOR],
    );
    passes(&net, &good);

    let psm = PartialSignatureMessages::from_ssz(&good.ssv_message.data).expect("partials");
    let two = signed(
        MsgType::PartialSignature,
        msg_id(RunnerRole::Committee),
        psm.to_ssz(),
        &[1, 2],
        Vec::new(),
    );
    breaks(&net, &two, Rule::PartialSigOneSigner);
    let fat = signed(
        MsgType::PartialSignature,
        msg_id(RunnerRole::Committee),
        psm.to_ssz(),
        &[2],
        b"x".to_vec(),
    );
    breaks(&net, &fat, Rule::FullDataNotInConsensusMessage);

    let mut bad_type = psm.clone();
    bad_type.msg_type = 9;
    breaks(
        &net,
        &signed(
            MsgType::PartialSignature,
            msg_id(RunnerRole::Committee),
            bad_type.to_ssz(),
            &[2],
            Vec::new(),
        ),
        Rule::InvalidPartialSignatureType,
    );
    breaks(
        &net,
        &partial(
            RunnerRole::Committee,
            PartialSigMsgType::RandaoPartialSig,
            SLOT,
            &[VALIDATOR],
        ),
        Rule::PartialSignatureTypeRoleMismatch,
    );
    breaks(
        &net,
        &partial(
            RunnerRole::Committee,
            PartialSigMsgType::PostConsensus,
            SLOT,
            &[],
        ),
        Rule::NoPartialSignatureMessages,
    );

    let mut other_signer = psm.clone();
    other_signer.messages[0].signer = 3;
    breaks(
        &net,
        &signed(
            MsgType::PartialSignature,
            msg_id(RunnerRole::Committee),
            other_signer.to_ssz(),
            &[2],
            Vec::new(),
        ),
        Rule::InconsistentSigners,
    );
    breaks(
        &net,
        &partial(
            RunnerRole::Aggregator,
            PartialSigMsgType::SelectionProofPartialSig,
            SLOT,
            &[11],
        ),
        Rule::ValidatorIndexMismatch,
    );
    breaks(
        &net,
        &partial(
            RunnerRole::Committee,
            PartialSigMsgType::PostConsensus,
            SLOT,
            &[10, 10, 10],
        ),
        Rule::TripleValidatorIndexInPartialSignatures,
    );
    // Two validators: at most four partials.
    breaks(
        &net,
        &partial(
            RunnerRole::Committee,
            PartialSigMsgType::PostConsensus,
            SLOT,
            &[10, 10, 11, 11, 12],
        ),
        Rule::TooManyPartialSignatureMessages,
    );
    breaks(
        &net,
        &partial(
            RunnerRole::Aggregator,
            PartialSigMsgType::SelectionProofPartialSig,
            SLOT,
            &[VALIDATOR, VALIDATOR],
        ),
        Rule::TooManyPartialSignatureMessages,
    );

    let mut v = validator();
    let subnet = Some(crate::committee::subnet_of(&committee_id()));
    assert!(v.validate(&net, 1, &good.to_ssz(), subnet, NOW).is_ok());
    assert_eq!(
        v.validate(&net, 1, &good.to_ssz(), subnet, NOW)
            .unwrap_err()
            .rule,
        Rule::InvalidPartialSignatureTypeCount
    );
    // Another peer relaying the same message has its own state.
    assert!(v.validate(&net, 2, &good.to_ssz(), subnet, NOW).is_ok());

    let mut data = vec![0u8; MAX_ENCODED_PARTIAL_SIGNATURE_SIZE + 1];
    data[0] = 1;
    breaks(
        &net,
        &signed(
            MsgType::PartialSignature,
            msg_id(RunnerRole::Committee),
            data,
            &[2],
            Vec::new(),
        ),
        Rule::SsvDataTooBig,
    );
    breaks(
        &net,
        &signed(
            MsgType::PartialSignature,
            msg_id(RunnerRole::Committee),
            vec![1],
            &[2],
            Vec::new(),
        ),
        Rule::UndecodableMessageData,
    );
}

/// Every rule of the table has a test above that breaks it (found by name in this file).
#[test]
fn every_rule_is_tested() {
    let src = include_str!("tests.rs");
    let untested: Vec<&Rule> = Rule::ALL
        .iter()
        .filter(|r| !src.contains(&format!("Rule::{r:?}")))
        .collect();
    assert!(
        untested.is_empty(),
        "rules without a table test: {untested:?}"
    );
}

/// A badly signed message leaves no state; state stays within its bounds.
#[test]
fn state_is_bounded() {
    let net = Net::new();
    let mut v = MessageValidator::<u32>::with_entries_max(config(), 64);
    let subnet = Some(crate::committee::subnet_of(&committee_id()));
    let mut bad = Qbft::new(MessageType::Prepare).signed();
    bad.signatures = vec![[0u8; 256].to_vec().try_into().expect("256")]
        .try_into()
        .expect("one");
    for peer in 0..1000 {
        let _ = v.validate(&net, peer, &bad.to_ssz(), subnet, NOW);
    }
    assert_eq!(v.state_size().0, 0);
    let good = Qbft::new(MessageType::Prepare).signed();
    for peer in 0..1000 {
        assert!(v.validate(&net, peer, &good.to_ssz(), subnet, NOW).is_ok());
        assert!(v.state_size().0 <= 64);
    }
    // A slot and more later, pruning empties it.
    let later = NOW + (STORED_SLOTS + 1) * SLOT_MS;
    let _ = v.validate(&net, 0, &good.to_ssz(), subnet, later);
    assert_eq!(v.state_size().0, 0);
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn valid_samples() -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = [
            MessageType::Proposal,
            MessageType::Prepare,
            MessageType::Commit,
            MessageType::RoundChange,
        ]
        .into_iter()
        .map(|k| Qbft::new(k).signed().to_ssz())
        .collect();
        out.push(
            partial(
                RunnerRole::Committee,
                PartialSigMsgType::PostConsensus,
                SLOT,
                &[10, 11],
            )
            .to_ssz(),
        );
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random bytes never panic the validator and never pass.
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let net = Net::new();
            let mut v = validator();
            prop_assert!(v.validate(&net, 1, &data, Some(0), NOW).is_err());
        }

        /// Valid messages with bytes flipped, cut or extended never panic it; whatever passes
        /// still decodes to a message whose signatures verified.
        #[test]
        fn mutated_messages_never_panic(
            which in 0usize..5,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in proptest::option::of(any::<usize>()),
            peer in any::<u8>(),
            at in 0u64..(40 * SLOT_MS),
        ) {
            let net = Net::new();
            let mut v = validator();
            let mut data = valid_samples()[which].clone();
            for (i, x) in flips {
                let n = data.len();
                data[i % n] ^= x;
            }
            if let Some(c) = cut {
                let n = data.len();
                data.truncate(c % (n + 1));
            }
            let now = GENESIS_MS + SLOT * SLOT_MS - 1000 + at;
            if let Ok(ok) = v.validate(&net, peer, &data, Some(crate::committee::subnet_of(&committee_id())), now) {
                let m = ok.message();
                let encoded = ssz::Encode::as_ssz_bytes(&m.ssv_message);
                for (i, op) in m.operator_ids.iter().enumerate() {
                    prop_assert!(m.signature(i).is_some_and(|s| net.verify_signature(*op, &encoded, s)));
                }
            }
        }
    }

    /// A million messages from many peers, slots and signers: the entry bound holds at every
    /// step and the bytes stay under the per-entry bound times the entries.
    #[test]
    fn state_stays_bounded_over_a_million_messages() {
        let net = Net::new();
        let entries_max = 5_000;
        let mut v = MessageValidator::<u32>::with_entries_max(config(), entries_max);
        let subnet = Some(crate::committee::subnet_of(&committee_id()));
        // One message per (signer, kind); peers and slots vary over the run.
        let mut samples = Vec::new();
        for signer in 1..=4u64 {
            for kind in [
                MessageType::Prepare,
                MessageType::Commit,
                MessageType::RoundChange,
            ] {
                let mut q = Qbft::new(kind);
                q.signers = vec![signer];
                samples.push(q);
            }
        }
        // Bytes of one entry at most: a committee of 4 signers, each with every stored slot
        // (single-signer messages: no decided sets).
        let entry_max = std::mem::size_of::<state::ValidatorState>()
            + 4 * (std::mem::size_of::<state::OperatorState>()
                + STORED_SLOTS as usize * std::mem::size_of::<state::SignerState>())
            + std::mem::size_of::<(u32, MessageId)>();
        let mut accepted = 0u64;
        let mut encoded: HashMap<(usize, u64), Vec<u8>> = HashMap::new();
        for i in 0..1_000_000u64 {
            let slot = SLOT + (i / 20_000); // advances through 50 slots
            let sample = (i % samples.len() as u64) as usize;
            let data = encoded.entry((sample, slot)).or_insert_with(|| {
                let mut q = Qbft::new(samples[sample].kind);
                q.signers = samples[sample].signers.clone();
                q.height = slot;
                q.signed().to_ssz()
            });
            let peer = (i.wrapping_mul(2_654_435_761) % 100_000) as u32;
            let now = GENESIS_MS + slot * SLOT_MS + 500;
            if v.validate(&net, peer, data, subnet, now).is_ok() {
                accepted += 1;
            }
            if i % 1000 == 0 {
                let (entries, bytes) = v.state_size();
                assert!(entries <= entries_max, "{entries} entries");
                assert!(
                    bytes <= entries * entry_max,
                    "{bytes} bytes for {entries} entries"
                );
            }
            encoded.retain(|(_, s), _| *s + 1 >= slot);
        }
        assert!(accepted > 100_000, "{accepted} accepted");
    }
}
