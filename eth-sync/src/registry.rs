//! The registry the contract events build: operators, validators and their shares, owner
//! nonces, liquidated clusters and fee recipients, plus the store interface that persists
//! it in batches of whole blocks.
//!
//! The handler turns one block's events into a list of [`RegistryChange`]s; the sync
//! gathers the lists of consecutive blocks into a [`BlockBatch`], and the store applies the
//! batch *and* moves the cursor to its last block in one transaction
//! ([`RegistryStore::apply_batch`]). A crash therefore leaves the store at the end of some
//! committed batch: on restart the sync resumes at `cursor + 1` against the registry as it
//! was at the cursor, so the blocks after it are handled again exactly as the first time
//! (the handler is a function of the registry and the events), never applied twice nor
//! skipped. [`RegistryState::apply`] is the one definition of what a change does; the
//! in-memory mirror of the sync and [`MemoryRegistryStore`] both use it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use alloy::primitives::{Address, B256};
use ssv_protocol::committee::CommitteeId;

use super::error::EthError;

/// A validator public key (compressed G1).
pub type ValidatorPubkey = [u8; 48];

/// Most malformed-event records kept, in memory and in the MDBX store alike (the same
/// bound as `ssv_storage::MALFORMED_EVENTS_MAX`, so both keep the same window). Too small:
/// only the count is left to inspect after a burst of bad events.
pub const MALFORMED_RECENT_MAX: usize = ssv_storage::MALFORMED_EVENTS_MAX;
/// Longest event name or reason kept with a malformed-event record; longer text is cut at a
/// character boundary (the same bound the MDBX table enforces).
pub const MALFORMED_TEXT_MAX: usize = ssv_storage::MALFORMED_TEXT_BYTES_MAX;

/// An operator as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    /// Operator ID.
    pub id: u64,
    /// Owner address.
    pub owner: Address,
    /// The public key as the contract publishes it once unpacked: base64 of the PEM text.
    pub public_key: Vec<u8>,
    /// Whether `OperatorRemoved` was seen (the Go node keeps removed operators too).
    pub removed: bool,
}

/// Our operator's share of a validator, as published (encrypted) in the event. The
/// decrypted key is not stored: it is decrypted again when a validator is (re)started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnShare {
    /// Our operator ID.
    pub operator_id: u64,
    /// Our share's public key.
    pub share_pubkey: [u8; 48],
    /// Our share, RSA-encrypted to our operator key.
    pub encrypted_share: Vec<u8>,
}

/// A validator registered with a committee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorRecord {
    /// Validator public key.
    pub pubkey: ValidatorPubkey,
    /// Owner (cluster owner).
    pub owner: Address,
    /// Operator IDs in event order (the order of `share_pubkeys`).
    pub operator_ids: Vec<u64>,
    /// Share public key of each operator.
    pub share_pubkeys: Vec<[u8; 48]>,
    /// Our share, when one of our operators is in the committee: the one of our lowest ID
    /// there (the share record's encrypted share).
    pub own_share: Option<OwnShare>,
    /// Our shares of our other operator IDs in the committee (a node hosting several),
    /// ascending by ID; empty when at most one of our IDs is in it.
    pub other_own_shares: Vec<OwnShare>,
    /// Block of the `ValidatorAdded` event.
    pub added_block: u64,
    /// Block of the last `ValidatorExited` event, if any.
    pub exit_requested_block: Option<u64>,
}

impl ValidatorRecord {
    /// The cluster this validator belongs to.
    pub fn cluster(&self) -> ClusterKey {
        ClusterKey::new(self.owner, &self.operator_ids)
    }

    /// Committee ID (sha256 of the sorted operator IDs) and its subnet.
    pub fn committee(&self) -> (CommitteeId, u64) {
        let id = CommitteeId::from_operators(&self.operator_ids);
        (id, id.subnet())
    }
}

/// A cluster: an owner and a set of operators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey {
    /// Cluster owner.
    pub owner: Address,
    /// Operator IDs, sorted ascending.
    pub operator_ids: Vec<u64>,
}

impl ClusterKey {
    /// The cluster of `owner` with these operators (any order).
    pub fn new(owner: Address, operator_ids: &[u64]) -> Self {
        let mut operator_ids = operator_ids.to_vec();
        operator_ids.sort_unstable();
        Self {
            owner,
            operator_ids,
        }
    }
}

/// A contract event recorded as malformed and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedEvent {
    /// Block number.
    pub block: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Transaction hash.
    pub tx_hash: B256,
    /// Event name.
    pub event: String,
    /// Why it was skipped.
    pub reason: String,
}

