//! The beacon chain's constants and clock: the one source of slots per epoch, slot duration
//! and sync-committee period in the workspace.
//!
//! A node reads these from its beacon node (`GET /eth/v1/config/spec` and `/beacon/genesis`)
//! and checks them with [`ChainSpec::new`] and [`SlotClock::new`] before anything runs; the
//! presets ([`ChainSpec::MAINNET`]) are for tests, benchmarks and the simulator. Everything
//! else takes a [`ChainSpec`] value instead of a constant of its own.
//!
//! The slot arithmetic is pure (time goes in as Unix milliseconds); [`SlotClock::now_ms`] is
//! the one place of the workspace that reads the wall clock for it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::types::{Epoch, Slot};

/// Shortest slot accepted from a beacon node (devnets run 200 ms slots; below this a QBFT
/// round cannot finish within its slot on any network).
pub const SLOT_DURATION_MIN: Duration = Duration::from_millis(100);
/// Longest slot accepted (mainnet: 12 s).
pub const SLOT_DURATION_MAX: Duration = Duration::from_secs(600);
/// Most slots per epoch accepted (mainnet: 32; the minimal preset: 8).
pub const SLOTS_PER_EPOCH_MAX: u64 = 1024;
/// Most epochs per sync-committee period accepted (mainnet: 256).
pub const EPOCHS_PER_SYNC_COMMITTEE_PERIOD_MAX: u64 = 1 << 16;
/// Latest genesis accepted, in Unix seconds (year 2200): a later one would be a lie, and
/// genesis times near `u64::MAX` would overflow the millisecond arithmetic.
pub const GENESIS_TIME_MAX: u64 = 7_258_118_400;

/// A chain parameter from the beacon node that the node refuses to run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainSpecError {
    /// Slot duration outside [`SLOT_DURATION_MIN`]..=[`SLOT_DURATION_MAX`].
    #[error(
        "slot duration of {0:?} is outside {SLOT_DURATION_MIN:?}..={SLOT_DURATION_MAX:?} \
         (SECONDS_PER_SLOT / SLOT_DURATION_MS from the beacon node)"
    )]
    SlotDuration(Duration),
    /// Slots per epoch of 0 or above [`SLOTS_PER_EPOCH_MAX`].
    #[error("SLOTS_PER_EPOCH {0} is outside 1..={SLOTS_PER_EPOCH_MAX}")]
    SlotsPerEpoch(u64),
    /// Epochs per sync-committee period of 0 or above the maximum.
    #[error(
        "EPOCHS_PER_SYNC_COMMITTEE_PERIOD {0} is outside 1..={EPOCHS_PER_SYNC_COMMITTEE_PERIOD_MAX}"
    )]
    SyncPeriod(u64),
    /// Genesis later than [`GENESIS_TIME_MAX`].
    #[error("genesis time {0} is after {GENESIS_TIME_MAX} (year 2200)")]
    GenesisTime(u64),
}

/// The chain constants the node's duties depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSpec {
    /// `SLOTS_PER_EPOCH`.
    slots_per_epoch: u64,
    /// `SECONDS_PER_SLOT` (or `SLOT_DURATION_MS` where the beacon node gives it).
    slot_duration: Duration,
    /// `EPOCHS_PER_SYNC_COMMITTEE_PERIOD`.
    epochs_per_sync_committee_period: u64,
}

impl ChainSpec {
    /// Mainnet's values, which every public SSV network (mainnet, holesky, hoodi) shares.
    pub const MAINNET: ChainSpec = ChainSpec {
        slots_per_epoch: 32,
        slot_duration: Duration::from_secs(12),
        epochs_per_sync_committee_period: 256,
    };

    /// A checked spec.
    pub fn new(
        slots_per_epoch: u64,
        slot_duration: Duration,
        epochs_per_sync_committee_period: u64,
    ) -> Result<Self, ChainSpecError> {
        if !(1..=SLOTS_PER_EPOCH_MAX).contains(&slots_per_epoch) {
            return Err(ChainSpecError::SlotsPerEpoch(slots_per_epoch));
        }
        if !(SLOT_DURATION_MIN..=SLOT_DURATION_MAX).contains(&slot_duration) {
            return Err(ChainSpecError::SlotDuration(slot_duration));
        }
        if !(1..=EPOCHS_PER_SYNC_COMMITTEE_PERIOD_MAX).contains(&epochs_per_sync_committee_period) {
            return Err(ChainSpecError::SyncPeriod(epochs_per_sync_committee_period));
        }
        Ok(ChainSpec {
            slots_per_epoch,
            slot_duration,
            epochs_per_sync_committee_period,
        })
    }

    /// The same spec with another slot duration (devnets and benchmarks run faster slots).
    pub fn with_slot_duration(self, slot_duration: Duration) -> Result<Self, ChainSpecError> {
        Self::new(
            self.slots_per_epoch,
            slot_duration,
            self.epochs_per_sync_committee_period,
        )
    }

    /// `SLOTS_PER_EPOCH`.
    pub const fn slots_per_epoch(&self) -> u64 {
        self.slots_per_epoch
    }

    /// Slot duration.
    pub const fn slot_duration(&self) -> Duration {
        self.slot_duration
    }

    /// Slot duration in milliseconds (at least 1).
    pub fn slot_ms(&self) -> u64 {
        (self.slot_duration.as_millis() as u64).max(1)
    }

