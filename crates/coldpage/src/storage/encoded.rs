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
//! pager owns, never in the caller's memory, and written from there. Reads fetch the
//! stored bytes as plain reads do (from the extent's read-only map under the SIGBUS
//! guard, or `pread`), then check and decode them into the caller's buffer; views are
//! decoded copies (the bytes on disk are not the handle's bytes).

use std::io::IoSliceMut;
use std::sync::Arc;

use crate::arena::{Arena, Extent};
use crate::crypt::{Key, Tag};
use crate::error::{try_zeroed, Error, Result};
use crate::integrity::{hash, BLOCK};
use crate::shared::Counters;
use crate::storage::extent::{write_chunks, write_extent, ExtentReader};

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
struct BlockPlace {
    at: u64,
    len: u32,
    lz4: bool,
}

/// Blocks `first..=last` of a read whose stored bytes lie contiguously at
/// `start..end` of the extent; `whole` when the read holds every one of them whole.
struct Run {
    first: u64,
    last: u64,
    start: u64,
    end: u64,
    whole: bool,
}

/// A block's integrity check.
enum Checks {
    /// AEAD tags, one per block, and the handle's first nonce.
    Tags { key: Arc<Key>, first_nonce: u64, tags: Vec<Tag> },
    /// xxh3-64 of each block's stored bytes.
    Sums(Vec<u64>),
}

pub(crate) struct EncodedStore {
    /// The extent, reading its stored bytes (`reader.len` of them).
    reader: ExtentReader,
    len: u64,
    /// The handle's id (part of every block's associated data).
    handle: u64,
    /// Per block, when compressed; `None`: block `i` is stored raw at `i * BLOCK`.
    blocks: Option<Vec<BlockPlace>>,
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
        // of `total` bytes holds them; the unused tail is given back below. A retry
        // after a full disk encodes again, with fresh nonces.
        let (mut extent, (blocks, checks, written)) =
            write_extent(arena, total, |extent| encode_into(extent, &chunks, total, handle, encoding))?;
        extent.shrink(written);
        Ok(EncodedStore { reader: ExtentReader::new(extent, written), len: total, handle, blocks, checks })
    }

    pub(crate) fn arena(&self) -> &Arc<Arena> {
        &self.reader.extent.arena
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
        self.reader.extent.offset
    }

    fn raw_len(&self, block: u64) -> usize {
        (((block + 1) * BLOCK).min(self.len) - block * BLOCK) as usize
    }

    fn stored(&self, block: u64) -> BlockPlace {
        match &self.blocks {
            Some(blocks) => blocks[block as usize],
            None => BlockPlace { at: block * BLOCK, len: self.raw_len(block) as u32, lz4: false },
        }
    }

    fn corrupt(&self, block: u64, counters: &Counters) -> Error {
        counters.checksum_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Error::Corrupt { handle: self.handle, block, arena: self.reader.extent.arena.id }
    }

    /// The stored bytes at `at` (in the extent): copied from its map, as plain reads
    /// do, or read with `pread`.
    fn fetch(&self, at: u64, buf: &mut [u8]) -> Result<()> {
        self.reader.fetch(self.reader.read_path(), at, &mut [IoSliceMut::new(buf)])
    }

    /// Fills `dst` from `offset` (the range is already checked against the handle).
    /// On a failed check `dst` is zeroed and the error is `Corrupt`.
    ///
    /// Decoding runs on the calling thread: splitting large reads over threads did
    /// not pay for the hand-off (the README's performance notes).
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

    /// Decodes `[offset, offset + dst.len())` into `dst`, fetching stored bytes into
    /// `fetched`; uncompressed blocks that `dst` holds whole are fetched and opened in
    /// `dst` itself.
    fn decode_range(
        &self,
        offset: u64,
        dst: &mut [u8],
        verify: bool,
        counters: &Counters,
        fetched: &mut Vec<u8>,
    ) -> Result<()> {
        let range = offset..offset + dst.len() as u64;
        let last = (range.end - 1) / BLOCK;
        let mut block = offset / BLOCK;
        while block <= last {
            let run = self.run_from(block, last, &range);
            if self.blocks.is_none() && run.whole {
                self.open_in_place(&run, offset, dst, verify, counters)?;
            } else {
                self.decode_run(&run, &range, dst, verify, counters, fetched)?;
            }
            block = run.last + 1;
        }
        Ok(())
    }

    /// Whether block `b` lies whole inside `range`.
    fn holds_whole(&self, b: u64, range: &std::ops::Range<u64>) -> bool {
        b * BLOCK >= range.start && b * BLOCK + self.raw_len(b) as u64 <= range.end
    }

    /// The run of blocks from `first` (up to `last`) whose stored bytes are contiguous,
    /// up to [`READ_PIECE`] of them; a block `range` holds in part is a run of its own.
    fn run_from(&self, first: u64, last: u64, range: &std::ops::Range<u64>) -> Run {
        let start = self.stored(first).at;
        let mut run = Run { first, last: first, start, end: start + u64::from(self.stored(first).len), whole: false };
        run.whole = self.holds_whole(first, range);
        if run.whole {
            while run.last < last && self.holds_whole(run.last + 1, range) && run.end - start < READ_PIECE {
                run.end += u64::from(self.stored(run.last + 1).len);
                run.last += 1;
            }
        }
        run
    }

    /// Blocks stored raw at their own offsets: fetched straight into `dst` (which
    /// starts at `offset` of the handle) and opened there.
    fn open_in_place(&self, run: &Run, offset: u64, dst: &mut [u8], verify: bool, counters: &Counters) -> Result<()> {
        let at = (run.first * BLOCK - offset) as usize;
        let part = &mut dst[at..at + (run.end - run.start) as usize];
        self.fetch(run.start, part)?;
        for (b, bytes) in (run.first..=run.last).zip(part.chunks_mut(BLOCK as usize)) {
            if !self.check(b, bytes, false, verify) {
                return Err(self.corrupt(b, counters));
            }
        }
        Ok(())
    }

    /// Fetches a run's stored bytes into `fetched`, then checks and decodes each block:
    /// a block `dst` holds whole straight into it, a partial one through a block
    /// buffer.
    fn decode_run(
        &self,
        run: &Run,
        range: &std::ops::Range<u64>,
        dst: &mut [u8],
        verify: bool,
        counters: &Counters,
        fetched: &mut Vec<u8>,
    ) -> Result<()> {
        let mut edge = [0u8; BLOCK as usize];
        let span = (run.end - run.start) as usize;
        if fetched.len() < span {
            fetched.try_reserve(span - fetched.len()).map_err(|_| Error::no_memory(span as u64))?;
            fetched.resize(span, 0);
        }
        self.fetch(run.start, &mut fetched[..span])?;
        for b in run.first..=run.last {
            let s = self.stored(b);
            let from = (s.at - run.start) as usize;
            let bytes = &mut fetched[from..from + s.len as usize];
            if !self.check(b, bytes, s.lz4, verify) {
                return Err(self.corrupt(b, counters));
            }
            // The block's part of the read: whole blocks decode straight into `dst`.
            let raw_len = self.raw_len(b);
            let block_start = b * BLOCK;
            let lo = range.start.max(block_start);
            let hi = range.end.min(block_start + raw_len as u64);
            let at_dst = (lo - range.start) as usize;
            let whole = self.holds_whole(b, range);
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
        Ok(())
    }

    /// Checks block `b`'s stored `bytes` (and decrypts them in place when encrypted).
    fn check(&self, b: u64, bytes: &mut [u8], lz4: bool, verify: bool) -> bool {
        match &self.checks {
            Checks::Tags { key, first_nonce, tags } => {
                let aad = aad(self.handle, b, self.raw_len(b), bytes.len(), lz4);
                key.open(first_nonce + b, &aad, bytes, &tags[b as usize])
            }
            Checks::Sums(sums) => !verify || hash(bytes) == sums[b as usize],
        }
    }

    /// Hints the kernel to read the stored bytes of `[offset, offset + len)` ahead.
    pub(crate) fn prefetch(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let (first, last) = (self.stored(offset / BLOCK), self.stored((offset + len - 1) / BLOCK));
        self.reader.prefetch(first.at, last.at + u64::from(last.len) - first.at);
    }
}

