//! The file backend: one arena extent holding a handle's bytes as they are, plus the
//! checksum of each block, kept in memory.
//!
//! The extent is written and read through [`crate::storage::extent`] (the shared
//! windows or `pread`). Reads with `verify` on fetch whole blocks, but only the partial
//! first and last blocks go through an edge buffer; the blocks in between land directly
//! in the caller's buffer, all in one fetch. Every byte is read from the source once and
//! verified after it is copied (a page the kernel drops and reads again between a hash
//! and a copy cannot slip through). A checksum mismatch zeroes what was written to the
//! caller's buffer and reports `Corrupt`: never wrong bytes.

use std::io::IoSliceMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::arena::{Arena, Extent};
use crate::error::{try_zeroed, Error, Result};
use crate::integrity::{checksum_chunks_into, first_mismatch, BLOCK};
use crate::maps::{self, ViewMap};
use crate::shared::Counters;
use crate::storage::extent::{write_chunks, write_extent, ExtentReader, ReadPath};

/// Verified reads larger than this are read and hashed in pieces of this size, which
/// stay in the CPU cache between the copy and the hash.
const VERIFY_PIECE: usize = 256 << 10;

/// Ranges this long on average are read one by one, each straight into its
/// target: one system call per range costs nothing next to the bytes, and a
/// coalesced read would stage them and copy them a second time.
const LARGE_RANGE: u64 = 1 << 20;

/// Whether `ranges` are long enough to be read one by one rather than coalesced
/// (see [`LARGE_RANGE`]).
pub(crate) fn large_ranges(ranges: &[(u64, u64)]) -> bool {
    let total = ranges.iter().fold(0u64, |sum, r| sum.saturating_add(r.1));
    !ranges.is_empty() && total / ranges.len() as u64 >= LARGE_RANGE
}

thread_local! {
    /// Buffers for the partial first and last blocks of a verified read, so that a
    /// read neither allocates nor zeroes them per call.
    static EDGES: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0u8; 2 * BLOCK as usize].into_boxed_slice());
}

pub(crate) struct FileStore {
    reader: ExtentReader,
    sums: Vec<u64>,
}

/// How a verified read ended.
enum Verified {
    /// Every block read matched its checksum.
    Intact,
    /// The fetch failed (an I/O or media error).
    Unread(Error),
    /// The block failed its checksum: the caller zeroes what was read and reports.
    Mismatch(u64),
}

/// The blocks a verified read touches: `first..=last`, of which the first and the
/// last may be partial (fetched whole into an edge buffer); the whole blocks from
/// `mid_first` lie at `mid_start` in the extent and `mid_at..mid_at + mid_len` in the
/// caller's buffer.
#[derive(Clone, Copy)]
struct BlockPlan {
    first: u64,
    last: u64,
    head_partial: bool,
    tail_partial: bool,
    mid_first: u64,
    mid_start: u64,
    mid_at: usize,
    mid_len: usize,
}

impl FileStore {
    /// Writes the concatenation of `chunks` (`total > 0` bytes) to a fresh extent.
    pub(crate) fn write(arena: &Arc<Arena>, chunks: &[&[u8]], total: u64) -> Result<FileStore> {
        let mut sums = Vec::new();
        sums.try_reserve_exact(total.div_ceil(BLOCK) as usize).map_err(|_| Error::no_memory(total / 512))?;
        let (extent, ()) = write_extent(arena, total, |extent| {
            write_hashed(arena, extent.offset, chunks, total, &mut sums)
                .map_err(|e| Error::io_at("pwritev", Some(arena.dir.path.clone()), e))
        })?;
        Ok(FileStore { reader: ExtentReader::new(extent, total), sums })
    }

    /// A store over an extent already written, with its blocks' checksums
    /// ([`crate::writer`]).
    pub(crate) fn from_parts(extent: Extent, len: u64, sums: Vec<u64>) -> FileStore {
        FileStore { reader: ExtentReader::new(extent, len), sums }
    }

    pub(crate) fn arena(&self) -> &Arc<Arena> {
        &self.reader.extent.arena
    }

    /// The handle's length, which is also what it occupies in its extent.
    pub(crate) fn len(&self) -> u64 {
        self.reader.len
    }

