//! JWT bearer tokens, checked with the `jsonwebtoken` crate: the algorithm pinned to the
//! configured list and to the key's family (RFC 8725: no `none`, no HS/RS confusion), `exp` and
//! `nbf` with leeway, `sub` required, `iss` and the audience when configured. The audience is
//! `aud`, or `client_id` in an Amazon Cognito access token (`token_use: "access"`), which has no
//! `aud`.

use std::str::FromStr;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;

use super::cache::{self, VerifiedTokens};
use super::jwks::{Jwks, Lookup};
use super::{AuthConfig, Failure, Principal, Scopes, SetupError, Verdict};

/// Longest token accepted; real ones are a few hundred bytes to a few KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How long a JWKS fetch may take.
const JWKS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks bearer tokens against a shared secret, a JWKS, or both.
pub(super) struct JwtVerifier {
    secret: Option<DecodingKey>,
    jwks: Option<Arc<Jwks>>,
    /// One validation per accepted algorithm: the library requires every algorithm of a
    /// validation to be of the key's family, and one algorithm each pins it exactly.
    validations: Vec<(Algorithm, Validation)>,
    audience: Vec<String>,
    default_scopes: Scopes,
    leeway: u64,
    verified: VerifiedTokens,
}

impl JwtVerifier {
    /// The verifier `config` asks for, `None` when it names no JWT key.
    pub(super) fn new(config: &AuthConfig) -> Result<Option<Self>, SetupError> {
        let secret = config.jwt_secret.as_deref().filter(|s| !s.is_empty());
        let jwks_url = config.jwks_url.as_deref().filter(|s| !s.is_empty());
        if secret.is_none() && jwks_url.is_none() {
            for (set, name) in [
                (config.issuer.is_some(), "JWT_ISSUER"),
                (!config.audience.is_empty(), "JWT_AUDIENCE"),
                (!config.algorithms.is_empty(), "JWT_ALGORITHMS"),
            ] {
                if set {
                    return Err(SetupError::WithoutKey(name));
                }
            }
            return Ok(None);
        }
        let algorithms = algorithms(&config.algorithms, secret.is_some(), jwks_url.is_some())?;
        if secret.is_some_and(|s| s.len() < 32) {
            tracing::warn!("JWT_SECRET_KEY is shorter than 32 bytes: HS256 needs at least 256 bits (RFC 7518 §3.2)");
        }
        let secret = match secret {
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes()).map_err(|e| SetupError::Algorithms(e.to_string()))?),
            None => None,
        };
        let jwks = match jwks_url {
            Some(url) => Some(Arc::new(Jwks::new(url, config, &algorithms, JWKS_TIMEOUT)?)),
            None => None,
        };
        let validations = algorithms.iter().map(|&alg| (alg, validation(alg, config))).collect();
        let audience = config.audience.iter().filter(|a| !a.is_empty()).cloned().collect();
        Ok(Some(Self {
            secret,
            jwks,
            validations,
            audience,
            default_scopes: config.default_scopes,
            leeway: config.leeway.as_secs(),
            verified: VerifiedTokens::default(),
        }))
    }

    /// The JWKS cache, when tokens are checked against one.
    pub(super) fn jwks(&self) -> Option<&Arc<Jwks>> {
        self.jwks.as_ref()
    }
}

/// The checks for tokens signed with `alg`.
fn validation(alg: Algorithm, config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = config.leeway.as_secs();
    validation.validate_nbf = true;
    // The audience (aud or Cognito's client_id) is checked in `principal`.
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    if let Some(issuer) = config.issuer.as_deref().filter(|i| !i.is_empty()) {
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims.insert("iss".to_owned());
    }
    validation
}

