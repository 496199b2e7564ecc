//! Injected I/O errors in the write, read, allocate and punch-hole paths surface as
//! the contract's errors, lose nothing and leave the pager usable.
//!
//! Run with `cargo test -p coldpage --features failpoints --test failpoints`.
#![cfg(feature = "failpoints")]

mod common;

use coldpage::Backend;
use common::{pager, pattern};

/// Failpoints are process-global: one test drives every scenario in turn.
#[test]
fn injected_faults_surface_as_spec_errors() {
    let scenario = fail::FailScenario::setup();
    let (pager, _dir) = pager();
    let data = pattern(100_000, 1);
    let copy = data.clone();
    let live = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let mut injected = 0;

    for (point, code) in [
        ("file-write", "ERR_COLDPAGE_IO"),
        ("file-write-nospace", "ERR_COLDPAGE_NO_SPACE"),
        ("arena-allocate", "ERR_COLDPAGE_IO"),
    ] {
        fail::cfg(point, "return").unwrap();
        let err = pager.pageout_to(Backend::File, &[&data]).unwrap_err();
        injected += 1;
        assert_eq!(err.code(), code, "{point}: {err}");
        fail::remove(point);
        assert_eq!(data, copy, "{point}: the caller's bytes are untouched");
        let s = pager.stats();
        assert_eq!(
            (s.file.handles, s.scratch_bytes_allocated),
            (1, 100_000u64.next_multiple_of(4096)),
            "{point}: {s:?}"
        );
        let again = pager.pageout_to(Backend::File, &[&data]).unwrap();
        assert_eq!(again.read_at(0, data.len() as u64).unwrap(), data, "{point}: pageouts work again");
    }
    let io = {
        fail::cfg("file-write", "return").unwrap();
        pager.pageout_to(Backend::File, &[&data]).unwrap_err()
    };
    fail::remove("file-write");
    injected += 1;
    assert_eq!((io.errno(), io.syscall()), (Some(common::errno::EIO), Some("pwritev")));

    fail::cfg("file-read", "return").unwrap();
    for (name, result) in [
        ("read_at", live.read_at(10, 5000).map(drop)),
        ("read_into", live.read_into(10, &mut [0u8; 5000])),
        ("read_at_many", live.read_at_many(&[(0, 10), (50_000, 10)]).map(drop)),
    ] {
        injected += 1;
        assert_eq!(result.unwrap_err().code(), "ERR_COLDPAGE_IO", "{name}");
    }
    fail::remove("file-read");
    assert_eq!(live.read_at(0, data.len() as u64).unwrap(), data, "the handle stays usable after read errors");

    // A failed punch loses disk space until reuse, never data or bookkeeping.
    fail::cfg("arena-punch", "return").unwrap();
    let doomed = pager.pageout_to(Backend::File, &[&data]).unwrap();
    drop(doomed);
    injected += 1;
    fail::remove("arena-punch");
    let s = pager.stats();
    assert_eq!((s.file.handles, s.scratch_bytes_allocated), (1, 100_000u64.next_multiple_of(4096)));
    let reused = pager.pageout_to(Backend::File, &[&pattern(100_000, 2)]).unwrap();
    assert_eq!(reused.read_at(0, 100_000).unwrap(), pattern(100_000, 2));

    let s = pager.stats();
    assert_eq!(s.errors, 7, "every surfaced failure is counted: {s:?}");
    eprintln!("failpoints: {injected} faults injected, all surfaced as contract errors");
    scenario.teardown();
}

