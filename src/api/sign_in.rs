//! Throttling of failed console sign-ins, per AccessKey ID and per client address, in memory on
//! each node. Every failure takes a token from both buckets; while either is empty, sign-ins for
//! that key or from that address are refused with 429 before the secret is looked at (so guessing
//! gains nothing), and a success forgets the key's failures. The per-address allowance is larger:
//! one person mistyping their own key does not lock out others sharing an address (a proxy, an
//! office), while one address trying many keys is still slowed. Both maps are bounded.

use std::net::IpAddr;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::limits::TokenBuckets;

/// Failures allowed in a row for one AccessKey ID, then one more per [`KEY_REFILL_SECONDS`].
pub const KEY_BURST: u32 = 5;
/// Seconds for one AccessKey ID to earn another attempt.
pub const KEY_REFILL_SECONDS: f64 = 60.0;
/// Failures allowed in a row from one client address, then one more per [`ADDRESS_REFILL_SECONDS`].
pub const ADDRESS_BURST: u32 = 20;
/// Seconds for one address to earn another attempt.
pub const ADDRESS_REFILL_SECONDS: f64 = 15.0;
/// Keys and addresses tracked at most (each); the least recently failing is forgotten first.
pub const MAX_TRACKED: usize = 10_000;

/// What refused a sign-in, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Too many failures for this AccessKey ID.
    AccessKey(u64),
    /// Too many failures from this address.
    Address(u64),
}

impl Throttled {
    /// Seconds until another attempt is allowed.
    pub fn retry_after(self) -> u64 {
        match self {
            Throttled::AccessKey(s) | Throttled::Address(s) => s,
        }
    }
}

/// The failure buckets of one node.
pub struct SignInThrottle {
    keys: TokenBuckets<[u8; 32]>,
    addresses: TokenBuckets<IpAddr>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        SignInThrottle {
            keys: TokenBuckets::new(1.0 / KEY_REFILL_SECONDS, KEY_BURST, MAX_TRACKED),
            addresses: TokenBuckets::new(1.0 / ADDRESS_REFILL_SECONDS, ADDRESS_BURST, MAX_TRACKED),
        }
    }
}

/// An AccessKey ID as tracked: its digest (any length typed into the form costs 32 bytes).
fn key_of(access_key_id: &str) -> [u8; 32] {
    Sha256::digest(access_key_id.as_bytes()).into()
}

impl SignInThrottle {
    /// Whether a sign-in for `access_key_id` from `address` must wait at `now`.
    pub fn check(&self, access_key_id: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        if let Some(wait) = self.keys.empty_for(&key_of(access_key_id), now) {
            return Err(Throttled::AccessKey(wait));
        }
        match address.and_then(|a| self.addresses.empty_for(&a, now)) {
            Some(wait) => Err(Throttled::Address(wait)),
            None => Ok(()),
        }
    }

    /// Records a failed sign-in.
    pub fn failed(&self, access_key_id: &str, address: Option<IpAddr>, now: Instant) {
        let _ = self.keys.take(key_of(access_key_id), now);
        if let Some(address) = address {
            let _ = self.addresses.take(address, now);
        }
    }

    /// Records a successful sign-in: the key's failures are forgotten (not the address's).
    pub fn succeeded(&self, access_key_id: &str) {
        self.keys.forget(&key_of(access_key_id));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn failures_throttle_the_key_then_the_address() {
        let throttle = SignInThrottle::default();
        let here: Option<IpAddr> = Some([192, 0, 2, 1].into());
        let t0 = Instant::now();
        for _ in 0..KEY_BURST {
            assert_eq!(throttle.check("LTAIa", here, t0), Ok(()));
            throttle.failed("LTAIa", here, t0);
        }
        assert_eq!(throttle.check("LTAIa", here, t0), Err(Throttled::AccessKey(60)));
        assert_eq!(throttle.check("LTAIa", None, t0), Err(Throttled::AccessKey(60)), "from anywhere");
        // Another key from the same address still gets in; a minute later the key has one attempt.
        assert_eq!(throttle.check("LTAIb", here, t0), Ok(()));
        assert_eq!(throttle.check("LTAIa", here, t0 + Duration::from_secs(60)), Ok(()));
        // Failures with many keys from one address exhaust the address.
        for n in 0..ADDRESS_BURST - KEY_BURST {
            throttle.failed(&format!("LTAI{n}"), here, t0);
        }
        assert_eq!(throttle.check("LTAIc", here, t0), Err(Throttled::Address(15)));
        assert_eq!(throttle.check("LTAIc", Some([192, 0, 2, 2].into()), t0), Ok(()));
    }

    #[test]
    fn a_success_forgets_the_keys_failures() {
        let throttle = SignInThrottle::default();
        let t0 = Instant::now();
        for _ in 0..KEY_BURST {
            throttle.failed("LTAIa", None, t0);
        }
        assert!(throttle.check("LTAIa", None, t0).is_err());
        throttle.succeeded("LTAIa");
        assert_eq!(throttle.check("LTAIa", None, t0), Ok(()));
    }
}
