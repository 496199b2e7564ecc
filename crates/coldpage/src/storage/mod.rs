//! Where a handle's bytes live: one module per backend, behind one [`Storage`].
//!
//! - [`swap`]: a region of anonymous memory the OS is asked to page out first.
//! - [`file`]: an extent of the pager's scratch arena, with a checksum per block.
//! - [`encoded`]: an extent whose blocks are compressed and/or encrypted one by one.
//! - [`extent`]: what the two file-backed stores share: writing an extent (no space →
//!   flush the recycled extents → retry, written once) and reading it back (shared
//!   read windows under the SIGBUS guard, or `pread`).
//!
//! [`Storage`] answers every question a handle asks of its bytes (read, lend, prefetch,
//! residency, where they sit), so that [`crate::handle`] deals with handles, leases and
//! takes only. A new backend is a module here and a variant of [`Storage`].

pub(crate) mod encoded;
pub(crate) mod extent;
pub(crate) mod file;
pub(crate) mod swap;

use crate::error::{try_zeroed, Error, Result};
use crate::maps::ViewMap;
use crate::shared::Counters;

use encoded::EncodedStore;
use file::FileStore;
use swap::{Region, Residency};

/// The bytes of one pageout, in the backend it was fixed into.
pub(crate) enum Storage {
    /// Zero bytes, in any backend.
    Empty,
    Swap(Region),
    File(FileStore),
    /// File-backed, compressed and/or encrypted.
    Encoded(EncodedStore),
}

/// What a read needs besides the range: whether to verify checksums, the handle and
/// storage ids (for error messages and view maps) and the counters to update.
#[derive(Clone, Copy)]
pub(crate) struct ReadContext<'a> {
    pub(crate) verify: bool,
    /// The id of the handle reading (errors name it).
    pub(crate) handle: u64,
    /// The id of the storage (view maps are registered under it).
    pub(crate) owner: u64,
    pub(crate) counters: &'a Counters,
}

/// What a lease holds: part of the storage itself, a map of its extent, or a copy.
pub(crate) enum Span {
    /// `[offset, offset + len)` of a swap region (or nothing, for zero bytes).
    Region { offset: usize, len: usize },
    /// A private copy-on-write map of a file extent; the range starts at `at`.
    Map { map: ViewMap, at: usize, len: usize },
    /// Decoded bytes of a compressed or encrypted handle, or a copy where the pager
    /// holds as many view maps as it allows.
    Copy(Vec<u8>),
}

impl Span {
    /// The lent bytes; `storage` is the storage the span was lent from.
    pub(crate) fn bytes<'a>(&'a self, storage: &'a Storage) -> &'a [u8] {
        match (self, storage) {
            (Span::Region { offset, len }, Storage::Swap(region)) => &region.as_slice()[*offset..*offset + *len],
            (Span::Region { .. }, _) => &[],
            (Span::Map { map, at, len }, _) => &map[*at..*at + *len],
            (Span::Copy(bytes), _) => bytes,
        }
    }

    /// Where writes to the lent bytes may go: the private pages of a file map, which
    /// no write carries back to the scratch file. `None` for a swap region (the
    /// storage itself) and for copies (owned by the lease, borrowed immutably).
    pub(crate) fn writable_ptr(&self) -> Option<*mut u8> {
        match self {
            Span::Map { map, at, .. } => Some(map.as_mut_ptr().wrapping_add(*at)),
            Span::Region { .. } | Span::Copy(_) => None,
        }
    }
}

/// A fresh zeroed buffer of `len` bytes.
fn zeroed(len: u64) -> Result<Vec<u8>> {
    try_zeroed(usize::try_from(len).map_err(|_| Error::no_memory(len))?)
}

impl Storage {
    /// Fills `buf` with the bytes at `offset` (the range is checked by the caller).
    pub(crate) fn read_into(&self, offset: u64, buf: &mut [u8], cx: ReadContext<'_>) -> Result<()> {
        match self {
            Storage::Empty => Ok(()),
            Storage::Swap(region) => {
                let at = offset as usize;
                crate::copy::copy_bytes(buf, &region.as_slice()[at..at + buf.len()]);
                Ok(())
            }
            Storage::File(file) => file.read_into(offset, buf, cx.verify, cx.handle, cx.counters),
            Storage::Encoded(store) => store.read_into(offset, buf, cx.verify, cx.counters),
        }
    }

    /// Delivers each range's bytes, `deliver(i, bytes)` for `ranges[i]` (two or more
    /// ranges, checked by the caller).
    pub(crate) fn read_many(
        &self,
        ranges: &[(u64, u64)],
        cx: ReadContext<'_>,
        mut deliver: impl FnMut(usize, &[u8]),
    ) -> Result<()> {
        match self {
            Storage::Empty => {
                (0..ranges.len()).for_each(|i| deliver(i, &[]));
                Ok(())
            }
            Storage::Swap(region) => {
                for (i, &(o, l)) in ranges.iter().enumerate() {
                    deliver(i, &region.as_slice()[o as usize..(o + l) as usize]);
                }
                Ok(())
            }
            Storage::File(file) => file.read_many(ranges, cx.verify, cx.handle, cx.counters, deliver),
            Storage::Encoded(store) => {
                for (i, &(offset, len)) in ranges.iter().enumerate() {
                    let mut bytes = try_zeroed(len as usize)?;
                    store.read_into(offset, &mut bytes, cx.verify, cx.counters)?;
                    deliver(i, &bytes);
                }
                Ok(())
            }
        }
    }