    /// Where the extent is in its arena file (for tests that tamper with it).
    pub(crate) fn extent_offset(&self) -> u64 {
        self.reader.extent.offset
    }

    fn block_end(&self, block: u64) -> u64 {
        ((block + 1) * BLOCK).min(self.reader.len)
    }

    fn read_path(&self) -> ReadPath<'_> {
        self.reader.read_path()
    }

    fn fetch(&self, path: ReadPath<'_>, at: u64, bufs: &mut [IoSliceMut<'_>]) -> Result<()> {
        self.reader.fetch(path, at, bufs)
    }
}

impl FileStore {
    fn corrupt(&self, handle: u64, block: u64, counters: &Counters) -> Error {
        counters.checksum_failures.fetch_add(1, Ordering::Relaxed);
        Error::Corrupt { handle, block, arena: self.reader.extent.arena.id }
    }

    /// Fills `dst` from `offset` (the range is already checked against the handle).
    pub(crate) fn read_into(
        &self,
        offset: u64,
        dst: &mut [u8],
        verify: bool,
        handle: u64,
        counters: &Counters,
    ) -> Result<()> {
        if dst.is_empty() {
            return Ok(());
        }
        let path = self.read_path();
        if !verify {
            return self.fetch(path, offset, &mut [IoSliceMut::new(dst)]);
        }
        match self.read_verified(path, offset, dst) {
            Verified::Intact => Ok(()),
            Verified::Unread(error) => Err(error),
            Verified::Mismatch(block) => {
                dst.fill(0);
                Err(self.corrupt(handle, block, counters))
            }
        }
    }

    /// Reads `dst` from `offset` in whole blocks and checks them: the blocks `dst`
    /// holds whole land in it directly, a partial first or last block goes through an
    /// edge buffer.
    fn read_verified(&self, path: ReadPath<'_>, offset: u64, dst: &mut [u8]) -> Verified {
        let plan = self.plan_blocks(offset, offset + dst.len() as u64);
        if !plan.head_partial && !plan.tail_partial {
            return self.read_whole_blocks(path, plan.mid_start, dst);
        }
        EDGES.with_borrow_mut(|edges| self.read_with_edges(path, offset, dst, &plan, edges))
    }

    /// Which blocks of `[offset, end)` (`end > offset`) are partial, and where the
    /// whole ones in between lie.
    fn plan_blocks(&self, offset: u64, end: u64) -> BlockPlan {
        let (first, last) = (offset / BLOCK, (end - 1) / BLOCK);
        let head_partial = offset != first * BLOCK || end < self.block_end(first);
        let tail_partial = last != first && end != self.block_end(last);
        let mid_first = if head_partial { first + 1 } else { first };
        let mid_end = if tail_partial { last * BLOCK } else { end };
        let mid_start = (mid_first * BLOCK).min(mid_end);
        BlockPlan {
            first,
            last,
            head_partial,
            tail_partial,
            mid_first,
            mid_start,
            mid_at: (mid_start - offset) as usize,
            mid_len: (mid_end - mid_start) as usize,
        }
    }

    /// Whole blocks from `start` straight into `dst`; large reads piece by piece, so
    /// each piece is hashed while it is still in cache instead of re-read from memory.
    fn read_whole_blocks(&self, path: ReadPath<'_>, start: u64, dst: &mut [u8]) -> Verified {
        for (i, piece) in dst.chunks_mut(VERIFY_PIECE).enumerate() {
            let at = start + (i * VERIFY_PIECE) as u64;
            if let Err(e) = self.fetch(path, at, &mut [IoSliceMut::new(piece)]) {
                return Verified::Unread(e);
            }
            if let Some(block) = first_mismatch(piece, at / BLOCK, &self.sums) {
                return Verified::Mismatch(block);
            }
        }
        Verified::Intact
    }

