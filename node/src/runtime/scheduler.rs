//! The duty scheduler (control plane, tokio): fetches attester and sync-committee duties per
//! epoch, and at each slot hands every committee with duties its `CommitteeDuty` and our
//! beacon node's vote, on the bounded channel of the shard that owns the committee.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use ssv_protocol::runner::{
    AggregatorDomains, CommitteeDuty, ContributionDomains, DutyKind, ProposerDomains, ValidatorDuty,
};
use ssv_protocol::signing::{
    DOMAIN_AGGREGATE_AND_PROOF, DOMAIN_BEACON_ATTESTER, DOMAIN_BEACON_PROPOSER,
    DOMAIN_CONTRIBUTION_AND_PROOF, DOMAIN_RANDAO, DOMAIN_SELECTION_PROOF, DOMAIN_SYNC_COMMITTEE,
    DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, Domain, compute_domain,
};
use ssv_protocol::types::BeaconRole;
use tokio::sync::watch;

use super::metrics::{Metrics, Queue};
use super::network_view::DutyStore;
use super::registry::{LiveRegistry, Registry};
use super::shard::{ShardEvent, shard_of};
use super::validator_runners::ValidatorStart;
use ssv_beacon_api::check_attestation_data;
use ssv_beacon_api::client::BeaconClient;
use ssv_beacon_api::types::{AttesterDuty, Fork, ProposerDuty, SyncDuty};
use ssv_protocol::chain::SlotClock;
use ssv_protocol::message::RunnerRole;

/// Validator indices per duties request (beacon nodes cap request bodies).
pub const DUTIES_REQUEST_INDICES_MAX: usize = 2048;
/// Epochs of duties kept (current and next, plus one of slack).
pub const EPOCHS_KEPT: usize = 3;
/// Attempts to fetch a slot's attestation data before the slot is skipped.
pub const ATTESTATION_DATA_ATTEMPTS: usize = 3;

/// Fork data for signing domains: the beacon node's fork schedule (every fork with its
/// activation epoch), so that domains switch at a fork epoch while the node runs.
#[derive(Debug, Clone)]
pub struct ForkInfo {
    /// `(activation epoch, version)`, ascending by epoch; never empty.
    pub schedule: Vec<(u64, [u8; 4])>,
    /// Genesis validators root.
    pub genesis_validators_root: [u8; 32],
    /// Genesis fork version (the builder domain's).
    pub genesis_fork_version: [u8; 4],
    /// Capella's fork version (the exit domain's, EIP-7044), when the beacon node says it.
    pub capella_fork_version: Option<[u8; 4]>,
}

impl ForkInfo {
    /// From the beacon node's head fork, its fork schedule (`None` when it could not be
    /// read: the head fork's two versions only), its genesis and spec.
    pub fn new(
        fork: &Fork,
        schedule: Option<&[Fork]>,
        genesis: &ssv_beacon_api::types::Genesis,
        spec: &ssv_beacon_api::types::Spec,
    ) -> Self {
        let mut forks: Vec<(u64, [u8; 4])> = match schedule {
            Some(list) if !list.is_empty() => {
                let mut v: Vec<(u64, [u8; 4])> =
                    list.iter().map(|f| (f.epoch, f.current_version)).collect();
                v.push((0, list[0].previous_version));
                v
            }
            _ => vec![
                (0, fork.previous_version),
                (fork.epoch, fork.current_version),
            ],
        };
        // Ascending by epoch; at equal epochs the later entry (a scheduled fork) wins.
        forks.sort_by_key(|(e, _)| *e);
        let mut schedule: Vec<(u64, [u8; 4])> = Vec::with_capacity(forks.len());
        for (e, v) in forks {
            match schedule.last_mut() {
                Some(last) if last.0 == e => last.1 = v,
                _ => schedule.push((e, v)),
            }
        }
        ForkInfo {
            capella_fork_version: spec.capella_fork_version,
            schedule,
            genesis_validators_root: genesis.genesis_validators_root,
            genesis_fork_version: genesis.genesis_fork_version,
        }
    }

    /// The fork version in force at `epoch`.
    pub fn version_at(&self, epoch: u64) -> [u8; 4] {
        self.schedule
            .iter()
            .rev()
            .find(|(e, _)| *e <= epoch)
            .or(self.schedule.first())
            .map_or([0; 4], |(_, v)| *v)
    }

    fn domain(&self, kind: [u8; 4], epoch: u64) -> Domain {
        compute_domain(kind, self.version_at(epoch), self.genesis_validators_root)
    }
}

/// The scheduler's inputs.
pub struct Scheduler {
    /// Beacon nodes.
    pub client: Arc<BeaconClient>,
    /// Whom we run (followed as it changes: duties are fetched again for a new registry).
    pub registry: Arc<LiveRegistry>,
    /// One event channel per shard.
    pub shards: Vec<async_channel::Sender<ShardEvent>>,
    /// The slot clock.
    pub clock: SlotClock,
    /// Fork data.
    pub fork: ForkInfo,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Duties gossip validation checks messages against (every proposer of an epoch, every
    /// sync-committee member of the registry, our exits).
    pub duties: Arc<DutyStore>,
    /// Doppelganger protection's liveness checks (`None`: protection off).
    pub doppelganger: Option<super::doppelganger::Monitor>,
}

#[derive(Debug, Default, Clone)]
struct EpochDuties {
    attester: Vec<AttesterDuty>,
    sync: Vec<SyncDuty>,
    /// Our validators' proposals (the beacon node lists every proposer of the epoch).
    proposer: Vec<ProposerDuty>,
    /// The block root the proposer duties depend on (a change means a reorg: fetch again).
    proposer_dependent_root: Option<[u8; 32]>,
    /// The block root the attester duties depend on (likewise; `None`: not known, or the
    /// chunks of one fetch disagreed).
    attester_dependent_root: Option<[u8; 32]>,
}

/// The dependent roots of the newest head (Go's scheduler watches both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeadRoots {
    /// The head's epoch.
    epoch: u64,
    /// What the attester duties of `epoch` depend on.
    previous: Option<[u8; 32]>,
    /// What the proposer duties of `epoch` and the attester duties of `epoch + 1` depend on.
    current: Option<[u8; 32]>,
}

