//! Node Buffers over pager memory: copies, external buffers with finalizers,
//! weak references to handed-out views, and detaching them.
//!
//! All of the binding's `unsafe` lives here. The invariants, stated once:
//! - every function runs on the JS thread that owns `env` (napi calls are not
//!   thread-safe), which `#[napi]` entry points and `Task::resolve` guarantee;
//! - an external buffer's bytes stay valid until either its finalizer runs or
//!   the binding has detached it (after which no JS object can reach them).

use std::ffi::c_void;
use std::ptr;
use std::sync::{Arc, Mutex, PoisonError};

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{check_status, sys, Env, Result, ValueType};

use crate::error::{Failure, Outcome};

/// A JS `Buffer` created by this module, valid for the current handle scope.
pub struct JsBuffer(sys::napi_value);

impl TypeName for JsBuffer {
    fn type_name() -> &'static str {
        "Buffer"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for JsBuffer {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        Ok(val.0)
    }
}

/// Copies `bytes` into a new Buffer owned by the JS heap.
pub fn copy(env: &Env, bytes: &[u8]) -> Outcome<JsBuffer> {
    let mut value = ptr::null_mut();
    // SAFETY: `bytes` is a live slice of `bytes.len()` readable bytes (its
    // pointer is non-null even when empty); napi copies them before returning.
    let status = unsafe {
        sys::napi_create_buffer_copy(env.raw(), bytes.len(), bytes.as_ptr().cast(), ptr::null_mut(), &mut value)
    };
    if status != sys::Status::napi_ok {
        // The only way a copy fails with valid arguments: V8 cannot allocate it.
        return Err(Failure::no_memory(bytes.len(), "a Buffer"));
    }
    Ok(JsBuffer(value))
}

/// What an external buffer's finalizer releases.
struct Owned<O> {
    owner: O,
    /// The Buffer's length: what dropping `owner` frees.
    len: usize,
    /// Bytes reported to V8 with `adjust_external_memory` for this buffer;
    /// given back when the buffer is collected.
    external_bytes: i64,
}

unsafe extern "C" fn finalize_owned<O: Send + 'static>(env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the `Box<Owned<O>>` leaked in `external`, and napi calls
    // a finalizer exactly once, so this is the only reconstruction of the box.
    let owned = unsafe { Box::from_raw(hint.cast::<Owned<O>>()) };
    if owned.external_bytes != 0 {
        let mut total = 0;
        // SAFETY: a finalizer runs on the JS thread of `env`; the status is
        // ignored because there is nothing to do if V8 refuses the hint.
        let _ = unsafe { sys::napi_adjust_external_memory(env, -owned.external_bytes, &mut total) };
    }
    // Freeing a large block (munmap) takes time in proportion to its pages: not on
    // the JS thread, where GC runs a whole round of results' finalizers at once.
    coldpage::drop_in_background(owned.len as u64, owned.owner);
}

