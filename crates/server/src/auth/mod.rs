//! Authentication and scopes: JWT bearer tokens (HS256 with a shared secret, RS256/ES256 from a
//! JWKS), API keys from a file of SHA-256 hashes, or both. [`RequireScope`] is the route layer
//! each protected route group carries; it answers 401/403 per RFC 6750 and hands the
//! [`Principal`] to the handler and the access log. With nothing configured, auth is off.

mod apikeys;
mod cache;
mod jwks;
mod jwt;
mod layer;
pub mod openapi;
mod scope;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};

pub use apikeys::{KeyFileError, check_line, hash_line};
pub use layer::RequireScope;
pub use scope::{Scope, Scopes, WithoutExplain};

use crate::ApiError;

/// The realm in every `WWW-Authenticate` challenge.
const REALM: &str = "retail-api";

/// The header that carries an API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Longest principal name kept (the access log's `principal`); longer ones are cut.
const MAX_PRINCIPAL_CHARS: usize = 128;

/// Authentication settings (all off by default).
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// HS256 shared secret (`JWT_SECRET_KEY`).
    pub jwt_secret: Option<String>,
    /// JWKS URL for RS256/ES256 tokens (`JWT_JWKS_URL`).
    pub jwks_url: Option<String>,
    /// Required `iss` (`JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Accepted audiences: `aud`, or Cognito's `client_id` in access tokens (`JWT_AUDIENCE`).
    pub audience: Vec<String>,
    /// Accepted algorithms (`JWT_ALGORITHMS`); empty: those the configured keys can verify.
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf` (`JWT_LEEWAY_SECONDS`).
    pub leeway: Duration,
    /// Scopes of a token without a scope claim (`JWT_DEFAULT_SCOPES`).
    pub default_scopes: Scopes,
    /// How often the JWKS is fetched again (`JWT_JWKS_REFRESH_SECONDS`).
    pub jwks_refresh: Duration,
    /// Shortest time between two refetches caused by an unknown `kid` (`JWT_JWKS_MIN_REFETCH_SECONDS`).
    pub jwks_min_refetch: Duration,
    /// File of API keys (`API_KEYS_FILE`).
    pub api_keys_file: Option<PathBuf>,
    /// `/metrics` without credentials (`METRICS_PUBLIC`).
    pub metrics_public: bool,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<redacted>"))
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("algorithms", &self.algorithms)
            .field("api_keys_file", &self.api_keys_file)
            .field("metrics_public", &self.metrics_public)
            .finish_non_exhaustive()
    }
}

/// Why auth could not be set up (a configuration error: the server does not start).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `JWT_ALGORITHMS` names an algorithm that does not exist or that no configured key verifies.
    #[error("JWT_ALGORITHMS: {0}")]
    Algorithms(String),
    /// `JWT_JWKS_URL` is not usable.
    #[error("JWT_JWKS_URL {url}: {reason}")]
    JwksUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A JWT setting is set without a JWT key to check it with.
    #[error("{0} is set but neither JWT_SECRET_KEY nor JWT_JWKS_URL is")]
    WithoutKey(&'static str),
    /// The API key file cannot be read or parsed.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
}

/// Who made a request, once authenticated.
#[derive(Debug, Clone)]
pub struct Principal {
    name: Arc<str>,
    scopes: Scopes,
}

impl Principal {
    fn new(name: &str, scopes: Scopes) -> Self {
        let cut = name.char_indices().nth(MAX_PRINCIPAL_CHARS).map_or(name, |(i, _)| &name[..i]);
        Self { name: cut.into(), scopes }
    }

    /// The token's `sub` or the API key's name (at most 128 characters).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it may do.
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }
}

/// Why a credential was refused (the `reason` label of `retail_api_auth_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No credential at all.
    Missing,
    /// Not a JWT, an oversized one, a scheme other than Bearer, or a credential of a kind
    /// this server does not accept.
    Malformed,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is still to come (beyond the leeway).
    NotYetValid,
    /// The signature does not verify.
    BadSignature,
    /// An algorithm not accepted (`none`, HS/RS confusion, a key of another family).
    BadAlgorithm,
    /// `iss`, `aud`/`client_id` or `sub` wrong or missing.
    BadClaims,
    /// The token's `kid` is not in the JWKS (after the allowed refetch).
    UnknownKey,
    /// An API key not in the key file (unknown, or revoked by removing its line).
    RevokedKey,
    /// An API key past its `expires=`.
    ExpiredKey,
}

