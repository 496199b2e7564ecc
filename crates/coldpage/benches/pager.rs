//! Benchmarks of the pager against baselines measured in the same run (issue 2).
//!
//! Criterion times every case; each routine is an `iter_custom` that also records its
//! samples, so after the criterion groups the summary prints the ratio of each goal
//! from the medians of the very samples criterion measured (no second run):
//!
//! - swap pageout throughput >= 0.8x `to_vec()` of the same bytes (a fresh buffer that
//!   pays page faults too), and, for reference, vs a copy into a pre-faulted buffer;
//! - file `read_at` / `read_into` of 64 MiB (page cache warm) >= 0.8x a bare `pread`
//!   loop (`FileExt::read_exact_at`) into a preallocated buffer, and 4 KiB reads
//!   <= 1.2x a bare `pread` per call;
//! - verify overhead <= 10% for reads of 64 KiB, 1 MiB and 64 MiB;
//! - swap `take` is O(1): 4 KiB and 1 GiB take the same time (timed one call at a time
//!   outside criterion, since every call consumes a freshly paged-out handle).
//!
//! Outputs (handles, `Vec`s) of timed calls are dropped outside the timer, except for
//! `read_at`, whose drop is part of what a caller pays per call.
//!
//! Scratch files go to `$COLDPAGE_BENCH_DIR`, else `target/tmp/coldpage-bench`. With
//! `-- --quick` (criterion's quick mode) the take measurement uses fewer rounds too.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coldpage::{Backend, Config, Handle, Pager};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};

const KIB: usize = 1024;

/// The baseline's positioned read: `pread` on Unix.
#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// The baseline's positioned read: `seek_read` on Windows.
#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}
const MIB: usize = 1024 * KIB;
const GIB: usize = 1024 * MIB;
/// Criterion's minimum; every case here is a single memory or I/O operation, so ten
/// samples of one second give stable medians and keep the run near a minute.
const SAMPLES: usize = 10;
/// How many bytes of timed outputs may be alive before they are dropped (untimed).
const BATCH_BYTES: usize = 64 * MIB;
/// At most this many outputs per batch, so 4 KiB swap handles stay far below
/// `vm.max_map_count` (each is its own mapping).
const BATCH_MAX: usize = 4096;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `cargo test --benches` runs each case once, without `--bench`.
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();

    let dir = scratch_dir();
    let pager = Pager::new(Config { scratch_dir: dir.clone(), ..Config::default() }).expect("bench pager");
    let samples = Samples { tail: if quick { 2 } else { SAMPLES }, by_id: RefCell::default() };

    swap_pageout(&mut c, &samples, &pager);
    file_read(&mut c, &samples, &pager, &dir);
    if test_mode {
        // One unoptimised call per case: the cases work, but there is nothing to compare.
        println!("test mode: skipped swap_take and the goal summary");
        return;
    }
    let rounds = if quick { 5 } else { 15 };
    let take =
        if filter_allows(&["swap_take/4 KiB", "swap_take/1 GiB"]) { swap_take(&pager, rounds) } else { Vec::new() };
    c.final_summary();

    println!("\ncoldpage goals (medians of the samples above; scratch dir {})", dir.display());
    for line in samples.summary().into_iter().chain(take) {
        println!("{line}");
    }
}

/// Whether criterion's name filter (if any) would run one of `ids`. An approximation
/// (substring, not regex) for the take measurement, which runs outside criterion.
fn filter_allows(ids: &[&str]) -> bool {
    const WITH_VALUE: &[&str] = &[
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--profile-time",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--color",
        "--format",
        "--output-format",
        "--plotting-backend",
        "--logfile",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with('-') && (*i == 0 || !WITH_VALUE.contains(&args[i - 1].as_str())));
    filter.is_none_or(|(_, f)| ids.iter().any(|id| id.contains(f.as_str())))
}

fn scratch_dir() -> PathBuf {
    let dir = match std::env::var_os("COLDPAGE_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("coldpage-bench"),
    };
    std::fs::create_dir_all(&dir).expect("create the bench scratch dir");
    dir
}

