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

use napi::bindgen_prelude::{AsyncTask, BufferSlice};
use napi::{Env, Task};
use napi_derive::napi;

use crate::config::backend_arg;
use crate::error::{Failure, Outcome, Throw};
pub use crate::handle::NativeHandle;

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
    Ok(NativeHandle::new(&env, Arc::new(handle)))
}

/// Like [`pageout`], with the write to the file backend on the libuv thread pool.
///
/// The caller's bytes are copied here, on the JS thread: JS can transfer or detach
/// an ArrayBuffer while a task runs (which frees or moves its memory), and Node-API
/// has no way to pin it, so the pool never reads JS memory. For the swap backend
/// that copy is the whole pageout (into the region, then the page-out advice), done
/// at once; for the file backend the copy is staged and the pool writes it.
#[napi(ts_return_type = "Promise<NativeHandle>")]
pub fn pageout_async(env: Env, chunks: Vec<BufferSlice>, backend: Option<String>) -> napi::Result<AsyncTask<Pageout>> {
    let task = (|| -> Outcome<Pageout> {
        let backend = backend_arg(backend.as_deref())?.unwrap_or_else(|| pager().next_backend());
        let slices: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
        if backend == coldpage::Backend::Swap {
            return Ok(Pageout::Done(Some(pager().pageout_to(backend, &slices)?)));
        }
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let mut staged = Vec::new();
        staged.try_reserve_exact(total).map_err(|_| Failure::no_memory(total, "the staged pageout"))?;
        for s in &slices {
            staged.extend_from_slice(s);
        }
        Ok(Pageout::Staged(staged, None))
    })()
    .throw(&env)?;
    Ok(AsyncTask::new(task))
}

/// `pageoutAsync`. The caller's bytes were copied on the JS thread (see
/// `pageout_async`): into the swap region itself (then there is nothing left to do
/// here), or into `Staged` bytes that are written to the arena here.
pub enum Pageout {
    /// Paged out already; handed over at `resolve`.
    Done(Option<coldpage::Handle>),
    /// Bytes to write to the file backend, and where a failure waits for `reject`.
    Staged(Vec<u8>, Option<Failure>),
}

impl Task for Pageout {
    type Output = coldpage::Handle;
    type JsValue = NativeHandle;

    fn compute(&mut self) -> napi::Result<coldpage::Handle> {
        match self {
            Pageout::Done(handle) => Ok(handle.take().expect("compute runs once")),
            Pageout::Staged(bytes, pending) => {
                let result = coldpage::Pager::global().pageout_to(coldpage::Backend::File, &[bytes]);
                *bytes = Vec::new();
                result.map_err(|err| {
                    *pending = Some(Failure::from(err));
                    napi::Error::from_reason("coldpage pageout failed")
                })
            }
        }
    }

    fn resolve(&mut self, env: Env, handle: coldpage::Handle) -> napi::Result<NativeHandle> {
        Ok(NativeHandle::new(&env, Arc::new(handle)))
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<NativeHandle> {
        match self {
            Pageout::Staged(_, pending) => Err(pending.take().map_or(err, |f| f.into_js(&env))),
            Pageout::Done(_) => Err(err),
        }
    }
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

pub use crate::config::{claim_environment, configure, doctor, get_config, stats};
