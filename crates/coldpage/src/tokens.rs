//! Shared-handle tokens: plain values that name a handle's storage to the other
//! threads of this process (a binding's workers), and the registry they are looked up
//! in.
//!
//! A token is not a handle: the registry holds a `Weak` of the storage. What keeps a
//! posted token openable after its sharer is gone is *parking*: a handle over shared
//! storage that ends without an explicit dispose (dropped, or collected by a binding's
//! garbage collector: "share, post, forget the handle") leaves a strong reference in
//! the registry for [`TOKEN_GRACE`]. A handle ended by an explicit dispose (or a take)
//! leaves nothing, so disposing every handle frees the storage at once. A parked
//! reference is dropped by a sweeper thread when its grace ends, so unopened tokens
//! never keep storage for longer than that after the last handle is gone (a handle
//! opened from a parked token parks again, with a fresh grace, when it is collected).
//! Entries leave the registry when their storage is freed. Each token carries this
//! process's random nonce, so a token from another process (or a stale one from before
//! a restart) is refused rather than taken for a local one.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, OnceLock, Weak};
use std::time::{Duration, Instant};

/// How long shared storage stays openable by token after a handle over it ended
/// without an explicit dispose.
pub const TOKEN_GRACE: Duration = Duration::from_secs(60);

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

/// Weak references by id, and the parked strong ones. Ids are the caller's (unique
/// per entry); `register` of an id already present keeps the first entry.
pub(crate) struct Registry<T> {
    entries: Mutex<BTreeMap<u64, Weak<T>>>,
    parked: Mutex<BTreeMap<u64, (Arc<T>, Instant)>>,
    /// Wakes the sweeper when something is parked.
    parked_changed: Condvar,
    sweeper: Once,
}

impl<T: Send + Sync + 'static> Registry<T> {
    pub(crate) const fn new() -> Registry<T> {
        Registry {
            entries: Mutex::new(BTreeMap::new()),
            parked: Mutex::new(BTreeMap::new()),
            parked_changed: Condvar::new(),
            sweeper: Once::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Weak<T>>> {
        // Every edit is a single insert or remove: poison leaves a consistent map.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_parked(&self) -> MutexGuard<'_, BTreeMap<u64, (Arc<T>, Instant)>> {
        // Likewise.
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Keeps `value` alive under `id` until `grace` has passed (a later park of the
    /// same id restarts it). Expired values are dropped by a sweeper thread, started
    /// on the first park; should it fail to start, each park sweeps instead.
    pub(crate) fn park(&'static self, id: u64, value: Arc<T>, grace: Duration) {
        let mut started = true;
        self.sweeper.call_once(|| {
            started = std::thread::Builder::new().name("coldpage-tokens".into()).spawn(move || self.sweep()).is_ok();
        });
        let until = Instant::now() + grace;
        let (replaced, expired) = {
            let mut parked = self.lock_parked();
            let replaced = parked.insert(id, (value, until));
            let expired = if started { Vec::new() } else { Self::take_expired(&mut parked, Instant::now()) };
            (replaced, expired)
        };
        self.parked_changed.notify_all();
        // Dropped outside the lock: freeing storage takes the entries' lock.
        drop((replaced, expired));
    }

    fn take_expired(parked: &mut BTreeMap<u64, (Arc<T>, Instant)>, now: Instant) -> Vec<Arc<T>> {
        let ids: Vec<u64> = parked.iter().filter(|(_, (_, until))| *until <= now).map(|(&id, _)| id).collect();
        ids.into_iter().filter_map(|id| parked.remove(&id)).map(|(value, _)| value).collect()
    }

    /// The sweeper: drops each parked value when its grace ends.
    fn sweep(&self) {
        let mut parked = self.lock_parked();
        loop {
            let now = Instant::now();
            let expired = Self::take_expired(&mut parked, now);
            if !expired.is_empty() {
                drop(parked);
                drop(expired);
                parked = self.lock_parked();
                continue;
            }
            parked = match parked.values().map(|(_, until)| *until).min() {
                Some(until) => {
                    self.parked_changed.wait_timeout(parked, until - now).unwrap_or_else(|p| p.into_inner()).0
                }
                None => self.parked_changed.wait(parked).unwrap_or_else(|p| p.into_inner()),
            };
        }
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

    /// Whether `id` is parked.
    #[cfg(test)]
    pub(crate) fn is_parked(&self, id: u64) -> bool {
        self.lock_parked().contains_key(&id)
    }
}

/// Parks a shared value when the handle holding it ends without an explicit dispose
/// (see the module docs). Holds a `Weak`, so it never stops a zero-copy take.
pub(crate) struct ParkOnDrop<T: Parkable>(Option<Weak<T>>);

/// A value that [`ParkOnDrop`] can park: it knows its id, whether a token named it,
/// and its registry.
pub(crate) trait Parkable: Send + Sync + Sized + 'static {
    /// The id its tokens name.
    fn token_id(&self) -> u64;
    /// Whether a token was made for it (only then is there anything to keep it for).
    fn is_shared(&self) -> bool;
    /// The registry its tokens are looked up in.
    fn registry() -> &'static Registry<Self>;
}

impl<T: Parkable> ParkOnDrop<T> {
    /// Parks `value` when dropped, unless disarmed first.
    pub(crate) fn armed(value: &Arc<T>) -> ParkOnDrop<T> {
        ParkOnDrop(Some(Arc::downgrade(value)))
    }

    /// Parks nothing (a handle's internal shares, and handles ended explicitly).
    pub(crate) fn disarmed() -> ParkOnDrop<T> {
        ParkOnDrop(None)
    }

    /// Ends explicitly: nothing will be parked.
    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl<T: Parkable> Drop for ParkOnDrop<T> {
    fn drop(&mut self) {
        // Runs before the handle's own strong reference drops (fields drop in
        // declaration order), so the value is still alive here.
        if let Some(value) = self.0.take().and_then(|weak| weak.upgrade()) {
            if value.is_shared() {
                let id = value.token_id();
                T::registry().park(id, value, TOKEN_GRACE);
            }
        }
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
    fn a_parked_value_lives_through_its_grace_then_goes() {
        static REGISTRY: Registry<u32> = Registry::new();
        let value = Arc::new(9u32);
        REGISTRY.register(5, &value, || {});
        let weak = Arc::downgrade(&value);
        REGISTRY.park(5, value, Duration::from_millis(50));
        assert_eq!(REGISTRY.get(5).as_deref(), Some(&9), "parked: still found by id");
        assert!(REGISTRY.is_parked(5));
        // The sweeper drops it once the grace ends (bounded wait, not a timing assertion).
        let deadline = Instant::now() + Duration::from_secs(30);
        while weak.strong_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(weak.strong_count(), 0, "an unopened token does not keep its value forever");
        assert!(!REGISTRY.is_parked(5));
    }

    #[test]
    fn the_nonce_is_fixed_for_the_process() {
        assert_eq!(SharedToken::this_process(), SharedToken::this_process());
    }
}
