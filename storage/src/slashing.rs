//! Slashing protection: checked and recorded in the writer's transaction, before any
//! signature leaves the node.
//!
//! Rules (EIP-3076 with the complete local history, as Lighthouse applies them):
//!
//! * attestation: refuse `source > target`; refuse a second vote for a target epoch unless it
//!   repeats the same non-zero signing root; refuse a vote surrounded by or surrounding any
//!   recorded vote; refuse `source < low_source` and `target <= low_target`, the lowest
//!   values present (after an import: the imported maxima).
//! * block: refuse a second block at a slot unless it repeats the same non-zero signing root;
//!   refuse `slot <= low_slot`.
//!
//! Conflicts are always found in the records themselves, never decided by the per-validator
//! summary row: a double vote is one point lookup at `(pubkey, target)`; a vote surrounding
//! this one has a higher target, so it is found by one range scan from `target + 1`; a vote
//! this one surrounds has `source < its source <= its target < target` (every record has
//! `source <= target`), so it lies in the target range `(source, target)` — empty for the
//! usual `source = target - 1`. The usual case (a new attestation above everything recorded)
//! therefore costs one lookup and two cursor seeks that land on the next validator's key.
//!
//! The summary row is the validator's *watermark*: the lower bounds left by imports and
//! pruning (anything at or below them is refused) and the maxima the exports use. A
//! validator that has records but no readable summary row fails closed
//! ([`SlashingViolation::MissingWatermark`] / [`SlashingViolation::UnreadableWatermark`]):
//! its pruned history could otherwise be signed over again.
//!
//! A batch for many validators is checked and recorded in one write transaction and one
//! durable commit; the caller gets one verdict per input, in input order, only after that
//! commit. Entries of one batch see each other (they are applied in order).

use std::ops::ControlFlow;

use crate::codec::PrefixedU64;
use crate::db::{Handle, WriteTxn};
use crate::error::Result;
use crate::records::{AttestationRecord, BlockRecord, Root, SlashingSummary, ValidatorPubkey};
use crate::tables::{SignedAttestations, SignedBlocks, SlashingSummaries};

/// Most attestations plus blocks in one [`crate::Store::check_and_record`] call (larger
/// batches must be split; 100,000 is more than one operator signs in a slot).
pub const SLASHING_BATCH_MAX: usize = 100_000;

/// An attestation the node is about to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestationToSign {
    /// Validator public key.
    pub pubkey: ValidatorPubkey,
    /// Source checkpoint epoch.
    pub source_epoch: u64,
    /// Target checkpoint epoch.
    pub target_epoch: u64,
    /// Signing root of the attestation data.
    pub signing_root: Root,
}

/// A block the node is about to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockToSign {
    /// Proposer public key.
    pub pubkey: ValidatorPubkey,
    /// Block slot.
    pub slot: u64,
    /// Signing root of the block header.
    pub signing_root: Root,
}

/// Why a signature must not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlashingViolation {
    /// `source > target`.
    SourceExceedsTarget,
    /// Another vote for this target epoch exists (with another or unknown signing root).
    DoubleVote {
        /// Source of the existing vote.
        existing_source: u64,
    },
    /// A recorded vote surrounds this one.
    SurroundedByExisting {
        /// The recorded vote (source, target).
        existing: (u64, u64),
    },
    /// This vote surrounds a recorded one.
    SurroundsExisting {
        /// The recorded vote (source, target).
        existing: (u64, u64),
    },
    /// Source below the lowest source recorded (or imported).
    SourceBelowLowerBound {
        /// The bound.
        low_source: u64,
    },
    /// Target at or below the lowest target recorded (or imported).
    TargetNotAboveLowerBound {
        /// The bound.
        low_target: u64,
    },
    /// Another block at this slot exists (with another or unknown signing root).
    DoubleProposal,
    /// Slot at or below the lowest slot recorded (or imported).
    SlotNotAboveLowerBound {
        /// The bound.
        low_slot: u64,
    },
    /// The validator has records but its watermark (summary) row is missing: the lower
    /// bounds of its pruned or imported history are unknown, so nothing is signed for it.
    MissingWatermark,
    /// The validator's watermark (summary) row cannot be read (damaged).
    UnreadableWatermark,
}

