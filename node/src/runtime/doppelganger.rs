//! Doppelganger protection (opt-in): a validator is not signed for until the beacon node's
//! liveness data for the configured number of epochs shows no other instance of it, as the Go
//! node's `doppelganger/` package (v2.3.7) does.
//!
//! ```text
//! scheduler, every slot ─► Monitor::on_slot ─► Detection::due(slot) ─► epoch to check?
//!     └─ POST /eth/v1/validator/liveness/{epoch} (validators still in detection)
//!          └─ Detection::apply: live ─► countdown back to the start; not live ─► one epoch less
//! signing path (shards, crypto pool) ─► Doppelganger::gate().can_sign(index)
//! post-consensus quorum reconstructed (attestation, block) ─► Doppelganger::report_quorum
//! ```
//!
//! A quorum of our committee's partial signatures for a validator proves that the live
//! instance is this cluster (the other operators sign it), so it ends detection at once; without
//! that, the committee's own attestations would make the validator look "live elsewhere" to
//! an operator that restarts, forever.
//!
//! Timing (the Go node's): the first check runs at the first slot the node sees and asks about
//! the previous epoch (a node started in the genesis epoch waits for epoch 1, as there is no
//! previous epoch); then each epoch's last slot asks about the epoch before it (whose
//! attestations have had the whole current epoch to be seen), except in the epoch the node
//! started in (the epoch before it was just checked). A skipped check (the node fell behind by
//! an epoch) starts every countdown again. The scheduler lets a slot's duties wait for that
//! slot's check (at most [`CHECK_WAIT_MAX`]), so a validator released by the check signs that
//! slot's duties.
//!
//! Which signatures wait: every duty the beacon chain sees as the validator's activity —
//! attestations and sync-committee messages (committee runner), blocks (RANDAO and block),
//! aggregations (selection proof and aggregate) and sync-committee contributions. Builder
//! registrations and voluntary exits are signed during detection: neither is slashable nor a
//! beacon-chain duty, and an exit is the owner's on-chain request, signed once after start.
//! The Go node gates only attestations and blocks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard};
use ssv_beacon_api::client::BeaconClient;
use ssv_protocol::chain::ChainSpec;

use super::metrics::Metrics;
use super::registry::{LiveRegistry, StoppedValidators};

/// Detection epochs when the config does not say (the Go node's
/// `initialRemainingDetectionEpochs`).
pub const DETECTION_EPOCHS_DEFAULT: u64 = 2;
/// Most detection epochs the config accepts (about 3.4 hours of mainnet epochs): beyond that
/// a restart keeps validators offline for longer than any operator would want.
pub const DETECTION_EPOCHS_MAX: u64 = 32;
/// Validator indices per liveness request (beacon nodes cap request bodies; the duties
/// requests use the same bound).
pub const LIVENESS_REQUEST_INDICES_MAX: usize = 2048;
/// Longest a slot's duties wait for the liveness check due at that slot (and at most a
/// quarter of the slot). Too small: a validator the check releases misses that slot's
/// duties; too large: a hanging beacon node delays that slot's duties of every validator
/// (once an epoch, and only while some validator is still in detection).
pub const CHECK_WAIT_MAX: Duration = Duration::from_secs(1);

/// One validator's detection state (the Go node's `doppelgangerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ValidatorState {
    /// Epochs still to be seen not live before it is safe.
    remaining_epochs: u64,
    /// A quorum of our committee's post-consensus partials for it was seen.
    observed_quorum: bool,
}

impl ValidatorState {
    fn safe(&self) -> bool {
        self.remaining_epochs == 0 || self.observed_quorum
    }
}

/// What one liveness answer changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Validators seen live: their countdown started again.
    pub live: Vec<u64>,
    /// Validators that became safe with this answer.
    pub now_safe: Vec<u64>,
}

/// The detection state machine, sans IO: the validators tracked, their countdowns and when
/// a liveness check is due. [`Doppelganger`] shares it with the signing path; [`Monitor`]
/// drives it from the scheduler.
#[derive(Debug, Clone)]
pub struct Detection {
    detection_epochs: u64,
    validators: HashMap<u64, ValidatorState>,
    /// Epoch of the first check (`None`: no check yet).
    start_epoch: Option<u64>,
    /// The current epoch at the last check.
    last_check_epoch: Option<u64>,
}

