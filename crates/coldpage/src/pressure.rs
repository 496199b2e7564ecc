//! `pressure`: how hard the OS is pressed for memory right now, sampled on demand
//! (a store polls it about once a second and shrinks its resident set under pressure).
//!
//! Sources, by platform:
//! - **Linux**: PSI (`/proc/pressure/memory`: the share of time tasks stalled on
//!   memory), and this process's memory cgroup: v2 (`memory.current` against
//!   `memory.max`/`memory.high`, increases of the `memory.events` counters, the
//!   cgroup's own `memory.pressure`) or v1 (`memory.usage_in_bytes` against
//!   `memory.limit_in_bytes`, `memory.failcnt`, the `oom_kill` count of
//!   `memory.oom_control`). Usage is the working set: usage minus inactive page cache
//!   (`inactive_file` of `memory.stat`), which the kernel reclaims first.
//! - **Windows**: `QueryMemoryResourceNotification` on a
//!   `CreateMemoryResourceNotification(LowMemoryResourceNotification)` handle, and the
//!   memory load of `GlobalMemoryStatusEx`.
//! - **macOS**: the `kern.memorystatus_vm_pressure_level` sysctl (1 normal, 2 warn,
//!   4 critical), what the dispatch memory-pressure source reports.
//! - elsewhere: none (level [`Level::None`], source `"none"`).
//!
//! The levels ([`Level`]), and the thresholds below:
//! - **moderate**: PSI `some avg10` >= [`PSI_SOME_MODERATE`] %, a working set >=
//!   [`USAGE_MODERATE`] of the cgroup's limit or at/above v2's `memory.high`, a new
//!   v2 `high` event or v1 `failcnt` within [`EVENT_WINDOW`]; Windows memory load >=
//!   90 %; macOS "warn".
//! - **critical**: PSI `full avg10` >= [`PSI_FULL_CRITICAL`] %, a working set >=
//!   [`USAGE_CRITICAL`] of the limit, a new `max`, `oom` or `oom_kill` event within
//!   [`EVENT_WINDOW`]; the Windows low-memory notification; macOS "critical".
//!
//! An event counts for [`EVENT_WINDOW`] after a sample first sees its counter grow, so
//! that callers polling at their own pace all see it (the first sample only records
//! the counters: events from before it do not count).
//!
//! Test and ops hook: `COLDPAGE_PRESSURE_PSI=/path` (a file in PSI's format) and
//! `COLDPAGE_PRESSURE_CGROUP=/path` (a directory holding cgroup v2 or v1 memory files)
//! replace the discovered sources, read once per process: when either is set, only
//! the named files are read, on every platform.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::os;

/// PSI `some avg10` (percent of the last 10 s in which some task stalled on memory)
/// from which pressure is moderate.
pub const PSI_SOME_MODERATE: f64 = 10.0;
/// PSI `full avg10` (percent of the last 10 s in which every task stalled on memory)
/// from which pressure is critical.
pub const PSI_FULL_CRITICAL: f64 = 5.0;
/// The share of a cgroup's memory limit, as working set, from which pressure is moderate.
pub const USAGE_MODERATE: f64 = 0.90;
/// The share of a cgroup's memory limit, as working set, from which pressure is critical.
pub const USAGE_CRITICAL: f64 = 0.97;
/// How long a cgroup event (a grown counter) keeps the level up.
pub const EVENT_WINDOW: Duration = Duration::from_secs(10);

/// How pressed for memory the system (or this process's cgroup) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// No pressure: nothing to do.
    None,
    /// Memory is getting short: shrink what is cheap to shrink.
    Moderate,
    /// Memory is about to run out (reclaim stalls everything, or the OOM killer is near).
    Critical,
}

impl Level {
    /// `"none"`, `"moderate"` or `"critical"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Moderate => "moderate",
            Level::Critical => "critical",
        }
    }

    fn from_os(level: u8) -> Level {
        match level {
            0 => Level::None,
            1 => Level::Moderate,
            _ => Level::Critical,
        }
    }
}

