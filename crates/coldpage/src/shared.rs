//! The state a pager shares with its handles: the selector, the verify flag, the
//! configuration, the arena slot, the quota and the live counters. Handles and file
//! stores reach it through an `Arc`; only the pager creates it. (Kept apart from
//! `pager` so that the modules form a tree: pager -> handle -> storage -> shared.)

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::arena::{Arena, Quota};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::selector::Backend;

/// The index of a backend in [`Counters`]' per-backend arrays.
pub(crate) fn slot(backend: Backend) -> usize {
    match backend {
        Backend::Swap => 0,
        Backend::File => 1,
    }
}

/// What a pager and its handles share.
pub(crate) struct Shared {
    pub(crate) selector: AtomicU8,
    pub(crate) verify: AtomicBool,
    pub(crate) config: RwLock<Config>,
    /// The arena new file-backed handles go to, opened on first use in `dir`.
    pub(crate) arena: Mutex<ArenaSlot>,
    /// Every arena still referenced by a live handle, for `stats`.
    pub(crate) arenas: Mutex<Vec<Weak<Arena>>>,
    pub(crate) quota: Arc<Quota>,
    pub(crate) counters: Counters,
    /// The key of encrypted pageouts, made on the first; handles sealed with it hold
    /// it too, so it outlives a key change in no case (it never changes).
    pub(crate) key: Mutex<Option<Arc<crate::crypt::Key>>>,
}

/// The scratch dir for new file-backed handles and its arena. Kept apart from
/// `config` so that opening an arena never waits on the config lock.
pub(crate) struct ArenaSlot {
    pub(crate) dir: std::path::PathBuf,
    pub(crate) arena: Option<Arc<Arena>>,
}

/// Live counters; handles update them directly.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) handles: [AtomicU64; 2],
    pub(crate) bytes: [AtomicU64; 2],
    pub(crate) reads: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) checksum_failures: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// Since the pager was made: pageouts, their logical bytes, takes, and bytes
    /// written to scratch (after compression and encryption).
    pub(crate) pageouts: AtomicU64,
    pub(crate) bytes_paged_out: AtomicU64,
    pub(crate) takes: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
}

impl Shared {
    pub(crate) fn count_failure<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if matches!(e, Error::Io { .. } | Error::NoSpace(_) | Error::Corrupt { .. }) {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }
}
