//! Applies one block's contract events to the registry: validation (as the Go node's
//! `eth/eventhandler`), the registry changes to commit, and the committee changes to send
//! to the data plane once the commit is durable.
//!
//! The handler is sans-IO: it takes the state and the decoded events and returns a
//! [`BlockOutcome`]. It updates the state as it goes, so a later event of the same block sees
//! an earlier one (an operator added and used in one block).

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::sol_types::SolValue;
use ssv_crypto_pipeline::{OperatorSecretKey, PublicKey, SecretKey};
use ssv_protocol::committee::CommitteeId;

use super::abi;
use super::error::EventRejection;
use super::events::{ContractEvent, EventMeta, LogEvent};
use super::registry::{
    ClusterKey, MalformedEvent, OperatorRecord, OwnShare, RegistryChange, RegistryState,
    ValidatorPubkey, ValidatorRecord,
};
use super::shares::{decrypt_share, owner_nonce_message, split_shares, verify_owner_signature};

/// Longest operator public key accepted from `OperatorAdded` (base64 of an RSA-4096 PEM is
/// about 1 KB; the bound leaves room and stops a hostile event from filling the store).
pub const OPERATOR_KEY_BYTES_MAX: usize = 4096;

/// Committee sizes the network accepts (3f + 1 with f = 1..=4).
pub const COMMITTEE_SIZES: [usize; 4] = [4, 7, 10, 13];

/// A validator our operator must start running.
#[derive(Debug, Clone)]
pub struct StartValidator {
    /// Validator public key.
    pub validator_pubkey: ValidatorPubkey,
    /// Committee operator IDs, sorted ascending.
    pub committee: Vec<u64>,
    /// Committee ID.
    pub committee_id: CommitteeId,
    /// The committee's gossip subnet.
    pub subnet: u64,
    /// Our operator ID.
    pub operator_id: u64,
    /// Our share's public key.
    pub share_pubkey: [u8; 48],
    /// Our decrypted share.
    pub share_secret: SecretKey,
    /// Share public keys of the committee, by operator ID (sorted by ID).
    pub share_pubkeys: Vec<(u64, [u8; 48])>,
    /// Cluster owner.
    pub owner: Address,
}

/// Why a validator stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `ValidatorRemoved`.
    Removed,
    /// `ClusterLiquidated`.
    Liquidated,
}

/// Committee changes for the data plane (network subscriptions and duty runners). Sent
/// after the block that caused them is committed, in event order.
#[derive(Debug, Clone)]
pub enum DataPlaneEvent {
    /// Join a subnet: our first active validator on it appeared.
    SubscribeSubnet {
        /// Subnet number.
        subnet: u64,
    },
    /// Leave a subnet: our last active validator on it stopped.
    UnsubscribeSubnet {
        /// Subnet number.
        subnet: u64,
    },
    /// Start a validator's duties.
    StartValidator(Box<StartValidator>),
    /// Stop a validator's duties.
    StopValidator {
        /// Validator public key.
        validator_pubkey: ValidatorPubkey,
        /// Why.
        reason: StopReason,
    },
    /// The owner asked for a voluntary exit of one of our validators.
    ExitValidator {
        /// Validator public key.
        validator_pubkey: ValidatorPubkey,
        /// Block of the request.
        block: u64,
    },
    /// An owner with validators of ours set a new fee recipient.
    FeeRecipientUpdated {
        /// Owner.
        owner: Address,
        /// New fee recipient.
        recipient: Address,
    },
}

/// What one block's events produced.
#[derive(Debug, Default)]
pub struct BlockOutcome {
    /// Changes to commit with the block.
    pub changes: Vec<RegistryChange>,
    /// Committee changes to send once committed.
    pub data_plane: Vec<DataPlaneEvent>,
    /// Events applied (valid ones).
    pub applied: u64,
    /// Events recorded as malformed and skipped.
    pub malformed: u64,
}

/// Validates and applies contract events for the operators a node hosts.
pub struct EventHandler {
    /// Our operators' keys, with the DER of each public key.
    keys: Vec<(Arc<OperatorSecretKey>, Vec<u8>)>,
}

impl std::fmt::Debug for EventHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHandler")
            .field("operator_keys", &self.keys.len())
            .finish()
    }
}

/// The DER of a public key as an `OperatorAdded` publishes it (base64 of the PEM text).
fn published_spki(published: &[u8]) -> Option<Vec<u8>> {
    std::str::from_utf8(published)
        .ok()
        .and_then(|text| ssv_crypto_pipeline::OperatorPublicKey::from_base64_pem(text).ok())
        .map(|pk| pk.spki_der().to_vec())
}

/// Changes and data-plane events of one event, before they are committed to the block.
struct Effects<'a> {
    state: &'a mut RegistryState,
    changes: Vec<RegistryChange>,
    data_plane: Vec<DataPlaneEvent>,
}

impl Effects<'_> {
    fn change(&mut self, change: RegistryChange) {
        self.state.apply(&change);
        self.changes.push(change);
    }
}

impl EventHandler {
    /// A handler for the operator holding `operator_key` (`None`: a node that only follows
    /// the registry and runs no validators).
    pub fn new(operator_key: Option<Arc<OperatorSecretKey>>) -> Self {
        Self::with_keys(operator_key.into_iter().collect())
    }

