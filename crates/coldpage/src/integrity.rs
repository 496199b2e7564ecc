//! Block checksums (xxh3-64) over file-backed bytes.
//!
//! A handle's logical bytes are cut into [`BLOCK`]-byte blocks (the last may be short);
//! each block's checksum is kept in the handle's memory. A read of part of a block
//! verifies the whole block.
//!
//! The hash is twox-hash's XXH3-64, which picks AVX2/NEON at run time, where
//! xxhash-rust in a portable build is limited to SSE2 (the README's performance
//! tables have the comparison).

use std::hash::Hasher;

use twox_hash::XxHash3_64;

/// The checksum of one block.
#[inline]
pub fn hash(block: &[u8]) -> u64 {
    XxHash3_64::oneshot(block)
}

/// Bytes per checksummed block. Small enough that a 4 KiB read verifies 4 KiB, large
/// enough that the checksum table is 0.2% of the data.
pub const BLOCK: u64 = 4096;

/// Checksums of the concatenation of `chunks`, one per block.
#[cfg(test)]
pub fn checksum_chunks(chunks: &[&[u8]], total: u64) -> Vec<u64> {
    let mut sums = Vec::with_capacity(total.div_ceil(BLOCK) as usize);
    checksum_chunks_into(chunks, total, &mut sums);
    sums
}

/// The checksums of the concatenation of `chunks` (`total` bytes), one per block,
/// appended to `sums`.
pub fn checksum_chunks_into(chunks: &[&[u8]], total: u64, sums: &mut Vec<u64>) {
    let first = sums.len();
    let blocks = total.div_ceil(BLOCK) as usize;
    let mut hasher: Option<XxHash3_64> = None;
    let mut filled = 0usize; // bytes of the current block seen so far
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        let mut rest: &[u8] = chunk;
        while !rest.is_empty() {
            let want = BLOCK as usize - filled;
            if filled == 0 && rest.len() >= want {
                // A whole block inside one chunk: the one-shot hash is fastest.
                sums.push(hash(&rest[..want]));
                rest = &rest[want..];
                continue;
            }
            let take = want.min(rest.len());
            hasher.get_or_insert_with(XxHash3_64::new).write(&rest[..take]);
            filled += take;
            rest = &rest[take..];
            if filled == BLOCK as usize {
                sums.push(hasher.take().expect("hasher started").finish());
                filled = 0;
            }
        }
    }
    if let Some(h) = hasher {
        sums.push(h.finish());
    }
    debug_assert_eq!(sums.len() - first, blocks);
}

/// The index of the first block of `bytes` (which start at block `first`) whose
/// checksum differs from `sums`.
pub fn first_mismatch(bytes: &[u8], first: u64, sums: &[u64]) -> Option<u64> {
    bytes
        .chunks(BLOCK as usize)
        .zip(first..)
        .find(|(block, index)| hash(block) != sums[*index as usize])
        .map(|(_, index)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_does_not_change_checksums() {
        let data: Vec<u8> = (0..3 * BLOCK as usize + 123).map(|i| (i * 7 % 251) as u8).collect();
        let whole = checksum_chunks(&[&data], data.len() as u64);
        assert_eq!(whole.len(), 4);
        for cut in [0, 1, 4095, 4096, 4097, 10_000, data.len()] {
            let (a, b) = data.split_at(cut);
            assert_eq!(checksum_chunks(&[a, &[], b], data.len() as u64), whole, "cut at {cut}");
        }
        let pieces: Vec<&[u8]> = data.chunks(1000).collect();
        assert_eq!(checksum_chunks(&pieces, data.len() as u64), whole);
        assert_eq!(first_mismatch(&data, 0, &whole), None);
        let mut bad = data.clone();
        bad[2 * BLOCK as usize + 5] ^= 1;
        assert_eq!(first_mismatch(&bad, 0, &whole), Some(2));
        assert_eq!(first_mismatch(&bad[BLOCK as usize..], 1, &whole), Some(2));
    }

    #[test]
    fn empty_input_has_no_blocks() {
        assert!(checksum_chunks(&[], 0).is_empty());
        assert!(checksum_chunks(&[&[]], 0).is_empty());
    }
}
