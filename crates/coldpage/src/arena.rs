//! The scratch arena: one unnamed file per pager and scratch directory, carved into
//! page-aligned extents.
//!
//! Why one file: nothing is left on disk after `kill -9` (the kernel frees the unlinked
//! inode), no `open()` per read, no fd per handle, and no other process can truncate a
//! mapped extent by path.
//!
//! While other extents are live, freed ones first go to a small *recycle bin* (at most
//! [`RECYCLE_MAX`] bytes; it counts against the quota): the next pageout of a fitting size
//! overwrites blocks that are already on disk and in the page cache instead of
//! allocating new ones and punching the old. The rest, the bin once the arena has no
//! live extent, and extents whose write failed are returned to the filesystem with
//! `fallocate(PUNCH_HOLE)` *before* they can be handed out again. Only the allocator
//! hands out offsets, and an extent is freed only once no lease maps it, so a reused
//! extent never shows its bytes to anyone but its new owner.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::{os, reclaim};

static NEXT_ARENA: AtomicU64 = AtomicU64::new(1);

/// A per-process scratch file and its extent allocator.
pub(crate) struct Arena {
    pub(crate) id: u64,
    pub(crate) file: File,
    /// The pager's own 0700 subdirectory holding the arena (after `file`: a fallback
    /// directory is removed when it drops, once the arena file is closed).
    pub(crate) dir: os::PrivateDir,
    alloc: Mutex<Allocator>,
    punch_works: AtomicBool,
    /// Bytes allocated to live extents, shared by every arena of a pager (the quota).
    quota: Arc<Quota>,
    /// Freed extents kept on disk for reuse.
    recycle: Mutex<Recycle>,
    /// Bytes of this arena's live extents.
    live: AtomicU64,
    /// Set once new pageouts go elsewhere (the scratch dir changed): nothing will
    /// reuse its freed extents, so they are punched, never recycled.
    retired: AtomicBool,
}

/// At most this many freed bytes are kept on disk for reuse, per arena.
pub(crate) const RECYCLE_MAX: u64 = 64 << 20;

/// Freed, unpunched extents (offset, size) and their total.
#[derive(Default)]
struct Recycle {
    extents: Vec<(u64, u64)>,
    bytes: u64,
}

/// Scratch bytes allocated against `max` (`u64::MAX` for no quota). `used` counts
/// live extents and recycled ones (they occupy the disk too); `recycled` the latter.
#[derive(Default)]
pub(crate) struct Quota {
    pub(crate) used: AtomicU64,
    pub(crate) max: AtomicU64,
    pub(crate) recycled: AtomicU64,
}

impl Quota {
    fn reserve(&self, bytes: u64) -> Result<()> {
        let max = self.max.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= max)
            })
            .map(|_| ())
            .map_err(|used| {
                Error::NoSpace(format!("scratch quota of {max} bytes reached: {used} in use, {bytes} more requested"))
            })
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// First-fit allocator over the arena's byte range; all offsets and lengths are
/// multiples of the page size.
#[derive(Default)]
struct Allocator {
    /// End of the highest extent ever handed out.
    end: u64,
    /// Free extents below `end`: offset -> length, never adjacent (coalesced).
    free: BTreeMap<u64, u64>,
}

impl Allocator {
    fn alloc(&mut self, len: u64) -> u64 {
        let fit = self.free.iter().find(|(_, &l)| l >= len).map(|(&o, &l)| (o, l));
        if let Some((off, flen)) = fit {
            self.free.remove(&off);
            if flen > len {
                self.free.insert(off + len, flen - len);
            }
            return off;
        }
        // Grow: a free extent touching the end is extended rather than skipped.
        let off = match self.free.last_key_value() {
            Some((&o, &l)) if o + l == self.end => {
                self.free.remove(&o);
                o
            }
            _ => self.end,
        };
        self.end = off + len;
        off
    }

    fn free(&mut self, mut off: u64, mut len: u64) {
        if let Some((&prev, &plen)) = self.free.range(..off).next_back() {
            if prev + plen == off {
                self.free.remove(&prev);
                off = prev;
                len += plen;
            }
        }
        if let Some(&next_len) = self.free.get(&(off + len)) {
            self.free.remove(&(off + len));
            len += next_len;
        }
        if off + len == self.end {
            self.end = off;
        } else {
            self.free.insert(off, len);
        }
    }
}

