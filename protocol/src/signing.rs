//! Beacon-chain signing domains and signing roots (consensus-specs `compute_domain`,
//! `compute_signing_root`): what every BLS signature of a duty is over.

use ssz_derive::{Decode, Encode};
use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

use crate::types::Root;

/// A 4-byte domain type of the beacon chain.
pub type BeaconDomainType = [u8; 4];
/// A 32-byte signing domain.
pub type Domain = [u8; 32];

/// `DOMAIN_BEACON_PROPOSER`.
pub const DOMAIN_BEACON_PROPOSER: BeaconDomainType = [0, 0, 0, 0];
/// `DOMAIN_BEACON_ATTESTER`.
pub const DOMAIN_BEACON_ATTESTER: BeaconDomainType = [1, 0, 0, 0];
/// `DOMAIN_RANDAO`.
pub const DOMAIN_RANDAO: BeaconDomainType = [2, 0, 0, 0];
/// `DOMAIN_DEPOSIT`.
pub const DOMAIN_DEPOSIT: BeaconDomainType = [3, 0, 0, 0];
/// `DOMAIN_VOLUNTARY_EXIT`.
pub const DOMAIN_VOLUNTARY_EXIT: BeaconDomainType = [4, 0, 0, 0];
/// `DOMAIN_SELECTION_PROOF`.
pub const DOMAIN_SELECTION_PROOF: BeaconDomainType = [5, 0, 0, 0];
/// `DOMAIN_AGGREGATE_AND_PROOF`.
pub const DOMAIN_AGGREGATE_AND_PROOF: BeaconDomainType = [6, 0, 0, 0];
/// `DOMAIN_SYNC_COMMITTEE`.
pub const DOMAIN_SYNC_COMMITTEE: BeaconDomainType = [7, 0, 0, 0];
/// `DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF`.
pub const DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF: BeaconDomainType = [8, 0, 0, 0];
/// `DOMAIN_CONTRIBUTION_AND_PROOF`.
pub const DOMAIN_CONTRIBUTION_AND_PROOF: BeaconDomainType = [9, 0, 0, 0];
/// `DOMAIN_APPLICATION_BUILDER` (validator registrations).
pub const DOMAIN_APPLICATION_BUILDER: BeaconDomainType = [0, 0, 0, 1];

/// `ForkData` container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct ForkData {
    /// Fork version.
    pub current_version: [u8; 4],
    /// Genesis validators root.
    pub genesis_validators_root: Root,
}

/// `SigningData` container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TreeHash)]
pub struct SigningData {
    /// Root of the signed object.
    pub object_root: Root,
    /// Signing domain.
    pub domain: Domain,
}

/// `compute_domain(domain_type, fork_version, genesis_validators_root)`.
pub fn compute_domain(
    domain_type: BeaconDomainType,
    fork_version: [u8; 4],
    genesis_validators_root: Root,
) -> Domain {
    let fork_data_root = ForkData {
        current_version: fork_version,
        genesis_validators_root,
    }
    .tree_hash_root();
    let mut domain = [0u8; 32];
    domain[..4].copy_from_slice(&domain_type);
    domain[4..].copy_from_slice(&fork_data_root.0[..28]);
    domain
}

/// `compute_signing_root(object, domain)` given the object's hash-tree-root.
pub fn compute_signing_root(object_root: Root, domain: Domain) -> Root {
    SigningData {
        object_root,
        domain,
    }
    .tree_hash_root()
    .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_layout() {
        let d = compute_domain(DOMAIN_BEACON_ATTESTER, [0; 4], [0; 32]);
        assert_eq!(&d[..4], &DOMAIN_BEACON_ATTESTER);
        // fork data root of zero version and zero root = sha256(zero chunk ‖ zero chunk).
        let zero = ForkData {
            current_version: [0; 4],
            genesis_validators_root: [0; 32],
        };
        assert_eq!(&d[4..], &zero.tree_hash_root().0[..28]);
        assert_ne!(
            compute_signing_root([1; 32], d),
            compute_signing_root([2; 32], d)
        );
    }
}