    /// Reads the (checked) ranges into the targets, range `i` at `plan[i]` (target
    /// index, offset in it).
    pub(crate) fn read_many_into(
        &self,
        ranges: &[(u64, u64)],
        plan: &[(usize, usize)],
        targets: &mut [&mut [u8]],
        cx: ReadContext<'_>,
    ) -> Result<()> {
        // Each range straight into its target: copied from the extent's map, read with
        // one `pread` per large range, or decoding only the blocks it touches. No
        // staging buffer between the file and the target.
        let one_by_one = ranges.len() == 1
            || match self {
                Storage::File(file) => file.reads_mapped() || file::large_ranges(ranges),
                Storage::Encoded(_) => true,
                Storage::Empty | Storage::Swap(_) => false,
            };
        if one_by_one {
            return ranges.iter().zip(plan).filter(|(r, _)| r.1 > 0).try_for_each(|(&(offset, len), &(t, at))| {
                self.read_into(offset, &mut targets[t][at..at + len as usize], cx)
            });
        }
        self.read_many(ranges, cx, |i, bytes| {
            if !bytes.is_empty() {
                let (t, at) = plan[i];
                crate::copy::copy_bytes(&mut targets[t][at..at + bytes.len()], bytes);
            }
        })
    }

    /// What a lease of `[offset, offset + len)` (checked) holds: the swap region
    /// itself, a map of the file extent (verified when asked), or a decoded copy.
    pub(crate) fn lend(&self, offset: u64, len: u64, cx: ReadContext<'_>) -> Result<Span> {
        Ok(match self {
            _ if len == 0 => Span::Region { offset: 0, len: 0 },
            Storage::Empty => Span::Region { offset: 0, len: 0 },
            Storage::Swap(_) => Span::Region { offset: offset as usize, len: len as usize },
            Storage::File(file) => match file.map(offset, len, cx.verify, (cx.handle, cx.owner), cx.counters)? {
                Some((map, at)) => Span::Map { map, at, len: len as usize },
                // As many views are mapped as the pager allows: this one is a copy.
                None => {
                    let mut bytes = zeroed(len)?;
                    file.read_into(offset, &mut bytes, cx.verify, cx.handle, cx.counters)?;
                    Span::Copy(bytes)
                }
            },
            Storage::Encoded(store) => {
                let mut bytes = zeroed(len)?;
                store.read_into(offset, &mut bytes, cx.verify, cx.counters)?;
                Span::Copy(bytes)
            }
        })
    }

    /// The swap region, for a take that hands it over (leaving `Empty`); `None`, and
    /// the storage unchanged, for any other backend.
    pub(crate) fn take_region(&mut self) -> Option<Region> {
        match std::mem::replace(self, Storage::Empty) {
            Storage::Swap(region) => Some(region),
            other => {
                *self = other;
                None
            }
        }
    }

    /// Hints that `[offset, offset + len)` (within the storage) will be read soon.
    pub(crate) fn prefetch(&self, offset: u64, len: u64) {
        match self {
            Storage::Empty => {}
            Storage::Swap(region) => region.will_need(offset as usize, len as usize),
            Storage::File(file) => file.prefetch(offset, len),
            Storage::Encoded(store) => store.prefetch(offset, len),
        }
    }

    /// How many of a swap region's pages are resident and swapped out.
    pub(crate) fn residency(&self) -> Result<Residency> {
        match self {
            Storage::Swap(region) => region.residency(),
            Storage::Empty => Ok(Residency { pages: 0, resident: 0, swapped: 0 }),
            Storage::File(_) | Storage::Encoded(_) => {
                Err(Error::Unsupported("residency is measured for swap-backed handles".into()))
            }
        }
    }

    /// Bytes kept in process memory (a swap region's; 0 for file-backed storage).
    pub(crate) fn resident_bytes(&self) -> u64 {
        match self {
            Storage::Swap(region) => region.mapped_len() as u64,
            _ => 0,
        }
    }

    /// The scratch arena of file-backed storage.
    pub(crate) fn arena_id(&self) -> Option<u64> {
        match self {
            Storage::File(file) => Some(file.arena().id),
            Storage::Encoded(store) => Some(store.arena().id),
            _ => None,
        }
    }

    pub(crate) fn is_encoded(&self) -> bool {
        matches!(self, Storage::Encoded(_))
    }

    /// Bytes occupied in the scratch extent; `None` for storage without one.
    pub(crate) fn stored_len(&self) -> Option<u64> {
        match self {
            Storage::File(file) => Some(file.len()),
            Storage::Encoded(store) => Some(store.stored_len()),
            _ => None,
        }
    }

    /// Where the extent starts in its arena file.
    pub(crate) fn scratch_offset(&self) -> Option<u64> {
        match self {
            Storage::File(file) => Some(file.extent_offset()),
            Storage::Encoded(store) => Some(store.extent_offset()),
            _ => None,
        }
    }

    /// The nonce counter values of an encrypted store's blocks.
    pub(crate) fn nonces(&self) -> Option<std::ops::Range<u64>> {
        match self {
            Storage::Encoded(store) => store.nonces(),
            _ => None,
        }
    }
}
