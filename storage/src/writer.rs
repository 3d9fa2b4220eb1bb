//! The writer thread: the only owner of write transactions.
//!
//! Requests arrive over a bounded channel ([`crate::db::WRITE_QUEUE_MAX`]). The writer takes
//! one request, then whatever else is already queued (up to [`GROUP_REQUESTS_MAX`]), applies
//! them in arrival order in one write transaction, and commits once: callers batch their
//! records per slot, and concurrent callers share the commit (group commit). Every request's
//! acknowledgement is sent only after that commit returned, so an acknowledged write is on
//! disk (with [`crate::Durability::Durable`]). If applying the group fails, the transaction is
//! aborted and each request is retried alone, so one bad request fails only itself.
//!
//! # Atomicity of one request
//!
//! A request (one [`crate::Store::write`] / [`crate::Store::submit`] batch) is never split:
//! all of its operations are applied inside one write transaction, and that transaction
//! either commits or is aborted as a whole. Folding may put *several* requests into the same
//! transaction, which only makes commits coarser: a crash still leaves the database at the
//! end of some prefix of the acknowledged-or-queued requests, never inside one. This is what
//! the contract sync relies on to store a block's registry changes and its cursor
//! ([`WriteOp::AdvanceSyncCursor`]) together. An operation that fails (for instance a cursor
//! regression) fails its whole request, and nothing of that request is stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::codec::{PrefixedU64, Singleton};
use crate::db::{Env, WriteTxn};
use crate::error::{Result, StorageError};
use crate::interchange::{ImportEntry, ImportSummary};
use crate::records::{
    Address, ClusterId, CommitteeId, CommitteeRecord, DecidedRecord, FeeRecipient,
    LiquidatedCluster, MALFORMED_EVENTS_MAX, MalformedEventRecord, OperatorId, OperatorRecord,
    OperatorStatus, OwnOperatorRecord, OwnShareRecord, OwnerNonce, ShareRecord, SyncCursor,
    ValidatorEventsRecord, ValidatorMetadata, ValidatorPubkey,
};
use crate::slashing::{
    self, AttestationToSign, BlockToSign, PruneBelow, PruneSummary, SlashingTables,
    SlashingVerdicts,
};
use crate::tables::{
    Committees, ContractSync, Decided, DecidedHistory, FeeRecipients, LiquidatedClusters,
    MalformedEvents, Metadata, OperatorStatuses, Operators, OwnOperator, OwnOperatorIds, OwnShares,
    OwnerNonces, Shares, ValidatorEvents,
};

/// Most queued requests folded into one commit. Too large: one slow group delays the first
/// caller's acknowledgement; too small: more fsyncs under load.
pub const GROUP_REQUESTS_MAX: usize = 64;
/// Most operations in one write request (one slot of a large operator is ~10,000 records).
pub const BATCH_OPS_MAX: usize = 1_000_000;

