//! Errors thrown to JS, made here as real JS errors: a `TypeError` or `RangeError`
//! for argument errors and an `Error` otherwise, with `code` and, for I/O failures,
//! `errno`, `syscall` and `path` set as properties, as Node's own errors carry them.
//! Nothing is encoded in the message. (The façade gives `ERR_COLDPAGE_*` errors the
//! `ColdpageError` prototype; it reads only `code` to do so.)
//!
//! Code that has no `Env` returns a [`Failure`]; the `#[napi]` entry points and the
//! tasks' `reject` turn it into the JS error with [`Throw::throw`] / [`Failure::into_js`].

use napi::bindgen_prelude::{JsObjectValue, JsValue, Unknown};
use napi::{Env, JsError, JsRangeError, JsTypeError};

/// The class of the JS error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Type,
    Range,
    Error,
}

/// An error on its way to JS.
#[derive(Debug)]
pub enum Failure {
    /// One of SPEC's codes, with the I/O details where there are some.
    Coded {
        /// SPEC's code.
        code: &'static str,
        /// Lowercase and specific.
        message: String,
        /// The OS error number of an I/O failure.
        errno: Option<i32>,
        /// The failing system call.
        syscall: Option<&'static str>,
        /// The path involved.
        path: Option<String>,
    },
    /// An error napi-rs already made (a JS exception pending or caught): passed on.
    Js(napi::Error),
}

/// Results of code that runs without an `Env`.
pub type Outcome<T> = std::result::Result<T, Failure>;

impl Failure {
    fn coded(code: &'static str, message: impl Into<String>) -> Failure {
        Failure::Coded { code, message: message.into(), errno: None, syscall: None, path: None }
    }

    /// A pager error, keeping its code, errno, syscall and path.
    pub fn from_core(err: coldpage::Error) -> Failure {
        Failure::Coded {
            code: err.code(),
            errno: err.errno(),
            syscall: err.syscall(),
            path: err.path().map(|p| p.to_string_lossy().into_owned()),
            message: err.to_string(),
        }
    }

    /// `ERR_OUT_OF_RANGE` naming the argument.
    pub fn out_of_range(name: &str, detail: impl std::fmt::Display) -> Failure {
        Failure::coded("ERR_OUT_OF_RANGE", format!("expected `{name}` to be a non-negative safe integer, got {detail}"))
    }

    /// `ERR_INVALID_ARG_VALUE` naming the argument.
    pub fn invalid_value(name: &str, detail: impl std::fmt::Display) -> Failure {
        Failure::coded("ERR_INVALID_ARG_VALUE", format!("invalid `{name}`: {detail}"))
    }

    /// `ERR_COLDPAGE_NO_MEMORY`: a result of `bytes` bytes could not be made.
    pub fn no_memory(bytes: usize, what: &str) -> Failure {
        Failure::coded("ERR_COLDPAGE_NO_MEMORY", format!("{bytes} bytes could not be allocated for {what}"))
    }

    /// The SPEC code, for tests and logs.
    #[cfg(test)]
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Failure::Coded { code, .. } => Some(code),
            Failure::Js(_) => None,
        }
    }

    /// The JS error, as a `napi::Error` that napi-rs throws (or rejects with) as is.
    pub fn into_js(self, env: &Env) -> napi::Error {
        match self {
            Failure::Js(err) => err,
            Failure::Coded { code, message, errno, syscall, path } => {
                let class = match code {
                    "ERR_INVALID_ARG_TYPE" | "ERR_INVALID_ARG_VALUE" => Class::Type,
                    "ERR_OUT_OF_RANGE" => Class::Range,
                    _ => Class::Error,
                };
                match make_error(env, class, code, &message, errno, syscall, path.as_deref()) {
                    Ok(value) => napi::Error::from(value),
                    // Making the error failed (an exception is pending, or the heap is
                    // exhausted): say as much as a plain napi error can.
                    Err(err) => napi::Error::new(err.status, format!("{code}: {message}")),
                }
            }
        }
    }
}

