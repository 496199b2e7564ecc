//! Frees that take long run on a background thread, so that dropping a handle (a
//! `dispose()` on a UI thread, an eviction) returns at once.
//!
//! Giving a large extent back to the filesystem (hole punching drops its pages from
//! the page cache) or unmapping a large swap region (the kernel frees every page)
//! costs time in proportion to the bytes: a thread that drops a GiB waits for it. Such
//! frees are queued here ([`defer`]) and run, in order, on one thread of the pager's.
//!
//! Nothing about safety changes: a deferred free still happens before the extent can
//! be handed out again (only the free returns it to the allocator), and the region it
//! unmaps is no longer reachable from any handle. What changes is *when* the space
//! comes back, so everything that needs the space or counts it settles first
//! ([`settle`]): a pageout refused for room, `stats()`, the map count and `doctor()`.
//!
//! The queue is bounded by bytes ([`PENDING_MAX`]): past it a free runs on the
//! dropping thread, so a loop of large pageouts and drops cannot outrun the reclaimer
//! and hold more memory or disk than it manages.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

/// Frees of at least this many bytes are deferred; smaller ones cost less than the
/// hand-off.
pub(crate) const DEFER_MIN: u64 = 1 << 20;

/// At most this many bytes wait to be freed; a free past it runs where it is dropped.
const PENDING_MAX: u64 = 1 << 30;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<(u64, Job)>,
    /// Bytes of the queued jobs and of the one running.
    pending: u64,
    /// Whether the reclaiming thread is running (it is started on first use).
    started: bool,
}

struct Reclaimer {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued.
    work: Condvar,
    /// Signalled when the queue empties.
    idle: Condvar,
}

fn reclaimer() -> &'static Reclaimer {
    static R: OnceLock<Reclaimer> = OnceLock::new();
    R.get_or_init(|| Reclaimer { queue: Mutex::default(), work: Condvar::new(), idle: Condvar::new() })
}

impl Reclaimer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs run outside the lock and every edit of the queue completes under it,
        // so a poisoned lock still guards a consistent queue.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&'static self) {
        let mut q = self.lock();
        loop {
            let Some((bytes, job)) = q.jobs.pop_front() else {
                q = self.work.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            drop(q);
            // A panicking free (it would be a bug) must not stop the frees behind it or
            // leave `pending` counting bytes that no job will ever free.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            q = self.lock();
            q.pending -= bytes;
            if q.pending == 0 {
                self.idle.notify_all();
            }
        }
    }
}

/// Runs `free` (which gives back `bytes`) on the reclaiming thread, or here when
/// `bytes` is small, the queue is full or no thread can be started.
pub(crate) fn defer(bytes: u64, free: impl FnOnce() + Send + 'static) {
    if bytes < DEFER_MIN {
        // Not even the reclaimer's lock for the frees of small handles.
        return free();
    }
    let r = reclaimer();
    let mut q = r.lock();
    if runs_here(&q, bytes) {
        drop(q);
        return free();
    }
    if !q.started {
        let spawned = std::thread::Builder::new().name("coldpage-reclaim".into()).spawn(|| reclaimer().run());
        if spawned.is_err() {
            drop(q);
            return free();
        }
        q.started = true;
    }
    q.pending += bytes;
    q.jobs.push_back((bytes, Box::new(free)));
    r.work.notify_one();
}

/// Whether a free of `bytes` runs on the dropping thread: too small to hand off, or
/// the queue is past its bound (a single free of any size is deferred when none waits).
fn runs_here(q: &Queue, bytes: u64) -> bool {
    bytes < DEFER_MIN || (q.pending > 0 && q.pending + bytes > PENDING_MAX)
}

/// Drops `value`, which holds `bytes` of memory, on the reclaiming thread when that
/// is worth it (as [`defer`]): for owners of large buffers whose last reference goes
/// on a thread that must not wait, such as a JS finalizer freeing a GiB of results.
pub fn drop_in_background<T: Send + 'static>(bytes: u64, value: T) {
    defer(bytes, move || drop(value));
}

/// Waits until every deferred free has run; returns at once when none is pending.
/// Returns the bytes that were pending when it was called (what the wait gave back).
pub(crate) fn settle() -> u64 {
    let r = reclaimer();
    let mut q = r.lock();
    let waited = q.pending;
    while q.pending > 0 {
        q = r.idle.wait(q).unwrap_or_else(|p| p.into_inner());
    }
    waited
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn deferred_frees_all_run_before_settle_returns() {
        let freed = Arc::new(AtomicU64::new(0));
        for _ in 0..64 {
            let f = Arc::clone(&freed);
            defer(DEFER_MIN, move || {
                std::thread::yield_now();
                f.fetch_add(1, Ordering::SeqCst);
            });
        }
        settle();
        assert_eq!(freed.load(Ordering::SeqCst), 64);
        assert_eq!(settle(), 0, "nothing is left pending");
    }

    #[test]
    fn small_frees_run_on_the_dropping_thread() {
        let here = std::thread::current().id();
        let ran_on = Arc::new(Mutex::new(None));
        let r = Arc::clone(&ran_on);
        defer(DEFER_MIN - 1, move || *r.lock().unwrap() = Some(std::thread::current().id()));
        assert_eq!(*ran_on.lock().unwrap(), Some(here));
    }

    #[test]
    fn past_the_bound_a_free_runs_on_the_dropping_thread() {
        let queue = |pending| Queue { pending, ..Queue::default() };
        assert!(!runs_here(&queue(0), PENDING_MAX * 2), "one free of any size is deferred when none waits");
        assert!(!runs_here(&queue(PENDING_MAX - DEFER_MIN), DEFER_MIN));
        assert!(runs_here(&queue(PENDING_MAX - DEFER_MIN), DEFER_MIN + 1));
        assert!(runs_here(&queue(0), DEFER_MIN - 1), "small frees are not worth the hand-off");
    }
}
