//! Model artifacts in S3 or an S3-compatible store (`s3://bucket/key.tar.gz`, or the seed's
//! `MODEL_BUCKET` + `MODEL_KEY`). Credentials and settings come from the standard AWS
//! environment: access keys, session token, IRSA web identity (`AWS_ROLE_ARN` +
//! `AWS_WEB_IDENTITY_TOKEN_FILE`), container credentials, instance metadata, or static keys of
//! a profile in the shared files (`AWS_PROFILE`); region from
//! `AWS_REGION` / `AWS_DEFAULT_REGION`; a custom endpoint from `AWS_ENDPOINT_URL` (plain HTTP is
//! allowed when that endpoint is `http://`).

use object_store::ObjectStoreExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use retail_model::artifact::{Artifact, ArtifactError, MAX_ARCHIVE_BYTES};

/// Why a model could not be fetched from S3.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the request.
    #[error("s3://{bucket}/{key}: {reason}")]
    S3 {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// The object is larger than allowed (from its size, before it is downloaded).
    #[error("s3://{bucket}/{key}: {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The object's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Verifying the downloaded artifact stopped (the loader panicked).
    #[error("s3://{bucket}/{key}: the loader stopped: {reason}")]
    Loader {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The object is not a valid artifact.
    #[error("s3://{bucket}/{key}: {source}")]
    Artifact {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why it was refused.
        source: ArtifactError,
    },
}

/// An `s3://bucket/key` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
}

impl S3Url {
    /// Parses `s3://bucket/key` (both parts non-empty).
    pub fn parse(uri: &str) -> Result<Self, String> {
        match uri.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                Ok(Self { bucket: bucket.to_owned(), key: key.to_owned() })
            }
            _ => Err(format!("{uri}: expected s3://bucket/key")),
        }
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// The custom endpoint for every AWS service, `AWS_ENDPOINT_URL`, if set.
pub(crate) fn env_endpoint() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty())
}

/// An S3 client builder for `bucket` configured from the AWS environment (region from
/// `AWS_REGION`, else `AWS_DEFAULT_REGION`; plain HTTP only for an `http://` endpoint). When
/// the environment names no credentials and no web identity, static keys and the region of the
/// shared profile files are used (`AWS_PROFILE`, default `default`).
pub(crate) fn builder(bucket: &str) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).ok();
    let profile = Profile::from_files();
    if let Some(region) = region.or(profile.region) {
        builder = builder.with_region(region);
    }
    let env_has_credentials = crate::credentials::env_has_credentials();
    match (env_has_credentials, profile.access_key_id, profile.secret_access_key) {
        (false, Some(key), Some(secret)) => {
            builder = builder.with_access_key_id(key).with_secret_access_key(secret);
            if let Some(token) = profile.session_token {
                builder = builder.with_token(token);
            }
        }
        // Only instance metadata is left: say which sources were tried when it fails too.
        (false, _, _) => {
            if let Ok(client) = builder.clone().build() {
                let last = crate::credentials::LastResort::new(client.credentials().clone(), profile_name());
                builder = builder.with_credentials(std::sync::Arc::new(last));
            }
        }
        (true, _, _) => {}
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").ok().or_else(env_endpoint).unwrap_or_default();
    if endpoint.starts_with("http://") {
        builder = builder.with_allow_http(true);
    }
    builder
}

/// An S3 client for `bucket` with the serving credential chain (environment, web identity,
/// shared profile files, instance metadata) and `AWS_ENDPOINT_URL`; for other commands that
/// read or write S3 (offline batch scoring).
pub fn client(bucket: &str) -> Result<AmazonS3, StoreError> {
    builder(bucket).build().map_err(|e| StoreError::S3 {
        bucket: bucket.to_owned(),
        key: String::new(),
        reason: crate::credentials::reason(&e),
    })
}

/// The profile of the shared AWS files: `AWS_PROFILE`, default `default`.
fn profile_name() -> String {
    std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned())
}

/// What the shared AWS files (`~/.aws/credentials`, `~/.aws/config`, or
/// `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`) say for the profile `AWS_PROFILE`
/// (default `default`). Only static keys and the region are read: SSO and role profiles are not
/// supported (export their credentials to the environment instead).
#[derive(Debug, Default, PartialEq, Eq)]
struct Profile {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    region: Option<String>,
}

