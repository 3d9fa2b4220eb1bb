//! The MDBX environment: configuration, open (with schema check), typed table access.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use libmdbx::{
    DatabaseOptions, Mode, NoWriteMap, PageSize, RO, RW, ReadWriteOptions, SyncMode, TableFlags,
    Transaction, WriteFlags,
};

use crate::codec::{Key, ValueRef, decode_owned, encode};
use crate::error::{Result, StorageError};
use crate::records::Root;
use crate::tables::{META_TABLE, TABLE_NAMES, TABLES_ADDED_LATER, TABLES_COUNT, Table};

/// The MDBX environment type used throughout (no write map: see [`StoreConfig`]).
pub(crate) type Env = libmdbx::Database<NoWriteMap>;

/// Magic bytes at the start of the schema row of [`META_TABLE`].
pub const SCHEMA_MAGIC: [u8; 16] = *b"ssv-storage\0\0\0\0\0";
/// Version of the on-disk schema this build reads and writes. Bump on any change to a
/// table's key or value layout; a database with another version is refused at open.
///
/// Version 2 added the contract-sync registry tables (operator status, validator events,
/// owner nonces, fee recipients, liquidated clusters, malformed events, own operator).
pub const SCHEMA_VERSION: u32 = 2;

/// MDBX keeps three meta pages at the start of the data file.
const MDBX_META_PAGES: usize = 3;

const META_SCHEMA_KEY: &[u8] = b"schema";
const META_GENESIS_KEY: &[u8] = b"genesis_validators_root";

/// Durability of each commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is flushed (data, then meta page) before it is acknowledged
    /// (`MDBX_SYNC_DURABLE`). A power loss cannot lose an acknowledged commit. One commit costs
    /// about 6 ms on the development machine, which is why writes are batched.
    Durable,
    /// Commits are not flushed (`MDBX_SAFE_NOSYNC`); MDBX keeps the last flushed ("steady")
    /// state intact. A process crash loses nothing (the data is in the OS page cache); a power
    /// loss rolls back to the last steady commit. Never use it for slashing protection in
    /// production; it exists for tests, the vectors runner and benchmarks that measure logic.
    NoSyncSafe,
}

/// Size bounds of the data file. MDBX maps `max_size_bytes` of address space up front (not
/// disk) and grows the file in `growth_step_bytes` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Initial / smallest file size.
    pub min_size_bytes: usize,
    /// Largest file size; a write beyond it fails with a `MapFull` error. Too small: the node
    /// stops being able to record slashing protection and must be restarted with more.
    pub max_size_bytes: usize,
    /// Growth step. Too small: frequent remaps during bulk sync.
    pub growth_step_bytes: usize,
    /// Free space at the end of the file above which MDBX shrinks it.
    pub shrink_threshold_bytes: usize,
    /// Page size of a new database (fixed once created). 4 KiB matches the OS page.
    pub page_size_bytes: usize,
}

impl Default for Geometry {
    fn default() -> Self {
        Geometry {
            min_size_bytes: 1 << 20,
            // 100,000 validators' shares are ~60 MB; slashing history and decided values add
            // ~100 bytes per validator per epoch before pruning. 64 GiB leaves years of room.
            max_size_bytes: 64 << 30,
            growth_step_bytes: 16 << 20,
            shrink_threshold_bytes: 64 << 20,
            page_size_bytes: 4096,
        }
    }
}

/// Most simultaneous read transactions (MDBX reader slots). Too small: readers fail with
/// `ReadersFull` when many shards read at once.
pub const READERS_MAX: u32 = 256;
/// Capacity of the bounded channel in front of the writer thread (requests, not records).
/// When it is full, [`crate::Store::submit`] blocks (back-pressure: a durable write is never
/// dropped) and [`crate::Store::try_submit`] returns [`StorageError::WriteQueueFull`].
pub const WRITE_QUEUE_MAX: usize = 1024;

