//! The batching verifier service: callers submit sets and await one result each.
//!
//! ```text
//! shard (glommio) ── try_send ──► bounded queue (QUEUE_MAX) ──► dispatcher thread
//!      ▲                                                          │ batch full or deadline
//!      └──── VerifyFuture (oneshot) ◄──── rayon pool ◄── batch ───┘ (≤ IN_FLIGHT_BATCHES_MAX)
//! ```
//!
//! Submission never blocks: when the queue is full the set is refused with
//! [`CryptoError::QueueFull`] (drop-newest) and counted in [`VerifierStats::dropped_full`].
//! The returned [`VerifyFuture`] is runtime-agnostic (a `futures` oneshot): awaiting it from a
//! glommio shard parks the task, never the thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use futures::channel::oneshot;

use crate::batch::{SignatureSet, verify_sets_parallel};
use crate::error::CryptoError;

/// Default number of sets that triggers a flush. Larger batches amortise the pairing and the
/// multi-scalar multiplications better (per-signature cost falls from ~94 µs at 64 to ~75 µs
/// at 256 here) but add latency and make bisection of a bad batch deeper.
pub const BATCH_SIZE_DEFAULT: usize = 256;
/// Largest accepted batch size.
pub const BATCH_SIZE_MAX: usize = 4096;
/// Default time a partial batch waits for more sets after its first set arrived. Too small:
/// batches stay tiny and each pays a full pairing; too large: every signature waits that long
/// at low load.
pub const FLUSH_DEADLINE_DEFAULT: Duration = Duration::from_millis(5);
/// Largest accepted flush deadline.
pub const FLUSH_DEADLINE_MAX: Duration = Duration::from_secs(1);
/// Default bound of the input queue, in sets. Too small: bursts at the slot boundary are
/// refused with `QueueFull`; too large: memory and latency grow without bound under overload.
pub const QUEUE_DEFAULT: usize = 65_536;
/// Largest accepted queue bound.
pub const QUEUE_MAX: usize = 1 << 20;
/// Batches handed to the pool and not yet finished. When reached, the dispatcher waits, so
/// the input queue fills and submitters see `QueueFull` instead of unbounded pool backlog.
pub const IN_FLIGHT_BATCHES_MAX: usize = 64;
/// Largest accepted pool size.
pub const POOL_THREADS_MAX: usize = 256;

/// Settings of a [`BatchVerifier`].
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// Sets per batch that trigger an immediate flush (1..=BATCH_SIZE_MAX).
    pub batch_size: usize,
    /// How long a partial batch waits after its first set (at most FLUSH_DEADLINE_MAX).
    pub flush_deadline: Duration,
    /// Bound of the input queue in sets (1..=QUEUE_MAX).
    pub queue_capacity: usize,
    /// Threads of the verification pool; 0 means one per core.
    pub pool_threads: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            batch_size: BATCH_SIZE_DEFAULT,
            flush_deadline: FLUSH_DEADLINE_DEFAULT,
            queue_capacity: QUEUE_DEFAULT,
            pool_threads: 0,
        }
    }
}

/// Counters of a running verifier.
#[derive(Debug, Default)]
pub struct VerifierStats {
    /// Sets accepted into the queue.
    pub submitted: AtomicU64,
    /// Sets refused because the queue was full.
    pub dropped_full: AtomicU64,
    /// Batches verified.
    pub batches: AtomicU64,
    /// Sets that got an error.
    pub failed_sets: AtomicU64,
}

struct Job {
    set: SignatureSet,
    reply: oneshot::Sender<Result<(), CryptoError>>,
}

/// The result of one submitted set.
#[must_use = "the result of a verification must be awaited"]
pub struct VerifyFuture(oneshot::Receiver<Result<(), CryptoError>>);

impl Future for VerifyFuture {
    type Output = Result<(), CryptoError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(CryptoError::VerifierStopped)))
    }
}

/// Queue, dispatcher thread and rayon pool; see the module docs.
pub struct BatchVerifier {
    tx: Option<Sender<Job>>,
    dispatcher: Option<JoinHandle<()>>,
    stats: Arc<VerifierStats>,
    queue_capacity: usize,
}

