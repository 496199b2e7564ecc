//! Conversions of the pager's config, stats and doctor report to JS objects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use napi_derive::napi;

use coldpage::ConfigValue;
use napi::bindgen_prelude::{Either3, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Env;

use crate::error::{Outcome, Throw};

/// Parses an optional backend name (`"swap"` / `"file"`).
pub fn backend_arg(name: Option<&str>) -> Outcome<Option<coldpage::Backend>> {
    Ok(name.map(|n| n.parse::<coldpage::Backend>()).transpose()?)
}

/// A config value as it crosses to and from JS: `null` (unset), a boolean, a number
/// or a string; which one a field takes is the core's table (`coldpage::CONFIG_FIELDS`).
type JsConfigValue = Option<Either3<bool, f64, String>>;

fn from_js(value: JsConfigValue) -> ConfigValue {
    match value {
        None => ConfigValue::Null,
        Some(Either3::A(b)) => ConfigValue::Bool(b),
        Some(Either3::B(n)) => ConfigValue::Number(n),
        Some(Either3::C(s)) => ConfigValue::Text(s),
    }
}

fn to_js(value: ConfigValue) -> JsConfigValue {
    match value {
        ConfigValue::Null => None,
        ConfigValue::Bool(b) => Some(Either3::A(b)),
        ConfigValue::Number(n) => Some(Either3::B(n)),
        ConfigValue::Text(s) => Some(Either3::C(s)),
    }
}

/// Changes the fields given, already checked by the façade (lib/config-fields.ts):
/// absent ones stay as they are, and `null` unsets a field that can be unset. Atomic:
/// everything is validated before anything applies, and concurrent calls from other
/// threads (workers) never undo each other's fields (`Pager::set_fields`).
#[napi(ts_args_type = "patch: Record<string, boolean | number | string | null>")]
pub fn configure(env: Env, patch: HashMap<String, JsConfigValue>) -> napi::Result<()> {
    let patch: Vec<(String, ConfigValue)> = patch.into_iter().map(|(name, value)| (name, from_js(value))).collect();
    (|| -> Outcome<()> { Ok(coldpage::Pager::global().set_fields(&patch)?) })().throw(&env)
}

/// The config in force: every field by name, `null` where unset.
#[napi(ts_return_type = "Record<string, boolean | number | string | null>")]
pub fn get_config() -> HashMap<&'static str, JsConfigValue> {
    coldpage::Pager::global().fields().into_iter().map(|(name, value)| (name, to_js(value))).collect()
}

/// The names of the core's config fields, in its order (a test compares them with
/// the façade's `FIELDS`).
#[napi]
pub fn config_field_names() -> Vec<&'static str> {
    coldpage::CONFIG_FIELDS.iter().map(|field| field.name).collect()
}

/// Whether this call is the first of the process: the façade applies the
/// `COLDPAGE_*` environment exactly once per process, whichever thread loads it
/// first (a Worker loading coldpage later must not undo `configure()` calls).
#[napi]
pub fn claim_environment() -> bool {
    static CLAIMED: AtomicBool = AtomicBool::new(false);
    !CLAIMED.swap(true, Ordering::AcqRel)
}

/// Asks a thread to take over the `COLDPAGE_CONFIG` watch. Weak: it never keeps
/// its thread's event loop alive.
type TakeOver = ThreadsafeFunction<(), (), (), napi::Status, false, true>;

/// The threads that loaded coldpage with `COLDPAGE_CONFIG` set, and which of them
/// runs the watch. The watch is JS (`fs.watch` on the thread's event loop), so it
/// lives only as long as its thread: when that thread's environment is torn down (a
/// Worker exits), the watch moves to another thread that loaded coldpage, or to the
/// next one that does. So the file stays watched for the life of the process,
/// whichever threads come and go.
struct Roster {
    next: u64,
    owner: Option<u64>,
    members: Vec<(u64, TakeOver)>,
    /// The watch's own state (the façade's JSON: which fields the file set and what
    /// they were before), so that a thread taking the watch over continues it.
    state: Option<String>,
}

static ROSTER: Mutex<Roster> = Mutex::new(Roster { next: 1, owner: None, members: Vec::new(), state: None });

/// The `COLDPAGE_CONFIG` watch's state: returns what was stored, and stores `state`
/// when given.
#[napi]
pub fn config_watch_state(state: Option<String>) -> Option<String> {
    let mut roster = roster();
    match state {
        Some(state) => roster.state.replace(state),
        None => roster.state.clone(),
    }
}

