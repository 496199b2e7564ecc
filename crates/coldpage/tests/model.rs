//! Model-based property test: random operation sequences on both backends against a
//! `Vec<u8>` model.

mod common;

use coldpage::{Backend, Handle, Selector};
use common::{pager, pattern};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Chunk sizes and a seed for their bytes.
    Pageout(Vec<usize>, u64),
    /// Handle slot, then fractions of its length for offset and length.
    ReadAt(usize, u16, u16),
    ReadAtMany(usize, Vec<(u16, u16)>),
    ReadInto(usize, u16, u16),
    View(usize, u16, u16),
    Take(usize),
    Drop(usize),
    SetBackend(Selector),
    SetVerify(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![0usize..10, 4090usize..4100, 0usize..20_000];
    let frac = any::<u16>();
    prop_oneof![
        3 => (prop::collection::vec(size, 0..4), any::<u64>()).prop_map(|(s, seed)| Op::Pageout(s, seed)),
        3 => (any::<usize>(), frac, frac).prop_map(|(h, o, l)| Op::ReadAt(h, o, l)),
        2 => (any::<usize>(), prop::collection::vec((frac, frac), 0..12)).prop_map(|(h, r)| Op::ReadAtMany(h, r)),
        2 => (any::<usize>(), frac, frac).prop_map(|(h, o, l)| Op::ReadInto(h, o, l)),
        1 => (any::<usize>(), frac, frac).prop_map(|(h, o, l)| Op::View(h, o, l)),
        1 => any::<usize>().prop_map(Op::Take),
        1 => any::<usize>().prop_map(Op::Drop),
        1 => prop_oneof![Just(Selector::Swap), Just(Selector::File), Just(Selector::Auto)].prop_map(Op::SetBackend),
        1 => any::<bool>().prop_map(Op::SetVerify),
    ]
}

/// Maps fractions to a range that may run past the end (1 in 8) to exercise errors.
fn range(len: usize, o: u16, l: u16) -> (u64, u64) {
    let off = (len as u64 + 1) * o as u64 / 65_536;
    let max = len as u64 - off.min(len as u64);
    let n = if l % 8 == 7 { max + 1 + l as u64 % 3 } else { max * l as u64 / 65_536 };
    (off, n)
}

