//! The pager's scratch key: an AEAD key drawn from the OS's random number generator
//! on the first encrypted pageout, held in one locked page of memory, zeroed when the
//! pager goes, and never written anywhere.
//!
//! The cipher is AES-256-GCM where the CPU has AES and carry-less multiply
//! instructions (x86 AES-NI + PCLMULQDQ, ARMv8 AES + PMULL), else ChaCha20-Poly1305:
//! software AES is several times slower and not constant-time. On Linux both come
//! from ring (several times faster than RustCrypto on 4 KiB blocks: `benches/aead`
//! measures both); elsewhere from RustCrypto, which is pure Rust: ring's and aws-lc-rs's
//! build scripts compile C and assembly, which the macOS and Windows MSVC builds
//! checked on Linux (`npm run lint:macos`) cannot (`benches/aead`, README).
//!
//! Nonces are 96 bits: a 64-bit counter that only grows for the key's life (every
//! block ever sealed takes the next value, whatever extent it lands in) and 32 zero
//! bits. The counter cannot wrap: [`Key::nonces`] refuses once 2^64 are used.

use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapMut;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::os;

/// Bytes of an AEAD tag; one per encrypted block, kept in memory.
pub(crate) const TAG: usize = 16;

/// One block's tag.
pub(crate) type Tag = [u8; TAG];

#[cfg(target_os = "linux")]
struct Aead(ring::aead::LessSafeKey);

#[cfg(target_os = "linux")]
impl Aead {
    fn new(algorithm: Algorithm, key: &[u8; 32]) -> Aead {
        let algorithm = match algorithm {
            Algorithm::AesGcm => &ring::aead::AES_256_GCM,
            Algorithm::ChaCha => &ring::aead::CHACHA20_POLY1305,
        };
        let key = ring::aead::UnboundKey::new(algorithm, key).expect("a 256-bit key is what both AEADs take");
        Aead(ring::aead::LessSafeKey::new(key))
    }

    fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> Option<Tag> {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        let tag = self.0.seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), buf).ok()?;
        tag.as_ref().try_into().ok()
    }

    fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8], tag: &Tag) -> bool {
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce);
        let tag = ring::aead::Tag::from(*tag);
        self.0.open_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), tag, buf, 0..).is_ok()
    }
}

#[cfg(not(target_os = "linux"))]
// Its size does not matter: the one value lives alone in the key's locked page, and
// boxing the larger variant would move the key to the heap, which is not locked.
#[allow(clippy::large_enum_variant)]
enum Aead {
    AesGcm(aes_gcm::Aes256Gcm),
    ChaCha(chacha20poly1305::ChaCha20Poly1305),
}

#[cfg(not(target_os = "linux"))]
impl Aead {
    fn new(algorithm: Algorithm, key: &[u8; 32]) -> Aead {
        use aes_gcm::aead::KeyInit;
        match algorithm {
            Algorithm::AesGcm => Aead::AesGcm(aes_gcm::Aes256Gcm::new(key.into())),
            Algorithm::ChaCha => Aead::ChaCha(chacha20poly1305::ChaCha20Poly1305::new(key.into())),
        }
    }

    fn seal(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> Option<Tag> {
        use aes_gcm::aead::AeadInPlace;
        let tag = match self {
            Aead::AesGcm(c) => c.encrypt_in_place_detached(&nonce.into(), aad, buf),
            Aead::ChaCha(c) => c.encrypt_in_place_detached(&nonce.into(), aad, buf),
        };
        tag.ok().map(Into::into)
    }

    fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8], tag: &Tag) -> bool {
        use aes_gcm::aead::AeadInPlace;
        match self {
            Aead::AesGcm(c) => c.decrypt_in_place_detached(&nonce.into(), aad, buf, tag.into()).is_ok(),
            Aead::ChaCha(c) => c.decrypt_in_place_detached(&nonce.into(), aad, buf, tag.into()).is_ok(),
        }
    }
}

