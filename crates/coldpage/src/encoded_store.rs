//! File-backed handle storage for handles paged out with `encrypt` or `compress`:
//! each [`BLOCK`] of the handle is stored on its own, compressed (LZ4, or raw where it
//! does not shrink), then encrypted (an AEAD seal), so that a read decodes only the
//! blocks it touches.
//!
//! What each block needs lives in memory, as the plain backend's checksums do: where
//! its stored bytes are and how long they are (compressed blocks are variable-length,
//! packed one after another in the extent), whether they are LZ4, and their check:
//! the AEAD tag when encrypted (it replaces the checksum and is always checked), else
//! the xxh3-64 of the stored bytes (checked while `verify` is on).
//!
//! An encrypted block's nonce is the handle's first nonce plus the block's index (the
//! pager's key hands out fresh nonces for every pageout, so none repeats for the key's
//! life, however extents are recycled), and its associated data binds the handle id,
//! the block index and both lengths: a block moved within the arena, or an old block
//! written back where a newer one was, fails authentication (`Corrupt`).
//!
//! Only ciphertext reaches the disk: blocks are sealed in a staging buffer that the
//! pager owns, never in the caller's memory, and written from there. Reads always use
//! `pread` (no map: the bytes on disk are not the handle's bytes), and the decoded
//! bytes land in the caller's buffer.

use std::io::IoSliceMut;
use std::sync::Arc;

use crate::arena::{Arena, Extent};
use crate::crypt::{Key, Tag};
use crate::error::{try_zeroed, Error, Result};
use crate::integrity::{hash, BLOCK};
use crate::os;
use crate::shared::Counters;

/// Stored bytes are written in pieces of about this size.
const WRITE_PIECE: usize = 1 << 20;
/// Reads fetch at most this many stored bytes per `pread`, so a piece is decoded
/// while it is still in cache.
const READ_PIECE: u64 = 256 << 10;

/// How a pageout encodes its blocks.
#[derive(Clone)]
pub(crate) struct Encoding {
    pub(crate) lz4: bool,
    pub(crate) key: Option<Arc<Key>>,
}

/// Where one block's stored bytes are (relative to the extent) and what they are.
#[derive(Clone, Copy)]
struct Stored {
    at: u64,
    len: u32,
    lz4: bool,
}

/// A block's integrity check.
enum Checks {
    /// AEAD tags, one per block, and the handle's first nonce.
    Tags { key: Arc<Key>, first_nonce: u64, tags: Vec<Tag> },
    /// xxh3-64 of each block's stored bytes.
    Sums(Vec<u64>),
}

pub(crate) struct EncodedStore {
    extent: Extent,
    len: u64,
    /// The handle's id (part of every block's associated data).
    handle: u64,
    /// Per block, when compressed; `None`: block `i` is stored raw at `i * BLOCK`.
    blocks: Option<Vec<Stored>>,
    checks: Checks,
}

