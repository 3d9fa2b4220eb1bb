//! Gossip message validation, sans-IO: the message, the peer it came from, the subnet it
//! arrived on and the time go in; a [`Validated`] message or a [`Violation`] (with its
//! ignore/reject [`Verdict`]) comes out. It is the Go node's rule set (ssv v2.3.7,
//! `message/validation/`), rule for rule and verdict for verdict ([`rules`]), in the Go
//! node's order, which puts cheap checks first:
//!
//! 1. size of the pubsub payload, then SSZ decoding;
//! 2. signers and signatures (count, sizes, order, zero, duplicates, known operators), the
//!    SSV message (data, type, domain, role);
//! 3. the committee or validator the message ID names (known, active), signers in it, topic;
//! 4. per type: size and decoding of the data, the message's own semantics (signer count,
//!    full-data hash, round, identifier, justifications, partial-signature types and
//!    counts), then what the state of this (peer, message ID) says (leader, round already
//!    advanced, duplicates, decided signer sets, slot already advanced), the beacon duty,
//!    the slot's time window and round spread, the duty count per epoch;
//! 5. only then the operators' RSA signatures (the one expensive check), and only after
//!    they verify is the state updated.
//!
//! What the registry, the duties and the keys say comes through [`NetworkView`]; the time
//! is an input. State is bounded (see [`state`]) and pruned by slot.
//!
//! Go rules that cannot occur here: `ErrNilSignedSSVMessage` and `ErrNilSSVMessage` (SSZ
//! decoding gives no nil), `ErrFullDataHash` (hashing cannot fail), `ErrNoShareMetadata`
//! (the registry holds no validator without its beacon index; such a validator is
//! unknown), `ErrOperatorValidation` (the registry is in memory: no read can fail).
//!
//! Consensus data over Go's consensus maximum cannot reach its size rule here: the wire type
//! bounds SSV message data to ssv-spec's 722,412 bytes, below it, so such data fails
//! decoding (rejected as malformed, as Go rejects it as too big); the rule stays for parity.
//!
//! Where this differs on purpose: none of the verdicts. The state is created only after
//! the signatures verify (Go creates an empty entry before), so a flood of badly signed
//! messages leaves no state behind.

pub mod rules;
pub mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use crate::chain::ChainSpec;
use crate::message::{MessageId, MsgType, RsaSignature, RunnerRole, SignedSsvMessage};
use crate::partial_sig::{PartialSigMsgType, PartialSignatureMessages};
use crate::qbft::{FIRST_HEIGHT, FIRST_ROUND, Message as QbftMessage, MessageType};
use crate::types::{DomainType, OperatorId, Root, Round, Slot, quorum};

pub use rules::{Rule, Verdict, Violation};
use state::{OperatorState, STORED_SLOTS, SeenKind, SignerState, ValidatorState};

/// Most signers of a message (the largest committee).
pub const MAX_SIGNATURES: usize = 13;
/// RSA signature size.
const RSA_SIGNATURE_SIZE: usize = 256;
/// Go's encoding overhead allowance: a structure of `n` bytes may take `n + n / 20 + 4`.
const fn encoded(n: usize) -> usize {
    n + n / 20 + 4
}
/// Largest QBFT message (Go's `maxEncodedConsensusMsgSize`).
pub const MAX_ENCODED_CONSENSUS_MSG_SIZE: usize =
    encoded(8 + 8 + 8 + 56 + 32 + 8 + MAX_SIGNATURES * (3616 + 50624));
/// Largest partial-signature message (Go's `maxEncodedPartialSignatureSize`).
pub const MAX_ENCODED_PARTIAL_SIGNATURE_SIZE: usize = encoded(8 + 8 + 1000 * (96 + 32 + 8 + 8));
/// Largest SSV message data.
pub const MAX_PAYLOAD_DATA_SIZE: usize =
    if MAX_ENCODED_CONSENSUS_MSG_SIZE > MAX_ENCODED_PARTIAL_SIGNATURE_SIZE {
        MAX_ENCODED_CONSENSUS_MSG_SIZE
    } else {
        MAX_ENCODED_PARTIAL_SIGNATURE_SIZE
    };
