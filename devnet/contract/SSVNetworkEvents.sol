// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Test double of the SSVNetwork contract for the contract-sync integration tests.
///
/// It declares the SSVNetwork events with exactly the signatures of the real contract
/// (ssvlabs ssv-network, `ISSVNetworkCore` / `ISSVOperators` / `ISSVClusters`), so their
/// topic-0 hashes and ABI data layouts are the ones the node sees on mainnet, and lets a
/// test emit any of them with arbitrary payloads (including malformed `shares`). The cluster
/// owner is `msg.sender`, as in the real contract, except for `liquidate` where (as in the
/// real contract) the liquidator names the owner.
contract SSVNetworkEvents {
    struct Cluster {
        uint32 validatorCount;
        uint64 networkFeeIndex;
        uint64 index;
        bool active;
        uint256 balance;
    }

    event OperatorAdded(uint64 indexed operatorId, address indexed owner, bytes publicKey, uint256 fee);
    event OperatorRemoved(uint64 indexed operatorId);
    event ValidatorAdded(address indexed owner, uint64[] operatorIds, bytes publicKey, bytes shares, Cluster cluster);
    event ValidatorRemoved(address indexed owner, uint64[] operatorIds, bytes publicKey, Cluster cluster);
    event ValidatorExited(address indexed owner, uint64[] operatorIds, bytes publicKey);
    event ClusterLiquidated(address indexed owner, uint64[] operatorIds, Cluster cluster);
    event ClusterReactivated(address indexed owner, uint64[] operatorIds, Cluster cluster);
    event FeeRecipientAddressUpdated(address indexed owner, address recipientAddress);

    function cluster(uint32 validatorCount, bool active) internal pure returns (Cluster memory) {
        return Cluster(validatorCount, 0, 0, active, 0);
    }

    function registerOperator(uint64 operatorId, bytes calldata publicKey, uint256 fee) external {
        emit OperatorAdded(operatorId, msg.sender, publicKey, fee);
    }

    function removeOperator(uint64 operatorId) external {
        emit OperatorRemoved(operatorId);
    }

    function registerValidator(uint64[] calldata operatorIds, bytes calldata publicKey, bytes calldata shares)
        external
    {
        emit ValidatorAdded(msg.sender, operatorIds, publicKey, shares, cluster(1, true));
    }

    /// Many `ValidatorAdded` events in one transaction (bulk registration).
    function bulkRegisterValidator(uint64[] calldata operatorIds, bytes[] calldata publicKeys, bytes[] calldata shares)
        external
    {
        require(publicKeys.length == shares.length, "length mismatch");
        for (uint256 i = 0; i < publicKeys.length; i++) {
            emit ValidatorAdded(msg.sender, operatorIds, publicKeys[i], shares[i], cluster(uint32(i + 1), true));
        }
    }

    function removeValidator(uint64[] calldata operatorIds, bytes calldata publicKey) external {
        emit ValidatorRemoved(msg.sender, operatorIds, publicKey, cluster(0, true));
    }

    function exitValidator(uint64[] calldata operatorIds, bytes calldata publicKey) external {
        emit ValidatorExited(msg.sender, operatorIds, publicKey);
    }

    function liquidate(address clusterOwner, uint64[] calldata operatorIds) external {
        emit ClusterLiquidated(clusterOwner, operatorIds, cluster(0, false));
    }

    function reactivate(uint64[] calldata operatorIds) external {
        emit ClusterReactivated(msg.sender, operatorIds, cluster(0, true));
    }

    function setFeeRecipientAddress(address recipientAddress) external {
        emit FeeRecipientAddressUpdated(msg.sender, recipientAddress);
    }
}
