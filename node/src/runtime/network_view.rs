//! What gossip validation knows of the network (`ssv_protocol::validation::NetworkView`):
//! every committee and validator of the registry (not only ours: messages of other
//! committees on our subnets are validated as fully as our own before they are relayed),
//! the beacon duties the scheduler fetched, and the operators' RSA keys.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use ssv_crypto_pipeline::OperatorKeyCache;
use ssv_protocol::committee::CommitteeId as WireCommitteeId;
use ssv_protocol::message::RsaSignature;
use ssv_protocol::types::{OperatorId, Slot};
use ssv_protocol::validation::{CommitteeView, NetworkView, ValidatorView};
use ssv_storage::CommitteeMap;

use super::registry::CommitteeInfo;

/// Every committee and validator of the registry, by wire committee ID and public key.
#[derive(Debug, Default)]
pub struct NetworkIndex {
    committees: HashMap<[u8; 32], CommitteeView>,
    /// Committee ID, beacon index, liquidated.
    validators: HashMap<[u8; 48], ([u8; 32], u64, bool)>,
}

impl NetworkIndex {
    /// The index of every committee in `map` (validators without a beacon index are left
    /// out: their messages are ignored as of an unknown validator until contract sync and
    /// the beacon node give them one).
    pub fn from_map(map: &CommitteeMap) -> Self {
        let mut index = NetworkIndex::default();
        for entry in map.committees.values() {
            let id = WireCommitteeId::from_operators(&entry.operator_ids).0;
            let mut indices = Vec::new();
            for v in &entry.validators {
                let Some(i) = v.index else { continue };
                if !v.liquidated {
                    indices.push(i);
                }
                index.validators.insert(v.pubkey, (id, i, v.liquidated));
            }
            index.committees.insert(
                id,
                CommitteeView {
                    id,
                    operators: entry.operator_ids.clone(),
                    validator_indices: Arc::from(indices),
                },
            );
        }
        index
    }

    /// The index of our own committees only (harnesses that have no store).
    pub fn of_committees(committees: &[Arc<CommitteeInfo>]) -> Self {
        let mut index = NetworkIndex::default();
        for c in committees {
            let id = WireCommitteeId::from_operators(&c.operators).0;
            let mut indices: Vec<u64> = c.validators.keys().copied().collect();
            indices.sort_unstable();
            for (i, share) in &c.validators {
                index.validators.insert(share.pubkey, (id, *i, false));
            }
            index.committees.insert(
                id,
                CommitteeView {
                    id,
                    operators: c.operators.clone(),
                    validator_indices: Arc::from(indices),
                },
            );
        }
        index
    }

    /// Adds a committee of `operators` (ascending) running `validators` (public key, beacon
    /// index).
    pub fn insert_committee(&mut self, operators: Vec<OperatorId>, validators: &[([u8; 48], u64)]) {
        let id = WireCommitteeId::from_operators(&operators).0;
        for (pubkey, index) in validators {
            self.validators.insert(*pubkey, (id, *index, false));
        }
        let indices: Vec<u64> = validators.iter().map(|(_, i)| *i).collect();
        self.committees.insert(
            id,
            CommitteeView {
                id,
                operators,
                validator_indices: Arc::from(indices),
            },
        );
    }

    /// Committees indexed.
    pub fn committee_count(&self) -> usize {
        self.committees.len()
    }

    /// Validators indexed.
    pub fn validator_count(&self) -> usize {
        self.validators.len()
    }