/// Faults in the paths the first test does not reach: opening the arena, mapping a
/// view, allocating a swap region, a read that fails part-way through a multi-span
/// `read_at_many` or a large verified read, and a `take` whose read fails.
#[test]
fn faults_in_views_arena_open_swap_and_partial_reads() {
    let scenario = fail::FailScenario::setup();
    let (pager, dir) = pager();
    let data = pattern(1 << 20, 3);
    let copy = data.clone();
    let mut injected = 0u64;
    let page = 4096u64;

    // The arena opens lazily; a failed open leaves nothing behind and is retried.
    fail::cfg("arena-open", "return").unwrap();
    let err = pager.pageout_to(Backend::File, &[&data]).unwrap_err();
    injected += 1;
    fail::remove("arena-open");
    assert_eq!(
        (err.code(), err.errno(), err.syscall()),
        ("ERR_COLDPAGE_IO", Some(common::errno::EMFILE), Some("openat"))
    );
    assert!(common::files_below(dir.path()).is_empty(), "a failed open leaves no file");
    assert_eq!(pager.stats().scratch_bytes_allocated, 0);
    let live = pager.pageout_to(Backend::File, &[&data]).unwrap();

    // A failed mmap fails the view only.
    fail::cfg("file-map", "return").unwrap();
    assert_eq!(live.view(4096, 10_000).unwrap_err().code(), "ERR_COLDPAGE_IO");
    injected += 1;
    fail::remove("file-map");
    assert_eq!(&*live.view(4096, 10_000).unwrap(), &data[4096..14_096]);

    // read_at_many over three far-apart spans: the second pread fails.
    let ranges = [(0, 100), (300_000, 5000), (900_000, 70_000)];
    fail::cfg("file-read", "1*off->return").unwrap();
    assert_eq!(live.read_at_many(&ranges).unwrap_err().code(), "ERR_COLDPAGE_IO");
    injected += 1;
    fail::remove("file-read");
    let many = live.read_at_many(&ranges).unwrap();
    for (&(o, l), got) in ranges.iter().zip(&many) {
        assert_eq!(got, &data[o as usize..(o + l) as usize]);
    }

    // A whole-handle verified read goes in 256 KiB pieces: the third piece fails.
    fail::cfg("file-read", "2*off->return").unwrap();
    let mut buf = vec![0u8; data.len()];
    assert_eq!(live.read_into(0, &mut buf).unwrap_err().code(), "ERR_COLDPAGE_IO");
    injected += 1;
    fail::remove("file-read");
    live.read_into(0, &mut buf).unwrap();
    assert_eq!(buf, data);

    // A take whose read fails loses nothing: the handle comes back, live and readable;
    // dropping it then frees its scratch space.
    let doomed = pager.pageout_to(Backend::File, &[&data]).unwrap();
    assert_eq!(pager.stats().scratch_bytes_allocated, 2 * (1 << 20));
    fail::cfg("file-read", "return").unwrap();
    let failed = doomed.take().unwrap_err();
    assert_eq!(failed.error.code(), "ERR_COLDPAGE_IO");
    injected += 1;
    fail::remove("file-read");
    assert_eq!(pager.stats().file.handles, 2, "the failed take kept the handle");
    assert_eq!(failed.handle.read_at(0, data.len() as u64).unwrap(), data, "and it is readable");
    let retaken = failed.handle.take().unwrap();
    assert_eq!(&*retaken, &data[..], "a second take succeeds");
    drop(retaken);
    let s = pager.stats();
    assert_eq!((s.file.handles, s.file.bytes, s.scratch_bytes_allocated), (1, 1 << 20, 1 << 20), "{s:?}");

    // The swap backend's region allocation.
    if cfg!(target_os = "linux") {
        fail::cfg("swap-alloc", "return").unwrap();
        let err = pager.pageout_to(Backend::Swap, &[&data]).unwrap_err();
        injected += 1;
        fail::remove("swap-alloc");
        assert_eq!((err.code(), err.errno()), ("ERR_COLDPAGE_IO", Some(common::errno::ENOMEM)));
        assert_eq!(pager.stats().swap.handles, 0);
        let swapped = pager.pageout_to(Backend::Swap, &[&data]).unwrap();
        assert_eq!(swapped.read_at(0, 1 << 20).unwrap(), data);
    }

    assert_eq!(data, copy, "the caller's bytes are untouched");
    assert_eq!(live.read_at(0, 1 << 20).unwrap(), data, "the handle stays usable");
    assert_eq!(pager.stats().errors, injected, "every surfaced failure is counted once");
    assert_eq!(pager.stats().scratch_bytes_allocated % page, 0);
    eprintln!("failpoints (views, arena open, swap, partial reads): {injected} faults injected, all survived");
    scenario.teardown();
}

