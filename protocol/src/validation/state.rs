//! What validation remembers, keyed as the Go node keys it (`consensus_state.go`,
//! `signer_state.go`, `seen_msg_types.go`): per (peer, message ID), per signer, per slot.
//!
//! Bounds (asserted by [`super::MessageValidator::state_size`] and the tests):
//! - per signer, at most [`STORED_SLOTS`] slots are kept (older ones are dropped as newer
//!   arrive), each a [`SignerState`] of a few dozen bytes plus the decided signer sets seen
//!   (at most one per subset of a 13-member committee, and only from messages whose every
//!   signature verified);
//! - per (peer, message ID), at most 13 signers (the committee);
//! - the number of (peer, message ID) entries is capped by the validator's
//!   `entries_max`; entries not touched for [`STORED_SLOTS`] slots are pruned.

use std::collections::HashSet;

use crate::types::{Round, Slot};

/// Slots a signer's state is kept for (Go's `maxStoredSlots`: an epoch plus the late-slot
/// allowance of 2).
pub const STORED_SLOTS: u64 = 32 + 2;

/// The message types a signer sent in one round (pre/post-consensus: in one slot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeenMsgTypes(u8);

/// One bit per kind in [`SeenMsgTypes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenKind {
    /// A pre-consensus partial-signature message (RANDAO, selection proofs, ...).
    PreConsensus = 0,
    /// A proposal.
    Proposal = 1,
    /// A prepare.
    Prepare = 2,
    /// A single-signer commit.
    Commit = 3,
    /// A round change.
    RoundChange = 4,
    /// A post-consensus partial-signature message.
    PostConsensus = 5,
}

impl SeenMsgTypes {
    /// Whether `kind` was seen.
    pub fn seen(self, kind: SeenKind) -> bool {
        self.0 & (1 << kind as u8) != 0
    }

    /// Records `kind`.
    pub fn record(&mut self, kind: SeenKind) {
        self.0 |= 1 << kind as u8;
    }
}

/// What one signer sent for one slot (Go's `SignerState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerState {
    /// The slot.
    pub slot: Slot,
    /// The highest round seen.
    pub round: Round,
    /// The message types seen in that round.
    pub seen: SeenMsgTypes,
    /// SHA-256 of the full data of its proposal in that round.
    pub proposal_data: Option<[u8; 32]>,
    /// Signer sets (bit masks over the committee) of the decided messages seen.
    pub decided_signers: Option<HashSet<u16>>,
}

impl SignerState {
    /// A fresh state for `slot` at `round`.
    pub fn new(slot: Slot, round: Round) -> Self {
        SignerState {
            slot,
            round,
            seen: SeenMsgTypes::default(),
            proposal_data: None,
            decided_signers: None,
        }
    }

    /// Moves to a later `round`: what was seen in the earlier one is forgotten.
    pub fn reset(&mut self, round: Round) {
        *self = SignerState::new(self.slot, round);
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.decided_signers.as_ref().map_or(0, |s| s.len() * 8)
    }
}

/// One signer's states by slot and its duty counts (Go's `OperatorState`).
#[derive(Debug, Clone, Default)]
pub struct OperatorState {
    /// At most [`STORED_SLOTS`] states, the newest kept.
    slots: Vec<SignerState>,
    max_slot: Slot,
    max_epoch: u64,
    current_epoch_duties: u64,
    previous_epoch_duties: u64,
}

impl OperatorState {
    /// The state of `slot`, if any.
    pub fn get(&self, slot: Slot) -> Option<&SignerState> {
        self.slots.iter().find(|s| s.slot == slot)
    }

    /// The state of `slot`, if any, to change.
    pub fn get_mut(&mut self, slot: Slot) -> Option<&mut SignerState> {
        self.slots.iter_mut().find(|s| s.slot == slot)
    }

    /// Stores the first state of `slot` (in `epoch`), counting a duty.
    pub fn insert(&mut self, state: SignerState, epoch: u64) {
        let slot = state.slot;
        self.slots.retain(|s| s.slot != slot);
        if self.slots.len() as u64 >= STORED_SLOTS
            && let Some(oldest) = (0..self.slots.len()).min_by_key(|&i| self.slots[i].slot)
        {
            self.slots.swap_remove(oldest);
        }
        self.slots.push(state);
        self.max_slot = self.max_slot.max(slot);
        if epoch > self.max_epoch {
            self.max_epoch = epoch;
            self.previous_epoch_duties = self.current_epoch_duties;
            self.current_epoch_duties = 1;
        } else if epoch == self.max_epoch {
            self.current_epoch_duties += 1;
        } else {
            self.previous_epoch_duties += 1;
        }
    }

    /// The highest slot seen.
    pub fn max_slot(&self) -> Slot {
        self.max_slot
    }

    /// Duties (slots with messages) counted in `epoch`.
    pub fn duty_count(&self, epoch: u64) -> u64 {
        if epoch == self.max_epoch {
            self.current_epoch_duties
        } else if epoch + 1 == self.max_epoch {
            self.previous_epoch_duties
        } else {
            0
        }
    }

    /// States kept.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no state is kept.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.slots.iter().map(SignerState::bytes).sum::<usize>()
    }
}

/// The state of one (peer, message ID): one [`OperatorState`] per committee member.
#[derive(Debug, Clone, Default)]
pub struct ValidatorState {
    /// By the signer's position in the committee.
    pub operators: Vec<OperatorState>,
    /// The slot this entry was last used at (pruning).
    pub last_used_slot: Slot,
}

impl ValidatorState {
    /// A state for a committee of `members`.
    pub fn new(members: usize, slot: Slot) -> Self {
        ValidatorState {
            operators: vec![OperatorState::default(); members],
            last_used_slot: slot,
        }
    }

    /// Approximate heap and inline bytes.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .operators
                .iter()
                .map(OperatorState::bytes)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signer_keeps_at_most_the_stored_slots() {
        let mut s = OperatorState::default();
        for slot in 0..1000 {
            s.insert(SignerState::new(slot, 1), slot / 32);
            assert!(s.len() as u64 <= STORED_SLOTS);
        }
        assert!(s.get(999).is_some());
        assert!(s.get(999 - STORED_SLOTS).is_none());
        assert_eq!(s.max_slot(), 999);
    }

    #[test]
    fn duties_are_counted_per_epoch() {
        let mut s = OperatorState::default();
        s.insert(SignerState::new(32, 1), 1);
        s.insert(SignerState::new(33, 1), 1);
        s.insert(SignerState::new(64, 1), 2);
        assert_eq!(s.duty_count(2), 1);
        assert_eq!(s.duty_count(1), 2);
        assert_eq!(s.duty_count(0), 0);
    }

    #[test]
    fn seen_kinds_are_independent() {
        let mut seen = SeenMsgTypes::default();
        seen.record(SeenKind::Prepare);
        assert!(seen.seen(SeenKind::Prepare));
        assert!(!seen.seen(SeenKind::Commit));
        assert!(!seen.seen(SeenKind::Proposal));
    }
}