/// Hands `len` bytes at `data` to JS as an external Buffer (no copy); its
/// finalizer drops `owner` and gives back `external_bytes` to V8's accounting.
///
/// Gives `owner` back as [`External::Refused`] when the runtime forbids external
/// buffers (Electron's V8 memory cage: `napi_no_external_buffers_allowed`), so
/// that the caller can copy its bytes instead.
///
/// # Safety
/// `data` must be valid for reads and writes of `len` bytes for as long as
/// `owner` lives or, for a view, until the binding detaches the buffer; `len`
/// must be non-zero (V8 gives zero-length buffers no backing store).
pub unsafe fn external<O: Send + 'static>(
    env: &Env,
    data: *mut u8,
    len: usize,
    owner: O,
    external_bytes: i64,
) -> Result<External<O>> {
    debug_assert!(len > 0 && !data.is_null());
    let hint = Box::into_raw(Box::new(Owned { owner, len, external_bytes }));
    let mut value = ptr::null_mut();
    // SAFETY: the caller guarantees `data`/`len`; `hint` is a live box that the
    // finalizer reclaims exactly once if and only if the call succeeds.
    let status = unsafe {
        sys::napi_create_external_buffer(
            env.raw(),
            len,
            data.cast(),
            Some(finalize_owned::<O>),
            hint.cast(),
            &mut value,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: napi did not take `hint` (no buffer was created), so the box
        // is still ours to reclaim, once.
        let owned = unsafe { Box::from_raw(hint) };
        if status == sys::Status::napi_no_external_buffers_allowed {
            return Ok(External::Refused(owned.owner));
        }
        check_status!(status, "napi_create_external_buffer failed")?;
    }
    Ok(External::Made(JsBuffer(value)))
}

/// The outcome of [`external`].
pub enum External<O> {
    /// The zero-copy Buffer.
    Made(JsBuffer),
    /// The runtime forbids external buffers; here is the owner back.
    Refused(O),
}

/// Finds out, with one throwaway byte, whether this runtime can do zero-copy
/// the way the lease protocol needs it: `Ok(())` if so, else why not.
///
/// Zero-copy views are only safe where an external Buffer really borrows our
/// bytes *and* can be detached at dispose (else a view would outlive its
/// storage). Runtimes differ here: Electron >= 21 refuses external buffers,
/// and other Node-API implementations (Bun's, older or newer) may lack
/// `napi_detach_arraybuffer` or copy external data. So the probe walks the
/// same path a view takes (create, weak reference, detach) and checks what JS
/// would see; any refusal or surprise means copy mode, never an error.
pub fn probe_zero_copy(env: &Env) -> std::result::Result<(), String> {
    let mut probe = vec![0u8; 1];
    let data = probe.as_mut_ptr();
    // SAFETY: `data` points into the Vec's heap block, which does not move when
    // the Vec itself is moved into the finalizer's owner.
    let buffer = match unsafe { external(env, data, 1, probe, 0) } {
        Ok(External::Made(buffer)) => buffer,
        Ok(External::Refused(_)) => {
            return Err("external buffers are not allowed here (napi_no_external_buffers_allowed, \
                        as in Electron's V8 memory cage)"
                .to_owned())
        }
        Err(err) => return Err(format!("napi_create_external_buffer failed: {err}")),
    };
    let (seen, _) = buffer_info(env, &buffer).map_err(|err| format!("napi_get_buffer_info failed: {err}"))?;
    if seen != data.cast() {
        return Err("the runtime copies external buffers instead of borrowing their bytes".to_owned());
    }
    let weak = WeakRef::new(env, &buffer).map_err(|err| format!("napi_create_reference failed: {err}"))?;
    let detached = weak.detach(env);
    weak.delete(env);
    match detached {
        Ok(Detach::Detached) => {}
        Ok(Detach::NotOurs) => return Err("a fresh external buffer could not be detached".to_owned()),
        Err(err) => return Err(format!("views could not be detached at dispose: {err}")),
    }
    match buffer_info(env, &buffer) {
        Ok((_, 0)) => Ok(()),
        Ok((_, len)) => Err(format!("napi_detach_arraybuffer left {len} bytes visible to JS")),
        Err(err) => Err(format!("napi_get_buffer_info failed after detaching: {err}")),
    }
}

/// The data pointer and byte length that JS sees for `buffer`.
fn buffer_info(env: &Env, buffer: &JsBuffer) -> Result<(*mut c_void, usize)> {
    let mut data = ptr::null_mut();
    let mut len = 0;
    // SAFETY: `buffer.0` is a live Buffer of the current scope; napi only
    // writes the two out-parameters.
    let status = unsafe { sys::napi_get_buffer_info(env.raw(), buffer.0, &mut data, &mut len) };
    check_status!(status, "napi_get_buffer_info failed")?;
    Ok((data, len))
}

/// A weak reference to a Buffer handed out as a view; it does not keep the
/// Buffer alive. Must be given back with [`WeakRef::delete`] on the JS thread.
pub struct WeakRef(sys::napi_ref);

/// What [`WeakRef::detach`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Detach {
    /// The view was live and is now detached: no JS object reaches its bytes.
    Detached,
    /// Someone else detached or transferred its ArrayBuffer first, or it was
    /// collected: its bytes may still be reachable through a transfer, so only
    /// its finalizer may release them.
    NotOurs,
}