/// One sample of the memory-pressure signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pressure {
    /// The level: the highest of the sources read.
    pub level: Level,
    /// The source that gave the level (the first one read when all report none):
    /// `"psi"`, `"cgroup2"`, `"cgroup1"`, `"windows"`, `"macos"`, or `"none"` where
    /// there is no signal.
    pub source: &'static str,
    /// What each source read, for people (and why a source could not be read).
    pub detail: String,
}

/// One source's reading.
struct Reading {
    level: Level,
    source: &'static str,
    detail: String,
}

/// Reads the pressure sources and remembers the cgroup event counters between
/// samples. [`sample`] uses one per process; a `Sampler` of one's own (as `doctor`
/// uses) sees events only from its own first sample on.
#[derive(Debug)]
pub struct Sampler {
    psi: Option<PathBuf>,
    cgroup: Option<PathBuf>,
    /// Whether to ask the OS (Windows, macOS) when no file source can be read.
    ask_os: bool,
    events: Events,
}

impl Sampler {
    /// The sources of this platform, or the files of `COLDPAGE_PRESSURE_PSI` /
    /// `COLDPAGE_PRESSURE_CGROUP` when either is set (non-empty).
    pub fn from_env() -> Sampler {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        match (var("COLDPAGE_PRESSURE_PSI"), var("COLDPAGE_PRESSURE_CGROUP")) {
            (None, None) => {
                let os::PressureFiles { psi, cgroup } = os::pressure_files();
                Sampler { psi, cgroup, ask_os: true, events: Events::default() }
            }
            (psi, cgroup) => Sampler::with_files(psi, cgroup),
        }
    }

    /// Reads only `psi` (a file in PSI's format) and `cgroup` (a directory of cgroup
    /// v2 or v1 memory files), on any platform.
    pub fn with_files(psi: Option<PathBuf>, cgroup: Option<PathBuf>) -> Sampler {
        Sampler { psi, cgroup, ask_os: false, events: Events::default() }
    }

    /// Reads every source now.
    pub fn sample(&mut self) -> Pressure {
        self.sample_at(Instant::now())
    }

    fn sample_at(&mut self, now: Instant) -> Pressure {
        let mut readings = Vec::new();
        let mut unread = Vec::new();
        if let Some(path) = &self.psi {
            match read_psi(path) {
                Ok(psi) => readings.push(Reading { level: psi.level(), source: "psi", detail: psi.describe(path) }),
                Err(why) => unread.push(format!("psi: {why}")),
            }
        }
        if let Some(dir) = &self.cgroup {
            match read_cgroup(dir, &mut self.events, now) {
                Ok(reading) => readings.push(reading),
                Err(why) => unread.push(format!("cgroup: {why}")),
            }
        }
        if readings.is_empty() && self.ask_os {
            match os::pressure_reported() {
                Ok(os::ReportedPressure { level, source, detail }) => {
                    readings.push(Reading { level: Level::from_os(level), source, detail });
                }
                Err(why) => unread.push(why),
            }
        }
        let top = readings.iter().map(|r| r.level).max().unwrap_or(Level::None);
        let source = readings.iter().find(|r| r.level == top).map_or("none", |r| r.source);
        let detail = readings.into_iter().map(|r| r.detail).chain(unread).collect::<Vec<_>>().join("; ");
        Pressure { level: top, source, detail }
    }
}

/// A sample of this process's memory-pressure signal (see the module docs for the
/// sources and thresholds). Cheap: a few small file reads or one system call.
pub fn sample() -> Pressure {
    static SAMPLER: Mutex<Option<Sampler>> = Mutex::new(None);
    // A panic mid-sample leaves counters at worst one sample old: keep using them.
    let mut sampler = SAMPLER.lock().unwrap_or_else(|p| p.into_inner());
    sampler.get_or_insert_with(Sampler::from_env).sample()
}

/// This process's memory cgroup directory, as [`Sampler::from_env`] finds it: the
/// directory of `COLDPAGE_PRESSURE_CGROUP` when that is set, none when only
/// `COLDPAGE_PRESSURE_PSI` is, else the discovered one (Linux).
pub(crate) fn cgroup_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    match (var("COLDPAGE_PRESSURE_PSI"), var("COLDPAGE_PRESSURE_CGROUP")) {
        (None, None) => os::pressure_files().cgroup,
        (_, cgroup) => cgroup,
    }
}

/// PSI's two `avg10` figures.
struct Psi {
    some: f64,
    full: f64,
}

