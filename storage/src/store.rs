//! [`Store`]: the public face of the crate.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use crate::codec::Singleton;
use crate::committee::CommitteeMap;
use crate::db::{Env, ReadTxn, StoreConfig, open_env};
use crate::error::{Result, StorageError};
use crate::interchange::{
    INTERCHANGE_FORMAT_VERSION, ImportSummary, Interchange, InterchangeAttestation,
    InterchangeBlock, InterchangeMetadata, InterchangeRecord, to_hex,
};
use crate::records::{Address, DecidedRecord, QbftIdentifier, ShareRecord, ValidatorPubkey};
use crate::slashing::{
    AttestationToSign, BlockToSign, PruneBelow, PruneSummary, SLASHING_BATCH_MAX, SlashingVerdicts,
};
use crate::tables::{
    ContractSync, Decided, Shares, SignedAttestations, SignedBlocks, SlashingSummaries,
};
use crate::writer::{BATCH_OPS_MAX, CommitInfo, Request, WriteOp, Writer};

/// Which EIP-3076 export to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportForm {
    /// Every recorded block and attestation.
    Complete,
    /// Per validator, one block at the highest slot and one attestation at the highest
    /// source and target (what another client needs to stay safe).
    Minified,
}

/// The node's database: an MDBX environment plus its writer thread.
///
/// Reads go through [`Store::read`] snapshots on any thread; every write goes through the
/// writer thread ([`Store::write`], [`Store::check_and_record`], [`Store::import_interchange`]).
/// Share it between threads behind an `Arc`.
pub struct Store {
    env: Arc<Env>,
    config: StoreConfig,
    requests: Option<Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.config.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database and starts the writer thread.
    ///
    /// Fails with a typed error, never a panic, when the file is not an MDBX database, is
    /// damaged, belongs to another application, has another schema version, or belongs to
    /// another network.
    pub fn open(config: StoreConfig) -> Result<Self> {
        let env = Arc::new(open_env(&config)?);
        let commits = Arc::new(AtomicU64::new(0));
        let (tx, rx) = bounded(config.write_queue_max.max(1));
        let writer = Writer {
            env: env.clone(),
            persist_decrypted_shares: config.persist_decrypted_shares,
            decided_history: config.decided_history,
            commits: commits.clone(),
            commit_fault: config.commit_fault.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("storage-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| StorageError::Io {
                path: config.path.clone(),
                source,
            })?;
        Ok(Store {
            env,
            config,
            requests: Some(tx),
            writer: Some(handle),
            commits,
        })
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Number of commits (each one durable with [`crate::Durability::Durable`]) since open.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// A read snapshot. Never blocks the writer, nor is blocked by it.
    pub fn read(&self) -> Result<ReadTxn<'_>> {
        ReadTxn::new(&self.env)
    }

    fn sender(&self) -> Result<&Sender<Request>> {
        self.requests.as_ref().ok_or(StorageError::WriterStopped)
    }

    fn check_ops(ops: &[WriteOp]) -> Result<()> {
        if ops.len() > BATCH_OPS_MAX {
            return Err(StorageError::InvalidRecord(format!(
                "batch of {} operations, more than {BATCH_OPS_MAX}",
                ops.len()
            )));
        }
        ops.iter().try_for_each(WriteOp::validate)
    }

    /// Queues a batch; it is applied and committed with whatever else is queued. Waits while
    /// the queue is full. The receiver yields once the batch is committed.
    pub fn submit(&self, ops: Vec<WriteOp>) -> Result<Receiver<Result<CommitInfo>>> {
        Self::check_ops(&ops)?;
        let (ack, rx) = bounded(1);
        self.sender()?
            .send(Request::Write { ops, ack })
            .map_err(|_| StorageError::WriterStopped)?;
        Ok(rx)
    }

    /// Like [`Store::submit`], but fails with [`StorageError::WriteQueueFull`] instead of
    /// waiting.
    pub fn try_submit(&self, ops: Vec<WriteOp>) -> Result<Receiver<Result<CommitInfo>>> {
        Self::check_ops(&ops)?;
        let (ack, rx) = bounded(1);
        match self.sender()?.try_send(Request::Write { ops, ack }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(StorageError::WriteQueueFull),
            Err(TrySendError::Disconnected(_)) => Err(StorageError::WriterStopped),
        }
    }

