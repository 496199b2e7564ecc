//! Pageouts written a slice at a time, for callers whose memory may go away between
//! two slices (a JS `ArrayBuffer` can be detached or transferred at any turn of the
//! event loop).
//!
//! The caller's thread copies each slice of its input into a recycled staging buffer
//! ([`Slice::copy`]: at most [`SLICE_BYTES`], into memory that is already faulted in,
//! so the copy costs what `memcpy` costs and nothing the kernel adds); any other
//! thread then writes the slice to storage ([`PageoutWriter::write`]): hashing,
//! `pwrite`, or the copy into a swap region. [`PageoutWriter::finish`] turns the
//! written bytes into a [`Handle`]; dropping an unfinished writer gives its storage
//! back (a file extent is punched, not recycled), so an aborted pageout leaves
//! nothing behind.
//!
//! The staging pool holds at most [`POOL_SLICES`] buffers, and none once no writer
//! is open: memory that pageouts exist to give back is not kept for them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::arena::Extent;
use crate::error::{Error, Result};
use crate::handle::{next_id, Handle, Paged};
use crate::integrity::{checksum_chunks_into, BLOCK};
use crate::pager::{Pager, Staged};
use crate::selector::Backend;
use crate::storage::file::FileStore;
use crate::storage::swap::Region;
use crate::storage::Storage;

/// The most bytes one [`Slice`] holds: a multiple of the checksum block, so that
/// every slice but the last covers whole blocks.
pub const SLICE_BYTES: usize = 4 << 20;

/// Staging buffers kept for reuse while a writer is open.
const POOL_SLICES: usize = 4;

const _: () = assert!((SLICE_BYTES as u64).is_multiple_of(BLOCK));

/// Recycled staging buffers, each with a capacity of [`SLICE_BYTES`].
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Writers open now: the pool is emptied when the last one goes.
static OPEN_WRITERS: AtomicUsize = AtomicUsize::new(0);

fn pool() -> MutexGuard<'static, Vec<Vec<u8>>> {
    // Every edit of the pool completes before the guard drops; poison is ignored.
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// One slice of a pageout's input, copied out of the caller's memory into a staging
/// buffer that goes back to the pool when the slice is dropped.
pub struct Slice {
    buf: Vec<u8>,
}

impl Slice {
    /// Copies the concatenation of `chunks` (at most [`SLICE_BYTES`] in all) into a
    /// staging buffer. Call it where the caller's memory is known to be there.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] past [`SLICE_BYTES`]; [`Error::NoMemory`] when a staging
    /// buffer cannot be allocated.
    pub fn copy(chunks: &[&[u8]]) -> Result<Slice> {
        let len = chunks.iter().map(|c| c.len()).sum::<usize>();
        if len > SLICE_BYTES {
            return Err(Error::OutOfRange(format!("a pageout slice holds at most {SLICE_BYTES} bytes, not {len}")));
        }
        let mut buf = pool().pop().unwrap_or_default();
        if buf.capacity() < SLICE_BYTES {
            buf = Vec::new();
            buf.try_reserve_exact(SLICE_BYTES).map_err(|_| Error::no_memory(SLICE_BYTES as u64))?;
        }
        buf.clear();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
        }
        Ok(Slice { buf })
    }

    /// The slice's length in bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the slice holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

impl Drop for Slice {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() == SLICE_BYTES && OPEN_WRITERS.load(Ordering::Acquire) > 0 {
            let mut pool = pool();
            if pool.len() < POOL_SLICES {
                pool.push(buf);
            }
        }
    }
}

/// Where a writer's bytes go.
enum Target {
    /// A zero-length pageout.
    Empty,
    /// A swap region, or the staging region of a compressed or encrypted file pageout
    /// (encoded at `finish`, which needs every block).
    Region { region: Mutex<Region>, encoded: bool },
    /// A plain file pageout: the extent, and each block's checksum as it is written.
    File { extent: Extent, sums: Vec<AtomicU64> },
}

/// A pageout in progress: [`Pager::writer`] opens it, [`PageoutWriter::write`] fills
/// it (from any thread, slices in any order), [`PageoutWriter::finish`] makes the
/// handle.
pub struct PageoutWriter {
    pager: Pager,
    backend: Backend,
    len: u64,
    target: Target,
    written: AtomicU64,
    finished: bool,
}

impl std::fmt::Debug for PageoutWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageoutWriter")
            .field("backend", &self.backend)
            .field("len", &self.len)
            .field("written", &self.written.load(Ordering::Relaxed))
            .finish()
    }
}

impl Pager {
    /// Opens a pageout of `len` bytes to `backend`, to be written a [`Slice`] at a
    /// time. It allocates the storage (a file extent, or a populated region), so call
    /// it off a thread that must stay responsive.
    ///
    /// # Errors
    /// As [`Pager::pageout`].
    pub fn writer(&self, backend: Backend, len: u64) -> Result<PageoutWriter> {
        self.count_failure(self.open_writer(backend, len))
    }

