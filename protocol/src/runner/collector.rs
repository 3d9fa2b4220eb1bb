//! The partial-signature collector every role shares (ssv-spec `PartialSigContainer`).
//!
//! Partial signatures are kept per validator, then per signing root, then per operator, so a
//! quorum is counted per `(validator, root)`: partials of one validator over different roots
//! (a Byzantine operator signing something else, or a pre-consensus phase with several roots
//! such as contribution proofs of several subcommittees) never add up. A second partial of the
//! same operator for the same validator and root is ignored (the first one stays), as in the
//! spec; an operator whose partials failed verification can be removed again
//! ([`PartialSigCollector::remove_operator`]) so that a later quorum forms without it.
//!
//! Nothing here checks signatures: the collector is sans-IO like the runners. The caller
//! reconstructs and verifies what [`PartialSigCollector::quorum_partials`] returns.

use std::collections::BTreeMap;

use crate::partial_sig::{BlsSignature, PartialSignatureMessage};
use crate::types::{OperatorId, Root, ValidatorIndex};

/// What [`PartialSigCollector::add`] did with one partial signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Stored; `(validator, root)` has not reached the quorum yet.
    Stored,
    /// Stored, and this partial completed the quorum of `(validator, root)`.
    ReachedQuorum,
    /// Stored into a `(validator, root)` already at quorum.
    AboveQuorum,
    /// The operator already has a partial for this validator and root: ignored.
    Duplicate,
}

/// Partial signatures of one duty phase. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialSigCollector {
    quorum: usize,
    signatures: BTreeMap<ValidatorIndex, BTreeMap<Root, BTreeMap<OperatorId, BlsSignature>>>,
}

impl PartialSigCollector {
    /// An empty collector that needs `quorum` distinct operators per `(validator, root)`.
    pub fn new(quorum: usize) -> Self {
        PartialSigCollector {
            quorum,
            signatures: BTreeMap::new(),
        }
    }

    /// The quorum.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Adds one partial signature (ssv-spec `AddSignature`: the first partial of an operator
    /// for a validator and root stays).
    pub fn add(&mut self, msg: &PartialSignatureMessage) -> Added {
        let by_op = self
            .signatures
            .entry(msg.validator_index)
            .or_default()
            .entry(msg.signing_root)
            .or_default();
        if by_op.contains_key(&msg.signer) {
            return Added::Duplicate;
        }
        by_op.insert(msg.signer, msg.partial_signature);
        match by_op.len().cmp(&self.quorum) {
            std::cmp::Ordering::Less => Added::Stored,
            std::cmp::Ordering::Equal => Added::ReachedQuorum,
            std::cmp::Ordering::Greater => Added::AboveQuorum,
        }
    }

    /// Whether `operator` has a partial for `validator` over `root`.
    pub fn has_signature(
        &self,
        validator: ValidatorIndex,
        operator: OperatorId,
        root: &Root,
    ) -> bool {
        self.partials(validator, root)
            .is_some_and(|m| m.contains_key(&operator))
    }

    /// The partials of `validator` over `root`, by operator.
    pub fn partials(
        &self,
        validator: ValidatorIndex,
        root: &Root,
    ) -> Option<&BTreeMap<OperatorId, BlsSignature>> {
        self.signatures.get(&validator)?.get(root)
    }

    /// Whether `validator` has a quorum of partials over `root`.
    pub fn has_quorum(&self, validator: ValidatorIndex, root: &Root) -> bool {
        self.partials(validator, root)
            .is_some_and(|m| m.len() >= self.quorum)
    }

    /// Every partial of `validator` over `root` when they reach the quorum, ascending by
    /// operator (what reconstruction takes; the spec interpolates over all of them).
    pub fn quorum_partials(
        &self,
        validator: ValidatorIndex,
        root: &Root,
    ) -> Option<Vec<(OperatorId, BlsSignature)>> {
        let m = self.partials(validator, root)?;
        (m.len() >= self.quorum).then(|| m.iter().map(|(o, s)| (*o, *s)).collect())
    }

    /// Removes `operator`'s partial of `validator` over `root` (it failed verification).
    pub fn remove(&mut self, validator: ValidatorIndex, operator: OperatorId, root: &Root) -> bool {
        self.signatures
            .get_mut(&validator)
            .and_then(|r| r.get_mut(root))
            .and_then(|m| m.remove(&operator))
            .is_some()
    }

    /// Removes every partial of `operator` (a culprit); returns how many went.
    pub fn remove_operator(&mut self, operator: OperatorId) -> usize {
        let mut removed = 0;
        for roots in self.signatures.values_mut() {
            for m in roots.values_mut() {
                removed += usize::from(m.remove(&operator).is_some());
            }
        }
        removed
    }

    /// The roots some operator signed for `validator` (more than one: operators disagree).
    pub fn roots_of(&self, validator: ValidatorIndex) -> impl Iterator<Item = &Root> {
        self.signatures
            .get(&validator)
            .into_iter()
            .flat_map(|m| m.keys())
    }

    /// Everything, by validator, root and operator (the spec's state shape).
    pub fn signatures(
        &self,
    ) -> &BTreeMap<ValidatorIndex, BTreeMap<Root, BTreeMap<OperatorId, BlsSignature>>> {
        &self.signatures
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(
        signer: OperatorId,
        validator: ValidatorIndex,
        root: u8,
        sig: u8,
    ) -> PartialSignatureMessage {
        PartialSignatureMessage {
            partial_signature: [sig; 96],
            signing_root: [root; 32],
            signer,
            validator_index: validator,
        }
    }

    #[test]
    fn quorum_is_per_validator_and_root() {
        let mut c = PartialSigCollector::new(3);
        assert_eq!(c.add(&msg(1, 7, 1, 1)), Added::Stored);
        assert_eq!(c.add(&msg(2, 7, 1, 2)), Added::Stored);
        // Another root and another validator do not count towards (7, root 1).
        assert_eq!(c.add(&msg(3, 7, 2, 3)), Added::Stored);
        assert_eq!(c.add(&msg(3, 8, 1, 3)), Added::Stored);
        assert!(!c.has_quorum(7, &[1; 32]));
        assert_eq!(c.roots_of(7).count(), 2);
        assert_eq!(c.add(&msg(4, 7, 1, 4)), Added::ReachedQuorum);
        assert!(c.has_quorum(7, &[1; 32]));
        let q = c.quorum_partials(7, &[1; 32]).expect("quorum");
        assert_eq!(q.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(c.add(&msg(3, 7, 1, 3)), Added::AboveQuorum);
    }

    #[test]
    fn the_first_partial_of_an_operator_stays() {
        let mut c = PartialSigCollector::new(2);
        c.add(&msg(1, 7, 1, 1));
        assert_eq!(c.add(&msg(1, 7, 1, 9)), Added::Duplicate);
        assert_eq!(
            c.partials(7, &[1; 32]).and_then(|m| m.get(&1)),
            Some(&[1; 96])
        );
    }

    #[test]
    fn culprits_are_removed_everywhere() {
        let mut c = PartialSigCollector::new(2);
        c.add(&msg(1, 7, 1, 1));
        c.add(&msg(2, 7, 1, 2));
        c.add(&msg(2, 8, 1, 2));
        assert_eq!(c.remove_operator(2), 2);
        assert!(!c.has_quorum(7, &[1; 32]));
        assert!(!c.has_signature(8, 2, &[1; 32]));
        assert!(c.remove(7, 1, &[1; 32]));
        assert!(!c.remove(7, 1, &[1; 32]));
    }
}