/// One change to the registry, as the store applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryChange {
    /// Insert an operator.
    PutOperator(OperatorRecord),
    /// Mark an operator removed.
    RemoveOperator {
        /// Operator ID.
        id: u64,
    },
    /// One of our operators' ID became known (an `OperatorAdded` with one of our public
    /// keys). The first one is [`RegistryState::own_operator`]; every one is in
    /// [`RegistryState::own_operators`].
    SetOwnOperator {
        /// Our operator ID.
        id: u64,
    },
    /// Set an owner's next `ValidatorAdded` nonce.
    SetNonce {
        /// Owner.
        owner: Address,
        /// Nonce the owner's next `ValidatorAdded` must be signed with.
        next: u64,
    },
    /// Insert a validator.
    PutValidator(Box<ValidatorRecord>),
    /// Remove a validator.
    RemoveValidator {
        /// Validator public key.
        pubkey: ValidatorPubkey,
    },
    /// Record that the owner asked for a voluntary exit.
    SetExitRequested {
        /// Validator public key.
        pubkey: ValidatorPubkey,
        /// Block of the `ValidatorExited` event.
        block: u64,
    },
    /// Mark a cluster liquidated (`true`) or active again (`false`).
    SetLiquidated {
        /// The cluster.
        cluster: ClusterKey,
        /// Liquidated or not.
        liquidated: bool,
    },
    /// Set an owner's fee recipient.
    SetFeeRecipient {
        /// Owner.
        owner: Address,
        /// Fee recipient.
        recipient: Address,
    },
    /// Record an event that was skipped as malformed.
    RecordMalformed(MalformedEvent),
}

/// The registry, in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryState {
    /// Our first operator ID whose `OperatorAdded` was seen.
    pub own_operator: Option<u64>,
    /// Every operator ID of ours seen (with `own_operator`; a node hosting several).
    pub own_operators: BTreeSet<u64>,
    /// Operators by ID.
    pub operators: BTreeMap<u64, OperatorRecord>,
    /// Validators by public key.
    pub validators: BTreeMap<ValidatorPubkey, ValidatorRecord>,
    /// Next `ValidatorAdded` nonce of each owner.
    pub nonces: HashMap<Address, u64>,
    /// Liquidated clusters.
    pub liquidated: BTreeSet<ClusterKey>,
    /// Fee recipient of each owner that set one.
    pub fee_recipients: HashMap<Address, Address>,
    /// The latest malformed-event records (at most [`MALFORMED_RECENT_MAX`]).
    pub malformed_recent: Vec<MalformedEvent>,
    /// Every malformed event ever recorded.
    pub malformed_total: u64,
    /// Operator ID by published public key (derived).
    operator_keys: HashMap<Vec<u8>, u64>,
    /// Validators of each cluster (derived).
    clusters: HashMap<ClusterKey, BTreeSet<ValidatorPubkey>>,
}

impl RegistryState {
    /// Applies one change. Changes are produced by the handler against this same state, so
    /// they always apply; the asserts guard that invariant in debug builds.
    pub fn apply(&mut self, change: &RegistryChange) {
        match change {
            RegistryChange::PutOperator(op) => {
                self.operator_keys.insert(op.public_key.clone(), op.id);
                self.operators.insert(op.id, op.clone());
            }
            RegistryChange::RemoveOperator { id } => {
                debug_assert!(self.operators.contains_key(id), "removing unknown operator");
                if let Some(op) = self.operators.get_mut(id) {
                    op.removed = true;
                }
            }
            RegistryChange::SetOwnOperator { id } => {
                self.own_operator.get_or_insert(*id);
                self.own_operators.insert(*id);
            }
            RegistryChange::SetNonce { owner, next } => {
                self.nonces.insert(*owner, *next);
            }
            RegistryChange::PutValidator(v) => {
                self.clusters
                    .entry(v.cluster())
                    .or_default()
                    .insert(v.pubkey);
                self.validators.insert(v.pubkey, (**v).clone());
            }
            RegistryChange::RemoveValidator { pubkey } => {
                if let Some(v) = self.validators.remove(pubkey) {
                    let key = v.cluster();
                    if let Some(set) = self.clusters.get_mut(&key) {
                        set.remove(pubkey);
                        if set.is_empty() {
                            self.clusters.remove(&key);
                        }
                    }
                }
            }
            RegistryChange::SetExitRequested { pubkey, block } => {
                if let Some(v) = self.validators.get_mut(pubkey) {
                    v.exit_requested_block = Some(*block);
                }
            }
            RegistryChange::SetLiquidated {
                cluster,
                liquidated,
            } => {
                if *liquidated {
                    self.liquidated.insert(cluster.clone());
                } else {
                    self.liquidated.remove(cluster);
                }
            }
            RegistryChange::SetFeeRecipient { owner, recipient } => {
                self.fee_recipients.insert(*owner, *recipient);
            }
            RegistryChange::RecordMalformed(m) => {
                self.malformed_total += 1;
                if self.malformed_recent.len() == MALFORMED_RECENT_MAX {
                    self.malformed_recent.remove(0);
                }
                self.malformed_recent.push(MalformedEvent {
                    event: bounded_text(&m.event),
                    reason: bounded_text(&m.reason),
                    ..m.clone()
                });
            }
        }
    }