impl Psi {
    fn level(&self) -> Level {
        if self.full >= PSI_FULL_CRITICAL {
            Level::Critical
        } else if self.some >= PSI_SOME_MODERATE {
            Level::Moderate
        } else {
            Level::None
        }
    }

    fn describe(&self, path: &Path) -> String {
        format!("{}: some avg10 {:.2}%, full avg10 {:.2}%", path.display(), self.some, self.full)
    }
}

/// Pressure files are a few hundred bytes; a source longer than this is refused.
const MAX_SOURCE_BYTES: u64 = 64 * 1024;

/// Reads a pressure source: a regular file (as `/proc` and cgroup files are) of at most
/// [`MAX_SOURCE_BYTES`]. Opened non-blocking and checked before any read, so that a
/// FIFO or a device named by `COLDPAGE_PRESSURE_PSI` (`/dev/zero`) is refused instead
/// of hanging the sampler, which stores call every second.
fn read_text(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(format!("cannot read {}: not a regular file", path.display()));
    }
    let mut text = String::new();
    file.take(MAX_SOURCE_BYTES + 1).read_to_string(&mut text).map_err(cannot)?;
    if text.len() as u64 > MAX_SOURCE_BYTES {
        return Err(format!("cannot read {}: longer than {MAX_SOURCE_BYTES} bytes", path.display()));
    }
    Ok(text)
}

fn read_psi(path: &Path) -> Result<Psi, String> {
    parse_psi(&read_text(path)?).ok_or_else(|| format!("{} is not in PSI's format", path.display()))
}

/// `some avg10=1.00 avg60=...` and `full avg10=...` lines (`full` is missing before
/// Linux 5.13 for the system file: it counts as 0).
fn parse_psi(text: &str) -> Option<Psi> {
    let avg10 = |kind: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(kind)?.strip_prefix(' ')?;
            rest.split_whitespace().find_map(|field| field.strip_prefix("avg10="))?.parse::<f64>().ok()
        })
    };
    Some(Psi { some: avg10("some")?, full: avg10("full").unwrap_or(0.0) })
}

/// Counters seen at the previous sample, and when each level was last raised by one
/// growing.
#[derive(Debug, Default)]
struct Events {
    seen: BTreeMap<&'static str, u64>,
    moderate_at: Option<Instant>,
    critical_at: Option<Instant>,
}

impl Events {
    /// Notes counter `name` at `count`; a growth raises `level` for [`EVENT_WINDOW`].
    /// Returns whether it grew since the previous sample.
    fn note(&mut self, name: &'static str, count: u64, level: Level, now: Instant) -> bool {
        let grew = self.seen.insert(name, count).is_some_and(|before| count > before);
        if grew {
            match level {
                Level::Critical => self.critical_at = Some(now),
                Level::Moderate => self.moderate_at = Some(now),
                Level::None => {}
            }
        }
        grew
    }

    fn level(&self, now: Instant) -> Level {
        let recent = |at: Option<Instant>| at.is_some_and(|at| now.saturating_duration_since(at) <= EVENT_WINDOW);
        if recent(self.critical_at) {
            Level::Critical
        } else if recent(self.moderate_at) {
            Level::Moderate
        } else {
            Level::None
        }
    }
}

/// `key value` lines (memory.stat, memory.events, memory.oom_control).
pub(crate) fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// A limit file: a byte count, or `max` (v2) / a near-2^63 value (v1) for none.
pub(crate) fn limit(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|&bytes| bytes < 1 << 62)
}

/// A byte count for people: bytes below 1 MiB, else MiB.
fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{bytes} B")
    } else {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

fn usage_level(working: u64, limit: u64) -> Level {
    let share = working as f64 / limit as f64;
    if share >= USAGE_CRITICAL {
        Level::Critical
    } else if share >= USAGE_MODERATE {
        Level::Moderate
    } else {
        Level::None
    }
}

/// Reads a memory cgroup directory: v2 where it has `memory.current`, else v1 where it
/// has `memory.usage_in_bytes`.
fn read_cgroup(dir: &Path, events: &mut Events, now: Instant) -> Result<Reading, String> {
    let files = CgroupFiles(dir);
    if dir.join("memory.current").exists() {
        read_cgroup_v2(files, events, now)
    } else if dir.join("memory.usage_in_bytes").exists() {
        read_cgroup_v1(files, events, now)
    } else {
        Err(format!("{} has no memory.current (v2) or memory.usage_in_bytes (v1)", dir.display()))
    }
}

/// The files of one memory cgroup directory, as both versions read them.
#[derive(Clone, Copy)]
struct CgroupFiles<'a>(&'a Path);