impl JwtVerifier {
    /// Checks one token: from the cache of verified tokens, else in full.
    pub(super) fn verify(&self, token: &str) -> Verdict {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Verdict::Denied(Failure::Malformed);
        }
        let key = cache::key(token);
        let now = jsonwebtoken::get_current_timestamp();
        let generation = self.jwks.as_ref().map_or(0, |j| j.generation());
        if let Some(principal) = self.verified.get(&key, now, self.leeway, generation) {
            return Verdict::Allowed(principal);
        }
        match self.verify_fully(token) {
            Verdict::Allowed((principal, exp, nbf)) => {
                self.verified.insert(key, principal.clone(), exp, nbf, generation);
                Verdict::Allowed(principal)
            }
            Verdict::Denied(failure) => Verdict::Denied(failure),
            Verdict::UnknownKid => Verdict::UnknownKid,
        }
    }

    /// Checks one token's signature and claims; the principal with `exp` and `nbf`.
    fn verify_fully(&self, token: &str) -> Verdict<(Principal, u64, Option<u64>)> {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Verdict::Denied(Failure::Malformed);
        };
        let Some((_, validation)) = self.validations.iter().find(|(alg, _)| *alg == header.alg) else {
            return Verdict::Denied(Failure::BadAlgorithm);
        };
        let keys;
        let key = match (header.alg.family(), &self.secret, &self.jwks) {
            (AlgorithmFamily::Hmac, Some(secret), _) => secret,
            (AlgorithmFamily::Hmac, None, _) | (_, _, None) => return Verdict::Denied(Failure::BadAlgorithm),
            (_, _, Some(jwks)) => {
                keys = jwks.keys();
                match keys.find(header.kid.as_deref(), header.alg) {
                    Lookup::Found(key) => key,
                    Lookup::WrongAlgorithm => return Verdict::Denied(Failure::BadAlgorithm),
                    Lookup::Unknown => return Verdict::UnknownKid,
                    Lookup::Ambiguous => return Verdict::Denied(Failure::UnknownKey),
                }
            }
        };
        match jsonwebtoken::decode::<Claims>(token, key, validation) {
            Ok(data) => {
                // The library has checked both are finite, non-negative numbers (`exp` present).
                let (exp, nbf) = (data.claims.exp.map_or(0, |e| e as u64), data.claims.nbf.map(|n| n as u64));
                match principal(data.claims, &self.audience, self.default_scopes) {
                    Ok(p) => Verdict::Allowed((p, exp, nbf)),
                    Err(failure) => Verdict::Denied(failure),
                }
            }
            Err(e) => Verdict::Denied(failure(e.kind())),
        }
    }
}

/// The accepted algorithms: those configured (each must be verifiable by a configured key), or
/// by default HS256 with a secret and RS256 + ES256 with a JWKS.
fn algorithms(configured: &[String], secret: bool, jwks: bool) -> Result<Vec<Algorithm>, SetupError> {
    if configured.is_empty() {
        let mut defaults = Vec::new();
        if secret {
            defaults.push(Algorithm::HS256);
        }
        if jwks {
            defaults.extend([Algorithm::RS256, Algorithm::ES256]);
        }
        return Ok(defaults);
    }
    configured
        .iter()
        .map(|name| {
            let alg = Algorithm::from_str(name.trim())
                .map_err(|_| SetupError::Algorithms(format!("unknown algorithm {name:?} (none is never accepted)")))?;
            let verifiable = match alg.family() {
                AlgorithmFamily::Hmac => secret,
                _ => jwks,
            };
            if verifiable {
                Ok(alg)
            } else {
                let key = if alg.family() == AlgorithmFamily::Hmac { "JWT_SECRET_KEY" } else { "JWT_JWKS_URL" };
                Err(SetupError::Algorithms(format!("{name} needs {key}")))
            }
        })
        .collect()
}

/// The failure a `jsonwebtoken` error stands for.
fn failure(kind: &ErrorKind) -> Failure {
    match kind {
        ErrorKind::ExpiredSignature => Failure::Expired,
        ErrorKind::ImmatureSignature => Failure::NotYetValid,
        ErrorKind::InvalidSignature => Failure::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey => Failure::BadAlgorithm,
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::InvalidIssuer
        | ErrorKind::InvalidAudience
        | ErrorKind::InvalidSubject => Failure::BadClaims,
        _ => Failure::Malformed,
    }
}

/// A string or an array of strings (`aud`, `scp`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            Self::One(s) => (Some(s), &[]),
            Self::Many(v) => (None, v),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

/// The claims this server reads (the library has checked `exp`, `nbf`, `iss` and that `sub` is
/// a string).
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
    aud: Option<OneOrMany>,
    client_id: Option<String>,
    token_use: Option<String>,
    scope: Option<String>,
    scp: Option<OneOrMany>,
}

