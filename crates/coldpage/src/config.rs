//! The pager's configuration and the safety checks on the scratch directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::os;

/// How the pager stores file-backed handles. Swapped in whole with
/// [`Pager::configure`](crate::Pager::configure); live handles keep the scratch arena
/// they were written to.
///
/// A field that can be unset is an `Option` (`None` for unset, never an in-band
/// value). JS describes each field once, in the package's `lib/config-fields.ts`
/// (its check, `COLDPAGE_*` variable and default); the Node binding only converts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The directory under which the pager makes its own 0700 subdirectory.
    pub scratch_dir: PathBuf,
    /// A quota on scratch bytes allocated by the file backend; `None` for none.
    pub max_scratch_bytes: Option<u64>,
    /// Checksum every byte read back from the file backend.
    pub verify: bool,
    /// A budget of resident bytes for the stores built on the pager (the JS
    /// `createStore`), replacing each store's own while set; the pager itself does
    /// not use it. Kept here so that every thread sees one value.
    pub resident_bytes: Option<u64>,
    /// Encrypt new file pageouts (AES-256-GCM, a per-pager key that never leaves
    /// memory); their AEAD tags are their checksums, checked on every read whatever
    /// `verify` says.
    pub encrypt: bool,
    /// Compress new file pageouts block by block.
    pub compress: Compression,
}

/// Block-wise compression of file-backed handles ([`Config::compress`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Blocks are stored as they are.
    #[default]
    None,
    /// Each block is LZ4-compressed (lz4_flex's block format); a block that does not
    /// shrink is stored raw.
    Lz4,
}

impl Compression {
    /// The name used in JS and in config files: `"none"` or `"lz4"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Compression> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            _ => Err(Error::Config(format!("unknown compression {s:?}: expected 'none' or 'lz4'"))),
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            scratch_dir: default_scratch_dir(),
            max_scratch_bytes: None,
            verify: true,
            encrypt: false,
            compress: Compression::None,
            resident_bytes: None,
        }
    }
}

/// The default scratch directory: `$TMPDIR` (or `/tmp`), or `/var/tmp` where the
/// former is a RAM filesystem (paging out to tmpfs saves no memory).
pub fn default_scratch_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    let on_ram = |dir: &Path| os::fs_info(dir).is_ok_and(|fs| fs.is_ram);
    if on_ram(&tmp) {
        if let Some(disk) = os::disk_temp_dir().filter(|disk| !on_ram(disk)) {
            return disk;
        }
    }
    tmp
}

/// Refuses a scratch directory that another user could tamper with, and a missing
/// one: a mistyped path must not put scratch data on whatever filesystem holds it
/// (the pager creates only its own private subdirectory).
///
/// # Errors
/// [`Error::Config`] naming the reason; [`Error::Io`] when it cannot be examined.
pub(crate) fn check_scratch_dir(dir: &Path) -> Result<()> {
    let meta = match os::dir_meta(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Config(format!(
                "scratch dir {} does not exist: create it first (coldpage makes only its own subdirectory in it)",
                dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            return Err(Error::Unsupported(format!(
                "scratch directories are not supported on {}",
                std::env::consts::OS
            )));
        }
        Err(e) => return Err(Error::io_at(os::DIR_META_SYSCALL, Some(dir.to_path_buf()), e)),
    };
    scratch_dir_rules(dir, &meta).map_err(Error::Config)
}

/// What makes a scratch directory safe: a real directory (not a link), owned by this
/// user or root, and not world-writable without the sticky bit (where the platform has
/// owners and modes). `Err` says why not. The platform layer applies the same rules to
/// the directory it opens.
pub(crate) fn scratch_dir_rules(dir: &Path, meta: &os::DirMeta) -> std::result::Result<(), String> {
    let shown = dir.display();
    if meta.is_link {
        return Err(if cfg!(windows) {
            format!("scratch dir {shown} is a reparse point (a junction or symlink); give the real directory")
        } else {
            format!("scratch dir {shown} is a symlink; give the real directory")
        });
    }
    if !meta.is_dir {
        return Err(format!("scratch dir {shown} is not a directory"));
    }
    let (Some(uid), Some(mode), Some(me)) = (meta.owner, meta.mode, os::user_id()) else {
        return Ok(());
    };
    if uid != me && uid != 0 {
        return Err(format!("scratch dir {shown} is owned by uid {uid}, not by this user (uid {me}) or root"));
    }
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(format!("scratch dir {shown} is world-writable without the sticky bit (mode {:o})", mode & 0o7777));
    }
    Ok(())
}

impl Config {
    /// Checks every field. The scratch directory must exist (a mistyped path is an
    /// error, never created): the pager makes only its own subdirectory in it.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero quota or an unsafe scratch directory: missing, a symlink,
    /// not a directory, owned by another user (root-owned system directories such as
    /// `/tmp` are fine), or world-writable without the sticky bit.
    pub fn validate(&self) -> Result<Config> {
        if self.max_scratch_bytes == Some(0) {
            return Err(Error::Config("maxScratchBytes must be positive".into()));
        }
        let scratch_dir = std::path::absolute(&self.scratch_dir).map_err(|e| {
            Error::Config(format!("scratch dir {} cannot be resolved: {e}", self.scratch_dir.display()))
        })?;
        check_scratch_dir(&scratch_dir)?;
        Ok(Config { scratch_dir, ..self.clone() })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn refuses_symlinks_files_and_open_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();

        let cfg = |dir: &Path| Config { scratch_dir: dir.to_path_buf(), ..Config::default() };
        assert!(cfg(&real).validate().is_ok());
        for (dir, needle) in [(&link, "symlink"), (&file, "not a directory"), (&open, "sticky")] {
            let err = cfg(dir).validate().unwrap_err();
            assert_eq!(err.code(), "ERR_COLDPAGE_CONFIG");
            assert!(err.to_string().contains(needle), "{err}");
        }
        let missing = tmp.path().join("a/b");
        let err = cfg(&missing).validate().unwrap_err();
        assert_eq!(err.code(), "ERR_COLDPAGE_CONFIG");
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!tmp.path().join("a").exists(), "a missing scratch dir is never created");
        let zero = Config { max_scratch_bytes: Some(0), ..cfg(&real) };
        assert_eq!(zero.validate().unwrap_err().code(), "ERR_COLDPAGE_CONFIG");
    }

    #[test]
    fn refuses_a_dir_owned_by_another_user() {
        // SAFETY: geteuid cannot fail and touches no memory.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: chown to another user needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(12345), Some(12345)).unwrap();
        let err = Config { scratch_dir: theirs, ..Config::default() }.validate().unwrap_err();
        assert!(err.to_string().contains("owned by uid 12345"), "{err}");
    }
}