    /// A read with a partial first and/or last block: one fetch of the partial blocks
    /// into `edges` and the whole ones into `dst`, then every block checked and the
    /// edges' part of the range copied into `dst`.
    fn read_with_edges(
        &self,
        path: ReadPath<'_>,
        offset: u64,
        dst: &mut [u8],
        plan: &BlockPlan,
        edges: &mut [u8],
    ) -> Verified {
        let BlockPlan { first, last, head_partial, tail_partial, mid_first, mid_at, mid_len, .. } = *plan;
        let end = offset + dst.len() as u64;
        let (head, tail) = edges.split_at_mut(BLOCK as usize);
        let head_len = (self.block_end(first) - first * BLOCK) as usize;
        let tail_len = (self.block_end(last) - last * BLOCK) as usize;
        let head = if head_partial { &mut head[..head_len] } else { &mut head[..0] };
        let tail = if tail_partial { &mut tail[..tail_len] } else { &mut tail[..0] };
        {
            let mid = &mut dst[mid_at..mid_at + mid_len];
            let mut bufs = [IoSliceMut::new(head), IoSliceMut::new(mid), IoSliceMut::new(tail)];
            let bufs: &mut [IoSliceMut<'_>] = match (head_partial, tail_partial) {
                (false, false) => &mut bufs[1..2],
                (true, false) if mid_len == 0 => &mut bufs[..1],
                _ => &mut bufs,
            };
            if let Err(e) = self.fetch(path, first * BLOCK, bufs) {
                return Verified::Unread(e);
            }
        }
        if head_partial {
            if crate::integrity::hash(head) != self.sums[first as usize] {
                return Verified::Mismatch(first);
            }
            let from = (offset - first * BLOCK) as usize;
            let n = (end.min(self.block_end(first)) - offset) as usize;
            dst[..n].copy_from_slice(&head[from..from + n]);
        }
        if let Some(block) = first_mismatch(&dst[mid_at..mid_at + mid_len], mid_first, &self.sums) {
            return Verified::Mismatch(block);
        }
        if tail_partial {
            if crate::integrity::hash(tail) != self.sums[last as usize] {
                return Verified::Mismatch(last);
            }
            let at = (last * BLOCK - offset) as usize;
            dst[at..].copy_from_slice(&tail[..(end - last * BLOCK) as usize]);
        }
        Verified::Intact
    }

    /// Whether [`FileStore::read_many`] should rather read each range alone
    /// ([`FileStore::read_into`]): the map is there, so no range costs a system call.
    pub(crate) fn reads_mapped(&self) -> bool {
        matches!(self.read_path(), ReadPath::Windows(..))
    }

    /// Reads every range (already checked, two or more) with one `pread` per run of overlapping or
    /// adjacent ranges, verifying each block once.
    /// `deliver(i, bytes)` receives the bytes of `ranges[i]`, in request order, once
    /// everything has been read and verified.
    pub(crate) fn read_many(
        &self,
        ranges: &[(u64, u64)],
        verify: bool,
        handle: u64,
        counters: &Counters,
        mut deliver: impl FnMut(usize, &[u8]),
    ) -> Result<()> {
        // Byte spans to fetch: whole blocks when verifying.
        let mut spans: Vec<(u64, u64)> = Vec::new();
        spans.try_reserve_exact(ranges.len()).map_err(|_| Error::no_memory(ranges.len() as u64 * 16))?;
        spans.extend(ranges.iter().filter(|(_, len)| *len > 0).map(|&(off, len)| {
            if verify {
                (off / BLOCK * BLOCK, self.block_end((off + len - 1) / BLOCK))
            } else {
                (off, off + len)
            }
        }));
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64, usize)> = Vec::new(); // (start, end, position in buf)
        merged.try_reserve_exact(spans.len()).map_err(|_| Error::no_memory(spans.len() as u64 * 24))?;
        let mut total = 0usize;
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => {
                    if end > last.1 {
                        total += (end - last.1) as usize;
                        last.1 = end;
                    }
                }
                _ => {
                    merged.push((start, end, total));
                    total += (end - start) as usize;
                }
            }
        }
        // Whole blocks when verifying: more than the ranges' sum the caller reserved.
        let mut buf = try_zeroed(total)?;
        for &(start, end, pos) in &merged {
            let piece = &mut buf[pos..pos + (end - start) as usize];
            self.fetch(ReadPath::Pread, start, &mut [IoSliceMut::new(piece)])?;
            if verify {
                if let Some(block) = first_mismatch(piece, start / BLOCK, &self.sums) {
                    return Err(self.corrupt(handle, block, counters));
                }
            }
        }
        for (i, &(off, len)) in ranges.iter().enumerate() {
            if len == 0 {
                deliver(i, &[]);
                continue;
            }
            let (start, _, pos) = merged[merged.partition_point(|m| m.0 <= off) - 1];
            let at = pos + (off - start) as usize;
            deliver(i, &buf[at..at + len as usize]);
        }
        Ok(())
    }

    /// Maps `[offset, offset + len)` (checked, `len > 0`) copy-on-write for a view of
    /// storage `owner`, verified when asked: a caller that writes into the map (a JS
    /// view is writable) changes its own private pages, never the scratch file.
    /// Returns the map and where the range starts inside it, or `None` when the
    /// pager holds as many view maps as it allows ([`maps::maps_limit`]): then the
    /// caller gives a copy.
    pub(crate) fn map(
        &self,
        offset: u64,
        len: u64,
        verify: bool,
        (handle, owner): (u64, u64),
        counters: &Counters,
    ) -> Result<Option<(ViewMap, usize)>> {
        let (start, end) = if verify {
            (offset / BLOCK * BLOCK, self.block_end((offset + len - 1) / BLOCK))
        } else {
            (offset, offset + len)
        };
        fail_point!("file-map", |_| Err(Error::io(
            "mmap",
            std::io::Error::from_raw_os_error(crate::os::errno::ENOMEM)
        )));
        self.reader.check_failed()?;
        let extent = &self.reader.extent;
        let Some(map) = maps::view_map(&extent.arena.file, extent.offset + start, (end - start) as usize, owner)
            .map_err(|e| Error::io_at("mmap", Some(extent.arena.dir.path.clone()), e))?
        else {
            return Ok(None);
        };
        if verify {
            let mismatch = first_mismatch(&map, start / BLOCK, &self.sums);
            // A media error under the hash leaves zeros: an I/O error, not corruption.
            if map.poisoned() {
                return Err(self.reader.fail());
            }
            if let Some(block) = mismatch {
                return Err(self.corrupt(handle, block, counters));
            }
        }
        Ok(Some((map, (offset - start) as usize)))
    }

    /// Hints the kernel to read `[offset, offset + len)` ahead.
    pub(crate) fn prefetch(&self, offset: u64, len: u64) {
        self.reader.prefetch(offset, len);
    }
}

