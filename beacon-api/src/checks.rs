//! What the beacon node says, checked before the node acts on it: its genesis before
//! anything runs (a beacon node of another chain, or a lying one, stops the node with one
//! line), and each slot's attestation data before it becomes our vote.

use ssv_protocol::beacon_vote::AttestationData;
use ssv_protocol::chain::ChainSpec;
use ssv_protocol::types::NetworkPreset;

use crate::types::Genesis;

/// Longest a beacon node's genesis may lie in the future (a devnet may wait for its
/// genesis; a public chain's is in the past).
pub const GENESIS_FUTURE_MAX_S: u64 = 7 * 24 * 3600;

/// Refuses a genesis more than [`GENESIS_FUTURE_MAX_S`] after `now_s`, and, for a public
/// network (`preset`), a genesis validators root or genesis fork version other than the
/// preset's.
pub fn check_genesis(
    genesis: &Genesis,
    preset: Option<&NetworkPreset>,
    now_s: u64,
) -> Result<(), String> {
    if genesis.genesis_time > now_s.saturating_add(GENESIS_FUTURE_MAX_S) {
        return Err(format!(
            "the beacon node's genesis time {} is more than {} days in the future",
            genesis.genesis_time,
            GENESIS_FUTURE_MAX_S / 86_400
        ));
    }
    if let Some(p) = preset {
        let name = p.name;
        if genesis.genesis_validators_root != p.genesis_validators_root {
            return Err(format!(
                "the beacon node is not on {name}: genesis validators root 0x{}, {name}'s is 0x{}",
                hex::encode(genesis.genesis_validators_root),
                hex::encode(p.genesis_validators_root)
            ));
        }
        if genesis.genesis_fork_version != p.genesis_fork_version {
            return Err(format!(
                "the beacon node is not on {name}: genesis fork version 0x{}, {name}'s is 0x{}",
                hex::encode(genesis.genesis_fork_version),
                hex::encode(p.genesis_fork_version)
            ));
        }
    }
    Ok(())
}

/// Checks the beacon node's attestation data for `slot` before it becomes our vote: the
/// slot it names, a target epoch equal to the slot's epoch, a source before the target.
pub fn check_attestation_data(
    slot: u64,
    spec: &ChainSpec,
    data: &AttestationData,
) -> Result<(), String> {
    let epoch = spec.epoch_of(slot);
    if data.slot != slot {
        return Err(format!("it is for slot {}", data.slot));
    }
    if data.target.epoch != epoch {
        return Err(format!(
            "target epoch {} is not the slot's epoch {epoch}",
            data.target.epoch
        ));
    }
    if data.source.epoch >= data.target.epoch {
        return Err(format!(
            "source epoch {} is not before target epoch {}",
            data.source.epoch, data.target.epoch
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssv_protocol::beacon_vote::Checkpoint;
    use ssv_protocol::types::network_preset;

    fn hoodi() -> Genesis {
        let p = network_preset("hoodi").expect("preset");
        Genesis {
            genesis_time: 1_742_213_400,
            genesis_validators_root: p.genesis_validators_root,
            genesis_fork_version: p.genesis_fork_version,
        }
    }

    #[test]
    fn a_beacon_node_on_another_chain_is_refused() {
        let now = 1_800_000_000;
        check_genesis(&hoodi(), network_preset("hoodi"), now).expect("hoodi on hoodi");
        let err = check_genesis(&hoodi(), network_preset("mainnet"), now).unwrap_err();
        assert!(err.contains("not on mainnet"), "{err}");
        let mut g = hoodi();
        g.genesis_fork_version = [0; 4];
        assert!(check_genesis(&g, network_preset("hoodi"), now).is_err());
        // A local network takes any chain, but not a genesis far in the future.
        check_genesis(&hoodi(), None, now).expect("local");
        g.genesis_time = now + GENESIS_FUTURE_MAX_S + 1;
        assert!(check_genesis(&g, None, now).is_err());
    }

    #[test]
    fn attestation_data_must_fit_the_slot() {
        let c = ChainSpec::MAINNET;
        let good = AttestationData {
            slot: 70,
            index: 0,
            beacon_block_root: [1; 32],
            source: Checkpoint {
                epoch: 1,
                root: [2; 32],
            },
            target: Checkpoint {
                epoch: 2,
                root: [3; 32],
            },
        };
        assert_eq!(check_attestation_data(70, &c, &good), Ok(()));
        assert!(check_attestation_data(71, &c, &good).is_err(), "other slot");
        let mut future = good;
        future.target.epoch = 3;
        assert!(
            check_attestation_data(70, &c, &future).is_err(),
            "future target"
        );
        let mut stale = good;
        stale.source.epoch = 2;
        assert!(
            check_attestation_data(70, &c, &stale).is_err(),
            "source = target"
        );
    }
}
