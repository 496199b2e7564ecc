//! What the pager holds from the OS is bounded by the bytes it manages, never by the
//! number of handles, reads or views (SPEC "Resources at scale"): reads share
//! windows over the arena, and views past the pager's limit are copies.

mod common;

use coldpage::{maps_held, maps_limit, Backend};
use common::{pager, pattern};

/// The counts are process-wide: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Lines of `/proc/self/maps`: every map the process holds (Linux), else the pager's
/// own count.
fn process_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or_else(|_| maps_held() as usize, |m| m.lines().count())
}

#[test]
fn many_handles_each_read_once_share_a_few_maps() {
    let _serial = serial();
    let (pager, _dir) = pager();
    let data = pattern(1024, 1);
    let before = (process_maps(), maps_held());
    let handles: Vec<_> = (0..20_000)
        .map(|i| {
            let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
            assert_eq!(h.read_at(i % 1000, 8).unwrap(), &data[(i % 1000) as usize..][..8]);
            h
        })
        .collect();
    let (after, held) = (process_maps(), maps_held());
    // 20,000 extents of one page each: 80 MiB of arena, ten 8 MiB windows (plus one
    // for the ends), however many handles read them. One map per handle was 20,000.
    assert!(held - before.1 <= 16, "the pager holds {} maps for {} handles", held - before.1, handles.len());
    assert!(after - before.0 <= 100, "the process went from {} to {after} maps", before.0);
    // Every handle still reads its own bytes through the shared windows.
    for (i, h) in handles.iter().enumerate().step_by(997) {
        assert_eq!(h.read_at(0, 1024).unwrap(), data, "handle {i}");
    }
    drop(handles);
    assert_eq!(maps_held(), before.1, "the windows go with their last reader");
}

#[test]
fn a_long_extent_reads_across_windows() {
    let _serial = serial();
    let (pager, _dir) = pager();
    // Offsets past 8 MiB: ranges that cross a window boundary read whole.
    let data = pattern(20 << 20, 7);
    let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
    for (offset, len) in
        [(0usize, 20usize << 20), ((8 << 20) - 3, 10), ((16 << 20) - 5000, 70_000), (1, (20 << 20) - 2)]
    {
        assert_eq!(h.read_at(offset as u64, len as u64).unwrap(), &data[offset..offset + len], "[{offset}, +{len})");
    }
    let ranges = [(0u64, 5u64), ((8 << 20) - 1, 2), ((16 << 20) + 1, 3)];
    let many = h.read_at_many(&ranges).unwrap();
    for (got, &(o, l)) in many.iter().zip(&ranges) {
        assert_eq!(got, &data[o as usize..(o + l) as usize]);
    }
}

#[test]
fn views_past_the_limit_are_copies() {
    let _serial = serial();
    let (pager, _dir) = pager();
    let data = pattern(3 * 4096, 5);
    let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let limit = maps_limit() as usize;
    assert!(limit >= 256, "a limit of {limit} views");
    let maps_before = process_maps();
    let leases: Vec<_> = (0..limit + 100).map(|i| h.view((i % 4096) as u64, 100).unwrap()).collect();
    let copies = leases.iter().filter(|l| l.is_copy()).count();
    assert!(copies >= 100, "{copies} of {} views are copies", leases.len());
    assert!(maps_held() as usize <= limit + 16, "the pager holds {} maps", maps_held());
    assert!(process_maps() - maps_before <= limit + 100, "{} maps for {} views", process_maps(), leases.len());
    for (i, lease) in leases.iter().enumerate().step_by(101) {
        assert_eq!(&lease[..], &data[i % 4096..i % 4096 + 100], "view {i}");
    }
    drop(leases);
    // Room again: the next view is a map.
    assert!(!h.view(0, 10).unwrap().is_copy());
}
