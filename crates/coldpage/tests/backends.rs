//! Round trips, boundaries, take, views, freeing and the selector, on both backends.

mod common;

use coldpage::{Backend, Config, Pager, Selector, CHECKSUM_BLOCK};
use common::{pager, pager_with, pattern};

const BACKENDS: [Backend; 2] = [Backend::Swap, Backend::File];

#[test]
fn round_trips_across_chunk_and_block_boundaries() {
    let (pager, _dir) = pager();
    let sizes = [0usize, 1, 4095, 4096, 4097, 10_000, 3 * 4096 + 17];
    for backend in BACKENDS {
        for (i, &a) in sizes.iter().enumerate() {
            for &b in &sizes[i..] {
                let (x, y) = (pattern(a, a as u64), pattern(b, b as u64 + 1));
                let whole: Vec<u8> = [x.as_slice(), &y].concat();
                let h = pager.pageout_to(backend, &[&x, &[], &y]).unwrap();
                assert_eq!((h.len(), h.backend()), (whole.len() as u64, backend));
                assert_eq!(h.read_at(0, h.len()).unwrap(), whole, "{backend} {a}+{b}");
                // Every interesting start/end pair around chunk and block boundaries.
                let points: Vec<u64> =
                    [0, 1, a as u64, 4095, 4096, 4097, (whole.len() as u64).saturating_sub(1), whole.len() as u64]
                        .into_iter()
                        .filter(|&p| p <= whole.len() as u64)
                        .collect();
                for &s in &points {
                    for &e in points.iter().filter(|&&e| e >= s) {
                        let want = &whole[s as usize..e as usize];
                        assert_eq!(h.read_at(s, e - s).unwrap(), want, "{backend} {a}+{b} [{s},{e})");
                        let mut buf = vec![0xAA; want.len()];
                        h.read_into(s, &mut buf).unwrap();
                        assert_eq!(buf, want);
                        assert_eq!(&*h.view(s, e - s).unwrap(), want);
                    }
                }
                assert_eq!(h.take().unwrap().into_vec(), whole);
            }
        }
    }
}

#[test]
fn empty_input_gives_an_empty_handle() {
    let (pager, _dir) = pager();
    for backend in BACKENDS {
        for h in [pager.pageout_to(backend, &[]).unwrap(), pager.pageout_to(backend, &[&[], &[]]).unwrap()] {
            assert!(h.is_empty());
            assert_eq!(h.read_at(0, 0).unwrap(), b"");
            assert_eq!(h.read_at_many(&[(0, 0), (0, 0)]).unwrap(), vec![Vec::<u8>::new(); 2]);
            assert_eq!(h.read_at(0, 1).unwrap_err().code(), "ERR_OUT_OF_RANGE");
            assert!(h.view(0, 0).unwrap().is_empty());
            h.prefetch(0, 100);
            assert!(h.take().unwrap().is_empty());
        }
    }
    assert_eq!(pager.stats().file.handles + pager.stats().swap.handles, 0);
}

#[test]
fn out_of_range_is_an_error_not_a_panic() {
    let (pager, _dir) = pager();
    for backend in BACKENDS {
        let h = pager.pageout_to(backend, &[&[7u8; 100]]).unwrap();
        let cases = [(0, 101), (100, 1), (101, 0), (u64::MAX, 1), (1, u64::MAX), (u64::MAX, u64::MAX)];
        for (off, len) in cases {
            assert_eq!(h.read_at(off, len).unwrap_err().code(), "ERR_OUT_OF_RANGE", "{off} {len}");
            assert_eq!(h.view(off, len).unwrap_err().code(), "ERR_OUT_OF_RANGE");
            assert_eq!(h.read_at_many(&[(0, 1), (off, len)]).unwrap_err().code(), "ERR_OUT_OF_RANGE");
        }
        let mut big = vec![0u8; 101];
        assert_eq!(h.read_into(0, &mut big).unwrap_err().code(), "ERR_OUT_OF_RANGE");
        assert_eq!(h.read_at(100, 0).unwrap(), b"", "an empty range at the end is fine");
        h.prefetch(u64::MAX, u64::MAX); // a hint: never fails
    }
}