impl std::fmt::Display for SlashingViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A signature that may be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safe {
    /// New message: recorded.
    Recorded,
    /// Exactly the message signed before (same non-zero signing root): signing again is safe.
    SameData,
}

/// Verdict for one input.
pub type Verdict = std::result::Result<Safe, SlashingViolation>;

/// Verdicts of one [`crate::Store::check_and_record`] call, 1:1 with its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlashingVerdicts {
    /// One per input block, in order.
    pub blocks: Vec<Verdict>,
    /// One per input attestation, in order.
    pub attestations: Vec<Verdict>,
}

fn is_same_root(existing: Option<Root>, new: &Root) -> bool {
    existing.is_some_and(|r| r != [0u8; 32] && &r == new)
}

/// The three slashing tables opened once per write transaction.
pub(crate) struct SlashingTables<'t> {
    pub(crate) blocks: Handle<'t, SignedBlocks>,
    pub(crate) attestations: Handle<'t, SignedAttestations>,
    pub(crate) summaries: Handle<'t, SlashingSummaries>,
}

impl<'t> SlashingTables<'t> {
    pub(crate) fn open(txn: &'t WriteTxn<'_>) -> Result<Self> {
        Ok(SlashingTables {
            blocks: txn.handle()?,
            attestations: txn.handle()?,
            summaries: txn.handle()?,
        })
    }
}

/// Whether `handle` holds any record of `pubkey` (one cursor seek).
fn has_records<'t, T>(
    txn: &'t WriteTxn<'_>,
    handle: &Handle<'t, T>,
    pubkey: &ValidatorPubkey,
) -> Result<bool>
where
    T: crate::tables::Table<Key = PrefixedU64<48>>,
{
    let mut found = false;
    txn.scan(handle, &PrefixedU64(*pubkey, 0), |key, _| {
        found = key.0 == *pubkey;
        Ok(ControlFlow::Break(()))
    })?;
    Ok(found)
}

/// The validator's watermark row: the stored one; the empty one for a validator without
/// any record; a violation (fail closed) when records exist but the row is missing or
/// damaged.
fn watermark(
    r: &dyn SlashingRead,
    pubkey: &ValidatorPubkey,
) -> Result<std::result::Result<SlashingSummary, SlashingViolation>> {
    match r.summary(pubkey) {
        Ok(Some(summary)) => Ok(Ok(summary)),
        Ok(None) => {
            if r.has_records(pubkey)? {
                tracing::error!(
                    pubkey = hex::encode(pubkey),
                    "slashing protection: records without a watermark row; refusing to sign"
                );
                Ok(Err(SlashingViolation::MissingWatermark))
            } else {
                Ok(Ok(SlashingSummary::default()))
            }
        }
        Err(crate::error::StorageError::CorruptRecord { detail, .. }) => {
            tracing::error!(
                pubkey = hex::encode(pubkey),
                "slashing protection: damaged watermark row ({detail}); refusing to sign"
            );
            Ok(Err(SlashingViolation::UnreadableWatermark))
        }
        Err(e) => Err(e),
    }
}

