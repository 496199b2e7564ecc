//! The one error type of the pager; each variant maps to one of SPEC's error codes.

use std::io;
use std::path::PathBuf;

/// A `Result` whose error is the pager's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the pager.
///
/// Each variant corresponds to exactly one code of the public contract; [`Error::code`]
/// returns it. I/O failures carry the syscall, the errno and, where known, the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument of the wrong type (`ERR_INVALID_ARG_TYPE`). Rust's types rule most of
    /// these out; bindings use it for what they cannot check statically.
    #[error("{0}")]
    InvalidArgType(String),
    /// A value of the right type that is not allowed, such as an unknown backend name
    /// (`ERR_INVALID_ARG_VALUE`).
    #[error("{0}")]
    InvalidArgValue(String),
    /// An offset or length outside the handle (`ERR_OUT_OF_RANGE`).
    #[error("{0}")]
    OutOfRange(String),
    /// Use of a disposed or taken handle (`ERR_COLDPAGE_DISPOSED`).
    #[error("handle {0} is disposed")]
    Disposed(u64),
    /// Scratch bytes no longer match their checksum (`ERR_COLDPAGE_CORRUPT`).
    #[error("checksum mismatch in block {block} of handle {handle} (scratch arena {arena})")]
    Corrupt {
        /// The handle whose bytes are corrupt.
        handle: u64,
        /// The index of the first corrupt block within the handle.
        block: u64,
        /// The scratch arena holding the handle.
        arena: u64,
    },
    /// The scratch quota is reached or the disk is full (`ERR_COLDPAGE_NO_SPACE`).
    /// The caller's data is untouched and the pager keeps working once space frees.
    #[error("{0}")]
    NoSpace(String),
    /// Any other I/O failure (`ERR_COLDPAGE_IO`).
    #[error("{syscall} failed{}: {source}", path.as_ref().map(|p| format!(" on {}", p.display())).unwrap_or_default())]
    Io {
        /// The system call that failed, e.g. `"pwritev"`.
        syscall: &'static str,
        /// The path involved, where there is one.
        path: Option<PathBuf>,
        /// The underlying error, with its errno.
        #[source]
        source: io::Error,
    },
    /// An invalid configuration or an unsafe scratch directory (`ERR_COLDPAGE_CONFIG`).
    #[error("{0}")]
    Config(String),
    /// A backend this platform cannot provide (`ERR_COLDPAGE_UNSUPPORTED`).
    #[error("{0}")]
    Unsupported(String),
    /// A result could not be allocated (`ERR_COLDPAGE_NO_MEMORY`); nothing is lost, the
    /// handle and the pager keep working.
    #[error("{0}")]
    NoMemory(String),
}