/// Largest full data (a Pectra block with blobs, `spectypes.SignedSSVMessage`).
const MAX_FULL_DATA_SIZE: usize = 8_388_836;
/// Largest pubsub payload (Go's `MaxEncodedMsgSize`).
pub const MAX_ENCODED_MSG_SIZE: usize = encoded(
    MAX_SIGNATURES * RSA_SIGNATURE_SIZE
        + MAX_SIGNATURES * 8
        + 8
        + 56
        + MAX_PAYLOAD_DATA_SIZE
        + MAX_FULL_DATA_SIZE,
);
/// The Go node's internal event message type (never valid on the wire).
const EVENT_MSG_TYPE: u64 = 200;
/// Clock error tolerated between nodes.
const CLOCK_TOLERANCE_MS: u64 = 50;
/// Past a message's time-to-live it is still taken this long.
const LATE_MESSAGE_MARGIN_MS: u64 = 3000;
/// Slots after its own a duty's messages stay valid, beyond the first (proposer and
/// contribution: 1 + this).
const LATE_SLOT_ALLOWANCE: u64 = 2;
/// Rounds ahead of the estimated round a message may be.
const ALLOWED_ROUNDS_IN_FUTURE: u64 = 1;
/// The round timer (`roundtimer`): quick rounds of 2 s up to round 8, then 2 min.
const QUICK_TIMEOUT_MS: u64 = 2000;
const QUICK_TIMEOUT_THRESHOLD: u64 = 8;
const SLOW_TIMEOUT_MS: u64 = 120_000;
/// Mainnet's sync-committee size.
pub const SYNC_COMMITTEE_SIZE: u64 = 512;
/// Default bound on the (peer, message ID) entries kept.
pub const ENTRIES_MAX: usize = 200_000;

/// The network's constants and clock.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Our network's domain.
    pub domain: DomainType,
    /// The chain's constants (slot duration, epoch and sync-period lengths).
    pub chain: ChainSpec,
    /// Genesis time, Unix milliseconds.
    pub genesis_ms: u64,
}

impl Config {
    fn slot_start_ms(&self, slot: Slot) -> u64 {
        self.genesis_ms
            .saturating_add(slot.saturating_mul(self.chain.slot_ms()))
    }

    fn slot_at(&self, now_ms: u64) -> Slot {
        now_ms.saturating_sub(self.genesis_ms) / self.chain.slot_ms().max(1)
    }

    fn epoch_of(&self, slot: Slot) -> u64 {
        self.chain.epoch_of(slot)
    }
}

/// A committee as validation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitteeView {
    /// Committee ID.
    pub id: [u8; 32],
    /// Members, ascending.
    pub operators: Vec<OperatorId>,
    /// Its validators' beacon indices.
    pub validator_indices: Arc<[u64]>,
}

/// A validator as validation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorView {
    /// Its committee.
    pub committee: CommitteeView,
    /// Its beacon index.
    pub index: u64,
    /// Its cluster is liquidated.
    pub liquidated: bool,
    /// Active on the beacon chain in the current epoch.
    pub attesting: bool,
}

/// What validation asks of the registry, the beacon duties and the operators' keys.
pub trait NetworkView {
    /// Whether `id` is a registered operator.
    fn operator_exists(&self, id: OperatorId) -> bool;
    /// The committee of `id`.
    fn committee(&self, id: &[u8; 32]) -> Option<CommitteeView>;
    /// The validator of `pubkey` (`epoch`: the current epoch, for its activity).
    fn validator(&self, pubkey: &[u8; 48], epoch: u64) -> Option<ValidatorView>;
    /// Whether `validator` proposes at `slot`; `None` when the duties of `epoch` are not
    /// known yet.
    fn proposer_duty(&self, epoch: u64, slot: Slot, validator: u64) -> Option<bool>;
    /// Whether `validator` is in the sync committee of `period`.
    fn sync_committee_duty(&self, period: u64, validator: u64) -> bool;
    /// Voluntary-exit duties of `pubkey` the node knows of for `slot`'s epoch.
    fn voluntary_exit_duties(&self, slot: Slot, pubkey: &[u8; 48]) -> u64;
    /// Whether `signature` is `operator`'s RSA signature of `encoded` (the SSV message's
    /// SSZ).
    fn verify_signature(
        &self,
        operator: OperatorId,
        encoded: &[u8],
        signature: &RsaSignature,
    ) -> bool;
}

/// A message's decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A QBFT message.
    Consensus(QbftMessage),
    /// Partial signatures.
    PartialSignatures(PartialSignatureMessages),
}

/// A message that passed every rule: its signatures verified, its state recorded. What the
/// runners take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    message: SignedSsvMessage,
    body: Body,
    role: RunnerRole,
    committee_id: [u8; 32],
}

impl Validated {
    /// The message.
    pub fn message(&self) -> &SignedSsvMessage {
        &self.message
    }

    /// The message, for a runner.
    pub fn into_message(self) -> SignedSsvMessage {
        self.message
    }

    /// Its decoded body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The role of its runner.
    pub fn role(&self) -> RunnerRole {
        self.role
    }

    /// Its committee.
    pub fn committee_id(&self) -> &[u8; 32] {
        &self.committee_id
    }

    /// Its slot (QBFT height or partial-signature slot).
    pub fn slot(&self) -> Slot {
        match &self.body {
            Body::Consensus(m) => m.height,
            Body::PartialSignatures(p) => p.slot,
        }
    }
}

/// The committee a message belongs to, and its validators.
struct CommitteeInfo {
    id: [u8; 32],
    operators: Vec<OperatorId>,
    validator_indices: Arc<[u64]>,
}

