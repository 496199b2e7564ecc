//! Sharing a handle's storage with other threads: `Handle::share_token` and
//! `Handle::open`.

mod common;

use coldpage::{Backend, Handle, SharedToken};
use common::{pager, pattern};

#[test]
fn a_token_opens_the_same_bytes_on_another_thread() {
    let (pager, _dir) = pager();
    let data = pattern(300_000, 1);
    for backend in [Backend::File, Backend::Swap] {
        let Ok(handle) = pager.pageout_to(backend, &[&data]) else { continue };
        let token = handle.share_token();
        let expected = data.clone();
        let opened_id = std::thread::spawn(move || {
            let other = Handle::open(&token).unwrap();
            assert_eq!(other.backend(), backend);
            assert_eq!(other.len(), expected.len() as u64);
            assert_eq!(other.read_at(0, other.len()).unwrap(), expected);
            let id = other.id();
            other.dispose();
            id
        })
        .join()
        .unwrap();
        assert_ne!(opened_id, handle.id(), "{backend:?}: an opened handle has its own id");
        assert_eq!(handle.read_at(1000, 10).unwrap(), data[1000..1010], "{backend:?}");
        handle.dispose();
    }
    let stats = pager.stats();
    assert_eq!((stats.file.handles, stats.swap.handles, stats.scratch_bytes_allocated), (0, 0, 0));
}

#[test]
fn the_storage_lives_until_every_handle_is_disposed() {
    let (pager, _dir) = pager();
    let data = pattern(50_000, 2);
    let first = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let token = first.share_token();
    let second = Handle::open(&token).unwrap();
    first.dispose();
    assert_eq!(second.read_at(0, 50_000).unwrap(), data, "the opened handle outlives the first");
    assert_eq!(pager.stats().file.handles, 1, "handles over one storage count once");
    let third = Handle::open(&token).unwrap();
    second.dispose();
    third.dispose();
    let stats = pager.stats();
    assert_eq!((stats.file.handles, stats.scratch_bytes_allocated), (0, 0), "the last dispose frees the extent");
    assert_eq!(Handle::open(&token).unwrap_err().code(), "ERR_COLDPAGE_DISPOSED");

    let never_opened = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let token = never_opened.share_token();
    never_opened.dispose();
    assert_eq!(pager.stats().file.handles, 0, "a token alone keeps nothing alive");
    assert_eq!(Handle::open(&token).unwrap_err().code(), "ERR_COLDPAGE_DISPOSED");
}

#[test]
fn a_token_outlives_a_sharer_dropped_without_dispose() {
    let (pager, _dir) = pager();
    let data = pattern(50_000, 4);
    let sharer = pager.pageout_to(Backend::File, &[&data]).unwrap();
    let token = sharer.share_token();
    drop(sharer); // share, send, forget: the usual pattern
    let opened = std::thread::spawn(move || Handle::open(&token).map(|h| h.read_at(0, 50_000)))
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(opened, data);
}

#[test]
fn take_of_a_handle_that_is_not_the_last_copies() {
    let (pager, _dir) = pager();
    let data = pattern(200_000, 3);
    for backend in [Backend::Swap, Backend::File] {
        let Ok(first) = pager.pageout_to(backend, &[&data]) else { continue };
        let second = Handle::open(&first.share_token()).unwrap();
        let taken = first.take().unwrap();
        assert!(!taken.is_zero_copy(), "{backend:?}: shared storage is copied");
        assert_eq!(&*taken, &data[..]);
        assert_eq!(second.read_at(0, 200_000).unwrap(), data, "{backend:?}: the other handle stays readable");
        let last = second.take().unwrap();
        assert_eq!(last.is_zero_copy(), backend == Backend::Swap, "{backend:?}: the last take is the usual one");
        assert_eq!(&*last, &data[..]);
    }
}

#[test]
fn bad_tokens_are_refused_with_their_codes() {
    let (pager, _dir) = pager();
    let handle = pager.pageout_to(Backend::File, &[b"abc"]).unwrap();
    let token = handle.share_token();
    let foreign = SharedToken { process: token.process ^ 1, ..token };
    assert_eq!(Handle::open(&foreign).unwrap_err().code(), "ERR_INVALID_ARG_VALUE");
    for id in [0, u64::MAX] {
        let err = Handle::open(&SharedToken { id, ..token }).unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_ARG_VALUE", "id {id}: {err}");
    }
    assert_eq!(Handle::open(&token).unwrap().read_at(0, 3).unwrap(), b"abc");
}

#[test]
fn threads_open_and_read_while_the_owner_disposes() {
    let (pager, _dir) = pager();
    for round in 0..20u64 {
        let data = pattern(64 * 1024, 10 + round);
        let handle = pager.pageout_to(Backend::File, &[&data]).unwrap();
        let token = handle.share_token();
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let expected = data.clone();
                std::thread::spawn(move || match Handle::open(&token) {
                    // An opened handle keeps working whatever the owner does.
                    Ok(own) => {
                        for _ in 0..10 {
                            assert_eq!(own.read_at(0, 64 * 1024).unwrap(), expected);
                        }
                        own.dispose();
                        true
                    }
                    Err(e) => {
                        assert_eq!(e.code(), "ERR_COLDPAGE_DISPOSED");
                        false
                    }
                })
            })
            .collect();
        handle.dispose();
        for reader in readers {
            reader.join().unwrap();
        }
        let stats = pager.stats();
        assert_eq!((stats.file.handles, stats.scratch_bytes_allocated), (0, 0), "round {round}");
    }
}
