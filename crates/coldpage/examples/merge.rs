//! The merge workload of DESIGN.md's Materialize figures: two chains of 2 MiB chunks,
//! each chunk paged out as its own handle, merged into an output chain.
//!
//! Each chain is one sorted run of `u64`s cut into chunks. The merge takes the next
//! chunk of whichever input it has used up (so one chunk from each chain is in memory
//! at a time), reads every value (every cache line), and pages each filled 2 MiB output
//! chunk back out, until both inputs are consumed. With `--threads T`, T independent
//! merges run in parallel, each on its own chains.
//!
//! ```text
//! cargo run --release -p coldpage --example merge -- --backend file --chain-mib 512
//!     --backend swap|file|auto|none  where chunks are paged out (default file); `none`
//!                                keeps them as plain heap buffers, the no-pager baseline
//!     --chain-mib N              MiB per input chain, rounded up to whole chunks (default 1024)
//!     --threads T                independent merges in parallel (default 1)
//!     --scratch-dir PATH         the file backend's scratch dir (default: the pager's)
//!     --compress none|lz4        the file backend's block compression (default none)
//!     --encrypt 0|1              the file backend's encryption (default 0)
//! ```
//!
//! Only the merge is timed; building the inputs comes before and checking the output
//! after. Times and faults are `getrusage(RUSAGE_SELF)` deltas over the merge; peak RSS
//! is the process's. The output is read back and checked (sorted, count, and a
//! checksum of every value against the inputs'): a wrong byte anywhere exits 1.
//! Prints one line for people and one `JSON: {...}` line for scripts.

use std::collections::VecDeque;
use std::error::Error;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use coldpage::{Backend, Config, Handle, Pager, Selector, Taken};
use std::ops::Deref;

const MIB: u64 = 1024 * 1024;
const CHUNK_BYTES: usize = 2 * MIB as usize;
const WORD: usize = std::mem::size_of::<u64>();
const CHUNK_WORDS: usize = CHUNK_BYTES / WORD;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

struct Args {
    backend: Selector,
    /// `--backend none`: no pager at all.
    no_pager: bool,
    chain_mib: u64,
    threads: usize,
    scratch_dir: Option<PathBuf>,
    compress: coldpage::Compression,
    encrypt: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        backend: Selector::File,
        no_pager: false,
        chain_mib: 1024,
        threads: 1,
        scratch_dir: None,
        compress: coldpage::Compression::None,
        encrypt: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!(
                "usage: merge [--backend swap|file|auto|none] [--chain-mib N] [--threads T] [--scratch-dir PATH] \
                 [--compress none|lz4] [--encrypt 0|1]"
            );
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--backend" => {
                args.backend = match value.as_str() {
                    "swap" => Selector::Swap,
                    "file" => Selector::File,
                    "auto" => Selector::Auto,
                    "none" => {
                        args.no_pager = true;
                        Selector::Auto
                    }
                    other => return Err(format!("--backend must be swap, file, auto or none, got {other:?}").into()),
                }
            }
            "--chain-mib" => args.chain_mib = value.parse().map_err(|e| format!("--chain-mib {value:?}: {e}"))?,
            "--threads" => args.threads = value.parse().map_err(|e| format!("--threads {value:?}: {e}"))?,
            "--scratch-dir" => args.scratch_dir = Some(PathBuf::from(value)),
            "--compress" => args.compress = value.parse()?,
            "--encrypt" => args.encrypt = value == "1",
            other => return Err(format!("unknown flag {other:?} (try --help)").into()),
        }
    }
    if args.chain_mib == 0 || args.threads == 0 {
        return Err("--chain-mib and --threads must be positive".into());
    }
    Ok(args)
}

/// An order-independent checksum of a multiset of values: a wrapping sum of a strong
/// mix of each value (splitmix64's finaliser), so any changed value changes it.
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn word(bytes: &[u8], i: usize) -> u64 {
    let at = i * WORD;
    u64::from_ne_bytes(bytes[at..at + WORD].try_into().expect("eight bytes"))
}

/// Where chunks live between pageout and take: the pager, or plain heap buffers.
#[derive(Clone)]
enum Store {
    Pager(Pager),
    Heap,
}

/// One chunk at rest.
enum Chunk {
    Paged(Handle),
    Heap(Vec<u8>),
}

/// One chunk taken back.
enum Bytes {
    Taken(Taken),
    Heap(Vec<u8>),
}

impl Store {
    fn put(&self, bytes: &[u8]) -> Result<Chunk> {
        Ok(match self {
            Store::Pager(pager) => Chunk::Paged(pager.pageout(&[bytes])?),
            Store::Heap => Chunk::Heap(bytes.to_vec()),
        })
    }
}

impl Chunk {
    fn take(self) -> Result<Bytes> {
        Ok(match self {
            Chunk::Paged(handle) => Bytes::Taken(handle.take()?),
            Chunk::Heap(v) => Bytes::Heap(v),
        })
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Taken(t) => t,
            Bytes::Heap(v) => v,
        }
    }
}

