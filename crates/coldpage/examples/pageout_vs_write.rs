//! Times a 64 MiB file pageout against writing the same bytes at offset 0 of a file in
//! the same directory (what `fs.writeSync` costs), in one process.
//!
//! `cargo run --release -p coldpage --example pageout_vs_write`
use std::io::{Seek, SeekFrom, Write};
use std::time::Instant;

use coldpage::{Backend, Config, Pager};

fn main() {
    let len = 64usize << 20;
    let data: Vec<u8> = (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4]).collect();
    let pager = Pager::new(Config::default()).unwrap();
    let keep = pager.pageout_to(Backend::File, &[&data[..4096]]).unwrap();
    let path = Config::default().scratch_dir.join(format!("coldpage-pvw-{}", std::process::id()));
    let mut file = std::fs::File::options().read(true).write(true).create_new(true).open(&path).unwrap();
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..10 {
            drop(pager.pageout_to(Backend::File, &[&data]).unwrap());
        }
        let ours = t.elapsed().as_secs_f64() * 100.0;
        let t = Instant::now();
        for _ in 0..10 {
            file.seek(SeekFrom::Start(0)).unwrap();
            file.write_all(&data).unwrap();
        }
        let theirs = t.elapsed().as_secs_f64() * 100.0;
        println!("pageout {ours:.2} ms, write {theirs:.2} ms, ratio {:.2}", ours / theirs);
    }
    drop(keep);
    std::fs::remove_file(path).unwrap();
}
