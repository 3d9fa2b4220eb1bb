//! The value checks of the validator roles with consensus (ssv-spec `ssv/value_check.go`:
//! `ProposerValueCheckF`, `AggregatorValueCheckF`, `SyncCommitteeContributionValueCheckF`),
//! check for check and code for code. The committee role's is
//! [`super::committee::BeaconVoteValueCheck`].

use crate::beacon::consensus_data::ValidatorConsensusData;
use crate::chain::ChainSpec;
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::qbft::ValueCheck;
use crate::types::{BeaconRole, BlsPublicKey, Epoch, Slot, ValidatorIndex};

/// What the proposer's value check asks of slashing protection (ssv-spec
/// `IsBeaconBlockSlashable`): `Err` with a reason when a block at `slot` may not be signed for
/// `pubkey` (one was already signed at that slot, or the records cannot say).
pub trait BlockSlashing {
    /// See the trait docs.
    fn check(&self, pubkey: &BlsPublicKey, slot: Slot) -> Result<(), String>;
}

/// The value check of one validator duty with consensus.
#[derive(Clone)]
pub struct DutyValueCheck {
    /// The role the value must be for.
    pub role: BeaconRole,
    /// The validator.
    pub validator_pk: BlsPublicKey,
    /// Its beacon index.
    pub validator_index: ValidatorIndex,
    /// The chain's constants (the duty slot's epoch).
    pub chain: ChainSpec,
    /// The current wall-clock epoch (a duty more than one epoch ahead is refused).
    pub current_epoch: Epoch,
    /// Slashing protection of blocks (proposer only; `None` skips that part).
    pub blocks: Option<std::sync::Arc<dyn BlockSlashing + Send + Sync>>,
}

impl std::fmt::Debug for DutyValueCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DutyValueCheck")
            .field("role", &self.role)
            .field("validator_index", &self.validator_index)
            .field("current_epoch", &self.current_epoch)
            .finish_non_exhaustive()
    }
}

impl ValueCheck for DutyValueCheck {
    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        let cd = ValidatorConsensusData::from_ssz(value)
            .map_err(|e| Error::Decode(format!("failed decoding consensus data: {e}")))?;
        if cd.validate().is_err() {
            return Err(Error::spec(ErrorCode::QBFTValueInvalid, "invalid value"));
        }
        // ssv-spec `dutyValueCheck`.
        if self.chain.epoch_of(cd.duty.slot) > self.current_epoch + 1 {
            return Err(Error::spec(
                ErrorCode::DutyEpochTooFarFuture,
                "duty epoch is into far future",
            ));
        }
        if cd.duty.beacon_role() != Some(self.role) {
            return Err(Error::spec(
                ErrorCode::WrongBeaconRoleType,
                "wrong beacon role type",
            ));
        }
        if cd.duty.pubkey != self.validator_pk {
            return Err(Error::spec(
                ErrorCode::WrongValidatorPubkey,
                "wrong validator pk",
            ));
        }
        if cd.duty.validator_index != self.validator_index {
            return Err(Error::spec(
                ErrorCode::WrongValidatorIndex,
                "wrong validator index",
            ));
        }
        if self.role == BeaconRole::Proposer
            && let Some(blocks) = &self.blocks
        {
            let slot = cd.proposal()?.slot();
            blocks.check(&self.validator_pk, slot).map_err(|why| {
                Error::spec(
                    ErrorCode::QBFTValueInvalid,
                    format!("slashable block: {why}"),
                )
            })?;
        }
        Ok(())
    }
}
