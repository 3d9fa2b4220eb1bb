//! `ssv-perf crypto`: one-shot summary of the signature costs that bound an SSV node, as one
//! JSON object. Every figure is single-threaded on one pinned core unless its name ends in
//! `_pool`, and measured as the calling thread's CPU time (the `_pool` figure is wall-clock
//! time on the whole pool). Figures that are compared (single verify against batch, reference path against
//! duty path) are measured in interleaved rounds of the same run and reported as medians, so
//! load from other processes hits both sides alike.

use std::time::Instant;

use serde_json::{Value, json};
use ssv_crypto_pipeline::batch::{SignatureSet, verify_sets, verify_sets_parallel};
use ssv_crypto_pipeline::bls::{HashToG2Cache, HashedRoot, Signature, cpu_path};
use ssv_crypto_pipeline::duty::{
    ValidatorPartials, reconstruct_and_verify, reconstruct_then_verify_each,
};
use ssv_crypto_pipeline::fixtures;
use ssv_crypto_pipeline::rsa::OperatorSecretKey;
use ssv_crypto_pipeline::threshold::{LagrangeCache, OperatorId, reconstruct_signature};

/// Batch size of the headline batch figures.
pub const BATCH_N: usize = 256;
/// Validators in one slot of the duty-path figure.
pub const DUTY_VALIDATORS: usize = 256;
/// Validators used for the (slow, per-validator constant) reference path figure.
pub const REFERENCE_VALIDATORS: usize = 32;
/// The single-verify/batch pair is measured in this many times `rounds` short rounds.
pub const PAIRED_ROUNDS_FACTOR: usize = 3;
/// Target: same-root batch at n = 256 at least this many times cheaper per signature than a
/// single verify.
pub const SAME_ROOT_SPEEDUP_TARGET: f64 = 15.0;
/// Target: the duty path costs at most this fraction of the reference path.
pub const DUTY_FRACTION_TARGET: f64 = 0.5;

/// Settings of the summary.
#[derive(Clone, Debug)]
pub struct Options {
    /// Core the measuring thread is pinned to; `None` leaves it unpinned.
    pub pin_core: Option<usize>,
    /// Threads of the pool for the `_pool` figure; 0 means one per core.
    pub pool_threads: usize,
    /// Rounds per figure; medians are reported.
    pub rounds: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            pin_core: Some(1),
            pool_threads: 0,
            rounds: 7,
        }
    }
}

/// Pins the calling thread to `core`. Threads created later inherit the mask, so the pool is
/// built before this is called.
pub(crate) fn pin_current_thread(core: usize) -> Result<(), String> {
    // SAFETY: `cpu_set_t` is a plain bit mask for which all-zero is a valid value;
    // `CPU_SET` writes inside it (core is checked against the mask size first), and
    // `sched_setaffinity(0, ..)` reads it for the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if core >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(format!("core {core} out of range"));
        }
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("sched_setaffinity to core {core} failed"));
        }
    }
    Ok(())
}

/// CPU time consumed so far by the calling thread, in seconds.
pub(crate) fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec; CLOCK_THREAD_CPUTIME_ID is always available
    // on Linux. On failure `ts` stays zero and the figure comes out as zero, visibly wrong.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Microseconds of the calling thread's CPU time per operation, over `iters` runs of `f`
/// each doing `per_call` operations. CPU time rather than wall time: on a shared machine a
/// descheduled thread does not count time it did not run.
fn time_us(iters: usize, per_call: usize, mut f: impl FnMut()) -> f64 {
    let start = thread_cpu_s();
    for _ in 0..iters {
        f();
    }
    (thread_cpu_s() - start) * 1e6 / (iters * per_call) as f64
}