impl Detection {
    /// No validator tracked yet; each one added waits `detection_epochs` not-live epochs.
    pub fn new(detection_epochs: u64) -> Self {
        assert!(
            (1..=DETECTION_EPOCHS_MAX).contains(&detection_epochs),
            "detection epochs are checked by the config"
        );
        Detection {
            detection_epochs,
            validators: HashMap::new(),
            start_epoch: None,
            last_check_epoch: None,
        }
    }

    /// Makes `indices` the tracked set: a new validator starts in detection, one no longer
    /// listed (removed, liquidated) is dropped. Returns (added, removed).
    pub fn track(&mut self, indices: impl IntoIterator<Item = u64>) -> (usize, usize) {
        let wanted: std::collections::HashSet<u64> = indices.into_iter().collect();
        let before = self.validators.len();
        self.validators.retain(|i, _| wanted.contains(i));
        let removed = before - self.validators.len();
        let mut added = 0;
        for i in wanted {
            self.validators.entry(i).or_insert_with(|| {
                added += 1;
                ValidatorState {
                    remaining_epochs: self.detection_epochs,
                    observed_quorum: false,
                }
            });
        }
        debug_assert!(self.validators.len() == before - removed + added);
        (added, removed)
    }

    /// Drops one validator (`true` if it was tracked).
    pub fn remove(&mut self, index: u64) -> bool {
        self.validators.remove(&index).is_some()
    }

    /// Whether `index` may be signed for: tracked and safe. An untracked validator is not
    /// (the Go node's `CanSign` refuses it too).
    pub fn can_sign(&self, index: u64) -> bool {
        self.validators
            .get(&index)
            .is_some_and(ValidatorState::safe)
    }

    /// Our committee reached a quorum of post-consensus partials for `index`: the live
    /// instance is this cluster. Returns `true` if that ended its detection.
    pub fn report_quorum(&mut self, index: u64) -> bool {
        match self.validators.get_mut(&index) {
            Some(s) if !s.safe() => {
                s.observed_quorum = true;
                true
            }
            _ => false,
        }
    }

    /// The epoch whose liveness must be checked at `slot`, if one is due (see the module
    /// docs for when). A gap since the last check (a skipped epoch) starts every countdown
    /// again, as nothing was seen of the epochs in between.
    pub fn due(&mut self, slot: u64, spec: &ChainSpec) -> Option<u64> {
        let epoch = spec.epoch_of(slot);
        // The genesis epoch has no previous epoch to ask about.
        let previous = epoch.checked_sub(1)?;
        match self.start_epoch {
            None => self.start_epoch = Some(epoch),
            Some(start) => {
                let last_slot = spec.first_slot(epoch) + spec.slots_per_epoch() - 1;
                if slot != last_slot || epoch == start {
                    return None;
                }
            }
        }
        if let Some(last) = self.last_check_epoch
            && epoch != last + 1
        {
            tracing::warn!(
                last_check_epoch = last,
                epoch,
                "doppelganger: an epoch's liveness check was skipped; every countdown starts again"
            );
            self.reset();
        }
        self.last_check_epoch = Some(epoch);
        debug_assert!(self.start_epoch.is_some_and(|s| s <= epoch));
        Some(previous)
    }

    /// Every countdown back to the start (a validator made safe by a quorum stays safe, as in
    /// the Go node).
    fn reset(&mut self) {
        for s in self.validators.values_mut() {
            s.remaining_epochs = self.detection_epochs;
        }
    }

    /// Validators still in detection, ascending (the ones a liveness check asks about).
    pub fn unsafe_indices(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .validators
            .iter()
            .filter(|(_, s)| !s.safe())
            .map(|(i, _)| *i)
            .collect();
        v.sort_unstable();
        v
    }

