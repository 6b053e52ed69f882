//! Replay protection: a signature nonce may be used once per AccessKey within the timestamp
//! window. Kept in memory on a single node; entries expire after twice the window (a request
//! dated at the window's edge can arrive until the other edge).

use std::collections::HashMap;
use std::sync::Mutex;

/// Nonces seen recently, with the time (ms) after which each may be forgotten.
#[derive(Default)]
pub struct NonceCache {
    seen: Mutex<HashMap<String, i64>>,
}

impl NonceCache {
    /// Records `nonce` for `access_key_id`; false when it was already used and has not expired.
    pub fn first_use(&self, access_key_id: &str, nonce: &str, now_ms: i64, keep_ms: i64) -> bool {
        let mut seen = self.seen.lock().expect("nonce cache lock");
        if seen.len() >= 4096 && seen.len().is_power_of_two() {
            seen.retain(|_, expires| *expires > now_ms);
        }
        let key = format!("{access_key_id}\n{nonce}");
        match seen.get(&key) {
            Some(expires) if *expires > now_ms => false,
            _ => {
                seen.insert(key, now_ms + keep_ms);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_nonce_is_accepted_once_per_key_until_it_expires() {
        let cache = super::NonceCache::default();
        assert!(cache.first_use("AK", "n1", 0, 100));
        assert!(!cache.first_use("AK", "n1", 50, 100));
        assert!(cache.first_use("AK2", "n1", 50, 100));
        assert!(cache.first_use("AK", "n1", 101, 100));
    }
}
