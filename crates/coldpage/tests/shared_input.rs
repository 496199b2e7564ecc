//! An input that another thread writes while a pageout reads it (a binding's
//! `SharedArrayBuffer`) stores one of the values each byte had, and the handle reads
//! back without a checksum failure: the checksums are of the bytes that reached the
//! file, not of another snapshot of the input (SPEC "Resources at scale").

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use coldpage::Backend;
use common::pager;

#[test]
fn a_pageout_of_memory_another_thread_writes_reads_back_whole() {
    let (pager, _dir) = pager();
    const WORDS: usize = 1 << 20; // 8 MiB
    let shared: Vec<AtomicU64> = (0..WORDS).map(|_| AtomicU64::new(0x1111_1111_1111_1111)).collect();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut value = 0x2222_2222_2222_2222u64;
            while !stop.load(Ordering::Relaxed) {
                for word in shared.iter().step_by(61) {
                    word.store(value, Ordering::Relaxed);
                }
                value ^= 0x3333_3333_3333_3333; // 0x22.. <-> 0x11..
            }
        });
        for round in 0..4 {
            // SAFETY: not sound in Rust's model (the bytes change under a `&[u8]`), but
            // exactly what a binding hands the core for a SharedArrayBuffer: memory another
            // thread writes with plain stores. The pager only reads it, and only the values
            // that reach the file are checked below.
            let bytes = unsafe { std::slice::from_raw_parts(shared.as_ptr().cast::<u8>(), WORDS * 8) };
            let h = pager.pageout_to(Backend::File, &[&bytes[..3 << 20], &bytes[3 << 20..]]).unwrap();
            let back = h.read_at(0, h.len()).unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(back.iter().all(|&b| b == 0x11 || b == 0x22), "round {round}: every byte is a value it had");
            let mut view = vec![0u8; 4096];
            h.read_into((5 << 20) + 7, &mut view).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
}