    /// Applies the beacon node's liveness answer for one epoch: a live validator's countdown
    /// starts again, a validator not live has one epoch less to wait. Entries for validators
    /// not tracked or already safe are ignored; an index answered twice counts as live if
    /// either entry says so. A validator the answer leaves out is left as it was.
    pub fn apply(&mut self, answers: &[(u64, bool)]) -> Applied {
        let mut live_of: HashMap<u64, bool> = HashMap::with_capacity(answers.len());
        for &(i, live) in answers {
            *live_of.entry(i).or_insert(false) |= live;
        }
        let mut out = Applied::default();
        for (i, live) in live_of {
            let Some(s) = self.validators.get_mut(&i) else {
                continue;
            };
            if s.safe() {
                continue;
            }
            if live {
                s.remaining_epochs = self.detection_epochs;
                out.live.push(i);
            } else {
                s.remaining_epochs -= 1;
                if s.safe() {
                    out.now_safe.push(i);
                }
            }
            debug_assert!(s.remaining_epochs <= self.detection_epochs);
        }
        out.live.sort_unstable();
        out.now_safe.sort_unstable();
        out
    }

    /// (safe, in detection) validators.
    pub fn counts(&self) -> (usize, usize) {
        let safe = self.validators.values().filter(|s| s.safe()).count();
        (safe, self.validators.len() - safe)
    }

    /// Whether every tracked validator is safe.
    pub fn all_safe(&self) -> bool {
        self.validators.values().all(ValidatorState::safe)
    }
}

/// Doppelganger protection as the signing path sees it: off (the default: everything may be
/// signed) or on, over a shared [`Detection`].
#[derive(Debug, Default)]
pub struct Doppelganger {
    /// `None`: protection off.
    detection: Option<RwLock<Detection>>,
    /// Every tracked validator is safe: the signing path skips the lock (the steady state
    /// after detection). Cleared before a validator is added.
    all_safe: AtomicBool,
}

/// The signing path's view for one burst of signatures (one lock for the whole burst).
pub enum Gate<'a> {
    /// Everything may be signed.
    Open,
    /// Some validators are still in detection.
    Detecting(RwLockReadGuard<'a, Detection>),
}

impl Gate<'_> {
    /// Whether `index` may be signed for.
    pub fn can_sign(&self, index: u64) -> bool {
        match self {
            Gate::Open => true,
            Gate::Detecting(d) => d.can_sign(index),
        }
    }
}

impl Doppelganger {
    /// Protection on, with `detection_epochs` not-live epochs to wait for.
    pub fn new(detection_epochs: u64) -> Self {
        Doppelganger {
            detection: Some(RwLock::new(Detection::new(detection_epochs))),
            // Nothing is signed before the validators are tracked (untracked ones never are).
            all_safe: AtomicBool::new(false),
        }
    }

    /// Whether protection is on.
    pub fn is_enabled(&self) -> bool {
        self.detection.is_some()
    }

    /// The view for one burst of signatures.
    pub fn gate(&self) -> Gate<'_> {
        match &self.detection {
            Some(d) if !self.all_safe.load(Ordering::Acquire) => Gate::Detecting(d.read()),
            _ => Gate::Open,
        }
    }

    /// Whether `index` may be signed for now.
    pub fn can_sign(&self, index: u64) -> bool {
        self.gate().can_sign(index)
    }

    /// See [`Detection::track`].
    pub fn track(&self, indices: impl IntoIterator<Item = u64>) -> (usize, usize) {
        self.update(|d| d.track(indices)).unwrap_or_default()
    }

    /// See [`Detection::report_quorum`].
    pub fn report_quorum(&self, index: u64) {
        let in_detection = match self.gate() {
            Gate::Detecting(d) => d.validators.get(&index).is_some_and(|s| !s.safe()),
            Gate::Open => false,
        };
        if !in_detection {
            return; // nothing to change: no write lock on the hot path
        }
        if self.update(|d| d.report_quorum(index)) == Some(true) {
            tracing::info!(
                validator = index,
                "doppelganger: our committee's quorum signed it; safe to sign"
            );
        }
    }

    /// Runs `f` on the state under the write lock and refreshes the fast path.
    fn update<T>(&self, f: impl FnOnce(&mut Detection) -> T) -> Option<T> {
        let lock = self.detection.as_ref()?;
        let mut d = lock.write();
        // Cleared first: a reader that sees "all safe" must never meet a validator added
        // under this lock in detection.
        self.all_safe.store(false, Ordering::Release);
        let out = f(&mut d);
        self.all_safe.store(d.all_safe(), Ordering::Release);
        Some(out)
    }

    /// (safe, in detection) validators; (0, 0) when off.
    pub fn counts(&self) -> (usize, usize) {
        self.detection
            .as_ref()
            .map_or((0, 0), |d| d.read().counts())
    }
}

