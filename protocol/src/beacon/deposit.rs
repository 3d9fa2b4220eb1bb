//! The unsigned deposit data of a new validator and the root its key must sign (ssv-spec
//! `GenerateETHDepositData`), on top of [`crate::signing`].

use tree_hash::TreeHash;

use super::phase0::{DepositData, DepositMessage};
use super::{BlsPublicKey, Root};
use crate::signing::{DOMAIN_DEPOSIT, compute_domain, compute_signing_root};

/// `MAX_EFFECTIVE_BALANCE` of phase0, in Gwei: the amount of a validator's initial deposit.
pub const MAX_EFFECTIVE_BALANCE_GWEI: u64 = 32_000_000_000;

/// The deposit of a new validator (32 ETH) and the root its key must sign: deposits are
/// signed in the deposit domain of the chain's genesis fork version with a zero genesis
/// validators root, so that one deposit is valid whatever the fork. The returned
/// [`DepositData`] has an all-zero signature, to be filled in.
pub fn deposit_data_and_signing_root(
    pubkey: BlsPublicKey,
    withdrawal_credentials: Root,
    genesis_fork_version: [u8; 4],
) -> (DepositData, Root) {
    let message = DepositMessage {
        pubkey,
        withdrawal_credentials,
        amount: MAX_EFFECTIVE_BALANCE_GWEI,
    };
    let domain = compute_domain(DOMAIN_DEPOSIT, genesis_fork_version, [0u8; 32]);
    let root = compute_signing_root(message.tree_hash_root().0, domain);
    let data = DepositData {
        pubkey,
        withdrawal_credentials,
        amount: MAX_EFFECTIVE_BALANCE_GWEI,
        signature: [0u8; 96],
    };
    (data, root)
}
