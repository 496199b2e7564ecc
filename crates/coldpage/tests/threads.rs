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