    /// A handler for a node hosting the operators holding `keys` (each key's first
    /// `OperatorAdded` records that operator ID as ours; one key is [`EventHandler::new`]).
    pub fn with_keys(keys: Vec<Arc<OperatorSecretKey>>) -> Self {
        let keys = keys
            .into_iter()
            .map(|k| {
                let der = k.public_key().spki_der().to_vec();
                (k, der)
            })
            .collect();
        Self { keys }
    }

    /// The key of our operator `id` (one of `state.own_operators`): with one key, that key;
    /// with several, the one whose public key the operator published.
    fn key_of(&self, state: &RegistryState, id: u64) -> Option<&Arc<OperatorSecretKey>> {
        if !state.own_operators.contains(&id) {
            return None;
        }
        if let [(key, _)] = &self.keys[..] {
            return Some(key);
        }
        let der = published_spki(&state.operators.get(&id)?.public_key)?;
        self.keys.iter().find(|(_, d)| *d == der).map(|(k, _)| k)
    }

    /// Verifies the owner signatures of a block's `ValidatorAdded` events in one batch
    /// (random linear combination; one Miller loop per signature plus one, instead of two
    /// and a final exponentiation each). Each entry is the nonce the event will be checked
    /// with and whether its signature verified with it; the handler uses an entry only when
    /// its own nonce agrees, and re-verifies failures alone for the exact error.
    fn presign_check(
        &self,
        state: &RegistryState,
        events: &[LogEvent],
    ) -> Vec<Option<(u64, bool)>> {
        let mut out = vec![None; events.len()];
        let mut next_nonce: std::collections::HashMap<Address, u64> = Default::default();
        let mut sets = Vec::new();
        let mut at = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            let Ok(ContractEvent::ValidatorAdded(e)) = &ev.event else {
                continue;
            };
            // Every decoded ValidatorAdded consumes its owner's nonce, as in the handler.
            let nonce = next_nonce
                .entry(e.owner)
                .or_insert_with(|| state.nonce(&e.owner));
            let this = *nonce;
            *nonce += 1;
            let Ok(split) = split_shares(&e.shares, e.operatorIds.len()) else {
                continue;
            };
            let (Ok(public_key), Ok(signature)) = (
                PublicKey::from_bytes(&e.publicKey),
                ssv_crypto_pipeline::Signature::from_bytes(split.signature),
            ) else {
                continue;
            };
            sets.push(ssv_crypto_pipeline::SignatureSet {
                public_key,
                root: owner_nonce_message(e.owner, this),
                signature,
            });
            at.push((i, this));
        }
        if sets.len() > 1 {
            for ((i, nonce), result) in at.into_iter().zip(ssv_crypto_pipeline::verify_sets(&sets))
            {
                out[i] = Some((nonce, result.is_ok()));
            }
        }
        out
    }

    /// Handles the events of one block, in log order.
    pub fn handle_block(&self, state: &mut RegistryState, events: &[LogEvent]) -> BlockOutcome {
        let mut out = BlockOutcome::default();
        let presigned = self.presign_check(state, events);
        for (ev, presigned) in events.iter().zip(presigned) {
            let mut fx = Effects {
                state,
                changes: Vec::new(),
                data_plane: Vec::new(),
            };
            let result = match &ev.event {
                Ok(event) => self.handle_event(&mut fx, &ev.meta, event, presigned),
                Err(rejection) => Err(rejection.clone()),
            };
            match result {
                Ok(()) => {
                    out.applied += 1;
                    tracing::debug!(
                        block = ev.meta.block,
                        log_index = ev.meta.log_index,
                        event = ev.name,
                        "contract event applied"
                    );
                }
                Err(rejection) => {
                    out.malformed += 1;
                    tracing::warn!(
                        block = ev.meta.block,
                        log_index = ev.meta.log_index,
                        tx = %ev.meta.tx_hash,
                        event = ev.name,
                        reason = %rejection,
                        "malformed contract event skipped"
                    );
                    // Changes made before the rejection stay (the nonce bump of a malformed
                    // ValidatorAdded, as in the Go node); data-plane effects are dropped.
                    fx.data_plane.clear();
                    fx.change(RegistryChange::RecordMalformed(MalformedEvent {
                        block: ev.meta.block,
                        log_index: ev.meta.log_index,
                        tx_hash: ev.meta.tx_hash,
                        event: ev.name.to_string(),
                        reason: rejection.to_string(),
                    }));
                }
            }
            out.changes.append(&mut fx.changes);
            out.data_plane.append(&mut fx.data_plane);
        }
        out
    }

    fn handle_event(
        &self,
        fx: &mut Effects<'_>,
        meta: &EventMeta,
        event: &ContractEvent,
        presigned: Option<(u64, bool)>,
    ) -> Result<(), EventRejection> {
        match event {
            ContractEvent::OperatorAdded(e) => self.operator_added(fx, e),
            ContractEvent::OperatorRemoved(e) => {
                if !fx.state.operators.contains_key(&e.operatorId) {
                    return Err(EventRejection::UnknownOperator(e.operatorId));
                }
                if fx.state.own_operators.contains(&e.operatorId) {
                    tracing::warn!(operator = e.operatorId, "our operator was removed");
                }
                fx.change(RegistryChange::RemoveOperator { id: e.operatorId });
                Ok(())
            }
            ContractEvent::ValidatorAdded(e) => self.validator_added(fx, meta, e, presigned),
            ContractEvent::ValidatorRemoved(e) => {
                let pubkey = known_validator(fx.state, &e.publicKey, e.owner)?;
                let record = fx.state.validators[&pubkey].clone();
                let was_active = record.own_share.is_some() && !fx.state.is_liquidated(&record);
                let subnet = record.committee().1;
                let before = fx.state.own_active_on_subnet(subnet);
                fx.change(RegistryChange::RemoveValidator { pubkey });
                if was_active {
                    stops_on_subnet(fx, subnet, before, &[pubkey], StopReason::Removed);
                }
                Ok(())
            }
            ContractEvent::ValidatorExited(e) => {
                let pubkey = known_validator(fx.state, &e.publicKey, e.owner)?;
                fx.change(RegistryChange::SetExitRequested {
                    pubkey,
                    block: meta.block,
                });
                if fx.state.validators[&pubkey].own_share.is_some() {
                    fx.data_plane.push(DataPlaneEvent::ExitValidator {
                        validator_pubkey: pubkey,
                        block: meta.block,
                    });
                }
                Ok(())
            }
            ContractEvent::ClusterLiquidated(e) => {
                let cluster = ClusterKey::new(e.owner, &e.operatorIds);
                if fx.state.liquidated.contains(&cluster) {
                    return Ok(());
                }
                let own: Vec<ValidatorPubkey> = fx
                    .state
                    .cluster_validators(&cluster)
                    .filter(|v| v.own_share.is_some())
                    .map(|v| v.pubkey)
                    .collect();
                // One cluster is one committee: all its validators share a subnet.
                let subnet = CommitteeId::from_operators(&cluster.operator_ids).subnet();
                let before = fx.state.own_active_on_subnet(subnet);
                fx.change(RegistryChange::SetLiquidated {
                    cluster,
                    liquidated: true,
                });
                stops_on_subnet(fx, subnet, before, &own, StopReason::Liquidated);
                Ok(())
            }
            ContractEvent::ClusterReactivated(e) => {
                let cluster = ClusterKey::new(e.owner, &e.operatorIds);
                if !fx.state.liquidated.contains(&cluster) {
                    return Ok(());
                }
                let own: Vec<ValidatorRecord> = fx
                    .state
                    .cluster_validators(&cluster)
                    .filter(|v| v.own_share.is_some())
                    .cloned()
                    .collect();
                // Decrypt first: a share that no longer decrypts rejects the event before
                // anything changes.
                let mut starts = Vec::with_capacity(own.len());
                for v in &own {
                    starts.push(self.start_event(fx.state, v)?);
                }
                let subnet = CommitteeId::from_operators(&cluster.operator_ids).subnet();
                let before = fx.state.own_active_on_subnet(subnet);
                fx.change(RegistryChange::SetLiquidated {
                    cluster,
                    liquidated: false,
                });
                starts_on_subnet(fx, subnet, before, starts);
                Ok(())
            }
            ContractEvent::FeeRecipientAddressUpdated(e) => {
                fx.change(RegistryChange::SetFeeRecipient {
                    owner: e.owner,
                    recipient: e.recipientAddress,
                });
                if fx
                    .state
                    .validators
                    .values()
                    .any(|v| v.owner == e.owner && v.own_share.is_some())
                {
                    fx.data_plane.push(DataPlaneEvent::FeeRecipientUpdated {
                        owner: e.owner,
                        recipient: e.recipientAddress,
                    });
                }
                Ok(())
            }
        }
    }

    fn operator_added(
        &self,
        fx: &mut Effects<'_>,
        e: &abi::OperatorAdded,
    ) -> Result<(), EventRejection> {
        if fx.state.operators.contains_key(&e.operatorId) {
            return Err(EventRejection::OperatorExists(e.operatorId));
        }
        // The contract stores `abi.encode(bytes(base64(PEM)))`; unpack the inner bytes as the
        // Go node's event parser does.
        let inner = <alloy::primitives::Bytes as SolValue>::abi_decode(&e.publicKey)
            .map_err(|err| EventRejection::BadOperatorKey(err.to_string()))?;
        if inner.len() > OPERATOR_KEY_BYTES_MAX {
            return Err(EventRejection::BadOperatorKey(format!(
                "{} bytes, at most {OPERATOR_KEY_BYTES_MAX}",
                inner.len()
            )));
        }
        if let Some(other) = fx.state.operator_by_key(&inner) {
            return Err(EventRejection::OperatorKeyExists(other));
        }
        // One of our keys not yet registered (a key's first `OperatorAdded` is its
        // operator; with one key: as long as no own operator is known).
        let ours = match self.keys.len() {
            0 => false,
            1 if fx.state.own_operator.is_some() => false,
            _ => published_spki(&inner).is_some_and(|der| {
                self.keys.iter().any(|(_, d)| *d == der)
                    && !fx.state.own_operators.iter().any(|id| {
                        fx.state
                            .operators
                            .get(id)
                            .and_then(|op| published_spki(&op.public_key))
                            .is_some_and(|d| d == der)
                    })
            }),
        };
        fx.change(RegistryChange::PutOperator(OperatorRecord {
            id: e.operatorId,
            owner: e.owner,
            public_key: inner.to_vec(),
            removed: false,
        }));
        if ours {
            tracing::info!(operator = e.operatorId, "our operator is registered");
            fx.change(RegistryChange::SetOwnOperator { id: e.operatorId });
        }
        Ok(())
    }

    fn validator_added(
        &self,
        fx: &mut Effects<'_>,
        meta: &EventMeta,
        e: &abi::ValidatorAdded,
        presigned: Option<(u64, bool)>,
    ) -> Result<(), EventRejection> {
        // The nonce is consumed by every ValidatorAdded, malformed or not (Go: BumpNonce
        // before validation, kept when the event is malformed).
        let nonce = fx.state.nonce(&e.owner);
        fx.change(RegistryChange::SetNonce {
            owner: e.owner,
            next: nonce + 1,
        });
        validate_operator_set(fx.state, &e.operatorIds)?;
        let split = split_shares(&e.shares, e.operatorIds.len())?;
        let validator_pk = PublicKey::from_bytes(&e.publicKey)
            .map_err(|err| EventRejection::BadValidatorKey(err.to_string()))?;
        debug_assert!(
            presigned.is_none_or(|(n, _)| n == nonce),
            "batch nonce agrees"
        );
        if presigned != Some((nonce, true)) {
            verify_owner_signature(split.signature, &validator_pk, e.owner, nonce)?;
        }
        let pubkey: ValidatorPubkey = validator_pk.to_bytes();
        if let Some(existing) = fx.state.validators.get(&pubkey) {
            if existing.owner != e.owner {
                return Err(EventRejection::DifferentOwner);
            }
            // Registered again by its owner (Go: the existing share is kept as it is).
            return Ok(());
        }
        let mut share_pubkeys = Vec::with_capacity(split.share_pubkeys.len());
        for pk in &split.share_pubkeys {
            let mut a = [0u8; 48];
            a.copy_from_slice(pk);
            share_pubkeys.push(a);
        }
        // Our operators in the committee, lowest ID first: the lowest one's share goes in
        // the share record (as a single-operator node of that ID stores it) and starts the
        // validator; every one of them is decrypted, so a share of ours that does not
        // decrypt rejects the event as it does on a single-operator node.
        let mut ours: Vec<(u64, usize)> = e
            .operatorIds
            .iter()
            .enumerate()
            .filter(|(_, id)| fx.state.own_operators.contains(id))
            .map(|(pos, id)| (*id, pos))
            .collect();
        ours.sort_unstable();
        let mut own_shares = Vec::with_capacity(ours.len());
        let mut secret = None;
        for (own_id, pos) in ours {
            let Some(key) = self.key_of(fx.state, own_id) else {
                continue;
            };
            let sk = decrypt_share(key, split.encrypted[pos], split.share_pubkeys[pos])?;
            own_shares.push(OwnShare {
                operator_id: own_id,
                share_pubkey: share_pubkeys[pos],
                encrypted_share: split.encrypted[pos].to_vec(),
            });
            secret.get_or_insert(sk);
        }
        let mut own_shares = own_shares.into_iter();
        let own_share = own_shares.next();
        let other_own_shares: Vec<OwnShare> = own_shares.collect();
        let record = ValidatorRecord {
            pubkey,
            owner: e.owner,
            operator_ids: e.operatorIds.clone(),
            share_pubkeys,
            own_share,
            other_own_shares,
            added_block: meta.block,
            exit_requested_block: None,
        };
        let start = match secret {
            Some(sk) if !fx.state.is_liquidated(&record) => Some(start_of(&record, sk)),
            _ => None,
        };
        let subnet = record.committee().1;
        let before = fx.state.own_active_on_subnet(subnet);
        fx.change(RegistryChange::PutValidator(Box::new(record)));
        if let Some(start) = start {
            starts_on_subnet(fx, subnet, before, vec![start]);
        }
        Ok(())
    }

    /// A [`DataPlaneEvent::StartValidator`] for an own validator (its share of our lowest
    /// operator ID in the committee), decrypting that share again.
    pub fn start_event(
        &self,
        state: &RegistryState,
        v: &ValidatorRecord,
    ) -> Result<StartValidator, EventRejection> {
        let Some(own) = &v.own_share else {
            return Err(EventRejection::ShareDecryption(
                "no operator key or no share of ours".into(),
            ));
        };
        let Some(key) = self.key_of(state, own.operator_id) else {
            return Err(EventRejection::ShareDecryption(
                "no operator key or no share of ours".into(),
            ));
        };
        let sk = decrypt_share(key, &own.encrypted_share, &own.share_pubkey)?;
        Ok(start_of(v, sk))
    }
}

