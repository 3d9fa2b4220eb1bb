//! The exporter's decided history: every decided QBFT instance, keyed by
//! `identifier (56 bytes: domain, role, duty executor) ‖ height (big-endian u64)` in the
//! [`DecidedHistory`] table, so one identifier's instances are contiguous and in slot order.
//!
//! Writes go through the writer thread ([`crate::WriteOp::PutDecided`] with
//! `StoreConfig::decided_history`, and [`crate::WriteOp::PruneDecidedHistory`] for the
//! retention window); the range reads here run on a read snapshot and never block the writer.

use std::ops::ControlFlow;

use crate::codec::PrefixedU64;
use crate::db::WriteTxn;
use crate::records::{DecidedRecord, QbftIdentifier};
use crate::tables::DecidedHistory;
use crate::{Result, Store};

/// Most rows one [`crate::WriteOp::PruneDecidedHistory`] deletes. Bounds one commit's size
/// (and the writer's pause); a backlog is worked off by the next prune requests.
pub const PRUNE_ROWS_MAX: usize = 100_000;

/// The identifier after `id` in key order (`None` after the last one).
fn next_prefix(id: &QbftIdentifier) -> Option<QbftIdentifier> {
    let mut next = *id;
    for b in next.iter_mut().rev() {
        if *b == u8::MAX {
            *b = 0;
        } else {
            *b += 1;
            return Some(next);
        }
    }
    None
}

/// Decided history rows found by a range read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecidedRange {
    /// The rows, in key order (identifier, then height).
    pub records: Vec<DecidedRecord>,
    /// More rows matched than the read's limit: `records` holds the first `limit`.
    pub truncated: bool,
}

impl Store {
    /// The decided instances of `identifier` with height in `from..=to`, at most `limit`.
    pub fn decided_history(
        &self,
        identifier: &QbftIdentifier,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<DecidedRange> {
        let txn = self.read()?;
        let mut out = DecidedRange::default();
        txn.scan::<DecidedHistory>(Some(&PrefixedU64(*identifier, from)), |k, v| {
            if k.0 != *identifier || k.1 > to {
                return Ok(ControlFlow::Break(()));
            }
            if out.records.len() == limit {
                out.truncated = true;
                return Ok(ControlFlow::Break(()));
            }
            out.records.push(v.to_owned()?);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }

    /// Every identifier's decided instances with height in `from..=to` whose identifier
    /// passes `keep`, at most `limit`. Seeks from identifier to identifier, so the cost is
    /// the identifiers plus the rows in range, not the whole table.
    pub fn decided_history_all(
        &self,
        from: u64,
        to: u64,
        limit: usize,
        keep: impl Fn(&QbftIdentifier) -> bool,
    ) -> Result<DecidedRange> {
        let txn = self.read()?;
        let mut out = DecidedRange::default();
        let mut seek = Some(PrefixedU64([0u8; 56], from));
        while let Some(start) = seek.take() {
            // Where the next scan starts: the next identifier's `from`, or this
            // identifier's `from` when the first row found lies below it.
            let mut next: Option<PrefixedU64<56>> = None;
            let mut full = false;
            txn.scan::<DecidedHistory>(Some(&start), |k, v| {
                if k.1 < from {
                    next = Some(PrefixedU64(k.0, from));
                    return Ok(ControlFlow::Break(()));
                }
                if k.1 > to || !keep(&k.0) {
                    next = next_prefix(&k.0).map(|p| PrefixedU64(p, from));
                    return Ok(ControlFlow::Break(()));
                }
                if out.records.len() == limit {
                    full = true;
                    return Ok(ControlFlow::Break(()));
                }
                out.records.push(v.to_owned()?);
                Ok(ControlFlow::Continue(()))
            })?;
            if full {
                out.truncated = true;
                break;
            }
            seek = next;
        }
        Ok(out)
    }

    /// Rows of the decided history (exporter mode).
    pub fn decided_history_len(&self) -> Result<usize> {
        self.read()?.count::<DecidedHistory>()
    }
}

/// Deletes up to [`PRUNE_ROWS_MAX`] history rows with a height below `below_height`.
pub(crate) fn prune_history(txn: &WriteTxn<'_>, below_height: u64) -> Result<usize> {
    let table = txn.handle::<DecidedHistory>()?;
    let mut doomed: Vec<PrefixedU64<56>> = Vec::new();
    let mut seek = Some(PrefixedU64([0u8; 56], 0));
    while let Some(start) = seek.take() {
        let mut next = None;
        txn.scan(&table, &start, |k, _| {
            if k.1 >= below_height {
                next = next_prefix(&k.0).map(|p| PrefixedU64(p, 0));
                return Ok(ControlFlow::Break(()));
            }
            if doomed.len() == PRUNE_ROWS_MAX {
                return Ok(ControlFlow::Break(()));
            }
            doomed.push(k);
            Ok(ControlFlow::Continue(()))
        })?;
        if doomed.len() == PRUNE_ROWS_MAX {
            break;
        }
        seek = next;
    }
    for k in &doomed {
        txn.del(&table, k)?;
    }
    Ok(doomed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_prefix_carries() {
        let mut id = [0u8; 56];
        id[55] = 0xff;
        id[54] = 3;
        let n = next_prefix(&id).expect("not the last");
        assert_eq!((n[54], n[55]), (4, 0));
        assert_eq!(next_prefix(&[0xff; 56]), None);
    }
}
