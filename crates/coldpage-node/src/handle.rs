//! `NativeHandle`: one paged-out handle, its outstanding views (leases) and the
//! memory it reports to V8.
//!
//! Zero-copy views are `buffers::LeaseView`s (the lease protocol is kept there):
//! `dispose()`/`take()` retire each one before the storage goes, so JS sees a
//! zero-length Buffer, never freed memory.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use napi::bindgen_prelude::{
    AbortSignal, AsyncTask, Float64ArraySlice, FnArgs, Function, JsObjectValue, Object, ObjectFinalize, Unknown,
};
use napi::Env;
use napi_derive::napi;

use crate::buffers::{self, JsBuffer, LeaseView, Lent};
use crate::error::{to_u64, Failure, Outcome, Throw};
use crate::reads_by_id::{ranges_arg, IndexEntry};
use crate::tasks;

/// A handle to paged-out bytes. Wrapped by `Handle` in the façade.
///
/// Methods take `&self` (state in cells): napi-rs refuses a `&mut self` call
/// while an earlier call's borrow is still counted, e.g. during async reads.
#[napi(custom_finalize)]
pub struct NativeHandle {
    /// The handle's life (live, then taken or disposed; take-or-give-back), owned by
    /// the core. Reads in flight hold their own `Arc` of the handle.
    cell: Arc<coldpage::HandleCell>,
    /// The cell's place in this thread's index for the reads by id, while this
    /// object exists.
    _index: IndexEntry,
    /// Bytes reported to V8 as held outside its heap on this handle's behalf.
    external_bytes: Cell<i64>,
    views: RefCell<Vec<LeaseView>>,
    /// `views` is pruned when it reaches this length (then twice what is left):
    /// pruning at every view would make n views cost n² checks.
    prune_at: Cell<usize>,
}

thread_local! {
    /// The pager's media-error count this thread has warned about, and where its
    /// list of failed handles was read up to.
    static MEDIA_SEEN: Cell<(usize, (usize, usize))> = const { Cell::new((0, (0, 0))) };
}

/// Emits one process warning (code `COLDPAGE_MEDIA_ERROR`) per handle that met a
/// media error since this thread last looked (a fault under a view is only noticed
/// here, at the next call: the signal handler cannot call into JS).
pub(crate) fn warn_media_errors(env: &Env) {
    let count = coldpage::media_error_count();
    let (seen, mut cursor) = MEDIA_SEEN.get();
    if count == seen {
        return;
    }
    let ids = coldpage::media_errors_since(&mut cursor);
    MEDIA_SEEN.set((count, cursor));
    for id in ids {
        let message = format!(
            "a media error under the scratch pages of handle {id} (the disk failed or the scratch file was \
             truncated): its bytes are lost, and it reports ERR_COLDPAGE_IO from now on"
        );
        // A warning that cannot be emitted (no `process` in this realm) is not worth an error.
        let _ = emit_warning(env, message);
    }
}

fn emit_warning(env: &Env, message: String) -> napi::Result<()> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let emit: Function<FnArgs<(String, Object)>, Unknown> = process.get_named_property("emitWarning")?;
    let mut options = Object::new(env)?;
    options.set_named_property("code", "COLDPAGE_MEDIA_ERROR")?;
    emit.apply(process, FnArgs::from((message, options)))?;
    Ok(())
}

impl NativeHandle {
    pub(crate) fn new(env: &Env, handle: coldpage::Handle) -> NativeHandle {
        let external_bytes = i64::try_from(handle.resident_bytes()).unwrap_or(i64::MAX);
        buffers::adjust_external_memory(env, external_bytes);
        let cell = Arc::new(coldpage::HandleCell::new(handle));
        NativeHandle {
            _index: IndexEntry::new(&cell),
            cell,
            external_bytes: Cell::new(external_bytes),
            views: RefCell::new(Vec::new()),
            prune_at: Cell::new(64),
        }
    }

    /// The storage for one call, or `ERR_COLDPAGE_DISPOSED`.
    fn live(&self, env: &Env) -> Outcome<coldpage::Handle> {
        warn_media_errors(env);
        Ok(self.cell.get()?)
    }

    /// Detaches every live view and drops the leases that no JS object can reach
    /// any more (before the storage goes: a detached view shows zero bytes, never
    /// freed memory).
    fn detach_views(&self, env: &Env) {
        let views = std::mem::take(&mut *self.views.borrow_mut());
        for view in views {
            view.retire(env);
        }
    }

    /// Forgets views whose Buffers were collected and finalized (once their number
    /// doubled since the last time).
    fn prune_views(&self, env: &Env) {
        let mut views = self.views.borrow_mut();
        if views.len() < self.prune_at.get() {
            return;
        }
        let (dead, live): (Vec<LeaseView>, Vec<LeaseView>) =
            std::mem::take(&mut *views).into_iter().partition(LeaseView::is_released);
        for view in dead {
            view.forget(env);
        }
        self.prune_at.set((2 * live.len()).max(64));
        *views = live;
    }
}