    /// `EPOCHS_PER_SYNC_COMMITTEE_PERIOD`.
    pub const fn epochs_per_sync_committee_period(&self) -> u64 {
        self.epochs_per_sync_committee_period
    }

    /// The epoch of `slot`.
    pub const fn epoch_of(&self, slot: Slot) -> Epoch {
        slot / self.slots_per_epoch
    }

    /// The first slot of `epoch` (saturating).
    pub const fn first_slot(&self, epoch: Epoch) -> Slot {
        epoch.saturating_mul(self.slots_per_epoch)
    }

    /// The sync-committee period of `epoch`.
    pub const fn sync_period_of(&self, epoch: Epoch) -> u64 {
        epoch / self.epochs_per_sync_committee_period
    }
}

impl Default for ChainSpec {
    fn default() -> Self {
        Self::MAINNET
    }
}

/// The chain's clock: slot `s` starts at `genesis_ms + s * slot_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotClock {
    /// Genesis, in milliseconds since the Unix epoch.
    genesis_ms: u64,
    /// The chain's constants.
    spec: ChainSpec,
}

impl SlotClock {
    /// A clock from the beacon node's genesis time (Unix seconds), refusing a genesis that the
    /// millisecond arithmetic cannot hold.
    pub fn new(genesis_time_s: u64, spec: ChainSpec) -> Result<Self, ChainSpecError> {
        if genesis_time_s > GENESIS_TIME_MAX {
            return Err(ChainSpecError::GenesisTime(genesis_time_s));
        }
        Ok(SlotClock {
            genesis_ms: genesis_time_s * 1000,
            spec,
        })
    }

    /// A clock from a genesis in Unix milliseconds (simulators and benchmarks start at a
    /// millisecond of their choosing).
    pub fn from_genesis_ms(genesis_ms: u64, spec: ChainSpec) -> Result<Self, ChainSpecError> {
        if genesis_ms / 1000 > GENESIS_TIME_MAX {
            return Err(ChainSpecError::GenesisTime(genesis_ms / 1000));
        }
        Ok(SlotClock { genesis_ms, spec })
    }

    /// The wall clock in Unix milliseconds (0 before 1970): the one reading of it behind
    /// every slot computation of the node, the simulator and the benchmarks.
    pub fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// Genesis in Unix milliseconds.
    pub const fn genesis_ms(&self) -> u64 {
        self.genesis_ms
    }

    /// The chain's constants.
    pub const fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// The slot at Unix millisecond `now_ms` (`None` before genesis).
    pub fn slot_at(&self, now_ms: u64) -> Option<Slot> {
        (now_ms >= self.genesis_ms).then(|| (now_ms - self.genesis_ms) / self.spec.slot_ms())
    }

    /// The current slot (`None` before genesis).
    pub fn current_slot(&self) -> Option<Slot> {
        self.slot_at(Self::now_ms())
    }

    /// Unix millisecond at which `slot` starts (saturating).
    pub fn slot_start_ms(&self, slot: Slot) -> u64 {
        self.genesis_ms
            .saturating_add(slot.saturating_mul(self.spec.slot_ms()))
    }

    /// Time from now until `slot` starts (zero if it has).
    pub fn until_slot(&self, slot: Slot) -> Duration {
        Duration::from_millis(self.slot_start_ms(slot).saturating_sub(Self::now_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_arithmetic() {
        let s = ChainSpec::MAINNET;
        assert_eq!(s.epoch_of(31), 0);
        assert_eq!(s.epoch_of(32), 1);
        assert_eq!(s.first_slot(3), 96);
        assert_eq!(s.sync_period_of(255), 0);
        assert_eq!(s.sync_period_of(256), 1);
        assert_eq!(s.slot_ms(), 12_000);
        assert_eq!(s.first_slot(u64::MAX), u64::MAX);
    }

    #[test]
    fn refuses_what_would_break_the_arithmetic() {
        let d = Duration::from_secs(12);
        assert_eq!(
            ChainSpec::new(0, d, 256),
            Err(ChainSpecError::SlotsPerEpoch(0))
        );
        assert_eq!(
            ChainSpec::new(32, Duration::ZERO, 256),
            Err(ChainSpecError::SlotDuration(Duration::ZERO))
        );
        assert_eq!(ChainSpec::new(32, d, 0), Err(ChainSpecError::SyncPeriod(0)));
        assert!(ChainSpec::new(32, Duration::from_millis(200), 256).is_ok());
        assert_eq!(
            SlotClock::new(u64::MAX, ChainSpec::MAINNET),
            Err(ChainSpecError::GenesisTime(u64::MAX))
        );
    }

    #[test]
    fn clock_slots() {
        let spec = ChainSpec::MAINNET
            .with_slot_duration(Duration::from_millis(500))
            .expect("500 ms slots");
        let c = SlotClock::from_genesis_ms(10_000, spec).expect("clock");
        assert_eq!(c.slot_at(9_999), None);
        assert_eq!(c.slot_at(10_000), Some(0));
        assert_eq!(c.slot_at(10_499), Some(0));
        assert_eq!(c.slot_at(10_500), Some(1));
        assert_eq!(c.slot_start_ms(4), 12_000);
        assert_eq!(c.slot_start_ms(u64::MAX), u64::MAX);
    }
}