/// Configuration of a [`crate::Store`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Directory holding `mdbx.dat` and `mdbx.lck`; created if missing.
    pub path: PathBuf,
    /// Genesis validators root of the network. Written on first open, checked afterwards; it
    /// is also the root slashing-protection interchange files must carry.
    pub genesis_validators_root: Root,
    /// Commit durability.
    pub durability: Durability,
    /// File geometry.
    pub geometry: Geometry,
    /// Write our decrypted share secret to disk. Off by default: only the encrypted share is
    /// stored and the secret lives in memory. Operators who keep the operator key elsewhere
    /// (and accept clear-text shares on disk) turn it on to skip RSA decryption at start-up.
    pub persist_decrypted_shares: bool,
    /// Keep every decided instance, not only the highest per identifier (exporter mode).
    pub decided_history: bool,
    /// Capacity of the writer's request queue.
    pub write_queue_max: usize,
    /// MDBX's careful mode (`MDBX_VALIDATION`): every page is checked when it is read, so a
    /// damaged file yields an error instead of a wild read (without it a corrupted page
    /// pointer or length can fault the process with SIGBUS). On by default; it costs some
    /// read speed (see the crate docs for the measured start-up figure with and without).
    pub validate_pages: bool,
    /// Fault injection for tests: while the flag is set, every commit fails as a failing
    /// `fsync` would (the transaction is aborted and every request in it gets the error).
    /// `None` in every real configuration.
    pub commit_fault: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl StoreConfig {
    /// A durable configuration with default geometry for `path` on the network with
    /// `genesis_validators_root`.
    pub fn new(path: impl Into<PathBuf>, genesis_validators_root: Root) -> Self {
        StoreConfig {
            path: path.into(),
            genesis_validators_root,
            durability: Durability::Durable,
            geometry: Geometry::default(),
            persist_decrypted_shares: false,
            decided_history: false,
            write_queue_max: WRITE_QUEUE_MAX,
            validate_pages: true,
            commit_fault: None,
        }
    }
}

fn open_reason(e: &libmdbx::Error) -> &'static str {
    use libmdbx::Error as E;
    match e {
        E::Invalid => "not an MDBX database (no valid meta page): foreign or corrupt file",
        E::Corrupted | E::PageNotFound | E::BadSign | E::WannaRecovery => "the database is corrupt",
        E::VersionMismatch | E::Incompatible => "written by an incompatible MDBX version",
        E::TooLarge => "the file is larger than the configured maximum size",
        E::PermissionDenied | E::Access => "permission denied",
        E::Busy => "the database is locked by another process in an incompatible mode",
        _ => "MDBX could not open it",
    }
}

/// Opens (creating if needed) the environment and checks or writes the schema row.
pub(crate) fn open_env(config: &StoreConfig) -> Result<Env> {
    std::fs::create_dir_all(&config.path).map_err(|source| StorageError::Io {
        path: config.path.clone(),
        source,
    })?;
    let g = &config.geometry;
    // MDBX re-initialises a data file shorter than its three meta pages instead of failing;
    // refuse such a file so that a stray or truncated file is reported, not overwritten.
    // (An empty file holds nothing and is initialised like a missing one.)
    let file = data_file(&config.path);
    if let Ok(meta) = std::fs::metadata(&file) {
        let min_bytes = (MDBX_META_PAGES * g.page_size_bytes) as u64;
        if meta.len() > 0 && meta.len() < min_bytes {
            return Err(StorageError::NotMdbx {
                path: file,
                size_bytes: meta.len(),
                min_bytes,
            });
        }
    }
    let to_isize = |v: usize| isize::try_from(v).unwrap_or(isize::MAX);
    let options = DatabaseOptions {
        max_tables: Some(TABLES_COUNT as u64),
        max_readers: Some(READERS_MAX),
        page_size: Some(PageSize::Set(g.page_size_bytes)),
        // Shared (not exclusive) so read-only tools can inspect a live database; MDBX's lock
        // file serialises writers across processes.
        exclusive: false,
        accede: false,
        no_sub_dir: false,
        // Readahead helps the sequential scan of all shares at start-up.
        no_rdahead: false,
        // Zero-fill fresh pages: unused page bytes never carry stale memory to disk.
        no_meminit: false,
        liforeclaim: false,
        mode: Mode::ReadWrite(ReadWriteOptions {
            sync_mode: match config.durability {
                Durability::Durable => SyncMode::Durable,
                Durability::NoSyncSafe => SyncMode::SafeNoSync,
            },
            min_size: Some(to_isize(g.min_size_bytes)),
            max_size: Some(to_isize(g.max_size_bytes)),
            growth_step: Some(to_isize(g.growth_step_bytes)),
            shrink_threshold: Some(to_isize(g.shrink_threshold_bytes)),
        }),
        ..Default::default()
    };
    let env =
        Env::open_with_options(&config.path, options).map_err(|source| StorageError::Open {
            path: config.path.clone(),
            reason: open_reason(&source),
            source,
        })?;
    if config.validate_pages {
        // SAFETY: `env.ptr()` is the live environment handle owned by `env`, which outlives
        // the call; MDBX_VALIDATION is one of the flags MDBX allows to change at run time
        // (ENV_CHANGEABLE_FLAGS), and no transaction is running yet.
        let rc =
            unsafe { mdbx_sys::mdbx_env_set_flags(env.ptr().0, mdbx_sys::MDBX_VALIDATION, true) };
        if rc != mdbx_sys::MDBX_SUCCESS {
            return Err(StorageError::Open {
                path: config.path.clone(),
                reason: "cannot enable MDBX page validation",
                source: libmdbx::Error::from_err_code(rc),
            });
        }
    }
    check_schema(&env, config)?;
    Ok(env)
}

