//! Auth settings of `serve` (flags and environment), `retail-api token` (mint an HS256 token with
//! `JWT_SECRET_KEY`) and `retail-api apikey new` (a random key and its key-file line).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use retail_server::auth::{Auth, AuthConfig, Scopes};

/// Authentication flags of `serve`. Auth is on as soon as a JWT secret, a JWKS URL or an API
/// key file is set.
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// HS256 secret for bearer tokens (the seed's; at least 32 bytes).
    #[arg(long, env = "JWT_SECRET_KEY", hide_env_values = true)]
    jwt_secret_key: Option<String>,
    /// JWKS URL for RS256/ES256 bearer tokens (https; e.g. Cognito's
    /// https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json).
    #[arg(long, env = "JWT_JWKS_URL")]
    jwt_jwks_url: Option<String>,
    /// Required token issuer (`iss`).
    #[arg(long, env = "JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Accepted audiences, comma-separated: the token's `aud`, or `client_id` of a Cognito access token.
    #[arg(long, env = "JWT_AUDIENCE", value_delimiter = ',')]
    jwt_audience: Vec<String>,
    /// Accepted algorithms, comma-separated (default: HS256 with a secret, RS256 and ES256 with a JWKS).
    #[arg(long, env = "JWT_ALGORITHMS", value_delimiter = ',')]
    jwt_algorithms: Vec<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[arg(long, env = "JWT_LEEWAY_SECONDS", default_value_t = 30)]
    jwt_leeway_seconds: u64,
    /// Scopes of a token that has no `scope`/`scp` claim (empty: such tokens get none).
    #[arg(long, env = "JWT_DEFAULT_SCOPES", default_value = "predict model:read")]
    jwt_default_scopes: String,
    /// Seconds between background JWKS refreshes.
    #[arg(long, env = "JWT_JWKS_REFRESH_SECONDS", default_value_t = 300)]
    jwt_jwks_refresh_seconds: u64,
    /// A token with an unknown `kid` refetches the JWKS at most this often (seconds).
    #[arg(long, env = "JWT_JWKS_MIN_REFETCH_SECONDS", default_value_t = 30)]
    jwt_jwks_min_refetch_seconds: u64,
    /// File of API keys (`name sha256:<hex> scopes=a,b [expires=RFC3339]` a line), re-read when it changes.
    #[arg(long, env = "API_KEYS_FILE")]
    api_keys_file: Option<PathBuf>,
    /// Serve `/metrics` without credentials even when auth is on (for in-cluster Prometheus).
    #[arg(long, env = "METRICS_PUBLIC", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    metrics_public: bool,
}

impl AuthArgs {
    /// The checked settings, and the authenticators they ask for.
    pub fn auth(&self) -> anyhow::Result<Auth> {
        if self.jwt_jwks_refresh_seconds == 0 {
            bail!("--jwt-jwks-refresh-seconds must be positive");
        }
        let config = AuthConfig {
            jwt_secret: self.jwt_secret_key.clone().filter(|s| !s.is_empty()),
            jwks_url: self.jwt_jwks_url.clone().filter(|s| !s.is_empty()),
            issuer: self.jwt_issuer.clone().filter(|s| !s.is_empty()),
            audience: self.jwt_audience.iter().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect(),
            algorithms: self.jwt_algorithms.iter().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect(),
            leeway: Duration::from_secs(self.jwt_leeway_seconds),
            default_scopes: Scopes::parse_list(&self.jwt_default_scopes)
                .map_err(|e| anyhow::anyhow!("JWT_DEFAULT_SCOPES: {e}"))?,
            jwks_refresh: Duration::from_secs(self.jwt_jwks_refresh_seconds),
            jwks_min_refetch: Duration::from_secs(self.jwt_jwks_min_refetch_seconds),
            api_keys_file: self.api_keys_file.clone().filter(|p| !p.as_os_str().is_empty()),
            metrics_public: self.metrics_public,
        };
        Ok(Auth::new(&config)?)
    }
}

/// `retail-api token`: mints an HS256 token with `JWT_SECRET_KEY`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The token's subject (`sub`): who it is for.
    #[arg(long)]
    sub: String,
    /// Scopes, space- or comma-separated (predict, explain, model:read, metrics:read).
    #[arg(long, default_value = "predict model:read")]
    scopes: String,
    /// Lifetime, e.g. `1h`, `30m`, `7d`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// The HS256 secret the server checks tokens with.
    #[arg(long, env = "JWT_SECRET_KEY", hide_env_values = true)]
    jwt_secret_key: Option<String>,
    /// `iss` claim (set it when the server requires an issuer).
    #[arg(long, env = "JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// `aud` claim: the first of the server's accepted audiences, if any.
    #[arg(long, env = "JWT_AUDIENCE", value_delimiter = ',')]
    jwt_audience: Vec<String>,
}

/// Prints a new token on stdout.
#[allow(clippy::print_stdout)]
pub fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let secret =
        args.jwt_secret_key.as_deref().filter(|s| !s.is_empty()).context(
            "JWT_SECRET_KEY is not set: `retail-api token` signs with the same HS256 secret the server checks",
        )?;
    if args.sub.is_empty() {
        bail!("--sub must not be empty");
    }
    let scopes = Scopes::parse_list(&args.scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).context("clock before 1970")?.as_secs();
    let mut claims = serde_json::json!({
        "sub": args.sub,
        "iat": now,
        "exp": now + args.ttl.as_secs(),
        "scope": scopes.to_string(),
    });
    if let Some(iss) = args.jwt_issuer.as_deref().filter(|s| !s.is_empty()) {
        claims["iss"] = iss.into();
    }
    if let Some(aud) = args.jwt_audience.iter().find(|a| !a.is_empty()) {
        claims["aud"] = aud.as_str().into();
    }
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).context("JWT_SECRET_KEY")?;
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).context("cannot sign")?;
    println!("{token}");
    Ok(())
}

/// `retail-api apikey`.
#[derive(Debug, Args)]
pub struct ApiKeyArgs {
    #[command(subcommand)]
    command: ApiKeyCommand,
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Print a new random key (shown once) and the line to add to API_KEYS_FILE.
    New {
        /// The key's name (the access log's principal): A-Z a-z 0-9 - _ . @, at most 64.
        #[arg(long)]
        name: String,
        /// Scopes, comma- or space-separated (predict, explain, model:read, metrics:read).
        #[arg(long, default_value = "predict")]
        scopes: String,
        /// Expiry as an RFC 3339 time, e.g. 2027-06-30T00:00:00Z.
        #[arg(long)]
        expires: Option<String>,
    },
}

/// Prints the new key and its key-file line.
#[allow(clippy::print_stdout)]
pub fn apikey(args: &ApiKeyArgs) -> anyhow::Result<()> {
    let ApiKeyCommand::New { name, scopes, expires } = &args.command;
    let scopes = Scopes::parse_list(scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
    if scopes.is_empty() {
        bail!("--scopes must name at least one scope");
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    let key = format!("rk_{}", hex::encode(bytes));
    let line = retail_server::auth::hash_line(name, &key, scopes, expires.as_deref());
    // The line must parse as the server will read it (name, expiry).
    retail_server::auth::check_line(&line).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("key:  {key}");
    println!("line: {line}");
    println!("# Give the key to its user now: it is not stored anywhere. Add the line to API_KEYS_FILE.");
    Ok(())
}
