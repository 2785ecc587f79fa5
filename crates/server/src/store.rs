//! Model artifacts in S3 or an S3-compatible store (`s3://bucket/key.tar.gz`, or the seed's
//! `MODEL_BUCKET` + `MODEL_KEY`). Credentials and settings come from the standard AWS
//! environment: access keys, session token, IRSA web identity (`AWS_ROLE_ARN` +
//! `AWS_WEB_IDENTITY_TOKEN_FILE`), container credentials or instance metadata; region from
//! `AWS_REGION` / `AWS_DEFAULT_REGION`; a custom endpoint from `AWS_ENDPOINT_URL` (plain HTTP is
//! allowed when that endpoint is `http://`).

use object_store::ObjectStoreExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use retail_model::artifact::{Artifact, ArtifactError};

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

/// An S3 client builder for `bucket` configured from the AWS environment (`AWS_REGION` is
/// honoured as well as `AWS_DEFAULT_REGION`; plain HTTP only for an `http://` endpoint).
pub(crate) fn builder(bucket: &str) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let (None, Ok(region)) = (std::env::var_os("AWS_DEFAULT_REGION"), std::env::var("AWS_REGION")) {
        builder = builder.with_region(region);
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3").ok().or_else(env_endpoint).unwrap_or_default();
    if endpoint.starts_with("http://") {
        builder = builder.with_allow_http(true);
    }
    builder
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

    /// A client for `url`.
    pub fn at(url: &S3Url) -> Result<Self, StoreError> {
        Self::new(&url.bucket, &url.key)
    }

    fn error(&self, reason: impl ToString) -> StoreError {
        StoreError::S3 { bucket: self.bucket.clone(), key: self.key.clone(), reason: reason.to_string() }
    }

    /// The object's ETag (changes whenever the object does).
    pub async fn etag(&self) -> Result<Option<String>, StoreError> {
        let meta = self.store.head(&Path::from(self.key.as_str())).await.map_err(|e| self.error(e))?;
        Ok(meta.e_tag)
    }

    /// The object's content, refused beyond `limit` bytes.
    pub async fn bytes(&self, limit: u64) -> Result<Vec<u8>, StoreError> {
        let result = self.store.get(&Path::from(self.key.as_str())).await.map_err(|e| self.error(e))?;
        if result.meta.size > limit {
            return Err(self.error(format!("{} bytes, more than the {limit} allowed", result.meta.size)));
        }
        result.bytes().await.map(|b| b.to_vec()).map_err(|e| self.error(e))
    }

    /// Writes the object.
    pub async fn put(&self, content: Vec<u8>) -> Result<(), StoreError> {
        self.store.put(&Path::from(self.key.as_str()), content.into()).await.map(drop).map_err(|e| self.error(e))
    }

    /// Downloads and verifies the artifact; returns it with the ETag it had.
    pub async fn fetch(&self) -> Result<(Artifact, Option<String>), StoreError> {
        let result = self.store.get(&Path::from(self.key.as_str())).await.map_err(|e| self.error(e))?;
        let etag = result.meta.e_tag.clone();
        let bytes = result.bytes().await.map_err(|e| self.error(e))?;
        let name = self.to_string();
        let artifact = tokio::task::spawn_blocking(move || Artifact::from_tar_gz(&bytes, &name))
            .await
            .map_err(|e| self.error(format!("loader failed: {e}")))?
            .map_err(|source| StoreError::Artifact { bucket: self.bucket.clone(), key: self.key.clone(), source })?;
        Ok((artifact, etag))
    }
}

impl std::fmt::Display for S3Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}
