//! Large frees run in the background (a dropped handle returns at once), yet nothing a
//! user can observe lags behind: the space is there for the next pageout, `stats()`
//! and the map count say it is free, and no new handle ever sees an old one's bytes.

mod common;

use coldpage::{maps_held, Backend};
use common::{pager_with, pattern};

const MIB: usize = 1 << 20;

/// The map count is process-wide: the tests here run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn a_dropped_handle_s_space_is_there_for_the_next_pageout_under_a_tight_quota() {
    let _serial = one_at_a_time();
    // Room for one handle (large enough to be freed in the background) and no more:
    // every pageout needs the space of the handle dropped just before it.
    let (pager, _dir) = pager_with(|c| c.max_scratch_bytes = Some(2 << 20));
    for round in 0..16u64 {
        let data = pattern(3 * MIB / 2, round);
        let h = pager.pageout_to(Backend::File, &[&data]).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(h.read_at(0, h.len()).unwrap(), data, "round {round}");
        drop(h);
    }
    let s = pager.stats();
    assert_eq!((s.file.handles, s.scratch_bytes_allocated), (0, 0), "{s:?}");
}

#[test]
fn frees_from_many_threads_are_counted_once_they_ran() {
    let _serial = one_at_a_time();
    let (pager, _dir) = pager_with(|_| {});
    let maps_before = maps_held();
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let pager = &pager;
            scope.spawn(move || {
                for i in 0..6u64 {
                    let data = pattern(MIB + 4096 * i as usize, t * 100 + i);
                    for backend in [Backend::Swap, Backend::File] {
                        let h = pager.pageout_to(backend, &[&data]).unwrap();
                        assert_eq!(h.read_at(0, h.len()).unwrap(), data, "{backend} {t}/{i}");
                    }
                }
            });
        }
    });
    let s = pager.stats();
    assert_eq!((s.swap.handles, s.file.handles, s.scratch_bytes_allocated), (0, 0, 0), "{s:?}");
    // Where holes can be punched (not under Wine, which refuses FSCTL_SET_ZERO_DATA: the
    // extents then stay allocated for reuse, as tests/backends.rs says).
    if pager.hole_punching() {
        assert!(s.scratch_bytes_on_disk < 64 << 10, "every extent punched once nothing is live: {s:?}");
    }
    assert_eq!(maps_held(), maps_before, "every region unmapped");
}
