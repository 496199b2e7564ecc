//! `encrypt` and `compress`: round trips of every read form, no plaintext on disk,
//! tampering (a flipped byte, swapped blocks, a replayed old block) is `Corrupt`, and
//! nonces never repeat across pageout / dispose / reuse sequences.

mod common;

use coldpage::{Backend, Compression, Handle, Pager, CHECKSUM_BLOCK};
use common::{pager_with, pattern};
use proptest::prelude::*;

const B: usize = CHECKSUM_BLOCK as usize;

/// The three encoded configurations.
fn encodings() -> [(bool, Compression); 3] {
    [(true, Compression::None), (false, Compression::Lz4), (true, Compression::Lz4)]
}

fn encoded_pager(encrypt: bool, compress: Compression) -> (Pager, tempfile::TempDir) {
    pager_with(|c| {
        c.encrypt = encrypt;
        c.compress = compress;
    })
}

/// Float columns, text and random bytes: what the benchmarks page out too.
fn inputs(len: usize, seed: u64) -> [(&'static str, Vec<u8>); 3] {
    let floats: Vec<u8> = (0..len.div_ceil(8)).flat_map(|i| (100.0 + (i % 977) as f64 * 0.25).to_le_bytes()).collect();
    let words = ["price ", "volume ", "close ", "the ", "market "];
    let mut next = common::rng(seed | 1);
    let mut text = Vec::with_capacity(len + 8);
    while text.len() < len {
        text.extend_from_slice(words[next() as usize % words.len()].as_bytes());
    }
    [("floats", floats[..len].to_vec()), ("text", text[..len].to_vec()), ("random", pattern(len, seed))]
}

/// Every read form returns `data`'s bytes.
fn check_reads(h: &Handle, data: &[u8]) {
    let n = data.len() as u64;
    let cuts = [0, 1, B as u64 - 1, B as u64, B as u64 + 1, n / 2, n.saturating_sub(1), n];
    for &a in &cuts {
        for &b in &cuts {
            if a <= b && b <= n {
                let want = &data[a as usize..b as usize];
                assert_eq!(h.read_at(a, b - a).unwrap(), want, "read_at [{a}, {b})");
                let mut buf = vec![0xEE; want.len()];
                h.read_into(a, &mut buf).unwrap();
                assert_eq!(buf, want, "read_into [{a}, {b})");
                let view = h.view(a, b - a).unwrap();
                assert_eq!(&*view, want, "view [{a}, {b})");
                assert!(view.is_empty() || view.is_copy(), "views of encoded handles are decoded copies");
            }
        }
    }
    let ranges: Vec<(u64, u64)> = cuts.iter().filter(|&&c| c < n).map(|&c| (c, (n - c).min(3 * B as u64))).collect();
    let many = h.read_at_many(&ranges).unwrap();
    let mut into = vec![0u8; ranges.iter().map(|r| r.1 as usize).sum()];
    h.read_at_many_into(&ranges, &mut into).unwrap();
    let mut at = 0;
    for (i, &(o, l)) in ranges.iter().enumerate() {
        assert_eq!(many[i], &data[o as usize..(o + l) as usize], "read_at_many range {i}");
        assert_eq!(&into[at..at + l as usize], &data[o as usize..(o + l) as usize], "read_at_many_into range {i}");
        at += l as usize;
    }
}

#[test]
fn every_read_form_round_trips_with_each_option() {
    for (encrypt, compress) in encodings() {
        let (pager, _dir) = encoded_pager(encrypt, compress);
        for len in [1, B - 1, B, B + 1, 10 * B + 300, (300 << 10) + 13] {
            for (kind, data) in inputs(len, len as u64) {
                let what = format!("encrypt {encrypt}, {compress:?}, {kind}, {len} bytes");
                // Cut into chunks whose edges are not block edges.
                let (a, rest) = data.split_at(len / 3);
                let (b, c) = rest.split_at(rest.len() / 2);
                let h = pager.pageout_to(Backend::File, &[a, &[], b, c]).unwrap();
                assert!(h.is_encoded(), "{what}");
                check_reads(&h, &data);
                let taken = h.take().unwrap();
                assert_eq!(&*taken, &data[..], "take, {what}");
            }
        }
        assert_eq!(pager.stats().file.handles, 0);
        assert_eq!(pager.stats().checksum_failures, 0);
    }
}

#[test]
fn large_pageouts_round_trip_across_pieces_and_read_runs() {
    // Pageouts are encoded in 1 MiB pieces and reads fetch runs of up to 256 KiB.
    let len = (9 << 20) + 13;
    for (encrypt, compress) in encodings() {
        let (pager, _dir) = encoded_pager(encrypt, compress);
        for (kind, data) in inputs(len, 77) {
            let what = format!("encrypt {encrypt}, {compress:?}, {kind}");
            let cuts = [0, 1 << 20, (1 << 20) + 7, 5 << 20, len];
            let parts: Vec<&[u8]> = cuts.windows(2).map(|w| &data[w[0]..w[1]]).collect();
            let h = pager.pageout_to(Backend::File, &parts).unwrap();
            assert_eq!(h.read_at(0, len as u64).unwrap(), data, "{what}");
            for (o, l) in [(1, len - 2), (4095, 5 << 20), ((3 << 20) + 5, (4 << 20) + 9)] {
                assert_eq!(h.read_at(o as u64, l as u64).unwrap(), &data[o..o + l], "[{o}, +{l}) {what}");
            }
            assert_eq!(&*h.take().unwrap(), &data[..], "{what}");
        }
    }
}

#[test]
fn reads_and_views_count_once_in_stats() {
    let (pager, _dir) = encoded_pager(true, Compression::Lz4);
    let h = pager.pageout_to(Backend::File, &[&pattern(3 * B, 4)]).unwrap();
    let before = pager.stats();
    drop(h.view(10, 100).unwrap());
    h.read_at(0, 50).unwrap();
    let after = pager.stats();
    assert_eq!((after.reads - before.reads, after.bytes_read - before.bytes_read), (2, 150));
}

#[test]
fn compression_stores_fewer_bytes_and_keeps_incompressible_blocks_raw() {
    let (pager, _dir) = encoded_pager(false, Compression::Lz4);
    let [(_, floats), (_, text), (_, random)] = inputs(64 * B, 5);
    let f = pager.pageout_to(Backend::File, &[&floats]).unwrap();
    let t = pager.pageout_to(Backend::File, &[&text]).unwrap();
    let r = pager.pageout_to(Backend::File, &[&random]).unwrap();
    assert!(f.stored_len().unwrap() < f.len() * 3 / 4, "floats: {:?} of {}", f.stored_len(), f.len());
    assert!(t.stored_len().unwrap() < t.len() * 3 / 4, "text: {:?} of {}", t.stored_len(), t.len());
    assert_eq!(r.stored_len(), Some(r.len()), "random blocks do not shrink: stored raw");
    // The extents were shrunk to what the blocks occupy: the quota sees the saving.
    let page = 4096u64;
    let expected: u64 = [&f, &t, &r].iter().map(|h| h.stored_len().unwrap().next_multiple_of(page)).sum();
    assert!(pager.stats().scratch_bytes_allocated <= expected + 3 * page, "{:?}", pager.stats());
}

#[test]
fn options_apply_to_new_pageouts_only_and_never_to_swap() {
    let (pager, _dir) = pager_with(|_| {});
    let data = pattern(5 * B, 3);
    let plain = pager.pageout_to(Backend::File, &[&data]).unwrap();
    pager.update(|c| c.encrypt = true).unwrap();
    let sealed = pager.pageout_to(Backend::File, &[&data]).unwrap();
    pager.update(|c| (c.encrypt, c.compress) = (false, Compression::Lz4)).unwrap();
    let packed = pager.pageout_to(Backend::File, &[&data]).unwrap();
    pager.update(|c| (c.encrypt, c.compress) = (false, Compression::None)).unwrap();
    assert!(!plain.is_encoded() && sealed.is_encoded() && packed.is_encoded());
    assert!(sealed.nonces().is_some() && packed.nonces().is_none());
    for h in [&plain, &sealed, &packed] {
        assert_eq!(h.read_at(0, data.len() as u64).unwrap(), data, "{h:?}");
    }
    #[cfg(target_os = "linux")]
    {
        pager.update(|c| (c.encrypt, c.compress) = (true, Compression::Lz4)).unwrap();
        let swap = pager.pageout_to(Backend::Swap, &[&data]).unwrap();
        assert!(!swap.is_encoded(), "swap handles are not affected");
        assert_eq!(swap.read_at(0, data.len() as u64).unwrap(), data);
    }
}

#[test]
fn the_key_is_made_by_the_first_encrypted_pageout() {
    let (pager, _dir) = encoded_pager(false, Compression::Lz4);
    let before = pager.encryption();
    assert!(before.aead.starts_with("AES-256-GCM") || before.aead.starts_with("ChaCha20-Poly1305"), "{before:?}");
    assert!(!before.key_made);
    drop(pager.pageout_to(Backend::File, &[&pattern(B, 1)]).unwrap());
    assert!(!pager.encryption().key_made, "compression alone needs no key");
    pager.update(|c| c.encrypt = true).unwrap();
    drop(pager.pageout_to(Backend::File, &[&pattern(B, 1)]).unwrap());
    let after = pager.encryption();
    assert!(after.key_made && after.aead == before.aead, "{after:?}");
    // Locking may be refused (RLIMIT_MEMLOCK); the reason is then reported.
    eprintln!("key page lock: {:?}", after.key_lock_error);
}

#[test]
fn nonces_of_a_pager_never_repeat_and_its_key_differs_from_anothers() {
    let (a, _da) = encoded_pager(true, Compression::None);
    let (b, _db) = encoded_pager(true, Compression::None);
    let data = pattern(4 * B, 9);
    let ha = a.pageout_to(Backend::File, &[&data]).unwrap();
    let hb = b.pageout_to(Backend::File, &[&data]).unwrap();
    // Same bytes, same nonces (both keys are fresh), different keys: both read back.
    assert_eq!(ha.nonces(), hb.nonces());
    assert_eq!(ha.read_at(0, data.len() as u64).unwrap(), hb.read_at(0, data.len() as u64).unwrap());
    let second = a.pageout_to(Backend::File, &[&data]).unwrap();
    assert_eq!(second.nonces().unwrap().start, ha.nonces().unwrap().end, "the counter only grows");
}

#[derive(Debug, Clone)]
enum Op {
    /// Page out this many bytes with (encrypt, lz4).
    Pageout(usize, bool, bool),
    /// Drop the live handle at this index (mod the live count).
    Drop(usize),
    /// A read of the handle at this index, whose bytes must come back.
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..6 * B, any::<bool>(), any::<bool>()).prop_map(|(n, e, z)| Op::Pageout(n, e, z)),
        3 => any::<usize>().prop_map(Op::Drop),
        1 => any::<usize>().prop_map(Op::Read),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Over pageouts, drops (extents recycled into later pageouts) and config flips,
    /// no nonce value is ever used twice under one pager, and every live handle reads
    /// back its bytes.
    #[test]
    fn nonces_never_repeat_across_pageout_dispose_and_reuse(ops in proptest::collection::vec(op(), 1..40)) {
        let (pager, _dir) = pager_with(|_| {});
        let mut live: Vec<(Handle, Vec<u8>)> = Vec::new();
        let mut used: Vec<std::ops::Range<u64>> = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Pageout(n, encrypt, lz4) => {
                    let compress = if lz4 { Compression::Lz4 } else { Compression::None };
                    pager.update(|c| (c.encrypt, c.compress) = (encrypt, compress)).unwrap();
                    let data = pattern(n, i as u64 + 1);
                    let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
                    if let Some(range) = h.nonces() {
                        prop_assert_eq!(range.end - range.start, n.div_ceil(B) as u64);
                        for old in &used {
                            prop_assert!(range.end <= old.start || old.end <= range.start, "{:?} overlaps {:?}", range, old);
                        }
                        used.push(range);
                    }
                    live.push((h, data));
                }
                Op::Drop(k) if !live.is_empty() => {
                    let k = k % live.len();
                    live.swap_remove(k);
                }
                Op::Read(k) if !live.is_empty() => {
                    let (h, data) = &live[k % live.len()];
                    prop_assert_eq!(&h.read_at(0, data.len() as u64).unwrap(), data);
                }
                _ => {}
            }
        }
        for (h, data) in &live {
            prop_assert_eq!(&h.read_at(0, data.len() as u64).unwrap(), data);
        }
    }
}