    fn open_writer(&self, backend: Backend, len: u64) -> Result<PageoutWriter> {
        if backend == Backend::Swap {
            crate::os::page_out_primitive().map_err(Error::Unsupported)?;
        }
        let region = |encoded| -> Result<Target> {
            let n = usize::try_from(len).map_err(|_| Error::no_memory(len))?;
            let region = Region::new(n).map_err(|e| match e.kind() {
                std::io::ErrorKind::OutOfMemory => Error::NoMemory(format!("{n} bytes of memory for a pageout: {e}")),
                _ => Error::io("mmap", e),
            })?;
            Ok(Target::Region { region: Mutex::new(region), encoded })
        };
        let target = match backend {
            _ if len == 0 => Target::Empty,
            Backend::Swap => region(false)?,
            Backend::File if self.encoding()?.is_some() => region(true)?,
            Backend::File => {
                let arena = self.arena()?;
                let blocks = usize::try_from(len.div_ceil(BLOCK)).map_err(|_| Error::no_memory(len))?;
                let mut sums = Vec::new();
                sums.try_reserve_exact(blocks).map_err(|_| Error::no_memory(len / 512))?;
                sums.resize_with(blocks, || AtomicU64::new(0));
                Target::File { extent: arena.allocate(len)?, sums }
            }
        };
        OPEN_WRITERS.fetch_add(1, Ordering::AcqRel);
        Ok(PageoutWriter { pager: self.clone(), backend, len, target, written: AtomicU64::new(0), finished: false })
    }
}

impl PageoutWriter {
    /// The pageout's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the pageout is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `slice` at `offset`: `offset` is a multiple of [`SLICE_BYTES`] and the
    /// slice is [`SLICE_BYTES`] long, or it ends the pageout. The staging buffer goes
    /// back to the pool.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for a slice out of place; [`Error::NoSpace`] when the disk
    /// is full (after giving back recycled extents once), [`Error::Io`] when the write
    /// fails. The writer is then only good for dropping.
    pub fn write(&self, offset: u64, slice: Slice) -> Result<()> {
        let n = slice.len() as u64;
        let end = offset.checked_add(n).filter(|&end| end <= self.len);
        let placed = offset.is_multiple_of(SLICE_BYTES as u64) && (n == SLICE_BYTES as u64 || end == Some(self.len));
        if end.is_none() || !placed {
            return Err(Error::OutOfRange(format!(
                "a slice of {n} bytes at {offset} does not fit a pageout of {} bytes",
                self.len
            )));
        }
        let result = match &self.target {
            Target::Empty => Ok(()),
            Target::Region { region, .. } => {
                let mut region = region.lock().unwrap_or_else(|p| p.into_inner());
                let at = offset as usize;
                region.as_mut_slice()[at..at + slice.len()].copy_from_slice(&slice.buf);
                Ok(())
            }
            Target::File { extent, sums } => write_file_slice(extent, sums, offset, &slice.buf),
        };
        self.pager.count_failure(result)?;
        self.written.fetch_add(n, Ordering::AcqRel);
        Ok(())
    }

    /// The handle over every byte written.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when not every byte was written; for compressed or
    /// encrypted file pageouts, as [`Pager::pageout`].
    pub fn finish(mut self) -> Result<Handle> {
        let written = self.written.load(Ordering::Acquire);
        if written != self.len {
            return Err(Error::OutOfRange(format!("a pageout of {} bytes was finished after {written}", self.len)));
        }
        self.finished = true;
        let len = self.len;
        let pager = self.pager.clone();
        let storage = match std::mem::replace(&mut self.target, Target::Empty) {
            Target::Empty => Storage::Empty,
            Target::Region { region, encoded: false } => {
                let region = region.into_inner().unwrap_or_else(|p| p.into_inner());
                // A hint, as in a one-call swap pageout.
                let _ = region.page_out();
                Storage::Swap(region)
            }
            Target::Region { region, encoded: true } => {
                let region = region.into_inner().unwrap_or_else(|p| p.into_inner());
                return pager.pageout_staged(Backend::File, Staged::new(region, len));
            }
            Target::File { extent, sums } => {
                let sums = sums.into_iter().map(AtomicU64::into_inner).collect();
                Storage::File(FileStore::from_parts(extent, len, sums))
            }
        };
        pager.count_pageout(len, &storage);
        Ok(Handle::new(Paged::new(next_id(), len, self.backend, storage, pager.shared())))
    }
}

impl Drop for PageoutWriter {
    fn drop(&mut self) {
        if let Target::File { extent, .. } = &mut self.target {
            if !self.finished {
                // Part-written: punched at once rather than recycled.
                extent.recycle = false;
            }
        }
        if OPEN_WRITERS.fetch_sub(1, Ordering::AcqRel) == 1 {
            pool().clear();
        }
    }
}

