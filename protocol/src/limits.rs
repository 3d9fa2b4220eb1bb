//! Size limits of the SSV wire types, as ssv-spec v1.2.2 declares them in its `ssz-max` /
//! `ssz-size` tags, and the type-level numbers the SSZ list types need.
//!
//! Every decoder in this crate rejects input beyond these limits before allocating for it.

use ssz_types::typenum::{self, Prod, Sum, U13, U1000};

/// Maximum number of operators in a committee (and so of signers on one message).
pub const COMMITTEE_SIZE_MAX: usize = 13;
/// Size of an operator's RSA-2048 signature.
pub const RSA_SIGNATURE_SIZE: usize = 256;
/// Length of a `MessageID`: domain (4) ‖ role (4) ‖ duty executor id (48).
pub const MESSAGE_ID_SIZE: usize = 56;
/// Maximum length of `SSVMessage.Data` (a QBFT message with 13 round-change and 13 prepare
/// justifications, the largest thing it carries).
pub const SSV_MESSAGE_DATA_MAX: usize = 722_412;
/// Maximum length of `SignedSSVMessage.FullData`: the full proposed value, at most an encoded
/// `ValidatorConsensusData` (16 fixed bytes, a 212-byte duty, 2^23 bytes of data) = 8388836.
///
/// ssv-spec v1.2.2 hashes `FullData` with this limit: its vectors' `SignedSSVMessage` roots
/// (qbft `MsgSpecTest`, `CreateMsgSpecTest`) only come out with a limit above 2^23 bytes; the
/// smaller limits of other spec revisions (4194532, 5243144) give other roots.
pub const FULL_DATA_MAX: usize = 8_388_836;
/// Maximum length of one round-change justification (a `SignedSSVMessage` carrying a QBFT
/// round change with one prepare-justification level).
pub const ROUND_CHANGE_JUSTIFICATION_MAX: usize = 51_852;
/// Maximum length of one prepare justification (a `SignedSSVMessage` carrying a prepare).
pub const PREPARE_JUSTIFICATION_MAX: usize = 3_700;
/// Maximum number of partial signatures in one `PartialSignatureMessages` (the committee
/// runner signs for up to 1512 validator duties per committee and slot).
pub const PARTIAL_SIGNATURES_MAX: usize = 1_512;
/// Maximum length of `ValidatorConsensusData.DataSSZ` (2^23).
pub const CONSENSUS_DATA_SSZ_MAX: usize = 8_388_608;
/// Maximum number of sync-committee indices of one validator duty.
pub const SYNC_COMMITTEE_INDICES_MAX: usize = 13;
/// Size of a BLS public key (G1, compressed).
pub const BLS_PUBKEY_SIZE: usize = 48;
/// Size of a BLS signature (G2, compressed).
pub const BLS_SIGNATURE_SIZE: usize = 96;

/// Fixed part of an encoded `SignedSSVMessage`: three offsets plus the `OperatorIDs` offset.
const SIGNED_SSV_MESSAGE_FIXED: usize = 4 * 4;
/// Fixed part of an encoded `SSVMessage`: MsgType (8) ‖ MsgID (56) ‖ Data offset (4).
pub const SSV_MESSAGE_FIXED: usize = 8 + MESSAGE_ID_SIZE + 4;
/// Largest encoded `SSVMessage`.
pub const SSV_MESSAGE_MAX: usize = SSV_MESSAGE_FIXED + SSV_MESSAGE_DATA_MAX;
/// Largest encoded `SignedSSVMessage`: what a gossip message may carry at most. Each
/// signature is encoded as a variable-size item, with a 4-byte offset.
pub const SIGNED_SSV_MESSAGE_MAX: usize = SIGNED_SSV_MESSAGE_FIXED
    + COMMITTEE_SIZE_MAX * (4 + RSA_SIGNATURE_SIZE)
    + COMMITTEE_SIZE_MAX * 8
    + SSV_MESSAGE_MAX
    + FULL_DATA_MAX;

// Type-level numbers for `ssz_types` lists. typenum predefines every number up to 1024 and
// the powers of two; the others are spelled as sums and products of those.
/// 13
pub type CommitteeMax = U13;
/// 56
pub type MessageIdMax = typenum::U56;
/// 256
pub type RsaSignatureLen = typenum::U256;
/// 722412
pub type SsvMessageDataMax = Sum<Prod<typenum::U722, U1000>, typenum::U412>;
/// 8388836
pub type FullDataMax = Sum<typenum::U8388608, typenum::U228>;
/// 51852
pub type RoundChangeJustificationMax = Sum<Prod<typenum::U51, U1000>, typenum::U852>;
/// 3700
pub type PrepareJustificationMax = Sum<Prod<typenum::U3, U1000>, typenum::U700>;
/// 1512
pub type PartialSignaturesMax = Sum<typenum::U1000, typenum::U512>;
/// 8388608
pub type ConsensusDataSszMax = typenum::U8388608;
/// 96
pub type BlsSignatureLen = typenum::U96;
/// 48
pub type BlsPubkeyLen = typenum::U48;

#[cfg(test)]
mod tests {
    use super::*;
    use ssz_types::typenum::Unsigned;

    #[test]
    fn type_level_numbers_match_constants() {
        assert_eq!(SsvMessageDataMax::to_usize(), SSV_MESSAGE_DATA_MAX);
        assert_eq!(FullDataMax::to_usize(), FULL_DATA_MAX);
        assert_eq!(
            RoundChangeJustificationMax::to_usize(),
            ROUND_CHANGE_JUSTIFICATION_MAX
        );
        assert_eq!(
            PrepareJustificationMax::to_usize(),
            PREPARE_JUSTIFICATION_MAX
        );
        assert_eq!(PartialSignaturesMax::to_usize(), PARTIAL_SIGNATURES_MAX);
        assert_eq!(ConsensusDataSszMax::to_usize(), CONSENSUS_DATA_SSZ_MAX);
        assert_eq!(CommitteeMax::to_usize(), COMMITTEE_SIZE_MAX);
        assert_eq!(SSV_MESSAGE_MAX, 722_480);
    }
}
