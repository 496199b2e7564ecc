//! Scratch-space seams: the quota after a scratch-dir change, a missing scratch dir, and
//! the fallback directory made when `coldpage-<uid>` is squatted.
mod common;

use coldpage::{Backend, Config};

const UNIT: usize = 64 * 1024; // a multiple of every page size

#[test]
fn old_arenas_recycle_bins_do_not_hold_the_quota() {
    let (pager, _a) = common::pager_with(|c| c.max_scratch_bytes = Some(3 * UNIT as u64));
    let keep = pager.pageout_to(Backend::File, &[&vec![1u8; UNIT]]).unwrap();
    let freed = pager.pageout_to(Backend::File, &[&vec![2u8; UNIT]]).unwrap();
    drop(freed); // `keep` is live, so its extent goes to the recycle bin (quota still held)
    let b = tempfile::tempdir().unwrap();
    pager.update(|c| c.scratch_dir = b.path().to_path_buf()).unwrap();
    // 2 units fit only if the old arena's bin gave its unit back.
    let two = pager.pageout_to(Backend::File, &[&vec![3u8; 2 * UNIT]]).unwrap();
    assert_eq!(two.read_at(0, 4).unwrap(), [3u8; 4]);
    assert_eq!(keep.read_at(0, 4).unwrap(), [1u8; 4], "the old arena's live handle is untouched");
    drop(keep);
    drop(two);
    assert_eq!(pager.stats().scratch_bytes_allocated, 0);
}

#[test]
fn a_missing_scratch_dir_is_a_config_error_and_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nonexistent/x");
    let config = Config { scratch_dir: missing.clone(), ..Config::default() };
    let err = coldpage::Pager::new(config).err().expect("refused");
    assert_eq!(err.code(), "ERR_COLDPAGE_CONFIG");
    assert!(!tmp.path().join("nonexistent").exists());
    let (pager, _dir) = common::pager();
    assert_eq!(pager.update(|c| c.scratch_dir = missing.clone()).unwrap_err().code(), "ERR_COLDPAGE_CONFIG");
    assert!(!tmp.path().join("nonexistent").exists());
}

#[cfg(unix)]
#[test]
fn a_fallback_dir_is_not_left_behind() {
    let (pager, dir) = common::pager();
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    let squatted = format!("coldpage-{uid}");
    std::os::unix::fs::symlink("/", dir.path().join(&squatted)).unwrap();
    let h = pager.pageout_to(Backend::File, &[b"bytes"]).unwrap();
    let report = coldpage::doctor(dir.path());
    assert!(report.scratch_fallback.is_some(), "the squatted name is reported");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, [squatted], "only the squatter's entry: the fallback dir is gone while the arena lives");
    assert_eq!(h.read_at(0, 5).unwrap(), b"bytes");
}
