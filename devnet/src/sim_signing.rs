//! The simulator's own signing domains and signing roots (consensus specs
//! `compute_domain`, `compute_signing_root`), written apart from the node's
//! (`ssv_protocol::signing`) so that a mistake in one is caught by the other: the simulator
//! verifies what the nodes sign. Known-answer tests pin both to values from outside this
//! repository (the builder domain every MEV-boost relay uses, and mainnet domains computed
//! independently).

use sha2::{Digest, Sha256};

/// `DOMAIN_BEACON_PROPOSER`.
pub const BEACON_PROPOSER: [u8; 4] = [0, 0, 0, 0];
/// `DOMAIN_BEACON_ATTESTER`.
pub const BEACON_ATTESTER: [u8; 4] = [1, 0, 0, 0];
/// `DOMAIN_RANDAO`.
pub const RANDAO: [u8; 4] = [2, 0, 0, 0];
/// `DOMAIN_VOLUNTARY_EXIT`.
pub const VOLUNTARY_EXIT: [u8; 4] = [4, 0, 0, 0];
/// `DOMAIN_SELECTION_PROOF`.
pub const SELECTION_PROOF: [u8; 4] = [5, 0, 0, 0];
/// `DOMAIN_AGGREGATE_AND_PROOF`.
pub const AGGREGATE_AND_PROOF: [u8; 4] = [6, 0, 0, 0];
/// `DOMAIN_SYNC_COMMITTEE`.
pub const SYNC_COMMITTEE: [u8; 4] = [7, 0, 0, 0];
/// `DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF`.
pub const SYNC_COMMITTEE_SELECTION_PROOF: [u8; 4] = [8, 0, 0, 0];
/// `DOMAIN_CONTRIBUTION_AND_PROOF`.
pub const CONTRIBUTION_AND_PROOF: [u8; 4] = [9, 0, 0, 0];
/// `DOMAIN_APPLICATION_BUILDER`.
pub const APPLICATION_BUILDER: [u8; 4] = [0, 0, 0, 1];

/// `compute_domain(domain_type, fork_version, genesis_validators_root)`: the domain type
/// followed by the first 28 bytes of the `ForkData` root (two 32-byte leaves: the version,
/// zero-padded, and the genesis validators root).
pub fn domain(
    domain_type: [u8; 4],
    fork_version: [u8; 4],
    genesis_validators_root: [u8; 32],
) -> [u8; 32] {
    let mut leaf = [0u8; 32];
    leaf[..4].copy_from_slice(&fork_version);
    let fork_data_root: [u8; 32] = Sha256::new()
        .chain_update(leaf)
        .chain_update(genesis_validators_root)
        .finalize()
        .into();
    let mut out = [0u8; 32];
    out[..4].copy_from_slice(&domain_type);
    out[4..].copy_from_slice(&fork_data_root[..28]);
    out
}

/// `compute_signing_root(object_root, domain)`: the `SigningData` root.
pub fn signing_root(object_root: [u8; 32], domain: [u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update(object_root)
        .chain_update(domain)
        .finalize()
        .into()
}

/// The hash-tree-root of a `uint64` (an epoch or a slot: what RANDAO reveals and selection
/// proofs sign).
pub fn u64_root(v: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&v.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    const MAINNET_GVR: &str = "4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95";

    /// The builder-registration domain (genesis fork version, zero genesis validators root):
    /// the value every MEV-boost relay checks registrations against.
    #[test]
    fn builder_domain_is_the_relays_one() {
        assert_eq!(
            domain(APPLICATION_BUILDER, [0; 4], [0; 32]),
            hex32("00000001f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9")
        );
    }

    /// EIP-7044: exits are signed under the Capella fork version (mainnet value).
    #[test]
    fn mainnet_exit_domain_is_capellas() {
        assert_eq!(
            domain(VOLUNTARY_EXIT, [3, 0, 0, 0], hex32(MAINNET_GVR)),
            hex32("04000000bba4da96354c9f25476cf1bc69bf583a7f9e0af049305b62de676640")
        );
    }

    /// Mainnet's Electra proposer domain and a signing root over it (computed independently,
    /// from the spec's definitions).
    #[test]
    fn mainnet_electra_proposer_domain_and_signing_root() {
        let d = domain(BEACON_PROPOSER, [5, 0, 0, 0], hex32(MAINNET_GVR));
        assert_eq!(
            d,
            hex32("00000000ad532ceb9ec5d246daad29da8aa157bfdab35e5f069f9db81f1da754")
        );
        let object: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            signing_root(object, d),
            hex32("e3e02abfa1845878f086a26f9112cdac9161f7250b049740f529e1a47ec06af8")
        );
    }

    /// The node's implementation agrees with this one (both pinned above).
    #[test]
    fn the_node_agrees() {
        let gvr = hex32(MAINNET_GVR);
        for t in [
            BEACON_PROPOSER,
            BEACON_ATTESTER,
            RANDAO,
            SELECTION_PROOF,
            APPLICATION_BUILDER,
        ] {
            assert_eq!(
                domain(t, [5, 0, 0, 0], gvr),
                ssv_protocol::signing::compute_domain(t, [5, 0, 0, 0], gvr)
            );
        }
        assert_eq!(u64_root(5), {
            use tree_hash::TreeHash as _;
            5u64.tree_hash_root().0
        });
    }
}