/// Scratch-file tampering through `/proc/self/fd` (Linux; on Windows the arena is
/// opened without sharing, so no one can open it a second time).
#[cfg(target_os = "linux")]
mod on_disk {
    use std::os::unix::fs::FileExt;

    use super::*;
    use common::arena_fd_path;

    fn arena(dir: &std::path::Path) -> std::fs::File {
        std::fs::OpenOptions::new().read(true).write(true).open(arena_fd_path(dir)).unwrap()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn no_scratch_byte_holds_plaintext() {
        let marker = b"coldpage-marker!";
        let data: Vec<u8> = marker.iter().copied().cycle().take(40 * B + 100).collect();
        let [(_, floats), (_, text), (_, random)] = inputs(8 * B, 2);
        for (encrypt, compress) in [(false, Compression::None), (true, Compression::None), (true, Compression::Lz4)] {
            let (pager, dir) = encoded_pager(encrypt, compress);
            let hs: Vec<Handle> = [&data, &floats, &text, &random]
                .iter()
                .map(|d| pager.pageout_to(Backend::File, &[d]).unwrap())
                .collect();
            let mut disk = Vec::new();
            std::io::Read::read_to_end(&mut arena(dir.path()), &mut disk).unwrap();
            let stored: u64 = hs.iter().map(|h| h.stored_len().unwrap()).sum();
            assert!(disk.len() as u64 >= stored, "the scan covers every stored byte");
            if encrypt {
                assert!(!contains(&disk, marker), "plaintext marker found with {compress:?}");
                for d in [&floats, &text, &random] {
                    assert!(!contains(&disk, &d[B..B + 32]), "plaintext found with {compress:?}");
                }
            } else {
                // The control: the scan finds plaintext where there is some.
                assert!(contains(&disk, marker) && contains(&disk, &random[B..B + 32]));
            }
            assert_eq!(hs[0].read_at(0, data.len() as u64).unwrap(), data);
        }
    }

    #[test]
    fn a_flipped_byte_is_corrupt_for_every_read_form() {
        for (encrypt, compress) in encodings() {
            let (pager, dir) = encoded_pager(encrypt, compress);
            // The large ones span several pieces and read runs.
            let [(_, floats), _, (_, random)] = inputs(6 * B + 77, 4);
            let [(_, big_floats), _, (_, big_random)] = inputs((5 << 20) + 77, 4);
            for data in [&floats, &random, &big_floats, &big_random] {
                let h = pager.pageout_to(Backend::File, &[data]).unwrap();
                let file = arena(dir.path());
                // A byte in the middle of the stored bytes: some block holds it.
                let at = h.scratch_offset().unwrap() + h.stored_len().unwrap() / 2;
                let mut byte = [0u8];
                file.read_exact_at(&mut byte, at).unwrap();
                file.write_all_at(&[byte[0] ^ 0x5A], at).unwrap();
                let n = data.len() as u64;
                let what = format!("encrypt {encrypt}, {compress:?}");
                assert_eq!(h.read_at(0, n).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT", "{what}");
                let mut buf = vec![0xEE; n as usize];
                assert_eq!(h.read_into(0, &mut buf).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
                assert!(buf.iter().all(|&b| b == 0), "a failed read leaves no bytes behind ({what})");
                assert_eq!(h.view(0, n).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
                assert_eq!(h.read_at_many(&[(0, 1), (0, n)]).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
                let failed = h.take().unwrap_err();
                assert_eq!(failed.error.code(), "ERR_COLDPAGE_CORRUPT");
                // Blocks other than the flipped one still read (the first and the last).
                assert_eq!(failed.handle.read_at(0, 10).unwrap(), &data[..10], "{what}");
                assert_eq!(failed.handle.read_at(n - 10, 10).unwrap(), &data[n as usize - 10..], "{what}");
            }
            assert!(pager.stats().checksum_failures >= 10);
        }
    }

    #[test]
    fn swapped_blocks_are_corrupt() {
        for compress in [Compression::None, Compression::Lz4] {
            let (pager, dir) = encoded_pager(true, compress);
            // Random bytes: stored raw even with lz4, so block i sits at i * B.
            let data = pattern(4 * B, 6);
            let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
            assert_eq!(h.stored_len(), Some(4 * B as u64));
            let (file, base) = (arena(dir.path()), h.scratch_offset().unwrap());
            let (mut one, mut two) = (vec![0u8; B], vec![0u8; B]);
            file.read_exact_at(&mut one, base + B as u64).unwrap();
            file.read_exact_at(&mut two, base + 2 * B as u64).unwrap();
            file.write_all_at(&two, base + B as u64).unwrap();
            file.write_all_at(&one, base + 2 * B as u64).unwrap();
            for block in [1u64, 2] {
                let err = h.read_at(block * B as u64, 1).unwrap_err();
                assert_eq!(err.code(), "ERR_COLDPAGE_CORRUPT", "{compress:?}");
                assert!(err.to_string().contains(&format!("block {block}")), "{err}");
            }
            assert_eq!(h.read_at(0, B as u64).unwrap(), &data[..B]);
            assert_eq!(h.read_at(3 * B as u64, B as u64).unwrap(), &data[3 * B..]);
        }
    }

    #[test]
    fn a_replayed_old_block_is_corrupt() {
        let (pager, dir) = encoded_pager(true, Compression::None);
        // Keeps the arena live, so that a freed extent is recycled, not punched.
        let _keep = pager.pageout_to(Backend::File, &[&pattern(B, 1)]).unwrap();
        let old = pager.pageout_to(Backend::File, &[&pattern(3 * B, 2)]).unwrap();
        let base = old.scratch_offset().unwrap();
        let file = arena(dir.path());
        let mut old_bytes = vec![0u8; 3 * B];
        file.read_exact_at(&mut old_bytes, base).unwrap();
        drop(old);
        let data = pattern(3 * B, 3);
        let new = pager.pageout_to(Backend::File, &[&data]).unwrap();
        assert_eq!(new.scratch_offset(), Some(base), "the freed extent is reused");
        // The old handle's blocks written back where the new one's are.
        file.write_all_at(&old_bytes[B..2 * B], base + B as u64).unwrap();
        assert_eq!(new.read_at(B as u64, 10).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
        assert_eq!(new.read_at(0, B as u64).unwrap(), &data[..B]);
        // Even at the same block index of a handle with the same bytes: new nonces.
        drop(new);
        let again = pager.pageout_to(Backend::File, &[&data]).unwrap();
        assert_eq!(again.scratch_offset(), Some(base));
        let mut fresh = vec![0u8; 3 * B];
        file.read_exact_at(&mut fresh, base).unwrap();
        assert_ne!(&fresh[..B], &old_bytes[..B]);
        file.write_all_at(&old_bytes[..B], base).unwrap();
        assert_eq!(again.read_at(0, 1).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
    }

    #[test]
    fn lz4_only_checks_its_blocks_while_verify_is_on() {
        let (pager, dir) = encoded_pager(false, Compression::Lz4);
        let [(_, floats), _, _] = inputs(4 * B, 8);
        let h = pager.pageout_to(Backend::File, &[&floats]).unwrap();
        let file = arena(dir.path());
        let at = h.scratch_offset().unwrap() + 3;
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[byte[0] ^ 0x01], at).unwrap();
        let err = h.read_at(0, 10).unwrap_err();
        assert_eq!(err.code(), "ERR_COLDPAGE_CORRUPT");
        assert!(err.to_string().contains("block 0"), "{err}");
        pager.update(|c| c.verify = false).unwrap();
        // Unchecked: a corrupt LZ4 stream is still an error or other bytes, never a crash.
        let _ = h.read_at(0, 10);
    }
}
