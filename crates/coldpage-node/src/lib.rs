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
mod handle;
mod reads_by_id;
mod tasks;
mod writer;

use napi::bindgen_prelude::BufferSlice;
use napi::Env;
use napi_derive::napi;

use crate::config::backend_arg;
use crate::error::{Outcome, Throw};
pub use crate::handle::{NativeHandle, NativeSharedHandle};
pub use crate::writer::{pageout_begin, NativeWriter, PAGEOUT_SLICE_BYTES};

pub(crate) fn pager() -> &'static coldpage::Pager {
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
    claim_environment, config_field_names, config_watch_state, configure, doctor, get_config, join_config_watch,
    memory_pressure, next_backend, stats,
};
pub use crate::reads_by_id::{check_memory, read_at_many_into, read_into};
