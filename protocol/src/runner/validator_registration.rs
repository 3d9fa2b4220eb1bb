//! The validator-registration role: the builder registration of a duty and its signing
//! domain. The runner is [`super::signing_only::SigningOnlyRunner`] (no consensus).

use super::signing_only::SigningObject;
use crate::beacon::ExecutionAddress;
use crate::beacon::builder::ValidatorRegistration;
use crate::signing::{DOMAIN_APPLICATION_BUILDER, Domain, compute_domain};
use crate::types::BlsPublicKey;

/// The gas limit ssv-spec registers (`ValidatorRegistrationRunner.gasLimit` default).
pub const DEFAULT_GAS_LIMIT: u64 = 30_000_000;

/// The registration a duty signs: fee recipient from the registry, the gas limit, and the
/// start time of the duty's epoch as the timestamp (seconds).
pub fn registration_object(
    fee_recipient: ExecutionAddress,
    gas_limit: u64,
    epoch_start_s: u64,
    pubkey: BlsPublicKey,
) -> SigningObject {
    SigningObject::ValidatorRegistration(ValidatorRegistration {
        fee_recipient,
        gas_limit,
        timestamp: epoch_start_s,
        pubkey,
    })
}

/// The builder domain (builder-specs `compute_application_domain`): `DOMAIN_APPLICATION_BUILDER`
/// with the **genesis** fork version and a **zero** genesis validators root, so that builders
/// can check registrations without the beacon state.
pub fn builder_domain(genesis_fork_version: [u8; 4]) -> Domain {
    compute_domain(DOMAIN_APPLICATION_BUILDER, genesis_fork_version, [0; 32])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mainnet's and Holesky's builder domains (genesis fork versions 0x00000000 and
    /// 0x01017000, zero root), the values relays and builders use to check registrations.
    #[test]
    fn the_builder_domain_uses_the_genesis_fork_and_a_zero_root() {
        assert_eq!(
            hex::encode(builder_domain([0, 0, 0, 0])),
            "00000001f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"
        );
        assert!(
            hex::encode(builder_domain([1, 1, 0x70, 0]))
                .starts_with("000000015b83a23759c560b2d0c64576e1dcfc34ea94c4988f3e0d9f77f0")
        );
    }
}