/// A `Vec` of `len` zeroed bytes, or [`Error::NoMemory`] where the allocation fails
/// (instead of aborting the process, as `vec![0; len]` does). Like `vec![0; len]` it
/// asks the allocator for zeroed memory (`calloc`: fresh pages for large sizes, not a
/// pass of memset over bytes the read then overwrites).
pub(crate) fn try_zeroed(len: usize) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(len).map_err(|_| Error::no_memory(len as u64))?;
    // SAFETY: `layout` has a non-zero size (len > 0, checked above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(Error::no_memory(len as u64));
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[u8; len]`
    // (so capacity `len` matches), and all `len` bytes are initialised (zeroed).
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

impl From<crate::os::DirError> for Error {
    /// A refused directory is [`Error::Config`]; a failed system call [`Error::Io`]
    /// with its name and path.
    fn from(e: crate::os::DirError) -> Error {
        match e {
            crate::os::DirError::Refused(why) => Error::Config(why),
            crate::os::DirError::Unsupported(why) => Error::Unsupported(why),
            crate::os::DirError::Io { syscall, path, source } => Error::io_at(syscall, Some(path), source),
        }
    }
}

impl Error {
    /// The stable error code of the public contract, e.g. `"ERR_COLDPAGE_CORRUPT"`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgType(_) => "ERR_INVALID_ARG_TYPE",
            Error::InvalidArgValue(_) => "ERR_INVALID_ARG_VALUE",
            Error::OutOfRange(_) => "ERR_OUT_OF_RANGE",
            Error::Disposed(_) => "ERR_COLDPAGE_DISPOSED",
            Error::Corrupt { .. } => "ERR_COLDPAGE_CORRUPT",
            Error::NoSpace(_) => "ERR_COLDPAGE_NO_SPACE",
            Error::Io { .. } => "ERR_COLDPAGE_IO",
            Error::Config(_) => "ERR_COLDPAGE_CONFIG",
            Error::Unsupported(_) => "ERR_COLDPAGE_UNSUPPORTED",
            Error::NoMemory(_) => "ERR_COLDPAGE_NO_MEMORY",
        }
    }

    /// [`Error::NoMemory`] for a result of `bytes` bytes.
    pub(crate) fn no_memory(bytes: u64) -> Error {
        Error::NoMemory(format!("{bytes} bytes could not be allocated for the result"))
    }

    /// The OS error number of an I/O failure.
    pub fn errno(&self) -> Option<i32> {
        match self {
            // A short read (the file shrank under us, as after a truncation) has no OS
            // errno of its own: it is reported as EIO, as a failing disk would be.
            Error::Io { source, .. } => source
                .raw_os_error()
                .or_else(|| (source.kind() == std::io::ErrorKind::UnexpectedEof).then_some(crate::os::errno::EIO)),
            _ => None,
        }
    }

    /// The path involved in an I/O failure, where there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::Io { path, .. } => path.as_deref(),
            _ => None,
        }
    }

    /// The system call that failed, for I/O failures.
    pub fn syscall(&self) -> Option<&'static str> {
        match self {
            Error::Io { syscall, .. } => Some(syscall),
            _ => None,
        }
    }

    /// Wraps an I/O error from `syscall`, turning a full disk or quota (`ENOSPC`/`EDQUOT`,
    /// `ERROR_DISK_FULL`) into [`Error::NoSpace`].
    pub(crate) fn io(syscall: &'static str, source: io::Error) -> Error {
        Error::io_at(syscall, None, source)
    }

    /// Like [`Error::io`] with the path involved.
    pub(crate) fn io_at(syscall: &'static str, path: Option<PathBuf>, source: io::Error) -> Error {
        // ENOSPC/EDQUOT on Unix, ERROR_DISK_FULL/ERROR_HANDLE_DISK_FULL/quota on Windows.
        if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded) {
            return Error::NoSpace(format!("scratch disk is full ({syscall}: {source})"));
        }
        Error::Io { syscall, path, source }
    }

    /// The error for a range `[offset, offset + len)` outside a handle of `size` bytes.
    pub(crate) fn out_of_range(offset: u64, len: u64, size: u64) -> Error {
        Error::OutOfRange(format!("range at offset {offset} of length {len} is outside the handle's {size} bytes"))
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match &err {
            Error::Io { source, .. } => source.kind(),
            Error::InvalidArgType(_) | Error::InvalidArgValue(_) | Error::OutOfRange(_) => io::ErrorKind::InvalidInput,
            Error::Corrupt { .. } => io::ErrorKind::InvalidData,
            Error::NoSpace(_) => io::ErrorKind::StorageFull,
            Error::Unsupported(_) => io::ErrorKind::Unsupported,
            Error::Config(_) => io::ErrorKind::InvalidInput,
            Error::Disposed(_) => io::ErrorKind::NotConnected,
            Error::NoMemory(_) => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spec_codes() {
        let cases: [(Error, &str); 6] = [
            (Error::no_memory(1 << 40), "ERR_COLDPAGE_NO_MEMORY"),
            (Error::out_of_range(1, 2, 0), "ERR_OUT_OF_RANGE"),
            (Error::Disposed(3), "ERR_COLDPAGE_DISPOSED"),
            (Error::Corrupt { handle: 1, block: 12, arena: 3 }, "ERR_COLDPAGE_CORRUPT"),
            (Error::io("pwritev", io::Error::from_raw_os_error(crate::os::errno::ENOSPC)), "ERR_COLDPAGE_NO_SPACE"),
            (Error::io("pread", io::Error::from_raw_os_error(crate::os::errno::EIO)), "ERR_COLDPAGE_IO"),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err}");
        }
    }

    #[test]
    fn io_errors_carry_errno_and_syscall() {
        let err = Error::io("pread", io::Error::from_raw_os_error(crate::os::errno::EIO));
        assert_eq!(err.errno(), Some(crate::os::errno::EIO));
        assert_eq!(err.syscall(), Some("pread"));
        assert!(err.to_string().starts_with("pread failed"));
        let corrupt = Error::Corrupt { handle: 40, block: 12, arena: 3 };
        assert_eq!(corrupt.to_string(), "checksum mismatch in block 12 of handle 40 (scratch arena 3)");
        assert_eq!(io::Error::from(corrupt).kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_short_read_carries_eio() {
        let short = io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer");
        let err = Error::io("preadv", short);
        assert_eq!(
            (err.code(), err.errno(), err.syscall()),
            ("ERR_COLDPAGE_IO", Some(crate::os::errno::EIO), Some("preadv"))
        );
    }
}
