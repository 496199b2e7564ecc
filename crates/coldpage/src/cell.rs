//! [`HandleCell`]: a handle's life for owners that outlive it (a binding's JS object):
//! live, then taken or disposed, with take-or-give-back. Reads in flight hold their own
//! share of the storage, so disposing never frees it under them.

use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::handle::{Handle, Taken};
use crate::selector::Backend;
use crate::tokens::SharedToken;

/// A handle that is live until [`HandleCell::dispose`] or a successful
/// [`HandleCell::take`]; every use after that is [`Error::Disposed`].
pub struct HandleCell {
    id: u64,
    len: u64,
    backend: Backend,
    live: Mutex<Option<Handle>>,
}

impl HandleCell {
    /// Holds `handle`, live.
    pub fn new(handle: Handle) -> HandleCell {
        HandleCell { id: handle.id(), len: handle.len(), backend: handle.backend(), live: Mutex::new(Some(handle)) }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Handle>> {
        // Every edit is a single assignment: poison leaves a consistent state.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Whether it is still live.
    pub fn is_live(&self) -> bool {
        self.lock().is_some()
    }

    /// The live handle, for one read: a share of its storage, which a read in flight
    /// keeps alive after a dispose.
    ///
    /// # Errors
    /// [`Error::Disposed`] once disposed or taken.
    pub fn get(&self) -> Result<Handle> {
        self.lock().as_ref().map(Handle::for_read).ok_or(Error::Disposed(self.id))
    }

    /// A token naming the handle's storage for [`Handle::open`] on another thread
    /// (weak: see [`Handle::share_token`]).
    ///
    /// # Errors
    /// [`Error::Disposed`] once disposed or taken.
    pub fn share_token(&self) -> Result<SharedToken> {
        self.lock().as_ref().map(Handle::share_token).ok_or(Error::Disposed(self.id))
    }

    /// Ends the handle's life explicitly ([`Handle::dispose`]: nothing is parked for
    /// tokens); its storage is freed once reads in flight and leases are done. A cell
    /// dropped while live ends it as a collected handle (tokens keep a grace). Returns
    /// whether it was live (idempotent).
    pub fn dispose(&self) -> bool {
        let gone = self.lock().take();
        gone.map(Handle::dispose).is_some()
    }

    /// All the bytes, and the handle's life ends; zero-copy for a swap handle that
    /// nothing else shares. Where reads in flight share it, a copy. On failure the
    /// handle stays live and readable (take-or-give-back).
    ///
    /// # Errors
    /// [`Error::Disposed`] once disposed or taken, else as [`Handle::take`].
    pub fn take(&self) -> Result<Taken> {
        let handle = self.lock().take().ok_or(Error::Disposed(self.id))?;
        handle.take().map_err(|failed| {
            *self.lock() = Some(failed.handle);
            failed.error
        })
    }
}

impl std::fmt::Debug for HandleCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleCell").field("id", &self.id).field("live", &self.is_live()).finish()
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