/// One change to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Insert or replace an operator.
    PutOperator(OperatorRecord),
    /// Remove an operator (and its [`OperatorStatus`] row).
    DeleteOperator(OperatorId),
    /// Insert or replace an operator's contract-sync status.
    PutOperatorStatus(OperatorId, OperatorStatus),
    /// Insert or replace a committee.
    PutCommittee(CommitteeRecord),
    /// Remove a committee.
    DeleteCommittee(CommitteeId),
    /// Insert or replace a validator share; its committee row is written too. The decrypted
    /// secret is dropped here unless the store is configured to persist it.
    PutShare(ShareRecord),
    /// Like [`WriteOp::PutShare`] for the contract sync, which does not know the beacon
    /// index: when a share of that validator is stored, its `validator_index` (beacon
    /// metadata) and `secret_share` are kept; the rest comes from the new record. Done inside
    /// the write transaction, so a concurrent metadata update is never lost.
    PutRegistryShare(ShareRecord),
    /// Set the beacon index of a stored share, changing nothing else (a no-op when the
    /// share is absent). Read and written inside the write transaction, so it never undoes
    /// a concurrent contract-sync change (liquidation, removal) the way a read-modify-write
    /// [`WriteOp::PutShare`] from a snapshot can.
    SetValidatorIndex(ValidatorPubkey, u64),
    /// Remove a validator share and its [`ValidatorEventsRecord`] row (its committee row
    /// stays; delete it explicitly when empty).
    DeleteShare(ValidatorPubkey),
    /// Insert or replace the encrypted share of our operator `1` for validator `0` (a node
    /// hosting several operator IDs of its committee).
    PutOwnShare(ValidatorPubkey, OperatorId, OwnShareRecord),
    /// Insert or replace what the contract events say about a validator beyond its share.
    PutValidatorEvents(ValidatorPubkey, ValidatorEventsRecord),
    /// Set an owner's next `ValidatorAdded` nonce.
    SetOwnerNonce(Address, u64),
    /// Set an owner's fee recipient: (owner, recipient).
    SetFeeRecipient(Address, Address),
    /// Mark a cluster liquidated (insert or replace its row).
    PutLiquidatedCluster(LiquidatedCluster),
    /// The cluster is active again: delete its row.
    DeleteLiquidatedCluster(ClusterId),
    /// Append a malformed-event record under the next sequence number; when that leaves
    /// more than [`MALFORMED_EVENTS_MAX`] rows, the oldest is deleted.
    AppendMalformedEvent(MalformedEventRecord),
    /// Record our operator ID.
    SetOwnOperator(OperatorId),
    /// Record one more operator ID of ours (beyond the [`WriteOp::SetOwnOperator`] one).
    AddOwnOperator(OperatorId),
    /// Insert or replace beacon metadata.
    PutMetadata(ValidatorMetadata),
    /// Record a decided instance: replaces the identifier's highest when its height is not
    /// lower, and is appended to the history table in exporter mode.
    PutDecided(DecidedRecord),
    /// Delete decided-history rows (exporter mode) whose height is below `below_height`, at
    /// most [`crate::decided::PRUNE_ROWS_MAX`] of them per request (a later request deletes
    /// the rest); the highest-decided table is left alone.
    PruneDecidedHistory {
        /// Rows with a height below this are deleted.
        below_height: u64,
    },
    /// Set the contract-sync cursor (unconditionally: tests and tools).
    SetSyncCursor(u64),
    /// Set the contract-sync cursor to a block strictly after the stored one; otherwise the
    /// whole request fails with [`StorageError::CursorRegression`] and none of it is stored.
    /// Checked inside the write transaction, so two writers cannot both apply one block.
    AdvanceSyncCursor(u64),
}

impl WriteOp {
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            WriteOp::PutOperator(o) => o.validate(),
            WriteOp::PutCommittee(c) => c.validate(),
            WriteOp::PutShare(s) | WriteOp::PutRegistryShare(s) => s.validate(),
            WriteOp::PutDecided(d) => d.validate(),
            WriteOp::PutValidatorEvents(_, v) => v.validate(),
            WriteOp::PutOwnShare(_, _, o) => o.validate(),
            WriteOp::PutLiquidatedCluster(c) => c.validate(),
            WriteOp::AppendMalformedEvent(m) => m.validate(),
            _ => Ok(()),
        }
    }
}

/// Acknowledgement of a committed write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitInfo {
    /// Sequence number of the commit that carried the request (1-based, per process).
    pub commit_seq: u64,
}

pub(crate) enum Request {
    Write {
        ops: Vec<WriteOp>,
        ack: Sender<Result<CommitInfo>>,
    },
    Slashing {
        blocks: Vec<BlockToSign>,
        attestations: Vec<AttestationToSign>,
        ack: Sender<Result<SlashingVerdicts>>,
    },
    Import {
        entries: Vec<ImportEntry>,
        summary: ImportSummary,
        ack: Sender<Result<ImportSummary>>,
    },
    Prune {
        below: PruneBelow,
        ack: Sender<Result<PruneSummary>>,
    },
    Bump {
        pubkeys: Vec<crate::records::ValidatorPubkey>,
        epoch: u64,
        slot: u64,
        force: bool,
        ack: Sender<Result<usize>>,
    },
}

