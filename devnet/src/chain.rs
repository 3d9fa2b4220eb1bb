//! `ssv-node devnet --execution-endpoint URL`: the devnet's registry through a real execution
//! node instead of seeded databases. The devnet deploys the `SSVNetworkEvents` test contract
//! (our own Solidity emitting exactly the SSVNetwork event signatures; source and bytecode in
//! `devnet/contract/`) from the endpoint's first unlocked account, registers every operator
//! (`OperatorAdded`) and every validator (`ValidatorAdded` with the RSA-encrypted `shares`
//! payload, in bulk transactions), and the nodes learn all of it by contract sync.

use alloy::network::TransactionBuilder as _;
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{SolCall, SolValue};
use anyhow::{Context, bail};

use crate::Setup;

alloy::sol! {
    function registerOperator(uint64 operatorId, bytes publicKey, uint256 fee);
    function bulkRegisterValidator(uint64[] operatorIds, bytes[] publicKeys, bytes[] shares);
    function removeValidator(uint64[] operatorIds, bytes publicKey);
    function exitValidator(uint64[] operatorIds, bytes publicKey);
    function liquidate(address clusterOwner, uint64[] operatorIds);
    function reactivate(uint64[] operatorIds);
    function setFeeRecipientAddress(address recipientAddress);
}

/// The test contract's creation bytecode (hex), compiled from
/// `devnet/contract/SSVNetworkEvents.sol` with solc 0.8.37.
const BYTECODE_HEX: &str = include_str!("../contract/SSVNetworkEvents.bin");
/// Validators per bulk-registration transaction.
pub const VALIDATORS_PER_TX: usize = 16;
/// Gas limit of each transaction.
pub const TX_GAS: u64 = 16_000_000;

/// The deployed contract.
#[derive(Debug, Clone)]
pub struct DevChain {
    /// The execution endpoint.
    pub url: String,
    /// Contract address.
    pub contract: Address,
    /// Block of the deployment (the nodes sync from there).
    pub deploy_block: u64,
    /// The account that deploys and registers (the validators' owner).
    pub owner: Address,
    provider: DynProvider,
}

impl DevChain {
    /// Connects to `url` and deploys the contract from its first account.
    pub async fn deploy(url: &str) -> anyhow::Result<Self> {
        let provider = ProviderBuilder::new()
            .connect(url)
            .await
            .with_context(|| format!("connecting to the execution endpoint {url}"))?
            .erased();
        let accounts = provider
            .get_accounts()
            .await
            .context("eth_accounts (the endpoint must offer an unlocked account)")?;
        let Some(&owner) = accounts.first() else {
            bail!("the execution endpoint has no unlocked account to deploy from");
        };
        let code: Bytes = BYTECODE_HEX
            .trim()
            .parse()
            .context("checked-in contract bytecode")?;
        let tx = TransactionRequest::default()
            .from(owner)
            .with_deploy_code(code)
            .gas_limit(5_000_000);
        let receipt = provider
            .send_transaction(tx)
            .await
            .context("deploying the test contract")?
            .get_receipt()
            .await
            .context("deployment receipt")?;
        if !receipt.status() {
            bail!("the contract deployment reverted");
        }
        Ok(DevChain {
            url: url.to_owned(),
            contract: receipt
                .contract_address
                .context("deployment receipt without a contract address")?,
            deploy_block: receipt
                .block_number
                .context("deployment receipt without a block")?,
            owner,
            provider,
        })
    }

    async fn send(&self, input: Vec<u8>) -> anyhow::Result<u64> {
        self.send_from(self.owner, input).await
    }

    /// Sends a call of the contract from `from` (an unlocked account); returns its block.
    pub async fn send_from(&self, from: Address, input: Vec<u8>) -> anyhow::Result<u64> {
        let tx = TransactionRequest {
            to: Some(TxKind::Call(self.contract)),
            ..Default::default()
        }
        .from(from)
        .input(input.into())
        .gas_limit(TX_GAS);
        let receipt = self
            .provider
            .send_transaction(tx)
            .await
            .context("sending a registration")?
            .get_receipt()
            .await
            .context("registration receipt")?;
        if !receipt.status() {
            bail!("a registration transaction reverted");
        }
        receipt.block_number.context("receipt without a block")
    }

    /// The endpoint's second unlocked account (a second cluster owner).
    pub async fn second_account(&self) -> anyhow::Result<Address> {
        let accounts = self.provider.get_accounts().await.context("eth_accounts")?;
        accounts
            .get(1)
            .copied()
            .context("the execution endpoint offers one unlocked account; two are needed")
    }

    /// The head block.
    pub async fn head(&self) -> anyhow::Result<u64> {
        self.provider.get_block_number().await.context("head")
    }

    /// Mines one empty block (`evm_mine`).
    pub async fn mine(&self) -> anyhow::Result<u64> {
        let _: String = self
            .provider
            .raw_request("evm_mine".into(), Vec::<u64>::new())
            .await
            .context("evm_mine")?;
        self.provider.get_block_number().await.context("head")
    }