impl Failure {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::BadAlgorithm => "bad_algorithm",
            Self::BadClaims => "bad_claims",
            Self::UnknownKey => "unknown_key",
            Self::RevokedKey => "revoked_key",
            Self::ExpiredKey => "expired_key",
        }
    }

    /// What the caller is told: missing, expired or invalid, nothing more (no detail that helps
    /// an attacker; the metric and the log have the reason).
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "authentication required: send Authorization: Bearer <token> or X-API-Key: <key>",
            Self::Expired | Self::ExpiredKey => "the credential has expired",
            _ => "the credential is invalid",
        }
    }
}

/// The `WWW-Authenticate` challenge of an auth error (RFC 6750 §3), `None` for other errors.
pub fn challenge(error: &ApiError) -> Option<HeaderValue> {
    let value = match error {
        ApiError::Unauthorized(Failure::Missing) => format!("Bearer realm=\"{REALM}\""),
        ApiError::Unauthorized(failure) => {
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"", failure.message())
        }
        ApiError::InsufficientScope(scope) => format!(
            "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", error_description=\"the credential lacks the scope {scope}\", scope=\"{scope}\""
        ),
        _ => return None,
    };
    HeaderValue::from_str(&value).ok()
}

/// The configured authenticators; with none, every request is let through.
#[derive(Default)]
pub struct Auth {
    jwt: Option<jwt::JwtVerifier>,
    keys: Option<Arc<apikeys::KeyStore>>,
    metrics_public: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("jwt", &self.jwt.is_some())
            .field("api_keys", &self.keys.is_some())
            .field("metrics_public", &self.metrics_public)
            .finish()
    }
}

/// What checking a request's credential found.
enum Verdict<P = Principal> {
    Allowed(P),
    Denied(Failure),
    /// A well-formed token whose `kid` is not in the cached JWKS: worth one (rate-limited) refetch.
    UnknownKid,
}

impl Auth {
    /// Sets up what `config` asks for; reads the API key file once (a bad file is an error).
    pub fn new(config: &AuthConfig) -> Result<Self, SetupError> {
        let jwt = jwt::JwtVerifier::new(config)?;
        let keys = match &config.api_keys_file {
            Some(path) => Some(Arc::new(apikeys::KeyStore::load(path.clone())?)),
            None => None,
        };
        Ok(Self { jwt, keys, metrics_public: config.metrics_public })
    }

    /// Whether any credential is checked.
    pub fn is_enabled(&self) -> bool {
        self.jwt.is_some() || self.keys.is_some()
    }

    /// Whether routes needing `scope` check credentials: auth is on, and for `metrics:read`,
    /// `METRICS_PUBLIC` is unset.
    pub fn guards(&self, scope: Scope) -> bool {
        self.is_enabled() && !(scope == Scope::MetricsRead && self.metrics_public)
    }

    /// Fetches the JWKS once (a failure is logged: tokens are refused until a fetch succeeds),
    /// then refreshes it and re-reads the API key file in the background.
    pub async fn start(&self) {
        if let Some(jwks) = self.jwt.as_ref().and_then(jwt::JwtVerifier::jwks) {
            jwks.fetch_logged().await;
            tokio::spawn(jwks.clone().refresh_forever());
        }
        if let Some(keys) = &self.keys {
            tokio::spawn(keys.clone().watch());
        }
    }

    /// The principal behind a request's credential. `Authorization` comes first (a Bearer
    /// token); without it, `X-API-Key`.
    fn check(&self, headers: &HeaderMap) -> Verdict {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value.to_str().ok().and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
            return match (token, &self.jwt) {
                (Some(token), Some(jwt)) => jwt.verify(token),
                _ => Verdict::Denied(Failure::Malformed),
            };
        }
        if let Some(value) = headers.get(API_KEY_HEADER) {
            return match (value.to_str(), &self.keys) {
                (Ok(key), Some(keys)) => keys.check(key.trim()).map_or_else(Verdict::Denied, Verdict::Allowed),
                _ => Verdict::Denied(Failure::Malformed),
            };
        }
        Verdict::Denied(Failure::Missing)
    }

    /// [`Auth::check`], after one rate-limited JWKS refetch for a token with an unknown `kid`.
    async fn check_after_refetch(&self, headers: &HeaderMap) -> Verdict {
        if let Some(jwks) = self.jwt.as_ref().and_then(jwt::JwtVerifier::jwks) {
            jwks.refetch_for_unknown_kid().await;
        }
        match self.check(headers) {
            Verdict::UnknownKid => Verdict::Denied(Failure::UnknownKey),
            verdict => verdict,
        }
    }
}
