//! The swap backend: memory the pager owns for one swap-backed handle.
//!
//! Regions of [`SMALL_REGION`] bytes or more are an anonymous mapping of whole pages
//! ([`os::AnonMap`]) that the OS is asked to page out first (`MADV_COLD` on Linux, a
//! working-set trim on Windows). Smaller ones live on the heap: a mapping would cost
//! two system calls and a page fault for bytes that page-out advice cannot act on
//! anyway (it works on whole pages), and heap pages are anonymous memory the OS can
//! page out all the same.

use std::io;

use crate::error::{Error, Result};
use crate::{os, reclaim};

/// Below this size a region lives on the heap instead of in its own mapping.
pub(crate) const SMALL_REGION: usize = 64 << 10;

pub(crate) enum Region {
    /// A map of its own, counted among the maps the pager holds.
    Map(Mapping),
    Heap(Box<[u8]>),
}

/// A region's own mapping; a large one is unmapped on the reclaiming thread
/// ([`reclaim`]), so that dropping it does not hold the dropping thread.
pub(crate) struct Mapping(Option<(os::AnonMap, crate::maps::Held)>);

impl Mapping {
    fn map(&self) -> &os::AnonMap {
        &self.0.as_ref().expect("a mapping is only empty while it drops").0
    }

    fn map_mut(&mut self) -> &mut os::AnonMap {
        &mut self.0.as_mut().expect("a mapping is only empty while it drops").0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            let bytes = inner.0.mapped_len() as u64;
            reclaim::defer(bytes, move || drop(inner));
        }
    }
}

impl Region {
    /// `len` zeroed bytes: on the heap below [`SMALL_REGION`], else a mapping.
    pub(crate) fn new(len: usize) -> io::Result<Region> {
        if len < SMALL_REGION {
            let bytes = crate::error::try_zeroed(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
            return Ok(Region::Heap(bytes.into_boxed_slice()));
        }
        os::AnonMap::new(len).map(|map| Region::Map(Mapping(Some((map, crate::maps::Held::new())))))
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Region::Map(m) => m.map().as_slice(),
            Region::Heap(bytes) => bytes,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            Region::Map(m) => m.map_mut().as_mut_slice(),
            Region::Heap(bytes) => bytes,
        }
    }

    /// Bytes of memory held (whole pages for a mapping).
    pub(crate) fn mapped_len(&self) -> usize {
        match self {
            Region::Map(m) => m.map().mapped_len(),
            Region::Heap(bytes) => bytes.len(),
        }
    }

    /// Asks the OS to page the region out first; a no-op for a heap region.
    pub(crate) fn page_out(&self) -> io::Result<()> {
        match self {
            Region::Map(m) => m.map().page_out(),
            Region::Heap(_) => Ok(()),
        }
    }

    /// Hints that `[offset, offset + len)` will be read soon.
    pub(crate) fn will_need(&self, offset: usize, len: usize) {
        if let Region::Map(m) = self {
            m.map().will_need(offset, len);
        }
    }

    /// Pages spanned, resident and swapped out, as the OS reports them.
    pub(crate) fn residency(&self) -> Result<Residency> {
        match os::residency(self.as_slice()) {
            Ok(r) => Ok(Residency { pages: r.pages, resident: r.resident, swapped: r.swapped }),
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Err(Error::Unsupported(e.to_string())),
            Err(e) => Err(Error::io("residency", e)),
        }
    }
}

/// Swap residency of a handle's pages, as the OS reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Residency {
    /// Pages the handle's region spans.
    pub pages: u64,
    /// Pages in RAM (Linux: including the swap cache; Windows: in the working set).
    pub resident: u64,
    /// Pages swapped out.
    pub swapped: u64,
}

/// Copies `chunks` into a fresh anonymous region and asks the OS to page it out first.
pub(crate) fn swap_pageout(chunks: &[&[u8]], total: u64) -> Result<Region> {
    let region = fill_region(chunks, total)?;
    // A hint: a kernel without MADV_COLD keeps the pages on the normal LRU, which only
    // makes them slower to reclaim, so an error is not worth failing the pageout.
    let _ = region.page_out();
    Ok(region)
}

/// Copies `chunks` (`total` bytes) into a fresh region: a populated mapping (the
/// pages are faulted in one batch by the kernel), or the heap for small ones.
pub(crate) fn fill_region(chunks: &[&[u8]], total: u64) -> Result<Region> {
    let len = usize::try_from(total).map_err(|_| Error::OutOfRange(format!("{total} bytes do not fit in memory")))?;
    fail_point!("swap-alloc", |_| Err(Error::io("mmap", std::io::Error::from_raw_os_error(crate::os::errno::ENOMEM))));
    let mut region = Region::new(len).map_err(|e| match e.kind() {
        std::io::ErrorKind::OutOfMemory => Error::NoMemory(format!("{len} bytes of memory for a swap region: {e}")),
        _ => Error::io("mmap", e),
    })?;
    let mut at = 0;
    let dst = region.as_mut_slice();
    for chunk in chunks {
        dst[at..at + chunk.len()].copy_from_slice(chunk);
        at += chunk.len();
    }
    Ok(region)
}
