//! Issue 13: authentication against a real server process. The auth matrix (every kind of bad
//! credential is a 401 or 403 with the right `WWW-Authenticate`, never a 200 or a 5xx), a JWKS
//! served by a local HTTP server the test controls (fetches counted, taken down), API keys
//! revoked by editing their file, public routes, and the seed's flow: `retail-api token` → Bearer.
//! The keys in `tests/fixtures/auth/` are test-only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::{SEED, Server, bin, json_body, root};

pub(crate) const SECRET: &str = "test-only-secret-0123456789abcdef0123";
const ISSUER: &str = "https://issuer.test/pool";
const AUDIENCE: &str = "retail-api-client";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("crates/cli/tests/fixtures/auth").join(name)).expect("test key")
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rs256-private.pem")).expect("RSA test key")
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture("es256-private.pem")).expect("EC test key")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// Claims that pass every check of the matrix server, with `extra` merged in (`null` removes).
fn claims(extra: Value) -> Value {
    let mut claims =
        json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "scope": "predict model:read"});
    for (k, v) in extra.as_object().expect("object") {
        if v.is_null() {
            claims.as_object_mut().expect("object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let header = Header { kid: kid.map(str::to_owned), ..Header::new(alg) };
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("rs1"), &rsa_key(), claims)
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    sign(Algorithm::HS256, None, &EncodingKey::from_secret(secret).expect("secret"), claims)
}

fn b64(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    // base64url without padding, enough for a hand-made `alg: none` token.
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            let _ = out.write_char(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A JWKS endpoint on loopback: serves the published keys, counts fetches, can be taken down.
struct JwksServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    keys: Arc<Mutex<Vec<Value>>>,
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).expect("jwk json")
}

impl JwksServer {
    fn start(keys: Vec<Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
        let (fetches, down, keys) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(keys)));
        let (f, d, k) = (fetches.clone(), down.clone(), keys.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                f.fetch_add(1, Ordering::SeqCst);
                let (status, body) = if d.load(Ordering::SeqCst) {
                    ("503 Service Unavailable", String::new())
                } else {
                    ("200 OK", json!({"keys": *k.lock().expect("lock")}).to_string())
                };
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url, fetches, down, keys }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// One request with extra headers; the status, the `WWW-Authenticate` value and the body.
pub(crate) fn call(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes())).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let challenge = answer
        .lines()
        .find_map(|l| l.strip_prefix("www-authenticate: ").or_else(|| l.strip_prefix("WWW-Authenticate: ")))
        .unwrap_or_default()
        .to_owned();
    (status, challenge, json_body(&answer))
}

pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts a refusal: 401 with an `invalid_token` challenge (or 403 `insufficient_scope`),
/// the API's error body with a request id.
fn assert_refused(what: &str, (status, challenge, body): (u16, String, Value), want: u16) {
    assert_eq!(status, want, "{what}: status ({body})");
    let error = if want == 403 { "insufficient_scope" } else { "invalid_token" };
    assert!(challenge.starts_with("Bearer realm=\"retail-api\""), "{what}: challenge {challenge:?}");
    assert!(challenge.contains(&format!("error=\"{error}\"")), "{what}: challenge {challenge:?}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{what}: {body}");
    assert!(body["code"].is_string() && body["error"].is_string(), "{what}: {body}");
}

fn key_file(dir: &tempfile::TempDir, lines: &[String]) -> std::path::PathBuf {
    let path = dir.path().join("api-keys.txt");
    std::fs::write(&path, format!("# test keys\n{}\n", lines.join("\n"))).expect("write key file");
    path
}

/// A new key and its key-file line, from `retail-api apikey new`.
fn new_key(name: &str, scopes: &str, expires: Option<&str>) -> (String, String) {
    let mut cmd = bin();
    cmd.args(["apikey", "new", "--name", name, "--scopes", scopes]);
    if let Some(e) = expires {
        cmd.args(["--expires", e]);
    }
    let out = cmd.output().expect("apikey new");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let field = |p: &str| stdout.lines().find_map(|l| l.strip_prefix(p)).expect("field").to_owned();
    (field("key:  "), field("line: "))
}