/// Like [`time_us`] but wall-clock, for figures that use several threads.
fn wall_us(iters: usize, per_call: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / (iters * per_call) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Plants bad sets of every kind in a same-root batch of 256 and checks the batch reports
/// exactly them.
fn batch_detects_bad_sets(sets: &[SignatureSet]) -> bool {
    let mut sets = sets.to_vec();
    let n = sets.len();
    let planted = [3usize, 77, 78, 200, n - 1];
    // Wrong root.
    sets[3].signature = sets[4].signature;
    // Two signatures swapped: each wrong alone, their sum right.
    let (a, b) = (sets[77].signature, sets[78].signature);
    sets[77].signature = b;
    sets[78].signature = a;
    // Outside the G2 subgroup.
    sets[200].signature = fixtures::non_subgroup_signature(200);
    // Another key's signature over another root.
    sets[n - 1].signature = fixtures::distinct_root_sets(1, 9)[0].signature;
    let results = verify_sets(&sets);
    results
        .iter()
        .enumerate()
        .all(|(i, r)| r.is_err() == planted.contains(&i))
}

/// Runs every measurement and returns the summary object.
pub fn run(opts: &Options) -> Result<Value, Box<dyn std::error::Error>> {
    let rounds = opts.rounds.max(1);
    // The pool is built before pinning so its threads may use every core.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.pool_threads)
        .thread_name(|i| format!("perf-pool-{i}"))
        .build()?;
    let pinned = match opts.pin_core {
        Some(core) => {
            pin_current_thread(core)?;
            Value::from(core)
        }
        None => Value::Null,
    };

    let mut rng = fixtures::rng(42);
    let root = fixtures::root(&mut rng);
    let same = fixtures::same_root_sets(BATCH_N, &root, 1);
    let distinct = fixtures::distinct_root_sets(BATCH_N, 2);
    let one = same[0];
    let sig_bytes = one.signature.to_bytes();

    // Single verify and same-root batch in short, paired rounds: each round's ratio is taken
    // between two measurements a few milliseconds apart, and the median ratio is reported.
    let (mut single, mut batch, mut speedups) = (vec![], vec![], vec![]);
    for _ in 0..rounds * PAIRED_ROUNDS_FACTOR {
        let s = time_us(8, 1, || {
            assert!(one.signature.verify(&one.public_key, &one.root).is_ok());
        });
        let b = time_us(1, BATCH_N, || {
            assert!(verify_sets(&same).iter().all(Result::is_ok));
        });
        single.push(s);
        batch.push(b);
        speedups.push(s / b);
    }
    let single_us = median(single);
    let batch_us = median(batch);
    let speedup = median(speedups);
    let batch_pool_us = median(
        (0..rounds)
            .map(|_| {
                wall_us(2, BATCH_N, || {
                    assert!(verify_sets_parallel(&same, &pool).iter().all(Result::is_ok));
                })
            })
            .collect(),
    );
    let distinct_us = median(
        (0..rounds.min(3))
            .map(|_| {
                time_us(1, BATCH_N, || {
                    assert!(verify_sets(&distinct).iter().all(Result::is_ok));
                })
            })
            .collect(),
    );

    // Primitives.
    let decompress_us = median(
        (0..rounds)
            .map(|_| {
                time_us(200, 1, || {
                    assert!(Signature::from_bytes(&sig_bytes).is_ok())
                })
            })
            .collect(),
    );
    let subgroup_us = median(
        (0..rounds)
            .map(|_| time_us(200, 1, || assert!(one.signature.in_subgroup())))
            .collect(),
    );
    let hash_us = median(
        (0..rounds)
            .map(|_| {
                time_us(50, 1, || {
                    std::hint::black_box(HashedRoot::new(&root));
                })
            })
            .collect(),
    );

    // Signing.
    let validators = fixtures::threshold_validators(DUTY_VALIDATORS, 4, 3, 3);
    let sk = &validators[0].secret_key;
    let hash_cache = HashToG2Cache::new();
    hash_cache.get(&root);
    let (mut sign, mut sign_cached) = (vec![], vec![]);
    for _ in 0..rounds {
        sign.push(time_us(40, 1, || {
            std::hint::black_box(sk.sign(&root));
        }));
        sign_cached.push(time_us(40, 1, || {
            std::hint::black_box(hash_cache.sign(sk, &root));
        }));
    }

    // Threshold reconstruction from 3 partials (coefficients cached).
    let partials = fixtures::partials(&validators, 3, &root);
    let lagrange = LagrangeCache::new();
    let pairs: Vec<(OperatorId, Signature)> = partials[0]
        .iter()
        .map(|p| (p.operator_id, p.signature))
        .collect();
    assert!(reconstruct_signature(&pairs, &lagrange).is_ok());
    let reconstruct_us = median(
        (0..rounds)
            .map(|_| {
                time_us(50, 1, || {
                    assert!(reconstruct_signature(&pairs, &lagrange).is_ok())
                })
            })
            .collect(),
    );

    // Duty path against the reference path, interleaved.
    let inputs: Vec<ValidatorPartials<'_>> = validators
        .iter()
        .zip(&partials)
        .map(|(v, p)| ValidatorPartials {
            validator_public_key: v.public_key,
            partials: p,
        })
        .collect();
    let (mut duty, mut reference, mut fractions) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let d = time_us(1, DUTY_VALIDATORS, || {
            let r = reconstruct_and_verify(&root, &inputs, &lagrange, None);
            assert!(r.iter().all(Result::is_ok));
        });
        let r = time_us(1, REFERENCE_VALIDATORS, || {
            let r = reconstruct_then_verify_each(&root, &inputs[..REFERENCE_VALIDATORS], &lagrange);
            assert!(r.iter().all(Result::is_ok));
        });
        duty.push(d);
        reference.push(r);
        fractions.push(d / r);
    }
    let duty_us = median(duty);
    let reference_us = median(reference);
    let duty_fraction = median(fractions);

    // RSA-2048.
    let rsa = OperatorSecretKey::generate()?;
    let msg = [0x11u8; 300];
    let rsa_sig = rsa.sign(&msg)?;
    let rsa_pk = rsa.public_key();
    let share_ct = rsa_pk.encrypt(&[7u8; 32])?;
    let rsa_verify_us = median(
        (0..rounds)
            .map(|_| time_us(200, 1, || assert!(rsa_pk.verify(&msg, &rsa_sig).is_ok())))
            .collect(),
    );
    let rsa_sign_us = median(
        (0..rounds)
            .map(|_| time_us(20, 1, || assert!(rsa.sign(&msg).is_ok())))
            .collect(),
    );
    let rsa_decrypt_us = median(
        (0..rounds)
            .map(|_| time_us(20, 1, || assert!(rsa.decrypt(&share_ct).is_ok())))
            .collect(),
    );

    let detects = batch_detects_bad_sets(&same);
    Ok(json!({
        "cpu_path": cpu_path(),
        "pinned_core": pinned,
        "pool_threads": pool.current_num_threads(),
        "rounds": rounds,
        "timer": "thread CPU time (pool figure: wall clock)",
        "bls_verify_single_us": round2(single_us),
        "bls_batch_same_root_us_per_sig": round2(batch_us),
        "bls_batch_same_root_us_per_sig_pool": round2(batch_pool_us),
        "bls_batch_distinct_root_us_per_sig": round2(distinct_us),
        "bls_batch_n": BATCH_N,
        "bls_same_root_speedup": round2(speedup),
        "bls_same_root_speedup_note": "median over paired rounds of single/batch",
        "bls_decompress_us": round2(decompress_us),
        "bls_subgroup_check_us": round2(subgroup_us),
        "bls_hash_to_g2_us": round2(hash_us),
        "bls_reconstruct_t3_us": round2(reconstruct_us),
        "bls_sign_us": round2(median(sign)),
        "bls_sign_cached_root_us": round2(median(sign_cached)),
        "duty_path_us_per_validator": round2(duty_us),
        "reference_path_us_per_validator": round2(reference_us),
        "duty_to_reference_ratio": round2(duty_fraction),
        "rsa_verify_us": round2(rsa_verify_us),
        "rsa_sign_us": round2(rsa_sign_us),
        "rsa_decrypt_us": round2(rsa_decrypt_us),
        "batch_detects_bad_sets": detects,
        "target_same_root_speedup_met": speedup >= SAME_ROOT_SPEEDUP_TARGET,
        "target_duty_path_met": duty_fraction <= DUTY_FRACTION_TARGET,
    }))
}

