//! The pager's configuration and the safety checks on the scratch directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::os;
use crate::selector::Selector;

/// How the pager stores file-backed handles. Swapped in whole with
/// [`Pager::configure`](crate::Pager::configure); live handles keep the scratch arena
/// they were written to.
///
/// A field that can be unset is an `Option` (`None` for unset, never an in-band
/// value). Each field is described once for bindings in [`CONFIG_FIELDS`] (its name,
/// how a value sets it, how it reads back), and once for JS in the package's
/// `lib/config-fields.ts` (its check with Node's error codes, `COLDPAGE_*` variable and
/// default); the Node binding walks the former and names no field.
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

/// A value a config field is set from or reads back as: what crosses from JS (a
/// `configure` patch, a config file) and back (`getConfig`). [`ConfigValue::Null`] is
/// "unset", for the fields that can be unset.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    /// Unset (`null`).
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (a JS double; byte counts are safe integers).
    Number(f64),
    /// A string.
    Text(String),
}

/// One field of the pager's settings, described once: its name as JS spells it, how a
/// value sets it (with the core's check of that value alone; checks across fields are
/// [`Config::validate`]'s) and how it reads back. [`CONFIG_FIELDS`] lists them all; a
/// binding walks that list and has no code of its own per field.
pub struct ConfigField {
    /// The name in JS, config files and errors (`"maxScratchBytes"`).
    pub name: &'static str,
    /// Whether the field is the backend selector, which the pager keeps apart from
    /// [`Config`] (new pageouts read it without a lock).
    pub selector: bool,
    set: fn(&mut Config, &mut Selector, &ConfigValue) -> Result<()>,
    get: fn(&Config, Selector) -> ConfigValue,
}

impl ConfigField {
    /// Sets the field in `config` (or `selector`) from `value`.
    ///
    /// # Errors
    /// [`Error::InvalidArgType`] for a value of the wrong type, [`Error::InvalidArgValue`]
    /// for an unknown name (a backend, a compression), [`Error::OutOfRange`] for a byte
    /// count that is not a non-negative safe integer. Nothing is set then.
    pub fn set(&self, config: &mut Config, selector: &mut Selector, value: &ConfigValue) -> Result<()> {
        (self.set)(config, selector, value)
    }

    /// The field's value in `config` (or `selector`).
    pub fn get(&self, config: &Config, selector: Selector) -> ConfigValue {
        (self.get)(config, selector)
    }
}

impl std::fmt::Debug for ConfigField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigField").field("name", &self.name).field("selector", &self.selector).finish()
    }
}

/// A [`ConfigField`] over the member `$member` of [`Config`]: `$parse(name, value)`
/// turns a value into the member's type (naming the field in its errors), `$show`
/// turns the member back into a value.
macro_rules! member {
    ($name:literal, $member:ident, $parse:expr, $show:expr) => {
        ConfigField {
            name: $name,
            selector: false,
            set: |config, _, value| {
                config.$member = $parse($name, value)?;
                Ok(())
            },
            get: |config, _| $show(&config.$member),
        }
    };
}

/// Every config field, in the order of the package's `lib/config-fields.ts` `FIELDS`
/// (a test fails when the two lists differ). Adding a field is its [`Config`] member
/// (and its [`Default`]) plus one entry here.
pub const CONFIG_FIELDS: &[ConfigField] = &[
    ConfigField {
        name: "backend",
        selector: true,
        set: |_, selector, value| {
            *selector = named("backend", value)?;
            Ok(())
        },
        get: |_, selector| ConfigValue::Text(selector.as_str().into()),
    },
    member!("scratchDir", scratch_dir, path, |dir: &PathBuf| ConfigValue::Text(dir.to_string_lossy().into_owned())),
    member!("maxScratchBytes", max_scratch_bytes, bytes, bytes_value),
    member!("verify", verify, boolean, |on: &bool| ConfigValue::Bool(*on)),
    member!("residentBytes", resident_bytes, bytes, bytes_value),
    member!("encrypt", encrypt, boolean, |on: &bool| ConfigValue::Bool(*on)),
    member!("compress", compress, named, |c: &Compression| ConfigValue::Text(c.as_str().into())),
];

/// The field named `name`.
///
/// # Errors
/// [`Error::InvalidArgValue`] when no field has that name.
pub fn config_field(name: &str) -> Result<&'static ConfigField> {
    CONFIG_FIELDS
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| Error::InvalidArgValue(format!("invalid `{name}`: not a config field")))
}

