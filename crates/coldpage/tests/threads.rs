//! Handles read from many threads at once match the model.

mod common;

use std::sync::Arc;

use coldpage::Backend;
use common::{pager, pattern};

#[test]
fn eight_threads_read_concurrently() {
    let (pager, _dir) = pager();
    let datas: Vec<Vec<u8>> = (0..6).map(|i| pattern(50_000 + i * 7_777, i as u64)).collect();
    let handles: Arc<Vec<(coldpage::Handle, Vec<u8>)>> = Arc::new(
        datas
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let backend = if i % 2 == 0 { Backend::File } else { Backend::Swap };
                (pager.pageout_to(backend, &[&d[..d.len() / 3], &d[d.len() / 3..]]).unwrap(), d)
            })
            .collect(),
    );
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let handles = Arc::clone(&handles);
            let pager = pager.clone();
            std::thread::spawn(move || {
                let mut x = t + 1;
                for i in 0..2_000u64 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let (h, d) = &handles[(x >> 33) as usize % handles.len()];
                    let off = (x >> 20) % d.len() as u64;
                    let len = ((x >> 8) % 9_000).min(d.len() as u64 - off);
                    let want = &d[off as usize..(off + len) as usize];
                    match i % 4 {
                        0 => assert_eq!(h.read_at(off, len).unwrap(), want),
                        1 => {
                            let mut buf = vec![0; len as usize];
                            h.read_into(off, &mut buf).unwrap();
                            assert_eq!(buf, want);
                        }
                        2 => assert_eq!(h.read_at_many(&[(off, len), (0, 1)]).unwrap()[0], want),
                        _ => assert_eq!(&*h.view(off, len).unwrap(), want),
                    }
                    if i % 500 == 0 {
                        // Pageouts and drops from other threads meanwhile.
                        let tmp = pager.pageout_to(Backend::File, &[want]).unwrap();
                        assert_eq!(tmp.read_at(0, len).unwrap(), want);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(pager.stats().checksum_failures, 0);
}

/// The last handle's release empties the recycle bin, even when another thread's
/// release is pushing into it at that moment: once nothing is live, nothing of the
/// arena stays on disk (the books, which do not count the bin, read 0 too).
#[test]
fn nothing_stays_on_disk_once_the_last_handle_goes() {
    let (pager, _dir) = pager();
    let pager = Arc::new(pager);
    let data = pattern(64 << 10, 4);
    for round in 0..200 {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (pager, data) = (Arc::clone(&pager), data.clone());
                std::thread::spawn(move || {
                    let handles: Vec<_> = (0..4).map(|_| pager.pageout_to(Backend::File, &[&data]).unwrap()).collect();
                    drop(handles);
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let s = pager.stats();
        assert_eq!((s.file.handles, s.scratch_bytes_allocated), (0, 0), "round {round}: {s:?}");
        if pager.hole_punching() {
            assert_eq!(s.scratch_bytes_on_disk, 0, "round {round}: bytes left on disk with no live handle: {s:?}");
        }
    }
}
