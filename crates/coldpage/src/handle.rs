//! Handles, and the two ways bytes leave one without a copy: a [`Lease`] borrows the
//! storage, a [`Taken`] owns it.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{try_zeroed, Error, Result};
use crate::maps::{self, ViewMap};
use crate::selector::Backend;
use crate::shared::{slot, Shared};
use crate::storage::encoded::EncodedStore;
use crate::storage::file::FileStore;
use crate::storage::swap::Region;
use crate::tokens::{ParkOnDrop, Parkable, Registry, SharedToken};

/// Handle ids: never reused in a process, so a stale id never names another handle.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

/// A fresh handle id.
/// Ranges this long on average are read one by one, each straight into its
/// target: one system call per range costs nothing next to the bytes, and a
/// coalesced read would stage them and copy them a second time.
const LARGE_RANGE: u64 = 1 << 20;

fn large_ranges(ranges: &[(u64, u64)]) -> bool {
    let total = ranges.iter().fold(0u64, |sum, r| sum.saturating_add(r.1));
    !ranges.is_empty() && total / ranges.len() as u64 >= LARGE_RANGE
}

pub(crate) fn next_id() -> u64 {
    NEXT_HANDLE.fetch_add(1, Ordering::Relaxed)
}

/// The storage that [`Handle::share_token`] named, by the id of the handle that
/// shared it. Entries are weak and leave when their storage is freed; a handle over it
/// dropped without [`Handle::dispose`] parks it there for a grace period (see
/// [`crate::tokens`]).
static SHARED: Registry<Stored> = Registry::new();

/// Paged-out bytes. `Send + Sync`; reads take `&self` and may run from many threads.
/// Dropping the handle frees its storage (once no [`Lease`] and no other handle
/// opened with [`Handle::open`] holds it), except that storage named by a token
/// ([`Handle::share_token`]) stays openable for [`crate::tokens::TOKEN_GRACE`] after a
/// handle over it is dropped; [`Handle::dispose`] frees without that grace.
pub struct Handle {
    /// This handle's id: the storage's for the handle that paged it out, a fresh one
    /// for each [`Handle::open`].
    id: u64,
    /// Declared before `stored`, so it drops (and may park) while `stored` is alive.
    park: ParkOnDrop<Stored>,
    stored: Arc<Stored>,
}

/// The storage of one handle, shared by the handle and its leases.
pub(crate) struct Stored {
    id: u64,
    len: u64,
    backend: Backend,
    data: Data,
    shared: Arc<Shared>,
    /// Whether [`SHARED`] holds an entry for this storage (under `id`).
    registered: AtomicBool,
}

pub(crate) enum Data {
    Empty,
    Swap(Region),
    File(FileStore),
    /// File-backed, compressed and/or encrypted.
    Encoded(EncodedStore),
}

/// Swap residency of a handle's pages, as the OS reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Residency {
    /// Pages the handle's region spans.
    pub pages: u64,
    /// Pages in RAM (Linux: including the swap cache; Windows: in the working set).
    pub resident: u64,
    /// Pages swapped out.
    pub swapped: u64,
}

/// Copies `chunks` into a fresh anonymous region and asks the OS to page it out first.
pub(crate) fn swap_pageout(chunks: &[&[u8]], total: u64) -> Result<Region> {
    let region = fill_region(chunks, total)?;
    // A hint: a kernel without MADV_COLD keeps the pages on the normal LRU, which only
    // makes them slower to reclaim, so an error is not worth failing the pageout.
    let _ = region.page_out();
    Ok(region)
}

