//! Blocking work of the async variants, run on the libuv thread pool. A task owns
//! everything it touches (never the caller's JS memory, which JS could transfer or
//! detach while the task runs), and keeps a pager error as it is until `reject`,
//! where it becomes the JS error with its properties.

use std::sync::Arc;

use napi::{Env, Task};

use crate::buffers::{self, JsBuffer};
use crate::error::{Failure, Outcome};
use crate::handle::NativeHandle;

/// The error a task's `compute` hands to `reject` (napi-rs passes only a
/// `napi::Error` between them; the pager error waits in the task).
#[derive(Default)]
struct Pending(Option<Failure>);

impl Pending {
    /// Stores `failure` and gives napi-rs a placeholder to route to `reject`.
    fn hold<T>(&mut self, result: Outcome<T>) -> napi::Result<T> {
        result.map_err(|failure| {
            self.0 = Some(failure);
            napi::Error::from_reason("coldpage task failed")
        })
    }

    fn reject<T>(&mut self, env: &Env, err: napi::Error) -> napi::Result<T> {
        Err(self.0.take().map_or(err, |failure| failure.into_js(env)))
    }
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

/// `readAtAsync` (and the copying `takeAsync`).
pub struct Read {
    handle: Arc<coldpage::Handle>,
    offset: u64,
    len: u64,
    zero_copy: bool,
    pending: Pending,
}

impl Read {
    pub(crate) fn new(handle: Arc<coldpage::Handle>, offset: u64, len: u64, zero_copy: bool) -> Read {
        Read { handle, offset, len, zero_copy, pending: Pending::default() }
    }
}

impl Task for Read {
    type Output = Vec<u8>;
    type JsValue = JsBuffer;

    fn compute(&mut self) -> napi::Result<Vec<u8>> {
        let result = self.handle.read_at(self.offset, self.len).map_err(Failure::from);
        self.pending.hold(result)
    }

    fn resolve(&mut self, env: Env, bytes: Vec<u8>) -> napi::Result<JsBuffer> {
        buffers::owned_to_js(&env, bytes, self.zero_copy, 0).map(|(b, _)| b).map_err(|f| f.into_js(&env))
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<JsBuffer> {
        self.pending.reject(&env, err)
    }
}

/// `readAtManyAsync`.
pub struct ReadMany {
    handle: Arc<coldpage::Handle>,
    ranges: Vec<(u64, u64)>,
    zero_copy: bool,
    pending: Pending,
}

impl ReadMany {
    pub(crate) fn new(handle: Arc<coldpage::Handle>, ranges: Vec<(u64, u64)>, zero_copy: bool) -> ReadMany {
        ReadMany { handle, ranges, zero_copy, pending: Pending::default() }
    }
}

impl Task for ReadMany {
    type Output = Vec<Vec<u8>>;
    type JsValue = Vec<JsBuffer>;

    fn compute(&mut self) -> napi::Result<Vec<Vec<u8>>> {
        let result = self.handle.read_at_many(&self.ranges).map_err(Failure::from);
        self.pending.hold(result)
    }

    fn resolve(&mut self, env: Env, parts: Vec<Vec<u8>>) -> napi::Result<Vec<JsBuffer>> {
        parts
            .into_iter()
            .map(|p| buffers::owned_to_js(&env, p, self.zero_copy, 0).map(|(b, _)| b).map_err(|f| f.into_js(&env)))
            .collect()
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<Vec<JsBuffer>> {
        self.pending.reject(&env, err)
    }
}