/// The epochs whose attester duties were fetched under another dependent root than `head`
/// says they now have (a reorg), each with the new root: the head epoch's against the
/// previous root, the next epoch's against the current root (as the Go scheduler does). An
/// epoch whose root is unknown on either side is left alone.
fn stale_attester_epochs(
    stored: &BTreeMap<u64, Arc<EpochDuties>>,
    head: &HeadRoots,
) -> Vec<(u64, [u8; 32])> {
    [(head.epoch, head.previous), (head.epoch + 1, head.current)]
        .into_iter()
        .filter_map(|(epoch, root)| {
            let root = root?;
            let had = stored.get(&epoch)?.attester_dependent_root?;
            (had != root).then_some((epoch, root))
        })
        .collect()
}

/// Duties of one epoch as the beacon node sent them, checked against our registry: only
/// duties of our validators, with the pubkey we hold for that index, at a slot inside the
/// epoch, and at most one attester duty per validator (a second one in the epoch would be a
/// second vote for the same target). Everything else is dropped with an error line; the
/// count of dropped duties is returned.
fn sanitize_duties(
    epoch: u64,
    clock: &SlotClock,
    registry: &Registry,
    duties: EpochDuties,
) -> (EpochDuties, u64) {
    let spec = clock.spec();
    let first = spec.first_slot(epoch);
    let slots = first..first.saturating_add(spec.slots_per_epoch());
    let ours = |index: u64, pubkey: &[u8; 48]| -> Result<(), &'static str> {
        let committee = registry
            .committee_of
            .get(&index)
            .and_then(|&c| registry.committees.get(c))
            .ok_or("not one of our validators")?;
        let share = committee
            .validators
            .get(&index)
            .ok_or("not one of our validators")?;
        if &share.pubkey != pubkey {
            return Err("another pubkey than our share of this index");
        }
        Ok(())
    };
    let mut refused = 0u64;
    let mut out = EpochDuties {
        proposer_dependent_root: duties.proposer_dependent_root,
        attester_dependent_root: duties.attester_dependent_root,
        ..EpochDuties::default()
    };
    let mut seen = std::collections::HashSet::new();
    for d in duties.attester {
        // Only a duty that is ours counts as the validator's one duty of the epoch: a forged
        // one listed first must not push the genuine one out.
        let why = if !slots.contains(&d.slot) {
            Err("slot outside the epoch")
        } else {
            ours(d.validator_index, &d.pubkey).and_then(|()| {
                if seen.insert(d.validator_index) {
                    Ok(())
                } else {
                    Err("second attester duty of the validator in the epoch")
                }
            })
        };
        match why {
            Ok(()) => out.attester.push(d),
            Err(why) => {
                refused += 1;
                tracing::error!(
                    epoch,
                    slot = d.slot,
                    validator = d.validator_index,
                    pubkey = hex::encode(d.pubkey),
                    "attester duty from the beacon node refused: {why}"
                );
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for d in duties.sync {
        let why = ours(d.validator_index, &d.pubkey).and_then(|()| {
            if seen.insert(d.validator_index) {
                Ok(())
            } else {
                Err("listed twice")
            }
        });
        match why {
            Ok(()) => out.sync.push(d),
            Err(why) => {
                refused += 1;
                tracing::error!(
                    epoch,
                    validator = d.validator_index,
                    "sync-committee duty from the beacon node refused: {why}"
                );
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for d in duties.proposer {
        // Every proposer of the epoch is listed; only ours are kept, silently.
        if !registry.committee_of.contains_key(&d.validator_index) {
            continue;
        }
        let why = if !slots.contains(&d.slot) {
            Err("slot outside the epoch")
        } else {
            ours(d.validator_index, &d.pubkey).and_then(|()| {
                if seen.insert(d.slot) {
                    Ok(())
                } else {
                    Err("second proposer of the slot")
                }
            })
        };
        match why {
            Ok(()) => out.proposer.push(d),
            Err(why) => {
                refused += 1;
                tracing::error!(
                    epoch,
                    slot = d.slot,
                    validator = d.validator_index,
                    "proposer duty from the beacon node refused: {why}"
                );
            }
        }
    }
    (out, refused)
}

impl Scheduler {
    async fn fetch_epoch(&self, epoch: u64, indices: &[u64]) -> anyhow::Result<EpochDuties> {
        let mut duties = EpochDuties::default();
        let mut roots = std::collections::HashSet::new();
        for chunk in indices.chunks(DUTIES_REQUEST_INDICES_MAX) {
            let (root, attester) = self.client.attester_duties_with_root(epoch, chunk).await?;
            roots.extend(root);
            duties.attester.extend(attester);
            duties
                .sync
                .extend(self.client.sync_duties(epoch, chunk).await?);
        }
        let proposers = self.client.proposer_duties(epoch).await?;
        self.duties.set_proposers(
            epoch,
            proposers.data.iter().map(|p| (p.slot, p.validator_index)),
        );
        duties.proposer = proposers.data;
        duties.proposer_dependent_root = Some(proposers.dependent_root);
        // Chunks answered under two roots (a reorg while fetching) leave it unknown.
        duties.attester_dependent_root = match roots.len() {
            1 => roots.into_iter().next(),
            _ => None,
        };
        self.fetch_network_sync_members(epoch).await;
        Ok(duties)
    }

    /// The sync-committee members of `epoch`'s period among every validator of the
    /// registry (validation checks other committees' contribution messages against them),
    /// once per period and registry version.
    async fn fetch_network_sync_members(&self, epoch: u64) {
        let period = self.clock.spec().sync_period_of(epoch);
        // Again whenever the registry changed: validators added since the last fetch would be
        // missing from the members.
        let version = *self.registry.subscribe().borrow();
        if self.duties.sync_period_fetched_for(period, version) {
            return;
        }
        let indices = self.registry.current().network.validator_indices();
        let mut members = Vec::new();
        for chunk in indices.chunks(DUTIES_REQUEST_INDICES_MAX) {
            match self.client.sync_duties(epoch, chunk).await {
                Ok(d) => members.extend(d.iter().map(|d| d.validator_index)),
                Err(e) => {
                    tracing::warn!(epoch, "fetching the registry's sync-committee members: {e}");
                    return;
                }
            }
        }
        self.duties.set_sync_members(period, members);
        self.duties.sync_period_fetched(period, version);
    }

    /// Fetches and checks the duties of `epoch` for every validator of `registry`.
    async fn fetch_checked(&self, epoch: u64, registry: &Registry) -> anyhow::Result<EpochDuties> {
        let mut indices: Vec<u64> = registry.committee_of.keys().copied().collect();
        indices.sort_unstable();
        let raw = self.fetch_epoch(epoch, &indices).await?;
        let (duties, refused) = sanitize_duties(epoch, &self.clock, registry, raw);
        Metrics::add(&self.metrics.beacon_duties_refused, refused);
        Ok(duties)
    }

    /// Runs until `stop` turns true. Duties are fetched by a task of their own (the current
    /// epoch and the next, ahead of time), never inside the slot loop: a hanging beacon node
    /// delays duties, not slots.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut doppelganger = self.doppelganger.take();
        let this = Arc::new(self);
        let (head_tx, head_rx) = watch::channel(0u64);
        let (dep_tx, dep_rx) = watch::channel(None::<HeadRoots>);
        let heads = tokio::spawn(follow_heads(
            this.client.clone(),
            head_tx,
            dep_tx,
            this.clock,
        ));
        let epochs: Arc<parking_lot::Mutex<BTreeMap<u64, Arc<EpochDuties>>>> = Arc::default();
        let (epoch_tx, epoch_rx) = watch::channel(
            this.clock
                .current_slot()
                .map_or(0, |s| this.clock.spec().epoch_of(s)),
        );
        let fetcher = tokio::spawn(fetch_ahead(this.clone(), epochs.clone(), epoch_rx, dep_rx));
        let mut next_slot = this.clock.current_slot().map_or(0, |s| s + 1);
        let mut exits_started = std::collections::HashSet::new();
        let mut first_slot: Option<u64> = None;
        loop {
            let wait = this.clock.until_slot(next_slot);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
            let slot = next_slot;
            next_slot += 1;
            // A node that fell behind (suspended, overloaded) skips to the current slot.
            if let Some(now) = this.clock.current_slot()
                && now > slot + 1
            {
                tracing::warn!(
                    slot,
                    now,
                    "scheduler fell behind; skipping to the current slot"
                );
                next_slot = now + 1;
                continue;
            }
            // Exits wait a few slots after start-up: their partials are published once, and
            // right after start the gossip mesh may not have formed yet (a lost partial with
            // one faulty operator leaves no quorum).
            let first = *first_slot.get_or_insert(slot);
            if slot >= first + EXIT_DELAY_SLOTS {
                this.start_exits(slot, &mut exits_started);
            }
            // Before the slot's duties: a check due now may release validators for them.
            if let Some(d) = &mut doppelganger {
                d.on_slot(slot, this.clock.spec()).await;
            }
            let epoch = this.clock.spec().epoch_of(slot);
            epoch_tx.send_if_modified(|e| {
                let newer = epoch > *e;
                if newer {
                    *e = epoch;
                }
                newer
            });
            let Some(duties) = epochs.lock().get(&epoch).cloned() else {
                Metrics::add(&this.metrics.slots_skipped, 1);
                tracing::warn!(slot, epoch, "no duties for the epoch yet: slot skipped");
                continue;
            };
            let this2 = this.clone();
            let head_rx = head_rx.clone();
            tokio::spawn(async move { this2.run_slot(slot, &duties, head_rx).await });
        }
        fetcher.abort();
        heads.abort();
    }

    async fn run_slot(&self, slot: u64, duties: &EpochDuties, mut head: watch::Receiver<u64>) {
        let epoch = self.clock.spec().epoch_of(slot);
        // Proposals first and at once: the block is built on the parent the beacon node has.
        for d in duties.proposer.iter().filter(|d| d.slot == slot) {
            self.start_proposal(d, epoch);
        }
        self.start_registrations(slot);
        // Every attester also tries to aggregate: whether it is an aggregator is known only
        // from its selection proof, a threshold signature of the slot (the Go node does the
        // same). The aggregate itself is fetched at two thirds of the slot.
        for d in duties.attester.iter().filter(|d| d.slot == slot) {
            self.start_aggregation(d, epoch);
        }
        // Every sync-committee member tries to contribute, for each of its subcommittees.
        for d in &duties.sync {
            self.start_contribution(d, slot, epoch);
        }
        let registry = self.registry.current();
        let mut by_committee: HashMap<usize, Vec<ValidatorDuty>> = HashMap::new();
        for d in duties.attester.iter().filter(|d| d.slot == slot) {
            if let Some(&c) = registry.committee_of.get(&d.validator_index) {
                by_committee.entry(c).or_default().push(ValidatorDuty {
                    kind: DutyKind::Attester {
                        committee_index: d.committee_index,
                        committees_at_slot: d.committees_at_slot,
                        validator_committee_index: d.validator_committee_index,
                    },
                    validator_index: d.validator_index,
                    pubkey: d.pubkey,
                });
            }
        }
        for d in &duties.sync {
            if let Some(&c) = registry.committee_of.get(&d.validator_index) {
                by_committee.entry(c).or_default().push(ValidatorDuty {
                    kind: DutyKind::SyncCommittee,
                    validator_index: d.validator_index,
                    pubkey: d.pubkey,
                });
            }
        }
        if by_committee.is_empty() {
            return;
        }
        // Attest to the slot's block: wait for its head event, at most a third of the slot.
        let deadline = self.clock.spec().slot_duration() / 3;
        let _ = tokio::time::timeout(deadline, head.wait_for(|h| *h >= slot)).await;
        let mut data = None;
        for attempt in 0..ATTESTATION_DATA_ATTEMPTS {
            match self.client.attestation_data(slot, 0).await {
                Ok(d) => {
                    data = Some(d);
                    break;
                }
                Err(e) => {
                    tracing::warn!(slot, attempt, "attestation data: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let Some(data) = data else {
            Metrics::add(&self.metrics.slots_skipped, 1);
            tracing::error!(slot, "no attestation data: slot skipped");
            return;
        };
        if let Err(why) = check_attestation_data(slot, self.clock.spec(), &data) {
            Metrics::add(&self.metrics.beacon_data_refused, 1);
            Metrics::add(&self.metrics.slots_skipped, 1);
            tracing::error!(slot, "attestation data from the beacon node refused: {why}");
            return;
        }
        let vote = data.vote();
        let attester_domain = self.fork.domain(DOMAIN_BEACON_ATTESTER, epoch);
        let sync_domain = self.fork.domain(DOMAIN_SYNC_COMMITTEE, epoch);
        // A committee holding several of our operators has one entry per operator: each
        // runs the duty as its own member.
        let mut runs: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
        for (i, c) in registry.committees.iter().enumerate() {
            runs.entry(c.id).or_default().push(i);
        }
        let by_committee = by_committee.into_iter().flat_map(|(c, duties)| {
            let entries = registry
                .committees
                .get(c)
                .and_then(|info| runs.get(&info.id))
                .cloned()
                .unwrap_or_else(|| vec![c]);
            entries.into_iter().map(move |e| (e, duties.clone()))
        });
        for (committee, duties) in by_committee {
            let duty = CommitteeDuty {
                slot,
                duties,
                attester_domain,
                sync_domain,
                // The node submits Electra attestations only (the fork schedule comes
                // with the duty-roles issue).
                pre_electra: false,
            };
            let Some(info) = registry.committees.get(committee) else {
                continue;
            };
            let shard = shard_of(info, self.shards.len());
            let event = ShardEvent::Duty {
                committee,
                duty,
                vote,
            };
            if self.shards[shard].try_send(event).is_err() {
                Metrics::add(&self.metrics.slots_skipped, 1);
                self.metrics.record_dropped(Queue::ShardEvents, 1);
                tracing::error!(slot, shard, "shard queue full: committee duty dropped");
            } else {
                self.metrics
                    .record_scheduled(RunnerRole::Committee, self.slot_delay(slot));
            }
        }
    }
}

impl Scheduler {
    /// Hands a proposer duty of ours to the shard that owns the validator's committee.
    fn start_proposal(&self, d: &ProposerDuty, epoch: u64) {
        let Some(&committee) = self.registry.current().committee_of.get(&d.validator_index) else {
            return;
        };
        let duty = validator_duty(BeaconRole::Proposer, d.pubkey, d.slot, d.validator_index);
        let domains = ProposerDomains {
            randao: self.fork.domain(DOMAIN_RANDAO, epoch),
            proposer: self.fork.domain(DOMAIN_BEACON_PROPOSER, epoch),
        };
        self.start_validator_duty(
            committee,
            d.slot,
            ValidatorStart::Proposal { duty, domains },
        );
    }

    /// Hands the aggregation duty of one of our attesters to its committee's shard.
    fn start_aggregation(&self, d: &AttesterDuty, epoch: u64) {
        let Some(&committee) = self.registry.current().committee_of.get(&d.validator_index) else {
            return;
        };
        let duty = ssv_protocol::beacon::consensus_data::ValidatorDuty {
            committee_index: d.committee_index,
            committee_length: d.committee_length,
            committees_at_slot: d.committees_at_slot,
            validator_committee_index: d.validator_committee_index,
            ..validator_duty(BeaconRole::Aggregator, d.pubkey, d.slot, d.validator_index)
        };
        let domains = AggregatorDomains {
            selection_proof: self.fork.domain(DOMAIN_SELECTION_PROOF, epoch),
            aggregate_and_proof: self.fork.domain(DOMAIN_AGGREGATE_AND_PROOF, epoch),
        };
        self.start_validator_duty(
            committee,
            d.slot,
            ValidatorStart::Aggregation { duty, domains },
        );
    }

    /// Voluntary exits of the validators whose owner requested one (`ValidatorExited`, as
    /// contract sync stored it): each started once (`started`), in the first slot this runs
    /// after the request reached the registry (at start-up or while the node runs).
    fn start_exits(&self, slot: u64, started: &mut std::collections::HashSet<[u8; 48]>) {
        let registry = self.registry.current();
        // Each validator once, at its duty entry (a committee with several of our operator
        // IDs has an entry per ID).
        let pending: Vec<(usize, Arc<super::registry::ValidatorShare>)> = registry
            .committee_of
            .iter()
            .filter_map(|(index, &c)| {
                Some((
                    c,
                    registry.committees.get(c)?.validators.get(index)?.clone(),
                ))
            })
            .filter(|(_, v)| v.exit_requested.is_some() && !started.contains(&v.pubkey))
            .collect();
        if pending.is_empty() {
            return;
        }
        let Some(capella) = self.fork.capella_fork_version else {
            tracing::error!(
                pending = pending.len(),
                "the beacon node's spec has no CAPELLA_FORK_VERSION: exits not signed"
            );
            for (_, v) in pending {
                started.insert(v.pubkey);
            }
            return;
        };
        let domain = ssv_protocol::runner::voluntary_exit::exit_domain(
            capella,
            self.fork.genesis_validators_root,
        );
        for (committee, share) in pending {
            started.insert(share.pubkey);
            tracing::info!(validator = share.index, slot, "exit requested: signing it");
            self.duties
                .add_exit(self.clock.spec().epoch_of(slot), share.pubkey);
            let object = ssv_protocol::runner::voluntary_exit::exit_object(
                self.clock.spec(),
                slot,
                share.index,
            );
            self.start_validator_duty(
                committee,
                slot,
                ValidatorStart::Exit {
                    pubkey: share.pubkey,
                    slot,
                    object,
                    domain,
                },
            );
        }
    }

    /// Builder registrations of the slot: each validator once every
    /// [`REGISTRATION_PERIOD_EPOCHS`], in the slot of that period whose number matches its
    /// index (as the Go node spreads them).
    fn start_registrations(&self, slot: u64) {
        let spec = self.clock.spec();
        let period = REGISTRATION_PERIOD_EPOCHS * spec.slots_per_epoch();
        let epoch_start_s = self
            .clock
            .slot_start_ms(spec.first_slot(spec.epoch_of(slot)))
            / 1000;
        let domain = ssv_protocol::runner::validator_registration::builder_domain(
            self.fork.genesis_fork_version,
        );
        let registry = self.registry.current();
        for (&index, &committee) in &registry.committee_of {
            if index % period != slot % period {
                continue;
            }
            let Some(share) = registry
                .committees
                .get(committee)
                .and_then(|c| c.validators.get(&index))
            else {
                continue;
            };
            let object = ssv_protocol::runner::validator_registration::registration_object(
                share.fee_recipient,
                ssv_protocol::runner::validator_registration::DEFAULT_GAS_LIMIT,
                epoch_start_s,
                share.pubkey,
            );
            self.start_validator_duty(
                committee,
                slot,
                ValidatorStart::Registration {
                    pubkey: share.pubkey,
                    slot,
                    object,
                    domain,
                },
            );
        }
    }

    /// Hands the contribution duty of one of our sync-committee members to its committee's
    /// shard.
    fn start_contribution(&self, d: &SyncDuty, slot: u64, epoch: u64) {
        let Some(&committee) = self.registry.current().committee_of.get(&d.validator_index) else {
            return;
        };
        let Ok(indices) = d.validator_sync_committee_indices.clone().try_into() else {
            tracing::error!(
                validator = d.validator_index,
                "too many sync-committee indices"
            );
            return;
        };
        let duty = ssv_protocol::beacon::consensus_data::ValidatorDuty {
            validator_sync_committee_indices: indices,
            ..validator_duty(
                BeaconRole::SyncCommitteeContribution,
                d.pubkey,
                slot,
                d.validator_index,
            )
        };
        // The subcommittee of a sync-committee index (SYNC_COMMITTEE_SIZE / 4 per subnet).
        let subnets = d
            .validator_sync_committee_indices
            .iter()
            .map(|i| i / ssv_protocol::beacon::SYNC_SUBCOMMITTEE_SIZE as u64)
            .collect();
        let domains = ContributionDomains {
            selection_proof: self
                .fork
                .domain(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, epoch),
            contribution_and_proof: self.fork.domain(DOMAIN_CONTRIBUTION_AND_PROOF, epoch),
        };
        self.start_validator_duty(
            committee,
            slot,
            ValidatorStart::Contribution {
                duty,
                subnets,
                domains,
            },
        );
    }

    fn start_validator_duty(&self, committee: usize, slot: u64, start: ValidatorStart) {
        let Some(info) = self.registry.current().committees.get(committee).cloned() else {
            return;
        };
        let shard = shard_of(&info, self.shards.len());
        let role = start.target().2;
        if self.shards[shard]
            .try_send(ShardEvent::ValidatorDuty(start))
            .is_err()
        {
            Metrics::add(&self.metrics.slots_skipped, 1);
            self.metrics.record_dropped(Queue::ShardEvents, 1);
            tracing::error!(slot, shard, "shard queue full: validator duty dropped");
        } else {
            self.metrics.record_scheduled(role, self.slot_delay(slot));
        }
    }

    /// How late a duty of `slot` is handed to its shard, after the slot's start (the Go
    /// node's slot ticker delay; zero for a duty handed over before its slot).
    fn slot_delay(&self, slot: u64) -> Duration {
        let late = SlotClock::now_ms().saturating_sub(self.clock.slot_start_ms(slot));
        Duration::from_millis(late)
    }
}

/// A validator duty of `role` with no committee fields (what proposals need; the aggregator
/// and contribution duties fill theirs in).
fn validator_duty(
    role: BeaconRole,
    pubkey: [u8; 48],
    slot: u64,
    validator_index: u64,
) -> ssv_protocol::beacon::consensus_data::ValidatorDuty {
    ssv_protocol::beacon::consensus_data::ValidatorDuty {
        role: role.to_u64(),
        pubkey,
        slot,
        validator_index,
        committee_index: 0,
        committee_length: 0,
        committees_at_slot: 0,
        validator_committee_index: 0,
        validator_sync_committee_indices: Default::default(),
    }
}

/// Slots after the node's first slot before it signs the stored exit requests.
pub const EXIT_DELAY_SLOTS: u64 = 4;

/// Epochs between two builder registrations of a validator (the Go node's).
pub const REGISTRATION_PERIOD_EPOCHS: u64 = 10;

/// Pause between attempts to fetch an epoch's duties that failed.
pub const DUTIES_RETRY: Duration = Duration::from_millis(500);

/// Keeps the duties of the current epoch (from `epoch`) and the next one in `epochs`,
/// fetching each once (retrying a failed fetch), and drops old ones. When the registry
/// changes both are fetched again for the new set of validators (the old duties serve until
/// the new ones are in: a removed validator's duties are dropped at the slot anyway, since
/// its committee no longer lists it), and the beacon node is told the new fee recipients.
async fn fetch_ahead(
    this: Arc<Scheduler>,
    epochs: Arc<parking_lot::Mutex<BTreeMap<u64, Arc<EpochDuties>>>>,
    mut epoch: watch::Receiver<u64>,
    mut dependent: watch::Receiver<Option<HeadRoots>>,
) {
    let mut changes = this.registry.subscribe();
    // The registry version the duties in `epochs` were fetched for.
    let mut fetched_for: BTreeMap<u64, u64> = BTreeMap::new();
    // (epoch, attester dependent root) already fetched again after a reorg.
    let mut refetched: std::collections::HashSet<(u64, [u8; 32])> = Default::default();
    loop {
        let current = *epoch.borrow_and_update();
        let version = *changes.borrow_and_update();
        let registry = this.registry.current();
        let mut missing = false;
        for e in [current, current + 1] {
            if epochs.lock().contains_key(&e) && fetched_for.get(&e) == Some(&version) {
                continue;
            }
            let refetch = epochs.lock().contains_key(&e);
            match this.fetch_checked(e, &registry).await {
                Ok(d) => {
                    tracing::info!(
                        epoch = e,
                        attester = d.attester.len(),
                        sync = d.sync.len(),
                        proposer = d.proposer.len(),
                        validators = registry.validator_count(),
                        registry_changed = refetch,
                        "duties fetched"
                    );
                    // Not waited for: the beacon node's subnets and fee recipients are its
                    // own affair, and a slow answer must not hold the duties back.
                    tokio::spawn(prepare_beacon_node(this.clone(), e, Arc::new(d.clone())));
                    let mut map = epochs.lock();
                    map.insert(e, Arc::new(d));
                    fetched_for.insert(e, version);
                    while map.len() > EPOCHS_KEPT {
                        if let Some((old, _)) = map.pop_first() {
                            fetched_for.remove(&old);
                        }
                    }
                }
                Err(err) => {
                    missing = true;
                    tracing::warn!(epoch = e, "fetching duties: {err:#}");
                }
            }
        }
        if missing {
            tokio::time::sleep(DUTIES_RETRY).await;
            continue;
        }
        tokio::select! {
            changed = epoch.changed() => if changed.is_err() { return },
            changed = changes.changed() => if changed.is_err() { return },
            changed = dependent.changed() => {
                if changed.is_err() {
                    return;
                }
                let seen = *dependent.borrow_and_update();
                if let Some(head) = seen {
                    if let Some(root) = head.current {
                        refetch_proposers(&this, &epochs, head.epoch, root).await;
                    }
                    let stale = stale_attester_epochs(&epochs.lock(), &head);
                    for (e, root) in stale {
                        // Once per new root: beacon nodes that disagree cannot make it loop.
                        if refetched.insert((e, root)) {
                            tracing::warn!(
                                epoch = e,
                                "attester duties' dependent root changed (reorg): fetching \
                                 them again"
                            );
                            fetched_for.remove(&e);
                        }
                    }
                }
            }
        }
    }
}

/// Fetches the proposer duties of `epoch` again when the head's dependent root for them is
/// not the one they were fetched under (a reorg replaced the block they depend on).
async fn refetch_proposers(
    this: &Scheduler,
    epochs: &parking_lot::Mutex<BTreeMap<u64, Arc<EpochDuties>>>,
    epoch: u64,
    root: [u8; 32],
) {
    let Some(old) = epochs.lock().get(&epoch).cloned() else {
        return;
    };
    if old.proposer_dependent_root == Some(root) {
        return;
    }
    let fetched = match this.client.proposer_duties(epoch).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(epoch, "fetching proposer duties again: {e}");
            return;
        }
    };
    let raw = EpochDuties {
        proposer: fetched.data,
        proposer_dependent_root: Some(fetched.dependent_root),
        ..EpochDuties::default()
    };
    this.duties.set_proposers(
        epoch,
        raw.proposer.iter().map(|p| (p.slot, p.validator_index)),
    );
    let (checked, refused) = sanitize_duties(epoch, &this.clock, &this.registry.current(), raw);
    Metrics::add(&this.metrics.beacon_duties_refused, refused);
    tracing::warn!(
        epoch,
        before = old.proposer.len(),
        after = checked.proposer.len(),
        "proposer duties' dependent root changed (reorg): fetched again"
    );
    let updated = EpochDuties {
        proposer: checked.proposer,
        proposer_dependent_root: checked.proposer_dependent_root,
        ..(*old).clone()
    };
    epochs.lock().insert(epoch, Arc::new(updated));
}

/// Tells the beacon node what the epoch's duties need of it: the attesters' committee
/// subnets (every attester as a possible aggregator: an SSV node knows only after the
/// threshold selection proof, and the Go node subscribes so too), the sync-committee members'
/// subnets until the end of their period, and every validator's fee recipient.
async fn prepare_beacon_node(this: Arc<Scheduler>, epoch: u64, duties: Arc<EpochDuties>) {
    use ssv_beacon_api::types::{
        BeaconCommitteeSubscription, ProposerPreparation, SyncCommitteeSubscription,
    };
    let spec = this.clock.spec();
    let committees: Vec<BeaconCommitteeSubscription> = duties
        .attester
        .iter()
        .map(|d| BeaconCommitteeSubscription {
            validator_index: d.validator_index,
            committee_index: d.committee_index,
            committees_at_slot: d.committees_at_slot,
            slot: d.slot,
            is_aggregator: true,
        })
        .collect();
    let period_end = (epoch / spec.epochs_per_sync_committee_period() + 1)
        * spec.epochs_per_sync_committee_period();
    let sync: Vec<SyncCommitteeSubscription> = duties
        .sync
        .iter()
        .map(|d| SyncCommitteeSubscription {
            validator_index: d.validator_index,
            sync_committee_indices: d.validator_sync_committee_indices.clone(),
            until_epoch: period_end,
        })
        .collect();
    let mut preparations: Vec<ProposerPreparation> = this
        .registry
        .current()
        .shares()
        .map(|v| ProposerPreparation {
            validator_index: v.index,
            fee_recipient: v.fee_recipient,
        })
        .collect();
    preparations.sort_by_key(|p| p.validator_index);
    for chunk in committees.chunks(DUTIES_REQUEST_INDICES_MAX) {
        if let Err(e) = this.client.beacon_committee_subscriptions(chunk).await {
            tracing::warn!(epoch, "beacon committee subscriptions: {e}");
        }
    }
    for chunk in sync.chunks(DUTIES_REQUEST_INDICES_MAX) {
        if let Err(e) = this.client.sync_committee_subscriptions(chunk).await {
            tracing::warn!(epoch, "sync committee subscriptions: {e}");
        }
    }
    for chunk in preparations.chunks(DUTIES_REQUEST_INDICES_MAX) {
        if let Err(e) = this.client.prepare_beacon_proposer(chunk).await {
            tracing::warn!(epoch, "fee recipients (prepare_beacon_proposer): {e}");
        }
    }
}

/// Follows the head events of every beacon node into `tx` (the newest head slot) and
/// `dependent` (the newest head's epoch and dependent roots).
async fn follow_heads(
    client: Arc<BeaconClient>,
    tx: watch::Sender<u64>,
    dependent: watch::Sender<Option<HeadRoots>>,
    clock: SlotClock,
) {
    let spec = *clock.spec();
    // Every configured node's heads, merged and without copies; each node's subscription is
    // made again by the client when it ends.
    let mut events = client.head_events();
    while let Some(ev) = events.next().await {
        match head_verdict(*tx.borrow(), ev.slot, clock.current_slot()) {
            HeadVerdict::Future => {
                tracing::debug!(slot = ev.slot, "head event for a future slot ignored");
                continue;
            }
            HeadVerdict::Older => continue,
            HeadVerdict::Take => {}
        }
        tx.send_if_modified(|h| {
            let newer = ev.slot > *h;
            if newer {
                *h = ev.slot;
            }
            newer
        });
        if ev.current_duty_dependent_root.is_some() || ev.previous_duty_dependent_root.is_some() {
            let seen = Some(HeadRoots {
                epoch: spec.epoch_of(ev.slot),
                previous: ev.previous_duty_dependent_root,
                current: ev.current_duty_dependent_root,
            });
            dependent.send_if_modified(|d| {
                let changed = *d != seen;
                if changed {
                    *d = seen;
                }
                changed
            });
        }
    }
    tracing::error!("head event streams ended: no head events any more");
}

/// What to do with a head event at `slot` when the newest head taken is at `newest`.
#[derive(Debug, PartialEq, Eq)]
enum HeadVerdict {
    /// A head at or after the newest: the chain's head now, its dependent root too.
    Take,
    /// An older head: a lagging node's (heads come from every node), or a copy that arrived
    /// late. Neither its slot nor its dependent root is the chain's now — taking the root
    /// would make the proposer duties be fetched again for nothing, back and forth.
    Older,
    /// More than a slot past our clock: no honest node is there yet.
    Future,
}

fn head_verdict(newest: u64, slot: u64, now: Option<u64>) -> HeadVerdict {
    if now.is_some_and(|now| slot > now.saturating_add(1)) {
        HeadVerdict::Future
    } else if slot < newest {
        HeadVerdict::Older
    } else {
        HeadVerdict::Take
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ssv_crypto_pipeline::{OperatorKeyCache, SecretKey};
    use ssv_protocol::chain::ChainSpec;
    use ssv_protocol::committee::CommitteeId;
    use ssv_protocol::types::{CommitteeMember, DomainType};

    use super::*;
    use crate::runtime::registry::{CommitteeInfo, ValidatorShare};

    fn key(i: u64) -> SecretKey {
        SecretKey::from_ikm(&[i as u8 + 1; 32])
    }

    /// Validators 5 and 6 in one committee.
    fn registry() -> Registry {
        let validators: HashMap<u64, Arc<ValidatorShare>> = [5u64, 6]
            .into_iter()
            .map(|i| {
                let sk = key(i);
                let share = ValidatorShare {
                    index: i,
                    pubkey: sk.public_key().to_bytes(),
                    public_key: sk.public_key(),
                    secret_share: sk,
                    fee_recipient: [0; 20],
                    exit_requested: None,
                    owner: [0; 20],
                    share_pubkey_bytes: Vec::new(),
                    share_pubkeys: Default::default(),
                };
                (i, Arc::new(share))
            })
            .collect();
        let member = CommitteeMember {
            operator_id: 1,
            committee_id: CommitteeId::from_operators(&[1, 2, 3, 4]),
            rsa_public_key_pem: Vec::new(),
            faulty_nodes: 1,
            committee: Vec::new(),
            domain: DomainType::SPEC_TESTING,
        };
        Registry {
            operator_id: 1,
            operator_keys: Arc::new(OperatorKeyCache::new()),
            committees: vec![Arc::new(CommitteeInfo {
                id: member.committee_id.0,
                operators: vec![1, 2, 3, 4],
                subnet: 0,
                member,
                validators,
            })],
            committee_of: [(5, 0), (6, 0)].into_iter().collect(),
            skipped: Vec::new(),
            network: Default::default(),
        }
    }

    fn clock() -> SlotClock {
        SlotClock::from_genesis_ms(0, ChainSpec::MAINNET).expect("clock")
    }

    fn att(index: u64, slot: u64, pubkey: [u8; 48]) -> AttesterDuty {
        AttesterDuty {
            pubkey,
            validator_index: index,
            committee_index: 0,
            committee_length: 10,
            committees_at_slot: 1,
            validator_committee_index: 0,
            slot,
        }
    }

    /// The schedule's version switches at each fork epoch; the head fork alone gives two.
    #[test]
    fn fork_versions_switch_at_their_epochs() {
        let genesis = ssv_beacon_api::types::Genesis {
            genesis_time: 0,
            genesis_validators_root: [0; 32],
            genesis_fork_version: [0; 4],
        };
        let spec = ssv_beacon_api::types::Spec {
            seconds_per_slot: 12,
            slots_per_epoch: 32,
            slot_duration_ms: None,
            epochs_per_sync_committee_period: 256,
            capella_fork_version: None,
        };
        let fork = |p: u8, c: u8, epoch| Fork {
            previous_version: [p, 0, 0, 0],
            current_version: [c, 0, 0, 0],
            epoch,
        };
        let schedule = [fork(0, 0, 0), fork(0, 1, 10), fork(1, 2, 20)];
        let f = ForkInfo::new(&fork(0, 1, 10), Some(&schedule), &genesis, &spec);
        assert_eq!(f.version_at(0), [0, 0, 0, 0]);
        assert_eq!(f.version_at(9), [0, 0, 0, 0]);
        assert_eq!(f.version_at(10), [1, 0, 0, 0]);
        assert_eq!(f.version_at(19), [1, 0, 0, 0]);
        assert_eq!(f.version_at(20), [2, 0, 0, 0]);
        assert_eq!(f.version_at(u64::MAX), [2, 0, 0, 0]);
        let head_only = ForkInfo::new(&fork(1, 2, 20), None, &genesis, &spec);
        assert_eq!(head_only.version_at(5), [1, 0, 0, 0]);
        assert_eq!(head_only.version_at(20), [2, 0, 0, 0]);
    }

    /// What a lying beacon node may list: a duplicate duty in the epoch (with our pubkey or
    /// another), a foreign index, a slot of another epoch, two proposers of one slot; only the
    /// first genuine duty of each of our validators is kept (and one proposer per slot).
    #[test]
    fn duties_are_checked_against_our_registry() {
        let pk = |i| key(i).public_key().to_bytes();
        let raw = EpochDuties {
            attester: vec![
                att(5, 64, pk(5)),
                att(5, 70, pk(9)), // same index again, fake pubkey
                att(5, 71, pk(5)), // same index again, same pubkey
                att(6, 96, pk(6)), // next epoch's slot
                att(7, 65, pk(7)), // not ours
                att(6, 66, pk(9)), // our index, another pubkey, listed first...
                att(6, 67, pk(6)), // ...does not push the genuine duty out
            ],
            sync: vec![
                SyncDuty {
                    pubkey: pk(6),
                    validator_index: 6,
                    validator_sync_committee_indices: vec![3],
                },
                SyncDuty {
                    pubkey: pk(9),
                    validator_index: 5,
                    validator_sync_committee_indices: vec![4],
                },
            ],
            proposer: vec![
                ProposerDuty {
                    pubkey: pk(7),
                    validator_index: 7,
                    slot: 64,
                }, // not ours: dropped without counting
                ProposerDuty {
                    pubkey: pk(9),
                    validator_index: 5,
                    slot: 65,
                }, // our index, another pubkey
                ProposerDuty {
                    pubkey: pk(5),
                    validator_index: 5,
                    slot: 66,
                },
                ProposerDuty {
                    pubkey: pk(6),
                    validator_index: 6,
                    slot: 66,
                }, // a second proposer of slot 66
                ProposerDuty {
                    pubkey: pk(6),
                    validator_index: 6,
                    slot: 96,
                }, // next epoch's slot
            ],
            proposer_dependent_root: None,
            attester_dependent_root: None,
        };
        let (kept, refused) = sanitize_duties(2, &clock(), &registry(), raw);
        assert_eq!(
            kept.attester
                .iter()
                .map(|d| (d.validator_index, d.slot))
                .collect::<Vec<_>>(),
            vec![(5, 64), (6, 67)]
        );
        assert_eq!(
            kept.sync
                .iter()
                .map(|d| d.validator_index)
                .collect::<Vec<_>>(),
            vec![6]
        );
        assert_eq!(
            kept.proposer
                .iter()
                .map(|d| (d.validator_index, d.slot))
                .collect::<Vec<_>>(),
            vec![(5, 66)]
        );
        assert_eq!(refused, 9);
    }

    #[test]
    fn older_and_future_heads_are_not_taken() {
        // The newest head is at slot 100, our clock at 101.
        assert_eq!(head_verdict(100, 101, Some(101)), HeadVerdict::Take);
        assert_eq!(
            head_verdict(100, 100, Some(101)),
            HeadVerdict::Take,
            "another node's block at the slot"
        );
        assert_eq!(
            head_verdict(100, 102, Some(101)),
            HeadVerdict::Take,
            "a slot of clock skew"
        );
        assert_eq!(
            head_verdict(100, 84, Some(101)),
            HeadVerdict::Older,
            "a lagging node's head"
        );
        assert_eq!(head_verdict(100, 103, Some(101)), HeadVerdict::Future);
        assert_eq!(head_verdict(0, u64::MAX, Some(101)), HeadVerdict::Future);
        assert_eq!(
            head_verdict(0, 5, None),
            HeadVerdict::Take,
            "before genesis by our clock"
        );
    }

    /// A reorg is seen in the head's dependent roots as the Go scheduler sees it: the head
    /// epoch's attester duties against the previous root, the next epoch's against the
    /// current one; an unknown root on either side changes nothing.
    #[test]
    fn attester_duties_are_fetched_again_when_their_dependent_root_changes() {
        let with_root = |r: Option<u8>| {
            Arc::new(EpochDuties {
                attester_dependent_root: r.map(|b| [b; 32]),
                ..EpochDuties::default()
            })
        };
        let stored: BTreeMap<u64, Arc<EpochDuties>> = [
            (4, with_root(Some(1))),
            (5, with_root(Some(2))),
            (6, with_root(None)),
        ]
        .into_iter()
        .collect();
        let head = |epoch, previous: Option<u8>, current: Option<u8>| HeadRoots {
            epoch,
            previous: previous.map(|b| [b; 32]),
            current: current.map(|b| [b; 32]),
        };
        assert!(stale_attester_epochs(&stored, &head(4, Some(1), Some(2))).is_empty());
        assert_eq!(
            stale_attester_epochs(&stored, &head(4, Some(9), Some(2))),
            vec![(4, [9; 32])]
        );
        assert_eq!(
            stale_attester_epochs(&stored, &head(4, Some(1), Some(8))),
            vec![(5, [8; 32])]
        );
        assert!(stale_attester_epochs(&stored, &head(4, None, None)).is_empty());
        // Epoch 6's root is unknown, epoch 7 was never fetched.
        assert!(stale_attester_epochs(&stored, &head(6, Some(3), Some(3))).is_empty());
    }
}
