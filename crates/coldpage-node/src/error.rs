//! Maps pager errors to napi errors whose message carries SPEC's code.
//!
//! napi-rs throws a plain `Error` whose `code` is a napi status, so the reason
//! is encoded as `CODE|errno|syscall|message`; the TypeScript façade
//! (`lib/errors.ts`) decodes it into the right class (TypeError, RangeError or
//! ColdpageError) with `code`, `errno` and `syscall`. Keep both sides in step.

use napi::{Error, Status};

/// Separates the encoded fields; never part of a code, errno or syscall name.
const SEP: char = '|';

/// Encodes an error with SPEC's `code` and an optional errno/syscall.
pub fn encoded(code: &str, errno: Option<i32>, syscall: Option<&str>, message: &str) -> Error {
    let errno = errno.map(|e| e.to_string()).unwrap_or_default();
    let syscall = syscall.unwrap_or_default();
    Error::new(Status::GenericFailure, format!("{code}{SEP}{errno}{SEP}{syscall}{SEP}{message}"))
}

/// Converts a pager error, keeping its code, errno and syscall.
pub fn from_core(err: coldpage::Error) -> Error {
    encoded(err.code(), err.errno(), err.syscall(), &err.to_string())
}

/// `ERR_OUT_OF_RANGE` naming the argument.
pub fn out_of_range(name: &str, detail: impl std::fmt::Display) -> Error {
    encoded(
        "ERR_OUT_OF_RANGE",
        None,
        None,
        &format!("expected `{name}` to be a non-negative safe integer, got {detail}"),
    )
}

/// `ERR_INVALID_ARG_VALUE` naming the argument.
pub fn invalid_value(name: &str, detail: impl std::fmt::Display) -> Error {
    encoded("ERR_INVALID_ARG_VALUE", None, None, &format!("invalid `{name}`: {detail}"))
}

/// `ERR_COLDPAGE_DISPOSED` for a handle that was disposed or taken.
pub fn disposed(id: u64) -> Error {
    from_core(coldpage::Error::Disposed(id))
}

/// Shorthand for results of the core.
pub trait CoreResultExt<T> {
    /// Maps the error with [`from_core`].
    fn js(self) -> napi::Result<T>;
}

impl<T> CoreResultExt<T> for coldpage::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(from_core)
    }
}

/// Largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Converts a JS number that must be a non-negative safe integer.
pub fn to_u64(name: &str, value: f64) -> napi::Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_INTEGER {
        // Exact: checked integral and within 2^53 above.
        Ok(value as u64)
    } else {
        Err(out_of_range(name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_code_errno_and_syscall() {
        let io = std::io::Error::from_raw_os_error(5);
        let err = from_core(coldpage::Error::Io { syscall: "pread", path: None, source: io });
        assert!(err.reason.starts_with("ERR_COLDPAGE_IO|5|pread|pread failed"), "{}", err.reason);
        assert!(disposed(7).reason.starts_with("ERR_COLDPAGE_DISPOSED|||"));
    }

    #[test]
    fn numbers_must_be_safe_non_negative_integers() {
        assert_eq!(to_u64("offset", 0.0).unwrap(), 0);
        assert_eq!(to_u64("offset", MAX_SAFE_INTEGER).unwrap(), 9_007_199_254_740_991);
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, MAX_SAFE_INTEGER + 2.0] {
            assert!(to_u64("offset", bad).unwrap_err().reason.starts_with("ERR_OUT_OF_RANGE|"));
        }
    }
}
