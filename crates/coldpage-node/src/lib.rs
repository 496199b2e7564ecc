//! Node.js binding of the coldpage pager (napi-rs).
//!
//! Thin by design: argument conversion, Buffer creation, error mapping and
//! `AsyncTask`s over the process-wide [`coldpage::Pager::global`]. Everything
//! else lives in the core crate (the pager) or in the TypeScript façade in
//! `lib/` (validation with argument names, config sources, `Symbol.dispose`).
//! The generated `index.d.ts` is internal: users import the façade.

#![deny(missing_docs)]

mod budget;
mod buffers;
mod config;
mod error;
mod fast;
mod handle;
mod tasks;

use napi::bindgen_prelude::{AsyncTask, BufferSlice};
use napi::{Env, Task};
use napi_derive::napi;

use crate::config::backend_arg;
use crate::error::{Failure, Outcome, Pending, Throw};
pub use crate::handle::{NativeHandle, NativeSharedHandle};

fn pager() -> &'static coldpage::Pager {
    coldpage::Pager::global()
}

/// Pages out the concatenation of `chunks` (copied; the caller's buffers are
/// not retained). `backend` overrides the global selector for this handle.
#[napi]
pub fn pageout(env: Env, chunks: Vec<BufferSlice>, backend: Option<String>) -> napi::Result<NativeHandle> {
    let handle = (|| -> Outcome<coldpage::Handle> {
        let backend = backend_arg(backend.as_deref())?;
        let slices: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
        Ok(pager().pageout_to(backend.unwrap_or_else(|| pager().next_backend()), &slices)?)
    })()
    .throw(&env)?;
    Ok(NativeHandle::new(&env, handle))
}

/// Like [`pageout`], with the write (file) or the page-out advice (swap) on the libuv
/// thread pool.
///
/// The caller's bytes are copied here, on the JS thread (`Pager::stage`: into a
/// populated region, which a swap handle then adopts as its storage): JS can transfer
/// or detach an ArrayBuffer while a task runs (which frees or moves its memory), and
/// Node-API has no way to pin it, so the pool never reads JS memory.
#[napi(ts_return_type = "Promise<NativeHandle>")]
pub fn pageout_async(env: Env, chunks: Vec<BufferSlice>, backend: Option<String>) -> napi::Result<AsyncTask<Pageout>> {
    let task = (|| -> Outcome<Pageout> {
        let backend = backend_arg(backend.as_deref())?.unwrap_or_else(|| pager().next_backend());
        let slices: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
        Ok(Pageout { backend, staged: Some(pager().stage(&slices)?), pending: Pending::default() })
    })()
    .throw(&env)?;
    Ok(AsyncTask::new(task))
}

/// `pageoutAsync`: the caller's bytes were copied on the JS thread (see
/// `pageout_async`); the rest of the pageout (the file write, or the swap region's
/// page-out advice) runs here. A failure waits in the task for `reject`.
pub struct Pageout {
    backend: coldpage::Backend,
    staged: Option<coldpage::Staged>,
    pending: Pending,
}

impl Task for Pageout {
    type Output = coldpage::Handle;
    type JsValue = NativeHandle;

    fn compute(&mut self) -> napi::Result<coldpage::Handle> {
        let staged = self.staged.take().expect("compute runs once");
        let result = pager().pageout_staged(self.backend, staged).map_err(Failure::from);
        self.pending.hold(result)
    }

    fn resolve(&mut self, env: Env, handle: coldpage::Handle) -> napi::Result<NativeHandle> {
        Ok(NativeHandle::new(&env, handle))
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<NativeHandle> {
        self.pending.reject(&env, err)
    }
}

/// A new handle over the storage that `shared` (from `NativeHandle.share`, in any
/// thread of this process) names; `ERR_COLDPAGE_DISPOSED` once every handle over it
/// is gone.
#[napi]
pub fn open(env: Env, shared: NativeSharedHandle) -> napi::Result<NativeHandle> {
    let handle =
        (|| -> Outcome<coldpage::Handle> { Ok(coldpage::Handle::open(&shared.to_token()?)?) })().throw(&env)?;
    Ok(NativeHandle::new(&env, handle))
}

/// What the zero-copy probe found: whether `view`/`take` may hand out pager
/// memory as external Buffers in this runtime, and if not, why.
#[napi(object)]
pub struct ZeroCopyProbe {
    /// External buffers work here and can be detached when a handle is disposed.
    pub supported: bool,
    /// Why not, when `supported` is false.
    pub reason: Option<String>,
}

/// Probes zero-copy support once per thread (see `buffers::probe_zero_copy`):
/// false in Electron >= 21, whose V8 memory cage forbids external buffers, and
/// in any runtime whose Node-API cannot detach them.
#[napi]
pub fn zero_copy_probe(env: Env) -> ZeroCopyProbe {
    match buffers::probe_zero_copy(&env) {
        Ok(()) => ZeroCopyProbe { supported: true, reason: None },
        Err(reason) => ZeroCopyProbe { supported: false, reason: Some(reason) },
    }
}

/// Counts a take the façade made of a read of every byte and a dispose (see
/// `coldpage::Pager::count_take`).
#[napi]
pub fn count_take() {
    pager().count_take();
}

/// Why swap pageouts page out nothing here, once per process (see
/// `coldpage::Pager::claim_swap_warning`); `null` otherwise.
#[napi]
pub fn claim_swap_warning() -> Option<String> {
    pager().claim_swap_warning()
}

/// The target triple this binary was built for (`x86_64-unknown-linux-gnu`).
#[napi]
pub fn build_target() -> &'static str {
    env!("COLDPAGE_BUILD_TARGET")
}

pub use crate::budget::default_budget;
pub use crate::config::{
    claim_environment, config_watch_state, configure, doctor, get_config, join_config_watch, memory_pressure,
    next_backend, stats,
};
pub use crate::fast::{check_memory, read_at_many_into, read_into};
