//! Handles, and the two ways bytes leave one without a copy: a [`Lease`] borrows the
//! storage, a [`Taken`] owns it.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{try_zeroed, Error, Result};
use crate::maps;
use crate::selector::Backend;
use crate::shared::{slot, Shared};
use crate::storage::swap::{Region, Residency};
use crate::storage::{file, ReadContext, Span, Storage};
use crate::tokens::{ParkOnDrop, Parkable, Registry, SharedToken};

/// Handle ids: never reused in a process, so a stale id never names another handle.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

/// A fresh handle id.
pub(crate) fn next_id() -> u64 {
    NEXT_HANDLE.fetch_add(1, Ordering::Relaxed)
}

/// The storage that [`Handle::share_token`] named, by the id of the handle that
/// shared it. Entries are weak and leave when their storage is freed; a handle over it
/// dropped without [`Handle::dispose`] parks it there for a grace period (see
/// [`crate::tokens`]).
static SHARED: Registry<Paged> = Registry::new();

/// Paged-out bytes. `Send + Sync`; reads take `&self` and may run from many threads.
/// Dropping the handle frees its storage (once no [`Lease`] and no other handle
/// opened with [`Handle::open`] holds it), except that storage named by a token
/// ([`Handle::share_token`]) stays openable for [`crate::tokens::TOKEN_GRACE`] after a
/// handle over it is dropped; [`Handle::dispose`] frees without that grace.
pub struct Handle {
    /// This handle's id: the storage's for the handle that paged it out, a fresh one
    /// for each [`Handle::open`].
    id: u64,
    /// Declared before `paged`, so it drops (and may park) while `paged` is alive.
    park: ParkOnDrop<Paged>,
    paged: Arc<Paged>,
}

/// What one pageout left: its storage, length and backend, counted in the pager's
/// stats while it lives; shared by the handles and leases over it.
pub(crate) struct Paged {
    id: u64,
    len: u64,
    backend: Backend,
    storage: Storage,
    shared: Arc<Shared>,
    /// Whether [`SHARED`] holds an entry for this storage (under `id`).
    registered: AtomicBool,
}

/// Whether `bytes` of results could be allocated now: reserves them as untouched
/// address space and gives it back at once (no byte is committed). A request far
/// past memory (or past an address-space limit) then fails before any work, as
/// [`Error::NoMemory`], rather than aborting the process part-way through.
///
/// # Errors
/// [`Error::NoMemory`] when the reservation fails.
pub fn check_memory(bytes: u64) -> Result<()> {
    let len = usize::try_from(bytes).map_err(|_| Error::no_memory(bytes))?;
    Vec::<u8>::new().try_reserve_exact(len).map_err(|_| Error::no_memory(bytes))
}

impl Paged {
    pub(crate) fn new(id: u64, len: u64, backend: Backend, storage: Storage, shared: Arc<Shared>) -> Paged {
        let c = &shared.counters;
        c.handles[slot(backend)].fetch_add(1, Ordering::Relaxed);
        c.bytes[slot(backend)].fetch_add(len, Ordering::Relaxed);
        Paged { id, len, backend, storage, shared, registered: AtomicBool::new(false) }
    }
}

impl Parkable for Paged {
    fn token_id(&self) -> u64 {
        self.id
    }

    fn is_shared(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    fn registry() -> &'static Registry<Paged> {
        &SHARED
    }
}

impl Drop for Paged {
    fn drop(&mut self) {
        // Registration happened while a handle held the storage, so it is visible here
        // (Arc's last drop synchronises with every earlier one).
        if self.registered.load(Ordering::Acquire) {
            SHARED.forget(self.id);
        }
        let c = &self.shared.counters;
        c.handles[slot(self.backend)].fetch_sub(1, Ordering::Relaxed);
        c.bytes[slot(self.backend)].fetch_sub(self.len, Ordering::Relaxed);
    }
}