/// Which AEAD [`Key::new`] picks on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    AesGcm,
    ChaCha,
}

impl Algorithm {
    /// The AEAD this CPU runs fastest in constant time.
    pub(crate) fn for_this_cpu() -> Algorithm {
        if aes_in_hardware() {
            Algorithm::AesGcm
        } else {
            Algorithm::ChaCha
        }
    }

    /// The AEAD and the library that implements it on this target.
    pub(crate) fn name(self) -> &'static str {
        match (self, cfg!(target_os = "linux")) {
            (Algorithm::AesGcm, true) => "AES-256-GCM (ring)",
            (Algorithm::ChaCha, true) => "ChaCha20-Poly1305 (ring)",
            (Algorithm::AesGcm, false) => "AES-256-GCM (RustCrypto)",
            (Algorithm::ChaCha, false) => "ChaCha20-Poly1305 (RustCrypto)",
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn aes_in_hardware() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn aes_in_hardware() -> bool {
    // Rust's "aes" feature on aarch64 includes PMULL.
    std::arch::is_aarch64_feature_detected!("aes")
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn aes_in_hardware() -> bool {
    false
}

/// A pager's key and its nonce counter.
///
/// The cipher state (the key and what the cipher derives from it) lives in a page of
/// its own, locked where the OS allows (`mlock`, `VirtualLock`) so that it is never
/// written to swap, and zeroed before the page is unmapped.
pub(crate) struct Key {
    /// One anonymous page holding an [`Aead`] at offset 0 (written in [`Key::new`],
    /// dropped in `Drop`).
    page: MmapMut,
    algorithm: Algorithm,
    /// Why the page could not be locked, if it could not.
    lock_error: Option<String>,
    next_nonce: AtomicU64,
    /// The process that made the key: a forked child has a copy of the key and of the
    /// counter, so nonces it took would repeat the parent's.
    pid: u32,
}

impl Key {
    /// A fresh random key for `algorithm`.
    ///
    /// # Errors
    /// [`Error::Io`] when the OS's random number generator or an anonymous page
    /// cannot be had.
    pub(crate) fn new(algorithm: Algorithm) -> Result<Key> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| Error::io("getrandom", std::io::Error::other(e.to_string())))?;
        let len = os::page_size().max(std::mem::size_of::<Aead>());
        let mut page = os::anon_page(len).map_err(|e| Error::io("mmap", e))?;
        let lock_error = os::lock_memory(&page).err().map(|e| e.to_string());
        let at = page.as_mut_ptr().cast::<Aead>();
        assert!(at.is_aligned(), "a page is aligned for any cipher state");
        let aead = Aead::new(algorithm, &bytes);
        // SAFETY: `at` is the start of a live, writable, page-aligned mapping of at
        // least `size_of::<Aead>()` bytes that nothing else references; it holds no
        // value yet, so nothing is overwritten without being dropped.
        unsafe { at.write(aead) };
        Ok(Key { page, algorithm, lock_error, next_nonce: AtomicU64::new(0), pid: std::process::id() })
    }

    fn aead(&self) -> &Aead {
        // SAFETY: `new` wrote an `Aead` at the start of the page, which lives (and is
        // only written again by `drop`) as long as `self`; shared references only.
        unsafe { &*self.page.as_ptr().cast::<Aead>() }
    }

    /// The AEAD in use.
    pub(crate) fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Why the key's page is not locked in memory (`None` when it is).
    pub(crate) fn lock_error(&self) -> Option<&str> {
        self.lock_error.as_deref()
    }

    /// Reserves `count` consecutive nonces, never handed out before for this key;
    /// returns the first.
    ///
    /// # Errors
    /// [`Error::NoSpace`] once the key's 2^64 nonces are used up;
    /// [`Error::Unsupported`] in a forked child of the process that made the key.
    pub(crate) fn nonces(&self, count: u64) -> Result<u64> {
        if std::process::id() != self.pid {
            return Err(Error::Unsupported(format!(
                "the scratch key was made by process {}: a forked child cannot encrypt with it",
                self.pid
            )));
        }
        self.next_nonce
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| next.checked_add(count))
            .map_err(|_| Error::NoSpace("the scratch key's nonces are used up".into()))
    }

