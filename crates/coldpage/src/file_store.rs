//! File-backed handle storage: one arena extent plus the block checksums of its bytes.
//!
//! Reads with `verify` on fetch whole blocks, but only the partial first and last blocks
//! go through a stack buffer; the blocks in between land directly in the caller's
//! buffer, all in one `preadv`. A checksum mismatch zeroes what was written to the
//! caller's buffer and reports `Corrupt`: never wrong bytes.

use std::io::IoSliceMut;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};
use xxhash_rust::xxh3::xxh3_64;

use crate::arena::{Arena, Extent};
use crate::error::{Error, Result};
use crate::integrity::{checksum_chunks, first_mismatch, BLOCK};
use crate::os;
use crate::pager::Counters;

pub(crate) struct FileStore {
    extent: Extent,
    len: u64,
    sums: Vec<u64>,
}

/// Where a read failed the checksum: the caller zeroes and reports.
struct Mismatch(u64);

impl FileStore {
    /// Writes the concatenation of `chunks` (`total > 0` bytes) to a fresh extent.
    pub(crate) fn write(arena: &Arc<Arena>, chunks: &[&[u8]], total: u64) -> Result<FileStore> {
        let extent = arena.allocate(total)?;
        let sums = checksum_chunks(chunks, total);
        // On failure `extent` drops here: its blocks are punched and returned.
        write_chunks(arena, extent.offset, chunks).map_err(|e| Error::io_at("pwritev", Some(arena.dir.clone()), e))?;
        Ok(FileStore { extent, len: total, sums })
    }

    pub(crate) fn arena(&self) -> &Arc<Arena> {
        &self.extent.arena
    }

    fn block_end(&self, block: u64) -> u64 {
        ((block + 1) * BLOCK).min(self.len)
    }

    fn pread(&self, at: u64, bufs: &mut [IoSliceMut<'_>]) -> Result<()> {
        fail::fail_point!("file-read", |_| Err(Error::io("preadv", std::io::Error::from_raw_os_error(libc::EIO))));
        os::preadv_exact(&self.extent.arena.file, self.extent.offset + at, bufs)
            .map_err(|e| Error::io_at("preadv", Some(self.extent.arena.dir.clone()), e))
    }

    fn corrupt(&self, handle: u64, block: u64, counters: &Counters) -> Error {
        counters.checksum_failures.fetch_add(1, Ordering::Relaxed);
        Error::Corrupt { handle, block, arena: self.extent.arena.id }
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
        if !verify {
            return self.pread(offset, &mut [IoSliceMut::new(dst)]);
        }
        match self.read_verified(offset, dst) {
            Ok(result) => result,
            Err(Mismatch(block)) => {
                dst.fill(0);
                Err(self.corrupt(handle, block, counters))
            }
        }
    }

    fn read_verified(&self, offset: u64, dst: &mut [u8]) -> std::result::Result<Result<()>, Mismatch> {
        let end = offset + dst.len() as u64;
        let (b0, b1) = (offset / BLOCK, (end - 1) / BLOCK);
        let head_partial = offset != b0 * BLOCK || end < self.block_end(b0);
        let tail_partial = b1 != b0 && end != self.block_end(b1);
        let mid_first = if head_partial { b0 + 1 } else { b0 };
        let mid_end = if tail_partial { b1 * BLOCK } else { end };
        let mid_start = (mid_first * BLOCK).min(mid_end);
        let head_len = (self.block_end(b0) - b0 * BLOCK) as usize;
        let tail_len = (self.block_end(b1) - b1 * BLOCK) as usize;

        let mut head = [0u8; BLOCK as usize];
        let mut tail = [0u8; BLOCK as usize];
        {
            let (before, rest) = dst.split_at_mut((mid_start - offset) as usize);
            let _ = before;
            let (mid, _) = rest.split_at_mut((mid_end - mid_start) as usize);
            let mut bufs = [
                IoSliceMut::new(if head_partial { &mut head[..head_len] } else { &mut [] }),
                IoSliceMut::new(mid),
                IoSliceMut::new(if tail_partial { &mut tail[..tail_len] } else { &mut [] }),
            ];
            if let Err(e) = self.pread(b0 * BLOCK, &mut bufs) {
                return Ok(Err(e));
            }
        }
        if head_partial {
            if xxh3_64(&head[..head_len]) != self.sums[b0 as usize] {
                return Err(Mismatch(b0));
            }
            let from = (offset - b0 * BLOCK) as usize;
            let n = (end.min(self.block_end(b0)) - offset) as usize;
            dst[..n].copy_from_slice(&head[from..from + n]);
        }
        let mid = &dst[(mid_start - offset) as usize..(mid_end - offset) as usize];
        if let Some(block) = first_mismatch(mid, mid_first, &self.sums) {
            return Err(Mismatch(block));
        }
        if tail_partial {
            if xxh3_64(&tail[..tail_len]) != self.sums[b1 as usize] {
                return Err(Mismatch(b1));
            }
            let at = (b1 * BLOCK - offset) as usize;
            let n = (end - b1 * BLOCK) as usize;
            dst[at..].copy_from_slice(&tail[..n]);
        }
        Ok(Ok(()))
    }

    /// Reads every range (already checked) with one `pread` per run of overlapping or
    /// adjacent ranges, verifying each block once.
    pub(crate) fn read_many(
        &self,
        ranges: &[(u64, u64)],
        verify: bool,
        handle: u64,
        counters: &Counters,
    ) -> Result<Vec<Vec<u8>>> {
        if let [(offset, len)] = ranges {
            let mut out = vec![0u8; *len as usize];
            self.read_into(*offset, &mut out, verify, handle, counters)?;
            return Ok(vec![out]);
        }
        // Byte spans to fetch: whole blocks when verifying.
        let mut spans: Vec<(u64, u64)> =
            ranges
                .iter()
                .filter(|(_, len)| *len > 0)
                .map(|&(off, len)| {
                    if verify {
                        (off / BLOCK * BLOCK, self.block_end((off + len - 1) / BLOCK))
                    } else {
                        (off, off + len)
                    }
                })
                .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64, usize)> = Vec::with_capacity(spans.len()); // (start, end, position in buf)
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
        let mut buf = vec![0u8; total];
        for &(start, end, pos) in &merged {
            let piece = &mut buf[pos..pos + (end - start) as usize];
            self.pread(start, &mut [IoSliceMut::new(piece)])?;
            if verify {
                if let Some(block) = first_mismatch(piece, start / BLOCK, &self.sums) {
                    return Err(self.corrupt(handle, block, counters));
                }
            }
        }
        Ok(ranges
            .iter()
            .map(|&(off, len)| {
                if len == 0 {
                    return Vec::new();
                }
                let i = merged.partition_point(|m| m.0 <= off) - 1;
                let (start, _, pos) = merged[i];
                let at = pos + (off - start) as usize;
                buf[at..at + len as usize].to_vec()
            })
            .collect())
    }