impl CommitteeInfo {
    fn signer_index(&self, signer: OperatorId) -> usize {
        self.operators
            .iter()
            .position(|o| *o == signer)
            .unwrap_or(0)
    }

    fn signer_mask(&self, signers: &[OperatorId]) -> u16 {
        signers
            .iter()
            .filter_map(|s| self.operators.iter().position(|o| o == s))
            .fold(0u16, |m, j| m | (1 << j))
    }
}

/// The validator: rules and state. `P` identifies a peer.
pub struct MessageValidator<P> {
    config: Config,
    state: HashMap<(P, MessageId), ValidatorState>,
    entries_max: usize,
    pruned_at: Slot,
}

fn fail<T>(rule: Rule, detail: impl Into<String>) -> Result<T, Violation> {
    Err(Violation::new(rule, detail))
}

impl<P: Copy + Eq + Hash> MessageValidator<P> {
    /// A validator keeping at most [`ENTRIES_MAX`] (peer, message ID) entries.
    pub fn new(config: Config) -> Self {
        Self::with_entries_max(config, ENTRIES_MAX)
    }

    /// A validator keeping at most `entries_max` (peer, message ID) entries.
    pub fn with_entries_max(config: Config, entries_max: usize) -> Self {
        MessageValidator {
            config,
            state: HashMap::new(),
            entries_max: entries_max.max(1),
            pruned_at: 0,
        }
    }

    /// (peer, message ID) entries kept and their approximate bytes.
    pub fn state_size(&self) -> (usize, usize) {
        let bytes = self
            .state
            .values()
            .map(|s| s.bytes() + std::mem::size_of::<(P, MessageId)>())
            .sum();
        (self.state.len(), bytes)
    }

    /// The entry bound.
    pub fn entries_max(&self) -> usize {
        self.entries_max
    }

    /// Validates gossip bytes from `peer`, received on `subnet` (`None`: not from a topic)
    /// at `now_ms` (Unix milliseconds).
    pub fn validate(
        &mut self,
        net: &impl NetworkView,
        peer: P,
        data: &[u8],
        subnet: Option<u64>,
        now_ms: u64,
    ) -> Result<Validated, Violation> {
        if data.is_empty() {
            return fail(Rule::PubSubMessageHasNoData, "");
        }
        if data.len() > MAX_ENCODED_MSG_SIZE {
            return fail(Rule::PubSubDataTooBig, format!("{} bytes", data.len()));
        }
        let signed = <SignedSsvMessage as ssz::Decode>::from_ssz_bytes(data)
            .map_err(|e| Violation::new(Rule::MalformedPubSubMessage, format!("{e:?}")))?;
        self.validate_signed(net, peer, signed, subnet, now_ms)
    }

    /// Validates a decoded message (see [`MessageValidator::validate`]).
    pub fn validate_signed(
        &mut self,
        net: &impl NetworkView,
        peer: P,
        signed: SignedSsvMessage,
        subnet: Option<u64>,
        now_ms: u64,
    ) -> Result<Validated, Violation> {
        self.prune(now_ms);
        check_signers(net, &signed)?;
        let role = self.check_ssv_message(&signed)?;
        let info = self.committee_info(net, &signed.ssv_message.msg_id, role, now_ms)?;
        for signer in signed.operator_ids.iter() {
            if !info.operators.contains(signer) {
                return fail(Rule::SignerNotInCommittee, format!("signer {signer}"));
            }
        }
        if let Some(subnet) = subnet {
            let want = crate::committee::subnet_of(&info.id);
            if subnet != want {
                return fail(
                    Rule::IncorrectTopic,
                    format!("subnet {subnet}, the committee's is {want}"),
                );
            }
        }
        match signed.ssv_message.kind() {
            Some(MsgType::Consensus) => self.consensus(net, peer, signed, role, info, now_ms),
            Some(MsgType::PartialSignature) => self.partial(net, peer, signed, role, info, now_ms),
            None => fail(Rule::UnknownSsvMessageType, ""),
        }
    }

    fn prune(&mut self, now_ms: u64) {
        let slot = self.config.slot_at(now_ms);
        if slot > self.pruned_at {
            self.pruned_at = slot;
            self.state
                .retain(|_, s| s.last_used_slot + STORED_SLOTS >= slot);
        }
    }

    fn check_ssv_message(&self, signed: &SignedSsvMessage) -> Result<RunnerRole, Violation> {
        let m = &signed.ssv_message;
        if m.data.is_empty() {
            return fail(Rule::EmptyData, "");
        }
        if m.data.len() > MAX_PAYLOAD_DATA_SIZE {
            return fail(Rule::SsvDataTooBig, format!("{} bytes", m.data.len()));
        }
        match m.kind() {
            Some(_) => {}
            None if m.msg_type == EVENT_MSG_TYPE => return fail(Rule::EventMessage, ""),
            None => return fail(Rule::UnknownSsvMessageType, format!("type {}", m.msg_type)),
        }
        if m.msg_id.domain() != self.config.domain {
            return fail(
                Rule::WrongDomain,
                format!("domain {}", hex::encode(m.msg_id.domain().0)),
            );
        }
        m.msg_id
            .role()
            .ok_or_else(|| Violation::new(Rule::InvalidRole, format!("{}", m.msg_id.role_raw())))
    }

