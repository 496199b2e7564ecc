//! Blocking work of the async variants, run on the libuv thread pool. A task owns
//! everything it touches (never the caller's JS memory, which JS could transfer or
//! detach while the task runs), and keeps a pager error as it is until `reject`,
//! where it becomes the JS error with its properties.

use napi::{Env, Task};

use crate::buffers::{self, JsBuffer};
use crate::error::{Failure, Pending};

/// `readAtAsync` (and the copying `takeAsync`).
pub struct Read {
    handle: coldpage::Handle,
    offset: u64,
    len: u64,
    zero_copy: bool,
    pending: Pending,
}

impl Read {
    pub(crate) fn new(handle: coldpage::Handle, offset: u64, len: u64, zero_copy: bool) -> Read {
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
    handle: coldpage::Handle,
    ranges: Vec<(u64, u64)>,
    zero_copy: bool,
    pending: Pending,
}

impl ReadMany {
    pub(crate) fn new(handle: coldpage::Handle, ranges: Vec<(u64, u64)>, zero_copy: bool) -> ReadMany {
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
