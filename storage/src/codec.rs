//! Value and key encoding: rkyv archives read in place, big-endian integer keys.
//!
//! # Alignment
//!
//! rkyv's archived types are read through references, so the bytes must sit at an address
//! aligned for the archived type. MDBX does not promise that: a value inside a leaf page
//! starts right after its node header and key, so it is only guaranteed 2-byte alignment
//! (values large enough for overflow pages are page-aligned). Every read therefore goes
//! through [`ValueRef::new`], which looks at the address it was given:
//!
//! * aligned to [`VALUE_ALIGN`]: the archive is validated and read in place, zero copies;
//! * otherwise: the bytes are copied once into an [`AlignedVec`] (a few hundred bytes, tens of
//!   nanoseconds) and read from there. [`misaligned_copies`] counts how often that happened.
//!
//! No record type archives a field whose alignment exceeds [`VALUE_ALIGN`] (there are no
//! 128-bit integers); `assert_align` checks that for each table's root type at compile time.
//!
//! Every value is validated (rkyv's `bytecheck`) before its first use, so a damaged page or a
//! hand-edited file yields [`StorageError::CorruptRecord`] instead of undefined behaviour.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Portable, Serialize};

use crate::error::{Result, StorageError};

/// Alignment every archived value needs (the largest field alignment in any record: `u64`).
pub const VALUE_ALIGN: usize = 8;

/// Counts reads whose MDBX value was misaligned and had to be copied (for metrics and tests).
static MISALIGNED_COPIES: AtomicU64 = AtomicU64::new(0);

/// How many values have been copied to an aligned buffer because MDBX handed out a
/// misaligned address, since the process started.
pub fn misaligned_copies() -> u64 {
    MISALIGNED_COPIES.load(Ordering::Relaxed)
}

/// A type that can be stored as a table value: rkyv-serializable, and whose archived form can
/// be validated and deserialized.
pub trait Record:
    Archive<
        Archived: Portable
                      + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
                      + Deserialize<Self, HighDeserializer<rancor::Error>>,
    > + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
    + Sized
{
}

impl<T> Record for T where
    T: Archive<
            Archived: Portable
                          + for<'a> CheckBytes<HighValidator<'a, rancor::Error>>
                          + Deserialize<T, HighDeserializer<rancor::Error>>,
        > + for<'a> Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, rancor::Error>>
{
}

/// Serializes `value` for `table`.
pub(crate) fn encode<T: Record>(table: &'static str, value: &T) -> Result<AlignedVec> {
    rkyv::to_bytes::<rancor::Error>(value).map_err(|e| StorageError::Encode {
        table,
        detail: e.to_string(),
    })
}

/// Compile-time check that a root archived type fits [`VALUE_ALIGN`].
pub(crate) const fn assert_align<T: Archive>() {
    assert!(std::mem::align_of::<T::Archived>() <= VALUE_ALIGN);
}

enum Bytes<'a> {
    /// Points into the MDBX memory map (or another borrowed buffer), already aligned.
    InPlace(&'a [u8]),
    /// A copy made because the source was misaligned.
    Copied(AlignedVec),
}

/// A validated archived value: zero-copy when MDBX's address was aligned, else a private
/// aligned copy. Borrowing from a read transaction, it lives no longer than the transaction.
pub struct ValueRef<'a, T: Record> {
    table: &'static str,
    bytes: Bytes<'a>,
    _marker: PhantomData<T>,
}

impl<'a, T: Record> ValueRef<'a, T> {
    /// Validates `raw` as an archived `T` (copying it first if it is misaligned).
    pub fn new(table: &'static str, raw: &'a [u8]) -> Result<Self> {
        let bytes = if (raw.as_ptr() as usize).is_multiple_of(VALUE_ALIGN) {
            Bytes::InPlace(raw)
        } else {
            MISALIGNED_COPIES.fetch_add(1, Ordering::Relaxed);
            let mut copy = AlignedVec::<16>::with_capacity(raw.len());
            copy.extend_from_slice(raw);
            Bytes::Copied(copy)
        };
        let slice = match &bytes {
            Bytes::InPlace(s) => s,
            Bytes::Copied(v) => v.as_slice(),
        };
        rkyv::access::<T::Archived, rancor::Error>(slice).map_err(|e| {
            StorageError::CorruptRecord {
                table,
                detail: e.to_string(),
            }
        })?;
        Ok(ValueRef {
            table,
            bytes,
            _marker: PhantomData,
        })
    }

    /// Validates a copy of `raw` (for bytes that do not outlive the call).
    pub fn new_owned(table: &'static str, raw: &[u8]) -> Result<ValueRef<'static, T>> {
        let mut copy = AlignedVec::<16>::with_capacity(raw.len());
        copy.extend_from_slice(raw);
        rkyv::access::<T::Archived, rancor::Error>(copy.as_slice()).map_err(|e| {
            StorageError::CorruptRecord {
                table,
                detail: e.to_string(),
            }
        })?;
        Ok(ValueRef {
            table,
            bytes: Bytes::Copied(copy),
            _marker: PhantomData,
        })
    }

    /// Whether this value is read straight from the memory map (no copy was made).
    pub fn is_in_place(&self) -> bool {
        matches!(self.bytes, Bytes::InPlace(_))
    }

    /// The archived value.
    pub fn get(&self) -> &T::Archived {
        let slice = match &self.bytes {
            Bytes::InPlace(s) => s,
            Bytes::Copied(v) => v.as_slice(),
        };
        // SAFETY: `new` validated exactly these bytes as a `T::Archived` with bytecheck, at
        // this alignment, and neither the borrowed map page (read-only for the life of the
        // read transaction) nor our private copy is mutated afterwards.
        unsafe { rkyv::access_unchecked::<T::Archived>(slice) }
    }

    /// Deserializes into an owned `T`.
    pub fn to_owned(&self) -> Result<T> {
        rkyv::deserialize::<T, rancor::Error>(self.get()).map_err(|e| StorageError::CorruptRecord {
            table: self.table,
            detail: e.to_string(),
        })
    }
}

impl<T: Record> std::ops::Deref for ValueRef<'_, T> {
    type Target = T::Archived;
    fn deref(&self) -> &T::Archived {
        self.get()
    }
}