/// A chain: sorted `u64`s in 2 MiB chunks, each its own handle, first chunk first.
struct Chain {
    chunks: VecDeque<Chunk>,
    words: u64,
    checksum: u64,
}

/// Pages out a sorted run of `chunks` chunks with random gaps (xorshift, seeded).
fn build_chain(store: &Store, chunks: u64, seed: u64) -> Result<Chain> {
    let mut state = seed | 1;
    let mut value = 0u64;
    let mut chain = Chain { chunks: VecDeque::new(), words: 0, checksum: 0 };
    let mut buf = vec![0u8; CHUNK_BYTES];
    for _ in 0..chunks {
        for slot in buf.chunks_exact_mut(WORD) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            value += state >> 44; // gaps below 2^20: two chains interleave finely
            slot.copy_from_slice(&value.to_ne_bytes());
            chain.checksum = chain.checksum.wrapping_add(mix(value));
        }
        chain.words += CHUNK_WORDS as u64;
        chain.chunks.push_back(store.put(&buf)?);
    }
    Ok(chain)
}

/// The chunk of a chain being merged, and how far into it the merge is.
struct Cursor {
    chain: VecDeque<Chunk>,
    chunk: Option<Bytes>,
    at: usize,
    words: usize,
}

impl Cursor {
    fn new(chain: VecDeque<Chunk>) -> Cursor {
        Cursor { chain, chunk: None, at: 0, words: 0 }
    }

    /// Makes sure a value is ready; false once the chain is consumed. Each `take` of
    /// the next chunk drops the previous one first.
    fn ready(&mut self) -> Result<bool> {
        while self.at == self.words {
            self.chunk = None;
            let Some(handle) = self.chain.pop_front() else { return Ok(false) };
            let taken = handle.take()?;
            if taken.len() % WORD != 0 {
                return Err(format!("chunk of {} bytes is not whole words", taken.len()).into());
            }
            self.words = taken.len() / WORD;
            self.at = 0;
            self.chunk = Some(taken);
        }
        Ok(true)
    }

    fn bytes(&self) -> &[u8] {
        self.chunk.as_deref().unwrap_or(&[])
    }
}

/// Collects merged values into 2 MiB chunks and pages each full one out.
struct Output<'p> {
    store: &'p Store,
    buf: Vec<u8>,
    filled: usize,
    chain: VecDeque<Chunk>,
}

impl Output<'_> {
    fn push_from(&mut self, src: &[u8], from: usize, words: usize) -> Result<()> {
        let n = words * WORD;
        self.buf[self.filled..self.filled + n].copy_from_slice(&src[from * WORD..from * WORD + n]);
        self.filled += n;
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.filled == CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.filled > 0 {
            self.chain.push_back(self.store.put(&self.buf[..self.filled])?);
            self.filled = 0;
        }
        Ok(())
    }
}

/// Merges two chains into an output chain, consuming them.
fn merge(store: &Store, a: Chain, b: Chain) -> Result<VecDeque<Chunk>> {
    let (mut a, mut b) = (Cursor::new(a.chunks), Cursor::new(b.chunks));
    let mut out = Output { store, buf: vec![0u8; CHUNK_BYTES], filled: 0, chain: VecDeque::new() };
    loop {
        match (a.ready()?, b.ready()?) {
            (true, true) => {
                // Merge until a chunk runs out or the output chunk fills.
                let room = (CHUNK_BYTES - out.filled) / WORD;
                let (sa, sb) = (a.bytes(), b.bytes());
                let (mut i, mut j) = (a.at, b.at);
                let at = out.filled;
                let mut written = 0;
                while written < room && i < a.words && j < b.words {
                    let (x, y) = (word(sa, i), word(sb, j));
                    let v = if x <= y { x } else { y };
                    out.buf[at + written * WORD..at + (written + 1) * WORD].copy_from_slice(&v.to_ne_bytes());
                    i += usize::from(x <= y);
                    j += usize::from(x > y);
                    written += 1;
                }
                (a.at, b.at) = (i, j);
                out.filled += written * WORD;
                out.flush_if_full()?;
            }
            // One input is consumed: copy the other through (still reading every line).
            (true, false) | (false, true) => {
                let rest = if a.at < a.words { &mut a } else { &mut b };
                let n = (rest.words - rest.at).min((CHUNK_BYTES - out.filled) / WORD);
                let from = rest.at;
                rest.at += n;
                out.push_from(rest.bytes(), from, n)?;
            }
            (false, false) => break,
        }
    }
    out.flush()?;
    Ok(out.chain)
}

/// Takes every output chunk and checks the run is sorted and holds exactly the input
/// values (count and checksum).
fn check(output: VecDeque<Chunk>, words: u64, checksum: u64) -> Result<()> {
    let (mut seen, mut sum, mut prev) = (0u64, 0u64, 0u64);
    for (index, handle) in output.into_iter().enumerate() {
        let chunk = handle.take()?;
        for i in 0..chunk.len() / WORD {
            let v = word(&chunk, i);
            if v < prev {
                return Err(format!("output not sorted: {v} after {prev} in chunk {index} word {i}").into());
            }
            prev = v;
            sum = sum.wrapping_add(mix(v));
        }
        seen += (chunk.len() / WORD) as u64;
    }
    if seen != words || sum != checksum {
        return Err(format!(
            "output differs from the inputs: {seen} values (expected {words}), checksum {sum:#x} (expected {checksum:#x})"
        )
        .into());
    }
    Ok(())
}