    /// Rebuilds the derived indexes (after constructing a state field by field, e.g. when
    /// loading it from a store that keeps only the primary tables).
    pub fn rebuild_indexes(&mut self) {
        self.operator_keys = self
            .operators
            .values()
            .map(|o| (o.public_key.clone(), o.id))
            .collect();
        self.clusters.clear();
        for v in self.validators.values() {
            self.clusters
                .entry(v.cluster())
                .or_default()
                .insert(v.pubkey);
        }
    }

    /// The operator that registered this public key, if any.
    pub fn operator_by_key(&self, public_key: &[u8]) -> Option<u64> {
        self.operator_keys.get(public_key).copied()
    }

    /// The owner's next `ValidatorAdded` nonce.
    pub fn nonce(&self, owner: &Address) -> u64 {
        self.nonces.get(owner).copied().unwrap_or(0)
    }

    /// Validators of a cluster.
    pub fn cluster_validators(
        &self,
        cluster: &ClusterKey,
    ) -> impl Iterator<Item = &ValidatorRecord> {
        self.clusters
            .get(cluster)
            .into_iter()
            .flatten()
            .filter_map(|pk| self.validators.get(pk))
    }

    /// Whether the validator's cluster is liquidated.
    pub fn is_liquidated(&self, v: &ValidatorRecord) -> bool {
        self.liquidated.contains(&v.cluster())
    }

    /// Our validators whose duties run: our share is present and the cluster is not
    /// liquidated.
    pub fn own_active_validators(&self) -> impl Iterator<Item = &ValidatorRecord> {
        self.validators
            .values()
            .filter(|v| v.own_share.is_some() && !self.is_liquidated(v))
    }

    /// Number of our active validators on a subnet.
    pub fn own_active_on_subnet(&self, subnet: u64) -> usize {
        self.own_active_validators()
            .filter(|v| v.committee().1 == subnet)
            .count()
    }
}

/// `text` cut to at most [`MALFORMED_TEXT_MAX`] bytes, at a character boundary.
fn bounded_text(text: &str) -> String {
    if text.len() <= MALFORMED_TEXT_MAX {
        return text.to_owned();
    }
    let mut end = MALFORMED_TEXT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// What a store holds: the cursor and the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRegistry {
    /// Last block whose events are all applied (`None`: nothing synced yet).
    pub cursor: Option<u64>,
    /// The registry at the cursor.
    pub state: RegistryState,
}

/// The registry changes of consecutive blocks, committed in one transaction with the cursor
/// at the last block ([`RegistryStore::apply_batch`]).
///
/// Blocks are pushed in increasing order (a block without changes only moves the cursor: the
/// end of a range of blocks without events). The changes of all blocks are kept in one list,
/// in block order and, within a block, in the handler's order: applying that list in order is
/// applying the blocks one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockBatch {
    /// Each block's number and the end of its changes in `changes`.
    blocks: Vec<(u64, usize)>,
    changes: Vec<RegistryChange>,
}