impl Arena {
    /// Opens a fresh arena under `scratch_dir` (already validated by `Config`).
    pub(crate) fn open(scratch_dir: &Path, quota: Arc<Quota>) -> Result<Arena> {
        let mut private = os::open_private_dir(scratch_dir, &crate::config::scratch_dir_rules)?;
        let id = NEXT_ARENA.fetch_add(1, Ordering::Relaxed);
        fail_point!("arena-open", |_| Err(Error::io_at(
            "openat",
            Some(private.path.clone()),
            std::io::Error::from_raw_os_error(os::errno::EMFILE)
        )));
        let file =
            os::open_arena_file(&private, id).map_err(|e| Error::io_at("openat", Some(private.path.clone()), e))?;
        // A fallback directory (ours was squatted) is not left behind at exit.
        private.remove_fallback();
        Ok(Arena {
            id,
            file,
            dir: private,
            alloc: Mutex::default(),
            punch_works: AtomicBool::new(true),
            quota,
            recycle: Mutex::default(),
            live: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        })
    }

    /// Allocates a page-aligned extent of at least `len` bytes (`len > 0`).
    pub(crate) fn allocate(self: &Arc<Arena>, len: u64) -> Result<Extent> {
        fail_point!("arena-allocate", |_| Err(Error::io(
            "fallocate",
            std::io::Error::from_raw_os_error(os::errno::EIO)
        )));
        let page = os::page_size() as u64;
        let size = len
            .checked_next_multiple_of(page)
            .ok_or_else(|| Error::NoSpace(format!("{len} bytes cannot be allocated")))?;
        let offset = match self.reuse(size) {
            Some(offset) => offset,
            None => {
                if self.quota.reserve(size).is_err() {
                    // Recycled extents count against the quota: give them back first.
                    self.flush_recycled();
                    self.quota.reserve(size)?;
                }
                self.lock().alloc(size)
            }
        };
        self.live.fetch_add(size, Ordering::AcqRel);
        Ok(Extent { arena: Arc::clone(self), offset, size, recycle: true })
    }

    /// The smallest recycled extent of at least `size` bytes, split to `size` (its rest
    /// stays in the bin). Its quota is already reserved.
    fn reuse(&self, size: u64) -> Option<u64> {
        let mut bin = self.lock_recycle();
        let (i, &(offset, esize)) =
            bin.extents.iter().enumerate().filter(|(_, e)| e.1 >= size).min_by_key(|(_, e)| e.1)?;
        if esize == size {
            bin.extents.swap_remove(i);
        } else {
            bin.extents[i] = (offset + size, esize - size);
        }
        bin.bytes -= size;
        self.quota.recycled.fetch_sub(size, Ordering::AcqRel);
        Some(offset)
    }

    fn lock_recycle(&self) -> std::sync::MutexGuard<'_, Recycle> {
        // Every edit of the bin completes before the guard drops; poison is ignored.
        self.recycle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops recycling: new pageouts go to another arena (the scratch dir changed), so
    /// its recycle bin would only hold quota and disk that no pageout can reuse. The
    /// bin is emptied now and later releases are punched at once.
    pub(crate) fn retire(&self) {
        // Set under the bin's lock: a release that saw `retired` false has pushed
        // already, and the flush below takes it.
        {
            let _bin = self.lock_recycle();
            self.retired.store(true, Ordering::Release);
        }
        self.flush_recycled();
    }

