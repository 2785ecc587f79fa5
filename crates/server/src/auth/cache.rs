//! Tokens already verified, so a client that sends the same token on every request pays for the
//! signature and claim checks once (what `docs/benchmarks.md` measured: the checks cost about
//! half a `/predict`; a hit costs a SHA-256 of the token and a map lookup). Entries are keyed by
//! the SHA-256 of the whole token (an exact match, compared as digests), keep `exp`/`nbf` and are
//! checked against them on every hit, and belong to one generation of the JWKS: a refetch that
//! changes the keys retires them. Bounded: a full cache is emptied and refills.

use std::collections::HashMap;
use std::sync::RwLock;

use sha2::{Digest, Sha256};

use super::Principal;

/// Most tokens remembered.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    principal: Principal,
    exp: u64,
    nbf: Option<u64>,
    generation: u64,
}

/// Verified tokens, by the SHA-256 of the token.
#[derive(Default)]
pub(super) struct VerifiedTokens {
    map: RwLock<HashMap<[u8; 32], Entry>>,
}

/// A token's cache key.
pub(super) fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedTokens {
    /// The principal of a token verified before, if it is still within `exp` and `nbf` (with
    /// `leeway` seconds) at `now` and was verified with keys of `generation`.
    pub(super) fn get(&self, key: &[u8; 32], now: u64, leeway: u64, generation: u64) -> Option<Principal> {
        let map = self.map.read().ok()?;
        let entry = map.get(key)?;
        let timely = now <= entry.exp.saturating_add(leeway) && entry.nbf.is_none_or(|nbf| nbf <= now + leeway);
        (timely && entry.generation == generation).then(|| entry.principal.clone())
    }

    /// Remembers a verified token.
    pub(super) fn insert(&self, key: [u8; 32], principal: Principal, exp: u64, nbf: Option<u64>, generation: u64) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, Entry { principal, exp, nbf, generation });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scopes;

    #[test]
    fn hits_only_within_exp_nbf_and_the_key_generation() {
        let cache = VerifiedTokens::default();
        let k = key("a.b.c");
        cache.insert(k, Principal::new("alice", Scopes::NONE), 1000, Some(500), 1);
        assert_eq!(cache.get(&k, 900, 30, 1).map(|p| p.name().to_owned()).as_deref(), Some("alice"));
        assert!(cache.get(&k, 1029, 30, 1).is_some(), "within the leeway");
        assert!(cache.get(&k, 1031, 30, 1).is_none(), "expired");
        assert!(cache.get(&k, 400, 30, 1).is_none(), "not yet valid");
        assert!(cache.get(&k, 900, 30, 2).is_none(), "the JWKS changed");
        assert!(cache.get(&key("a.b.d"), 900, 30, 1).is_none(), "another token");
    }
}