impl BlockBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch of one block.
    pub fn single(block: u64, changes: Vec<RegistryChange>) -> Self {
        let mut batch = Self::new();
        batch.push(block, changes);
        batch
    }

    /// Appends `block` and its changes (moved out of `changes`).
    ///
    /// # Panics
    ///
    /// When `block` is not above the batch's last block: the sync handles blocks in order,
    /// and a block at or below the last one would be applied out of order, or twice.
    pub fn push(&mut self, block: u64, mut changes: Vec<RegistryChange>) {
        assert!(
            self.last_block().is_none_or(|last| block > last),
            "blocks join a batch in increasing order"
        );
        self.changes.append(&mut changes);
        self.blocks.push((block, self.changes.len()));
    }

    /// The first block (`None`: empty batch).
    pub fn first_block(&self) -> Option<u64> {
        self.blocks.first().map(|(b, _)| *b)
    }

    /// The last block: the cursor once the batch is committed (`None`: empty batch).
    pub fn last_block(&self) -> Option<u64> {
        self.blocks.last().map(|(b, _)| *b)
    }

    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the batch holds no block.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The changes of every block, in order.
    pub fn changes(&self) -> &[RegistryChange] {
        &self.changes
    }

    /// Each block with its changes, in order.
    pub fn blocks(&self) -> impl Iterator<Item = (u64, &[RegistryChange])> {
        let mut start = 0;
        self.blocks.iter().map(move |&(block, end)| {
            let changes = &self.changes[start..end];
            start = end;
            (block, changes)
        })
    }
}

/// Persistence of the registry, one batch of whole blocks per transaction.
///
/// Implementations must make [`apply_batch`](Self::apply_batch) atomic: either all of the
/// batch's changes and the new cursor are stored, or none. They must refuse a batch whose
/// first block is at or below the stored cursor with [`EthError::CursorRegression`].
pub trait RegistryStore: Send + Sync {
    /// Loads the cursor and the registry (at start-up, and after a failed commit).
    fn load(&self) -> Result<StoredRegistry, EthError>;

    /// Applies the changes of every block of `batch`, in order, and sets the cursor to its
    /// last block, atomically: one transaction. An empty batch stores nothing.
    fn apply_batch(&self, batch: &BlockBatch) -> Result<(), EthError>;

    /// Applies one block's changes and sets the cursor to `block`, atomically: a batch of
    /// one block. An empty `changes` only moves the cursor (a range of blocks without
    /// events).
    fn apply_block(&self, block: u64, changes: &[RegistryChange]) -> Result<(), EthError> {
        self.apply_batch(&BlockBatch::single(block, changes.to_vec()))
    }
}

/// A [`RegistryStore`] in memory: a mutex around a [`StoredRegistry`]. Each `apply_batch`
/// holds the lock for the whole batch, so readers see batch boundaries only. It keeps
/// nothing across process restarts; it serves the tests and a node run without a database
/// ([`crate::MdbxRegistryStore`] over `ssv-storage` is the persistent one).
#[derive(Debug, Default)]
pub struct MemoryRegistryStore {
    inner: Mutex<StoredRegistry>,
    commits: std::sync::atomic::AtomicU64,
}