/// Per-call samples of every case, keyed `group/function/size`.
struct Samples {
    /// How many of a case's last samples are criterion's measurement (the ones before
    /// are its warm-up).
    tail: usize,
    by_id: RefCell<BTreeMap<String, Vec<(u64, Duration)>>>,
}

impl Samples {
    /// Registers `routine` (which times `iters` calls and returns the total) with
    /// criterion and records what it returns.
    fn bench(
        &self,
        group: &mut BenchmarkGroup<'_, WallTime>,
        group_name: &str,
        function: &str,
        size: usize,
        mut routine: impl FnMut(u64) -> Duration,
    ) {
        let key = format!("{group_name}/{function}/{size}");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new(function, human(size)), |b| {
            b.iter_custom(|iters| {
                let elapsed = routine(iters);
                self.by_id.borrow_mut().entry(key.clone()).or_default().push((iters, elapsed));
                elapsed
            })
        });
    }

    /// The median seconds per call over criterion's measurement samples of a case.
    fn median(&self, group: &str, function: &str, size: usize) -> Option<f64> {
        let by_id = self.by_id.borrow();
        let all = by_id.get(&format!("{group}/{function}/{size}"))?;
        let measured = &all[all.len().saturating_sub(self.tail)..];
        median(measured.iter().map(|&(iters, d)| d.as_secs_f64() / iters as f64).collect())
    }

    fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let gibs = |size: usize, secs: f64| size as f64 / GIB as f64 / secs;
        // Throughput of `function` over `baseline` (higher is better for the pager).
        let mut throughput = |what: String, group: &str, function: &str, baseline: (&str, &str), size, goal| {
            let (Some(t), Some(base)) = (self.median(group, function, size), self.median(group, baseline.0, size))
            else {
                return;
            };
            let ratio = base / t;
            let verdict = match goal {
                Some(goal) => format!("(goal >= {goal}) {}", if ratio >= goal { "met" } else { "MISSED" }),
                None => "(for reference)".into(),
            };
            lines.push(format!(
                "{what}: {:.2} GiB/s vs {} {:.2} GiB/s = {ratio:.2}x {verdict}",
                gibs(size, t),
                baseline.1,
                gibs(size, base)
            ));
        };
        for size in [4 * KIB, MIB, 64 * MIB] {
            let what = || format!("swap pageout {}", human(size));
            throughput(
                what(),
                "swap_pageout",
                "pageout",
                ("to_vec", "to_vec (memcpy into fresh Vec)"),
                size,
                Some(0.8),
            );
            throughput(what(), "swap_pageout", "pageout", ("prefaulted", "memcpy into pre-faulted buffer"), size, None);
        }
        for function in ["read_at+verify", "read_into+verify", "read_at", "read_into"] {
            let what = format!("file {} 64 MiB ({})", function.trim_end_matches("+verify"), verify_label(function));
            throughput(what.clone(), "file_read", function, ("pread", "pread"), 64 * MIB, Some(0.8));
            if function.starts_with("read_at") {
                throughput(what, "file_read", function, ("pread_fresh", "pread into a fresh Vec"), 64 * MIB, None);
            }
        }
        for function in ["read_at+verify", "read_into+verify", "read_at", "read_into"] {
            for (baseline, goal) in [("pread", true), ("pread_fresh", false)] {
                if !goal && !function.starts_with("read_at") {
                    continue;
                }
                let (Some(t), Some(base)) =
                    (self.median("file_read", function, 4 * KIB), self.median("file_read", baseline, 4 * KIB))
                else {
                    continue;
                };
                let ratio = t / base;
                lines.push(format!(
                    "file {} 4 KiB ({}): {:.2} us vs {} {:.2} us per call = {ratio:.2}x {}",
                    function.trim_end_matches("+verify"),
                    verify_label(function),
                    t * 1e6,
                    if goal { "pread" } else { "pread into a fresh Vec" },
                    base * 1e6,
                    match (goal, ratio <= 1.2) {
                        (true, true) => "(goal <= 1.2) met",
                        (true, false) => "(goal <= 1.2) MISSED",
                        (false, _) => "(for reference)",
                    }
                ));
            }
        }
        for function in ["read_into", "read_at"] {
            for size in [64 * KIB, MIB, 64 * MIB] {
                let verified = format!("{function}+verify");
                let (Some(on), Some(off)) =
                    (self.median("file_read", &verified, size), self.median("file_read", function, size))
                else {
                    continue;
                };
                let overhead = (on / off - 1.0) * 100.0;
                lines.push(format!(
                    "verify overhead {function} {}: on {:.2} GiB/s vs off {:.2} GiB/s = {overhead:+.1}% (goal <= 10%) {}",
                    human(size),
                    gibs(size, on),
                    gibs(size, off),
                    if overhead <= 10.0 { "met" } else { "MISSED" }
                ));
            }
        }
        lines
    }
}