impl CgroupFiles<'_> {
    /// A file the reading needs.
    fn required(self, name: &str) -> Result<String, String> {
        read_text(&self.0.join(name))
    }

    /// A file the reading can do without (older kernels, other controllers).
    fn optional(self, name: &str) -> Option<String> {
        read_text(&self.0.join(name)).ok()
    }

    /// A file that holds one byte count.
    fn bytes(self, name: &str) -> Result<u64, String> {
        let text = self.required(name)?;
        text.trim().parse::<u64>().map_err(|_| format!("{} is not a byte count", self.0.join(name).display()))
    }

    /// "<dir>: working set N", and " of <limit word> L (P%)" where there is a limit.
    fn describe(self, working: u64, limit: Option<u64>, limit_word: &str) -> String {
        let mut detail = format!("{}: working set {}", self.0.display(), mib(working));
        if let Some(limit) = limit {
            detail += &format!(" of {limit_word} {} ({:.1}%)", mib(limit), 100.0 * working as f64 / limit as f64);
        }
        detail
    }
}

/// cgroup v2: the working set (`memory.current` less inactive file pages) against
/// `memory.max` and `memory.high`, growth of `memory.events` counters, and the
/// cgroup's own `memory.pressure`.
fn read_cgroup_v2(files: CgroupFiles<'_>, events: &mut Events, now: Instant) -> Result<Reading, String> {
    let current = files.bytes("memory.current")?;
    let stat = files.optional("memory.stat").unwrap_or_default();
    let working = current.saturating_sub(field(&stat, "inactive_file").unwrap_or(0));
    let max = files.optional("memory.max").as_deref().and_then(limit);
    let high = files.optional("memory.high").as_deref().and_then(limit);
    let mut level = max.map_or(Level::None, |max| usage_level(working, max));
    if high.is_some_and(|high| working >= high) {
        level = level.max(Level::Moderate);
    }
    let mut detail = files.describe(working, max, "max");
    if let Some(high) = high {
        detail += &format!(", high {}", mib(high));
    }
    if let Some(text) = files.optional("memory.events") {
        let mut grown = Vec::new();
        for (name, raises) in [
            ("high", Level::Moderate),
            ("max", Level::Critical),
            ("oom", Level::Critical),
            ("oom_kill", Level::Critical),
        ] {
            if let Some(count) = field(&text, name) {
                if events.note(name, count, raises, now) {
                    grown.push(name);
                }
            }
        }
        if !grown.is_empty() {
            detail += &format!(", new {} events", grown.join("/"));
        }
        level = level.max(events.level(now));
    }
    if let Some(psi) = files.optional("memory.pressure").as_deref().and_then(parse_psi) {
        level = level.max(psi.level());
        detail += &format!(", some avg10 {:.2}%, full avg10 {:.2}%", psi.some, psi.full);
    }
    Ok(Reading { level, source: "cgroup2", detail })
}