fn check_schema(env: &Env, config: &StoreConfig) -> Result<()> {
    let path = &config.path;
    let txn = env
        .begin_rw_txn()
        .map_err(StorageError::mdbx("begin schema txn"))?;
    match txn.open_table(Some(META_TABLE)) {
        Ok(meta) => {
            let schema: Option<Vec<u8>> = txn
                .get(&meta, META_SCHEMA_KEY)
                .map_err(StorageError::mdbx("read schema"))?;
            let schema = schema.ok_or_else(|| StorageError::ForeignDatabase {
                path: path.clone(),
                detail: "a `meta` table without a schema row".into(),
            })?;
            if schema.len() != 20 || schema[..16] != SCHEMA_MAGIC {
                return Err(StorageError::ForeignDatabase {
                    path: path.clone(),
                    detail: "the schema row does not carry the ssv-storage magic".into(),
                });
            }
            let mut version = [0u8; 4];
            version.copy_from_slice(&schema[16..20]);
            let found = u32::from_be_bytes(version);
            if found != SCHEMA_VERSION {
                return Err(StorageError::SchemaVersion {
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
            let root: Option<Vec<u8>> = txn
                .get(&meta, META_GENESIS_KEY)
                .map_err(StorageError::mdbx("read genesis"))?;
            match root {
                Some(root) if root == config.genesis_validators_root => {}
                Some(root) => {
                    return Err(StorageError::GenesisMismatch {
                        found: format!("0x{}", hex::encode(root)),
                        expected: format!("0x{}", hex::encode(config.genesis_validators_root)),
                    });
                }
                None => {
                    return Err(StorageError::ForeignDatabase {
                        path: path.clone(),
                        detail: "no genesis validators root row".into(),
                    });
                }
            }
            for name in TABLE_NAMES {
                if let Err(e) = txn.open_table(Some(name)) {
                    if TABLES_ADDED_LATER.contains(name) {
                        // A database written before this table existed: add it, empty.
                        txn.create_table(Some(name), TableFlags::empty())
                            .map_err(StorageError::mdbx("create a table added later"))?;
                        continue;
                    }
                    return Err(StorageError::CorruptRecord {
                        table: name,
                        detail: format!("table missing from a version-{found} database: {e}"),
                    });
                }
            }
            // Commits the tables added later, if any (otherwise nothing was written).
            txn.commit().map_err(StorageError::mdbx("end schema txn"))?;
            Ok(())
        }
        Err(libmdbx::Error::NotFound) => {
            // No `meta` table: either a new database or somebody else's.
            let main = txn
                .open_table(None)
                .map_err(StorageError::mdbx("open main table"))?;
            let entries = txn
                .table_stat(&main)
                .map_err(StorageError::mdbx("stat"))?
                .entries();
            if entries > 0 {
                return Err(StorageError::ForeignDatabase {
                    path: path.clone(),
                    detail: format!("{entries} entries in the main table but no `meta` table"),
                });
            }
            let meta = txn
                .create_table(Some(META_TABLE), TableFlags::empty())
                .map_err(StorageError::mdbx("create meta"))?;
            let mut schema = SCHEMA_MAGIC.to_vec();
            schema.extend_from_slice(&SCHEMA_VERSION.to_be_bytes());
            txn.put(&meta, META_SCHEMA_KEY, schema, WriteFlags::empty())
                .map_err(StorageError::mdbx("write schema"))?;
            txn.put(
                &meta,
                META_GENESIS_KEY,
                config.genesis_validators_root,
                WriteFlags::empty(),
            )
            .map_err(StorageError::mdbx("write genesis"))?;
            for name in TABLE_NAMES {
                txn.create_table(Some(name), TableFlags::empty())
                    .map_err(StorageError::mdbx("create table"))?;
            }
            txn.commit().map_err(StorageError::mdbx("commit schema"))?;
            Ok(())
        }
        Err(e) => Err(StorageError::Open {
            path: path.clone(),
            reason: open_reason(&e),
            source: e,
        }),
    }
}

/// A handle to one typed table inside one transaction (opening one is a name lookup in
/// MDBX; hot loops open it once, e.g. with [`ReadTxn::table`]).
pub struct Handle<'t, T: Table> {
    raw: libmdbx::Table<'t>,
    _marker: PhantomData<T>,
}

impl<'t, T: Table> Handle<'t, T> {
    pub(crate) fn open<K: libmdbx::TransactionKind>(
        txn: &'t Transaction<'_, K, NoWriteMap>,
    ) -> Result<Self> {
        let raw = txn
            .open_table(Some(T::NAME))
            .map_err(|e| StorageError::CorruptRecord {
                table: T::NAME,
                detail: format!("cannot open table: {e}"),
            })?;
        Ok(Handle {
            raw,
            _marker: PhantomData,
        })
    }
}

fn decode_key<T: Table>(raw: &[u8]) -> Result<T::Key> {
    T::Key::decode(raw).ok_or_else(|| StorageError::CorruptRecord {
        table: T::NAME,
        detail: format!("key of {} bytes has the wrong shape", raw.len()),
    })
}

/// A read-only snapshot. Readers never block the writer (MDBX MVCC); keep them short, since
/// pages freed after a reader started cannot be reused while it lives.
pub struct ReadTxn<'db> {
    txn: Transaction<'db, RO, NoWriteMap>,
}

impl<'db> ReadTxn<'db> {
    pub(crate) fn new(env: &'db Env) -> Result<Self> {
        Ok(ReadTxn {
            txn: env
                .begin_ro_txn()
                .map_err(StorageError::mdbx("begin read txn"))?,
        })
    }

    /// Reads the value at `key` of table `T`, in place when aligned.
    pub fn get<T: Table>(&self, key: &T::Key) -> Result<Option<ValueRef<'_, T::Value>>> {
        let handle = Handle::<T>::open(&self.txn)?;
        self.get_with(&handle, key)
    }

    /// Opens table `T` once for many [`ReadTxn::get_with`] calls.
    pub fn table<T: Table>(&self) -> Result<Handle<'_, T>> {
        Handle::open(&self.txn)
    }

    /// Like [`ReadTxn::get`] with a handle from [`ReadTxn::table`].
    pub fn get_with<'s, T: Table>(
        &'s self,
        handle: &Handle<'s, T>,
        key: &T::Key,
    ) -> Result<Option<ValueRef<'s, T::Value>>> {
        let raw: Option<Cow<'s, [u8]>> = self
            .txn
            .get(&handle.raw, key.encode())
            .map_err(StorageError::mdbx("get"))?;
        match raw {
            None => Ok(None),
            Some(Cow::Borrowed(bytes)) => ValueRef::new(T::NAME, bytes).map(Some),
            Some(Cow::Owned(bytes)) => ValueRef::new_owned(T::NAME, &bytes).map(Some),
        }
    }

    /// Calls `f` for each entry of `T` with key `>= from` (all entries when `from` is `None`),
    /// in key order, until `f` breaks.
    pub fn scan<T: Table>(
        &self,
        from: Option<&T::Key>,
        mut f: impl FnMut(T::Key, ValueRef<'_, T::Value>) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let handle = Handle::<T>::open(&self.txn)?;
        let mut cursor = self
            .txn
            .cursor(&handle.raw)
            .map_err(StorageError::mdbx("cursor"))?;
        let mut item: Option<(Cow<'_, [u8]>, Cow<'_, [u8]>)> = match from {
            None => cursor.first().map_err(StorageError::mdbx("cursor first"))?,
            Some(k) => cursor
                .set_range(k.encode().as_ref())
                .map_err(StorageError::mdbx("cursor seek"))?,
        };
        while let Some((k, v)) = item {
            let key = decode_key::<T>(&k)?;
            let value = match &v {
                Cow::Borrowed(bytes) => ValueRef::new(T::NAME, bytes)?,
                Cow::Owned(bytes) => ValueRef::new_owned(T::NAME, bytes)?,
            };
            if f(key, value)?.is_break() {
                break;
            }
            item = cursor.next().map_err(StorageError::mdbx("cursor next"))?;
        }
        Ok(())
    }

    /// The last entry of `T` in key order (the greatest key), if any.
    pub fn last<T: Table>(&self) -> Result<Option<(T::Key, ValueRef<'_, T::Value>)>> {
        let handle = Handle::<T>::open(&self.txn)?;
        let mut cursor = self
            .txn
            .cursor(&handle.raw)
            .map_err(StorageError::mdbx("cursor"))?;
        let last: Option<(Cow<'_, [u8]>, Cow<'_, [u8]>)> =
            cursor.last().map_err(StorageError::mdbx("cursor last"))?;
        match last {
            None => Ok(None),
            Some((k, v)) => {
                let key = decode_key::<T>(&k)?;
                let value = match v {
                    Cow::Borrowed(bytes) => ValueRef::new(T::NAME, bytes)?,
                    Cow::Owned(bytes) => ValueRef::new_owned(T::NAME, &bytes)?,
                };
                Ok(Some((key, value)))
            }
        }
    }

    /// Number of entries in table `T`.
    pub fn count<T: Table>(&self) -> Result<usize> {
        let handle = Handle::<T>::open(&self.txn)?;
        Ok(self
            .txn
            .table_stat(&handle.raw)
            .map_err(StorageError::mdbx("stat"))?
            .entries())
    }
}

