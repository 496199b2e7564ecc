//! Node.js binding of the coldpage pager (napi-rs).
//!
//! Thin by design: argument conversion, Buffer creation, error mapping and
//! `AsyncTask`s over the process-wide [`coldpage::Pager::global`]. Everything
//! else lives in the core crate (the pager) or in the TypeScript façade in
//! `lib/` (validation with argument names, config sources, `Symbol.dispose`).
//! The generated `index.d.ts` is internal: users import the façade.

#![deny(missing_docs)]

mod buffers;
mod config;
mod error;
mod handle;
mod tasks;

use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, BufferSlice, Uint8Array};
use napi::Env;
use napi_derive::napi;

use crate::config::backend_arg;
use crate::error::CoreResultExt;
pub use crate::handle::NativeHandle;

fn pager() -> &'static coldpage::Pager {
    coldpage::Pager::global()
}

/// Pages out the concatenation of `chunks` (copied; the caller's buffers are
/// not retained). `backend` overrides the global selector for this handle.
#[napi]
pub fn pageout(env: Env, chunks: Vec<BufferSlice>, backend: Option<String>) -> napi::Result<NativeHandle> {
    let backend = backend_arg(backend.as_deref())?;
    let slices: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
    let handle = match backend {
        Some(b) => pager().pageout_to(b, &slices),
        None => pager().pageout(&slices),
    }
    .js()?;
    Ok(NativeHandle::new(&env, Arc::new(handle)))
}

/// Like [`pageout`], with the copy and the write on the libuv thread pool.
#[napi(ts_return_type = "Promise<NativeHandle>")]
pub fn pageout_async(chunks: Vec<Uint8Array>, backend: Option<String>) -> napi::Result<AsyncTask<tasks::Pageout>> {
    let backend = backend_arg(backend.as_deref())?;
    Ok(AsyncTask::new(tasks::Pageout { chunks, backend }))
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

pub use crate::config::{configure, doctor, get_config, stats};