struct Usage {
    user: f64,
    sys: f64,
    major: i64,
    minor: i64,
    max_rss_kib: i64,
}

#[cfg(not(unix))]
fn usage() -> Usage {
    // getrusage is Unix-only; the merge's wall time and checks still hold.
    Usage { user: 0.0, sys: 0.0, major: 0, minor: 0, max_rss_kib: 0 }
}

#[cfg(unix)]
fn usage() -> Usage {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` to the valid pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) cannot fail with valid arguments");
    // SAFETY: zero-initialised and then filled by the successful getrusage above.
    let ru = unsafe { ru.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        user: secs(ru.ru_utime),
        sys: secs(ru.ru_stime),
        major: ru.ru_majflt,
        minor: ru.ru_minflt,
        max_rss_kib: ru.ru_maxrss,
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("merge: FAILED: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let mut config = Config::default();
    if let Some(dir) = &args.scratch_dir {
        config.scratch_dir = dir.clone();
    }
    config.compress = args.compress;
    config.encrypt = args.encrypt;
    let pager = Pager::new(config)?;
    pager.set_backend(args.backend);
    let store = if args.no_pager { Store::Heap } else { Store::Pager(pager.clone()) };
    let backend = match args.backend {
        Selector::Swap => Backend::Swap,
        Selector::File => Backend::File,
        Selector::Auto => pager.auto_choice().backend,
    };
    if !args.no_pager && backend == Backend::Swap && coldpage::swap_total_bytes() == 0 {
        eprintln!("merge: note: no active swap, so swap-backed chunks cannot leave RAM");
    }
    let chunks = args.chain_mib.div_ceil(CHUNK_BYTES as u64 / MIB);
    let chain_bytes = chunks * CHUNK_BYTES as u64;

    // Build, then (all threads at once) merge, then check: main times the middle.
    let built = Arc::new(Barrier::new(args.threads + 1));
    let merged = Arc::new(Barrier::new(args.threads + 1));
    let workers: Vec<_> = (0..args.threads)
        .map(|t| {
            let (store, built, merged) = (store.clone(), Arc::clone(&built), Arc::clone(&merged));
            std::thread::spawn(move || -> Result<()> {
                let inputs = build_chain(&store, chunks, 2 * t as u64 + 1)
                    .and_then(|a| Ok((a, build_chain(&store, chunks, 2 * t as u64 + 2)?)));
                // Every barrier is reached even after an error, so main never hangs.
                built.wait();
                built.wait();
                let output = inputs.and_then(|(a, b)| {
                    let (words, checksum) = (a.words + b.words, a.checksum.wrapping_add(b.checksum));
                    Ok((merge(&store, a, b)?, words, checksum))
                });
                merged.wait();
                let (output, words, checksum) = output?;
                check(output, words, checksum)
            })
        })
        .collect();
    built.wait();
    let (before, start) = (usage(), Instant::now());
    built.wait();
    merged.wait();
    let (wall, after) = (start.elapsed().as_secs_f64(), usage());
    for (t, worker) in workers.into_iter().enumerate() {
        worker.join().map_err(|_| format!("thread {t} panicked"))?.map_err(|e| format!("thread {t}: {e}"))?;
    }

    let bytes = 2 * chain_bytes * args.threads as u64;
    let gib_s = bytes as f64 / (1u64 << 30) as f64 / wall;
    let (user, sys) = (after.user - before.user, after.sys - before.sys);
    let (major, minor) = (after.major - before.major, after.minor - before.minor);
    let rss_mib = after.max_rss_kib as f64 / 1024.0;
    let name = match backend {
        _ if args.no_pager => "none",
        Backend::Swap => "swap",
        Backend::File => "file",
    };
    println!(
        "merge {name}: {threads} thread(s) x 2 chains x {chain} MiB: {gib_s:.2} GiB/s, wall {wall:.2} s, \
         user {user:.2} s, sys {sys:.2} s, {major} major / {minor} minor faults, peak RSS {rss_mib:.0} MiB; \
         output verified",
        threads = args.threads,
        chain = chain_bytes / MIB,
    );
    println!(
        "JSON: {{\"backend\":\"{name}\",\"threads\":{},\"chain_mib\":{},\"chunk_mib\":{},\"bytes_merged\":{bytes},\
         \"gib_per_s\":{gib_s:.4},\"wall_s\":{wall:.4},\"user_s\":{user:.4},\"sys_s\":{sys:.4},\
         \"major_faults\":{major},\"minor_faults\":{minor},\"max_rss_mib\":{rss_mib:.1},\"swap_total_bytes\":{},\
         \"verified\":true}}",
        args.threads,
        chain_bytes / MIB,
        CHUNK_BYTES as u64 / MIB,
        coldpage::swap_total_bytes(),
    );
    Ok(())
}
