//! API keys: a file of named keys stored as SHA-256 hashes, one a line,
//!
//! ```text
//! # name      hash                                                                 scopes                 expiry (optional)
//! ci-batch    sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 scopes=predict,model:read expires=2027-06-30T00:00:00Z
//! ```
//!
//! A presented key is hashed and compared with every entry in constant time. The file is read
//! again every [`POLL_EVERY`] when its content changed, so keys are added and revoked (lines
//! removed) without a restart; a file that does not parse keeps the previous keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Failure, Principal, Scopes};

/// How often the key file is checked for changes.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// Largest key file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Most keys in the file (each request compares against all of them).
const MAX_KEYS: usize = 1000;

/// Longest key accepted in a request.
const MAX_KEY_BYTES: usize = 256;

/// Longest key name.
const MAX_NAME_CHARS: usize = 64;

/// Why the key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("API_KEYS_FILE {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than allowed.
    #[error("API_KEYS_FILE {path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: String,
    },
    /// A line does not parse.
    #[error("API_KEYS_FILE {path}, line {line}: {reason}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// One key of the file.
#[derive(Debug)]
struct Entry {
    name: Arc<str>,
    hash: [u8; 32],
    scopes: Scopes,
    /// Unix seconds after which the key is refused.
    expires: Option<i64>,
}

/// The keys of one parse, with the hash of the file they came from.
struct Keys {
    entries: Vec<Entry>,
    file_digest: [u8; 32],
}

/// The API keys, re-read when the file changes.
pub(super) struct KeyStore {
    path: PathBuf,
    keys: ArcSwap<Keys>,
}

impl KeyStore {
    /// Reads and parses the file (any error is a configuration error).
    pub(super) fn load(path: PathBuf) -> Result<Self, KeyFileError> {
        let text = read(&path)?;
        let entries = parse(&text).map_err(|(line, reason)| line_error(&path, line, reason))?;
        tracing::info!(path = %path.display(), keys = entries.len(), "API keys loaded");
        let keys = Keys { entries, file_digest: Sha256::digest(text.as_bytes()).into() };
        Ok(Self { path, keys: ArcSwap::from_pointee(keys) })
    }

    /// The principal of a presented key.
    pub(super) fn check(&self, presented: &str) -> Result<Principal, Failure> {
        if presented.is_empty() || presented.len() > MAX_KEY_BYTES {
            return Err(Failure::Malformed);
        }
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let keys = self.keys.load();
        // Every entry is compared, whichever matches, so the time taken does not tell which.
        let mut found = None;
        for entry in &keys.entries {
            if bool::from(entry.hash.ct_eq(&hash)) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or(Failure::RevokedKey)?;
        if entry.expires.is_some_and(|t| chrono::Utc::now().timestamp() > t) {
            return Err(Failure::ExpiredKey);
        }
        Ok(Principal::new(&entry.name, entry.scopes))
    }

    /// Re-reads the file if its content changed; a file that does not parse is logged and the
    /// previous keys stay.
    fn reload(&self) {
        let text = match read(&self.path) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "cannot re-read the API key file; keeping the previous keys");
                return;
            }
        };
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if digest == self.keys.load().file_digest {
            return;
        }
        match parse(&text) {
            Ok(entries) => {
                tracing::info!(path = %self.path.display(), keys = entries.len(), "API keys reloaded");
                self.keys.store(Arc::new(Keys { entries, file_digest: digest }));
            }
            Err((line, reason)) => {
                let error = line_error(&self.path, line, reason);
                tracing::error!(%error, "API key file refused; keeping the previous keys");
            }
        }
    }

    /// Checks the file for changes every [`POLL_EVERY`], forever.
    pub(super) async fn watch(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(POLL_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let store = self.clone();
            // File reads block; a small one, but not on a runtime worker.
            let _ = tokio::task::spawn_blocking(move || store.reload()).await;
        }
    }
}

fn line_error(path: &Path, line: usize, reason: String) -> KeyFileError {
    KeyFileError::Line { path: path.display().to_string(), line, reason }
}

fn read(path: &Path) -> Result<String, KeyFileError> {
    use std::io::Read;
    let display = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| KeyFileError::Read { path: display(), source })?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|source| KeyFileError::Read { path: display(), source })?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(KeyFileError::TooLarge { path: display() });
    }
    Ok(text)
}