enum Outcome {
    Write,
    Slashing(SlashingVerdicts),
    Import(ImportSummary),
    Prune(PruneSummary),
    Bump(usize),
}

pub(crate) struct Writer {
    pub(crate) env: Arc<Env>,
    pub(crate) persist_decrypted_shares: bool,
    pub(crate) decided_history: bool,
    pub(crate) commits: Arc<AtomicU64>,
    /// [`crate::StoreConfig::commit_fault`].
    pub(crate) commit_fault: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Writer {
    pub(crate) fn run(self, rx: Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < GROUP_REQUESTS_MAX {
                match rx.try_recv() {
                    Ok(r) => group.push(r),
                    Err(_) => break,
                }
            }
            match self.apply(&group) {
                Ok((seq, outcomes)) => {
                    for (request, outcome) in group.into_iter().zip(outcomes) {
                        reply(request, Ok((seq, outcome)));
                    }
                }
                Err(e) if group.len() == 1 => {
                    if let Some(request) = group.pop() {
                        reply(request, Err(e));
                    }
                }
                Err(_) => {
                    for request in group {
                        let result = self
                            .apply(std::slice::from_ref(&request))
                            .map(|(seq, mut o)| (seq, o.remove(0)));
                        reply(request, result);
                    }
                }
            }
        }
        tracing::debug!("storage writer stopped: all senders dropped");
    }

    /// Applies `group` in one transaction and commits; returns the commit sequence number.
    fn apply(&self, group: &[Request]) -> Result<(u64, Vec<Outcome>)> {
        let txn = WriteTxn::new(&self.env)?;
        let mut outcomes = Vec::with_capacity(group.len());
        for request in group {
            outcomes.push(match request {
                Request::Write { ops, .. } => {
                    self.apply_ops(&txn, ops)?;
                    Outcome::Write
                }
                Request::Slashing {
                    blocks,
                    attestations,
                    ..
                } => {
                    let tables = SlashingTables::open(&txn)?;
                    let mut verdicts = SlashingVerdicts {
                        blocks: Vec::with_capacity(blocks.len()),
                        attestations: Vec::with_capacity(attestations.len()),
                    };
                    for b in blocks {
                        verdicts
                            .blocks
                            .push(slashing::check_block(&txn, &tables, b)?);
                    }
                    for a in attestations {
                        verdicts
                            .attestations
                            .push(slashing::check_attestation(&txn, &tables, a)?);
                    }
                    Outcome::Slashing(verdicts)
                }
                Request::Import {
                    entries, summary, ..
                } => {
                    let tables = SlashingTables::open(&txn)?;
                    for e in entries {
                        slashing::import_minified(
                            &txn,
                            &tables,
                            &e.pubkey,
                            e.max_block_slot,
                            e.max_source_target,
                        )?;
                    }
                    Outcome::Import(*summary)
                }
                Request::Prune { below, .. } => {
                    let tables = SlashingTables::open(&txn)?;
                    Outcome::Prune(slashing::prune(&txn, &tables, *below)?)
                }
                Request::Bump {
                    pubkeys,
                    epoch,
                    slot,
                    force,
                    ..
                } => {
                    let tables = SlashingTables::open(&txn)?;
                    let mut bumped = 0;
                    for pk in pubkeys {
                        if slashing::bump(&txn, &tables, pk, *epoch, *slot, *force)? {
                            bumped += 1;
                        }
                    }
                    Outcome::Bump(bumped)
                }
            });
        }
        if self
            .commit_fault
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
        {
            // Dropping the transaction aborts it, as a failed commit does.
            return Err(StorageError::Io {
                path: std::path::PathBuf::from("(injected commit fault)"),
                source: std::io::Error::other("injected fsync failure"),
            });
        }
        txn.commit()?;
        let seq = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        Ok((seq, outcomes))
    }