thread_local! {
    /// Stored bytes fetched by a read, so that reads do not allocate.
    static FETCHED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A block's associated data: the handle, the block's index, its raw and stored
/// lengths and whether it is LZ4.
fn aad(handle: u64, block: u64, raw: usize, stored: usize, lz4: bool) -> [u8; 25] {
    let mut a = [0u8; 25];
    a[..8].copy_from_slice(&handle.to_le_bytes());
    a[8..16].copy_from_slice(&block.to_le_bytes());
    a[16..20].copy_from_slice(&(raw as u32).to_le_bytes());
    a[20..24].copy_from_slice(&(stored as u32).to_le_bytes());
    a[24] = u8::from(lz4);
    a
}

/// Copies the `len` bytes at `at` of the concatenation of `chunks` into `out`
/// (`cursor` is (chunk index, offset in it), moved forward).
fn gather(chunks: &[&[u8]], cursor: &mut (usize, usize), out: &mut [u8]) {
    let mut got = 0;
    while got < out.len() {
        let chunk = chunks[cursor.0];
        let take = (out.len() - got).min(chunk.len() - cursor.1);
        out[got..got + take].copy_from_slice(&chunk[cursor.1..cursor.1 + take]);
        got += take;
        cursor.1 += take;
        if cursor.1 == chunk.len() {
            *cursor = (cursor.0 + 1, 0);
        }
    }
}

impl EncodedStore {
    /// Encodes the concatenation of `chunks` (`total > 0` bytes) and writes it to a
    /// fresh extent, which is then shrunk to what the blocks occupy.
    pub(crate) fn write(
        arena: &Arc<Arena>,
        chunks: &[&[u8]],
        total: u64,
        handle: u64,
        encoding: &Encoding,
    ) -> Result<EncodedStore> {
        let chunks: Vec<&[u8]> = chunks.iter().copied().filter(|c| !c.is_empty()).collect();
        // Blocks never grow (a block LZ4 does not shrink is stored raw), so an extent
        // of `total` bytes holds them; the unused tail is given back below.
        let mut extent = arena.allocate(total)?;
        let (blocks, checks, written) = match encode_into(&extent, &chunks, total, handle, encoding) {
            Ok(done) => done,
            Err(err) => {
                // The part-written extent is punched at once (not recycled) when it drops.
                extent.recycle = false;
                drop(extent);
                // A full disk may be only the recycled extents' doing: give them back,
                // retry once (with fresh nonces: a nonce is never used twice).
                if !matches!(err, Error::NoSpace(_)) || arena.flush_recycled() == 0 {
                    return Err(err);
                }
                extent = arena.allocate(total)?;
                match encode_into(&extent, &chunks, total, handle, encoding) {
                    Ok(done) => done,
                    Err(err) => {
                        extent.recycle = false;
                        return Err(err);
                    }
                }
            }
        };
        extent.shrink(written);
        Ok(EncodedStore { extent, len: total, handle, blocks, checks })
    }

    pub(crate) fn arena(&self) -> &Arc<Arena> {
        &self.extent.arena
    }

    /// Bytes the blocks occupy in the extent.
    pub(crate) fn stored_len(&self) -> u64 {
        match &self.blocks {
            Some(blocks) => blocks.last().map_or(0, |b| b.at + u64::from(b.len)),
            None => self.len,
        }
    }

    /// The counter values of this handle's nonces (for tests: none may repeat).
    pub(crate) fn nonces(&self) -> Option<std::ops::Range<u64>> {
        match &self.checks {
            Checks::Tags { first_nonce, tags, .. } => Some(*first_nonce..*first_nonce + tags.len() as u64),
            Checks::Sums(_) => None,
        }
    }

    /// Where the extent is in its arena file (for tests that tamper with it).
    pub(crate) fn extent_offset(&self) -> u64 {
        self.extent.offset
    }

    fn raw_len(&self, block: u64) -> usize {
        (((block + 1) * BLOCK).min(self.len) - block * BLOCK) as usize
    }

    fn stored(&self, block: u64) -> Stored {
        match &self.blocks {
            Some(blocks) => blocks[block as usize],
            None => Stored { at: block * BLOCK, len: self.raw_len(block) as u32, lz4: false },
        }
    }

    fn corrupt(&self, block: u64, counters: &Counters) -> Error {
        counters.checksum_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Error::Corrupt { handle: self.handle, block, arena: self.extent.arena.id }
    }

    fn fetch(&self, at: u64, buf: &mut [u8]) -> Result<()> {
        fail::fail_point!("file-read", |_| Err(Error::io("preadv", std::io::Error::from_raw_os_error(os::errno::EIO))));
        let read = os::read_exact_at(&self.extent.arena.file, self.extent.offset + at, &mut [IoSliceMut::new(buf)])
            .map_err(|e| Error::io_at("preadv", Some(self.extent.arena.dir.path.clone()), e));
        // Bit rot on the medium: the read succeeds with one byte flipped.
        fail::fail_point!("file-read-flip", |_| {
            if let Some(b) = buf.first_mut() {
                *b ^= 0x5A;
            }
            read
        });
        read
    }

    /// Fills `dst` from `offset` (the range is already checked against the handle).
    /// On a failed check `dst` is zeroed and the error is `Corrupt`.
    pub(crate) fn read_into(&self, offset: u64, dst: &mut [u8], verify: bool, counters: &Counters) -> Result<()> {
        if dst.is_empty() {
            return Ok(());
        }
        let result = FETCHED.with_borrow_mut(|fetched| self.decode_range(offset, dst, verify, counters, fetched));
        if matches!(result, Err(Error::Corrupt { .. })) {
            dst.fill(0);
        }
        result
    }

    fn decode_range(
        &self,
        offset: u64,
        dst: &mut [u8],
        verify: bool,
        counters: &Counters,
        fetched: &mut Vec<u8>,
    ) -> Result<()> {
        let end = offset + dst.len() as u64;
        let (first, last) = (offset / BLOCK, (end - 1) / BLOCK);
        let mut edge = [0u8; BLOCK as usize];
        let mut block = first;
        while block <= last {
            // A run of blocks whose stored bytes are contiguous, up to READ_PIECE.
            let start = self.stored(block).at;
            let mut run_end = block;
            let mut stored_end = start + u64::from(self.stored(block).len);
            while run_end < last && stored_end - start < READ_PIECE {
                stored_end += u64::from(self.stored(run_end + 1).len);
                run_end += 1;
            }
            let span = (stored_end - start) as usize;
            if fetched.len() < span {
                fetched.try_reserve(span - fetched.len()).map_err(|_| Error::no_memory(span as u64))?;
                fetched.resize(span, 0);
            }
            self.fetch(start, &mut fetched[..span])?;
            for b in block..=run_end {
                let s = self.stored(b);
                let from = (s.at - start) as usize;
                let bytes = &mut fetched[from..from + s.len as usize];
                let raw_len = self.raw_len(b);
                let ok = match &self.checks {
                    Checks::Tags { key, first_nonce, tags } => {
                        let aad = aad(self.handle, b, raw_len, bytes.len(), s.lz4);
                        key.open(first_nonce + b, &aad, bytes, &tags[b as usize])
                    }
                    Checks::Sums(sums) => !verify || hash(bytes) == sums[b as usize],
                };
                if !ok {
                    return Err(self.corrupt(b, counters));
                }
                // The block's part of the read: whole blocks decode straight into `dst`.
                let block_start = b * BLOCK;
                let lo = offset.max(block_start);
                let hi = end.min(block_start + raw_len as u64);
                let at_dst = (lo - offset) as usize;
                let whole = lo == block_start && hi == block_start + raw_len as u64;
                let target: &mut [u8] = if whole { &mut dst[at_dst..at_dst + raw_len] } else { &mut edge[..raw_len] };
                if s.lz4 {
                    match lz4_flex::block::decompress_into(bytes, target) {
                        Ok(n) if n == raw_len => {}
                        _ => return Err(self.corrupt(b, counters)),
                    }
                } else {
                    crate::copy::copy_bytes(target, bytes);
                }
                if !whole {
                    let from = (lo - block_start) as usize;
                    dst[at_dst..at_dst + (hi - lo) as usize].copy_from_slice(&edge[from..from + (hi - lo) as usize]);
                }
            }
            block = run_end + 1;
        }
        Ok(())
    }

    /// Hints the kernel to read the stored bytes of `[offset, offset + len)` ahead.
    pub(crate) fn prefetch(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let (first, last) = (self.stored(offset / BLOCK), self.stored((offset + len - 1) / BLOCK));
        os::read_ahead(
            &self.extent.arena.file,
            self.extent.offset + first.at,
            last.at + u64::from(last.len) - first.at,
        );
    }
}

/// Encodes and writes every block of `chunks` (`total` bytes, no empty chunk) to
/// `extent`; returns the blocks' places (when compressed), their checks and the
/// bytes written.
fn encode_into(
    extent: &Extent,
    chunks: &[&[u8]],
    total: u64,
    handle: u64,
    encoding: &Encoding,
) -> Result<(Option<Vec<Stored>>, Checks, u64)> {
    let arena = &extent.arena;
    let count = total.div_ceil(BLOCK);
    let count_usize = usize::try_from(count).map_err(|_| Error::no_memory(total))?;
    let mut blocks = Vec::new();
    if encoding.lz4 {
        blocks.try_reserve_exact(count_usize).map_err(|_| Error::no_memory(count * 16))?;
    }
    let mut checks = match &encoding.key {
        Some(key) => {
            let mut tags = Vec::new();
            tags.try_reserve_exact(count_usize).map_err(|_| Error::no_memory(count * 16))?;
            Checks::Tags { key: Arc::clone(key), first_nonce: key.nonces(count)?, tags }
        }
        None => {
            let mut sums = Vec::new();
            sums.try_reserve_exact(count_usize).map_err(|_| Error::no_memory(count * 8))?;
            Checks::Sums(sums)
        }
    };
    let max_stored = lz4_flex::block::get_maximum_output_size(BLOCK as usize);
    let mut staging = try_zeroed(WRITE_PIECE + max_stored)?;
    let mut raw = [0u8; BLOCK as usize];
    let mut cursor = (0usize, 0usize);
    let (mut pos, mut written) = (0usize, 0u64);
    for block in 0..count {
        let raw_len = (((block + 1) * BLOCK).min(total) - block * BLOCK) as usize;
        let raw = &mut raw[..raw_len];
        gather(chunks, &mut cursor, raw);
        let out = &mut staging[pos..pos + max_stored];
        let compressed =
            if encoding.lz4 { lz4_flex::block::compress_into(raw, out).ok().filter(|&n| n < raw_len) } else { None };
        let stored_len = compressed.unwrap_or_else(|| {
            out[..raw_len].copy_from_slice(raw);
            raw_len
        });
        let lz4 = compressed.is_some();
        let stored = &mut out[..stored_len];
        match &mut checks {
            Checks::Tags { key, first_nonce, tags } => {
                let aad = aad(handle, block, raw_len, stored_len, lz4);
                tags.push(key.seal(*first_nonce + block, &aad, stored));
            }
            Checks::Sums(sums) => sums.push(hash(stored)),
        }
        if encoding.lz4 {
            blocks.push(Stored { at: written + pos as u64, len: stored_len as u32, lz4 });
        }
        pos += stored_len;
        if pos >= WRITE_PIECE || block + 1 == count {
            write_at(arena, extent.offset + written, &staging[..pos])
                .map_err(|e| Error::io_at("pwrite", Some(arena.dir.path.clone()), e))?;
            written += pos as u64;
            pos = 0;
        }
    }
    Ok((encoding.lz4.then_some(blocks), checks, written))
}

fn write_at(arena: &Arena, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    fail::fail_point!("file-write", |_| Err(std::io::Error::from_raw_os_error(os::errno::EIO)));
    fail::fail_point!("file-write-nospace", |_| Err(std::io::Error::from_raw_os_error(os::errno::ENOSPC)));
    os::write_all_at(&arena.file, offset, &[bytes])
}