/// A random workload under random faults at every point: each operation either gives
/// the model's bytes or fails with a contract error, the stats agree with the model
/// after every step, and everything still reads back once the faults stop.
#[test]
fn random_faults_keep_the_model_and_the_stats() {
    use coldpage::Handle;

    const POINTS: [&str; 8] = [
        "file-write",
        "file-write-nospace",
        "arena-allocate",
        "arena-punch",
        "file-read",
        "file-map",
        "swap-alloc",
        "arena-open",
    ];
    let steps: u64 = std::env::var("COLDPAGE_FAULT_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let scenario = fail::FailScenario::setup();
    let (pager, _dir) = pager();
    for point in POINTS {
        fail::cfg(point, "7%return").unwrap();
    }
    let mut next = common::rng(0x2545_F491_4F6C_DD1D);
    let swap = cfg!(target_os = "linux");
    let page = 4096u64;
    let mut live: Vec<(Handle, Vec<u8>)> = Vec::new();
    let mut tally = Tally::default();
    for step in 0..steps {
        let op = next() % 8;
        if live.is_empty() || op < 3 {
            // Sizes from 0 to ~1 MiB, most of them small.
            let len = (next() % (1 << (next() % 21))) as usize;
            let data = pattern(len, step);
            let cut = if len == 0 { 0 } else { (next() as usize) % len };
            let backend = if swap && next().is_multiple_of(3) { Backend::Swap } else { Backend::File };
            match pager.pageout_to(backend, &[&data[..cut], &data[cut..]]) {
                Ok(h) => {
                    tally.ok += 1;
                    live.push((h, data));
                }
                Err(e) => tally.outcome(Err(e), "pageout"),
            }
        } else {
            let i = (next() as usize) % live.len();
            let (h, data) = &live[i];
            let n = data.len() as u64;
            let off = if n == 0 { 0 } else { next() % n };
            let len = if n == 0 { 0 } else { next() % (n - off + 1) };
            let want = &data[off as usize..(off + len) as usize];
            match op {
                3 => tally.outcome(h.read_at(off, len).map(|got| assert_eq!(got, want, "read_at")), "read_at"),
                4 => {
                    let ranges = [(off, len), (0, n.min(10)), (n - len, len)];
                    tally.outcome(
                        h.read_at_many(&ranges).map(|got| {
                            for (&(o, l), g) in ranges.iter().zip(&got) {
                                assert_eq!(g, &data[o as usize..(o + l) as usize], "read_at_many");
                            }
                        }),
                        "read_at_many",
                    )
                }
                5 => tally.outcome(h.view(off, len).map(|lease| assert_eq!(&*lease, want, "view")), "view"),
                6 => {
                    let (h, data) = live.swap_remove(i);
                    tally.outcome(h.take().map(|t| assert_eq!(&*t, &data[..], "take")).map_err(|e| e.error), "take");
                }
                _ => drop(live.swap_remove(i)),
            }
        }
        let s = pager.stats();
        let count = |b: Backend| live.iter().filter(|(h, _)| h.backend() == b).count() as u64;
        let bytes = |b: Backend| live.iter().filter(|(h, _)| h.backend() == b).map(|(h, _)| h.len()).sum::<u64>();
        let scratch: u64 = live
            .iter()
            .filter(|(h, _)| h.backend() == Backend::File)
            .map(|(h, _)| h.len().next_multiple_of(page))
            .sum();
        assert_eq!(
            (s.file.handles, s.file.bytes, s.swap.handles, s.swap.bytes, s.scratch_bytes_allocated, s.errors),
            (
                count(Backend::File),
                bytes(Backend::File),
                count(Backend::Swap),
                bytes(Backend::Swap),
                scratch,
                tally.failed
            ),
            "step {step}: {s:?}"
        );
        if live.len() > 64 {
            live.truncate(32);
        }
    }
    for point in POINTS {
        fail::remove(point);
    }
    for (h, data) in &live {
        assert_eq!(h.read_at(0, h.len()).unwrap(), *data, "readable once the faults stop");
    }
    drop(live);
    let s = pager.stats();
    assert_eq!((s.file.handles, s.swap.handles, s.scratch_bytes_allocated), (0, 0, 0), "{s:?}");
    let Tally { ok, failed } = tally;
    assert!(failed > steps / 50, "faults were injected: {failed} of {steps}");
    eprintln!(
        "random faults: {steps} operations, {failed} failed by injected faults (all contract errors), \
         {ok} succeeded with the model's bytes"
    );
    scenario.teardown();
}

/// Operations that succeeded and that failed (with a contract error) under faults.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
}