impl BatchVerifier {
    /// Starts the dispatcher thread and the pool.
    pub fn new(config: VerifierConfig) -> Result<Self, CryptoError> {
        if config.batch_size == 0 || config.batch_size > BATCH_SIZE_MAX {
            return Err(CryptoError::InvalidConfig(
                "batch_size must be in 1..=BATCH_SIZE_MAX",
            ));
        }
        if config.flush_deadline > FLUSH_DEADLINE_MAX {
            return Err(CryptoError::InvalidConfig(
                "flush_deadline above FLUSH_DEADLINE_MAX",
            ));
        }
        if config.queue_capacity == 0 || config.queue_capacity > QUEUE_MAX {
            return Err(CryptoError::InvalidConfig(
                "queue_capacity must be in 1..=QUEUE_MAX",
            ));
        }
        if config.pool_threads > POOL_THREADS_MAX {
            return Err(CryptoError::InvalidConfig(
                "pool_threads above POOL_THREADS_MAX",
            ));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.pool_threads)
            .thread_name(|i| format!("bls-verify-{i}"))
            .build()
            .map_err(|_| CryptoError::InvalidConfig("could not start the rayon pool"))?;
        let (tx, rx) = bounded::<Job>(config.queue_capacity);
        let stats = Arc::new(VerifierStats::default());
        let dispatcher = {
            let stats = Arc::clone(&stats);
            let config = config.clone();
            std::thread::Builder::new()
                .name("bls-batch-dispatch".into())
                .spawn(move || dispatch(rx, Arc::new(pool), config, stats))
                .map_err(|_| CryptoError::InvalidConfig("could not start the dispatcher"))?
        };
        Ok(Self {
            tx: Some(tx),
            dispatcher: Some(dispatcher),
            stats,
            queue_capacity: config.queue_capacity,
        })
    }

    /// Queues one set; never blocks. Errors with `QueueFull` when the queue is at capacity.
    pub fn submit(&self, set: SignatureSet) -> Result<VerifyFuture, CryptoError> {
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or(CryptoError::VerifierStopped)?;
        match tx.try_send(Job { set, reply }) {
            Ok(()) => {
                self.stats.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(VerifyFuture(rx))
            }
            Err(TrySendError::Full(_)) => {
                self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                Err(CryptoError::QueueFull(self.queue_capacity))
            }
            Err(TrySendError::Disconnected(_)) => Err(CryptoError::VerifierStopped),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &VerifierStats {
        &self.stats
    }
}

impl Drop for BatchVerifier {
    fn drop(&mut self) {
        // Closing the queue lets the dispatcher flush what it holds and exit.
        drop(self.tx.take());
        if let Some(h) = self.dispatcher.take() {
            let _ = h.join();
        }
    }
}

fn dispatch(
    rx: Receiver<Job>,
    pool: Arc<rayon::ThreadPool>,
    config: VerifierConfig,
    stats: Arc<VerifierStats>,
) {
    // Tokens bound the batches in flight: one is taken per batch and returned when it ends.
    let (token_tx, token_rx) = bounded::<()>(IN_FLIGHT_BATCHES_MAX);
    let mut open = true;
    while open {
        let Ok(first) = rx.recv() else { break };
        let deadline = Instant::now() + config.flush_deadline;
        let mut jobs = Vec::with_capacity(config.batch_size);
        jobs.push(first);
        while jobs.len() < config.batch_size {
            match rx.recv_deadline(deadline) {
                Ok(j) => jobs.push(j),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if token_tx.send(()).is_err() {
            break; // cannot happen: we own the receiver.
        }
        let token_rx = token_rx.clone();
        let stats = Arc::clone(&stats);
        let worker_pool = Arc::clone(&pool);
        pool.spawn(move || {
            let sets: Vec<SignatureSet> = jobs.iter().map(|j| j.set).collect();
            let results = verify_sets_parallel(&sets, &worker_pool);
            stats.batches.fetch_add(1, Ordering::Relaxed);
            for (job, r) in jobs.into_iter().zip(results) {
                if r.is_err() {
                    stats.failed_sets.fetch_add(1, Ordering::Relaxed);
                }
                // The submitter may have stopped waiting; its result is then dropped.
                let _ = job.reply.send(r);
            }
            let _ = token_rx.recv();
        });
    }
    // Wait for batches in flight so results are delivered before the pool is dropped.
    for _ in 0..IN_FLIGHT_BATCHES_MAX {
        if token_tx.send(()).is_err() {
            break;
        }
    }
}