/// Parses a key file; an error names the 1-based line.
fn parse(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split_once('#').map_or(line, |(before, _)| before).trim();
        if line.is_empty() {
            continue;
        }
        let entry = parse_line(line).map_err(|reason| (i + 1, reason))?;
        if entries.iter().any(|e| e.name == entry.name || e.hash == entry.hash) {
            return Err((i + 1, format!("key {} or its hash is listed twice", entry.name)));
        }
        if entries.len() == MAX_KEYS {
            return Err((i + 1, format!("more than {MAX_KEYS} keys")));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_line(line: &str) -> Result<Entry, String> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default();
    let valid_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(valid_name) {
        return Err(format!("key name must be 1 to {MAX_NAME_CHARS} of A-Z a-z 0-9 - _ . @"));
    }
    let hash = words
        .next()
        .and_then(|w| w.strip_prefix("sha256:"))
        .and_then(|h| <[u8; 32]>::try_from(decode_hex(h)?).ok())
        .ok_or("second field must be sha256:<64 hex digits>")?;
    let (mut scopes, mut expires) = (None, None);
    for word in words {
        match word.split_once('=') {
            Some(("scopes", list)) => scopes = Some(Scopes::parse_list(list)?),
            Some(("expires", when)) => {
                let t = chrono::DateTime::parse_from_rfc3339(when)
                    .map_err(|e| format!("expires={when}: not an RFC 3339 time ({e})"))?;
                expires = Some(t.timestamp());
            }
            _ => return Err(format!("unexpected {word:?} (expected scopes=… or expires=…)")),
        }
    }
    let scopes = scopes.ok_or("scopes=… is required")?;
    Ok(Entry { name: name.into(), hash, scopes, expires })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// The key file line for a new key: `name sha256:<hex> scopes=a,b[ expires=…]`.
pub fn hash_line(name: &str, key: &str, scopes: Scopes, expires: Option<&str>) -> String {
    let hash: String = Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let scopes = scopes.to_string().replace(' ', ",");
    let expires = expires.map(|e| format!(" expires={e}")).unwrap_or_default();
    format!("{name} sha256:{hash} scopes={scopes}{expires}")
}

/// Checks one key-file line as the server would read it.
pub fn check_line(line: &str) -> Result<(), String> {
    parse_line(line).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;

    fn store(text: &str) -> KeyStore {
        let entries = parse(text).expect("parses");
        let keys = Keys { entries, file_digest: [0; 32] };
        KeyStore { path: PathBuf::new(), keys: ArcSwap::from_pointee(keys) }
    }

    #[test]
    fn the_line_format_round_trips_through_hash_line() {
        let scopes = Scopes::parse_list("predict model:read").expect("scopes");
        let line = hash_line("ci", "rk_secret", scopes, None);
        let text = format!("# comment\n\n{line}  # trailing comment\n");
        let keys = store(&text);
        let p = keys.check("rk_secret").expect("valid key");
        assert_eq!(p.name(), "ci");
        assert!(p.scopes().contains(Scope::Predict) && p.scopes().contains(Scope::ModelRead));
        assert_eq!(keys.check("rk_other").err(), Some(Failure::RevokedKey));
        assert_eq!(keys.check("").err(), Some(Failure::Malformed));
    }

    #[test]
    fn expired_keys_are_refused() {
        let line = hash_line("old", "k", Scopes::parse_list("predict").expect("s"), Some("2020-01-01T00:00:00Z"));
        assert_eq!(store(&line).check("k").err(), Some(Failure::ExpiredKey));
        let line = hash_line("new", "k", Scopes::parse_list("predict").expect("s"), Some("2999-01-01T00:00:00+02:00"));
        assert!(store(&line).check("k").is_ok());
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let good = hash_line("a", "k", Scopes::parse_list("predict").expect("s"), None);
        let hash = good.split(' ').nth(1).expect("hash");
        let other = format!("sha256:{}", "1".repeat(64));
        for (text, wanted) in [
            (format!("{good}\nb sha256:abc scopes=predict"), "sha256:"),
            (format!("{good}\nb {hash}"), "scopes="),
            (format!("{good}\nb {} scopes=admin", other), "unknown scope"),
            (format!("{good}\nb {} scopes=predict expires=tomorrow", other), "RFC 3339"),
            (format!("{good}\na {} scopes=predict", other), "twice"),
            (format!("{good}\nb {hash} scopes=predict"), "twice"),
            (format!("{good}\nb/c {hash} scopes=predict"), "key name"),
            (format!("{good}\nb {} scopes=predict extra", other), "unexpected"),
        ] {
            let (line, reason) = parse(&text).expect_err("refused");
            assert_eq!(line, 2, "{text}");
            assert!(reason.contains(wanted), "{reason} should mention {wanted}");
        }
    }
}