    /// Writes a batch and waits until it is committed.
    pub fn write(&self, ops: Vec<WriteOp>) -> Result<CommitInfo> {
        self.submit(ops)?
            .recv()
            .map_err(|_| StorageError::WriterStopped)?
    }

    /// Checks every block and attestation against slashing protection and records the safe
    /// ones, atomically, in one commit. Returns one verdict per input, in order, after the
    /// commit: a signature may leave the node only for inputs whose verdict is `Ok`.
    pub fn check_and_record(
        &self,
        blocks: &[BlockToSign],
        attestations: &[AttestationToSign],
    ) -> Result<SlashingVerdicts> {
        self.check_and_record_within(blocks, attestations, None)
    }

    /// [`Store::check_and_record`] with a deadline: when the commit has not been
    /// acknowledged within `timeout` (a stalled disk, a writer far behind), the call returns
    /// [`StorageError::SlashingTimeout`] and the caller must not sign. The request may still
    /// commit later; that only records messages that were never signed, which makes later
    /// checks stricter, never looser.
    pub fn check_and_record_within(
        &self,
        blocks: &[BlockToSign],
        attestations: &[AttestationToSign],
        timeout: Option<std::time::Duration>,
    ) -> Result<SlashingVerdicts> {
        if blocks.len() + attestations.len() > SLASHING_BATCH_MAX {
            return Err(StorageError::InvalidRecord(format!(
                "slashing batch of {} messages, more than {SLASHING_BATCH_MAX}",
                blocks.len() + attestations.len()
            )));
        }
        let (ack, rx) = bounded(1);
        let request = Request::Slashing {
            blocks: blocks.to_vec(),
            attestations: attestations.to_vec(),
            ack,
        };
        let deadline = timeout.map(|t| (t, std::time::Instant::now() + t));
        match deadline {
            None => self
                .sender()?
                .send(request)
                .map_err(|_| StorageError::WriterStopped)?,
            // A full writer queue (a stalled disk) counts against the same deadline.
            Some((t, at)) => self
                .sender()?
                .send_deadline(request, at)
                .map_err(|e| match e {
                    crossbeam_channel::SendTimeoutError::Timeout(_) => {
                        StorageError::SlashingTimeout(t)
                    }
                    crossbeam_channel::SendTimeoutError::Disconnected(_) => {
                        StorageError::WriterStopped
                    }
                })?,
        }
        match deadline.map(|(t, at)| (t, at.saturating_duration_since(std::time::Instant::now()))) {
            None => rx.recv().map_err(|_| StorageError::WriterStopped)?,
            Some((t, left)) => match rx.recv_timeout(left) {
                Ok(r) => r,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    Err(StorageError::SlashingTimeout(t))
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    Err(StorageError::WriterStopped)
                }
            },
        }
    }

    /// What [`Store::check_and_record`] would say of each attestation, from a read snapshot
    /// and without recording anything: `None` when it may be signed (new, or exactly what
    /// was signed before), else the violation. For the consensus value check, which refuses
    /// to decide a value its node would then refuse to sign. Never blocks the writer.
    pub fn attestation_violations(
        &self,
        attestations: &[AttestationToSign],
    ) -> Result<Vec<Option<crate::slashing::SlashingViolation>>> {
        let txn = self.read()?;
        let view = crate::slashing::ReadView::new(&txn)?;
        attestations
            .iter()
            .map(|a| {
                Ok(match crate::slashing::attestation_verdict(&view, a)? {
                    crate::slashing::AttestationCheck::Refused(v) => Some(v),
                    _ => None,
                })
            })
            .collect()
    }

    /// What [`Store::check_and_record`] would say of *some* block of `pubkey` at `slot`, from
    /// a read snapshot and recording nothing: `None` when a block there may be signed, else
    /// why not (a block at that slot is already recorded, or the slot is not above the
    /// watermark). For the proposer's consensus value check, which runs before the decided
    /// block, and so its signing root, is known.
    pub fn block_slot_violation(
        &self,
        pubkey: &[u8; 48],
        slot: u64,
    ) -> Result<Option<crate::slashing::SlashingViolation>> {
        let txn = self.read()?;
        let view = crate::slashing::ReadView::new(&txn)?;
        crate::slashing::block_slot_verdict(&view, pubkey, slot)
    }

    /// Imports an EIP-3076 interchange document (minified merge: see
    /// [`crate::slashing`]). All or nothing: a malformed document or one for another network
    /// changes nothing.
    pub fn import_interchange(&self, interchange: &Interchange) -> Result<ImportSummary> {
        let (entries, summary) = interchange.plan(&self.config.genesis_validators_root)?;
        let (ack, rx) = bounded(1);
        self.sender()?
            .send(Request::Import {
                entries,
                summary,
                ack,
            })
            .map_err(|_| StorageError::WriterStopped)?;
        rx.recv().map_err(|_| StorageError::WriterStopped)?
    }

    /// Deletes slashing-protection records older than `below` without weakening any
    /// refusal (see [`crate::slashing`]'s `prune`). One transaction over every validator: run
    /// it off the hot path, e.g. once per day with bounds a few thousand epochs back.
    pub fn prune_slashing(&self, below: PruneBelow) -> Result<PruneSummary> {
        let (ack, rx) = bounded(1);
        self.sender()?
            .send(Request::Prune { below, ack })
            .map_err(|_| StorageError::WriterStopped)?;
        rx.recv().map_err(|_| StorageError::WriterStopped)?
    }

    /// Bumps the slashing protection of validators the node is about to run (see
    /// [`crate::slashing`]'s `bump`): each one that did not attest here in the previous or
    /// current epoch gets a watermark of at least source `epoch - 1`, target `epoch`, and
    /// block slot `slot`. Returns how many were bumped. One transaction.
    pub fn bump_slashing_protection(
        &self,
        pubkeys: &[ValidatorPubkey],
        epoch: u64,
        slot: u64,
    ) -> Result<usize> {
        self.bump(pubkeys, epoch, slot, false)
    }

    /// Bumps validators added or reactivated while the node runs, as the Go node does at
    /// the contract event: as [`Store::bump_slashing_protection`], but also a validator that
    /// attested here in the previous or current epoch (it was stopped here since, and may
    /// have signed elsewhere) cannot attest again before the next epoch.
    pub fn bump_slashing_protection_forced(
        &self,
        pubkeys: &[ValidatorPubkey],
        epoch: u64,
        slot: u64,
    ) -> Result<usize> {
        self.bump(pubkeys, epoch, slot, true)
    }

    fn bump(
        &self,
        pubkeys: &[ValidatorPubkey],
        epoch: u64,
        slot: u64,
        force: bool,
    ) -> Result<usize> {
        let (ack, rx) = bounded(1);
        self.sender()?
            .send(Request::Bump {
                pubkeys: pubkeys.to_vec(),
                epoch,
                slot,
                force,
                ack,
            })
            .map_err(|_| StorageError::WriterStopped)?;
        rx.recv().map_err(|_| StorageError::WriterStopped)?
    }

    /// Exports slashing protection as an EIP-3076 document.
    pub fn export_interchange(&self, form: ExportForm) -> Result<Interchange> {
        let txn = self.read()?;
        let mut records: BTreeMap<ValidatorPubkey, InterchangeRecord> = BTreeMap::new();
        match form {
            ExportForm::Complete => {
                txn.scan::<SignedBlocks>(None, |key, block| {
                    let rec = record_for(&mut records, key.0);
                    rec.signed_blocks.push(InterchangeBlock {
                        slot: key.1.to_string(),
                        signing_root: block.signing_root.as_ref().map(|r| to_hex(r)),
                    });
                    Ok(ControlFlow::Continue(()))
                })?;
                txn.scan::<SignedAttestations>(None, |key, att| {
                    let rec = record_for(&mut records, key.0);
                    rec.signed_attestations.push(InterchangeAttestation {
                        source_epoch: att.source_epoch.to_native().to_string(),
                        target_epoch: key.1.to_string(),
                        signing_root: att.signing_root.as_ref().map(|r| to_hex(r)),
                    });
                    Ok(ControlFlow::Continue(()))
                })?;
            }
            ExportForm::Minified => {
                txn.scan::<SlashingSummaries>(None, |pk, s| {
                    let rec = record_for(&mut records, pk);
                    if let Some(slot) = s.max_slot.as_ref() {
                        rec.signed_blocks.push(InterchangeBlock {
                            slot: slot.to_native().to_string(),
                            signing_root: None,
                        });
                    }
                    if let (Some(src), Some(tgt)) = (s.max_source.as_ref(), s.max_target.as_ref()) {
                        rec.signed_attestations.push(InterchangeAttestation {
                            source_epoch: src.to_native().to_string(),
                            target_epoch: tgt.to_native().to_string(),
                            signing_root: None,
                        });
                    }
                    Ok(ControlFlow::Continue(()))
                })?;
            }
        }
        Ok(Interchange {
            metadata: InterchangeMetadata {
                interchange_format_version: INTERCHANGE_FORMAT_VERSION.to_string(),
                genesis_validators_root: to_hex(&self.config.genesis_validators_root),
            },
            data: records.into_values().collect(),
        })
    }

    /// Builds the in-memory committee map from one snapshot (start-up).
    pub fn load_committees(&self) -> Result<CommitteeMap> {
        CommitteeMap::load(&self.read()?)
    }

    /// The share of `pubkey`, deserialized (use [`Store::read`] for in-place access).
    pub fn share(&self, pubkey: &ValidatorPubkey) -> Result<Option<ShareRecord>> {
        self.read()?
            .get::<Shares>(pubkey)?
            .map(|v| v.to_owned())
            .transpose()
    }

    /// The encrypted share of our operator `operator` for `pubkey`, when one is stored apart
    /// from the share record (a node hosting several operator IDs of its committee).
    pub fn own_share(
        &self,
        pubkey: &ValidatorPubkey,
        operator: crate::records::OperatorId,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read()?
            .get::<crate::tables::OwnShares>(&crate::codec::PrefixedU64(*pubkey, operator))?
            .map(|v| v.to_owned())
            .transpose()?
            .map(|r| r.encrypted_share))
    }

    /// The fee recipient `owner` set (`FeeRecipientAddressUpdated`); `None` when it set none
    /// (the owner's address is then the recipient, as the Go node has it).
    pub fn fee_recipient(&self, owner: &Address) -> Result<Option<Address>> {
        Ok(self
            .read()?
            .get::<crate::tables::FeeRecipients>(owner)?
            .map(|v| v.to_owned())
            .transpose()?
            .map(|r| r.recipient))
    }

    /// The block of the last `ValidatorExited` event of `pubkey` (an exit request of its
    /// owner), if any.
    pub fn exit_requested(&self, pubkey: &ValidatorPubkey) -> Result<Option<u64>> {
        Ok(self
            .read()?
            .get::<crate::tables::ValidatorEvents>(pubkey)?
            .map(|v| v.to_owned())
            .transpose()?
            .and_then(|r| r.exit_requested_block))
    }

    /// The highest decided instance of `identifier`.
    pub fn highest_decided(&self, identifier: &QbftIdentifier) -> Result<Option<DecidedRecord>> {
        self.read()?
            .get::<Decided>(identifier)?
            .map(|v| v.to_owned())
            .transpose()
    }

    /// The contract-sync cursor (last processed block), if any block was processed.
    pub fn sync_cursor(&self) -> Result<Option<u64>> {
        Ok(self
            .read()?
            .get::<ContractSync>(&Singleton)?
            .map(|c| c.last_processed_block.to_native()))
    }
}

fn record_for(
    records: &mut BTreeMap<ValidatorPubkey, InterchangeRecord>,
    pk: ValidatorPubkey,
) -> &mut InterchangeRecord {
    records.entry(pk).or_insert_with(|| InterchangeRecord {
        pubkey: to_hex(&pk),
        signed_blocks: Vec::new(),
        signed_attestations: Vec::new(),
    })
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and exit.
        self.requests.take();
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("storage writer thread panicked");
        }
    }
}
