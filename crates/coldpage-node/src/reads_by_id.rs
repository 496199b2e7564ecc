//! The synchronous reads the façade makes per range (`readAt`, `readInto`,
//! `readAtMany`), as module functions that find the handle's cell by its id in a
//! per-thread index.
//!
//! Why not methods of `NativeHandle`: napi-rs unwraps a method's receiver with a
//! type-tag check and registers it as a native borrow, which costs more than a 4 KiB
//! read from the page cache; a module function with numeric arguments does not.
//!
//! The index is no second record of liveness: it maps an id to the cell for as long
//! as the JS object that owns the cell exists (an [`IndexEntry`] held by
//! `NativeHandle`, removed when it is dropped), and the cell alone answers whether
//! the handle is live. Ids are never reused, so a stale id finds nothing
//! (`ERR_COLDPAGE_DISPOSED`), never another handle.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use napi::bindgen_prelude::{BufferSlice, Float64ArraySlice};
use napi::Env;
use napi_derive::napi;

use crate::error::{to_u64, Failure, Outcome, Throw};

/// Handle ids are distinct integers: a multiplicative hash spreads them over the
/// index's buckets (SipHash would cost more than the lookup needs).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Index = HashMap<u64, Arc<coldpage::HandleCell>, BuildHasherDefault<IdHasher>>;

thread_local! {
    /// The cells of this JS thread's handle objects (each Worker has its own addon
    /// instance and its own handles), by id.
    static INDEX: RefCell<Index> = RefCell::default();
}

/// A cell's place in this thread's index, for as long as the owner holds it.
pub(crate) struct IndexEntry(u64);

impl IndexEntry {
    /// Makes `cell` reachable by id from this thread's reads.
    pub(crate) fn new(cell: &Arc<coldpage::HandleCell>) -> IndexEntry {
        INDEX.with_borrow_mut(|index| index.insert(cell.id(), Arc::clone(cell)));
        IndexEntry(cell.id())
    }
}

impl Drop for IndexEntry {
    fn drop(&mut self) {
        // At thread exit the index may already be gone, which forgets the cell too.
        let _ = INDEX.try_with(|index| index.borrow_mut().remove(&self.0));
    }
}

fn with_live<T>(env: &Env, id: f64, read: impl FnOnce(&coldpage::Handle) -> coldpage::Result<T>) -> Outcome<T> {
    crate::handle::warn_media_errors(env);
    let id = to_u64("id", id)?;
    let handle = INDEX.with_borrow(|index| index.get(&id).map(|cell| cell.get()));
    match handle {
        Some(handle) => Ok(read(&handle?)?),
        None => Err(coldpage::Error::Disposed(id).into()),
    }
}

/// Fills `target` with the bytes at `offset` of handle `id`.
#[napi]
pub fn read_into(env: Env, id: f64, offset: f64, mut target: BufferSlice) -> napi::Result<()> {
    (|| -> Outcome<()> {
        let offset = to_u64("offset", offset)?;
        with_live(&env, id, |h| h.read_into(offset, &mut target))
    })()
    .throw(&env)
}

/// Reads the `[offset, length]` pairs in `ranges` of handle `id` into `targets`, one
/// range after another: each target receives the next ranges that fill it exactly
/// (the façade packs small results into pooled Buffers that V8 owns and frees).
#[napi]
pub fn read_at_many_into(
    env: Env,
    id: f64,
    ranges: Float64ArraySlice,
    mut targets: Vec<BufferSlice>,
) -> napi::Result<()> {
    (|| -> Outcome<()> {
        let ranges = ranges_arg(&ranges)?;
        let mut bufs: Vec<&mut [u8]> = targets.iter_mut().map(|t| &mut t[..]).collect();
        with_live(&env, id, |h| h.read_at_many_into_all(&ranges, &mut bufs))
    })()
    .throw(&env)
}

/// Throws `ERR_COLDPAGE_NO_MEMORY` unless `bytes` of results could be allocated now
/// (the check the async reads make in the core), so that a synchronous request too
/// large for memory fails before its results are made.
#[napi]
pub fn check_memory(env: Env, bytes: f64) -> napi::Result<()> {
    (|| -> Outcome<()> { Ok(coldpage::check_memory(to_u64("bytes", bytes)?)?) })().throw(&env)
}

/// `[offset, length]` pairs given flat.
pub(crate) fn ranges_arg(flat: &[f64]) -> Outcome<Vec<(u64, u64)>> {
    if !flat.len().is_multiple_of(2) {
        return Err(Failure::invalid_value("ranges", "expected [offset, length] pairs"));
    }
    flat.chunks_exact(2).map(|p| Ok((to_u64("offset", p[0])?, to_u64("length", p[1])?))).collect()
}
