//! A byte flipped in a live extent is reported as `Corrupt`, never returned.
//!
//! Linux only: the flips go through `/proc/self/fd`. (On Windows the arena is opened
//! without sharing, so no one, this test included, can open it a second time.)
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::FileExt;

use coldpage::{Backend, CHECKSUM_BLOCK};
use common::{arena_fd_path, pager, pattern};

fn flip(scratch: &std::path::Path, at: u64) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(arena_fd_path(scratch)).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x5A], at).unwrap();
}

#[test]
fn a_flipped_byte_fails_every_read_of_its_block_and_only_those() {
    let (pager, dir) = pager();
    let data = pattern(10 * CHECKSUM_BLOCK as usize + 300, 11);
    // The first handle of a fresh arena starts at offset 0.
    let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let bad_block = 3u64;
    flip(dir.path(), bad_block * CHECKSUM_BLOCK + 1234);
    let b = CHECKSUM_BLOCK;

    let touching: [(u64, u64); 5] = [
        (bad_block * b, 1),
        (bad_block * b + 4000, 200),
        (0, data.len() as u64),
        (2 * b + 5, b),
        (bad_block * b + b - 1, 1),
    ];
    for (off, len) in touching {
        let err = h.read_at(off, len).unwrap_err();
        assert_eq!(err.code(), "ERR_COLDPAGE_CORRUPT", "[{off}, +{len})");
        assert!(err.to_string().contains("block 3"), "{err}");
        let mut buf = vec![0xEE; len as usize];
        assert_eq!(h.read_into(off, &mut buf).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
        assert!(buf.iter().all(|&x| x == 0), "a failed read_into leaves no flipped bytes behind");
        assert_eq!(h.view(off, len).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
        assert_eq!(h.read_at_many(&[(0, 1), (off, len)]).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
        let mut all = vec![0xEE; 1 + len as usize];
        assert_eq!(h.read_at_many_into(&[(0, 1), (off, len)], &mut all).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
        assert!(all.iter().all(|&x| x == 0), "a failed read_at_many_into leaves no flipped bytes behind");
    }
    // Blocks around it are fine.
    for (off, len) in [(0, 3 * b), (4 * b, 6 * b), (2 * b + 10, b - 10)] {
        assert_eq!(h.read_at(off, len).unwrap(), &data[off as usize..(off + len) as usize]);
    }
    let s = pager.stats();
    assert!(s.checksum_failures >= 20 && s.errors >= 20, "{s:?}");
    let failed = h.take().unwrap_err();
    assert_eq!(failed.error.code(), "ERR_COLDPAGE_CORRUPT");
    assert_eq!(pager.stats().file.handles, 1, "a failed take gives the handle back");
    assert_eq!(failed.handle.read_at(0, 3 * b).unwrap(), &data[..3 * b as usize], "live and readable");
    drop(failed);
    assert_eq!(pager.stats().file.handles, 0, "dropping it frees it");
}

#[test]
fn with_verify_off_the_flip_is_not_checked() {
    // Documents what `verify: false` gives up; the default is on.
    let (pager, dir) = pager();
    pager.configure(coldpage::Config { verify: false, ..pager.config() }).unwrap();
    let data = pattern(3 * CHECKSUM_BLOCK as usize, 12);
    let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
    flip(dir.path(), 5);
    assert_ne!(h.read_at(0, 10).unwrap(), &data[..10]);
    pager.configure(coldpage::Config { verify: true, ..pager.config() }).unwrap();
    assert_eq!(
        h.read_at(0, 10).unwrap_err().code(),
        "ERR_COLDPAGE_CORRUPT",
        "turning verify on applies to live handles"
    );
}

#[test]
fn random_flips_are_all_detected() {
    let (pager, dir) = pager();
    let mut next = common::rng(1);
    let (mut flips, mut detected) = (0, 0);
    for trial in 0..50 {
        let len = 1 + next() % 40_000;
        let data = pattern(len as usize, trial);
        let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
        // Extents are reused in place: this handle starts where the freed one did.
        let at = next() % len;
        flip(dir.path(), at);
        flips += 1;
        let block = at / CHECKSUM_BLOCK;
        let (off, l) = (block * CHECKSUM_BLOCK + next() % CHECKSUM_BLOCK.min(len - block * CHECKSUM_BLOCK), 1);
        match h.read_at(off, l) {
            Err(e) if e.code() == "ERR_COLDPAGE_CORRUPT" => detected += 1,
            other => panic!("trial {trial}: a read of flipped block {block} gave {other:?}"),
        }
        let whole = h.read_at(0, len);
        assert!(whole.is_err(), "trial {trial}");
    }
    assert_eq!((flips, detected), (50, 50));
}
