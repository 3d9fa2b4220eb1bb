//! The SSVNetwork contract's events, declared with alloy's `sol!` with their real signatures
//! (checked against the `contract.abi` of ssvlabs/ssv, `eth/contract/`). Topic 0 of each
//! event is the keccak-256 of its canonical signature, e.g.
//! `ValidatorAdded(address,uint64[],bytes,bytes,(uint32,uint64,uint64,bool,uint256))`.

use alloy::primitives::B256;
use alloy::sol_types::SolEvent;

alloy::sol! {
    /// `ISSVNetworkCore.Cluster`: the cluster snapshot every cluster event carries.
    #[derive(Debug, PartialEq, Eq)]
    struct Cluster {
        uint32 validatorCount;
        uint64 networkFeeIndex;
        uint64 index;
        bool active;
        uint256 balance;
    }

    /// An operator registered (`publicKey` is ABI `bytes` wrapping base64 of the PEM key).
    #[derive(Debug, PartialEq, Eq)]
    event OperatorAdded(uint64 indexed operatorId, address indexed owner, bytes publicKey, uint256 fee);

    /// An operator removed itself.
    #[derive(Debug, PartialEq, Eq)]
    event OperatorRemoved(uint64 indexed operatorId);

    /// A validator registered with a committee; `shares` is
    /// `signature(96) ‖ n × share public key(48) ‖ n × RSA-encrypted share(256)`.
    #[derive(Debug, PartialEq, Eq)]
    event ValidatorAdded(address indexed owner, uint64[] operatorIds, bytes publicKey, bytes shares, Cluster cluster);

    /// A validator removed by its owner.
    #[derive(Debug, PartialEq, Eq)]
    event ValidatorRemoved(address indexed owner, uint64[] operatorIds, bytes publicKey, Cluster cluster);

    /// The owner asks the committee to submit a voluntary exit.
    #[derive(Debug, PartialEq, Eq)]
    event ValidatorExited(address indexed owner, uint64[] operatorIds, bytes publicKey);

    /// A cluster ran out of balance: its validators stop.
    #[derive(Debug, PartialEq, Eq)]
    event ClusterLiquidated(address indexed owner, uint64[] operatorIds, Cluster cluster);

    /// A liquidated cluster was funded again: its validators resume.
    #[derive(Debug, PartialEq, Eq)]
    event ClusterReactivated(address indexed owner, uint64[] operatorIds, Cluster cluster);

    /// An owner set the fee recipient of all its validators.
    #[derive(Debug, PartialEq, Eq)]
    event FeeRecipientAddressUpdated(address indexed owner, address recipientAddress);
}

/// Topic 0 of every event the sync asks `eth_getLogs` for.
pub fn event_topics() -> Vec<B256> {
    vec![
        OperatorAdded::SIGNATURE_HASH,
        OperatorRemoved::SIGNATURE_HASH,
        ValidatorAdded::SIGNATURE_HASH,
        ValidatorRemoved::SIGNATURE_HASH,
        ValidatorExited::SIGNATURE_HASH,
        ClusterLiquidated::SIGNATURE_HASH,
        ClusterReactivated::SIGNATURE_HASH,
        FeeRecipientAddressUpdated::SIGNATURE_HASH,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_signatures_are_the_contract_ones() {
        assert_eq!(
            OperatorAdded::SIGNATURE,
            "OperatorAdded(uint64,address,bytes,uint256)"
        );
        assert_eq!(OperatorRemoved::SIGNATURE, "OperatorRemoved(uint64)");
        assert_eq!(
            ValidatorAdded::SIGNATURE,
            "ValidatorAdded(address,uint64[],bytes,bytes,(uint32,uint64,uint64,bool,uint256))"
        );
        assert_eq!(
            ValidatorRemoved::SIGNATURE,
            "ValidatorRemoved(address,uint64[],bytes,(uint32,uint64,uint64,bool,uint256))"
        );
        assert_eq!(
            ValidatorExited::SIGNATURE,
            "ValidatorExited(address,uint64[],bytes)"
        );
        assert_eq!(
            ClusterLiquidated::SIGNATURE,
            "ClusterLiquidated(address,uint64[],(uint32,uint64,uint64,bool,uint256))"
        );
        assert_eq!(
            FeeRecipientAddressUpdated::SIGNATURE,
            "FeeRecipientAddressUpdated(address,address)"
        );
        let topics = event_topics();
        let unique: std::collections::HashSet<_> = topics.iter().collect();
        assert_eq!(unique.len(), 8);
    }

    #[test]
    fn validator_added_topic_matches_mainnet() {
        // Topic 0 of ValidatorAdded logs of the mainnet SSVNetwork contract.
        assert_eq!(
            hex::encode(ValidatorAdded::SIGNATURE_HASH),
            "48a3ea0796746043948f6341d17ff8200937b99262a0b48c2663b951ed7114e5"
        );
    }
}