/// Checks one block and records it when safe.
pub(crate) fn check_block<'t>(
    txn: &'t WriteTxn<'_>,
    t: &SlashingTables<'t>,
    block: &BlockToSign,
) -> Result<Verdict> {
    let key = PrefixedU64(block.pubkey, block.slot);
    if let Some(existing) = txn.get(&t.blocks, &key)? {
        return Ok(
            if is_same_root(existing.signing_root, &block.signing_root) {
                Ok(Safe::SameData)
            } else {
                Err(SlashingViolation::DoubleProposal)
            },
        );
    }
    let mut summary = match watermark(&WriteView { txn, t }, &block.pubkey)? {
        Ok(s) => s,
        Err(v) => return Ok(Err(v)),
    };
    if let Some(low_slot) = summary.low_slot
        && block.slot <= low_slot
    {
        return Ok(Err(SlashingViolation::SlotNotAboveLowerBound { low_slot }));
    }
    txn.put(
        &t.blocks,
        &key,
        &BlockRecord {
            signing_root: Some(block.signing_root),
        },
    )?;
    summary.low_slot = Some(summary.low_slot.map_or(block.slot, |l| l.min(block.slot)));
    summary.max_slot = Some(summary.max_slot.map_or(block.slot, |m| m.max(block.slot)));
    txn.put(&t.summaries, &block.pubkey, &summary)?;
    Ok(Ok(Safe::Recorded))
}

/// Read access to the slashing tables: from the writer's transaction (check, then record)
/// or from a read snapshot (the consensus value check, which records nothing). One rule set,
/// [`attestation_verdict`], runs over both.
pub(crate) trait SlashingRead {
    /// The record at `(pubkey, target)`.
    fn attestation(
        &self,
        pubkey: &ValidatorPubkey,
        target: u64,
    ) -> Result<Option<AttestationRecord>>;
    /// Calls `f(target, source)` for the records of `pubkey` with a target of at least
    /// `from`, in target order, until it breaks.
    fn attestations_from(
        &self,
        pubkey: &ValidatorPubkey,
        from: u64,
        f: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
    ) -> Result<()>;
    /// The watermark row (`Err(CorruptRecord)` when damaged).
    fn summary(&self, pubkey: &ValidatorPubkey) -> Result<Option<SlashingSummary>>;
    /// Whether any attestation or block of `pubkey` is recorded.
    fn has_records(&self, pubkey: &ValidatorPubkey) -> Result<bool>;
}

/// The writer's view.
pub(crate) struct WriteView<'a, 't> {
    pub(crate) txn: &'t WriteTxn<'a>,
    pub(crate) t: &'t SlashingTables<'t>,
}

impl SlashingRead for WriteView<'_, '_> {
    fn attestation(
        &self,
        pubkey: &ValidatorPubkey,
        target: u64,
    ) -> Result<Option<AttestationRecord>> {
        self.txn
            .get(&self.t.attestations, &PrefixedU64(*pubkey, target))
    }

    fn attestations_from(
        &self,
        pubkey: &ValidatorPubkey,
        from: u64,
        f: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
    ) -> Result<()> {
        self.txn.scan(
            &self.t.attestations,
            &PrefixedU64(*pubkey, from),
            |key, rec| {
                if key.0 != *pubkey {
                    return Ok(ControlFlow::Break(()));
                }
                Ok(f(key.1, rec.source_epoch))
            },
        )
    }

    fn summary(&self, pubkey: &ValidatorPubkey) -> Result<Option<SlashingSummary>> {
        self.txn.get(&self.t.summaries, pubkey)
    }

    fn has_records(&self, pubkey: &ValidatorPubkey) -> Result<bool> {
        Ok(has_records(self.txn, &self.t.attestations, pubkey)?
            || has_records(self.txn, &self.t.blocks, pubkey)?)
    }
}

/// A read snapshot's view (records nothing); table handles are opened once.
pub(crate) struct ReadView<'a> {
    txn: &'a crate::db::ReadTxn<'a>,
    attestations: Handle<'a, SignedAttestations>,
    blocks: Handle<'a, SignedBlocks>,
    summaries: Handle<'a, SlashingSummaries>,
}

impl<'a> ReadView<'a> {
    pub(crate) fn new(txn: &'a crate::db::ReadTxn<'a>) -> Result<Self> {
        Ok(ReadView {
            txn,
            attestations: txn.table()?,
            blocks: txn.table()?,
            summaries: txn.table()?,
        })
    }

