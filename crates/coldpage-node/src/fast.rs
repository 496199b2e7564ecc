//! The synchronous reads the façade makes per range (`readAt`, `readInto`,
//! `readAtMany`), as module functions that find the handle by its id in a
//! per-thread table.
//!
//! Why not methods of `NativeHandle`: napi-rs unwraps a method's receiver with a
//! type-tag check and registers it as a native borrow, which measured ~250 ns of a
//! ~400 ns call (a getter alone cost 380 ns here, a module function with three
//! arguments 160 ns), more than the 4 KiB read itself. Ids are never reused, so a
//! stale id finds nothing (`ERR_COLDPAGE_DISPOSED`), never another handle.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use napi::bindgen_prelude::{BufferSlice, Float64ArraySlice};
use napi::Env;
use napi_derive::napi;

use crate::error::{to_u64, Failure, Outcome, Throw};

/// Handle ids are distinct integers: a multiplicative hash spreads them over the
/// table's buckets (SipHash would be a fifth of the lookup's cost).
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

type Live = HashMap<u64, Arc<coldpage::HandleCell>, BuildHasherDefault<IdHasher>>;

thread_local! {
    /// The live handles of this JS thread (each Worker has its own addon instance
    /// and its own handles), by id.
    static LIVE: RefCell<Live> = RefCell::default();
}

/// Makes `cell` reachable by id from this thread's fast reads.
pub(crate) fn register(cell: &Arc<coldpage::HandleCell>) {
    LIVE.with_borrow_mut(|live| live.insert(cell.id(), Arc::clone(cell)));
}

/// Forgets the handle `id` (disposed, taken or collected). At thread exit the table
/// may already be gone, which forgets it too.
pub(crate) fn unregister(id: u64) {
    let _ = LIVE.try_with(|live| live.borrow_mut().remove(&id));
}

fn with_live<T>(env: &Env, id: f64, read: impl FnOnce(&coldpage::Handle) -> coldpage::Result<T>) -> Outcome<T> {
    crate::handle::warn_media_errors(env);
    let id = to_u64("id", id)?;
    let handle = LIVE.with_borrow(|live| live.get(&id).map(|cell| cell.get()));
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