/// Drives [`Doppelganger`] from the scheduler: keeps the tracked set equal to the registry's
/// validators minus those stopped on-chain, and runs each liveness check when due.
pub struct Monitor {
    /// The shared state.
    pub doppelganger: Arc<Doppelganger>,
    /// Beacon nodes (liveness).
    pub client: Arc<BeaconClient>,
    /// Our validators (as the registry changes).
    pub registry: Arc<LiveRegistry>,
    /// Validators removed or liquidated on-chain.
    pub stopped: Arc<StoppedValidators>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Registry version and stopped validators at the last sync of the tracked set.
    seen: Option<(u64, usize)>,
    /// The registry's versions.
    versions: tokio::sync::watch::Receiver<u64>,
}

impl Monitor {
    /// A monitor of `doppelganger` (which must be on).
    pub fn new(
        doppelganger: Arc<Doppelganger>,
        client: Arc<BeaconClient>,
        registry: Arc<LiveRegistry>,
        stopped: Arc<StoppedValidators>,
        metrics: Arc<Metrics>,
    ) -> Self {
        assert!(
            doppelganger.is_enabled(),
            "a monitor of protection that is on"
        );
        let versions = registry.subscribe();
        let mut m = Monitor {
            doppelganger,
            client,
            registry,
            stopped,
            metrics,
            seen: None,
            versions,
        };
        m.sync_tracked();
        m
    }

    /// Tracks the registry's validators minus the stopped ones, recomputed when either
    /// changed: a validator added while the node runs starts in detection (until then it is
    /// untracked, and an untracked validator is never signed for), one removed is dropped.
    fn sync_tracked(&mut self) {
        let version = *self.versions.borrow_and_update();
        let stopped = self.stopped.len();
        if self.seen == Some((version, stopped)) {
            return;
        }
        self.seen = Some((version, stopped));
        let registry = self.registry.current();
        let indices = registry
            .shares()
            .filter(|v| !self.stopped.is_stopped(&v.pubkey))
            .map(|v| v.index);
        let (added, removed) = self.doppelganger.track(indices);
        if added + removed > 0 {
            tracing::info!(added, removed, "doppelganger: validators tracked");
        }
    }

    /// At every slot, before the slot's duties: syncs the tracked set and runs the liveness
    /// check due at `slot`, if any, waiting for it at most [`CHECK_WAIT_MAX`] (or a quarter
    /// of the slot); a slower check finishes in the background.
    pub async fn on_slot(&mut self, slot: u64, spec: &ChainSpec) {
        self.sync_tracked();
        let (safe, detecting) = self.doppelganger.counts();
        self.metrics.set_doppelganger(safe, detecting);
        // Through `update`: a skipped check resets countdowns, which the fast path must see.
        let Some(Some(epoch)) = self.doppelganger.update(|d| d.due(slot, spec)) else {
            return;
        };
        let indices = match &self.doppelganger.detection {
            Some(d) => d.read().unsafe_indices(),
            None => return,
        };
        if indices.is_empty() {
            return;
        }
        let check = tokio::spawn(check_liveness(
            self.doppelganger.clone(),
            self.client.clone(),
            self.metrics.clone(),
            epoch,
            indices,
            spec.slot_duration(),
        ));
        let wait = CHECK_WAIT_MAX.min(spec.slot_duration() / 4);
        if tokio::time::timeout(wait, check).await.is_err() {
            tracing::warn!(
                slot,
                epoch,
                "doppelganger: liveness check still running after {wait:?}; the slot's duties go on"
            );
        }
    }
}