impl WeakRef {
    /// Creates a weak reference (refcount 0) to `buffer`.
    pub fn new(env: &Env, buffer: &JsBuffer) -> Result<WeakRef> {
        let mut reference = ptr::null_mut();
        // SAFETY: `buffer.0` is a live value of the current scope.
        let status = unsafe { sys::napi_create_reference(env.raw(), buffer.0, 0, &mut reference) };
        check_status!(status, "napi_create_reference failed")?;
        Ok(WeakRef(reference))
    }

    /// Detaches the Buffer's ArrayBuffer if the Buffer is still alive and
    /// attached; after `Detached` its `byteLength` (and every `subarray`'s) is 0.
    pub fn detach(&self, env: &Env) -> Result<Detach> {
        let mut value = ptr::null_mut();
        // SAFETY: `self.0` is a reference created in `new` and not yet deleted.
        let status = unsafe { sys::napi_get_reference_value(env.raw(), self.0, &mut value) };
        check_status!(status, "napi_get_reference_value failed")?;
        if value.is_null() {
            return Ok(Detach::NotOurs);
        }
        let mut array_buffer = ptr::null_mut();
        let mut kind = 0;
        let mut length = 0;
        let mut data = ptr::null_mut();
        let mut byte_offset = 0;
        // SAFETY: `value` is the live Buffer (a Uint8Array) we referenced.
        let status = unsafe {
            sys::napi_get_typedarray_info(
                env.raw(),
                value,
                &mut kind,
                &mut length,
                &mut data,
                &mut array_buffer,
                &mut byte_offset,
            )
        };
        check_status!(status, "napi_get_typedarray_info failed")?;
        let mut detached = false;
        // SAFETY: `array_buffer` was just returned for the live Buffer.
        let status = unsafe { sys::napi_is_detached_arraybuffer(env.raw(), array_buffer, &mut detached) };
        check_status!(status, "napi_is_detached_arraybuffer failed")?;
        if detached {
            return Ok(Detach::NotOurs);
        }
        // SAFETY: `array_buffer` is a live, attached external ArrayBuffer.
        let status = unsafe { sys::napi_detach_arraybuffer(env.raw(), array_buffer) };
        check_status!(status, "napi_detach_arraybuffer failed")?;
        Ok(Detach::Detached)
    }

    /// Gives the reference back to napi.
    pub fn delete(self, env: &Env) {
        // SAFETY: `self.0` is live and is deleted once (this consumes `self`).
        // A failure only leaks one reference slot, so the status is ignored.
        let _ = unsafe { sys::napi_delete_reference(env.raw(), self.0) };
    }
}

/// Holds a view's lease until the handle retires the view or the view is collected.
type LeaseSlot = Mutex<Option<coldpage::Lease>>;

fn release_slot(slot: &LeaseSlot) -> Option<coldpage::Lease> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// The finalizer's share of a view: releases the lease if still held.
struct ViewOwner(Arc<LeaseSlot>);

impl Drop for ViewOwner {
    fn drop(&mut self) {
        // A no-op when the handle already retired it (no double free).
        drop(release_slot(&self.0));
    }
}

/// A zero-copy view lent to JS: an external Buffer over a lease's private map,
/// and the handle's share of the lease.
///
/// The lease protocol, kept here whole: the Buffer's finalizer owns one
/// `Arc` of the slot, the view the other. Only [`LeaseView::retire`] takes the
/// lease out early, and only after it detached the Buffer, so JS sees a
/// zero-length Buffer, never freed memory. A view that someone else detached
/// or transferred, or that was collected, keeps its lease until its own
/// finalizer runs.
pub struct LeaseView {
    buffer: WeakRef,
    slot: Arc<LeaseSlot>,
}

