//! A full scratch disk (a small tmpfs mounted for the test, root only) and a full
//! quota (no root needed): pageouts fail with `NoSpace`, the caller's bytes and every
//! live handle are intact, a failed write leaves no pages behind, and pageouts work
//! again once space frees.

#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::Command;

use coldpage::{Backend, Config, Handle, Pager};
use common::pattern;

/// A tmpfs mounted on a fresh directory; unmounted on drop, also when a test panics.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts `size` bytes of tmpfs, or says why it cannot and returns `None`.
    fn mount(size: u64) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a small tmpfs to fill the disk needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "coldpage-disk-full"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs { dir }),
            other => {
                eprintln!("skipped: cannot mount a tmpfs here ({other:?})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(self.dir.path()).status().is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a descriptor open elsewhere): detach it now, freed when idle.
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}

/// Free bytes of the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `statvfs` is plain old data; zeroed is a valid value for it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a live, writable struct.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}

/// Fills the scratch space with 256 KiB handles until `NoSpace`, then checks that
/// nothing was lost and that freeing space lets pageouts succeed again. Returns how
/// many pageouts failed with `NoSpace`.
fn fill_then_free(pager: &Pager, scratch: &Path) -> u64 {
    const SIZE: usize = 256 << 10;
    let mut live: Vec<(Handle, Vec<u8>)> = Vec::new();
    let mut refused = 0;
    let mut seed = 0;
    let err = loop {
        seed += 1;
        let data = pattern(SIZE, seed);
        let copy = data.clone();
        let before = pager.stats();
        // Several chunks, so that a write can fail part-way through the vector.
        match pager.pageout_to(Backend::File, &[&data[..1000], &data[1000..SIZE / 2], &data[SIZE / 2..]]) {
            Ok(h) => live.push((h, data)),
            Err(err) => {
                refused += 1;
                assert_eq!(data, copy, "the caller's bytes are untouched");
                let after = pager.stats();
                assert_eq!(after.scratch_bytes_allocated, before.scratch_bytes_allocated, "the failed extent is freed");
                assert_eq!(after.file.handles, before.file.handles);
                assert!(
                    after.scratch_bytes_on_disk <= before.scratch_bytes_on_disk,
                    "a part-written extent is punched: {} > {}",
                    after.scratch_bytes_on_disk,
                    before.scratch_bytes_on_disk
                );
                break err;
            }
        }
        assert!(live.len() < 10_000, "the scratch space never filled up");
    };
    assert_eq!(err.code(), "ERR_COLDPAGE_NO_SPACE", "{err}");
    // Still full: a second try is refused the same way, and reads keep working.
    assert_eq!(pager.pageout_to(Backend::File, &[&pattern(SIZE, 0)]).unwrap_err().code(), "ERR_COLDPAGE_NO_SPACE");
    refused += 1;
    for (h, data) in &live {
        assert_eq!(h.read_at(0, SIZE as u64).unwrap(), *data, "nothing lost when the disk is full");
        assert_eq!(&*h.view(SIZE as u64 / 2, 4096).unwrap(), &data[SIZE / 2..SIZE / 2 + 4096]);
    }
    assert!(pager.stats().errors >= refused);

    // Free half: the punched extents give the space back.
    let half = live.len() / 2;
    let taken: Vec<_> = live.drain(..half).map(|(h, data)| (h.take().unwrap(), data)).collect();
    for (t, data) in &taken {
        assert_eq!(&t[..], &data[..]);
    }
    for i in 0..half.max(1) {
        let data = pattern(SIZE, 1_000 + i as u64);
        let h = pager.pageout_to(Backend::File, &[&data]).expect("pageouts succeed again once space frees");
        live.push((h, data));
    }
    for (h, data) in &live {
        assert_eq!(h.read_at(0, SIZE as u64).unwrap(), *data);
    }
    drop(live);
    let s = pager.stats();
    assert_eq!((s.file.handles, s.scratch_bytes_allocated), (0, 0), "{s:?}");
    eprintln!("{}: {refused} pageouts refused with NO_SPACE, none lost", scratch.display());
    refused
}

#[test]
fn a_full_tmpfs_gives_no_space_and_recovers() {
    let Some(fs) = Tmpfs::mount(4 << 20) else { return };
    let free = free_bytes(fs.path());
    {
        let pager = Pager::new(Config { scratch_dir: fs.path().into(), ..Config::default() }).unwrap();
        fill_then_free(&pager, fs.path());
        assert_eq!(pager.stats().scratch_bytes_on_disk, 0, "every extent punched");
    }
    // The pager (and its arena) are gone: the tmpfs is as empty as before.
    assert_eq!(free_bytes(fs.path()), free);
    assert!(common::files_below(fs.path()).is_empty());
}

#[test]
fn a_disk_that_fills_mid_write_leaves_no_pages_behind() {
    // 1.5 handles' worth of space: the second write fails part-way through.
    let Some(fs) = Tmpfs::mount(384 << 10) else { return };
    let pager = Pager::new(Config { scratch_dir: fs.path().into(), ..Config::default() }).unwrap();
    let first = pattern(256 << 10, 1);
    let h = pager.pageout_to(Backend::File, &[&first]).unwrap();
    let on_disk = pager.stats().scratch_bytes_on_disk;
    let second = pattern(256 << 10, 2);
    let err = pager.pageout_to(Backend::File, &[&second[..100_000], &second[100_000..]]).unwrap_err();
    assert_eq!(err.code(), "ERR_COLDPAGE_NO_SPACE", "{err}");
    assert_eq!(pager.stats().scratch_bytes_on_disk, on_disk, "the part-written extent was punched");
    assert_eq!(h.read_at(0, first.len() as u64).unwrap(), first);
    // What fits still goes in.
    let small = pattern(64 << 10, 3);
    let s = pager.pageout_to(Backend::File, &[&small]).unwrap();
    assert_eq!(s.read_at(0, small.len() as u64).unwrap(), small);
}

#[test]
fn a_full_quota_gives_no_space_and_recovers() {
    // The same scenario without root: the quota fills instead of the disk.
    let dir = tempfile::tempdir().unwrap();
    let pager =
        Pager::new(Config { scratch_dir: dir.path().into(), max_scratch_bytes: Some(3 << 20), ..Config::default() })
            .unwrap();
    assert!(fill_then_free(&pager, dir.path()) >= 2);
}
