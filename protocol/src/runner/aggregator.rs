//! The aggregator role (ssv-spec `AggregatorRunner`) on the runner core:
//!
//! ```text
//! start_duty ─► Sign(selection proof: the slot under DOMAIN_SELECTION_PROOF)
//!   pre-consensus partials, quorum ─► Reconstruct ─► FetchBeaconData(aggregate, with the proof)
//!   beacon_data(version, AggregateAndProof) ─► QBFT on ValidatorConsensusData
//!   decided ─► Sign(AggregateAndProof under DOMAIN_AGGREGATE_AND_PROOF)
//!   post-consensus partials, quorum ─► Reconstruct ─► Submit(SignedAggregateAndProof)
//! ```
//!
//! Phase 0 to Deneb aggregates and Electra/Fulu ones (committee bits) alike: the shape follows
//! the data version of the value. Sans-IO: the caller signs, reconstructs, verifies, fetches and
//! submits; QBFT runs inside.

use tree_hash::TreeHash;

use super::committee::{ReconstructFailure, RunnerOptions};
use super::consensus_role::ConsensusRole;
use super::one_root::{OneRoot, Reconstructed};
use super::signing_only::{BeaconDataRequest, BeaconObject, RunnerShare, ValidatorAction};
use super::value_check::DutyValueCheck;
use crate::beacon::consensus_data::{ValidatorConsensusData, ValidatorDuty};
use crate::chain::ChainSpec;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::RunnerRole;
use crate::partial_sig::{BlsSignature, PartialSigMsgType};
use crate::qbft::{Config, Env};
use crate::signing::{Domain, compute_signing_root};
use crate::types::{BeaconRole, CommitteeMember, Epoch, Root};

/// `TARGET_AGGREGATORS_PER_COMMITTEE` of the consensus specs.
pub const TARGET_AGGREGATORS_PER_COMMITTEE: u64 = 16;

/// The consensus specs' `is_aggregator`: whether the validator whose selection proof (slot
/// signature) is `proof` aggregates for its beacon committee of `committee_length`:
/// `bytes_to_uint64(hash(proof)[0:8]) % max(1, committee_length / 16) == 0`.
pub fn is_aggregator(committee_length: u64, proof: &BlsSignature) -> bool {
    use sha2::Digest as _;
    let modulo = (committee_length / TARGET_AGGREGATORS_PER_COMMITTEE).max(1);
    let h = sha2::Sha256::digest(proof);
    let mut first = [0u8; 8];
    first.copy_from_slice(&h[..8]);
    u64::from_le_bytes(first) % modulo == 0
}

/// The signing domains of an aggregator duty (from the fork schedule at the duty's epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatorDomains {
    /// `DOMAIN_SELECTION_PROOF`.
    pub selection_proof: Domain,
    /// `DOMAIN_AGGREGATE_AND_PROOF`.
    pub aggregate_and_proof: Domain,
}

/// The aggregator runner of one validator. See the module docs.
pub struct AggregatorRunner {
    core: OneRoot,
    domains: Option<AggregatorDomains>,
}

impl std::fmt::Debug for AggregatorRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregatorRunner")
            .field("validator", &self.core.share.validator_index)
            .field("phase", &self.core.base.phase())
            .finish_non_exhaustive()
    }
}

impl AggregatorRunner {
    /// An aggregator runner for the validator of `share`, run by `member`'s operator.
    pub fn new(
        member: CommitteeMember,
        share: RunnerShare,
        config: Config,
        chain: ChainSpec,
        options: RunnerOptions,
    ) -> Self {
        AggregatorRunner {
            core: OneRoot::new(
                RunnerRole::Aggregator,
                PartialSigMsgType::SelectionProofPartialSig,
                member,
                share,
                config,
                chain,
                options,
            ),
            domains: None,
        }
    }

    /// Sets the duty a restored state belongs to (the runner suite's vectors): the duty, its
    /// domains and, when decided, the decided value.
    pub fn restore_duty(
        &mut self,
        duty: ValidatorDuty,
        domains: AggregatorDomains,
        current_epoch: Epoch,
    ) -> Result<(), Error> {
        let pre = compute_signing_root(duty.slot.tree_hash_root().0, domains.selection_proof);
        let post = match self.core.decided_data()? {
            Some(cd) => Some(compute_signing_root(
                cd.aggregate_and_proof()?.root(),
                domains.aggregate_and_proof,
            )),
            None => None,
        };
        self.core.restore(duty, pre, post, current_epoch);
        self.domains = Some(domains);
        Ok(())
    }