#[test]
fn issue13_every_bad_credential_is_a_401_or_403_with_its_challenge() {
    let jwks =
        JwksServer::start(vec![jwk(&rsa_key(), Algorithm::RS256, "rs1"), jwk(&ec_key(), Algorithm::ES256, "es1")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, line) = new_key("ci-batch", "predict", None);
    let (old_key, old_line) = new_key("old", "predict", Some("2020-01-01T00:00:00Z"));
    let keys = key_file(&dir, &[line, old_line]);
    let server = Server::start_with_env(
        &[],
        &[
            ("JWT_SECRET_KEY", SECRET),
            ("JWT_JWKS_URL", &jwks.url),
            ("JWT_ISSUER", ISSUER),
            ("JWT_AUDIENCE", AUDIENCE),
            ("JWT_ALGORITHMS", "HS256,RS256,ES256"),
            ("API_KEYS_FILE", keys.to_str().expect("path")),
        ],
    );
    let addr = server.addr();
    let predict = |headers: &[(&str, &str)]| call(addr, "POST", "/predict", headers, SEED);
    let with = |token: &str| predict(&[("Authorization", &bearer(token))]);

    // No credential: a plain challenge, without an error code (RFC 6750 §3.1).
    let (status, challenge, body) = predict(&[]);
    assert_eq!((status, challenge.as_str()), (401, "Bearer realm=\"retail-api\""), "{body}");

    let pem = fixture("rs256-public.pem");
    let payload = b64(claims(json!({})).to_string().as_bytes());
    let tampered = {
        let token = rs256(&claims(json!({})));
        let parts: Vec<&str> = token.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(claims(json!({"sub": "mallory"})).to_string().as_bytes()), parts[2])
    };
    let cases: Vec<(&str, String, u16)> = vec![
        ("wrong scheme", "Basic dXNlcjpwYXNz".into(), 401),
        ("garbage", bearer("not-a-jwt"), 401),
        ("expired", bearer(&rs256(&claims(json!({"exp": now() - 3600})))), 401),
        ("not yet valid", bearer(&rs256(&claims(json!({"nbf": now() + 3600})))), 401),
        ("wrong HS256 secret", bearer(&hs256(b"another-secret-0123456789abcdef0123", &claims(json!({})))), 401),
        ("tampered RS256 payload", bearer(&tampered), 401),
        ("alg none", bearer(&format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#))), 401),
        ("HS256 signed with the RS256 public key", bearer(&hs256(&pem, &claims(json!({})))), 401),
        (
            "RS256 kid with an ES256 key",
            bearer(&sign(Algorithm::ES256, Some("rs1"), &ec_key(), &claims(json!({})))),
            401,
        ),
        ("wrong issuer", bearer(&rs256(&claims(json!({"iss": "https://evil.test"})))), 401),
        ("wrong audience", bearer(&rs256(&claims(json!({"aud": "someone-else"})))), 401),
        (
            "Cognito id token",
            bearer(&rs256(&claims(json!({"aud": null, "client_id": AUDIENCE, "token_use": "id"})))),
            401,
        ),
        ("missing sub", bearer(&rs256(&claims(json!({"sub": null})))), 401),
        ("missing exp", bearer(&rs256(&claims(json!({"exp": null})))), 401),
        ("missing scope", bearer(&rs256(&claims(json!({"scope": "model:read"})))), 403),
        ("unknown API key", "rk_0000".into(), 401),
        ("expired API key", old_key.clone(), 401),
    ];
    for (what, credential, want) in &cases {
        let header = if credential.starts_with("rk_") { "X-API-Key" } else { "Authorization" };
        assert_refused(what, predict(&[(header, credential)]), *want);
    }
    let (_, challenge, _) = with(&rs256(&claims(json!({"exp": now() - 3600}))));
    assert!(challenge.contains("expired"), "an expired token says so: {challenge}");
    let (_, challenge, _) = with(&rs256(&claims(json!({"scope": "model:read"}))));
    assert!(challenge.contains("scope=\"predict\""), "403 names the scope needed: {challenge}");

    // What is accepted: each algorithm, a Cognito access token (client_id, no aud), an API key.
    let cognito =
        claims(json!({"aud": null, "client_id": AUDIENCE, "token_use": "access", "scope": "retail-api/predict"}));
    for (what, answer) in [
        ("RS256", with(&rs256(&claims(json!({}))))),
        ("ES256", with(&sign(Algorithm::ES256, Some("es1"), &ec_key(), &claims(json!({}))))),
        ("HS256", with(&hs256(SECRET.as_bytes(), &claims(json!({}))))),
        ("Cognito access token", with(&rs256(&cognito))),
        ("scp array", with(&rs256(&claims(json!({"scope": null, "scp": ["predict"]}))))),
        ("API key", predict(&[("X-API-Key", &key)])),
    ] {
        assert_eq!(answer.0, 200, "{what}: {}", answer.2);
        assert!(answer.2["prediction"].is_string(), "{what}");
    }

    // Public routes need nothing; protected ones refuse without a credential.
    for path in [
        "/health",
        "/healthz",
        "/ready",
        "/ping",
        "/v2/health/live",
        "/v2/health/ready",
        "/",
        "/docs/",
        "/openapi.json",
    ] {
        assert_eq!(call(addr, "GET", path, &[], "").0, 200, "{path} is public");
    }
    for (method, path) in [
        ("GET", "/model/info"),
        ("GET", "/model-info"),
        ("GET", "/model/metrics"),
        ("GET", "/model/card"),
        ("GET", "/models/retail-price-sensitivity/card"),
        ("GET", "/metrics"),
        ("GET", "/v2/models/retail-price-sensitivity"),
        ("POST", "/predict/batch"),
        ("POST", "/batch-predict"),
        ("POST", "/invocations"),
        ("POST", "/v2/models/retail-price-sensitivity/infer"),
    ] {
        assert_eq!(call(addr, method, path, &[], "{}").0, 401, "{method} {path} is protected");
    }
    let model_reader = rs256(&claims(json!({"scope": "model:read"})));
    assert_eq!(call(addr, "GET", "/model/info", &[("Authorization", &bearer(&model_reader))], "").0, 200);
    assert_eq!(call(addr, "GET", "/model/card", &[("Authorization", &bearer(&model_reader))], "").0, 200);
    assert_eq!(call(addr, "GET", "/metrics", &[("Authorization", &bearer(&model_reader))], "").0, 403);

    // Failures are counted by reason; the access log names the principal, never the credential.
    let metrics_token = bearer(&rs256(&claims(json!({"scope": "metrics:read"}))));
    let (status, _, _) = call(addr, "GET", "/metrics", &[("Authorization", &metrics_token)], "");
    assert_eq!(status, 200);
    let text = {
        let mut stream = TcpStream::connect(addr).expect("connect");
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: {metrics_token}\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        text
    };
    for reason in [
        "missing",
        "malformed",
        "expired",
        "not_yet_valid",
        "bad_signature",
        "bad_algorithm",
        "bad_claims",
        "revoked_key",
        "expired_key",
        "insufficient_scope",
    ] {
        assert!(
            text.contains(&format!("retail_api_auth_failures_total{{reason=\"{reason}\"}}")),
            "no {reason} failures counted"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let lines = server.log_lines();
    let principals: Vec<&str> = lines.iter().filter_map(|l| l["principal"].as_str()).collect();
    assert!(principals.contains(&"alice") && principals.contains(&"ci-batch"), "{principals:?}");
    let raw = server.log.lock().expect("lock").join("\n");
    assert!(!raw.contains(&key) && !raw.contains(&model_reader), "a credential leaked into the log");
}

#[test]
fn issue13_unknown_kid_refetches_at_most_once_and_cached_keys_outlive_the_jwks() {
    // Only the RSA key is published at start; the EC key is published later (a rotation).
    let jwks = JwksServer::start(vec![jwk(&rsa_key(), Algorithm::RS256, "rs1")]);
    let server = Server::start_with_env(
        &[],
        &[("JWT_JWKS_URL", &jwks.url), ("JWT_JWKS_MIN_REFETCH_SECONDS", "60"), ("JWT_DEFAULT_SCOPES", "predict")],
    );
    let addr = server.addr();
    assert_eq!(jwks.fetches(), 1, "fetched once at start");
    let predict = |token: &str| call(addr, "POST", "/predict", &[("Authorization", &bearer(token))], SEED);
    let plain = json!({"sub": "svc", "exp": now() + 600});

    // A rotated-in key is found by the one refetch its unknown kid allows.
    jwks.keys.lock().expect("lock").push(jwk(&ec_key(), Algorithm::ES256, "es1"));
    let (status, _, body) = predict(&sign(Algorithm::ES256, Some("es1"), &ec_key(), &plain));
    assert_eq!(status, 200, "{body}");
    assert_eq!(jwks.fetches(), 2, "one refetch for the new kid");

    // Forged kids within the interval: refused, no more fetches.
    for kid in ["forged-1", "forged-2", "forged-3"] {
        assert_refused(kid, predict(&sign(Algorithm::RS256, Some(kid), &rsa_key(), &plain)), 401);
    }
    assert_eq!(jwks.fetches(), 2, "no refetch storm from forged kids");

    // With only a JWKS configured, HS256 is not accepted at all (no HS/RS confusion).
    let confused = hs256(&fixture("rs256-public.pem"), &plain);
    assert_refused("HS256 on a JWKS-only server", predict(&confused), 401);

    // The JWKS goes down: the cached keys keep working.
    jwks.down.store(true, Ordering::SeqCst);
    let (status, _, body) = predict(&rs256(&plain));
    assert_eq!(status, 200, "cached key while the JWKS is down: {body}");
    assert_eq!(predict(&sign(Algorithm::ES256, Some("es1"), &ec_key(), &plain)).0, 200);
}

#[test]
fn issue13_api_keys_are_revoked_by_editing_the_file_and_metrics_can_be_public() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, line) = new_key("scorer", "predict,model:read", None);
    let (other, other_line) = new_key("other", "predict", None);
    let path = key_file(&dir, &[line, other_line.clone()]);
    let server =
        Server::start_with_env(&[], &[("API_KEYS_FILE", path.to_str().expect("path")), ("METRICS_PUBLIC", "true")]);
    let addr = server.addr();
    let predict = |k: &str| call(addr, "POST", "/predict", &[("X-API-Key", k)], SEED).0;
    assert_eq!(predict(&key), 200);
    assert_eq!(call(addr, "GET", "/metrics", &[], "").0, 200, "METRICS_PUBLIC");
    assert_eq!(call(addr, "GET", "/model/info", &[], "").0, 401);
    assert_eq!(call(addr, "GET", "/model/info", &[("X-API-Key", &key)], "").0, 200);
    assert_eq!(call(addr, "GET", "/model/info", &[("X-API-Key", &other)], "").0, 403);
    // A bearer token on a server with only API keys is refused, not ignored.
    assert_eq!(call(addr, "POST", "/predict", &[("Authorization", "Bearer x.y.z")], SEED).0, 401);

    // Revoke `scorer` by removing its line: refused within a few seconds, without a restart.
    key_file(&dir, &[other_line]);
    let start = Instant::now();
    while predict(&key) == 200 {
        assert!(start.elapsed() < Duration::from_secs(10), "the revoked key still works");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_refused("revoked key", call(addr, "POST", "/predict", &[("X-API-Key", &key)], SEED), 401);
    assert_eq!(predict(&other), 200, "the remaining key still works");
}

#[test]
fn issue13_the_seed_flow_retail_api_token_then_bearer() {
    let server = Server::start_with_env(&[], &[("JWT_SECRET_KEY", SECRET)]);
    let out = bin()
        .args(["token", "--sub", "alice", "--scopes", "predict", "--ttl", "1h"])
        .env("JWT_SECRET_KEY", SECRET)
        .output()
        .expect("token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf8").trim().to_owned();
    let (status, _, body) = call(server.addr(), "POST", "/predict", &[("Authorization", &bearer(&token))], SEED);
    assert_eq!(status, 200, "{body}");
    assert_eq!(call(server.addr(), "POST", "/predict", &[], SEED).0, 401);
    assert_eq!(call(server.addr(), "GET", "/model/info", &[("Authorization", &bearer(&token))], "").0, 403);

    let unset = bin().args(["token", "--sub", "alice"]).env_remove("JWT_SECRET_KEY").output().expect("token");
    assert!(!unset.status.success(), "token without JWT_SECRET_KEY must fail");
    assert!(String::from_utf8_lossy(&unset.stderr).contains("JWT_SECRET_KEY"));
}

#[test]
fn issue13_verify_sh_passes_with_a_token_and_fails_without() {
    let server = Server::start_with_env(&[], &[("JWT_SECRET_KEY", SECRET)]);
    let out = bin()
        .args(["token", "--sub", "verify", "--scopes", "predict model:read metrics:read", "--ttl", "5m"])
        .env("JWT_SECRET_KEY", SECRET)
        .output()
        .expect("token");
    let token = String::from_utf8(out.stdout).expect("utf8").trim().to_owned();
    let url = format!("http://{}", server.addr());
    let verify = |token: Option<&str>| {
        let mut command = std::process::Command::new(root().join("scripts/verify.sh"));
        command.arg(&url).env_remove("RETAIL_API_TOKEN");
        if let Some(token) = token {
            command.env("RETAIL_API_TOKEN", token);
        }
        command.output().expect("verify.sh")
    };
    let with = verify(Some(&token));
    let report = String::from_utf8_lossy(&with.stdout);
    assert!(with.status.success(), "{report}");
    assert!(report.contains("ok    POST /predict without a credential is 401"), "{report}");
    assert!(!verify(None).status.success(), "without a token the protected checks fail");
}