fn verify_label(function: &str) -> &'static str {
    if function.ends_with("+verify") {
        "verify on, the default"
    } else {
        "verify off"
    }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 { xs[mid] } else { (xs[mid - 1] + xs[mid]) / 2.0 })
}

fn human(size: usize) -> String {
    match size {
        s if s >= GIB && s % GIB == 0 => format!("{} GiB", s / GIB),
        s if s >= MIB && s % MIB == 0 => format!("{} MiB", s / MIB),
        s if s >= KIB && s % KIB == 0 => format!("{} KiB", s / KIB),
        s => format!("{s} B"),
    }
}

/// Bytes that are not all alike (a page of zeros could be special-cased somewhere).
fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

/// Times `iters` calls of `op`, keeping outputs alive until the timer stops, so their
/// drops are not timed; outputs of at most [`BATCH_BYTES`] are kept at once.
fn time_batched<T>(iters: u64, size: usize, mut op: impl FnMut() -> T) -> Duration {
    let batch = (BATCH_BYTES / size.max(1)).clamp(1, BATCH_MAX) as u64;
    let mut kept = Vec::with_capacity(batch.min(iters) as usize);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(batch);
        let start = Instant::now();
        for _ in 0..n {
            kept.push(black_box(op()));
        }
        total += start.elapsed();
        kept.clear();
        left -= n;
    }
    total
}

/// Times `iters` calls of `op`, back to back.
fn time_loop(iters: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed()
}