/// A write transaction; only the writer thread (and open) create these.
pub(crate) struct WriteTxn<'db> {
    pub(crate) txn: Transaction<'db, RW, NoWriteMap>,
}

impl<'db> WriteTxn<'db> {
    pub(crate) fn new(env: &'db Env) -> Result<Self> {
        Ok(WriteTxn {
            txn: env
                .begin_rw_txn()
                .map_err(StorageError::mdbx("begin write txn"))?,
        })
    }

    pub(crate) fn handle<T: Table>(&self) -> Result<Handle<'_, T>> {
        Handle::open(&self.txn)
    }

    /// Reads and deserializes (write transactions may move pages, so no in-place reads).
    pub(crate) fn get<'s, T: Table>(
        &'s self,
        handle: &Handle<'s, T>,
        key: &T::Key,
    ) -> Result<Option<T::Value>> {
        let raw: Option<Cow<'s, [u8]>> = self
            .txn
            .get(&handle.raw, key.encode())
            .map_err(StorageError::mdbx("get"))?;
        raw.map(|bytes| decode_owned::<T::Value>(T::NAME, &bytes))
            .transpose()
    }

    pub(crate) fn put<'s, T: Table>(
        &'s self,
        handle: &Handle<'s, T>,
        key: &T::Key,
        value: &T::Value,
    ) -> Result<()> {
        let bytes = encode(T::NAME, value)?;
        self.txn
            .put(
                &handle.raw,
                key.encode(),
                bytes.as_slice(),
                WriteFlags::empty(),
            )
            .map_err(StorageError::mdbx("put"))
    }

    /// The greatest key of `T`, if the table is not empty.
    pub(crate) fn last_key<'s, T: Table>(
        &'s self,
        handle: &Handle<'s, T>,
    ) -> Result<Option<T::Key>> {
        let mut cursor = self
            .txn
            .cursor(&handle.raw)
            .map_err(StorageError::mdbx("cursor"))?;
        let last: Option<(Cow<'_, [u8]>, Cow<'_, [u8]>)> =
            cursor.last().map_err(StorageError::mdbx("cursor last"))?;
        last.map(|(k, _)| decode_key::<T>(&k)).transpose()
    }

    pub(crate) fn del<'s, T: Table>(
        &'s self,
        handle: &Handle<'s, T>,
        key: &T::Key,
    ) -> Result<bool> {
        self.txn
            .del(&handle.raw, key.encode(), None)
            .map_err(StorageError::mdbx("delete"))
    }

    /// Visits entries with key `>= from` in order until `f` breaks; `f` sees owned values.
    pub(crate) fn scan<'s, T: Table>(
        &'s self,
        handle: &Handle<'s, T>,
        from: &T::Key,
        mut f: impl FnMut(T::Key, T::Value) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let mut cursor = self
            .txn
            .cursor(&handle.raw)
            .map_err(StorageError::mdbx("cursor"))?;
        let mut item: Option<(Cow<'_, [u8]>, Cow<'_, [u8]>)> = cursor
            .set_range(from.encode().as_ref())
            .map_err(StorageError::mdbx("cursor seek"))?;
        while let Some((k, v)) = item {
            let key = decode_key::<T>(&k)?;
            let value = decode_owned::<T::Value>(T::NAME, &v)?;
            if f(key, value)?.is_break() {
                break;
            }
            item = cursor.next().map_err(StorageError::mdbx("cursor next"))?;
        }
        Ok(())
    }

    pub(crate) fn commit(self) -> Result<()> {
        self.txn.commit().map_err(StorageError::mdbx("commit"))?;
        Ok(())
    }
}

/// The path of the MDBX data file inside a store directory.
pub fn data_file(dir: &Path) -> PathBuf {
    dir.join("mdbx.dat")
}
