//! A duration histogram for the hot path: a few atomic adds per observation, no lock, no
//! allocation. Each thread adds to its own stripe (one cache line group per stripe), so the
//! shards and the crypto pool do not fight over a cache line; `/metrics` sums the stripes.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// The Go node's bucket boundaries for every seconds histogram
/// (`observability/metrics.SecondsHistogramBuckets`).
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// [`SECONDS_BUCKETS`] in nanoseconds, what an observation is compared with.
const BOUNDS_NS: [u64; 16] = [
    0,
    1_000_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    750_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    7_500_000_000,
    10_000_000_000,
];

/// Buckets per stripe: one per boundary and the overflow (`+Inf`) bucket.
const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// Stripes per histogram. More threads than stripes share stripes (still correct, only
/// contended); too many stripes cost memory (about 200 bytes each) and render time.
pub const STRIPES: usize = 8;

/// One thread group's share of a histogram: per-bucket counts (not cumulative) and the sum in
/// nanoseconds. Aligned so that two stripes never share a cache line.
#[repr(align(64))]
#[derive(Default)]
struct Stripe {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

/// A histogram of durations with the Go node's seconds buckets.
#[derive(Default)]
pub struct Histogram {
    stripes: [Stripe; STRIPES],
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot();
        f.debug_struct("Histogram")
            .field("count", &s.count)
            .field("sum_ns", &s.sum_ns)
            .finish()
    }
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's stripe, assigned round-robin on its first observation.
fn stripe() -> usize {
    STRIPE.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
        s.set(v);
        v
    })
}

/// The bucket of `ns`: the first boundary not below it (OTel explicit buckets are
/// `(previous, boundary]`), or the overflow bucket.
fn bucket_of(ns: u64) -> usize {
    BOUNDS_NS.partition_point(|b| *b < ns)
}

/// A histogram's totals at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Cumulative counts, one per boundary of [`SECONDS_BUCKETS`].
    pub cumulative: [u64; BOUNDS_NS.len()],
    /// Observations (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the observations in nanoseconds.
    pub sum_ns: u64,
}

impl Histogram {
    /// Records one duration.
    #[inline]
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let s = &self.stripes[stripe()];
        s.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        s.sum_ns.fetch_add(ns, Relaxed);
    }

    /// The totals over every stripe. The count is the sum of the buckets, so `+Inf` equals
    /// the count and the buckets are cumulative even while other threads observe.
    pub fn snapshot(&self) -> Snapshot {
        let mut per = [0u64; BUCKETS];
        let mut sum_ns = 0u64;
        for s in &self.stripes {
            for (p, b) in per.iter_mut().zip(&s.buckets) {
                *p += b.load(Relaxed);
            }
            sum_ns = sum_ns.wrapping_add(s.sum_ns.load(Relaxed));
        }
        let mut cumulative = [0u64; BOUNDS_NS.len()];
        let mut acc = 0u64;
        for (c, p) in cumulative.iter_mut().zip(&per) {
            acc += p;
            *c = acc;
        }
        Snapshot {
            cumulative,
            count: acc + per[BUCKETS - 1],
            sum_ns,
        }
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.snapshot().count
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines of this histogram under `name` with
    /// `labels` (`k="v",` pairs, each followed by a comma, or empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let s = self.snapshot();
        for (le, c) in SECONDS_BUCKETS.iter().zip(&s.cumulative) {
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", s.count);
        let trimmed = labels.trim_end_matches(',');
        let braces = if trimmed.is_empty() {
            String::new()
        } else {
            format!("{{{trimmed}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", s.sum_ns as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{braces} {}", s.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_match_the_seconds_buckets() {
        for (s, ns) in SECONDS_BUCKETS.iter().zip(BOUNDS_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
    }

    #[test]
    fn observations_land_in_upper_inclusive_buckets() {
        let h = Histogram::default();
        h.observe(Duration::ZERO); // le 0
        h.observe(Duration::from_millis(1)); // le 0.001 exactly
        h.observe(Duration::from_micros(1_001)); // le 0.005
        h.observe(Duration::from_secs(11)); // +Inf only
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[2], 3);
        assert_eq!(s.cumulative[15], 3);
        assert_eq!(s.count, 4);
        assert_eq!(s.sum_ns, 1_000_000 + 1_001_000 + 11_000_000_000);
    }

    #[test]
    fn threads_add_up() {
        let h = std::sync::Arc::new(Histogram::default());
        let threads: Vec<_> = (0..12)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        h.observe(Duration::from_millis(i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("observer thread");
        }
        assert_eq!(h.count(), 12_000);
        assert_eq!(h.snapshot().sum_ns, (0..12).sum::<u64>() * 1000 * 1_000_000);
    }
}