    /// Maps `[offset, offset + len)` (checked, `len > 0`) read-only, verified when asked.
    /// Returns the map and where the range starts inside it.
    pub(crate) fn map(
        &self,
        offset: u64,
        len: u64,
        verify: bool,
        handle: u64,
        counters: &Counters,
    ) -> Result<(Mmap, usize)> {
        let (start, end) = if verify {
            (offset / BLOCK * BLOCK, self.block_end((offset + len - 1) / BLOCK))
        } else {
            (offset, offset + len)
        };
        let file = &self.extent.arena.file;
        let options = {
            let mut o = MmapOptions::new();
            o.offset(self.extent.offset + start).len((end - start) as usize);
            o
        };
        // SAFETY: the arena file is an unnamed (O_TMPFILE or unlinked) 0600 file in a
        // 0700 directory that only this process holds, and this extent belongs to this
        // handle alone: no one truncates it (no SIGBUS) and nothing rewrites these bytes
        // while the map lives, because the extent is only freed (hole punched, reused)
        // after every lease holding the map has dropped it.
        let map =
            unsafe { options.map(file) }.map_err(|e| Error::io_at("mmap", Some(self.extent.arena.dir.clone()), e))?;
        if verify {
            if let Some(block) = first_mismatch(&map, start / BLOCK, &self.sums) {
                return Err(self.corrupt(handle, block, counters));
            }
        }
        Ok((map, (offset - start) as usize))
    }

    /// Hints the kernel to read `[offset, offset + len)` ahead.
    pub(crate) fn prefetch(&self, offset: u64, len: u64) {
        os::fadvise_willneed(&self.extent.arena.file, self.extent.offset + offset, len);
    }
}

fn write_chunks(arena: &Arena, offset: u64, chunks: &[&[u8]]) -> std::io::Result<()> {
    fail::fail_point!("file-write", |_| Err(std::io::Error::from_raw_os_error(libc::EIO)));
    fail::fail_point!("file-write-nospace", |_| Err(std::io::Error::from_raw_os_error(libc::ENOSPC)));
    os::pwritev_all(&arena.file, offset, chunks)
}
