//! Persistent state of the SSV node in MDBX: operators, shares, committees, validator
//! metadata, decided values, slashing protection and the contract-sync cursor.
//!
//! # Place in the data flow
//!
//! ```text
//! contract sync (node) ──WriteOp batches──┐
//! QBFT decided values (shards) ───────────┼─► bounded channel ─► writer thread ─► MDBX (one commit per batch)
//! duty runners: "may I sign?" ────────────┘         (check_and_record: verdicts after the commit)
//! start-up / shards / API ◄── read snapshots (MVCC, never block the writer) ◄── MDBX
//! ```
//!
//! The node converts the wire types of `ssv-protocol` into the records of [`records`], so the
//! on-disk schema is owned here and versioned by [`SCHEMA_VERSION`].
//!
//! # Contract-sync registry
//!
//! The node's contract sync (`ssv-node`, `eth::MdbxRegistryStore`) keeps the registry the
//! SSVNetwork events build here: operators (plus [`tables::OperatorStatuses`] for the
//! `removed` flag), one [`ShareRecord`] per validator of *every* committee (as the Go node:
//! message validation of other committees needs their share public keys; only our own
//! carries an encrypted share), [`tables::ValidatorEvents`] (event order of the operators,
//! added / exit-requested blocks), owner nonces, fee recipients, liquidated clusters, the
//! newest [`MALFORMED_EVENTS_MAX`] malformed events and our operator ID. One block's
//! changes and [`WriteOp::AdvanceSyncCursor`] go in one [`Store::write`] batch, which the
//! writer never splits (see [`writer`]), so a restart resumes at the block after the cursor.
//!
//! # Binding
//!
//! MDBX through the [`libmdbx`] crate 0.9 (vorot93/libmdbx-rs, bundling C libmdbx 0.14 via
//! `mdbx-sys`, which needs `libclang` at build time). It is the maintained, safe wrapper on
//! crates.io (reth's fork is not published), gives zero-copy `Cow::Borrowed` reads in
//! read-only transactions, and exposes geometry, sync mode and table flags explicitly.
//!
//! # Environment
//!
//! Set explicitly at open ([`Store::open`]): geometry from [`Geometry`] (1 MiB initial, 64 GiB
//! maximum, 16 MiB growth step, 64 MiB shrink threshold, 4 KiB pages), [`READERS_MAX`]
//! reader slots, one named table per [`tables`] entry plus `meta`, no write map (a stray
//! pointer in the process cannot scribble on the map; writes go through `pwrite`), shared
//! (non-exclusive) open, and the commit durability of [`Durability`] (`Durable` by default:
//! data then meta page flushed before a commit returns).
//!
//! Damaged files: MDBX keeps no page checksums, so by default the environment runs in
//! MDBX's careful mode ([`StoreConfig::validate_pages`], `MDBX_VALIDATION`): each page is
//! checked as it is read and a damaged page gives [`StorageError::Mdbx`] instead of a wild
//! read (without it, a flipped page pointer faulted the process with SIGBUS in
//! `tests/corruption.rs`). Values are validated by rkyv on top. A flipped bit inside a key or
//! a public key still reads back as other valid data; nothing short of checksums catches that.
//! MDBX re-initialises a data file shorter than its three meta pages, so such a file is
//! refused before MDBX sees it ([`StorageError::NotMdbx`]).
//!
//! The `meta` table holds the schema magic and version and the genesis validators root; open
//! refuses a file that is not MDBX, a damaged one, a foreign MDBX database, another schema
//! version or another network, each with its own [`StorageError`] variant.
//!
//! # Values
//!
//! Values are rkyv 0.8 archives, validated once and then read in place from the memory map;
//! MDBX only guarantees 2-byte alignment of values, so a misaligned value is copied once into
//! an aligned buffer (see [`codec`] for the details and the counter). Keys are fixed-size
//! byte strings with big-endian integers.
//!
//! # Writes
//!
//! One writer thread owns every write transaction ([`writer`]); callers hand it batches over
//! a bounded channel and it commits once per batch (folding concurrently queued batches into
//! the same commit). [`Store::commits`] counts the commits.
//!
//! # Slashing protection
//!
//! [`Store::check_and_record`] checks a batch of blocks and attestations for many
//! validators and records the safe ones in one transaction; see [`slashing`] for the rules.
//! EIP-3076 interchange import (minified merge) and export (complete or minified) are in
//! [`Store::import_interchange`] and [`Store::export_interchange`]; the `eip3076-vectors`
//! binary runs the standard test vectors ([`vectors`]).
//!
//! # Measured (2-core development machine, shared with other builds: load average 8-10)
//!
//! `cargo bench -p ssv-benches --bench storage` (criterion medians):
//!
//! | benchmark | time |
//! |---|---|
//! | open + committee map, 100,000 validators (page validation on / off) | ~196 ms / ~143 ms |
//! | open + committee map, 10,000 validators (on / off) | ~54 ms / ~47 ms |
//! | 1,024 share lookups in one snapshot, in place (validation on) | ~3.5 ms |
//! | one write batch of 1 / 100 / 1,000 decided records, durable | ~2 / ~1.7 / ~14 ms |
//! | check and record 1,000 attestations, one durable commit | ~47 ms |
//!
//! Slashing pages are keyed by validator, so one slot's attestations dirty one leaf page per
//! validator; at 100,000 validators that is thousands of pages per commit, which is why the
//! check runs once per slot for all validators, never once per validator.
//!
//! # Not done here
//!
//! No migrations (another schema version is refused: version 1 files, from before the
//! registry tables, must be re-created and re-synced). Pruning of the decided-history table
//! (exporter mode) is a write op ([`WriteOp::PruneDecidedHistory`]) the caller issues.

pub mod codec;
pub mod committee;
pub mod db;
pub mod decided;
mod error;
pub mod interchange;
pub mod records;
pub mod slashing;
mod store;
pub mod tables;
pub mod vectors;
pub mod writer;

#[cfg(any(test, feature = "test-utils"))]
pub mod fixtures;

pub use codec::{ValueRef, misaligned_copies};
pub use committee::{CommitteeEntry, CommitteeMap, CommitteeValidator};
pub use db::{
    Durability, Geometry, READERS_MAX, ReadTxn, SCHEMA_VERSION, StoreConfig, WRITE_QUEUE_MAX,
};
pub use error::{Result, StorageError};
pub use interchange::{ImportSummary, Interchange};
pub use records::*;
pub use slashing::{
    AttestationToSign, BlockToSign, PruneBelow, PruneSummary, Safe, SlashingVerdicts,
    SlashingViolation, Verdict,
};
pub use store::{ExportForm, Store};
pub use writer::{CommitInfo, WriteOp};
