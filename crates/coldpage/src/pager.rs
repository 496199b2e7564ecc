//! The pager: the atomic backend selector, the configuration, the current scratch
//! arena, and the counters behind [`Stats`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use crate::arena::{Arena, Quota};
use crate::config::{config_field, Compression, Config, ConfigField, ConfigValue, CONFIG_FIELDS};
use crate::crypt::{Algorithm, Key};
use crate::error::{Error, Result};
use crate::handle::{Handle, Paged};
use crate::reclaim;
use crate::selector::{resolve_auto, AutoChoice, Backend, Selector};
use crate::shared::{ArenaSlot, Counters, Shared};
use crate::storage::encoded::{EncodedStore, Encoding};
use crate::storage::file::FileStore;
use crate::storage::Storage;

/// Bytes copied out of a caller's memory by [`Pager::stage`], not yet paged out.
pub struct Staged {
    region: crate::storage::swap::Region,
    len: u64,
}

impl Staged {
    pub(crate) fn new(region: crate::storage::swap::Region, len: u64) -> Staged {
        Staged { region, len }
    }
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged").field("len", &self.len).finish()
    }
}

/// What a pageout copies from: the caller's chunks, or bytes staged already.
enum PageoutBytes<'a> {
    Chunks(&'a [&'a [u8]]),
    Staged(crate::storage::swap::Region),
}

/// The total length of `chunks`.
fn total_len(chunks: &[&[u8]]) -> Result<u64> {
    chunks
        .iter()
        .try_fold(0u64, |sum, c| sum.checked_add(c.len() as u64))
        .ok_or_else(|| Error::OutOfRange("total pageout size overflows".into()))
}

/// Owns the backends. Cheap to clone (an `Arc` inside); `Send + Sync`.
///
/// Most programs use one pager, [`Pager::global`]; separate pagers have separate
/// selectors, configurations, quotas and arenas.
///
/// ```
/// let pager = coldpage::Pager::new(coldpage::Config::default())?;
/// pager.set_backend(coldpage::Selector::File);
/// let handle = pager.pageout(&[b"hello ", b"world"])?;
/// assert_eq!(handle.read_at(6, 5)?, b"world");
/// # Ok::<(), coldpage::Error>(())
/// ```
#[derive(Clone)]
pub struct Pager {
    shared: Arc<Shared>,
}

/// A snapshot of the pager's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live swap-backed handles and their bytes.
    pub swap: BackendStats,
    /// Live file-backed handles and their bytes.
    pub file: BackendStats,
    /// Scratch bytes allocated to live extents (whole pages). The quota also counts
    /// up to 64 MiB of freed extents kept for reuse while handles are live.
    pub scratch_bytes_allocated: u64,
    /// Bytes the arena files occupy on disk (`st_blocks * 512`).
    pub scratch_bytes_on_disk: u64,
    /// Read calls served (each range of `read_at_many` counts once).
    pub reads: u64,
    /// Bytes returned by reads, views and takes.
    pub bytes_read: u64,
    /// Blocks whose checksum did not match.
    pub checksum_failures: u64,
    /// Operations that failed with an I/O, space or corruption error.
    pub errors: u64,
    /// Pageouts that succeeded since the pager was made.
    pub pageouts: u64,
    /// Their logical bytes.
    pub bytes_paged_out: u64,
    /// Takes that succeeded since the pager was made ([`Handle::take`], and
    /// [`Pager::count_take`] for takes a binding composes from a read and a drop).
    pub takes: u64,
    /// Bytes written to scratch files since the pager was made: what file pageouts
    /// stored, after compression (and with encryption's tags), not page-rounded.
    pub bytes_written: u64,
}

/// What [`Pager::encryption`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encryption {
    /// The AEAD and its implementation, e.g. `"AES-256-GCM (ring)"`.
    pub aead: &'static str,
    /// Whether the key exists yet (it is made by the first encrypted pageout).
    pub key_made: bool,
    /// Why the key's page could not be locked in RAM (`None` when it is, or before
    /// the key is made).
    pub key_lock_error: Option<String>,
}

/// Live handles and bytes of one backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Live handles.
    pub handles: u64,
    /// Their logical bytes.
    pub bytes: u64,
}

impl Pager {
    /// A pager with its own selector (starting at [`Selector::Auto`]) and `config`.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration or an unsafe scratch directory.
    pub fn new(config: Config) -> Result<Pager> {
        let config = config.validate()?;
        Ok(Pager::with_validated(config))
    }