fn roster() -> MutexGuard<'static, Roster> {
    // Every edit completes under the lock: poison leaves a consistent roster.
    ROSTER.lock().unwrap_or_else(|p| p.into_inner())
}

/// Joins the threads that can run the `COLDPAGE_CONFIG` watch; returns whether this
/// thread runs it now. Otherwise `take_over` is called on this thread if the thread
/// running it goes away first.
#[napi]
pub fn join_config_watch(env: Env, take_over: Function<(), ()>) -> napi::Result<bool> {
    let take_over: TakeOver =
        take_over.build_threadsafe_function::<()>().callee_handled::<false>().weak::<true>().build()?;
    let (id, owner) = {
        let mut roster = roster();
        let id = roster.next;
        roster.next += 1;
        roster.members.push((id, take_over));
        let owner = roster.owner.is_none();
        if owner {
            roster.owner = Some(id);
        }
        (id, owner)
    };
    env.add_env_cleanup_hook(id, leave_config_watch)?;
    Ok(owner)
}

/// A thread's environment is going away: hand its watch to another thread.
fn leave_config_watch(id: u64) {
    let mut roster = roster();
    let gone = roster.members.iter().position(|(m, _)| *m == id).map(|i| roster.members.remove(i));
    if roster.owner == Some(id) {
        roster.owner = roster.members.first().map(|(m, _)| *m);
        if let Some((_, next)) = roster.members.first() {
            // Queued to that thread's event loop; a thread already closing cannot take
            // it, and its own cleanup hands the watch on again.
            let _ = next.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
    drop(roster);
    drop(gone);
}

/// What a pageout with the selector now would use: `"swap"` or `"file"` (`auto`
/// resolved as `doctor` reports it, without its trial write).
#[napi]
pub fn next_backend() -> &'static str {
    coldpage::Pager::global().next_backend().as_str()
}

/// Live handles and bytes of one backend.
#[napi(object)]
pub struct NativeBackendStats {
    /// Live handles.
    pub handles: f64,
    /// Logical bytes of those handles.
    pub bytes: f64,
}

impl From<coldpage::BackendStats> for NativeBackendStats {
    fn from(s: coldpage::BackendStats) -> Self {
        NativeBackendStats { handles: s.handles as f64, bytes: s.bytes as f64 }
    }
}

/// The pager's counters.
#[napi(object)]
pub struct NativeStats {
    /// The swap backend's live handles.
    pub swap: NativeBackendStats,
    /// The file backend's live handles.
    pub file: NativeBackendStats,
    /// Scratch bytes handed out to handles (extents, page-aligned).
    pub scratch_bytes_allocated: f64,
    /// Scratch bytes the file system holds for the pager.
    pub scratch_bytes_on_disk: f64,
    /// Reads served.
    pub reads: f64,
    /// Bytes those reads returned.
    pub bytes_read: f64,
    /// Reads that found bytes not matching their checksum.
    pub checksum_failures: f64,
    /// Operations that failed.
    pub errors: f64,
    /// Pageouts since load.
    pub pageouts: f64,
    /// Their bytes.
    pub bytes_paged_out: f64,
    /// Takes since load.
    pub takes: f64,
    /// Bytes written to scratch since load (after compression).
    pub bytes_written: f64,
}

/// The pager's counters now.
#[napi]
pub fn stats() -> NativeStats {
    let s = coldpage::Pager::global().stats();
    NativeStats {
        swap: s.swap.into(),
        file: s.file.into(),
        scratch_bytes_allocated: s.scratch_bytes_allocated as f64,
        scratch_bytes_on_disk: s.scratch_bytes_on_disk as f64,
        reads: s.reads as f64,
        bytes_read: s.bytes_read as f64,
        checksum_failures: s.checksum_failures as f64,
        errors: s.errors as f64,
        pageouts: s.pageouts as f64,
        bytes_paged_out: s.bytes_paged_out as f64,
        takes: s.takes as f64,
        bytes_written: s.bytes_written as f64,
    }
}

/// What `auto` picks and why.
#[napi(object)]
pub struct NativeAutoChoice {
    /// `"swap"` or `"file"`.
    pub backend: String,
    /// Why.
    pub reason: String,
}

/// One sample of the OS's memory-pressure signal.
#[napi(object)]
pub struct NativePressure {
    /// `"none"`, `"moderate"` or `"critical"`.
    pub level: String,
    /// `"psi"`, `"cgroup2"`, `"cgroup1"`, `"windows"`, `"macos"` or `"none"`.
    pub source: String,
    /// What the sources read.
    pub detail: String,
}

impl From<coldpage::Pressure> for NativePressure {
    fn from(p: coldpage::Pressure) -> Self {
        NativePressure { level: p.level.as_str().to_owned(), source: p.source.to_owned(), detail: p.detail }
    }
}

/// Samples the process-wide memory-pressure signal (see `coldpage::pressure`).
#[napi]
pub fn memory_pressure() -> NativePressure {
    coldpage::pressure::sample().into()
}

/// The AEAD of encrypted pageouts and the state of the key.
#[napi(object)]
pub struct NativeEncryption {
    /// The AEAD and its implementation, e.g. `"AES-256-GCM (ring)"`.
    pub aead: String,
    /// Whether the key's page is locked in RAM; absent before the first encrypted pageout.
    pub key_locked: Option<bool>,
    /// Why it is not locked, if it is not.
    pub key_lock_error: Option<String>,
}

/// The platform facts the pager depends on.
#[napi(object)]
pub struct NativeDoctorReport {
    /// Operating system and architecture.
    pub platform: String,
    /// Kernel release.
    pub kernel: String,
    /// Is there swap (a paging file) to page out to? Not whether the pager can
    /// (`swapPagesOut`).
    pub swap_active: bool,
    /// Total swap in bytes.
    pub swap_total_bytes: f64,
    /// `pageOutWorks` on Linux (`madvise(MADV_COLD)`); false elsewhere.
    pub madv_cold: bool,
    /// Which primitive the swap backend pages out with, or why this platform has none.
    pub page_out: String,
    /// Does that primitive really page a range out here (probed once)? Not whether
    /// there is swap to page out to (`swapActive`).
    pub page_out_works: bool,
    /// Do swap-backed handles really leave RAM here: `pageOutWorks` and `swapActive`?
    pub swap_pages_out: bool,
    /// The scratch dir examined.
    pub scratch_dir: String,
    /// Its file system type.
    pub scratch_fs: String,
    /// Whether that file system lives in RAM (tmpfs).
    pub scratch_is_ram: bool,
    /// Free bytes there.
    pub scratch_free_bytes: f64,
    /// Why the scratch dir is unusable, if it is.
    pub scratch_error: Option<String>,
    /// Why the usual private subdirectory is not used (a fresh unpredictable one is).
    pub scratch_fallback: Option<String>,
    /// Whether freed extents can be given back with `fallocate(PUNCH_HOLE)`.
    pub hole_punching: bool,
    /// What `auto` picks and why.
    pub auto: NativeAutoChoice,
    /// The memory-pressure signal (a fresh sample).
    pub pressure: NativePressure,
    /// What `encrypt: true` uses here.
    pub encryption: NativeEncryption,
    /// Memory maps the pager holds now (read windows, views, swap regions).
    pub maps_held: f64,
    /// How many views may be zero-copy maps at once; past it a view is a copy.
    pub maps_limit: f64,
    /// Things worth fixing.
    pub warnings: Vec<String>,
}

/// Examines the platform and the configured scratch dir.
#[napi]
pub fn doctor() -> NativeDoctorReport {
    let scratch_dir = coldpage::Pager::global().config().scratch_dir;
    let r = coldpage::doctor(&scratch_dir);
    NativeDoctorReport {
        platform: r.platform,
        kernel: r.kernel,
        swap_active: r.swap_active,
        swap_total_bytes: r.swap_total_bytes as f64,
        madv_cold: r.madv_cold,
        page_out: r.page_out,
        page_out_works: r.page_out_works,
        swap_pages_out: r.swap_pages_out,
        scratch_dir: r.scratch_dir.to_string_lossy().into_owned(),
        scratch_fs: r.scratch_fs,
        scratch_is_ram: r.scratch_is_ram,
        scratch_free_bytes: r.scratch_free_bytes as f64,
        scratch_error: r.scratch_error,
        scratch_fallback: r.scratch_fallback,
        hole_punching: r.hole_punching,
        auto: NativeAutoChoice { backend: r.auto.backend.as_str().to_owned(), reason: r.auto.reason },
        pressure: r.pressure.into(),
        encryption: {
            let e = coldpage::Pager::global().encryption();
            NativeEncryption {
                aead: e.aead.to_owned(),
                key_locked: e.key_made.then_some(e.key_lock_error.is_none()),
                key_lock_error: e.key_lock_error,
            }
        },
        maps_held: r.maps_held as f64,
        maps_limit: r.maps_limit as f64,
        warnings: r.warnings,
    }
}
