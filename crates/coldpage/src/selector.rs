//! Backend names, the atomic selector's values, and what `auto` resolves to.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Where a handle's bytes live. Fixed into the handle at pageout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Page-aligned anonymous memory the OS is asked to page out first (Linux:
    /// `MADV_COLD`; Windows: a working-set trim).
    Swap,
    /// Extents of a per-process scratch arena file, read back with `pread`.
    File,
}

/// The value of the pager's atomic backend selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Selector {
    /// Swap where the system has swap and can page a region out, else file.
    #[default]
    Auto,
    /// Always the swap backend.
    Swap,
    /// Always the file backend.
    File,
}

impl Backend {
    /// `"swap"` or `"file"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Swap => "swap",
            Backend::File => "file",
        }
    }
}

impl Selector {
    /// `"auto"`, `"swap"` or `"file"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Selector::Auto => "auto",
            Selector::Swap => "swap",
            Selector::File => "file",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_u8(v: u8) -> Selector {
        match v {
            1 => Selector::Swap,
            2 => Selector::File,
            _ => Selector::Auto,
        }
    }
}

impl From<Backend> for Selector {
    fn from(b: Backend) -> Selector {
        match b {
            Backend::Swap => Selector::Swap,
            Backend::File => Selector::File,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Backend, Error> {
        match s {
            "swap" => Ok(Backend::Swap),
            "file" => Ok(Backend::File),
            other => Err(Error::InvalidArgValue(format!("unknown backend {other:?}: expected \"swap\" or \"file\""))),
        }
    }
}

impl FromStr for Selector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Selector, Error> {
        match s {
            "auto" => Ok(Selector::Auto),
            "swap" => Ok(Selector::Swap),
            "file" => Ok(Selector::File),
            other => Err(Error::InvalidArgValue(format!(
                "unknown backend {other:?}: expected \"auto\", \"swap\" or \"file\""
            ))),
        }
    }
}

/// What the `auto` selector resolves to, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoChoice {
    /// The backend `auto` picks right now.
    pub backend: Backend,
    /// A sentence saying why, for `doctor` and logs.
    pub reason: String,
}

/// Whether the platform's page-out primitive really pages a range out here (probed once
/// per process): `madvise(MADV_COLD)` on Linux (>= 5.4), `VirtualUnlock` on Windows.
/// The doctor's `page_out_works` (`doctor.rs` names the other questions about paging
/// out: [`crate::DoctorReport`]'s `page_out`, `swap_active`, `swap_pages_out`).
pub fn page_out_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(crate::os::page_out_works)
}

/// The former name of [`page_out_works`].
#[deprecated(since = "0.1.0", note = "renamed `page_out_works`")]
pub fn page_out_supported() -> bool {
    page_out_works()
}

/// Whether there is swap to page out to (Linux: an active area in `/proc/swaps`;
/// Windows: a paging file). The doctor's `swap_active`.
pub fn swap_active() -> bool {
    swap_total_bytes() > 0
}

/// Whether swap-backed handles really leave RAM here: the page-out primitive works
/// ([`page_out_works`]) and there is swap to page out to ([`swap_active`]). The
/// doctor's `swap_pages_out`.
pub fn swap_pages_out() -> bool {
    page_out_works() && swap_active()
}

/// Bytes of swap the OS can page anonymous memory out to (Linux: active swap areas in
/// `/proc/swaps`; Windows: the paging files), re-read at most once a second so that a
/// `swapon` while the process runs is noticed without a syscall per pageout.
pub fn swap_total_bytes() -> u64 {
    static CACHE: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    match *cache {
        Some((at, bytes)) if at.elapsed() < Duration::from_secs(1) => bytes,
        _ => {
            let bytes = crate::os::swap_total_bytes();
            *cache = Some((Instant::now(), bytes));
            bytes
        }
    }
}

/// Below this much swap (or paging file), `auto` picks file: a token swap area (Wine
/// reports an 8 KiB "paging file") cannot take a pager's worth of cold pages.
pub const MIN_AUTO_SWAP_BYTES: u64 = 64 << 20;

/// Resolves `auto`: swap only where the platform has a page-out primitive that works
/// and there is swap to page out to (without it, cold pages are never reclaimed), at
/// least [`MIN_AUTO_SWAP_BYTES`] of it.
pub fn resolve_auto() -> AutoChoice {
    let primitive = match crate::os::page_out_primitive() {
        Ok(primitive) => primitive,
        Err(why) => return AutoChoice { backend: Backend::File, reason: why },
    };
    let swap = swap_total_bytes();
    if swap == 0 {
        let reason = if cfg!(windows) {
            "no paging file: trimmed pages would stay in RAM".to_string()
        } else {
            "no active swap in /proc/swaps: MADV_COLD pages would stay resident".to_string()
        };
        return AutoChoice { backend: Backend::File, reason };
    }
    if swap < MIN_AUTO_SWAP_BYTES {
        return AutoChoice {
            backend: Backend::File,
            reason: format!(
                "only {swap} bytes of {}: too little to page out to (auto needs {} MiB)",
                if cfg!(windows) { "paging file" } else { "swap" },
                MIN_AUTO_SWAP_BYTES >> 20
            ),
        };
    }
    if !page_out_works() {
        return AutoChoice { backend: Backend::File, reason: format!("{primitive} does not work on this system") };
    }
    AutoChoice { backend: Backend::Swap, reason: format!("{} MiB of swap and {primitive} works", swap >> 20) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [Selector::Auto, Selector::Swap, Selector::File] {
            assert_eq!(s.as_str().parse::<Selector>().unwrap(), s);
            assert_eq!(Selector::from_u8(s.to_u8()), s);
        }
        for b in [Backend::Swap, Backend::File] {
            assert_eq!(b.as_str().parse::<Backend>().unwrap(), b);
        }
        let err = "disk".parse::<Backend>().unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_ARG_VALUE");
        assert!("auto".parse::<Backend>().is_err());
    }

    #[test]
    fn auto_follows_proc_swaps() {
        let choice = resolve_auto();
        let swap_on =
            crate::os::page_out_primitive().is_ok() && swap_total_bytes() >= MIN_AUTO_SWAP_BYTES && page_out_works();
        assert_eq!(choice.backend == Backend::Swap, swap_on, "{}", choice.reason);
        assert!(!choice.reason.is_empty());
    }
}