    fn with_validated(config: Config) -> Pager {
        let quota = Quota::default();
        quota.max.store(config.max_scratch_bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
        Pager {
            shared: Arc::new(Shared {
                selector: AtomicU8::new(Selector::Auto.to_u8()),
                verify: AtomicBool::new(config.verify),
                arena: Mutex::new(ArenaSlot { dir: config.scratch_dir.clone(), arena: None }),
                config: RwLock::new(config),
                arenas: Mutex::default(),
                quota: Arc::new(quota),
                counters: Counters::default(),
                key: Mutex::new(None),
            }),
        }
    }

    /// The process-wide pager, on [`Config::default`]. Should the default scratch
    /// directory be unsafe, the pager still starts and file pageouts report why.
    pub fn global() -> &'static Pager {
        static GLOBAL: OnceLock<Pager> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Pager::new(Config::default()).unwrap_or_else(|_| Pager::with_validated(Config::default())))
    }

    /// Replaces the configuration after validating all of it. New file pageouts go to
    /// the new scratch dir; live handles keep theirs.
    ///
    /// # Errors
    /// [`Error::Config`] (nothing is applied) for an invalid configuration.
    pub fn configure(&self, config: Config) -> Result<()> {
        self.update(|c| *c = config).map(drop)
    }

    /// Changes some fields of the configuration atomically: `edit` gets the config in
    /// force, and its result is validated whole and applied while no other change can
    /// interleave (two threads each changing a different field both take effect).
    ///
    /// # Errors
    /// [`Error::Config`] (nothing is applied) for an invalid result.
    pub fn update(&self, edit: impl FnOnce(&mut Config)) -> Result<Config> {
        self.try_update(|config| {
            edit(config);
            Ok(())
        })
    }

    /// [`Pager::update`] with an edit that can refuse: then nothing is applied.
    fn try_update(&self, edit: impl FnOnce(&mut Config) -> Result<()>) -> Result<Config> {
        // Lock order: arena slot, then config (never the other way round).
        let mut slot = self.lock_arena();
        let mut current = self.shared.config.write().unwrap_or_else(|p| p.into_inner());
        let mut config = current.clone();
        edit(&mut config)?;
        let config = config.validate()?;
        if slot.dir != config.scratch_dir {
            let old = std::mem::replace(&mut *slot, ArenaSlot { dir: config.scratch_dir.clone(), arena: None });
            // Its live handles keep it; its recycle bin would only hold quota.
            if let Some(arena) = old.arena {
                arena.retire();
            }
        }
        self.shared.quota.max.store(config.max_scratch_bytes.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.shared.verify.store(config.verify, Ordering::Relaxed);
        *current = config.clone();
        Ok(config)
    }

    /// Sets the fields `patch` names (by their [`CONFIG_FIELDS`] names; `Null` unsets),
    /// atomically: every value is checked and the resulting config validated before
    /// anything applies, and fields the patch does not name keep what other threads set
    /// meanwhile. The selector is set after the config, which can still fail on the
    /// scratch dir; the selector itself cannot. A patch that names no field of
    /// [`Config`] leaves it as it is, not even revalidated.
    ///
    /// # Errors
    /// [`Error::InvalidArgValue`] for a name that is no field, the field's errors
    /// ([`ConfigField::set`]) for a value it refuses, and [`Pager::update`]'s.
    pub fn set_fields(&self, patch: &[(String, ConfigValue)]) -> Result<()> {
        for (name, _) in patch {
            config_field(name)?;
        }
        // In the table's order, whatever the patch's: the first refusal is always the same.
        let named: Vec<(&ConfigField, &ConfigValue)> = CONFIG_FIELDS
            .iter()
            .filter_map(|field| patch.iter().find(|(name, _)| name == field.name).map(|(_, value)| (field, value)))
            .collect();
        let mut selector = self.backend();
        let mut set =
            |config: &mut Config| named.iter().try_for_each(|(field, value)| field.set(config, &mut selector, value));
        if named.iter().all(|(field, _)| field.selector) {
            set(&mut self.config())?;
        } else {
            self.try_update(set)?;
        }
        if named.iter().any(|(field, _)| field.selector) {
            self.set_backend(selector);
        }
        Ok(())
    }

    /// Every field of [`CONFIG_FIELDS`] with its value in force, in that order.
    pub fn fields(&self) -> Vec<(&'static str, ConfigValue)> {
        let (config, selector) = (self.config(), self.backend());
        CONFIG_FIELDS.iter().map(|field| (field.name, field.get(&config, selector))).collect()
    }

    /// The current configuration.
    pub fn config(&self) -> Config {
        self.shared.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sets the backend selector. Live handles keep the backend they were paged out to.
    pub fn set_backend(&self, selector: Selector) {
        self.shared.selector.store(selector.to_u8(), Ordering::Release);
    }

    /// The backend selector.
    pub fn backend(&self) -> Selector {
        Selector::from_u8(self.shared.selector.load(Ordering::Acquire))
    }

    /// What [`Selector::Auto`] resolves to right now, and why.
    pub fn auto_choice(&self) -> AutoChoice {
        resolve_auto()
    }

    /// Copies the concatenation of `chunks` out of the caller's memory into the
    /// backend the selector names (read once, here).
    ///
    /// # Errors
    /// [`Error::NoSpace`] when the quota or the disk is full (the caller's bytes are
    /// untouched), [`Error::Unsupported`] for swap off Linux, [`Error::Io`] and
    /// [`Error::Config`] when the scratch arena cannot be opened.
    pub fn pageout(&self, chunks: &[&[u8]]) -> Result<Handle> {
        self.pageout_to(self.next_backend(), chunks)
    }

    /// The backend a [`Pager::pageout`] now would use: the selector, with `auto`
    /// resolved (for callers that must know before they page out).
    pub fn next_backend(&self) -> Backend {
        match self.backend() {
            Selector::Auto => resolve_auto().backend,
            Selector::Swap => Backend::Swap,
            Selector::File => Backend::File,
        }
    }

    /// Like [`Pager::pageout`] to an explicit backend, whatever the selector says.
    ///
    /// # Errors
    /// As [`Pager::pageout`].
    pub fn pageout_to(&self, backend: Backend, chunks: &[&[u8]]) -> Result<Handle> {
        let len = total_len(chunks)?;
        self.count_failure(self.store(backend, len, PageoutBytes::Chunks(chunks)))
    }

    /// Copies the concatenation of `chunks` out of the caller's memory, to be paged
    /// out later with [`Pager::pageout_staged`], possibly on another thread. For
    /// bindings whose callers can free or move their memory while a background
    /// pageout runs (JS can transfer an ArrayBuffer): the copy is the part that must
    /// happen while the caller's memory is known to be there.
    ///
    /// # Errors
    /// [`Error::NoMemory`] when the copy cannot be allocated.
    pub fn stage(&self, chunks: &[&[u8]]) -> Result<Staged> {
        let len = total_len(chunks)?;
        Ok(Staged { region: self.count_failure(crate::storage::swap::fill_region(chunks, len))?, len })
    }

    /// Pages out bytes [`Pager::stage`] copied: a swap handle adopts the staged memory
    /// itself (no second copy), a file handle writes it to the arena.
    ///
    /// # Errors
    /// As [`Pager::pageout`].
    pub fn pageout_staged(&self, backend: Backend, staged: Staged) -> Result<Handle> {
        self.count_failure(self.store(backend, staged.len, PageoutBytes::Staged(staged.region)))
    }

    fn store(&self, backend: Backend, len: u64, source: PageoutBytes<'_>) -> Result<Handle> {
        // Taken first: an encrypted pageout binds its blocks to the handle's id.
        let id = crate::handle::next_id();
        if backend == Backend::Swap {
            crate::os::page_out_primitive().map_err(Error::Unsupported)?;
        }
        let storage = match backend {
            _ if len == 0 => Storage::Empty,
            Backend::Swap => Storage::Swap(match source {
                PageoutBytes::Chunks(chunks) => crate::storage::swap::swap_pageout(chunks, len)?,
                PageoutBytes::Staged(region) => {
                    // A hint, as in `swap_pageout`.
                    let _ = region.page_out();
                    region
                }
            }),
            Backend::File => {
                let arena = self.arena()?;
                let staged;
                let chunks = match &source {
                    PageoutBytes::Chunks(chunks) => *chunks,
                    PageoutBytes::Staged(region) => {
                        staged = [region.as_slice()];
                        &staged[..]
                    }
                };
                match self.encoding()? {
                    None => Storage::File(FileStore::write(&arena, chunks, len)?),
                    Some(encoding) => Storage::Encoded(EncodedStore::write(&arena, chunks, len, id, &encoding)?),
                }
            }
        };
        self.count_pageout(len, &storage);
        Ok(Handle::new(Paged::new(id, len, backend, storage, Arc::clone(&self.shared))))
    }

    /// Counts a pageout of `len` bytes, stored as `storage`, in [`Pager::stats`].
    pub(crate) fn count_pageout(&self, len: u64, storage: &Storage) {
        let c = &self.shared.counters;
        c.pageouts.fetch_add(1, Ordering::Relaxed);
        c.bytes_paged_out.fetch_add(len, Ordering::Relaxed);
        c.bytes_written.fetch_add(storage.stored_len().unwrap_or(0), Ordering::Relaxed);
    }

    /// The state every handle of this pager shares.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    pub(crate) fn count_failure<T>(&self, r: Result<T>) -> Result<T> {
        self.shared.count_failure(r)
    }

    /// How a file pageout now encodes its blocks; `None` for plain (checksummed) blocks.
    pub(crate) fn encoding(&self) -> Result<Option<Encoding>> {
        let (encrypt, compress) = {
            let config = self.shared.config.read().unwrap_or_else(|p| p.into_inner());
            (config.encrypt, config.compress)
        };
        if !encrypt && compress == Compression::None {
            return Ok(None);
        }
        let key = if encrypt { Some(self.key()?) } else { None };
        Ok(Some(Encoding { lz4: compress == Compression::Lz4, key }))
    }

    /// The pager's scratch key, made on first use; it lives as long as the pager or
    /// a handle sealed with it.
    fn key(&self) -> Result<Arc<Key>> {
        let mut key = self.shared.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = key.as_ref() {
            return Ok(Arc::clone(key));
        }
        let made = Arc::new(Key::new(Algorithm::for_this_cpu())?);
        *key = Some(Arc::clone(&made));
        Ok(made)
    }

    /// What encrypted pageouts use here: the AEAD and whether the key is locked in RAM.
    pub fn encryption(&self) -> Encryption {
        let key = self.shared.key.lock().unwrap_or_else(|p| p.into_inner());
        match key.as_ref() {
            Some(key) => Encryption {
                aead: key.algorithm().name(),
                key_made: true,
                key_lock_error: key.lock_error().map(str::to_owned),
            },
            None => Encryption { aead: Algorithm::for_this_cpu().name(), key_made: false, key_lock_error: None },
        }
    }

    fn lock_arena(&self) -> std::sync::MutexGuard<'_, ArenaSlot> {
        self.shared.arena.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The arena for new file-backed handles, opened on first use.
    pub(crate) fn arena(&self) -> Result<Arc<Arena>> {
        let mut slot = self.lock_arena();
        if let Some(arena) = slot.arena.as_ref() {
            return Ok(Arc::clone(arena));
        }
        let arena = Arc::new(Arena::open(&slot.dir, Arc::clone(&self.shared.quota))?);
        let mut all = self.shared.arenas.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|a| a.strong_count() > 0);
        all.push(Arc::downgrade(&arena));
        slot.arena = Some(Arc::clone(&arena));
        Ok(arena)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        // Large frees run in the background: the figures count them once they ran.
        reclaim::settle();
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let arenas: Vec<Arc<Arena>> = {
            let all = self.shared.arenas.lock().unwrap_or_else(|p| p.into_inner());
            all.iter().filter_map(Weak::upgrade).collect()
        };
        Stats {
            swap: BackendStats { handles: load(&c.handles[0]), bytes: load(&c.bytes[0]) },
            file: BackendStats { handles: load(&c.handles[1]), bytes: load(&c.bytes[1]) },
            scratch_bytes_allocated: load(&self.shared.quota.used).saturating_sub(load(&self.shared.quota.recycled)),
            scratch_bytes_on_disk: arenas.iter().map(|a| a.bytes_on_disk()).sum(),
            reads: load(&c.reads),
            bytes_read: load(&c.bytes_read),
            checksum_failures: load(&c.checksum_failures),
            errors: load(&c.errors),
            pageouts: load(&c.pageouts),
            bytes_paged_out: load(&c.bytes_paged_out),
            takes: load(&c.takes),
            bytes_written: load(&c.bytes_written),
        }
    }

    /// Why swap-backed handles page out nothing here (no active swap, or no working
    /// page-out primitive), the first time it is asked in this process; `None` when
    /// they do page out, and on every later call. For a binding that warns once per
    /// process when a swap pageout is made where it saves no memory.
    pub fn claim_swap_warning(&self) -> Option<String> {
        static CLAIMED: AtomicBool = AtomicBool::new(false);
        let why = if crate::selector::swap_pages_out() {
            return None;
        } else if !crate::selector::page_out_works() {
            "the page-out primitive does not work here"
        } else {
            "there is no active swap"
        };
        if CLAIMED.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(format!(
            "backend 'swap' pages out nothing: {why}, so the bytes stay resident; use backend 'file' or 'auto' (see coldpage doctor)"
        ))
    }

    /// Counts a take that a binding made of a read of every byte followed by the
    /// handle's drop (where that is cheaper for it than [`Handle::take`], which
    /// counts itself).
    pub fn count_take(&self) {
        self.shared.counters.takes.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether hole punching has worked in the current arena (true before first use).
    pub fn hole_punching(&self) -> bool {
        self.lock_arena().arena.as_ref().is_none_or(|a| a.punch_works())
    }
}