    fn committee_info(
        &self,
        net: &impl NetworkView,
        id: &MessageId,
        role: RunnerRole,
        now_ms: u64,
    ) -> Result<CommitteeInfo, Violation> {
        let executor = id.duty_executor_id();
        if role == RunnerRole::Committee {
            let mut committee_id = [0u8; 32];
            committee_id.copy_from_slice(&executor[16..]);
            let Some(c) = net.committee(&committee_id) else {
                return fail(Rule::NonExistentCommitteeId, hex::encode(committee_id));
            };
            if c.validator_indices.is_empty() {
                return fail(Rule::NoValidators, "");
            }
            return Ok(CommitteeInfo {
                id: c.id,
                operators: c.operators,
                validator_indices: c.validator_indices,
            });
        }
        let epoch = self.config.epoch_of(self.config.slot_at(now_ms));
        let Some(v) = net.validator(executor, epoch) else {
            return fail(Rule::UnknownValidator, hex::encode(executor));
        };
        if v.liquidated {
            return fail(Rule::ValidatorLiquidated, "");
        }
        if !v.attesting {
            return fail(Rule::ValidatorNotAttesting, "");
        }
        Ok(CommitteeInfo {
            id: v.committee.id,
            operators: v.committee.operators,
            validator_indices: Arc::from(vec![v.index]),
        })
    }

    fn entry(&self, peer: P, id: &MessageId) -> Option<&ValidatorState> {
        self.state.get(&(peer, *id))
    }

    /// The entry of (peer, ID), made if need be (within the entry bound).
    fn entry_mut(
        &mut self,
        peer: P,
        id: &MessageId,
        members: usize,
        now_ms: u64,
    ) -> &mut ValidatorState {
        let slot = self.config.slot_at(now_ms);
        let key = (peer, *id);
        if !self.state.contains_key(&key) && self.state.len() >= self.entries_max {
            // Full: drop what was not used in the last two slots, else any one entry.
            self.state.retain(|_, s| s.last_used_slot + 2 > slot);
            if self.state.len() >= self.entries_max
                && let Some(k) = self.state.keys().next().copied()
            {
                self.state.remove(&k);
            }
        }
        let e = self
            .state
            .entry(key)
            .or_insert_with(|| ValidatorState::new(members, slot));
        e.last_used_slot = e.last_used_slot.max(slot);
        e
    }

