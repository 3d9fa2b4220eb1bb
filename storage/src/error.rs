//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in `ssv-storage`.
///
/// Bad input (a corrupt file, a foreign database, a malformed interchange document) always
/// comes back as one of these variants, never as a panic.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// MDBX refused to open the file: it is not an MDBX database, or its meta pages are
    /// damaged, or it was written by an incompatible MDBX version.
    #[error("cannot open database at {path}: {reason} ({source})")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// What this most likely means, in words.
        reason: &'static str,
        /// The MDBX error.
        #[source]
        source: libmdbx::Error,
    },
    /// The data file exists but is too short to hold MDBX's three meta pages. MDBX would
    /// silently re-initialise (overwrite) such a file, so it is refused before MDBX sees it.
    #[error(
        "{path} is {size_bytes} bytes, too small to be an MDBX database (at least {min_bytes}); \
         refusing to overwrite it"
    )]
    NotMdbx {
        /// The data file.
        path: PathBuf,
        /// Its size.
        size_bytes: u64,
        /// Smallest size of a database with the configured page size.
        min_bytes: u64,
    },
    /// The file is a valid MDBX database but was not written by this crate (it has tables
    /// but no `meta` table with our magic).
    #[error("database at {path} is not an ssv-storage database: {detail}")]
    ForeignDatabase {
        /// The database directory.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The database was written with another schema version; there is no migration.
    #[error("database schema version {found}, this build reads version {expected}")]
    SchemaVersion {
        /// Version stored in the file.
        found: u32,
        /// Version this build writes and reads.
        expected: u32,
    },
    /// The database belongs to another network (its genesis validators root differs).
    #[error("database genesis validators root {found} differs from configured {expected}")]
    GenesisMismatch {
        /// Hex of the root stored in the database.
        found: String,
        /// Hex of the root in the configuration.
        expected: String,
    },
    /// An MDBX call failed after open (I/O error, map full, corrupted page found while
    /// reading, ...).
    #[error("mdbx error during {context}: {source}")]
    Mdbx {
        /// The operation that failed.
        context: &'static str,
        /// The MDBX error.
        #[source]
        source: libmdbx::Error,
    },
    /// A stored value or key failed validation: the file is damaged or was edited by hand.
    #[error("corrupt record in table {table}: {detail}")]
    CorruptRecord {
        /// The table the record is in.
        table: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A value could not be serialized (should not happen for well-formed records).
    #[error("cannot encode record for table {table}: {detail}")]
    Encode {
        /// The target table.
        table: &'static str,
        /// The serializer's message.
        detail: String,
    },
    /// A record handed to the store breaks one of its documented bounds (`*_MAX`).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A contract-sync commit named a block at or below the stored cursor
    /// ([`crate::WriteOp::AdvanceSyncCursor`]): applying it would apply that block twice. The
    /// whole request was refused.
    #[error("cursor regression: block {block} is not after the stored cursor {cursor}")]
    CursorRegression {
        /// The block the request was to commit.
        block: u64,
        /// The cursor already stored.
        cursor: u64,
    },
    /// The writer thread is gone (it panicked or the store was closed), so nothing more can
    /// be written.
    #[error("the storage writer thread has stopped")]
    WriterStopped,
    /// A slashing-protection check was not committed within its deadline: nothing may be
    /// signed on its account.
    #[error("slashing protection not committed within {0:?}")]
    SlashingTimeout(std::time::Duration),
    /// The writer's bounded request queue is full (returned by `try_submit` only; `submit`
    /// waits instead).
    #[error("the storage writer queue is full")]
    WriteQueueFull,
    /// A filesystem operation around the database (creating its directory) failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An EIP-3076 interchange document is malformed or does not belong to this network.
    #[error("invalid slashing-protection interchange: {0}")]
    Interchange(String),
}

impl StorageError {
    /// Wraps an MDBX error raised during `context`.
    pub(crate) fn mdbx(context: &'static str) -> impl FnOnce(libmdbx::Error) -> Self {
        move |source| StorageError::Mdbx { context, source }
    }
}

/// Result alias for this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
