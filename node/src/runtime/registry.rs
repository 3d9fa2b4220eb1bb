//! What the node runs, built once at start-up from storage: our operator, every operator's
//! RSA key, our committees and, for each of their validators, our decrypted share.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use anyhow::{Context, bail};
use rayon::prelude::*;
use ssv_crypto_pipeline::{OperatorKeyCache, OperatorSecretKey, PublicKey, SecretKey};
use ssv_protocol::committee::CommitteeId as WireCommitteeId;
use ssv_protocol::types::{CommitteeMember, CommitteeOperator, DomainType, OperatorId};
use ssv_storage::tables::Operators;
use ssv_storage::{CommitteeMap, Store};

use super::shard::OurOperators;

use ssv_crypto_pipeline::share::decrypt_share;

pub use super::network_view::NetworkIndex;

/// Most validators one node runs (bounds start-up work and memory; far above what one host
/// carries).
pub const VALIDATORS_MAX: usize = 1_000_000;

/// Why a validator of ours is not run yet: contract sync knows it, the beacon node does not
/// (its deposit is not processed yet); tried again every slot.
pub const NO_INDEX_YET: &str = "no beacon index yet";

/// One validator of one of our committees.
#[derive(Debug)]
pub struct ValidatorShare {
    /// Beacon index.
    pub index: u64,
    /// Public key bytes.
    pub pubkey: [u8; 48],
    /// The validator's public key (what the beacon node verifies).
    pub public_key: PublicKey,
    /// Our share of the validator key.
    pub secret_share: SecretKey,
    /// Every member's share public key, by operator.
    pub share_pubkeys: BTreeMap<OperatorId, PublicKey>,
    /// Where its execution rewards go: its owner's fee recipient, or the owner's address
    /// when it set none (builder registrations, `prepare_beacon_proposer`).
    pub fee_recipient: [u8; 20],
    /// Block of its owner's exit request (`ValidatorExited`), if any.
    pub exit_requested: Option<u64>,
    /// Its owner (the account that registered it).
    pub owner: [u8; 20],
    /// Every member's share public key as stored, in committee order (a refresh reuses the
    /// decrypted share only while these are unchanged).
    pub share_pubkey_bytes: Vec<[u8; 48]>,
}

/// Validators that contract sync reported removed or liquidated while the node runs: never
/// signed for from the moment the event arrives, before the registry itself is rebuilt
/// without them. A validator added back on-chain is started again by the live registry
/// ([`super::live::RegistryUpdater`]) only after its slashing protection was bumped (it may
/// have signed elsewhere meanwhile).
#[derive(Debug, Default)]
pub struct StoppedValidators {
    stopped: parking_lot::RwLock<std::collections::HashSet<[u8; 48]>>,
}

impl StoppedValidators {
    /// Stops `pubkey`; `true` if it was not stopped yet.
    pub fn stop(&self, pubkey: [u8; 48]) -> bool {
        self.stopped.write().insert(pubkey)
    }

    /// Lets `pubkey` be signed for again (it is back in the registry and its slashing
    /// protection was bumped); `true` if it was stopped.
    pub fn restart(&self, pubkey: &[u8; 48]) -> bool {
        self.stopped.write().remove(pubkey)
    }

    /// Whether `pubkey` must not be signed for.
    pub fn is_stopped(&self, pubkey: &[u8; 48]) -> bool {
        self.stopped.read().contains(pubkey)
    }

    /// Validators stopped.
    pub fn len(&self) -> usize {
        self.stopped.read().len()
    }

    /// Whether none is stopped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The registry the data plane runs now: replaced as a whole when contract sync or the
/// beacon node changes it (readers take a snapshot; a committee keeps its index in
/// [`Registry::committees`] for the life of the process).
#[derive(Debug)]
pub struct LiveRegistry {
    current: parking_lot::RwLock<Arc<Registry>>,
    version: tokio::sync::watch::Sender<u64>,
}

impl LiveRegistry {
    /// Starts with `registry` (version 0).
    pub fn new(registry: Arc<Registry>) -> Self {
        LiveRegistry {
            current: parking_lot::RwLock::new(registry),
            version: tokio::sync::watch::channel(0).0,
        }
    }