/// Raw bytes encoded, then written, at a time (whole blocks).
const PIECE: u64 = 1 << 20;
const _: () = assert!(PIECE.is_multiple_of(BLOCK), "pieces hold whole blocks");

/// The concatenation of a pageout's chunks (none empty), by byte offset.
struct Input<'a> {
    chunks: &'a [&'a [u8]],
    starts: Vec<u64>,
}

impl<'a> Input<'a> {
    fn new(chunks: &'a [&'a [u8]]) -> Input<'a> {
        let mut at = 0u64;
        let starts = chunks
            .iter()
            .map(|c| {
                let start = at;
                at += c.len() as u64;
                start
            })
            .collect();
        Input { chunks, starts }
    }

    /// The `out.len()` bytes at `at`: a slice of one chunk where they lie in one, else
    /// gathered into `out`.
    fn bytes<'s>(&'s self, at: u64, out: &'s mut [u8]) -> &'s [u8] {
        let mut i = self.starts.partition_point(|&s| s <= at) - 1;
        let mut from = (at - self.starts[i]) as usize;
        if from + out.len() <= self.chunks[i].len() {
            return &self.chunks[i][from..from + out.len()];
        }
        let mut got = 0;
        while got < out.len() {
            let chunk = self.chunks[i];
            let take = (out.len() - got).min(chunk.len() - from);
            out[got..got + take].copy_from_slice(&chunk[from..from + take]);
            (got, i, from) = (got + take, i + 1, 0);
        }
        out
    }
}