/// Copies `chunks` (`total` bytes) into a fresh region: a populated mapping (the
/// pages are faulted in one batch by the kernel), or the heap for small ones.
pub(crate) fn fill_region(chunks: &[&[u8]], total: u64) -> Result<Region> {
    let len = usize::try_from(total).map_err(|_| Error::OutOfRange(format!("{total} bytes do not fit in memory")))?;
    fail::fail_point!("swap-alloc", |_| Err(Error::io(
        "mmap",
        std::io::Error::from_raw_os_error(crate::os::errno::ENOMEM)
    )));
    let mut region = Region::new(len).map_err(|e| match e.kind() {
        std::io::ErrorKind::OutOfMemory => Error::NoMemory(format!("{len} bytes of memory for a swap region: {e}")),
        _ => Error::io("mmap", e),
    })?;
    let mut at = 0;
    let dst = region.as_mut_slice();
    for chunk in chunks {
        dst[at..at + chunk.len()].copy_from_slice(chunk);
        at += chunk.len();
    }
    Ok(region)
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

impl Stored {
    pub(crate) fn new(id: u64, len: u64, backend: Backend, data: Data, shared: Arc<Shared>) -> Stored {
        let c = &shared.counters;
        c.handles[slot(backend)].fetch_add(1, Ordering::Relaxed);
        c.bytes[slot(backend)].fetch_add(len, Ordering::Relaxed);
        Stored { id, len, backend, data, shared, registered: AtomicBool::new(false) }
    }
}

impl Parkable for Stored {
    fn token_id(&self) -> u64 {
        self.id
    }

    fn is_shared(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    fn registry() -> &'static Registry<Stored> {
        &SHARED
    }
}

impl Drop for Stored {
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
    pub(crate) fn new(stored: Stored) -> Handle {
        let stored = Arc::new(stored);
        Handle { id: stored.id, park: ParkOnDrop::armed(&stored), stored }
    }

    /// Another owner of the same storage (freed when the last one drops), with the
    /// same id; for [`crate::HandleCell`], whose reads in flight each hold one.
    pub(crate) fn share(&self) -> Handle {
        Handle { id: self.id, park: ParkOnDrop::disarmed(), stored: Arc::clone(&self.stored) }
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
        let stored = &self.stored;
        SHARED.register(stored.id, stored, || stored.registered.store(true, Ordering::Release));
        SharedToken { process: SharedToken::this_process(), id: stored.id }
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
        let stored = SHARED.get(token.id).ok_or(Error::Disposed(token.id))?;
        Ok(Handle { id: next_id(), park: ParkOnDrop::armed(&stored), stored })
    }

    /// A process-unique id, used in error messages.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The handle's logical length in bytes.
    pub fn len(&self) -> u64 {
        self.stored.len
    }

    /// Whether the handle holds zero bytes.
    pub fn is_empty(&self) -> bool {
        self.stored.len == 0
    }

    /// The backend fixed into the handle at pageout.
    pub fn backend(&self) -> Backend {
        self.stored.backend
    }

    /// Bytes this handle keeps in process memory (its swap region; 0 for file-backed
    /// handles), for bindings that report external memory to a garbage collector.
    pub fn resident_bytes(&self) -> u64 {
        match &self.stored.data {
            Data::Swap(region) => region.mapped_len() as u64,
            _ => 0,
        }
    }

    fn check(&self, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.stored.len => {}
            _ => return Err(Error::out_of_range(offset, len, self.stored.len)),
        }
        // A media error under a view or a read of this storage: its bytes are gone, and
        // every read says so from then on, on every thread.
        if maps::storage_failed(self.stored.id) {
            let lost = Error::io("read (mapped)", std::io::Error::from_raw_os_error(crate::os::errno::EIO));
            return self.stored.shared.count_failure(Err(lost));
        }
        Ok(())
    }

    /// Records a media error that `result` reports (a read or view of a map), so that
    /// the handle fails from then on and a binding can warn.
    fn note_media_error<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.syscall() == Some("read (mapped)") {
                maps::media_error(self.stored.id);
            }
        }
        result
    }

    fn verify(&self) -> bool {
        self.stored.shared.verify.load(Ordering::Relaxed)
    }

    fn count_read(&self, calls: u64, bytes: u64) {
        let c = &self.stored.shared.counters;
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
        let s = &*self.stored;
        let result = match &s.data {
            Data::Empty => Ok(()),
            Data::Swap(region) => {
                let at = offset as usize;
                crate::copy::copy_bytes(buf, &region.as_slice()[at..at + buf.len()]);
                Ok(())
            }
            Data::File(file) => file.read_into(offset, buf, self.verify(), self.id, &s.shared.counters),
            Data::Encoded(store) => store.read_into(offset, buf, self.verify(), &s.shared.counters),
        };
        s.shared.count_failure(self.note_media_error(result))?;
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
        if large_ranges(ranges) {
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
        let s = &*self.stored;
        let result = match &s.data {
            Data::File(file) if file.reads_mapped() || large_ranges(ranges) => {
                // Each range lands straight in its target (copied from the extent's map,
                // or read with one `pread` per large range): no staging buffer between
                // the file and `buf`.
                ranges.iter().zip(&plan).filter(|(r, _)| r.1 > 0).try_for_each(|(&(offset, len), &(t, at))| {
                    let dst = &mut targets[t][at..at + len as usize];
                    file.read_into(offset, dst, self.verify(), self.id, &s.shared.counters)
                })
            }
            // Each range decodes only the blocks it touches, straight into its target.
            Data::Encoded(store) => {
                ranges.iter().zip(&plan).filter(|(r, _)| r.1 > 0).try_for_each(|(&(offset, len), &(t, at))| {
                    store.read_into(offset, &mut targets[t][at..at + len as usize], self.verify(), &s.shared.counters)
                })
            }
            _ if ranges.len() == 1 && ranges[0].1 > 0 => {
                let (offset, len) = ranges[0];
                let (t, at) = plan[0];
                return self.read_into(offset, &mut targets[t][at..at + len as usize]);
            }
            _ => self.read_many_uncounted(ranges, |i, bytes| {
                if !bytes.is_empty() {
                    let (t, at) = plan[i];
                    crate::copy::copy_bytes(&mut targets[t][at..at + bytes.len()], bytes);
                }
            }),
        };
        if matches!(result, Err(Error::Corrupt { .. })) {
            targets.iter_mut().for_each(|t| t.fill(0));
        }
        s.shared.count_failure(self.note_media_error(result))?;
        self.count_read(ranges.len() as u64, ranges.iter().map(|r| r.1).sum());
        Ok(())
    }

    fn check_all(&self, ranges: &[(u64, u64)]) -> Result<()> {
        ranges.iter().try_for_each(|&(offset, len)| self.check(offset, len))
    }

    /// Delivers each range's bytes (two or more ranges, checked by the caller).
    fn read_many(&self, ranges: &[(u64, u64)], deliver: impl FnMut(usize, &[u8])) -> Result<()> {
        let s = &*self.stored;
        let result = self.read_many_uncounted(ranges, deliver);
        s.shared.count_failure(self.note_media_error(result))?;
        self.count_read(ranges.len() as u64, ranges.iter().map(|r| r.1).sum());
        Ok(())
    }

    fn read_many_uncounted(&self, ranges: &[(u64, u64)], mut deliver: impl FnMut(usize, &[u8])) -> Result<()> {
        let s = &*self.stored;
        match &s.data {
            Data::Empty => {
                (0..ranges.len()).for_each(|i| deliver(i, &[]));
                Ok(())
            }
            Data::Swap(region) => {
                for (i, &(o, l)) in ranges.iter().enumerate() {
                    deliver(i, &region.as_slice()[o as usize..(o + l) as usize]);
                }
                Ok(())
            }
            Data::File(file) => file.read_many(ranges, self.verify(), self.id, &s.shared.counters, deliver),
            Data::Encoded(store) => {
                for (i, &(offset, len)) in ranges.iter().enumerate() {
                    let mut bytes = try_zeroed(len as usize)?;
                    store.read_into(offset, &mut bytes, self.verify(), &s.shared.counters)?;
                    deliver(i, &bytes);
                }
                Ok(())
            }
        }
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
        let s = &*self.stored;
        let span = match &s.data {
            _ if len == 0 => Span::Region { offset: 0, len: 0 },
            Data::Empty => Span::Region { offset: 0, len: 0 },
            Data::Swap(_) => Span::Region { offset: offset as usize, len: len as usize },
            Data::File(file) => {
                let mapped = file.map(offset, len, self.verify(), (self.id, s.id), &s.shared.counters);
                match s.shared.count_failure(self.note_media_error(mapped))? {
                    Some((map, at)) => Span::Map { map, at, len: len as usize },
                    // As many views are mapped as the pager allows: this one is a copy.
                    None => {
                        let mut bytes = try_zeroed(usize::try_from(len).map_err(|_| Error::no_memory(len))?)?;
                        let read = file.read_into(offset, &mut bytes, self.verify(), self.id, &s.shared.counters);
                        s.shared.count_failure(self.note_media_error(read))?;
                        Span::Copy(bytes)
                    }
                }
            }
            Data::Encoded(store) => {
                let mut bytes = try_zeroed(usize::try_from(len).map_err(|_| Error::no_memory(len))?)?;
                s.shared.count_failure(store.read_into(offset, &mut bytes, self.verify(), &s.shared.counters))?;
                Span::Copy(bytes)
            }
        };
        self.count_read(1, len);
        Ok(Lease { span, stored: Arc::clone(&self.stored) })
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
        let Handle { id, mut park, stored } = self;
        park.disarm();
        let len = stored.len;
        let stored = match Arc::try_unwrap(stored) {
            Ok(mut stored) => match std::mem::replace(&mut stored.data, Data::Empty) {
                Data::Swap(region) => {
                    stored.shared.counters.reads.fetch_add(1, Ordering::Relaxed);
                    stored.shared.counters.bytes_read.fetch_add(len, Ordering::Relaxed);
                    stored.shared.counters.takes.fetch_add(1, Ordering::Relaxed);
                    return Ok(Taken(Owned::Region(region)));
                }
                data => {
                    stored.data = data;
                    Arc::new(stored)
                }
            },
            // A lease (or a share) still borrows the storage: copy, and let it free
            // the storage later.
            Err(stored) => stored,
        };
        let handle = Handle { id, park: ParkOnDrop::disarmed(), stored };
        match handle.read_at(0, len) {
            Ok(bytes) => {
                handle.stored.shared.counters.takes.fetch_add(1, Ordering::Relaxed);
                Ok(Taken(Owned::Vec(bytes)))
            }
            Err(error) => {
                let handle = Handle { park: ParkOnDrop::armed(&handle.stored), ..handle };
                Err(TakeError { error, handle })
            }
        }
    }

    /// Hints that `[offset, offset + len)` (clamped to the handle) will be read soon:
    /// `MADV_WILLNEED` for swap, `posix_fadvise(WILLNEED)` for file (where the OS has
    /// them). Never fails.
    pub fn prefetch(&self, offset: u64, len: u64) {
        let offset = offset.min(self.stored.len);
        let len = len.min(self.stored.len - offset);
        match &self.stored.data {
            Data::Empty => {}
            Data::Swap(region) => region.will_need(offset as usize, len as usize),
            Data::File(file) => file.prefetch(offset, len),
            Data::Encoded(store) => store.prefetch(offset, len),
        }
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
        match &self.stored.data {
            Data::Swap(region) => match region.residency() {
                Ok((pages, resident, swapped)) => Ok(Residency { pages, resident, swapped }),
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => Err(Error::Unsupported(e.to_string())),
                Err(e) => Err(Error::io("residency", e)),
            },
            Data::Empty => Ok(Residency { pages: 0, resident: 0, swapped: 0 }),
            Data::File(_) | Data::Encoded(_) => {
                Err(Error::Unsupported("residency is measured for swap-backed handles".into()))
            }
        }
    }

    /// The scratch arena id of a file-backed handle (for diagnostics and tests).
    pub fn arena_id(&self) -> Option<u64> {
        match &self.stored.data {
            Data::File(file) => Some(file.arena().id),
            Data::Encoded(store) => Some(store.arena().id),
            _ => None,
        }
    }

    /// Whether the handle's scratch bytes are encrypted, compressed or both (set at
    /// pageout from [`Config::encrypt`](crate::Config::encrypt) and
    /// [`Config::compress`](crate::Config::compress); file backend only).
    pub fn is_encoded(&self) -> bool {
        matches!(self.stored.data, Data::Encoded(_))
    }

    /// Bytes the handle occupies in its scratch extent (compressed blocks are shorter
    /// than [`Handle::len`]); `None` for other backends.
    pub fn stored_len(&self) -> Option<u64> {
        match &self.stored.data {
            Data::File(_) => Some(self.stored.len),
            Data::Encoded(store) => Some(store.stored_len()),
            _ => None,
        }
    }

    /// Where the handle's extent starts in its arena file. For tests that tamper with
    /// scratch bytes; not a stable API.
    #[doc(hidden)]
    pub fn scratch_offset(&self) -> Option<u64> {
        match &self.stored.data {
            Data::File(file) => Some(file.extent_offset()),
            Data::Encoded(store) => Some(store.extent_offset()),
            _ => None,
        }
    }

    /// The nonce counter values of an encrypted handle's blocks, one per block. For
    /// tests (no value may ever repeat under one pager); not a stable API.
    #[doc(hidden)]
    pub fn nonces(&self) -> Option<std::ops::Range<u64>> {
        match &self.stored.data {
            Data::Encoded(store) => store.nonces(),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("id", &self.id)
            .field("len", &self.stored.len)
            .field("backend", &self.stored.backend)
            .finish()
    }
}

enum Span {
    Region {
        offset: usize,
        len: usize,
    },
    Map {
        map: ViewMap,
        at: usize,
        len: usize,
    },
    /// Decoded bytes of a compressed or encrypted handle.
    Copy(Vec<u8>),
}

/// Zero-copy read access to part of a handle's storage. Keeps the storage alive
/// (and its scratch extent allocated) until dropped.
pub struct Lease {
    span: Span,
    stored: Arc<Stored>,
}

impl Deref for Lease {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match (&self.span, &self.stored.data) {
            (Span::Region { offset, len }, Data::Swap(region)) => &region.as_slice()[*offset..*offset + *len],
            (Span::Region { .. }, _) => &[],
            (Span::Map { map, at, len }, _) => &map[*at..*at + *len],
            (Span::Copy(bytes), _) => bytes,
        }
    }
}

impl Lease {
    /// Whether the lease holds a decoded copy (a compressed or encrypted handle)
    /// rather than the handle's storage itself.
    pub fn is_copy(&self) -> bool {
        matches!(self.span, Span::Copy(_))
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("handle", &self.stored.id).field("len", &self.len()).finish()
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
