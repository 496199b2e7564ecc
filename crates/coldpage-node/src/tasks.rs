//! Blocking work of the async variants, run on the libuv thread pool.

use std::sync::Arc;

use napi::bindgen_prelude::Uint8Array;
use napi::{Env, Task};

use crate::buffers::{self, JsBuffer};
use crate::error::CoreResultExt;
use crate::handle::NativeHandle;

/// `pageoutAsync`: copies the chunks into the pager off the JS thread.
pub struct Pageout {
    pub chunks: Vec<Uint8Array>,
    pub backend: Option<coldpage::Backend>,
}

impl Task for Pageout {
    type Output = coldpage::Handle;
    type JsValue = NativeHandle;

    fn compute(&mut self) -> napi::Result<coldpage::Handle> {
        let slices: Vec<&[u8]> = self.chunks.iter().map(|c| &c[..]).collect();
        let pager = coldpage::Pager::global();
        match self.backend {
            Some(b) => pager.pageout_to(b, &slices),
            None => pager.pageout(&slices),
        }
        .js()
    }

    fn resolve(&mut self, env: Env, handle: coldpage::Handle) -> napi::Result<NativeHandle> {
        Ok(NativeHandle::new(&env, Arc::new(handle)))
    }
}

/// `readAtAsync`.
pub struct Read {
    pub handle: Arc<coldpage::Handle>,
    pub offset: u64,
    pub len: u64,
    pub zero_copy: bool,
}

impl Task for Read {
    type Output = Vec<u8>;
    type JsValue = JsBuffer;

    fn compute(&mut self) -> napi::Result<Vec<u8>> {
        self.handle.read_at(self.offset, self.len).js()
    }

    fn resolve(&mut self, env: Env, bytes: Vec<u8>) -> napi::Result<JsBuffer> {
        Ok(buffers::owned_to_js(&env, bytes, self.zero_copy, 0)?.0)
    }
}

/// `readAtManyAsync`.
pub struct ReadMany {
    pub handle: Arc<coldpage::Handle>,
    pub ranges: Vec<(u64, u64)>,
    pub zero_copy: bool,
}

impl Task for ReadMany {
    type Output = Vec<Vec<u8>>;
    type JsValue = Vec<JsBuffer>;

    fn compute(&mut self) -> napi::Result<Vec<Vec<u8>>> {
        self.handle.read_at_many(&self.ranges).js()
    }

    fn resolve(&mut self, env: Env, parts: Vec<Vec<u8>>) -> napi::Result<Vec<JsBuffer>> {
        parts.into_iter().map(|p| Ok(buffers::owned_to_js(&env, p, self.zero_copy, 0)?.0)).collect()
    }
}

/// What a take produced.
pub enum Taken {
    /// The storage itself (zero-copy for swap).
    Whole(coldpage::Taken),
    /// A copy, when reads in flight still shared the storage.
    Copied(Vec<u8>),
}

/// Takes the storage if nothing else shares it, else copies it out.
pub fn take_blocking(handle: Arc<coldpage::Handle>) -> napi::Result<Taken> {
    match Arc::try_unwrap(handle) {
        Ok(handle) => handle.take().map(Taken::Whole).js(),
        Err(shared) => shared.read_at(0, shared.len()).map(Taken::Copied).js(),
    }
}

/// Hands taken bytes to JS; says whether `external_bytes` moved to the Buffer.
pub fn take_to_js(env: &Env, taken: Taken, zero_copy: bool, external_bytes: i64) -> napi::Result<(JsBuffer, bool)> {
    match taken {
        Taken::Whole(t) => buffers::owned_to_js(env, t, zero_copy, external_bytes),
        Taken::Copied(v) => Ok((buffers::owned_to_js(env, v, zero_copy, 0)?.0, false)),
    }
}

/// `takeAsync`: the handle is already retired; this owns its storage.
pub struct Take {
    pub handle: Option<Arc<coldpage::Handle>>,
    /// Still to be given back to V8 unless it moves to the Buffer.
    pub external_bytes: i64,
    pub zero_copy: bool,
}

impl Task for Take {
    type Output = Taken;
    type JsValue = JsBuffer;

    fn compute(&mut self) -> napi::Result<Taken> {
        let handle = self.handle.take().expect("compute runs once");
        take_blocking(handle)
    }

    fn resolve(&mut self, env: Env, taken: Taken) -> napi::Result<JsBuffer> {
        let (buffer, transferred) = take_to_js(&env, taken, self.zero_copy, self.external_bytes)?;
        if transferred {
            self.external_bytes = 0;
        }
        Ok(buffer)
    }

    fn finally(self, env: Env) -> napi::Result<()> {
        buffers::adjust_external_memory(&env, -self.external_bytes);
        Ok(())
    }
}