    /// The registry now.
    pub fn current(&self) -> Arc<Registry> {
        self.current.read().clone()
    }

    /// Replaces the registry and tells the subscribers.
    pub fn publish(&self, registry: Arc<Registry>) {
        *self.current.write() = registry;
        self.version.send_modify(|v| *v += 1);
    }

    /// Changes of the registry (the version number).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }
}

/// One of our committees.
#[derive(Debug)]
pub struct CommitteeInfo {
    /// Committee ID.
    pub id: [u8; 32],
    /// Members, ascending.
    pub operators: Vec<OperatorId>,
    /// Its gossip subnet.
    pub subnet: u64,
    /// Our view of it, for QBFT and the runner.
    pub member: CommitteeMember,
    /// Its validators (with a known beacon index) by index.
    pub validators: HashMap<u64, Arc<ValidatorShare>>,
}

/// Everything the data plane needs to know about who we are and whom we run.
pub struct Registry {
    /// Our (lowest) operator ID; a node hosting several has one committee entry per
    /// operator of ours in each committee ([`CommitteeInfo::member`] says which).
    pub operator_id: OperatorId,
    /// Every known operator's RSA public key (parsed once).
    pub operator_keys: Arc<OperatorKeyCache>,
    /// Our committees.
    pub committees: Vec<Arc<CommitteeInfo>>,
    /// Committee of each validator index.
    pub committee_of: HashMap<u64, usize>,
    /// Validators skipped at load (no beacon index yet, undecryptable share, ...), with why.
    pub skipped: Vec<String>,
    /// Every committee and validator of the registry (gossip validation).
    pub network: Arc<NetworkIndex>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("operator_id", &self.operator_id)
            .field("committees", &self.committees.len())
            .field("validators", &self.committee_of.len())
            .finish_non_exhaustive()
    }
}

/// The operator IDs of our keys: each `(id, key)` of `keys` with its ID as configured (checked
/// against the registry when the key is registered) or found by public key in `store`. Two
/// entries with the same key, or resolving to the same ID, are refused.
pub fn resolve_operators(
    store: &Store,
    keys: &[(Option<OperatorId>, Arc<OperatorSecretKey>)],
) -> anyhow::Result<OurOperators> {
    let txn = store.read().context("opening a read snapshot")?;
    let mut by_pem: HashMap<Vec<u8>, OperatorId> = HashMap::new();
    txn.scan::<Operators>(None, |id, op| {
        by_pem.insert(op.get().public_key.as_slice().to_vec(), id);
        Ok(ControlFlow::Continue(()))
    })
    .context("reading operators")?;
    drop(txn);
    let several = keys.len() > 1;
    let mut pems = HashSet::new();
    let mut resolved = Vec::with_capacity(keys.len());
    for (i, (configured, key)) in keys.iter().enumerate() {
        let pem = key.public_key().to_base64_pem();
        let which = if several {
            format!("operators[{i}]")
        } else {
            "operator".to_string()
        };
        if !pems.insert(pem.clone()) {
            bail!("{which}: the same operator key is configured twice");
        }
        let id = match (*configured, by_pem.get(pem.as_bytes()).copied()) {
            (Some(id), Some(found)) if id != found => bail!(
                "{which}: configured operator id {id} but its public key is registered as \
                 operator {found}"
            ),
            (Some(id), _) => id,
            (None, Some(found)) => found,
            (None, None) => bail!(
                "{which}: the operator public key is not registered (no operator in storage \
                 has it); set {which}.id or wait for contract sync"
            ),
        };
        resolved.push((id, key.clone()));
    }
    OurOperators::new(resolved)
}

impl Registry {
    /// Loads operators, our committees and shares from `store`: every committee holding one
    /// of `ours` gets one entry per operator of ours in it, with that operator's shares
    /// (decrypted with its key).
    pub fn load(store: &Store, ours: &OurOperators, domain: DomainType) -> anyhow::Result<Self> {
        Self::build(store, ours, domain, None, &HashSet::new())
    }

