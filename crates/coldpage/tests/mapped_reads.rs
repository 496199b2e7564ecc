//! Reads copy from a map of the extent (no system call); a media error under the map
//! (`SIGBUS` when the page cache cannot read a page in) is an `Io` error, never a crash,
//! and the handle reads with `pread` after it.
//!
//! Linux only: the fault is made by truncating the arena through `/proc/self/fd`, which
//! raises the same `SIGBUS` (`BUS_ADRERR`) at the next access to the map as a disk
//! that fails a read.
#![cfg(target_os = "linux")]

mod common;

use coldpage::{Backend, CHECKSUM_BLOCK};
use common::{arena_fd_path, pager_with, pattern};

fn truncate_arena(scratch: &std::path::Path) {
    let file = std::fs::OpenOptions::new().write(true).open(arena_fd_path(scratch)).unwrap();
    file.set_len(0).unwrap();
}

#[test]
fn a_fault_under_the_map_is_an_io_error_and_reads_fall_back_to_pread() {
    for verify in [true, false] {
        let (pager, dir) = pager_with(|c| c.verify = verify);
        let data = pattern(64 * CHECKSUM_BLOCK as usize, 3);
        let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
        // The first read makes the map; every range reads right through it.
        assert_eq!(h.read_at(5, 100).unwrap(), &data[5..105]);
        assert_eq!(h.read_at_many(&[(0, 10), (4096 * 9, 4096)]).unwrap()[1], &data[4096 * 9..4096 * 10]);

        truncate_arena(dir.path());
        let mut buf = vec![0xEEu8; 3 * CHECKSUM_BLOCK as usize];
        let err = h.read_into(8 * CHECKSUM_BLOCK, &mut buf).unwrap_err();
        assert_eq!(
            (err.code(), err.syscall(), err.errno()),
            ("ERR_COLDPAGE_IO", Some("read (mapped)"), Some(libc::EIO)),
            "verify {verify}: {err}"
        );
        assert!(
            buf.iter().all(|&b| b == 0 || b == 0xEE),
            "no byte of the lost pages reaches the caller: verify {verify}"
        );

        // From then on the handle reads with pread, which sees the truncated file.
        let err = h.read_at(0, 10).unwrap_err();
        assert_eq!((err.code(), err.syscall()), ("ERR_COLDPAGE_IO", Some("preadv")), "verify {verify}: {err}");
        assert!(pager.stats().errors >= 2);
        // The pager keeps working: a new handle reads back (it reads through its own map).
        let again = pager.pageout_to(Backend::File, &[b"still here"]).unwrap();
        assert_eq!(again.read_at(0, 10).unwrap(), b"still here");
        drop(h);
    }
}

#[test]
fn mapped_reads_match_the_bytes_at_every_alignment() {
    let (pager, _dir) = pager_with(|_| {});
    let data = pattern(40 * CHECKSUM_BLOCK as usize + 77, 9);
    let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let mut big = vec![0u8; 70_000];
    for (offset, len) in
        [(0usize, 1usize), (1, 4095), (4095, 2), (4096, 4096), (12_345, 60_000), (data.len() - 77, 77), (0, data.len())]
    {
        // Destinations at every offset mod 64 (the copy avoids memcpy's aliasing trap).
        for shift in [0usize, 1, 16, 33] {
            if len + shift > big.len() {
                assert_eq!(h.read_at(offset as u64, len as u64).unwrap(), &data[offset..offset + len]);
                continue;
            }
            let dst = &mut big[shift..shift + len];
            h.read_into(offset as u64, dst).unwrap();
            assert_eq!(dst, &data[offset..offset + len], "[{offset}, +{len}) into +{shift}");
        }
    }
    let ranges = [(4096u64, 100u64), (0, 0), (8190, 5000), (4096, 100)];
    let mut a = vec![0u8; 3000];
    let mut b = vec![0u8; 2200];
    assert_eq!(
        h.read_at_many_into_all(&ranges[..3], &mut [&mut a[..], &mut b[..]]).unwrap_err().code(),
        "ERR_OUT_OF_RANGE",
        "a range may not span two targets"
    );
    let mut a = vec![0u8; 100];
    let mut b = vec![0u8; 5100];
    h.read_at_many_into_all(&ranges, &mut [&mut a[..], &mut b[..]]).unwrap();
    assert_eq!(a, &data[4096..4196]);
    assert_eq!(&b[..5000], &data[8190..13_190]);
    assert_eq!(&b[5000..], &data[4096..4196]);
}