fn swap_pageout(c: &mut Criterion, samples: &Samples, pager: &Pager) {
    let name = "swap_pageout";
    let mut group = c.benchmark_group(name);
    for size in [4 * KIB, MIB, 64 * MIB] {
        let src = pattern(size);
        samples.bench(&mut group, name, "pageout", size, |iters| {
            time_batched(iters, size, || pager.pageout_to(Backend::Swap, &[&src]).expect("swap pageout"))
        });
        samples.bench(&mut group, name, "to_vec", size, |iters| time_batched(iters, size, || black_box(&src).to_vec()));
        let mut dst = vec![1u8; size];
        samples.bench(&mut group, name, "prefaulted", size, |iters| {
            time_loop(iters, || {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
    }
    group.finish();
}

/// A plain file in the scratch dir holding `data`, unlinked at once, read once so its
/// pages are cached like the arena's (which were just written).
fn plain_file(dir: &Path, data: &[u8]) -> File {
    let path = dir.join(format!("plain-{}-{}", std::process::id(), data.len()));
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).expect("create plain file");
    std::fs::remove_file(&path).expect("unlink plain file");
    file.write_all(data).expect("write plain file");
    let mut warm = vec![0u8; data.len()];
    read_exact_at(&file, &mut warm, 0).expect("warm plain file");
    file
}

fn set_verify(pager: &Pager, verify: bool) {
    pager.configure(Config { verify, ..pager.config() }).expect("configure verify");
}

fn file_read(c: &mut Criterion, samples: &Samples, pager: &Pager, dir: &Path) {
    let name = "file_read";
    let mut group = c.benchmark_group(name);
    for size in [4 * KIB, 64 * KIB, MIB, 64 * MIB] {
        let data = pattern(size);
        let file = plain_file(dir, &data);
        let handle = pager.pageout_to(Backend::File, &[&data]).expect("file pageout");
        let mut buf = vec![1u8; size];
        handle.read_into(0, &mut buf).expect("warm the arena");
        assert!(buf == data, "file handle round trip");
        samples.bench(&mut group, name, "pread", size, |iters| {
            time_loop(iters, || read_exact_at(&file, black_box(&mut buf), 0).expect("pread"))
        });
        // What `read_at` does minus the pager: allocate, pread, drop (a reference line).
        samples.bench(&mut group, name, "pread_fresh", size, |iters| {
            time_loop(iters, || {
                let mut fresh = vec![0u8; size];
                read_exact_at(&file, &mut fresh, 0).expect("pread");
                drop(black_box(fresh));
            })
        });
        for verify in [true, false] {
            set_verify(pager, verify);
            let suffix = if verify { "+verify" } else { "" };
            samples.bench(&mut group, name, &format!("read_into{suffix}"), size, |iters| {
                time_loop(iters, || handle.read_into(0, black_box(&mut buf)).expect("read_into"))
            });
            samples.bench(&mut group, name, &format!("read_at{suffix}"), size, |iters| {
                time_loop(iters, || drop(black_box(handle.read_at(0, size as u64).expect("read_at"))))
            });
        }
        set_verify(pager, true);
    }
    group.finish();
}

/// Larger than this machine's caches (and most others': L3 is at most tens of MiB).
const SCRUB_BYTES: usize = 128 * MIB;

/// Writes every cache line of `scrub`, evicting whatever the caches held.
fn scrub_caches(scrub: &mut [u8]) {
    for line in scrub.chunks_mut(64) {
        line[0] = line[0].wrapping_add(1);
    }
    black_box(scrub);
}

/// Times `take` of swap handles of 4 KiB and 1 GiB, one call at a time, the two sizes
/// alternating so drift in the machine affects both alike. Each round pages out a
/// fresh handle and evicts the caches (untimed), times `take`, then times dropping
/// what it took.
fn swap_take(pager: &Pager, rounds: usize) -> Vec<String> {
    const SIZES: [usize; 2] = [4 * KIB, GIB];
    let sources = SIZES.map(|size| vec![0x5au8; size]);
    let mut scrub = vec![0u8; SCRUB_BYTES];
    let mut take = [(); 2].map(|()| Vec::with_capacity(rounds));
    let mut drop_ = [(); 2].map(|()| Vec::with_capacity(rounds));
    for _ in 0..rounds {
        for (i, src) in sources.iter().enumerate() {
            let handle: Handle = pager.pageout_to(Backend::Swap, &[src]).expect("swap pageout");
            // Paging out 1 GiB evicts every cache; evict them for 4 KiB too, so both
            // takes start equally cold and only the size differs.
            scrub_caches(&mut scrub);
            let start = Instant::now();
            let taken = handle.take().expect("take");
            take[i].push(start.elapsed().as_secs_f64());
            assert!(taken.is_zero_copy() && taken.len() == src.len(), "swap take hands over the region");
            let start = Instant::now();
            drop(black_box(taken));
            drop_[i].push(start.elapsed().as_secs_f64());
        }
    }
    let [small_take, large_take] = take.map(|t| median(t).unwrap_or(f64::NAN));
    let [small_drop, large_drop] = drop_.map(|t| median(t).unwrap_or(f64::NAN));
    let (small, large) = (human(SIZES[0]), human(SIZES[1]));
    let ratio = large_take / small_take;
    vec![
        format!(
            "swap take {large}: {:.0} ns vs {small} {:.0} ns = {ratio:.2}x over {rounds} rounds \
             (goal: the same time, O(1); met if < 2x) {}",
            large_take * 1e9,
            small_take * 1e9,
            if ratio < 2.0 { "met" } else { "MISSED" }
        ),
        format!(
            "swap drop of a taken {large}: {:.2} ms vs {small} {:.2} us (munmap frees every page: O(n), for reference)",
            large_drop * 1e3,
            small_drop * 1e6
        ),
    ]
}
