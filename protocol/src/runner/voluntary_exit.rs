//! The voluntary-exit role: the exit message of a duty and its signing domain. The runner is
//! [`super::signing_only::SigningOnlyRunner`] (no consensus: every operator signs the same
//! exit).

use super::signing_only::SigningObject;
use crate::beacon::phase0::VoluntaryExit;
use crate::chain::ChainSpec;
use crate::signing::{DOMAIN_VOLUNTARY_EXIT, Domain, compute_domain};
use crate::types::{Root, Slot, ValidatorIndex};

/// The exit a duty at `slot` signs: effective from the slot's epoch.
pub fn exit_object(
    chain: &ChainSpec,
    slot: Slot,
    validator_index: ValidatorIndex,
) -> SigningObject {
    SigningObject::VoluntaryExit(VoluntaryExit {
        epoch: chain.epoch_of(slot),
        validator_index,
    })
}

/// The voluntary-exit domain since Deneb (EIP-7044): always computed with the **Capella**
/// fork version, whatever the current fork, so that a signed exit stays valid forever.
pub fn exit_domain(capella_fork_version: [u8; 4], genesis_validators_root: Root) -> Domain {
    compute_domain(
        DOMAIN_VOLUNTARY_EXIT,
        capella_fork_version,
        genesis_validators_root,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mainnet: Capella fork version 0x03000000 and the mainnet genesis validators root give
    /// the exit domain a mainnet beacon node returns for `DOMAIN_VOLUNTARY_EXIT` after Deneb
    /// (consensus-specs EIP-7044; the value is the one public beacon-client tests assert for
    /// mainnet epoch 411392).
    #[test]
    fn the_exit_domain_is_pinned_to_capella() {
        let gvr: Root =
            hex::decode("4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95")
                .expect("hex")
                .try_into()
                .expect("32 bytes");
        let domain = exit_domain([3, 0, 0, 0], gvr);
        assert_eq!(
            hex::encode(domain),
            "04000000bba4da96354c9f25476cf1bc69bf583a7f9e0af049305b62de676640"
        );
        // Not the Deneb or Electra fork version's domain.
        assert_ne!(domain, exit_domain([4, 0, 0, 0], gvr));
        assert_ne!(domain, exit_domain([5, 0, 0, 0], gvr));
    }

    #[test]
    fn the_exit_is_for_the_duty_epoch() {
        let SigningObject::VoluntaryExit(e) = exit_object(&ChainSpec::MAINNET, 65, 7) else {
            panic!("an exit");
        };
        assert_eq!((e.epoch, e.validator_index), (2, 7));
    }
}