/// The principal a verified token names: `sub` not empty, the audience matched when configured,
/// scopes from `scope` (space-separated) or `scp` (string or array), else the defaults.
pub(super) fn principal(claims: Claims, audience: &[String], defaults: Scopes) -> Result<Principal, Failure> {
    let sub = claims.sub.as_deref().filter(|s| !s.is_empty()).ok_or(Failure::BadClaims)?;
    if !audience.is_empty() {
        let by_aud = claims.aud.as_ref().is_some_and(|aud| aud.iter().any(|a| audience.iter().any(|x| x == a)));
        let by_client = claims.token_use.as_deref() == Some("access")
            && claims.client_id.as_ref().is_some_and(|c| audience.contains(c));
        if !(by_aud || by_client) {
            return Err(Failure::BadClaims);
        }
    }
    let scopes = match (&claims.scope, &claims.scp) {
        (Some(scope), _) => Scopes::from_words(scope.split_whitespace()),
        (None, Some(OneOrMany::One(scp))) => Scopes::from_words(scp.split_whitespace()),
        (None, Some(many)) => Scopes::from_words(many.iter()),
        (None, None) => defaults,
    };
    Ok(Principal::new(sub, scopes))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::Scope;

    fn claims(value: serde_json::Value) -> Claims {
        serde_json::from_value(value).expect("claims")
    }

    fn defaults() -> Scopes {
        Scopes::parse_list("predict model:read").expect("defaults")
    }

    #[test]
    fn sub_is_required_and_not_empty() {
        assert_eq!(principal(claims(json!({})), &[], defaults()).err(), Some(Failure::BadClaims));
        assert_eq!(principal(claims(json!({"sub": ""})), &[], defaults()).err(), Some(Failure::BadClaims));
        let p = principal(claims(json!({"sub": "alice"})), &[], defaults()).expect("alice");
        assert_eq!((p.name(), p.scopes()), ("alice", defaults()));
    }

    #[test]
    fn audience_matches_aud_or_a_cognito_access_token_client_id() {
        let aud = ["api".to_owned()];
        let ok = |v| principal(claims(v), &aud, defaults()).is_ok();
        assert!(ok(json!({"sub": "a", "aud": "api"})));
        assert!(ok(json!({"sub": "a", "aud": ["other", "api"]})));
        assert!(!ok(json!({"sub": "a", "aud": "other"})));
        assert!(!ok(json!({"sub": "a"})));
        assert!(ok(json!({"sub": "a", "client_id": "api", "token_use": "access"})));
        assert!(!ok(json!({"sub": "a", "client_id": "api", "token_use": "id"})));
        assert!(!ok(json!({"sub": "a", "client_id": "api"})));
        // Without a configured audience, any aud passes.
        assert!(principal(claims(json!({"sub": "a", "aud": "x"})), &[], defaults()).is_ok());
    }

    #[test]
    fn scopes_come_from_scope_or_scp_else_the_defaults() {
        let scopes = |v| principal(claims(v), &[], defaults()).expect("principal").scopes();
        assert_eq!(scopes(json!({"sub": "a", "scope": "metrics:read"})).to_string(), "metrics:read");
        assert_eq!(scopes(json!({"sub": "a", "scp": "predict"})).to_string(), "predict");
        assert_eq!(scopes(json!({"sub": "a", "scp": ["predict", "x"]})).to_string(), "predict");
        assert_eq!(scopes(json!({"sub": "a", "scope": "retail-api/predict"})).to_string(), "predict");
        assert!(scopes(json!({"sub": "a", "scope": ""})).is_empty());
        assert_eq!(scopes(json!({"sub": "a"})), defaults());
        let none = principal(claims(json!({"sub": "a"})), &[], Scopes::NONE).expect("p");
        assert!(!none.scopes().contains(Scope::Predict));
    }

    #[test]
    fn algorithms_are_pinned_to_the_configured_keys() {
        assert_eq!(algorithms(&[], true, false).expect("hs"), [Algorithm::HS256]);
        assert_eq!(algorithms(&[], false, true).expect("jwks"), [Algorithm::RS256, Algorithm::ES256]);
        assert!(algorithms(&["none".into()], true, true).is_err());
        assert!(algorithms(&["HS256".into()], false, true).is_err(), "HS256 without a secret");
        assert!(algorithms(&["RS256".into()], true, false).is_err(), "RS256 without a JWKS");
        assert_eq!(algorithms(&["ES384".into()], false, true).expect("es384"), [Algorithm::ES384]);
    }

    #[test]
    fn library_errors_map_to_closed_reasons() {
        assert_eq!(failure(&ErrorKind::ExpiredSignature), Failure::Expired);
        assert_eq!(failure(&ErrorKind::ImmatureSignature), Failure::NotYetValid);
        assert_eq!(failure(&ErrorKind::InvalidSignature), Failure::BadSignature);
        assert_eq!(failure(&ErrorKind::InvalidIssuer), Failure::BadClaims);
        assert_eq!(failure(&ErrorKind::InvalidToken), Failure::Malformed);
    }
}