/// What [`LeaseView::lend`] made.
pub enum Lent {
    /// The zero-copy Buffer and the view to retire it by.
    View(JsBuffer, LeaseView),
    /// A copy of the lease's bytes: the lease is no private map, or the runtime
    /// forbids external buffers.
    Copy(JsBuffer),
}

impl LeaseView {
    /// Lends `lease` to JS as a Buffer: zero-copy over its private
    /// copy-on-write map when it has one ([`coldpage::Lease::writable_ptr`]) and
    /// the runtime allows external buffers, else a copy. `reported` bytes are
    /// reported to V8 while the zero-copy Buffer lives.
    pub fn lend(env: &Env, lease: coldpage::Lease, reported: i64) -> Outcome<Lent> {
        let (Some(data), len) = (lease.writable_ptr(), lease.len()) else {
            return Ok(Lent::Copy(copy(env, &lease)?));
        };
        if len == 0 {
            return Ok(Lent::Copy(copy(env, &lease)?));
        }
        // The pointer stays valid when the lease moves: it points into the map.
        let slot = Arc::new(Mutex::new(Some(lease)));
        adjust_external_memory(env, reported);
        // SAFETY: `data`/`len` (non-zero) are the lease's private copy-on-write map,
        // which the core keeps mapped and writable while the lease lives and which
        // no write reaches the handle's storage through. The lease stays in `slot`
        // until the finalizer drops `ViewOwner`, or `retire` has detached the Buffer
        // (the only other way to take it out), so no JS object reaches the bytes
        // after they are released.
        let made = unsafe { external(env, data, len, ViewOwner(slot.clone()), reported) };
        if !matches!(made, Ok(External::Made(_))) {
            adjust_external_memory(env, -reported);
        }
        match made? {
            External::Made(buffer) => {
                let weak = WeakRef::new(env, &buffer)?;
                Ok(Lent::View(buffer, LeaseView { buffer: weak, slot }))
            }
            External::Refused(owner) => {
                let copied = {
                    let held = owner.0.lock().unwrap_or_else(PoisonError::into_inner);
                    copy(env, held.as_deref().unwrap_or_default())
                };
                drop(owner);
                Ok(Lent::Copy(copied?))
            }
        }
    }

