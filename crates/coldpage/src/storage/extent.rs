//! What the file and encoded stores share: an extent of the scratch arena, written once
//! and then read.
//!
//! - [`write_extent`] writes a fresh extent, and when the disk is full gives the
//!   recycled extents back and tries once more; [`write_chunks`] is the one write
//!   system call under it (with the failpoints of a failed or full disk).
//! - [`ExtentReader`] reads the extent's bytes back. Where the platform has the OS
//!   layer's guarded copy (Unix), reads copy from the arena's shared read-only windows
//!   ([`crate::maps`]), taken on the first read: no system call per read, and a copy that
//!   is not slowed by the caller's buffer alignment (`os/copy.rs`). The copy runs under
//!   the OS layer's `SIGBUS` guard (`os::mapped`), so a media error under the map is an
//!   `Io` error as with `pread`, and every read of the extent fails from then on.
//!   Elsewhere reads are `pread`.
//!
//! What the bytes mean (checksummed blocks, or compressed/encrypted ones) is the
//! stores' business: [`crate::storage::file`] and [`crate::storage::encoded`].

use std::io::IoSliceMut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::arena::{Arena, Extent};
use crate::error::{Error, Result};
use crate::maps::{self, Window, WINDOW};
use crate::os;

/// Writes `total` bytes to a fresh extent of `arena` with `write`. A full disk may be
/// only the recycled extents' doing: on [`Error::NoSpace`] they are given back and
/// the write is tried once more, on a fresh extent (an encoded write takes fresh
/// nonces then: a nonce is never used twice). A part-written extent is punched at
/// once (not recycled) when it drops.
pub(crate) fn write_extent<T>(
    arena: &Arc<Arena>,
    total: u64,
    mut write: impl FnMut(&Extent) -> Result<T>,
) -> Result<(Extent, T)> {
    let mut retried = false;
    loop {
        let mut extent = arena.allocate(total)?;
        match write(&extent) {
            Ok(done) => return Ok((extent, done)),
            Err(err) => {
                extent.recycle = false;
                drop(extent);
                if retried || !matches!(err, Error::NoSpace(_)) || arena.flush_recycled() == 0 {
                    return Err(err);
                }
                retried = true;
            }
        }
    }
}

/// Writes the concatenation of `chunks` at `offset` of the arena file.
pub(crate) fn write_chunks(arena: &Arena, offset: u64, chunks: &[&[u8]]) -> std::io::Result<()> {
    fail_point!("file-write", |_| Err(std::io::Error::from_raw_os_error(os::errno::EIO)));
    fail_point!("file-write-nospace", |_| Err(std::io::Error::from_raw_os_error(os::errno::ENOSPC)));
    os::write_all_at(&arena.file, offset, chunks)
}

/// Reads of the first `len` bytes of an extent: copies from the arena's shared read
/// windows under the SIGBUS guard where the platform has one, else `pread`.
pub(crate) struct ExtentReader {
    /// The windows the extent lies in, in order, taken on the first read (`None`
    /// where the platform has no guarded copy or a map failed).
    windows: OnceLock<Option<Box<[Arc<Window>]>>>,
    /// Set after a media error: every read fails from then on (the bytes of a failed
    /// page are gone; a `pread` could return zeros or stale bytes).
    failed: AtomicBool,
    pub(crate) extent: Extent,
    pub(crate) len: u64,
}

/// Where a read's bytes come from.
#[derive(Clone, Copy)]
pub(crate) enum ReadPath<'a> {
    Pread,
    /// The extent's windows; the first maps from `first · WINDOW` of the file.
    Windows(&'a [Arc<Window>], u64),
}

impl ExtentReader {
    pub(crate) fn new(extent: Extent, len: u64) -> ExtentReader {
        ExtentReader { windows: OnceLock::new(), failed: AtomicBool::new(false), extent, len }
    }

    /// The extent's windows, or `pread` where there are none.
    pub(crate) fn read_path(&self) -> ReadPath<'_> {
        let windows = self.windows.get_or_init(|| {
            if !os::mapped::available() || self.len == 0 {
                return None;
            }
            let (first, last) = (self.extent.offset / WINDOW, (self.extent.offset + self.len - 1) / WINDOW);
            (first..=last).map(|k| maps::window(&self.extent.arena, k)).collect()
        });
        match windows {
            Some(w) => ReadPath::Windows(w, self.extent.offset / WINDOW),
            None => ReadPath::Pread,
        }
    }

    /// Fills `bufs` with the bytes at `at` (from the extent's start), by `path`.
    pub(crate) fn fetch(&self, path: ReadPath<'_>, at: u64, bufs: &mut [IoSliceMut<'_>]) -> Result<()> {
        self.check_failed()?;
        fail_point!("file-read", |_| Err(Error::io("preadv", std::io::Error::from_raw_os_error(os::errno::EIO))));
        // Bit rot on the medium, on every platform: the read succeeds with one byte flipped.
        fail_point!("file-read-flip", |_| {
            let read = self.fetch_from(path, at, bufs);
            if let Some(buf) = bufs.iter_mut().find(|b| !b.is_empty()) {
                buf[0] ^= 0x5A;
            }
            read
        });
        self.fetch_from(path, at, bufs)
    }

    /// Fails with the media error if an earlier read hit one, so that nothing is read
    /// from a page whose bytes are gone.
    pub(crate) fn check_failed(&self) -> Result<()> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(self.media_error());
        }
        Ok(())
    }

    /// Hints the kernel to read `[at, at + len)` of the extent ahead.
    pub(crate) fn prefetch(&self, at: u64, len: u64) {
        os::read_ahead(&self.extent.arena.file, self.extent.offset + at, len);
    }

    /// Marks the extent failed (a media error under a map of it) and returns the error.
    pub(crate) fn fail(&self) -> Error {
        self.failed.store(true, Ordering::Relaxed);
        self.media_error()
    }

    fn media_error(&self) -> Error {
        Error::io_at(
            "read (mapped)",
            Some(self.extent.arena.dir.path.clone()),
            std::io::Error::from_raw_os_error(os::errno::EIO),
        )
    }

    fn fetch_from(&self, path: ReadPath<'_>, at: u64, bufs: &mut [IoSliceMut<'_>]) -> Result<()> {
        let ReadPath::Windows(windows, first) = path else {
            return os::read_exact_at(&self.extent.arena.file, self.extent.offset + at, bufs)
                .map_err(|e| Error::io_at("preadv", Some(self.extent.arena.dir.path.clone()), e));
        };
        let mut from = self.extent.offset + at;
        for buf in bufs.iter_mut() {
            let mut done = 0;
            while done < buf.len() {
                // The window of `from` maps at least WINDOW bytes past it.
                let (src, room) = windows[(from / WINDOW - first) as usize].at(from);
                let n = room.min(buf.len() - done);
                // SAFETY: `src..src + n` lies inside the window, which `windows` keeps
                // mapped, and inside this extent (the caller checked the range); the
                // destination is a distinct, writable buffer of at least `n` bytes from
                // `done`; `available()` returned true when the windows were made.
                let copied = unsafe { os::mapped::copy(src, buf[done..].as_mut_ptr(), n) };
                if copied.is_err() {
                    buf.fill(0);
                    return Err(self.fail());
                }
                (done, from) = (done + n, from + n as u64);
            }
        }
        Ok(())
    }
}