impl Tally {
    fn outcome(&mut self, r: Result<(), coldpage::Error>, what: &str) {
        match r {
            Ok(()) => self.ok += 1,
            Err(e) => {
                assert!(matches!(e.code(), "ERR_COLDPAGE_IO" | "ERR_COLDPAGE_NO_SPACE"), "{what}: {e}");
                self.failed += 1;
            }
        }
    }
}

/// A byte that rots on the medium (a read that succeeds with one byte flipped) is
/// `ERR_COLDPAGE_CORRUPT` for every read form, never returned, on every platform
/// (tests/corruption.rs flips real arena bytes, through `/proc/self/fd`, on Linux).
#[test]
fn a_byte_flipped_on_the_medium_is_corrupt_never_returned() {
    let scenario = fail::FailScenario::setup();
    let (pager, _dir) = pager();
    let data = pattern(5 * coldpage::CHECKSUM_BLOCK as usize + 100, 9);
    let h = pager.pageout_to(Backend::File, &[&data]).unwrap();
    fail::cfg("file-read-flip", "return").unwrap();
    for (off, len) in [
        (0u64, 1u64),
        (100, 3 * coldpage::CHECKSUM_BLOCK),
        (0, data.len() as u64),
        (coldpage::CHECKSUM_BLOCK * 2 + 7, 9),
    ] {
        assert_eq!(h.read_at(off, len).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT", "read_at [{off}, +{len})");
        let mut buf = vec![0xEE; len as usize];
        assert_eq!(h.read_into(off, &mut buf).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
        assert!(buf.iter().all(|&b| b == 0), "a failed read_into leaves no rotten bytes behind");
        assert_eq!(h.read_at_many(&[(off, len), (0, 1)]).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT");
    }
    assert!(pager.stats().checksum_failures >= 12);
    fail::remove("file-read-flip");
    assert_eq!(h.read_at(0, data.len() as u64).unwrap(), data, "good bytes again once the medium is");
    scenario.teardown();
}

/// Two releases at once, the second being the last live extent: the first is paused
/// right after it counted itself out (where it used to decide "others are live, into
/// the bin" without the lock), while the second releases. Whatever the timing, once
/// both are done nothing stays on disk and the books read 0.
#[test]
fn the_last_release_empties_the_bin_even_with_a_release_in_between() {
    let scenario = fail::FailScenario::setup();
    let (pager, _dir) = pager();
    let data = pattern(64 << 10, 6);
    let first = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let last = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let (reached, wait) = std::sync::mpsc::channel::<()>();
    let reached = std::sync::Mutex::new(Some(reached));
    fail::cfg_callback("arena-release-gap", move || {
        if let Some(tx) = reached.lock().unwrap().take() {
            tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    })
    .unwrap();
    let releasing = std::thread::spawn(move || drop(first));
    wait.recv().unwrap();
    drop(last);
    releasing.join().unwrap();
    fail::remove("arena-release-gap");
    let s = pager.stats();
    assert_eq!((s.file.handles, s.scratch_bytes_allocated), (0, 0), "{s:?}");
    if pager.hole_punching() {
        assert_eq!(s.scratch_bytes_on_disk, 0, "an extent stayed on disk with no live handle: {s:?}");
    }
    scenario.teardown();
}

/// `HandleCell::take` is take-or-give-back: a take whose read fails leaves the cell
/// live and readable, alone or shared with a read in flight.
#[test]
fn a_failed_take_gives_the_handle_back_to_its_cell() {
    let scenario = fail::FailScenario::setup();
    let (pager, _dir) = pager();
    let data = pattern(300_000, 8);
    let cell = coldpage::HandleCell::new(pager.pageout_to(Backend::File, &[&data]).unwrap());
    for shared in [false, true] {
        let in_flight = shared.then(|| cell.get().unwrap());
        fail::cfg("file-read", "return").unwrap();
        assert_eq!(cell.take().unwrap_err().code(), "ERR_COLDPAGE_IO", "shared: {shared}");
        fail::remove("file-read");
        assert!(cell.is_live(), "shared: {shared}");
        assert_eq!(cell.get().unwrap().read_at(0, data.len() as u64).unwrap(), data);
        drop(in_flight);
    }
    assert_eq!(&*cell.take().unwrap(), &data[..]);
    assert!(!cell.is_live());
    assert_eq!(pager.stats().file.handles, 0);
    scenario.teardown();
}

/// The same faults on encrypted and compressed pageouts: write errors and a full disk
/// lose nothing and give the extent back, read errors are `Io`, a byte flipped on the
/// medium is `Corrupt`, and the pager keeps working.
#[test]
fn faults_in_encoded_pageouts_and_reads() {
    let scenario = fail::FailScenario::setup();
    for (encrypt, compress) in
        [(true, coldpage::Compression::None), (false, coldpage::Compression::Lz4), (true, coldpage::Compression::Lz4)]
    {
        let (pager, _dir) = common::pager_with(|c| {
            c.encrypt = encrypt;
            c.compress = compress;
        });
        let what = format!("encrypt {encrypt}, {compress:?}");
        // Compressible and incompressible halves, over several 1 MiB pieces.
        let mut data = vec![7u8; 3 << 20];
        data.extend_from_slice(&pattern(1 << 20, 5));
        let copy = data.clone();
        let live = pager.pageout_to(Backend::File, &[&data]).unwrap();
        let allocated = pager.stats().scratch_bytes_allocated;
        for (point, code) in [("file-write", "ERR_COLDPAGE_IO"), ("file-write-nospace", "ERR_COLDPAGE_NO_SPACE")] {
            fail::cfg(point, "1*off->return").unwrap();
            let err = pager.pageout_to(Backend::File, &[&data]).unwrap_err();
            fail::remove(point);
            assert_eq!(err.code(), code, "{point}, {what}: {err}");
            assert_eq!(data, copy, "{point}: the caller's bytes are untouched");
            let s = pager.stats();
            assert_eq!((s.file.handles, s.scratch_bytes_allocated), (1, allocated), "{point}, {what}: {s:?}");
            let again = pager.pageout_to(Backend::File, &[&data]).unwrap();
            assert_eq!(again.read_at(0, data.len() as u64).unwrap(), data, "{point}, {what}: pageouts work again");
        }
        fail::cfg("file-read", "return").unwrap();
        assert_eq!(live.read_at(10, 5000).unwrap_err().code(), "ERR_COLDPAGE_IO", "{what}");
        fail::remove("file-read");
        fail::cfg("file-read-flip", "return").unwrap();
        let mut buf = vec![0xEE; 10_000];
        assert_eq!(live.read_into(4000, &mut buf).unwrap_err().code(), "ERR_COLDPAGE_CORRUPT", "{what}");
        fail::remove("file-read-flip");
        assert!(buf.iter().all(|&b| b == 0), "{what}: nothing wrong is left behind");
        assert_eq!(live.read_at(0, data.len() as u64).unwrap(), data, "{what}: the handle stays usable");
    }
    scenario.teardown();
}