#[test]
fn read_at_many_handles_overlaps_repeats_and_order() {
    let (pager, _dir) = pager();
    let data = pattern(50_000, 9);
    for backend in BACKENDS {
        for verify in [true, false] {
            pager.configure(coldpage::Config { verify, ..pager.config() }).unwrap();
            let h = pager.pageout_to(backend, &[&data[..12_345], &data[12_345..]]).unwrap();
            let ranges = [(40_000, 5_000), (0, 10), (5, 10), (0, 10), (4096, 4096), (8191, 2), (49_999, 1), (7, 0)];
            let got = h.read_at_many(&ranges).unwrap();
            for ((off, len), bytes) in ranges.iter().zip(&got) {
                assert_eq!(bytes, &data[*off as usize..(*off + *len) as usize], "{backend} verify={verify}");
            }
        }
    }
}

#[test]
fn swap_take_hands_over_the_region_itself() {
    let (pager, _dir) = pager();
    let data = pattern(1 << 20, 3);
    let h = pager.pageout_to(Backend::Swap, &[&data]).unwrap();
    let before = h.view(0, 1).unwrap().as_ptr();
    let taken = h.take().unwrap();
    assert!(taken.is_zero_copy());
    assert_eq!(taken.as_ptr(), before, "take must not copy");
    assert_eq!(&*taken, &data[..]);
    assert_eq!(pager.stats().swap.handles, 0, "a taken handle is no longer the pager's");
}

#[test]
fn a_file_lease_is_writable_in_private_and_a_swap_lease_is_not() {
    let (pager, _dir) = pager();
    let data = pattern(3 * 4096, 6);
    let file = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let lease = file.view(4000, 200).unwrap();
    let ptr = lease.writable_ptr().expect("a plain file lease is a private map");
    assert_eq!(ptr.cast_const(), lease.as_ptr());
    // SAFETY: inside the lease's 200 bytes, while it lives; no borrow of them is in use.
    unsafe { ptr.wrapping_add(199).write(!data[4199]) };
    assert_eq!(lease[199], !data[4199], "the write lands in the lease's pages");
    assert_eq!(file.read_at(4199, 1).unwrap(), [data[4199]], "and never in the storage");
    assert_eq!(&*file.view(4000, 200).unwrap(), &data[4000..4200], "nor in another lease");
    let swap = pager.pageout_to(Backend::Swap, &[&data]).unwrap();
    assert!(swap.view(0, 10).unwrap().writable_ptr().is_none(), "a swap lease is the storage itself");
    assert!(file.view(0, 0).unwrap().writable_ptr().is_none());
}

#[test]
fn take_while_a_lease_lives_copies_and_the_lease_stays_valid() {
    let (pager, _dir) = pager();
    let data = pattern(20_000, 4);
    for backend in BACKENDS {
        let h = pager.pageout_to(backend, &[&data]).unwrap();
        let lease = h.view(100, 5000).unwrap();
        let taken = h.take().unwrap();
        assert!(!taken.is_zero_copy());
        assert_eq!(&*taken, &data[..]);
        assert_eq!(&*lease, &data[100..5100], "the lease keeps the storage alive");
        assert_eq!(pager.stats().scratch_bytes_allocated > 0, backend == Backend::File);
        drop(lease);
        assert_eq!(pager.stats().scratch_bytes_allocated, 0);
    }
}

#[test]
fn dropping_handles_frees_stats_and_disk_blocks() {
    let (pager, _dir) = pager();
    let data = pattern(4 << 20, 5);
    let handles: Vec<_> = (0..4).map(|_| pager.pageout_to(Backend::File, &[&data]).unwrap()).collect();
    let swap = pager.pageout_to(Backend::Swap, &[&data]).unwrap();
    let s = pager.stats();
    assert_eq!((s.file.handles, s.file.bytes), (4, 16 << 20));
    assert_eq!((s.swap.handles, s.swap.bytes), (1, 4 << 20));
    assert_eq!(s.scratch_bytes_allocated, 16 << 20);
    assert!(s.scratch_bytes_on_disk >= 16 << 20, "{s:?}");
    drop(handles);
    drop(swap);
    let s = pager.stats();
    assert_eq!((s.file.handles, s.file.bytes, s.swap.handles, s.swap.bytes), (0, 0, 0, 0));
    assert_eq!(s.scratch_bytes_allocated, 0);
    // ext4 and tmpfs punch holes; Windows deallocates with FSCTL_SET_ZERO_DATA, which
    // Wine (and FAT) refuse: there the extents stay allocated for reuse, a working state.
    assert!(pager.hole_punching() || cfg!(windows), "ext4 and tmpfs punch holes");
    if pager.hole_punching() {
        assert!(s.scratch_bytes_on_disk < 64 << 10, "punched holes return the blocks: {s:?}");
    }
}

