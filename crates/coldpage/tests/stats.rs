//! The counters since the pager was made: pageouts, their bytes, takes (a handle's
//! own, and those a binding composes), and bytes written to scratch after
//! compression; failed pageouts and takes count nothing.

mod common;

use coldpage::{Backend, Compression};
use common::{pager, pager_with, pattern};

#[test]
fn pageouts_bytes_and_takes_are_counted_per_pager() {
    let (p, _dir) = pager();
    assert_eq!((p.stats().pageouts, p.stats().bytes_paged_out, p.stats().takes, p.stats().bytes_written), (0, 0, 0, 0));
    let file = p.pageout_to(Backend::File, &[&pattern(10_000, 1), &pattern(240, 2)]).unwrap();
    let s = p.stats();
    assert_eq!((s.pageouts, s.bytes_paged_out, s.bytes_written), (1, 10_240, 10_240));
    drop(p.pageout_to(Backend::File, &[]).unwrap());
    assert_eq!((p.stats().pageouts, p.stats().bytes_paged_out), (2, 10_240));
    let taken = file.take().unwrap();
    assert_eq!(taken.len(), 10_240);
    assert_eq!(p.stats().takes, 1);
    p.count_take();
    assert_eq!(p.stats().takes, 2);
    if cfg!(target_os = "linux") {
        let swap = p.pageout_to(Backend::Swap, &[&pattern(70_000, 3)]).unwrap();
        let s = p.stats();
        assert_eq!((s.pageouts, s.bytes_paged_out, s.bytes_written), (3, 80_240, 10_240), "swap writes no scratch");
        swap.take().unwrap();
        assert_eq!(p.stats().takes, 3);
    }
}

#[test]
fn pageouts_written_a_slice_at_a_time_are_counted() {
    let (p, _dir) = pager();
    let data = pattern(coldpage::SLICE_BYTES + 12_345, 5);
    let backends: &[Backend] =
        if cfg!(target_os = "linux") { &[Backend::File, Backend::Swap] } else { &[Backend::File] };
    for (n, &backend) in backends.iter().enumerate() {
        let writer = p.writer(backend, data.len() as u64).unwrap();
        for (i, part) in data.chunks(coldpage::SLICE_BYTES).enumerate() {
            writer.write((i * coldpage::SLICE_BYTES) as u64, coldpage::Slice::copy(&[part]).unwrap()).unwrap();
        }
        let h = writer.finish().unwrap();
        assert_eq!(h.read_at(0, h.len()).unwrap(), data);
        let s = p.stats();
        let written = if backend == Backend::File { data.len() as u64 } else { 0 };
        assert_eq!((s.pageouts, s.bytes_paged_out), (n as u64 + 1, (n as u64 + 1) * data.len() as u64), "{backend}");
        assert!(s.bytes_written >= written, "{backend}: {s:?}");
    }
}

#[test]
fn bytes_written_is_after_compression() {
    let (p, _dir) = pager_with(|c| c.compress = Compression::Lz4);
    let zeros = vec![0u8; 1 << 20];
    drop(p.pageout_to(Backend::File, &[&zeros]).unwrap());
    let s = p.stats();
    assert_eq!(s.bytes_paged_out, 1 << 20);
    assert!(s.bytes_written > 0 && s.bytes_written < 1 << 16, "{} bytes written for 1 MiB of zeros", s.bytes_written);
}

#[test]
fn a_failed_pageout_counts_nothing() {
    let (p, _dir) = pager_with(|c| c.max_scratch_bytes = Some(4096));
    assert!(p.pageout_to(Backend::File, &[&pattern(1 << 20, 4)]).is_err());
    let s = p.stats();
    assert_eq!((s.pageouts, s.bytes_paged_out, s.bytes_written), (0, 0, 0));
}