#[napi]
impl NativeHandle {
    /// The handle's id (unique in the process).
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.cell.id() as f64
    }

    /// Logical length in bytes.
    #[napi(getter)]
    pub fn byte_length(&self) -> f64 {
        self.cell.len() as f64
    }

    /// `"swap"` or `"file"`, fixed at pageout.
    #[napi(getter)]
    pub fn backend(&self) -> &'static str {
        self.cell.backend().as_str()
    }

    /// Whether the handle was disposed or taken (or a `takeAsync` is reading it).
    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        !self.cell.is_live()
    }

    /// Whether `take` with zero-copy allowed hands the storage over without reading
    /// it (then `takeAsync` has nothing to do on the pool).
    #[napi(getter)]
    pub fn takes_in_place(&self) -> bool {
        self.cell.takes_in_place()
    }

    /// Reads on the libuv pool.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn read_at_async(
        &self,
        env: Env,
        offset: f64,
        length: f64,
        zero_copy: bool,
        signal: Option<AbortSignal>,
    ) -> napi::Result<AsyncTask<tasks::Read>> {
        let task = (|| -> Outcome<tasks::Read> {
            tasks::Read::new(&env, self.live(&env)?, to_u64("offset", offset)?, to_u64("length", length)?, zero_copy)
        })()
        .throw(&env)?;
        Ok(AsyncTask::with_optional_signal(task, signal))
    }

    /// Reads flat `[offset, length]` pairs on the libuv pool.
    #[napi(ts_return_type = "Promise<Buffer[]>")]
    pub fn read_at_many_async(
        &self,
        env: Env,
        ranges: Float64ArraySlice,
        zero_copy: bool,
        signal: Option<AbortSignal>,
    ) -> napi::Result<AsyncTask<tasks::ReadMany>> {
        let task = (|| -> Outcome<tasks::ReadMany> {
            tasks::ReadMany::new(&env, self.live(&env)?, ranges_arg(&ranges)?, zero_copy)
        })()
        .throw(&env)?;
        Ok(AsyncTask::with_optional_signal(task, signal))
    }

    /// A lease on `length` bytes at `offset`: zero-copy where allowed and where a
    /// write into the view cannot reach the handle's bytes (file handles: a private
    /// copy-on-write map), detached when the handle is disposed or taken; else a
    /// copy (swap handles, whose storage is plain memory that a writable view would
    /// alias).
    #[napi(ts_return_type = "Buffer")]
    pub fn view(&self, env: Env, offset: f64, length: f64, zero_copy: bool) -> napi::Result<JsBuffer> {
        self.view_inner(&env, offset, length, zero_copy).throw(&env)
    }

    /// All bytes; the handle is disposed on success and stays live and readable on
    /// failure. Zero-copy where allowed (a swap handle hands its region over).
    #[napi(ts_return_type = "Buffer")]
    pub fn take(&self, env: Env, zero_copy: bool) -> napi::Result<JsBuffer> {
        self.take_inner(&env, zero_copy).throw(&env)
    }

    /// Starts a take that reads all bytes on the libuv pool: the handle is not live
    /// until `endTake` says how it went.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn take_async(
        &self,
        env: Env,
        zero_copy: bool,
        signal: Option<AbortSignal>,
    ) -> napi::Result<AsyncTask<tasks::Read>> {
        let task = (|| -> Outcome<tasks::Read> {
            warn_media_errors(&env);
            let handle = self.cell.begin_take()?;
            tasks::Read::new(&env, handle, 0, self.cell.len(), zero_copy).inspect_err(|_| {
                self.cell.end_take(false);
            })
        })()
        .throw(&env)?;
        Ok(AsyncTask::with_optional_signal(task, signal))
    }

    /// Ends a `takeAsync`: when its read gave the bytes (`read`), the handle is
    /// disposed and the take counted; else (failed or aborted) it is live again.
    #[napi]
    pub fn end_take(&self, env: Env, read: bool) {
        if read {
            self.dispose(env);
            crate::pager().count_take();
        } else {
            self.cell.end_take(false);
        }
    }

    /// Hints that `length` bytes at `offset` will be read soon (clamped to the
    /// handle by the core, which never fails a hint).
    #[napi]
    pub fn prefetch(&self, env: Env, offset: f64, length: f64) -> napi::Result<()> {
        (|| -> Outcome<()> {
            let (offset, len) = (to_u64("offset", offset)?, to_u64("length", length)?);
            self.live(&env)?.prefetch(offset, len);
            Ok(())
        })()
        .throw(&env)
    }

    /// Ends the handle's life like `dispose`, but its live views keep their bytes:
    /// each keeps its lease (and so the storage) until it is collected. For owners
    /// that hand views out as values that stay the caller's (a store's entries).
    #[napi]
    pub fn release(&self, env: Env) {
        for view in self.views.take() {
            view.forget(&env);
        }
        self.end(&env);
    }

    /// A token naming this handle's storage, for `open` in any thread of this
    /// process: plain data (a string and a number), so it survives structured clone.
    /// Weak: it keeps nothing alive.
    #[napi]
    pub fn share(&self, env: Env) -> napi::Result<NativeSharedHandle> {
        (|| -> Outcome<NativeSharedHandle> { Ok(NativeSharedHandle::from(self.cell.share_token()?)) })().throw(&env)
    }

    /// Frees the handle's memory or scratch space now; idempotent.
    #[napi]
    pub fn dispose(&self, env: Env) {
        self.detach_views(&env);
        self.end(&env);
    }
}