#[test]
fn freed_extents_are_reused_without_stale_bytes() {
    let (pager, _dir) = pager();
    let a = pager.pageout_to(Backend::File, &[&pattern(100_000, 1)]).unwrap();
    drop(a);
    let small = pattern(10, 2);
    let b = pager.pageout_to(Backend::File, &[&small]).unwrap();
    assert_eq!(b.read_at(0, 10).unwrap(), small);
    assert_eq!(pager.stats().scratch_bytes_allocated, 4096);
}

#[test]
fn flipping_the_selector_never_disturbs_live_handles() {
    let (pager, _dir) = pager();
    let data = pattern(30_000, 6);
    pager.set_backend(Selector::File);
    let f = pager.pageout(&[&data]).unwrap();
    pager.set_backend(Selector::Swap);
    let s = pager.pageout(&[&data]).unwrap();
    assert_eq!((f.backend(), s.backend()), (Backend::File, Backend::Swap));
    pager.set_backend(Selector::Auto);
    assert_eq!(pager.backend(), Selector::Auto);
    let a = pager.pageout(&[&data]).unwrap();
    assert_eq!(a.backend(), pager.auto_choice().backend);
    pager.set_backend(Selector::File);
    for h in [&f, &s, &a] {
        assert_eq!(h.read_at(0, data.len() as u64).unwrap(), data);
    }
    assert_eq!(s.take().unwrap().into_vec(), data);
}

#[test]
fn quota_gives_no_space_then_recovers() {
    let (pager, _dir) = pager_with(|c| c.max_scratch_bytes = Some(64 << 10));
    let data = pattern(40 << 10, 7);
    let first = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let copy = data.clone();
    let err = pager.pageout_to(Backend::File, &[&data]).unwrap_err();
    assert_eq!(err.code(), "ERR_COLDPAGE_NO_SPACE", "{err}");
    assert_eq!(data, copy, "the caller's bytes are untouched");
    assert_eq!(pager.stats().errors, 1);
    assert_eq!(first.read_at(0, data.len() as u64).unwrap(), data, "live handles keep working");
    drop(first);
    let again = pager.pageout_to(Backend::File, &[&data]).unwrap();
    assert_eq!(again.read_at(0, data.len() as u64).unwrap(), data);
    // Raising the quota applies at once.
    pager.configure(coldpage::Config { max_scratch_bytes: None, ..pager.config() }).unwrap();
    let _more = pager.pageout_to(Backend::File, &[&data]).unwrap();
}

#[test]
fn changing_the_scratch_dir_keeps_live_handles_in_their_arena() {
    let (pager, dir) = pager();
    let other = tempfile::tempdir().unwrap();
    let data = pattern(9000, 8);
    let old = pager.pageout_to(Backend::File, &[&data]).unwrap();
    pager.configure(coldpage::Config { scratch_dir: other.path().to_path_buf(), ..pager.config() }).unwrap();
    let new = pager.pageout_to(Backend::File, &[&data]).unwrap();
    assert_ne!(old.arena_id(), new.arena_id());
    assert_eq!(old.read_at(0, 9000).unwrap(), data);
    assert_eq!(new.read_at(0, 9000).unwrap(), data);
    assert_eq!(pager.stats().file.handles, 2);
    let has_private_dir = |d: &std::path::Path| std::fs::read_dir(d).unwrap().flatten().any(|e| e.path().is_dir());
    assert!(has_private_dir(dir.path()) && has_private_dir(other.path()));
}