    fn any_of<T>(&self, pubkey: &ValidatorPubkey) -> Result<bool>
    where
        T: crate::tables::Table<Key = PrefixedU64<48>>,
    {
        let mut found = false;
        self.txn
            .scan::<T>(Some(&PrefixedU64(*pubkey, 0)), |key, _| {
                found = key.0 == *pubkey;
                Ok(ControlFlow::Break(()))
            })?;
        Ok(found)
    }
}

impl SlashingRead for ReadView<'_> {
    fn attestation(
        &self,
        pubkey: &ValidatorPubkey,
        target: u64,
    ) -> Result<Option<AttestationRecord>> {
        self.txn
            .get_with(&self.attestations, &PrefixedU64(*pubkey, target))?
            .map(|v| v.to_owned())
            .transpose()
    }

    fn attestations_from(
        &self,
        pubkey: &ValidatorPubkey,
        from: u64,
        f: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
    ) -> Result<()> {
        self.txn
            .scan::<SignedAttestations>(Some(&PrefixedU64(*pubkey, from)), |key, rec| {
                if key.0 != *pubkey {
                    return Ok(ControlFlow::Break(()));
                }
                Ok(f(key.1, rec.to_owned()?.source_epoch))
            })
    }

    fn summary(&self, pubkey: &ValidatorPubkey) -> Result<Option<SlashingSummary>> {
        self.txn
            .get_with(&self.summaries, pubkey)?
            .map(|v| v.to_owned())
            .transpose()
    }

    fn has_records(&self, pubkey: &ValidatorPubkey) -> Result<bool> {
        Ok(self.any_of::<SignedAttestations>(pubkey)? || self.any_of::<SignedBlocks>(pubkey)?)
    }
}

/// What the rules say, from a read snapshot, of signing some block of `pubkey` at `slot`
/// (the consensus value check's question, asked before the block's signing root is known):
/// refused when a block at that slot is already recorded (only the very same block could be
/// signed again, and which block will be decided is not known yet), at or below the
/// watermark's lowest slot, or when the watermark is missing or damaged.
pub(crate) fn block_slot_verdict(
    view: &ReadView<'_>,
    pubkey: &ValidatorPubkey,
    slot: u64,
) -> Result<Option<SlashingViolation>> {
    let recorded = view
        .txn
        .get_with(&view.blocks, &PrefixedU64(*pubkey, slot))?
        .is_some();
    if recorded {
        return Ok(Some(SlashingViolation::DoubleProposal));
    }
    let summary = match watermark(view, pubkey)? {
        Ok(s) => s,
        Err(v) => return Ok(Some(v)),
    };
    Ok(match summary.low_slot {
        Some(low_slot) if slot <= low_slot => {
            Some(SlashingViolation::SlotNotAboveLowerBound { low_slot })
        }
        _ => None,
    })
}

/// What the rules say of an attestation before anything is recorded.
pub(crate) enum AttestationCheck {
    /// New and safe; the validator's watermark as it stands.
    New(SlashingSummary),
    /// Exactly what was signed before.
    Same,
    /// Refused.
    Refused(SlashingViolation),
}