impl NativeHandle {
    /// Ends the cell's life (a no-op once ended) and gives back the memory reported
    /// to V8 for it.
    fn end(&self, env: &Env) {
        self.cell.dispose();
        buffers::adjust_external_memory(env, -self.external_bytes.replace(0));
    }
}

/// A shared handle token as plain data: the nonce of the process that made it (16
/// hex digits; a `u64` does not fit a JS number) and the id of the handle whose
/// storage it names.
#[napi(object)]
pub struct NativeSharedHandle {
    /// The process nonce, 16 lowercase hex digits.
    pub process: String,
    /// The id of the handle that shared its storage.
    pub id: f64,
}

impl From<coldpage::SharedToken> for NativeSharedHandle {
    fn from(token: coldpage::SharedToken) -> Self {
        NativeSharedHandle { process: format!("{:016x}", token.process), id: token.id as f64 }
    }
}

impl NativeSharedHandle {
    /// The core's token, or `ERR_INVALID_ARG_VALUE` naming the malformed field.
    pub(crate) fn to_token(&self) -> Outcome<coldpage::SharedToken> {
        let hex = self.process.len() == 16 && self.process.bytes().all(|b| b.is_ascii_hexdigit());
        let process = u64::from_str_radix(&self.process, 16)
            .ok()
            .filter(|_| hex)
            .ok_or_else(|| Failure::invalid_value("shared.process", "expected 16 hex digits from handle.share()"))?;
        let id = to_u64("shared.id", self.id)
            .map_err(|_| Failure::invalid_value("shared.id", "expected a handle id from handle.share()"))?;
        Ok(coldpage::SharedToken { process, id })
    }
}

impl NativeHandle {
    fn view_inner(&self, env: &Env, offset: f64, length: f64, zero_copy: bool) -> Outcome<JsBuffer> {
        let (offset, len) = (to_u64("offset", offset)?, to_u64("length", length)?);
        let lease = self.live(env)?.view(offset, len)?;
        // Compressed or encrypted handles lend a decoded copy: copied into a Buffer too.
        if !zero_copy || lease.is_empty() || lease.is_copy() || !self.cell.lends_views() {
            return buffers::copy(env, &lease);
        }
        self.prune_views(env);
        // A view maps `len` bytes, resident as JS reads them: V8 is told, as for a
        // Buffer that size, so that views dropped by their users are collected (and
        // unmapped) at the pace dropped Buffers are, not only when the heap fills.
        // The finalizer gives the count back.
        let reported = i64::try_from(lease.len()).unwrap_or(i64::MAX);
        match LeaseView::lend(env, lease, reported)? {
            Lent::View(buffer, view) => {
                self.views.borrow_mut().push(view);
                Ok(buffer)
            }
            Lent::Copy(buffer) => Ok(buffer),
        }
    }

    fn take_inner(&self, env: &Env, zero_copy: bool) -> Outcome<JsBuffer> {
        if !(zero_copy && self.cell.takes_in_place()) {
            // A copy into a Buffer V8 allocates (so V8 counts it and collects it
            // promptly), made before the handle's life ends: a failure leaves it live.
            let handle = self.live(env)?;
            let len = usize::try_from(self.cell.len()).map_err(|_| Failure::no_memory(usize::MAX, "the result"))?;
            let mut out = buffers::Fill::new(env, len).map_err(|_| Failure::no_memory(len, "the result"))?;
            if let Err(err) = handle.read_into(0, out.bytes_mut()) {
                out.release(env);
                return Err(err.into());
            }
            drop(handle);
            self.dispose(*env);
            crate::pager().count_take();
            return Ok(out.into_js(env)?);
        }
        // Views are detached first so that their leases let go of the storage: a
        // swap region then moves into the Buffer without a copy. A take that fails
        // (no memory for a copy) leaves the handle live: the core's take-or-give-back.
        if !self.cell.is_live() {
            return Err(coldpage::Error::Disposed(self.cell.id()).into());
        }
        self.detach_views(env);
        let taken = self.cell.take()?;
        let external_bytes = self.external_bytes.replace(0);
        let (buffer, transferred) = buffers::owned_to_js(env, taken, true, external_bytes)?;
        if !transferred {
            buffers::adjust_external_memory(env, -external_bytes);
        }
        Ok(buffer)
    }
}

impl ObjectFinalize for NativeHandle {
    fn finalize(self, env: Env) -> napi::Result<()> {
        // Collected without dispose(): free the storage. Views still alive keep
        // their leases (and so the bytes) until their own finalizers run.
        for view in self.views.into_inner() {
            view.forget(&env);
        }
        buffers::adjust_external_memory(&env, -self.external_bytes.get());
        // Dropping the index entry and the cell ends a live handle as a collected one.
        Ok(())
    }
}
