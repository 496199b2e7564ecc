//! Blocking work of the async variants, run on the libuv thread pool. A task never
//! reads or writes memory that JS can reach (JS could transfer or detach it while
//! the task runs); it keeps a pager error as it is until `reject`, where it becomes
//! the JS error with its properties.
//!
//! Results come back one of two ways, both with nothing copied on the JS thread:
//! - with external buffers, the pool reads into memory the task owns and JS gets it
//!   as an external Buffer (O(1) on the JS thread);
//! - in Electron's mode (no external buffers), the JS thread allocates the result
//!   Buffers before the task starts ([`Fill`], O(1) each) and the pool reads into
//!   them: one copy, on the pool.

use napi::{Env, Task};

use crate::buffers::{self, Fill, JsBuffer};
use crate::error::{Failure, Outcome, Pending};

/// Where a read's bytes go.
enum Out {
    /// Memory the task allocates on the pool, handed to JS as an external Buffer.
    Owned,
    /// V8-owned Buffers made on the JS thread, one per range (taken at resolve).
    Fill(Vec<Fill>),
}

impl Out {
    /// `Fill` targets for `lens` when external buffers are not to be used.
    fn new(env: &Env, zero_copy: bool, lens: impl Iterator<Item = u64>) -> Outcome<Out> {
        if zero_copy {
            return Ok(Out::Owned);
        }
        let lens: Vec<u64> = lens.collect();
        // All of them fit, or none is made (as the pool's own allocation checks).
        let total = lens.iter().try_fold(0u64, |sum, &l| sum.checked_add(l)).unwrap_or(u64::MAX);
        coldpage::check_memory(total)?;
        let mut fills = Vec::new();
        for len in lens {
            let len = usize::try_from(len).map_err(|_| Failure::no_memory(usize::MAX, "a Buffer"))?;
            match Fill::new(env, len) {
                Ok(fill) => fills.push(fill),
                Err(err) => {
                    fills.into_iter().for_each(|f| f.release(env));
                    return Err(err);
                }
            }
        }
        Ok(Out::Fill(fills))
    }

    /// Gives back the references of targets that were not handed to JS.
    fn release(self, env: &Env) {
        if let Out::Fill(fills) = self {
            fills.into_iter().for_each(|f| f.release(env));
        }
    }
}

/// `readAtAsync` (and the copying `takeAsync`).
pub struct Read {
    handle: coldpage::Handle,
    offset: u64,
    len: u64,
    out: Out,
    pending: Pending,
}

impl Read {
    pub(crate) fn new(env: &Env, handle: coldpage::Handle, offset: u64, len: u64, zero_copy: bool) -> Outcome<Read> {
        let out = Out::new(env, zero_copy, std::iter::once(len))?;
        Ok(Read { handle, offset, len, out, pending: Pending::default() })
    }
}

impl Task for Read {
    /// The bytes when the task owns them (`Out::Owned`); empty when it filled a Buffer.
    type Output = Vec<u8>;
    type JsValue = JsBuffer;

    fn compute(&mut self) -> napi::Result<Vec<u8>> {
        let result = match &mut self.out {
            Out::Owned => self.handle.read_at(self.offset, self.len),
            Out::Fill(fills) => self.handle.read_into(self.offset, fills[0].bytes_mut()).map(|()| Vec::new()),
        };
        self.pending.hold(result.map_err(Failure::from))
    }

    fn resolve(&mut self, env: Env, bytes: Vec<u8>) -> napi::Result<JsBuffer> {
        match std::mem::replace(&mut self.out, Out::Owned) {
            Out::Owned => buffers::owned_to_js(&env, bytes, true, 0).map(|(b, _)| b).map_err(|f| f.into_js(&env)),
            Out::Fill(mut fills) => fills.pop().expect("one target per read").into_js(&env),
        }
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<JsBuffer> {
        self.pending.reject(&env, err)
    }

    fn finally(self, env: Env) -> napi::Result<()> {
        // Aborted or failed reads leave their target here.
        self.out.release(&env);
        Ok(())
    }
}

/// `readAtManyAsync`.
pub struct ReadMany {
    handle: coldpage::Handle,
    ranges: Vec<(u64, u64)>,
    out: Out,
    pending: Pending,
}

impl ReadMany {
    pub(crate) fn new(
        env: &Env,
        handle: coldpage::Handle,
        ranges: Vec<(u64, u64)>,
        zero_copy: bool,
    ) -> Outcome<ReadMany> {
        let out = Out::new(env, zero_copy, ranges.iter().map(|r| r.1))?;
        Ok(ReadMany { handle, ranges, out, pending: Pending::default() })
    }
}

impl Task for ReadMany {
    /// One Vec per range when the task owns the bytes; empty when it filled Buffers.
    type Output = Vec<Vec<u8>>;
    type JsValue = Vec<JsBuffer>;

    fn compute(&mut self) -> napi::Result<Vec<Vec<u8>>> {
        let result = match &mut self.out {
            Out::Owned => self.handle.read_at_many(&self.ranges),
            Out::Fill(fills) => {
                let mut targets: Vec<&mut [u8]> = fills.iter_mut().map(Fill::bytes_mut).collect();
                self.handle.read_at_many_into_all(&self.ranges, &mut targets).map(|()| Vec::new())
            }
        };
        self.pending.hold(result.map_err(Failure::from))
    }

    fn resolve(&mut self, env: Env, parts: Vec<Vec<u8>>) -> napi::Result<Vec<JsBuffer>> {
        match std::mem::replace(&mut self.out, Out::Owned) {
            Out::Owned => parts
                .into_iter()
                .map(|p| buffers::owned_to_js(&env, p, true, 0).map(|(b, _)| b).map_err(|f| f.into_js(&env)))
                .collect(),
            Out::Fill(fills) => fills.into_iter().map(|f| f.into_js(&env)).collect(),
        }
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<Vec<JsBuffer>> {
        self.pending.reject(&env, err)
    }

    fn finally(self, env: Env) -> napi::Result<()> {
        self.out.release(&env);
        Ok(())
    }
}