#[test]
#[cfg(unix)]
fn a_bad_config_is_refused_whole() {
    let (pager, dir) = pager_with(|c| c.verify = false);
    let before = pager.config();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    let err = pager
        .configure(coldpage::Config {
            scratch_dir: link,
            verify: true,
            max_scratch_bytes: Some(1 << 20),
            ..pager.config()
        })
        .unwrap_err();
    assert_eq!(err.code(), "ERR_COLDPAGE_CONFIG");
    assert_eq!(pager.config(), before, "nothing applied");
}

/// The fresh fallback directories (`coldpage-<user>-<16 hex digits>`) in `scratch`.
fn fallback_dirs(scratch: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}-", common::private_dir_name());
    std::fs::read_dir(scratch)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.strip_prefix(&prefix).is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_hexdigit())))
        .collect()
}

/// Another local user can pre-create our `coldpage-<user>` name in a shared scratch dir
/// (here: a plain file squats it, which needs no second user). That must not turn the
/// file backend off: the pager uses a fresh private directory with an unpredictable
/// name, `doctor` says so, and the directory goes when the arena does.
#[test]
fn a_squatted_private_dir_falls_back_to_a_fresh_unpredictable_one() {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join(common::private_dir_name()), b"squatter").unwrap();
    let report = coldpage::doctor(scratch.path());
    assert_eq!(report.scratch_error, None);
    let why = report.scratch_fallback.expect("doctor names the fallback");
    assert!(why.contains("not a directory"), "{why}");
    assert!(report.warnings.iter().any(|w| w.contains("unpredictable name")), "{:?}", report.warnings);
    assert!(fallback_dirs(scratch.path()).is_empty(), "doctor's trial arena leaves nothing behind");

    let pager = Pager::new(Config { scratch_dir: scratch.path().to_path_buf(), ..Config::default() }).unwrap();
    let data = pattern(50_000, 3);
    let a = pager.pageout_to(Backend::File, &[&data]).unwrap();
    // Unix removes a fallback dir as soon as its unnamed arena file is open (nothing is
    // left at exit); Windows cannot remove it while the arena is open.
    let kept = usize::from(cfg!(windows));
    let dirs = fallback_dirs(scratch.path());
    assert_eq!(dirs.len(), kept, "{dirs:?}");
    assert_eq!(a.read_at(0, data.len() as u64).unwrap(), data);
    let second = Pager::new(Config { scratch_dir: scratch.path().to_path_buf(), ..Config::default() }).unwrap();
    let b = second.pageout_to(Backend::File, &[&data]).unwrap();
    let both = fallback_dirs(scratch.path());
    assert_eq!(both.len(), 2 * kept, "each pager gets its own unpredictable name: {both:?}");
    drop((a, b, pager, second));
    assert!(fallback_dirs(scratch.path()).is_empty(), "removed with their arenas");
    assert_eq!(std::fs::read(scratch.path().join(common::private_dir_name())).unwrap(), b"squatter");
}

/// As root: the same when another user owns `coldpage-<uid>` (a real squatter).
#[test]
#[cfg(unix)]
fn another_users_private_dir_is_not_used() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: making a directory owned by another user needs root");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let theirs = scratch.path().join(common::private_dir_name());
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(12345), Some(12345)).unwrap();
    let pager = Pager::new(Config { scratch_dir: scratch.path().to_path_buf(), ..Config::default() }).unwrap();
    let h = pager.pageout_to(Backend::File, &[b"cold bytes"]).unwrap();
    assert_eq!(h.read_at(0, 10).unwrap(), b"cold bytes");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0, "nothing of ours in their directory");
    assert_eq!(fallback_dirs(scratch.path()).len(), 0, "the fallback dir went once the arena was open");
    let why = coldpage::doctor(scratch.path()).scratch_fallback.unwrap();
    assert!(why.contains("owned by uid 12345"), "{why}");
}

#[test]
fn stats_count_reads_and_bytes() {
    let (pager, _dir) = pager();
    let h = pager.pageout_to(Backend::File, &[&pattern(10_000, 1)]).unwrap();
    h.read_at(0, 100).unwrap();
    h.read_at_many(&[(0, 10), (20, 30)]).unwrap();
    h.read_into(0, &mut [0u8; 60]).unwrap();
    let s = pager.stats();
    assert_eq!((s.reads, s.bytes_read), (4, 200));
}

