//! [`HandleCell`]: a handle's life for owners that outlive it (a binding's JS object):
//! live, then taken or disposed, with take-or-give-back, and what it lends in place.
//! It is the one record of that life: owners ask it rather than keep their own flags.
//! Reads in flight hold their own share of the storage, so disposing never frees it
//! under them.

use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::handle::{Handle, Taken};
use crate::selector::Backend;
use crate::tokens::SharedToken;

/// A handle that is live until [`HandleCell::dispose`] or a successful
/// [`HandleCell::take`]; every use after that is [`Error::Disposed`]. While a take
/// reads the bytes elsewhere ([`HandleCell::begin_take`]) it is not live either, and
/// live again if that take fails.
pub struct HandleCell {
    id: u64,
    len: u64,
    backend: Backend,
    life: Mutex<Life>,
}

/// Where a cell's handle is in its life.
enum Life {
    Live(Handle),
    /// A take is reading the bytes on another thread (see [`HandleCell::begin_take`]).
    Taking(Handle),
    Ended,
}

impl HandleCell {
    /// Holds `handle`, live.
    pub fn new(handle: Handle) -> HandleCell {
        HandleCell {
            id: handle.id(),
            len: handle.len(),
            backend: handle.backend(),
            life: Mutex::new(Life::Live(handle)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Life> {
        // Every edit is a single assignment: poison leaves a consistent state.
        self.life.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live handle under the lock, or [`Error::Disposed`].
    fn with_live<T>(&self, f: impl FnOnce(&Handle) -> T) -> Result<T> {
        match &*self.lock() {
            Life::Live(handle) => Ok(f(handle)),
            Life::Taking(_) | Life::Ended => Err(Error::Disposed(self.id)),
        }
    }

    /// The handle's id (kept after it is gone, for messages).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The handle's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the handle holds zero bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The backend fixed at pageout.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether it is still live (not disposed, taken, or being taken).
    pub fn is_live(&self) -> bool {
        matches!(*self.lock(), Life::Live(_))
    }

    /// Whether a view can lend the handle's bytes in place: a file handle's extent is
    /// mapped copy-on-write, so a write into the view never reaches the handle; a swap
    /// handle's storage is plain memory that a writable view would alias, so its views
    /// are copies. (A lease of an encoded handle is a decoded copy either way: see
    /// [`crate::Lease::is_copy`].)
    pub fn lends_views(&self) -> bool {
        self.backend == Backend::File
    }

    /// Whether [`HandleCell::take`] hands the storage over without reading it (a swap
    /// handle's region, when nothing else shares it); a file handle's take reads its
    /// bytes, which an owner may rather do into memory of its own and then dispose.
    pub fn takes_in_place(&self) -> bool {
        self.backend == Backend::Swap
    }

    /// The live handle, for one read: a share of its storage, which a read in flight
    /// keeps alive after a dispose.
    ///
    /// # Errors
    /// [`Error::Disposed`] once disposed or taken.
    pub fn get(&self) -> Result<Handle> {
        self.with_live(Handle::for_read)
    }

    /// A token naming the handle's storage for [`Handle::open`] on another thread
    /// (weak: see [`Handle::share_token`]).
    ///
    /// # Errors
    /// [`Error::Disposed`] once disposed or taken.
    pub fn share_token(&self) -> Result<SharedToken> {
        self.with_live(Handle::share_token)
    }

    /// Ends the handle's life explicitly ([`Handle::dispose`]: nothing is parked for
    /// tokens); its storage is freed once reads in flight and leases are done. A cell
    /// dropped while live ends it as a collected handle (tokens keep a grace). A take in
    /// progress ends with it (its read keeps its own share). Returns whether it was live
    /// or being taken (idempotent).
    pub fn dispose(&self) -> bool {
        let gone = std::mem::replace(&mut *self.lock(), Life::Ended);
        match gone {
            Life::Live(handle) | Life::Taking(handle) => {
                handle.dispose();
                true
            }
            Life::Ended => false,
        }
    }

    /// All the bytes, and the handle's life ends; zero-copy for a swap handle that
    /// nothing else shares. Where reads in flight share it, a copy. On failure the
    /// handle stays live and readable (take-or-give-back).
    ///
    /// # Errors
    /// [`Error::Disposed`] once disposed or taken, else as [`Handle::take`].
    pub fn take(&self) -> Result<Taken> {
        let handle = {
            let mut life = self.lock();
            match std::mem::replace(&mut *life, Life::Ended) {
                Life::Live(handle) => handle,
                other => {
                    *life = other;
                    return Err(Error::Disposed(self.id));
                }
            }
        };
        handle.take().map_err(|failed| {
            *self.lock() = Life::Live(failed.handle);
            failed.error
        })
    }

    /// Starts a take whose read runs elsewhere (a thread pool): returns a share of the
    /// storage to read all the bytes from, and the handle is not live until
    /// [`HandleCell::end_take`] says how the read went.
    ///
    /// # Errors
    /// [`Error::Disposed`] once disposed, taken, or already being taken.
    pub fn begin_take(&self) -> Result<Handle> {
        let mut life = self.lock();
        match std::mem::replace(&mut *life, Life::Ended) {
            Life::Live(handle) => {
                let reader = handle.for_read();
                *life = Life::Taking(handle);
                Ok(reader)
            }
            other => {
                *life = other;
                Err(Error::Disposed(self.id))
            }
        }
    }

    /// Ends a take started by [`HandleCell::begin_take`]: when its read gave all the
    /// bytes the handle's life ends (as [`HandleCell::dispose`]); when it failed or was
    /// abandoned the handle is live and readable again (take-or-give-back). Returns
    /// whether a take was in progress (a dispose meanwhile ended it already).
    pub fn end_take(&self, read: bool) -> bool {
        let mut life = self.lock();
        match std::mem::replace(&mut *life, Life::Ended) {
            Life::Taking(handle) if read => {
                drop(life);
                handle.dispose();
                true
            }
            Life::Taking(handle) => {
                *life = Life::Live(handle);
                true
            }
            other => {
                *life = other;
                false
            }
        }
    }
}

impl std::fmt::Debug for HandleCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleCell").field("id", &self.id).field("live", &self.is_live()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Pager};

    fn pager() -> (Pager, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (Pager::new(Config { scratch_dir: dir.path().to_path_buf(), ..Config::default() }).unwrap(), dir)
    }

    #[test]
    fn live_then_disposed_idempotently() {
        let (pager, _dir) = pager();
        let cell = HandleCell::new(pager.pageout_to(Backend::File, &[b"abc"]).unwrap());
        assert_eq!(cell.get().unwrap().read_at(0, 3).unwrap(), b"abc");
        let in_flight = cell.get().unwrap();
        assert!(cell.dispose());
        assert!(!cell.dispose(), "idempotent");
        assert_eq!(cell.get().unwrap_err().code(), "ERR_COLDPAGE_DISPOSED");
        assert_eq!(cell.take().unwrap_err().code(), "ERR_COLDPAGE_DISPOSED");
        assert_eq!(in_flight.read_at(1, 2).unwrap(), b"bc", "a read in flight keeps the storage");
        drop(in_flight);
        assert_eq!(pager.stats().file.handles, 0);
    }

    #[test]
    fn a_take_in_progress_is_not_live_and_gives_back_or_ends() {
        let (pager, _dir) = pager();
        let cell = HandleCell::new(pager.pageout_to(Backend::File, &[b"abcd"]).unwrap());
        let reading = cell.begin_take().unwrap();
        assert!(!cell.is_live());
        assert_eq!(cell.get().unwrap_err().code(), "ERR_COLDPAGE_DISPOSED");
        assert_eq!(cell.begin_take().unwrap_err().code(), "ERR_COLDPAGE_DISPOSED", "one take at a time");
        assert!(cell.end_take(false), "given back");
        assert_eq!(cell.get().unwrap().read_at(0, 4).unwrap(), b"abcd", "live and readable again");
        drop(reading);
        let reading = cell.begin_take().unwrap();
        assert_eq!(reading.read_at(0, 4).unwrap(), b"abcd");
        assert!(cell.end_take(true));
        assert!(!cell.end_take(false), "ended: nothing to give back");
        assert!(!cell.is_live() && !cell.dispose());
        drop(reading);
        assert_eq!(pager.stats().file.handles, 0);
        let disposed_meanwhile = HandleCell::new(pager.pageout_to(Backend::File, &[b"x"]).unwrap());
        let _reading = disposed_meanwhile.begin_take().unwrap();
        assert!(disposed_meanwhile.dispose());
        assert!(!disposed_meanwhile.end_take(false), "a dispose during the take ends it");
        assert!(!disposed_meanwhile.is_live());
    }

    #[test]
    fn take_is_zero_copy_alone_a_copy_when_shared_and_ends_the_life() {
        let (pager, _dir) = pager();
        let data = vec![5u8; 100_000];
        for backend in [Backend::File, Backend::Swap] {
            let Ok(h) = pager.pageout_to(backend, &[&data]) else { continue };
            let cell = HandleCell::new(h);
            let shared = cell.get().unwrap();
            let taken = cell.take().unwrap();
            assert_eq!(&*taken, &data[..]);
            assert!(!taken.is_zero_copy(), "{backend:?}: shared with a read in flight: a copy");
            assert!(!cell.is_live());
            drop(shared);
            let alone = HandleCell::new(pager.pageout_to(backend, &[&data]).unwrap());
            assert_eq!(alone.take().unwrap().is_zero_copy(), backend == Backend::Swap);
        }
    }
}
