//! Copies that stay fast whatever the alignment of the caller's buffer.
//!
//! The pager's sources are page-aligned (the extent's map, a swap region) and the
//! caller's buffers usually are not: glibc hands out large blocks at 16 bytes past a
//! page boundary. On x86 CPUs such as AMD EPYC, `rep movsb`, which memcpy uses for
//! copies of a few KiB and up, slows down sharply when the destination sits a
//! few bytes past the source modulo 4 KiB (4K aliasing between its loads and stores;
//! the kernel's `pread` copy has the same trap). Those copies go through a plain
//! 64-byte vector loop instead, which is not sensitive to it. It lives in the
//! platform layer because the guarded copy out of a file map (`unix_mapped.rs`)
//! uses it too.

/// Where `rep movsb` slows down: destination minus source, modulo 4 KiB.
const ALIASED: std::ops::Range<usize> = 1..64;

/// `dst.copy_from_slice(src)` (same lengths), avoiding memcpy where the two alias.
#[inline]
pub fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    let distance = (dst.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize) & 4095;
    if src.len() < 256 || !ALIASED.contains(&distance) {
        dst.copy_from_slice(src);
        return;
    }
    let mut to = dst.chunks_exact_mut(64);
    let mut from = src.chunks_exact(64);
    for (d, s) in (&mut to).zip(&mut from) {
        let d: &mut [u8; 64] = d.try_into().expect("64-byte chunk");
        let s: &[u8; 64] = s.try_into().expect("64-byte chunk");
        *d = *s;
    }
    to.into_remainder().copy_from_slice(from.remainder());
}

#[cfg(test)]
mod tests {
    use super::copy_bytes;

    #[test]
    fn copies_exactly_at_every_alignment_and_length() {
        let src: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut dst = vec![0u8; 20_100];
        for shift in [0, 1, 15, 16, 31, 63, 64, 100] {
            for len in [0, 1, 63, 64, 255, 256, 4096, 4097, 19_000] {
                dst.fill(0);
                copy_bytes(&mut dst[shift..shift + len], &src[..len]);
                assert_eq!(&dst[shift..shift + len], &src[..len], "shift {shift} len {len}");
                assert!(dst[..shift].iter().all(|&b| b == 0) && dst[shift + len..].iter().all(|&b| b == 0));
            }
        }
    }
}