/// Decodes an owned value (used inside write transactions, where MDBX pages may move).
pub(crate) fn decode_owned<T: Record>(table: &'static str, raw: &[u8]) -> Result<T> {
    ValueRef::<T>::new(table, raw)?.to_owned()
}

/// A table key. Integers are big-endian so MDBX's byte order is numeric order.
pub trait Key: Sized {
    /// The encoded form.
    type Encoded: AsRef<[u8]>;
    /// Encodes the key.
    fn encode(&self) -> Self::Encoded;
    /// Decodes a key read back from MDBX.
    fn decode(raw: &[u8]) -> Option<Self>;
}

impl Key for u64 {
    type Encoded = [u8; 8];
    fn encode(&self) -> [u8; 8] {
        self.to_be_bytes()
    }
    fn decode(raw: &[u8]) -> Option<Self> {
        Some(u64::from_be_bytes(raw.try_into().ok()?))
    }
}

impl<const N: usize> Key for [u8; N] {
    type Encoded = [u8; N];
    fn encode(&self) -> [u8; N] {
        *self
    }
    fn decode(raw: &[u8]) -> Option<Self> {
        raw.try_into().ok()
    }
}

/// A fixed-size byte prefix followed by a big-endian `u64`: (validator, epoch),
/// (identifier, height), ... so all entries of one prefix are contiguous and numerically
/// ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PrefixedU64<const N: usize>(pub [u8; N], pub u64);

/// Encoded [`PrefixedU64`]: `N + 8` bytes.
#[derive(Debug, Clone, Copy)]
pub struct PrefixedU64Bytes<const N: usize> {
    buf: [u8; 64],
}

impl<const N: usize> AsRef<[u8]> for PrefixedU64Bytes<N> {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..N + 8]
    }
}

impl<const N: usize> Key for PrefixedU64<N> {
    type Encoded = PrefixedU64Bytes<N>;
    fn encode(&self) -> PrefixedU64Bytes<N> {
        const { assert!(N + 8 <= 64) };
        let mut buf = [0u8; 64];
        buf[..N].copy_from_slice(&self.0);
        buf[N..N + 8].copy_from_slice(&self.1.to_be_bytes());
        PrefixedU64Bytes { buf }
    }
    fn decode(raw: &[u8]) -> Option<Self> {
        if raw.len() != N + 8 {
            return None;
        }
        let prefix: [u8; N] = raw[..N].try_into().ok()?;
        let n = u64::from_be_bytes(raw[N..].try_into().ok()?);
        Some(PrefixedU64(prefix, n))
    }
}

/// A table with a single row (the key is one zero byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Singleton;

impl Key for Singleton {
    type Encoded = [u8; 1];
    fn encode(&self) -> [u8; 1] {
        [0]
    }
    fn decode(raw: &[u8]) -> Option<Self> {
        (raw == [0]).then_some(Singleton)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_keys_sort_numerically() {
        let mut keys: Vec<[u8; 8]> = [5u64, 256, 1, u64::MAX, 0, 255]
            .iter()
            .map(Key::encode)
            .collect();
        keys.sort();
        let back: Vec<u64> = keys.iter().map(|k| u64::decode(k).unwrap()).collect();
        assert_eq!(back, vec![0, 1, 5, 255, 256, u64::MAX]);
        let a = PrefixedU64([1u8; 48], 7).encode();
        let b = PrefixedU64([1u8; 48], 300).encode();
        assert!(a.as_ref() < b.as_ref());
        assert_eq!(
            PrefixedU64::<48>::decode(b.as_ref()),
            Some(PrefixedU64([1u8; 48], 300))
        );
    }

    #[test]
    fn misaligned_values_are_copied_and_read() {
        let value: (u64, Vec<u64>) = (42, vec![1, 2, 3]);
        let bytes = rkyv::to_bytes::<rancor::Error>(&value).unwrap();
        // Place the archive at offset 1 of an aligned buffer: guaranteed misaligned.
        let mut buf = AlignedVec::<16>::new();
        buf.push(0);
        buf.extend_from_slice(&bytes);
        let before = misaligned_copies();
        let v = ValueRef::<(u64, Vec<u64>)>::new("t", &buf[1..]).unwrap();
        assert!(!v.is_in_place());
        assert!(misaligned_copies() > before);
        assert_eq!(v.to_owned().unwrap(), value);
        let aligned = ValueRef::<(u64, Vec<u64>)>::new("t", &bytes).unwrap();
        assert!(aligned.is_in_place());
        assert_eq!(aligned.get().0.to_native(), 42);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage = [0xffu8; 40];
        let mut aligned = AlignedVec::<16>::new();
        aligned.extend_from_slice(&garbage);
        assert!(matches!(
            ValueRef::<(u64, Vec<u64>)>::new("t", &aligned),
            Err(StorageError::CorruptRecord { .. })
        ));
        assert!(ValueRef::<(u64, Vec<u64>)>::new("t", &[]).is_err());
    }
}