/// The slashing rules for one attestation, from the records (see the module docs).
pub(crate) fn attestation_verdict(
    r: &dyn SlashingRead,
    att: &AttestationToSign,
) -> Result<AttestationCheck> {
    use AttestationCheck::{New, Refused, Same};
    let (s, tgt) = (att.source_epoch, att.target_epoch);
    if s > tgt {
        return Ok(Refused(SlashingViolation::SourceExceedsTarget));
    }
    // Double vote: a record at this target.
    if let Some(existing) = r.attestation(&att.pubkey, tgt)? {
        return Ok(if is_same_root(existing.signing_root, &att.signing_root) {
            Same
        } else {
            Refused(SlashingViolation::DoubleVote {
                existing_source: existing.source_epoch,
            })
        });
    }
    // Surrounded: a record with target > tgt and source < s.
    let mut found = None;
    if let Some(from) = tgt.checked_add(1) {
        r.attestations_from(&att.pubkey, from, &mut |target, source| {
            if source < s {
                found = Some((source, target));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
    }
    if let Some(existing) = found {
        return Ok(Refused(SlashingViolation::SurroundedByExisting {
            existing,
        }));
    }
    // Surrounding: a record with s < source (<= its target) and target < tgt, so with a
    // target in (s, tgt).
    let mut found = None;
    r.attestations_from(&att.pubkey, s.saturating_add(1), &mut |target, source| {
        if target >= tgt {
            return ControlFlow::Break(());
        }
        if source > s {
            found = Some((source, target));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    if let Some(existing) = found {
        return Ok(Refused(SlashingViolation::SurroundsExisting { existing }));
    }
    // The watermark: lower bounds of pruned and imported history.
    let summary = match watermark(r, &att.pubkey)? {
        Ok(summary) => summary,
        Err(v) => return Ok(Refused(v)),
    };
    if let Some(low_source) = summary.low_source
        && s < low_source
    {
        return Ok(Refused(SlashingViolation::SourceBelowLowerBound {
            low_source,
        }));
    }
    if let Some(low_target) = summary.low_target
        && tgt <= low_target
    {
        return Ok(Refused(SlashingViolation::TargetNotAboveLowerBound {
            low_target,
        }));
    }
    Ok(New(summary))
}

/// Checks one attestation and records it when safe.
pub(crate) fn check_attestation<'t>(
    txn: &'t WriteTxn<'_>,
    t: &'t SlashingTables<'t>,
    att: &AttestationToSign,
) -> Result<Verdict> {
    let mut summary = match attestation_verdict(&WriteView { txn, t }, att)? {
        AttestationCheck::Same => return Ok(Ok(Safe::SameData)),
        AttestationCheck::Refused(v) => return Ok(Err(v)),
        AttestationCheck::New(summary) => summary,
    };
    let (s, tgt) = (att.source_epoch, att.target_epoch);
    txn.put(
        &t.attestations,
        &PrefixedU64(att.pubkey, tgt),
        &AttestationRecord {
            source_epoch: s,
            signing_root: Some(att.signing_root),
        },
    )?;
    update_attestation_bounds(&mut summary, s, tgt);
    txn.put(&t.summaries, &att.pubkey, &summary)?;
    Ok(Ok(Safe::Recorded))
}

fn update_attestation_bounds(summary: &mut SlashingSummary, s: u64, tgt: u64) {
    summary.low_source = Some(summary.low_source.map_or(s, |l| l.min(s)));
    summary.low_target = Some(summary.low_target.map_or(tgt, |l| l.min(tgt)));
    summary.max_source = Some(summary.max_source.map_or(s, |m| m.max(s)));
    summary.max_target = Some(summary.max_target.map_or(tgt, |m| m.max(tgt)));
}

/// Deletes every record of `pubkey` in table `T` (keys `(pubkey, *)`).
fn clear_validator<'t, T>(
    txn: &'t WriteTxn<'_>,
    handle: &Handle<'t, T>,
    pubkey: &ValidatorPubkey,
) -> Result<usize>
where
    T: crate::tables::Table<Key = PrefixedU64<48>>,
{
    let mut keys = Vec::new();
    txn.scan(handle, &PrefixedU64(*pubkey, 0), |key, _| {
        if key.0 != *pubkey {
            return Ok(ControlFlow::Break(()));
        }
        keys.push(key);
        Ok(ControlFlow::Continue(()))
    })?;
    for key in &keys {
        txn.del(handle, key)?;
    }
    Ok(keys.len())
}

/// Merges one imported validator record the minified way (EIP-3076 "minification"): the
/// validator's whole history collapses into one synthetic block at the highest slot and one
/// synthetic attestation at the highest source and highest target, over both what was
/// recorded and what is imported. Signing roots of the synthetic records are unknown, so
/// nothing at or below them can be signed again; slots and epochs only move forward.
pub(crate) fn import_minified<'t>(
    txn: &'t WriteTxn<'_>,
    t: &SlashingTables<'t>,
    pubkey: &ValidatorPubkey,
    max_block_slot: Option<u64>,
    max_source_target: Option<(u64, u64)>,
) -> Result<()> {
    // The merge folds the stored watermark in: a validator whose records have no readable
    // watermark row cannot be merged safely (its pruned bounds are unknown).
    let mut summary = match watermark(&WriteView { txn, t }, pubkey)? {
        Ok(summary) => summary,
        Err(v) => {
            return Err(crate::error::StorageError::Interchange(format!(
                "validator 0x{} has slashing records but {v}; refusing to merge into it",
                hex::encode(pubkey)
            )));
        }
    };
    if let Some(slot) = max_block_slot {
        let slot = summary.max_slot.map_or(slot, |m| m.max(slot));
        clear_validator(txn, &t.blocks, pubkey)?;
        txn.put(
            &t.blocks,
            &PrefixedU64(*pubkey, slot),
            &BlockRecord { signing_root: None },
        )?;
        summary.low_slot = Some(slot);
        summary.max_slot = Some(slot);
    }
    if let Some((s, tgt)) = max_source_target {
        let s = summary.max_source.map_or(s, |m| m.max(s));
        let tgt = summary.max_target.map_or(tgt, |m| m.max(tgt));
        clear_validator(txn, &t.attestations, pubkey)?;
        txn.put(
            &t.attestations,
            &PrefixedU64(*pubkey, tgt),
            &AttestationRecord {
                source_epoch: s,
                signing_root: None,
            },
        )?;
        summary.low_source = Some(s);
        summary.low_target = Some(tgt);
        summary.max_source = Some(s);
        summary.max_target = Some(tgt);
    }
    txn.put(&t.summaries, pubkey, &summary)?;
    Ok(())
}

/// Bumps the protection of a validator the node is about to run, as the Go node's
/// `BumpSlashingProtection` does when a share is added or reactivated: unless the validator
/// attested *here* in the previous or current epoch (a restart of a node that was running
/// it), its watermark rises to at least source `epoch - 1`, target `epoch`, so nothing at or
/// below the current epoch is signed for a validator that may have signed elsewhere since it
/// last signed here (never here, or removed and re-added); likewise the block watermark rises
/// to `slot` unless a block at or after it is recorded. A validator with records but no
/// readable watermark is left alone (it is refused anyway). `force` (a share added or
/// reactivated while the node runs, as the Go node bumps at the contract event): the
/// attestation watermark rises even when the validator attested here recently — it was
/// stopped here meanwhile and may have signed elsewhere. Returns whether it was bumped.
pub(crate) fn bump<'t>(
    txn: &'t WriteTxn<'_>,
    t: &SlashingTables<'t>,
    pubkey: &ValidatorPubkey,
    epoch: u64,
    slot: u64,
    force: bool,
) -> Result<bool> {
    // A validator with records but no readable watermark stays refused: a row written
    // here would unlock it.
    let Ok(mut summary) = watermark(&WriteView { txn, t }, pubkey)? else {
        return Ok(false);
    };
    let before = summary;
    let active_here = !force
        && summary
            .max_target
            .is_some_and(|t| t.saturating_add(1) >= epoch);
    if !active_here {
        let source = epoch.saturating_sub(1);
        let raise = |v: Option<u64>, to: u64| Some(v.map_or(to, |v| v.max(to)));
        summary.low_source = raise(summary.low_source, source);
        summary.low_target = raise(summary.low_target, epoch);
        summary.max_source = raise(summary.max_source, source);
        summary.max_target = raise(summary.max_target, epoch);
    }
    if summary.max_slot.is_none_or(|s| s < slot) {
        summary.low_slot = Some(summary.low_slot.map_or(slot, |l| l.max(slot)));
        summary.max_slot = Some(slot);
    }
    if summary == before {
        return Ok(false);
    }
    txn.put(&t.summaries, pubkey, &summary)?;
    Ok(true)
}

/// Records older than these bounds are deleted by [`crate::Store::prune_slashing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneBelow {
    /// Attestations with a target epoch below this are deleted.
    pub attestation_target_epoch: u64,
    /// Blocks with a slot below this are deleted.
    pub block_slot: u64,
}

/// Counts of one prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneSummary {
    /// Validators visited.
    pub validators: usize,
    /// Attestation records deleted.
    pub attestations_deleted: usize,
    /// Block records deleted.
    pub blocks_deleted: usize,
}