/// Where each range lands: (target index, offset in it), filling the targets in order;
/// [`Error::OutOfRange`] unless the ranges fill every target exactly.
fn plan_targets(ranges: &[(u64, u64)], targets: &[&mut [u8]]) -> Result<Vec<(usize, usize)>> {
    let mismatch = || {
        let need = ranges.iter().try_fold(0u64, |sum, r| sum.checked_add(r.1));
        let have: usize = targets.iter().map(|t| t.len()).sum();
        Error::OutOfRange(format!(
            "the targets hold {have} bytes but the ranges need {}, range by range",
            need.map_or_else(|| "more than 2^64".into(), |t| t.to_string())
        ))
    };
    let mut plan = Vec::new();
    plan.try_reserve_exact(ranges.len()).map_err(|_| Error::no_memory(ranges.len() as u64 * 16))?;
    let (mut t, mut at) = (0usize, 0usize);
    for &(_, len) in ranges {
        // Zero-length ranges land anywhere; others move on to the next target that has room.
        while len > 0 && t < targets.len() && at == targets[t].len() {
            (t, at) = (t + 1, 0);
        }
        let room = targets.get(t).map_or(0, |target| target.len() - at);
        if len > room as u64 {
            return Err(mismatch());
        }
        plan.push((t.min(targets.len().saturating_sub(1)), at));
        at += len as usize;
    }
    if targets.iter().enumerate().any(|(i, target)| i > t && !target.is_empty())
        || targets.get(t).is_some_and(|target| at != target.len())
    {
        return Err(mismatch());
    }
    Ok(plan)
}

impl Handle {
    pub(crate) fn new(paged: Paged) -> Handle {
        let paged = Arc::new(paged);
        Handle { id: paged.id, park: ParkOnDrop::armed(&paged), paged }
    }

    /// Another owner of the same storage (freed when the last one drops), with the
    /// same id; for [`crate::HandleCell`], whose reads in flight each hold one.
    pub(crate) fn for_read(&self) -> Handle {
        Handle { id: self.id, park: ParkOnDrop::disarmed(), paged: Arc::clone(&self.paged) }
    }

    /// Ends this handle explicitly: unlike a plain drop, it leaves nothing parked for
    /// tokens, so once every handle over the storage is disposed (and every lease
    /// dropped) the storage is freed and [`Handle::open`] of its token is
    /// [`Error::Disposed`].
    pub fn dispose(mut self) {
        self.park.disarm();
    }

    /// A token naming this handle's storage, for [`Handle::open`] on any thread of
    /// this process (a binding posts it to its workers as plain data).
    ///
    /// The token itself keeps nothing alive, but a handle over the storage that is
    /// dropped without [`Handle::dispose`] keeps it openable for
    /// [`crate::tokens::TOKEN_GRACE`] (share, send, drop is the usual pattern); an
    /// explicit dispose of every handle frees it at once.
    ///
    /// ```
    /// let pager = coldpage::Pager::new(coldpage::Config::default())?;
    /// let handle = pager.pageout_to(coldpage::Backend::File, &[b"shared bytes"])?;
    /// let token = handle.share_token();
    /// let other = std::thread::spawn(move || coldpage::Handle::open(&token)?.read_at(0, 6))
    ///     .join()
    ///     .unwrap()?;
    /// assert_eq!(other, b"shared");
    /// # Ok::<(), coldpage::Error>(())
    /// ```
    pub fn share_token(&self) -> SharedToken {
        let paged = &self.paged;
        SHARED.register(paged.id, paged, || paged.registered.store(true, Ordering::Release));
        SharedToken { process: SharedToken::this_process(), id: paged.id }
    }

    /// A new handle over the storage that `token` names, with its own id. The storage
    /// is freed when every handle over it (and every lease) is gone; [`Handle::take`]
    /// of a handle that is not the last one copies.
    ///
    /// # Errors
    /// [`Error::Disposed`] when every handle over the storage was disposed, or dropped
    /// longer than the grace ago; [`Error::InvalidArgValue`] for a token of another process, or one
    /// that names no storage this process shared.
    pub fn open(token: &SharedToken) -> Result<Handle> {
        if token.process != SharedToken::this_process() {
            return Err(Error::InvalidArgValue(format!(
                "the shared handle comes from another process (nonce {:016x}, this process {:016x}): tokens \
                 work only between the threads of the process that made them",
                token.process,
                SharedToken::this_process()
            )));
        }
        if token.id == 0 || token.id >= NEXT_HANDLE.load(Ordering::Relaxed) {
            return Err(Error::InvalidArgValue(format!(
                "the shared handle names handle {}, which this process never made",
                token.id
            )));
        }
        let paged = SHARED.get(token.id).ok_or(Error::Disposed(token.id))?;
        Ok(Handle { id: next_id(), park: ParkOnDrop::armed(&paged), paged })
    }

    /// A process-unique id, used in error messages.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The handle's logical length in bytes.
    pub fn len(&self) -> u64 {
        self.paged.len
    }

