//! Targets without a pager implementation: every backend reports `Unsupported`.
//!
//! The crate compiles here so that dependants build everywhere, but nothing pretends
//! to work.
