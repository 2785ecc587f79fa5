//! The JWKS cache: fetched at start, refreshed in the background, and fetched again when a
//! token names an unknown `kid` — at most once per `JWT_JWKS_MIN_REFETCH_SECONDS`, so forged
//! `kid`s cannot make the server hammer the identity provider. While the endpoint is down the
//! cached keys keep serving. At most [`MAX_KEYS`] keys and [`MAX_JWKS_BYTES`] bytes are kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use sha2::Digest;

use super::{AuthConfig, SetupError};

/// Most keys kept from a JWKS (identity providers publish two or three).
const MAX_KEYS: usize = 32;

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// One verification key.
struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: AlgorithmFamily,
    key: DecodingKey,
}

/// The keys of one fetch.
#[derive(Default)]
pub(super) struct KeySet(Vec<Key>);

/// What looking a token's key up found.
pub(super) enum Lookup<'a> {
    Found(&'a DecodingKey),
    /// The key exists but is not for this algorithm (family or its `alg`).
    WrongAlgorithm,
    Unknown,
    /// No `kid` and several keys.
    Ambiguous,
}

impl KeySet {
    /// The key for `kid` (without a `kid`: the only key, if there is one) usable with `alg`.
    pub(super) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        let key = match kid {
            Some(kid) => self.0.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.0.len() > 1 => return Lookup::Ambiguous,
            None => self.0.first(),
        };
        match key {
            None => Lookup::Unknown,
            Some(k) if k.family != alg.family() || k.alg.is_some_and(|a| a != alg) => Lookup::WrongAlgorithm,
            Some(k) => Lookup::Found(&k.key),
        }
    }
}