    /// Registers `validators` (one committee, registered by `owner` with its nonces in this
    /// order) in one transaction. Returns its block.
    pub async fn add_validators(
        &self,
        owner: Address,
        operator_ids: &[u64],
        validators: &[&crate::ValidatorKeys],
    ) -> anyhow::Result<u64> {
        let call = bulkRegisterValidatorCall {
            operatorIds: operator_ids.to_vec(),
            publicKeys: validators
                .iter()
                .map(|v| Bytes::from(v.pubkey.to_vec()))
                .collect(),
            shares: validators
                .iter()
                .map(|v| Bytes::from(v.shares.clone()))
                .collect(),
        };
        self.send_from(owner, call.abi_encode()).await
    }

    /// `ValidatorRemoved` of `pubkey` by `owner`.
    pub async fn remove_validator(
        &self,
        owner: Address,
        operator_ids: &[u64],
        pubkey: &[u8; 48],
    ) -> anyhow::Result<u64> {
        let call = removeValidatorCall {
            operatorIds: operator_ids.to_vec(),
            publicKey: Bytes::from(pubkey.to_vec()),
        };
        self.send_from(owner, call.abi_encode()).await
    }

    /// `ValidatorExited` of `pubkey` by `owner`.
    pub async fn exit_validator(
        &self,
        owner: Address,
        operator_ids: &[u64],
        pubkey: &[u8; 48],
    ) -> anyhow::Result<u64> {
        let call = exitValidatorCall {
            operatorIds: operator_ids.to_vec(),
            publicKey: Bytes::from(pubkey.to_vec()),
        };
        self.send_from(owner, call.abi_encode()).await
    }

    /// `ClusterLiquidated` of `owner`'s cluster.
    pub async fn liquidate(&self, owner: Address, operator_ids: &[u64]) -> anyhow::Result<u64> {
        let call = liquidateCall {
            clusterOwner: owner,
            operatorIds: operator_ids.to_vec(),
        };
        self.send_from(self.owner, call.abi_encode()).await
    }

    /// `ClusterReactivated` of `owner`'s cluster.
    pub async fn reactivate(&self, owner: Address, operator_ids: &[u64]) -> anyhow::Result<u64> {
        let call = reactivateCall {
            operatorIds: operator_ids.to_vec(),
        };
        self.send_from(owner, call.abi_encode()).await
    }

    /// `FeeRecipientAddressUpdated` of `owner`.
    pub async fn set_fee_recipient(
        &self,
        owner: Address,
        recipient: Address,
    ) -> anyhow::Result<u64> {
        let call = setFeeRecipientAddressCall {
            recipientAddress: recipient,
        };
        self.send_from(owner, call.abi_encode()).await
    }

    /// Registers every operator and validator of `setup` (the validators' owner must be
    /// [`DevChain::owner`], their nonces 0, 1, … in index order). Returns the last block.
    pub async fn register(&self, setup: &Setup) -> anyhow::Result<u64> {
        if setup.owner != self.owner {
            bail!("the set-up's owner is not the deploying account");
        }
        let mut last = self.deploy_block;
        for op in &setup.operators {
            // The contract's `publicKey` is `abi.encode(bytes(base64(PEM)))`.
            let key: Vec<u8> =
                Bytes::from(op.key.public_key().to_base64_pem().into_bytes()).abi_encode();
            let call = registerOperatorCall {
                operatorId: op.id,
                publicKey: key.into(),
                fee: U256::ZERO,
            };
            last = self.send(call.abi_encode()).await?;
        }
        // Bulk registration per committee, in index order within it; nonces follow the
        // order of the events, so register validators in ascending index overall.
        let mut batch: Vec<&crate::ValidatorKeys> = Vec::new();
        let flush = |batch: &mut Vec<&crate::ValidatorKeys>| {
            let first = batch.first().map(|v| v.committee);
            let ids = first
                .map(|c| setup.committees[c].clone())
                .unwrap_or_default();
            let call = bulkRegisterValidatorCall {
                operatorIds: ids,
                publicKeys: batch
                    .iter()
                    .map(|v| Bytes::from(v.pubkey.to_vec()))
                    .collect(),
                shares: batch
                    .iter()
                    .map(|v| Bytes::from(v.shares.clone()))
                    .collect(),
            };
            batch.clear();
            call.abi_encode()
        };
        for v in setup
            .validators
            .iter()
            .filter(|v| !setup.late.contains(&v.index))
        {
            let same_committee = batch.first().is_none_or(|b| b.committee == v.committee);
            if !same_committee || batch.len() >= VALIDATORS_PER_TX {
                last = self.send(flush(&mut batch)).await?;
            }
            batch.push(v);
        }
        if !batch.is_empty() {
            last = self.send(flush(&mut batch)).await?;
        }
        Ok(last)
    }
}
