//! A process killed with SIGKILL (Windows: TerminateProcess) leaves no scratch data behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use coldpage::{Backend, Config, Pager};
use common::{files_below, pattern};

const CHILD_ENV: &str = "COLDPAGE_TEST_CRASH_CHILD_DIR";

/// Runs only as the child of `sigkill_leaves_nothing_behind`: pages out data, says
/// "ready", then waits to be killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let pager = Pager::new(Config { scratch_dir: dir.into(), ..Config::default() }).unwrap();
    let handles: Vec<_> = (0..8).map(|i| pager.pageout_to(Backend::File, &[&pattern(1 << 20, i)]).unwrap()).collect();
    assert!(pager.stats().scratch_bytes_on_disk >= 8 << 20);
    println!("ready {}", handles.len());
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn sigkill_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        while !line.contains("ready ") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "child exited before paging out");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let left = files_below(dir.path());
        assert!(left.is_empty(), "round {round}: files left after kill -9: {left:?}");
    }
    // A new pager in the same dir starts clean.
    let pager = Pager::new(Config { scratch_dir: dir.path().into(), ..Config::default() }).unwrap();
    let h = pager.pageout_to(Backend::File, &[b"fresh"]).unwrap();
    assert_eq!(h.read_at(0, 5).unwrap(), b"fresh");
    let s = pager.stats();
    assert_eq!((s.file.handles, s.scratch_bytes_allocated), (1, 4096));
}

#[test]
#[cfg(unix)]
fn leftovers_of_the_named_fallback_are_reaped() {
    // Where O_TMPFILE is unsupported the arena is a 0600 file unlinked right after
    // creation; one left by a kill in between is removed by the next pager.
    let dir = tempfile::tempdir().unwrap();
    let sub = common::arena_dir(dir.path());
    std::fs::create_dir_all(&sub).unwrap();
    let stale = sub.join(".coldpage-arena-999999-1");
    std::fs::write(&stale, vec![1u8; 8192]).unwrap();
    let keep = sub.join("not-ours");
    std::fs::write(&keep, b"x").unwrap();
    let pager = Pager::new(Config { scratch_dir: dir.path().into(), ..Config::default() }).unwrap();
    pager.pageout_to(Backend::File, &[b"x"]).unwrap();
    assert!(!stale.exists(), "stale arena file reaped");
    assert!(keep.exists(), "other files untouched");
}

#[test]
#[cfg(unix)]
fn the_arena_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pager = Pager::new(Config { scratch_dir: dir.path().into(), ..Config::default() }).unwrap();
    let _h = pager.pageout_to(Backend::File, &[b"secret"]).unwrap();
    let sub = common::arena_dir(dir.path());
    assert_eq!(std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777, 0o700);
    let fd = common::arena_fd_path(dir.path());
    assert_eq!(std::fs::metadata(&fd).unwrap().permissions().mode() & 0o077, 0, "no access for others");
    assert!(files_below(dir.path()).is_empty(), "the arena file has no name");
}