    fn apply_ops(&self, txn: &WriteTxn<'_>, ops: &[WriteOp]) -> Result<()> {
        // Tables are opened lazily per op kind; opening is a name lookup in MDBX's table list.
        for op in ops {
            match op {
                WriteOp::PutOperator(o) => txn.put(&txn.handle::<Operators>()?, &o.id, o)?,
                WriteOp::DeleteOperator(id) => {
                    txn.del(&txn.handle::<Operators>()?, id)?;
                    txn.del(&txn.handle::<OperatorStatuses>()?, id)?;
                }
                WriteOp::PutOperatorStatus(id, status) => {
                    txn.put(&txn.handle::<OperatorStatuses>()?, id, status)?;
                }
                WriteOp::PutCommittee(c) => txn.put(&txn.handle::<Committees>()?, &c.id, c)?,
                WriteOp::DeleteCommittee(id) => {
                    txn.del(&txn.handle::<Committees>()?, id)?;
                }
                WriteOp::PutShare(share) => self.put_share(txn, share)?,
                WriteOp::SetValidatorIndex(pk, index) => {
                    let shares = txn.handle::<Shares>()?;
                    if let Some(mut share) = txn.get(&shares, pk)? {
                        share.validator_index = Some(*index);
                        txn.put(&shares, pk, &share)?;
                    }
                }
                WriteOp::PutRegistryShare(share) => {
                    let shares = txn.handle::<Shares>()?;
                    let merged = match txn.get(&shares, &share.validator_pubkey)? {
                        Some(stored) => ShareRecord {
                            validator_index: stored.validator_index,
                            secret_share: stored.secret_share,
                            ..share.clone()
                        },
                        None => share.clone(),
                    };
                    self.put_share(txn, &merged)?;
                }
                WriteOp::PutOwnShare(pk, id, o) => {
                    txn.put(&txn.handle::<OwnShares>()?, &PrefixedU64(*pk, *id), o)?
                }
                WriteOp::DeleteShare(pk) => {
                    // Our other operators' shares go with it (their IDs are the committee's).
                    let members = match txn.get(&txn.handle::<Shares>()?, pk)? {
                        Some(s) => s.operator_ids,
                        None => Vec::new(),
                    };
                    let own = txn.handle::<OwnShares>()?;
                    for id in members {
                        txn.del(&own, &PrefixedU64(*pk, id))?;
                    }
                    txn.del(&txn.handle::<Shares>()?, pk)?;
                    txn.del(&txn.handle::<ValidatorEvents>()?, pk)?;
                }
                WriteOp::PutValidatorEvents(pk, v) => {
                    txn.put(&txn.handle::<ValidatorEvents>()?, pk, v)?;
                }
                WriteOp::SetOwnerNonce(owner, next) => {
                    txn.put(
                        &txn.handle::<OwnerNonces>()?,
                        owner,
                        &OwnerNonce { next: *next },
                    )?;
                }
                WriteOp::SetFeeRecipient(owner, recipient) => {
                    txn.put(
                        &txn.handle::<FeeRecipients>()?,
                        owner,
                        &FeeRecipient {
                            recipient: *recipient,
                        },
                    )?;
                }
                WriteOp::PutLiquidatedCluster(c) => {
                    txn.put(&txn.handle::<LiquidatedClusters>()?, &c.id(), c)?;
                }
                WriteOp::DeleteLiquidatedCluster(id) => {
                    txn.del(&txn.handle::<LiquidatedClusters>()?, id)?;
                }
                WriteOp::AppendMalformedEvent(m) => {
                    let table = txn.handle::<MalformedEvents>()?;
                    // Sequence numbers are contiguous (only this op writes the table, and it
                    // deletes exactly the one that falls out of the window), so the last key
                    // + 1 is the number of records ever appended.
                    let seq = txn.last_key(&table)?.map_or(0, |last| last + 1);
                    txn.put(&table, &seq, m)?;
                    if let Some(oldest) = seq.checked_sub(MALFORMED_EVENTS_MAX as u64) {
                        txn.del(&table, &oldest)?;
                    }
                }
                WriteOp::SetOwnOperator(id) => {
                    txn.put(
                        &txn.handle::<OwnOperator>()?,
                        &Singleton,
                        &OwnOperatorRecord { id: *id },
                    )?;
                }
                WriteOp::AddOwnOperator(id) => {
                    txn.put(
                        &txn.handle::<OwnOperatorIds>()?,
                        id,
                        &OwnOperatorRecord { id: *id },
                    )?;
                }
                WriteOp::PutMetadata(m) => txn.put(&txn.handle::<Metadata>()?, &m.pubkey, m)?,
                WriteOp::PutDecided(d) => {
                    let highest = txn.handle::<Decided>()?;
                    let replace = match txn.get(&highest, &d.identifier)? {
                        Some(existing) => d.height >= existing.height,
                        None => true,
                    };
                    if replace {
                        txn.put(&highest, &d.identifier, d)?;
                    }
                    if self.decided_history {
                        let history = txn.handle::<DecidedHistory>()?;
                        txn.put(&history, &PrefixedU64(d.identifier, d.height), d)?;
                    }
                }
                WriteOp::PruneDecidedHistory { below_height } => {
                    crate::decided::prune_history(txn, *below_height)?;
                }
                WriteOp::SetSyncCursor(block) => txn.put(
                    &txn.handle::<ContractSync>()?,
                    &Singleton,
                    &SyncCursor {
                        last_processed_block: *block,
                    },
                )?,
                WriteOp::AdvanceSyncCursor(block) => {
                    let table = txn.handle::<ContractSync>()?;
                    if let Some(stored) = txn.get(&table, &Singleton)?
                        && *block <= stored.last_processed_block
                    {
                        return Err(StorageError::CursorRegression {
                            block: *block,
                            cursor: stored.last_processed_block,
                        });
                    }
                    txn.put(
                        &table,
                        &Singleton,
                        &SyncCursor {
                            last_processed_block: *block,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Writes a share (dropping the decrypted secret unless configured to persist it) and
    /// its committee row.
    fn put_share(&self, txn: &WriteTxn<'_>, share: &ShareRecord) -> Result<()> {
        let stripped;
        let share = if share.secret_share.is_some() && !self.persist_decrypted_shares {
            stripped = ShareRecord {
                secret_share: None,
                ..share.clone()
            };
            &stripped
        } else {
            share
        };
        txn.put(&txn.handle::<Shares>()?, &share.validator_pubkey, share)?;
        let committee = CommitteeRecord {
            id: share.committee_id,
            operator_ids: share.operator_ids.clone(),
        };
        txn.put(&txn.handle::<Committees>()?, &committee.id, &committee)
    }
}

fn reply(request: Request, result: Result<(u64, Outcome)>) {
    // A caller that stopped waiting is not an error for the writer: ignore send failures.
    // `apply` produces exactly one outcome of the request's own kind, so the fallback arms
    // (`WriterStopped`) are unreachable; they exist to avoid a panic path.
    match request {
        Request::Write { ack, .. } => {
            let _ = ack.send(result.map(|(commit_seq, _)| CommitInfo { commit_seq }));
        }
        Request::Slashing { ack, .. } => {
            let _ = ack.send(result.and_then(|(_, o)| match o {
                Outcome::Slashing(v) => Ok(v),
                _ => Err(StorageError::WriterStopped),
            }));
        }
        Request::Import { ack, .. } => {
            let _ = ack.send(result.and_then(|(_, o)| match o {
                Outcome::Import(s) => Ok(s),
                _ => Err(StorageError::WriterStopped),
            }));
        }
        Request::Prune { ack, .. } => {
            let _ = ack.send(result.and_then(|(_, o)| match o {
                Outcome::Prune(s) => Ok(s),
                _ => Err(StorageError::WriterStopped),
            }));
        }
        Request::Bump { ack, .. } => {
            let _ = ack.send(result.and_then(|(_, o)| match o {
                Outcome::Bump(n) => Ok(n),
                _ => Err(StorageError::WriterStopped),
            }));
        }
    }
}