/// Human-readable lines for the summary object.
pub fn render_text(v: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(m) = v {
        for (k, val) in m {
            out.push_str(&format!("{k:<40} {val}\n"));
        }
    }
    out
}

/// Command-line arguments of `ssv-perf crypto`.
#[derive(clap::Args, Debug)]
pub struct CryptoArgs {
    /// Print one JSON object instead of text lines.
    #[arg(long)]
    pub json: bool,
    /// Core to pin the measuring thread to (single-threaded figures).
    #[arg(long, default_value_t = 1)]
    pub core: usize,
    /// Do not pin the measuring thread.
    #[arg(long)]
    pub no_pin: bool,
    /// Threads of the pool for `bls_batch_same_root_us_per_sig_pool` (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub pool_threads: usize,
    /// Measurement rounds per figure (medians are reported).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
}

/// Entry point of the subcommand.
pub fn main(args: CryptoArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let opts = Options {
        // Pin to the requested core, or to the last one on a machine with fewer cores.
        pin_core: (!args.no_pin).then(|| args.core.min(cores - 1)),
        pool_threads: args.pool_threads,
        rounds: args.rounds,
    };
    let summary = run(&opts).map_err(|e| anyhow::anyhow!("crypto summary: {e}"))?;
    if args.json {
        println!("{summary}");
    } else {
        print!("{}", render_text(&summary));
    }
    Ok(())
}