    /// Starts a duty (ssv-spec `baseStartNewDuty`: the duty must be above the controller's
    /// height): asks for our selection-proof partial.
    pub fn start_duty(
        &mut self,
        duty: ValidatorDuty,
        domains: AggregatorDomains,
        current_epoch: Epoch,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let root = compute_signing_root(duty.slot.tree_hash_root().0, domains.selection_proof);
        self.core.start(duty, root, current_epoch, out)?;
        self.domains = Some(domains);
        Ok(())
    }

    /// The verdict of a [`ValidatorAction::Reconstruct`] over `signing_root`.
    pub fn reconstructed(
        &mut self,
        signing_root: Root,
        verdict: Result<BlsSignature, ReconstructFailure>,
        out: &mut Vec<ValidatorAction>,
    ) {
        match self.core.reconstructed(signing_root, verdict, out) {
            Some(Reconstructed::Post(signature, value)) => {
                if let Ok(aggregate) =
                    ValidatorConsensusData::from_ssz(&value).and_then(|cd| cd.aggregate_and_proof())
                {
                    out.push(ValidatorAction::Submit(BeaconObject::AggregateAndProof(
                        aggregate.signed(signature),
                    )));
                }
            }
            Some(Reconstructed::Pre(selection_proof)) => {
                let Some(duty) = &self.core.duty else {
                    return;
                };
                // The node, as the Go node does, ends the duty here when the proof does not
                // make the validator an aggregator (the spec asks its beacon node, which
                // decides).
                if self.core.options.hardened
                    && !is_aggregator(duty.committee_length, &selection_proof)
                {
                    if let Some(state) = self.core.base.state.as_mut() {
                        state.finished = true;
                    }
                    return;
                }
                out.push(ValidatorAction::FetchBeaconData(
                    BeaconDataRequest::AggregateAndProof {
                        slot: duty.slot,
                        committee_index: duty.committee_index,
                        committee_length: duty.committee_length,
                        validator_index: duty.validator_index,
                        selection_proof,
                    },
                ));
            }
            None => {}
        }
    }

    /// The beacon node's aggregate for a [`BeaconDataRequest::AggregateAndProof`]: starts QBFT
    /// on it (ssv-spec `decide`: the value check first).
    pub fn beacon_data(
        &mut self,
        env: Env<'_>,
        version: u64,
        aggregate_and_proof_ssz: Vec<u8>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let (slot, value) = self
            .core
            .consensus_value(version, aggregate_and_proof_ssz)?;
        self.start_consensus(env, slot, value, out)
    }
}

impl AggregatorRunner {
    /// The role's value check (ssv-spec's).
    fn role_value_check(&self) -> DutyValueCheck {
        self.core.value_check(BeaconRole::Aggregator, None)
    }

    /// The decided value passed the value check: sign it.
    fn role_on_decided(
        &mut self,
        value: Vec<u8>,
        out: &mut Vec<ValidatorAction>,
    ) -> Result<(), Error> {
        let cd = ValidatorConsensusData::from_ssz(&value)?;
        let domain = self
            .domains
            .map(|d| d.aggregate_and_proof)
            .ok_or_else(|| Error::spec(ErrorCode::NoRunningDuty, "no duty"))?;
        let root = compute_signing_root(cd.aggregate_and_proof()?.root(), domain);
        self.core.sign_post(cd.duty.slot, root, out);
        Ok(())
    }
}