impl MemoryRegistryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of successful commits (`apply_batch` calls that stored a batch; an
    /// `apply_block` is one).
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A copy of what is stored.
    pub fn snapshot(&self) -> StoredRegistry {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoredRegistry> {
        // A panic while holding the lock cannot leave a half-applied batch: `apply` is
        // infallible and the cursor is set after it, so the data is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RegistryStore for MemoryRegistryStore {
    fn load(&self) -> Result<StoredRegistry, EthError> {
        Ok(self.snapshot())
    }

    fn apply_batch(&self, batch: &BlockBatch) -> Result<(), EthError> {
        let (Some(first), Some(last)) = (batch.first_block(), batch.last_block()) else {
            return Ok(());
        };
        let mut inner = self.lock();
        if let Some(cursor) = inner.cursor
            && first <= cursor
        {
            return Err(EthError::CursorRegression {
                block: first,
                cursor,
            });
        }
        for change in batch.changes() {
            inner.state.apply(change);
        }
        inner.cursor = Some(last);
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(owner: Address, ids: &[u64], byte: u8, own: bool) -> ValidatorRecord {
        ValidatorRecord {
            pubkey: [byte; 48],
            owner,
            operator_ids: ids.to_vec(),
            share_pubkeys: vec![[0; 48]; ids.len()],
            own_share: own.then(|| OwnShare {
                operator_id: ids[0],
                share_pubkey: [1; 48],
                encrypted_share: vec![2; 256],
            }),
            other_own_shares: Vec::new(),
            added_block: 1,
            exit_requested_block: None,
        }
    }

    #[test]
    fn cursor_never_goes_back_and_blocks_apply_whole() {
        let store = MemoryRegistryStore::new();
        let owner = Address::repeat_byte(1);
        store
            .apply_block(
                10,
                &[
                    RegistryChange::SetNonce { owner, next: 1 },
                    RegistryChange::SetFeeRecipient {
                        owner,
                        recipient: Address::repeat_byte(2),
                    },
                ],
            )
            .expect("first block");
        assert!(matches!(
            store.apply_block(10, &[RegistryChange::SetNonce { owner, next: 2 }]),
            Err(EthError::CursorRegression {
                block: 10,
                cursor: 10
            })
        ));
        let s = store.load().expect("load");
        assert_eq!(s.cursor, Some(10));
        assert_eq!(s.state.nonce(&owner), 1);
        store.apply_block(12, &[]).expect("cursor only");
        assert_eq!(store.load().expect("load").cursor, Some(12));
        assert_eq!(store.commits(), 2);
    }

    #[test]
    fn a_batch_is_its_blocks_in_order_in_one_commit() {
        let owner = Address::repeat_byte(1);
        let nonce = |next| RegistryChange::SetNonce { owner, next };
        let mut batch = BlockBatch::new();
        assert!(batch.is_empty());
        batch.push(5, vec![nonce(1), nonce(2)]);
        batch.push(6, vec![]);
        batch.push(9, vec![nonce(3)]);
        assert_eq!(
            (batch.first_block(), batch.last_block()),
            (Some(5), Some(9))
        );
        assert_eq!(batch.block_count(), 3);
        let blocks: Vec<(u64, usize)> = batch.blocks().map(|(b, c)| (b, c.len())).collect();
        assert_eq!(blocks, vec![(5, 2), (6, 0), (9, 1)]);

        let batched = MemoryRegistryStore::new();
        let per_block = MemoryRegistryStore::new();
        batched.apply_batch(&batch).expect("batch");
        for (block, changes) in batch.blocks() {
            per_block.apply_block(block, changes).expect("block");
        }
        assert_eq!(batched.snapshot(), per_block.snapshot());
        assert_eq!(batched.snapshot().cursor, Some(9));
        assert_eq!((batched.commits(), per_block.commits()), (1, 3));

        // A batch starting at or below the cursor is refused whole, even if it ends after it.
        let mut overlapping = BlockBatch::single(9, vec![nonce(7)]);
        overlapping.push(10, vec![nonce(8)]);
        assert!(matches!(
            batched.apply_batch(&overlapping),
            Err(EthError::CursorRegression {
                block: 9,
                cursor: 9
            })
        ));
        assert_eq!(batched.snapshot(), per_block.snapshot());
        // An empty batch is not a commit.
        batched.apply_batch(&BlockBatch::new()).expect("empty");
        assert_eq!(batched.commits(), 1);
    }

    #[test]
    #[should_panic(expected = "increasing order")]
    fn a_batch_refuses_blocks_out_of_order() {
        let mut batch = BlockBatch::single(5, vec![]);
        batch.push(5, vec![]);
    }

    #[test]
    fn cluster_index_follows_changes_and_liquidation_hides_own_validators() {
        let mut s = RegistryState::default();
        let owner = Address::repeat_byte(1);
        let a = validator(owner, &[4, 3, 2, 1], 1, true);
        let b = validator(owner, &[1, 2, 3, 4], 2, false);
        s.apply(&RegistryChange::PutValidator(Box::new(a.clone())));
        s.apply(&RegistryChange::PutValidator(Box::new(b)));
        let key = ClusterKey::new(owner, &[1, 2, 3, 4]);
        assert_eq!(s.cluster_validators(&key).count(), 2);
        assert_eq!(s.own_active_validators().count(), 1);
        let subnet = a.committee().1;
        assert_eq!(s.own_active_on_subnet(subnet), 1);
        s.apply(&RegistryChange::SetLiquidated {
            cluster: key.clone(),
            liquidated: true,
        });
        assert_eq!(s.own_active_validators().count(), 0);
        s.apply(&RegistryChange::RemoveValidator { pubkey: a.pubkey });
        assert_eq!(s.cluster_validators(&key).count(), 1);
        let mut rebuilt = s.clone();
        rebuilt.rebuild_indexes();
        assert_eq!(rebuilt, s);
    }

    #[test]
    fn malformed_records_are_bounded() {
        let mut s = RegistryState::default();
        for i in 0..(MALFORMED_RECENT_MAX as u64 + 5) {
            s.apply(&RegistryChange::RecordMalformed(MalformedEvent {
                block: i,
                log_index: 0,
                tx_hash: B256::ZERO,
                event: "ValidatorAdded".into(),
                reason: "test".into(),
            }));
        }
        assert_eq!(s.malformed_total, MALFORMED_RECENT_MAX as u64 + 5);
        assert_eq!(s.malformed_recent.len(), MALFORMED_RECENT_MAX);
        assert_eq!(s.malformed_recent[0].block, 5);
    }
}
