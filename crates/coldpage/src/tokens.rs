//! Shared-handle tokens: plain values that name a handle's storage to the other
//! threads of this process (a binding's workers), and the registry they are looked up
//! in.
//!
//! A token is weak: the registry holds a `Weak` of the storage, so a token that is
//! never opened keeps nothing alive, and opening a token whose storage was freed is
//! [`crate::Error::Disposed`]. Entries leave the registry when their storage is freed.
//! Each token carries this process's random nonce, so a token from another process (or
//! a stale one from before a restart) is refused rather than taken for a local one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// Names one handle's storage to the threads of this process; see
/// [`crate::Handle::share_token`] and [`crate::Handle::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SharedToken {
    /// The nonce of the process that made the token ([`SharedToken::this_process`]).
    pub process: u64,
    /// The id of the handle whose storage was shared.
    pub id: u64,
}

impl SharedToken {
    /// This process's nonce: random, fixed for the life of the process.
    pub fn this_process() -> u64 {
        static NONCE: OnceLock<u64> = OnceLock::new();
        *NONCE.get_or_init(crate::random_u64)
    }
}

/// Weak references by id. Ids are the caller's (unique per entry); `register` of an id
/// already present keeps the first entry.
pub(crate) struct Registry<T> {
    entries: Mutex<BTreeMap<u64, Weak<T>>>,
}

impl<T> Registry<T> {
    pub(crate) const fn new() -> Registry<T> {
        Registry { entries: Mutex::new(BTreeMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Weak<T>>> {
        // Every edit is a single insert or remove: poison leaves a consistent map.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `value` under `id` (a no-op when it already is), then runs `then`
    /// under the registry's lock, so that nobody can look the id up before `then` ran.
    pub(crate) fn register(&self, id: u64, value: &Arc<T>, then: impl FnOnce()) {
        let mut entries = self.lock();
        entries.entry(id).or_insert_with(|| Arc::downgrade(value));
        then();
    }

    /// The value registered under `id`, while it is alive.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<T>> {
        self.lock().get(&id).and_then(Weak::upgrade)
    }

    /// Forgets `id` (its value is being freed).
    pub(crate) fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// How many entries there are (for tests: none may outlive its value).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether `id` has an entry.
    #[cfg(test)]
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.lock().contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_weak_and_forgotten() {
        let registry = Registry::new();
        let value = Arc::new(7u32);
        let mut ran = false;
        registry.register(1, &value, || ran = true);
        assert!(ran);
        registry.register(1, &Arc::new(8u32), || {});
        assert_eq!(registry.get(1).as_deref(), Some(&7), "the first registration stays");
        assert_eq!(Arc::strong_count(&value), 1, "the registry holds no strong reference");
        drop(value);
        assert_eq!(registry.get(1), None, "a freed value is not found");
        registry.forget(1);
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn the_nonce_is_fixed_for_the_process() {
        assert_eq!(SharedToken::this_process(), SharedToken::this_process());
    }
}