/// Hashes `bytes` (whole blocks, or the pageout's last) into `sums` and writes them at
/// `offset` of the extent, giving back recycled extents once if the disk is full.
fn write_file_slice(extent: &Extent, sums: &[AtomicU64], offset: u64, bytes: &[u8]) -> Result<()> {
    // The checksums are of the staging bytes, which are exactly the bytes written.
    let mut local = Vec::with_capacity(bytes.len().div_ceil(BLOCK as usize));
    checksum_chunks_into(&[bytes], bytes.len() as u64, &mut local);
    let first = (offset / BLOCK) as usize;
    for (slot, sum) in sums[first..first + local.len()].iter().zip(local) {
        slot.store(sum, Ordering::Relaxed);
    }
    let arena = &extent.arena;
    let write = || {
        crate::storage::extent::write_chunks(arena, extent.offset + offset, &[bytes])
            .map_err(|e| Error::io_at("pwritev", Some(arena.dir.path.clone()), e))
    };
    match write() {
        Err(Error::NoSpace(_)) if arena.flush_recycled() > 0 => write(),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn pager() -> (tempfile::TempDir, Pager) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { scratch_dir: dir.path().to_path_buf(), ..Config::default() };
        (dir, Pager::new(config).unwrap())
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    fn write_all(pager: &Pager, backend: Backend, data: &[u8]) -> Result<Handle> {
        let writer = pager.writer(backend, data.len() as u64)?;
        // Out of order, as concurrent pool threads may finish them.
        let mut offsets: Vec<usize> = (0..data.len()).step_by(SLICE_BYTES).collect();
        offsets.reverse();
        for at in offsets {
            let end = (at + SLICE_BYTES).min(data.len());
            writer.write(at as u64, Slice::copy(&[&data[at..end]])?)?;
        }
        writer.finish()
    }

    #[test]
    fn file_slices_read_back_verified() {
        let (_dir, pager) = pager();
        for len in [0, 1, 4095, SLICE_BYTES, SLICE_BYTES + 1, 3 * SLICE_BYTES - 17] {
            let data = bytes(len);
            let handle = write_all(&pager, Backend::File, &data).unwrap();
            assert_eq!(handle.len(), len as u64);
            assert_eq!(handle.read_at(0, len as u64).unwrap(), data, "len {len}");
        }
    }

    #[test]
    fn swap_slices_read_back() {
        if crate::os::page_out_primitive().is_err() {
            eprintln!("skipped: no page-out primitive here");
            return;
        }
        let (_dir, pager) = pager();
        let data = bytes(2 * SLICE_BYTES + 5);
        let handle = write_all(&pager, Backend::Swap, &data).unwrap();
        assert_eq!(handle.backend(), Backend::Swap);
        assert_eq!(handle.read_at(0, data.len() as u64).unwrap(), data);
    }

    #[test]
    fn encoded_slices_read_back() {
        let (_dir, pager) = pager();
        pager.update(|c| c.compress = crate::Compression::Lz4).unwrap();
        let data = bytes(2 * SLICE_BYTES + 100);
        let handle = write_all(&pager, Backend::File, &data).unwrap();
        assert!(handle.is_encoded());
        assert_eq!(handle.read_at(0, data.len() as u64).unwrap(), data);
    }

    #[test]
    fn misplaced_or_missing_slices_are_refused() {
        let (_dir, pager) = pager();
        let data = bytes(2 * SLICE_BYTES);
        let writer = pager.writer(Backend::File, data.len() as u64).unwrap();
        let short = Slice::copy(&[&data[..100]]).unwrap();
        assert!(matches!(writer.write(0, short), Err(Error::OutOfRange(_))));
        let past = Slice::copy(&[&data[..SLICE_BYTES]]).unwrap();
        assert!(matches!(writer.write(2 * SLICE_BYTES as u64, past), Err(Error::OutOfRange(_))));
        writer.write(0, Slice::copy(&[&data[..SLICE_BYTES]]).unwrap()).unwrap();
        assert!(matches!(writer.finish(), Err(Error::OutOfRange(_))));
        assert!(Slice::copy(&[&bytes(SLICE_BYTES + 1)]).is_err());
    }

    #[test]
    fn an_unfinished_writer_gives_its_extent_back() {
        let (_dir, pager) = pager();
        let data = bytes(SLICE_BYTES);
        let writer = pager.writer(Backend::File, data.len() as u64).unwrap();
        writer.write(0, Slice::copy(&[&data]).unwrap()).unwrap();
        assert!(pager.stats().scratch_bytes_allocated >= data.len() as u64);
        drop(writer);
        assert_eq!(pager.stats().scratch_bytes_allocated, 0);
    }
}
