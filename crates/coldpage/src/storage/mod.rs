//! Where a handle's bytes live: one module per backend.
//!
//! - [`swap`]: a region of anonymous memory the OS is asked to page out first.
//! - [`file`]: an extent of the pager's scratch arena, with a checksum per block.
//! - [`encoded`]: an extent whose blocks are compressed and/or encrypted one by one.

pub(crate) mod encoded;
pub(crate) mod file;
pub(crate) mod swap;
