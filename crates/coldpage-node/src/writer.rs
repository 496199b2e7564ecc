//! `pageoutAsync` a slice at a time ([`coldpage::PageoutWriter`]): the JS thread
//! copies each slice of the input into a recycled staging buffer (bounded work per
//! call, into memory already faulted in), and the thread pool writes it. The pool
//! never sees the caller's memory, which JS can detach or transfer between turns.

use std::cell::RefCell;
use std::sync::Arc;

use napi::bindgen_prelude::{AbortSignal, AsyncTask, BufferSlice};
use napi::{Env, Task};
use napi_derive::napi;

use crate::config::backend_arg;
use crate::error::{to_u64, Failure, Outcome, Pending, Throw};
use crate::handle::NativeHandle;

/// The most bytes one `write` takes: the façade cuts the input at multiples of it.
#[napi]
pub const PAGEOUT_SLICE_BYTES: u32 = coldpage::SLICE_BYTES as u32;

/// Opens a pageout of `length` bytes on the thread pool (it allocates the storage).
#[napi(ts_return_type = "Promise<NativeWriter>")]
pub fn pageout_begin(
    env: Env,
    length: f64,
    backend: Option<String>,
    signal: Option<AbortSignal>,
) -> napi::Result<AsyncTask<Begin>> {
    let task = (|| -> Outcome<Begin> {
        let backend = backend_arg(backend.as_deref())?.unwrap_or_else(|| crate::pager().next_backend());
        Ok(Begin { backend, len: to_u64("length", length)?, pending: Pending::default() })
    })()
    .throw(&env)?;
    Ok(AsyncTask::with_optional_signal(task, signal))
}

/// Opening a pageout, on the pool.
pub struct Begin {
    backend: coldpage::Backend,
    len: u64,
    pending: Pending,
}

impl Task for Begin {
    type Output = coldpage::PageoutWriter;
    type JsValue = NativeWriter;

    fn compute(&mut self) -> napi::Result<coldpage::PageoutWriter> {
        let result = crate::pager().writer(self.backend, self.len).map_err(Failure::from);
        self.pending.hold(result)
    }

    fn resolve(&mut self, _env: Env, writer: coldpage::PageoutWriter) -> napi::Result<NativeWriter> {
        Ok(NativeWriter { writer: RefCell::new(Some(Arc::new(writer))) })
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<NativeWriter> {
        self.pending.reject(&env, err)
    }
}

/// A pageout in progress. Dropping it (or `abort`) before `finish` gives its storage
/// back once the slices in flight are written.
#[napi]
pub struct NativeWriter {
    writer: RefCell<Option<Arc<coldpage::PageoutWriter>>>,
}

#[napi]
impl NativeWriter {
    /// Copies `chunks` (one slice of the input, at `offset`) here, on the JS thread,
    /// and writes the copy on the pool.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write(
        &self,
        env: Env,
        offset: f64,
        chunks: Vec<BufferSlice>,
        signal: Option<AbortSignal>,
    ) -> napi::Result<AsyncTask<WriteSlice>> {
        let task = (|| -> Outcome<WriteSlice> {
            let writer = self.open()?;
            let offset = to_u64("offset", offset)?;
            let slices: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
            let slice = coldpage::Slice::copy(&slices)?;
            Ok(WriteSlice { writer, offset, slice: Some(slice), pending: Pending::default() })
        })()
        .throw(&env)?;
        Ok(AsyncTask::with_optional_signal(task, signal))
    }

    /// The handle, once every slice was written (and their promises settled).
    #[napi(ts_return_type = "Promise<NativeHandle>")]
    pub fn finish(&self, env: Env) -> napi::Result<AsyncTask<Finish>> {
        let task = (|| -> Outcome<Finish> {
            let writer = self.writer.borrow_mut().take().ok_or_else(closed)?;
            let writer = Arc::try_unwrap(writer).map_err(|_| {
                Failure::from(coldpage::Error::OutOfRange("a pageout finished while slices were in flight".into()))
            })?;
            Ok(Finish { writer: Some(writer), pending: Pending::default() })
        })()
        .throw(&env)?;
        Ok(AsyncTask::new(task))
    }

    /// Gives the storage back (after the slices in flight); idempotent.
    #[napi]
    pub fn abort(&self) {
        self.writer.borrow_mut().take();
    }

    fn open(&self) -> Outcome<Arc<coldpage::PageoutWriter>> {
        self.writer.borrow().as_ref().map(Arc::clone).ok_or_else(closed)
    }
}

fn closed() -> Failure {
    Failure::from(coldpage::Error::OutOfRange("the pageout was finished or aborted".into()))
}

/// Writing one staged slice, on the pool.
pub struct WriteSlice {
    writer: Arc<coldpage::PageoutWriter>,
    offset: u64,
    slice: Option<coldpage::Slice>,
    pending: Pending,
}

impl Task for WriteSlice {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        let slice = self.slice.take().expect("compute runs once");
        let result = self.writer.write(self.offset, slice).map_err(Failure::from);
        self.pending.hold(result)
    }

    fn resolve(&mut self, _env: Env, (): ()) -> napi::Result<()> {
        Ok(())
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<()> {
        self.pending.reject(&env, err)
    }
}

/// Making the handle, on the pool (an encoded pageout encodes here).
pub struct Finish {
    writer: Option<coldpage::PageoutWriter>,
    pending: Pending,
}

impl Task for Finish {
    type Output = coldpage::Handle;
    type JsValue = NativeHandle;

    fn compute(&mut self) -> napi::Result<coldpage::Handle> {
        let writer = self.writer.take().expect("compute runs once");
        let result = writer.finish().map_err(Failure::from);
        self.pending.hold(result)
    }

    fn resolve(&mut self, env: Env, handle: coldpage::Handle) -> napi::Result<NativeHandle> {
        Ok(NativeHandle::new(&env, handle))
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<NativeHandle> {
        self.pending.reject(&env, err)
    }
}