super::one_root::one_root_role!(AggregatorRunner);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::RsaSignature;
    use crate::qbft::{OperatorSigner, SignatureVerifier, ValueCheck};
    use crate::runner::Phase;
    use crate::types::{CommitteeOperator, DomainType, OperatorId};

    struct Signer;
    impl OperatorSigner for Signer {
        fn operator_id(&self) -> OperatorId {
            1
        }
        fn sign_ssv_message(&self, _: &[u8]) -> Result<RsaSignature, Error> {
            Ok([1; 256])
        }
    }
    struct Any;
    impl SignatureVerifier for Any {
        fn verify(&self, _: &CommitteeOperator, _: &[u8], _: &RsaSignature) -> bool {
            true
        }
    }
    impl ValueCheck for Any {
        fn check_value(&self, _: &[u8]) -> Result<(), Error> {
            Ok(())
        }
    }

    fn runner() -> AggregatorRunner {
        let ids: Vec<OperatorId> = vec![1, 2, 3, 4];
        let member = CommitteeMember {
            operator_id: 1,
            committee_id: crate::committee::CommitteeId::from_operators(&ids),
            rsa_public_key_pem: Vec::new(),
            faulty_nodes: 1,
            committee: ids
                .iter()
                .map(|id| CommitteeOperator {
                    operator_id: *id,
                    rsa_public_key_pem: Vec::new(),
                })
                .collect(),
            domain: DomainType([0, 0, 3, 1]),
        };
        let share = RunnerShare {
            validator_index: 9,
            validator_pk: [9; 48],
            committee: ids.iter().map(|id| (*id, [*id as u8; 48])).collect(),
        };
        AggregatorRunner::new(
            member,
            share,
            Config::default(),
            ChainSpec::MAINNET,
            RunnerOptions::NODE,
        )
    }

    fn duty() -> ValidatorDuty {
        ValidatorDuty {
            role: BeaconRole::Aggregator.to_u64(),
            pubkey: [9; 48],
            slot: 64,
            validator_index: 9,
            committee_index: 3,
            // Under 32 members: every member aggregates (`is_aggregator`).
            committee_length: 16,
            committees_at_slot: 36,
            validator_committee_index: 11,
            validator_sync_committee_indices: Vec::new().try_into().expect("empty"),
        }
    }

    /// `is_aggregator` against hand-computed answers: sha256 of 96 zero bytes starts with
    /// 9251468512758311214 (little-endian), of 96 0x01 bytes with 15010667366611956363.
    #[test]
    fn is_aggregator_follows_the_consensus_spec() {
        // Committees below 32 members: everyone aggregates.
        assert!(is_aggregator(0, &[0; 96]));
        assert!(is_aggregator(31, &[7; 96]));
        // modulo 2 (32..=47 members): 9251468512758311214 is even, 15010667366611956363 odd.
        assert!(is_aggregator(32, &[0; 96]));
        assert!(!is_aggregator(47, &[1; 96]));
        // modulo 8 (128 members): remainders 6 and 3.
        assert!(!is_aggregator(128, &[0; 96]));
        assert!(!is_aggregator(128, &[1; 96]));
        // modulo 3 (48 members): 15010667366611956363 % 3 == 0.
        assert!(is_aggregator(48, &[1; 96]));
    }

    /// A round timeout changes round while consensus runs, and is dropped once the duty has
    /// finished (the Go node's `HasRunningDuty`) and before any duty.
    #[test]
    fn timeouts_change_rounds_only_while_the_duty_runs() {
        let env = Env {
            signer: &Signer,
            verifier: &Any,
            value_check: &Any,
        };
        let mut r = runner();
        let mut out = Vec::new();
        r.on_timeout(env, 64, &mut out).expect("no duty");
        assert!(out.is_empty(), "a timeout without a duty does nothing");
        let domains = AggregatorDomains {
            selection_proof: [5; 32],
            aggregate_and_proof: [6; 32],
        };
        r.start_duty(duty(), domains, 2, &mut out).expect("start");
        let Some(ValidatorAction::Sign { signing_root, .. }) = out.pop() else {
            panic!("a selection-proof signature request");
        };
        // The selection proof reconstructed (the caller's part), the aggregate fetched.
        r.reconstructed(signing_root, Ok([1; 96]), &mut out);
        assert!(matches!(
            out.pop(),
            Some(ValidatorAction::FetchBeaconData(
                BeaconDataRequest::AggregateAndProof { .. }
            ))
        ));
        let aggregate = crate::beacon::phase0::AggregateAndProof {
            aggregator_index: 9,
            aggregate: crate::beacon::phase0::Attestation {
                aggregation_bits: ssz_types::BitList::with_capacity(128).expect("bits"),
                data: crate::beacon_vote::BeaconVote::default().attestation_data(64),
                signature: [0; 96],
            },
            selection_proof: [1; 96],
        };
        r.beacon_data(env, 1, ssz::Encode::as_ssz_bytes(&aggregate), &mut out)
            .expect("consensus starts");
        assert_eq!(r.base().phase(), Phase::Consensus);
        out.clear();
        r.on_timeout(env, 64, &mut out).expect("timeout");
        assert!(
            out.iter()
                .any(|a| matches!(a, ValidatorAction::Broadcast(_))),
            "a running instance sends a round change"
        );
        if let Some(state) = r.base_mut().state.as_mut() {
            state.finished = true;
        }
        out.clear();
        r.on_timeout(env, 64, &mut out).expect("timeout");
        assert!(out.is_empty(), "a finished duty's timeout is dropped");
    }
}