    /// Encrypts `buf` in place; returns its tag.
    pub(crate) fn seal(&self, nonce: u64, aad: &[u8], buf: &mut [u8]) -> Tag {
        // Only a buffer longer than the AEAD's limit (64 GiB) fails; blocks are 4 KiB.
        self.aead().seal(nonce_bytes(nonce), aad, buf).expect("a block is within the AEAD's length limit")
    }

    /// Decrypts `buf` in place if `tag` authenticates it with `nonce` and `aad`;
    /// `false` (and `buf` unspecified) otherwise.
    #[must_use]
    pub(crate) fn open(&self, nonce: u64, aad: &[u8], buf: &mut [u8], tag: &Tag) -> bool {
        self.aead().open(nonce_bytes(nonce), aad, buf, tag)
    }
}

fn nonce_bytes(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&counter.to_le_bytes());
    nonce
}

impl Drop for Key {
    fn drop(&mut self) {
        let at = self.page.as_mut_ptr().cast::<Aead>();
        // SAFETY: the page holds the `Aead` written by `new`, dropped exactly once,
        // here; nothing reads it afterwards (only the zeroing below writes the page).
        unsafe { at.drop_in_place() };
        // RustCrypto's ciphers zero their state on drop (the `zeroize` feature); ring's
        // hold it inline with no destructor: the whole page is zeroed here, before
        // munmap gives it back.
        self.page.zeroize();
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ciphers_round_trip_and_refuse_tampering() {
        for algorithm in [Algorithm::AesGcm, Algorithm::ChaCha] {
            let key = Key::new(algorithm).unwrap();
            let plain: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
            let mut buf = plain.clone();
            let tag = key.seal(7, b"aad", &mut buf);
            assert_ne!(buf, plain, "{algorithm:?}");
            let sealed = buf.clone();
            assert!(key.open(7, b"aad", &mut buf, &tag));
            assert_eq!(buf, plain);
            for (nonce, aad, flip) in [(8, &b"aad"[..], None), (7, b"aae", None), (7, b"aad", Some(100))] {
                let mut buf = sealed.clone();
                if let Some(at) = flip {
                    buf[at] ^= 1;
                }
                assert!(!key.open(nonce, aad, &mut buf, &tag), "{algorithm:?} {nonce} {flip:?}");
            }
            let other = Key::new(algorithm).unwrap();
            let mut buf = sealed.clone();
            assert!(!other.open(7, b"aad", &mut buf, &tag), "another key");
        }
    }

    #[test]
    fn nonces_never_repeat_and_never_wrap() {
        let key = Key::new(Algorithm::for_this_cpu()).unwrap();
        assert_eq!(key.nonces(3).unwrap(), 0);
        assert_eq!(key.nonces(1).unwrap(), 3);
        key.next_nonce.store(u64::MAX - 1, Ordering::Relaxed);
        assert_eq!(key.nonces(1).unwrap(), u64::MAX - 1);
        assert_eq!(key.nonces(2).unwrap_err().code(), "ERR_COLDPAGE_NO_SPACE");
    }

    #[test]
    fn a_key_from_another_process_hands_out_no_nonces() {
        // As in a forked child, which holds a copy of the parent's key and counter.
        let mut key = Key::new(Algorithm::for_this_cpu()).unwrap();
        key.pid = std::process::id().wrapping_add(1);
        let err = key.nonces(1).unwrap_err();
        assert_eq!(err.code(), "ERR_COLDPAGE_UNSUPPORTED");
        assert!(err.to_string().contains("forked child"), "{err}");
    }
}