fn check_range(model: &[u8], (off, len): (u64, u64)) -> Option<&[u8]> {
    let end = off.checked_add(len)?;
    model.get(off as usize..end as usize)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides, e.g. for a quick run under valgrind.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2_000),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn pager_matches_a_vec_model(ops in prop::collection::vec(op(), 1..24), first in prop_oneof![Just(Selector::Swap), Just(Selector::File)]) {
        let (pager, _dir) = pager();
        pager.set_backend(first);
        let mut live: Vec<(Handle, Vec<u8>)> = Vec::new();
        for op in ops {
            let slot = |i: usize, n: usize| if n == 0 { None } else { Some(i % n) };
            match op {
                Op::Pageout(sizes, seed) => {
                    let chunks: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| pattern(n, seed ^ i as u64)).collect();
                    let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
                    let h = pager.pageout(&refs).unwrap();
                    let want = match pager.backend() { Selector::Swap => Backend::Swap, Selector::File => Backend::File, Selector::Auto => pager.auto_choice().backend };
                    prop_assert_eq!(h.backend(), want);
                    live.push((h, chunks.concat()));
                }
                Op::ReadAt(i, o, l) => if let Some(i) = slot(i, live.len()) {
                    let (h, m) = &live[i];
                    let r = range(m.len(), o, l);
                    match (h.read_at(r.0, r.1), check_range(m, r)) {
                        (Ok(got), Some(want)) => prop_assert_eq!(got.as_slice(), want),
                        (Err(e), None) => prop_assert_eq!(e.code(), "ERR_OUT_OF_RANGE"),
                        (got, want) => prop_assert!(false, "read_at {:?}: {:?} vs model {:?}", r, got.map(|v| v.len()), want.map(<[u8]>::len)),
                    }
                },
                Op::ReadAtMany(i, fracs) => if let Some(i) = slot(i, live.len()) {
                    let (h, m) = &live[i];
                    let ranges: Vec<(u64, u64)> = fracs.iter().map(|&(o, l)| range(m.len(), o, l)).collect();
                    let want: Option<Vec<&[u8]>> = ranges.iter().map(|&r| check_range(m, r)).collect();
                    match (h.read_at_many(&ranges), want) {
                        (Ok(got), Some(want)) => {
                            prop_assert_eq!(got.len(), want.len());
                            for (g, w) in got.iter().zip(&want) { prop_assert_eq!(g.as_slice(), *w); }
                            // The same ranges into one caller-owned buffer.
                            let mut all = vec![0x55; want.iter().map(|w| w.len()).sum()];
                            h.read_at_many_into(&ranges, &mut all).unwrap();
                            prop_assert_eq!(all, want.concat());
                            let mut short = vec![0; want.iter().map(|w| w.len()).sum::<usize>() + 1];
                            prop_assert_eq!(h.read_at_many_into(&ranges, &mut short).unwrap_err().code(), "ERR_OUT_OF_RANGE");
                        }
                        (Err(e), None) => prop_assert_eq!(e.code(), "ERR_OUT_OF_RANGE"),
                        (got, want) => prop_assert!(false, "read_at_many {:?}: {:?} vs {:?}", ranges, got.is_ok(), want.is_some()),
                    }
                },
                Op::ReadInto(i, o, l) => if let Some(i) = slot(i, live.len()) {
                    let (h, m) = &live[i];
                    let r = range(m.len(), o, l);
                    let mut buf = vec![0x77; r.1.min(1 << 20) as usize];
                    match (h.read_into(r.0, &mut buf), check_range(m, r)) {
                        (Ok(()), Some(want)) => prop_assert_eq!(buf.as_slice(), want),
                        (Err(e), None) => prop_assert_eq!(e.code(), "ERR_OUT_OF_RANGE"),
                        (got, want) => prop_assert!(false, "read_into {:?}: {:?} vs {:?}", r, got, want.is_some()),
                    }
                },
                Op::View(i, o, l) => if let Some(i) = slot(i, live.len()) {
                    let (h, m) = &live[i];
                    let r = range(m.len(), o, l);
                    match (h.view(r.0, r.1), check_range(m, r)) {
                        (Ok(lease), Some(want)) => prop_assert_eq!(&*lease, want),
                        (Err(e), None) => prop_assert_eq!(e.code(), "ERR_OUT_OF_RANGE"),
                        (got, want) => prop_assert!(false, "view {:?}: {:?} vs {:?}", r, got.is_ok(), want.is_some()),
                    }
                },
                Op::Take(i) => if let Some(i) = slot(i, live.len()) {
                    let (h, m) = live.swap_remove(i);
                    let zero_copy_expected = h.backend() == Backend::Swap && !m.is_empty();
                    let taken = h.take().unwrap();
                    prop_assert_eq!(taken.is_zero_copy(), zero_copy_expected);
                    prop_assert_eq!(&*taken, m.as_slice());
                },
                Op::Drop(i) => if let Some(i) = slot(i, live.len()) { live.swap_remove(i); },
                Op::SetBackend(s) => pager.set_backend(s),
                Op::SetVerify(verify) => pager.configure(coldpage::Config { verify, ..pager.config() }).unwrap(),
            }
            let s = pager.stats();
            let count = |b| live.iter().filter(|(h, _)| h.backend() == b).count() as u64;
            let bytes = |b| live.iter().filter(|(h, _)| h.backend() == b).map(|(_, m)| m.len() as u64).sum::<u64>();
            prop_assert_eq!((s.swap.handles, s.swap.bytes), (count(Backend::Swap), bytes(Backend::Swap)));
            prop_assert_eq!((s.file.handles, s.file.bytes), (count(Backend::File), bytes(Backend::File)));
        }
        live.clear();
        let s = pager.stats();
        prop_assert_eq!((s.swap.handles, s.file.handles, s.scratch_bytes_allocated, s.checksum_failures), (0, 0, 0, 0));
    }
}