/// cgroup v1: the working set (`memory.usage_in_bytes` less inactive file pages)
/// against `memory.limit_in_bytes`, growth of `memory.failcnt` and of OOM kills, and
/// whether the cgroup is under OOM now.
fn read_cgroup_v1(files: CgroupFiles<'_>, events: &mut Events, now: Instant) -> Result<Reading, String> {
    let usage = files.bytes("memory.usage_in_bytes")?;
    let stat = files.optional("memory.stat").unwrap_or_default();
    let inactive = field(&stat, "total_inactive_file").or_else(|| field(&stat, "inactive_file")).unwrap_or(0);
    let working = usage.saturating_sub(inactive);
    let max = files.optional("memory.limit_in_bytes").as_deref().and_then(limit);
    let mut level = max.map_or(Level::None, |max| usage_level(working, max));
    let mut detail = files.describe(working, max, "limit");
    if max.is_none() {
        detail += ", no limit";
    }
    let mut grown = Vec::new();
    if let Some(count) = files.optional("memory.failcnt").and_then(|t| t.trim().parse().ok()) {
        if events.note("failcnt", count, Level::Moderate, now) {
            grown.push("failcnt");
        }
    }
    let oom = files.optional("memory.oom_control").unwrap_or_default();
    if let Some(count) = field(&oom, "oom_kill") {
        if events.note("oom_kill", count, Level::Critical, now) {
            grown.push("oom_kill");
        }
    }
    if field(&oom, "under_oom") == Some(1) {
        level = Level::Critical;
        detail += ", under OOM";
    }
    if !grown.is_empty() {
        detail += &format!(", new {}", grown.join("/"));
    }
    level = level.max(events.level(now));
    Ok(Reading { level, source: "cgroup1", detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psi(some: f64, full: f64) -> String {
        format!(
            "some avg10={some:.2} avg60=0.00 avg300=0.00 total=100\nfull avg10={full:.2} avg60=0.00 avg300=0.00 \
             total=10\n"
        )
    }

    #[test]
    fn psi_thresholds_give_the_levels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory");
        let mut sampler = Sampler::with_files(Some(path.clone()), None);
        for (some, full, level) in [
            (0.0, 0.0, Level::None),
            (9.99, 4.99, Level::None),
            (10.0, 0.0, Level::Moderate),
            (50.0, 4.0, Level::Moderate),
            (50.0, 5.0, Level::Critical),
            (0.0, 7.5, Level::Critical),
        ] {
            std::fs::write(&path, psi(some, full)).unwrap();
            let p = sampler.sample();
            assert_eq!((p.level, p.source), (level, "psi"), "some {some} full {full}: {}", p.detail);
            assert!(p.detail.contains(&format!("some avg10 {some:.2}%")), "{}", p.detail);
        }
        std::fs::write(&path, "some avg10=12.50 avg60=1.00 avg300=0.00 total=5\n").unwrap();
        assert_eq!(sampler.sample().level, Level::Moderate, "no full line (old kernels) counts as 0");
    }

    #[test]
    fn unreadable_or_malformed_sources_report_none_and_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let p = Sampler::with_files(Some(missing.clone()), Some(missing.clone())).sample();
        assert_eq!((p.level, p.source), (Level::None, "none"));
        assert!(p.detail.contains("cannot read") && p.detail.contains("no memory.current"), "{}", p.detail);
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "nonsense\n").unwrap();
        let p = Sampler::with_files(Some(bad), None).sample();
        assert_eq!((p.level, p.source), (Level::None, "none"));
        assert!(p.detail.contains("not in PSI's format"), "{}", p.detail);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("psi.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
        let mut sources = vec![PathBuf::from("/dev/zero")];
        if made {
            sources.push(fifo);
        } else {
            eprintln!("FIFO case skipped: mkfifo failed");
        }
        for source in sources {
            let p = Sampler::with_files(Some(source.clone()), None).sample();
            assert_eq!((p.level, p.source), (Level::None, "none"), "{}", source.display());
            assert!(p.detail.contains("not a regular file"), "{}", p.detail);
        }
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn cgroup2_usage_high_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let events = |high: u64, max: u64| format!("low 0\nhigh {high}\nmax {max}\noom 0\noom_kill 0\n");
        write(d, &[("memory.current", "500\n"), ("memory.max", "max\n"), ("memory.high", "max\n")]);
        write(d, &[("memory.events", &events(3, 1)), ("memory.stat", "anon 400\ninactive_file 100\n")]);
        let mut sampler = Sampler::with_files(None, Some(d.to_path_buf()));
        let t0 = Instant::now();
        let p = sampler.sample_at(t0);
        assert_eq!((p.level, p.source), (Level::None, "cgroup2"), "events before the first sample do not count");
        write(d, &[("memory.max", "1000\n")]);
        // Working set 500 - 100 inactive page cache = 400 of 1000.
        assert_eq!(sampler.sample_at(t0).level, Level::None);
        write(d, &[("memory.current", "1000\n")]); // 900 of 1000
        assert_eq!(sampler.sample_at(t0).level, Level::Moderate);
        write(d, &[("memory.current", "1070\n")]); // 970 of 1000
        let p = sampler.sample_at(t0);
        assert_eq!(p.level, Level::Critical, "{}", p.detail);
        assert!(p.detail.contains("(97.0%)"), "{}", p.detail);
        write(d, &[("memory.current", "500\n"), ("memory.high", "400\n")]);
        assert_eq!(sampler.sample_at(t0).level, Level::Moderate, "at memory.high");
        write(d, &[("memory.high", "max\n")]);
        assert_eq!(sampler.sample_at(t0).level, Level::None);

        write(d, &[("memory.events", &events(4, 1))]);
        let p = sampler.sample_at(t0);
        assert_eq!(p.level, Level::Moderate, "a new high event: {}", p.detail);
        assert!(p.detail.contains("new high events"), "{}", p.detail);
        let later = t0 + EVENT_WINDOW / 2;
        assert_eq!(sampler.sample_at(later).level, Level::Moderate, "for the event window");
        write(d, &[("memory.events", &events(4, 2))]);
        assert_eq!(sampler.sample_at(later).level, Level::Critical, "a new max event");
        let after = later + EVENT_WINDOW + Duration::from_secs(1);
        assert_eq!(sampler.sample_at(after).level, Level::None, "events age out");

        write(d, &[("memory.pressure", &psi(0.0, 6.0))]);
        assert_eq!(sampler.sample_at(after).level, Level::Critical, "the cgroup's own PSI");
    }

    #[test]
    fn cgroup1_usage_failcnt_and_oom() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, &[("memory.usage_in_bytes", "950\n"), ("memory.limit_in_bytes", "9223372036854771712\n")]);
        write(d, &[("memory.stat", "cache 100\ntotal_inactive_file 100\n"), ("memory.failcnt", "0\n")]);
        write(d, &[("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")]);
        let mut sampler = Sampler::with_files(None, Some(d.to_path_buf()));
        let t0 = Instant::now();
        let p = sampler.sample_at(t0);
        assert_eq!((p.level, p.source), (Level::None, "cgroup1"));
        assert!(p.detail.contains("no limit"), "{}", p.detail);
        write(d, &[("memory.limit_in_bytes", "1000\n")]); // 850 of 1000
        assert_eq!(sampler.sample_at(t0).level, Level::None);
        write(d, &[("memory.usage_in_bytes", "1000\n")]); // 900 of 1000
        assert_eq!(sampler.sample_at(t0).level, Level::Moderate);
        write(d, &[("memory.usage_in_bytes", "500\n"), ("memory.failcnt", "7\n")]);
        assert_eq!(sampler.sample_at(t0).level, Level::Moderate, "the limit was hit");
        write(d, &[("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")]);
        assert_eq!(sampler.sample_at(t0).level, Level::Critical, "an OOM kill");
        let after = t0 + EVENT_WINDOW + Duration::from_secs(1);
        assert_eq!(sampler.sample_at(after).level, Level::None);
        write(d, &[("memory.oom_control", "oom_kill_disable 1\nunder_oom 1\noom_kill 1\n")]);
        assert_eq!(sampler.sample_at(after).level, Level::Critical, "under OOM");
    }

    #[test]
    fn the_highest_source_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("psi");
        std::fs::write(&path, psi(20.0, 0.0)).unwrap();
        write(dir.path(), &[("memory.usage_in_bytes", "990\n"), ("memory.limit_in_bytes", "1000\n")]);
        let mut sampler = Sampler::with_files(Some(path.clone()), Some(dir.path().to_path_buf()));
        let p = sampler.sample();
        assert_eq!((p.level, p.source), (Level::Critical, "cgroup1"), "{}", p.detail);
        assert!(p.detail.contains("some avg10 20.00%"), "both sources are described: {}", p.detail);
        std::fs::write(&path, psi(20.0, 10.0)).unwrap();
        assert_eq!(sampler.sample().source, "psi", "ties go to the first source");
    }

    #[test]
    fn this_platform_gives_a_sample() {
        let p = Sampler::from_env().sample();
        assert!(["psi", "cgroup2", "cgroup1", "windows", "macos", "none"].contains(&p.source), "{p:?}");
        assert!(!p.detail.is_empty());
    }
}
