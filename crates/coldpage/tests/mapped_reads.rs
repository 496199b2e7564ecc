//! Reads copy from shared windows over the arena (no system call); a media error under
//! a map (`SIGBUS` when the page cache cannot read a page in) is an `Io` error, never a
//! crash, and never zeros handed out as bytes: the handle reports `Io` from then on,
//! on every thread, and so does a handle whose view met the error.
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
fn a_fault_under_the_map_is_an_io_error_and_the_handle_fails_from_then_on() {
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

        // From then on every read of the handle fails, whatever its range.
        let err = h.read_at(0, 10).unwrap_err();
        assert_eq!(
            (err.code(), err.syscall(), err.errno()),
            ("ERR_COLDPAGE_IO", Some("read (mapped)"), Some(libc::EIO)),
            "verify {verify}: {err}"
        );
        assert!(coldpage::media_error_count() > 0);
        assert!(pager.stats().errors >= 2);
        // The pager keeps working: a new handle reads back (through the same windows).
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

#[test]
fn a_fault_under_a_view_never_kills_and_the_handle_fails_from_then_on() {
    let (pager, dir) = pager_with(|_| {});
    let data = pattern(8 * CHECKSUM_BLOCK as usize, 11);
    let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let lease = h.view(0, data.len() as u64).unwrap();
    assert!(!lease.is_copy());
    assert_eq!(&lease[..], &data[..]);
    let mut cursor = (0, 0);
    let _ = coldpage::media_errors_since(&mut cursor);

    truncate_arena(dir.path());
    // Touching the view's pages is a SIGBUS the guard catches (zeros in the view,
    // which is all a view can show once its pages are gone): the process lives on.
    let sum: u64 = lease.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(sum, 0, "the lost pages read as zeros in the view");
    let err = h.read_at(0, 10).unwrap_err();
    assert_eq!((err.code(), err.errno()), ("ERR_COLDPAGE_IO", Some(libc::EIO)), "{err}");
    assert_eq!(h.view(0, 10).unwrap_err().code(), "ERR_COLDPAGE_IO");
    assert!(coldpage::media_errors_since(&mut cursor).contains(&h.id()), "the handle is named for a warning");
    drop(lease);
    drop(h);
}

#[test]
fn threads_reading_a_page_that_failed_get_the_error_never_zeros() {
    for verify in [false, true] {
        let (pager, dir) = pager_with(|c| c.verify = verify);
        let data: Vec<u8> = (0..16 * CHECKSUM_BLOCK as usize).map(|i| (i % 251) as u8 | 1).collect();
        let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
        assert_eq!(h.read_at(0, 16).unwrap(), &data[..16]);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let readers: Vec<_> = (0..3)
                .map(|t| {
                    let (h, data, stop) = (&h, &data, &stop);
                    s.spawn(move || {
                        let mut errors = 0;
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            let at = (t * 4096 + 100) as u64;
                            match h.read_at(at, 3000) {
                                Ok(bytes) => assert_eq!(bytes, &data[at as usize..][..3000], "never zeros as data"),
                                Err(e) => {
                                    assert_eq!(e.code(), "ERR_COLDPAGE_IO", "{e}");
                                    errors += 1;
                                }
                            }
                            if errors > 10 {
                                break;
                            }
                        }
                        errors
                    })
                })
                .collect();
            // Readers run while the pages go (the assertions hold in any interleaving).
            std::thread::sleep(std::time::Duration::from_millis(20));
            truncate_arena(dir.path());
            let errors: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(errors.iter().all(|&e| e > 0), "every thread learns of the failure: {errors:?} (verify {verify})");
        });
    }
}
