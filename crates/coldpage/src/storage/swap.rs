//! Memory the pager owns for one swap-backed handle.
//!
//! Regions of [`SMALL_REGION`] bytes or more are an anonymous mapping of whole pages
//! ([`os::AnonMap`]) that the OS is asked to page out first (`MADV_COLD` on Linux, a
//! working-set trim on Windows). Smaller ones live on the heap: a mapping would cost
//! two system calls and a page fault for bytes that page-out advice cannot act on
//! anyway (it works on whole pages), and heap pages are anonymous memory the OS can
//! page out all the same.

use std::io;

use crate::os;

/// Below this size a region lives on the heap instead of in its own mapping.
pub(crate) const SMALL_REGION: usize = 64 << 10;

pub(crate) enum Region {
    /// A map of its own, counted among the maps the pager holds.
    Map(os::AnonMap, crate::maps::Held),
    Heap(Box<[u8]>),
}

impl Region {
    /// `len` zeroed bytes: on the heap below [`SMALL_REGION`], else a mapping.
    pub(crate) fn new(len: usize) -> io::Result<Region> {
        if len < SMALL_REGION {
            let bytes = crate::error::try_zeroed(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
            return Ok(Region::Heap(bytes.into_boxed_slice()));
        }
        os::AnonMap::new(len).map(|map| Region::Map(map, crate::maps::Held::new()))
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Region::Map(map, _) => map.as_slice(),
            Region::Heap(bytes) => bytes,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            Region::Map(map, _) => map.as_mut_slice(),
            Region::Heap(bytes) => bytes,
        }
    }

    /// Bytes of memory held (whole pages for a mapping).
    pub(crate) fn mapped_len(&self) -> usize {
        match self {
            Region::Map(map, _) => map.mapped_len(),
            Region::Heap(bytes) => bytes.len(),
        }
    }

    /// Asks the OS to page the region out first; a no-op for a heap region.
    pub(crate) fn page_out(&self) -> io::Result<()> {
        match self {
            Region::Map(map, _) => map.page_out(),
            Region::Heap(_) => Ok(()),
        }
    }

    /// Hints that `[offset, offset + len)` will be read soon.
    pub(crate) fn will_need(&self, offset: usize, len: usize) {
        if let Region::Map(map, _) = self {
            map.will_need(offset, len);
        }
    }

    /// Pages spanned, resident and swapped out, as the OS reports them.
    pub(crate) fn residency(&self) -> io::Result<(u64, u64, u64)> {
        os::residency(self.as_slice())
    }
}