fn start_of(v: &ValidatorRecord, share_secret: SecretKey) -> StartValidator {
    let (committee_id, subnet) = v.committee();
    let own = v
        .own_share
        .as_ref()
        .expect("start_of is only called for validators with our share");
    let mut share_pubkeys: Vec<(u64, [u8; 48])> = v
        .operator_ids
        .iter()
        .copied()
        .zip(v.share_pubkeys.iter().copied())
        .collect();
    share_pubkeys.sort_unstable_by_key(|(id, _)| *id);
    let mut committee = v.operator_ids.clone();
    committee.sort_unstable();
    StartValidator {
        validator_pubkey: v.pubkey,
        committee,
        committee_id,
        subnet,
        operator_id: own.operator_id,
        share_pubkey: own.share_pubkey,
        share_secret,
        share_pubkeys,
        owner: v.owner,
    }
}

/// Emits the starts of one event, preceded by a subscription when the subnet had no active
/// validator of ours before the event (`before`). The state already has them active.
fn starts_on_subnet(fx: &mut Effects<'_>, subnet: u64, before: usize, starts: Vec<StartValidator>) {
    if before == 0 && fx.state.own_active_on_subnet(subnet) > 0 {
        fx.data_plane
            .push(DataPlaneEvent::SubscribeSubnet { subnet });
    }
    for start in starts {
        fx.data_plane
            .push(DataPlaneEvent::StartValidator(Box::new(start)));
    }
}

