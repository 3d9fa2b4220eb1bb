//! What the node runs, built once at start-up from storage: our operator, every operator's
//! RSA key, our committees and, for each of their validators, our decrypted share.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use anyhow::{Context, bail};
use rayon::prelude::*;
use ssv_crypto_pipeline::{OperatorKeyCache, OperatorSecretKey, PublicKey, SecretKey};
use ssv_protocol::committee::CommitteeId as WireCommitteeId;
use ssv_protocol::types::{CommitteeMember, CommitteeOperator, DomainType, OperatorId};
use ssv_storage::tables::Operators;
use ssv_storage::{CommitteeMap, Store};

use ssv_crypto_pipeline::share::decrypt_share;

pub use super::network_view::NetworkIndex;

/// Most validators one node runs (bounds start-up work and memory; far above what one host
/// carries).
pub const VALIDATORS_MAX: usize = 1_000_000;

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
}

/// Validators that contract sync reported removed or liquidated while the node runs: never
/// signed for again in this process. Registry changes otherwise reach the data plane at the
/// next start, which also bumps slashing protection for a validator that comes back (it may
/// have signed elsewhere meanwhile); so a validator re-added while the node runs stays
/// stopped until then.
#[derive(Debug, Default)]
pub struct StoppedValidators {
    stopped: parking_lot::RwLock<std::collections::HashSet<[u8; 48]>>,
    live: std::sync::atomic::AtomicBool,
}

impl StoppedValidators {
    /// Stops `pubkey`; `true` if it was not stopped yet.
    pub fn stop(&self, pubkey: [u8; 48]) -> bool {
        self.stopped.write().insert(pubkey)
    }

    /// A validator (re-)added on-chain. Before [`StoppedValidators::go_live`] (history replay:
    /// the registry about to be loaded has the final word) it is no longer stopped; after it,
    /// it stays stopped until the next start. `true` if it was un-stopped.
    pub fn started(&self, pubkey: &[u8; 48]) -> bool {
        if self.live.load(std::sync::atomic::Ordering::Acquire) {
            return false;
        }
        self.stopped.write().remove(pubkey)
    }

    /// The registry is loaded: from now on a stop is final for this process.
    pub fn go_live(&self) {
        self.live.store(true, std::sync::atomic::Ordering::Release);
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
    /// Our operator ID.
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

impl Registry {
    /// Loads operators, our committees and shares from `store`, decrypting our shares with
    /// `key`. `operator_id`: ours when configured, else found by public key.
    pub fn load(
        store: &Store,
        key: &OperatorSecretKey,
        operator_id: Option<OperatorId>,
        domain: DomainType,
    ) -> anyhow::Result<Self> {
        let our_pem = key.public_key().to_base64_pem();
        let txn = store.read().context("opening a read snapshot")?;
        let operator_keys = Arc::new(OperatorKeyCache::new());
        let mut pems: HashMap<OperatorId, Vec<u8>> = HashMap::new();
        let mut by_key = None;
        txn.scan::<Operators>(None, |id, op| {
            let pem = op.get().public_key.as_slice().to_vec();
            if pem == our_pem.as_bytes() {
                by_key = Some(id);
            }
            pems.insert(id, pem);
            Ok(ControlFlow::Continue(()))
        })
        .context("reading operators")?;
        for (id, pem) in &pems {
            let text = String::from_utf8_lossy(pem);
            if let Err(e) = operator_keys.get_or_parse(*id, text.trim()) {
                tracing::warn!(operator = id, "operator public key unusable: {e}");
            }
        }
        let operator_id = match (operator_id, by_key) {
            (Some(id), Some(found)) if id != found => bail!(
                "configured operator id {id} but our public key is registered as operator {found}"
            ),
            (Some(id), _) => id,
            (None, Some(found)) => found,
            (None, None) => bail!(
                "our operator public key is not registered (no operator in storage has it); \
                 set operator.id or wait for contract sync"
            ),
        };
        let map = CommitteeMap::load(&txn).context("loading committees")?;
        drop(txn);
        let network = Arc::new(NetworkIndex::from_map(&map));
        let mut committees = Vec::new();
        let mut committee_of = HashMap::new();
        let mut skipped = Vec::new();
        let mut total = 0usize;
        let mut ids: Vec<_> = map.committees.keys().copied().collect();
        ids.sort_unstable();
        for cid in ids {
            let entry = &map.committees[&cid];
            let Some(pos) = entry.operator_ids.iter().position(|o| *o == operator_id) else {
                continue;
            };
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
                operator_id,
                committee_id: wire_id,
                rsa_public_key_pem: our_pem.as_bytes().to_vec(),
                faulty_nodes: (entry.operator_ids.len() as u64).saturating_sub(1) / 3,
                committee: committee_ops,
                domain,
            };
            let mut wanted = Vec::new();
            for v in &entry.validators {
                if v.liquidated {
                    continue;
                }
                let Some(index) = v.index else {
                    skipped.push(format!("0x{}: no beacon index yet", hex::encode(v.pubkey)));
                    continue;
                };
                total += 1;
                if total > VALIDATORS_MAX {
                    bail!("more than {VALIDATORS_MAX} validators");
                }
                wanted.push((v.pubkey, index));
            }
            // RSA decryption costs about 1.7 ms a share: spread it over every core.
            let loaded: Vec<(u64, anyhow::Result<ValidatorShare>)> = wanted
                .par_iter()
                .map(|(pubkey, index)| (*index, load_share(store, key, pubkey, *index, pos)))
                .collect();
            let mut validators = HashMap::new();
            for ((pubkey, _), (index, r)) in wanted.iter().zip(loaded) {
                match r {
                    Ok(share) => {
                        validators.insert(index, Arc::new(share));
                    }
                    Err(e) => skipped.push(format!("0x{}: {e:#}", hex::encode(pubkey))),
                }
            }
            if validators.is_empty() {
                continue;
            }
            let idx = committees.len();
            for index in validators.keys() {
                committee_of.insert(*index, idx);
            }
            committees.push(Arc::new(CommitteeInfo {
                id: cid,
                operators: entry.operator_ids.clone(),
                subnet: wire_id.subnet(),
                member,
                validators,
            }));
        }
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
}

fn load_share(
    store: &Store,
    key: &OperatorSecretKey,
    pubkey: &[u8; 48],
    index: u64,
    our_position: usize,
) -> anyhow::Result<ValidatorShare> {
    let record = store
        .share(pubkey)
        .context("reading the share")?
        .context("share vanished")?;
    let our_share_pk = record
        .share_pubkeys
        .get(our_position)
        .context("no share public key for us")?;
    let secret_share = match &record.secret_share {
        Some(s) => SecretKey::from_bytes(&s.0).context("stored share")?,
        None => decrypt_share(key, &record.encrypted_share, our_share_pk)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let mut share_pubkeys = BTreeMap::new();
    for (op, pk) in record.operator_ids.iter().zip(&record.share_pubkeys) {
        share_pubkeys.insert(
            *op,
            PublicKey::from_bytes(pk).with_context(|| format!("share public key of {op}"))?,
        );
    }
    let fee_recipient = store
        .fee_recipient(&record.owner)
        .context("reading the owner's fee recipient")?
        .unwrap_or(record.owner);
    let exit_requested = store
        .exit_requested(pubkey)
        .context("reading the validator's exit request")?;
    Ok(ValidatorShare {
        index,
        pubkey: *pubkey,
        public_key: PublicKey::from_bytes(pubkey).context("validator public key")?,
        secret_share,
        share_pubkeys,
        fee_recipient,
        exit_requested,
    })
}