impl From<coldpage::Error> for Failure {
    fn from(err: coldpage::Error) -> Failure {
        Failure::from_core(err)
    }
}

impl From<napi::Error> for Failure {
    fn from(err: napi::Error) -> Failure {
        Failure::Js(err)
    }
}

/// The error a task's `compute` hands to `reject` (napi-rs passes only a
/// `napi::Error` between them; the pager error waits in the task).
#[derive(Default)]
pub struct Pending(Option<Failure>);

impl Pending {
    /// Stores `failure` and gives napi-rs a placeholder to route to `reject`.
    pub fn hold<T>(&mut self, result: Outcome<T>) -> napi::Result<T> {
        result.map_err(|failure| {
            self.0 = Some(failure);
            napi::Error::from_reason("coldpage task failed")
        })
    }

    /// The pager error `compute` stored, as its JS error (else napi-rs's own).
    pub fn reject<T>(&mut self, env: &Env, err: napi::Error) -> napi::Result<T> {
        Err(self.0.take().map_or(err, |failure| failure.into_js(env)))
    }
}

/// Turns an [`Outcome`] into what a `#[napi]` function returns.
pub trait Throw<T> {
    /// Maps the failure to its JS error.
    fn throw(self, env: &Env) -> napi::Result<T>;
}

impl<T, E: Into<Failure>> Throw<T> for std::result::Result<T, E> {
    fn throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| e.into().into_js(env))
    }
}

/// `new TypeError/RangeError/Error(message)` with `code` (Node-API sets it from the
/// error's status) and the I/O properties.
fn make_error<'env>(
    env: &'env Env,
    class: Class,
    code: &str,
    message: &str,
    errno: Option<i32>,
    syscall: Option<&str>,
    path: Option<&str>,
) -> napi::Result<Unknown<'env>> {
    let error = napi::Error::new(code.to_owned(), message);
    let made = match class {
        Class::Type => JsTypeError::from(error).into_unknown(*env),
        Class::Range => JsRangeError::from(error).into_unknown(*env),
        Class::Error => JsError::from(error).into_unknown(*env),
    };
    // An error is an object already (coercion returns it as is); a creation that
    // failed (no value) fails here.
    let mut object = made.coerce_to_object()?;
    if let Some(errno) = errno {
        object.set_named_property("errno", errno)?;
    }
    if let Some(syscall) = syscall {
        object.set_named_property("syscall", syscall)?;
    }
    if let Some(path) = path {
        object.set_named_property("path", path)?;
    }
    Ok(object.to_unknown())
}

/// Largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Converts a JS number that must be a non-negative safe integer.
pub fn to_u64(name: &str, value: f64) -> Outcome<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_INTEGER {
        // Exact: checked integral and within 2^53 above.
        Ok(value as u64)
    } else {
        Err(Failure::out_of_range(name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_code_errno_syscall_and_path() {
        let io = std::io::Error::from_raw_os_error(5);
        let failure =
            Failure::from_core(coldpage::Error::Io { syscall: "pread", path: Some("/scratch".into()), source: io });
        let Failure::Coded { code, errno, syscall, path, message } = failure else { panic!("coded") };
        assert_eq!(
            (code, errno, syscall, path.as_deref()),
            ("ERR_COLDPAGE_IO", Some(5), Some("pread"), Some("/scratch"))
        );
        assert!(message.starts_with("pread failed on /scratch"), "{message}");
        assert_eq!(Failure::from_core(coldpage::Error::Disposed(7)).code(), Some("ERR_COLDPAGE_DISPOSED"));
    }

    #[test]
    fn numbers_must_be_safe_non_negative_integers() {
        assert_eq!(to_u64("offset", 0.0).unwrap(), 0);
        assert_eq!(to_u64("offset", MAX_SAFE_INTEGER).unwrap(), 9_007_199_254_740_991);
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, MAX_SAFE_INTEGER + 2.0] {
            assert_eq!(to_u64("offset", bad).unwrap_err().code(), Some("ERR_OUT_OF_RANGE"));
        }
    }
}