    /// Every validator's beacon index (the sync-committee duties to fetch).
    pub fn validator_indices(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.validators.values().map(|(_, i, _)| *i).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Beacon duties that validation checks messages against, written by the scheduler.
#[derive(Debug, Default)]
pub struct DutyStore {
    /// Proposers of each fetched epoch: (slot, validator index).
    proposers: RwLock<HashMap<u64, HashSet<(Slot, u64)>>>,
    /// Sync-committee members of each fetched period.
    sync: RwLock<HashMap<u64, HashSet<u64>>>,
    /// The registry version each period's members were fetched for.
    sync_fetched_for: RwLock<HashMap<u64, u64>>,
    /// Voluntary-exit duties by epoch and validator.
    exits: RwLock<HashMap<(u64, [u8; 48]), u64>>,
}

/// Epochs (and sync periods) of duties kept.
const DUTIES_KEPT: u64 = 4;

impl DutyStore {
    /// The proposers of `epoch` (every one, not only ours).
    pub fn set_proposers(&self, epoch: u64, proposers: impl IntoIterator<Item = (Slot, u64)>) {
        let mut p = self.proposers.write();
        p.insert(epoch, proposers.into_iter().collect());
        p.retain(|e, _| *e + DUTIES_KEPT > epoch);
    }

    /// The sync-committee members of `period`.
    pub fn set_sync_members(&self, period: u64, members: impl IntoIterator<Item = u64>) {
        let mut s = self.sync.write();
        s.insert(period, members.into_iter().collect());
        s.retain(|p, _| *p + DUTIES_KEPT > period);
    }

    /// Whether the members of `period` were fetched.
    pub fn sync_period_known(&self, period: u64) -> bool {
        self.sync.read().contains_key(&period)
    }

    /// Whether the members of `period` were fetched for registry version `version` (a
    /// registry that gained validators needs its members fetched again: a member missing
    /// here makes validation ignore its contributions and cap its committee's duties).
    pub fn sync_period_fetched_for(&self, period: u64, version: u64) -> bool {
        self.sync_fetched_for.read().get(&period) == Some(&version)
            && self.sync_period_known(period)
    }

    /// Notes that the members of `period` were fetched for registry version `version`.
    pub fn sync_period_fetched(&self, period: u64, version: u64) {
        let mut f = self.sync_fetched_for.write();
        f.insert(period, version);
        f.retain(|p, _| *p + DUTIES_KEPT > period);
    }

    /// One voluntary-exit duty of `pubkey` in `epoch`.
    pub fn add_exit(&self, epoch: u64, pubkey: [u8; 48]) {
        let mut x = self.exits.write();
        *x.entry((epoch, pubkey)).or_default() += 1;
        x.retain(|(e, _), _| *e + DUTIES_KEPT > epoch);
    }
}

/// The node's [`NetworkView`]: the registry's index, the duties, the operators' keys.
pub struct NodeView<'a> {
    /// Committees and validators.
    pub index: &'a NetworkIndex,
    /// Beacon duties.
    pub duties: &'a DutyStore,
    /// Operators' RSA keys.
    pub keys: &'a OperatorKeyCache,
    /// Slots per epoch (exit duties are counted per epoch).
    pub slots_per_epoch: u64,
}

impl NetworkView for NodeView<'_> {
    fn operator_exists(&self, id: OperatorId) -> bool {
        self.keys.get(id).is_some()
    }

    fn committee(&self, id: &[u8; 32]) -> Option<CommitteeView> {
        self.index.committees.get(id).cloned()
    }

    fn validator(&self, pubkey: &[u8; 48], _epoch: u64) -> Option<ValidatorView> {
        let (committee, index, liquidated) = *self.index.validators.get(pubkey)?;
        Some(ValidatorView {
            committee: self.index.committees.get(&committee)?.clone(),
            index,
            liquidated,
            // The registry holds no beacon status beyond the index: a validator with an index
            // is taken as active.
            attesting: true,
        })
    }

    fn proposer_duty(&self, epoch: u64, slot: Slot, validator: u64) -> Option<bool> {
        self.duties
            .proposers
            .read()
            .get(&epoch)
            .map(|p| p.contains(&(slot, validator)))
    }

    fn sync_committee_duty(&self, period: u64, validator: u64) -> bool {
        self.duties
            .sync
            .read()
            .get(&period)
            .is_some_and(|s| s.contains(&validator))
    }

    fn voluntary_exit_duties(&self, slot: Slot, pubkey: &[u8; 48]) -> u64 {
        let epoch = slot / self.slots_per_epoch.max(1);
        self.duties
            .exits
            .read()
            .get(&(epoch, *pubkey))
            .copied()
            .unwrap_or(0)
    }

    fn verify_signature(
        &self,
        operator: OperatorId,
        encoded: &[u8],
        signature: &RsaSignature,
    ) -> bool {
        self.keys.verify(operator, encoded, signature).is_ok()
    }
}