/// Pageouts are copied, hashed and written piece by piece: each piece is copied into
/// a staging buffer that stays in the CPU cache, hashed there and written from there.
/// The checksums are then of exactly the bytes that reach the file, even when the
/// caller's memory changes meanwhile (a `SharedArrayBuffer` that another thread
/// writes): the handle stores one of the values each byte had, and its reads never
/// fail because of it (SPEC "Resources at scale").
const WRITE_PIECE: usize = 1 << 20;
const _: () = assert!(WRITE_PIECE as u64 & (BLOCK - 1) == 0, "pieces hold whole blocks");

thread_local! {
    /// The staging buffer of this thread's pageouts (at most [`WRITE_PIECE`] bytes).
    static STAGING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes `chunks` (`total` bytes) at `offset`, appending the blocks' checksums to
/// `sums` (cleared first).
fn write_hashed(arena: &Arena, offset: u64, chunks: &[&[u8]], total: u64, sums: &mut Vec<u64>) -> std::io::Result<()> {
    sums.clear();
    let want = WRITE_PIECE.min(usize::try_from(total).unwrap_or(WRITE_PIECE));
    STAGING.with_borrow_mut(|staging| {
        if staging.len() < want {
            staging.clear();
            staging.try_reserve_exact(want).map_err(|_| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
            staging.resize(want, 0);
        }
        let mut rest = chunks.iter().copied().filter(|c| !c.is_empty());
        let mut current: &[u8] = &[];
        let mut at = 0u64;
        while at < total {
            let len = WRITE_PIECE.min((total - at) as usize);
            let piece = &mut staging[..len];
            let mut got = 0;
            while got < len {
                if current.is_empty() {
                    current = rest.next().expect("the chunks hold `total` bytes");
                }
                let take = (len - got).min(current.len());
                crate::copy::copy_bytes(&mut piece[got..got + take], &current[..take]);
                current = &current[take..];
                got += take;
            }
            // WRITE_PIECE is a multiple of BLOCK: the pieces' blocks are the handle's.
            checksum_chunks_into(&[&*piece], len as u64, sums);
            write_chunks(arena, offset + at, &[&*piece])?;
            at += len as u64;
        }
        Ok(())
    })
}
