//! Hashing helpers: the SHA-256 fingerprints selfmon persists, and the fast non-cryptographic
//! hasher of its in-memory maps.

use sha2::{Digest as _, Sha256};

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A `HashMap` with the Fx hasher (`rustc-hash`): fast and deterministic, not DoS resistant. Used
/// only for in-memory maps whose keys are bounded by caps; iteration order is never relied on.
pub type FxMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// A `HashSet` with the Fx hasher; see [`FxMap`].
pub type FxSet<T> = rustc_hash::FxHashSet<T>;

/// The Fx hasher itself, for hashing a composite key by hand.
pub use rustc_hash::FxHasher;