/// What a value of the wrong type reads as in an error.
fn shown(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Null => "null".into(),
        ConfigValue::Bool(b) => format!("type boolean ({b})"),
        ConfigValue::Number(n) => format!("type number ({n})"),
        ConfigValue::Text(s) => format!("type string ({s:?})"),
    }
}

fn wrong_type(name: &str, expected: &str, value: &ConfigValue) -> Error {
    Error::InvalidArgType(format!("expected `{name}` to be {expected}, got {}", shown(value)))
}

fn boolean(name: &str, value: &ConfigValue) -> Result<bool> {
    match value {
        ConfigValue::Bool(b) => Ok(*b),
        other => Err(wrong_type(name, "a boolean", other)),
    }
}

fn text<'v>(name: &str, value: &'v ConfigValue) -> Result<&'v str> {
    match value {
        ConfigValue::Text(s) => Ok(s),
        other => Err(wrong_type(name, "a string", other)),
    }
}

fn path(name: &str, value: &ConfigValue) -> Result<PathBuf> {
    text(name, value).map(PathBuf::from)
}

/// One of the names `T` parses (a backend, a compression).
fn named<T: std::str::FromStr<Err = Error>>(name: &str, value: &ConfigValue) -> Result<T> {
    text(name, value)?.parse().map_err(|e: Error| Error::InvalidArgValue(format!("invalid `{name}`: {e}")))
}

/// A byte count that can be unset: `Null` or a non-negative safe integer.
fn bytes(name: &str, value: &ConfigValue) -> Result<Option<u64>> {
    /// 2^53 - 1, the largest integer a JS number holds exactly.
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    match *value {
        ConfigValue::Null => Ok(None),
        // Exact: checked integral and within 2^53.
        ConfigValue::Number(n) if n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER => Ok(Some(n as u64)),
        ConfigValue::Number(n) => {
            Err(Error::OutOfRange(format!("expected `{name}` to be a non-negative safe integer or null, got {n}")))
        }
        ref other => Err(wrong_type(name, "a number or null", other)),
    }
}

fn bytes_value(bytes: &Option<u64>) -> ConfigValue {
    bytes.map_or(ConfigValue::Null, |b| ConfigValue::Number(b as f64))
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

#[cfg(test)]
mod field_tests {
    use super::*;
    use ConfigValue::{Bool, Null, Number, Text};

    #[test]
    fn every_field_reads_back_what_set_it() {
        let cases = [
            ("backend", Text("file".into())),
            ("scratchDir", Text("somewhere".into())),
            ("maxScratchBytes", Number(4096.0)),
            ("maxScratchBytes", Null),
            ("verify", Bool(false)),
            ("residentBytes", Number(0.0)),
            ("residentBytes", Null),
            ("encrypt", Bool(true)),
            ("compress", Text("lz4".into())),
        ];
        for field in CONFIG_FIELDS {
            assert!(cases.iter().any(|(name, _)| *name == field.name), "no case sets {}", field.name);
        }
        let base = Config::default();
        for (name, value) in cases {
            let (mut config, mut selector) = (base.clone(), Selector::Auto);
            let field = config_field(name).unwrap();
            field.set(&mut config, &mut selector, &value).unwrap();
            assert_eq!(field.get(&config, selector), value, "{name}");
            assert_eq!(field.selector, config == base && selector != Selector::Auto, "{name}");
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_or_range_is_refused_and_sets_nothing() {
        let (ty, value, range) = ("ERR_INVALID_ARG_TYPE", "ERR_INVALID_ARG_VALUE", "ERR_OUT_OF_RANGE");
        let cases = [
            ("backend", Bool(true), ty),
            ("backend", Text("disk".into()), value),
            ("scratchDir", Null, ty),
            ("maxScratchBytes", Number(-1.0), range),
            ("maxScratchBytes", Number(1.5), range),
            ("maxScratchBytes", Number(f64::INFINITY), range),
            ("maxScratchBytes", Text("1".into()), ty),
            ("verify", Number(1.0), ty),
            ("residentBytes", Number(9_007_199_254_740_992.0), range),
            ("encrypt", Null, ty),
            ("compress", Text("zstd".into()), value),
        ];
        let base = Config::default();
        for (name, bad, code) in cases {
            let (mut config, mut selector) = (base.clone(), Selector::Auto);
            let err = config_field(name).unwrap().set(&mut config, &mut selector, &bad).unwrap_err();
            assert_eq!(err.code(), code, "{name} = {bad:?}: {err}");
            assert!(err.to_string().contains(name), "{err}");
            assert_eq!((config, selector), (base.clone(), Selector::Auto), "{name}");
        }
        assert_eq!(config_field("quota").unwrap_err().code(), value);
    }
}