#[test]
fn prefetch_and_residency() {
    let (pager, _dir) = pager();
    let h = pager.pageout_to(Backend::Swap, &[&pattern(64 << 10, 1)]).unwrap();
    h.prefetch(0, 64 << 10);
    let r = h.residency().unwrap();
    assert_eq!(r.pages, 16);
    assert_eq!(r.resident + r.swapped, 16, "freshly written pages are in RAM or swap: {r:?}");
    let f = pager.pageout_to(Backend::File, &[&[1u8; 10]]).unwrap();
    f.prefetch(0, 10);
    assert_eq!(f.residency().unwrap_err().code(), "ERR_COLDPAGE_UNSUPPORTED");
}

#[test]
fn block_size_is_documented() {
    assert_eq!(CHECKSUM_BLOCK, 4096);
}

#[test]
fn freed_extents_are_recycled_while_others_live_and_punched_when_none_do() {
    let (pager, _dir) = pager_with(|c| c.max_scratch_bytes = Some(3 << 20));
    let keep = pager.pageout_to(Backend::File, &[&pattern(1 << 20, 1)]).unwrap();
    let churn = pager.pageout_to(Backend::File, &[&pattern(1 << 20, 2)]).unwrap();
    let arena = churn.arena_id();
    drop(churn);
    let s = pager.stats();
    assert_eq!(s.scratch_bytes_allocated, 1 << 20, "only live extents count as allocated");
    assert!(s.scratch_bytes_on_disk >= 2 << 20, "the freed extent stays on disk for reuse: {s:?}");
    // Reused in place, with its new bytes only.
    let again = pager.pageout_to(Backend::File, &[&pattern(1 << 20, 3)]).unwrap();
    assert_eq!((again.arena_id(), again.read_at(0, 1 << 20).unwrap()), (arena, pattern(1 << 20, 3)));
    drop(again);
    // The quota counts the bin, and gives it back under pressure.
    let big = pager.pageout_to(Backend::File, &[&pattern(2 << 20, 4)]).unwrap();
    assert_eq!(big.read_at(0, 2 << 20).unwrap(), pattern(2 << 20, 4));
    drop((big, keep));
    let s = pager.stats();
    assert_eq!((s.scratch_bytes_allocated, s.file.handles), (0, 0));
    if pager.hole_punching() || !cfg!(windows) {
        assert!(s.scratch_bytes_on_disk < 64 << 10, "nothing live: every extent punched: {s:?}");
    }
}

/// A result too large for memory is `ERR_COLDPAGE_NO_MEMORY` (never an abort), before
/// any work, and the handle keeps working. Ranges may repeat: 2^20 reads of the same
/// 256 MiB make 2^48 bytes, more than any process can address.
#[test]
fn a_result_too_large_for_memory_is_no_memory_and_nothing_is_lost() {
    for backend in [Backend::File, Backend::Swap] {
        if backend == Backend::Swap && !coldpage::page_out_works() && !cfg!(windows) {
            continue;
        }
        let (pager, _dir) = pager();
        let len = 256u64 << 20;
        let h = match pager.pageout_to(backend, &[&vec![7u8; len as usize]]) {
            Ok(h) => h,
            Err(e) if e.code() == "ERR_COLDPAGE_UNSUPPORTED" => continue,
            Err(e) => panic!("{e}"),
        };
        let ranges = vec![(0u64, len); 1 << 20];
        let before = pager.stats().reads;
        let err = h.read_at_many(&ranges).unwrap_err();
        assert_eq!(err.code(), "ERR_COLDPAGE_NO_MEMORY", "{backend:?}: {err}");
        assert_eq!(pager.stats().reads, before, "{backend:?}: nothing was read");
        assert_eq!(h.read_at(len - 3, 3).unwrap(), [7, 7, 7], "{backend:?}: the handle keeps working");
        let again = pager.pageout_to(backend, &[b"and the pager"]).unwrap();
        assert_eq!(again.read_at(0, 13).unwrap(), b"and the pager");
    }
}
