//! The writer thread: the only owner of write transactions.
//!
//! Requests arrive over a bounded channel ([`crate::db::WRITE_QUEUE_MAX`]). The writer takes
//! one request, then whatever else is already queued (up to [`GROUP_REQUESTS_MAX`]), applies
//! them in arrival order in one write transaction, and commits once: callers batch their
//! records per slot, and concurrent callers share the commit (group commit). Every request's
//! acknowledgement is sent only after that commit returned, so an acknowledged write is on
//! disk (with [`crate::Durability::Durable`]). If applying the group fails, the transaction is
//! aborted and each request is retried alone, so one bad request fails only itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::codec::{PrefixedU64, Singleton};
use crate::db::{Env, WriteTxn};
use crate::error::{Result, StorageError};
use crate::interchange::{ImportEntry, ImportSummary};
use crate::records::{
    CommitteeId, CommitteeRecord, DecidedRecord, OperatorId, OperatorRecord, ShareRecord,
    SyncCursor, ValidatorMetadata, ValidatorPubkey,
};
use crate::slashing::{
    self, AttestationToSign, BlockToSign, PruneBelow, PruneSummary, SlashingTables,
    SlashingVerdicts,
};
use crate::tables::{
    Committees, ContractSync, Decided, DecidedHistory, Metadata, Operators, Shares,
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
    /// Remove an operator.
    DeleteOperator(OperatorId),
    /// Insert or replace a committee.
    PutCommittee(CommitteeRecord),
    /// Remove a committee.
    DeleteCommittee(CommitteeId),
    /// Insert or replace a validator share; its committee row is written too. The decrypted
    /// secret is dropped here unless the store is configured to persist it.
    PutShare(ShareRecord),
    /// Remove a validator share (its committee row stays; delete it explicitly when empty).
    DeleteShare(ValidatorPubkey),
    /// Insert or replace beacon metadata.
    PutMetadata(ValidatorMetadata),
    /// Record a decided instance: replaces the identifier's highest when its height is not
    /// lower, and is appended to the history table in exporter mode.
    PutDecided(DecidedRecord),
    /// Set the contract-sync cursor.
    SetSyncCursor(u64),
}

impl WriteOp {
    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            WriteOp::PutOperator(o) => o.validate(),
            WriteOp::PutCommittee(c) => c.validate(),
            WriteOp::PutShare(s) => s.validate(),
            WriteOp::PutDecided(d) => d.validate(),
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
}

enum Outcome {
    Write,
    Slashing(SlashingVerdicts),
    Import(ImportSummary),
    Prune(PruneSummary),
}

pub(crate) struct Writer {
    pub(crate) env: Arc<Env>,
    pub(crate) persist_decrypted_shares: bool,
    pub(crate) decided_history: bool,
    pub(crate) commits: Arc<AtomicU64>,
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
                }
                WriteOp::PutCommittee(c) => txn.put(&txn.handle::<Committees>()?, &c.id, c)?,
                WriteOp::DeleteCommittee(id) => {
                    txn.del(&txn.handle::<Committees>()?, id)?;
                }
                WriteOp::PutShare(share) => {
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
                    txn.put(&txn.handle::<Committees>()?, &committee.id, &committee)?;
                }
                WriteOp::DeleteShare(pk) => {
                    txn.del(&txn.handle::<Shares>()?, pk)?;
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
                WriteOp::SetSyncCursor(block) => txn.put(
                    &txn.handle::<ContractSync>()?,
                    &Singleton,
                    &SyncCursor {
                        last_processed_block: *block,
                    },
                )?,
            }
        }
        Ok(())
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
    }
}