/// A JWKS endpoint and its cached keys.
pub(super) struct Jwks {
    url: reqwest::Url,
    client: reqwest::Client,
    keys: ArcSwap<KeySet>,
    /// Counts the key sets fetched (the token cache's entries belong to one).
    generation: std::sync::atomic::AtomicU64,
    /// SHA-256 of the last document fetched.
    last_document: std::sync::Mutex<[u8; 32]>,
    algorithms: Vec<Algorithm>,
    refresh: Duration,
    min_refetch: Duration,
    /// When an unknown `kid` last caused a fetch.
    last_kid_refetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    /// A cache for `url` (https, or http to a loopback address), empty until the first fetch.
    pub(super) fn new(
        url: &str,
        config: &AuthConfig,
        algorithms: &[Algorithm],
        timeout: Duration,
    ) -> Result<Self, SetupError> {
        let error = |reason: &str| SetupError::JwksUrl { url: url.to_owned(), reason: reason.to_owned() };
        let parsed = reqwest::Url::parse(url).map_err(|e| error(&e.to_string()))?;
        let loopback = match parsed.host_str() {
            Some("localhost") => true,
            Some(host) => host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        if !(parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback)) {
            return Err(error("must be https:// (plain http:// only to a loopback address)"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| error(&e.to_string()))?;
        Ok(Self {
            url: parsed,
            client,
            keys: ArcSwap::default(),
            generation: std::sync::atomic::AtomicU64::new(0),
            last_document: std::sync::Mutex::new([0; 32]),
            algorithms: algorithms.to_vec(),
            refresh: config.jwks_refresh,
            min_refetch: config.jwks_min_refetch,
            last_kid_refetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The cached keys.
    pub(super) fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Which fetch the cached keys come from.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Fetches the JWKS and caches its keys; on failure the cached keys stay.
    async fn fetch(&self) -> Result<usize, String> {
        let mut response = self.client.get(self.url.clone()).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse(&body, &self.algorithms)?;
        let n = keys.0.len();
        // Verified tokens are kept across a refresh that serves the same document.
        let digest: [u8; 32] = sha2::Sha256::digest(&body).into();
        let mut last = self.last_document.lock().map_err(|_| "poisoned lock".to_owned())?;
        if *last != digest {
            *last = digest;
            self.keys.store(Arc::new(keys));
            self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        Ok(n)
    }

    /// [`Jwks::fetch`], logging the outcome; whether it succeeded.
    pub(super) async fn fetch_logged(&self) -> bool {
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys, "JWKS fetched");
                true
            }
            Err(error) => {
                tracing::warn!(url = %self.url, %error, "JWKS fetch failed; keeping the cached keys");
                false
            }
        }
    }

    /// Fetches again for a token with an unknown `kid`, unless an unknown `kid` already caused a
    /// fetch within the minimum interval. Concurrent callers wait for one fetch.
    pub(super) async fn refetch_for_unknown_kid(&self) {
        let mut last = self.last_kid_refetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return;
        }
        *last = Some(Instant::now());
        self.fetch_logged().await;
    }

    /// Refreshes every `JWT_JWKS_REFRESH_SECONDS`; after a failure, retries at the minimum
    /// refetch interval.
    pub(super) async fn refresh_forever(self: Arc<Self>) {
        let mut ok = !self.keys().0.is_empty();
        loop {
            let wait = if ok { self.refresh } else { self.min_refetch.max(Duration::from_secs(1)) };
            tokio::time::sleep(wait).await;
            ok = self.fetch_logged().await;
        }
    }
}

/// The signing keys of a JWKS document usable with `algorithms` (others are skipped: `oct`
/// secrets, encryption keys, unknown key types), at most [`MAX_KEYS`].
fn parse(body: &[u8], algorithms: &[Algorithm]) -> Result<KeySet, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let alg = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        let family = key.family();
        let usable = family != AlgorithmFamily::Hmac
            && algorithms.iter().any(|a| a.family() == family && alg.is_none_or(|k| k == *a));
        if !usable {
            continue;
        }
        if keys.len() == MAX_KEYS {
            tracing::warn!(max = MAX_KEYS, "JWKS has more keys than kept; the rest are ignored");
            break;
        }
        keys.push(Key { kid: jwk.common.key_id, alg, family, key });
    }
    if keys.is_empty() {
        return Err("no usable signing key".to_owned());
    }
    Ok(KeySet(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = r#"{"kty":"RSA","kid":"r1","alg":"RS256","use":"sig","n":"nX5zBgC9tyO7h1dyXhmrNZsxN4jrUH9bNUpxFLCaXrfYe7XKsTKpuNIcgcbEJfgU5uP05asABfxdFVE7suMtfe9THtg0Vmijdffig_CtJwSKYWMLxiBMf6q-mN2vpAAD9PLzh8sYlMs2_OCGOp4L4Y2qBBdJ4IbqbM15yr_uKYSU5po5MyfxwJWyNXI_RE00oUYOlAr1abLrd-BHBxeBWdl3pl8qVzVzil9CI0PIif2I_5HCR7CrKnVFz-D0hcIsAut-PIwqMUvA5Kc_va0_Z9M4X6_cdegxV51PtgXoDBhP5uZ02Et5sTBhIBaAwroF0vX1teedjiq4qFvzEH-MRw","e":"AQAB"}"#;
    const OCT: &str = r#"{"kty":"oct","kid":"s","k":"c2VjcmV0"}"#;

    #[test]
    fn only_signing_keys_for_the_accepted_algorithms_are_kept() {
        let body = format!(r#"{{"keys":[{RSA},{OCT},{{"kty":"weird"}}]}}"#);
        let keys = parse(body.as_bytes(), &[Algorithm::RS256, Algorithm::ES256]).expect("jwks");
        assert_eq!(keys.0.len(), 1, "the oct secret and the unknown key type are skipped");
        assert!(matches!(keys.find(Some("r1"), Algorithm::RS256), Lookup::Found(_)));
        assert!(matches!(keys.find(Some("r1"), Algorithm::RS384), Lookup::WrongAlgorithm));
        assert!(matches!(keys.find(Some("r1"), Algorithm::ES256), Lookup::WrongAlgorithm));
        assert!(matches!(keys.find(Some("r2"), Algorithm::RS256), Lookup::Unknown));
        assert!(matches!(keys.find(None, Algorithm::RS256), Lookup::Found(_)));
        assert!(parse(format!(r#"{{"keys":[{OCT}]}}"#).as_bytes(), &[Algorithm::RS256]).is_err());
        assert!(parse(b"not json", &[Algorithm::RS256]).is_err());
    }

    #[test]
    fn at_most_max_keys_are_kept() {
        let many: Vec<String> = (0..MAX_KEYS + 5).map(|i| RSA.replace("\"r1\"", &format!("\"k{i}\""))).collect();
        let body = format!(r#"{{"keys":[{}]}}"#, many.join(","));
        assert_eq!(parse(body.as_bytes(), &[Algorithm::RS256]).expect("jwks").0.len(), MAX_KEYS);
    }
}