/// Asks the beacon node whether `indices` were live in `epoch` (each request bounded by one
/// slot) and applies the answer. A failed request changes nothing: those validators stay in
/// detection until a later check answers.
async fn check_liveness(
    doppelganger: Arc<Doppelganger>,
    client: Arc<BeaconClient>,
    metrics: Arc<Metrics>,
    epoch: u64,
    indices: Vec<u64>,
    request_timeout: Duration,
) {
    let asked: std::collections::HashSet<u64> = indices.iter().copied().collect();
    let mut answers = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(LIVENESS_REQUEST_INDICES_MAX) {
        match tokio::time::timeout(request_timeout, client.liveness(epoch, chunk)).await {
            Ok(Ok(list)) => {
                for l in list {
                    if asked.contains(&l.index) {
                        answers.push((l.index, l.is_live));
                    } else {
                        tracing::warn!(
                            index = l.index,
                            epoch,
                            "doppelganger: liveness answer for a validator not asked about: ignored"
                        );
                    }
                }
            }
            Ok(Err(e)) => {
                Metrics::add(&metrics.beacon_data_refused, 1);
                tracing::error!(
                    epoch,
                    "doppelganger: liveness of {} validators: {e}",
                    chunk.len()
                );
            }
            Err(_) => {
                tracing::error!(
                    epoch,
                    "doppelganger: liveness of {} validators: no answer within {request_timeout:?}",
                    chunk.len()
                );
            }
        }
    }
    let Some(applied) = doppelganger.update(|d| d.apply(&answers)) else {
        return;
    };
    for v in &applied.live {
        tracing::warn!(
            validator = v,
            epoch,
            "doppelganger: validator seen live elsewhere; not signing for it"
        );
    }
    let (safe, detecting) = doppelganger.counts();
    metrics.set_doppelganger(safe, detecting);
    tracing::info!(
        epoch,
        asked = indices.len(),
        answered = answers.len(),
        live = applied.live.len(),
        now_safe = applied.now_safe.len(),
        safe,
        detecting,
        "doppelganger: liveness checked"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPE: u64 = 32;

    fn spec() -> ChainSpec {
        ChainSpec::MAINNET
    }

    /// The slots of `epochs` at which a check is due, with the epoch each one asks about.
    fn checks(d: &mut Detection, slots: std::ops::Range<u64>) -> Vec<(u64, u64)> {
        slots
            .filter_map(|s| d.due(s, &spec()).map(|e| (s, e)))
            .collect()
    }

    #[test]
    fn the_countdown_ends_after_the_configured_epochs_not_live() {
        let mut d = Detection::new(2);
        d.track([1, 2]);
        assert!(!d.can_sign(1) && !d.can_sign(2));
        assert_eq!(d.unsafe_indices(), vec![1, 2]);
        let a = d.apply(&[(1, false), (2, false)]);
        assert!(a.now_safe.is_empty() && a.live.is_empty());
        assert!(!d.can_sign(1), "one epoch of two");
        let a = d.apply(&[(1, false), (2, false)]);
        assert_eq!(a.now_safe, vec![1, 2]);
        assert!(d.can_sign(1) && d.can_sign(2));
        assert!(d.all_safe());
        assert!(
            d.unsafe_indices().is_empty(),
            "safe ones are not asked about"
        );
        // An answer about a safe validator changes nothing.
        assert_eq!(d.apply(&[(1, true)]), Applied::default());
        assert!(d.can_sign(1));
    }

    #[test]
    fn a_validator_live_elsewhere_stays_blocked() {
        let mut d = Detection::new(1);
        d.track([7, 8]);
        for _ in 0..5 {
            let a = d.apply(&[(7, true), (8, false)]);
            assert_eq!(a.live, vec![7]);
            assert!(!d.can_sign(7));
        }
        assert!(d.can_sign(8));
        assert_eq!(d.counts(), (1, 1));
        // Live once in the middle of the countdown: it starts again.
        let mut d = Detection::new(3);
        d.track([7]);
        d.apply(&[(7, false)]);
        d.apply(&[(7, false)]);
        d.apply(&[(7, true)]);
        d.apply(&[(7, false)]);
        d.apply(&[(7, false)]);
        assert!(!d.can_sign(7), "three not-live epochs since it was seen");
        d.apply(&[(7, false)]);
        assert!(d.can_sign(7));
        // Left out of an answer, or answered twice with one `true`: no progress.
        let mut d = Detection::new(1);
        d.track([1, 2]);
        d.apply(&[(2, false), (2, true)]);
        assert!(!d.can_sign(1) && !d.can_sign(2));
    }

    #[test]
    fn a_quorum_of_our_committee_makes_it_safe() {
        let mut d = Detection::new(2);
        d.track([3, 4]);
        // Even while the beacon node keeps seeing it live (our own committee's attestations).
        d.apply(&[(3, true)]);
        assert!(d.report_quorum(3));
        assert!(d.can_sign(3) && !d.can_sign(4));
        assert!(!d.report_quorum(3), "already safe");
        assert!(!d.report_quorum(99), "not tracked");
        assert!(
            !d.can_sign(99),
            "an untracked validator is never signed for"
        );
        d.apply(&[(3, true)]);
        assert!(d.can_sign(3), "liveness no longer asked, and ignored");
    }

    #[test]
    fn new_validators_start_in_detection_and_removed_ones_are_dropped() {
        let mut d = Detection::new(1);
        assert_eq!(d.track([1, 2]), (2, 0));
        d.apply(&[(1, false), (2, false)]);
        assert!(d.all_safe());
        // 3 added, 2 removed (on-chain), 1 stays safe.
        assert_eq!(d.track([1, 3]), (1, 1));
        assert!(d.can_sign(1) && !d.can_sign(3) && !d.can_sign(2));
        assert_eq!(d.unsafe_indices(), vec![3]);
        assert!(d.remove(3));
        assert!(!d.remove(3));
        assert!(d.all_safe());
        // Re-added: detection again.
        d.track([1, 2]);
        assert!(!d.can_sign(2));
    }

    #[test]
    fn checks_follow_the_go_nodes_schedule() {
        // Started mid-epoch 5: the previous epoch at once, nothing at the end of epoch 5,
        // then each epoch's last slot asks about the epoch before.
        let mut d = Detection::new(2);
        let got = checks(&mut d, 5 * SPE + 10..8 * SPE);
        assert_eq!(
            got,
            vec![(5 * SPE + 10, 4), (7 * SPE - 1, 5), (8 * SPE - 1, 6)]
        );
        // Started in the genesis epoch: the first check waits for epoch 1 and asks about 0.
        let mut d = Detection::new(1);
        let got = checks(&mut d, 20..3 * SPE);
        assert_eq!(got, vec![(SPE, 0), (3 * SPE - 1, 1)]);
    }

    #[test]
    fn a_skipped_check_starts_every_countdown_again() {
        let mut d = Detection::new(2);
        d.track([1, 2, 3]);
        assert_eq!(d.due(5 * SPE, &spec()), Some(4));
        d.apply(&[(1, false), (2, false), (3, false)]);
        d.report_quorum(3);
        assert_eq!(d.due(7 * SPE - 1, &spec()), Some(5));
        d.apply(&[(1, false)]);
        assert!(d.can_sign(1) && !d.can_sign(2));
        // Epoch 7's check never ran (the node was suspended): at epoch 8's, countdowns restart.
        assert_eq!(d.due(9 * SPE - 1, &spec()), Some(7));
        assert!(!d.can_sign(1) && !d.can_sign(2));
        assert!(d.can_sign(3), "a quorum-made safe validator stays safe");
    }

    #[test]
    fn protection_off_signs_everything() {
        let off = Doppelganger::default();
        assert!(!off.is_enabled());
        assert!(off.can_sign(0) && off.can_sign(u64::MAX));
        assert_eq!(off.track([1, 2]), (0, 0));
        assert_eq!(off.counts(), (0, 0));
        assert!(matches!(off.gate(), Gate::Open));
    }

    #[test]
    fn the_shared_gate_follows_the_state() {
        let on = Doppelganger::new(1);
        assert!(
            !on.can_sign(1),
            "nothing is signed before the validators are tracked"
        );
        on.track([1, 2]);
        assert!(!on.can_sign(1) && !on.can_sign(5));
        on.report_quorum(1);
        assert!(on.can_sign(1) && !on.can_sign(2));
        on.update(|d| d.apply(&[(2, false)]));
        assert!(on.can_sign(2));
        assert!(matches!(on.gate(), Gate::Open), "all safe: no lock");
        on.track([1, 2, 3]);
        assert!(matches!(on.gate(), Gate::Detecting(_)));
        assert!(!on.can_sign(3));
        assert_eq!(on.counts(), (2, 1));
    }
}
