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
    assert_eq!((io.errno(), io.syscall()), (Some(libc::EIO), Some("pwritev")));

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