/// What encoding one piece gives: its stored bytes (`used` of `bytes`), and per block
/// its place (relative to the piece) and check.
struct Piece {
    bytes: Vec<u8>,
    used: usize,
    blocks: Vec<BlockPlace>,
    tags: Vec<Tag>,
    sums: Vec<u64>,
}

/// What every piece of one pageout shares.
struct Job<'a> {
    input: Input<'a>,
    total: u64,
    handle: u64,
    lz4: bool,
    /// The key and the handle's first nonce, when encrypting.
    seal: Option<(&'a Key, u64)>,
}

impl Job<'_> {
    /// Encodes the blocks of raw piece `piece` into `bytes` (long enough for the
    /// piece's worst case).
    fn encode(&self, piece: u64, mut bytes: Vec<u8>) -> Piece {
        let max_stored = lz4_flex::block::get_maximum_output_size(BLOCK as usize);
        let first = piece * PIECE / BLOCK;
        let end = ((piece + 1) * PIECE).min(self.total).div_ceil(BLOCK);
        let n = (end - first) as usize;
        let mut out = Piece {
            bytes: Vec::new(),
            used: 0,
            blocks: Vec::with_capacity(if self.lz4 { n } else { 0 }),
            tags: Vec::with_capacity(if self.seal.is_some() { n } else { 0 }),
            sums: Vec::with_capacity(if self.seal.is_some() { 0 } else { n }),
        };
        let mut gathered = [0u8; BLOCK as usize];
        let mut pos = 0usize;
        for block in first..end {
            let raw_len = (((block + 1) * BLOCK).min(self.total) - block * BLOCK) as usize;
            let raw = self.input.bytes(block * BLOCK, &mut gathered[..raw_len]);
            let dst = &mut bytes[pos..pos + max_stored];
            let compressed =
                if self.lz4 { lz4_flex::block::compress_into(raw, dst).ok().filter(|&n| n < raw_len) } else { None };
            let stored_len = compressed.unwrap_or_else(|| {
                dst[..raw_len].copy_from_slice(raw);
                raw_len
            });
            let lz4 = compressed.is_some();
            let stored = &mut dst[..stored_len];
            match self.seal {
                Some((key, first_nonce)) => {
                    let aad = aad(self.handle, block, raw_len, stored_len, lz4);
                    out.tags.push(key.seal(first_nonce + block, &aad, stored));
                }
                None => out.sums.push(hash(stored)),
            }
            if self.lz4 {
                out.blocks.push(BlockPlace { at: pos as u64, len: stored_len as u32, lz4 });
            }
            pos += stored_len;
        }
        out.bytes = bytes;
        out.used = pos;
        out
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
) -> Result<(Option<Vec<BlockPlace>>, Checks, u64)> {
    let count = total.div_ceil(BLOCK);
    let count_usize = usize::try_from(count).map_err(|_| Error::no_memory(total))?;
    let mut blocks = Vec::new();
    let mut tags = Vec::new();
    let mut sums = Vec::new();
    if encoding.lz4 {
        blocks.try_reserve_exact(count_usize).map_err(|_| Error::no_memory(count * 16))?;
    }
    let first_nonce = match &encoding.key {
        Some(key) => {
            tags.try_reserve_exact(count_usize).map_err(|_| Error::no_memory(count * 16))?;
            key.nonces(count)?
        }
        None => {
            sums.try_reserve_exact(count_usize).map_err(|_| Error::no_memory(count * 8))?;
            0
        }
    };
    let job = Job {
        input: Input::new(chunks),
        total,
        handle,
        lz4: encoding.lz4,
        seal: encoding.key.as_deref().map(|key| (key, first_nonce)),
    };
    // One piece at a time, encoded and then written from one reused buffer: encoding
    // on other threads while this one writes did not pay for the hand-off (the
    // README's performance notes).
    let mut buf = try_zeroed(PIECE.min(total) as usize + lz4_flex::block::get_maximum_output_size(BLOCK as usize))?;
    let mut written = 0u64;
    for piece in 0..total.div_ceil(PIECE) {
        let encoded = job.encode(piece, buf);
        let arena = &extent.arena;
        write_chunks(arena, extent.offset + written, &[&encoded.bytes[..encoded.used]])
            .map_err(|e| Error::io_at("pwrite", Some(arena.dir.path.clone()), e))?;
        blocks.extend(encoded.blocks.iter().map(|b| BlockPlace { at: b.at + written, ..*b }));
        tags.extend_from_slice(&encoded.tags);
        sums.extend_from_slice(&encoded.sums);
        written += encoded.used as u64;
        buf = encoded.bytes;
    }
    let checks = match &encoding.key {
        Some(key) => Checks::Tags { key: Arc::clone(key), first_nonce, tags },
        None => Checks::Sums(sums),
    };
    Ok((encoding.lz4.then_some(blocks), checks, written))
}