impl Profile {
    fn from_files() -> Self {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let file = |var: &str, name: &str| {
            std::env::var_os(var)
                .map(std::path::PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
                .and_then(|path| std::fs::read_to_string(path).ok())
                .unwrap_or_default()
        };
        Self::parse(
            &profile_name(),
            &file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            &file("AWS_CONFIG_FILE", "config"),
        )
    }

    /// The profile `name` of an INI credentials file (`[name]`) and config file (`[profile name]`,
    /// or `[default]`).
    fn parse(name: &str, credentials: &str, config: &str) -> Self {
        let section = |text: &str, header: &str| -> Vec<(String, String)> {
            let mut inside = false;
            let mut pairs = Vec::new();
            for line in text.lines().map(str::trim) {
                if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    inside = h.trim() == header;
                } else if let (true, Some((k, v))) = (inside, line.split_once('=')) {
                    pairs.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
            pairs
        };
        let config_header = if name == "default" { "default".to_owned() } else { format!("profile {name}") };
        let mut pairs = section(config, &config_header);
        pairs.extend(section(credentials, name));
        let get = |key: &str| pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        Self {
            access_key_id: get("aws_access_key_id"),
            secret_access_key: get("aws_secret_access_key"),
            session_token: get("aws_session_token"),
            region: get("region"),
        }
    }
}

/// One object in a bucket (a `model.tar.gz`, or a file published next to it).
#[derive(Debug)]
pub struct S3Source {
    bucket: String,
    key: String,
    store: AmazonS3,
}

impl S3Source {
    /// A client for `s3://bucket/key`, configured from the AWS environment.
    pub fn new(bucket: &str, key: &str) -> Result<Self, StoreError> {
        let store = builder(bucket).build().map_err(|e| StoreError::S3 {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self { bucket: bucket.to_owned(), key: key.to_owned(), store })
    }

    /// The object `key` in the same bucket, sharing this client.
    pub fn sibling(&self, key: &str) -> Self {
        Self { bucket: self.bucket.clone(), key: key.to_owned(), store: self.store.clone() }
    }

    /// A client for `url`.
    pub fn at(url: &S3Url) -> Result<Self, StoreError> {
        Self::new(&url.bucket, &url.key)
    }

    fn error(&self, error: &object_store::Error) -> StoreError {
        let reason = crate::credentials::reason(error);
        StoreError::S3 { bucket: self.bucket.clone(), key: self.key.clone(), reason }
    }

    /// The object's ETag (changes whenever the object does).
    pub async fn etag(&self) -> Result<Option<String>, StoreError> {
        let meta = self.store.head(&Path::from(self.key.as_str())).await.map_err(|e| self.error(&e))?;
        Ok(meta.e_tag)
    }

    /// The object's content, refused beyond `limit` bytes.
    pub async fn bytes(&self, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.get(limit).await.map(|(bytes, _)| bytes.as_ref().to_vec())
    }

    /// The object's content and ETag. Its size is checked before the body is read; the body
    /// cannot exceed it (the HTTP client holds it to the `Content-Length`), which is checked again.
    async fn get(&self, limit: u64) -> Result<(impl AsRef<[u8]> + Send + 'static, Option<String>), StoreError> {
        let result = self.store.get(&Path::from(self.key.as_str())).await.map_err(|e| self.error(&e))?;
        let too_large = |size| StoreError::TooLarge { bucket: self.bucket.clone(), key: self.key.clone(), size, limit };
        if result.meta.size > limit {
            return Err(too_large(result.meta.size));
        }
        let etag = result.meta.e_tag.clone();
        let bytes = result.bytes().await.map_err(|e| self.error(&e))?;
        if bytes.len() as u64 > limit {
            return Err(too_large(bytes.len() as u64));
        }
        Ok((bytes, etag))
    }

    /// Writes the object.
    pub async fn put(&self, content: Vec<u8>) -> Result<(), StoreError> {
        self.store.put(&Path::from(self.key.as_str()), content.into()).await.map(drop).map_err(|e| self.error(&e))
    }

    /// Downloads (at most [`MAX_ARCHIVE_BYTES`]) and verifies the artifact; returns it with the
    /// ETag it had.
    pub async fn fetch(&self) -> Result<(Artifact, Option<String>), StoreError> {
        let (bytes, etag) = self.get(MAX_ARCHIVE_BYTES).await?;
        let name = self.to_string();
        let artifact = tokio::task::spawn_blocking(move || Artifact::from_tar_gz(bytes, &name))
            .await
            .map_err(|e| StoreError::Loader {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                reason: e.to_string(),
            })?
            .map_err(|source| StoreError::Artifact { bucket: self.bucket.clone(), key: self.key.clone(), source })?;
        Ok((artifact, etag))
    }
}

impl std::fmt::Display for S3Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::Profile;

    #[test]
    fn profiles_come_from_the_credentials_and_config_files() {
        let credentials = "[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n\n[ci]\naws_access_key_id=CI\naws_secret_access_key=CS\naws_session_token=T\n";
        let config = "[default]\nregion = eu-west-1\n[profile ci]\nregion=ap-southeast-1\n";
        let default = Profile::parse("default", credentials, config);
        assert_eq!(default.access_key_id.as_deref(), Some("AK"));
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert_eq!(default.session_token, None);
        let ci = Profile::parse("ci", credentials, config);
        assert_eq!(
            (ci.access_key_id.as_deref(), ci.session_token.as_deref(), ci.region.as_deref()),
            (Some("CI"), Some("T"), Some("ap-southeast-1"))
        );
        assert_eq!(Profile::parse("missing", credentials, config), Profile::default());
    }
}