    /// Whether the Buffer was collected and its finalizer released the lease.
    pub fn is_released(&self) -> bool {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    /// Lets the view go without touching its Buffer (gives the weak reference
    /// back): the lease stays with the Buffer until its finalizer runs.
    pub fn forget(self, env: &Env) {
        self.buffer.delete(env);
    }

    /// Detaches the Buffer and then drops the lease, before the storage goes; a
    /// Buffer someone else detached or transferred keeps its lease until its
    /// finalizer runs.
    pub fn retire(self, env: &Env) {
        if let Ok(Detach::Detached) = self.buffer.detach(env) {
            drop(release_slot(&self.slot));
        }
        self.buffer.delete(env);
    }
}

/// Turns owned bytes into a Buffer: zero-copy (external, freed by its
/// finalizer) when `zero_copy` is set and the runtime allows it, else a copy.
///
/// V8 counts an ArrayBuffer's backing store towards its external memory by
/// itself, so the `already_reported` bytes reported for this memory while a
/// handle held it are given back as soon as a Buffer owns it (else V8 would count
/// them twice and start GC work on every large take). Returns whether the Buffer
/// took the memory over (`false` for a copy: the caller settles the report).
pub fn owned_to_js<O>(env: &Env, mut owner: O, zero_copy: bool, already_reported: i64) -> Outcome<(JsBuffer, bool)>
where
    O: std::ops::DerefMut<Target = [u8]> + Send + 'static,
{
    if zero_copy && !owner.is_empty() {
        let len = owner.len();
        let data = owner.as_mut_ptr();
        // Given back before the Buffer exists: V8 counts the new backing store at
        // once, and both counts at the same moment look like twice the memory, which
        // V8 answers with a synchronous GC (hundreds of µs for a large take).
        adjust_external_memory(env, -already_reported);
        // SAFETY: `data` points into the owner's heap storage (a Vec's block or
        // a pager region), which stays put when `owner` is moved into the
        // finalizer's box and lives until that finalizer drops it.
        match unsafe { external(env, data, len, owner, 0) } {
            Ok(External::Made(buffer)) => return Ok((buffer, true)),
            Ok(External::Refused(back)) => {
                adjust_external_memory(env, already_reported);
                owner = back;
            }
            Err(err) => {
                adjust_external_memory(env, already_reported);
                return Err(err.into());
            }
        }
    }
    Ok((copy(env, &owner)?, false))
}

/// Reports `bytes` (positive or negative) of memory held outside V8's heap on
/// behalf of JS objects, so that V8 schedules GC with it in mind.
pub fn adjust_external_memory(env: &Env, bytes: i64) {
    if bytes != 0 {
        // Only a hint to the GC: a failure changes nothing we rely on.
        let _ = env.adjust_external_memory(bytes);
    }
}

/// A V8-owned Buffer made on the JS thread for the thread pool to fill: the async
/// results of Electron's mode (no external buffers), so that the bytes are copied
/// once, on the pool, and the JS thread only allocates (an uninitialised
/// `napi_create_buffer` is O(1): its pages fault where they are first written).
///
/// Safe to hand to the pool because no JS code can reach the Buffer until the task
/// resolves with it: it is held by a strong reference (so the GC keeps it), it was
/// never given to JS (so nothing can detach or transfer it), and Node waits for
/// running thread-pool work before it tears an environment down.
pub struct Fill {
    reference: sys::napi_ref,
    /// The Buffer's bytes, as an address so that the task stays `Send`.
    data: usize,
    len: usize,
}

// SAFETY: the only fields are a napi reference, used on the JS thread alone
// (`into_js`/`release` take an `Env`), and the address of bytes that nothing else
// touches until the task settles (see the type's docs).
unsafe impl Send for Fill {}

impl Fill {
    /// An uninitialised Buffer of `len` bytes, referenced until [`Fill::into_js`]
    /// or [`Fill::release`].
    pub fn new(env: &Env, len: usize) -> Outcome<Fill> {
        let mut data = ptr::null_mut();
        let mut value = ptr::null_mut();
        // SAFETY: napi writes the two out-parameters; it allocates `len` bytes
        // without zeroing them.
        let status = unsafe { sys::napi_create_buffer(env.raw(), len, &mut data, &mut value) };
        if status != sys::Status::napi_ok {
            return Err(Failure::no_memory(len, "a Buffer"));
        }
        let mut reference = ptr::null_mut();
        // SAFETY: `value` is the live Buffer just made in this scope.
        let status = unsafe { sys::napi_create_reference(env.raw(), value, 1, &mut reference) };
        check_status!(status, "napi_create_reference failed").map_err(Failure::from)?;
        Ok(Fill { reference, data: data as usize, len })
    }

    /// The bytes to fill, on the pool.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: `data` points to the `len` bytes of a Buffer that the strong
        // reference keeps alive and that no JS code can reach yet (see the type's
        // docs); `&mut self` makes this the only slice over them.
        unsafe { std::slice::from_raw_parts_mut(self.data as *mut u8, self.len) }
    }

    /// The filled Buffer, for JS; gives the reference back.
    pub fn into_js(self, env: &Env) -> Result<JsBuffer> {
        let mut value = ptr::null_mut();
        // SAFETY: `self.reference` is a live strong reference made in `new`.
        let status = unsafe { sys::napi_get_reference_value(env.raw(), self.reference, &mut value) };
        self.release(env);
        check_status!(status, "napi_get_reference_value failed")?;
        Ok(JsBuffer(value))
    }

    /// Gives the reference back without handing the Buffer to JS (a failed or
    /// aborted read): the GC then frees it.
    pub fn release(self, env: &Env) {
        // SAFETY: `self.reference` is live and deleted once (this consumes `self`).
        // A failure only leaks one reference slot, so the status is ignored.
        let _ = unsafe { sys::napi_delete_reference(env.raw(), self.reference) };
    }
}