    /// Whether the handle holds zero bytes.
    pub fn is_empty(&self) -> bool {
        self.paged.len == 0
    }

    /// The backend fixed into the handle at pageout.
    pub fn backend(&self) -> Backend {
        self.paged.backend
    }

    /// Bytes this handle keeps in process memory (its swap region; 0 for file-backed
    /// handles), for bindings that report external memory to a garbage collector.
    pub fn resident_bytes(&self) -> u64 {
        self.paged.storage.resident_bytes()
    }

    fn check(&self, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.paged.len => {}
            _ => return Err(Error::out_of_range(offset, len, self.paged.len)),
        }
        // A media error under a view or a read of this storage: its bytes are gone, and
        // every read says so from then on, on every thread.
        if maps::storage_failed(self.paged.id) {
            let lost = Error::io("read (mapped)", std::io::Error::from_raw_os_error(crate::os::errno::EIO));
            return self.paged.shared.count_failure(Err(lost));
        }
        Ok(())
    }

    /// Records a media error that `result` reports (a read or view of a map), so that
    /// the handle fails from then on and a binding can warn.
    fn note_media_error<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.syscall() == Some("read (mapped)") {
                maps::media_error(self.paged.id);
            }
        }
        result
    }

    fn read_context(&self) -> ReadContext<'_> {
        let p = &*self.paged;
        ReadContext {
            verify: p.shared.verify.load(Ordering::Relaxed),
            handle: self.id,
            owner: p.id,
            counters: &p.shared.counters,
        }
    }

    /// Counts a failed read among the pager's errors, and a media error against the
    /// storage.
    fn count_failure<T>(&self, result: Result<T>) -> Result<T> {
        self.paged.shared.count_failure(self.note_media_error(result))
    }

    fn count_read(&self, calls: u64, bytes: u64) {
        let c = &self.paged.shared.counters;
        c.reads.fetch_add(calls, Ordering::Relaxed);
        c.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A fresh copy of `[offset, offset + len)`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] past the end; for file-backed handles [`Error::Corrupt`]
    /// when a block fails its checksum and [`Error::Io`] when the read fails.
    pub fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.check(offset, len)?;
        let mut out = try_zeroed(usize::try_from(len).map_err(|_| Error::no_memory(len))?)?;
        self.read_into(offset, &mut out)?;
        Ok(out)
    }

    /// Fills all of `buf` with the bytes at `offset`, without allocating. On error the
    /// contents of `buf` are unspecified (zeroed after a checksum mismatch), never
    /// silently wrong.
    ///
    /// # Errors
    /// As [`Handle::read_at`].
    pub fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len() as u64)?;
        self.count_failure(self.paged.storage.read_into(offset, buf, self.read_context()))?;
        self.count_read(1, buf.len() as u64);
        Ok(())
    }

    /// One fresh copy per range, in request order; ranges may overlap or repeat.
    /// File-backed handles fetch each run of overlapping or adjacent ranges with one
    /// `pread`.
    ///
    /// # Errors
    /// As [`Handle::read_at`]; every range is checked before anything is read.
    pub fn read_at_many(&self, ranges: &[(u64, u64)]) -> Result<Vec<Vec<u8>>> {
        if let [(offset, len)] = ranges {
            return Ok(vec![self.read_at(*offset, *len)?]);
        }
        self.check_all(ranges)?;
        // Every result is allocated before anything is read: a request too large for
        // memory fails as a whole, before any work. The total is tried first as one
        // untouched reservation (address space only, given back at once), so that a
        // request far past memory fails without committing a byte. The results are
        // reserved, not zeroed: each range's bytes are copied in once.
        let total = ranges.iter().try_fold(0u64, |sum, r| sum.checked_add(r.1)).unwrap_or(u64::MAX);
        check_memory(total)?;
        let mut out: Vec<Vec<u8>> = Vec::new();
        out.try_reserve_exact(ranges.len()).map_err(|_| Error::no_memory(ranges.len() as u64 * 24))?;
        if file::large_ranges(ranges) {
            // Each straight into its own result (zeroed pages the OS gives untouched):
            // a run read in one go would go through a staging buffer and be copied again.
            for &(_, len) in ranges {
                out.push(try_zeroed(usize::try_from(len).map_err(|_| Error::no_memory(len))?)?);
            }
            for (part, &(offset, _)) in out.iter_mut().zip(ranges) {
                self.read_into(offset, part)?;
            }
            return Ok(out);
        }
        for &(_, len) in ranges {
            let mut part = Vec::new();
            part.try_reserve_exact(len as usize).map_err(|_| Error::no_memory(len))?;
            out.push(part);
        }
        self.read_many(ranges, |i, bytes| {
            out[i].clear();
            out[i].extend_from_slice(bytes);
        })?;
        Ok(out)
    }

    /// Like [`Handle::read_at_many`], but the ranges land one after another in `buf`,
    /// whose length must be the sum of the ranges' lengths: one buffer for every
    /// range, allocated by the caller (a binding can let its garbage collector own it).
    ///
    /// # Errors
    /// As [`Handle::read_at_many`], and [`Error::OutOfRange`] when `buf` is not
    /// exactly as long as the ranges together. On error `buf` holds no wrong bytes
    /// (it is zeroed after a checksum mismatch).
    pub fn read_at_many_into(&self, ranges: &[(u64, u64)], buf: &mut [u8]) -> Result<()> {
        self.read_at_many_into_all(ranges, &mut [buf])
    }

    /// Like [`Handle::read_at_many_into`] with the ranges spread over several
    /// buffers: `targets[0]` receives the first ranges, as many as fill it exactly,
    /// `targets[1]` the next ones, and so on (a binding packs small results into a few
    /// pooled buffers this way). A range never spans two targets.
    ///
    /// # Errors
    /// As [`Handle::read_at_many_into`], and [`Error::OutOfRange`] when the ranges do
    /// not fill the targets exactly, range by range. On a checksum mismatch every
    /// target is zeroed.
    pub fn read_at_many_into_all(&self, ranges: &[(u64, u64)], targets: &mut [&mut [u8]]) -> Result<()> {
        let plan = plan_targets(ranges, targets)?;
        self.check_all(ranges)?;
        let result = self.paged.storage.read_many_into(ranges, &plan, targets, self.read_context());
        if matches!(result, Err(Error::Corrupt { .. })) {
            targets.iter_mut().for_each(|t| t.fill(0));
        }
        self.count_failure(result)?;
        self.count_read(ranges.len() as u64, ranges.iter().map(|r| r.1).sum());
        Ok(())
    }

    fn check_all(&self, ranges: &[(u64, u64)]) -> Result<()> {
        ranges.iter().try_for_each(|&(offset, len)| self.check(offset, len))
    }

    /// Delivers each range's bytes (two or more ranges, checked by the caller).
    fn read_many(&self, ranges: &[(u64, u64)], deliver: impl FnMut(usize, &[u8])) -> Result<()> {
        self.count_failure(self.paged.storage.read_many(ranges, self.read_context(), deliver))?;
        self.count_read(ranges.len() as u64, ranges.iter().map(|r| r.1).sum());
        Ok(())
    }

    /// A zero-copy lease on `[offset, offset + len)`: the swap region itself, or a
    /// read-only map of the file extent (verified when `verify` is on). The storage
    /// stays alive until the lease drops, even if the handle is dropped first.
    /// Compressed or encrypted handles lend a decoded copy instead (the bytes on disk
    /// are not the handle's bytes): see [`Lease::is_copy`].
    ///
    /// # Errors
    /// As [`Handle::read_at`], plus [`Error::Io`] when `mmap` fails.
    pub fn view(&self, offset: u64, len: u64) -> Result<Lease> {
        self.check(offset, len)?;
        let span = self.count_failure(self.paged.storage.lend(offset, len, self.read_context()))?;
        self.count_read(1, len);
        Ok(Lease { span, paged: Arc::clone(&self.paged) })
    }

    /// All the bytes, consuming the handle. A swap handle hands over its region
    /// without copying (unless a [`Lease`] still borrows it); a file handle reads its
    /// extent into a fresh buffer and frees the extent.
    ///
    /// # Errors
    /// As [`Handle::read_at`], and [`Error::NoMemory`] when the result cannot be
    /// allocated. A failed take loses nothing: the [`TakeError`] gives the handle back,
    /// live and readable.
    pub fn take(self) -> std::result::Result<Taken, TakeError> {
        // A take ends the handle explicitly (as dispose), unless it fails.
        let Handle { id, mut park, paged } = self;
        park.disarm();
        let len = paged.len;
        let paged = match Arc::try_unwrap(paged) {
            Ok(mut paged) => match paged.storage.take_region() {
                Some(region) => {
                    let c = &paged.shared.counters;
                    c.reads.fetch_add(1, Ordering::Relaxed);
                    c.bytes_read.fetch_add(len, Ordering::Relaxed);
                    c.takes.fetch_add(1, Ordering::Relaxed);
                    return Ok(Taken(Owned::Region(region)));
                }
                None => Arc::new(paged),
            },
            // A lease (or another handle) still borrows the storage: copy, and let it
            // free the storage later.
            Err(paged) => paged,
        };
        let handle = Handle { id, park: ParkOnDrop::disarmed(), paged };
        match handle.read_at(0, len) {
            Ok(bytes) => {
                handle.paged.shared.counters.takes.fetch_add(1, Ordering::Relaxed);
                Ok(Taken(Owned::Vec(bytes)))
            }
            Err(error) => {
                let handle = Handle { park: ParkOnDrop::armed(&handle.paged), ..handle };
                Err(TakeError { error, handle })
            }
        }
    }

    /// Hints that `[offset, offset + len)` (clamped to the handle) will be read soon:
    /// `MADV_WILLNEED` for swap, `posix_fadvise(WILLNEED)` for file (where the OS has
    /// them). Never fails.
    pub fn prefetch(&self, offset: u64, len: u64) {
        let offset = offset.min(self.paged.len);
        let len = len.min(self.paged.len - offset);
        self.paged.storage.prefetch(offset, len);
    }

    /// How many of a swap handle's pages are resident and how many are swapped out, as
    /// the OS reports them (`/proc/self/pagemap` on Linux, `QueryWorkingSetEx` on
    /// Windows, where "resident" means in the working set and paged-out pages count as
    /// swapped).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for file-backed handles and where the OS reports no
    /// residency; [`Error::Io`] if the OS query fails.
    pub fn residency(&self) -> Result<Residency> {
        self.paged.storage.residency()
    }

    /// The scratch arena id of a file-backed handle (for diagnostics and tests).
    pub fn arena_id(&self) -> Option<u64> {
        self.paged.storage.arena_id()
    }

    /// Whether the handle's scratch bytes are encrypted, compressed or both (set at
    /// pageout from [`Config::encrypt`](crate::Config::encrypt) and
    /// [`Config::compress`](crate::Config::compress); file backend only).
    pub fn is_encoded(&self) -> bool {
        self.paged.storage.is_encoded()
    }

    /// Bytes the handle occupies in its scratch extent (compressed blocks are shorter
    /// than [`Handle::len`]); `None` for other backends.
    pub fn stored_len(&self) -> Option<u64> {
        self.paged.storage.stored_len()
    }

    /// Where the handle's extent starts in its arena file. For tests that tamper with
    /// scratch bytes; not a stable API.
    #[doc(hidden)]
    pub fn scratch_offset(&self) -> Option<u64> {
        self.paged.storage.scratch_offset()
    }

    /// The nonce counter values of an encrypted handle's blocks, one per block. For
    /// tests (no value may ever repeat under one pager); not a stable API.
    #[doc(hidden)]
    pub fn nonces(&self) -> Option<std::ops::Range<u64>> {
        self.paged.storage.nonces()
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("id", &self.id)
            .field("len", &self.paged.len)
            .field("backend", &self.paged.backend)
            .finish()
    }
}

