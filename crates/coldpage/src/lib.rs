//! A pager for cold bytes.
//!
//! `coldpage` moves buffers that are cold most of the time out of resident memory and
//! brings back exactly the bytes asked for: [`Pager::pageout`] copies the caller's
//! chunks into a backend and returns a [`Handle`]; [`Handle::read_at`],
//! [`Handle::read_at_many`] and [`Handle::read_into`] copy ranges back,
//! [`Handle::view`] lends them without a copy, and [`Handle::take`] hands all of them
//! back, without a copy where the backend allows.
//!
//! ```
//! use coldpage::{Config, Pager, Selector};
//!
//! let pager = Pager::new(Config::default())?;
//! pager.set_backend(Selector::File);
//! let handle = pager.pageout(&[&[1u8; 10_000], &[2u8; 10_000]])?;
//! assert_eq!(handle.read_at(9_999, 2)?, [1, 2]);
//! let many = handle.read_at_many(&[(0, 1), (19_999, 1)])?;
//! assert_eq!(many, [vec![1], vec![2]]);
//! assert_eq!(handle.take()?.len(), 20_000);
//! # Ok::<(), coldpage::Error>(())
//! ```
//!
//! # Design
//! Two backends sit behind one atomic selector ([`Pager::set_backend`]); the backend
//! is read once at pageout and fixed into the handle, so flipping the selector never
//! disturbs live handles.
//!
//! - **swap** (Linux): the bytes are copied into page-aligned anonymous memory the
//!   pager owns and advised `MADV_COLD` ([madvise(2)]), so the kernel reclaims them to
//!   swap first. Reads copy out; `take` hands the region over. Without active swap,
//!   cold pages are never reclaimed, so [`Selector::Auto`] picks swap only where
//!   `/proc/swaps` lists swap and `MADV_COLD` works.
//! - **file**: one unnamed scratch file per pager and scratch directory (the *arena*,
//!   opened `O_TMPFILE` [open(2)]), carved into page-aligned *extents*. Pageout is one
//!   `pwritev` [pwritev(2)]; reads are `preadv`; freed extents go back to the
//!   filesystem with `fallocate(FALLOC_FL_PUNCH_HOLE)` [fallocate(2)] before reuse.
//!   Every 4 KiB block carries an xxh3-64 checksum verified on read (unless
//!   [`Config::verify`] is off): a mismatch is [`Error::Corrupt`], never wrong bytes.
//!
//! With [`Config::compress`] or [`Config::encrypt`], new file pageouts store each
//! block on its own: LZ4-compressed where that shrinks it, then sealed with an AEAD
//! (AES-256-GCM, or ChaCha20-Poly1305 without AES instructions) whose tag replaces the
//! checksum. A read decodes only the blocks it touches; views of such handles are
//! decoded copies ([`Lease::is_copy`]). Swap handles are never encoded.
//!
//! Leases ([`Lease`]) keep the storage they borrow alive, so an extent is never
//! punched or reused under a live map.
//!
//! ## Security
//! The scratch directory must be a real directory (not a symlink) owned by this user
//! or root, and not world-writable without the sticky bit. The pager works in its own
//! `coldpage-<uid>` subdirectory (mode 0700, opened `O_NOFOLLOW`), and its arena file
//! has no name (or a 0600 name unlinked at once where `O_TMPFILE` is unsupported), so
//! no other user can read it and nothing is left behind when the process dies, even
//! by `kill -9`.
//!
//! With [`Config::encrypt`], only ciphertext reaches the arena: the key (256 bits per
//! pager, from the OS's random number generator) is held in one page locked in RAM
//! where the OS allows ([`Pager::encryption`] says whether), zeroed when the pager is
//! dropped and never written anywhere; nonces come from a counter that never repeats
//! for the key's life; each block's associated data binds the handle, the block's
//! index and its lengths, so moved, swapped or replayed blocks are [`Error::Corrupt`].
//! It does not protect against anyone who can read the process's memory.
//!
//! [madvise(2)]: https://man7.org/linux/man-pages/man2/madvise.2.html
//! [open(2)]: https://man7.org/linux/man-pages/man2/open.2.html
//! [pwritev(2)]: https://man7.org/linux/man-pages/man2/pwritev.2.html
//! [fallocate(2)]: https://man7.org/linux/man-pages/man2/fallocate.2.html

/// A fault-injection point (`fail::fail_point!`) with the `failpoints` feature; nothing
/// without it, so the release build carries neither the points nor the `fail` crate.
#[cfg(feature = "failpoints")]
macro_rules! fail_point {
    ($($point:tt)*) => {
        fail::fail_point!($($point)*)
    };
}
#[cfg(not(feature = "failpoints"))]
macro_rules! fail_point {
    ($($point:tt)*) => {};
}

mod arena;
pub mod budget;
mod cell;
mod config;
mod crypt;
mod doctor;
mod error;
mod handle;
mod integrity;
mod maps;
mod os;
mod pager;
pub mod pressure;
mod reclaim;
mod shared;
mod storage;
mod tokens;
mod writer;

mod selector;

// Machine-level helpers of the platform layer that the layers above use by these names.
use os::{copy, random_u64};

pub use cell::HandleCell;
pub use config::{config_field, default_scratch_dir, Compression, Config, ConfigField, ConfigValue, CONFIG_FIELDS};
pub use doctor::{doctor, DoctorReport};
pub use error::{Error, Result};
pub use handle::{check_memory, Handle, Lease, TakeError, Taken};
pub use maps::{maps_held, maps_limit, media_error_count, media_errors_since};
pub use pager::{BackendStats, Encryption, Pager, Staged, Stats};
pub use pressure::{Level, Pressure};
pub use reclaim::drop_in_background;
#[allow(deprecated)]
pub use selector::page_out_supported;
pub use selector::{page_out_works, resolve_auto, swap_total_bytes, AutoChoice, Backend, Selector};
pub use storage::swap::Residency;
pub use tokens::SharedToken;
pub use writer::{PageoutWriter, Slice, SLICE_BYTES};

/// Bytes per checksummed block of file-backed data.
pub const CHECKSUM_BLOCK: u64 = integrity::BLOCK;

#[cfg(test)]
mod static_asserts {
    fn send_sync<T: Send + Sync>() {}
    #[test]
    fn public_types_are_send_and_sync() {
        send_sync::<super::Handle>();
        send_sync::<super::HandleCell>();
        send_sync::<super::Lease>();
        send_sync::<super::Taken>();
        send_sync::<super::Pager>();
        send_sync::<super::Error>();
        send_sync::<super::pressure::Sampler>();
    }
}