    /// The registry as `store` holds it now, built on `self`, without the validators in
    /// `done` (exited or withdrawn on the beacon chain): every committee keeps its index (one
    /// that lost all its validators stays, empty; a new one is appended), and a share whose
    /// stored record is unchanged is not decrypted again.
    pub fn refresh(
        &self,
        store: &Store,
        ours: &OurOperators,
        domain: DomainType,
        done: &HashSet<[u8; 48]>,
    ) -> anyhow::Result<Self> {
        Self::build(store, ours, domain, Some(self), done)
    }

    fn build(
        store: &Store,
        ours: &OurOperators,
        domain: DomainType,
        prev: Option<&Registry>,
        done: &HashSet<[u8; 48]>,
    ) -> anyhow::Result<Self> {
        let Some(operator_id) = ours.ids().next() else {
            bail!("no operator of ours");
        };
        let our_pems: HashMap<OperatorId, String> = ours
            .ids()
            .filter_map(|id| Some((id, ours.get(id)?.public_key().to_base64_pem())))
            .collect();
        let txn = store.read().context("opening a read snapshot")?;
        let operator_keys = Arc::new(OperatorKeyCache::new());
        let mut pems: HashMap<OperatorId, Vec<u8>> = HashMap::new();
        txn.scan::<Operators>(None, |id, op| {
            pems.insert(id, op.get().public_key.as_slice().to_vec());
            Ok(ControlFlow::Continue(()))
        })
        .context("reading operators")?;
        for (id, pem) in &pems {
            let text = String::from_utf8_lossy(pem);
            if let Err(e) = operator_keys.get_or_parse(*id, text.trim()) {
                tracing::warn!(operator = id, "operator public key unusable: {e}");
            }
        }
        let map = CommitteeMap::load(&txn).context("loading committees")?;
        drop(txn);
        let network = Arc::new(NetworkIndex::from_map(&map));
        // Committee slots (one per committee and operator of ours in it): the previous
        // registry's first, in their order.
        let mut committees: Vec<Option<Arc<CommitteeInfo>>> = Vec::new();
        let mut slot_of: HashMap<([u8; 32], OperatorId), usize> = HashMap::new();
        if let Some(prev) = prev {
            for (i, c) in prev.committees.iter().enumerate() {
                slot_of.insert((c.id, c.member.operator_id), i);
                committees.push(None);
            }
        }
        let mut committee_of = HashMap::new();
        let mut skipped = Vec::new();
        let mut total = 0usize;
        let mut ids: Vec<_> = map.committees.keys().copied().collect();
        ids.sort_unstable();
        let runs: Vec<([u8; 32], usize, OperatorId)> = ids
            .iter()
            .flat_map(|cid| {
                map.committees[cid]
                    .operator_ids
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| ours.get(**o).is_some())
                    .map(|(pos, o)| (*cid, pos, *o))
            })
            .collect();
        // A validator is counted once however many of our operators run it.
        let mut counted: HashSet<[u8; 48]> = HashSet::new();
        for (cid, pos, our_id) in runs {
            let entry = &map.committees[&cid];
            let Some(key) = ours.get(our_id) else {
                continue;
            };
            let our_pem = &our_pems[&our_id];
            let committee_ops: Vec<CommitteeOperator> = entry
                .operator_ids
                .iter()
                .map(|o| CommitteeOperator {
                    operator_id: *o,
                    rsa_public_key_pem: pems.get(o).cloned().unwrap_or_default(),
                })
                .collect();
            let wire_id = WireCommitteeId::from_operators(&entry.operator_ids);
            let member = CommitteeMember {
                operator_id: our_id,
                committee_id: wire_id,
                rsa_public_key_pem: our_pem.as_bytes().to_vec(),
                faulty_nodes: (entry.operator_ids.len() as u64).saturating_sub(1) / 3,
                committee: committee_ops,
                domain,
            };
            let mut wanted = Vec::new();
            for v in &entry.validators {
                if v.liquidated || done.contains(&v.pubkey) {
                    continue;
                }
                let Some(index) = v.index else {
                    if counted.insert(v.pubkey) {
                        skipped.push(format!("0x{}: {NO_INDEX_YET}", hex::encode(v.pubkey)));
                    }
                    continue;
                };
                if counted.insert(v.pubkey) {
                    total += 1;
                    if total > VALIDATORS_MAX {
                        bail!("more than {VALIDATORS_MAX} validators");
                    }
                }
                wanted.push((v.pubkey, index));
            }
            let before = prev
                .and_then(|p| slot_of.get(&(cid, our_id)).map(|&i| &p.committees[i]))
                .map(|c| &c.validators);
            // RSA decryption costs about 1.7 ms a share: spread it over every core, and only
            // for shares that are new or changed.
            let loaded: Vec<(u64, anyhow::Result<Arc<ValidatorShare>>)> = wanted
                .par_iter()
                .map(|(pubkey, index)| {
                    let old = before
                        .and_then(|v| v.get(index))
                        .filter(|s| s.pubkey == *pubkey);
                    (
                        *index,
                        load_share(store, key, our_id, pubkey, *index, pos, old),
                    )
                })
                .collect();
            let mut validators = HashMap::new();
            for ((pubkey, _), (index, r)) in wanted.iter().zip(loaded) {
                match r {
                    Ok(share) => {
                        validators.insert(index, share);
                    }
                    Err(e) => skipped.push(format!(
                        "0x{} (as operator {our_id}): {e:#}",
                        hex::encode(pubkey)
                    )),
                }
            }
            let idx = match slot_of.get(&(cid, our_id)) {
                Some(&i) => i,
                None if validators.is_empty() => continue,
                None => {
                    committees.push(None);
                    slot_of.insert((cid, our_id), committees.len() - 1);
                    committees.len() - 1
                }
            };
            // The validator's entry for duties: its committee as our lowest operator in it
            // (runs come in ascending operator order); the scheduler hands committee duties
            // to every entry of the same committee.
            for index in validators.keys() {
                committee_of.entry(*index).or_insert(idx);
            }
            committees[idx] = Some(Arc::new(CommitteeInfo {
                id: cid,
                operators: entry.operator_ids.clone(),
                subnet: wire_id.subnet(),
                member,
                validators,
            }));
        }
        // A committee of the previous registry that is gone keeps its slot, empty.
        let committees = committees
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                c.unwrap_or_else(|| {
                    let old = &prev
                        .expect("only previous committees can be missing")
                        .committees[i];
                    Arc::new(CommitteeInfo {
                        id: old.id,
                        operators: old.operators.clone(),
                        subnet: old.subnet,
                        member: old.member.clone(),
                        validators: HashMap::new(),
                    })
                })
            })
            .collect();
        Ok(Registry {
            operator_id,
            operator_keys,
            committees,
            committee_of,
            skipped,
            network,
        })
    }

    /// Number of validators we run.
    pub fn validator_count(&self) -> usize {
        self.committee_of.len()
    }

    /// The share of validator `index`, if we run it.
    pub fn share(&self, index: u64) -> Option<&Arc<ValidatorShare>> {
        self.committees
            .get(*self.committee_of.get(&index)?)?
            .validators
            .get(&index)
    }

    /// Every validator we run, once (as the operator of ours its duties go to, when several
    /// of ours are in its committee).
    pub fn shares(&self) -> impl Iterator<Item = &Arc<ValidatorShare>> {
        self.committee_of
            .iter()
            .filter_map(|(index, &c)| self.committees.get(c)?.validators.get(index))
    }

    /// The entries of committee entry `committee`'s committee: one per operator of ours in it.
    pub fn runs_of(&self, committee: usize) -> Vec<usize> {
        let Some(c) = self.committees.get(committee) else {
            return Vec::new();
        };
        self.committees
            .iter()
            .enumerate()
            .filter(|(_, o)| o.id == c.id)
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether `other` runs exactly what this one runs (the same committees with the same
    /// shares, by identity: a rebuild reuses unchanged shares) and indexes as many committees,
    /// validators and operator keys of the network.
    pub fn same_as(&self, other: &Registry) -> bool {
        self.committees.len() == other.committees.len()
            && self.network.validator_count() == other.network.validator_count()
            && self.network.committee_count() == other.network.committee_count()
            && self.operator_keys.len() == other.operator_keys.len()
            && self.committees.iter().zip(&other.committees).all(|(a, b)| {
                a.validators.len() == b.validators.len()
                    && a.validators
                        .iter()
                        .all(|(i, v)| b.validators.get(i).is_some_and(|w| Arc::ptr_eq(v, w)))
            })
    }

    /// The subnets of the committees that run at least one validator.
    pub fn active_subnets(&self) -> std::collections::BTreeSet<u64> {
        self.committees
            .iter()
            .filter(|c| !c.validators.is_empty())
            .map(|c| c.subnet)
            .collect()
    }
}

/// Our share of `pubkey` as stored; `old` (the previous registry's) is kept when the stored
/// share keys, fee recipient and exit request are unchanged, and its decrypted key is reused
/// when the share keys are.
fn load_share(
    store: &Store,
    key: &OperatorSecretKey,
    our_id: OperatorId,
    pubkey: &[u8; 48],
    index: u64,
    our_position: usize,
    old: Option<&Arc<ValidatorShare>>,
) -> anyhow::Result<Arc<ValidatorShare>> {
    let record = store
        .share(pubkey)
        .context("reading the share")?
        .context("share vanished")?;
    let fee_recipient = store
        .fee_recipient(&record.owner)
        .context("reading the owner's fee recipient")?
        .unwrap_or(record.owner);
    let exit_requested = store
        .exit_requested(pubkey)
        .context("reading the validator's exit request")?;
    let share_pubkey_bytes: Vec<[u8; 48]> = record.share_pubkeys.to_vec();
    if let Some(old) = old.filter(|o| o.share_pubkey_bytes == share_pubkey_bytes) {
        if old.fee_recipient == fee_recipient
            && old.exit_requested == exit_requested
            && old.owner == record.owner
            && old.index == index
        {
            return Ok(old.clone());
        }
        return Ok(Arc::new(ValidatorShare {
            index,
            pubkey: *pubkey,
            public_key: old.public_key,
            secret_share: old.secret_share.clone(),
            share_pubkeys: old.share_pubkeys.clone(),
            fee_recipient,
            exit_requested,
            owner: record.owner,
            share_pubkey_bytes,
        }));
    }
    let our_share_pk = record
        .share_pubkeys
        .get(our_position)
        .context("no share public key for us")?;
    if record.operator_ids.get(our_position) != Some(&our_id) {
        bail!("operator {our_id} is not at its committee position in the share record");
    }
    // A decrypted share kept in the record is used only when it is this operator's (a node
    // hosting several operators of the committee has one per operator).
    let kept = match &record.secret_share {
        Some(s) => {
            let sk = SecretKey::from_bytes(&s.0).context("stored share")?;
            (sk.public_key().to_bytes() == *our_share_pk).then_some(sk)
        }
        None => None,
    };
    let secret_share = match kept {
        Some(sk) => sk,
        None => {
            // This operator's encrypted share kept apart (several of ours in the committee),
            // else the record's own (the only one of a single-operator node).
            let apart = store
                .own_share(pubkey, our_id)
                .context("reading our operator's share")?;
            let encrypted = apart.as_deref().unwrap_or(&record.encrypted_share);
            decrypt_share(key, encrypted, our_share_pk).map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };
    let mut share_pubkeys = BTreeMap::new();
    for (op, pk) in record.operator_ids.iter().zip(&record.share_pubkeys) {
        share_pubkeys.insert(
            *op,
            PublicKey::from_bytes(pk).with_context(|| format!("share public key of {op}"))?,
        );
    }
    Ok(Arc::new(ValidatorShare {
        index,
        pubkey: *pubkey,
        public_key: PublicKey::from_bytes(pubkey).context("validator public key")?,
        secret_share,
        share_pubkeys,
        fee_recipient,
        exit_requested,
        owner: record.owner,
        share_pubkey_bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssv_storage::StoreConfig;

    const GVR: [u8; 32] = [9; 32];

    fn store_with(dir: &std::path::Path, ops: Vec<ssv_storage::WriteOp>) -> Store {
        let store = Store::open(StoreConfig::new(dir.join("db"), GVR)).expect("store");
        store.write(ops).expect("seeded");
        store
    }

    /// A node hosting operators 1 and 2 of a committee: their IDs are found by public key,
    /// the committee has one entry per operator, each with that operator's own decrypted
    /// shares (operator 2's kept apart in `own_shares`), and every validator is run once.
    /// A database seeded for operator 1 alone (the previous layout) loads as before, and
    /// operator 2's shares there are reported skipped, not wrong.
    #[test]
    fn two_hosted_operators_get_their_own_shares() {
        let setup = ssv_devnet::Setup::generate(4, 6, 4, 3).expect("set-up");
        let keys = |ids: &[u64]| -> Vec<(Option<OperatorId>, Arc<OperatorSecretKey>)> {
            ids.iter()
                .map(|&id| {
                    let pem = setup.operators[id as usize - 1].key.to_pem().expect("pem");
                    (
                        None,
                        Arc::new(OperatorSecretKey::from_pem(&pem).expect("key")),
                    )
                })
                .collect()
        };
        let dir = tempfile::tempdir().expect("dir");
        let store = store_with(
            dir.path(),
            setup.store_ops_hosting(&[1, 2]).expect("store ops"),
        );
        let ours = resolve_operators(&store, &keys(&[2, 1])).expect("resolved");
        assert_eq!(ours.ids().collect::<Vec<_>>(), vec![1, 2]);
        let reg = Registry::load(&store, &ours, DomainType([0; 4])).expect("registry");
        assert!(reg.skipped.is_empty(), "{:?}", reg.skipped);
        assert_eq!(reg.operator_id, 1);
        assert_eq!(reg.committees.len(), 2);
        assert_eq!(reg.validator_count(), 6);
        assert_eq!(reg.shares().count(), 6);
        assert_eq!(reg.runs_of(0), vec![0, 1]);
        for c in &reg.committees {
            let me = c.member.operator_id;
            assert_eq!(c.validators.len(), 6);
            for share in c.validators.values() {
                assert_eq!(
                    share.secret_share.public_key().to_bytes(),
                    share.share_pubkeys[&me].to_bytes(),
                    "operator {me} holds its own share"
                );
            }
        }
        assert_eq!(
            reg.committees
                .iter()
                .map(|c| c.member.operator_id)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        // A refresh keeps both entries at their index and reuses the decrypted shares.
        let again = reg
            .refresh(&store, &ours, DomainType([0; 4]), &HashSet::new())
            .expect("refresh");
        assert!(reg.same_as(&again));

        // The same key twice, or an ID that is not the key's, is refused.
        let twice = vec![keys(&[1])[0].clone(), keys(&[1])[0].clone()];
        let err = resolve_operators(&store, &twice).unwrap_err().to_string();
        assert!(err.contains("configured twice"), "{err}");
        let wrong = vec![(Some(3), keys(&[1])[0].1.clone())];
        let err = resolve_operators(&store, &wrong).unwrap_err().to_string();
        assert!(err.contains("registered as operator 1"), "{err}");

        // The previous layout: a database seeded for operator 1 alone.
        let dir1 = tempfile::tempdir().expect("dir");
        let store1 = store_with(dir1.path(), setup.store_ops(1).expect("store ops"));
        let one = resolve_operators(&store1, &keys(&[1])).expect("one");
        let reg1 = Registry::load(&store1, &one, DomainType([0; 4])).expect("registry");
        assert!(reg1.skipped.is_empty(), "{:?}", reg1.skipped);
        assert_eq!((reg1.committees.len(), reg1.validator_count()), (1, 6));
        let both = resolve_operators(&store1, &keys(&[1, 2])).expect("both");
        let reg2 = Registry::load(&store1, &both, DomainType([0; 4])).expect("registry");
        assert_eq!(reg2.validator_count(), 6);
        assert_eq!(reg2.skipped.len(), 6, "operator 2 has no share there");
        assert!(reg2.skipped.iter().all(|s| s.contains("as operator 2")));
    }
}