/// Zero-copy read access to part of a handle's storage. Keeps the storage alive
/// (and its scratch extent allocated) until dropped.
pub struct Lease {
    span: Span,
    paged: Arc<Paged>,
}

impl Deref for Lease {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.span.bytes(&self.paged.storage)
    }
}

impl Lease {
    /// Whether the lease holds a decoded copy (a compressed or encrypted handle)
    /// rather than the handle's storage itself.
    pub fn is_copy(&self) -> bool {
        matches!(self.span, Span::Copy(_))
    }

    /// The lent bytes as a writable pointer, where writing to them is allowed: a
    /// file-backed lease that is a private copy-on-write map of the extent (writes
    /// change this process's pages only, never the handle's storage or other
    /// leases). `None` for a swap lease (the handle's storage itself), a copy
    /// ([`Lease::is_copy`]) and an empty lease. For bindings that expose the lease
    /// to a runtime whose views are writable.
    ///
    /// The pointer is valid for writes of `self.len()` bytes while the lease lives. Writing through it is `unsafe` for the caller, who must not write
    /// while a `&[u8]` from this lease's [`Deref`] is in use.
    ///
    /// ```
    /// let pager = coldpage::Pager::new(coldpage::Config::default())?;
    /// let handle = pager.pageout_to(coldpage::Backend::File, &[&[7u8; 8192]])?;
    /// let lease = handle.view(0, 8192)?;
    /// if let Some(ptr) = lease.writable_ptr() {
    ///     // SAFETY: within the lease's length, while it lives, no borrow of its bytes in use.
    ///     unsafe { ptr.write(1) };
    ///     assert_eq!(lease[0], 1);
    /// }
    /// assert_eq!(handle.read_at(0, 1)?, [7], "the storage never sees the write");
    /// # Ok::<(), coldpage::Error>(())
    /// ```
    pub fn writable_ptr(&self) -> Option<*mut u8> {
        self.span.writable_ptr()
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("handle", &self.paged.id).field("len", &self.len()).finish()
    }
}

