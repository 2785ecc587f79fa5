//! Request ids: a caller's `x-request-id` is kept when it is short and plain (safe in logs and
//! headers), otherwise replaced by a fresh, unpredictable one. tower-http's request-id layers set
//! and echo the header; handlers read it with the [`RequestId`] extractor.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use tower_http::request_id::MakeRequestId;

/// The request id header.
pub const HEADER: &str = "x-request-id";

/// The request's id, for handlers that put it in their answer.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(id_of(parts.extensions.get()).to_owned()))
    }
}

/// The id tower-http's layer recorded, as text (empty outside the stack).
pub fn id_of(id: Option<&tower_http::request_id::RequestId>) -> &str {
    id.and_then(|id| id.header_value().to_str().ok()).unwrap_or_default()
}

/// Makes fresh ids: a per-process random key hashed with a counter (128 bits of hex).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fresh;

impl MakeRequestId for Fresh {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<tower_http::request_id::RequestId> {
        HeaderValue::from_bytes(&new_request_id()).ok().map(tower_http::request_id::RequestId::new)
    }
}

/// 32 lowercase hex digits, written without a `String`.
fn new_request_id() -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: OnceLock<(RandomState, RandomState)> = OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hash = |keys: &RandomState| {
        let mut h = keys.build_hasher();
        h.write_u64(n);
        h.finish()
    };
    let words = [hash(a), hash(b)];
    let mut id = [0u8; 32];
    for (i, digit) in id.iter_mut().enumerate() {
        let nibble = (words[i / 16] >> (60 - 4 * (i % 16))) & 0xf;
        *digit = b"0123456789abcdef"[usize::try_from(nibble).unwrap_or(0)];
    }
    id
}

/// Drops a caller's id that is not short and plain, so a fresh one is made.
pub fn drop_unsafe_id(mut request: Request) -> Request {
    if request.headers().get(HEADER).is_some_and(|v| !is_plain(v)) {
        request.headers_mut().remove(HEADER);
    }
    request
}

fn is_plain(value: &HeaderValue) -> bool {
    let s = value.as_bytes();
    !s.is_empty() && s.len() <= 128 && s.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_callers_ids_are_checked() {
        let a = new_request_id();
        assert!(a.iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, new_request_id());
        assert!(is_plain(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!is_plain(&HeaderValue::from_static("bad id")));
        assert!(!is_plain(&HeaderValue::from_str(&"x".repeat(129)).expect("header")));
        assert!(!is_plain(&HeaderValue::from_static("")));
    }
}