/// Emits the stops of one event, followed by leaving the subnet when it had active
/// validators of ours before the event (`before`) and has none now. The state already
/// reflects the stops.
fn stops_on_subnet(
    fx: &mut Effects<'_>,
    subnet: u64,
    before: usize,
    stopped: &[ValidatorPubkey],
    reason: StopReason,
) {
    for pk in stopped {
        fx.data_plane.push(DataPlaneEvent::StopValidator {
            validator_pubkey: *pk,
            reason,
        });
    }
    if before > 0 && fx.state.own_active_on_subnet(subnet) == 0 {
        fx.data_plane
            .push(DataPlaneEvent::UnsubscribeSubnet { subnet });
    }
}

fn known_validator(
    state: &RegistryState,
    pubkey: &[u8],
    owner: Address,
) -> Result<ValidatorPubkey, EventRejection> {
    let key: ValidatorPubkey = pubkey
        .try_into()
        .map_err(|_| EventRejection::BadValidatorKey(format!("{} bytes", pubkey.len())))?;
    let v = state
        .validators
        .get(&key)
        .ok_or(EventRejection::UnknownValidator)?;
    if v.owner != owner {
        return Err(EventRejection::DifferentOwner);
    }
    Ok(key)
}

/// The Go node's `validateOperators` plus existence: 4, 7, 10 or 13 distinct operators,
/// each registered.
fn validate_operator_set(state: &RegistryState, ids: &[u64]) -> Result<(), EventRejection> {
    if !COMMITTEE_SIZES.contains(&ids.len()) {
        return Err(EventRejection::InvalidOperators(format!(
            "{} operators cannot form a 3f+1 committee",
            ids.len()
        )));
    }
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(EventRejection::InvalidOperators(
            "duplicate operator ID".into(),
        ));
    }
    for id in ids {
        if !state.operators.contains_key(id) {
            return Err(EventRejection::UnknownOperator(*id));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::shares::{share_plaintext, sign_owner_nonce};
    use alloy::primitives::{B256, Bytes, U256};

    fn meta(block: u64, log_index: u64) -> EventMeta {
        EventMeta {
            block,
            log_index,
            tx_hash: B256::ZERO,
        }
    }

    pub(crate) fn ev(block: u64, event: ContractEvent) -> LogEvent {
        LogEvent {
            meta: meta(block, 0),
            name: event.name(),
            event: Ok(event),
        }
    }

    fn cluster() -> abi::Cluster {
        abi::Cluster {
            validatorCount: 1,
            networkFeeIndex: 0,
            index: 0,
            active: true,
            balance: U256::ZERO,
        }
    }

    pub(crate) fn operator(id: u64, key: &[u8]) -> ContractEvent {
        ContractEvent::OperatorAdded(abi::OperatorAdded {
            operatorId: id,
            owner: Address::repeat_byte(9),
            publicKey: Bytes::from(key.to_vec()).abi_encode().into(),
            fee: U256::ZERO,
        })
    }

    struct Fixture {
        key: Arc<OperatorSecretKey>,
        handler: EventHandler,
        state: RegistryState,
    }

    fn fixture() -> Fixture {
        let key = Arc::new(OperatorSecretKey::generate().expect("rsa"));
        let handler = EventHandler::new(Some(key.clone()));
        let mut state = RegistryState::default();
        let mut events = vec![ev(
            1,
            operator(1, key.public_key().to_base64_pem().as_bytes()),
        )];
        for id in 2..=5u64 {
            events.push(ev(1, operator(id, format!("fake{id}").as_bytes())));
        }
        let out = handler.handle_block(&mut state, &events);
        assert_eq!((out.applied, out.malformed), (5, 0));
        assert_eq!(state.own_operator, Some(1));
        Fixture {
            key,
            handler,
            state,
        }
    }

    fn added(
        key: &OperatorSecretKey,
        owner: Address,
        ids: &[u64],
        nonce: u64,
        seed: u8,
    ) -> abi::ValidatorAdded {
        added_for(&[(1, key)], owner, ids, nonce, seed)
    }

    /// A `ValidatorAdded` whose share of each operator in `keys` is encrypted to its key
    /// (the others' are filler bytes).
    pub(crate) fn added_for(
        keys: &[(u64, &OperatorSecretKey)],
        owner: Address,
        ids: &[u64],
        nonce: u64,
        seed: u8,
    ) -> abi::ValidatorAdded {
        let validator = SecretKey::from_ikm(&[seed; 32]);
        let mut shares = sign_owner_nonce(&validator, owner, nonce).to_vec();
        let share_keys: Vec<SecretKey> = ids
            .iter()
            .map(|id| SecretKey::from_ikm(&[seed.wrapping_add(*id as u8 * 17); 32]))
            .collect();
        for s in &share_keys {
            shares.extend_from_slice(&s.public_key().to_bytes());
        }
        for (id, s) in ids.iter().zip(&share_keys) {
            if let Some((_, key)) = keys.iter().find(|(k, _)| k == id) {
                let enc = key
                    .public_key()
                    .encrypt(share_plaintext(s).as_bytes())
                    .expect("encrypt");
                shares.extend_from_slice(&enc);
            } else {
                shares.extend_from_slice(&[*id as u8; 256]);
            }
        }
        abi::ValidatorAdded {
            owner,
            operatorIds: ids.to_vec(),
            publicKey: validator.public_key().to_bytes().to_vec().into(),
            shares: shares.into(),
            cluster: cluster(),
        }
    }

    #[test]
    fn own_validator_lifecycle_emits_committee_changes() {
        let mut f = fixture();
        let owner = Address::repeat_byte(1);
        let v = added(&f.key, owner, &[1, 2, 3, 4], 0, 50);
        let pk: ValidatorPubkey = v.publicKey[..].try_into().expect("48");
        let out = f
            .handler
            .handle_block(&mut f.state, &[ev(2, ContractEvent::ValidatorAdded(v))]);
        assert_eq!((out.applied, out.malformed), (1, 0));
        assert!(matches!(
            out.data_plane[0],
            DataPlaneEvent::SubscribeSubnet { .. }
        ));
        let DataPlaneEvent::StartValidator(start) = &out.data_plane[1] else {
            panic!("start expected: {:?}", out.data_plane);
        };
        assert_eq!(start.validator_pubkey, pk);
        assert_eq!(start.committee, vec![1, 2, 3, 4]);
        assert_eq!(
            start.share_secret.public_key().to_bytes(),
            start.share_pubkey
        );
        assert_eq!(f.state.nonce(&owner), 1);

        let liquidate = ContractEvent::ClusterLiquidated(abi::ClusterLiquidated {
            owner,
            operatorIds: vec![4, 3, 2, 1],
            cluster: cluster(),
        });
        let out = f
            .handler
            .handle_block(&mut f.state, &[ev(3, liquidate.clone())]);
        assert!(matches!(
            out.data_plane[..],
            [
                DataPlaneEvent::StopValidator {
                    reason: StopReason::Liquidated,
                    ..
                },
                DataPlaneEvent::UnsubscribeSubnet { .. }
            ]
        ));
        // Liquidating again changes nothing.
        let out = f.handler.handle_block(&mut f.state, &[ev(4, liquidate)]);
        assert!(out.data_plane.is_empty() && out.changes.is_empty());

        let reactivate = ContractEvent::ClusterReactivated(abi::ClusterReactivated {
            owner,
            operatorIds: vec![1, 2, 3, 4],
            cluster: cluster(),
        });
        let out = f.handler.handle_block(&mut f.state, &[ev(5, reactivate)]);
        assert_eq!(out.data_plane.len(), 2);
        assert!(matches!(
            out.data_plane[1],
            DataPlaneEvent::StartValidator(_)
        ));

        let removed = ContractEvent::ValidatorRemoved(abi::ValidatorRemoved {
            owner,
            operatorIds: vec![1, 2, 3, 4],
            publicKey: pk.to_vec().into(),
            cluster: cluster(),
        });
        let out = f
            .handler
            .handle_block(&mut f.state, &[ev(6, removed.clone())]);
        assert!(matches!(
            out.data_plane[0],
            DataPlaneEvent::StopValidator {
                reason: StopReason::Removed,
                ..
            }
        ));
        assert!(f.state.validators.is_empty());
        // Removing it again is malformed and recorded.
        let out = f.handler.handle_block(&mut f.state, &[ev(7, removed)]);
        assert_eq!(out.malformed, 1);
        assert_eq!(f.state.malformed_total, 1);
    }

    #[test]
    fn one_subnet_change_per_cluster_event() {
        let mut f = fixture();
        let owner = Address::repeat_byte(3);
        let events: Vec<LogEvent> = (0..3)
            .map(|i| {
                let v = added(&f.key, owner, &[1, 2, 3, 4], i, 70 + i as u8);
                ev(2, ContractEvent::ValidatorAdded(v))
            })
            .collect();
        let out = f.handler.handle_block(&mut f.state, &events);
        let subs = |out: &BlockOutcome| {
            out.data_plane
                .iter()
                .filter(|e| matches!(e, DataPlaneEvent::SubscribeSubnet { .. }))
                .count()
        };
        let unsubs = |out: &BlockOutcome| {
            out.data_plane
                .iter()
                .filter(|e| matches!(e, DataPlaneEvent::UnsubscribeSubnet { .. }))
                .count()
        };
        assert_eq!((subs(&out), out.data_plane.len()), (1, 4));
        let ids = vec![1, 2, 3, 4];
        let liquidate = ContractEvent::ClusterLiquidated(abi::ClusterLiquidated {
            owner,
            operatorIds: ids.clone(),
            cluster: cluster(),
        });
        let out = f.handler.handle_block(&mut f.state, &[ev(3, liquidate)]);
        assert_eq!((unsubs(&out), out.data_plane.len()), (1, 4));
        assert!(matches!(
            out.data_plane[3],
            DataPlaneEvent::UnsubscribeSubnet { .. }
        ));
        let reactivate = ContractEvent::ClusterReactivated(abi::ClusterReactivated {
            owner,
            operatorIds: ids,
            cluster: cluster(),
        });
        let out = f.handler.handle_block(&mut f.state, &[ev(4, reactivate)]);
        assert_eq!((subs(&out), out.data_plane.len()), (1, 4));
        assert!(matches!(
            out.data_plane[0],
            DataPlaneEvent::SubscribeSubnet { .. }
        ));
    }

    #[test]
    fn malformed_validator_added_still_consumes_the_nonce() {
        let mut f = fixture();
        let owner = Address::repeat_byte(2);
        let mut bad = added(&f.key, owner, &[1, 2, 3, 4], 0, 60);
        let mut short = bad.shares.to_vec();
        short.pop();
        bad.shares = short.into();
        let good = added(&f.key, owner, &[1, 2, 3, 4], 1, 61);
        let stale = added(&f.key, owner, &[1, 2, 3, 4], 1, 62);
        let dup_ids = added(&f.key, owner, &[1, 1, 2, 3], 3, 63);
        let unknown = added(&f.key, owner, &[1, 2, 3, 9], 4, 64);
        let events: Vec<LogEvent> = [bad, good, stale, dup_ids, unknown]
            .into_iter()
            .map(|e| ev(2, ContractEvent::ValidatorAdded(e)))
            .collect();
        let out = f.handler.handle_block(&mut f.state, &events);
        assert_eq!((out.applied, out.malformed), (1, 4));
        assert_eq!(f.state.validators.len(), 1);
        assert_eq!(f.state.nonce(&owner), 5);
        let reasons: Vec<&str> = f
            .state
            .malformed_recent
            .iter()
            .map(|m| m.reason.as_str())
            .collect();
        assert!(reasons[0].contains("shares length"));
        assert!(reasons[1].contains("nonce 2"), "{}", reasons[1]);
        assert!(reasons[2].contains("duplicate"));
        assert!(reasons[3].contains("operator 9 does not exist"));
        // Exactly one data-plane start (from the valid one).
        let starts = out
            .data_plane
            .iter()
            .filter(|e| matches!(e, DataPlaneEvent::StartValidator(_)))
            .count();
        assert_eq!(starts, 1);
    }

    #[test]
    fn operator_key_must_be_abi_bytes_and_unique() {
        let mut f = fixture();
        let raw = ContractEvent::OperatorAdded(abi::OperatorAdded {
            operatorId: 10,
            owner: Address::ZERO,
            publicKey: Bytes::from_static(b"not abi"),
            fee: U256::ZERO,
        });
        let dup = operator(11, b"fake2");
        let out = f
            .handler
            .handle_block(&mut f.state, &[ev(3, raw), ev(3, dup)]);
        assert_eq!(out.malformed, 2);
        assert!(
            f.state.malformed_recent[0]
                .reason
                .contains("not ABI-encoded")
        );
        assert!(
            f.state.malformed_recent[1]
                .reason
                .contains("already registered by operator 2")
        );
    }

    /// A node hosting operators 1 and 3 (keys `a` and `b`); 2, 4 and 5 are others. Our
    /// second key's `OperatorAdded` comes in a later block than the first's.
    pub(crate) fn two_operator_fixture() -> (
        Arc<OperatorSecretKey>,
        Arc<OperatorSecretKey>,
        EventHandler,
        RegistryState,
    ) {
        let a = Arc::new(OperatorSecretKey::generate().expect("rsa"));
        let b = Arc::new(OperatorSecretKey::generate().expect("rsa"));
        let handler = EventHandler::with_keys(vec![a.clone(), b.clone()]);
        let mut state = RegistryState::default();
        let mut events = vec![ev(
            1,
            operator(1, a.public_key().to_base64_pem().as_bytes()),
        )];
        events.push(ev(1, operator(2, b"fake2")));
        let out = handler.handle_block(&mut state, &events);
        assert_eq!((out.applied, out.malformed), (2, 0));
        assert_eq!(state.own_operators, [1].into());
        let events = vec![
            ev(2, operator(3, b.public_key().to_base64_pem().as_bytes())),
            ev(2, operator(4, b"fake4")),
            ev(2, operator(5, b"fake5")),
        ];
        let out = handler.handle_block(&mut state, &events);
        assert_eq!((out.applied, out.malformed), (3, 0));
        assert_eq!(
            out.changes
                .iter()
                .filter(|c| matches!(c, RegistryChange::SetOwnOperator { id: 3 }))
                .count(),
            1,
            "our second key's OperatorAdded records its ID"
        );
        assert_eq!(state.own_operator, Some(1));
        assert_eq!(state.own_operators, [1, 3].into());
        (a, b, handler, state)
    }

    #[test]
    fn a_committee_with_two_of_our_operators_keeps_both_shares() {
        let (a, b, handler, mut state) = two_operator_fixture();
        let owner = Address::repeat_byte(4);
        // Event order 3, 2, 1, 4: our shares are at positions 0 and 2.
        let v = added_for(&[(1, &a), (3, &b)], owner, &[3, 2, 1, 4], 0, 90);
        let shares = v.shares.clone();
        let split = split_shares(&shares, 4).expect("split");
        let pk: ValidatorPubkey = v.publicKey[..].try_into().expect("48");
        let out = handler.handle_block(&mut state, &[ev(3, ContractEvent::ValidatorAdded(v))]);
        assert_eq!((out.applied, out.malformed), (1, 0));
        let record = &state.validators[&pk];
        let own = record.own_share.as_ref().expect("own share");
        assert_eq!(own.operator_id, 1);
        assert_eq!(own.encrypted_share, split.encrypted[2]);
        assert_eq!(own.share_pubkey[..], split.share_pubkeys[2][..]);
        assert_eq!(record.other_own_shares.len(), 1);
        let other = &record.other_own_shares[0];
        assert_eq!(other.operator_id, 3);
        assert_eq!(other.encrypted_share, split.encrypted[0]);
        assert_eq!(other.share_pubkey[..], split.share_pubkeys[0][..]);
        // Each stored share decrypts with its own operator's key.
        let sk = decrypt_share(&b, &other.encrypted_share, &other.share_pubkey).expect("b");
        assert_eq!(sk.public_key().to_bytes(), other.share_pubkey);
        assert!(decrypt_share(&a, &other.encrypted_share, &other.share_pubkey).is_err());
        // One committee, one start (our lowest ID), one subscription.
        let starts: Vec<&StartValidator> = out
            .data_plane
            .iter()
            .filter_map(|e| match e {
                DataPlaneEvent::StartValidator(s) => Some(&**s),
                _ => None,
            })
            .collect();
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].operator_id, 1);
        assert_eq!(
            starts[0].share_secret.public_key().to_bytes(),
            own.share_pubkey
        );
        // start_event (start-up, reactivation) decrypts with the right key too.
        let again = handler.start_event(&state, record).expect("start");
        assert_eq!(again.share_pubkey, own.share_pubkey);

        // A committee holding only our second operator: its share is the record's, as a
        // single-operator node of ID 3 stores it, and no extra rows.
        let v = added_for(&[(3, &b)], owner, &[2, 3, 4, 5], 1, 91);
        let shares = v.shares.clone();
        let split = split_shares(&shares, 4).expect("split");
        let pk2: ValidatorPubkey = v.publicKey[..].try_into().expect("48");
        let out = handler.handle_block(&mut state, &[ev(4, ContractEvent::ValidatorAdded(v))]);
        assert_eq!((out.applied, out.malformed), (1, 0));
        let record = &state.validators[&pk2];
        let own = record.own_share.as_ref().expect("own share");
        assert_eq!(
            (own.operator_id, &own.encrypted_share[..]),
            (3, split.encrypted[1])
        );
        assert!(record.other_own_shares.is_empty());
        let start = handler
            .start_event(&state, record)
            .expect("start with key b");
        assert_eq!(start.operator_id, 3);

        // A share of our second operator that does not decrypt rejects the event, as on a
        // single-operator node.
        let bad = added_for(&[(1, &a), (3, &a)], owner, &[1, 2, 3, 4], 2, 92);
        let out = handler.handle_block(&mut state, &[ev(5, ContractEvent::ValidatorAdded(bad))]);
        assert_eq!((out.applied, out.malformed), (0, 1));
        assert!(out.data_plane.is_empty());
        assert_eq!(state.validators.len(), 2);
    }

    #[test]
    fn a_single_key_registers_one_operator_as_before() {
        let mut f = fixture();
        // The same key published again under another ID (another encoding) is refused or
        // ignored, never a second own operator: one key, one operator.
        let pem = f.key.public_key().to_base64_pem();
        let other_encoding = format!("{pem}\n");
        let out = f.handler.handle_block(
            &mut f.state,
            &[ev(3, operator(6, other_encoding.as_bytes()))],
        );
        assert!(
            out.changes
                .iter()
                .all(|c| !matches!(c, RegistryChange::SetOwnOperator { .. }))
        );
        assert_eq!(f.state.own_operators, [1].into());
        assert_eq!(f.state.own_operator, Some(1));
        let v = added(&f.key, Address::repeat_byte(5), &[1, 2, 3, 4], 0, 93);
        let out = f
            .handler
            .handle_block(&mut f.state, &[ev(4, ContractEvent::ValidatorAdded(v))]);
        assert_eq!((out.applied, out.malformed), (1, 0));
        let record = f.state.validators.values().next().expect("validator");
        assert_eq!(record.own_share.as_ref().map(|o| o.operator_id), Some(1));
        assert!(record.other_own_shares.is_empty());
    }
}
