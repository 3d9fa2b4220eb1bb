//! `ssv-perf registry`: what the live registry's rebuild costs at scale. A store holding
//! `--validators` validators of ours (as contract sync stores them: RSA-encrypted shares) is
//! loaded as `ssv-node start` loads it; then the registry is rebuilt with nothing changed
//! (what every batch of contract events or a beacon-status change costs), and again after
//! `--churn` validators were removed and as many added (the added ones decrypted), and the
//! added ones are force-bumped in slashing protection.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context;
use ssv_node::Registry;
use ssv_protocol::types::DomainType;
use ssv_storage::{Store, StoreConfig, WriteOp};

/// Arguments of `ssv-perf registry`.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Validators of ours in the store.
    #[arg(long, default_value_t = 10_000)]
    pub validators: usize,
    /// Validators removed and as many added before the second rebuild.
    #[arg(long, default_value_t = 500)]
    pub churn: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// What one run measured, in milliseconds.
#[derive(Debug, serde::Serialize)]
pub struct RegistryReport {
    /// Validators.
    pub validators: usize,
    /// Removed and added.
    pub churn: usize,
    /// `Registry::load` (every share decrypted), as at start-up.
    pub load_ms: f64,
    /// `Registry::refresh` with nothing changed.
    pub refresh_unchanged_ms: f64,
    /// `Registry::refresh` after the churn (the added shares decrypted).
    pub refresh_churn_ms: f64,
    /// The forced slashing-protection bump of the added validators (one commit).
    pub bump_ms: f64,
}

/// Runs `ssv-perf registry`.
pub fn main(args: RegistryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.churn <= args.validators,
        "--churn must not exceed --validators"
    );
    let total = (args.validators + args.churn) as u64;
    let t = Instant::now();
    let setup = ssv_devnet::Setup::generate(4, total, 4, 1).context("set-up")?;
    let ops = setup.store_ops(1).context("store writes")?;
    eprintln!(
        "registry: {total} validators generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let is_late = |op: &WriteOp| matches!(op, WriteOp::PutShare(s) if s.validator_index.unwrap_or(0) >= args.validators as u64);
    let (late, now): (Vec<WriteOp>, Vec<WriteOp>) = ops.into_iter().partition(is_late);
    let dir = tempfile::tempdir().context("temp dir")?;
    let store = Store::open(StoreConfig::new(dir.path().join("db"), [7; 32]))?;
    store.write(now)?;
    let key = std::sync::Arc::new(
        ssv_crypto_pipeline::OperatorSecretKey::from_pem(
            &setup.operators[0].key.to_pem().context("operator key")?,
        )
        .map_err(|e| anyhow::anyhow!("operator key: {e}"))?,
    );
    let key = &ssv_node::OurOperators::single(1, key);
    let domain = DomainType::SPEC_TESTING;
    let t = Instant::now();
    let registry = Registry::load(&store, key, domain)?;
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        registry.validator_count() == args.validators,
        "loaded {} validators",
        registry.validator_count()
    );
    let t = Instant::now();
    let same = registry.refresh(&store, key, domain, &HashSet::new())?;
    let refresh_unchanged_ms = t.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(same.validator_count() == args.validators);
    let added: Vec<[u8; 48]> = late
        .iter()
        .filter_map(|op| match op {
            WriteOp::PutShare(s) => Some(s.validator_pubkey),
            _ => None,
        })
        .collect();
    let mut churn_ops = late;
    churn_ops.extend(
        setup.validators[..args.churn]
            .iter()
            .map(|v| WriteOp::DeleteShare(v.pubkey)),
    );
    store.write(churn_ops)?;
    let t = Instant::now();
    let next = same.refresh(&store, key, domain, &HashSet::new())?;
    let refresh_churn_ms = t.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        next.validator_count() == args.validators,
        "after the churn: {} validators",
        next.validator_count()
    );
    let t = Instant::now();
    store.bump_slashing_protection_forced(&added, 100, 3200)?;
    let bump_ms = t.elapsed().as_secs_f64() * 1000.0;
    let r = RegistryReport {
        validators: args.validators,
        churn: args.churn,
        load_ms,
        refresh_unchanged_ms,
        refresh_churn_ms,
        bump_ms,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "registry of {} validators: load {:.0} ms, rebuild unchanged {:.0} ms, rebuild with \
             {} removed and {} added {:.0} ms, forced bump of the added {:.0} ms",
            r.validators,
            r.load_ms,
            r.refresh_unchanged_ms,
            r.churn,
            r.churn,
            r.refresh_churn_ms,
            r.bump_ms
        );
    }
    Ok(())
}