    /// Punches every recycled extent and returns it to the allocator and the quota, and
    /// waits for the frees still running in the background ([`reclaim`]). Returns the
    /// bytes that this gave back (0 when a retry would find no more room than before).
    pub(crate) fn flush_recycled(&self) -> u64 {
        let extents = {
            let mut bin = self.lock_recycle();
            bin.bytes = 0;
            std::mem::take(&mut bin.extents)
        };
        let mut flushed = 0;
        for (offset, size) in extents {
            self.quota.recycled.fetch_sub(size, Ordering::AcqRel);
            self.free_now(offset, size);
            flushed += size;
        }
        flushed + reclaim::settle()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Allocator> {
        // The allocator's state stays consistent across a panic in another thread
        // (every method finishes its map edits before returning), so poison is ignored.
        self.alloc.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes of the arena file actually on disk (`st_blocks * 512`).
    pub(crate) fn bytes_on_disk(&self) -> u64 {
        os::bytes_on_disk(&self.file)
    }

    /// Whether hole punching has worked on this arena so far.
    pub(crate) fn punch_works(&self) -> bool {
        self.punch_works.load(Ordering::Relaxed)
    }

    fn punch(&self, offset: u64, size: u64) -> std::io::Result<bool> {
        fail_point!("arena-punch", |_| Err(std::io::Error::from_raw_os_error(os::errno::EIO)));
        os::punch_hole(&self.file, offset, size)
    }

    /// Takes back a live extent: into the recycle bin when `recycle`, other extents are
    /// still live and the bin has room, else punched and freed. The release that
    /// leaves nothing live also empties the bin.
    ///
    /// The live count is decremented under the bin's lock, so "push into the bin
    /// because something is live" and "the last release empties the bin" cannot
    /// interleave: an extent never stays on disk with no live handle (while the
    /// books, which do not count the bin, say nothing is allocated).
    fn release(self: &Arc<Self>, offset: u64, size: u64, recycle: bool) {
        let mut bin = self.lock_recycle();
        let live = self.live.fetch_sub(size, Ordering::AcqRel) - size;
        // Where another release used to slip in (tests/failpoints.rs).
        fail_point!("arena-release-gap");
        if recycle && live > 0 && bin.bytes + size <= RECYCLE_MAX && !self.retired.load(Ordering::Acquire) {
            bin.extents.push((offset, size));
            bin.bytes += size;
            self.quota.recycled.fetch_add(size, Ordering::AcqRel);
            return;
        }
        // Nothing live: nothing to reuse the bin for soon, so the disk gets it back.
        let flushed = if live == 0 {
            bin.bytes = 0;
            std::mem::take(&mut bin.extents)
        } else {
            Vec::new()
        };
        drop(bin);
        let total = size + flushed.iter().map(|e| e.1).sum::<u64>();
        let arena = Arc::clone(self);
        reclaim::defer(total, move || {
            arena.free_now(offset, size);
            for (offset, size) in flushed {
                arena.quota.recycled.fetch_sub(size, Ordering::AcqRel);
                arena.free_now(offset, size);
            }
        });
    }

    /// Punches `[offset, offset + size)` and returns it to the allocator and the
    /// quota, in that order: nothing can be handed the range before its old bytes are gone.
    fn free_now(&self, offset: u64, size: u64) {
        match self.punch(offset, size) {
            Ok(true) => {}
            Ok(false) => self.punch_works.store(false, Ordering::Relaxed),
            // The blocks stay allocated on disk until reuse overwrites them; the extent
            // itself is still safe to hand out again, so only the space is lost.
            Err(_) => {}
        }
        self.lock().free(offset, size);
        self.quota.release(size);
    }
}

/// A page-aligned byte range of an arena owned by one handle; on drop recycled or
/// freed (hole punched, returned to the allocator, released from the quota).
pub(crate) struct Extent {
    pub(crate) arena: Arc<Arena>,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    /// False once a write to it failed: such an extent is punched, not recycled, so
    /// that a full disk gets the blocks back at once.
    pub(crate) recycle: bool,
}

impl Extent {
    /// Gives back the pages past the first `len` bytes (`0 < len <= size`): they are
    /// punched and freed at once (they may hold a recycled extent's old bytes).
    pub(crate) fn shrink(&mut self, len: u64) {
        let page = os::page_size() as u64;
        let keep = len.max(1).next_multiple_of(page);
        if keep < self.size {
            let tail = self.size - keep;
            self.size = keep;
            self.arena.release(self.offset + keep, tail, false);
        }
    }
}

impl Drop for Extent {
    fn drop(&mut self) {
        self.arena.release(self.offset, self.size, self.recycle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_reuses_and_coalesces() {
        let mut a = Allocator::default();
        let x = a.alloc(4096);
        let y = a.alloc(8192);
        let z = a.alloc(4096);
        assert_eq!((x, y, z, a.end), (0, 4096, 12288, 16384));
        a.free(y, 8192);
        assert_eq!(a.alloc(4096), 4096, "first fit reuses the hole");
        a.free(4096, 4096);
        a.free(x, 4096);
        assert_eq!(a.free.len(), 1, "neighbours coalesce: {:?}", a.free);
        a.free(z, 4096);
        assert_eq!((a.end, a.free.len()), (0, 0), "freeing the tail shrinks the arena");
    }

    #[test]
    fn growing_extends_a_free_tail() {
        let mut a = Allocator::default();
        let x = a.alloc(4096);
        let y = a.alloc(4096);
        let _z = a.alloc(4096);
        a.free(y, 4096);
        assert_eq!(a.alloc(8192), 12288);
        a.free(x, 4096);
        assert_eq!(a.free.get(&0), Some(&8192));
    }

    #[test]
    fn quota_refuses_and_recovers() {
        let q = Quota { max: AtomicU64::new(8192), ..Quota::default() };
        q.reserve(4096).unwrap();
        q.reserve(4096).unwrap();
        assert_eq!(q.reserve(1).unwrap_err().code(), "ERR_COLDPAGE_NO_SPACE");
        q.release(4096);
        q.reserve(4096).unwrap();
    }
}