/// Deletes old records while keeping every refusal: the highest record of each validator is
/// always kept, and the lower bounds rise to at least the highest deleted source and target,
/// and to the lowest remaining source, target and slot (EIP-3076's "minimum present").
/// An attestation that could conflict with a deleted record has `target <=` that record's
/// target or `source <` its source, so the raised bounds refuse it without the record.
pub(crate) fn prune<'t>(
    txn: &'t WriteTxn<'_>,
    t: &SlashingTables<'t>,
    below: PruneBelow,
) -> Result<PruneSummary> {
    let mut validators = Vec::new();
    txn.scan(&t.summaries, &[0u8; 48], |pk, summary| {
        validators.push((pk, summary));
        Ok(ControlFlow::Continue(()))
    })?;
    let mut out = PruneSummary {
        validators: validators.len(),
        ..PruneSummary::default()
    };
    for (pk, mut summary) in validators {
        let before = summary;
        // Blocks.
        let mut doomed = Vec::new();
        let mut min_remaining: Option<u64> = None;
        txn.scan(&t.blocks, &PrefixedU64(pk, 0), |key, _| {
            if key.0 != pk {
                return Ok(ControlFlow::Break(()));
            }
            if key.1 < below.block_slot && Some(key.1) != summary.max_slot {
                doomed.push(key);
            } else {
                min_remaining = Some(min_remaining.map_or(key.1, |m| m.min(key.1)));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        for key in &doomed {
            txn.del(&t.blocks, key)?;
        }
        out.blocks_deleted += doomed.len();
        if let Some(m) = min_remaining {
            summary.low_slot = Some(summary.low_slot.map_or(m, |l| l.max(m)));
        }
        // Attestations.
        let mut doomed = Vec::new();
        let (mut max_del_s, mut max_del_t) = (None::<u64>, None::<u64>);
        let (mut min_rem_s, mut min_rem_t) = (None::<u64>, None::<u64>);
        txn.scan(&t.attestations, &PrefixedU64(pk, 0), |key, rec| {
            if key.0 != pk {
                return Ok(ControlFlow::Break(()));
            }
            let (s, tgt) = (rec.source_epoch, key.1);
            if tgt < below.attestation_target_epoch && Some(tgt) != summary.max_target {
                doomed.push(key);
                max_del_s = Some(max_del_s.map_or(s, |m| m.max(s)));
                max_del_t = Some(max_del_t.map_or(tgt, |m| m.max(tgt)));
            } else {
                min_rem_s = Some(min_rem_s.map_or(s, |m| m.min(s)));
                min_rem_t = Some(min_rem_t.map_or(tgt, |m| m.min(tgt)));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        for key in &doomed {
            txn.del(&t.attestations, key)?;
        }
        out.attestations_deleted += doomed.len();
        let raise = |low: Option<u64>, a: Option<u64>, b: Option<u64>| {
            [low, a, b].into_iter().flatten().max()
        };
        summary.low_source = raise(summary.low_source, max_del_s, min_rem_s);
        summary.low_target = raise(summary.low_target, max_del_t, min_rem_t);
        if summary != before {
            txn.put(&t.summaries, &pk, &summary)?;
        }
    }
    Ok(out)
}