    #[allow(clippy::too_many_arguments)]
    fn consensus(
        &mut self,
        net: &impl NetworkView,
        peer: P,
        signed: SignedSsvMessage,
        role: RunnerRole,
        info: CommitteeInfo,
        now_ms: u64,
    ) -> Result<Validated, Violation> {
        let data = &signed.ssv_message.data;
        if data.len() > MAX_ENCODED_CONSENSUS_MSG_SIZE {
            return fail(Rule::SsvDataTooBig, format!("{} bytes", data.len()));
        }
        let msg = QbftMessage::from_ssz(data)
            .map_err(|e| Violation::new(Rule::UndecodableMessageData, e.to_string()))?;
        let signers: &[OperatorId] = &signed.operator_ids;
        let (kind, full_data_hash) = consensus_semantics(&signed, &msg, role, &info)?;
        let id = signed.ssv_message.msg_id;
        // The state of (peer, ID), looked up once.
        let entry = self.entry(peer, &id);
        // QBFT logic.
        if kind == MessageType::Proposal {
            let leader = round_robin_proposer(msg.height, msg.round, &info.operators);
            if signers[0] != leader {
                return fail(
                    Rule::SignerNotLeader,
                    format!("signer {}, leader {leader}", signers[0]),
                );
            }
        }
        for &signer in signers {
            let Some(s) = signer_state(entry, &info, signer).and_then(|o| o.get(msg.height)) else {
                continue;
            };
            if signers.len() == 1 {
                if msg.round < s.round {
                    return fail(
                        Rule::RoundAlreadyAdvanced,
                        format!("round {}, signer at {}", msg.round, s.round),
                    );
                }
                if msg.round == s.round {
                    if let (Some(h), Some(seen)) = (full_data_hash, s.proposal_data)
                        && h != seen
                    {
                        return fail(Rule::DifferentProposalData, "");
                    }
                    if s.seen.seen(seen_kind(kind)) {
                        return fail(Rule::DuplicatedMessage, format!("{kind:?}"));
                    }
                }
            } else if s
                .decided_signers
                .as_ref()
                .is_some_and(|set| set.contains(&info.signer_mask(signers)))
            {
                return fail(Rule::DecidedWithSameSigners, "");
            }
        }
        if signers.len() == 1 {
            self.round_in_spread(msg.height, msg.round, now_ms)?;
        }
        // Duty logic.
        if role != RunnerRole::Committee {
            for &signer in signers {
                if let Some(o) = signer_state(entry, &info, signer)
                    && o.max_slot() > msg.height
                {
                    return fail(
                        Rule::SlotAlreadyAdvanced,
                        format!("slot {}, signer at {}", msg.height, o.max_slot()),
                    );
                }
            }
        }
        self.beacon_duty(net, role, msg.height, &info, false, now_ms)?;
        self.slot_time(msg.height, role, now_ms)?;
        for &signer in signers {
            self.duty_count(net, entry, &id, &info, signer, msg.height)?;
        }
        verify_signatures(net, &signed)?;
        // Record.
        let epoch = self.config.epoch_of(msg.height);
        let mask = info.signer_mask(signers);
        let entry = self.entry_mut(peer, &id, info.operators.len(), now_ms);
        for &signer in signers {
            let o = &mut entry.operators[info.signer_index(signer)];
            if o.get(msg.height).is_none() {
                o.insert(SignerState::new(msg.height, msg.round), epoch);
            }
            let Some(s) = o.get_mut(msg.height) else {
                continue;
            };
            if msg.round > s.round {
                s.reset(msg.round);
            }
            if kind == MessageType::Proposal
                && let Some(h) = full_data_hash
            {
                s.proposal_data = Some(h);
            }
            if signers.len() > 1 {
                s.decided_signers
                    .get_or_insert_with(Default::default)
                    .insert(mask);
            } else {
                s.seen.record(seen_kind(kind));
            }
        }
        Ok(Validated {
            message: signed,
            body: Body::Consensus(msg),
            role,
            committee_id: info.id,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn partial(
        &mut self,
        net: &impl NetworkView,
        peer: P,
        signed: SignedSsvMessage,
        role: RunnerRole,
        info: CommitteeInfo,
        now_ms: u64,
    ) -> Result<Validated, Violation> {
        let data = &signed.ssv_message.data;
        if data.len() > MAX_ENCODED_PARTIAL_SIGNATURE_SIZE {
            return fail(Rule::SsvDataTooBig, format!("{} bytes", data.len()));
        }
        let psm = PartialSignatureMessages::from_ssz(data)
            .map_err(|e| Violation::new(Rule::UndecodableMessageData, e.to_string()))?;
        let kind = partial_semantics(&signed, &psm, role, &info)?;
        let id = signed.ssv_message.msg_id;
        // The state of (peer, ID), looked up once.
        let entry = self.entry(peer, &id);
        let signer = signed.operator_ids[0];
        let slot = psm.slot;
        let seen = if kind == PartialSigMsgType::PostConsensus {
            SeenKind::PostConsensus
        } else {
            SeenKind::PreConsensus
        };
        if let Some(o) = signer_state(entry, &info, signer)
            && role != RunnerRole::Committee
            && o.max_slot() != 0
            && o.max_slot() > slot
        {
            return fail(
                Rule::SlotAlreadyAdvanced,
                format!("slot {slot}, signer at {}", o.max_slot()),
            );
        }
        self.beacon_duty(
            net,
            role,
            slot,
            &info,
            kind == PartialSigMsgType::RandaoPartialSig,
            now_ms,
        )?;
        if let Some(s) = signer_state(entry, &info, signer).and_then(|o| o.get(slot))
            && s.seen.seen(seen)
        {
            return fail(Rule::InvalidPartialSignatureTypeCount, format!("{seen:?}"));
        }
        self.slot_time(slot, role, now_ms)?;
        self.duty_count(net, entry, &id, &info, signer, slot)?;
        let count = psm.messages.len();
        let validators = info.validator_indices.len();
        match role {
            RunnerRole::Committee => {
                let max = (2 * validators).min(validators + SYNC_COMMITTEE_SIZE as usize);
                if count > max {
                    return fail(
                        Rule::TooManyPartialSignatureMessages,
                        format!("{count}, at most {max}"),
                    );
                }
                let mut per_validator: HashMap<u64, u8> = HashMap::with_capacity(count);
                for m in psm.messages.iter() {
                    let n = per_validator.entry(m.validator_index).or_default();
                    *n += 1;
                    if *n > 2 {
                        return fail(
                            Rule::TripleValidatorIndexInPartialSignatures,
                            format!("validator {}", m.validator_index),
                        );
                    }
                }
            }
            RunnerRole::SyncCommitteeContribution if count > MAX_SIGNATURES => {
                return fail(
                    Rule::TooManyPartialSignatureMessages,
                    format!("{count}, at most {MAX_SIGNATURES}"),
                );
            }
            RunnerRole::SyncCommitteeContribution => {}
            _ if count > 1 => {
                return fail(
                    Rule::TooManyPartialSignatureMessages,
                    format!("{count}, at most 1"),
                );
            }
            _ => {}
        }
        verify_signatures(net, &signed)?;
        let epoch = self.config.epoch_of(slot);
        let entry = self.entry_mut(peer, &id, info.operators.len(), now_ms);
        let o = &mut entry.operators[info.signer_index(signer)];
        if o.get(slot).is_none() {
            o.insert(SignerState::new(slot, FIRST_ROUND), epoch);
        }
        if let Some(s) = o.get_mut(slot) {
            s.seen.record(seen);
        }
        Ok(Validated {
            message: signed,
            body: Body::PartialSignatures(psm),
            role,
            committee_id: info.id,
        })
    }

    /// Proposer and contribution messages need the beacon duty behind them.
    fn beacon_duty(
        &self,
        net: &impl NetworkView,
        role: RunnerRole,
        slot: Slot,
        info: &CommitteeInfo,
        randao: bool,
        now_ms: u64,
    ) -> Result<(), Violation> {
        let epoch = self.config.epoch_of(slot);
        let Some(&index) = info.validator_indices.first() else {
            return Ok(());
        };
        match role {
            RunnerRole::Proposer => match net.proposer_duty(epoch, slot, index) {
                Some(true) => Ok(()),
                // A RANDAO partial of an epoch's first slot may come before our duties of
                // that epoch are fetched.
                None if randao
                    && slot == self.config.chain.first_slot(epoch)
                    && self.config.slot_at(now_ms) <= slot =>
                {
                    Ok(())
                }
                _ => fail(Rule::NoDuty, format!("no proposal of {index} at {slot}")),
            },
            RunnerRole::SyncCommitteeContribution => {
                let period = epoch / self.config.chain.epochs_per_sync_committee_period().max(1);
                if net.sync_committee_duty(period, index) {
                    Ok(())
                } else {
                    fail(
                        Rule::NoDuty,
                        format!("{index} not in the sync committee of period {period}"),
                    )
                }
            }
            _ => Ok(()),
        }
    }

    /// The slot's time window: not before it starts, not after the role's time to live.
    fn slot_time(&self, slot: Slot, role: RunnerRole, now_ms: u64) -> Result<(), Violation> {
        let start = self.config.slot_start_ms(slot);
        if start > now_ms + CLOCK_TOLERANCE_MS {
            return fail(
                Rule::EarlySlotMessage,
                format!("early by {} ms", start - now_ms),
            );
        }
        let ttl = match role {
            RunnerRole::Proposer | RunnerRole::SyncCommitteeContribution => 1 + LATE_SLOT_ALLOWANCE,
            RunnerRole::Committee | RunnerRole::Aggregator => STORED_SLOTS,
            RunnerRole::ValidatorRegistration | RunnerRole::VoluntaryExit => return Ok(()),
        };
        let deadline = self
            .config
            .slot_start_ms(slot.saturating_add(ttl))
            .saturating_add(LATE_MESSAGE_MARGIN_MS);
        if now_ms > deadline + CLOCK_TOLERANCE_MS {
            return fail(
                Rule::LateSlotMessage,
                format!("late by {} ms", now_ms - deadline),
            );
        }
        Ok(())
    }

    /// A round no further ahead than the slot's elapsed time allows (plus one).
    fn round_in_spread(&self, slot: Slot, round: Round, now_ms: u64) -> Result<(), Violation> {
        let start = self.config.slot_start_ms(slot);
        let estimated = if now_ms > start {
            estimated_round(now_ms - start)
        } else {
            FIRST_ROUND
        };
        let highest = estimated + ALLOWED_ROUNDS_IN_FUTURE;
        if round < FIRST_ROUND || round > highest {
            return fail(
                Rule::EstimatedRoundNotInAllowedSpread,
                format!("round {round}, at most {highest} now"),
            );
        }
        Ok(())
    }

    /// At most as many duties per epoch as the beacon chain can give the runner.
    fn duty_count(
        &self,
        net: &impl NetworkView,
        entry: Option<&ValidatorState>,
        id: &MessageId,
        info: &CommitteeInfo,
        signer: OperatorId,
        slot: Slot,
    ) -> Result<(), Violation> {
        let Some(limit) = self.duty_limit(net, id, slot, &info.validator_indices) else {
            return Ok(());
        };
        let epoch = self.config.epoch_of(slot);
        let o = signer_state(entry, info, signer);
        let mut count = o.map_or(0, |o| o.duty_count(epoch));
        if o.and_then(|o| o.get(slot)).is_none() {
            count += 1;
        }
        if count > limit {
            return fail(
                Rule::TooManyDutiesPerEpoch,
                format!("{count} duties in epoch {epoch}, at most {limit}"),
            );
        }
        Ok(())
    }

    fn duty_limit(
        &self,
        net: &impl NetworkView,
        id: &MessageId,
        slot: Slot,
        indices: &[u64],
    ) -> Option<u64> {
        let slots_per_epoch = self.config.chain.slots_per_epoch();
        match id.role()? {
            RunnerRole::VoluntaryExit => {
                Some(net.voluntary_exit_duties(slot, id.duty_executor_id()))
            }
            RunnerRole::Aggregator | RunnerRole::ValidatorRegistration => Some(2),
            RunnerRole::Committee => {
                let n = indices.len() as u64;
                if n < slots_per_epoch / 2 {
                    let epoch = self.config.epoch_of(slot);
                    let period =
                        epoch / self.config.chain.epochs_per_sync_committee_period().max(1);
                    if indices.iter().any(|i| net.sync_committee_duty(period, *i)) {
                        return Some(slots_per_epoch);
                    }
                }
                Some(slots_per_epoch.min(2 * n))
            }
            RunnerRole::Proposer | RunnerRole::SyncCommitteeContribution => None,
        }
    }
}

/// One signer's state in `entry`.
fn signer_state<'a>(
    entry: Option<&'a ValidatorState>,
    info: &CommitteeInfo,
    signer: OperatorId,
) -> Option<&'a OperatorState> {
    entry.and_then(|e| e.operators.get(info.signer_index(signer)))
}

/// Signers: present, as many as signatures, 256-byte signatures, ascending, none zero or
/// repeated, every one a registered operator.
fn check_signers(net: &impl NetworkView, signed: &SignedSsvMessage) -> Result<(), Violation> {
    let ids: &[OperatorId] = &signed.operator_ids;
    if ids.is_empty() {
        return fail(Rule::NoSigners, "");
    }
    if signed.signatures.is_empty() {
        return fail(Rule::NoSignatures, "");
    }
    if let Some(s) = signed
        .signatures
        .iter()
        .find(|s| s.len() != RSA_SIGNATURE_SIZE)
    {
        return fail(Rule::WrongRsaSignatureSize, format!("{} bytes", s.len()));
    }
    if !ids.is_sorted() {
        return fail(Rule::SignersNotSorted, "");
    }
    if ids.len() != signed.signatures.len() {
        return fail(
            Rule::SignersAndSignaturesWithDifferentLength,
            format!("{}/{}", ids.len(), signed.signatures.len()),
        );
    }
    let mut previous = 0;
    for &signer in ids {
        if signer == 0 {
            return fail(Rule::ZeroSigner, "");
        }
        if signer == previous {
            return fail(Rule::DuplicatedSigner, format!("{signer}"));
        }
        if !net.operator_exists(signer) {
            return fail(Rule::UnknownOperator, format!("{signer}"));
        }
        previous = signer;
    }
    Ok(())
}

/// The QBFT message on its own: signer count by type, full data, type, round, role,
/// identifier, justifications.
fn consensus_semantics(
    signed: &SignedSsvMessage,
    msg: &QbftMessage,
    role: RunnerRole,
    info: &CommitteeInfo,
) -> Result<(MessageType, Option<Root>), Violation> {
    let signers = signed.operator_ids.len();
    let kind = msg.kind();
    if signers > 1 {
        if kind != Some(MessageType::Commit) {
            return fail(
                Rule::NonDecidedWithMultipleSigners,
                format!("{signers} signers"),
            );
        }
        let q = quorum(info.operators.len());
        if signers < q {
            return fail(
                Rule::DecidedNotEnoughSigners,
                format!("{signers} signers, quorum {q}"),
            );
        }
    }
    // The full data's hash, computed once: checked against the root here, kept in the
    // signer's state as its proposal's data later.
    let mut full_data_hash = None;
    if !signed.full_data.is_empty() {
        if kind == Some(MessageType::Prepare) || (kind == Some(MessageType::Commit) && signers == 1)
        {
            return fail(Rule::PrepareOrCommitWithFullData, "");
        }
        let hash = crate::qbft::hash_data_root(&signed.full_data);
        if hash != msg.root {
            return fail(Rule::InvalidHash, "");
        }
        full_data_hash = Some(hash);
    }
    let Some(kind) = kind else {
        return fail(Rule::UnknownQbftMessageType, format!("{}", msg.msg_type));
    };
    if msg.round == 0 {
        return fail(Rule::ZeroRound, "");
    }
    if matches!(
        role,
        RunnerRole::ValidatorRegistration | RunnerRole::VoluntaryExit
    ) {
        return fail(Rule::UnexpectedConsensusMessage, format!("{role:?}"));
    }
    let max_round = match role {
        RunnerRole::Committee | RunnerRole::Aggregator => 12,
        _ => 6,
    };
    if msg.round > max_round {
        return fail(
            Rule::RoundTooHigh,
            format!("round {} of {role:?}, at most {max_round}", msg.round),
        );
    }
    if msg.identifier[..] != signed.ssv_message.msg_id.0[..] {
        return fail(Rule::MismatchedIdentifier, "");
    }
    let prepare = msg
        .prepare_justifications()
        .map_err(|e| Violation::new(Rule::MalformedPrepareJustifications, e.to_string()))?;
    if !prepare.is_empty() && kind != MessageType::Proposal {
        return fail(Rule::UnexpectedPrepareJustifications, format!("{kind:?}"));
    }
    let round_change = msg
        .round_change_justifications()
        .map_err(|e| Violation::new(Rule::MalformedRoundChangeJustifications, e.to_string()))?;
    if !round_change.is_empty() && kind != MessageType::Proposal && kind != MessageType::RoundChange
    {
        return fail(
            Rule::UnexpectedRoundChangeJustifications,
            format!("{kind:?}"),
        );
    }
    Ok((kind, full_data_hash))
}

/// The partial-signature message on its own: one signer, no full data, a type of the role,
/// signatures present, every one from the signer and (validator roles) of the validator.
fn partial_semantics(
    signed: &SignedSsvMessage,
    psm: &PartialSignatureMessages,
    role: RunnerRole,
    info: &CommitteeInfo,
) -> Result<PartialSigMsgType, Violation> {
    if signed.operator_ids.len() != 1 {
        return fail(
            Rule::PartialSigOneSigner,
            format!("{} signers", signed.operator_ids.len()),
        );
    }
    let signer = signed.operator_ids[0];
    if !signed.full_data.is_empty() {
        return fail(Rule::FullDataNotInConsensusMessage, "");
    }
    let Some(kind) = PartialSigMsgType::from_u64(psm.msg_type) else {
        return fail(
            Rule::InvalidPartialSignatureType,
            format!("{}", psm.msg_type),
        );
    };
    use PartialSigMsgType as T;
    let matches_role = match role {
        RunnerRole::Committee => kind == T::PostConsensus,
        RunnerRole::Aggregator => matches!(kind, T::PostConsensus | T::SelectionProofPartialSig),
        RunnerRole::Proposer => matches!(kind, T::PostConsensus | T::RandaoPartialSig),
        RunnerRole::SyncCommitteeContribution => {
            matches!(kind, T::PostConsensus | T::ContributionProofs)
        }
        RunnerRole::ValidatorRegistration => kind == T::ValidatorRegistrationPartialSig,
        RunnerRole::VoluntaryExit => kind == T::VoluntaryExitPartialSig,
    };
    if !matches_role {
        return fail(
            Rule::PartialSignatureTypeRoleMismatch,
            format!("{kind:?} for {role:?}"),
        );
    }
    if psm.messages.is_empty() {
        return fail(Rule::NoPartialSignatureMessages, "");
    }
    for m in psm.messages.iter() {
        if m.signer != signer {
            return fail(
                Rule::InconsistentSigners,
                format!("partial of {}, message of {signer}", m.signer),
            );
        }
        if role != RunnerRole::Committee && !info.validator_indices.contains(&m.validator_index) {
            return fail(
                Rule::ValidatorIndexMismatch,
                format!("validator {}", m.validator_index),
            );
        }
    }
    Ok(kind)
}

/// Every signer's RSA signature of the SSV message.
fn verify_signatures(net: &impl NetworkView, signed: &SignedSsvMessage) -> Result<(), Violation> {
    let encoded = ssz::Encode::as_ssz_bytes(&signed.ssv_message);
    for (i, op) in signed.operator_ids.iter().enumerate() {
        let ok = signed
            .signature(i)
            .is_some_and(|s| net.verify_signature(*op, &encoded, s));
        if !ok {
            return fail(Rule::SignatureVerification, format!("operator {op}"));
        }
    }
    Ok(())
}

fn seen_kind(kind: MessageType) -> SeenKind {
    match kind {
        MessageType::Proposal => SeenKind::Proposal,
        MessageType::Prepare => SeenKind::Prepare,
        MessageType::Commit => SeenKind::Commit,
        MessageType::RoundChange => SeenKind::RoundChange,
    }
}

/// The round the slot's elapsed time allows: quick rounds of 2 s up to round 8, then 2 min.
fn estimated_round(since_slot_start_ms: u64) -> Round {
    let quick = FIRST_ROUND + since_slot_start_ms / QUICK_TIMEOUT_MS;
    if quick <= QUICK_TIMEOUT_THRESHOLD {
        return quick;
    }
    let since_slow = since_slot_start_ms - QUICK_TIMEOUT_THRESHOLD * QUICK_TIMEOUT_MS;
    QUICK_TIMEOUT_THRESHOLD + FIRST_ROUND + since_slow / SLOW_TIMEOUT_MS
}

/// The QBFT leader of `round` at `height` (ssv-spec's round robin over the committee).
fn round_robin_proposer(height: u64, round: Round, committee: &[OperatorId]) -> OperatorId {
    let n = committee.len().max(1) as u64;
    let first = if height == FIRST_HEIGHT {
        0
    } else {
        height % n
    };
    let index = (first + round % n + n - FIRST_ROUND % n) % n;
    committee.get(index as usize).copied().unwrap_or(0)
}