/// A [`Handle::take`] that failed: why, and the handle, still live and readable.
#[derive(Debug)]
pub struct TakeError {
    /// Why the take failed.
    pub error: Error,
    /// The handle, unchanged.
    pub handle: Handle,
}

impl std::fmt::Display for TakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for TakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<TakeError> for Error {
    fn from(err: TakeError) -> Error {
        err.error
    }
}

enum Owned {
    Region(Region),
    Vec(Vec<u8>),
}

/// Bytes taken out of a handle: its swap region itself, or a fresh buffer.
pub struct Taken(Owned);

impl Taken {
    /// Whether these are the pager's own pages, handed over without a copy.
    pub fn is_zero_copy(&self) -> bool {
        matches!(self.0, Owned::Region(_))
    }

    /// The bytes as a `Vec` (a copy only for a zero-copy region).
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Owned::Region(region) => region.as_slice().to_vec(),
            Owned::Vec(v) => v,
        }
    }
}

impl Deref for Taken {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Owned::Region(region) => region.as_slice(),
            Owned::Vec(v) => v,
        }
    }
}

impl DerefMut for Taken {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Owned::Region(region) => region.as_mut_slice(),
            Owned::Vec(v) => v,
        }
    }
}

impl std::fmt::Debug for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Taken").field("len", &self.len()).field("zero_copy", &self.is_zero_copy()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Pager};

    #[test]
    fn a_shared_storage_leaves_the_registry_with_its_last_handle() {
        let dir = tempfile::tempdir().unwrap();
        let pager = Pager::new(Config { scratch_dir: dir.path().to_path_buf(), ..Config::default() }).unwrap();
        for backend in [Backend::File, Backend::Swap] {
            let Ok(first) = pager.pageout_to(backend, &[&[3u8; 10_000]]) else { continue };
            let token = first.share_token();
            assert_eq!(first.share_token(), token, "{backend:?}: sharing again names the same storage");
            assert!(SHARED.contains(token.id));
            let second = Handle::open(&token).unwrap();
            first.dispose();
            assert!(SHARED.contains(token.id), "{backend:?}: the storage lives while a handle does");
            let lease = second.view(0, 10).unwrap();
            second.dispose();
            assert!(SHARED.contains(token.id), "{backend:?}: and while a lease does");
            drop(lease);
            assert!(!SHARED.contains(token.id), "{backend:?}: no entry outlives its storage");
            assert_eq!(Handle::open(&token).unwrap_err().code(), "ERR_COLDPAGE_DISPOSED");
        }
        let taken = pager.pageout_to(Backend::File, &[b"x"]).unwrap();
        let token = taken.share_token();
        taken.take().unwrap();
        assert!(!SHARED.contains(token.id), "a take frees the entry too");
    }

    #[test]
    fn a_dropped_sharer_parks_its_storage_for_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let pager = Pager::new(Config { scratch_dir: dir.path().to_path_buf(), ..Config::default() }).unwrap();
        for backend in [Backend::File, Backend::Swap] {
            let Ok(sharer) = pager.pageout_to(backend, &[b"parked bytes"]) else { continue };
            let token = sharer.share_token();
            drop(sharer); // collected without dispose
            assert!(SHARED.is_parked(token.id), "{backend:?}");
            let opened = Handle::open(&token).unwrap();
            assert_eq!(opened.read_at(0, 6).unwrap(), b"parked");
            opened.dispose();
            // An unshared handle parks nothing when dropped.
            let alone = pager.pageout_to(backend, &[b"x"]).unwrap();
            let id = alone.id();
            drop(alone);
            assert!(!SHARED.is_parked(id) && !SHARED.contains(id), "{backend:?}");
        }
    }
}
